"""Oracle (expert) planner derived from a task's goals: keyframe pick-and-place over IK.

For each goal that does not hold yet, in the task's order: move above the object, descend, close
the gripper, lift, carry above the goal's target, lower, open, retreat. Non-prehensile goals
(``Pushed``) are done by pushing with closed fingers instead, and ``Reached`` by moving the TCP.
A task may give the oracle intermediate sub-goals through ``Task.oracle_goals()``. Waypoints are re-read from the
privileged scene state, so the oracle reacts when objects move. It works on the backend-agnostic
surface every roboforge env exposes on ``env.unwrapped``: ``scene_state()``, ``goals``, ``task``,
``control_mode`` and ``controller`` (``target_pos``, ``target_quat``, ``solve_ik``,
``normalize_joints``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.core import fixtures as fx
from envs.core.fixture_goals import InContainer
from envs.core.orientation import SQUARE_TOL, yaw_error, yaw_of
from envs.core.predicates import PUSH_CLEARANCE, PUSH_HEIGHT, Goal, Inserted
from envs.core.robot import GRIPPER_CLOSED, GRIPPER_OPEN, POS_SCALE, ROT_SCALE
from envs.core.rotations import quat_error, quat_mul
from envs.core.rotations import yaw_quat as _z_rotation

# TCP pointing down, fingers opening along world x (yaw 0).
DOWN_QUAT = np.array([0.0, 0.70710678, 0.70710678, 0.0])
TRAVEL_SPEED = 0.016   # m per control step in free space
FINE_SPEED = 0.008     # m per control step near contact
CLEARANCE = 0.08       # m above the tallest thing on the way
PHASE_TIMEOUT = 60     # control steps before a phase gives up and moves on
INSERT_SPEED = 0.003   # m per control step while a peg goes into its hole
INSERT_GRASP = 0.016   # m: fingertips this far below a peg's top, so the fingers stay above the socket
MAX_HAND_YAW = 2.0     # rad: the gripper yaws the oracle turns to, within the Panda's wrist range
SWING_LEAD = 0.12      # rad: how far a door's commanded angle may run ahead of its measured one
SWING_TOL = 0.03       # rad: a door within this of its goal angle is where the oracle lets go


def _z_rotation_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_quat(yaw: float) -> np.ndarray:
    """TCP orientation pointing down with the fingers' closing axis turned ``yaw`` rad about +z."""
    return quat_mul(_z_rotation(yaw), DOWN_QUAT)


def grasp_yaw(obj, quat: np.ndarray) -> float:
    """Gripper yaw that closes the fingers on a pair of block faces: in (-pi/4, pi/4] for a
    square footprint; across the narrow side, in [-pi/2, pi/2), for an oblong one."""
    if obj.kind != "block":
        return 0.0
    yaw = np.arctan2(2 * (quat[0] * quat[3] + quat[1] * quat[2]), 1 - 2 * (quat[2] ** 2 + quat[3] ** 2))
    hx, hy = obj.half_size[:2]
    if abs(hx - hy) < SQUARE_TOL:
        return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)
    # the fingers close along the gripper's x axis: put it along the block's shorter side
    across = yaw + (np.pi / 2 if hx > hy else 0.0)
    return float((across + np.pi / 2) % np.pi - np.pi / 2)


def _finger_yaw(goal: Goal, yaw: float) -> float:
    """The grasp yaw to use for ``goal``: a block's grasp turned by quarter turns (the same pair of
    faces, or the other) so its fingers open along an open drawer's width, not into its walls."""
    if not (isinstance(goal, InContainer) and goal.container.kind == "drawer" and goal.obj.kind == "block"):
        return yaw
    want = goal.container.yaw + np.pi / 2
    options = [yaw + k * np.pi / 2 for k in range(-2, 3)]
    return float(min(options, key=lambda y: abs(y - want)))  # not modulo pi: keep the wrist's turn short


# The oracle's phase boundaries (``PickPlaceOracle.events``): where what it is trying to reach
# changes. ``close``/``open``: the gripper command changes (``obj`` set when it grasps/releases an
# object, empty for the fingers closing before a push); ``push_start``/``push_end``: a push stroke
# along the object->target line begins/ends; ``reached``: the TCP arrived at a reach goal.
EVENT_KINDS = ("close", "open", "push_start", "push_end", "reached")

# How a noisy oracle plans (``PickPlaceOracle._reanchor``); cache keys of noisy data carry it so a
# change of plan regenerates stored noisy episodes.
NOISY_PLAN = "reanchored-moves"


@dataclass(frozen=True)
class PhaseEvent:
    """One phase boundary: ``step`` is the index of the first action (= the observation it was
    chosen on) of the new phase; ``goal`` the index into ``task.oracle_goals()``."""

    step: int
    kind: str   # one of EVENT_KINDS
    goal: int
    obj: str = ""


class PickPlaceOracle:
    """Scripted expert; ``act(obs)`` returns an action in the env's action space. ``events``
    lists the phase boundaries of the episode so far (:class:`PhaseEvent`).

    ``action_noise`` > 0 adds Gaussian noise of that standard deviation (in the normalized
    [-1, 1] action units) to every action, clipped back into [-1, 1]: a noisy expert for
    exploratory data (HILP), which still tends to its goals because waypoints are re-read from
    the scene each step, and plans each move from where the noise left it (``_reanchor``), so
    the noise adds up to centimetres along a move and each step's clean action leads back from
    there (DART demos). ``noise_seed`` seeds that noise (same seed, same episode)."""

    def __init__(self, env, action_noise: float = 0.0, noise_seed: int | None = None):
        if not action_noise >= 0:
            raise ValueError(f"action_noise={action_noise!r} is invalid; allowed: a number >= 0 (std, action units)")
        self.env = env.unwrapped
        self.mode = self.env.control_mode
        self.action_noise = float(action_noise)
        self._rng = np.random.default_rng(noise_seed)
        self._plan = None
        self.events: list[PhaseEvent] = []

    def reset(self) -> None:
        """Call after ``env.reset()``."""
        c = self.env.controller
        self.target_pos = np.array(c.target_pos, dtype=float)
        self.target_quat = np.array(c.target_quat, dtype=float)
        self.gripper = GRIPPER_OPEN
        self.steps, self.events, self._goal = 0, [], -1
        self._plan = self._run()

    def act(self, obs=None) -> np.ndarray:
        if self._plan is None:
            raise RuntimeError("call oracle.reset() after env.reset() before oracle.act()")
        try:
            next(self._plan)
        except StopIteration:  # all goals handled: hold still with the gripper open
            pass
        self.steps += 1
        action = self.clean_action = self._action()   # what the expert asks for here, before any noise
        if self.action_noise > 0:
            action = np.clip(action + self._rng.normal(0.0, self.action_noise, action.shape), -1, 1).astype(np.float32)
        return action

    def _event(self, kind: str, obj: str = "") -> None:
        # called inside the plan before its next yield: that yield produces action ``self.steps``
        self.events.append(PhaseEvent(self.steps, kind, self._goal, obj))

    # -- turning the oracle's Cartesian target into an action ------------------------------
    def _action(self) -> np.ndarray:
        c = self.env.controller
        if self.mode == "joint_pos":
            q = c.solve_ik(self.target_pos, self.target_quat)
            return np.append(np.clip(c.normalize_joints(q), -1, 1), self.gripper).astype(np.float32)
        dp = (self.target_pos - np.asarray(c.target_pos)) / POS_SCALE
        dr = quat_error(self.target_quat, np.asarray(c.target_quat)) / ROT_SCALE
        return np.clip(np.concatenate([dp, dr, [self.gripper]]), -1, 1).astype(np.float32)

    def _state(self):
        return self.env.scene_state()

    # -- motion primitives (generators: one yield per control step) ------------------------
    def _move(self, waypoint, quat=None, speed=TRAVEL_SPEED, tol=0.01):
        """Slide the target toward ``waypoint`` (a callable re-evaluated each step) until the real
        TCP is within ``tol`` m of it."""
        for _ in range(PHASE_TIMEOUT):
            if self.action_noise > 0 and self.mode != "joint_pos":
                self._reanchor(quat is not None)
            wp = waypoint()
            step = wp - self.target_pos
            n = np.linalg.norm(step)
            self.target_pos = wp.copy() if n <= speed else self.target_pos + step * (speed / n)
            if quat is not None:
                err = quat_error(quat, self.target_quat)
                ang = np.linalg.norm(err)
                lim = 0.5 * ROT_SCALE
                rot = err if ang <= lim else err * (lim / ang)
                if ang > 1e-6:
                    self.target_quat = quat_mul(np.array([np.cos(np.linalg.norm(rot) / 2),
                                                          *(np.sin(np.linalg.norm(rot) / 2) * rot / np.linalg.norm(rot))]),
                                                self.target_quat)
            yield
            s = self._state()
            rot_ok = quat is None or np.linalg.norm(quat_error(quat, s.tcp_quat)) < 0.05
            if np.linalg.norm(wp - s.tcp_pos) < tol and rot_ok:
                return

    def _reanchor(self, rotation: bool) -> None:
        """A noisy oracle plans each move from where the noise left the controller's target, not
        from its own path: its next step, the label DART demos record, is then the way to the
        waypoint from a state the observation shows (a TCP a few mm to cm off the path), not a
        correction back to a path point the observation does not show. Rotation re-anchors only
        where the move has an orientation to turn back to."""
        c = self.env.controller
        self.target_pos = np.array(c.target_pos, dtype=float)
        if rotation:
            self.target_quat = np.array(c.target_quat, dtype=float)

    def _gripper(self, value: float, steps: int = 6, obj: str = ""):
        if value != self.gripper:
            self._event("close" if value == GRIPPER_CLOSED else "open", obj)
        self.gripper = value
        for _ in range(steps):
            yield

    def _run(self):
        skills = {"pick_place": self._pick_place, "push": self._push, "reach": self._reach,
                  "articulate": self._articulate}
        for self._goal, goal in enumerate(self.env.task.oracle_goals()):
            s = self._state()
            if goal.check(s) and goal.obj.name not in s.touching:
                continue
            if goal.skill == "pick_place" and (isinstance(goal, Inserted) or self._turn_goal(goal) is not None):
                yield from self._pick_turn_place(goal)
            else:
                yield from skills[goal.skill](goal)

    def _turn_goal(self, goal: Goal) -> Goal | None:
        """The goal that fixes how ``goal``'s object is turned: ``goal`` itself, or another of the
        task's goals on the same object (placing it once at the right yaw serves both)."""
        s = self._state()
        for g in [goal, *self.env.task.goals()]:
            if g.obj is goal.obj and g.orientation(s) is not None:
                return g
        return None

    def _pick_turn_place(self, goal: Goal):
        """Pick, turn the object in hand to the yaw its goals ask for (the smallest turn modulo its
        symmetry), carry it with the object's own position fed back, and place it; a peg
        (``Inserted``) is grasped near its top, aligned above the hole, then lowered slowly."""
        obj, hz = goal.obj, goal.obj.half_size[2]
        insert = isinstance(goal, Inserted)
        s = self._state()
        g0 = grasp_yaw(obj, s.objects[obj.name].quat)
        q = yaw_quat(g0)
        pos = lambda: self._state().objects[obj.name].pos  # noqa: E731
        grasp_dz = hz - INSERT_GRASP if insert else -min(0.5 * hz, hz - 0.008)
        travel_z = lambda: max(self._tallest(exclude=obj) + CLEARANCE + 2 * hz, 0.12)  # noqa: E731

        yield from self._gripper(GRIPPER_OPEN, 0)
        yield from self._move(lambda: np.array([*pos()[:2], travel_z()]), q, tol=0.02)
        yield from self._move(lambda: pos() + [0, 0, grasp_dz], q, FINE_SPEED, tol=0.006)
        yield from self._gripper(GRIPPER_CLOSED, 8, obj.name)
        yield from self._move(lambda: np.array([*self._state().tcp_pos[:2], travel_z()]), q, tol=0.02)

        def hand_yaw():  # gripper yaw that brings the object to its goal yaw
            st, turn = self._state(), self._turn_goal(goal)
            o = turn.orientation(st) if turn is not None else None
            now = yaw_of(quat_mul(st.tcp_quat, np.array([DOWN_QUAT[0], *-DOWN_QUAT[1:]])))
            if o is None:
                return now
            d = yaw_error(yaw_of(st.objects[obj.name].quat), *o)
            options = [now + d + k * np.pi for k in (-1, 0, 1) if abs(now + d + k * np.pi) <= MAX_HAND_YAW]
            return min(options or [now + d], key=lambda y: abs(y - now))

        def follow():  # where the TCP must be for the object's centre to be at the goal's target
            st = self._state()
            return st.tcp_pos + goal.target(st) - st.objects[obj.name].pos

        q = yaw_quat(hand_yaw())
        yield from self._move(lambda: np.array([*follow()[:2], travel_z()]), q, tol=0.01)
        q = yaw_quat(hand_yaw())  # trim what the object lagged behind the hand while turning
        if insert:
            top = lambda: goal.socket.pos[2] + goal.socket.half_size[2]  # noqa: E731
            above = lambda: np.array([*follow()[:2], self._state().tcp_pos[2] + top() + 0.012  # noqa: E731
                                      - (pos()[2] - hz)])
            yield from self._move(above, q, FINE_SPEED, tol=0.003)
            for _ in range(3):  # settle the alignment before going in
                self.target_pos = above()
                yield
            yield from self._move(lambda: follow() + [0, 0, 0.003], q, INSERT_SPEED, tol=0.004)
        else:
            yield from self._move(lambda: follow() + [0, 0, 0.006], q, FINE_SPEED, tol=0.005)
        yield from self._gripper(GRIPPER_OPEN, 6, obj.name)
        up = self._state().tcp_pos + [0, 0, 0.06]
        yield from self._move(lambda: up, q, FINE_SPEED, tol=0.02)

    def _reach(self, goal: Goal):
        q = yaw_quat(0.0)
        yield from self._move(lambda: goal.target(self._state()), q, tol=0.008)
        self._event("reached", goal.obj.name)
        for _ in range(PHASE_TIMEOUT):  # hold there
            yield

    def _pick_place(self, goal: Goal):
        obj, hz = goal.obj, goal.obj.half_size[2]
        s = self._state()
        q = yaw_quat(_finger_yaw(goal, grasp_yaw(obj, s.objects[obj.name].quat)))
        # where the fingers close (a lid's knob; else the centre) and the half height they hold
        pos = lambda: fx.grasp_point(obj, self._state().objects[obj.name].pos)[0]  # noqa: E731
        held = fx.grasp_point(obj, s.objects[obj.name].pos)[1]
        grasp_dz = -min(0.5 * held, held - 0.008)  # fingertips low on the object, clear of the table
        # clear everything else, and carry the held object's underside over it
        travel_z = lambda: max(self._tallest(exclude=obj) + CLEARANCE + 2 * hz, 0.12)  # noqa: E731

        yield from self._gripper(GRIPPER_OPEN, 0)
        yield from self._move(lambda: np.array([*pos()[:2], travel_z()]), q, tol=0.02)
        yield from self._move(lambda: pos() + [0, 0, grasp_dz], q, FINE_SPEED, tol=0.006)
        yield from self._gripper(GRIPPER_CLOSED, 8, obj.name)
        s = self._state()
        offset = s.tcp_pos - s.objects[obj.name].pos  # keep the grasp offset when placing
        yield from self._move(lambda: np.array([*self._state().tcp_pos[:2], travel_z()]), q, tol=0.02)
        target = lambda: goal.target(self._state()) + offset  # noqa: E731
        yield from self._move(lambda: np.array([*target()[:2], travel_z()]), q, tol=0.01)
        yield from self._move(lambda: target() + [0, 0, 0.006], q, FINE_SPEED, tol=0.005)
        yield from self._gripper(GRIPPER_OPEN, 6, obj.name)
        up = self._state().tcp_pos + [0, 0, 0.06]
        yield from self._move(lambda: up, q, FINE_SPEED, tol=0.02)

    def _articulate(self, goal: Goal):
        """Joint goals: take the handle from above (fingers closing across the bar), move it to the
        goal's handle position along the joint -- a straight line for a drawer, waypoints along
        the arc about the hinge for a door, the hand turning with the handle -- let go and lift."""
        obj = goal.obj
        j = fx.joint_spec(obj)
        q_goal = j.low + goal.goal_fraction() * (j.high - j.low)
        q_now = self._state().joints[obj.name]
        # the bar sticks out along the fixture's x: close across y; of the two equivalent hand yaws
        # (half a turn apart) take the one whose whole swing stays nearest the wrist's middle (on a
        # tie, as for a drawer, which does not turn: obj.yaw + pi/2 itself)
        base = obj.yaw + np.pi / 2
        ends = [base + fx.handle_turn(obj, q) for q in (q_now, q_goal)]
        base += min((k * np.pi for k in (0, -1, 1, -2, 2)), key=lambda a: max(abs(e + a) for e in ends))
        q = yaw_quat(base + fx.handle_turn(obj, q_now))
        handle = lambda: self._state().objects[obj.name].pos  # noqa: E731
        grasp_dz = -0.5 * fx.HANDLE[2]
        above = lambda: handle() + [0, 0, max(self._tallest() - handle()[2] + 0.04, 0.06)]  # noqa: E731
        yield from self._gripper(GRIPPER_OPEN, 0)
        yield from self._move(above, q, tol=0.02)
        yield from self._move(lambda: handle() + [0, 0, grasp_dz], q, FINE_SPEED, tol=0.005)
        yield from self._gripper(GRIPPER_CLOSED, 8, obj.name)
        s = self._state()
        offset = s.tcp_pos - s.objects[obj.name].pos
        if j.type == "revolute":
            yield from self._swing(obj, q_goal, offset, base)
        else:
            yield from self._move(lambda: goal.target(self._state()) + offset, q, FINE_SPEED, tol=0.008)
        yield from self._gripper(GRIPPER_OPEN, 6, obj.name)
        up = self._state().tcp_pos + [0, 0, 0.06]
        yield from self._move(lambda: up, q if j.type == "prismatic" else None, FINE_SPEED, tol=0.02)

    def _swing(self, obj, q_goal: float, offset: np.ndarray, base_yaw: float):
        """Carry a held door handle along its arc to joint angle ``q_goal`` (rad): each step the
        target is the handle's point on the circle a little further on (``FINE_SPEED`` of arc,
        never more than ``SWING_LEAD`` rad ahead of the door's measured angle, so a door that
        lags is not torn from the fingers), with the grasp offset and the hand's yaw turned as
        the handle turns; it ends once the door is within ``SWING_TOL`` of ``q_goal``."""
        j = fx.joint_spec(obj)
        q_grasp = q_cmd = self._state().joints[obj.name]
        radius = np.linalg.norm((fx.handle_point(obj, 0.0) - fx.to_world(obj, j.pivot))[:2])
        step = FINE_SPEED / max(radius, 0.05)
        for _ in range(2 * PHASE_TIMEOUT):
            q_meas = self._state().joints[obj.name]
            if abs(q_meas - q_goal) < SWING_TOL:
                return
            q_cmd += np.clip(q_goal - q_cmd, -step, step)
            q_cmd = float(np.clip(q_cmd, q_meas - SWING_LEAD, q_meas + SWING_LEAD))
            turn = fx.handle_turn(obj, q_cmd)
            self.target_pos = (fx.handle_point(obj, q_cmd)
                               + _z_rotation_matrix(turn - fx.handle_turn(obj, q_grasp)) @ offset)
            self.target_quat = yaw_quat(base_yaw + turn)
            yield

    def _push(self, goal: Goal):
        """Push in straight strokes along the object->target line with the fingers closed and
        their wide face forward; re-approach from behind when the object drifts off the line."""
        obj, r, push_z = goal.obj, goal.obj.footprint_radius, PUSH_HEIGHT
        yield from self._gripper(GRIPPER_CLOSED, 4)
        for _ in range(4):  # strokes
            s = self._state()
            if goal.check(s):
                break
            p, t = s.objects[obj.name].pos[:2], goal.target(s)[:2]
            d = (t - p) / (np.linalg.norm(t - p) + 1e-9)
            q = yaw_quat(float((np.arctan2(d[1], d[0]) + np.pi / 2) % np.pi - np.pi / 2))
            start = np.array([*(p - d * (r + 0.035)), push_z])
            yield from self._move(lambda: np.array([*start[:2], max(self._tallest() + 0.05, 0.08)]), q, tol=0.02)
            yield from self._move(lambda: start, q, FINE_SPEED, tol=0.008)
            self._event("push_start", obj.name)
            for _ in range(2 * PHASE_TIMEOUT):
                s = self._state()
                p = s.objects[obj.name].pos[:2]
                ahead = float((t - p) @ d)   # distance still to go along the stroke
                off = t - p - ahead * d      # sideways drift off the line
                if goal.check(s) or ahead < 0.003 or np.linalg.norm(off) > 0.02:
                    break
                contact = p - d * (r + PUSH_CLEARANCE)  # where the fingers should be: right behind the object
                side = (contact - self.target_pos[:2]) - ((contact - self.target_pos[:2]) @ d) * d
                self.target_pos = np.array([*(self.target_pos[:2] + d * FINE_SPEED * 0.75 + 0.3 * side), push_z])
                yield
            self._event("push_end", obj.name)
            back = np.array([*(self._state().tcp_pos[:2] - d * 0.03), push_z])
            yield from self._move(lambda: back, q, FINE_SPEED, tol=0.01)
        up = self._state().tcp_pos + [0, 0, 0.08]
        yield from self._move(lambda: up, None, tol=0.02)

    def _tallest(self, exclude=None) -> float:
        """Height (m) of the highest top face among the scene's objects, ``exclude`` aside."""
        s = self._state()
        return max((s.objects[o.name].pos[2] + o.half_size[2] for o in self.env.scene.objects
                    if o is not exclude), default=0.0)


def make_oracle(env, action_noise: float = 0.0, noise_seed: int | None = None) -> PickPlaceOracle:
    """The expert for any registered task on any backend (``action_noise``: a noisy expert, see
    :class:`PickPlaceOracle`)."""
    return PickPlaceOracle(env, action_noise, noise_seed)


def oracle_episodes(env, seeds) -> list[dict]:
    """Run the oracle once per seed on ``env`` (to its time limit or termination): per seed its
    ``success``, ``steps`` and the final ``conditions``. What oracle-success checks and benches share."""
    oracle, out = make_oracle(env), []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        oracle.reset()
        for k in range(env.spec.max_episode_steps):
            obs, _, term, trunc, info = env.step(oracle.act(obs))
            if term or trunc:
                break
        out.append({"seed": seed, "success": bool(info["success"]), "steps": k + 1, "conditions": info["conditions"]})
    return out
