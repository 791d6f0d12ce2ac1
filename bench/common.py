"""What every bench script shares: the worker protocol (both ends) and the machine description.

Standard library only: the peer workers import this file from their own virtual environments
(ManiSkill, robosuite, LeRobot), which have none of roboforge's dependencies
(``tests/test_bench_report.py`` keeps it so).

A worker is a script that measures one thing and prints exactly one JSON line (the last line of
its stdout) via :func:`emit`; a driver starts it with the right interpreter via
:func:`run_worker` and reads that line back.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # workers run from the repo root, so `bench.*` imports
RESULTS = ROOT / "bench" / "results"


# -- the worker's side -----------------------------------------------------------------------
def versions(*dists: str) -> dict[str, str]:
    """Installed versions of the named distributions (``"absent"`` when not installed)."""
    out = {"python": platform.python_version()}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            out[d] = "absent"
    return out


def load() -> float:
    """1-minute load average (runnable processes): above the core count means a busy machine."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def best_rate(fn, rounds: int) -> tuple[float, list[float]]:
    """Run ``fn() -> rate`` ``rounds`` times; the best round counts (a shared CPU only ever slows
    a round down, so the maximum is the least disturbed estimate), all are kept for the record."""
    rates = [fn() for _ in range(rounds)]
    return max(rates), [round(r, 2) for r in rates]


def median_ms(samples_s: list[float]) -> float:
    return round(1000 * statistics.median(samples_s), 3)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def emit(result: dict) -> None:
    """The worker's answer: one JSON line, last on stdout."""
    result.setdefault("load_avg_1m_end", load())
    sys.stdout.flush()
    print(json.dumps(result, default=float), flush=True)


# -- the driver's side -----------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_worker(python: Path | str, module: str, args: list[str], timeout: float) -> dict:
    """Run ``python -m module args`` from the repo root; its last JSON stdout line is its answer,
    or ``{"error": ...}`` (exit status and stderr tail, or the timeout) when there is none."""
    cmd = [str(python), "-m", module, *args]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    log(f"{Path(python).parent.parent.name}: python -m {module} {' '.join(args)}")
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        tail = (r.stderr or r.stdout).strip().splitlines()[-6:]
        return {"error": f"exit {r.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


# -- the machine, recorded in every result file ----------------------------------------------
def machine() -> dict:
    """CPU model, cores, memory, OS, GPU and the 1-minute load average now."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    os_name = platform.platform()
    try:
        rel = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        os_name = rel.get("PRETTY_NAME", os_name).strip('"')
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "os": os_name, "gpu": gpu_name(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}


def gpu_name() -> str:
    """The first NVIDIA GPU's name from nvidia-smi (no torch import), or "none"."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
        names = out.stdout.strip().splitlines() if out.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        names = []
    return f"{len(names)}x {names[0]}" if names else "none"


def machine_short(m: dict) -> str:
    """One line for the report's Machine column."""
    gpu = "no GPU" if m.get("gpu", "none") == "none" else m["gpu"]
    return f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']:.0f} GiB, {m['os']}, {gpu}"


def _num(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def _cm(rollout: dict, phase: str) -> str:
    """' (abs 5.1 cm, rel 12.6 cm)': the guessed places' and the guessed places-minus-TCP's errors."""
    if rollout.get(f"{phase}_abs_cm") is None:
        return ""
    return f" (abs {rollout[f'{phase}_abs_cm']:.1f} cm, rel {rollout[f'{phase}_rel_cm']:.1f} cm)"


def _near(rollout: dict) -> str:
    """'; first object 1.6 cm off with the TCP under 3 cm from it, ...' (bench/condition_use.py NEAR_BINS)."""
    bins = {k: v for k, v in (rollout.get("first_object_abs_cm_by_tcp_distance") or {}).items() if v}
    if not bins:
        return ""
    return "; first object " + ", ".join(f"{v[0]:.1f} cm off with the TCP {k} from it" for k, v in bins.items())


def position_note(row: dict) -> str:
    """'; position head error / spread ...' for a probed policy with a position head (also on its
    own rollouts with ``--rollouts``); '' without one."""
    err = row.get("position_head_error")
    if isinstance(err, dict):   # with --rollouts: training windows, then each task's own episodes
        return (f"; position head error / spread {err['training_windows']:.3f} on training windows, on rollouts "
                + ", ".join(f"{r['task']}{' driven by the oracle' if r.get('driver') == 'oracle' else ''}: first step "
                            f"{_num(r['first_step'])}, gripper open {_num(r['gripper_open'])}{_cm(r, 'gripper_open')}, "
                            f"closed {_num(r['gripper_closed'])}{_cm(r, 'gripper_closed')} "
                            f"({r['successes']}/{len(r['seeds'])} succeeded){_near(r)}"
                            for r in err["rollouts"]))
    return "" if err is None else f"; position head error / spread {err:.3f}"
