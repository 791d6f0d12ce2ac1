"""How busy the CPU is before training starts: it decides how torch's OpenMP threads wait.

OpenMP threads spin between torch ops by default. On an idle machine that is about twice as fast
as sleeping (OMP_WAIT_POLICY=PASSIVE): 125 against 250 ms per training step of the default
diffusion policy, 2 threads on 2 cores. When another process at normal priority keeps a core
busy, spinning threads starve each other and a step takes ~575 ms; sleeping threads take ~235.
Background work started with ``nice`` yields to us and does not count.
"""
from __future__ import annotations

import os
import time


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies from /proc/stat's first line, niced and idle time not counted as busy."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, _nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + system + irq + softirq + steal, sum(fields[:8])


def busy_cores(sample_s: float = 0.3) -> float:
    """Cores kept busy by other processes at normal priority, over a short sample (this process
    sleeps meanwhile). Off Linux: the 1-minute load average."""
    before = _cpu_times()
    if before is None:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    time.sleep(sample_s)
    after = _cpu_times()
    busy, total = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / total if total > 0 else 0.0


def choose_wait_policy() -> float:
    """Set OMP_WAIT_POLICY=PASSIVE when other work is using the CPU (unless the user set it);
    call before torch is imported. Returns the busy cores measured."""
    busy = busy_cores() if "OMP_WAIT_POLICY" not in os.environ else 0.0
    if busy >= 0.5:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return busy
