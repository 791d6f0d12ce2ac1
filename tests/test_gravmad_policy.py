"""The GravMAD policy (policies/gravmad), its test-time sub-goal observation, the held-out variants
and the train.py surface (train/gravmad.py)."""
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
import envs.heldout
from policies import Policy
from policies.common.config import ConfigError
from policies.gravmad import GravMADConfig, GravMADParams, GravMADPolicy
from planners.subgoals import SubGoalObservation

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_POINTS = 48


def tiny_policy(obs_dim=5, **kw) -> GravMADPolicy:
    params = GravMADParams(down_dims=(8, 16), n_groups=4, diffusion_step_embed_dim=8, horizon=8, n_action_steps=4,
                           num_inference_steps=3, pointcloud_points=16, pointcloud_feature_dim=16,
                           gravmap_resolution=8, gravmap_points=32, token_dim=16, **kw)
    torch.manual_seed(0)
    policy = GravMADPolicy(GravMADConfig.from_params(params, obs_dim=obs_dim, action_dim=7, obs_key="proprio",
                                                     pointcloud_dim=6))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(50, obs_dim)), rng.uniform(-1, 1, size=(50, 7)))
    return policy


def batch(b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    cloud = torch.rand(b, 2, N_POINTS, 6, generator=g) * torch.tensor([0.6, 0.8, 0.2, 1, 1, 1]) + \
        torch.tensor([0.2, -0.4, 0.0, 0, 0, 0])
    goal = torch.rand(b, 1, 4, generator=g).expand(b, 2, 4) * torch.tensor([0.5, 0.6, 0.3, 1]) + \
        torch.tensor([0.25, -0.3, 0.02, 0])
    return {"obs": {"pointcloud": cloud, "proprio": torch.randn(b, 2, 5, generator=g), "subgoal": goal.clone()},
            "action": torch.rand(b, 8, 7, generator=g) * 2 - 1}


def test_the_subgoal_guides_position_and_gripper_but_not_rotation():
    policy = tiny_policy().eval()
    b = batch(2)
    noise = torch.randn(2, 8, 7, generator=torch.Generator().manual_seed(1))
    a = policy(b["obs"], noise)
    moved = {**b["obs"], "subgoal": b["obs"]["subgoal"] + torch.tensor([0.2, 0.1, 0.1, 0.0])}
    c = policy(moved, noise)
    assert not torch.allclose(a[..., :3], c[..., :3])       # position: guided by the GravMap token
    torch.testing.assert_close(a[..., 3:6], c[..., 3:6])     # rotation: never reads the token


def test_loss_with_infonce_trains_and_the_checkpoint_round_trips(tmp_path):
    policy = tiny_policy(infonce_weight=0.5)
    opt = torch.optim.Adam(policy.parameters(), 3e-3)
    b = batch(8)
    losses = []
    for _ in range(25):
        loss = policy.compute_loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert policy.gravmap.encoder.point_mlp[0].weight.grad is not None
    policy.eval().save_pretrained(tmp_path / "ckpt")
    loaded = Policy.from_pretrained(tmp_path / "ckpt")
    assert isinstance(loaded, GravMADPolicy) and loaded.config == policy.config
    noise = torch.randn(8, 8, 7)
    torch.testing.assert_close(loaded(b["obs"], noise), policy(b["obs"], noise))


def test_acting_needs_the_point_cloud_and_the_subgoal():
    policy = tiny_policy().eval()
    policy.reset()
    with pytest.raises(ValueError, match="needs obs_mode=pointcloud"):
        policy.select_action(np.zeros(5, np.float32))
    policy.reset()
    with pytest.raises(ValueError, match="needs obs_mode=pointcloud"):
        policy.select_action({"state": np.zeros(40, np.float32)})
    obs = {k: v[0, -1].numpy() for k, v in batch(1)["obs"].items()}
    policy.reset()
    with pytest.raises(ValueError, match="SubGoalObservation"):
        policy.select_action({k: v for k, v in obs.items() if k != "subgoal"})
    policy.reset()
    assert policy.select_action(obs).shape == (7,)


def test_subgoal_observation_follows_the_manual_provider_through_an_oracle_episode():
    from planners import make_oracle

    # a Dict observation is required: the flat state vector cannot carry the sub-goal
    with pytest.raises(ValueError, match="needs a Dict observation"):
        SubGoalObservation(gym.make(envs.env_id("stack_blocks")), "manual")
    env = SubGoalObservation(gym.make(envs.env_id("stack_blocks"), obs_mode="pointcloud", image_size=32), "manual")
    obs, info = env.reset(seed=3)
    top = env.unwrapped.scene_state().objects["top"].pos
    np.testing.assert_allclose(obs["subgoal"], [*top, 0.0], atol=1e-6)   # first: grasp the top block
    assert env.observation_space["subgoal"].contains(obs["subgoal"])
    oracle, opened = make_oracle(env.env), []
    oracle.reset()
    for _ in range(200):
        obs, _, term, trunc, info = env.step(oracle.act(obs))
        opened.append(obs["subgoal"][3])
        if term or trunc:
            break
    assert info["success"] and info["subgoal_fallbacks"] == 0
    assert opened[0] == 0.0 and opened[-1] == 1.0   # grasp, then release over the base


def test_llm_subgoals_name_unknown_objects_and_far_points_the_episode_goes_on():
    """The policy's test-time path with subgoals=llm against the local OpenAI-compatible server:
    the unusable steps are rejected with their reasons and counted; the usable one drives it."""
    from llm import LLMClient, LLMConfig
    from planners.subgoals.llm_provider import LLMProvider
    from tests.test_llm_client import StubLLM

    composed = json.dumps([
        {"object": "lamp", "skill": "pick_place", "relation": "on", "reference": "base"},
        {"object": "top", "skill": "pick_place", "relation": "at", "xyz": [3.0, 0.0, 0.02]},
        {"object": "top", "skill": "pick_place", "relation": "on", "reference": "base"}])
    from envs.core.observation import AGENT_DIM

    policy = tiny_policy(obs_dim=AGENT_DIM).eval()
    with StubLLM(['["put the top block on the base block"]', composed]) as server:
        client = LLMClient(LLMConfig(base_url=server.base_url, model="stub", timeout_s=5.0, max_retries=0))
        env = SubGoalObservation(gym.make(envs.env_id("stack_blocks"), obs_mode="pointcloud", image_size=32,
                                          max_episode_steps=6), LLMProvider(client))
        obs, info = env.reset(seed=0)
    assert info["subgoal_fallbacks"] == 2
    assert "'lamp' is not in the scene" in info["subgoal_rejections"][0]
    assert "outside the workspace" in info["subgoal_rejections"][1]
    np.testing.assert_allclose(obs["subgoal"][:3], env.unwrapped.scene_state().objects["top"].pos, atol=1e-6)
    policy.reset()
    steps = 0
    while True:
        obs, _, term, trunc, info = env.step(policy.select_action(obs))
        steps += 1
        if term or trunc:
            break
    assert steps == 6 and info["subgoal_fallbacks"] == 2


@pytest.mark.parametrize("task", envs.heldout.HELDOUT_TASKS)
def test_heldout_variants_are_solvable_groundable_and_not_builtin(task):
    from planners.subgoals import record_oracle_episode
    from planners.subgoals.providers import SubGoalTracker, make_provider

    assert not envs.is_builtin(task) and task not in envs.resolve_tasks("builtin")
    env = gym.make(envs.env_id(task))
    _, _, success = record_oracle_episode(env, 0)
    assert success
    tracker = SubGoalTracker(make_provider("offline"))
    env.reset(seed=1)
    tracker.reset(env)
    tracker.update()
    assert tracker.fallbacks == 0


def test_train_config_for_gravmad_says_what_it_needs(monkeypatch):
    from train.config import compose

    c = compose("policy=gravmad", "env=[stack_blocks,heldout_block_in_bowl]", "obs_mode=pointcloud",
                "subgoals=offline")
    assert c.policy.name == "gravmad" and c.subgoals == "offline" and c.policy.pointcloud_table_z == 0.005
    with pytest.raises(ConfigError, match="obs_mode='slots' is invalid; allowed: pointcloud for policy=gravmad"):
        compose("policy=gravmad", "obs_mode=slots")
    with pytest.raises(ConfigError, match="subgoals='offline' is invalid; allowed: manual .* unless policy=gravmad"):
        compose("policy=diffusion", "obs_mode=pointcloud", "subgoals=offline")
    with pytest.raises(ConfigError, match="subgoals='oracle' is invalid; allowed: manual, offline, llm"):
        compose("policy=gravmad", "obs_mode=pointcloud", "subgoals=oracle")


def test_subgoals_llm_without_an_endpoint_names_the_variables_before_training(monkeypatch):
    import train as _  # noqa: F401
    from llm import LLMConfigError
    from train.config import compose
    import importlib.util
    import pathlib

    for var in ("ROBOFORGE_LLM_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_API_KEY",
                "ROBOFORGE_LLM_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(var, raising=False)
    spec = importlib.util.spec_from_file_location("train_main", pathlib.Path(__file__).parents[1] / "train.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    config = compose("policy=gravmad", "env=stack_blocks", "obs_mode=pointcloud", "subgoals=llm")
    with pytest.raises(LLMConfigError, match="set ROBOFORGE_LLM_BASE_URL and ROBOFORGE_LLM_MODEL"):
        main.check_runnable(config)


@pytest.mark.slow
def test_train_py_gravmad_trains_evaluates_resumes_and_its_checkpoint_needs_point_clouds(tmp_path):
    """``python train.py policy=gravmad`` end to end on two tiny tasks, then ``resume=`` to more
    steps; the saved policy refuses a state observation naming the obs_mode it needs."""
    from tests.test_train_cli import TINY_POLICY, resume_with, run_cli
    from train.imitation import checkpoint_dir

    run = tmp_path / "run"
    args = ["policy=gravmad", "env=[reach_target,place_in_zone]", "obs_mode=pointcloud", "data.num_demos=2",
            f"data.store_root={tmp_path}/demos", "train.steps=3", "train.batch_size=4", "train.checkpoint_every=3",
            "train.num_threads=1", "eval.episodes=2", "eval.num_videos=0", "eval.max_episode_steps=8",
            "policy.gravmap_resolution=8", "policy.pointcloud_points=32", "progress=false",
            f"hydra.run.dir={run}", *TINY_POLICY]
    res = run_cli(*args, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["policy"] == "gravmad" and metrics["subgoals"] == "manual"
    assert set(metrics["per_task"]) == {"reach_target", "place_in_zone"} and "subgoal" in metrics["policy_inputs"]
    res = resume_with(run, timeout=900, **{"train.steps": 5})
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["train"]["start_step"] == 3
    policy = Policy.from_pretrained(checkpoint_dir(run))
    policy.reset(instruction="reach")
    with pytest.raises(ValueError, match="needs obs_mode=pointcloud"):
        policy.select_action(gym.make(envs.env_id("reach_target")).reset(seed=0)[0])
