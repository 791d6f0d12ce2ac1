"""Worker: exported diffusion policy, per-chunk latency (onnxruntime, TorchScript vs torch eager) and
success of the exported `make demo` policy in sim next to the torch one.

    python -m bench.export [--calls 40] [--rounds 3] [--threads 1] [--checkpoint outputs/<run>/checkpoints/last]

Latency: ``make demo``'s policy shape (``DiffusionParams()`` defaults) on stack_blocks' observations,
DDIM-10, one chunk of 8 actions per call, batch 1 (a robot) and 50 (lockstep evaluation); random
weights (latency does not depend on their values). The three runners alternate within each round;
the round with the lowest median counts for each. With ``--checkpoint``, that trained policy is
exported to ONNX and ``train.verify_export`` runs both on ``--episodes`` unseen seeds.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from bench.common import emit, load, versions

ROOT = Path(__file__).resolve().parents[1]
TASK = "stack_blocks"


def make_policy(run: Path):
    """make demo's diffusion policy shape with a fitted normalizer, saved as a run directory."""
    import gymnasium as gym

    import envs
    from policies.diffusion import DiffusionConfig, DiffusionParams, DiffusionPolicy

    env = gym.make(envs.env_id(TASK))
    obs_dim = env.observation_space.shape[0]
    env.close()
    policy = DiffusionPolicy(DiffusionConfig.from_params(DiffusionParams(), obs_dim=obs_dim, action_dim=7))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(1000, obs_dim)), rng.uniform(-1, 1, (1000, 7)))
    policy.save_pretrained(run / "checkpoints" / "last")
    (run / "config.yaml").write_text(yaml.safe_dump({"env": TASK, "sim": {"name": "mujoco"}, "obs_mode": "state",
                                                     "control_mode": "ee_delta_pose"}))
    return policy.eval(), run / "checkpoints" / "last"


def latency(runners: dict, rounds: int, calls: int) -> dict:
    """Median ms per call for each runner, best round; runners alternate call by call."""
    per_round = {k: [] for k in runners}
    for fn in runners.values():  # warm-up (allocations, ORT's first-run graph setup)
        for _ in range(3):
            fn()
    for _ in range(rounds):
        samples = {k: [] for k in runners}
        for _ in range(calls):
            for k, fn in runners.items():
                t = time.perf_counter()
                fn()
                samples[k].append(time.perf_counter() - t)
        for k, s in samples.items():
            per_round[k].append(1000 * statistics.median(s))
    return {k: {"median_ms": round(min(v), 3), "rounds_ms": [round(x, 3) for x in v]} for k, v in per_round.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    ap.add_argument("--checkpoint", help="a trained checkpoint for the success comparison")
    ap.add_argument("--episodes", type=int, default=50)
    args = ap.parse_args()
    load_start = load()
    torch.set_num_threads(args.threads)
    from policies.export.exporter import export_policy
    from policies.export.runtime import ExportedPolicy

    out = {"worker": "roboforge_export", "threads": args.threads, "load_avg_1m_start": load_start,
           "versions": versions("torch", "onnxruntime", "onnx", "onnxscript")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        policy, ckpt = make_policy(tmp / "run")
        t = time.perf_counter()
        onnx_dir = export_policy(ckpt, "onnx", tmp / "onnx")
        out["export_onnx_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        ts_dir = export_policy(ckpt, "torchscript", tmp / "ts")
        out["export_torchscript_s"] = round(time.perf_counter() - t, 1)
        ort = ExportedPolicy(onnx_dir, threads=args.threads)
        ts = ExportedPolicy(ts_dir, threads=args.threads)
        c = policy.config
        out["config"] = {"down_dims": list(c.down_dims), "horizon": c.horizon, "n_action_steps": c.n_action_steps,
                         "num_inference_steps": c.num_inference_steps, "obs_dim": c.obs_dim,
                         "params": sum(p.numel() for p in policy.parameters())}
        out["model_onnx_bytes"] = (onnx_dir / "model.onnx").stat().st_size
        for batch in (1, 50):
            rng = np.random.default_rng(batch)
            obs = rng.normal(size=(batch, c.n_obs_steps, c.obs_dim)).astype(np.float32)
            noise = rng.standard_normal((batch, c.horizon, c.action_dim), dtype=np.float32)
            obs_t, noise_t = torch.from_numpy(obs), torch.from_numpy(noise)
            runners = {"torch_eager": lambda: policy(obs_t, noise_t),
                       "onnxruntime": lambda: ort(obs, noise),
                       "torchscript": lambda: ts(obs, noise)}
            calls = args.calls if batch == 1 else max(5, args.calls // 4)
            res = latency(runners, args.rounds, calls)
            res["onnxruntime_speedup_vs_torch_eager"] = round(res["torch_eager"]["median_ms"]
                                                              / res["onnxruntime"]["median_ms"], 2)
            res["torchscript_speedup_vs_torch_eager"] = round(res["torch_eager"]["median_ms"]
                                                              / res["torchscript"]["median_ms"], 2)
            out[f"batch_{batch}"] = res
        if args.checkpoint:
            from train.verify_export import verify_export

            exp = export_policy(args.checkpoint, "onnx", tmp / "trained")
            r = verify_export(exp, args.checkpoint, episodes=args.episodes, threads=args.threads, progress=False,
                              write=False)
            out["verify"] = {k: v for k, v in r.items() if k != "export_dir"}
    emit(out)


if __name__ == "__main__":
    main()
