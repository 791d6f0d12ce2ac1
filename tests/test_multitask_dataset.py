"""Demos across tasks: the multitask dataset a multitask, visual or language policy trains from."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from envs.core import observation as ob
from envs.registry import UnknownTaskError
from train.datasets.demo_store import DemoStore, Episode
from train.datasets.multitask import IncompatibleTasksError, MultiTaskDataset
from train.datasets.sequence import MissingObservationError, SequenceDataset
from train.demos import collect_demos, collect_demos_for_tasks


def store(tmp_path, task, n_episodes, T=10, action_dim=7, state_dim=30, control_mode="ee_delta_pose"):
    """A small synthetic store of ``task`` (format 3 vectors, no images)."""
    rng = np.random.default_rng(sum(map(ord, task)))
    eps = [Episode(rng.normal(size=(T, state_dim)).astype(np.float32),
                   rng.uniform(-1, 1, (T, action_dim)).astype(np.float32), np.zeros(T, np.float32), seed=s,
                   success=True, instruction=f"{task} {s % 2}", final_obs=np.zeros(state_dim, np.float32), task=task,
                   sim="mujoco", obs_mode="state", slots=rng.normal(size=(T, ob.SLOTS_DIM)).astype(np.float32),
                   final_slots=np.zeros(ob.SLOTS_DIM, np.float32), proprio=rng.normal(size=(T, ob.AGENT_DIM)).astype(
                       np.float32)) for s in range(n_episodes)]
    return DemoStore.write(tmp_path / f"{task}.h5", eps, task=task, sim="mujoco", obs_mode="state",
                           control_mode=control_mode)


def task_counts(data, loader) -> dict[str, int]:
    ids = torch.cat([batch["task_id"] for batch in loader])
    return {t: int((ids == i).sum()) for i, t in enumerate(data.tasks)}


def test_samples_carry_task_instruction_and_only_the_keys_asked_for(tmp_path):
    data = MultiTaskDataset([store(tmp_path, "a", 2), store(tmp_path, "b", 3)], n_obs_steps=2, horizon=4)
    assert data.tasks == ["a", "b"] and data.instructions == ["a 0", "a 1", "b 0", "b 1"]
    assert data.windows_per_task() == {"a": 2 * 11, "b": 3 * 11}
    s = data[len(data) - 1]
    assert set(s["obs"]) == {"slots"} and s["obs"]["slots"].shape == (2, ob.SLOTS_DIM)
    assert s["action"].shape == (4, 7) and data.tasks[int(s["task_id"])] == "b"
    assert data.instructions[int(s["instruction_id"])] == s["instruction"] == "b 0"
    batch = next(iter(DataLoader(data, batch_size=5, sampler=data.sampler(seed=0))))
    assert batch["obs"]["slots"].shape == (5, 2, ob.SLOTS_DIM) and len(batch["instruction"]) == 5


def test_task_weights_change_the_sampled_mix(tmp_path):
    # 'a' has 6x the windows of 'c': the mix follows the weights, not the sizes
    data = MultiTaskDataset([store(tmp_path, "a", 6), store(tmp_path, "b", 3), store(tmp_path, "c", 1)], 1, 2)
    loader = DataLoader(data, batch_size=64, sampler=data.sampler(num_samples=3000, seed=0))  # built once
    even = task_counts(data, loader)
    assert all(abs(n / 3000 - 1 / 3) < 0.04 for n in even.values()), even
    data.set_task_weights({"a": 3.0, "c": 0.0})  # 'b' keeps 1.0: expect 0.75 / 0.25 / 0
    skewed = task_counts(data, loader)
    assert abs(skewed["a"] / 3000 - 0.75) < 0.03 and skewed["c"] == 0, skewed
    # seeded: the same seed and epoch give the same draws
    assert list(data.sampler(100, seed=7)) == list(data.sampler(100, seed=7))
    with pytest.raises(ValueError, match="unknown task 'd'.*a, b, c"):
        data.set_task_weights({"d": 1.0})
    with pytest.raises(ValueError, match=r"task_weights\['b'\]=-1.0 is invalid"):
        data.set_task_weights({"b": -1})


def test_mixed_action_spaces_are_refused_with_the_reason(tmp_path):
    with pytest.raises(IncompatibleTasksError, match="a: 7-D ee_delta_pose actions; b: 8-D joint_pos actions"):
        MultiTaskDataset([store(tmp_path, "a", 1), store(tmp_path, "b", 1, action_dim=8, control_mode="joint_pos")],
                         1, 2)
    with pytest.raises(IncompatibleTasksError, match="'state' has different shapes.*read 'slots'"):
        MultiTaskDataset([store(tmp_path, "a", 1), store(tmp_path, "c", 1, state_dim=31)], 1, 2, obs_keys=("state",))


@pytest.fixture(scope="module")
def rgb_store(tmp_path_factory):
    return collect_demos("reach_target", 1, store_root=tmp_path_factory.mktemp("rgb"), obs_mode="rgb",
                         image_size=32, progress=False)


def test_visual_dataset_hands_out_images_and_proprio_only(rgb_store):
    keys = ("front_rgb", "wrist_rgb", "proprio")
    data = MultiTaskDataset([rgb_store], n_obs_steps=2, horizon=4, obs_keys=keys)
    ep = rgb_store.episodes[0]
    for k in (0, len(data) // 2, len(data) - 1):
        s = data[k]
        assert set(s["obs"]) == set(keys)  # no state, no slots: nothing privileged
        assert s["obs"]["front_rgb"].dtype == torch.uint8 and s["obs"]["front_rgb"].shape == (2, 32, 32, 3)
        assert s["obs"]["proprio"].shape == (2, ob.AGENT_DIM)
    _, obs_idx, _ = data.sequences.window(len(data) // 2)
    assert np.array_equal(data[len(data) // 2]["obs"]["wrist_rgb"].numpy(), ep.images["wrist_rgb"][obs_idx.numpy()])
    # a DataLoader worker opens its own handle on the store
    batch = next(iter(DataLoader(data, batch_size=4, sampler=data.sampler(seed=0), num_workers=1)))
    assert set(batch["obs"]) == set(keys) and batch["obs"]["front_rgb"].shape == (4, 2, 32, 32, 3)
    with pytest.raises(MissingObservationError, match="holds no 'front_depth'"):
        MultiTaskDataset([rgb_store], 2, 4, obs_keys=("front_depth",))
    # training targets (a grounding loss's) come apart from what the policy reads
    targeted = MultiTaskDataset([rgb_store], n_obs_steps=2, horizon=4, obs_keys=keys, target_keys=("slots", "step"))
    s = targeted[len(data) // 2]
    assert set(s["obs"]) == set(keys) and set(s["targets"]) == {"slots", "step"}
    assert np.array_equal(s["targets"]["slots"].numpy(), ep.slots[obs_idx.numpy()])
    assert int(s["targets"]["step"]) == int(obs_idx[-1]) and int(targeted[0]["targets"]["step"]) == 0
    with pytest.raises(ValueError, match="target key 'front_rgb' is invalid"):
        MultiTaskDataset([rgb_store], 2, 4, obs_keys=keys, target_keys=("front_rgb",))
    with pytest.raises(MissingObservationError, match="hold camera images or point clouds; name the observation keys"):
        SequenceDataset(rgb_store.episodes, 2, 4)  # the flat vector of an image store is privileged


def test_unknown_task_in_a_list_is_named_before_any_demo_is_collected(tmp_path):
    with pytest.raises(UnknownTaskError, match="unknown task 'stack_blokcs'.*Known tasks: .*reach_target"):
        collect_demos_for_tasks(["reach_target", "stack_blokcs"], 1, store_root=tmp_path)
    assert not list(tmp_path.glob("*.h5"))


def test_collect_demos_for_tasks_feeds_one_multitask_dataset(tmp_path):
    stores = collect_demos_for_tasks(["reach_target", "push_to_zone"], 1, store_root=tmp_path, progress=False)
    assert list(stores) == ["reach_target", "push_to_zone"]
    again = collect_demos_for_tasks(["reach_target"], 1, store_root=tmp_path, progress=False)
    assert again["reach_target"].path == stores["reach_target"].path  # the cache is reused
    data = MultiTaskDataset(stores, 2, 8, obs_keys=("slots",))
    assert data.tasks == ["reach_target", "push_to_zone"] and len(data.instructions) == 2


@pytest.mark.slow
def test_maniskill_demos_record_its_slots_and_mix_with_mujoco_demos(tmp_path):
    import gymnasium as gym

    import envs
    from envs.backends import maniskill

    if maniskill.problem():
        pytest.skip(maniskill.problem())
    ms = collect_demos("reach_target", 1, store_root=tmp_path, sim="maniskill", progress=False)
    ep = ms.episodes[0]
    env = gym.make(envs.env_id("reach_target"), sim="maniskill", obs_mode="slots")
    want = [env.reset(seed=ep.seed)[0]] + [env.step(a)[0] for a in ep.actions]
    env.close()
    assert ep.sim == "maniskill"  # the same builder, fed ManiSkill's numpy scene state: float32 rounding apart
    np.testing.assert_allclose(ep.slots, np.array(want[:-1]), atol=1e-5)
    mj = collect_demos("reach_target", 1, store_root=tmp_path, progress=False)
    data = MultiTaskDataset([mj, ms], 2, 4)
    assert data.tasks == ["reach_target"] and len(data) == len(mj.episodes[0].actions) + len(ep.actions) + 2


def test_exploration_windows_add_states_not_actions(tmp_path):
    """Exploratory episodes (data.explore_episodes) join their task with demo=False, get
    explore_fraction of its samples, and stay out of the normalizers."""
    (tmp_path / "x").mkdir()
    demos = {"a": store(tmp_path, "a", 4), "b": store(tmp_path, "b", 4)}
    explore = {"a": store(tmp_path / "x", "a", 2, T=30)}     # long episodes: many windows, yet a fixed share
    plain = MultiTaskDataset(demos, 1, 2)
    data = MultiTaskDataset(demos, 1, 2, explore_stores=explore, explore_fraction=0.25)
    assert len(data) == len(plain) + 2 * 30 and data.tasks == ["a", "b"]
    assert bool(data[0]["demo"]) and not bool(data[len(data) - 1]["demo"])
    np.testing.assert_array_equal(data.stacked_actions(), plain.stacked_actions())
    np.testing.assert_array_equal(data.stacked_obs("slots"), plain.stacked_obs("slots"))
    draws = [data[i] for i in data.sampler(num_samples=4000, seed=0)]
    explored = sum(not bool(d["demo"]) for d in draws)
    a = sum(data.tasks[int(d["task_id"])] == "a" for d in draws)
    assert abs(a / 4000 - 0.5) < 0.03 and abs(explored / 4000 - 0.125) < 0.02, (a, explored)
    with pytest.raises(ValueError, match=r"exploration stores of \['c'\] have no demos here"):
        MultiTaskDataset(demos, 1, 2, explore_stores=[store(tmp_path / "x", "c", 1)])
    with pytest.raises(ValueError, match="explore_fraction=1 is invalid; allowed: a number in \\[0, 1\\)"):
        MultiTaskDataset(demos, 1, 2, explore_stores=explore, explore_fraction=1)


def test_camera_exploration_is_rendered_and_cached_like_demos(tmp_path):
    from train.demos import EXPLORATION, collect_exploration

    explore = collect_exploration("reach_target", 2, 500, tmp_path, obs_mode="rgb", image_size=32, progress=False,
                                  action_noise=0.5, random_fraction=0.5)
    assert explore.meta["actions"] == EXPLORATION and len(explore) == 2
    assert explore.episodes[0].images["front_rgb"].shape[1:] == (32, 32, 3)
    assert explore.episodes[0].slots is not None                        # where things are: the perception targets
    again = collect_exploration("reach_target", 2, 500, tmp_path, obs_mode="rgb", image_size=32, progress=False,
                                action_noise=0.5, random_fraction=0.5)
    assert again.path == explore.path
