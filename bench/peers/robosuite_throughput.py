"""Peer worker: robosuite Stack (Panda, OSC_POSE) single-process throughput.

Run by ``bench/peers/.venv-robosuite/bin/python -m bench.peers.robosuite_throughput``.
``robosuite.make("Stack", robots="Panda", controller_configs=<Panda default: BASIC composite with
OSC_POSE arm>, control_freq=20, use_camera_obs=False, use_object_obs=True, has_renderer=False,
has_offscreen_renderer=False)``: MuJoCo 2 ms physics, 25 substeps per control step (the OSC runs
at every substep, as robosuite does), uniformly random actions, no resets inside a timed window, rates per wall second and per CPU second
(``ignore_done=True`` so the episode horizon does not interrupt stepping).
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

    import numpy as np
    import robosuite
    from robosuite.controllers import load_composite_controller_config

    ctrl = load_composite_controller_config(controller=None, robot="Panda")
    arm = ctrl["body_parts"].get("right") or ctrl["body_parts"]["arms"]["right"]
    assert arm["type"] == "OSC_POSE", ctrl
    env = robosuite.make("Stack", robots="Panda", controller_configs=ctrl, control_freq=20,
                         use_camera_obs=False, use_object_obs=True, has_renderer=False,
                         has_offscreen_renderer=False, reward_shaping=True, horizon=10 ** 9,
                         ignore_done=True, hard_reset=False)
    low, high = env.action_spec
    rng = np.random.default_rng(0)
    actions = rng.uniform(low, high, (args.steps, len(low)))

    def rate(acts) -> tuple[float, float]:
        env.reset()
        t, c = time.perf_counter(), time.process_time()
        for a in acts:
            env.step(a)
        return len(acts) / (time.perf_counter() - t), len(acts) / (time.process_time() - c)

    rate(actions[:100])  # warm-up
    rates = [rate(actions) for _ in range(args.rounds)]
    reset_s = [timed(env.reset) for _ in range(10)]
    out = {
        "worker": "robosuite_throughput",
        "env": "robosuite Stack (Panda, BASIC/OSC_POSE, control_freq=20, object obs, no cameras)",
        "control_hz": env.control_freq, "physics_dt_s": env.model_timestep,
        "substeps": round(env.control_timestep / env.model_timestep),
        "steps_per_round": args.steps, "rounds": args.rounds,
        "env_steps_per_s": round(max(r[0] for r in rates), 1),
        "env_steps_per_cpu_s": round(max(r[1] for r in rates), 1),
        "rounds_wall_cpu": [[round(w, 1), round(c, 1)] for w, c in rates],
        "reset_ms": median_ms(reset_s), "reset_note": "hard_reset=False (model kept between episodes)",
        "versions": versions("robosuite", "mujoco", "numpy"),
        "load_avg_1m_start": load_start,
    }
    env.close()
    emit(out)


if __name__ == "__main__":
    main()
