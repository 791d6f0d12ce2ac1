"""What roboforge's task layer costs on ManiSkill: our stack_blocks vs ManiSkill's own StackCube-v1.

Same process, same machine, CPU PhysX (``physx_cpu``), state observations, random actions, the
Panda at 20 Hz control / 100 Hz physics, both made with ``gym.make``. Rounds alternate between
the two so a busy neighbour on a shared CPU hits both alike; the best round of each counts.

    python bench/maniskill_overhead.py [--steps 1000] [--rounds 3]

Prints a table and writes ``bench/results/maniskill_overhead.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "maniskill_overhead.json"
# (our control mode, the ManiSkill controller it runs on / is compared with)
PAIRS = [("joint_pos", "pd_joint_pos"), ("ee_delta_pose", "pd_ee_delta_pose")]


def make_ours(control_mode: str) -> gym.Env:
    import envs  # noqa: F401

    return gym.make("roboforge/stack_blocks-v0", sim="maniskill", obs_mode="state", control_mode=control_mode)


def make_theirs(control_mode: str) -> gym.Env:
    import mani_skill.envs  # noqa: F401

    return gym.make("StackCube-v1", obs_mode="state", control_mode=control_mode, robot_uids="panda",
                    sim_backend="physx_cpu", render_backend="cpu")


def steps_per_second(env: gym.Env, steps: int, seed: int) -> float:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    t = time.perf_counter()
    for a in actions:  # no resets inside the timed loop: this measures stepping
        env.step(a)
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)

    rows = []
    for ours_mode, ms_mode in PAIRS:
        ours, theirs = make_ours(ours_mode), make_theirs(ms_mode)
        steps_per_second(ours, 50, 0), steps_per_second(theirs, 50, 0)  # warm-up
        a, b = [], []
        for r in range(args.rounds):
            a.append(steps_per_second(ours, args.steps, r))
            b.append(steps_per_second(theirs, args.steps, r))
        ours.close(), theirs.close()
        row = {"control_mode": ours_mode, "maniskill_control_mode": ms_mode,
               "roboforge_stack_blocks_steps_per_s": round(max(a), 1), "stackcube_v1_steps_per_s": round(max(b), 1),
               "overhead": round(max(b) / max(a) - 1.0, 4)}
        rows.append(row)

    head = ("control mode (ours / ManiSkill)", "stack_blocks steps/s", "StackCube-v1 steps/s", "overhead")
    print(f"{head[0]:34s} {head[1]:>21s} {head[2]:>21s} {head[3]:>9s}")
    for r in rows:
        print(f"{r['control_mode'] + ' / ' + r['maniskill_control_mode']:34s} "
              f"{r['roboforge_stack_blocks_steps_per_s']:>21.0f} {r['stackcube_v1_steps_per_s']:>21.0f} "
              f"{r['overhead']:>+9.1%}")
    import mani_skill
    import sapien

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.common import machine, machine_short

    out = {"benchmark": "roboforge stack_blocks vs ManiSkill StackCube-v1, CPU PhysX, state obs, random actions",
           "command": "python bench/maniskill_overhead.py --steps %d --rounds %d" % (args.steps, args.rounds),
           "steps": args.steps, "rounds": args.rounds, "sim_backend": "physx_cpu", "obs_mode": "state",
           "machine": {**machine(), "python": platform.python_version(), "torch_threads": torch.get_num_threads()},
           "machine_short": machine_short(machine()), "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
           "versions": {"mani_skill": mani_skill.__version__, "sapien": sapien.__version__,
                        "numpy": np.__version__, "torch": torch.__version__},
           "rows": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
