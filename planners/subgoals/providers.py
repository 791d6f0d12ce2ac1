"""Sub-goal providers at test time: where GravMAD's next sub-goal comes from when there is no
demonstration to discover keyposes in.

- ``manual``: from the task's own goals (``task.oracle_goals()``): the first goal that does not
  hold yet, and its phase: not held -> grasp the object (its centre, gripper closing); held ->
  release it at the goal's target (gripper opening); push -> the target with closed fingers;
  reach -> the marker with the gripper open. What the GravMAD paper calls manual sub-goals.
- ``offline``: parses the instruction against the scene's labelled objects (kind, colour,
  position; :mod:`planners.subgoals.grounding`) into the same kind of steps, with no model.
- ``llm``: the same steps planned and composed by a language model through ``llm``
  (:mod:`planners.subgoals.llm_provider`).

A :class:`SubGoalTracker` asks its provider each step, checks the answer (in the workspace,
refers to an object in the scene) and, when it is unusable, keeps the previous sub-goal and
counts the fallback with its reason. Positions are m in the world frame; openness 1 = open.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from envs.core.robot import WORKSPACE
from envs.core.state import SceneState
from planners.subgoals.grounding import PlanStep, ground_instruction, scene_labels
from planners.subgoals.subgoal import SubGoal, SubGoalError, check_subgoal

log = logging.getLogger(__name__)

PROVIDERS = ("manual", "offline", "llm")


def phase_subgoal(obj: str, skill: str, target: np.ndarray, state: SceneState, source: str) -> SubGoal:
    """The sub-goal of one step in its current phase (see the module docstring)."""
    if skill == "reach":
        return SubGoal(np.asarray(target, float), 1.0, obj, source)
    if skill == "push":
        return SubGoal(np.asarray(target, float), 0.0, obj, source)
    if obj in state.grasped:
        return SubGoal(np.asarray(target, float), 1.0, obj, source)   # carry there, then open
    return SubGoal(state.objects[obj].pos.copy(), 0.0, obj, source)   # go to the object, then close


class ManualProvider:
    """Sub-goals from the task's goals (privileged: it reads the goals, not the instruction)."""

    name = "manual"

    def reset(self, env) -> None:
        self.env = env.unwrapped
        self.goals = self.env.task.oracle_goals()

    def propose(self, state: SceneState) -> SubGoal:
        for g in self.goals:
            if not g.check(state) or (g.skill == "pick_place" and g.obj.name in state.grasped):
                return phase_subgoal(g.obj.name, g.skill, g.target(state), state, self.name)
        g = self.goals[-1]  # all hold: stay at the last target with the gripper open
        return SubGoal(g.target(state), 1.0, g.obj.name, self.name)


class PlanProvider:
    """Sub-goals from a list of :class:`PlanStep` (object, skill, target), made at reset by
    ``make_plan(instruction, labels, state)``; a step is done when its object sits at its target
    (within the step's tolerance) and no finger touches it."""

    name = "plan"

    def reset(self, env) -> None:
        self.env, self.steps = env.unwrapped, []  # stays empty when the plan cannot be made
        state = self.env.scene_state()
        self.labels = scene_labels(self.env.scene.objects, state)
        self.steps = self.make_plan(self.env.instruction, self.labels, state)

    def make_plan(self, instruction: str, labels: list[dict], state: SceneState) -> list[PlanStep]:
        raise NotImplementedError

    def propose(self, state: SceneState) -> SubGoal:
        if not self.steps:
            raise SubGoalError(f"no plan for the instruction {self.env.instruction!r}")
        for s in self.steps:
            target = s.target(state)
            if not s.done(state, target) or s.obj in state.grasped:
                return phase_subgoal(s.obj, s.skill, target, state, self.name)
        s = self.steps[-1]
        return SubGoal(s.target(state), 1.0, s.obj, self.name)


class OfflineProvider(PlanProvider):
    """Sub-goals from the instruction, parsed against the scene's object labels: no model."""

    name = "offline"

    def make_plan(self, instruction, labels, state):
        return ground_instruction(instruction, labels, state)


@dataclass
class SubGoalTracker:
    """Asks ``provider`` for a sub-goal, validates it and falls back to the previous one (the
    current TCP pose with the gripper as it is, before any) when it is unusable."""

    provider: object
    workspace: np.ndarray = field(default_factory=lambda: WORKSPACE.copy())
    fallbacks: int = 0
    rejections: list[str] = field(default_factory=list)
    current: SubGoal | None = None

    def reset(self, env) -> None:
        self.env = env.unwrapped
        self.current, self.fallbacks, self.rejections = None, 0, []
        self.known = [o.name for o in self.env.scene.objects]
        try:
            self.provider.reset(env)
        except SubGoalError as err:  # e.g. an instruction the parser cannot ground: every step falls back
            self._reject(f"no plan at reset: {err}")
        for reason in getattr(self.provider, "rejected", []):  # plan steps dropped as unusable (llm)
            self._reject(reason)

    def _reject(self, reason: str) -> None:
        self.fallbacks += 1
        self.rejections.append(reason)
        log.warning("sub-goal rejected (%s); keeping the previous one", reason)

    def update(self, state: SceneState | None = None) -> SubGoal:
        state = state if state is not None else self.env.scene_state()
        try:
            goal = check_subgoal(self.provider.propose(state), self.known, self.workspace)
        except SubGoalError as err:
            self._reject(str(err))
            if self.current is None:  # nothing to fall back on yet: hold where the TCP is
                self.current = SubGoal(np.asarray(state.tcp_pos, float).copy(),
                                       float(np.clip(state.gripper_width / 0.08, 0, 1)), "", "hold")
            return self.current
        self.current = goal
        return goal


def make_provider(name: str, **kwargs):
    """``manual``, ``offline`` or ``llm`` (``kwargs`` go to the LLM provider: ``client``)."""
    if name == "manual":
        return ManualProvider()
    if name == "offline":
        return OfflineProvider()
    if name == "llm":
        from planners.subgoals.llm_provider import LLMProvider
        return LLMProvider(**kwargs)
    raise ValueError(f"subgoals={name!r} is invalid; allowed: {', '.join(PROVIDERS)}")
