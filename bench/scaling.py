"""Worker: how MuJoCo stepping of roboforge stack_blocks scales with N parallel envs on one machine.

Two ways to batch, for N in ``--n`` (default 1 2 4):
- ``processes``: ``gymnasium.vector.AsyncVectorEnv`` over N full envs (one worker process each,
  shared-memory observations, autoreset at the 200-step time limit), random actions; total
  env-steps/s = N x vector steps / s.
- ``threads (physics only)``: N Python threads, each stepping its own ``MjData`` of the same model
  with ``mj_step(nstep=25)``. MuJoCo's bindings release the GIL inside ``mj_step``, so this shows
  what the physics alone can do across cores; a full env step still holds the GIL for its Python.
Efficiency = rate(N) / (N x rate(1)); on a machine with C cores it cannot exceed C / N.

    python -m bench.scaling [--steps 400] [--n 1 2 4]
"""
from __future__ import annotations

import argparse
import os
import threading
import time

import gymnasium as gym
import mujoco

from bench.common import emit, load, versions
from bench.throughput import ENV_ID


def _make():
    import envs  # noqa: F401

    return gym.make(ENV_ID, sim="mujoco", obs_mode="state", control_mode="ee_delta_pose")


def vector_rate(n: int, steps: int) -> float:
    venv = gym.vector.AsyncVectorEnv([_make] * n, shared_memory=True)
    try:
        venv.reset(seed=0)
        venv.action_space.seed(0)
        actions = [venv.action_space.sample() for _ in range(steps)]
        for a in actions[:20]:  # warm-up
            venv.step(a)
        t = time.perf_counter()
        for a in actions:
            venv.step(a)
        return n * steps / (time.perf_counter() - t)
    finally:
        venv.close()


def thread_rate(model: mujoco.MjModel, n: int, steps: int, nstep: int) -> float:
    datas = [mujoco.MjData(model) for _ in range(n)]
    for d in datas:
        mujoco.mj_forward(model, d)
    barrier = threading.Barrier(n + 1)

    def work(d):
        barrier.wait()
        for _ in range(steps):
            mujoco.mj_step(model, d, nstep=nstep)

    threads = [threading.Thread(target=work, args=(d,)) for d in datas]
    for th in threads:
        th.start()
    barrier.wait()
    t = time.perf_counter()
    for th in threads:
        th.join()
    return n * steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400, help="vector steps per N (each steps N envs)")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    load_start = load()
    from envs.backends.mujoco.compiler import N_SUBSTEPS

    model = _make().unwrapped.model
    rows = []
    for n in args.n:
        rows.append({"n": n, "processes_steps_per_s": round(vector_rate(n, args.steps), 1),
                     "threads_physics_steps_per_s": round(thread_rate(model, n, 4 * args.steps // n, N_SUBSTEPS), 1)})
    base = {k: rows[0][k] / rows[0]["n"] for k in ("processes_steps_per_s", "threads_physics_steps_per_s")}
    for r in rows:
        for k, b in base.items():
            r[k.replace("steps_per_s", "efficiency")] = round(r[k] / (r["n"] * b), 3)
    emit({"worker": "roboforge_scaling", "env": ENV_ID, "cpu_count": os.cpu_count(),
          "affinity_cores": len(os.sched_getaffinity(0)), "rows": rows,
          "versions": versions("mujoco", "gymnasium", "numpy"), "load_avg_1m_start": load_start})


if __name__ == "__main__":
    main()
