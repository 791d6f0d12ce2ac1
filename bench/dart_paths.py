"""How far DART demos wander from the expert's path, and whether the oracle still succeeds.

    python -m bench.dart_paths --task stack_blocks --seeds 20 --noise 0.1,0.2,0.3

For each noise std σ (action units; ``data.demo_noise``) and seeds ``--seed-start`` ..: the noisy
oracle's success, steps, the farthest its TCP gets from the noise-free episode's TCP path of the
same seed, and the mean |xyz| of its recorded (clean) labels; beside the same for an oracle that
plans from its own path instead of from where the noise left the arm (the first DART version).
A table + ``bench/results/dart_paths.json``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import gymnasium as gym
import numpy as np

import envs
from bench.common import RESULTS, load, log, machine, machine_short, versions
from planners.oracle import PickPlaceOracle


class OwnPathOracle(PickPlaceOracle):
    """The first DART version: each move goes on from the oracle's own path."""

    def _reanchor(self, rotation: bool) -> None:
        pass


def episode(env, oracle_cls, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """TCP path, clean labels and success of one (noisy) oracle episode."""
    oracle = oracle_cls(env, noise, seed)
    env.reset(seed=seed)
    oracle.reset()
    tcp, labels = [], []
    while True:
        action = oracle.act()
        labels.append(oracle.clean_action.copy())
        *_, terminated, truncated, info = env.step(action)
        tcp.append(env.unwrapped.scene_state().tcp_pos.copy())
        if terminated or truncated:
            return np.array(tcp), np.array(labels), bool(info["success"])


def measure(env, oracle_cls, noise: float, seeds: range, expert: dict) -> dict:
    wins, steps, off, label = 0, [], [], []
    for seed in seeds:
        tcp, labels, success = episode(env, oracle_cls, seed, noise)
        wins += success
        steps.append(len(tcp))
        off.append(float(np.linalg.norm(tcp[:, None] - expert[seed][None], axis=-1).min(1).max()))
        label.append(float(np.abs(labels[:, :3]).mean()))
    return {"successes": wins, "episodes": len(seeds), "mean_steps": float(np.mean(steps)),
            "off_path_mm_mean": 1000 * float(np.mean(off)), "off_path_mm_median": 1000 * float(np.median(off)),
            "label_xyz_mean": float(np.mean(label))}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="stack_blocks")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--noise", default="0.1,0.2,0.3")
    p.add_argument("--out", default=str(RESULTS / "dart_paths.json"))
    a = p.parse_args(argv)
    env = gym.make(envs.env_id(a.task))
    seeds = range(a.seed_start, a.seed_start + a.seeds)
    t0 = time.perf_counter()
    expert = {s: episode(env, PickPlaceOracle, s, 0.0)[0] for s in seeds}
    rows = []
    for noise in (float(x) for x in a.noise.split(",")):
        for name, cls in (("re-plans from the noisy arm", PickPlaceOracle), ("plans from its own path", OwnPathOracle)):
            r = {"noise": noise, "oracle": name, **measure(env, cls, noise, seeds, expert)}
            log(f"σ={noise} {name}: {r['successes']}/{r['episodes']}, off path {r['off_path_mm_mean']:.1f} mm")
            rows.append(r)
    env.close()
    out = {"task": a.task, "seeds": [seeds.start, seeds.stop - 1], "rows": rows,
           "wall_s": round(time.perf_counter() - t0, 1), "load_avg_1m_end": load(),
           "machine_short": machine_short(machine()), "versions": versions("mujoco", "gymnasium"),
           "command": "python -m bench.dart_paths " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])),
           "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print("| σ | oracle | success | steps | farthest from the expert's path, mean (median) | mean abs label xyz |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['noise']} | {r['oracle']} | {r['successes']}/{r['episodes']} | {r['mean_steps']:.0f} "
              f"| {r['off_path_mm_mean']:.1f} mm ({r['off_path_mm_median']:.1f}) | {r['label_xyz_mean']:.3f} |")


if __name__ == "__main__":
    main()
