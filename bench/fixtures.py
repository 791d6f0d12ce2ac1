"""Containers and articulated fixtures (issue 19): the oracle on the new built-in tasks, and what a
step of an articulated task costs next to ``stack_blocks``.

``oracle``: the task's oracle on ``--seeds`` unseen seeds from 70_000 (the conformance suite's),
success rate and mean episode length, per task and backend.
``step``: ``obs_mode="state"``, ``ee_delta_pose``, the oracle's own actions replayed (so the
articulated task's step includes the drawer's or door's joint and its contacts, as in use); per step: the
median wall time and CPU time (``time.process_time``) over ``--rounds`` rounds of ``--steps``
steps, and the ratio to ``stack_blocks`` on the same backend. CPU seconds are the figure to read
on a shared machine.

    python -m bench.fixtures oracle --sims mujoco,maniskill [--seeds 20]
    python -m bench.fixtures step --sims mujoco,maniskill [--steps 200 --rounds 3]

Prints a markdown table; writes bench/results/fixtures_<part>.json (``--out`` to change).
"""
from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np

from bench.common import RESULTS, load, versions

TASKS = ("put_in_box", "close_lid", "open_drawer", "put_in_drawer_and_close", "open_door", "close_door")
SEED_START = 70_000


def _make(task: str, sim: str):
    import envs

    return gym.make(envs.env_id(task), sim=sim, obs_mode="state", control_mode="ee_delta_pose")


def oracle_row(task: str, sim: str, seeds: int) -> dict:
    from planners import oracle_episodes

    env = _make(task, sim)
    t0 = time.perf_counter()
    episodes = oracle_episodes(env, range(SEED_START, SEED_START + seeds))
    env.close()
    wins = sum(e["success"] for e in episodes)
    return {"task": task, "sim": sim, "seeds": seeds, "success": wins / seeds, "wins": wins,
            "mean_steps": round(float(np.mean([e["steps"] for e in episodes])), 1),
            "wall_s": round(time.perf_counter() - t0, 1),
            "failed": [{"seed": e["seed"], "conditions": e["conditions"]} for e in episodes if not e["success"]]}


def _oracle_actions(task: str, sim: str, n: int) -> np.ndarray:
    """``n`` actions of the oracle's episodes from seed 0 on (episodes chained)."""
    from planners import make_oracle

    env = _make(task, sim)
    oracle, out, seed = make_oracle(env), [], 0
    while len(out) < n:
        obs, _ = env.reset(seed=seed)
        oracle.reset()
        for _ in range(env.spec.max_episode_steps):
            a = oracle.act(obs)
            out.append(a)
            obs, _, term, trunc, _ = env.step(a)
            if term or trunc or len(out) >= n:
                break
        seed += 1
    env.close()
    return np.array(out[:n])


def step_row(task: str, sim: str, steps: int, rounds: int) -> dict:
    actions = _oracle_actions(task, sim, steps)
    env = _make(task, sim)
    wall, cpu = [], []
    for _ in range(rounds):
        env.reset(seed=0)
        t, c = time.perf_counter(), time.process_time()
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
        wall.append((time.perf_counter() - t) / steps)
        cpu.append((time.process_time() - c) / steps)
    env.close()
    return {"task": task, "sim": sim, "steps": steps, "rounds": rounds,
            "wall_ms": round(1000 * float(np.median(wall)), 3), "cpu_ms": round(1000 * float(np.median(cpu)), 3)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=("oracle", "step"))
    p.add_argument("--sims", default="mujoco")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    sims, tasks = a.sims.split(","), a.tasks.split(",")
    load_start, rows = load(), []
    if a.part == "oracle":
        print("| task | backend | oracle success (20 unseen seeds) | mean steps | wall s |\n|---|---|---|---|---|")
        for sim in sims:
            for task in tasks:
                r = oracle_row(task, sim, a.seeds)
                rows.append(r)
                print(f"| {task} | {sim} | {r['success']:.2f} ({r['wins']}/{r['seeds']}) | {r['mean_steps']} | "
                      f"{r['wall_s']} |", flush=True)
    else:
        print("| task | backend | ms/step (wall) | ms/step (CPU) | CPU ratio to stack_blocks |\n|---|---|---|---|---|")
        for sim in sims:
            base = step_row("stack_blocks", sim, a.steps, a.rounds)
            rows.append(base)
            print(f"| stack_blocks | {sim} | {base['wall_ms']} | {base['cpu_ms']} | 1.00 |", flush=True)
            for task in tasks:
                r = step_row(task, sim, a.steps, a.rounds)
                r["cpu_ratio"] = round(r["cpu_ms"] / base["cpu_ms"], 2)
                r["wall_ratio"] = round(r["wall_ms"] / base["wall_ms"], 2)
                rows.append(r)
                print(f"| {task} | {sim} | {r['wall_ms']} | {r['cpu_ms']} | {r['cpu_ratio']:.2f} |", flush=True)
    result = {"bench": f"fixtures_{a.part}", "rows": rows, "load_avg_1m_start": load_start,
              "load_avg_1m_end": load(), "versions": versions("mujoco", "mani_skill", "sapien", "gymnasium"),
              "command": "python -m bench.fixtures " + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
              "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out = a.out or str(RESULTS / f"fixtures_{a.part}{'' if sims == ['mujoco'] else '_' + '_'.join(sims)}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
