"""Orientation and insertion vocabulary: yaw goals modulo each kind's symmetry, edge alignment,
socket fixtures with a hole, the ``Inserted`` goal, and the errors a task writer gets."""
import mujoco
import numpy as np
import pytest

import envs
from envs.backends.mujoco.compiler import compile_scene
from envs.core import Aligned, AtPose, Inserted, ObjectState, Scene, SceneError, SceneState, Task, yaw_period
from envs.core.orientation import yaw_error
from envs.core.rotations import yaw_quat


def _state(objs: dict, touching=()):
    """``objs``: name -> (position, yaw); nothing moves."""
    z = np.zeros(3)
    return SceneState(objects={k: ObjectState(np.asarray(p, float), yaw_quat(y), z, z) for k, (p, y) in objs.items()},
                      tcp_pos=np.array([0.5, 0.0, 0.3]), tcp_quat=np.array([0, 1.0, 0, 0]), gripper_width=0.08,
                      touching=frozenset(touching))


def _scene():
    return Scene(np.random.default_rng(0))


def test_yaw_symmetry_per_kind():
    s = _scene()
    cube, bar = s.add_block("red", 0.04), s.add_block("blue", (0.06, 0.03, 0.03))
    assert yaw_period(cube) == pytest.approx(np.pi / 2) and yaw_period(bar) == pytest.approx(np.pi)
    assert yaw_error(0.0, np.pi / 2, np.pi / 2) == pytest.approx(0.0)          # a cube's quarter turn is no turn
    assert abs(yaw_error(0.0, np.pi / 2, np.pi)) == pytest.approx(np.pi / 2)   # a bar's is
    assert yaw_error(0.1, np.pi - 0.1, np.pi) == pytest.approx(-0.2)           # the short way round


def test_goal_yaw_on_a_kind_without_one_names_the_kinds_that_have_one():
    s = _scene()
    cyl = s.add_cylinder("red")
    with pytest.raises(ValueError, match=r"'cylinder_0' \(a cylinder\).*kinds that support one: block, zone, socket"):
        AtPose(cyl, xy=(0.5, 0.0), yaw=0.3)
    AtPose(cyl, xy=(0.5, 0.0))  # no yaw asked: fine
    bowl = s.add_bowl("blue")
    with pytest.raises(ValueError, match="a bowl"):
        Aligned(s.add_block("green"), bowl)


def test_at_pose_yaw_checks_the_angle_and_the_reward_sees_it():
    s = _scene()
    bar = s.add_block("red", (0.06, 0.03, 0.03), name="bar")
    goal = AtPose(bar, xy=(0.5, 0.0), yaw=0.0, yaw_tol=0.1)
    at = lambda yaw: _state({"bar": ((0.5, 0.0, 0.015), yaw)})  # noqa: E731
    assert goal.check(at(0.05)) and goal.check(at(np.pi + 0.05))   # half-turn symmetric
    assert not goal.check(at(0.3)) and not goal.check(at(np.pi / 2))
    assert goal.distance(at(np.pi / 2)) > goal.distance(at(0.3)) > goal.distance(at(0.0)) == 0.0
    assert goal.orientation(at(1.0)) == (0.0, pytest.approx(np.pi))


def test_aligned_matches_edges_modulo_both_symmetries():
    s = _scene()
    bar, cube = s.add_block("red", (0.06, 0.03, 0.03), name="bar"), s.add_block("blue", 0.04, name="cube")
    zone = s.add_zone("green", (0.08, 0.05), name="zone")
    st = lambda name, yaw, zone_yaw=0.7: _state({name: ((0.5, 0.0, 0.015), yaw), "zone": ((0.5, 0.0, 0.0005), zone_yaw)})  # noqa: E731
    long_side = Aligned(bar, zone, yaw_tol=0.1, xy_tol=0.015)
    assert long_side.check(st("bar", 0.7)) and long_side.check(st("bar", 0.7 - np.pi))
    assert not long_side.check(st("bar", 0.7 + np.pi / 2))         # across the outline: oblong vs oblong
    assert Aligned(cube, zone).check(st("cube", 0.7 + np.pi / 2))  # a cube's edges match every quarter turn
    off = _state({"bar": ((0.55, 0.0, 0.015), 0.7), "zone": ((0.5, 0.0, 0.0005), 0.7)})
    assert not long_side.check(off) and Aligned(bar, zone).check(off)  # xy_tol only when asked


def test_inserted_needs_depth_centre_and_fit():
    s = _scene()
    sock = s.add_socket("gray", hole=(0.066, 0.036), depth=0.03, name="slot")
    bar = s.add_block("red", (0.06, 0.03, 0.06), name="bar")
    goal = Inserted(bar, sock)
    st = lambda p, yaw=0.4: _state({"bar": (p, yaw), "slot": ((0.5, 0.1, 0.015), 0.4)})  # noqa: E731
    assert goal.check(st((0.5, 0.1, 0.03)))
    assert not goal.check(st((0.5, 0.1, 0.06)))               # resting on the rim, not in
    assert not goal.check(st((0.515, 0.1, 0.03)))             # off-centre
    assert not goal.check(st((0.5, 0.1, 0.03), 0.4 + np.pi / 2))  # turned across the slot
    assert np.allclose(goal.target(st((0.3, 0.0, 0.03))), [0.5, 0.1, 0.03])


def test_a_peg_wider_than_the_hole_is_refused_with_both_sizes():
    s = _scene()
    sock = s.add_socket("gray", hole=0.036, shape="round", name="sock")
    with pytest.raises(ValueError, match=r"peg 'fat' \(0\.040 x 0\.040 m, cylinder\).*round hole of 'sock' "
                                         r"\(0\.036 x 0\.036 m\)"):
        Inserted(s.add_cylinder("red", radius=0.02, name="fat"), sock)
    Inserted(s.add_cylinder("red", radius=0.015, name="thin"), sock)
    with pytest.raises(ValueError, match=r"does not fit the square hole"):
        Inserted(s.add_block("blue", 0.04, name="cube"), s.add_socket("gray", hole=0.038))
    with pytest.raises(ValueError, match="needs a socket"):
        Inserted(s.add_block("blue", 0.02, name="small"), s.add_zone("green"))
    with pytest.raises(SceneError, match="shape='hex' is invalid; allowed: square, round"):
        s.add_socket("gray", shape="hex")


def test_the_error_reaches_a_task_at_build():
    class TooTight(Task):
        def build(self, scene, rng):
            self.sock, self.peg = scene.add_socket("gray", hole=0.03), scene.add_block("red", 0.032)

        def goals(self):
            return [Inserted(self.peg, self.sock)]

    t = TooTight()
    t.build(_scene(), None)
    with pytest.raises(ValueError, match=r"0\.032 x 0\.032 m.*0\.030 x 0\.030 m"):
        t.goals()


@pytest.mark.parametrize("shape,hole", [("square", (0.066, 0.036)), ("round", 0.036)])
def test_socket_hole_is_open_in_mujoco(shape, hole):
    s = _scene()
    sock = s.add_socket("gray", hole=hole, shape=shape, depth=0.03, name="sock")
    sock.pos = np.array([0.5, 0.0, 0.015])
    m = mujoco.MjModel.from_xml_string(compile_scene(s))
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    walls = [g for g in range(m.ngeom) if m.geom_bodyid[g] == m.body("sock").id]
    assert len(walls) == (4 if shape == "square" else 16)
    half = np.array(hole if shape == "square" else (hole, hole)) / 2
    for g in walls:  # no wall reaches into the hole: its box stays outside the opening's rectangle/circle
        c = d.geom_xpos[g][:2] - [0.5, 0.0]
        corners = c + (d.geom_xmat[g].reshape(3, 3)[:2, :2] @ (m.geom_size[g][:2] * np.array(
            [[1, 1], [1, -1], [-1, 1], [-1, -1]])).T).T
        if shape == "square":
            assert not np.all(np.abs(corners) < half - 1e-6, axis=1).any()
        else:
            assert np.linalg.norm(c) >= half[0] + m.geom_size[g][0] - 1e-6


def test_the_llm_api_reference_lists_the_new_vocabulary_from_live_signatures():
    from generation.codegen_llm import api_reference
    ref = api_reference()
    for text in ("Aligned(obj, ref=None, yaw_tol=0.1, xy_tol=None)", "Inserted(obj, socket=None, depth=None",
                 "AtPose(obj, xy=(0.5, 0.0), tol=0.02, yaw=None, yaw_tol=0.1)", "scene.add_socket(color",
                 "cylinders have no yaw"):
        assert text in ref, text


def test_dense_reward_rises_as_a_held_bar_turns_toward_its_goal_yaw():
    task = envs.get_task("rotate_block")()
    task.build(Scene(np.random.default_rng(3)), np.random.default_rng(3))
    x, y = task.spot
    held = lambda yaw: SceneState(  # noqa: E731
        objects={"block_0": ObjectState(np.array([x, y, 0.015]), yaw_quat(yaw), np.zeros(3), np.zeros(3))},
        tcp_pos=np.array([x, y, 0.015]), tcp_quat=np.array([0, 1.0, 0, 0]), gripper_width=0.03,
        touching=frozenset({"block_0"}), grasped=frozenset({"block_0"}))
    rewards = [task.dense_reward(held(yaw)) for yaw in (1.5, 1.0, 0.5, 0.2)]
    assert rewards == sorted(rewards) and rewards[0] < rewards[-1] < 1.0


@pytest.mark.parametrize("task", ["rotate_block", "align_block", "peg_insertion", "block_into_slot"])
def test_maniskill_tensor_twins_equal_the_predicates_with_turned_objects(task):
    """The batched (torch) AtPose-with-yaw, Aligned and Inserted give Task.evaluate and
    Task.dense_reward exactly, on objects at their targets turned and tilted at random."""
    import torch

    from envs.backends.maniskill.goals import BatchedGoals, Snapshot  # torch only: runs without ManiSkill

    n, rng = 8, np.random.default_rng(11)
    tasks, scenes = [], []
    for i in range(n):
        r = np.random.default_rng(200 + i)
        t, sc = envs.get_task(task)(), Scene(r)
        t.build(sc, r)
        tasks.append(t), scenes.append(sc)
    names, m = [o.name for o in scenes[0].objects], len(scenes[0].objects)
    bg = BatchedGoals(names, n, "cpu")
    bg.set(range(n), [t.goals() for t in tasks], np.array([[o.half_size for o in sc.objects] for sc in scenes]))
    assert all(slot["batched"] for slot in bg._slots)
    outcomes = set()
    for trial in range(8):
        pos = torch.tensor(np.array([[o.pos for o in sc.objects] for sc in scenes]), dtype=torch.float32)
        quat = torch.tensor(np.array([[yaw_quat(o.yaw) for o in sc.objects] for sc in scenes]), dtype=torch.float32)
        snap = Snapshot(pos, quat, torch.zeros(n, m, 3), torch.zeros(n, m, 3), torch.zeros(n, 3),
                        torch.tensor([[1.0, 0, 0, 0]] * n), torch.zeros(n, 9), torch.zeros(n, 9),
                        torch.zeros(n, m, dtype=torch.bool), torch.zeros(n, m, dtype=torch.bool))
        for i, t in enumerate(tasks):
            st = snap.scene_state(i, names)
            g = t.goals()[0]
            k = names.index(g.obj.name)
            snap.pos[i, k] = torch.tensor(g.target(st) + rng.normal(0, [0.006, 0.006, 0.003]) * (trial % 2),
                                          dtype=torch.float32)
            goal_yaw = (g.orientation(st) or (0.0, 1.0))[0]
            yaw = goal_yaw + rng.choice([0.0, np.pi]) + rng.normal(0, 0.12) * (trial % 3)
            tilt = yaw_quat(0.0) if trial % 4 else np.array([np.cos(0.1), np.sin(0.1), 0.0, 0.0])  # 0.2 rad about x
            from envs.core.rotations import quat_mul
            snap.quat[i, k] = torch.tensor(quat_mul(yaw_quat(yaw), tilt), dtype=torch.float32)
            snap.tcp_pos[i] = snap.pos[i, k] + torch.tensor(rng.normal(0, 0.03, 3), dtype=torch.float32)
            snap.grasped[i, k] = snap.touching[i, k] = bool(rng.random() < 0.3)
        conds, evals = bg.evaluate(snap)
        reward = bg.dense_reward(snap, conds, evals)
        for i, t in enumerate(tasks):
            st = snap.scene_state(i, names)
            want = t.evaluate(st)
            assert {k: bool(v[i]) for k, v in conds.items()} == want, (task, trial, i)
            assert float(reward[i]) == pytest.approx(t.dense_reward(st), abs=1e-5), (task, trial, i)
            outcomes.add(want[t.goals()[0].name])
    assert outcomes == {True, False}  # both outcomes of the check occurred
