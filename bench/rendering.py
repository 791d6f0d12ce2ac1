"""What the observation cameras cost: frames per second at the policy's image size, before and
after the plain observation look, on MuJoCo (and what ManiSkill's cameras cost).

    python -m bench.rendering [--episodes 1] [--rounds 2] [--frames 12] [--no-maniskill | --maniskill-only]

- **One camera frame**, MuJoCo, ``stack_blocks`` at 64 px: the front and wrist cameras rendered
  the way the observations are now (``envs.backends.mujoco.env.OBSERVATION_RENDER``: no shadows,
  reflections or skybox, no multisampling) and the way they were before (the model's full look,
  which the overview video camera keeps), plus each setting alone; best of ``rounds``.
- **Demos**: stack_blocks oracle demos (``train.demos.rollout_oracle``, as ``collect_demos`` runs
  them) in ``obs_mode=rgb`` (2 camera frames per step) and ``pointcloud`` (RGB + depth of both
  cameras per step: 4 frames) in the plain look, rgb also in the full look, against the same
  demos in ``state``.
- **The overview camera** (``env.render()``, 480x360): unchanged, for scale.
- **ManiSkill** (SAPIEN on lavapipe here): env steps/s in ``rgb`` (2 cameras at 64 px, its
  ``default`` shader pack) against ``state``; the difference is the camera cost. Its first camera
  env compiles shaders (not counted).

Rates count both wall time and this process's CPU time (Mesa's renderer threads included).
Writes ``bench/results/rendering.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import RESULTS, load, machine, machine_short, versions  # noqa: E402

RESULT = RESULTS / "rendering.json"
TASK, IMAGE_SIZE = "stack_blocks", 64
FULL_LOOK = {"shadows": True, "reflections": True, "skybox": True, "multisamples": 4}   # the model's own


@contextlib.contextmanager
def observation_look(settings: dict):
    """Observation cameras of envs made inside the block render with ``settings``."""
    from envs.backends.mujoco import env as menv

    old = dict(menv.OBSERVATION_RENDER)
    menv.OBSERVATION_RENDER.update(settings)   # in place: the env class reads the same dict
    try:
        yield
    finally:
        menv.OBSERVATION_RENDER.update(old)


def rate(fn, n: int) -> tuple[float, float]:
    """(ms per call wall, ms per call CPU) of ``n`` calls."""
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return 1000 * (time.perf_counter() - t) / n, 1000 * (time.process_time() - c) / n


def frame_costs(rounds: int, frames: int) -> dict:
    """ms per 64 px frame (front and wrist alternately) for each look, best of ``rounds``."""
    import envs
    from envs.backends.mujoco.env import OBSERVATION_RENDER

    plain = dict(OBSERVATION_RENDER)
    looks = {"plain (now)": plain, "full (before)": FULL_LOOK,
             **{f"full without {k}": {**FULL_LOOK, k: plain[k]} for k in plain}}
    envs_ = {}
    for name, look in looks.items():
        with observation_look(look):
            env = gym.make(envs.env_id(TASK), obs_mode="rgb", image_size=IMAGE_SIZE)
            env.reset(seed=0)
            env.unwrapped._render("front", IMAGE_SIZE)   # makes the renderer with this look
            env.unwrapped._render("wrist", IMAGE_SIZE)
        envs_[name] = env
    out = {name: [] for name in looks}
    for _ in range(rounds):   # alternate the looks: a busy neighbour slows all alike
        for name, env in envs_.items():
            u = env.unwrapped
            cams = iter(np.resize(["front", "wrist"], frames))
            out[name].append(rate(lambda: u._render(next(cams), IMAGE_SIZE), frames))
    for env in envs_.values():
        env.close()
    return {name: {"ms_per_frame": round(min(r[0] for r in rs), 2), "cpu_ms_per_frame": round(min(r[1] for r in rs), 2),
                   "frames_per_s": round(1000 / min(r[0] for r in rs), 1), "settings": looks[name]}
            for name, rs in out.items()}


def demo_costs(episodes: int) -> dict:
    """Oracle demos per obs_mode and look: seconds per episode and camera frames per second."""
    import envs
    from train.demos import rollout_oracle

    out = {}
    # the point cloud in the full look is left out: 4 full-look frames a step cost minutes of CPU here
    cases = [("state", None, 0), ("rgb", "plain", 2), ("rgb", "full", 2), ("pointcloud", "plain", 4)]
    for mode, look, per_step in cases:
        from envs.backends.mujoco.env import OBSERVATION_RENDER
        settings = FULL_LOOK if look == "full" else dict(OBSERVATION_RENDER)
        with observation_look(settings):
            kw = {"image_size": IMAGE_SIZE} if mode != "state" else {}
            env = gym.make(envs.env_id(TASK), obs_mode=mode, **kw)
            env.reset(seed=10_000)   # warm-up: GL context and renderers (first observation)
            t, c = time.perf_counter(), time.process_time()
            eps = [rollout_oracle(env, s) for s in range(episodes)]
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            env.close()
        steps = sum(len(e.actions) for e in eps)
        frames = per_step * (steps + episodes)   # every step and the reset
        name = mode if look is None else f"{mode}, {look}"
        out[name] = {"obs_mode": mode, "look": look, "episodes": episodes, "steps": steps, "frames": frames,
                     "s_per_episode": round(wall / episodes, 3), "cpu_s_per_episode": round(cpu / episodes, 3),
                     "steps_per_s": round(steps / wall, 1),
                     "frames_per_s": round(frames / wall, 1) if frames else None,
                     "frames_per_cpu_s": round(frames / cpu, 1) if frames else None}
    return out


def overview_cost(frames: int) -> dict:
    import envs
    from envs.core.surface import RENDER_SIZE

    env = gym.make(envs.env_id(TASK), render_mode="rgb_array")
    env.reset(seed=0)
    env.render()
    wall, cpu = rate(env.render, max(4, frames // 4))
    env.close()
    return {"size": list(RENDER_SIZE), "ms_per_frame": round(wall, 1), "cpu_ms_per_frame": round(cpu, 1)}


def maniskill_costs(steps: int) -> dict:
    """ManiSkill env steps/s in rgb (2 cameras, 64 px) vs state; the difference per frame."""
    import envs
    from envs.backends import maniskill

    if maniskill.problem():
        return {"error": maniskill.problem()}
    import torch

    torch.set_num_threads(1)   # as the other benches: a shared CPU makes threaded kernels wait
    out = {}
    for mode in ("state", "rgb"):
        kw = {"image_size": IMAGE_SIZE} if mode == "rgb" else {}
        env = gym.make(envs.env_id(TASK), sim="maniskill", obs_mode=mode, **kw)
        t = time.perf_counter()
        env.reset(seed=0)
        first = time.perf_counter() - t
        a = np.zeros(env.action_space.shape, np.float32)
        env.step(a)
        wall, cpu = rate(lambda: env.step(a), steps)
        env.close()
        out[mode] = {"ms_per_step": round(wall, 2), "cpu_ms_per_step": round(cpu, 2), "first_reset_s": round(first, 1)}
    out["camera_ms_per_frame"] = round((out["rgb"]["ms_per_step"] - out["state"]["ms_per_step"]) / 2, 2)
    out["camera_cpu_ms_per_frame"] = round((out["rgb"]["cpu_ms_per_step"] - out["state"]["cpu_ms_per_step"]) / 2, 2)
    out["shader_pack"] = "default"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # small defaults: the full look costs ~50 ms of CPU a frame here, and this CPU is shared
    ap.add_argument("--episodes", type=int, default=1, help="oracle demos per obs_mode and look")
    ap.add_argument("--rounds", type=int, default=2, help="the best (least disturbed) round counts")
    ap.add_argument("--frames", type=int, default=12, help="frames per round and look")
    ap.add_argument("--no-maniskill", action="store_true", help="skip the ManiSkill backend")
    ap.add_argument("--maniskill-only", action="store_true",
                    help="measure ManiSkill alone into the existing result file (its 'maniskill' entry)")
    args = ap.parse_args()
    if args.maniskill_only:
        result = json.loads(RESULT.read_text())
        result["maniskill"] = {**maniskill_costs(args.frames), "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                               "load_avg_1m": load(), "command": f"python -m bench.rendering --maniskill-only "
                                                                 f"--frames {args.frames}"}
        result["versions"] = versions("mujoco", "mani-skill", "sapien")
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"ManiSkill: {result['maniskill']}; wrote {RESULT}")
        return
    load_start, t0, m = load(), time.perf_counter(), machine()
    frames = frame_costs(args.rounds, args.frames)
    print(f"{'one 64 px camera frame, MuJoCo':34s} {'ms wall':>8s} {'ms CPU':>8s} {'frames/s':>9s}")
    for name, r in frames.items():
        print(f"{name:34s} {r['ms_per_frame']:8.2f} {r['cpu_ms_per_frame']:8.2f} {r['frames_per_s']:9.1f}")
    demos = demo_costs(args.episodes)
    print(f"\n{'stack_blocks oracle demos':34s} {'s/episode':>9s} {'steps/s':>8s} {'frames/s':>9s}")
    for name, r in demos.items():
        print(f"{name:34s} {r['s_per_episode']:9.2f} {r['steps_per_s']:8.1f} {r['frames_per_s'] or 0:9.1f}")
    overview = overview_cost(args.frames)
    print(f"\noverview camera {overview['size']}: {overview['ms_per_frame']} ms wall, {overview['cpu_ms_per_frame']} ms CPU")
    ms = {"error": "skipped (--no-maniskill)"} if args.no_maniskill else maniskill_costs(args.frames)
    print(f"ManiSkill: {ms}")
    result = {"benchmark": "observation camera rendering (MuJoCo plain vs full look; ManiSkill)",
              "command": (f"python -m bench.rendering --episodes {args.episodes} --rounds {args.rounds} "
                          f"--frames {args.frames}{' --no-maniskill' if args.no_maniskill else ''}"),
              "task": TASK, "image_size": IMAGE_SIZE, "cameras": 2, "mujoco_gl": os.environ["MUJOCO_GL"],
              "rounds": args.rounds, "frames": frames, "demos": demos, "overview": overview, "maniskill": ms,
              "load_avg_1m_start": load_start, "load_avg_1m_end": load(), "machine": m,
              "machine_short": machine_short(m), "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
              "duration_s": round(time.perf_counter() - t0, 1), "versions": versions("mujoco", "mani-skill", "sapien")}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average {load_start} -> {result['load_avg_1m_end']} on {m['cores']} cores; wrote {RESULT}")


if __name__ == "__main__":
    main()
