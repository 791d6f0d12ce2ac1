"""Worker: single-process throughput of roboforge stack_blocks on MuJoCo, and its physics floor.

Both are measured here in the same process, rounds interleaved:
- ``env``: ``gym.make("roboforge/stack_blocks-v0", sim="mujoco", obs_mode="state",
  control_mode="ee_delta_pose")`` stepped with uniformly random actions (20 Hz control, each step
  = controller + IK, 25 physics steps of 2 ms, state observation, success and dense reward).
- ``floor``: the same compiled model stepped by ``mujoco.mj_step(model, data, nstep=25)`` alone,
  one call per control step, replaying from the same initial state the exact controls the env's
  controller produced for the same actions, so the physics (contacts included) is the same
  trajectory: the difference between the two is the Python cost of a step.
No resets inside a timed window; ``reset_ms`` is timed separately. Rates are given per wall second
and per CPU second of the process (``time.process_time``): on a shared, busy machine the second is
the one that stays close to what an idle machine would show for single-threaded work.

    python -m bench.throughput [--steps 2000] [--rounds 3] [--profile]

``--profile`` adds a cProfile breakdown of where a step's time goes (top functions by own time,
and the share of step time spent in each stage of ``MujocoTaskEnv.step``).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import gymnasium as gym
import mujoco
import numpy as np

from bench.common import emit, load, median_ms, timed, versions

ENV_ID = "roboforge/stack_blocks-v0"


def make_env() -> gym.Env:
    import envs  # noqa: F401  (registers the tasks)

    return gym.make(ENV_ID, sim="mujoco", obs_mode="state", control_mode="ee_delta_pose")


def env_rate(env: gym.Env, actions: np.ndarray) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second)."""
    env.reset(seed=0)
    t, c = time.perf_counter(), time.process_time()
    for a in actions:
        env.step(a)
    return len(actions) / (time.perf_counter() - t), len(actions) / (time.process_time() - c)


def record_controls(env: gym.Env, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The full physics state right after ``reset(seed=0)`` and the ``data.ctrl`` the controller
    set at every step for ``actions``."""
    base = env.unwrapped
    env.reset(seed=0)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(base.model, spec))
    mujoco.mj_getState(base.model, base.data, state, spec)
    ctrls = []
    for a in actions:
        env.step(a)
        ctrls.append(base.data.ctrl.copy())
    return state, np.array(ctrls)


def floor_rate(model: mujoco.MjModel, data: mujoco.MjData, state: np.ndarray, ctrls: np.ndarray,
               nstep: int) -> tuple[float, float]:
    mujoco.mj_setState(model, data, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    mujoco.mj_forward(model, data)
    t, c = time.perf_counter(), time.process_time()
    for u in ctrls:
        data.ctrl[:] = u
        mujoco.mj_step(model, data, nstep=nstep)
    return len(ctrls) / (time.perf_counter() - t), len(ctrls) / (time.process_time() - c)


def stage_profile(env: gym.Env, actions: np.ndarray) -> dict:
    """cProfile of ``actions`` steps: the share of step time per stage and the top own-time functions."""
    env.reset(seed=0)
    prof = cProfile.Profile()
    prof.enable()
    for a in actions:
        env.step(a)
    prof.disable()
    st = pstats.Stats(prof)
    stats = st.stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    total = sum(v[2] for v in stats.values())

    def cum(name_part: str, file_part: str = "") -> float:
        return sum(v[3] for k, v in stats.items() if k[2] == name_part and file_part in k[0])

    stages = {
        "mj_step (physics)": sum(v[3] for k, v in stats.items() if "mj_step" in k[2]),
        "controller.apply (IK)": cum("apply", "controller.py"),
        "scene_state": cum("scene_state", "env.py"),
        "task.evaluate (goals/success)": cum("evaluate", "task.py"),
        "task.dense_reward": cum("dense_reward", "task.py"),
        "_obs (state vector)": cum("_obs", "env.py"),
    }
    stages = {k: round(100 * v / total, 1) for k, v in stages.items()}
    stages["gym wrappers + rest"] = round(100 - sum(stages.values()), 1)
    top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:12]
    top_rows = [{"function": f"{k[2]} ({k[0].split('/')[-1]}:{k[1]})", "own_pct": round(100 * v[2] / total, 1),
                 "calls_per_step": round(v[1] / len(actions), 1)} for k, v in top]
    return {"stage_pct_of_step_cprofile": stages, "top_own_time": top_rows, "stage_us": stage_micros(env, actions),
            "note": "cProfile instrumentation inflates Python-side shares; stage_us times each stage alone "
                    "(no profiler) at states along the same trajectory; rates come from the unprofiled rounds"}


def stage_micros(env: gym.Env, actions: np.ndarray) -> dict:
    """CPU µs per step spent in each stage of ``MujocoTaskEnv.step``, measured in place: each stage
    (and ``mujoco.mj_step``) is wrapped with a ``process_time`` timer for one pass over ``actions``;
    "rest" is the step's own glue plus gymnasium's wrappers. Timer calls add ~1 µs per stage."""
    base = env.unwrapped
    acc: dict[str, float] = {}

    def timer(name, fn):
        def wrapped(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                acc[name] = acc.get(name, 0.0) + time.process_time() - t
        return wrapped

    real_step = mujoco.mj_step
    env.reset(seed=0)  # first: a reset builds a new task object
    patches = [(base.controller, "apply", "controller.apply (IK)"), (base, "scene_state", "scene_state"),
               (base.task, "evaluate", "task.evaluate"), (base.task, "dense_reward", "task.dense_reward"),
               (base, "_obs", "_obs"), (base, "_info", "_info")]
    for obj, attr, name in patches:
        setattr(obj, attr, timer(name, getattr(obj, attr)))
    mujoco.mj_step = timer("mj_step (physics, in place)", real_step)
    try:
        t = time.process_time()
        for a in actions:
            env.step(a)
        total = time.process_time() - t
    finally:
        mujoco.mj_step = real_step
        for obj, attr, _ in patches:
            delattr(obj, attr)  # drop the instance attribute: the class method shows through again
    n = len(actions)
    out = {k: round(1e6 * v / n, 1) for k, v in acc.items()}
    out["rest (step glue + gym wrappers)"] = round(1e6 * (total - sum(acc.values())) / n, 1)
    out["total"] = round(1e6 * total / n, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    load_start = load()

    env = make_env()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (args.steps, *env.action_space.shape)).astype(np.float32)
    base = env.unwrapped
    from envs.backends.mujoco.compiler import N_SUBSTEPS

    # the floor steps its own MjData of the very model the env compiled, along the same trajectory
    model = base.model
    data = mujoco.MjData(model)
    state, ctrls = record_controls(env, actions)

    env_rate(env, actions[:100]), floor_rate(model, data, state, ctrls[:100], N_SUBSTEPS)  # warm-up
    env_rates, floor_rates = [], []
    for _ in range(args.rounds):
        env_rates.append(env_rate(env, actions))
        floor_rates.append(floor_rate(model, data, state, ctrls, N_SUBSTEPS))
    env_wall, env_cpu = (max(r[i] for r in env_rates) for i in (0, 1))
    floor_wall, floor_cpu = (max(r[i] for r in floor_rates) for i in (0, 1))
    reset_s = [timed(lambda i=i: env.reset(seed=i)) for i in range(20)]

    out = {
        "worker": "roboforge_throughput",
        "env": f"{ENV_ID} (sim=mujoco, obs_mode=state, control_mode=ee_delta_pose)",
        "control_hz": 20, "physics_dt_s": float(model.opt.timestep), "substeps": N_SUBSTEPS,
        "steps_per_round": args.steps, "rounds": args.rounds,
        "env_steps_per_s": round(env_wall, 1), "env_steps_per_cpu_s": round(env_cpu, 1),
        "floor_steps_per_s": round(floor_wall, 1), "floor_steps_per_cpu_s": round(floor_cpu, 1),
        "rounds_wall_cpu": {"env": [[round(w, 1), round(c, 1)] for w, c in env_rates],
                            "floor": [[round(w, 1), round(c, 1)] for w, c in floor_rates]},
        "reset_ms": median_ms(reset_s),
        "model": {"nq": model.nq, "nv": model.nv, "nbody": model.nbody, "ngeom": model.ngeom},
        "versions": versions("mujoco", "gymnasium", "numpy"),
        "load_avg_1m_start": load_start,
    }
    us_env, us_floor = 1e6 / env_cpu, 1e6 / floor_cpu
    out["physics_us_per_step"] = round(us_floor, 1)
    out["python_overhead_us_per_step"] = round(us_env - us_floor, 1)  # CPU-time based
    if args.profile:
        out["profile"] = stage_profile(env, actions[: min(args.steps, 1000)])
    env.close()
    emit(out)


if __name__ == "__main__":
    main()
