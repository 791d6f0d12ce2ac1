"""Sub-goal keypose discovery against the oracle's own phase boundaries, on every built-in task.

    python -m bench.keyposes [--episodes 5] [--seed-start 0] [--tasks stack_blocks,push_to_zone] [--sim maniskill]

For each task: ``--episodes`` oracle demos from the demo store (``train.demos.collect_demos``,
state mode, MuJoCo, cached; with ``--sim maniskill`` the oracle's own runs instead, see
``_episodes``; results to bench/results/keyposes.json, or keyposes_<sim>.json); each demo's contacts are recomputed by replaying its seed and
actions (checked against the stored proprioception); the oracle is re-run on the same seed to
read its phase events (``planners.oracle.PhaseEvent``; its actions must equal the stored ones).
Keyposes (``planners.subgoals.discover_keyposes``, default thresholds) are matched one-to-one
with the boundaries within a tolerance of 3 and of 8 control steps (0.15 s / 0.4 s at 20 Hz);
the first and last steps are not scored. Prints a table; writes bench/results/keyposes.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import asdict

import gymnasium as gym
import numpy as np

import envs
from bench.common import RESULTS, load, machine, machine_short, versions
from planners.subgoals import (KeyposeThresholds, Match, discover_keyposes, oracle_boundaries, record_oracle_episode,
                               replay_signals, score_keyposes, scored_steps)
from train.demos import collect_demos

TOLERANCES = (3, 8)  # control steps


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _episodes(task: str, episodes: int, seed_start: int, sim: str, env):
    """Signals with the oracle's events per episode. MuJoCo: the demo store's episodes, contacts by
    replay, events by re-running the oracle (whose actions must equal the stored ones). ManiSkill's
    PhysX CPU does not replay a stored episode bit for bit in one process (of 3 line_up demos, one
    replay diverged by 0.007 at step 34, caught by ``replay_signals``, and one oracle re-run chose
    different actions), so there the oracle's own runs are used."""
    if sim != "mujoco":
        for seed in range(seed_start, seed_start + episodes):
            signals, _, ok = record_oracle_episode(env, seed)
            if ok:
                yield signals
        return
    store = collect_demos(task, episodes, seed_start=seed_start, sim=sim, progress=False)
    for ep in store.episodes:
        signals = replay_signals(env, ep.seed, ep.actions, ep.proprio, ep.instruction)
        oracle, actions, _ = record_oracle_episode(env, ep.seed)
        if not np.array_equal(actions, ep.actions):
            raise RuntimeError(f"{task} seed {ep.seed}: the oracle's actions differ from the stored demo's")
        signals.events = oracle.events
        yield signals


def bench_task(task: str, episodes: int, seed_start: int, th: KeyposeThresholds, sim: str = "mujoco") -> dict:
    env = gym.make(envs.env_id(task), sim=sim)
    matches = {tol: Match(0, 0, 0) for tol in TOLERANCES}
    reasons, kinds, missed = Counter(), Counter(), Counter()
    per_episode = []
    for signals in _episodes(task, episodes, seed_start, sim, env):
        kps = discover_keyposes(signals, th)
        predicted, reference = scored_steps(kps, len(signals)), oracle_boundaries(signals)
        for tol in TOLERANCES:
            matches[tol] = matches[tol] + score_keyposes(predicted, reference, tol)
        for k in kps:
            reasons.update(k.reasons)
        for e in signals.events:
            if e.step in reference:
                kinds[e.kind] += 1
                if not any(abs(p - e.step) <= TOLERANCES[0] for p in predicted):
                    missed[e.kind] += 1
        per_episode.append({"seed": signals.seed, "length": len(signals), "keyposes": [k.to_dict() for k in kps],
                            "boundaries": [asdict(e) for e in signals.events]})
    env.close()
    return {"task": task, "episodes": len(per_episode),
            "match": {str(t): {**asdict(m), "precision": m.precision, "recall": m.recall} for t, m in matches.items()},
            "reasons": dict(reasons), "boundary_kinds": dict(kinds), f"missed_at_{TOLERANCES[0]}": dict(missed),
            "per_episode": per_episode}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--tasks", default="", help="comma-separated; default: every built-in task")
    p.add_argument("--sim", default="mujoco", choices=("mujoco", "maniskill"))
    p.add_argument("--out", default="", help="default: bench/results/keyposes.json (keyposes_<sim>.json off MuJoCo)")
    a = p.parse_args(argv)
    a.out = a.out or str(RESULTS / ("keyposes.json" if a.sim == "mujoco" else f"keyposes_{a.sim}.json"))
    tasks = [t for t in a.tasks.split(",") if t] or envs.list_tasks()
    th = KeyposeThresholds()
    t0, rows = time.time(), []
    for task in tasks:
        rows.append(bench_task(task, a.episodes, a.seed_start, th, a.sim))
    total = {t: Match(0, 0, 0) for t in TOLERANCES}
    head = f"{'task':20s} {'eps':>3s} {'bounds':>6s} {'found':>5s} " + " ".join(
        f"{'P@' + str(t):>6s} {'R@' + str(t):>6s}" for t in TOLERANCES)
    print(head)
    for r in rows:
        ms = {t: Match(**{k: r["match"][str(t)][k] for k in ("true_positives", "predicted", "reference")})
              for t in TOLERANCES}
        for t in TOLERANCES:
            total[t] = total[t] + ms[t]
        m = ms[TOLERANCES[0]]
        print(f"{r['task']:20s} {r['episodes']:3d} {m.reference:6d} {m.predicted:5d} "
              + " ".join(f"{_fmt(ms[t].precision):>6s} {_fmt(ms[t].recall):>6s}" for t in TOLERANCES))
    m = total[TOLERANCES[0]]
    print(f"{'all':20s} {sum(r['episodes'] for r in rows):3d} {m.reference:6d} {m.predicted:5d} "
          + " ".join(f"{_fmt(total[t].precision):>6s} {_fmt(total[t].recall):>6s}" for t in TOLERANCES))
    out = {"benchmark": "keyposes", "sim": a.sim, "thresholds": asdict(th), "tolerances_steps": list(TOLERANCES),
           "total": {str(t): {**asdict(v), "precision": v.precision, "recall": v.recall} for t, v in total.items()},
           "tasks": rows, "machine": (m := machine()), "machine_short": machine_short(m),
           "versions": versions("mujoco", "gymnasium"), "load": load(),
           "wall_s": round(time.time() - t0, 1),
           "command": " ".join(["python -m bench.keyposes", *(sys.argv[1:] if argv is None else argv)]),
           "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {a.out} ({out['wall_s']} s)")


if __name__ == "__main__":
    main()
