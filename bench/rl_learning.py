"""RL with stable-baselines3 on roboforge tasks: how fast it learns, and what the SB3 glue costs.

Two parts, both on this machine's CPU cores (MuJoCo unless a run names ManiSkill):

1. throughput: env steps/s of (a) one raw env stepped in-process with random actions, (b) the
   SB3 vector env PPO/SAC collect from (SubprocVecEnv x num_envs + VecNormalize, random actions),
   (c) PPO and (d) SAC while learning: collection only (env stepping + policy inference) and the
   whole loop (gradient updates included).
2. learning: full ``train.rl.run_rl`` runs (the code ``python train.py env=<task> policy=<algo>``
   runs), each evaluated on unseen seeds; success-rate curves from their TensorBoard logs.

    python bench/rl_learning.py                      # both parts, the runs in RUNS
    python bench/rl_learning.py --part throughput
    python bench/rl_learning.py --part learning --runs reach_sac push_sac_demos

Prints a table, writes ``bench/results/rl_learning.json`` (merged with earlier results, keyed
by part and run) and the learning curves ``bench/results/rl_learning.png``. Run outputs
(checkpoints, videos, TensorBoard) go to ``outputs/bench/rl/<run>/``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
RUNS_DIR = ROOT / "outputs" / "bench" / "rl"

# name -> (task, algo, policy overrides on the policy=<algo> defaults (policies/rl/config.py)[, sim (default mujoco)])
RUNS = {
    "reach_sac": ("reach_target", "sac", {"total_timesteps": 30_000}),
    "reach_sac_maniskill": ("reach_target", "sac", {"total_timesteps": 30_000}, "maniskill"),
    "reach_ppo": ("reach_target", "ppo", {"total_timesteps": 300_000, "num_envs": 8}),
    "push_sac_demos": ("push_to_zone", "sac", {"total_timesteps": 500_000, "demos": 100,
                                               "sb3": {"gamma": 0.97}}),
    # pick-and-place with a 200-step horizon: demos carry the grasp the reward alone rarely finds
    "stack_sac_demos": ("stack_blocks", "sac", {"total_timesteps": 600_000, "demos": 200,
                                                "sb3": {"gamma": 0.97, "buffer_size": 1_000_000}}),
}
DEFAULT_RUNS = ["reach_sac", "push_sac_demos", "stack_sac_demos"]
EVAL = {"episodes": 100, "seed_start": 100_000, "num_videos": 2}  # unseen seeds, as train.py's eval.seed_start


# -- throughput ----------------------------------------------------------------------------------
def raw_env_rate(task: str, steps: int) -> float:
    from policies.rl.sb3 import make_env

    env = make_env(task)
    env.reset(seed=0)
    env.action_space.seed(0)
    t = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    rate = steps / (time.perf_counter() - t)
    env.close()
    return rate


def vec_env_rate(task: str, steps: int, num_envs: int) -> float:
    from stable_baselines3.common.vec_env import VecNormalize

    from policies.rl.sb3 import make_vec_env

    venv = VecNormalize(make_vec_env(task, "mujoco", num_envs, 0, success_bonus_gamma=0.95))
    venv.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (steps // num_envs, num_envs, 7)).astype(np.float32)
    t = time.perf_counter()
    for a in actions:  # SB3 vec envs reset finished episodes themselves
        venv.step(a)
    rate = len(actions) * num_envs / (time.perf_counter() - t)
    venv.close()
    return rate


def training_rate(task: str, algo: str, steps: int, num_envs: int) -> dict:
    """Env steps/s while PPO/SAC learn (default hyper-parameters of policy=<algo>)."""
    import torch
    from stable_baselines3.common.vec_env import VecNormalize

    from policies.rl.config import PPOConfig, SACConfig
    from policies.rl.sb3 import build_model, make_vec_env
    from train.rl import TrainingMonitor

    p = {"ppo": PPOConfig, "sac": SACConfig}[algo]()
    torch.set_num_threads(p.torch_threads)
    sb3 = dict(p.sb3)
    if algo == "sac":
        sb3["learning_starts"] = min(sb3["learning_starts"], steps // 4)
    venv = VecNormalize(make_vec_env(task, "mujoco", num_envs, 0, success_bonus_gamma=sb3["gamma"]),
                        norm_reward=p.normalize_reward, gamma=sb3["gamma"])
    model = build_model(algo, venv, net_arch=p.net_arch, activation=p.activation, sb3_kwargs=sb3,
                        policy_kwargs=p.policy_kwargs)
    mon = TrainingMonitor(None, None, 0, False, {}, 0, steps)
    model.learn(steps, callback=mon)
    venv.close()
    s = mon.summary()
    out = {"train_steps_per_s": s["train_steps_per_s"], "collect_steps_per_s": s["collect_steps_per_s"]}
    if algo == "sac":  # updates start after learning_starts; report the rate once they run
        out["note"] = f"learning_starts={sb3['learning_starts']} of {steps} steps"
    return out


def throughput(task: str, num_envs: int, quick: bool) -> dict:
    n = 1000 if quick else 4000
    res = {"task": task, "num_envs": num_envs,
           "raw_env_steps_per_s": round(raw_env_rate(task, n), 1),
           "sb3_vec_env_steps_per_s": round(vec_env_rate(task, n, num_envs), 1)}
    res["ppo"] = training_rate(task, "ppo", 2048 if quick else 8192, num_envs)
    res["sac"] = training_rate(task, "sac", 1000 if quick else 4000, num_envs)
    return res


# -- learning ------------------------------------------------------------------------------------
def success_curve(tb_dir: Path) -> list[tuple[int, float]]:
    """(env step, rollout/success_rate) from a run's TensorBoard events (SB3 logs the mean over
    the last 100 training episodes)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points = {}
    for events in sorted(tb_dir.rglob("events.out.tfevents*")):
        acc = EventAccumulator(str(events.parent), size_guidance={"scalars": 0})
        acc.Reload()
        if "rollout/success_rate" in acc.Tags().get("scalars", []):
            for e in acc.Scalars("rollout/success_rate"):
                points[int(e.step)] = float(e.value)
    return sorted(points.items())


def _dotlist(prefix: str, over: dict) -> list[str]:
    """{"sb3": {"gamma": 0.97}} -> ["policy.sb3.gamma=0.97"]: overrides as train.py takes them."""
    out = []
    for k, v in over.items():
        out += _dotlist(f"{prefix}.{k}", v) if isinstance(v, dict) else [f"{prefix}.{k}={v}"]
    return out


def learning_run(name: str, fresh: bool, steps: int | None = None) -> dict:
    from train.config import compose
    from train.rl import run_rl

    task, algo, over, sim = (*RUNS[name], "mujoco")[:4]
    if steps:
        over = {**over, "total_timesteps": steps}
    run_dir = RUNS_DIR / name
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    cfg = compose(f"env={task}", f"sim={sim}", f"policy={algo}", "seed=0", "progress=false",
                  *_dotlist("eval", EVAL), *_dotlist("policy", over))
    t = time.perf_counter()
    metrics = run_rl(cfg, run_dir)
    return {"task": task, "sim": sim, "algorithm": algo, "overrides": over, "success_rate": metrics["success_rate"],
            "eval_episodes": EVAL["episodes"], "eval_seeds": f"{EVAL['seed_start']}..{EVAL['seed_start'] + EVAL['episodes'] - 1}",
            "env_steps": metrics["env_steps"], "train_wall_s": metrics.get("train_wall_s_total"),
            "total_wall_s": round(time.perf_counter() - t, 1), "num_envs": metrics["num_envs"],
            "train_steps_per_s": metrics.get("train_steps_per_s"),
            "demo_episodes": metrics.get("demo_episodes", 0),
            "curve": success_curve(run_dir / "tensorboard"), "run_dir": str(run_dir.relative_to(ROOT)),
            "command": f"python bench/rl_learning.py --part learning --runs {name}" + (f" --steps {steps}" if steps else ""),
            "date": _now()}


def plot(learning: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in learning.items():
        if not r.get("curve"):
            continue
        steps, rate = zip(*r["curve"])
        line, = ax.plot(np.array(steps) / 1000, rate, label=f"{name} (eval {r['success_rate']:.0%})")
        ax.scatter([r["env_steps"] / 1000], [r["success_rate"]], color=line.get_color(), marker="*", s=120, zorder=3)
    ax.set_xlabel("env steps (thousands)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("SB3 on roboforge (CPU): training success (line), eval on unseen seeds (star)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# -- main ----------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["throughput", "learning", "all"], default="all")
    ap.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, choices=sorted(RUNS))
    ap.add_argument("--task", default="push_to_zone", help="task for the throughput part")
    ap.add_argument("--num-envs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="shorter throughput measurement")
    ap.add_argument("--resume", action="store_true", help="continue learning runs instead of starting fresh")
    ap.add_argument("--steps", type=int, help="override the runs' total_timesteps (with --resume: train on to it)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("OpenGL", "OpenGL.acceleratesupport"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    RESULTS.mkdir(parents=True, exist_ok=True)
    from envs.core.fileio import write_atomic

    out_json = RESULTS / "rl_learning.json"
    results = json.loads(out_json.read_text()) if out_json.exists() else {}
    # the 1-minute load average at the start says how much the cores were shared with others
    results["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version(), "load_average_at_start": os.getloadavg()[0]}
    from bench.common import machine, machine_short

    results["machine_short"] = machine_short(machine())
    from importlib.metadata import version

    results["versions"] = {d: version(d) for d in ("stable-baselines3", "torch", "mujoco", "mani-skill")}
    if args.part in ("throughput", "all"):
        results["throughput"] = tp = {**throughput(args.task, args.num_envs, args.quick), "date": _now()}
        print(f"\nthroughput on {tp['task']} (env steps/s, {tp['num_envs']} envs on {os.cpu_count()} cores)")
        print(f"  raw env, 1 process, random actions    {tp['raw_env_steps_per_s']:>8.0f}")
        print(f"  SB3 SubprocVecEnv + VecNormalize      {tp['sb3_vec_env_steps_per_s']:>8.0f}")
        for algo in ("ppo", "sac"):
            r = tp[algo]
            print(f"  {algo.upper()} collecting (env + inference)     {r['collect_steps_per_s']:>8.0f}")
            print(f"  {algo.upper()} training loop (with updates)     {r['train_steps_per_s']:>8.0f}")
    if args.part in ("learning", "all"):
        learning = results.setdefault("learning", {})
        for name in args.runs:
            learning[name] = learning_run(name, fresh=not args.resume, steps=args.steps)
        print(f"\n{'run':<20} {'task':<14} {'sim':<9} {'algo':<5} {'env steps':>9} {'train wall':>10} {'steps/s':>8} "
              f"{'eval success':>13}")
        for name, r in learning.items():
            print(f"{name:<20} {r['task']:<14} {r.get('sim', 'mujoco'):<9} {r['algorithm']:<5} {r['env_steps']:>9} "
                  f"{r['train_wall_s'] or 0:>9.0f}s {r['train_steps_per_s'] or 0:>8.0f} "
                  f"{r['success_rate']:>7.0%} of {r['eval_episodes']}")
        print(f"\ncurves: {RESULTS / 'rl_learning.png'}")
    # merge into what is there now: another invocation may have written other runs meanwhile
    latest = json.loads(out_json.read_text()) if out_json.exists() else {}
    for k in ("machine", "machine_short", "versions"):
        latest[k] = results[k]
    if "throughput" in results and args.part in ("throughput", "all"):
        latest["throughput"] = {**results["throughput"], "load_average_at_start": results["machine"]["load_average_at_start"],
                                "machine_short": results["machine_short"]}
    if args.part in ("learning", "all"):
        for n in args.runs:  # runs from different days may come from different machines
            results["learning"][n]["load_average_at_start"] = results["machine"]["load_average_at_start"]
            results["learning"][n]["machine_short"] = results["machine_short"]
        latest.setdefault("learning", {}).update({n: results["learning"][n] for n in args.runs})
        plot(latest["learning"], RESULTS / "rl_learning.png")
    write_atomic(out_json, json.dumps(latest, indent=2))
    print(f"results: {out_json}")


if __name__ == "__main__":
    main()
