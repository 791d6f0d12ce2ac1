"""Imports run one way: envs.core <- envs.tasks / envs.backends / envs <- planners <- policies <- train.

Every .py file of the project is read with ``ast`` (imports at module level and inside functions,
``import a.b``, ``from a import b``, relative imports resolved against the file's package); an
import that runs against the flow fails the test with file:line and the rule it breaks.

Layers (a module may import its own layer and those listed for it):

- ``envs.core``: the task API and the contracts (scene, goals, robot, observation); nothing else.
- ``envs.tasks``, ``envs.backends``, ``envs`` (registry, library loading): ``envs.core`` and the
  rest of ``envs``; a task never imports a backend, a backend never imports a task, and one
  backend never imports another (what they share is a contract in ``envs.core``).
- ``llm`` (the LLM client) and ``fanout`` (items over Ray workers): nothing from the project.
- ``planners``: ``envs``, ``llm``.
- ``generation`` (task generation; above planners): ``envs``, ``planners``, ``llm``, ``fanout``. Imported only
  by ``train`` and the top.
- ``policies``: ``envs``, ``planners``, ``llm``.
- ``train``: all of the above.
- top (``bench/``, ``train.py``, ``tests/``, other root scripts): anything, so they are not read.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ENVS = {"envs.core", "envs.tasks", "envs.backends", "envs"}
MAY_IMPORT = {
    "envs.core": set(),
    "envs.tasks": {"envs.core", "envs"},
    "envs.backends": {"envs.core", "envs"},
    "envs": ENVS,
    "llm": set(),
    "fanout": set(),
    "planners": ENVS | {"llm"},
    "generation": ENVS | {"planners", "llm", "fanout"},
    "policies": ENVS | {"planners", "llm"},
    "train": ENVS | {"planners", "llm", "fanout", "generation", "policies"},
}
TOP_DIRS = {"bench", "tests"}  # script folders on top of the flow


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to (longest matching prefix), or None if it is not
    one of the project's packages (a third-party import)."""
    best = None
    for name in MAY_IMPORT:
        if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best)):
            best = name
    return best


def rule(layer: str) -> str:
    allowed = sorted(MAY_IMPORT[layer] - {layer})
    if not allowed:
        return f"{layer} imports nothing from the project but itself"
    return f"{layer} may import only itself and {', '.join(allowed)}"


def source_files(root: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """(file, dotted module name) of every .py file in the project's packages, and a problem line
    for each top-level package the layers do not know (so a new one cannot slip past the rules)."""
    files, problems = [], []
    for top in sorted(root.iterdir()):
        if top.name.startswith((".", "_")) or top.name in TOP_DIRS:
            continue
        if top.is_file() and top.suffix == ".py":
            # a root module of a layer (llm.py); other root files are scripts on top (train.py, whose
            # name the train/ package owns as a module name)
            if top.stem in MAY_IMPORT and not (root / top.stem).is_dir():
                files.append((top, top.stem))
            continue
        if top.is_dir() and not top.is_symlink() and (top / "__init__.py").is_file():
            if layer_of(top.name) is None:
                problems.append(f"{top.name}/: a package the import-flow layers do not know; "
                                f"add it to MAY_IMPORT in tests/test_import_flow.py")
                continue
            for path in sorted(top.rglob("*.py")):
                parts = list(path.relative_to(root).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                files.append((path, ".".join(parts)))
    return files, problems


def imported_modules(tree: ast.AST, module: str, is_package: bool, modules: set[str]):
    """(line, dotted name, source text) of every import in ``tree`` (``modules``: the project's
    module names, to tell ``from pkg import submodule`` from ``from pkg import name``)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            text = f"from {'.' * node.level}{node.module or ''} import {', '.join(a.name for a in node.names)}"
            for alias in node.names:  # `from envs import core` imports the submodule envs.core
                sub = f"{target}.{alias.name}" if target else alias.name
                yield node.lineno, sub if sub in modules else target, text


def _backend(module: str) -> str:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else ""


def violations(root: Path) -> list[str]:
    files, problems = source_files(root)
    modules = {module for _, module in files}
    out = list(problems)
    for path, module in files:
        layer = layer_of(module)
        rel = path.relative_to(root)
        try:
            tree = ast.parse(path.read_text(), filename=str(rel))
        except SyntaxError as err:
            out.append(f"{rel}:{err.lineno}: does not parse ({err.msg})")
            continue
        for line, target, text in imported_modules(tree, module, path.name == "__init__.py", modules):
            other = layer_of(target)
            if other is None:
                continue
            if other != layer and other not in MAY_IMPORT[layer]:
                out.append(f"{rel}:{line}: `{text}` ({layer} -> {other}): {rule(layer)}")
            elif other == layer == "envs.backends" and _backend(module) != _backend(target):
                out.append(f"{rel}:{line}: `{text}` (backend {_backend(module)} -> backend {_backend(target)}): "
                           f"one backend never imports another; what they share lives in envs.core")
    return out


def test_imports_run_one_way():
    found = violations(ROOT)
    assert not found, "imports against the flow:\n" + "\n".join(found)


def test_a_planted_violation_is_caught(tmp_path):
    def write(rel: str, text: str = "") -> None:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    for pkg in ("envs", "envs/core", "envs/tasks", "envs/backends", "envs/backends/mujoco", "envs/backends/other", "planners",
                "policies", "policies/export", "generation", "train", "newpkg"):
        write(f"{pkg}/__init__.py")
    write("llm.py", "import json\n")
    write("envs/core/scene.py", "import numpy as np\nfrom envs.core import state\n")  # fine
    write("envs/core/bad.py", "from policies import export\n")
    write("envs/tasks/t.py", "from envs.core import scene\n\ndef f():\n    from envs.backends.mujoco import env\n")
    write("envs/backends/mujoco/b.py", "from ... import tasks\n")               # relative: envs.tasks
    write("envs/backends/other/c.py", "from ..mujoco import b\nfrom envs import registry\n")
    write("planners/oracle.py", "def act():\n    import train.evaluate\n")
    write("policies/export/v.py", "from ..common import x\nfrom generation import runner\n")
    write("policies/common.py", "import llm\nfrom envs.core import scene\n")      # fine
    write("train/ok.py", "import generation\nfrom policies.export import v\n")    # fine
    write("generation/g.py", "import planners\nimport llm\n")                     # fine
    write("newpkg/m.py", "import os\n")
    write("train.py", "import bench\n")                                           # top: anything
    write("tests/test_x.py", "import envs.core\n")

    found = violations(tmp_path)
    expected = [
        "newpkg/: a package the import-flow layers do not know",
        "envs/backends/mujoco/b.py:1: `from ... import tasks` (envs.backends -> envs.tasks)",
        "envs/backends/other/c.py:1: `from ..mujoco import b` (backend other -> backend mujoco)",
        "envs/core/bad.py:1: `from policies import export` (envs.core -> policies)",
        "envs/tasks/t.py:4: `from envs.backends.mujoco import env` (envs.tasks -> envs.backends)",
        "planners/oracle.py:2: `import train.evaluate` (planners -> train)",
        "policies/export/v.py:2: `from generation import runner` (policies -> generation)",
    ]
    for needle in expected:
        assert sum(needle in f for f in found) == 1, (needle, found)
    assert len(found) == len(expected), found
    assert "envs.core imports nothing from the project but itself" in "\n".join(found)

    write("llm.py", "from envs import registry\n")
    assert any(f.startswith("llm.py:1:") and "(llm -> envs)" in f for f in violations(tmp_path))
