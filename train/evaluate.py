"""Evaluation on unseen seeds: all episodes step in lockstep so the policy is queried in batches."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from train.video import write_mp4


def episode_noise_seed(run_seed: int, episode_seed: int) -> int:
    """The seed of one evaluation episode's sampler noise: a function of (run seed, episode seed)
    only, so a rerun, or the same episode in another batch, samples the same actions."""
    return int(np.random.SeedSequence([run_seed, episode_seed]).generate_state(1)[0])


def evaluate(policy, make_env: Callable, seeds, video_dir=None, num_videos: int = 0,
             batch_size: int = 50, progress: bool = True, run_seed: int = 0) -> dict:
    """Roll ``policy`` out once per seed. ``policy.act`` must accept a batch (B, obs_dim).
    Each episode's sampler noise is seeded by :func:`episode_noise_seed` (``run_seed``, its seed).

    Success = ``info["success"]`` at any step. The first ``num_videos`` seeds are rendered to
    ``video_dir/eval_seed<seed>_<success|fail>.mp4``.
    """
    seeds = list(seeds)
    results, videos = [], []
    bar = tqdm(total=len(seeds), desc="eval", unit="ep", disable=not progress)
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start:start + batch_size]
        render = [start + i < num_videos and video_dir is not None for i in range(len(chunk))]
        envs_ = [make_env(render_mode="rgb_array" if r else None) for r in render]
        obs = np.stack([e.reset(seed=s)[0] for e, s in zip(envs_, chunk)])
        frames = [[e.render()] if r else None for e, r in zip(envs_, render)]
        done = np.zeros(len(chunk), bool)
        success, ret, length = np.zeros(len(chunk), bool), np.zeros(len(chunk)), np.zeros(len(chunk), int)
        final_success = np.zeros(len(chunk), bool)
        policy.reset(noise_seeds=[episode_noise_seed(run_seed, s) for s in chunk])
        while not done.all():
            actions = policy.act(obs.copy())  # the policy may keep references in its history
            for i, e in enumerate(envs_):
                if done[i]:
                    continue
                o, r, term, trunc, info = e.step(actions[i])
                obs[i], ret[i], length[i] = o, ret[i] + r, length[i] + 1
                success[i] |= info["success"]
                final_success[i] = info["success"]
                if frames[i] is not None:
                    frames[i].append(e.render())
                if term or trunc:
                    done[i] = True
                    bar.update(1)
                    # successes among finished episodes (earlier chunks + this one)
                    bar.set_postfix(success=int(sum(x["success"] for x in results) + success[done].sum()))
        for i, s in enumerate(chunk):
            results.append({"seed": int(s), "success": bool(success[i]), "final_success": bool(final_success[i]),
                            "return": float(ret[i]), "length": int(length[i])})
            if frames[i] is not None:
                name = f"eval_seed{s}_{'success' if success[i] else 'fail'}.mp4"
                videos.append(str(write_mp4(frames[i], Path(video_dir) / name)))
        for e in envs_:
            e.close()
    bar.close()
    return {"success_rate": float(np.mean([r["success"] for r in results])),
            "num_episodes": len(results),
            "num_successes": int(sum(r["success"] for r in results)),
            "mean_return": float(np.mean([r["return"] for r in results])),
            "mean_length": float(np.mean([r["length"] for r in results])),
            "episodes": results, "videos": videos}
