"""Running the benchmarks: each one starts its workers (ours with the project's interpreter, each
peer with its own venv's), alternates them, keeps the best round of each side and computes the
ratios. :func:`run_benchmark` writes the outcome to ``<out_dir>/<benchmark>.json``."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.common import RESULTS, ROOT, log, machine, machine_short, run_worker


def best(results: list[dict], key: str) -> dict:
    """The result with the highest ``key`` among those without an error (or the last error)."""
    ok = [r for r in results if "error" not in r]
    return max(ok, key=lambda r: r[key]) if ok else results[-1]


def ratio(a, b, digits: int = 2):
    try:
        return round(a / b, digits) if a and b else None
    except TypeError:
        return None


def _get(d: dict, key: str):
    """``d[key]`` of a worker's answer, None when the worker failed (so its ratios are None)."""
    return d.get(key) if "error" not in d else None


def _peer_missing(peers: dict, name: str) -> dict:
    return {"error": peers.get(f"{name}_why", "peer not run")}


# -- one function per benchmark: (parsed CLI args, peer interpreters) -> result ---------------
def bench_throughput(a: argparse.Namespace, peers: dict) -> dict:
    steps, rounds = (600, 2) if a.quick else (2000, 3)
    common = ["--steps", str(steps), "--rounds", str(rounds)]
    ours, ms, rs = [], [], []
    for rep in range(a.repeats):
        last = rep == a.repeats - 1
        ours.append(run_worker(sys.executable, "bench.throughput", common + (["--profile"] if last else []), 900))
        if peers.get("maniskill"):
            ms.append(run_worker(peers["maniskill"], "bench.peers.maniskill_throughput", common, 1200))
        if peers.get("robosuite"):
            rs.append(run_worker(peers["robosuite"], "bench.peers.robosuite_throughput", common, 1200))
    o = best(ours, "env_steps_per_cpu_s") if all("error" not in r for r in ours) else ours[-1]
    prof = next((r["profile"] for r in reversed(ours) if "profile" in r), None)
    if prof and "profile" not in o:
        o = {**o, "profile": prof}
    m = best(ms, "env_steps_per_cpu_s") if ms else _peer_missing(peers, "maniskill")
    r = best(rs, "env_steps_per_cpu_s") if rs else _peer_missing(peers, "robosuite")
    return {"roboforge": o, "maniskill": m, "robosuite": r, "repeats": a.repeats, "ratios": {
        "vs_maniskill_cpu_time": ratio(_get(o, "env_steps_per_cpu_s"), _get(m, "env_steps_per_cpu_s")),
        "vs_maniskill_wall": ratio(_get(o, "env_steps_per_s"), _get(m, "env_steps_per_s")),
        "vs_robosuite_cpu_time": ratio(_get(o, "env_steps_per_cpu_s"), _get(r, "env_steps_per_cpu_s")),
        "vs_robosuite_wall": ratio(_get(o, "env_steps_per_s"), _get(r, "env_steps_per_s")),
        "floor_over_ours_cpu_time": ratio(_get(o, "floor_steps_per_cpu_s"), _get(o, "env_steps_per_cpu_s")),
        "floor_over_ours_wall": ratio(_get(o, "floor_steps_per_s"), _get(o, "env_steps_per_s")),
    }}


def bench_scaling(a: argparse.Namespace, peers: dict) -> dict:
    res = run_worker(sys.executable, "bench.scaling", ["--steps", "150" if a.quick else "500"], 900)
    return {"roboforge": res}  # the ManiSkill3 GPU num_envs sweep: bench/maniskill_gpu.py (CUDA)


def bench_demos(a: argparse.Namespace, peers: dict) -> dict:
    n = "10" if a.quick else "40"
    ours, theirs = [], []
    for _ in range(a.repeats):
        ours.append(run_worker(sys.executable, "bench.demos", ["--episodes", n], 900))
        if peers.get("maniskill"):
            theirs.append(run_worker(peers["maniskill"], "bench.peers.maniskill_demos", ["--episodes", n], 1800))
    o = best(ours, "demos_per_cpu_min")
    m = best(theirs, "demos_per_cpu_min") if theirs else _peer_missing(peers, "maniskill")
    return {"roboforge": o, "maniskill": m, "ratios": {
        "demos_per_min_wall": ratio(_get(o, "demos_per_min"), _get(m, "demos_per_min")),
        "demos_per_min_cpu_time": ratio(_get(o, "demos_per_cpu_min"), _get(m, "demos_per_cpu_min"))}}


def bench_diffusion(a: argparse.Namespace, peers: dict) -> dict:
    args = ["--steps", "6" if a.quick else "15", "--rounds", "1" if a.quick else "3",
            "--calls", "6" if a.quick else "30"]
    ours, lr = [], []
    for _ in range(a.repeats):
        ours.append(run_worker(sys.executable, "bench.diffusion", args, 1200))
        if peers.get("lerobot"):
            lr.append(run_worker(peers["lerobot"], "bench.peers.lerobot_diffusion", args, 1800))
    o = best(ours, "train_samples_per_cpu_s")
    le = best(lr, "train_samples_per_cpu_s") if lr else _peer_missing(peers, "lerobot")
    ol = le.get("roboforge_same_torch", {"error": le.get("error", "not run")})
    return {"roboforge": o, "roboforge_same_torch": ol, "lerobot": le, "ratios": {
        # same process, same torch build, alternating rounds: the implementation difference alone
        "train_same_torch_cpu_time": ratio(_get(ol, "train_samples_per_cpu_s"), _get(le, "train_samples_per_cpu_s")),
        "train_same_torch_wall": ratio(_get(ol, "train_samples_per_s"), _get(le, "train_samples_per_s")),
        "latency_speedup_same_torch_cpu_time": ratio(_get(le, "chunk_latency_cpu_ms"),
                                                     _get(ol, "chunk_latency_cpu_ms")),
        "latency_speedup_same_torch_wall": ratio(_get(le, "chunk_latency_ms"), _get(ol, "chunk_latency_ms")),
        # what a user of each gets out of the box (our torch 2.13 CPU build vs LeRobot's pinned torch)
        "train_as_installed_cpu_time": ratio(_get(o, "train_samples_per_cpu_s"), _get(le, "train_samples_per_cpu_s")),
        "latency_speedup_as_installed_cpu_time": ratio(_get(le, "chunk_latency_cpu_ms"),
                                                       _get(o, "chunk_latency_cpu_ms"))}}


def latest_demo_run(sim: str = "mujoco") -> Path | None:
    """The newest `make demo`-style run (diffusion policy on stack_blocks, demos and policy on
    ``sim``, metrics written), or None."""
    runs = sorted(ROOT.glob("outputs/**/metrics.json"), key=lambda p: p.stat().st_mtime)
    want = {"policy": "diffusion", "task": "stack_blocks", "sim": sim, "demo_sim": sim}

    def is_demo(m: dict) -> bool:  # runs from before demo_sim existed used their own sim
        return all(m.get(k, m.get("sim") if k == "demo_sim" else None) == v for k, v in want.items())
    runs = [p for p in runs if is_demo(json.loads(p.read_text()))]
    return runs[-1].parent if runs else None


def bench_export(a: argparse.Namespace, peers: dict) -> dict:
    """Exported policy latency vs torch eager (same process, alternating calls) and the exported
    `make demo` policy's success next to the torch one's on the same unseen seeds."""
    args = ["--calls", "10" if a.quick else "40", "--rounds", "1" if a.quick else "3"]
    run = latest_demo_run()
    if run is not None and (run / "checkpoints" / "last").exists():
        args += ["--checkpoint", str(run / "checkpoints" / "last"), "--episodes", "10" if a.quick else "50"]
    o = run_worker(sys.executable, "bench.export", args, 1800)  # rounds alternate inside the worker
    return {"roboforge": o, "run_dir": str(run.relative_to(ROOT)) if run else None}


def _run_summary(run: Path) -> dict:
    p = run / "metrics.json"
    m = json.loads(p.read_text())
    keep = {k: m.get(k) for k in ("success_rate", "num_successes", "num_episodes", "wall_time_s", "task", "sim",
                                  "policy")}
    cfg = run / "config.yaml"
    return {**keep, "run_dir": str(run.relative_to(ROOT)),
            "run_finished": dt.datetime.fromtimestamp(p.stat().st_mtime).isoformat(timespec="seconds"),
            "config": cfg.read_text() if cfg.exists() else None}


def bench_learning(a: argparse.Namespace, peers: dict) -> dict:
    """The latest `make demo` run, and the same job on ManiSkill (`train.py sim=maniskill`). A run
    whose outputs/ are gone (a fresh checkout) keeps its last recorded figure."""
    out = {}
    last = RESULTS / "learning.json"
    previous = json.loads(last.read_text()) if last.exists() else {}
    for key, sim, how in (("roboforge", "mujoco", "run `make demo`"),
                          ("maniskill", "maniskill", "run `python train.py env=stack_blocks sim=maniskill`")):
        run = latest_demo_run(sim)
        kept = previous.get(key, {"error": "none"})
        if run:
            out[key] = {**_run_summary(run), "machine_short": machine_short(machine())}
        elif "error" not in kept:
            out[key] = {"machine_short": previous.get("machine_short", "—"), **kept}
        else:
            out[key] = {"error": f"no {sim} stack_blocks diffusion run in outputs/ yet: {how}, "
                                 "then `python -m bench.run --only learning`"}
    return out


@dataclass(frozen=True)
class Benchmark:
    """A benchmark ``python -m bench.run`` runs: its function and the peer venvs it needs."""
    run: Callable[[argparse.Namespace, dict], dict]
    peers: tuple[str, ...] = ()


# in the order they run
BENCHMARKS = {
    "throughput": Benchmark(bench_throughput, peers=("maniskill", "robosuite")),
    "scaling": Benchmark(bench_scaling),
    "demos": Benchmark(bench_demos, peers=("maniskill",)),
    "diffusion": Benchmark(bench_diffusion, peers=("lerobot",)),
    "learning": Benchmark(bench_learning),
    "export": Benchmark(bench_export),
}


def run_benchmark(name: str, a: argparse.Namespace, peers: dict, m: dict, command: str, out_dir: Path) -> dict:
    """Run benchmark ``name`` and write ``out_dir/<name>.json`` with the date, the machine ``m``
    (as it was at the start, plus the load average now) and the ``command`` that ran it."""
    t0 = time.time()
    res = BENCHMARKS[name].run(a, peers)
    res = {"benchmark": name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "command": command, "machine": {**m, "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
           "machine_short": machine_short(m), "duration_s": round(time.time() - t0, 1), **res}
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    log(f"{name}: {res['duration_s']:.0f} s -> {path.relative_to(ROOT)}")
    return res
