"""The walls around a sandbox process (:mod:`generation.sandbox`): what the candidate can see.

Two isolations, chosen per run (``auto`` takes the first that works on this machine):

- ``bwrap`` (bubblewrap, Debian package ``bubblewrap``): the child gets a read-only view of the
  root file system in which /root, /home, /tmp, /var/tmp and the project checkout are empty
  tmpfs, with only what the runner needs bound back read-only (the interpreter, the venv, the
  packages ``envs``, ``planners`` and ``generation`` and the robot models in ``assets``) and the
  scratch dir the one writable place; every namespace is its own (``--unshare-all``: no
  network, own PIDs, IPC, UTS, cgroup, user), a fresh /dev and /proc, a new session, and it dies
  with its parent. A candidate cannot read the user's files or the project's.
- the fallback, where bwrap is missing or cannot start (e.g. user namespaces are off): ``unshare
  --net --pid --fork --kill-child`` where the machine allows it (an empty network namespace and a
  PID namespace whose every process dies with it), else nothing beyond the process itself. Files
  stay readable; only the runner's audit hook (writes, network, processes) and the static gate
  stand between a candidate and them.

Both run under the same rlimits, wall-clock limit and audit hook (see sandbox.py and runner.py).
Each result records which isolation ran (``SandboxResult.isolation``).
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CHOICES = ("auto", "bwrap", "fallback")
BWRAP, UNSHARE, AUDIT_ONLY = "bwrap", "unshare(net,pid)", "audit-hook only"

# What the runner needs from the checkout: the packages it imports (``python -m
# generation.runner`` imports envs and planners) and the robot models envs loads.
RUNNER_PATHS = ("envs", "planners", "generation", "assets")
# Hidden behind empty tmpfs: the users' files, shared temp dirs, the project checkout.
HIDDEN = ("/root", "/home", "/tmp", "/var/tmp")


def bwrap_command(scratch: Path) -> list[str]:
    """The bwrap command line (up to the program) for a child whose only writable dir is ``scratch``."""
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for path in (*HIDDEN, str(REPO_ROOT)):
        if Path(path).is_dir():
            cmd += ["--tmpfs", path]
    # bound back after the tmpfs above: the interpreter and the venv (either may live under /root,
    # /home or the checkout), then the runner's own packages
    needed = {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parents[1])}
    needed |= {str(REPO_ROOT / p) for p in RUNNER_PATHS}
    for path in sorted(needed):
        if Path(path).exists():
            cmd += ["--ro-bind", path, path]
    cmd += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch),
            "--unshare-all", "--die-with-parent", "--new-session", "--"]
    return cmd


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None where bwrap can run the interpreter here, else why not (cached: asked once per process)."""
    if not shutil.which("bwrap"):
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; `make sysdeps` does it)"
    scratch = Path(tempfile.mkdtemp(prefix="roboforge-sandbox-probe-"))
    try:
        proc = subprocess.run([*bwrap_command(scratch), sys.executable, "-s", "-B", "-c", "pass"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return f"bwrap failed to start: {err}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return f"bwrap cannot start a sandbox here ({last[:200]}); user namespaces may be disabled"
    return None


@functools.lru_cache(maxsize=1)
def unshare_prefix() -> tuple[str, ...]:
    """The ``unshare`` command line that gives the child no network and its own PID namespace,
    or () where this machine does not allow it (then the audit hook alone blocks network)."""
    unshare = shutil.which("unshare")
    if not unshare:
        return ()
    for extra in ((), ("--map-root-user",)):
        cmd = (unshare, "--net", "--pid", "--fork", "--kill-child=SIGKILL", *extra)
        try:
            if subprocess.run([*cmd, "true"], capture_output=True, timeout=10).returncode == 0:
                return cmd
        except (OSError, subprocess.SubprocessError):
            pass
    return ()


def resolve(choice: str = "auto") -> str:
    """The isolation a run with ``choice`` ("auto" | "bwrap" | "fallback") gets on this machine:
    BWRAP, UNSHARE or AUDIT_ONLY. Asking for bwrap where it cannot run is an error, not a
    silent downgrade."""
    if choice not in CHOICES:
        raise ValueError(f"isolation={choice} is invalid; allowed: {', '.join(CHOICES)}")
    if choice != "fallback":
        problem = bwrap_problem()
        if problem is None:
            return BWRAP
        if choice == "bwrap":
            raise ValueError(f"isolation=bwrap is unavailable: {problem}; allowed here: auto, fallback")
    return UNSHARE if unshare_prefix() else AUDIT_ONLY


def command_prefix(isolation: str, scratch: Path) -> list[str]:
    """What goes before the interpreter on the child's command line."""
    if isolation == BWRAP:
        return bwrap_command(scratch)
    if isolation == UNSHARE:
        return list(unshare_prefix())
    return []
