"""Peer worker: ManiSkill3's motion-planning demo solution for StackCube-v1 on CPU PhysX.

Run by ``bench/peers/.venv-maniskill/bin/python -m bench.peers.maniskill_demos``. Uses the
official solution ``mani_skill.examples.motionplanning.panda.solutions.solveStackCube`` (mplib
screw-motion planning, ``pd_joint_pos``) the way ManiSkill's own ``motionplanning/panda/run.py``
does, on seeds 0..N-1 with ``obs_mode="none"`` (as run.py defaults to) and without its
RecordEpisode writer (roboforge's side writes nothing either). demos/minute counts successful
episodes per minute of wall time, all attempts included. mplib 0.1.1 needs numpy<2.
"""
from __future__ import annotations

import argparse
import time

from bench.common import emit, load, versions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=30)
    args = ap.parse_args()
    load_start = load()

    import gymnasium as gym
    import mani_skill.envs  # noqa: F401
    import torch
    from mani_skill.examples.motionplanning.panda.solutions import solveStackCube

    torch.set_num_threads(1)
    env = gym.make("StackCube-v1", obs_mode="none", control_mode="pd_joint_pos", robot_uids="panda",
                   sim_backend="physx_cpu", render_backend="cpu", render_mode="rgb_array")

    def solve(seed: int) -> tuple[bool, int]:
        res = solveStackCube(env, seed=seed)
        steps = int(env.unwrapped.elapsed_steps.item()) if hasattr(env.unwrapped, "elapsed_steps") else -1
        if res == -1:  # the planner found no plan
            return False, steps
        return bool(res[-1]["success"].item()), steps

    solve(10_000)  # warm-up
    successes, steps, failed_plans = 0, 0, 0
    t, c = time.perf_counter(), time.process_time()
    for seed in range(args.episodes):
        try:
            ok, n = solve(seed)
        except Exception:  # noqa: BLE001 - run.py also counts a planner exception as a failed episode
            ok, n, failed_plans = False, 0, failed_plans + 1
        successes += ok
        steps += max(n, 0)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    env.close()
    emit({"worker": "maniskill_demos", "env": "StackCube-v1 (physx_cpu, pd_joint_pos, obs_mode=none)",
          "planner": "mani_skill solveStackCube (mplib screw motion)",
          "episodes": args.episodes, "successes": successes, "success_rate": round(successes / args.episodes, 3),
          "planner_exceptions": failed_plans,
          "demos_per_min": round(60 * successes / wall, 1), "demos_per_cpu_min": round(60 * successes / cpu, 1),
          "s_per_episode": round(wall / args.episodes, 3), "mean_steps": round(steps / args.episodes, 1),
          "versions": versions("mani-skill", "sapien", "mplib", "torch", "numpy"), "load_avg_1m_start": load_start})


if __name__ == "__main__":
    main()
