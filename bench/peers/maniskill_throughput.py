"""Peer worker: ManiSkill3 StackCube-v1 single-process throughput on CPU PhysX.

Run by ``bench/peers/.venv-maniskill/bin/python -m bench.peers.maniskill_throughput``.
``gym.make("StackCube-v1", obs_mode="state", control_mode="pd_ee_delta_pose",
sim_backend="physx_cpu")``, one env, Panda at 20 Hz control (ManiSkill's default 100 Hz physics,
5 substeps), uniformly random actions, no resets inside a timed window, rates per wall second and per CPU second. torch uses one thread:
ManiSkill's CPU path moves tiny tensors, where extra threads only add overhead.
"""
from __future__ import annotations

import argparse
import time

from bench.common import emit, load, median_ms, timed, versions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    load_start = load()

    import gymnasium as gym
    import mani_skill.envs  # noqa: F401
    import numpy as np
    import torch

    torch.set_num_threads(1)
    env = gym.make("StackCube-v1", obs_mode="state", control_mode="pd_ee_delta_pose", robot_uids="panda",
                   sim_backend="physx_cpu", render_backend="cpu", num_envs=1)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (args.steps, *env.action_space.shape)).astype(np.float32)

    def rate(acts) -> tuple[float, float]:
        env.reset(seed=0)
        t, c = time.perf_counter(), time.process_time()
        for a in acts:
            env.step(a)
        return len(acts) / (time.perf_counter() - t), len(acts) / (time.process_time() - c)

    rate(actions[:100])  # warm-up
    rates = [rate(actions) for _ in range(args.rounds)]
    reset_s = [timed(lambda i=i: env.reset(seed=i)) for i in range(20)]
    u = env.unwrapped
    out = {
        "worker": "maniskill_throughput",
        "env": "StackCube-v1 (physx_cpu, obs_mode=state, control_mode=pd_ee_delta_pose, panda)",
        "control_hz": u.control_freq, "sim_hz": u.sim_freq, "substeps": u.sim_freq // u.control_freq,
        "steps_per_round": args.steps, "rounds": args.rounds,
        "env_steps_per_s": round(max(r[0] for r in rates), 1),
        "env_steps_per_cpu_s": round(max(r[1] for r in rates), 1),
        "rounds_wall_cpu": [[round(w, 1), round(c, 1)] for w, c in rates],
        "reset_ms": median_ms(reset_s), "torch_threads": 1,
        "versions": versions("mani-skill", "sapien", "torch", "numpy", "gymnasium"),
        "load_avg_1m_start": load_start,
    }
    env.close()
    emit(out)


if __name__ == "__main__":
    main()
