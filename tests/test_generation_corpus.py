"""Hostile and broken task programs (tests/generation_corpus/) are rejected at the right gate,
with a reason, and touch nothing outside the sandbox: a sentinel dir and the library stay
byte-for-byte the same, and no sandbox scratch dir is left behind.

The top-level programs go through the real `admit` command (in-process, so the embedding model
loads once); those under sandbox_walls/ run with the static gate off, to show the sandbox
process alone contains what the static gate normally stops first. Every program runs behind both
sandbox isolations (bubblewrap, and the rlimits + unshare fallback); the bwrap runs are skipped,
with the reason, where bwrap cannot start. Under bwrap a program also cannot read the user's or
the project's files.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import socket
import tempfile
from pathlib import Path

import pytest

from generation import cli
from generation import isolation as walls
from generation.embedding import NoveltyIndex
from generation.gates import GateConfig, validate
from generation.library import Library

CORPUS = Path(__file__).parent / "generation_corpus"
SENTINEL = Path("/tmp/roboforge_sentinel")
LISTEN_PORT = 47391  # network_out.py tries this port on 127.0.0.1


def _header(path: Path) -> dict:
    head = {}
    for line in path.read_text().splitlines():
        m = re.match(r"#\s*(expect|reason|static|limits):\s*(.*)", line)
        if m:
            head[m.group(1)] = m.group(2).strip()
        elif line.startswith('"""'):
            break
    return head


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) with its sha256."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("roboforge-sandbox-*")}


@pytest.fixture(params=["fallback", "bwrap"])
def isolation(request):
    """The sandbox isolation a test runs under (skipped, with the reason, where bwrap cannot start)."""
    if request.param == "bwrap" and walls.bwrap_problem():
        pytest.skip(walls.bwrap_problem())
    return request.param


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A library with one admitted task, so 'unchanged' covers a non-empty manifest too."""
    root = tmp_path_factory.mktemp("corpus_lib")
    src = (Path(__file__).parents[1] / "envs" / "tasks" / "stack_tower.py").read_text()
    src = src.replace('"stack_tower"', '"tower_kept_in_library"')
    Library(root).admit("tower_kept_in_library", src, {"generator": "test", "instruction": "build a tower"})
    return root


@pytest.fixture(autouse=True)
def sentinel():
    SENTINEL.mkdir(exist_ok=True)
    (SENTINEL / "keep.txt").write_text("must survive")
    for p in SENTINEL.iterdir():
        if p.name != "keep.txt":
            p.unlink()
    before = _snapshot(SENTINEL)
    yield
    assert _snapshot(SENTINEL) == before, "a corpus program changed the sentinel dir"


def _limits_args(head: dict) -> list[str]:
    flags = {"cpu": "--sandbox-cpu", "wall": "--sandbox-wall", "mem": "--sandbox-memory"}
    out = []
    for part in head.get("limits", "").split():
        k, v = part.split("=")
        out += [flags[k], v]
    return out


def test_corpus_is_large_and_covers_every_gate():
    heads = [_header(p) for p in CORPUS.rglob("*.py")]
    assert len(heads) >= 20
    assert {h["expect"] for h in heads} == {"static", "runtime", "oracle", "novelty"}


@pytest.mark.parametrize("program", sorted(CORPUS.glob("*.py")), ids=lambda p: p.stem)
def test_admit_rejects_at_the_right_gate(program, library, isolation, capsys):
    head = _header(program)
    before, scratch_before = _snapshot(library), _scratch_dirs()
    argv = ["admit", str(program), "--library", str(library), "--json", "--sandbox-isolation", isolation,
            *_limits_args(head)]
    code = cli.main(argv)
    verdict = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == cli.EXIT_REJECTED, verdict
    assert verdict["admitted"] is False
    assert verdict["gate"] == head["expect"], verdict
    assert verdict["isolation"] == (None if head["expect"] == "static" else walls.resolve(isolation)), verdict
    assert re.search(head["reason"], verdict["reason"], re.I), verdict["reason"]
    assert _snapshot(library) == before, "a rejected program changed the library"
    assert _scratch_dirs() <= scratch_before, "a sandbox scratch dir was left behind"


@pytest.mark.parametrize("program", sorted((CORPUS / "sandbox_walls").glob("*.py")), ids=lambda p: p.stem)
def test_sandbox_contains_programs_without_the_static_gate(program, isolation):
    head = _header(program)
    assert head.get("static") == "skip"
    config = GateConfig(skip_static=True, isolation=isolation)
    for part in head.get("limits", "").split():
        k, v = part.split("=")
        field = {"cpu": "cpu_s", "wall": "wall_s"}[k]
        config.runtime_limits = dataclasses.replace(config.runtime_limits, **{field: float(v)})
    hits = []
    with socket.socket() as server:  # a local port the program tries: it must never be reached
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(("127.0.0.1", LISTEN_PORT))
            server.listen(1)
            server.settimeout(0.01)
        except OSError:
            server = None
        verdict = validate(program.read_text(), taken_names=set(), novelty=NoveltyIndex(), config=config)
        if server is not None:
            try:
                hits.append(server.accept())
            except (TimeoutError, socket.timeout):
                pass
    assert not hits, "the sandboxed program reached a port on the host"
    assert not verdict.admitted
    assert verdict.gate == head["expect"], verdict.summary()
    assert re.search(head["reason"], verdict.reason, re.I), verdict.reason
    assert verdict.isolation == walls.resolve(isolation)


def test_without_bwrap_auto_falls_back_and_asking_for_bwrap_is_a_usage_error(monkeypatch, tmp_path, capsys):
    real_which = walls.shutil.which
    monkeypatch.setattr(walls.shutil, "which", lambda name: None if name == "bwrap" else real_which(name))
    walls.bwrap_problem.cache_clear()
    try:
        assert walls.resolve("auto") in (walls.UNSHARE, walls.AUDIT_ONLY)
        task = tmp_path / "task.py"
        task.write_text("# not even read: the isolation is checked first\n")
        code = cli.main(["admit", str(task), "--library", str(tmp_path / "lib"), "--sandbox-isolation", "bwrap"])
        assert code == cli.EXIT_USAGE
        assert "isolation=bwrap is unavailable: bwrap is not installed" in capsys.readouterr().err
    finally:
        walls.bwrap_problem.cache_clear()


PEEK = """
from envs.core import On, Task
from envs.registry import register_task


@register_task("peek_outside")
class PeekOutside(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        seen = []
        for path in PATHS:
            try:
                with open(path) as f:
                    seen.append("READ " + f.read(20))
            except OSError as err:
                seen.append("HIDDEN " + type(err).__name__)
        raise RuntimeError(" | ".join(seen))

    def goals(self):
        return [On(self.top, self.base)]
"""


@pytest.mark.parametrize("where", ["home", "project"])
def test_bwrap_hides_the_users_and_the_projects_files(where, tmp_path):
    """A program past the static gate tries to read a file in the user's home directory or in the
    project checkout: the fallback lets it (reads are not walled off there, which is also what
    shows the probe works), bwrap shows it an empty directory."""
    problem = walls.bwrap_problem()
    if problem:
        pytest.skip(problem)
    if where == "home":
        secret = tempfile.NamedTemporaryFile("w", dir=Path.home(), prefix=".roboforge-secret-", suffix=".txt",
                                             delete=False)
        secret.write("home secret")
        secret.close()
        path = Path(secret.name)
    else:
        path = Path(__file__).resolve().parents[1] / "README.md"
    try:
        source = PEEK.replace("PATHS", repr([str(path)]))
        reasons = {}
        for iso in ("fallback", "bwrap"):
            verdict = validate(source, taken_names=set(), novelty=NoveltyIndex(),
                               config=GateConfig(skip_static=True, isolation=iso))
            assert verdict.gate == "runtime" and "RuntimeError" in verdict.reason, verdict.reason
            reasons[iso] = verdict.reason
    finally:
        if where == "home":
            path.unlink()
    assert "READ " in reasons["fallback"], reasons
    assert "HIDDEN FileNotFoundError" in reasons["bwrap"] and "READ" not in reasons["bwrap"], reasons
