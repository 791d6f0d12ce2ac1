"""GravMAD(manual) against the point-cloud diffusion policy without GravMaps: same demos, same
steps, same observation (point cloud with the table points read last, proprio, instruction),
per task on unseen seeds, on the seen tasks and on held-out variants (``envs.heldout``).

    # the training pair (each run also evaluates its seen tasks; commands in docs/gravmad.md)
    python train.py policy=gravmad   obs_mode=pointcloud env=[...] ... hydra.run.dir=RUN_G
    python train.py policy=diffusion obs_mode=pointcloud env=[...] ... hydra.run.dir=RUN_D
    # the held-out variants, from each run's checkpoint, then the table
    python -m bench.gravmad heldout RUN_G [--subgoals manual]
    python -m bench.gravmad heldout RUN_D
    python -m bench.gravmad table RUN_G RUN_D         # -> bench/results/gravmad.json + a markdown table

``heldout`` evaluates a run's policy (its saved config: sim, control mode, eval seeds and limit) on
every held-out task and writes ``RUN/heldout_<subgoals or plain>.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.common import RESULTS, machine, versions


def heldout(run_dir: Path, subgoals: str | None = None, tasks=None) -> dict:
    from omegaconf import OmegaConf

    import envs.heldout
    from policies import Policy
    from train.config import to_run_config
    from train.gravmad import gravmad_env
    from train.imitation import checkpoint_dir
    from train.multitask import evaluate_tasks

    config = to_run_config(OmegaConf.load(run_dir / "config.yaml"))
    config.progress = False
    tasks = list(tasks or envs.heldout.HELDOUT_TASKS)
    policy = Policy.from_pretrained(checkpoint_dir(run_dir))
    gravmad = config.policy.name == "gravmad"
    provider = (subgoals or config.subgoals) if gravmad else None
    limit_kw = {"max_episode_steps": config.eval.max_episode_steps} if config.eval.max_episode_steps else {}
    out_dir = run_dir / f"heldout_{provider or 'plain'}"
    t = time.time()
    make_env = (lambda task: gravmad_env(task, config, provider, **limit_kw)) if gravmad else None
    r = evaluate_tasks(policy, config, out_dir, tasks, make_env=make_env)
    result = {"run": str(run_dir), "policy": config.policy.name, "subgoals": provider, "tasks": tasks,
              "success_rate": r["success_rate"],
              "per_task": {k: {"success_rate": v["success_rate"], "num_successes": v["num_successes"],
                               "episodes": v["episodes"], "mean_return": v["mean_return"],
                               "mean_length": v["mean_length"]} for k, v in r["per_task"].items()},
              "eval_s": round(time.time() - t, 1)}
    (run_dir / f"heldout_{provider or 'plain'}.json").write_text(json.dumps(result, indent=1))
    return result


def table(runs: list[Path]) -> dict:
    """bench/results/gravmad.json and a markdown table from finished runs (metrics.json + heldout_*.json)."""
    rows = []
    for run in runs:
        m = json.loads((run / "metrics.json").read_text())
        name = m["policy"] + (f"({m.get('subgoals', 'manual')})" if m["policy"] == "gravmad" else "")
        seen = {k: v["success_rate"] for k, v in m["per_task"].items()}
        held = {}
        for f in sorted(run.glob("heldout_*.json")):
            h = json.loads(f.read_text())
            label = m["policy"] + (f"({h['subgoals']})" if h["subgoals"] else "")
            held[label] = {k: v["success_rate"] for k, v in h["per_task"].items()}
        rows.append({"name": name, "run": str(run), "seen": seen, "seen_mean": m["success_rate"], "heldout": held,
                     "train_steps": m["train"].get("steps"), "timings": m.get("timings", {}),
                     "wall_time_s": m.get("wall_time_s"), "num_demos": m.get("num_demos")})
    result = {"rows": rows, "machine": machine(), "versions": versions()}
    (RESULTS / "gravmad.json").write_text(json.dumps(result, indent=1))
    tasks = list(rows[0]["seen"])
    print("| policy | " + " | ".join(tasks) + " | mean (seen) |")
    print("|---" * (len(tasks) + 2) + "|")
    for r in rows:
        print(f"| {r['name']} | " + " | ".join(f"{r['seen'][t]:.2f}" for t in tasks) + f" | {r['seen_mean']:.2f} |")
    held_tasks = [t for r in rows for h in r["heldout"].values() for t in h]
    held_tasks = list(dict.fromkeys(held_tasks))
    if held_tasks:
        print("\n| policy (held-out) | " + " | ".join(held_tasks) + " | mean |")
        print("|---" * (len(held_tasks) + 2) + "|")
        for r in rows:
            for label, h in r["heldout"].items():
                vals = [h.get(t) for t in held_tasks]
                mean = sum(v for v in vals if v is not None) / max(1, sum(v is not None for v in vals))
                print(f"| {label} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in vals) + f" | {mean:.2f} |")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gravmad", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("heldout", help="evaluate a finished run's checkpoint on the held-out variants")
    h.add_argument("run", type=Path)
    h.add_argument("--subgoals", choices=("manual", "offline", "llm"), help="GravMAD runs: the test-time provider")
    h.add_argument("--tasks", help="comma-separated held-out tasks (default: all)")
    t = sub.add_parser("table", help="the comparison table from finished runs")
    t.add_argument("runs", type=Path, nargs="+")
    a = p.parse_args(argv)
    if a.command == "heldout":
        r = heldout(a.run, a.subgoals, a.tasks.split(",") if a.tasks else None)
        print(json.dumps({k: v["success_rate"] for k, v in r["per_task"].items()}), f"mean {r['success_rate']:.2f}")
    else:
        table(a.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
