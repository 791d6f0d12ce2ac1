"""ManiSkill3 on the GPU: our stack_blocks vs ManiSkill's own StackCube-v1 over a num_envs sweep.

Both are made with ``gym.make`` on ``physx_cuda``, state observations, the Panda at 20 Hz control,
random actions drawn on the device beforehand, no resets inside the timed loop. ManiSkill holds
one GPU simulation per process, so every (env, num_envs) point runs in its own subprocess; the two
envs alternate per round so a busy GPU neighbour hits both alike, and the best round counts.
Throughput is env steps/s summed over the batch (``num_envs * steps / seconds``), the figure
ManiSkill reports (127k-262k state steps/s for a Franka pick-cube on an RTX 4090).

    python bench/maniskill_gpu.py                                   # num_envs 1 64 1024 4096
    python bench/maniskill_gpu.py --num-envs 16 --steps 50          # a quick look
    python bench/maniskill_gpu.py --sim-backend physx_cpu --num-envs 1 --steps 50   # the code path, on CPU

Prints a table and (on physx_cuda) writes ``bench/results/maniskill_gpu.json``; ``python -m bench.run
--report-only`` puts it in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "maniskill_gpu.json"
MS_CONTROL = {"ee_delta_pose": "pd_ee_delta_pose", "joint_pos": "pd_joint_pos"}


def make(which: str, num_envs: int, control_mode: str, sim_backend: str):
    import gymnasium as gym

    if which == "roboforge":
        sys.path.insert(0, str(ROOT))
        import envs

        return gym.make(envs.env_id("stack_blocks"), sim="maniskill", obs_mode="state", control_mode=control_mode,
                        num_envs=num_envs, sim_backend=sim_backend)
    import mani_skill.envs  # noqa: F401

    extra = {"render_backend": "cpu"} if sim_backend == "physx_cpu" else {}
    return gym.make("StackCube-v1", obs_mode="state", control_mode=MS_CONTROL[control_mode], robot_uids="panda",
                    num_envs=num_envs, sim_backend=sim_backend, **extra)


def worker(which: str, num_envs: int, steps: int, control_mode: str, sim_backend: str) -> dict:
    """One env, one num_envs: build, warm up, time ``steps`` batched steps. Returns a JSON-able dict."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    env = make(which, num_envs, control_mode, sim_backend)
    obs, _ = env.reset(seed=0)
    build_s = time.perf_counter() - t0
    cuda = sim_backend != "physx_cpu"
    dim = env.action_space.shape[-1]
    gen = torch.Generator(device="cuda" if cuda else "cpu").manual_seed(0)
    acts = torch.rand(steps + 10, num_envs, dim, generator=gen, device="cuda" if cuda else "cpu") * 2 - 1
    if num_envs == 1 and which == "roboforge":  # num_envs=1 is our single env: numpy, unbatched
        acts = acts[:, 0].cpu().numpy().astype(np.float32)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for a in acts[:10]:  # warm-up (kernels, caches)
        env.step(a)
    sync()
    t = time.perf_counter()
    for a in acts[10:]:
        env.step(a)
    sync()
    wall = time.perf_counter() - t
    out = {"env": which, "num_envs": num_envs, "steps": steps, "env_steps_per_s": round(num_envs * steps / wall, 1),
           "build_and_reset_s": round(build_s, 2),
           "obs_device": str(getattr(obs, "device", "numpy"))}
    if cuda:
        out["gpu_memory_max_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    env.close()
    return out


def run_point(which: str, n: int, a) -> dict:
    from bench.common import run_worker

    args = ["--worker", which, "--num-envs", str(n), "--steps", str(a.steps), "--control-mode", a.control_mode,
            "--sim-backend", a.sim_backend]
    return {"env": which, "num_envs": n, **run_worker(sys.executable, "bench.maniskill_gpu", args, a.timeout)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 1024, 4096])
    ap.add_argument("--steps", type=int, default=200, help="timed batched steps per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--control-mode", default="ee_delta_pose", choices=sorted(MS_CONTROL))
    ap.add_argument("--sim-backend", default="physx_cuda", choices=["physx_cuda", "physx_cpu"])
    ap.add_argument("--timeout", type=int, default=600, help="seconds per subprocess")
    ap.add_argument("--worker", choices=["roboforge", "stackcube"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.num_envs[0], a.steps, a.control_mode, a.sim_backend)))
        return

    import torch

    sys.path.insert(0, str(ROOT))
    if a.sim_backend == "physx_cuda" and not torch.cuda.is_available():
        sys.exit("bench/maniskill_gpu.py: physx_cuda needs a CUDA GPU and torch does not see one here. "
                 "Run it on a CUDA machine, or check the code path on CPU with "
                 "`--sim-backend physx_cpu --num-envs 1`.")
    if a.sim_backend == "physx_cpu" and a.num_envs != [1]:
        sys.exit("bench/maniskill_gpu.py: physx_cpu holds one scene per process; use --num-envs 1 "
                 "(CPU throughput against StackCube-v1 is bench/maniskill_overhead.py)")
    rows = []
    for n in a.num_envs:
        best: dict[str, dict] = {}
        for r in range(a.rounds):
            for which in (("roboforge", "stackcube") if r % 2 == 0 else ("stackcube", "roboforge")):
                res = run_point(which, n, a)
                prev = best.get(which)
                if prev is None or "error" in prev or res.get("env_steps_per_s", -1) > prev.get("env_steps_per_s", -1):
                    best[which] = res
        ours, theirs = best["roboforge"], best["stackcube"]
        row = {"num_envs": n, "roboforge": ours, "stackcube": theirs}
        if "error" not in ours and "error" not in theirs:
            row["overhead"] = round(theirs["env_steps_per_s"] / ours["env_steps_per_s"] - 1.0, 4)
        rows.append(row)
        print(f"num_envs {n:>5}: stack_blocks {ours.get('env_steps_per_s', ours.get('error'))}  "
              f"StackCube-v1 {theirs.get('env_steps_per_s', theirs.get('error'))}", flush=True)

    print(f"\n{'num_envs':>8} {'stack_blocks steps/s':>21} {'StackCube-v1 steps/s':>21} {'overhead':>9}")
    for r in rows:
        f = lambda o: f"{o['env_steps_per_s']:>21,.0f}" if "error" not in o else f"{'error':>21}"  # noqa: E731
        ov = f"{r['overhead']:>+9.1%}" if "overhead" in r else f"{'—':>9}"
        print(f"{r['num_envs']:>8} {f(r['roboforge'])} {f(r['stackcube'])} {ov}")
    from importlib.metadata import version

    from bench.common import machine, machine_short

    out = {"benchmark": "roboforge stack_blocks vs ManiSkill StackCube-v1, batched, state obs, random actions",
           "command": "python bench/maniskill_gpu.py --num-envs %s --steps %d --rounds %d --control-mode %s "
                      "--sim-backend %s" % (" ".join(map(str, a.num_envs)), a.steps, a.rounds, a.control_mode,
                                            a.sim_backend),
           "sim_backend": a.sim_backend, "control_mode": a.control_mode, "steps": a.steps, "rounds": a.rounds,
           "machine": {**machine(), "python": platform.python_version()}, "machine_short": machine_short(machine()),
           "versions": {d: version(d) for d in ("mani-skill", "sapien", "torch")},
           "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "rows": rows}
    if a.sim_backend == "physx_cpu":  # a code-path check, not a GPU figure
        print("physx_cpu: results not written")
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
