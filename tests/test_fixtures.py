"""Containers and articulated fixtures: a box things go into, a lid, a drawer on a prismatic joint,
a cabinet door on a revolute joint; their goals, their bad-input messages, and the same state on
both backends. The oracle on the six built-in tasks (put_in_box, close_lid, open_drawer,
put_in_drawer_and_close, open_door, close_door) is covered on MuJoCo by tests/test_conformance.py;
on ManiSkill by the slow test here."""
import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.backends import maniskill
from envs.core import Closed, Covered, InContainer, Opened, Scene, SceneError
from envs.core import fixtures as fx
from envs.core.state import ObjectState, SceneState
from planners import oracle_episodes

_PROBLEM = maniskill.problem()
needs_maniskill = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")


def _scene():
    sc = Scene(np.random.default_rng(0))
    drawer, box = sc.add_drawer("blue"), sc.add_box("red", size=(0.14, 0.14, 0.06))
    block, lid = sc.add_block("green", size=0.03), sc.add_lid("yellow")
    drawer.pos, box.pos = np.array([0.6, 0.05, drawer.half_size[2]]), np.array([0.45, -0.12, 0.03])
    return sc, drawer, box, block, lid


def _state(objects: dict, joints: dict) -> SceneState:
    z = np.zeros(3)
    return SceneState({n: ObjectState(np.asarray(p, float), np.array([1.0, 0, 0, 0]), z, z) for n, p in objects.items()},
                      tcp_pos=np.array([0.3, 0, 0.3]), tcp_quat=np.array([1.0, 0, 0, 0]), gripper_width=0.08,
                      joints=joints)


def test_joint_goal_on_a_block_names_the_kinds_with_joints():
    _, drawer, box, block, lid = _scene()
    for goal in (Opened, Closed):
        with pytest.raises(ValueError, match=r"'block_0' is a 'block'; kinds with joints: door, drawer"):
            goal(block)
    with pytest.raises(ValueError, match=r"fraction=1.5 is invalid; allowed: 0..1"):
        Opened(drawer, fraction=1.5)
    with pytest.raises(ValueError, match=r"containers: box, drawer, bowl"):
        InContainer(block, lid)
    with pytest.raises(ValueError, match=r"Covered needs a lid"):
        Covered(block, box)
    with pytest.raises(SceneError, match=r"drawer size .* is invalid; allowed"):
        Scene(np.random.default_rng(0)).add_drawer("red", size=(0.5, 0.1, 0.1))


def test_drawer_goals_follow_the_joint_and_the_handle():
    _, drawer, box, block, lid = _scene()
    travel = fx.joint_range(drawer)
    opened, closed = Opened(drawer, fraction=0.8), Closed(drawer)
    for q, is_open, is_closed in ((0.0, False, True), (0.5 * travel, False, False), (0.9 * travel, True, False)):
        s = _state({"drawer_0": fx.handle_point(drawer, q), "block_0": [0.3, 0.2, 0.015]}, {"drawer_0": q})
        assert (opened.check(s), closed.check(s)) == (is_open, is_closed)
        assert fx.joint_from_handle(drawer, s.pos(drawer)) == pytest.approx(q)
    # the handle moves towards the robot (-x) as the drawer opens; Opened's target lies past the threshold
    s = _state({"drawer_0": fx.handle_point(drawer, 0.0), "block_0": [0.3, 0.2, 0.015]}, {"drawer_0": 0.0})
    assert opened.target(s)[0] < s.pos(drawer)[0] - 0.8 * travel
    assert opened.skill == closed.skill == "articulate"


def test_door_goals_follow_the_hinge():
    sc = Scene(np.random.default_rng(0))
    door = sc.add_door("blue")
    door.pos, door.yaw = np.array([0.6, 0.05, door.half_size[2]]), 0.3
    j = fx.joint_spec(door)
    assert j.type == "revolute" and fx.joint_range(door) == pytest.approx(np.pi / 2, abs=1e-4)
    pivot = fx.to_world(door, j.pivot)
    radius = np.linalg.norm(fx.handle_point(door, 0.0) - pivot)
    opened, closed = Opened(door, fraction=0.8), Closed(door)
    for q in (0.0, 0.4, 1.2, 1.5):
        h = fx.handle_point(door, q)
        assert np.linalg.norm(h - pivot) == pytest.approx(radius)      # on the circle about the hinge
        assert h[2] == pytest.approx(door.pos[2])                         # a vertical axis: no rise
        assert fx.joint_from_handle(door, h) == pytest.approx(q)
        s = _state({"door_0": h}, {"door_0": q})
        assert opened.check(s) == (q >= 0.8 * np.pi / 2 - 1e-4) and closed.check(s) == (q <= 0.05 * np.pi / 2)
        dq = 1e-6  # the handle's velocity is the derivative of its position along the joint
        assert fx.handle_velocity(door, q, 1.0) == pytest.approx((fx.handle_point(door, q + dq) - h) / dq, abs=1e-4)
    # the door swings out towards the robot (-x in its frame), the handle turning with it
    out = fx.to_local(door, fx.handle_point(door, 1.2)) - fx.to_local(door, fx.handle_point(door, 0.0))
    assert out[0] < -0.1 and fx.handle_turn(door, 1.2) == pytest.approx(-1.2)
    assert opened.target(None) == pytest.approx(fx.handle_point(door, 0.9 * np.pi / 2), abs=1e-3)
    with pytest.raises(SceneError, match=r"door size .* is invalid; allowed"):
        Scene(np.random.default_rng(0)).add_door("red", size=(0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match=r"containers: box, drawer, bowl"):
        InContainer(sc.add_block("red"), door)


def test_in_container_box_and_open_drawer():
    _, drawer, box, block, lid = _scene()
    q = 0.9 * fx.joint_range(drawer)
    goal = InContainer(block, drawer)
    s = _state({"drawer_0": fx.handle_point(drawer, q), "block_0": [0.3, 0.2, 0.015]}, {"drawer_0": q})
    assert not goal.check(s)
    drop = goal.target(s)
    inside = _state({"drawer_0": fx.handle_point(drawer, q), "block_0": drop}, {"drawer_0": q})
    assert goal.check(inside)
    assert drop[0] < drawer.pos[0] - drawer.half_size[0]   # in the part outside the cabinet
    # the block stays "in" when the drawer closes around it (it moves with the drawer floor)
    moved = _state({"drawer_0": fx.handle_point(drawer, 0.0), "block_0": drop + [q, 0, 0]}, {"drawer_0": 0.0})
    assert goal.check(moved)
    in_box = InContainer(block, box)
    t = in_box.target(_state({"block_0": [0.3, 0.2, 0.015], "box_0": box.pos}, {}))
    assert in_box.check(_state({"block_0": t, "box_0": box.pos}, {}))
    assert not in_box.check(_state({"block_0": t + [0.06, 0, 0], "box_0": box.pos}, {}))   # in the wall


def test_mujoco_drawer_reports_its_handle_and_joint():
    env = gym.make(envs.env_id("open_drawer"))
    obs, info = env.reset(seed=3)
    base = env.unwrapped
    s = base.scene_state()
    drawer = base.scene.objects[0]
    assert s.joints == {drawer.name: pytest.approx(0.0, abs=1e-6)}
    assert s.pos(drawer) == pytest.approx(fx.handle_point(drawer, 0.0), abs=1e-6)
    # open the joint by hand: the reported handle moves, Opened holds, the state observation shows it
    base.data.qpos[base._joint_qpos[drawer.name]] = 0.1
    import mujoco
    mujoco.mj_forward(base.model, base.data)
    s2 = base.scene_state()
    assert s2.pos(drawer)[0] == pytest.approx(s.pos(drawer)[0] - 0.1, abs=1e-6)
    assert base.goals[0].check(s2)
    layout = base.state_layout()
    assert np.allclose(base._state_obs(s2)[layout[f"{drawer.name}.pos"]], s2.pos(drawer), atol=1e-5)
    env.close()


def _mujoco_handle_geom(base, obj):
    """World centre of the MuJoCo handle geom of an articulated fixture (what the fingers hold)."""
    return base.data.geom_xpos[base.model.geom(f"{obj.name}_handle").id]


def test_mujoco_door_turns_about_its_hinge():
    import mujoco

    env = gym.make(envs.env_id("close_door"))
    env.reset(seed=5)
    base = env.unwrapped
    door = base.scene.objects[0]
    s = base.scene_state()
    q0 = s.joints[door.name]
    assert q0 == pytest.approx(door.joint_pos, abs=1e-6) and q0 > 0.5 * np.pi / 2   # starts open
    for q in (q0, 0.0, 1.3):
        base.data.qpos[base._joint_qpos[door.name]] = q
        mujoco.mj_forward(base.model, base.data)
        s = base.scene_state()
        # the compiled hinge (pivot, axis) turns the handle geom where envs.core.fixtures says
        assert s.pos(door) == pytest.approx(fx.handle_point(door, q), abs=1e-6)
        assert _mujoco_handle_geom(base, door) == pytest.approx(fx.handle_point(door, q), abs=1e-6)
        assert base.goals[0].check(s) == (q <= 0.05 * np.pi / 2)
    layout = base.state_layout()
    assert np.allclose(base._state_obs(s)[layout[f"{door.name}.pos"]], s.pos(door), atol=1e-5)
    env.close()


def test_api_reference_lists_the_fixture_vocabulary():
    from generation.codegen_llm import api_reference

    ref = api_reference()
    for name in ("InContainer(obj, container=None", "Covered(obj", "Opened(obj, fraction=0.8)",
                 "Closed(obj, fraction=0.05)", "scene.add_drawer(", "scene.add_box(", "scene.add_lid(",
                 "scene.add_door("):
        assert name in ref, name


@needs_maniskill
def test_maniskill_drawer_matches_mujoco_at_reset():
    states = {}
    for sim in ("mujoco", "maniskill"):
        env = gym.make(envs.env_id("put_in_drawer_and_close"), sim=sim)
        env.reset(seed=7)
        states[sim] = env.unwrapped.scene_state()
        env.close()
    for name in ("drawer_0", "block_0"):
        assert states["mujoco"].objects[name].pos == pytest.approx(states["maniskill"].objects[name].pos, abs=2e-3)
    assert states["maniskill"].joints["drawer_0"] == pytest.approx(0.0, abs=1e-4)


@needs_maniskill
def test_maniskill_door_matches_mujoco():
    """Same door, same joint angle and handle on both backends; on ManiSkill the handle's collision
    shape sits where the analytic handle point says (SAPIEN's revolute joint frame = the MJCF hinge)."""
    import mujoco

    states, envs_ = {}, {}
    for sim in ("mujoco", "maniskill"):
        envs_[sim] = gym.make(envs.env_id("close_door"), sim=sim)
        envs_[sim].reset(seed=7)
        states[sim] = envs_[sim].unwrapped.scene_state()
    door = envs_["mujoco"].unwrapped.scene.objects[0]
    assert states["maniskill"].joints["door_0"] == pytest.approx(states["mujoco"].joints["door_0"], abs=1e-4)
    assert states["maniskill"].pos(door) == pytest.approx(states["mujoco"].pos(door), abs=1e-3)
    ms = envs_["maniskill"].unwrapped.base
    link = ms._moving_links[ms.object_names.index("door_0")]._objs[0]
    handle = next(p for p in fx.parts(door) if p.name == "handle")
    pose = link.entity_pose * __import__("sapien").Pose(p=list(handle.center))
    assert np.asarray(pose.p) == pytest.approx(fx.handle_point(door, states["maniskill"].joints["door_0"]), abs=1e-3)
    for env in envs_.values():
        env.close()


@pytest.mark.slow
@needs_maniskill
@pytest.mark.parametrize("task", ["put_in_box", "close_lid", "open_drawer", "put_in_drawer_and_close", "open_door",
                                  "close_door"])
def test_maniskill_oracle_solves_fixture_tasks(task):
    env = gym.make(envs.env_id(task), sim="maniskill")
    for e in oracle_episodes(env, (70_000, 70_001)):
        assert e["success"], f"{task} seed {e['seed']}: {e['conditions']}"
    env.close()
