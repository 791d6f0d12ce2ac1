"""GravMAD tools on the command line.

    python -m policies.gravmad keyposes --env stack_blocks --episodes 5 --out kp/
    python -m policies.gravmad gravmap --env stack_blocks --seed 0 --keypose 0 --out gravmap.png

``keyposes``: runs the oracle on seeds ``--seed-start``.. (the seeds ``train.demos.collect_demos``
records, so these are the demo store's episodes: the simulation is deterministic) on ``--sim``
(mujoco, or maniskill), discovers the
keyposes (``planners.subgoals``) and writes, per episode, ``<env>_seed<k>.json`` (keyposes with
their sub-goals, the oracle's phase events, the thresholds), ``<env>_seed<k>_signals.png`` (the
signals with the keyposes marked) and ``<env>_seed<k>_frames.png`` (the scene at each keypose;
``--no-frames`` skips rendering), plus ``summary.json`` (precision/recall against the oracle).

``gravmap``: the GravMap of one discovered keypose's sub-goal (default config) drawn over the
scene's point cloud (``obs_mode=pointcloud``), coloured by cost and by gripper openness (a PNG).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np

import envs
from planners.subgoals import (KeyposeThresholds, Match, discover_keyposes, oracle_boundaries, record_oracle_episode,
                               score_keyposes, scored_steps)

TOLERANCE = 8  # control steps a keypose may sit from an oracle boundary and still match it


def render_at(env, seed: int, actions: np.ndarray, steps: list[int]) -> list[np.ndarray]:
    """The overview camera's frame at each of ``steps`` (the observation before that action),
    replaying ``actions`` from ``seed``."""
    env.reset(seed=seed)
    want, frames = set(steps), {}
    for t, a in enumerate(actions):
        if t in want:
            frames[t] = env.render()
        env.step(a)
    return [frames[s] for s in steps]


def keyposes_command(a: argparse.Namespace) -> int:
    from policies.gravmad.plots import frame_strip, plot_keyposes

    try:
        task = envs.get_task(a.env).name
    except Exception as err:  # the registry's own one-line message lists the known tasks
        print(f"error: {err}", file=sys.stderr)
        return 2
    if a.episodes < 1:
        print(f"error: --episodes={a.episodes} is invalid; allowed: 1 or more", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    th = KeyposeThresholds()
    env = gym.make(envs.env_id(task), sim=a.sim, render_mode="rgb_array", render_size=(320, 240))
    total, written = Match(0, 0, 0), []
    for seed in range(a.seed_start, a.seed_start + a.episodes):
        signals, actions, success = record_oracle_episode(env, seed)
        kps = discover_keyposes(signals, th)
        match = score_keyposes(scored_steps(kps, len(signals)), oracle_boundaries(signals), TOLERANCE)
        total = total + match
        stem = out / f"{task}_seed{seed}"
        record = {"task": task, "sim": a.sim, "seed": seed, "instruction": signals.instruction, "success": success,
                  "length": len(signals), "thresholds": asdict(th),
                  "keyposes": [{**k.to_dict(), "subgoal": k.subgoal.to_dict()} for k in kps],
                  "oracle_events": [asdict(e) for e in signals.events],
                  "match": {**asdict(match), "tolerance_steps": TOLERANCE}}
        stem.with_suffix(".json").write_text(json.dumps(record, indent=1))
        plot_keyposes(signals, kps, f"{stem}_signals.png", f"{task} seed {seed}: {signals.instruction}")
        files = [stem.with_suffix(".json").name, f"{stem.name}_signals.png"]
        if not a.no_frames:
            steps = [0] + [k.step for k in kps]
            frames = render_at(env, seed, actions, steps)
            labels = ["start"] + [f"t={k.step} {'+'.join(k.reasons)}\ngripper {'open' if k.gripper_open else 'closed'}"
                                  for k in kps]
            frame_strip(frames, labels, f"{stem}_frames.png")
            files.append(f"{stem.name}_frames.png")
        written += files
        print(f"{task} seed {seed}: {len(kps)} keyposes at steps {[k.step for k in kps]} "
              f"({', '.join('+'.join(k.reasons) for k in kps)}); oracle events at {[e.step for e in signals.events]}")
    env.close()
    summary = {"task": task, "sim": a.sim, "episodes": a.episodes, "seed_start": a.seed_start,
               "tolerance_steps": TOLERANCE, **asdict(total), "precision": total.precision, "recall": total.recall,
               "files": written}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    fmt = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
    print(f"precision {fmt(total.precision)}, recall {fmt(total.recall)} against the oracle's phase boundaries "
          f"(within {TOLERANCE} steps); wrote {len(written) + 1} files to {out}/")
    return 0


def gravmap_command(a: argparse.Namespace) -> int:
    from policies.gravmad.gravmap import GravMapConfig, gravmap_points
    from policies.gravmad.plots import plot_gravmap

    task = envs.get_task(a.env).name
    env = gym.make(envs.env_id(task))
    signals, actions, _ = record_oracle_episode(env, a.seed)
    kps = discover_keyposes(signals)
    if not 0 <= a.keypose < len(kps):
        print(f"error: --keypose={a.keypose} is invalid; allowed: 0..{len(kps) - 1} (this episode has "
              f"{len(kps)} keyposes)", file=sys.stderr)
        return 2
    kp = kps[a.keypose]
    cloud_env = gym.make(envs.env_id(task), obs_mode="pointcloud")
    obs, _ = cloud_env.reset(seed=a.seed)
    for act in actions[:kp.step]:  # the scene as it is at the keypose
        obs, *_ = cloud_env.step(act)
    cfg = GravMapConfig()
    pts = gravmap_points(kp.tcp_pos, kp.gripper_open, cfg, default_open=float(signals.gripper_cmd[kp.step - 1] > 0))
    plot_gravmap(pts, a.out, scene=obs["pointcloud"], subgoal=kp.tcp_pos, bounds=cfg.bounds,
                 title=f"{task} seed {a.seed}, keypose {a.keypose} (step {kp.step}, {'+'.join(kp.reasons)}): "
                       f"{len(pts)} GravMap points")
    print(f"wrote {a.out}: sub-goal {np.round(kp.tcp_pos, 3).tolist()} m, gripper "
          f"{'open' if kp.gripper_open else 'closed'}; {len(pts)} value-carrying points of {cfg.resolution}^3 voxels")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m policies.gravmad", description="GravMAD tools")
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keyposes", help="discover and draw the sub-goal keyposes of oracle demonstrations")
    k.add_argument("--env", required=True, help="a registered task, e.g. stack_blocks")
    k.add_argument("--episodes", type=int, default=5)
    k.add_argument("--seed-start", type=int, default=0)
    k.add_argument("--out", default="kp")
    k.add_argument("--sim", default="mujoco", choices=("mujoco", "maniskill"), help="the backend (default mujoco)")
    k.add_argument("--no-frames", action="store_true", help="skip rendering the frame strips")
    g = sub.add_parser("gravmap", help="draw the GravMap of one discovered keypose as a PNG")
    g.add_argument("--env", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--keypose", type=int, default=0, help="index into the episode's keyposes")
    g.add_argument("--out", default="gravmap.png")
    a = p.parse_args(argv)
    return keyposes_command(a) if a.command == "keyposes" else gravmap_command(a)


if __name__ == "__main__":
    sys.exit(main())
