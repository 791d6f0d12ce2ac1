"""Worker: oracle demonstration throughput on roboforge stack_blocks (MuJoCo).

Runs the project's own demo rollout (``train.demos.rollout_oracle``: ``planners.make_oracle`` on
``roboforge/stack_blocks-v0``, state obs, ee_delta_pose, episodes end at success or the 200-step
limit) over seeds 0..N-1, without writing the HDF5 store (the peer writes nothing either).
demos/minute counts successful episodes per minute of wall time (all attempts included);
per-CPU-minute figures are given too, for a busy shared machine.

    python -m bench.demos [--episodes 30]
"""
from __future__ import annotations

import argparse
import time

import gymnasium as gym

from bench.common import emit, load, versions
from bench.throughput import ENV_ID


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=30)
    args = ap.parse_args()
    load_start = load()
    import envs  # noqa: F401
    from train.demos import rollout_oracle

    env = gym.make(ENV_ID, sim="mujoco", obs_mode="state", control_mode="ee_delta_pose")
    rollout_oracle(env, 10_000)  # warm-up (imports, first compile)
    successes, steps = 0, 0
    t, c = time.perf_counter(), time.process_time()
    for seed in range(args.episodes):
        ep = rollout_oracle(env, seed)
        successes += ep.success
        steps += len(ep.actions)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    env.close()
    emit({"worker": "roboforge_demos", "env": ENV_ID, "planner": "planners.make_oracle (keyframe pick/place over IK)",
          "episodes": args.episodes, "successes": successes, "success_rate": round(successes / args.episodes, 3),
          "demos_per_min": round(60 * successes / wall, 1), "demos_per_cpu_min": round(60 * successes / cpu, 1),
          "s_per_episode": round(wall / args.episodes, 3), "mean_steps": round(steps / args.episodes, 1),
          "versions": versions("mujoco", "gymnasium", "numpy"), "load_avg_1m_start": load_start})


if __name__ == "__main__":
    main()
