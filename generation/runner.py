"""Runs inside the sandbox process: loads ONE candidate task program and exercises it.

Invoked by :mod:`generation.sandbox` as ``python -m generation.runner`` with the
scratch dir as cwd. The request arrives on stdin as one line ``<nonce> <json>``; the result goes
to the original stdout as one line ``<nonce> <json>``. Stdout is re-pointed at stderr before the
candidate is imported, so anything the candidate prints cannot pose as a result, and it never
learns the nonce.

Stages (the sandbox runs each one in its own fresh process):
- ``runtime``: import, build and reset over distinct seeds, Gymnasium ``check_env``, seeded
  determinism, a few random steps with finite observations and rewards in [0, 1]; each seed's
  structural description (:func:`generation.structure.describe`) for the novelty gate.
- ``oracle``: the goal-derived oracle on each requested seed; per-seed success and steps.

Before the candidate is imported an audit hook is installed (it cannot be removed afterwards)
that refuses file writes outside the scratch dir, every network call and every new process.
It is the second wall behind the static gate, which already rejects programs that could ask.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import traceback

# Heavy imports happen before the audit hook goes in, so the hook only ever sees the candidate
# (and the simulator it drives), not our own start-up.
import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import envs
import envs.backends.mujoco.env  # noqa: F401  (MuJoCo loads its GL bindings with ctypes.dlopen, which the hook refuses)
from envs.core.predicates import Goal
from generation.structure import describe as describe_structure
from planners import make_oracle

_NET_EVENTS = ("socket.", "urllib.Request", "http.client.", "ftplib.", "smtplib.", "telnetlib.")
_PROC_EVENTS = ("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                "subprocess.Popen", "os.kill", "os.killpg", "pty.spawn", "ctypes.dlopen",
                "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function", "ctypes.addressof",
                "sys.remote_exec", "os.setuid", "os.setgid", "os.chroot", "resource.setrlimit",
                "resource.prlimit")
_FS_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
              "os.symlink", "os.truncate", "os.utime", "shutil.rmtree", "shutil.move",
              "shutil.copyfile", "shutil.copytree", "os.chdir", "os.chflags", "os.setxattr",
              "os.removexattr")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class SandboxViolation(PermissionError):
    """The candidate tried something the sandbox forbids (network, processes, writes outside)."""


def _install_guard(scratch: str) -> None:
    scratch = os.path.realpath(scratch)

    def inside(path) -> bool:
        if isinstance(path, int):  # an already-open descriptor
            return True
        try:
            p = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return p == scratch or p.startswith(scratch + os.sep)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                      (isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and not inside(path):
                raise SandboxViolation(f"file write outside the sandbox: {path!r}")
        elif event.startswith(_NET_EVENTS):
            raise SandboxViolation(f"network access is not allowed ({event})")
        elif event.startswith(_PROC_EVENTS):
            raise SandboxViolation(f"starting or signalling processes is not allowed ({event})")
        elif event.startswith(_FS_EVENTS):
            if not all(inside(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
                raise SandboxViolation(f"file-system change outside the sandbox ({event} {args[:2]!r})")

    sys.addaudithook(hook)


def _load_candidate(path: str) -> str:
    """Import the program; return the name of the one task it registered."""
    import importlib.util

    before = set(envs.list_tasks())
    spec = importlib.util.spec_from_file_location("roboforge_candidate", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["roboforge_candidate"] = module
    spec.loader.exec_module(module)
    new = sorted(set(envs.list_tasks()) - before)
    if len(new) != 1:
        raise RuntimeError(f"the program must register exactly one new task, it registered {new or 'none'}")
    return new[0]


def _finite(x) -> bool:
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    return bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))


def stage_runtime(name: str, seeds: list[int]) -> dict:
    env = gym.make(envs.env_id(name))
    u = env.unwrapped
    instructions, starts, structures = [], [], []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        where = f"seed {seed}"
        goals = u.goals
        if not isinstance(goals, list) or not goals or not all(isinstance(g, Goal) for g in goals):
            return _fail(f"{where}: goals() must return a non-empty list of goal predicates, got {goals!r}")
        scene_names = {o.name for o in u.scene.objects}
        for g in goals:
            for ref in [g.obj] + [v for v in vars(g).values() if hasattr(v, "half_size")]:
                if ref.name not in scene_names:
                    return _fail(f"{where}: goal {g.name} refers to {ref.name!r}, which is not in the scene")
            if g.skill != "reach" and not g.obj.movable:
                return _fail(f"{where}: goal {g.name} asks to move the fixture {g.obj.name!r}")
        if info["success"]:
            return _fail(f"{where}: the goals already hold at reset (nothing to do); conditions {info['conditions']}")
        text = info["instruction"]
        if not text or "{" in text or "}" in text:
            return _fail(f"{where}: instruction not fully formatted: {text!r}")
        if not env.observation_space.contains(obs):
            return _fail(f"{where}: reset observation is outside the observation space")
        obs2, info2 = env.reset(seed=seed)
        if not np.array_equal(obs, obs2) or info2["instruction"] != text:
            return _fail(f"{where}: reset is not deterministic for a fixed seed")
        rng = np.random.default_rng(seed)
        for _ in range(5):
            obs, reward, term, trunc, info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            if not _finite(obs) or not np.isfinite(reward) or not 0.0 <= reward <= 1.0:
                return _fail(f"{where}: step gave a non-finite observation or a reward outside [0, 1] ({reward})")
        instructions.append(text)
        structures.append(describe_structure(u.task, u.scene))  # for the structural novelty check
        starts.append(np.round(np.concatenate([o.pos for o in u.scene.objects]), 4).tolist())
    check_env(u, skip_render_check=True)
    env.close()
    return {"ok": True, "task": name, "instructions": instructions,
            "varied_start": len({json.dumps(s) for s in starts}) > 1,
            "objects": [(o.name, o.kind) for o in u.scene.objects], "goals": [g.name for g in u.goals],
            "max_episode_steps": int(env.spec.max_episode_steps),
            "structure": structures}


def stage_oracle(name: str, seeds: list[int]) -> dict:
    env = gym.make(envs.env_id(name))
    oracle = make_oracle(env)
    per_seed = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        oracle.reset()
        steps = 0
        for steps in range(1, env.spec.max_episode_steps + 1):
            obs, _, term, trunc, info = env.step(oracle.act(obs))
            if term or trunc:
                break
        failed = [k for k, v in info["conditions"].items() if not v]
        per_seed.append({"seed": seed, "success": bool(info["success"]), "steps": steps, "failed": failed})
    env.close()
    return {"ok": True, "task": name, "episodes": per_seed}


def _fail(reason: str) -> dict:
    return {"ok": False, "reason": reason}


def main() -> None:
    line = sys.stdin.readline()
    nonce, _, body = line.partition(" ")
    request = json.loads(body)
    # Our private copy of stdout; fd 1 becomes stderr so the candidate's prints go to the log.
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def on_cpu_limit(signum, frame):
        # RLIMIT_CPU's soft limit: report and leave (the hard limit's SIGKILL follows in 1 s
        # if the candidate is stuck in C code and this handler cannot run)
        result_out.write(f"{nonce} {json.dumps(_fail('CPU-time limit: the program used up its CPU seconds'))}\n")
        result_out.flush()
        os._exit(0)

    signal.signal(signal.SIGXCPU, on_cpu_limit)
    _install_guard(request["scratch"])
    try:
        name = _load_candidate(request["task_file"])
        stage = {"runtime": stage_runtime, "oracle": stage_oracle}[request["stage"]]
        result = stage(name, request["seeds"])
    except MemoryError:
        result = _fail("MemoryError: the program exceeded the sandbox memory limit")
    except RecursionError:
        result = _fail("RecursionError: maximum recursion depth exceeded")
    except SandboxViolation as err:
        result = _fail(f"sandbox violation: {err}")
    except BaseException as err:  # noqa: BLE001  (any failure of the candidate is a verdict, not a crash)
        tb = traceback.extract_tb(err.__traceback__)
        where = next((f" (line {f.lineno} in {f.name})" for f in reversed(tb) if f.filename == request["task_file"]), "")
        result = _fail(f"{type(err).__name__}: {err}{where}"[:2000])
    import threading

    extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if result.get("ok") and extra:
        result = _fail(f"the program left {len(extra)} thread(s) running: {extra[:5]}")
    result_out.write(f"{nonce} {json.dumps(result)}\n")
    result_out.flush()
    # Leave at once: no waiting on threads the candidate may have started, no atexit hooks of its own.
    os._exit(0)


if __name__ == "__main__":
    main()
