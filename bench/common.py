"""Helpers every bench worker shares, ours and the peers' alike.

Standard library only: the peer workers import this file from their own virtual environments
(ManiSkill, robosuite, LeRobot), which have none of roboforge's dependencies.

A worker is a script that measures one thing and prints exactly one JSON line (the last line of
its stdout) via :func:`emit`; ``bench.run`` starts it with the right interpreter and reads it.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata


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
