"""The curriculum benchmark (issue 17, measured targets 1 and 3).

Target 1, ``run``: the same pool, budget and learner (the multitask diffusion policy on ``slots``)
under each curriculum arm, over seeds; counts the tasks mastered (success >= 0.5 on the final
evaluation's unseen seeds) at the end, and over time from the curriculum's own evaluations.

    arms: uniform | lp | omni | omni_hilp (= omni + curriculum.novelty=hilp)

    python -m bench.curriculum run --env builtin --library LIB --seeds 0 1 2 --steps 6000
    python -m bench.curriculum run --tiny            # a smoke run (outputs/bench/curriculum/tiny)

Each run is a ``train.py`` process in ``<runs>/<arm>_seed<s>``: a finished run (metrics.json) is
read, not rerun; a killed one resumes from its checkpoint. ``omni_hilp`` needs a HILP checkpoint
(``--hilp-checkpoint``); without one the bench trains one on the pool first (``policy=hilp``,
``<runs>/hilp``), shared by every seed. Writes ``<out>`` (JSON) and ``<out>.png`` (tasks mastered
over time, per arm: the mean over seeds, the band min..max).

Target 3, ``refills RUN_DIR``: the closed loop's record: every refill (step, target, the tasks the
generator admitted, their gates, joined or judged boring) and whether the learner mastered each
generated task at the end.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUNS = ROOT / "outputs" / "bench" / "curriculum"
RESULTS = ROOT / "bench" / "results"
ARMS = ("uniform", "lp", "omni", "omni_hilp")
MASTERED = 0.5   # success on unseen seeds from which a task counts as mastered (the definition)

FULL = dict(env="builtin", library=None, seeds=[0, 1, 2], steps=6000, demos=50, batch=128, slice_steps=500,
            eval_every=2, eval_episodes=10, final_episodes=20, hilp_steps=3000,
            policy=[])
TINY = dict(env="[reach_target,place_in_zone]", library=None, seeds=[0], steps=4, demos=2, batch=8, slice_steps=2,
            eval_every=1, eval_episodes=1, final_episodes=1, hilp_steps=4,
            policy=["policy.down_dims=[16,32]", "policy.n_groups=4", "policy.diffusion_step_embed_dim=16",
                    "policy.horizon=8", "policy.n_action_steps=4", "policy.num_inference_steps=2",
                    "eval.max_episode_steps=10"])


def arm_overrides(arm: str, hilp_checkpoint: str | None) -> list[str]:
    """``train.py`` overrides of one arm."""
    if arm not in ARMS:
        raise ValueError(f"arm={arm!r} is invalid; allowed: {', '.join(ARMS)}")
    if arm == "omni_hilp":
        if not hilp_checkpoint:
            raise ValueError("arm=omni_hilp needs a HILP checkpoint (--hilp-checkpoint, or let the bench train one)")
        return ["curriculum=omni", "curriculum.novelty=hilp", f"curriculum.hilp_checkpoint={hilp_checkpoint}"]
    return [f"curriculum={arm}"]


def common_overrides(cfg: dict, seed: int) -> list[str]:
    return [f"env={cfg['env']}", *([f"library={cfg['library']}"] if cfg["library"] else []), "obs_mode=slots",
            f"seed={seed}", f"data.num_demos={cfg['demos']}", f"train.steps={cfg['steps']}",
            f"train.batch_size={cfg['batch']}", f"train.checkpoint_every={cfg['slice_steps']}",
            "train.num_threads=1", f"curriculum.slice_steps={cfg['slice_steps']}",
            f"curriculum.eval_every={cfg['eval_every']}", f"curriculum.eval_episodes={cfg['eval_episodes']}",
            f"curriculum.random_episodes={cfg['eval_episodes']}", f"eval.episodes={cfg['final_episodes']}",
            "eval.num_videos=0", "progress=false", *cfg["policy"]]


def train_py(overrides: list[str], run_dir: Path, log_path: Path) -> None:
    """One ``train.py`` run into ``run_dir`` (resumed when a checkpoint is there); its output to ``log_path``."""
    resume = [f"resume={run_dir}"] if (run_dir / "checkpoints").exists() else []
    cmd = [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}", *resume]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        done = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"train.py failed (exit {done.returncode}) in {run_dir}; see {log_path}")


def run_result(run_dir: Path) -> dict:
    """What one finished run contributes: tasks mastered at the end (final evaluation, unseen
    seeds) and over time (the curriculum's evaluations), the pool size and the wall time."""
    m = json.loads((run_dir / "metrics.json").read_text())
    per_task = {t: p["success_rate"] for t, p in m["per_task"].items()}
    cur = m.get("curriculum") or {}
    return {"run_dir": str(run_dir), "pool": len(per_task), "per_task": per_task,
            "mastered": sorted(t for t, s in per_task.items() if s >= MASTERED),
            "num_mastered": sum(s >= MASTERED for s in per_task.values()),
            "over_time": cur.get("num_mastered", []), "boring": cur.get("boring", []),
            "wall_s": round(sum(v for k, v in m.get("timings", {}).items() if k.endswith("_s")), 1)}


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Per arm: the mean, spread and per-seed numbers of tasks mastered, and the mean wall time."""
    out = {}
    for arm, rows in runs.items():
        n = [r["num_mastered"] for r in rows]
        out[arm] = {"mean": round(float(np.mean(n)), 2), "std": round(float(np.std(n)), 2), "min": min(n),
                    "max": max(n), "per_seed": n, "pool": rows[0]["pool"],
                    "wall_s_mean": round(float(np.mean([r["wall_s"] for r in rows])), 1)}
    return out


def plot(runs: dict[str, list[dict]], path: Path, title: str) -> None:
    """Tasks mastered (the curriculum's evaluations) against training steps, one line per arm
    (mean over seeds), the band from the lowest to the highest seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, rows in runs.items():
        curves = [dict((int(s), n) for s, n in r["over_time"]) for r in rows if r["over_time"]]
        if not curves:
            continue
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        values = np.array([[c[s] for s in steps] for c in curves], dtype=float)
        line, = ax.plot(steps, values.mean(0), marker="o", label=f"{arm} (n={len(curves)})")
        ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"tasks mastered (success >= {MASTERED})")
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def ensure_hilp(cfg: dict, runs_dir: Path) -> str:
    """A HILP checkpoint trained on the pool's demos (``policy=hilp``), trained once per bench dir."""
    run_dir = runs_dir / "hilp"
    if not (run_dir / "metrics.json").exists():
        train_py([f"env={cfg['env']}", *([f"library={cfg['library']}"] if cfg["library"] else []), "policy=hilp",
                  "obs_mode=slots", f"data.num_demos={cfg['demos']}", "policy.explore_episodes=0",
                  f"policy.steps={cfg['hilp_steps']}", "eval.episodes=2", "eval.num_videos=0", "train.num_threads=1",
                  "progress=false"], run_dir, runs_dir / "hilp.log")
    return str(run_dir)


def run(args) -> dict:
    from bench.common import load, machine

    cfg = dict(TINY if args.tiny else FULL)
    cfg.update({k: v for k, v in vars(args).items() if k in FULL and v is not None})
    runs_dir = Path(args.runs or (RUNS / "tiny" if args.tiny else RUNS))
    out = Path(args.out or (runs_dir / "tiny.json" if args.tiny else RESULTS / "curriculum.json"))
    hilp = args.hilp_checkpoint or (ensure_hilp(cfg, runs_dir) if "omni_hilp" in args.arms else None)
    runs: dict[str, list[dict]] = {}
    loads = []
    for seed in cfg["seeds"]:   # seed-major: a cut-short bench still has every arm on the first seeds
        for arm in args.arms:
            run_dir = runs_dir / f"{arm}_seed{seed}"
            if not (run_dir / "metrics.json").exists():
                loads.append(load())
                t = time.time()
                train_py(common_overrides(cfg, seed) + arm_overrides(arm, hilp), run_dir, runs_dir / f"{arm}_seed{seed}.log")
                print(f"{arm} seed {seed}: {time.time() - t:.0f} s", flush=True)
            runs.setdefault(arm, []).append(run_result(run_dir))
    summary = summarize(runs)
    result = {"config": cfg, "arms": list(args.arms), "hilp_checkpoint": hilp, "summary": summary, "runs": runs,
              "machine": machine(), "load_at_starts": loads,
              "command": "python -m bench.curriculum " + " ".join(sys.argv[2:] if args.argv is None else args.argv[1:])}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(runs, out.with_suffix(".png"), f"env={cfg['env']} steps={cfg['steps']} seeds={cfg['seeds']}")
    print(table(summary))
    print(f"-> {out} and {out.with_suffix('.png')}")
    return result


def table(summary: dict) -> str:
    lines = ["| arm | tasks mastered (mean ± std) | per seed | pool | wall per run |", "|---|---|---|---|---|"]
    for arm, s in summary.items():
        lines.append(f"| {arm} | {s['mean']:.2f} ± {s['std']:.2f} | {s['per_seed']} | {s['pool']} | "
                     f"{s['wall_s_mean'] / 60:.1f} min |")
    return "\n".join(lines)


# -- target 3: the closed loop's record ---------------------------------------------------------
def refill_report(run_dir: Path) -> dict:
    """Every refill of a ``curriculum.refill=true`` run, with each generated task's gates (from its
    library metadata) and its final success on unseen seeds."""
    run_dir = Path(run_dir)
    m = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    state = json.loads((run_dir / "curriculum" / "state.json").read_text())
    per_task = {t: p["success_rate"] for t, p in m.get("per_task", {}).items()}
    last = state["history"][-1]["success"] if state["history"] else {}
    rows = []
    for r in state["refills"]:
        for task in r["admitted"]:
            meta_path = Path(r["library"]) / "meta" / f"{task}.json"
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            gates = {g: ("passed" if v.get("passed") else f"failed: {v.get('reason')}")
                     for g, v in meta.get("gates", {}).items()}
            final = per_task.get(task)
            rows.append({"step": r["step"], "target": r["target"], "task": task,
                         "instruction": meta.get("instruction"), "gates": gates,
                         "oracle_success": meta.get("oracle_success"),
                         "joined": task in r["joined"], "boring": task in r["boring"],
                         "last_curriculum_success": last.get(task), "final_success": final,
                         "mastered": final is not None and final >= MASTERED})
    return {"run_dir": str(run_dir), "refills": [{k: r.get(k) for k in ("step", "target", "live", "admitted",
                                                                         "joined", "boring", "error")}
                                                  for r in state["refills"]],
            "generated": rows, "pool": state["lp"]["tasks"] if "tasks" in state["lp"] else list(last),
            "final_per_task": per_task}


def refill_table(report: dict) -> str:
    lines = ["| refill @step | target | generated task | gates | joined | final success | mastered |",
             "|---|---|---|---|---|---|---|"]
    for r in report["generated"]:
        gates = ", ".join(f"{g} {v}" for g, v in r["gates"].items()) or "(no metadata)"
        final = "-" if r["final_success"] is None else f"{r['final_success']:.2f}"
        lines.append(f"| {r['step']} | {r['target']} | {r['task']} | {gates} | "
                     f"{'yes' if r['joined'] else 'boring' if r['boring'] else 'no'} | {final} | "
                     f"{'yes' if r['mastered'] else 'no'} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="target 1: curriculum arms x seeds on one pool")
    r.add_argument("--tiny", action="store_true", help="a smoke-sized run (see TINY)")
    r.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    r.add_argument("--env", help="train.py env= (builtin, library, or [a,b,...])")
    r.add_argument("--library", help="a generated-task library (python -m generation generate ...)")
    for key in ("seeds",):
        r.add_argument(f"--{key}", type=int, nargs="+")
    for key in ("steps", "demos", "batch", "slice_steps", "eval_every", "eval_episodes", "final_episodes", "hilp_steps"):
        r.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int)
    r.add_argument("--policy", nargs="*", help="extra policy.* overrides for every arm")
    r.add_argument("--hilp-checkpoint", help="a policy=hilp run dir for omni_hilp (default: train one on the pool)")
    r.add_argument("--runs", help=f"where the runs go (default {RUNS})")
    r.add_argument("--out", help="result JSON (default bench/results/curriculum.json; --tiny: under the runs)")
    f = sub.add_parser("refills", help="target 3: the closed loop's refills and their generated tasks")
    f.add_argument("run_dir")
    f.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    args.argv = argv
    if args.cmd == "run":
        return run(args)
    report = refill_report(Path(args.run_dir))
    print(json.dumps(report, indent=2) if args.json else refill_table(report))
    return report


if __name__ == "__main__":
    main()
