"""HILP zero-shot goal reaching vs a goal-conditioned BC baseline trained on the same data
(issue 17, measured target 2).

Per training seed: one offline dataset per task family (oracle demos + exploratory episodes, the
``slots`` observation) feeds both learners for the same number of gradient steps:

- HILP (``policy=hilp``: phi + latent policy, ``train.hilp.train_hilp``), acting with
  z = (phi(g) - phi(s)) / ||.|| every step;
- GCBC: an MLP a = pi(s, g) regressed (MSE) onto the dataset's actions with hindsight goals (a
  geometric-future state of the same episode), reading the same normalized observation with the
  same goal fields zeroed.

Both are asked to reach, from an unseen seed's start state, the oracle's final state of that seed;
success is the task's own ``info["success"]`` (``train.hilp.goals.reach_goals``).

    python bench/hilp.py                               # reach_target + push_to_zone, 3 seeds
    python bench/hilp.py --tiny                        # a ~1-minute smoke run (writes outputs/bench/hilp/)
    python bench/hilp.py --tasks reach_target --seeds 0 --steps 2000

    python bench/hilp.py --merge a.json b.json --out bench/results/hilp.json   # seeds run apart, combined

Writes ``bench/results/hilp.json`` (``--tiny``: ``outputs/bench/hilp/tiny.json``; ``--out``) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
RUNS_DIR = ROOT / "outputs" / "bench" / "hilp"
EVAL_SEED_START = 100_000

FULL = dict(tasks=["reach_target", "push_to_zone"], seeds=[0, 1, 2], demos=100, explore=100, steps=20_000,
            hidden=[256, 256], batch=256, eval_episodes=50)
TINY = dict(tasks=["reach_target"], seeds=[0], demos=8, explore=4, steps=150, hidden=[32, 32], batch=32,
            eval_episodes=3)


class GCBCPolicy:
    """Goal-conditioned behaviour cloning: a = MLP(encode(s), encode(g)), deterministic."""

    def __init__(self, obs_dim: int, action_dim: int, hidden, obs: np.ndarray, min_span: float = 0.1):
        import torch

        from policies.common.normalizer import Normalizer
        from policies.hilp.modeling import goal_feature_mask
        from policies.hilp.networks import mlp

        self.normalizer = Normalizer(obs_dim).fit(obs, min_span=min_span)
        self.mask = goal_feature_mask(obs_dim, True)
        self.net = mlp(2 * obs_dim, hidden, action_dim, layer_norm=True)
        self.torch, self.goal = torch, None

    def encode(self, x):
        return self.normalizer.normalize(x) * self.mask

    def __call__(self, obs, goal):
        return self.net(self.torch.cat([self.encode(obs), self.encode(goal)], -1))

    def reset(self):
        pass

    def set_goal(self, goal_obs):
        self.goal = self.torch.as_tensor(np.asarray(goal_obs, np.float32))

    def select_action(self, obs):
        with self.torch.no_grad():
            x = self.torch.as_tensor(np.asarray(obs, np.float32))[None]
            return self(x, self.goal[None]).clamp(-1, 1)[0].numpy()


def train_gcbc(dataset, steps: int, hidden, batch_size: int, lr: float, seed: int) -> tuple[GCBCPolicy, float]:
    """GCBC on ``dataset`` with hindsight goals (geometric future of the same episode only: a
    random dataset state is no label for the action taken). Returns the policy and its wall time."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    policy = GCBCPolicy(dataset.obs_dim, dataset.action_dim, hidden, np.concatenate([dataset.obs, dataset.next_obs]))
    opt = torch.optim.Adam(policy.net.parameters(), lr=lr)
    t = time.perf_counter()
    for _ in range(steps):
        idx = rng.integers(0, len(dataset), size=batch_size)
        goal = np.minimum(idx + rng.geometric(1.0 - dataset.discount, size=batch_size), dataset.final[idx])
        obs, g, a = (torch.as_tensor(x) for x in (dataset.obs[idx], dataset.obs[goal], dataset.actions[idx]))
        loss = torch.nn.functional.mse_loss(policy(obs, g), a)
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.net.eval()
    return policy, time.perf_counter() - t


def run_seed(task: str, seed: int, cfg: dict, store_root: str | None) -> dict:
    """One training seed on one task: data, HILP, GCBC, both evaluated on the same unseen goals."""
    import torch

    from policies.hilp import HILPConfig, HILPParams, HILPPolicy
    from train.demos import collect_demos, collect_exploration
    from train.hilp.data import GoalDataset, episodes_of
    from train.hilp.goals import reach_goals
    from train.hilp.trainer import train_hilp

    params = HILPParams(hidden_dims=tuple(cfg["hidden"]), batch_size=cfg["batch"], steps=cfg["steps"],
                        explore_episodes=cfg["explore"])
    demo_seeds = 10_000 * seed   # each training seed gets its own data
    stores = [collect_demos(task, cfg["demos"], demo_seeds, store_root, obs_mode="slots", progress=False)]
    if cfg["explore"]:
        stores.append(collect_exploration(task, cfg["explore"], demo_seeds + 2 * cfg["demos"], store_root,
                                          action_noise=params.explore_noise, random_fraction=params.random_fraction,
                                          progress=False))
    dataset = GoalDataset(episodes_of(stores), params.discount, params.p_future_goal, params.p_random_goal)
    eval_seeds = range(EVAL_SEED_START, EVAL_SEED_START + cfg["eval_episodes"])

    torch.manual_seed(seed)
    hilp = HILPPolicy(HILPConfig.from_params(params, obs_dim=dataset.obs_dim, action_dim=dataset.action_dim))
    hilp.fit_normalizer(np.concatenate([dataset.obs, dataset.next_obs]))
    run_dir = RUNS_DIR / f"{task}_seed{seed}"
    if run_dir.exists():   # a bench run starts fresh (train_hilp would resume)
        import shutil

        shutil.rmtree(run_dir)
    t = time.perf_counter()
    stats = train_hilp(hilp, dataset, run_dir, params.steps, params.batch_size, params.lr,
                       checkpoint_every=params.steps, log_every=max(1, params.steps // 20), seed=seed, progress=False)
    hilp_wall = time.perf_counter() - t
    hilp_eval = reach_goals(hilp, task, eval_seeds)
    gcbc, gcbc_wall = train_gcbc(dataset, params.steps, cfg["hidden"], params.batch_size, params.lr, seed)
    gcbc_eval = reach_goals(gcbc, task, eval_seeds)
    return {"task": task, "seed": seed, "transitions": len(dataset), "episodes": sum(len(s) for s in stores),
            "hilp": {"success_rate": hilp_eval["success_rate"], "num_episodes": hilp_eval["num_episodes"],
                     "train_wall_s": round(hilp_wall, 1), "final_losses": stats["final"]},
            "gcbc": {"success_rate": gcbc_eval["success_rate"], "num_episodes": gcbc_eval["num_episodes"],
                     "train_wall_s": round(gcbc_wall, 1)},
            "skipped_seeds": hilp_eval["skipped_seeds"]}


def summarize(rows: list[dict]) -> dict:
    out = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        out[task] = {m: {"mean": round(float(np.mean([r[m]["success_rate"] for r in mine])), 3),
                         "std": round(float(np.std([r[m]["success_rate"] for r in mine])), 3),
                         "per_seed": [r[m]["success_rate"] for r in mine]} for m in ("hilp", "gcbc")}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="a smoke-sized run (see TINY); results under outputs/")
    for key, value in FULL.items():
        kind = type(value[0]) if isinstance(value, list) else type(value)
        ap.add_argument(f"--{key.replace('_', '-')}", type=kind, nargs="+" if isinstance(value, list) else None)
    ap.add_argument("--store-root", default=None, help="demo store root (default: the usual cache)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", default=None, help="result JSON (default bench/results/hilp.json; --tiny: under outputs/)")
    ap.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                    help="instead of running: combine the runs of earlier result files (e.g. seeds run apart) into --out")
    args = ap.parse_args(argv)
    import torch

    if args.merge:
        return merge(args.merge, Path(args.out or RESULTS / "hilp.json"))
    torch.set_num_threads(args.threads)
    cfg = dict(TINY if args.tiny else FULL)
    cfg.update({k: v for k, v in vars(args).items() if k in FULL and v is not None})
    t0 = time.perf_counter()
    rows = [run_seed(task, seed, cfg, args.store_root) for task in cfg["tasks"] for seed in cfg["seeds"]]
    result = {"config": cfg, "summary": summarize(rows), "runs": rows, "wall_s": round(time.perf_counter() - t0, 1),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
              "command": "python bench/hilp.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    path = Path(args.out) if args.out else (RUNS_DIR / "tiny.json") if args.tiny else RESULTS / "hilp.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, path)
    return result


def print_table(result: dict, path: Path) -> None:
    print(f"{'task':<16}{'HILP':>16}{'GCBC':>16}")
    for task, s in result["summary"].items():
        print(f"{task:<16}" + "".join(f"{s[m]['mean']:>10.2f} ± {s[m]['std']:.2f}" for m in ("hilp", "gcbc")))
    print(f"wall {result['wall_s']} s -> {path}")


def merge(paths: list[str], out: Path) -> dict:
    """One result from several runs of the same settings (seeds or tasks run apart); refuses
    differing settings."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    keys = [k for k in FULL if k not in ("seeds", "tasks")]
    for p, part in zip(paths[1:], parts[1:]):
        differ = [k for k in keys if part["config"][k] != parts[0]["config"][k]]
        if differ:
            raise SystemExit(f"error: {p} differs from {paths[0]} in {differ}; merge runs of the same settings only")
    rows = [r for part in parts for r in part["runs"]]
    config = {**parts[0]["config"], "seeds": sorted({r["seed"] for r in rows}),
              "tasks": list(dict.fromkeys(r["task"] for r in rows))}
    result = {"config": config, "summary": summarize(rows), "runs": rows,
              "wall_s": round(sum(part["wall_s"] for part in parts), 1), "machine": parts[0]["machine"],
              "command": " + ".join(part["command"] for part in parts), "merged_from": list(paths)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, out)
    return result


if __name__ == "__main__":
    main()
