"""The benchmark page is a rendering of the committed result files, and the bench's layers stay apart.

docs/benchmarks.md's table is regenerated from bench/results/*.json (``python -m bench.run
--report-only``); these tests render it again into a copy of the page whose table was emptied and
compare the two, so an edit to the row builders that changes a published figure shows up here.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
# the modules that install, run and render; workers (ours and the peers') must not need them
DRIVERS = {"bench.run", "bench.runner", "bench.report", "bench.peer_venvs"}


def _sections(text: str) -> dict[str, str]:
    """``{heading line: its text}`` for each markdown heading outside code fences ('' = preamble)."""
    out, head, fenced = {"": []}, "", False
    for line in text.splitlines(keepends=True):
        fenced ^= line.startswith("```")
        if not fenced and re.match(r"#{1,6} ", line):
            head = line.strip()
            assert head not in out, f"heading {head!r} twice in docs/benchmarks.md"
            out[head] = []
        out[head].append(line)
    return {h: "".join(lines) for h, lines in out.items()}


def _table_rows(text: str) -> list[str]:
    table = text.split(report.TABLE_START, 1)[1].split(report.TABLE_END, 1)[0]
    return [ln for ln in table.splitlines() if ln.startswith("| ")]


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> tuple[str, str]:
    """(the committed page, the page rendered again from the committed results)."""
    committed = report.DOC.read_text()
    pre, rest = committed.split(report.TABLE_START, 1)
    blank = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    blank.write_text(pre + report.TABLE_START + "\n" + report.TABLE_END + rest.split(report.TABLE_END, 1)[1])
    report.write_report(report.load_results(BENCH / "results"), doc=blank)
    return committed, blank.read_text()


def test_rendered_page_matches_docs_section_by_section(pages):
    committed, rendered = pages
    want, got = _sections(committed), _sections(rendered)
    assert list(got) == list(want)
    for head in want:
        if head == "## Results":  # the table: row by row, so a failure names the benchmark
            for w, g in zip(_table_rows(want[head]), _table_rows(got[head]), strict=True):
                assert g == w, f"table row {w.split(' | ')[0]!r} differs"
        assert got[head] == want[head], f"section {head or '(before the first heading)'!r} differs"
    assert rendered == committed


def test_every_result_file_has_a_row_builder():
    files = {p.stem for p in (BENCH / "results").glob("*.json")}
    assert files, "no committed results"
    assert files <= set(report.ROW_BUILDERS), f"no row builder for {sorted(files - set(report.ROW_BUILDERS))}"


def _imports(path: Path) -> list[ast.stmt]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_common_imports_only_the_standard_library():
    """Peer venvs (ManiSkill, robosuite, LeRobot) import bench.common without roboforge's deps."""
    for node in _imports(BENCH / "common.py"):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or "."]
        for name in names:
            assert getattr(node, "level", 0) == 0 and name.split(".")[0] in sys.stdlib_module_names, (
                f"bench/common.py:{node.lineno} imports {name}, not the standard library")


def test_workers_import_no_driver_module():
    workers = [p for p in [*BENCH.glob("*.py"), *BENCH.glob("peers/*.py")]
               if ".".join(p.relative_to(ROOT).with_suffix("").parts) not in DRIVERS]
    assert any(p.name == "maniskill_gpu.py" for p in workers)
    for path in workers:
        for node in _imports(path):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)  # from bench import run, too
                     else [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)])
            for name in names:
                assert name not in DRIVERS, f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
