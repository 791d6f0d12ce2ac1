"""Peer worker: LeRobot's diffusion policy, training samples/s and DDIM-10 chunk latency on CPU.

Run by ``bench/peers/.venv-lerobot/bin/python -m bench.peers.lerobot_diffusion``, with the
settings of :mod:`bench.diffusion_timing`. LeRobot's diffusion policy refuses a state-only input
("at least one image or the environment state"), so the 42-number state is split the way LeRobot
names it: ``observation.state`` = the robot's 22, ``observation.environment_state`` = the blocks'
20; its global conditioning concatenates them back, so the U-Net is the same size as ours.
Training times ``policy.forward(batch)`` (LeRobot normalizes in a separate processor pipeline,
not timed: a few element-wise ops); inference times ``policy.diffusion.generate_actions``, which
is ``predict_action_chunk`` without the observation-queue bookkeeping. roboforge's policy
(``bench.diffusion.make_ours``, from the repo on ``sys.path``) is timed in the same process on the
same torch, rounds alternating, so the torch build is out of the comparison.
"""
from __future__ import annotations

import argparse

import torch

from bench import diffusion_timing as dt
from bench.common import emit, load, versions


def make_lerobot():
    """(loss_fn, params, predict, n_params) for LeRobot's DiffusionPolicy at the bench settings."""
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    env_dim = dt.OBS_DIM - dt.ROBOT_STATE_DIM
    cfg = DiffusionConfig(
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (dt.ROBOT_STATE_DIM,)),
                        "observation.environment_state": PolicyFeature(FeatureType.ENV, (env_dim,))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (dt.ACTION_DIM,))},
        n_obs_steps=dt.N_OBS_STEPS, horizon=dt.HORIZON, n_action_steps=dt.N_ACTION_STEPS,
        down_dims=dt.DOWN_DIMS, kernel_size=5, n_groups=8, diffusion_step_embed_dim=128,
        use_film_scale_modulation=True, noise_scheduler_type="DDIM", num_train_timesteps=100,
        num_inference_steps=dt.NUM_INFERENCE_STEPS, prediction_type="epsilon", clip_sample=True,
        device="cpu")
    policy = DiffusionPolicy(cfg)
    B, T, H = dt.BATCH, dt.N_OBS_STEPS, dt.HORIZON
    batch = {"observation.state": torch.randn(B, T, dt.ROBOT_STATE_DIM),
             "observation.environment_state": torch.randn(B, T, env_dim),
             "action": torch.rand(B, H, dt.ACTION_DIM) * 2 - 1,
             "action_is_pad": torch.zeros(B, H, dtype=torch.bool)}
    obs = {"observation.state": torch.randn(1, T, dt.ROBOT_STATE_DIM),
           "observation.environment_state": torch.randn(1, T, env_dim)}
    policy.train()
    return (lambda: policy.forward(batch)[0], list(policy.parameters()),
            lambda: policy.diffusion.generate_actions(obs), dt.n_params(policy.diffusion.unet))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--threads", type=int, default=dt.NUM_THREADS)
    args = ap.parse_args()
    load_start = load()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    *lerobot, n_lr = make_lerobot()
    sides = {"lerobot": tuple(lerobot)}
    try:  # roboforge's policy on this same torch, alternating with LeRobot's in this process
        from bench.diffusion import make_ours

        *ours, n_ours = make_ours()
        sides["roboforge_same_torch"] = tuple(ours)
    except Exception as err:  # noqa: BLE001 - the LeRobot figures stand on their own
        ours_error = f"{type(err).__name__}: {err}"
    res = dt.measure(sides, args.steps, args.rounds, args.calls)
    out = {"worker": "lerobot_diffusion", "impl": "lerobot.policies.diffusion.DiffusionPolicy", "params": n_lr,
           "batch": dt.BATCH, "torch_threads": torch.get_num_threads(), **res["lerobot"],
           "versions": versions("lerobot", "torch", "diffusers", "numpy"), "load_avg_1m_start": load_start}
    if "roboforge_same_torch" in res:
        out["roboforge_same_torch"] = {"params": n_ours, **res["roboforge_same_torch"]}
    else:
        out["roboforge_same_torch"] = {"error": ours_error}
    emit(out)


if __name__ == "__main__":
    main()
