"""Grounding an instruction in the scene without a model: the ``offline`` sub-goal provider's
parser, and the step vocabulary the ``llm`` provider's answers are read into.

The scene is seen as the simulator labels it (:func:`scene_labels`: name, kind, colour, position,
half size), the way GravMAD's detector would report it. The instruction is read for object
mentions ("the red block", "the blue zone", "green blocks") and relations between them ("on",
"on top", "on both", "in"/"into", "left of", "right of", "in front of", "behind", "to the centre
of the table", "swap"), in clauses joined by "then", "and" or commas; "push"/"slide" make a step
non-prehensile, "move the gripper to" makes it a reach. Each relation becomes a
:class:`PlanStep`: which object moves where (its centre's target position, m), recomputed from
the current state every step, so a target on a moving object follows it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from envs.core.scene import COLORS
from envs.core.state import SceneState
from planners.subgoals.subgoal import SubGoalError

KIND_WORDS = {"block": "block", "blocks": "block", "cube": "block", "cylinder": "cylinder", "cylinders": "cylinder",
              "zone": "zone", "zones": "zone", "bowl": "bowl", "sphere": "marker", "marker": "marker"}
DIRECTIONS = {"left": (0.0, 1.0), "right": (0.0, -1.0), "front": (-1.0, 0.0), "behind": (1.0, 0.0)}
NEAR_GAP = 0.07          # m, centre to centre, for "left of" and the like
TOUCHING_GAP = 0.05      # m: "left of ... and ... on both" (a pyramid base) puts the blocks side by side
LINE_GAP = 0.065         # m: "line up"
SLOT_OFFSET = 0.035      # m: two objects in one zone sit this far either side of its centre (y)
TABLE_CENTRE = (0.5, 0.0)
DONE_XY, DONE_Z = 0.02, 0.015  # m: a step is done when its object is this close to the target


@dataclass
class PlanStep:
    """Move ``obj`` (a scene object's name) so that its centre reaches ``target(state)`` (m),
    by ``skill``: ``pick_place``, ``push`` or ``reach`` (then the TCP goes to the target)."""

    obj: str
    skill: str
    target: Callable[[SceneState], np.ndarray] = field(repr=False)
    relation: str = ""

    def done(self, state: SceneState, target: np.ndarray) -> bool:
        if self.skill == "reach":
            return bool(np.linalg.norm(state.tcp_pos - target) <= DONE_XY)
        p = state.objects[self.obj].pos
        return bool(np.linalg.norm(p[:2] - target[:2]) <= DONE_XY and abs(p[2] - target[2]) <= DONE_Z
                    and self.obj not in state.touching)


def scene_labels(objects, state: SceneState) -> list[dict]:
    """What the simulator tells a grounder about each object: name, kind, colour, position (m,
    rounded to mm), half size (m), movable."""
    return [{"name": o.name, "kind": o.kind, "color": o.color,
             "pos": [round(float(x), 3) for x in state.objects[o.name].pos],
             "half_size": [round(float(x), 4) for x in o.half_size], "movable": bool(o.movable)} for o in objects]


class _Scene:
    """Label lookup by colour and kind, with the one-line errors a bad reference deserves."""

    def __init__(self, labels: list[dict]):
        self.labels = {lab["name"]: lab for lab in labels}

    def find(self, color: str, kind: str, plural: bool = False) -> list[str]:
        names = [n for n, lab in self.labels.items() if lab["color"] == color and lab["kind"] == kind]
        if not names:
            have = ", ".join(f"{lab['color']} {lab['kind']}" for lab in self.labels.values())
            raise SubGoalError(f"the instruction names a {color} {kind}, which is not in the scene ({have})")
        return names if plural else names[:1]

    def half(self, name: str) -> np.ndarray:
        return np.asarray(self.labels[name]["half_size"], float)


def _on(sc: _Scene, obj: str, base: str):
    return lambda s: s.objects[base].pos + [0.0, 0.0, sc.half(base)[2] + sc.half(obj)[2]]


def _in(sc: _Scene, obj: str, zone: str, offset=(0.0, 0.0)):
    def target(s):
        z = s.objects[zone].pos
        floor = z[2] - sc.half(zone)[2] + (0.005 if sc.labels[zone]["kind"] == "bowl" else 0.0)
        return np.array([z[0] + offset[0], z[1] + offset[1], max(floor, 0.0) + sc.half(obj)[2]])
    return target


def _near(sc: _Scene, obj: str, ref: str, direction: str, gap: float = NEAR_GAP):
    d = np.asarray(DIRECTIONS[direction])
    return lambda s: np.array([*(s.objects[ref].pos[:2] + d * gap), sc.half(obj)[2]])


def _at(sc: _Scene, obj: str, xy):
    return lambda s: np.array([xy[0], xy[1], sc.half(obj)[2]])


def _bridge(sc: _Scene, obj: str, a: str, b: str):
    def target(s):
        pa, pb = s.objects[a].pos, s.objects[b].pos
        top = max(pa[2] + sc.half(a)[2], pb[2] + sc.half(b)[2])
        return np.array([*((pa[:2] + pb[:2]) / 2), top + sc.half(obj)[2]])
    return target


_COLOR = "|".join(sorted(COLORS, key=len, reverse=True))
_KIND = "|".join(sorted(KIND_WORDS, key=len, reverse=True))
MENTION = re.compile(rf"\b(?P<color>{_COLOR})\s+(?P<kind>{_KIND})\b")
_REL = re.compile(r"\b(on top of|on both|on top|on|into|in|to the left of|left of|to the right of|right of|"
                  r"in front of|behind|beside|next to)\b")


def _free_spot(sc: _Scene, state: SceneState, avoid: list[np.ndarray]) -> np.ndarray:
    """A table-top point (x, y) clear of every object and of ``avoid``: a parking place. Prefers a
    fixture zone nothing was asked of, else the best of a fixed grid."""
    for name, lab in sc.labels.items():
        if lab["kind"] == "zone":
            return state.objects[name].pos[:2].copy()
    occupied = [state.objects[n].pos[:2] for n in sc.labels] + list(avoid)
    grid = [np.array([x, y]) for x in np.linspace(0.4, 0.6, 5) for y in np.linspace(-0.18, 0.18, 7)]
    return max(grid, key=lambda p: min(np.linalg.norm(p - q) for q in occupied))


def ground_instruction(instruction: str, labels: list[dict], state: SceneState) -> list[PlanStep]:
    """The plan an instruction asks for in this scene, or :class:`SubGoalError` naming what could
    not be grounded (an object that is not there, a sentence with no relation it knows)."""
    sc, text = _Scene(labels), instruction.lower().strip().rstrip(".")
    one = lambda c, k: sc.find(c, KIND_WORDS[k])[0]  # noqa: E731
    skill = "push" if re.match(r"^(push|slide)\b", text) else "pick_place"

    m = re.match(rf"^move the gripper to the (?:({_COLOR}) )?({_KIND})", text)
    if m:
        name = one(m[1], m[2]) if m[1] else next(n for n, lab in sc.labels.items() if lab["kind"] == "marker")
        return [PlanStep(name, "reach", lambda s: s.objects[name].pos.copy(), "reach")]
    m = re.match(r"^sort the blocks:(.*)$", text)
    if m:
        steps = []
        for c, zc in re.findall(rf"\b({_COLOR}) blocks in the ({_COLOR}) zone", m[1]):
            zone = one(zc, "zone")
            for i, b in enumerate(sc.find(c, "block", plural=True)):
                off = (0.0, SLOT_OFFSET * (1 if i % 2 == 0 else -1))
                steps.append(PlanStep(b, skill, _in(sc, b, zone, off), f"in {zone}"))
        if steps:
            return steps
    m = re.match(rf"^stack the blocks ({_COLOR}) at the bottom, then ({_COLOR}), then ({_COLOR}) on top", text)
    if m:
        a, b, c = (one(x, "block") for x in m.groups())
        return [PlanStep(b, skill, _on(sc, b, a), f"on {a}"), PlanStep(c, skill, _on(sc, c, b), f"on {b}")]
    m = re.match(rf"^swap the positions of the ({_COLOR}) ({_KIND}) and the ({_COLOR}) ({_KIND})", text)
    if m:
        a, b = one(m[1], m[2]), one(m[3], m[4])
        pa, pb = state.objects[a].pos[:2].copy(), state.objects[b].pos[:2].copy()
        park = _free_spot(_Scene([lab for lab in labels if lab["name"] not in (a, b)]), state, [pa, pb])
        return [PlanStep(a, skill, _at(sc, a, park), "park"), PlanStep(b, skill, _at(sc, b, pa), f"at {a}'s start"),
                PlanStep(a, skill, _at(sc, a, pb), f"at {b}'s start")]
    m = re.match(rf"^line up the ({_COLOR}) and ({_COLOR}) blocks to the (left|right) of the ({_COLOR}) block", text)
    if m:
        b1, b2, b0 = one(m[1], "block"), one(m[2], "block"), one(m[4], "block")
        return [PlanStep(b1, skill, _near(sc, b1, b0, m[3], LINE_GAP), f"{m[3]} of {b0}"),
                PlanStep(b2, skill, _near(sc, b2, b1, m[3], LINE_GAP), f"{m[3]} of {b1}")]
    m = re.match(rf"^(?:put|move|place) both the ({_COLOR}) and the ({_COLOR}) ({_KIND}) (?:in|into) the "
                 rf"({_COLOR}) ({_KIND})", text)
    if m:
        zone = one(m[4], m[5])
        a, b = one(m[1], m[3]), one(m[2], m[3])
        return [PlanStep(a, skill, _in(sc, a, zone, (0.0, SLOT_OFFSET)), f"in {zone}"),
                PlanStep(b, skill, _in(sc, b, zone, (0.0, -SLOT_OFFSET)), f"in {zone}")]
    m = re.match(rf"^\w+ the ({_COLOR}) ({_KIND}) to the cent(?:re|er) of the table", text)
    if m:
        a = one(m[1], m[2])
        return [PlanStep(a, skill, _at(sc, a, TABLE_CENTRE), "table centre")]
    m = re.match(rf"^take the ({_COLOR}) ({_KIND}) off the ({_COLOR}) ({_KIND}) and put it (?:in|into|on) the "
                 rf"({_COLOR}) ({_KIND})", text)
    if m:
        a, ref = one(m[1], m[2]), one(m[5], m[6])
        where = _in(sc, a, ref) if sc.labels[ref]["kind"] in ("zone", "bowl") else _on(sc, a, ref)
        return [PlanStep(a, skill, where, f"onto {ref}")]
    return _ground_clauses(text, sc, skill)


def _ground_clauses(text: str, sc: _Scene, skill: str) -> list[PlanStep]:
    """The general case: clauses "<object> <relation> <reference>" split at "then", "and", commas."""
    steps, last_moved, refs = [], None, []
    text = text.split(":", 1)[-1]
    for clause in re.split(r",\s*(?:then\s+)?|\s+then\s+|\s+and\s+(?=the\b)", text):
        mentions = list(MENTION.finditer(clause))
        rel = _REL.search(clause, mentions[0].end()) if mentions else None
        if not mentions or not rel:
            continue
        obj = sc.find(mentions[0]["color"], KIND_WORDS[mentions[0]["kind"]])[0]
        r = rel[1]
        after = [mm for mm in mentions[1:] if mm.start() >= rel.end()]
        if r == "on both" and len(refs) >= 2:
            steps.append(PlanStep(obj, skill, _bridge(sc, obj, refs[-2], refs[-1]), "on both"))
        elif r == "on top" and not after and last_moved:
            steps.append(PlanStep(obj, skill, _on(sc, obj, last_moved), f"on {last_moved}"))
        elif after:
            ref = sc.find(after[0]["color"], KIND_WORDS[after[0]["kind"]])[0]
            kind = sc.labels[ref]["kind"]
            if r in ("in", "into") or kind in ("zone", "bowl") and r in ("on", "on top of"):
                target = _in(sc, obj, ref)
            elif r in ("on", "on top of"):
                target = _on(sc, obj, ref)
            else:
                direction = next((d for d in DIRECTIONS if d in r), "left")
                pyramid = " on both" in text
                target = _near(sc, obj, ref, direction, TOUCHING_GAP if pyramid else NEAR_GAP)
            steps.append(PlanStep(obj, skill, target, f"{r} {ref}"))
            refs = [ref, obj]
        else:
            continue
        last_moved = obj
    if not steps:
        raise SubGoalError(f"could not ground {text!r}: no '<colour> <kind> <relation> <colour> <kind>' "
                           f"clause the offline parser knows")
    return steps
