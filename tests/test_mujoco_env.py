"""The MuJoCo backend as a user meets it through gym.make."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs

ID = "roboforge/stack_blocks-v0"


@pytest.mark.parametrize("control_mode", ["ee_delta_pose", "joint_pos"])
@pytest.mark.parametrize("obs_mode", ["state", "slots", "rgb", "rgbd", "pointcloud"])
def test_check_env_all_modes(obs_mode, control_mode):
    env = gym.make(ID, obs_mode=obs_mode, control_mode=control_mode, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("obs_mode,keys", [
    ("rgb", {"state": ((45,), np.float32), "front_rgb": ((128, 128, 3), np.uint8), "wrist_rgb": ((128, 128, 3), np.uint8)}),
    ("rgbd", {"front_depth": ((128, 128, 1), np.float32), "wrist_depth": ((128, 128, 1), np.float32)}),
    ("pointcloud", {"pointcloud": ((1024, 6), np.float32)}),
])
def test_observation_shapes_and_dtypes(obs_mode, keys):
    env = gym.make(ID, obs_mode=obs_mode)
    obs, _ = env.reset(seed=0)
    for k, (shape, dtype) in keys.items():
        assert obs[k].shape == shape and obs[k].dtype == dtype, k
    if obs_mode == "rgbd":
        d = obs["front_depth"]
        assert 0.3 < d.min() < 2.0  # the table/objects are within metres of the camera
    if obs_mode == "pointcloud":
        xyz = obs["pointcloud"][:, :3]
        assert xyz[:, 2].min() > -0.02 and xyz[:, 0].max() < 1.0  # table-top region only
    env.close()


def test_state_layout_and_info():
    env = gym.make(ID)
    obs, info = env.reset(seed=1)
    u = env.unwrapped
    lay = u.state_layout()
    assert obs.shape == (45,) and obs.dtype == np.float32
    assert np.allclose(obs[lay["goal_0.delta"]], u.goals[0].target(u.scene_state()) - u.scene_state().objects["top"].pos, atol=1e-6)
    s = u.scene_state()
    assert np.allclose(obs[lay["top.pos"]], s.objects["top"].pos, atol=1e-6)
    assert np.allclose(obs[lay["top.rel_pos"]], s.objects["top"].pos - s.tcp_pos, atol=1e-6)
    assert obs[lay["gripper_width"]][0] == pytest.approx(0.08, abs=1e-3)
    assert info["success"] is False and "stack the" in info["instruction"]
    _, r, term, trunc, info = env.step(env.action_space.sample())
    assert set(info) >= {"success", "task", "instruction", "conditions"} and 0 <= r <= 1
    assert info["task"] == "stack_blocks"


def test_same_seed_same_initial_state_and_colors():
    a, b = gym.make(ID), gym.make(ID)
    oa, ia = a.reset(seed=42)
    ob, ib = b.reset(seed=42)
    assert np.array_equal(oa, ob) and ia["instruction"] == ib["instruction"]
    oc, _ = a.reset(seed=43)
    assert not np.array_equal(oa, oc)


def test_ee_delta_pose_moves_the_tcp_in_the_commanded_direction():
    env = gym.make(ID)
    env.reset(seed=0)
    u = env.unwrapped
    start = u.scene_state().tcp_pos
    for _ in range(10):
        env.step(np.array([0, 0.5, 0, 0, 0, 0, 1], np.float32))  # +y at 1 cm/step
    for _ in range(10):
        env.step(np.array([0, 0, 0, 0, 0, 0, 1], np.float32))   # settle
    moved = u.scene_state().tcp_pos - start
    assert moved[1] == pytest.approx(0.10, abs=0.01)
    assert abs(moved[0]) < 0.01 and abs(moved[2]) < 0.01


def test_joint_pos_tracks_joint_targets_and_gripper_closes():
    env = gym.make(ID, control_mode="joint_pos")
    env.reset(seed=0)
    u = env.unwrapped
    target = u.controller.normalize_joints(u.data.qpos[:7] + 0.1)
    for _ in range(30):
        env.step(np.append(target, -1.0).astype(np.float32))
    assert np.allclose(u.controller.normalize_joints(u.data.qpos[:7]), target, atol=0.01)
    assert u.scene_state().gripper_width < 0.005


def test_bad_arguments_name_the_allowed_values():
    with pytest.raises(ValueError, match="obs_mode 'depth'.*state, slots, rgb, rgbd, pointcloud"):
        gym.make(ID, obs_mode="depth")
    with pytest.raises(ValueError, match="control_mode.*ee_delta_pose, joint_pos"):
        gym.make(ID, control_mode="torque")
    with pytest.raises(ValueError, match="unknown sim 'bullet'"):
        gym.make(ID, sim="bullet")
    env = gym.make(ID)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expects \(7,\)"):
        env.unwrapped.step(np.zeros(3))


def test_a_nan_action_is_refused_and_an_unstable_simulation_raises(capfd):
    from envs.backends.mujoco.env import SimulationUnstableError

    env = gym.make(ID)
    env.reset(seed=0)
    u = env.unwrapped
    qpos = u.data.qpos.copy()
    for bad in (np.full(7, np.nan), np.array([0, 0, np.inf, 0, 0, 0, 1.0])):
        with pytest.raises(ValueError, match=r"non-finite value\(s\) \(NaN/inf\).*ee_delta_pose expects finite"):
            env.step(bad)
    assert np.array_equal(u.data.qpos, qpos)  # refused before anything reached the simulator
    u.data.qvel[0] = 1e12  # a state MuJoCo cannot integrate (what a blown-up contact gives)
    with pytest.raises(SimulationUnstableError, match=r"unstable at t=.*BADQVEL"):
        env.step(np.zeros(7))
    assert "simulation is unstable" not in capfd.readouterr().err  # raised, not printed
    env.reset(seed=0)  # a reset clears it
    assert np.isfinite(env.step(np.zeros(7))[0]).all()


def test_render_rgb_array_and_missing_gl_message(monkeypatch):
    env = gym.make(ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()  # the overview camera at 480x360 (envs.core.surface)
    assert frame.shape == (360, 480, 3) and frame.dtype == np.uint8 and frame.std() > 10
    env.close()
    env = gym.make(ID, render_mode="rgb_array", render_size=(800, 700))  # beyond the model's offscreen default
    env.reset(seed=0)
    assert env.render().shape == (700, 800, 3)
    env.close()
    with pytest.raises(ValueError, match=r"render_size=\(0, 360\) is invalid; allowed: an int or \(width, height\)"):
        gym.make(ID, render_size=(0, 360))
    from envs.backends.mujoco import env as menv

    def no_gl(*a, **k):
        raise Exception("Cannot initialize a EGL device display")
    monkeypatch.setattr(menv.mujoco, "Renderer", no_gl)
    e2 = gym.make(ID, render_mode="rgb_array")
    e2.reset(seed=0)
    with pytest.raises(menv.RenderError, match="apt-get install -y libegl1 libgl1"):
        e2.render()


def test_observation_cameras_render_plain_and_the_overview_keeps_shadows():
    import mujoco

    env = gym.make(ID, obs_mode="rgb", image_size=48, render_mode="rgb_array")
    env.reset(seed=0)
    u = env.unwrapped
    plain = u._render("front", 48)                       # what the observation holds
    full = u._render("front", 48, observation=False)     # the overview camera's look
    assert np.array_equal(plain, env.unwrapped._obs(u.scene_state())["front_rgb"])
    assert np.abs(plain.astype(int) - full).mean() > 1   # the shadow and smoothed edges are gone
    flags = mujoco.mjtRndFlag
    obs_scene, overview_scene = u._renderers[48, 48, True].scene, u._renderers[48, 48, False].scene
    assert not obs_scene.flags[flags.mjRND_SHADOW] and not obs_scene.flags[flags.mjRND_REFLECTION]
    assert overview_scene.flags[flags.mjRND_SHADOW] and overview_scene.flags[flags.mjRND_REFLECTION]
    assert u.model.vis.quality.offsamples == 4           # the model keeps multisampling for render()
    assert env.render().std() > 10
    env.close()


def test_list_tasks_and_registration():
    assert "stack_blocks" in envs.list_tasks()
    assert gym.spec(ID).max_episode_steps == envs.get_task("stack_blocks").max_episode_steps


def test_front_camera_pixels_find_each_block_in_the_front_image():
    """observation.front_camera_pixels (what the camera pointer loss aims at) is the front camera's
    own projection: the pixel it names for each block shows that block's colour, and it inverts
    the backend's unprojection of a depth image."""
    from envs.core import observation as ob

    env = gym.make(ID, obs_mode="slots")
    obs, _ = env.reset(seed=3)
    u = env.unwrapped
    objects = ob.split_slots(obs)[1]
    objects = objects[objects[:, ob.SLOT_FIELD_SLICES["present"]][:, 0] > 0.5]
    colours = objects[:, ob.SLOT_FIELD_SLICES["rgb"]]
    image = u._render("front", 64).astype(float) / 255
    for pos, colour in zip(objects[:, ob.SLOT_FIELD_SLICES["pos"]], colours):
        col, row = ob.front_camera_pixels(pos, 64).astype(int)
        seen = image[row, col]
        # lit and shaded, but nearer this block's colour than any other block's
        assert np.argmin(np.linalg.norm(colours / np.linalg.norm(colours, axis=1, keepdims=True)
                                        - seen / np.linalg.norm(seen), axis=1)) == \
            np.flatnonzero((colours == colour).all(1))[0]
    depth = u._render("front", 64, depth=True)
    rows, cols = np.mgrid[0:64:7, 0:64:7]
    points = u._unproject("front", depth).reshape(64, 64, 3)[rows, cols]
    assert np.allclose(ob.front_camera_pixels(points, 64), np.stack([cols + 0.5, rows + 0.5], -1), atol=1e-3)
    env.close()
