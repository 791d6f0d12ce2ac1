"""Task generation as a user meets it: the procedural generator writes task programs, `admit` and
`generate` validate them into a library, the library loads in a fresh process and its tasks pass
the same conformance suite as the built-ins. Plus the library's crash safety."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import envs
from envs.library import LibraryError, load_library
from envs.static_check import check_source
from generation import cli
from generation import isolation as walls
from generation.catalogue import procedural_space
from generation.codegen_procedural import render
from generation.curriculum import curriculum
from generation.embedding import NoveltyIndex
from generation.exploration import Explorer, explore
from generation.from_task import draft_from_task
from generation.library import Library

REPO = Path(__file__).resolve().parents[1]
BUILTIN = REPO / "envs" / "tasks"


def _renamed(builtin: str, new: str) -> str:
    return (BUILTIN / f"{builtin}.py").read_text().replace(f'"{builtin}"', f'"{new}"')


def test_procedural_space_is_wide_and_every_program_passes_the_static_gate():
    space = procedural_space()
    assert len(space) >= 150
    assert len({d.name for d in space}) == len(space)
    preds = {g.pred for d in space for g in d.goals}
    assert {"On", "InZone", "Near", "AtPose", "Bridge", "Pushed"} <= preds
    kinds = {o.kind for d in space for o in d.objects}
    assert {"block", "cylinder", "zone", "bowl"} <= kinds
    taken = set(envs.list_tasks())
    for d in space:
        report = check_source(render(d), taken)
        assert report.ok, (d.name, report.reason)
        assert report.task_name == d.name


def test_curricula_cut_a_target_into_stepping_stones():
    space_by_name = {d.name: d for d in procedural_space()}
    target = space_by_name["tower_graded_cyl_top"]
    steps = curriculum(target)
    assert [len(p.draft.goals) for p in steps] == [1, 1, 2]
    assert steps[-1].name == "tower_graded_cyl_top"
    assert len(steps[0].draft.objects) == 2 and "{" in steps[0].instruction
    # a registered target: shared colours stay shared (colour as a role), stones pass the static gate
    stones = curriculum(draft_from_task("sort_by_color"))[:-1]
    # "block 0 in zone A" and "block 1 in zone A" are one exercise: kept once, then growing prefixes
    assert [len(p.draft.goals) for p in stones] == [1, 2, 3]
    first = stones[0].draft
    assert first.obj("block_0").color == first.obj("zone_a").color
    assert all(check_source(p.source()).ok for p in stones)
    # "move a to where b started" does not stand alone (b is still there): a swap is its own first step
    assert [p.name for p in curriculum(space_by_name["swap_blo_with_cyl"])] == ["swap_blo_with_cyl"]


def test_exploration_tries_the_least_familiar_idea_first():
    space = {d.name: d for d in procedural_space()}
    pool = [space["stack_block_on_block"], space["bowl_and_zone_blo"], space["stack_graded_block_on_block"]]
    order = [p.name for p in explore(pool, set(), NoveltyIndex.with_builtins(), np.random.default_rng(0))]
    assert order[0] == "bowl_and_zone_blo" and order[-1] == "stack_block_on_block"


def test_exploration_guesses_what_comes_next_when_each_candidate_is_admitted():
    """What a parallel caller validates ahead (Explorer.upcoming) is what the serial loop takes
    next while candidates are admitted, so gates run ahead are not wasted."""
    space = procedural_space()
    index = NoveltyIndex.with_builtins()
    explorer = Explorer(space[::40], set(), index, np.random.default_rng(0))
    stream = iter(explorer)
    first = next(stream)
    guessed = [p.name for p in explorer.upcoming(4)]
    taken, current = [], first
    for _ in range(4):
        index.add(current.name, explorer.vecs[explorer.last])   # admitted
        current = next(stream)
        taken.append(current.name)
    assert guessed == taken
    # the guess is made before the current candidate is admitted, and still accounts for it
    assert first.name not in guessed


def test_admission_is_atomic_and_a_crash_leaves_no_half_task(tmp_path, monkeypatch):
    lib = Library(tmp_path / "lib")
    lib.admit("tower_a", _renamed("stack_tower", "tower_a"), {"generator": "test"})
    real_replace = os.replace

    def crash_on(fragment):
        def replace(src, dst):
            if fragment in str(dst):
                raise OSError("simulated crash")
            return real_replace(src, dst)
        return replace

    for fragment in ("meta/tower_b.json", "manifest.json"):  # die after the task file / after both files
        monkeypatch.setattr(os, "replace", crash_on(fragment))
        with pytest.raises(OSError, match="simulated crash"):
            lib.admit("tower_b", _renamed("stack_tower", "tower_b"), {"generator": "test"})
        monkeypatch.setattr(os, "replace", real_replace)
        assert lib.names() == ["tower_a"]
        assert "tasks/tower_b.py" in lib.orphans()
    assert load_library(lib.root) == ["tower_a"]
    lib.admit("tower_c", _renamed("stack_tower", "tower_c"), {"generator": "test"})  # sweeps the debris
    assert lib.orphans() == [] and lib.names() == ["tower_a", "tower_c"]
    assert not list(lib.root.rglob(".*.tmp-*"))


def test_a_library_file_edited_after_admission_is_skipped_named_and_reported(tmp_path, caplog, capsys):
    from generation.report import build_report, format_report

    lib = Library(tmp_path / "lib")
    path = lib.admit("tower_edit", _renamed("stack_tower", "tower_edit"), {"generator": "test"})
    lib.admit("tower_ok", _renamed("stack_tower", "tower_ok"), {"generator": "test"})
    path.write_text(path.read_text() + "\nimport os\n")
    with caplog.at_level("WARNING", logger="envs.library"):
        assert load_library(lib.root) == ["tower_ok"]  # the rest of the library still loads
    assert "skipping library task 'tower_edit'" in caplog.text and "does not match the manifest" in caplog.text
    assert list(lib.damaged()) == ["tower_edit"] and lib.usable_names() == ["tower_ok"]
    assert "DAMAGED tower_edit" in format_report(build_report(lib))
    # admitting it again replaces the damaged entry (the CLI re-gates it first; see the admit test)
    path.write_text(_renamed("stack_tower", "tower_edit") + "# reviewed\n")
    lib.admit("tower_edit", path.read_text(), {"generator": "test"})
    assert lib.damaged() == {} and load_library(lib.root) == ["tower_edit", "tower_ok"]
    with pytest.raises(LibraryError, match="already in the library"):  # an intact task is not replaced
        lib.admit("tower_ok", _renamed("stack_tower", "tower_ok"), {"generator": "test"})


@pytest.mark.parametrize("damage,expected", [
    (lambda root: (root / "manifest.json").write_text("{not json"), "manifest.json is unreadable"),
    (lambda root: (root / "manifest.json").write_text("[]"), "is not a roboforge library manifest"),
    (lambda root: (root / "manifest.json").write_text(
        '{"version": 1, "tasks": {"tower_x": {"file": "tasks/tower_x.py", "meta": "meta/tower_x.json"}}}'),
     "the entry for task 'tower_x' lacks sha256"),
])
def test_a_bad_manifest_is_one_line_from_every_command(tmp_path, capsys, damage, expected):
    lib = Library(tmp_path / "lib")
    lib.admit("tower_x", _renamed("stack_tower", "tower_x"), {"generator": "test"})
    damage(lib.root)
    with pytest.raises(LibraryError, match=expected):
        load_library(lib.root)
    task = tmp_path / "t.py"
    task.write_text(_renamed("stack_tower", "tower_y"))
    for argv in (["admit", str(task), "--library", str(lib.root)], ["report", "--library", str(lib.root)],
                 ["generate", "--count", "1", "--library", str(lib.root), "--no-progress"]):
        assert cli.main(argv) == cli.EXIT_USAGE, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err, (argv, err)


def test_a_deleted_task_file_is_skipped_and_admit_refuses_a_directory(tmp_path, capsys):
    lib = Library(tmp_path / "lib")
    lib.admit("tower_gone", _renamed("stack_tower", "tower_gone"), {"generator": "test"})
    (lib.root / "tasks" / "tower_gone.py").unlink()
    assert load_library(lib.root) == [] and "is missing (deleted after admission?)" in lib.damaged()["tower_gone"]
    assert cli.main(["admit", str(lib.root), "--library", str(lib.root)]) == cli.EXIT_USAGE
    assert "is a directory; pass one task file" in capsys.readouterr().err


def test_a_folder_that_is_not_a_library_is_not_admitted_into(tmp_path):
    mine = tmp_path / "mine"
    (mine / "tasks").mkdir(parents=True)
    (mine / "tasks" / "notes.py").write_text("# mine")
    (mine / "thesis.tex").write_text("mine")
    with pytest.raises(LibraryError, match="not a task library \\(no manifest.json\\) and it holds thesis.tex"):
        Library(mine).admit("tower_z", _renamed("stack_tower", "tower_z"), {"generator": "test"})
    assert (mine / "tasks" / "notes.py").read_text() == "# mine" and not (mine / "manifest.json").exists()


def test_admit_command_exit_codes_and_json(tmp_path, capsys):
    lib = tmp_path / "lib"
    task = tmp_path / "bridge.py"
    task.write_text(render({d.name: d for d in procedural_space()}["bridge_wide_block_over_cyls"]))
    assert cli.main(["admit", str(task), "--library", str(lib), "--json"]) == cli.EXIT_ADMITTED
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["admitted"] is True and out["gate"] == "admitted" and out["oracle_success"] >= 0.8
    meta = Library(lib).meta("bridge_wide_block_over_cyls")
    assert len(set(meta["oracle_seeds"])) == 10 and meta["gates"]["novelty"]["nearest"]
    assert meta["source_sha256"] and meta["admitted_at"] and meta["generator"] == "manual"
    # the same program again: its name is taken now
    assert cli.main(["admit", str(task), "--library", str(lib), "--json"]) == cli.EXIT_REJECTED
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["gate"] == "static" and "already registered" in out["reason"]
    assert cli.main(["admit", str(tmp_path / "missing.py"), "--library", str(lib)]) == cli.EXIT_USAGE
    with pytest.raises(SystemExit) as exit_:
        cli.main(["admit", str(task)])  # no --library
    assert exit_.value.code == cli.EXIT_USAGE


def test_old_command_name_is_an_alias_and_envs_does_not_import_the_pipeline(tmp_path):
    lib = Library(tmp_path / "lib")
    lib.admit("tower_alias", _renamed("stack_tower", "tower_alias"), {"generator": "test"})
    reports = []
    for module in ("generation", "envs.generation"):
        proc = subprocess.run([sys.executable, "-m", module, "report", "--library", str(lib.root), "--json"],
                              capture_output=True, text=True, timeout=120, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        reports.append(json.loads(proc.stdout))
    assert reports[0] == reports[1] and reports[0]["admitted"] == 1
    probe = ("import sys, envs, envs.generation; envs.load_library(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('generation', 'planners', 'llm')))")
    proc = subprocess.run([sys.executable, "-c", probe, str(lib.root)], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", (proc.stdout, proc.stderr[-2000:])


CONFORMANCE_IN_FRESH_PROCESS = """
import importlib.util, sys, warnings
warnings.filterwarnings("ignore")
import envs
names = envs.load_library(sys.argv[1])
spec = importlib.util.spec_from_file_location("conformance", sys.argv[2])
conformance = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conformance)
for name in names:
    conformance.test_task_conformance(name)   # the built-ins' own suite, unchanged
print("CONFORMANT", " ".join(names))
"""


def test_generated_tasks_pass_conformance_in_a_fresh_process(tmp_path, capsys):
    lib = tmp_path / "lib"
    code = cli.main(["generate", "--generator", "procedural", "--mode", "goal", "--target", "tower_graded_cyl_top",
                     "--count", "3", "--library", str(lib), "--json", "--no-progress"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["plan"][-1] == "tower_graded_cyl_top"
    assert summary["n_admitted"] >= 2, summary
    proc = subprocess.run([sys.executable, "-c", CONFORMANCE_IN_FRESH_PROCESS, str(lib),
                           str(REPO / "tests" / "test_conformance.py")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[1:] == sorted(summary["admitted"])
    # the report reads the same library
    assert cli.main(["report", "--library", str(lib), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["admitted"] == summary["n_admitted"] and report["funnel"]["static"]["reached"] == 3
    assert report["sandbox_isolation"] == {walls.resolve("auto"): 3}  # which walls each candidate ran behind
    assert 0.0 < report["diversity_mean_pairwise_cosine_distance"] < 1.0
