"""Composed drafts: two sub-tasks side by side in one scene, from a table of sub-tasks.

The hand-written families in :mod:`generation.catalogue` give about sixty structurally distinct
tasks. Composition grows the space with the same vocabulary: each entry of :data:`SUBTASKS`
builds one small sub-task (its objects, how they start, its goal and how the instruction says
it) in a *lane* of the table: the lane's fixture or anchor sits at the far end of its half
(left or right), and every mover starts in the band near the robot. Two sub-tasks of different
types, each with its own variant (mover kind, base kind, direction...), optionally with a
distractor that no goal names, make one draft. Lanes keep the two sub-tasks out of each other's
way, so what the oracle solves alone it solves side by side.

Every pair is one structure (:mod:`generation.structure`): the left/right mirror and the order
of two independent goals are not structure, so each unordered pair is written once, with the
goals in a fixed order (pushes and unstacking first: they need the clearest table).

A new predicate is a new entry: a function ``(lane, variant, ids) -> Part`` and its variants in
:data:`SUBTASKS` (e.g. an ``Inserted`` peg into a hole fixture at the lane's spot, or a drawer to
open): the pairing, naming, colours and wording come for free.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from generation.codegen_procedural import DIR_WORDS, Draft, GoalSpec, Obj, Placement

# The far end of each half of the table (fixtures, anchors, bases) and where a pushed object starts.
LANES = {"left": {"spot": (0.57, 0.12), "start": (0.42, 0.12), "inward": "right"},
         "right": {"spot": (0.57, -0.12), "start": (0.42, -0.12), "inward": "left"}}
SPARE_XY = (0.5, 0.0)
KIND_TAG = {"block": "blk", "cylinder": "cyl", "inward": "in", "front": "fr"}
TYPE_TAG = {"stack": "stk", "zone": "zone", "push": "push", "bowl": "bowl", "mark": "mark", "beside": "near",
            "unstack": "unstk", "match": "match", "tower": "tower", "pair_zone": "pair", "flank": "flank",
            "restack": "restk", "mark_stack": "mstk", "zone_stack": "zstk", "reach": "reach"}


@dataclass
class Part:
    """One sub-task in one lane: objects (roles already prefixed), fixed placements, the roles
    that start at random in the near band, goals, the instruction phrase and a summary clause."""

    objects: list[Obj]
    fixed: list[Placement]
    movers: tuple[str, ...]
    goals: list[GoalSpec]
    phrase: str
    clause: str
    stacked: list[Placement] = field(default_factory=list)   # starts on another object (after placing)
    first: bool = False   # its goal goes first (pushes and unstacking want a clear table)
    last: bool = False    # its goal goes last (a reach: the gripper must end there)


class Colors:
    """Random-colour indices handed out across the parts of one draft (distinct per object,
    except where a part asks two objects to share one: colour as a role)."""

    def __init__(self):
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n - 1


def _stack(lane: str, v: tuple, c: Colors, p: str) -> Part:
    mover, base = v
    spot = LANES[lane]["spot"]
    objs = [Obj(role=f"{p}base", kind=base, size="large", color=c.next()),
            Obj(role=f"{p}top", kind=mover, size="small", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}base", xy=spot)], (f"{p}top",),
                [GoalSpec(pred="On", obj=f"{p}top", refs={"base": f"{p}base"})],
                f"stack <{p}top> on top of <{p}base>", f"a small {mover} stacked on a large {base}")


def _zone(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (mover,) = v
    objs = [Obj(role=f"{p}zone", kind="zone", size=(0.09, 0.09), color=c.next()),
            Obj(role=f"{p}item", kind=mover, size="medium", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}zone", xy=LANES[lane]["spot"])], (f"{p}item",),
                [GoalSpec(pred="InZone", obj=f"{p}item", refs={"zone": f"{p}zone"}, params={"margin": 0.015})],
                f"place <{p}item> inside <{p}zone>", f"a {mover} carried into a zone")


def _push(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (mover,) = v
    objs = [Obj(role=f"{p}goal", kind="zone", size=(0.1, 0.1), color=c.next()),
            Obj(role=f"{p}puck", kind=mover, size="medium", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}goal", xy=LANES[lane]["spot"]),
                       Placement.fixed(role=f"{p}puck", xy=LANES[lane]["start"])], (),
                [GoalSpec(pred="Pushed", obj=f"{p}puck", refs={"zone": f"{p}goal"}, params={"margin": 0.025})],
                f"slide <{p}puck> into <{p}goal> without lifting it", f"a {mover} pushed along the table",
                first=True)


def _bowl(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (mover,) = v
    objs = [Obj(role=f"{p}bowl", kind="bowl", size=0.06, color=c.next()),
            Obj(role=f"{p}piece", kind=mover, size="small", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}bowl", xy=LANES[lane]["spot"])], (f"{p}piece",),
                [GoalSpec(pred="InZone", obj=f"{p}piece", refs={"zone": f"{p}bowl"}, params={"margin": 0.015})],
                f"drop <{p}piece> into <{p}bowl>", f"a small {mover} dropped in a bowl")


def _mark(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (mover,) = v
    spot = LANES[lane]["spot"]
    objs = [Obj(role=f"{p}mark", kind="zone", size=(0.05, 0.05), color="white"),
            Obj(role=f"{p}thing", kind=mover, size="medium", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}mark", xy=spot)], (f"{p}thing",),
                [GoalSpec(pred="AtPose", obj=f"{p}thing", params={"xy": spot, "tol": 0.02})],
                f"set <{p}thing> down exactly on the white mark on the {lane}",
                f"a {mover} moved onto a white mark")


def _beside(lane: str, v: tuple, c: Colors, p: str) -> Part:
    mover, side = v
    direction = LANES[lane]["inward"] if side == "inward" else "front"
    objs = [Obj(role=f"{p}anchor", kind="block", size="medium", color=c.next()),
            Obj(role=f"{p}mover", kind=mover, size="medium", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}anchor", xy=LANES[lane]["spot"])], (f"{p}mover",),
                [GoalSpec(pred="Near", obj=f"{p}mover", refs={"other": f"{p}anchor"},
                          params={"direction": direction, "gap": 0.07})],
                f"put <{p}mover> {DIR_WORDS[direction]} <{p}anchor>",
                f"a {mover} set {'towards the middle of the table from' if side == 'inward' else 'in front of'}"
                f" a block")


def _unstack(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (mover,) = v
    objs = [Obj(role=f"{p}under", kind="block", size="large", color=c.next()),
            Obj(role=f"{p}over", kind=mover, size="medium", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}under", xy=LANES[lane]["spot"])], (),
                [GoalSpec(pred="Near", obj=f"{p}over", refs={"other": f"{p}under"},
                          params={"direction": "front", "gap": 0.075})],
                f"lift <{p}over> off <{p}under> and set it down in front of it",
                f"a {mover} taken off a block it starts on",
                stacked=[Placement.on(top=f"{p}over", base=f"{p}under")], first=True)


def _match(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (mover,) = v
    shared = c.next()
    objs = [Obj(role=f"{p}pad", kind="zone", size=(0.09, 0.09), color=shared),
            Obj(role=f"{p}same", kind=mover, size="small", color=shared),
            Obj(role=f"{p}odd", kind=mover, size="small", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}pad", xy=LANES[lane]["spot"])], (f"{p}same", f"{p}odd"),
                [GoalSpec(pred="InZone", obj=f"{p}same", refs={"zone": f"{p}pad"}, params={"margin": 0.015})],
                f"of the two {mover}s, put the one coloured like <{p}pad> into it",
                f"the {mover} that matches a zone's colour picked out of two")


def _tower(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (top,) = v
    objs = [Obj(role=f"{p}foot", kind="block", size="large", color=c.next()),
            Obj(role=f"{p}middle", kind="block", size="medium", color=c.next()),
            Obj(role=f"{p}crown", kind=top, size="small", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}foot", xy=LANES[lane]["spot"])], (f"{p}middle", f"{p}crown"),
                [GoalSpec(pred="On", obj=f"{p}middle", refs={"base": f"{p}foot"}),
                 GoalSpec(pred="On", obj=f"{p}crown", refs={"base": f"{p}middle"})],
                f"build a three-storey tower on <{p}foot>: <{p}middle> in the middle, <{p}crown> at the top",
                f"a three-high tower crowned by a {top}")


def _pair_zone(lane: str, v: tuple, c: Colors, p: str) -> Part:
    kinds = v
    objs = [Obj(role=f"{p}tray", kind="zone", size=(0.15, 0.08), color=c.next()),
            Obj(role=f"{p}one", kind=kinds[0], size="small", color=c.next()),
            Obj(role=f"{p}two", kind=kinds[1], size="small", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}tray", xy=LANES[lane]["spot"])], (f"{p}one", f"{p}two"),
                [GoalSpec(pred="InZone", obj=f"{p}one", refs={"zone": f"{p}tray"},
                          params={"margin": 0.01, "offset": (0.035, 0.0)}),
                 GoalSpec(pred="InZone", obj=f"{p}two", refs={"zone": f"{p}tray"},
                          params={"margin": 0.01, "offset": (-0.035, 0.0)})],
                f"gather <{p}one> and <{p}two> together on <{p}tray>",
                f"a {kinds[0]} and a {kinds[1]} gathered on one long tray")


def _flank(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (mover,) = v
    inward = LANES[lane]["inward"]
    objs = [Obj(role=f"{p}post", kind="cylinder", size="large", color=c.next()),
            Obj(role=f"{p}guard", kind=mover, size="medium", color=c.next()),
            Obj(role=f"{p}side", kind=mover, size="medium", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}post", xy=LANES[lane]["spot"])], (f"{p}guard", f"{p}side"),
                [GoalSpec(pred="Near", obj=f"{p}guard", refs={"other": f"{p}post"},
                          params={"direction": "front", "gap": 0.07}),
                 GoalSpec(pred="Near", obj=f"{p}side", refs={"other": f"{p}post"},
                          params={"direction": inward, "gap": 0.07})],
                f"surround <{p}post>: <{p}guard> before it and <{p}side> on its inner side",
                f"two {mover}s arranged around a post, one in front and one inside")


def _restack(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (mover,) = v
    objs = [Obj(role=f"{p}old", kind="block", size="large", color=c.next()),
            Obj(role=f"{p}new", kind="block", size="large", color=c.next()),
            Obj(role=f"{p}cap", kind=mover, size="small", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}old", xy=LANES[lane]["spot"]),
                       Placement.fixed(role=f"{p}new", xy=LANES[lane]["start"])], (),
                [GoalSpec(pred="On", obj=f"{p}cap", refs={"base": f"{p}new"})],
                f"transfer <{p}cap> from its perch on <{p}old> to the top of <{p}new>",
                f"a small {mover} moved from one block's top to another's",
                stacked=[Placement.on(top=f"{p}cap", base=f"{p}old")], first=True)


def _mark_stack(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (top,) = v
    spot = LANES[lane]["spot"]
    objs = [Obj(role=f"{p}cross", kind="zone", size=(0.05, 0.05), color="gray"),
            Obj(role=f"{p}footing", kind="block", size="large", color=c.next()),
            Obj(role=f"{p}topper", kind=top, size="small", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}cross", xy=spot)], (f"{p}footing", f"{p}topper"),
                [GoalSpec(pred="AtPose", obj=f"{p}footing", params={"xy": spot, "tol": 0.02}),
                 GoalSpec(pred="On", obj=f"{p}topper", refs={"base": f"{p}footing"})],
                f"centre <{p}footing> over the grey cross, then crown it with <{p}topper>",
                f"a large block set on a grey cross with a small {top} on it")


def _zone_stack(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (top,) = v
    objs = [Obj(role=f"{p}square", kind="zone", size=(0.1, 0.1), color=c.next()),
            Obj(role=f"{p}plinth", kind="block", size="large", color=c.next()),
            Obj(role=f"{p}statue", kind=top, size="small", color=c.next())]
    return Part(objs, [Placement.fixed(role=f"{p}square", xy=LANES[lane]["spot"])], (f"{p}plinth", f"{p}statue"),
                [GoalSpec(pred="InZone", obj=f"{p}plinth", refs={"zone": f"{p}square"}, params={"margin": 0.02}),
                 GoalSpec(pred="On", obj=f"{p}statue", refs={"base": f"{p}plinth"})],
                f"erect a plinth: <{p}plinth> into <{p}square> and <{p}statue> standing on it",
                f"a small {top} on a large block that first goes into a zone")


def _reach(lane: str, v: tuple, c: Colors, p: str) -> Part:
    (height,) = v
    objs = [Obj(role=f"{p}beacon", kind="marker", size=0.015, color=c.next())]
    return Part(objs, [Placement.air(role=f"{p}beacon", region=lane)], (),
                [GoalSpec(pred="Reached", obj=f"{p}beacon", params={"tol": 0.02})],
                f"finish by holding the gripper at <{p}beacon> floating over the {lane} side",
                f"the gripper ending at a marker in the air on the {lane}", last=True)


# type -> (builder, variants). A variant is the tuple the builder unpacks.
SUBTASKS = {
    "stack": (_stack, [(m, b) for m in ("block", "cylinder") for b in ("block", "cylinder")]),
    "zone": (_zone, [("block",), ("cylinder",)]),
    "push": (_push, [("block",), ("cylinder",)]),
    "bowl": (_bowl, [("block",), ("cylinder",)]),
    "mark": (_mark, [("block",), ("cylinder",)]),
    "beside": (_beside, [(m, s) for m in ("block", "cylinder") for s in ("front", "inward")]),
    "unstack": (_unstack, [("block",), ("cylinder",)]),
    "match": (_match, [("block",), ("cylinder",)]),
    "tower": (_tower, [("block",), ("cylinder",)]),
    "pair_zone": (_pair_zone, [("block", "cylinder"), ("cylinder", "cylinder")]),
    "flank": (_flank, [("block",), ("cylinder",)]),
    "restack": (_restack, [("block",), ("cylinder",)]),
    "mark_stack": (_mark_stack, [("block",), ("cylinder",)]),
    "zone_stack": (_zone_stack, [("block",), ("cylinder",)]),
    "reach": (_reach, [("high",)]),
}
# a distractor between the lanes; a second kind of distractor would be new structure but, one
# word apart, the same text (the text measure rejects it), so only one is offered
DISTRACTORS = (None, "block")


def _tag(kind: str, v: tuple) -> str:
    return "_".join([TYPE_TAG[kind]] + [KIND_TAG.get(x, x) for x in v if x not in ("high",)])


def compose(a: tuple[str, tuple], b: tuple[str, tuple], distractor: str | None) -> Draft:
    """One draft: sub-task ``a`` in the left lane, ``b`` in the right, and maybe a distractor."""
    colors = Colors()
    # role names differ between sub-task types, so two different types need no prefixes
    parts = [SUBTASKS[a[0]][0]("left", a[1], colors, ""), SUBTASKS[b[0]][0]("right", b[1], colors, "")]
    parts.sort(key=lambda part: (not part.first) + part.last)   # stable: left before right otherwise
    objects = [o for part in parts for o in part.objects]
    placements = [pl for part in parts for pl in part.fixed]
    if distractor:   # between the lanes, clear of every lane's targets and push paths
        objects.append(Obj(role="spare", kind=distractor, size="medium", color=colors.next()))
        placements.append(Placement.fixed(role="spare", xy=SPARE_XY))
    movers = tuple(r for part in parts for r in part.movers)
    if movers:
        placements.append(Placement.random(roles=movers, region="near", min_gap=0.03))
    placements += [pl for part in parts for pl in part.stacked]
    text = f"{parts[0].phrase}; then {parts[1].phrase}"
    summary = f"Two sub-tasks side by side: {parts[0].clause}, and {parts[1].clause}"
    name = f"duo_{_tag(*a)}_{_tag(*b)}"   # task names are at most 48 characters
    if distractor:
        text += f"; leave <spare> where it is"
        summary += f", beside a {distractor} that stays put"
        name += f"_plus_{KIND_TAG[distractor]}"
    return Draft(name=name, family=f"duo_{a[0]}_{b[0]}", summary=summary + ".", objects=objects,
                 placements=placements, goals=[g for part in parts for g in part.goals], instruction=text,
                 meta={"subtasks": [a[0], b[0]], "variants": [list(a[1]), list(b[1])], "distractor": distractor})


def composed_space() -> list[Draft]:
    """Every pair of two different sub-task types (each variant of each), with and without a
    distractor, in a fixed order."""
    entries = [(kind, v) for kind, (_, variants) in SUBTASKS.items() for v in variants]
    out = []
    for (a, b), distractor in itertools.product(itertools.combinations(entries, 2), DISTRACTORS):
        if a[0] == b[0]:
            continue
        out.append(compose(a, b, distractor))
    return out
