"""The task base class: a task builds a scene and declares goals; everything else derives.

Subclasses implement two hooks (``build`` and ``goals``) and a templated ``instruction``.
Success is a dict of named conditions so a failure says which one did not hold.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from envs.core.predicates import Goal
from envs.core.scene import Scene, SceneError
from envs.core.state import SceneState

REST_LINVEL = 0.05   # m/s: an object moving slower than this counts as at rest
REST_ANGVEL = 0.5    # rad/s


class _Attrs(dict):
    """Lets ``str.format_map`` read task attributes: "{top.color}" -> self.top.color."""

    def __init__(self, obj):
        super().__init__(vars(obj))


class Task:
    """Base class for every task (built-in, procedurally generated or LLM-written)."""

    name: ClassVar[str] = ""                 # set by @register_task
    instruction: ClassVar[str] = ""          # e.g. "stack the {top.color} block on the {base.color} block"
    max_episode_steps: ClassVar[int] = 200   # at 20 Hz control
    # Backend features the task needs beyond blocks/cylinders/zones (e.g. {"bowl"}); a backend
    # that lacks one rejects the task at load with the feature named.
    features: ClassVar[frozenset[str]] = frozenset()

    # -- the two hooks a task writes -------------------------------------------------------
    def build(self, scene: Scene, rng: np.random.Generator) -> None:
        """Add objects to ``scene`` and place them; store handles on ``self``."""
        raise NotImplementedError

    def goals(self) -> list[Goal]:
        """Declarative goals, in the order the oracle should achieve them."""
        raise NotImplementedError

    def oracle_goals(self) -> list[Goal]:
        """Sub-goals the oracle achieves in order; defaults to ``goals()``. Override when the
        solution passes through states the final goals don't describe (e.g. swapping two blocks
        needs a temporary spot)."""
        return self.goals()

    # -- derived ---------------------------------------------------------------------------
    def describe(self) -> str:
        """The language instruction for the current episode."""
        return self.instruction.format_map(_Attrs(self))

    def movable_goal_objects(self) -> list:
        seen = {}
        for g in self.goals():
            seen.setdefault(g.obj.name, g.obj)
        return list(seen.values())

    def evaluate(self, state: SceneState, goals: list[Goal] | None = None) -> dict[str, bool]:
        """Named success conditions; ``success`` is their conjunction."""
        goals = goals if goals is not None else self.goals()
        conds = {g.name: g.check(state) for g in goals}
        names = {g.obj.name for g in goals if g.skill != "reach"}
        conds["released"] = not (names & state.touching)
        conds["at_rest"] = all(
            np.linalg.norm(s.linvel) < REST_LINVEL and np.linalg.norm(s.angvel) < REST_ANGVEL
            for s in state.objects.values())
        conds["success"] = all(conds.values())
        return conds

    def dense_reward(self, state: SceneState, goals: list[Goal] | None = None,
                     conds: dict[str, bool] | None = None) -> float:
        """Staged reward in [0, 1]: reach -> grasp -> carry to target, goal by goal, then release.

        Each goal is worth 4 units (reach 1, grasp 1, place 2 -- for a joint goal: reach the handle,
        grasp it, move it to the target; a push goal: reach 1, place 3); the
        final unit rewards letting go once every goal holds. Success gives exactly 1.
        """
        goals = goals if goals is not None else self.goals()
        conds = conds if conds is not None else self.evaluate(state, goals)
        total = 4.0 * len(goals) + 1.0
        if conds["success"]:
            return 1.0
        done = 0.0
        for g in goals:
            if conds[g.name]:
                done += 4.0
                continue
            reach_to = g.push_point(state) if g.skill == "push" else state.pos(g.obj)
            reach = 1.0 - np.tanh(5.0 * np.linalg.norm(state.tcp_pos - reach_to))
            place = 1.0 - np.tanh(5.0 * g.distance(state))
            if g.skill in ("pick_place", "articulate"):  # articulate: grasp the handle, move it
                done += 2.0 + 2.0 * place if g.obj.name in state.grasped else reach
            elif g.skill == "push":  # reach = be behind the object on its line to the target
                done += reach + 3.0 * place
            else:  # reach
                done += 4.0 * reach
            return float(done / total)
        # every goal holds: reward releasing and settling
        return float((done + 0.5 * conds["released"] + 0.5 * conds["at_rest"]) / total)


MAX_LAYOUT_TRIES = 10


def build_layout(task_cls: type[Task], rng: np.random.Generator) -> tuple[Task, Scene]:
    """A fresh task instance and its built scene. A rare crowded layout (``SceneError``) is redrawn
    from the same RNG stream, so a seed still gives one layout, the same on every backend."""
    for attempt in range(MAX_LAYOUT_TRIES):
        task, scene = task_cls(), Scene(rng)
        try:
            task.build(scene, rng)
            return task, scene
        except SceneError:
            if attempt == MAX_LAYOUT_TRIES - 1:
                raise
    raise AssertionError("unreachable")
