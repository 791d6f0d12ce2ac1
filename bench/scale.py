"""Ray fan-out and DDP against one process: demos/min, evaluation episodes/min, gate
candidates/min, Ray's own per-task overhead, and the 2-process DDP trainer's samples/s with its
final weights compared (docs/scale.md; figures in docs/benchmarks.md, section 12).

    nice -n 19 python -m bench.scale          # everything, ~10 min on 2 quiet cores
    python -m bench.scale --only ddp --ddp-steps 2 --ddp-batch 8 --out /tmp/scale.json   # a smoke run

Ray workloads: each runs once in this process (the serial path: ``collect_demos``, ``evaluate``,
``generate`` without a pool) and right after on a local Ray session of ``--workers`` workers (the
same calls with a :class:`fanout.Pool`). Before any timing both sides are warm: the Ray session
is up and its workers have imported the project and built an env (the session's start is
reported apart), and this process has built the same env, rolled the policy and loaded the
embedding model with the built-in tasks' embeddings, so the figures are steady-state rates and
both paths do the same work:

- demos: ``--demos`` stack_blocks oracle demos (state obs) into a fresh store;
- evaluation: ``--episodes`` full-length stack_blocks episodes (the task's own step limit unless
  ``--eval-steps``) of a default-size diffusion policy (untrained, so no episode ends early),
  ``--eval-batch`` in lockstep: the defaults give the serial path 4 batches of 50 and each Ray
  worker 2 chunks of 50, the same per-chunk work on both sides;
- gates: ``--candidates`` procedural candidates through the sandboxed gates, as ``generate``
  runs by default (exploratory mode, most novel draft first) into a fresh library: one stream, as
  a user's ``--count 200`` is, not several short ones whose start and end leave workers idle.
  The draft space's embeddings are warm (the embedding cache) on both paths. Novelty embeds each
  candidate in this process on both paths; nothing else is embedded inside the timing.

DDP (``--ddp-steps``, ``--ddp-batch``): bench/scale_ddp.py trains the default diffusion policy
with the project's imitation trainer once as one process at the global batch, and once under
``accelerate launch --multi_gpu --num_processes 2`` (gloo on CPU) at half the batch per process
(the same global batch); samples/s = global batch x steps / training seconds (the processes'
start and imports are reported apart), and the two processes' final weights must be equal.

Ray's overhead: ``--noop`` empty items through ``Pool.map`` (seconds per item, all in flight),
and one item's round trip (submit, run, return), median of 20. torch runs on one thread per
process. Writes ``--out`` (default ``bench/results/scale.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
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
SECTIONS = ("demos", "eval", "gates", "ddp")


def _noop(x):
    return x


def _warm_worker(seconds: float) -> int:
    """On a worker: import what the gates workload runs there; held a moment so that the items of
    one warm-up batch land on different workers."""
    import generation.pipeline  # noqa: F401

    time.sleep(seconds)
    return os.getpid()


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


def evaluation(policy, n: int, steps: int | None, batch: int, pool) -> float:
    from train.evaluate import evaluate

    limit = {"max_episode_steps": steps} if steps else {}   # none: the task's own limit
    make_env = partial(gym.make, f"roboforge/{TASK}-v0", **limit)
    t = time.perf_counter()
    evaluate(policy, make_env, range(100_000, 100_000 + n), batch_size=batch, progress=False, pool=pool)
    return time.perf_counter() - t


def gates(n: int, pool) -> tuple[float, dict]:
    """``n`` exploratory candidates into a fresh library (a library with tasks would be registered
    in this process, and both paths admit the same names)."""
    from generation.library import Library
    from generation.pipeline import generate

    with tempfile.TemporaryDirectory() as root:
        t = time.perf_counter()
        summary = generate(Library(Path(root) / "lib"), count=n, mode="exploratory", progress=False, pool=pool)
        elapsed = time.perf_counter() - t
    return elapsed, {"attempted": summary.attempted, "admitted": summary.admitted, "rejected": summary.rejected}


def warm_driver(policy) -> None:
    """What the serial path would otherwise pay inside its timing: the env built, the policy
    rolled, the embedding model loaded with the built-in tasks' embeddings and structures and the
    exploratory draft space's embeddings (the Ray path would then find them cached)."""
    from generation.catalogue import procedural_space
    from generation.codegen_procedural import render
    from generation.embedding import builtin_embeddings, builtin_structures, canonical_text, embed

    demos(2, None)
    evaluation(policy, 2, 2, 2, None)
    builtin_embeddings()
    builtin_structures()
    embed([canonical_text(render(d), d.text) for d in procedural_space()])


def ddp(steps: int, global_batch: int) -> dict:
    """bench/scale_ddp.py as one process, then as 2 DDP processes (gloo) at the same global batch."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[1]),
                                                     os.environ.get("PYTHONPATH", "")] if p)}
    args = [str(steps), str(global_batch)]
    out = {"steps": steps, "global_batch": global_batch}
    for processes in (1, 2):
        with tempfile.TemporaryDirectory() as root:
            if processes == 1:
                cmd = [sys.executable, "-m", "bench.scale_ddp", root, *args]
            else:
                with socket.socket() as s:   # a free port for the process group's rendezvous
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
                cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                       "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                       "--main_process_port", str(port), "-m", "bench.scale_ddp", root, *args]
            log(f"ddp: {processes} process{'es' if processes > 1 else ''}")
            t = time.perf_counter()
            proc = subprocess.run(cmd, env=env, cwd=Path(__file__).resolve().parents[1], capture_output=True,
                                  text=True)
            wall = time.perf_counter() - t
            if proc.returncode:
                raise SystemExit(f"ddp with {processes} process(es) failed:\n{proc.stderr[-3000:]}")
            ranks = [json.loads((Path(root) / f"rank{i}.json").read_text()) for i in range(processes)]
            weights = [torch.load(Path(root) / f"rank{i}.pt") for i in range(processes)]
        train_s = max(r["train_s"] for r in ranks)
        out[f"processes_{processes}"] = {
            "train_s": round(train_s, 2), "wall_s": round(wall, 2), "start_s": round(wall - train_s, 2),
            "samples_per_s": round(global_batch * steps / train_s, 1),
            "batch_per_process": global_batch // processes, "final_loss": ranks[0]["final_loss"],
            "load_avg_1m": load()}
        if processes == 2:
            out["weights_equal_across_processes"] = bool(torch.equal(weights[0], weights[1]))
    out["ratio"] = round(out["processes_2"]["samples_per_s"] / out["processes_1"]["samples_per_s"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--demos", type=int, default=200)
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--eval-steps", type=int, default=0, help="steps per evaluation episode (0: the task's own limit)")
    ap.add_argument("--eval-batch", type=int, default=50, help="episodes in lockstep (evaluate's default)")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--noop", type=int, default=200)
    ap.add_argument("--ddp-steps", type=int, default=200)
    ap.add_argument("--ddp-batch", type=int, default=128, help="global batch (train.batch_size's default)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run, of {','.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args()
    only = [x for x in args.only.split(",") if x]
    if not only or set(only) - set(SECTIONS):
        raise SystemExit(f"--only={args.only} is invalid; allowed: a comma-separated subset of {','.join(SECTIONS)}")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    t_all = time.perf_counter()

    out = {"machine": machine(), "versions": versions("ray", "accelerate", "mujoco", "torch"),
           "load_avg_1m_start": load(), "workers": args.workers, "task": TASK, "sections": only,
           "command": "nice -n 19 python -m bench.scale " + " ".join(
               f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out")}
    rows = {}
    per_min = lambda n, s: round(60 * n / s, 2)  # noqa: E731
    ray_sections = [x for x in only if x != "ddp"]
    if ray_sections:
        from fanout import Pool

        policy = policy_for_eval()
        log("warming this process (env, policy, embedding model)")
        warm_driver(policy)
        log(f"starting Ray with {args.workers} workers")
        t = time.perf_counter()
        pool = Pool(workers=args.workers)
        list(pool.map(_noop, range(args.workers)))
        out["ray_start_s"] = round(time.perf_counter() - t, 2)
        # each worker imports the project and builds its env once, outside the timing
        demos(2 * args.workers, pool)
        evaluation(policy, args.workers, 2, 1, pool)
        list(pool.map(_warm_worker, [1.0] * args.workers))

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
        workloads = {"demos": ("demos", args.demos, lambda p: demos(args.demos, p)),
                     "eval": ("eval_episodes", args.episodes,
                              lambda p: evaluation(policy, args.episodes, args.eval_steps, args.eval_batch, p)),
                     "gates": ("gate_candidates", args.candidates, lambda p: gates(args.candidates, p))}
        results = {}
        for name in ray_sections:
            row, n, run = workloads[name]
            timing = {}
            for label, p in (("serial", None), ("Ray", pool)):
                log(f"{name}: {label}")
                result = run(p)
                if name == "gates":
                    result, results[label] = result
                timing[label] = (result, load())
            (a_s, a_load), (b_s, b_load) = timing["serial"], timing["Ray"]
            a, b = per_min(n, a_s), per_min(n, b_s)
            rows[row] = {"items": n, "serial_per_min": a, "ray_per_min": b, "ratio": round(b / a, 2),
                         "serial_s_per_item": round(a_s / n, 3), "ray_s_per_item": round(b_s / n, 3),
                         "load_avg_1m_after": {"serial": a_load, "ray": b_load}}
        if "eval" in ray_sections:
            out["eval"] = {"episodes": args.episodes, "steps_per_episode": args.eval_steps or "task limit",
                           "batch": args.eval_batch}
        if "gates" in ray_sections:
            out.update(gates_mode="exploratory", same_admitted_set=results["serial"] == results["Ray"],
                       gates_result=results["serial"])
        out["incidents"] = pool.report()
        pool.close()
    out["rows"] = rows
    if "ddp" in only:
        out["ddp"] = ddp(args.ddp_steps, args.ddp_batch)

    out.update(load_avg_1m_end=load(), wall_s=round(time.perf_counter() - t_all, 1),
               date=time.strftime("%Y-%m-%dT%H:%M:%S"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    log(f"{machine_short(out['machine'])}; load {out['load_avg_1m_start']} -> {out['load_avg_1m_end']}; "
        f"{out['wall_s'] / 60:.1f} min")
    for name, r in rows.items():
        log(f"{name}: {r['serial_per_min']}/min serial, {r['ray_per_min']}/min on {args.workers} Ray workers "
            f"({r['ratio']}x)")
    if ray_sections:
        log(f"Ray overhead: {1000 * out['ray_s_per_noop_item_in_flight']:.2f} ms/item in flight, "
            f"{1000 * out['ray_round_trip_s_median']:.1f} ms round trip; start {out['ray_start_s']} s")
    if "gates" in ray_sections:
        log(f"gates: same admitted set on both paths: {out['same_admitted_set']} ({out['gates_result']})")
    if "ddp" in only:
        d = out["ddp"]
        log(f"DDP: {d['processes_2']['samples_per_s']} samples/s on 2 processes vs {d['processes_1']['samples_per_s']} "
            f"on 1 ({d['ratio']}x), global batch {d['global_batch']}, {d['steps']} steps; final weights equal "
            f"across the 2 processes: {d['weights_equal_across_processes']}")
    log(f"-> {args.out}")


if __name__ == "__main__":
    main()
