"""Oracle success per built-in task and backend on unseen seeds (a table + JSON).

    python -m bench.oracle_tasks --tasks rotate_block,align_block --sims mujoco,maniskill --seeds 20

Each (task, backend) pair runs the goal-derived oracle (``planners.make_oracle``) on seeds
``--seed-start`` .. + ``--seeds`` (70,000 by default: the conformance suite's unseen range; demos
start at 0, evaluation at 100,000), ``ee_delta_pose``, ManiSkill on CPU PhysX. Results merge
into ``--out`` (a rerun of one pair replaces only that pair), and the whole table is printed as
Markdown for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym

import envs
from bench.common import RESULTS, load, log, machine, machine_short, versions
from planners import oracle_episodes

ORIENT_TASKS = ("rotate_block", "align_block", "peg_insertion", "block_into_slot")


def run_pair(task: str, sim: str, seeds: range) -> dict:
    """Oracle episodes of ``task`` on ``sim``: successes, failed seeds, steps and wall time."""
    env = gym.make(envs.env_id(task), sim=sim)
    t0 = time.perf_counter()
    episodes = oracle_episodes(env, seeds)
    wins, steps = sum(e["success"] for e in episodes), [e["steps"] for e in episodes]
    failed = [{"seed": e["seed"], "conditions": e["conditions"]} for e in episodes if not e["success"]]
    env.close()
    return {"task": task, "sim": sim, "episodes": len(seeds), "successes": wins,
            "success_rate": wins / len(seeds), "seeds": [seeds.start, seeds.stop - 1], "failed": failed,
            "mean_steps": sum(steps) / len(steps), "wall_s": round(time.perf_counter() - t0, 1),
            "load_avg_1m_end": load(), "when": time.strftime("%Y-%m-%dT%H:%M:%S")}


def table(results: dict) -> str:
    rows = ["| task | backend | oracle success | failed seeds | mean steps | wall (s) | load |",
            "|---|---|---|---|---|---|---|"]
    for r in results["pairs"]:
        fails = ", ".join(str(f["seed"]) for f in r["failed"]) or "-"
        rows.append(f"| {r['task']} | {r['sim']} | **{r['successes']}/{r['episodes']}** ({r['success_rate']:.0%}) "
                    f"| {fails} | {r['mean_steps']:.0f} | {r['wall_s']:.0f} | {r['load_avg_1m_end']} |")
    return "\n".join(rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default=",".join(ORIENT_TASKS))
    p.add_argument("--sims", default="mujoco,maniskill")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--seed-start", type=int, default=70_000)
    p.add_argument("--out", default=str(RESULTS / "oracle_tasks.json"))
    a = p.parse_args(argv)
    try:
        with open(a.out) as f:
            results = json.load(f)
    except FileNotFoundError:
        results = {"pairs": []}
    seeds = range(a.seed_start, a.seed_start + a.seeds)
    for task in a.tasks.split(","):
        for sim in a.sims.split(","):
            log(f"{task} on {sim}, seeds {seeds.start}-{seeds.stop - 1}")
            r = run_pair(task, sim, seeds)
            log(f"{task} on {sim}: {r['successes']}/{r['episodes']} in {r['wall_s']:.0f} s")
            results["pairs"] = [x for x in results["pairs"] if (x["task"], x["sim"]) != (task, sim)] + [r]
            results["pairs"].sort(key=lambda x: (x["task"], x["sim"]))
            results["machine"] = machine_short(machine())
            results["versions"] = versions("mujoco", "mani_skill", "gymnasium")
            with open(a.out, "w") as f:
                json.dump(results, f, indent=1)
    print(table(results))


if __name__ == "__main__":
    main()
