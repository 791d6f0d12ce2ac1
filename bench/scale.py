"""Ray fan-out against one process: demos/min, evaluation episodes/min, gate candidates/min, and
Ray's own per-task overhead (docs/scale.md; figures in docs/benchmarks.md).

    nice -n 19 python -m bench.scale [--workers 2] [--demos 16] [--episodes 16] [--candidates 4]

Each workload runs once in this process (the serial path: ``collect_demos``, ``evaluate``,
``generate`` without a pool) and right after on a local Ray session of ``--workers`` workers (the
same calls with a :class:`fanout.Pool`); the Ray session is started before the timing starts and
its workers have imported the project (a warm-up item), so the figures are steady-state rates, and
the session's start is reported apart. Workloads: stack_blocks oracle demos (state obs) into a fresh
store; a diffusion policy at its default size (untrained; ``--eval-steps`` steps per episode) on
stack_blocks; the procedural curriculum towards ``tower_graded_cyl_top`` (goal mode) through the
gates into a fresh library. The
per-item costs of the serial path are what the paper estimate in docs/scale.md multiplies.

Ray's overhead: ``--noop`` empty items through ``Pool.map`` (seconds per item, all in flight),
and one item's round trip (submit, run, return), median of 20. torch runs on one thread per
process. Writes ``bench/results/scale.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import RESULTS, load, log, machine, machine_short, versions  # noqa: E402

RESULT = RESULTS / "scale.json"
TASK = "stack_blocks"
# a procedural curriculum (goal mode): its candidates are known up front, and the run does not
# embed the whole draft space first (exploratory mode does, a fixed cost of its own)
GATES_TARGET = "tower_graded_cyl_top"


def _noop(x):
    return x


def demos(n: int, pool) -> float:
    from train.demos import collect_demos

    with tempfile.TemporaryDirectory() as root:
        t = time.perf_counter()
        collect_demos(TASK, n, seed_start=0, store_root=root, progress=False, pool=pool)
        return time.perf_counter() - t


def policy_for_eval():
    from policies.diffusion import DiffusionConfig, DiffusionPolicy

    env = gym.make(f"roboforge/{TASK}-v0")
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(obs_dim=obs_dim, action_dim=action_dim))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(200, obs_dim)), rng.uniform(-1, 1, (200, action_dim)))
    return policy.eval()


def evaluation(policy, n: int, steps: int, pool) -> float:
    from train.evaluate import evaluate

    make_env = partial(gym.make, f"roboforge/{TASK}-v0", max_episode_steps=steps)
    t = time.perf_counter()
    evaluate(policy, make_env, range(100_000, 100_000 + n), progress=False, pool=pool)
    return time.perf_counter() - t


def gates(n: int, pool) -> tuple[float, dict]:
    from generation.library import Library
    from generation.pipeline import generate

    with tempfile.TemporaryDirectory() as root:
        t = time.perf_counter()
        summary = generate(Library(Path(root) / "lib"), count=n, mode="goal", target=GATES_TARGET, progress=False,
                           pool=pool)
        return time.perf_counter() - t, {"admitted": summary.admitted, "rejected": summary.rejected}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--demos", type=int, default=16)
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--eval-steps", type=int, default=60, help="steps per evaluation episode")
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--noop", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    from fanout import Pool

    out = {"machine": machine(), "versions": versions("ray", "mujoco", "torch"), "load_avg_1m_start": load(),
           "workers": args.workers, "task": TASK, "command": "nice -n 19 python -m bench.scale " + " ".join(
               f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())}
    policy = policy_for_eval()

    log(f"starting Ray with {args.workers} workers")
    t = time.perf_counter()
    pool = Pool(workers=args.workers)
    list(pool.map(_noop, range(args.workers)))
    out["ray_start_s"] = round(time.perf_counter() - t, 2)
    demos(args.workers, pool)   # warm-up: each worker imports the project and builds its env once
    evaluation(policy, args.workers, 2, pool)

    log("Ray: per-task overhead")
    t = time.perf_counter()
    list(pool.map(_noop, range(args.noop), window=args.noop))
    out["ray_s_per_noop_item_in_flight"] = round((time.perf_counter() - t) / args.noop, 5)
    trips = []
    for i in range(20):
        t = time.perf_counter()
        list(pool.map(_noop, [i]))
        trips.append(time.perf_counter() - t)
    out["ray_round_trip_s_median"] = round(statistics.median(trips), 5)

    # each workload serial then on Ray, back to back: a shared machine's load drifts over minutes
    serial, fanned = {}, {}
    for name, run in (("demos", lambda p: demos(args.demos, p)),
                      ("eval", lambda p: evaluation(policy, args.episodes, args.eval_steps, p)),
                      ("gates", lambda p: gates(args.candidates, p))):
        for label, p, into in (("serial", None, serial), ("Ray", pool, fanned)):
            log(f"{name}: {label}")
            result = run(p)
            if name == "gates":
                into["gates_s"], into["gates_result"] = result
            else:
                into[f"{name}_s"] = result
            into[f"{name}_load_avg_1m"] = load()
    out["incidents"] = pool.report()
    pool.close()

    per_min = lambda n, s: round(60 * n / s, 2)  # noqa: E731
    rows = {}
    for name, n, key in (("demos", args.demos, "demos_s"), ("eval_episodes", args.episodes, "eval_s"),
                         ("gate_candidates", args.candidates, "gates_s")):
        a, b = per_min(n, serial[key]), per_min(n, fanned[key])
        rows[name] = {"items": n, "serial_per_min": a, "ray_per_min": b, "ratio": round(b / a, 2),
                      "serial_s_per_item": round(serial[key] / n, 3)}
    out["load_avg_1m_after"] = {side: {k: v for k, v in d.items() if k.endswith("load_avg_1m")}
                                for side, d in (("serial", serial), ("ray", fanned))}
    out.update(rows=rows, same_admitted_set=serial["gates_result"] == fanned["gates_result"],
               gates_result=serial["gates_result"], load_avg_1m_end=load(), date=time.strftime("%Y-%m-%dT%H:%M:%S"))
    RESULT.write_text(json.dumps(out, indent=2) + "\n")
    log(f"{machine_short(out['machine'])}; load {out['load_avg_1m_start']} -> {out['load_avg_1m_end']}")
    for name, r in rows.items():
        log(f"{name}: {r['serial_per_min']}/min serial, {r['ray_per_min']}/min on {args.workers} Ray workers "
            f"({r['ratio']}x)")
    log(f"Ray overhead: {1000 * out['ray_s_per_noop_item_in_flight']:.2f} ms/item in flight, "
        f"{1000 * out['ray_round_trip_s_median']:.1f} ms round trip; start {out['ray_start_s']} s -> {RESULT}")


if __name__ == "__main__":
    main()
