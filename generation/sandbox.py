"""Run a candidate task program in a separate, limited process.

Each call starts ``python -m generation.runner`` (the venv's interpreter) in a fresh scratch
directory with:
- RLIMIT_CPU (CPU seconds), RLIMIT_AS (address space), RLIMIT_FSIZE (largest file it may write)
  and RLIMIT_CORE = 0, set in the child before exec;
- a wall-clock limit; on expiry the child's whole process group is SIGKILLed
  (``start_new_session=True`` + ``os.killpg``), and the group is killed after every run anyway so
  nothing the candidate started can linger;
- walls around it (:mod:`generation.isolation`): under bubblewrap where it runs (read-only root,
  the user's and the project's files hidden, only the scratch dir writable, no network, its own
  namespaces), else ``unshare --net --pid`` where allowed; the runner's audit hook refuses
  writes outside the scratch dir, network calls and new processes regardless;
- cwd, HOME and TMPDIR in the scratch dir, and a minimal environment (no API keys leak in).

The scratch dir is deleted afterwards. Nothing here imports the candidate into this process.
"""
from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from generation import isolation as walls

REPO_ROOT = walls.REPO_ROOT
LOG_TAIL = 4000  # characters of the child's log kept in a result


@dataclass(frozen=True)
class Limits:
    """Per-process limits: CPU seconds, wall seconds, address space (MiB), largest file (MiB)."""

    cpu_s: float = 60.0
    wall_s: float = 120.0
    memory_mb: int = 4096
    file_mb: int = 16


@dataclass
class SandboxResult:
    ok: bool                   # the stage ran to the end and its checks passed
    reason: str                # why not, in words
    data: dict = field(default_factory=dict)  # the stage's report (see runner.py)
    wall_s: float = 0.0
    log_tail: str = ""         # the end of what the program printed (stdout and stderr)
    isolation: str = ""        # which walls it ran behind: "bwrap", "unshare(net,pid)", "audit-hook only"


def _child_env(scratch: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(scratch), "TMPDIR": str(scratch), "TMP": str(scratch), "TEMP": str(scratch),
        "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
        # one thread each: the limits stay meaningful and BLAS pools do not reserve gigabytes
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
    }
    return env


def _set_limits(limits: Limits):
    def apply() -> None:
        cpu = max(1, int(limits.cpu_s))
        # soft limit -> SIGXCPU; the hard limit one second later -> SIGKILL (SIGXCPU alone is
        # ignored by a PID-namespace init)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        mem = limits.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        size = limits.file_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_stage(source: str, stage: str, seeds: list[int], limits: Limits = Limits(),
              scratch_root: str | os.PathLike | None = None, isolation: str = "auto") -> SandboxResult:
    """Run ``stage`` ("runtime" | "oracle") of the runner on ``source`` over ``seeds``, behind
    the walls ``isolation`` ("auto" | "bwrap" | "fallback", see :mod:`generation.isolation`)."""
    chosen = walls.resolve(isolation)
    scratch = Path(tempfile.mkdtemp(prefix="roboforge-sandbox-", dir=scratch_root))
    try:
        return _run(source, stage, seeds, limits, scratch, chosen)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(source: str, stage: str, seeds: list[int], limits: Limits, scratch: Path, iso: str) -> SandboxResult:
    task_file = scratch / "candidate_task.py"
    task_file.write_text(source)
    out_path, log_path = scratch / ".result", scratch / ".log"
    nonce = secrets.token_hex(16)
    request = {"stage": stage, "task_file": str(task_file), "seeds": list(map(int, seeds)),
               "scratch": str(scratch)}
    cmd = [*walls.command_prefix(iso, scratch), sys.executable, "-s", "-B", "-m", "generation.runner"]
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=scratch, env=_child_env(scratch), stdin=subprocess.PIPE,
                                stdout=out, stderr=log, start_new_session=True,
                                preexec_fn=_set_limits(limits))
        try:
            proc.stdin.write(f"{nonce} {json.dumps(request)}\n".encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            cpu_used, timed_out = _wait(proc, limits.wall_s)
        finally:
            _kill_group(proc.pid)  # also reaps anything the program left behind in its group
            proc.wait()
    wall = time.monotonic() - t0
    log_tail = _tail(log_path)
    result = _parse(out_path, nonce)
    if timed_out:
        return SandboxResult(False, f"wall-clock limit: no result within {limits.wall_s:g} s "
                             "(infinite loop or far too slow); the process group was killed",
                             wall_s=wall, log_tail=log_tail, isolation=iso)
    if result is None:
        if cpu_used >= limits.cpu_s - 0.5:  # however the kill was reported (through unshare or not)
            reason = f"CPU-time limit: killed after {cpu_used:.1f} CPU seconds (limit {limits.cpu_s:g})"
        else:
            reason = _death_reason(proc.returncode, limits, log_tail)
        return SandboxResult(False, reason, wall_s=wall, log_tail=log_tail, isolation=iso)
    return SandboxResult(bool(result.get("ok")), result.get("reason", ""), result, wall, log_tail, iso)


def _wait(proc: subprocess.Popen, wall_s: float) -> tuple[float, bool]:
    """Wait for the child up to ``wall_s``; return (CPU seconds it and its waited-for
    descendants used, whether it timed out). ``wait4`` gives this child's own usage, unlike
    ``getrusage(RUSAGE_CHILDREN)``, which would mix in other sandboxes running in parallel."""
    deadline = time.monotonic() + wall_s
    delay = 0.005
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime, False
        if time.monotonic() >= deadline:
            return 0.0, True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _parse(path: Path, nonce: str) -> dict | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        if line.startswith(nonce + " "):
            try:
                return json.loads(line[len(nonce) + 1:])
            except json.JSONDecodeError:
                return None
    return None


def _death_reason(rc: int, limits: Limits, log_tail: str) -> str:
    """Why a child ended without a result (the CPU limit is recognised before this, from the
    CPU time the child used). Under ``unshare`` or bwrap a signal death shows up as 128 + signal, or for
    SIGKILL as unshare's complaint that it cannot re-raise it."""
    sig = -rc if rc < 0 else (rc - 128 if rc > 128 else 0)
    if "sigprocmask unblock failed" in log_tail:
        sig = signal.SIGKILL
    if any(s in log_tail for s in ("MemoryError", "std::bad_alloc", "Cannot allocate memory")):
        return f"memory limit: the program needed more than {limits.memory_mb} MiB"
    if sig == signal.SIGXCPU:
        return f"CPU-time limit: killed after {limits.cpu_s:g} CPU seconds"
    if sig == signal.SIGXFSZ:
        return f"file-size limit: the program wrote more than {limits.file_mb} MiB"
    if sig == signal.SIGKILL:
        return "the program was killed (SIGKILL; most likely out of memory)"
    if sig:
        return f"the program crashed (signal {signal.Signals(sig).name})"
    last = log_tail.strip().splitlines()[-1:] or ["no output"]
    return f"the sandbox process exited with status {rc} without a result: {last[0][:300]}"


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - LOG_TAIL))
            return f.read().decode(errors="replace")
    except OSError:
        return ""
