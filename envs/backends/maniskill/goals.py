"""Task goals evaluated in batch on torch tensors: success conditions and the staged dense reward of
:class:`~envs.core.task.Task`, for every parallel environment at once and on the simulation device.

Each built-in predicate (``On``, ``InZone``/``Pushed``, ``AtPose``, ``Near``, ``Bridge``,
``Reached``, ``Aligned``, ``Inserted``, ``Covered``, ``Opened``, ``Closed``) has a tensor twin here computing the same ``check``/``target``/``distance`` as its
numpy definition in :mod:`envs.core.predicates`; ``tests/test_maniskill_env.py`` holds the two
equal on random states. A predicate without a twin (a subclass, or one a generated task defines)
still works: it is evaluated on the host through its own ``check``/``distance`` on a
:class:`SceneState`, one environment at a time (correct, slower; logged once).

Per-episode parameters (which base, which zone, offsets, sides...) may differ between parallel
environments; they are stored as tensors with one row per environment and refreshed on reset.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from envs.core.fixture_goals import Closed, Covered, Opened
from envs.core.fixtures import joint_spec
from envs.core.orientation import yaw_period
from envs.core.predicates import (PUSH_CLEARANCE, PUSH_HEIGHT, YAW_WEIGHT, Aligned, AtPose, Bridge, Goal, Inserted,
                                  InZone, Near, On, Pushed, Reached)
from envs.core.state import ObjectState, SceneState
from envs.core.task import REST_ANGVEL, REST_LINVEL

log = logging.getLogger(__name__)


def _yaw(q: torch.Tensor) -> torch.Tensor:
    """Heading (rad) of wxyz quaternions (..., 4), as :func:`envs.core.orientation.yaw_of`."""
    w, x, y, z = q.unbind(-1)
    return torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _turn_params(g: Goal) -> tuple[bool, float, float, float]:
    """(an orientation applies, AtPose's goal yaw, period, tolerance) of an orientation goal; the
    period is fixed by the kinds (the goal yaw of Aligned/Inserted is the reference's, read live)."""
    if isinstance(g, AtPose):
        return g.yaw is not None, g.yaw or 0.0, yaw_period(g.obj) if g.yaw is not None else 1.0, g.yaw_tol
    ref = g.ref if isinstance(g, Aligned) else g.socket
    if isinstance(g, Inserted) and (g.obj.kind == "cylinder" or ref.hole_shape == "round"):
        return False, 0.0, 1.0, g.yaw_tol
    return True, 0.0, min(yaw_period(g.obj), yaw_period(ref)), g.yaw_tol

SKILLS = ("pick_place", "push", "reach", "articulate")
_PARAMS = {  # numeric parameters each tensor twin reads, besides the goal's object indices
    On: ("xy_tol", "z_tol"), InZone: ("margin", "offset", "bowl"), Pushed: ("margin", "offset", "bowl"),
    AtPose: ("xy", "tol", "yaw"), Near: ("dir", "gap", "tol"), Bridge: ("xy_tol", "z_tol"), Reached: ("tol",),
    Aligned: ("xy_tol", "yaw"), Inserted: ("xy_tol", "depth", "yaw"),
    Covered: ("xy_tol", "z_tol"), Opened: ("fraction", "range", "target"), Closed: ("fraction", "range", "target"),
}
_REFS = {On: ("base",), Covered: ("base",), InZone: ("zone",), Pushed: ("zone",), Near: ("other",), Bridge: ("left", "right"),
         Aligned: ("ref",), Inserted: ("socket",)}


@dataclass
class Snapshot:
    """Batched world state, one row per environment; objects in the scene's build order."""

    pos: torch.Tensor        # (N, M, 3) m, world frame
    quat: torch.Tensor       # (N, M, 4) wxyz
    linvel: torch.Tensor     # (N, M, 3) m/s (zero for fixtures)
    angvel: torch.Tensor     # (N, M, 3) rad/s
    tcp_pos: torch.Tensor    # (N, 3)
    tcp_quat: torch.Tensor   # (N, 4) wxyz
    qpos: torch.Tensor       # (N, 9) arm joints, then the two fingers
    qvel: torch.Tensor       # (N, 9)
    touching: torch.Tensor   # (N, M) bool: a finger touches the object
    grasped: torch.Tensor    # (N, M) bool: both fingers touch it
    joints: torch.Tensor | None = None   # (N, M) joint position of articulated fixtures (0 elsewhere)
    jointed: tuple[str, ...] = ()        # names of the articulated fixtures

    def scene_state(self, i: int, names: list[str]) -> SceneState:
        """Environment ``i`` as the backend-agnostic :class:`SceneState` (numpy, host)."""
        c = lambda t: t[i].detach().cpu().numpy().astype(np.float64)  # noqa: E731
        pos, quat, lv, av = c(self.pos), c(self.quat), c(self.linvel), c(self.angvel)
        touch, grasp = self.touching[i].cpu().numpy(), self.grasped[i].cpu().numpy()
        q = c(self.qpos)
        return SceneState(
            objects={n: ObjectState(pos[k], quat[k], lv[k], av[k]) for k, n in enumerate(names)},
            tcp_pos=c(self.tcp_pos), tcp_quat=c(self.tcp_quat), gripper_width=float(q[7] + q[8]),
            touching=frozenset(n for k, n in enumerate(names) if touch[k]),
            grasped=frozenset(n for k, n in enumerate(names) if grasp[k]),
            joints={n: float(self.joints[i, names.index(n)]) for n in self.jointed})


class BatchedGoals:
    """The goals of ``num_envs`` episodes of one task, compiled to tensors."""

    def __init__(self, names: list[str], num_envs: int, device):
        self.names, self.num_envs, self.device = list(names), num_envs, torch.device(device)
        self._index = {n: k for k, n in enumerate(self.names)}
        self.goals: list[list[Goal]] = [[] for _ in range(num_envs)]
        self.half_size = torch.zeros(num_envs, len(names), 3, device=self.device)
        self._slots: list[dict] | None = None
        self._warned = False

    # -- compile -------------------------------------------------------------------------
    def set(self, env_ids, goal_lists: list[list[Goal]], half_sizes: np.ndarray) -> None:
        """Install the goals of the episodes just started in environments ``env_ids``;
        ``half_sizes`` (len(env_ids), M, 3) are the objects' half extents."""
        env_ids = [int(i) for i in env_ids]
        for i, goals in zip(env_ids, goal_lists):
            self.goals[i] = list(goals)
        ids = torch.as_tensor(env_ids, device=self.device, dtype=torch.long)
        self.half_size[ids] = torch.as_tensor(np.asarray(half_sizes), device=self.device, dtype=torch.float32)
        n_goals = {len(g) for g in self.goals}
        if len(n_goals) != 1:
            raise RuntimeError(f"parallel episodes have different numbers of goals {sorted(n_goals)}; a task's "
                               f"goal structure must not depend on the seed")
        if self._slots is None or len(self._slots) != n_goals.pop():
            self._slots = [self._new_slot() for _ in self.goals[0]]
        for k, slot in enumerate(self._slots):
            for i, goals in zip(env_ids, goal_lists):
                self._fill(slot, i, goals[k])
            kinds = {type(self.goals[i][k]) for i in range(self.num_envs) if self.goals[i]}
            slot["batched"] = len(kinds) == 1 and next(iter(kinds)) in _PARAMS
            if not slot["batched"] and not self._warned:
                self._warned = True
                log.warning("goal type(s) %s have no batched twin; evaluating them on the host, one "
                            "environment at a time", sorted(k.__name__ for k in kinds))
        names = [[g.name for g in self.goals[i]] for i in range(self.num_envs)]
        self.slot_names = names[0] if all(n == names[0] for n in names) else [f"goal_{k}" for k in range(len(names[0]))]

    def _new_slot(self) -> dict:
        z = lambda *s, dt=torch.float32: torch.zeros(self.num_envs, *s, device=self.device, dtype=dt)  # noqa: E731
        return {"obj": z(dt=torch.long), "ref0": z(dt=torch.long), "ref1": z(dt=torch.long),
                "skill": z(dt=torch.long), "a": z(), "b": z(), "v": z(2), "t": z(3), "bowl": z(dt=torch.bool),
                # orientation (see _turn_params): goal yaw (AtPose), period, tolerance, whether one applies
                "yaw": z(), "period": z(), "yaw_tol": z(), "turn": z(dt=torch.bool)}

    def _fill(self, slot: dict, i: int, g: Goal) -> None:
        idx = self._index
        slot["obj"][i] = idx[g.obj.name]
        slot["skill"][i] = SKILLS.index(g.skill)
        for r, attr in enumerate(_REFS.get(type(g), ())):
            slot[f"ref{r}"][i] = idx[getattr(g, attr).name]
        t = type(g)
        if t in (Opened, Closed):  # the handle's target does not depend on the state
            j = joint_spec(g.obj)
            slot["a"][i], slot["b"][i] = g.fraction, j.high - j.low
            slot["t"][i] = torch.as_tensor(g.target(None), dtype=torch.float32)
        elif t in (On, Covered):
            slot["a"][i] = g.xy_tol if g.xy_tol is not None else min(g.base.half_size[:2])
            slot["b"][i] = g.z_tol
        elif t in (InZone, Pushed):
            slot["a"][i], slot["bowl"][i] = g.margin, g.zone.kind == "bowl"
            slot["v"][i] = torch.as_tensor(g.offset, dtype=torch.float32)
        elif t is AtPose:
            slot["a"][i] = g.tol
            slot["v"][i] = torch.as_tensor(g.xy, dtype=torch.float32)
        elif t is Near:
            slot["a"][i], slot["b"][i] = g.tol, g.gap
            slot["v"][i] = torch.as_tensor(Near._DIRS[g.direction], dtype=torch.float32)
        elif t is Bridge:
            slot["a"][i], slot["b"][i] = g.xy_tol, g.z_tol
        elif t is Reached:
            slot["a"][i] = g.tol
        elif t is Aligned:  # bowl: whether obj must also be centred on ref (xy_tol given)
            slot["a"][i], slot["bowl"][i] = g.xy_tol if g.xy_tol is not None else 0.0, g.xy_tol is not None
        elif t is Inserted:
            slot["a"][i], slot["b"][i] = g.xy_tol, g.depth
        if t in (AtPose, Aligned, Inserted):
            slot["turn"][i], slot["yaw"][i], slot["period"][i], slot["yaw_tol"][i] = _turn_params(g)

    # -- evaluate ------------------------------------------------------------------------
    def _slot_eval(self, k: int, s: Snapshot):
        """(check (N,) bool, distance (N,), object position (N, 3), target (N, 3)) of goal slot ``k``."""
        slot = self._slots[k]
        ar = torch.arange(self.num_envs, device=self.device)
        P, H = s.pos, self.half_size
        o = slot["obj"]
        p, hz = P[ar, o], H[ar, o, 2]
        if not slot["batched"]:
            return self._host_eval(k, s) + (p, self._host_target(k, s))
        kind = type(self.goals[0][k])
        a, b, v = slot["a"], slot["b"], slot["v"]
        on_table = p[:, 2] < hz + 0.01
        if kind is Reached:
            d = torch.linalg.norm(s.tcp_pos - p, dim=-1)
            return d <= a, d, p, p
        if kind in (Opened, Closed):  # joint position (fraction of the range) from the joint state
            t = slot["t"]
            frac = s.joints[ar, o] / b
            ok = frac >= a if kind is Opened else frac <= a
            return ok, torch.linalg.norm(p - t, dim=-1), p, t
        if kind in (On, Covered):
            base = slot["ref0"]
            bp = P[ar, base]
            t = torch.cat([bp[:, :2], (bp[:, 2] + H[ar, base, 2] + hz)[:, None]], 1)
            ok = (torch.linalg.norm(p[:, :2] - t[:, :2], dim=-1) <= a) & ((p[:, 2] - t[:, 2]).abs() <= b)
        elif kind in (InZone, Pushed):
            zone, bowl = slot["ref0"], slot["bowl"]
            zp, zh = P[ar, zone], H[ar, zone]
            floor = zp[:, 2] - zh[:, 2] + torch.where(bowl, 0.005, 0.0)
            t = torch.cat([zp[:, :2] + v, (floor.clamp_min(0.0) + hz)[:, None]], 1)
            hx, hy = zh[:, 0] - a, zh[:, 1] - a
            in_bowl = (torch.linalg.norm(p[:, :2] - zp[:, :2], dim=-1) <= hx) & (p[:, 2] < zp[:, 2] + zh[:, 2] + hz)
            in_zone = ((p[:, 0] - zp[:, 0]).abs() <= hx) & ((p[:, 1] - zp[:, 1]).abs() <= hy) & on_table
            ok = torch.where(bowl, in_bowl, in_zone)
        elif kind is AtPose:
            t = torch.cat([v, hz[:, None]], 1)
            left = self._yaw_left(slot, s, o, slot["yaw"])
            ok = (torch.linalg.norm(p[:, :2] - v, dim=-1) <= a) & on_table & (left <= slot["yaw_tol"])
            return ok, torch.linalg.norm(p - t, dim=-1) + YAW_WEIGHT * left, p, t
        elif kind is Aligned:
            rp = P[ar, slot["ref0"]]
            centred = slot["bowl"]
            t = torch.cat([torch.where(centred[:, None], rp[:, :2], p[:, :2]), hz[:, None]], 1)
            left = self._yaw_left(slot, s, o, _yaw(s.quat[ar, slot["ref0"]]))
            near = ~centred | (torch.linalg.norm(p[:, :2] - rp[:, :2], dim=-1) <= a)
            ok = near & on_table & (left <= slot["yaw_tol"])
            return ok, torch.linalg.norm(p - t, dim=-1) + YAW_WEIGHT * left, p, t
        elif kind is Inserted:
            sk = slot["ref0"]
            sp, sh = P[ar, sk], H[ar, sk]
            t = torch.cat([sp[:, :2], (sp[:, 2] - sh[:, 2] + hz)[:, None]], 1)
            left = self._yaw_left(slot, s, o, _yaw(s.quat[ar, sk]))
            q = s.quat[ar, o]
            tilt = torch.arccos((1 - 2 * (q[:, 1] ** 2 + q[:, 2] ** 2)).clamp(-1.0, 1.0))
            ok = ((torch.linalg.norm(p[:, :2] - sp[:, :2], dim=-1) <= a)
                  & (p[:, 2] - hz <= sp[:, 2] + sh[:, 2] - b + 1e-4) & (tilt <= Inserted.TILT_TOL)
                  & (left <= slot["yaw_tol"]))
            return ok, torch.linalg.norm(p - t, dim=-1) + YAW_WEIGHT * left, p, t
        elif kind is Near:
            op = P[ar, slot["ref0"]]
            t = torch.cat([op[:, :2] + v * b[:, None], hz[:, None]], 1)
            ok = (torch.linalg.norm(p[:, :2] - t[:, :2], dim=-1) <= a) & on_table
        elif kind is Bridge:
            l, r = slot["ref0"], slot["ref1"]
            lp, rp = P[ar, l], P[ar, r]
            top = torch.maximum(lp[:, 2] + H[ar, l, 2], rp[:, 2] + H[ar, r, 2])
            t = torch.cat([(lp[:, :2] + rp[:, :2]) / 2, (top + hz)[:, None]], 1)
            ok = (torch.linalg.norm(p[:, :2] - t[:, :2], dim=-1) <= a) & ((p[:, 2] - t[:, 2]).abs() <= b)
        else:  # pragma: no cover - guarded by _PARAMS
            raise AssertionError(kind)
        return ok, torch.linalg.norm(p - t, dim=-1), p, t

    def _yaw_left(self, slot: dict, s: Snapshot, o: torch.Tensor, goal_yaw: torch.Tensor) -> torch.Tensor:
        """|turn| (rad) object ``o`` still needs to reach ``goal_yaw`` modulo the slot's period;
        0 where no orientation applies (as :func:`envs.core.predicates._yaw_left`)."""
        period = torch.where(slot["turn"], slot["period"], torch.ones_like(slot["period"]))
        now = _yaw(s.quat[torch.arange(self.num_envs, device=self.device), o])
        err = torch.remainder(goal_yaw - now + period / 2, period) - period / 2
        return torch.where(slot["turn"], err.abs(), torch.zeros_like(err))

    def _host_target(self, k: int, s: Snapshot) -> torch.Tensor:
        return torch.as_tensor(np.stack([self.goals[i][k].target(s.scene_state(i, self.names))
                                         for i in range(self.num_envs)]), device=self.device, dtype=torch.float32)

    def deltas(self, s: Snapshot, evals: list) -> list[torch.Tensor]:
        """Per goal slot: target minus what it moves (the TCP for reach goals), (N, 3) each; the
        same goal-relative feature as :func:`envs.core.predicates.goal_delta`."""
        reach = SKILLS.index("reach")
        return [t - torch.where((slot["skill"] == reach)[:, None], s.tcp_pos, p)
                for slot, (_, _, p, t) in zip(self._slots, evals)]

    def goal_objects(self) -> torch.Tensor:
        """(N, G) long: the index of the object each goal moves (the marker of a reach goal)."""
        if not self._slots:
            return torch.zeros(self.num_envs, 0, dtype=torch.long, device=self.device)
        return torch.stack([slot["obj"] for slot in self._slots], 1)

    def _host_eval(self, k: int, s: Snapshot):
        ok, dist = [], []
        for i in range(self.num_envs):
            st = s.scene_state(i, self.names)
            g = self.goals[i][k]
            ok.append(g.check(st))
            dist.append(g.distance(st))
        return (torch.as_tensor(ok, device=self.device), torch.as_tensor(dist, device=self.device, dtype=torch.float32))

    def evaluate(self, s: Snapshot) -> tuple[dict[str, torch.Tensor], list]:
        """Named conditions (each (N,) bool) as :meth:`Task.evaluate` defines them, plus the
        per-goal evaluations the dense reward reuses."""
        evals = [self._slot_eval(k, s) for k in range(len(self._slots))]
        conds = {name: e[0] for name, e in zip(self.slot_names, evals)}
        goal_obj = torch.zeros_like(s.touching)
        for slot in self._slots:  # objects a goal moves (not reach targets); no boolean indexing: no host sync
            held = (slot["skill"] != SKILLS.index("reach"))[:, None]
            goal_obj |= torch.nn.functional.one_hot(slot["obj"], len(self.names)).bool() & held
        conds["released"] = ~(goal_obj & s.touching).any(1)
        conds["at_rest"] = ((torch.linalg.norm(s.linvel, dim=-1) < REST_LINVEL)
                            & (torch.linalg.norm(s.angvel, dim=-1) < REST_ANGVEL)).all(1)
        conds["success"] = torch.stack(list(conds.values()), 0).all(0)
        return conds, evals

    def dense_reward(self, s: Snapshot, conds: dict, evals: list) -> torch.Tensor:
        """:meth:`Task.dense_reward` in batch: reach -> grasp -> place, goal by goal, in [0, 1]."""
        G = len(self._slots)
        ar = torch.arange(self.num_envs, device=self.device)
        sat = torch.stack([e[0] for e in evals], 1)                                   # (N, G)
        partial = []
        for slot, (_, dist, p, t) in zip(self._slots, evals):
            skill = slot["skill"]
            # push goals reach for Pushed.push_point: behind the object on its line to the target
            d = t[:, :2] - p[:, :2]
            d = d / (torch.linalg.norm(d, dim=-1, keepdim=True) + 1e-9)
            r = torch.linalg.norm(self.half_size[ar, slot["obj"], :2], dim=-1) + PUSH_CLEARANCE
            behind = torch.cat([p[:, :2] - d * r[:, None], torch.full_like(r, PUSH_HEIGHT)[:, None]], 1)
            reach_to = torch.where((skill == SKILLS.index("push"))[:, None], behind, p)
            reach = 1.0 - torch.tanh(5.0 * torch.linalg.norm(s.tcp_pos - reach_to, dim=-1))
            place = 1.0 - torch.tanh(5.0 * dist)
            grasped = s.grasped[ar, slot["obj"]]
            pick = torch.where(grasped, 2.0 + 2.0 * place, reach)
            # articulate (3) is staged as a pick: reach the handle, grasp it, move it to the target
            partial.append(torch.where((skill == 0) | (skill == 3), pick,
                                       torch.where(skill == 1, reach + 3.0 * place, 4.0 * reach)))
        partial = torch.stack(partial, 1)                                             # (N, G)
        first = torch.where(sat.all(1), G, (~sat).to(torch.int8).argmax(1))            # first unmet goal
        staged = 4.0 * first + partial.gather(1, first.clamp_max(G - 1)[:, None])[:, 0]
        settled = 4.0 * G + 0.5 * conds["released"].float() + 0.5 * conds["at_rest"].float()
        reward = torch.where(first == G, settled, staged) / (4.0 * G + 1.0)
        return torch.where(conds["success"], torch.ones_like(reward), reward)
