"""Orientation and insertion vocabulary: yaw goals modulo each kind's symmetry, edge alignment,
socket fixtures with a hole, the ``Inserted`` goal, and the errors a task writer gets."""
import mujoco
import numpy as np
import pytest

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
