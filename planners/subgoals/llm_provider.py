"""The ``llm`` sub-goal provider: GravMAD's detector -> planner -> composer, through the project's
one OpenAI-compatible client (:mod:`llm`).

- **Detector**: the simulator labels the objects (name, kind, colour, position, half size;
  :func:`planners.subgoals.grounding.scene_labels`) instead of a Set-of-Mark image.
- **Planner** (one chat call): the instruction and the objects -> a JSON list of short sub-tasks.
- **Composer** (one chat call): the sub-tasks -> a JSON list of steps, each
  ``{"object": NAME, "skill": "pick_place"|"push"|"reach", "relation": REL, "reference": NAME
  or [NAME, NAME], "xyz": [x, y, z]}`` with REL one of ``on``, ``in``, ``left_of``,
  ``right_of``, ``front_of``, ``behind``, ``on_both`` (two references), ``at`` (``xyz``: the
  object's centre, m) or ``reach`` (the TCP goes to ``reference`` or ``xyz``).

Each step is validated before use (the object and references are in the scene; an ``xyz`` is 3
numbers inside the workspace) and turned into the same :class:`PlanStep` the offline parser
makes, so the sub-goal at each step (position + openness) follows the same phases. An answer
with no usable step is rejected with the reasons; the :class:`SubGoalTracker` then keeps the
previous sub-goal and counts it. Both calls happen once, at ``reset``.
"""
from __future__ import annotations

import json
import re

import numpy as np

from envs.core.robot import WORKSPACE
from planners.subgoals import grounding as gr
from planners.subgoals.grounding import PlanStep
from planners.subgoals.providers import PlanProvider
from planners.subgoals.subgoal import SubGoalError

RELATIONS = ("on", "in", "left_of", "right_of", "front_of", "behind", "on_both", "at", "reach")
SKILLS = ("pick_place", "push", "reach")

PLANNER_SYSTEM = (
    "You plan table-top manipulation for a robot arm with a parallel gripper. Split the user's "
    "instruction into the shortest ordered list of sub-tasks, each moving one object (or the gripper). "
    "Answer with a JSON list of strings and nothing else.")
COMPOSER_SYSTEM = (
    "You turn sub-tasks into robot steps. Units are metres, world frame: x away from the robot, y to its "
    "left, z up, the table top is z = 0. Answer with a JSON list and nothing else; one object per sub-task: "
    '{"object": <name of the object that moves, or of the marker to reach>, "skill": "pick_place" | "push" | '
    '"reach", "relation": ' + " | ".join(f'"{r}"' for r in RELATIONS) + ', "reference": <object name, or a '
    'list of two names for on_both; omit for at>, "xyz": [x, y, z] (only for at/reach without a reference)}. '
    "Use only the object names listed.")


def _json_block(text: str):
    """The first JSON value in a model's answer (fenced in ``` or bare)."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    body = fenced[1] if fenced else text
    start = min((i for i in (body.find("["), body.find("{")) if i >= 0), default=-1)
    if start < 0:
        raise SubGoalError(f"the model's answer holds no JSON: {text[:120]!r}")
    try:
        return json.JSONDecoder().raw_decode(body[start:])[0]
    except json.JSONDecodeError as err:
        raise SubGoalError(f"the model's answer is not valid JSON ({err.msg}): {body[start:start + 120]!r}") from None


def compose_steps(answer, labels: list[dict]) -> tuple[list[PlanStep], list[str]]:
    """The composer's parsed answer -> (usable steps, reasons for each step rejected)."""
    sc = gr._Scene(labels)
    steps, rejected = [], []
    items = answer if isinstance(answer, list) else [answer]
    for k, item in enumerate(items):
        try:
            steps.append(_step(item, sc))
        except SubGoalError as err:
            rejected.append(f"step {k}: {err}")
    return steps, rejected


def _name(sc: gr._Scene, value, what: str) -> str:
    if not isinstance(value, str) or value not in sc.labels:
        raise SubGoalError(f"{what} {value!r} is not in the scene; known: {', '.join(sorted(sc.labels))}")
    return value


def _xyz(value) -> np.ndarray:
    try:
        p = np.asarray(value, float).reshape(3)
    except (TypeError, ValueError):
        raise SubGoalError(f"xyz={value!r} is not 3 numbers (m)") from None
    lo, hi = WORKSPACE
    if not np.isfinite(p).all() or np.any(p < lo) or np.any(p > hi):
        raise SubGoalError(f"xyz={np.round(p, 3).tolist()} is outside the workspace "
                           f"{lo.tolist()}..{hi.tolist()} m")
    return p


def _step(item, sc: gr._Scene) -> PlanStep:
    if not isinstance(item, dict):
        raise SubGoalError(f"{item!r} is not an object with object/skill/relation")
    rel, skill = item.get("relation"), item.get("skill", "pick_place")
    if rel not in RELATIONS:
        raise SubGoalError(f"relation={rel!r} is invalid; allowed: {', '.join(RELATIONS)}")
    if skill not in SKILLS:
        raise SubGoalError(f"skill={skill!r} is invalid; allowed: {', '.join(SKILLS)}")
    obj = _name(sc, item.get("object"), "object")
    ref = item.get("reference")
    if rel == "reach" or skill == "reach":
        if ref is not None:
            r = _name(sc, ref, "reference")
            return PlanStep(obj, "reach", lambda s: s.objects[r].pos.copy(), f"reach {r}")
        p = _xyz(item.get("xyz"))
        return PlanStep(obj, "reach", lambda s: p.copy(), "reach xyz")
    if not sc.labels[obj]["movable"]:
        raise SubGoalError(f"object {obj!r} is a fixture ({sc.labels[obj]['kind']}); it cannot be moved")
    if rel == "at":
        p = _xyz(item.get("xyz"))
        return PlanStep(obj, skill, gr._at(sc, obj, p[:2]), "at xyz")
    if rel == "on_both":
        if not isinstance(ref, list) or len(ref) != 2:
            raise SubGoalError(f"on_both needs a list of two references, got {ref!r}")
        a, b = (_name(sc, r, "reference") for r in ref)
        return PlanStep(obj, skill, gr._bridge(sc, obj, a, b), f"on both {a}, {b}")
    r = _name(sc, ref, "reference")
    if r == obj:
        raise SubGoalError(f"object {obj!r} cannot be placed relative to itself")
    if rel == "in" or (rel == "on" and sc.labels[r]["kind"] in ("zone", "bowl")):
        return PlanStep(obj, skill, gr._in(sc, obj, r), f"in {r}")
    if rel == "on":
        return PlanStep(obj, skill, gr._on(sc, obj, r), f"on {r}")
    direction = {"left_of": "left", "right_of": "right", "front_of": "front", "behind": "behind"}[rel]
    return PlanStep(obj, skill, gr._near(sc, obj, r, direction), f"{rel} {r}")


class LLMProvider(PlanProvider):
    """Sub-goals planned and composed by a language model. ``client``: an :class:`llm.LLMClient`
    (default: one configured from the environment, see :mod:`llm.client`; with no endpoint set,
    :class:`llm.LLMConfigError` names the variables to set)."""

    name = "llm"

    def __init__(self, client=None):
        if client is None:
            from llm import LLMClient
            client = LLMClient()
        self.client = client
        self.subtasks: list[str] = []
        self.rejected: list[str] = []

    def make_plan(self, instruction, labels, state):
        from llm import LLMError

        objects = json.dumps([{k: lab[k] for k in ("name", "kind", "color", "pos", "half_size")} for lab in labels])
        try:
            plan = self.client.complete(f"Instruction: {instruction}\nObjects: {objects}", system=PLANNER_SYSTEM,
                                        temperature=0.0)
            self.subtasks = [str(s) for s in _as_list(_json_block(plan))]
            composed = self.client.complete(
                f"Objects: {objects}\nSub-tasks:\n" + "\n".join(f"{i + 1}. {s}" for i, s in enumerate(self.subtasks)),
                system=COMPOSER_SYSTEM, temperature=0.0)
        except LLMError as err:
            raise SubGoalError(f"the language model could not be asked: {err}") from None
        steps, self.rejected = compose_steps(_json_block(composed), labels)
        if not steps:
            raise SubGoalError("no usable step in the model's answer: " + "; ".join(self.rejected or ["empty"]))
        return steps


def _as_list(value) -> list:
    if isinstance(value, list):
        return value
    raise SubGoalError(f"the planner's answer is not a JSON list: {str(value)[:120]!r}")
