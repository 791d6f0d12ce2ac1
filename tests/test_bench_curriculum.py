"""bench/curriculum.py: what a run contributes, the per-arm summary and plot (target 1), and the
closed loop's refill record (target 3), from run directories as train.py writes them."""
import json

import pytest

from bench import curriculum as bc


def fake_run(root, name, per_task, over_time, refills=(), history_success=None):
    run = root / name
    (run / "curriculum").mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "per_task": {t: {"success_rate": s} for t, s in per_task.items()},
        "timings": {"demos_s": 10.0, "train_s": 50.0, "eval_s": 0.5},
        "curriculum": {"num_mastered": over_time, "boring": []}}))
    (run / "curriculum" / "state.json").write_text(json.dumps({
        "lp": {"tasks": list(per_task)}, "refills": list(refills),
        "history": [{"success": history_success or per_task}]}))
    return run


def test_runs_are_summarized_and_plotted_per_arm(tmp_path):
    runs = {"uniform": [bc.run_result(fake_run(tmp_path, "u0", {"a": 0.6, "b": 0.1}, [[100, 0], [200, 1]])),
                        bc.run_result(fake_run(tmp_path, "u1", {"a": 0.2, "b": 0.1}, [[100, 0], [200, 0]]))],
            "omni": [bc.run_result(fake_run(tmp_path, "o0", {"a": 0.9, "b": 0.5}, [[100, 1], [200, 2]]))]}
    assert runs["uniform"][0]["mastered"] == ["a"] and runs["uniform"][0]["wall_s"] == 60.5
    s = bc.summarize(runs)
    assert s["uniform"] == {"mean": 0.5, "std": 0.5, "min": 0, "max": 1, "per_seed": [1, 0], "pool": 2,
                            "wall_s_mean": 60.5}
    assert s["omni"]["mean"] == 2.0            # success 0.5 counts as mastered (>= 0.5)
    assert "| omni | 2.00 ± 0.00 | [2] | 2 | 1.0 min |" in bc.table(s)
    bc.plot(runs, tmp_path / "p.png", "t")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_arms_map_to_train_py_overrides():
    assert bc.arm_overrides("lp", None) == ["curriculum=lp"]
    assert bc.arm_overrides("omni_hilp", "runs/hilp")[1:] == ["curriculum.novelty=hilp",
                                                              "curriculum.hilp_checkpoint=runs/hilp"]
    with pytest.raises(ValueError, match="arm='sac' is invalid; allowed: uniform, lp, omni, omni_hilp"):
        bc.arm_overrides("sac", None)
    with pytest.raises(ValueError, match="omni_hilp needs a HILP checkpoint"):
        bc.arm_overrides("omni_hilp", None)


def test_refill_report_names_generated_tasks_gates_and_mastery(tmp_path):
    lib = tmp_path / "lib"
    (lib / "meta").mkdir(parents=True)
    (lib / "meta" / "gen_a.json").write_text(json.dumps({
        "instruction": "move the cylinder", "oracle_success": 1.0,
        "gates": {"static": {"passed": True}, "oracle": {"passed": True}, "novelty": {"passed": True}}}))
    refills = [{"step": 500, "target": "b", "live": ["a"], "admitted": ["gen_a", "gen_b"], "joined": ["gen_a"],
                "boring": ["gen_b"], "library": str(lib)},
               {"step": 750, "target": "b", "live": [], "admitted": [], "joined": [], "boring": [],
                "library": str(lib), "error": "RuntimeError: boom"}]
    run = fake_run(tmp_path, "loop", {"a": 0.8, "b": 0.0, "gen_a": 0.6}, [[250, 0]], refills)
    report = bc.refill_report(run)
    assert [r["step"] for r in report["refills"]] == [500, 750] and report["refills"][1]["error"] == "RuntimeError: boom"
    a, b = report["generated"]
    assert a["task"] == "gen_a" and a["joined"] and a["mastered"] and a["gates"]["oracle"] == "passed"
    assert b["boring"] and not b["mastered"] and b["final_success"] is None and b["gates"] == {}
    text = bc.refill_table(report)
    assert "| 500 | b | gen_a | static passed, oracle passed, novelty passed | yes | 0.60 | yes |" in text
    assert "| 500 | b | gen_b | (no metadata) | boring | - | no |" in text
