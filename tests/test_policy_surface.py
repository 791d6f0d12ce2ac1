"""The policy surface every policy type shares (LeRobot's names): ``from_pretrained``,
``save_pretrained``, ``select_action``, ``predict_action_chunk``, ``reset``; and checkpoints
written before those names existed still load."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from policies import Policy
from policies.diffusion import DiffusionConfig, DiffusionPolicy
from policies.rl.mlp_policy import MLPActorConfig, MLPActorPolicy

OLD_CHECKPOINTS = Path(__file__).parent / "data" / "policy_format1"
OBS_DIM, ACTION_DIM = 6, 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def diffusion() -> DiffusionPolicy:
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(obs_dim=OBS_DIM, action_dim=ACTION_DIM, n_obs_steps=2, horizon=8,
                                             n_action_steps=4, down_dims=(16, 32), diffusion_step_embed_dim=16,
                                             n_groups=4, num_inference_steps=3))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.uniform(-2, 3, (200, OBS_DIM)), rng.uniform(-0.5, 0.5, (200, ACTION_DIM)))
    return policy.eval()


def rl_mlp() -> MLPActorPolicy:
    torch.manual_seed(0)
    policy = MLPActorPolicy(MLPActorConfig(obs_dim=OBS_DIM, action_dim=ACTION_DIM, hidden_sizes=[16]))
    policy.actor.normalizer.mean.normal_()
    return policy.eval()


MAKERS = {"diffusion": diffusion, "rl_mlp": rl_mlp}


def rollout(policy: Policy, observations: np.ndarray, seed: int) -> np.ndarray:
    """select_action over an episode, the sampler's noise drawn from a fixed torch seed."""
    torch.manual_seed(seed)
    policy.reset()
    return np.stack([policy.select_action(o) for o in observations])


@pytest.mark.parametrize("kind", MAKERS)
def test_save_pretrained_then_from_pretrained_acts_the_same(kind, tmp_path):
    policy = MAKERS[kind]()
    path = policy.save_pretrained(tmp_path / kind)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = Policy.from_pretrained(path)
    assert type(loaded) is type(policy) and loaded.policy_type == kind and not loaded.training
    assert type(type(policy).from_pretrained(path)) is type(policy)
    observations = np.random.default_rng(1).normal(size=(9, OBS_DIM)).astype(np.float32)
    actions = rollout(loaded, observations, seed=3)
    assert actions.shape == (9, ACTION_DIM) and actions.dtype == np.float32
    np.testing.assert_array_equal(actions, rollout(policy, observations, seed=3))


@pytest.mark.parametrize("kind", MAKERS)
def test_predict_action_chunk_is_the_chunk_select_action_executes(kind):
    policy = MAKERS[kind]()
    n = getattr(policy.config, "n_action_steps", 1)
    obs = np.random.default_rng(2).normal(size=(3, OBS_DIM)).astype(np.float32)
    torch.manual_seed(5)
    policy.reset()
    chunk = policy.predict_action_chunk(obs)            # a batch of 3 lockstep environments
    assert chunk.shape == (3, n, ACTION_DIM) and chunk.dtype == np.float32
    torch.manual_seed(5)
    policy.reset()
    executed = np.stack([policy.select_action(obs) for _ in range(n)], axis=1)
    np.testing.assert_array_equal(executed, chunk)
    policy.reset()
    assert policy.predict_action_chunk(obs[0]).shape == (n, ACTION_DIM)  # one observation, no batch axis


def test_old_names_are_gone():
    for name in ("act", "save", "load"):
        assert not hasattr(Policy, name), f"Policy.{name} is back; the surface is select_action/save_pretrained/..."
    import policies

    assert not hasattr(policies, "load_policy")


def test_checkpoints_written_before_the_rename_still_load():
    """Same files on disk (config.json + model.safetensors, format_version 1), same outputs."""
    expected = json.loads((OLD_CHECKPOINTS / "expected.json").read_text())
    d = Policy.from_pretrained(OLD_CHECKPOINTS / "diffusion")
    e = expected["diffusion"]
    chunk = d(torch.tensor(e["obs_history"]), torch.tensor(e["noise"])).numpy()
    np.testing.assert_allclose(chunk, np.array(e["action_chunk"], np.float32), atol=1e-5)
    m = Policy.from_pretrained(OLD_CHECKPOINTS / "rl_mlp")
    e = expected["rl_mlp"]
    np.testing.assert_allclose(m.select_action(np.array(e["obs"], np.float32)), e["action"], atol=1e-6)
