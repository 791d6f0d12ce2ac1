"""Evaluation on unseen seeds, and videos of a mix of its successes and failures.

How the videos are made (correct and cheap): rendering a frame costs far more than the rest of a
step (tens of ms on a CPU, see ``bench/video.py``; a step is ~0.5 ms), and which episodes fail is
known only once they have run. So every episode first runs without rendering, all of them in
lockstep (the policy is queried in batches), and each episode's actions are kept (a few KB). The
episodes to film are then chosen from the outcomes (the first failures and the first successes)
and replayed: a fresh env, reset with the same seed, steps through the recorded actions with
rendering on. The policy is not queried again, so its sampling noise and batching play no part;
the physics is deterministic for a seed and an action sequence, so the replay is the evaluated
episode, and only the filmed episodes pay for rendering. Each replay is checked against the
evaluation (outcome and final observation, bit for bit); a mismatch is logged and named in the
file (``..._replay-differs.mp4``).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from envs.core.surface import RENDER_SIZE
from train.video import annotate_frame, write_mp4

log = logging.getLogger(__name__)
VIDEO_FPS = 20   # the control rate: videos play in real time
HOLD_END_S = 1.0  # the last frame (outcome, failed conditions) is held this long


def episode_noise_seed(run_seed: int, episode_seed: int) -> int:
    """The seed of one evaluation episode's sampler noise: a function of (run seed, episode seed)
    only, so a rerun, or the same episode in another batch, samples the same actions."""
    return int(np.random.SeedSequence([run_seed, episode_seed]).generate_state(1)[0])


def evaluate(policy, make_env: Callable, seeds, video_dir=None, num_videos: int = 0,
             batch_size: int = 50, progress: bool = True, video_size=RENDER_SIZE, run_seed: int = 0,
             pool=None) -> dict:
    """Roll ``policy`` out once per seed. ``policy.select_action`` must accept a batch (B, obs_dim).
    Each episode's sampler noise is seeded by :func:`episode_noise_seed` (``run_seed``, its seed).

    Success = ``info["success"]`` at any step. ``make_env(render_mode=..., render_size=...)`` makes
    one environment. Up to ``num_videos`` episodes, half the first failures and half the first
    successes (one kind fills in when the other is short), are written to
    ``video_dir/eval_seed<seed>_<success|fail>.mp4`` at ``video_size`` = (width, height) pixels.
    Timings go to ``eval_timings`` (rollout and video seconds, frames, ms per video frame).

    ``pool``: a :class:`fanout.Pool`; seed chunks then roll out on its workers (the policy is
    shipped once) and this process films the chosen episodes from the returned actions. The
    sampler noise depends on the episode's seed alone, so each seed's outcome is the serial one.
    """
    t0 = time.perf_counter()
    if pool is None:
        results, actions, final_obs = rollout(policy, make_env, list(seeds), batch_size, progress, run_seed)
    else:
        results, actions, final_obs = rollout_fanned(pool, policy, make_env, list(seeds), batch_size, progress,
                                                     run_seed)
    timings = {"rollout_s": round(time.perf_counter() - t0, 2)}
    videos = []
    if video_dir is not None and num_videos > 0:
        t1, frames = time.perf_counter(), 0
        for ep in choose_video_episodes(results, num_videos):
            path, n = record_video(make_env, ep, actions[ep["seed"]], final_obs[ep["seed"]], Path(video_dir),
                                   video_size)
            videos.append(str(path))
            frames += n
        video_s = time.perf_counter() - t1
        timings.update(video_s=round(video_s, 2), video_frames=frames,
                       video_ms_per_frame=round(1000 * video_s / max(frames, 1), 2))
    return {"success_rate": float(np.mean([r["success"] for r in results])),
            "num_episodes": len(results),
            "num_successes": int(sum(r["success"] for r in results)),
            "mean_return": float(np.mean([r["return"] for r in results])),
            "mean_length": float(np.mean([r["length"] for r in results])),
            "episodes": results, "videos": videos, "eval_timings": timings}


def rollout(policy, make_env: Callable, seeds: list[int], batch_size: int, progress: bool, run_seed: int = 0):
    """All episodes without rendering, ``batch_size`` at a time in lockstep. Returns the per-episode
    results (seed, success, final_success, return, length, failed: the condition names false at
    the end of a failed episode), and per seed the actions applied (T, action_dim) and the final
    observation."""
    results, actions, final_obs = [], {}, {}
    bar = tqdm(total=len(seeds), desc="eval", unit="ep", disable=not progress)
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start:start + batch_size]
        envs_ = [make_env(render_mode=None) for _ in chunk]
        first = [e.reset(seed=s) for e, s in zip(envs_, chunk)]
        obs = _stack([o for o, _ in first])
        conditions = [info["conditions"] for _, info in first]
        done = np.zeros(len(chunk), bool)
        success, ret, length = np.zeros(len(chunk), bool), np.zeros(len(chunk)), np.zeros(len(chunk), int)
        final_success = np.zeros(len(chunk), bool)
        taken = [[] for _ in chunk]
        noise_seeds = [episode_noise_seed(run_seed, s) for s in chunk]
        if getattr(policy, "reads_instruction", False):  # each episode's own instruction (colours vary by seed)
            policy.reset(instruction=[info["instruction"] for _, info in first], noise_seeds=noise_seeds)
        else:
            policy.reset(noise_seeds=noise_seeds)
        while not done.all():
            batch_actions = policy.select_action(_copy(obs))  # the policy may keep references in its history
            for i, e in enumerate(envs_):
                if done[i]:
                    continue
                a = np.array(batch_actions[i])
                o, r, term, trunc, info = e.step(a)
                taken[i].append(a)
                _assign(obs, i, o)
                ret[i], length[i] = ret[i] + r, length[i] + 1
                success[i] |= info["success"]
                final_success[i] = info["success"]
                conditions[i] = info["conditions"]
                if term or trunc:
                    done[i] = True
                    bar.update(1)
                    # successes among finished episodes (earlier chunks + this one)
                    bar.set_postfix(success=int(sum(x["success"] for x in results) + success[done].sum()))
        for i, s in enumerate(chunk):
            failed = [] if success[i] else [k for k, ok in conditions[i].items() if not ok]
            results.append({"seed": int(s), "success": bool(success[i]), "final_success": bool(final_success[i]),
                            "return": float(ret[i]), "length": int(length[i]), "failed": failed})
            actions[int(s)], final_obs[int(s)] = np.stack(taken[i]), _vector(obs, i)
        for e in envs_:
            e.close()
    bar.close()
    return results, actions, final_obs


def rollout_fanned(pool, policy, make_env: Callable, seeds: list[int], batch_size: int, progress: bool,
                   run_seed: int = 0):
    """:func:`rollout` with seed chunks on ``pool``'s workers (a few chunks per worker, each at most
    ``batch_size`` episodes in lockstep); the same three results, in seed order."""
    size = max(1, min(batch_size, -(-len(seeds) // (2 * pool.workers))))
    chunks = [seeds[i:i + size] for i in range(0, len(seeds), size)]
    results, actions, final_obs = [], {}, {}
    bar = tqdm(total=len(seeds), desc="eval", unit="ep", disable=not progress)
    for r, a, f in pool.map(_rollout_chunk, [(make_env, c, run_seed) for c in chunks], shared=policy,
                            label=lambda item: f"eval seeds {item[1][0]}..{item[1][-1]}"):
        results += r
        actions.update(a)
        final_obs.update(f)
        bar.update(len(r))
        bar.set_postfix(success=sum(x["success"] for x in results))
    bar.close()
    return results, actions, final_obs


def _rollout_chunk(policy, item):
    """On a worker: one chunk's :func:`rollout` (one torch thread: the worker has one CPU)."""
    import torch

    torch.set_num_threads(1)
    make_env, seeds, run_seed = item
    return rollout(policy, make_env, seeds, len(seeds), False, run_seed)


# Observations are flat vectors, or Dicts (image modes) batched key by key.
def _stack(observations: list):
    if isinstance(observations[0], dict):
        return {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return np.stack(observations)


def _copy(obs):
    return {k: v.copy() for k, v in obs.items()} if isinstance(obs, dict) else obs.copy()


def _assign(batch, i: int, o) -> None:
    if isinstance(batch, dict):
        for k, v in o.items():
            batch[k][i] = v
    else:
        batch[i] = o


def _vector(obs, i: int | None = None) -> np.ndarray:
    """The flat vector of one observation (a Dict's ``state``), what a replay is checked against."""
    v = obs["state"] if isinstance(obs, dict) else obs
    return np.array(v if i is None else v[i])


def choose_video_episodes(results: list[dict], num_videos: int) -> list[dict]:
    """Up to ``num_videos`` episodes to film, in seed order: the first failures and the first
    successes, half each (failures get the odd one); when one kind is short the other fills in."""
    fails = [r for r in results if not r["success"]]
    wins = [r for r in results if r["success"]]
    n_fail = min(len(fails), (num_videos + 1) // 2)
    n_win = min(len(wins), num_videos - n_fail)
    n_fail = min(len(fails), num_videos - n_win)
    return sorted(fails[:n_fail] + wins[:n_win], key=lambda r: r["seed"])


def record_video(make_env: Callable, episode: dict, actions: np.ndarray, final_obs: np.ndarray,
                 video_dir: Path, size) -> tuple[Path, int]:
    """Replay ``episode`` (its seed, then ``actions``) with rendering on, annotate every frame,
    hold the last one ``HOLD_END_S`` with the outcome (a failure names its failed conditions) and
    write ``eval_seed<seed>_<success|fail>.mp4``. Returns the path and the number of frames."""
    seed = episode["seed"]
    replay = {}  # what the replay ended with, filled as the frames stream into the encoder

    def frames():
        env = make_env(render_mode="rgb_array", render_size=tuple(size))
        try:
            obs, info = env.reset(seed=seed)
            limit = env.spec.max_episode_steps if env.spec is not None else None
            status = f"seed {seed}   step {{}}{'/' + str(limit) if limit else ''}"
            success, failed = False, ()
            frame = annotate_frame(env.render(), info["instruction"], status.format(0), success=False)
            yield frame
            for t, a in enumerate(actions, start=1):
                obs, _, term, trunc, info = env.step(a)
                success |= info["success"]
                if t == len(actions) and not success:
                    failed = [k for k, ok in info["conditions"].items() if not ok]
                frame = annotate_frame(env.render(), info["instruction"], status.format(t), success=success,
                                       failed=failed)
                yield frame
            for _ in range(round(HOLD_END_S * VIDEO_FPS)):
                yield frame
            replay.update(success=success, obs=obs)
        finally:
            env.close()

    tmp = video_dir / f".eval_seed{seed}.tmp.mp4"
    write_mp4(frames(), tmp, fps=VIDEO_FPS)
    outcome = "success" if episode["success"] else "fail"
    name = f"eval_seed{seed}_{outcome}.mp4"
    if replay["success"] != episode["success"] or not np.array_equal(_vector(replay["obs"]), final_obs):
        log.warning("eval seed %d: the rendered replay differs from the evaluated episode (evaluated %s, "
                    "replay %s); the video shows the replay", seed, outcome,
                    "success" if replay["success"] else "fail")
        name = f"eval_seed{seed}_{outcome}_replay-differs.mp4"
    path = tmp.replace(video_dir / name)
    return path, len(actions) + 1 + round(HOLD_END_S * VIDEO_FPS)
