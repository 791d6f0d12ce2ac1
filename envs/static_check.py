"""The static check: what a task program may contain, decided from its syntax tree alone.

It is gate 1 of task generation (:mod:`generation.gates`) and runs again on every file that
:func:`envs.load_library` loads, which is why it lives in envs, beside the registry.

A task program is data for the task API, not a general program. It may:
- import only from ``envs.core`` (and its modules), ``register_task`` from ``envs.registry``,
  ``numpy`` and ``math`` (and ``from __future__ import annotations``);
- define module constants (literals and simple expressions of them), helper functions, and
  exactly one class: ``@register_task("<name>")`` over a ``Task`` subclass;
- in that class: class attributes and the hooks ``build``, ``goals``, ``oracle_goals`` plus
  helpers that do not replace other ``Task`` machinery (success, reward and instruction derive
  from the goals; a task that redefined them could pass the oracle gate by fiat).
It may not: touch dunder attributes or names, name frame/code internals, call
``eval``/``exec``/``compile``/``open``/``__import__``/``getattr``/... , use numpy's file I/O,
assign into or mutate anything it imported (``np.pi = 3``, ``COLORS["red"] = ...``), or hide
format-string tricks in strings ("{x.__class__}").
Each violation is reported with its line number.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,47}$")
MAX_SOURCE_CHARS = 20_000

ALLOWED_FROM = {"envs.core", "envs.core.predicates", "envs.core.scene", "envs.core.task",
                "envs.core.state", "envs.registry", "numpy", "math", "__future__"}
ALLOWED_IMPORT = {"numpy", "math"}
REGISTRY_NAMES = {"register_task"}
# builtins that reach outside the task API; ``type`` is here because 3-argument type() makes
# classes behind the one-class rule's back
FORBIDDEN_CALLS = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
                   "globals", "locals", "vars", "dir", "input", "breakpoint", "exit", "quit", "help",
                   "memoryview", "classmethod", "staticmethod", "type", "__builtins__"}
FORBIDDEN_ATTRS = {
    # frames, code objects, generators: the way out of any Python sandbox
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "gi_frame", "gi_code", "cr_frame",
    "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next", "co_code", "func_globals", "mro",
    # numpy file / foreign-memory access
    "load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt", "fromfile",
    "tofile", "memmap", "ctypeslib", "ctypes", "lib", "DataSource", "fromregex", "f2py", "testing",
    "distutils", "show_config", "dump", "dumps", "frombuffer", "format_parser",
}
MUTATORS = {"update", "clear", "pop", "popitem", "setdefault", "append", "extend", "insert",
            "remove", "sort", "reverse", "add", "discard", "fill", "put", "resize", "itemset",
            "setfield", "setflags"}
TASK_PROTECTED = {"evaluate", "dense_reward", "describe", "movable_goal_objects", "name"}


@dataclass
class StaticReport:
    ok: bool
    reason: str
    task_name: str = ""
    class_name: str = ""
    instruction: str = ""


class _Violation(Exception):
    def __init__(self, node: ast.AST | None, msg: str):
        line = getattr(node, "lineno", None)
        super().__init__(f"line {line}: {msg}" if line else msg)


def check_source(source: str, taken_names: set[str] = frozenset()) -> StaticReport:
    """Run every static rule; the first violation is the reason. ``taken_names`` are the tasks
    already registered (built-ins and the library): a new task may not reuse a name."""
    if len(source) > MAX_SOURCE_CHARS:
        return StaticReport(False, f"program is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return StaticReport(False, f"syntax error at line {err.lineno}: {err.msg}")
    except ValueError as err:  # e.g. null bytes
        return StaticReport(False, f"unparsable program: {err}")
    try:
        imported = _check_imports(tree)
        cls = _check_module_body(tree)
        name = _check_task_class(cls, imported)
        _check_nodes(tree, _aliases(tree, imported | _module_names(tree)))
    except _Violation as err:
        return StaticReport(False, str(err))
    if name in taken_names:
        return StaticReport(False, f"task name {name!r} is already registered (built-in or in the library)",
                            name, cls.name)
    return StaticReport(True, "", name, cls.name, _class_constant(cls, "instruction") or "")


def _check_imports(tree: ast.Module) -> set[str]:
    """Allowed imports only; returns the names they bind (these may never be assigned into)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name not in ALLOWED_IMPORT:
                    raise _Violation(node, f"import of {a.name!r} is not allowed (allowed: numpy, math, "
                                           "from envs.core import ..., from envs.registry import register_task)")
                bound.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module not in ALLOWED_FROM:
                raise _Violation(node, f"import from {'.' * node.level}{node.module or ''!s} is not allowed "
                                       f"(allowed: {', '.join(sorted(ALLOWED_FROM - {'__future__'}))})")
            for a in node.names:
                if a.name == "*":
                    raise _Violation(node, "star imports are not allowed; name what you use")
                if node.module == "envs.registry" and a.name not in REGISTRY_NAMES:
                    raise _Violation(node, f"only register_task may be imported from envs.registry, not {a.name!r}")
                if node.module == "__future__" and a.name != "annotations":
                    raise _Violation(node, f"from __future__ import {a.name} is not allowed")
                bound.add(a.asname or a.name)
    return bound


def _is_constant_expr(node: ast.AST) -> bool:
    """Literals, containers of literals, arithmetic on them, and names of other constants."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_constant_expr(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_constant_expr(k) for k in node.keys) and \
            all(_is_constant_expr(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return _is_constant_expr(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant_expr(node.left) and _is_constant_expr(node.right)
    if isinstance(node, ast.Name):
        return True  # another constant or an imported name (e.g. COLORS); assignment rules still apply
    if isinstance(node, ast.Attribute):  # math.pi, np.pi
        return isinstance(node.value, ast.Name)
    return False


def _check_module_body(tree: ast.Module) -> ast.ClassDef:
    classes = []
    for i, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # module docstring
        if isinstance(node, ast.ClassDef):
            classes.append(node)
            continue
        if isinstance(node, ast.FunctionDef):
            if node.decorator_list:
                raise _Violation(node, f"decorators on module-level function {node.name!r} are not allowed")
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if not all(isinstance(t, ast.Name) for t in targets):
                raise _Violation(node, "module level may only bind constants to plain names")
            if node.value is None or not _is_constant_expr(node.value):
                raise _Violation(node, "module-level code may only define constants (literals), the task "
                                       "class and helper functions; no calls or other side effects at import")
            continue
        raise _Violation(node, f"module-level {type(node).__name__} statement is not allowed: a task program "
                               "only defines constants, helper functions and the task class")
    if len(classes) != 1:
        raise _Violation(classes[1] if classes else None,
                         f"the program must define exactly one class (the task), found {len(classes)}")
    return classes[0]


def _check_task_class(cls: ast.ClassDef, imported: set[str]) -> str:
    if "Task" not in imported:
        raise _Violation(cls, "Task must be imported from envs.core")
    if not any(isinstance(b, ast.Name) and b.id == "Task" for b in cls.bases) or cls.keywords:
        raise _Violation(cls, f"class {cls.name} must subclass Task (from envs.core) and nothing else")
    if len(cls.bases) != 1:
        raise _Violation(cls, f"class {cls.name} must have Task as its only base")
    decos = cls.decorator_list
    if len(decos) != 1 or not (isinstance(decos[0], ast.Call) and isinstance(decos[0].func, ast.Name)
                               and decos[0].func.id == "register_task" and len(decos[0].args) == 1
                               and not decos[0].keywords and isinstance(decos[0].args[0], ast.Constant)
                               and isinstance(decos[0].args[0].value, str)):
        raise _Violation(cls, f'class {cls.name} needs exactly one decorator: @register_task("<task_name>") '
                              "with a literal name")
    name = decos[0].args[0].value
    if not NAME_RE.match(name):
        raise _Violation(cls, f"task name {name!r} must be 3-48 characters of [a-z0-9_], starting with a letter")
    hooks = set()
    for node in cls.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        if isinstance(node, ast.FunctionDef):
            if node.decorator_list:
                raise _Violation(node, f"decorators on method {node.name!r} are not allowed")
            if node.name in TASK_PROTECTED or node.name.startswith("__"):
                raise _Violation(node, f"method {node.name!r} may not be overridden: success, reward and the "
                                       "instruction derive from goals(); write build/goals/oracle_goals")
            hooks.add(node.name)
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if not isinstance(t, ast.Name):
                    raise _Violation(node, "class attributes must be plain names")
                if t.id in TASK_PROTECTED:
                    raise _Violation(node, f"class attribute {t.id!r} is set by the registry, not by the task")
            if node.value is not None and not (_is_constant_expr(node.value) or _is_features(node.value)):
                raise _Violation(node, "class attributes must be constants (the instruction template, "
                                       "max_episode_steps, features = frozenset({...}), ...)")
            continue
        raise _Violation(node, f"{type(node).__name__} statement in the class body is not allowed")
    missing = {"build", "goals"} - hooks
    if missing:
        raise _Violation(cls, f"class {cls.name} must define {' and '.join(sorted(missing))}")
    instruction = _class_constant(cls, "instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise _Violation(cls, "the class needs a non-empty instruction string")
    return name


def _is_features(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "frozenset"
            and not node.keywords and all(_is_constant_expr(a) for a in node.args))


def _class_constant(cls: ast.ClassDef, attr: str):
    for node in cls.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr for t in node.targets):
            return node.value.value if isinstance(node.value, ast.Constant) else None
    return None


def _module_names(tree: ast.Module) -> set[str]:
    """Names bound at module level (constants, functions, the class): shared state that methods
    must not assign into."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _aliases(tree: ast.Module, shared: set[str]) -> set[str]:
    """Grow ``shared`` with names that alias it (``c = COLORS``, ``self.r = REGIONS["left"]``), so
    mutating through the alias counts as mutating the original. ``self.x`` aliases are recorded
    as ``"self.x"``. Calls (``dict(COLORS)``, ``np.array(...)``) make copies and end the chain."""
    shared = set(shared)
    while True:
        grown = set(shared)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                if _chain_key(node.value, shared) is None:
                    continue
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in _flatten(targets):
                    if isinstance(t, ast.Name):
                        grown.add(t.id)
                    elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        grown.add(f"self.{t.attr}")
        if grown == shared:
            return shared
        shared = grown


def _chain_key(node: ast.AST, shared: set[str]) -> str | None:
    """The shared name a pure attribute/subscript chain starts from, else None."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            key = f"self.{node.attr}"
            return key if key in shared else None
        node = node.value
    return node.id if isinstance(node, ast.Name) and node.id in shared else None


def _check_nodes(tree: ast.Module, shared: set[str]) -> None:
    # in reading order (innermost first on a line), so the reason names the first offence
    nodes = sorted(ast.walk(tree), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0),
                                                  getattr(n, "end_lineno", 0), getattr(n, "end_col_offset", 0)))
    for node in nodes:
        if isinstance(node, ast.Name):
            if node.id.startswith("__") or node.id in FORBIDDEN_CALLS:
                raise _Violation(node, f"use of {node.id!r} is not allowed in a task program")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("__") or node.attr in FORBIDDEN_ATTRS:
                raise _Violation(node, f"access to attribute {node.attr!r} is not allowed in a task program")
            if node.attr in MUTATORS and _chain_key(node.value, shared) is not None:
                raise _Violation(node, f"{_chain_key(node.value, shared)}.{node.attr}(...) would change "
                                       "shared state; copy it first (dict(...), list(...), np.array(...))")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "__" in node.value:
            raise _Violation(node, "strings may not contain '__' (format-string attribute tricks)")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            raise _Violation(node, f"{type(node).__name__.lower()} statements are not allowed")
        elif isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)):
            raise _Violation(node, "async code is not allowed in a task program")
        elif isinstance(node, ast.ClassDef) and node is not tree.body and node not in tree.body:
            raise _Violation(node, "nested classes are not allowed")
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("__"):
            raise _Violation(node, f"dunder function {node.name!r} is not allowed")
        elif isinstance(node, ast.arg) and node.arg.startswith("__"):
            raise _Violation(node, f"argument name {node.arg!r} is not allowed")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in _flatten(targets):
                if isinstance(t, (ast.Attribute, ast.Subscript)):
                    key = _chain_key(t.value, shared)
                    if key is not None:
                        raise _Violation(node, f"assignment into {key!r} (imported, module-level or an alias "
                                               "of them) would change shared state")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "register_task":
            if not _is_class_decorator(tree, node):
                raise _Violation(node, "register_task may only be used as the task class's decorator")


def _flatten(targets):
    for t in targets:
        if isinstance(t, (ast.Tuple, ast.List)):
            yield from _flatten(t.elts)
        elif isinstance(t, ast.Starred):
            yield t.value
        else:
            yield t


def _is_class_decorator(tree: ast.Module, call: ast.Call) -> bool:
    return any(isinstance(n, ast.ClassDef) and call in n.decorator_list for n in tree.body)
