"""The ManiSkill backend as a user meets it through gym.make(..., sim="maniskill").

Skipped (with the reason, which is also the fix) only where ManiSkill or a Vulkan device is missing.
"""
import logging
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs
from envs.backends import maniskill
from envs.core import Task
from envs.core.predicates import Goal

_PROBLEM = maniskill.problem()
needs_maniskill = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")
ID = "roboforge/stack_blocks-v0"


def ms_make(task="stack_blocks", **kw):
    return gym.make(envs.env_id(task), sim="maniskill", **kw)


@needs_maniskill
@pytest.mark.parametrize("control_mode", ["ee_delta_pose", "joint_pos"])
def test_check_env_state(control_mode):
    env = ms_make(control_mode=control_mode)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@needs_maniskill
@pytest.mark.parametrize("obs_mode,keys", [
    ("rgb", {"state": ((45,), np.float32), "front_rgb": ((128, 128, 3), np.uint8), "wrist_rgb": ((128, 128, 3), np.uint8)}),
    ("rgbd", {"front_depth": ((128, 128, 1), np.float32), "wrist_depth": ((128, 128, 1), np.float32)}),
    ("pointcloud", {"pointcloud": ((1024, 6), np.float32)}),
])
def test_camera_observations_and_render(obs_mode, keys):
    env = ms_make(obs_mode=obs_mode, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for k, (shape, dtype) in keys.items():
        assert obs[k].shape == shape and obs[k].dtype == dtype, k
    if obs_mode == "rgb":
        assert obs["front_rgb"].std() > 10  # a picture, not a blank
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    if obs_mode == "rgbd":
        d = obs["wrist_depth"]
        assert 0.03 < d.min() < d.max() < 1.0  # the wrist camera looks down at the table from ~0.2 m
    if obs_mode == "pointcloud":
        xyz = obs["pointcloud"][:, :3]
        assert xyz[:, 2].min() > -0.02 and xyz[:, 0].max() < 1.0  # table-top region only
        assert np.abs(obs["pointcloud"]).sum() > 0
    img = env.render()
    assert img.shape == (360, 480, 3) and img.dtype == np.uint8  # the overview camera, as on MuJoCo
    env.close()


@needs_maniskill
def test_state_layout_info_and_oracle_surface():
    env = ms_make()
    obs, info = env.reset(seed=1)
    u = env.unwrapped
    lay = u.state_layout()
    assert obs.shape == (45,) and obs.dtype == np.float32
    s = u.scene_state()
    assert np.allclose(obs[lay["top.pos"]], s.objects["top"].pos, atol=1e-6)
    assert np.allclose(obs[lay["top.rel_pos"]], s.objects["top"].pos - s.tcp_pos, atol=1e-6)
    assert obs[lay["gripper_width"]][0] == pytest.approx(0.08, abs=1e-3)
    assert np.allclose(u.controller.target_pos, s.tcp_pos, atol=1e-4)
    assert info["success"] is False and "stack the" in info["instruction"] and info["task"] == "stack_blocks"
    assert set(info["conditions"]) == {"on_top", "released", "at_rest"}
    # 10 steps of +y at full scale move the TCP target 0.2 m (20 Hz, POS_SCALE 0.02 m); the arm follows
    start = u.controller.target_pos.copy()
    for _ in range(10):
        _, r, term, trunc, info = env.step(np.array([0, 1, 0, 0, 0, 0, 1], np.float32))
    assert u.controller.target_pos[1] - start[1] == pytest.approx(0.2, abs=1e-3)
    assert u.scene_state().tcp_pos[1] - start[1] > 0.15
    assert isinstance(r, float) and 0.0 <= r <= 1.0
    with pytest.raises(ValueError, match="ee_delta_pose expects"):
        env.step(np.zeros(3))
    env.close()


@needs_maniskill
def test_non_finite_actions_are_refused():
    env = ms_make()
    env.reset(seed=0)
    before = env.unwrapped.scene_state().tcp_pos.copy()
    with pytest.raises(ValueError, match=r"non-finite value\(s\) \(NaN/inf\) at index 0"):
        env.step(np.full(7, np.nan, np.float32))
    assert np.allclose(env.unwrapped.scene_state().tcp_pos, before)  # nothing was applied
    env.close()


@needs_maniskill
@pytest.mark.slow  # starts two worker processes on a machine without CUDA
def test_non_finite_actions_are_refused_batched():
    vec = gym.make(envs.env_id("reach_target"), sim="maniskill", num_envs=2)  # GPU batch, or CPU workers
    vec.reset(seed=0)
    a = np.zeros((2, 7), np.float32)
    a[1, 3] = np.inf
    with pytest.raises(ValueError, match=r"at index \(1, 3\)"):
        vec.step(a)
    vec.close()


@needs_maniskill
def test_joint_pos_action_maps_onto_joint_limits():
    env = ms_make(control_mode="joint_pos")
    env.reset(seed=0)
    u = env.unwrapped
    q_target = u.controller.solve_ik(np.array([0.5, 0.1, 0.15]), np.array([0.0, 0.70710678, 0.70710678, 0.0]))
    a = np.append(u.controller.normalize_joints(q_target), -1.0).astype(np.float32)
    for _ in range(30):
        env.step(a)
    s = u.scene_state()
    assert np.linalg.norm(s.tcp_pos - [0.5, 0.1, 0.15]) < 0.01
    assert s.gripper_width < 0.005  # -1 closes the gripper
    env.close()


@pytest.mark.parametrize("task", envs.list_tasks())
def test_batched_goals_equal_the_task_definition(task):
    """The tensor twins of the predicates give Task.evaluate / Task.dense_reward exactly, on
    random states around the goal targets, for 8 parallel environments with different episodes."""
    from envs.backends.maniskill.goals import BatchedGoals, Snapshot  # torch only: runs without ManiSkill
    from envs.core.scene import Scene

    n, rng = 8, np.random.default_rng(7)
    tasks, scenes = [], []
    for i in range(n):
        r = np.random.default_rng(100 + i)
        t, sc = envs.get_task(task)(), Scene(r)
        t.build(sc, r)
        tasks.append(t), scenes.append(sc)
    names = [o.name for o in scenes[0].objects]
    bg = BatchedGoals(names, n, "cpu")
    bg.set(range(n), [t.goals() for t in tasks], np.array([[o.half_size for o in sc.objects] for sc in scenes]))
    from envs.core import fixtures as fx

    jointed = tuple(o.name for o in scenes[0].objects if o.kind in fx.JOINT_KINDS)
    for trial in range(6):
        m = len(names)
        # an articulated fixture reports its handle; its joint starts where the spec says
        pos = np.array([[fx.handle_point(o, o.joint_pos) if o.kind in fx.JOINT_KINDS else o.pos
                         for o in sc.objects] for sc in scenes])
        joints = torch.tensor([[o.joint_pos for o in sc.objects] for sc in scenes], dtype=torch.float32)
        snap = Snapshot(torch.tensor(pos, dtype=torch.float32), torch.zeros(n, m, 4), torch.zeros(n, m, 3),
                        torch.zeros(n, m, 3), torch.zeros(n, 3), torch.tensor([[1.0, 0, 0, 0]] * n),
                        torch.zeros(n, 9), torch.zeros(n, 9), torch.zeros(n, m, dtype=torch.bool),
                        torch.zeros(n, m, dtype=torch.bool), joints, jointed)
        # move goal objects onto / near their targets so both outcomes of every check occur
        for i, t in enumerate(tasks):
            st = snap.scene_state(i, names)
            for g in t.goals():
                k = names.index(g.obj.name)
                jitter = rng.normal(0, [0.01, 0.01, 0.004]) * (trial % 3)
                snap.pos[i, k] = torch.tensor(g.target(st) + jitter, dtype=torch.float32)
                if g.obj.kind in fx.JOINT_KINDS:  # a joint goal moves the handle along the joint
                    snap.joints[i, k] = fx.joint_from_handle(g.obj, snap.pos[i, k].numpy())
                st = snap.scene_state(i, names)
            snap.tcp_pos[i] = snap.pos[i, names.index(t.goals()[0].obj.name)] + torch.tensor(rng.normal(0, 0.03, 3), dtype=torch.float32)
            snap.linvel[i] = torch.tensor(rng.normal(0, 0.03, (m, 3)), dtype=torch.float32)
            snap.touching[i] = torch.tensor(rng.random(m) < 0.3)
            snap.grasped[i] = snap.touching[i] & torch.tensor(rng.random(m) < 0.5)
        conds, evals = bg.evaluate(snap)
        reward = bg.dense_reward(snap, conds, evals)
        for i, t in enumerate(tasks):
            st = snap.scene_state(i, names)
            want = t.evaluate(st)
            got = {k: bool(v[i]) for k, v in conds.items()}
            assert got == want, (task, trial, i)
            assert float(reward[i]) == pytest.approx(t.dense_reward(st), abs=1e-5), (task, trial, i)


@needs_maniskill
def test_task_needing_an_unknown_feature_is_rejected_at_load():
    class ClothTask(Task):
        name = "cloth_fold"
        features = frozenset({"cloth"})

    with pytest.raises(ValueError, match=r"cloth_fold.*\['cloth'\].*ManiSkill backend lacks"):
        maniskill.make_env(ClothTask)


@needs_maniskill
def test_goal_without_batched_twin_runs_on_the_host():
    class Lifted(Goal):  # a predicate only a generated task knows
        def check(self, state):
            return bool(state.pos(self.obj)[2] > 0.1)

        def target(self, state):
            return np.array([*state.pos(self.obj)[:2], 0.12])

    class Lift(Task):
        name = "lift_test"
        instruction = "lift the {block.color} block"

        def build(self, scene, rng):
            self.block = scene.add_block("red")
            scene.place_randomly([self.block])

        def goals(self):
            return [Lifted(self.block)]

    env = maniskill.make_env(Lift)
    _, info = env.reset(seed=0)
    assert info["conditions"]["lifted_block_0"] is False
    env.close()


def test_missing_maniskill_gives_one_message_with_the_fix(monkeypatch):
    from envs.backends.maniskill import availability

    availability.problem.cache_clear()
    monkeypatch.setitem(sys.modules, "mani_skill", None)  # import fails as if not installed
    try:
        with pytest.raises(maniskill.ManiSkillUnavailable, match=r"pip install -e '\.\[maniskill\]'"):
            ms_make()
    finally:
        availability.problem.cache_clear()


@needs_maniskill
def test_no_vulkan_device_gives_one_message_with_the_fix(monkeypatch):
    import sapien.render

    from envs.backends.maniskill import availability

    def no_device():
        raise RuntimeError("failed to find a rendering device")

    availability.problem.cache_clear()
    monkeypatch.setattr(sapien.render, "get_device_summary", no_device)
    try:
        with pytest.raises(maniskill.ManiSkillUnavailable) as err:
            ms_make()
        msg = str(err.value)
        assert "Vulkan" in msg and "bookworm-backports" in msg and "mesa-vulkan-drivers libvulkan1" in msg
    finally:
        availability.problem.cache_clear()


@needs_maniskill
def test_batch_env_gives_slots_tensors_and_the_task_name():
    from envs.backends.maniskill.env import ManiSkillBatchEnv
    from envs.core import observation as ob

    env = ManiSkillBatchEnv(envs.get_task("place_in_bowl"), num_envs=1, obs_mode="slots", sim_backend="physx_cpu")
    obs, info = env.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.shape == (1, ob.SLOTS_DIM) and obs.dtype == torch.float32
    assert info["task"] == "place_in_bowl"
    _, objects = ob.split_slots(obs[0].numpy())
    want = ob.slot_attributes(env.episode(0).scene.objects, "place_in_bowl")
    attrs = np.concatenate([objects[:2, ob.SLOT_FIELD_SLICES[k]] for k in ob.ATTRIBUTE_FIELDS], 1)
    assert np.allclose(attrs, want, atol=1e-6) and objects[:, 0].tolist() == [1, 1] + [0] * (ob.MAX_OBJECTS - 2)
    obs, _, _, _, info = env.step(torch.zeros(1, 7))
    assert obs.shape == (1, ob.SLOTS_DIM) and info["task"] == "place_in_bowl"
    env.close()


@needs_maniskill
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_num_envs_on_cpu_falls_back_to_async_workers(caplog):
    with caplog.at_level(logging.WARNING, logger="roboforge.maniskill"):
        env = ms_make(num_envs=2)
    assert "falling back to gymnasium AsyncVectorEnv" in caplog.text
    try:
        obs, info = env.reset(seed=3)
        assert obs.shape == (2, 45) and isinstance(obs, np.ndarray)
        obs, r, term, trunc, info = env.step(np.zeros((2, 7), np.float32))
        assert r.shape == (2,) and term.shape == (2,)
        obs2, _ = env.reset(options={"env_idx": [1]})  # partial reset
        assert np.array_equal(obs2[0], obs[0]) and not np.array_equal(obs2[1], obs[1])
    finally:
        env.close()


# -- GPU: batched tensors on the CUDA device ------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("num_envs", [16, 1024])
def test_gpu_batched_reset_and_step_stay_on_device(num_envs):
    import warnings

    env = ms_make(num_envs=num_envs)
    u = env.unwrapped
    obs, info = env.reset(seed=0)
    assert obs.shape == (num_envs, 45) and obs.device.type == "cuda"
    assert len(set(u.instructions)) > 1  # parallel episodes differ
    actions = torch.zeros(num_envs, 7, device="cuda")
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(5):
                obs, r, term, trunc, info = env.step(actions)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    ours = [w for w in caught if "backends/maniskill" in str(w.filename) and "synchroniz" in str(w.message)]
    assert not ours, [f"{w.filename}:{w.lineno}" for w in ours]
    assert obs.device.type == r.device.type == info["success"].device.type == "cuda"
    assert r.shape == (num_envs,) and not info["success"].any()
    before = obs.clone()
    obs, _ = env.reset(options={"env_idx": torch.tensor([0, 3], device="cuda")})  # partial reset
    assert torch.equal(obs[1], before[1]) and not torch.equal(obs[0], before[0])
    env.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_slots_are_per_episode_and_stay_on_device():
    from envs.core import observation as ob

    env = ms_make("sort_by_color", num_envs=16, obs_mode="slots")
    u = env.unwrapped
    obs, info = env.reset(seed=0)
    obs, _, _, _, info = env.step(torch.zeros(16, 7, device="cuda"))
    assert obs.shape == (16, ob.SLOTS_DIM) and obs.device.type == "cuda" and info["task"] == "sort_by_color"
    _, objects = ob.split_slots(obs.cpu().numpy())
    for i in (0, 7, 15):  # colours differ per episode: each row has its own episode's attributes
        want = ob.slot_attributes(u.episode(i).scene.objects, "sort_by_color")
        attrs = np.concatenate([objects[i, :6, ob.SLOT_FIELD_SLICES[k]] for k in ob.ATTRIBUTE_FIELDS], 1)
        assert np.allclose(attrs, want, atol=1e-6), i
        state = u.episode(i).scene
        assert np.allclose(objects[i, :6, ob.SLOT_FIELD_SLICES["pos"]],
                           [o.pos for o in state.objects], atol=5e-3), i  # at rest where they were placed
    env.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_vector_env_auto_resets():
    vec = maniskill.make_vec_env("reach_target", num_envs=16)
    obs, _ = vec.reset(seed=0)
    for _ in range(envs.get_task("reach_target").max_episode_steps + 1):
        obs, r, term, trunc, info = vec.step(torch.zeros(16, 7, device="cuda"))
    assert "final_obs" in info and obs.device.type == "cuda"
    vec.close()


@needs_maniskill
@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_vector_env_and_sb3_adapter_on_cpu():
    vec = maniskill.make_vec_env("reach_target", num_envs=2)
    obs, _ = vec.reset(seed=0)
    dim = vec.single_observation_space.shape[0]
    assert obs.shape == (2, dim) and dim == envs.make_env("reach_target").observation_space.shape[0]
    for _ in range(envs.get_task("reach_target").max_episode_steps):
        obs, r, term, trunc, info = vec.step(np.zeros((2, 7), np.float32))
    assert trunc.all() and "final_obs" in info  # same-step auto-reset at the time limit
    vec.close()
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.vec_env import VecEnv

    from policies.rl.sb3 import make_vec_env

    sb3 = make_vec_env("reach_target", "maniskill", num_envs=2, seed=0)
    assert isinstance(sb3, VecEnv)
    obs = sb3.reset()
    obs, r, done, infos = sb3.step(np.zeros((2, 7), np.float32))
    assert obs.shape == (2, dim) and r.shape == (2,)  # the layout MuJoCo's reach_target has
    sb3.close()
