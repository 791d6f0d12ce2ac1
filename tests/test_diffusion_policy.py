"""Diffusion policy: normalizer, EMA, config, U-Net, save_pretrained/from_pretrained, acting, and a tiny training run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from policies import Policy
from policies.common.ema import EMAModel
from policies.common.normalizer import Normalizer, NormalizerNotFitted
from policies.diffusion import DiffusionConfig, DiffusionPolicy
from policies.diffusion.unet1d import ConditionalUnet1D

# Small enough that the whole file runs in seconds on a 2-core CPU.
TINY = dict(obs_dim=6, action_dim=2, n_obs_steps=2, horizon=8, n_action_steps=4, down_dims=(32, 64),
            diffusion_step_embed_dim=32, num_inference_steps=5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fitted_policy(seed: int = 0, **overrides) -> DiffusionPolicy:
    torch.manual_seed(seed)
    policy = DiffusionPolicy(DiffusionConfig(**{**TINY, **overrides}))
    rng = np.random.default_rng(seed)
    c = policy.config
    policy.fit_normalizer(rng.uniform(-2, 3, (200, c.obs_dim)), rng.uniform(-0.5, 0.5, (200, c.action_dim)))
    return policy.eval()


# -- normalizer -----------------------------------------------------------------------------
def test_normalizer_round_trip_any_leading_shape_and_constant_dims():
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(500, 4)) * [1, 10, 0.1, 0] + [0, 5, -3, 7]).astype(np.float32)  # dim 3 constant
    norm = Normalizer(4).fit(data)
    x = torch.from_numpy(data)
    y = norm.normalize(x)
    assert y.min() >= -1 - 1e-6 and y.max() <= 1 + 1e-6
    assert torch.allclose(y[:, :3].amin(0), torch.full((3,), -1.0)) and torch.allclose(y[:, :3].amax(0), torch.ones(3))
    assert torch.all(y[:, 3] == 0)  # a constant dim maps to 0 rather than dividing by ~0
    x3 = x.reshape(5, 10, 10, 4)
    assert torch.allclose(norm.unnormalize(norm.normalize(x3)), x3, atol=1e-5)


def test_normalizer_min_span_keeps_a_barely_varying_dim_from_being_amplified():
    # a resting block's height: 0.2 mm of settling noise in the demos
    data = np.stack([np.linspace(0.0, 1.0, 50), 0.0199 + np.linspace(0, 2e-4, 50)], 1).astype(np.float32)
    plain, floored = Normalizer(2).fit(data), Normalizer(2).fit(data, min_span=0.1)
    pressed = torch.tensor([[0.5, 0.0199 - 2e-3]])  # 2 mm lower at test time
    assert plain.normalize(pressed)[0, 1] < -20           # far outside anything the model saw
    assert -0.1 < floored.normalize(pressed)[0, 1] < 0    # a small input, as the deviation is
    assert torch.allclose(plain.normalize(pressed)[0, 0], floored.normalize(pressed)[0, 0])  # wide dims unchanged
    assert torch.allclose(floored.unnormalize(floored.normalize(pressed)), pressed)


def test_normalizer_stats_travel_in_state_dict():
    norm = Normalizer(3).fit(np.arange(30, dtype=np.float32).reshape(10, 3))
    state = norm.state_dict()
    assert {"low", "high", "centre", "scale", "fitted"} <= set(state)
    other = Normalizer(3)
    with pytest.raises(NormalizerNotFitted, match="before fit"):
        other.normalize(torch.zeros(3))
    other.load_state_dict(state)
    x = torch.randn(7, 3)
    assert torch.equal(other.normalize(x), norm.normalize(x))


def test_normalizer_rejects_wrong_dim_and_nan():
    with pytest.raises(ValueError, match=r"expected \(N, 3\)"):
        Normalizer(3).fit(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        Normalizer(1).fit(np.array([[0.0], [np.nan]]))


# -- EMA ------------------------------------------------------------------------------------
def test_ema_moves_toward_model_and_copies_buffers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    ema = EMAModel(model)
    assert ema.get_decay(0) == 0.0 and ema.get_decay(1) == 0.0
    assert 0.0 < ema.get_decay(10) < ema.get_decay(1000) < ema.get_decay(10 ** 9) == 0.9999
    ema.step(model)  # first update copies the model outright
    ema.optimization_step = 100  # further updates average with a decay ~0.97
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(3.0)

    def distance():
        return sum((a - b).abs().sum().item() for a, b in zip(ema.averaged_model.parameters(), model.parameters()))

    gaps = [distance()]
    for _ in range(5):
        ema.step(model)
        gaps.append(distance())
    assert all(b < a for a, b in zip(gaps, gaps[1:])) and gaps[-1] > 0  # moving, not jumping
    assert torch.equal(ema.averaged_model[1].running_mean, model[1].running_mean)
    assert not any(p.requires_grad for p in ema.averaged_model.parameters())

    restored = EMAModel(model)
    restored.load_state_dict(ema.state_dict())
    assert restored.optimization_step == ema.optimization_step
    assert torch.equal(restored.averaged_model[0].weight, ema.averaged_model[0].weight)


# -- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, pattern", [
    (dict(n_action_steps=16), r"n_action_steps=16 is invalid; allowed: <= horizon - n_obs_steps \+ 1 = 15"),
    (dict(horizon=10), r"horizon=10 is invalid; allowed: a multiple of 2 \*\* \(len\(down_dims\) - 1\) = 4"),
    (dict(beta_schedule="cosine"), r"beta_schedule='cosine' is invalid; allowed: squaredcos_cap_v2, linear"),
    (dict(prediction_type="v"), r"prediction_type='v' is invalid; allowed: epsilon, sample"),
    (dict(n_groups=7), r"n_groups=7 is invalid; allowed: a divisor of every down_dims entry"),
    (dict(kernel_size=4), r"kernel_size=4 is invalid; allowed: an odd integer"),
    (dict(obs_dim=0), r"obs_dim=0 is invalid; allowed: an integer >= 1"),
    (dict(num_inference_steps=200), r"num_inference_steps=200 is invalid; allowed: <= num_train_timesteps \(100\)"),
    (dict(obs_min_span=-0.1), r"obs_min_span=-0.1 is invalid; allowed: a number >= 0"),
])
def test_config_validation_names_field_and_allowed_values(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        DiffusionConfig(**{"obs_dim": 40, "action_dim": 7, **overrides})


def test_config_dict_round_trip():
    cfg = DiffusionConfig(obs_dim=40, action_dim=7, down_dims=[32, 64, 128])
    d = cfg.to_dict()
    assert d["down_dims"] == [32, 64, 128] and json.loads(json.dumps(d)) == d
    assert DiffusionConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match=r"unknown key DiffusionConfig.n_latents=3; allowed keys: n_obs_steps, "):
        DiffusionConfig.from_dict({**d, "n_latents": 3})


# -- U-Net and sampler ------------------------------------------------------------------------
def test_unet_output_shape():
    net = ConditionalUnet1D(action_dim=7, global_cond_dim=2 * 40, down_dims=(32, 64, 128), kernel_size=5, n_groups=8,
                            step_embed_dim=32)
    x, cond = torch.randn(3, 16, 7), torch.randn(3, 80)
    assert net(x, torch.tensor([0, 50, 99]), cond).shape == (3, 16, 7)
    assert net(x, 10, cond).shape == (3, 16, 7)  # a scalar timestep broadcasts over the batch


def test_ddim_loop_matches_diffusers_scheduler():
    policy = fitted_policy()
    cond, noise = torch.randn(3, 2 * 6), torch.randn(3, 8, 2)
    ours = policy.sample_trajectory(cond, noise)
    sched, x = policy.inference_scheduler, noise
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(policy.model(x, t, cond), t, x).prev_sample
    assert torch.allclose(ours, x, atol=1e-6)


def test_chunk_graph_shape_and_determinism():
    policy = fitted_policy()
    obs, noise = torch.randn(3, 2, 6), torch.randn(3, 8, 2)
    chunk = policy(obs, noise)
    assert chunk.shape == (3, 4, 2)
    assert torch.equal(chunk, policy(obs, noise))
    with pytest.raises(ValueError, match=r"expected \(batch, 2, 6\)"):
        policy(torch.randn(3, 6))
    with pytest.raises(ValueError, match=r"expected \(3, 8, 2\)"):
        policy(obs, torch.randn(3, 4, 2))


def test_noise_seeds_make_each_row_depend_on_its_own_seed_only():
    policy = fitted_policy()
    obs = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    def first_actions(seeds, rows):
        torch.manual_seed(len(rows))  # the global RNG must not matter
        policy.reset(noise_seeds=seeds)
        return policy.select_action(obs[rows])
    a = first_actions([11, 12, 13], [0, 1, 2])
    assert np.array_equal(a, first_actions([11, 12, 13], [0, 1, 2]))
    assert np.allclose(a[1:], first_actions([12, 13], [1, 2]), atol=1e-6)  # another batch, same episodes
    assert not np.allclose(a, first_actions([11, 99, 13], [0, 1, 2]))
    policy.reset(noise_seeds=[1, 2])
    with pytest.raises(ValueError, match="gave 2 seeds for a batch of 3"):
        policy.select_action(obs)


# -- save / load ------------------------------------------------------------------------------
def test_save_load_round_trip_gives_identical_actions(tmp_path):
    policy = fitted_policy()
    path = policy.save_pretrained(tmp_path / "policy")
    config = json.loads((path / "config.json").read_text())
    assert config["policy_type"] == "diffusion" and config["format_version"] == 1
    assert {k: v for k, v in config.items() if k not in ("policy_type", "format_version")} == policy.config.to_dict()
    assert (path / "model.safetensors").exists()

    loaded = Policy.from_pretrained(path)
    assert isinstance(loaded, DiffusionPolicy) and loaded.config == policy.config
    assert loaded.device == torch.device("cpu") and not loaded.training
    assert isinstance(Policy.from_pretrained(path), DiffusionPolicy) and isinstance(DiffusionPolicy.from_pretrained(path), DiffusionPolicy)
    obs, noise = torch.randn(2, 2, 6), torch.randn(2, 8, 2)
    assert torch.equal(loaded(obs, noise), policy(obs, noise))


def test_load_without_config_json_says_what_is_missing(tmp_path):
    path = fitted_policy().save_pretrained(tmp_path / "policy")
    (path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        Policy.from_pretrained(path)


def test_load_without_normalizer_stats_says_so(tmp_path):
    unfitted = DiffusionPolicy(DiffusionConfig(**TINY))
    path = unfitted.save_pretrained(tmp_path / "policy")
    with pytest.raises(ValueError, match=r"checkpoint .* has no normalizer stats; was it saved with policy.save_pretrained\(\)"):
        Policy.from_pretrained(path)


# -- acting -----------------------------------------------------------------------------------
def test_select_action_predicts_once_per_chunk_and_pads_history(monkeypatch):
    policy = fitted_policy()
    seen = []

    def fake_predict(obs_hist, noise=None):
        seen.append(obs_hist.clone())
        k = len(seen)
        # chunk k holds actions [k*10 + i] so the queue order is visible
        return torch.tensor([[[k * 10.0 + i, 0.0] for i in range(policy.config.n_action_steps)]])

    monkeypatch.setattr(policy, "forward", fake_predict)
    observations = [np.full(6, float(i), dtype=np.float32) for i in range(9)]
    actions = [policy.select_action(o) for o in observations]
    assert len(seen) == 3  # steps 0, 4 and 8 start a new chunk
    assert [a[0] for a in actions] == [10, 11, 12, 13, 20, 21, 22, 23, 30]
    assert all(a.shape == (2,) and a.dtype == np.float32 for a in actions)
    assert torch.equal(seen[0][0], torch.zeros(2, 6))                        # padded with the first obs
    assert torch.equal(seen[1][0], torch.tensor(np.stack(observations[3:5])))  # the last two, oldest first

    policy.reset()
    policy.select_action(observations[5])
    assert len(seen) == 4 and torch.equal(seen[3][0], torch.full((2, 6), 5.0))


def test_select_action_checks_shape_and_accepts_batches():
    policy = fitted_policy()
    with pytest.raises(ValueError, match=r"expects \(6,\)"):
        policy.select_action(np.zeros(5, dtype=np.float32))
    policy.reset()
    action = policy.select_action(np.zeros((3, 6), dtype=np.float32))
    assert action.shape == (3, 2) and action.dtype == np.float32


# -- a tiny training run ------------------------------------------------------------------------
def test_training_reduces_loss_on_synthetic_demos():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    c = DiffusionConfig(**TINY)
    w = rng.normal(size=(c.obs_dim, c.action_dim)).astype(np.float32)
    obs = rng.uniform(-1, 1, size=(2048, c.obs_dim)).astype(np.float32)
    actions = obs @ w  # the expert holds a linear function of the state over the horizon
    policy = DiffusionPolicy(c)
    policy.fit_normalizer(obs, actions)
    obs_t = torch.from_numpy(obs)[:, None].expand(-1, c.n_obs_steps, -1)
    act_t = torch.from_numpy(actions)[:, None].expand(-1, c.horizon, -1)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    ema = EMAModel(policy)
    policy.train()
    losses = []
    for _ in range(200):
        idx = torch.randint(0, len(obs), (64,))
        loss = policy.compute_loss({"obs": obs_t[idx], "action": act_t[idx]})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.step(policy)
        losses.append(loss.item())
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < 0.5 * first, f"loss went {first:.3f} -> {last:.3f}"
    # the EMA copy is a complete policy: it acts and saves like the trained one
    assert ema.averaged_model.select_action(obs[0]).shape == (c.action_dim,)
