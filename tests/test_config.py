"""train.py's config: the dataclasses are the only source of defaults, bad values fail on one line
naming the key, and a saved config.yaml reads back as the run it came from."""
import os
from dataclasses import replace

import pytest
from omegaconf import OmegaConf

from policies.common.config import ConfigError, UnknownConfigKey, from_dict
from policies.diffusion import DiffusionConfig, DiffusionParams
from policies.rl.config import PPOConfig, SACConfig
from policies.rl.mlp_policy import MLPActorConfig
from train.config import (CONFIG_DIR, DiffusionChoice, PPOChoice, RunConfig, SACChoice, compose, to_run_config,
                          to_yaml)


def test_config_yaml_holds_no_values_only_the_defaults_list():
    """Values live in the dataclasses alone, so a yaml default cannot drift from them."""
    assert set(OmegaConf.load(CONFIG_DIR / "config.yaml")) == {"defaults", "hydra"}
    assert sorted(p.name for p in CONFIG_DIR.rglob("*.yaml")) == ["config.yaml"]


@pytest.mark.parametrize("overrides, policy", [((), DiffusionChoice()), (("policy=ppo",), PPOChoice()),
                                               (("policy=sac",), SACChoice())])
def test_composed_defaults_are_the_dataclass_defaults(overrides, policy):
    composed = compose(*overrides)
    expected = RunConfig(policy=policy)  # store_root's default is an interpolation Hydra resolves
    assert expected.data.store_root == "${oc.env:ROBOFORGE_CACHE,${oc.env:HOME}/.cache/roboforge}/demos"
    store_root = os.environ["ROBOFORGE_CACHE"] + "/demos"
    assert composed == replace(expected, data=replace(expected.data, store_root=store_root))


def test_make_demo_network_is_the_small_unet():
    """`make demo`'s policy: the (32, 64, 128) U-Net with a 64-d step embedding, as measured."""
    policy = compose().policy
    assert policy.down_dims == (32, 64, 128) and policy.diffusion_step_embed_dim == 64
    assert DiffusionParams() == DiffusionParams(**{k: getattr(policy, k) for k in DiffusionParams.__dataclass_fields__})


@pytest.mark.parametrize("override, message", [
    ("train.steps=0", "train.steps=0 is invalid; allowed: an integer >= 1"),
    ("eval.num_videos=51", "eval.num_videos=51 is invalid; allowed: an integer in [0, eval.episodes=50]"),
    ("policy.kernel_size=4", "policy.kernel_size=4 is invalid; allowed: an odd integer"),
    ("sim.name=isaac", "sim.name='isaac' is invalid; allowed: mujoco, maniskill"),
    ("device=tpu", "device='tpu' is invalid; allowed: cpu, cuda"),
])
def test_out_of_range_value_names_the_command_line_key(override, message):
    with pytest.raises(ConfigError) as err:
        compose(override)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_rl_settings_are_checked_where_they_are_defined():
    with pytest.raises(ConfigError, match=r"^policy\.net_arch=\[\] is invalid; allowed: a non-empty list"):
        compose("policy=sac", "policy.net_arch=[]")
    with pytest.raises(ConfigError, match=r"^SACConfig\.reward_mode='shaped' is invalid; allowed: dense, sparse$"):
        SACConfig(reward_mode="shaped")
    with pytest.raises(ConfigError, match=r"^PPOConfig\.demos=5 is invalid; allowed: 0 "):
        PPOConfig(demos=5)


def test_saved_config_reads_back_as_the_same_run():
    config = compose("env=reach_target", "policy=sac", "policy.sb3.gamma=0.97", "data.num_demos=7")
    assert to_run_config(OmegaConf.create(to_yaml(config))) == config


def test_unknown_policy_key_in_a_saved_config_lists_the_allowed_keys():
    saved = OmegaConf.create(to_yaml(compose()))
    saved.policy.n_latents = 3
    with pytest.raises(UnknownConfigKey) as err:
        to_run_config(saved)
    assert str(err.value).startswith("unknown key policy.n_latents=3; allowed keys: name, n_obs_steps, horizon, ")
    saved = OmegaConf.create(to_yaml(compose()))
    saved.train.steps = "many"
    with pytest.raises(ConfigError, match=r"^train\.steps='many' is invalid; allowed: a value of type int$"):
        to_run_config(saved)


def test_from_dict_refuses_unknown_keys_for_every_policy_config():
    good = {"obs_dim": 3, "action_dim": 2}
    for cls in (DiffusionConfig, MLPActorConfig):
        assert from_dict(cls, good) == cls(**good)
        with pytest.raises(UnknownConfigKey, match=rf"^unknown key {cls.__name__}\.hiden_sizes=\[8\]; allowed keys: "
                                                   rf"(.*, )?obs_dim, "):
            cls.from_dict({**good, "hiden_sizes": [8]})


def test_diffusion_config_gets_its_shapes_from_the_data():
    params = compose("policy.horizon=32").policy
    config = DiffusionConfig.from_params(params, obs_dim=42, action_dim=7)
    assert config.horizon == 32 and (config.obs_dim, config.action_dim) == (42, 7)
    assert "name" not in config.to_dict()
    with pytest.raises(ConfigError, match=r"^DiffusionConfig\.obs_dim=0 is invalid; allowed: an integer >= 1$"):
        DiffusionConfig.from_params(params, obs_dim=0, action_dim=7)
    with pytest.raises(TypeError):
        DiffusionConfig()  # the shapes have no default
    assert isinstance(RunConfig(policy=DiffusionChoice()).policy, DiffusionParams)


def test_exploration_episodes_only_where_a_perception_loss_reads_them():
    ok = compose("obs_mode=rgb", "policy.aux_position_loss=1.0", "data.explore_episodes=10")
    assert ok.data.explore_episodes == 10 and ok.data.explore_fraction == 0.25
    with pytest.raises(ConfigError, match="data.explore_episodes=10 is invalid; allowed: 0 unless policy=diffusion "
                                          "reads cameras"):
        compose("data.explore_episodes=10")                               # state: nothing to perceive
    with pytest.raises(ConfigError, match="data.explore_episodes=10 is invalid"):
        compose("obs_mode=rgb", "data.explore_episodes=10")              # cameras, but no perception loss
    with pytest.raises(ConfigError, match="data.explore_fraction=1.0 is invalid; allowed: a number in \\[0, 1\\)"):
        compose("data.explore_fraction=1")
    with pytest.raises(ConfigError, match="eval.seed_start=200 is invalid; allowed: a seed range disjoint from the "
                                          "exploration seeds 200..209"):
        compose("obs_mode=rgb", "policy.aux_position_loss=1.0", "data.explore_episodes=10", "eval.seed_start=200",
                "eval.episodes=5")
    with pytest.raises(ConfigError, match="eval.seed_start=200 is invalid; allowed: a seed range disjoint from the "
                                          "exploration seeds 200..249"):    # HILP's own 50 exploratory episodes
        compose("policy=hilp", "obs_mode=slots", "eval.seed_start=200", "eval.episodes=5")
