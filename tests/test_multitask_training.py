"""One diffusion policy over many tasks, language and cameras: train.py runs as a user types
them, the policy's inputs, and the errors for bad task sets."""
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from envs.core.observation import AGENT_DIM, SLOTS_DIM, slots_goal_mask
from policies import Policy
from policies.common.config import ConfigError
from policies.diffusion import DiffusionConfig, DiffusionPolicy
from train.config import compose
from train.datasets.multitask import IncompatibleTasksError
from train.multitask import check_action_spaces, resolve_tasks
from tests.test_train_cli import TINY_POLICY, run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(n_obs_steps=2, horizon=8, n_action_steps=4, down_dims=(16, 32), n_groups=4, diffusion_step_embed_dim=16,
            num_inference_steps=2, action_dim=7)
QUICK = ["train.checkpoint_every=10", "train.log_every=5", "train.batch_size=16", "eval.episodes=1",
         "eval.video_size=[64,64]", "eval.max_episode_steps=12", "progress=false", "train.num_threads=1",
         "policy.num_inference_steps=2", *TINY_POLICY]


def quick_args(tmp_path, *extra):
    return [f"data.store_root={tmp_path}/demos", f"hydra.run.dir={tmp_path}/run", "data.num_demos=2", *QUICK, *extra]


# -- train.py end to end ----------------------------------------------------------------------
def test_multitask_slots_run_writes_per_task_metrics_videos_and_table(tmp_path):
    res = run_cli("env=[stack_blocks,place_in_zone]", "obs_mode=slots", "train.steps=20", "eval.num_videos=1",
                  *quick_args(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics["per_task"]) == ["stack_blocks", "place_in_zone"]
    for p in metrics["per_task"].values():
        assert p["episodes"] == 1 and p["seeds"] == [100_000] and 0 <= p["success_rate"] <= 1
    assert metrics["success_rate"] == pytest.approx(np.mean([p["success_rate"] for p in metrics["per_task"].values()]))
    assert metrics["policy_inputs"] == ["slots", "instruction"]   # language on by default for several tasks
    for task in ("stack_blocks", "place_in_zone"):
        assert len(list((run / "videos" / task).glob("*.mp4"))) == 1
    assert "stack_blocks" in res.stdout and "mean" in res.stdout and "(mean over tasks)" in res.stdout
    policy = Policy.from_pretrained(run / "checkpoints" / "last")
    assert policy.reads_instruction and policy.config.obs_key == "slots" and policy.config.obs_dim == SLOTS_DIM
    # the text model is referenced by name, not saved: the weights hold only the policy's own modules
    names = load_file(run / "checkpoints" / "last" / "model.safetensors")
    assert {k.split(".")[0] for k in names} == {"obs_normalizer", "action_normalizer", "model", "instruction_proj"}


def test_rgb_single_task_run_trains_a_visuomotor_policy(tmp_path):
    res = run_cli("env=reach_target", "obs_mode=rgb", "train.steps=10", "eval.num_videos=0", *quick_args(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # no slots, no state; language on by default (images alone cannot say which object is the target)
    assert metrics["policy_inputs"] == ["front_rgb", "wrist_rgb", "proprio", "instruction"]
    assert list(metrics["per_task"]) == ["reach_target"] and metrics["num_episodes"] == 1
    weights = load_file(tmp_path / "run" / "checkpoints" / "last" / "model.safetensors")
    assert any(k.startswith("image_encoder.") for k in weights)             # trained end to end, saved


# -- bad task sets ------------------------------------------------------------------------------
def test_unknown_task_in_a_list_is_named_with_the_known_ones(tmp_path):
    res = run_cli("env=[stack_blocks,stak_blocks]", "obs_mode=slots", "eval.num_videos=0", *quick_args(tmp_path))
    assert res.returncode == 2 and "unknown task 'stak_blocks'" in res.stderr and "Known tasks:" in res.stderr
    assert "Traceback" not in res.stderr


def test_task_sets_resolve_and_state_is_refused_for_several_tasks():
    import envs

    builtin = resolve_tasks("builtin")
    assert builtin == [t for t in envs.list_tasks() if envs.get_task(t).__module__.startswith("envs.tasks.")]
    assert resolve_tasks(["unstack", "stack_blocks", "unstack"]) == ["unstack", "stack_blocks"]
    with pytest.raises(envs.UnknownTaskError, match="unknown task 'nope'.*Known tasks"):
        resolve_tasks(["stack_blocks", "nope"])
    with pytest.raises(ValueError, match="obs_mode='state' is invalid; allowed: slots, rgb, rgbd or pointcloud for several"):
        compose("env=[stack_blocks,unstack]")
    with pytest.raises(ValueError, match="env='library' is invalid"):
        compose("env=library", "obs_mode=slots")


def test_mixed_action_spaces_are_refused_with_the_reason():
    # every built-in task shares the ee_delta_pose space, so the check is exercised directly
    seven, eight = gym.spaces.Box(-1, 1, (7,), np.float32), gym.spaces.Box(-1, 1, (8,), np.float32)
    check_action_spaces({"a": seven, "b": gym.spaces.Box(-1, 1, (7,), np.float32)})
    with pytest.raises(IncompatibleTasksError, match=r"action spaces differ \(a: shape \(7,\).*b: shape \(8,\)"):
        check_action_spaces({"a": seven, "b": eight})


# -- the policy's inputs -----------------------------------------------------------------------
def visuomotor_policy():
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY, obs_dim=AGENT_DIM, obs_key="proprio", cameras=("front", "wrist"),
                                             image_size=32))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(50, AGENT_DIM)), rng.uniform(-1, 1, (50, 7)))
    return policy.eval()


def rgb_obs(rng, state_dim=60):
    return {"state": rng.normal(size=state_dim).astype(np.float32),
            "front_rgb": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
            "wrist_rgb": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)}


def chunk(policy, obs, seed=0, instruction=None):
    policy.reset(instruction=instruction)
    torch.manual_seed(seed)
    return policy.predict_action_chunk(obs)


def test_visuomotor_policy_reads_cameras_and_proprio_only():
    policy = visuomotor_policy()
    assert policy.config.obs_keys == ("front_rgb", "wrist_rgb", "proprio")
    rng = np.random.default_rng(1)
    obs = rgb_obs(rng)
    base = chunk(policy, obs)
    privileged = {**obs, "state": np.concatenate([obs["state"][:AGENT_DIM], rng.normal(size=60 - AGENT_DIM)])}
    assert np.array_equal(chunk(policy, privileged), base)              # objects and goal deltas: not read
    assert not np.allclose(chunk(policy, {**obs, "front_rgb": 255 - obs["front_rgb"]}), base)   # images: read
    with pytest.raises(ValueError, match="obs_key=.* is invalid; allowed: proprio when cameras are read"):
        DiffusionConfig(**TINY, obs_dim=SLOTS_DIM, obs_key="slots", cameras=("front",))


def test_pointcloud_policy_reads_the_cloud_and_proprio_only(tmp_path):
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY, obs_dim=AGENT_DIM, obs_key="proprio", pointcloud_dim=6,
                                             pointcloud_points=64, pointcloud_feature_dim=16))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(50, AGENT_DIM)), rng.uniform(-1, 1, (50, 7)))
    policy.eval()
    assert policy.config.obs_keys == ("pointcloud", "proprio")
    obs = {"state": rng.normal(size=60).astype(np.float32), "pointcloud": rng.uniform(0, 1, (1024, 6)).astype(np.float32)}
    base = chunk(policy, obs)
    privileged = {**obs, "state": np.concatenate([obs["state"][:AGENT_DIM], rng.normal(size=60 - AGENT_DIM)])}
    assert np.array_equal(chunk(policy, privileged), base)                   # objects and goal deltas: not read
    moved = obs["pointcloud"].copy()
    moved[:, 2] += 0.1                                                       # the scene, 10 cm higher
    assert not np.allclose(chunk(policy, {**obs, "pointcloud": moved}), base)
    clouds = torch.as_tensor(obs["pointcloud"]).expand(2, 2, -1, -1)
    feats = policy._encode_pointcloud(clouds, None)                          # eval: the same points every time
    assert torch.equal(feats, policy._encode_pointcloud(clouds, None)) and torch.allclose(feats[0], feats[1])
    policy.train()                                                           # training reads random subsets
    loss = policy.compute_loss({"obs": {"pointcloud": torch.rand(3, 2, 1024, 6), "proprio": torch.randn(3, 2, AGENT_DIM)},
                                "action": torch.rand(3, 8, 7)})
    loss.backward()
    assert all(p.grad is not None for p in policy.pointcloud_encoder.parameters())
    policy.save_pretrained(tmp_path / "p")
    again = Policy.from_pretrained(tmp_path / "p").eval()
    assert np.allclose(chunk(again, obs), chunk(policy.eval(), obs), atol=1e-5)
    with pytest.raises(ValueError, match="obs_key=.* is invalid; allowed: proprio when a point cloud is read"):
        DiffusionConfig(**TINY, obs_dim=SLOTS_DIM, obs_key="slots", pointcloud_dim=6)
    assert policy.export_spec().input_names == ["obs_history", "pointcloud", "noise"]   # exported: test_export_multitask


def test_pointcloud_run_trains_and_evaluates_with_a_loader_worker(tmp_path):
    # train.num_workers=1: a DataLoader worker reads the HDF5 store through its own file handle
    res = run_cli("env=stack_blocks", "obs_mode=pointcloud", "policy.image_size=32", "train.steps=6",
                  "train.num_workers=1", "eval.num_videos=0", *quick_args(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["policy_inputs"] == ["pointcloud", "proprio", "instruction"]   # no state, no slots, no images
    assert list(metrics["per_task"]) == ["stack_blocks"] and metrics["num_episodes"] == 1
    weights = load_file(tmp_path / "run" / "checkpoints" / "last" / "model.safetensors")
    assert any(k.startswith("pointcloud_encoder.") for k in weights)


def test_swapping_the_instruction_changes_the_action_and_checkpoints_round_trip(tmp_path):
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY, obs_dim=SLOTS_DIM, obs_key="slots",
                                             instruction_encoder="all-MiniLM-L6-v2"))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(50, SLOTS_DIM)), rng.uniform(-1, 1, (50, 7)))
    policy.eval()
    obs = rng.normal(size=SLOTS_DIM).astype(np.float32)
    red_on_blue = chunk(policy, obs, instruction="stack the red block on the blue block")
    blue_on_red = chunk(policy, obs, instruction="stack the blue block on the red block")
    assert not np.allclose(red_on_blue, blue_on_red, atol=1e-4)
    with pytest.raises(ValueError, match=r"call policy.reset\(instruction="):
        chunk(policy, obs)
    batch = chunk(policy, np.stack([obs, obs]), instruction=["stack the red block on the blue block",
                                                            "stack the blue block on the red block"])
    assert batch.shape == (2, 4, 7)
    policy.save_pretrained(tmp_path / "p")
    loaded = Policy.from_pretrained(tmp_path / "p")
    assert np.allclose(chunk(loaded, obs, instruction="stack the red block on the blue block"), red_on_blue, atol=1e-5)
    spec = loaded.export_spec()   # exports with its instruction as a graph input (tests/test_export_multitask.py)
    assert spec.instruction == {"encoder": "all-MiniLM-L6-v2", "dim": 384} and "instruction_embedding" in spec.input_names


def test_dropping_goal_features_leaves_the_instruction_to_say_the_goal():
    """policy.drop_goal_features: the slots' has_goal / goal_delta are masked, so the actions do not
    depend on them, and only the instruction says which block goes where."""
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY, obs_dim=SLOTS_DIM, obs_key="slots", drop_goal_features=True,
                                             instruction_encoder="all-MiniLM-L6-v2"))
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(50, SLOTS_DIM)), rng.uniform(-1, 1, (50, 7)))
    policy.eval()
    obs = rng.normal(size=SLOTS_DIM).astype(np.float32)
    goal_cols = slots_goal_mask() == 0
    other_goals = obs.copy()
    other_goals[goal_cols] = rng.normal(size=int(goal_cols.sum()))
    said = "stack the red block on the blue block"
    assert np.allclose(chunk(policy, obs, instruction=said), chunk(policy, other_goals, instruction=said), atol=1e-6)
    assert not np.allclose(chunk(policy, obs, instruction=said),
                           chunk(policy, obs, instruction="stack the blue block on the red block"), atol=1e-4)
    moved = obs.copy()
    moved[~goal_cols] += 1.0     # the scene itself still counts
    assert not np.allclose(chunk(policy, obs, instruction=said), chunk(policy, moved, instruction=said), atol=1e-4)
    with pytest.raises(ConfigError, match="drop_goal_features"):
        DiffusionConfig(**TINY, obs_dim=SLOTS_DIM, obs_key="slots", drop_goal_features=True)   # no instruction
    with pytest.raises(ConfigError, match="drop_goal_features"):
        DiffusionConfig(**TINY, obs_dim=40, obs_key="state", drop_goal_features=True,
                        instruction_encoder="all-MiniLM-L6-v2")


def test_shuffled_slots_keep_each_object_whole_and_the_agent_in_place():
    """policy.shuffle_slots: training sees the objects in a random slot order (so the order says
    nothing about roles), each object's fields moved together and the same at every step."""
    from envs.core.observation import MAX_OBJECTS, SLOT_DIM
    x = torch.arange(2 * 2 * SLOTS_DIM, dtype=torch.float32).reshape(2, 2, SLOTS_DIM)
    torch.manual_seed(3)
    y = DiffusionPolicy._shuffle_slots(x)
    assert torch.equal(y[..., :AGENT_DIM], x[..., :AGENT_DIM])
    objects = lambda v: v[..., AGENT_DIM:].reshape(2, 2, MAX_OBJECTS, SLOT_DIM)
    ox, oy = objects(x), objects(y)
    for b in range(2):
        perm = [int((ox[b, 0] == oy[b, 0, k]).all(-1).nonzero()) for k in range(MAX_OBJECTS)]
        assert sorted(perm) == list(range(MAX_OBJECTS))
        assert torch.equal(oy[b, 1], ox[b, 1, perm])     # the same order at every step of the history
    assert not torch.equal(y, x)
    with pytest.raises(ConfigError, match="shuffle_slots"):
        DiffusionConfig(**TINY, obs_dim=40, obs_key="state", shuffle_slots=True)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_trained_stack_blocks_policy_picks_the_block_its_instruction_names(tmp_path):
    """The issue's behavioural check: a language-conditioned stack_blocks policy, given the
    instruction with the colours swapped, lifts the other block first. Nothing but the words says
    which block is which: the goal fields are dropped and the token fusion reads the object slots
    as a set (their order would say the roles). The pointer loss teaches the readouts to find
    the named blocks (docs/multitask.md: 46/50 as given, 48/50 swapped). Needs a trained policy
    (~35 min of training on one core), hence slow."""
    res = run_cli("env=stack_blocks", "obs_mode=slots", "policy.drop_goal_features=true", "policy.obs_encoder=transformer",
                  "policy.fusion_pointer=true", "policy.fusion_pointer_loss=1.0", "data.num_demos=1000",
                  "train.steps=6000", "train.num_threads=1", "eval.episodes=5", "eval.num_videos=0", "progress=false",
                  f"data.store_root={tmp_path}/demos", f"hydra.run.dir={tmp_path}/run", timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    policy = Policy.from_pretrained(tmp_path / "run" / "checkpoints" / "last")
    picked_named = 0
    seeds = range(200_000, 200_010)
    for seed in seeds:
        env = gym.make("roboforge/stack_blocks-v0", obs_mode="slots")
        obs, info = env.reset(seed=seed)
        top, base = env.unwrapped.task.top.color, env.unwrapped.task.base.color
        swapped = f"stack the {base} block on the {top} block"
        assert info["instruction"] == f"stack the {top} block on the {base} block"
        policy.reset(instruction=swapped)
        lifted = None
        for _ in range(120):
            obs, _, term, trunc, _ = env.step(policy.select_action(obs))
            z = {n: o.pos[2] for n, o in env.unwrapped.scene_state().objects.items()}
            high = [n for n in ("top", "base") if z[n] > 0.06]
            if high:
                lifted = high[0]
                break
            if term or trunc:
                break
        picked_named += lifted == "base"   # the swapped instruction names the base block as the one to move
        env.close()
    assert picked_named >= 7, f"the swapped instruction moved the other block in {picked_named}/10 episodes"
