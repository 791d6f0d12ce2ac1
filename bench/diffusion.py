"""Worker: roboforge's diffusion policy, training samples/s and DDIM-10 chunk latency on CPU.

Settings are those of :mod:`bench.diffusion_timing` (shared with the LeRobot worker, which also
times this same policy in its own process on LeRobot's torch). ``compute_loss`` and
the chunk graph (``policy(obs_hist)``, what ``predict_action_chunk`` runs without the observation
history bookkeeping) include our in-model normalization (a few element-wise ops).

    python -m bench.diffusion [--steps 20] [--rounds 3] [--calls 30] [--threads 1]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from bench import diffusion_timing as dt
from bench.common import emit, load, versions


def make_ours():
    """(loss_fn, params, predict, n_params) for roboforge's DiffusionPolicy at the bench settings."""
    from policies.diffusion import DiffusionConfig, DiffusionPolicy

    cfg = DiffusionConfig(obs_dim=dt.OBS_DIM, action_dim=dt.ACTION_DIM, n_obs_steps=dt.N_OBS_STEPS,
                          horizon=dt.HORIZON, n_action_steps=dt.N_ACTION_STEPS, down_dims=dt.DOWN_DIMS,
                          diffusion_step_embed_dim=128,  # as the LeRobot peer (not train.py's default, 64)
                          num_inference_steps=dt.NUM_INFERENCE_STEPS)
    policy = DiffusionPolicy(cfg)
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(1000, dt.OBS_DIM)), rng.uniform(-1, 1, (1000, dt.ACTION_DIM)))
    batch = {"obs": torch.randn(dt.BATCH, dt.N_OBS_STEPS, dt.OBS_DIM),
             "action": torch.rand(dt.BATCH, dt.HORIZON, dt.ACTION_DIM) * 2 - 1}
    obs_hist = torch.randn(1, dt.N_OBS_STEPS, dt.OBS_DIM)
    policy.train()  # no dropout/batch-norm: train/eval modes behave the same here
    return (lambda: policy.compute_loss(batch), list(policy.parameters()),
            lambda: policy(obs_hist), dt.n_params(policy.model))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="training steps per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=30, help="timed inference calls in all")
    ap.add_argument("--threads", type=int, default=dt.NUM_THREADS)
    args = ap.parse_args()
    load_start = load()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    loss_fn, params, predict, n = make_ours()
    res = dt.measure({"ours": (loss_fn, params, predict)}, args.steps, args.rounds, args.calls)["ours"]
    emit({"worker": "roboforge_diffusion", "impl": "policies.diffusion.DiffusionPolicy", "params": n,
          "batch": dt.BATCH, "torch_threads": torch.get_num_threads(), **res,
          "versions": versions("torch", "diffusers", "numpy"), "load_avg_1m_start": load_start})


if __name__ == "__main__":
    main()
