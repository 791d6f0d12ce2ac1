"""Task proposals: what to build next.

A :class:`Proposal` is a task idea: a name, a one-paragraph description and (procedurally) a
:class:`~generation.codegen_procedural.Draft`. Two modes, as in GenSim:

- exploratory: bootstrap from the library towards new tasks. Procedurally, the space is every
  combination of object kinds/sizes, colour roles, counts, goal predicates (On, InZone, Near,
  AtPose, Bridge, Pushed), fixed spots/regions and goal orders below; candidates are taken most
  novel first (farthest in embedding space from everything in the library so far).
- goal-directed: given a target, a curriculum of stepping stones (subsets of the target's goals,
  fewer objects first), then the target itself.

The LLM side of both modes lives in :mod:`generation.codegen_llm`.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

import numpy as np

from generation.codegen_procedural import (BLOCK_SIZES as BLOCK_WORDS, CYLINDER_SIZES, DIR_WORDS, Draft,
                                                GoalSpec, Obj, Placement, render, subset)

CYL_WORDS = {w: r for w, (r, _) in CYLINDER_SIZES.items()}

SPOTS = {"left": (0.5, 0.13), "right": (0.5, -0.13), "far": (0.6, 0.0), "near": (0.42, 0.0),
         "centre": (0.5, 0.0)}
SPOT_WORDS = {"left": "on the left", "right": "on the right", "far": "at the far edge of the table",
              "near": "close to the robot", "centre": "in the middle of the table"}
FIXED_PALETTES = [("red", "blue", "yellow"), ("green", "orange", "purple"), ("cyan", "pink", "brown")]


@dataclass
class Proposal:
    """A task idea. ``draft`` is set for procedural proposals; LLM proposals carry text only."""

    name: str
    description: str
    instruction: str = ""
    draft: Draft | None = None
    origin: str = "procedural"
    meta: dict = field(default_factory=dict)

    def source(self) -> str:
        if self.draft is None:
            raise ValueError("only procedural proposals render to source; LLM ones go through codegen_llm")
        return render(self.draft)


# -- the procedural space -----------------------------------------------------------------------

def _pal(i: int) -> tuple[str, ...]:
    return FIXED_PALETTES[i % len(FIXED_PALETTES)]


def _zone(role="zone", color=0, size=(0.1, 0.1)) -> Obj:
    return Obj(role, "zone", size, color)


def _placed_zone(role: str, spot: str | None) -> list[Placement]:
    return [Placement("fixed", (role,), xy=SPOTS[spot])] if spot else []


def _spot_tag(spot):
    return f"_{spot}" if spot else ""


def family_stack() -> list[Draft]:
    out = []
    kinds = {"block": "block", "cylinder": "cyl"}
    for top, base, sizes, colors in itertools.product(kinds, kinds, ("same", "graded"), ("random", "fixed")):
        ts, bs = ("medium", "medium") if sizes == "same" else ("small", "large")
        pal = _pal(len(out))
        tc, bc = (0, 1) if colors == "random" else pal[:2]
        say = sizes == "graded"
        objs = [Obj("top", top, ts, tc, say), Obj("base", base, bs, bc, say)]
        name = f"stack_{'graded_' if say else ''}{kinds[top]}_on_{kinds[base]}" + \
               (f"_{tc}_{bc}" if colors == "fixed" else "")
        out.append(Draft(name, "stack", f"Put one {top} on top of a {base}.", objs,
                         [Placement("random", ("top", "base"), min_gap=0.05)],
                         [GoalSpec("On", "top", (("base", "base"),), phrase="put <top> on <base>")]))
    for top, sizes, colors in itertools.product(("block", "cylinder"), ("same", "graded"), ("random", "fixed")):
        sz = ("medium",) * 3 if sizes == "same" else ("large", "medium", "small")
        pal = _pal(len(out))
        cs = (0, 1, 2) if colors == "random" else pal
        say = sizes == "graded"
        objs = [Obj("b0", "block", sz[0], cs[0], say), Obj("b1", "block", sz[1], cs[1], say),
                Obj("b2", top, sz[2], cs[2], say)]
        name = f"tower_{'graded' if say else 'even'}_{'cyl_top' if top == 'cylinder' else 'blocks'}" + \
               (f"_{'_'.join(cs)}" if colors == "fixed" else "")
        words = "largest at the bottom, smallest on top" if say else "one on another"
        out.append(Draft(name, "tower", f"Build a three-high tower ({words}).", objs,
                         [Placement("random", ("b0", "b1", "b2"), min_gap=0.04)],
                         [GoalSpec("On", "b1", (("base", "b0"),), phrase="put <b1> on <b0>"),
                          GoalSpec("On", "b2", (("base", "b1"),), phrase="put <b2> on <b1>")],
                         instruction=f"build a tower, {words}: <b0> at the bottom, then <b1>, then <b2>"))
    return out


def family_stack_in_zone() -> list[Draft]:
    out = []
    for base, top, spot in itertools.product(("block", "cylinder"), ("block", "cylinder"),
                                             (None, "left", "right", "far")):
        objs = [_zone(color=0, size=(0.11, 0.11)), Obj("base", base, "large", 1), Obj("top", top, "small", 2)]
        where = f" {SPOT_WORDS[spot]}" if spot else ""
        name = f"stack_{top[:3]}_on_{base[:3]}_in_zone{_spot_tag(spot)}"
        out.append(Draft(name, "stack_in_zone", f"Build a two-high stack inside a zone{where}.", objs,
                         _placed_zone("zone", spot) + [Placement("random", ("zone", "base", "top"), min_gap=0.04)],
                         [GoalSpec("InZone", "base", (("zone", "zone"),), (("margin", 0.02),),
                                   phrase=f"put <base> in <zone>{where}"),
                          GoalSpec("On", "top", (("base", "base"),), phrase="put <top> on it")],
                         instruction=f"move <base> into <zone>{where} and stack <top> on it"))
    return out


def family_zone() -> list[Draft]:
    """One to three objects into one zone, optionally at a fixed spot, with colour roles."""
    out = []
    sets = {"block": ("block",), "cyl": ("cylinder",), "pair_blocks": ("block", "block"),
            "block_and_cyl": ("block", "cylinder"), "pair_cyls": ("cylinder", "cylinder"),
            "three": ("block", "cylinder", "block")}
    offsets = {1: [(0.0, 0.0)], 2: [(0.0, 0.04), (0.0, -0.04)], 3: [(0.0, 0.06), (0.0, 0.0), (0.0, -0.06)]}
    for (tag, kinds), spot in itertools.product(sets.items(), (None, "left", "right", "far", "near")):
        n = len(kinds)
        if n == 3 and spot not in ("far", "near"):
            continue  # a 0.18 m zone only leaves room for three objects when it sits at one edge
        zsize = (0.1, 0.1) if n == 1 else (0.1, 0.16) if n == 2 else (0.08, 0.18)
        roles = [f"item{i}" for i in range(n)]
        objs = [_zone(color=0, size=zsize)] + [Obj(r, k, "small" if n == 3 else "medium", i + 1)
                                              for i, (r, k) in enumerate(zip(roles, kinds))]
        where = f" {SPOT_WORDS[spot]}" if spot else ""
        goals = [GoalSpec("InZone", r, (("zone", "zone"),), (("margin", 0.015), ("offset", off)),
                          phrase=f"put <{r}> in <zone>") for r, off in zip(roles, offsets[n])]
        items = " and ".join(f"<{r}>" for r in roles)
        name = f"zone_{tag}{_spot_tag(spot)}"
        region = {"far": "near", "near": "far"}[spot] if n == 3 else "table"
        out.append(Draft(name, "zone", f"Gather {n} object(s) into a zone{where}.", objs,
                         _placed_zone("zone", spot) + [Placement("random", tuple(roles), region=region, min_gap=0.03)]
                         if spot else [Placement("random", ("zone", *roles), min_gap=0.03)],
                         goals, instruction=f"put {items} in <zone>{where}"))
    # colour as a role: the object that matches the zone's colour, among distractors
    for kind, distractors in itertools.product(("block", "cylinder"), (1, 2)):
        objs = [_zone(color=0), Obj("match", kind, "medium", 0)] + \
               [Obj(f"other{i}", kind, "medium", i + 1) for i in range(distractors)]
        roles = ["zone", "match"] + [f"other{i}" for i in range(distractors)]
        name = f"match_{kind}_to_zone_{distractors + 1}_choices"
        out.append(Draft(name, "match_zone", f"Pick the {kind} whose colour matches the zone among "
                                             f"{distractors + 1}.", objs,
                         [Placement("random", tuple(roles), min_gap=0.04)],
                         [GoalSpec("InZone", "match", (("zone", "zone"),), (("margin", 0.02),))],
                         instruction=f"of the {kind}s, put the one with the zone's colour ({{zone.color}}) "
                                     "into the zone"))
    return out


def family_push() -> list[Draft]:
    out = []
    for kind, size, spot in itertools.product(("block", "cylinder"), ("medium", "large"),
                                              (None, "left", "right", "far")):
        objs = [Obj("item", kind, size, 0, size == "large"), _zone(color=1, size=(0.11, 0.11))]
        where = f" {SPOT_WORDS[spot]}" if spot else ""
        name = f"push_{'big_' if size == 'large' else ''}{kind[:3]}_to_zone{_spot_tag(spot)}"
        out.append(Draft(name, "push", f"Push a {kind} along the table into a zone{where}.", objs,
                         _placed_zone("zone", spot) + [Placement("random", ("item", "zone"), min_gap=0.05)],
                         [GoalSpec("Pushed", "item", (("zone", "zone"),), (("margin", 0.025),))],
                         instruction=f"without lifting it, push <item> into <zone>{where}"))
    return out


def family_bowl() -> list[Draft]:
    out = []
    for items, spot in itertools.product((("cylinder",), ("block",), ("cylinder", "cylinder")),
                                         (None, "left", "right", "far")):
        roles = [f"item{i}" for i in range(len(items))]
        objs = [Obj("bowl", "bowl", 0.07 if len(items) == 2 else 0.06, 0)] + \
               [Obj(r, k, "small", i + 1) for i, (r, k) in enumerate(zip(roles, items))]
        offs = [(0.0, 0.0)] if len(items) == 1 else [(0.0, 0.025), (0.0, -0.025)]
        where = f" {SPOT_WORDS[spot]}" if spot else ""
        tag = "two_cyls" if len(items) == 2 else items[0][:3]
        name = f"bowl_{tag}{_spot_tag(spot)}"
        if name == "bowl_cyl":
            continue  # that is the built-in place_in_bowl
        out.append(Draft(name, "bowl", f"Drop {len(items)} object(s) into a bowl{where}.", objs,
                         _placed_zone("bowl", spot) + [Placement("random", ("bowl", *roles), min_gap=0.04)],
                         [GoalSpec("InZone", r, (("zone", "bowl"),), (("margin", 0.015), ("offset", o)))
                          for r, o in zip(roles, offs)],
                         instruction=f"drop {' and '.join(f'<{r}>' for r in roles)} into <bowl>{where}"))
    return out


def family_beside() -> list[Draft]:
    out = []
    for kind, anchor, side in itertools.product(("block", "cylinder"), ("block", "cylinder"), DIR_WORDS):
        objs = [Obj("anchor", anchor, "medium", 0), Obj("item", kind, "medium", 1)]
        name = f"{kind[:3]}_{side}_of_{anchor[:3]}"
        out.append(Draft(name, "beside", f"Place a {kind} {DIR_WORDS[side]} a {anchor}.", objs,
                         [Placement("fixed", ("anchor",), xy=(0.5, 0.0)),
                          Placement("random", ("item",), min_gap=0.06)],
                         [GoalSpec("Near", "item", (("other", "anchor"),), (("direction", side), ("gap", 0.07)),
                                   phrase=f"put <item> {DIR_WORDS[side]} <anchor>")]))
    for kinds in (("block", "block", "block"), ("cylinder", "block", "cylinder"), ("block", "cylinder", "block")):
        objs = [Obj("middle", kinds[1], "medium", 0), Obj("a", kinds[0], "medium", 1), Obj("b", kinds[2], "medium", 2)]
        name = f"flank_{kinds[1][:3]}_with_{kinds[0][:3]}_and_{kinds[2][:3]}"
        out.append(Draft(name, "flank", "Put two objects on either side of a third.", objs,
                         [Placement("fixed", ("middle",), xy=(0.5, 0.0)),
                          Placement("random", ("a", "b"), min_gap=0.05)],
                         [GoalSpec("Near", "a", (("other", "middle"),), (("direction", "left"), ("gap", 0.07))),
                          GoalSpec("Near", "b", (("other", "middle"),), (("direction", "right"), ("gap", 0.07)))],
                         instruction="put <a> on the left and <b> on the right of <middle>"))
    for direction, kind in itertools.product(("behind", "front"), ("block", "cylinder")):
        start = (0.42, 0.0) if direction == "behind" else (0.6, 0.0)
        objs = [Obj("first", kind, "medium", 0), Obj("second", kind, "medium", 1), Obj("third", kind, "medium", 2)]
        name = f"row_{kind[:3]}s_{'away_from' if direction == 'behind' else 'towards'}_robot"
        way = "away from the robot" if direction == "behind" else "towards the robot"
        out.append(Draft(name, "row", f"Line three {kind}s up in a row {way}.", objs,
                         [Placement("fixed", ("first",), xy=start), Placement("random", ("second", "third"), min_gap=0.05)],
                         [GoalSpec("Near", "second", (("other", "first"),), (("direction", direction), ("gap", 0.065))),
                          GoalSpec("Near", "third", (("other", "second"),), (("direction", direction), ("gap", 0.065)))],
                         instruction=f"make a row {way}: <second> {DIR_WORDS[direction]} <first>, "
                                     f"then <third> {DIR_WORDS[direction]} that"))
    return out


def family_at_pose() -> list[Draft]:
    out = []
    for kind, spot in itertools.product(("block", "cylinder"), SPOTS):
        if (kind, spot) == ("block", "centre"):
            continue  # the built-in place_at_center
        objs = [Obj("item", kind, "medium", 0), Obj("mark", "zone", (0.05, 0.05), "white")]
        name = f"{kind[:3]}_to_mark_{spot}"
        out.append(Draft(name, "at_pose", f"Move a {kind} onto a small white mark {SPOT_WORDS[spot]}.", objs,
                         [Placement("fixed", ("mark",), xy=SPOTS[spot]), Placement("random", ("item",), min_gap=0.06)],
                         [GoalSpec("AtPose", "item", (), (("xy", SPOTS[spot]), ("tol", 0.02)))],
                         instruction=f"move <item> onto the white mark {SPOT_WORDS[spot]}"))
    return out


def family_bridge() -> list[Draft]:
    """A third object laid across two side by side (the fingers close along x, so the pair is
    always side by side in y: one behind the other would leave no room for them)."""
    out = []
    for bases, apex in itertools.product(("block", "cylinder"), ("medium", "large")):
        gap = 0.05 if apex == "medium" else 0.06
        objs = [Obj("left", bases, "medium", 0), Obj("right", bases, "medium", 1),
                Obj("apex", "block", apex, 2, apex == "large")]
        name = f"bridge_{'wide_' if apex == 'large' else ''}block_over_{bases[:3]}s"
        if name == "bridge_block_over_blos":
            continue  # the built-in stack_pyramid
        out.append(Draft(name, "bridge", f"Two {bases}s side by side, a block laid across both.", objs,
                         [Placement("random", ("left", "right", "apex"), min_gap=0.05, yaw_range=0.0)],
                         [GoalSpec("Near", "right", (("other", "left"),), (("direction", "left"), ("gap", gap),
                                                                             ("tol", 0.015))),
                          GoalSpec("Bridge", "apex", (("left", "left"), ("right", "right")))],
                         instruction=f"set <right> just left of <left> and lay <apex> across the two {bases}s"))
    return out


def family_unstack() -> list[Draft]:
    out = []
    for top_kind, target in itertools.product(("block", "cylinder"), ("left", "right", "behind", "mark", "onto")):
        objs = [Obj("base", "block", "large", 0), Obj("top", top_kind, "medium", 1)]
        placements = [Placement("random", ("base",), min_gap=0.05)]
        if target == "mark":
            objs.append(Obj("mark", "zone", (0.05, 0.05), "white"))
            placements = [Placement("fixed", ("mark",), xy=SPOTS["far"])] + placements
            goal = GoalSpec("AtPose", "top", (), (("xy", SPOTS["far"]), ("tol", 0.02)))
            text = "take <top> off <base> and put it on the white mark at the far edge"
        elif target == "onto":
            objs.append(Obj("other", "block", "large", 2))
            placements = [Placement("random", ("base", "other"), min_gap=0.06)]
            goal = GoalSpec("On", "top", (("base", "other"),))
            text = "move <top> from <base> onto <other>"
        else:
            placements = [Placement("fixed", ("base",), xy=(0.5, 0.0))]
            goal = GoalSpec("Near", "top", (("other", "base"),), (("direction", target), ("gap", 0.075)))
            text = f"take <top> off <base> and set it down {DIR_WORDS[target]} it"
        name = f"unstack_{top_kind[:3]}_{'to_mark' if target == 'mark' else 'restack' if target == 'onto' else target}"
        out.append(Draft(name, "unstack", f"Take the top object off a stack ({target}).", objs,
                         placements + [Placement("on", ("top", "base"))], [goal], instruction=text))
    objs = [Obj("base", "block", "medium", 0), Obj("top", "block", "medium", 1), Obj("parking", "zone", (0.06, 0.06), "gray")]
    out.append(Draft("reverse_two_block_stack", "unstack", "Swap the order of a two-block stack.", objs,
                     [Placement("random", ("base", "parking"), min_gap=0.06), Placement("on", ("top", "base"))],
                     [GoalSpec("On", "base", (("base", "top"),))],
                     instruction="reverse the stack: <base> must end up on top of <top>",
                     oracle_goals=[GoalSpec("InZone", "top", (("zone", "parking"),)),
                                   GoalSpec("On", "base", (("base", "top"),))]))
    return out


def family_sort() -> list[Draft]:
    out = []
    slots = [(0.0, 0.035), (0.0, -0.035)]
    for per_zone, kind in itertools.product((1, 2), ("block", "cylinder")):
        if (per_zone, kind) == (2, "block"):
            continue  # the built-in sort_by_color
        objs = [Obj("zone_a", "zone", (0.1, 0.14), 0), Obj("zone_b", "zone", (0.1, 0.14), 1)]
        goals = []
        for z, zrole in enumerate(("zone_a", "zone_b")):
            for k in range(per_zone):
                role = f"{kind[:3]}_{z}{k}"
                objs.append(Obj(role, kind, "small", z))
                goals.append(GoalSpec("InZone", role, (("zone", zrole),),
                                      (("margin", 0.015), ("offset", slots[k] if per_zone == 2 else (0.0, 0.0)))))
        movers = tuple(o.role for o in objs if o.movable)
        name = f"sort_{per_zone * 2}_{kind}s_by_colour"
        out.append(Draft(name, "sort", f"Sort {kind}s into the zone of their own colour.", objs,
                         [Placement("fixed", ("zone_a",), xy=(0.6, 0.1)), Placement("fixed", ("zone_b",), xy=(0.6, -0.1)),
                          Placement("random", movers, region="near", min_gap=0.02)], goals,
                         instruction=f"sort the {kind}s by colour: each {kind} goes in the zone of its colour"))
    objs = [Obj("zone_a", "zone", (0.1, 0.14), 0), Obj("zone_b", "zone", (0.1, 0.14), 1),
            Obj("block_0", "block", "small", 2), Obj("cyl_0", "cylinder", "small", 3),
            Obj("block_1", "block", "small", 4), Obj("cyl_1", "cylinder", "small", 5)]
    goals = [GoalSpec("InZone", r, (("zone", z),), (("margin", 0.015), ("offset", s)))
             for r, z, s in (("block_0", "zone_a", slots[0]), ("block_1", "zone_a", slots[1]),
                             ("cyl_0", "zone_b", slots[0]), ("cyl_1", "zone_b", slots[1]))]
    out.append(Draft("sort_blocks_from_cylinders", "sort", "Sort by shape: blocks in one zone, cylinders in another.",
                     objs, [Placement("fixed", ("zone_a",), xy=(0.6, 0.1)), Placement("fixed", ("zone_b",), xy=(0.6, -0.1)),
                            Placement("random", ("block_0", "cyl_0", "block_1", "cyl_1"), region="near", min_gap=0.02)],
                     goals, instruction="sort by shape: both blocks in <zone_a>, both cylinders in <zone_b>"))
    return out


def family_combo() -> list[Draft]:
    """Two independent sub-tasks in one scene, in a stated order."""
    out = []
    firsts = {
        "stack": ([Obj("top", "block", "medium", 0), Obj("base", "block", "medium", 1)],
                  [GoalSpec("On", "top", (("base", "base"),), phrase="stack <top> on <base>")]),
        "cylstack": ([Obj("top", "cylinder", "medium", 0), Obj("base", "block", "large", 1)],
                     [GoalSpec("On", "top", (("base", "base"),), phrase="stand <top> on <base>")]),
        "beside": ([Obj("anchor", "block", "medium", 0), Obj("item", "cylinder", "medium", 1)],
                   [GoalSpec("Near", "item", (("other", "anchor"),), (("direction", "front"), ("gap", 0.07)),
                             phrase="put <item> in front of <anchor>")]),
    }
    seconds = {
        "zone": ([Obj("thing", "block", "small", 2), _zone(color=3)],
                 [GoalSpec("InZone", "thing", (("zone", "zone"),), (("margin", 0.02),), phrase="put <thing> in <zone>")]),
        "push": ([Obj("thing", "cylinder", "large", 2), _zone(color=3, size=(0.1, 0.1))],
                 [GoalSpec("Pushed", "thing", (("zone", "zone"),), (("margin", 0.025),),
                           phrase="push <thing> into <zone> at the far edge")]),
        "mark": ([Obj("thing", "cylinder", "medium", 2), Obj("mark", "zone", (0.05, 0.05), "white")],
                 [GoalSpec("AtPose", "thing", (), (("xy", SPOTS["near"]), ("tol", 0.02)),
                           phrase="move <thing> to the white mark close to the robot")]),
    }
    for (f, (fo, fg)), (s, (so, sg)) in itertools.product(firsts.items(), seconds.items()):
        if (f, s) == ("beside", "push"):
            continue  # the push stroke tends to knock the arranged pair apart (oracle ~70%)
        for order in ("first", "second"):
            goals = fg + sg if order == "first" else sg + fg
            objs = fo + so
            fixed = [Placement("fixed", ("mark",), xy=SPOTS["near"])] if s == "mark" else []
            fixed += [Placement("fixed", ("zone",), xy=SPOTS["far"])] if s == "push" else []
            fixed += [Placement("fixed", ("anchor",), xy=(0.55, 0.08))] if f == "beside" else []
            movers = tuple(o.role for o in objs if not any(p.roles == (o.role,) for p in fixed))
            name = f"{f}_then_{s}" if order == "first" else f"{s}_then_{f}"
            out.append(Draft(name, "combo", f"Two sub-tasks in order: {name.replace('_', ' ')}.", objs,
                             fixed + [Placement("random", movers, region="table", min_gap=0.03)], goals))
    return out


def family_multi() -> list[Draft]:
    """Scenes with two structures or an object between others: two stacks, one object between
    two anchors, a tower built inside a zone, two pushes, a bowl and a zone at once, swaps."""
    out = []
    for kinds in (("block", "block"), ("cylinder", "block"), ("block", "cylinder")):
        objs = [Obj("base_a", "block", "large", 0), Obj("top_a", kinds[0], "medium", 1),
                Obj("base_b", "block", "large", 2), Obj("top_b", kinds[1], "medium", 3)]
        name = f"two_stacks_{kinds[0][:3]}_and_{kinds[1][:3]}"
        out.append(Draft(name, "multi", "Build two separate two-high stacks.", objs,
                         [Placement("random", ("base_a", "base_b", "top_a", "top_b"), min_gap=0.035)],
                         [GoalSpec("On", "top_a", (("base", "base_a"),)), GoalSpec("On", "top_b", (("base", "base_b"),))],
                         instruction="make two stacks: <top_a> on <base_a>, and <top_b> on <base_b>"))
    for kind in ("block", "cylinder"):
        objs = [Obj("post_l", "block", "medium", 0), Obj("post_r", "block", "medium", 1), Obj("item", kind, "medium", 2)]
        out.append(Draft(f"{kind[:3]}_between_two_blocks", "multi", f"Put a {kind} midway between two blocks.", objs,
                         [Placement("fixed", ("post_r",), xy=(0.5, -0.07)), Placement("fixed", ("post_l",), xy=(0.5, 0.07)),
                          Placement("random", ("item",), min_gap=0.05)],
                         [GoalSpec("Near", "item", (("other", "post_r"),), (("direction", "left"), ("gap", 0.07)))],
                         instruction="put <item> in the gap between <post_l> and <post_r>"))
    objs = [_zone(color=0, size=(0.12, 0.12)), Obj("b0", "block", "large", 1), Obj("b1", "block", "medium", 2),
            Obj("b2", "block", "small", 3)]
    out.append(Draft("tower_of_three_in_zone", "multi", "Build a three-high tower inside a zone.", objs,
                     [Placement("fixed", ("zone",), xy=SPOTS["far"]), Placement("random", ("b0", "b1", "b2"), region="near",
                                                                                min_gap=0.03)],
                     [GoalSpec("InZone", "b0", (("zone", "zone"),), (("margin", 0.025),)),
                      GoalSpec("On", "b1", (("base", "b0"),)), GoalSpec("On", "b2", (("base", "b1"),))],
                     instruction="build a tower inside <zone>: <b0> first, then <b1>, then <b2> on top"))
    for kinds in (("block", "cylinder"), ("cylinder", "cylinder")):
        objs = [_zone(color=0, size=(0.1, 0.16)), Obj("first", kinds[0], "medium", 1), Obj("second", kinds[1], "medium", 2)]
        out.append(Draft(f"push_{kinds[0][:3]}_and_{kinds[1][:3]}_into_zone", "multi",
                         "Push two objects into one zone, one after the other.", objs,
                         [Placement("fixed", ("zone",), xy=SPOTS["far"]),
                          Placement("random", ("first", "second"), region="near", min_gap=0.05)],
                         [GoalSpec("Pushed", "first", (("zone", "zone"),), (("margin", 0.02), ("offset", (0.0, 0.04)))),
                          GoalSpec("Pushed", "second", (("zone", "zone"),), (("margin", 0.02), ("offset", (0.0, -0.04))))],
                         instruction="push <first> and then <second> into <zone> without picking them up"))
    for kind in ("block", "cylinder"):
        objs = [Obj("bowl", "bowl", 0.06, 0), _zone(color=1), Obj("to_bowl", "cylinder", "small", 2),
                Obj("to_zone", kind, "medium", 3)]
        out.append(Draft(f"bowl_and_zone_{kind[:3]}", "multi", "Put one object in a bowl and another in a zone.", objs,
                         [Placement("fixed", ("bowl",), xy=SPOTS["left"]), Placement("fixed", ("zone",), xy=SPOTS["right"]),
                          Placement("random", ("to_bowl", "to_zone"), min_gap=0.04)],
                         [GoalSpec("InZone", "to_bowl", (("zone", "bowl"),), (("margin", 0.015),)),
                          GoalSpec("InZone", "to_zone", (("zone", "zone"),), (("margin", 0.02),))],
                         instruction="drop <to_bowl> into <bowl> on the left and put <to_zone> in <zone> on the right"))
    for kinds in (("block", "cylinder"), ("cylinder", "cylinder")):
        objs = [Obj("a", kinds[0], "medium", 0), Obj("b", kinds[1], "medium", 1),
                Obj("parking", "zone", (0.06, 0.06), "gray")]
        out.append(Draft(f"swap_{kinds[0][:3]}_with_{kinds[1][:3]}", "multi", "Exchange the places of two objects.",
                         objs, [Placement("random", ("a", "b", "parking"), min_gap=0.05)],
                         [GoalSpec("AtPose", "a", (), (("xy", "self.start_b"),)),
                          GoalSpec("AtPose", "b", (), (("xy", "self.start_a"),))],
                         instruction="swap the places of <a> and <b>", remember_start=("a", "b"),
                         oracle_goals=[GoalSpec("InZone", "a", (("zone", "parking"),)),
                                       GoalSpec("AtPose", "b", (), (("xy", "self.start_a"),)),
                                       GoalSpec("AtPose", "a", (), (("xy", "self.start_b"),))]))
    corners = {"front_left": (0.42, 0.14), "front_right": (0.42, -0.14), "back_left": (0.6, 0.14),
               "back_right": (0.6, -0.14)}
    for corner, xy in corners.items():
        objs = [Obj("item", "block", "medium", 0), Obj("mark", "zone", (0.05, 0.05), "white")]
        words = corner.replace("_", "-").replace("back", "far").replace("front", "near")
        out.append(Draft(f"block_to_{corner}_corner", "at_pose", f"Move a block to the {words} corner mark.", objs,
                         [Placement("fixed", ("mark",), xy=xy), Placement("random", ("item",), min_gap=0.06)],
                         [GoalSpec("AtPose", "item", (), (("xy", xy), ("tol", 0.02)))],
                         instruction=f"carry <item> to the white mark in the {words} corner of the table"))
    return out


FAMILIES = (family_stack, family_stack_in_zone, family_zone, family_push, family_bowl, family_beside,
            family_at_pose, family_bridge, family_unstack, family_sort, family_combo, family_multi)


def procedural_space() -> list[Draft]:
    """Every draft the procedural generator can write, unique by name, in a fixed order."""
    seen, out = set(), []
    for fam in FAMILIES:
        for d in fam():
            if d.name not in seen:
                seen.add(d.name)
                out.append(d)
    return out


# -- choosing what to try -------------------------------------------------------------------------

def proposal_from_draft(draft: Draft) -> Proposal:
    return Proposal(name=draft.name, description=draft.summary, instruction=draft.text, draft=draft,
                    meta={"family": draft.family, **draft.meta})


def spec_hash(draft: Draft) -> str:
    """Stable id of a procedural 'prompt' (the draft), recorded like an LLM prompt hash."""
    return hashlib.sha256(render(draft).encode()).hexdigest()[:16]


def explore(drafts: list[Draft], taken: set[str], novelty, rng: np.random.Generator):
    """Yield proposals most-novel-first: each time, the untried draft whose highest similarity to
    everything in ``novelty`` (a NoveltyIndex the caller grows as tasks are admitted) is lowest.
    Ties (and the start) are broken by ``rng``. Every draft is embedded once, up front."""
    from generation.embedding import canonical_text, embed

    pool = [d for d in drafts if d.name not in taken]
    pool = [pool[i] for i in rng.permutation(len(pool))]
    vecs = embed([canonical_text(render(d), d.text) for d in pool])
    alive = np.ones(len(pool), bool)
    while alive.any():
        sims = novelty.vectors @ vecs.T if len(novelty.names) else np.zeros((1, len(pool)))
        score = np.where(alive, sims.max(axis=0), np.inf)
        best = int(np.argmin(score))
        alive[best] = False
        yield proposal_from_draft(pool[best])


def curriculum(target: Draft, max_steps: int | None = None) -> list[Proposal]:
    """Stepping stones towards ``target``, simpler first, then the target itself.

    Stones are the target's goals one at a time (where a goal stands alone: a Bridge needs its
    Near first) and then growing prefixes of its goal list, each with only the objects involved."""
    n = len(target.goals)
    stones: list[list[int]] = []
    for i, g in enumerate(target.goals):
        if g.pred != "Bridge":
            stones.append([i])
    stones += [list(range(k)) for k in range(2, n)]
    seen, out = set(), []
    for idx in stones:
        key = _stone_signature(target, idx)
        if key in seen or len(idx) == n:
            continue  # the same exercise as an earlier stone (e.g. "block 0 in zone A" / "block 1 in zone A")
        seen.add(key)
        name = f"{target.name[:36]}_step{len(out) + 1}"
        out.append(proposal_from_draft(subset(target, idx, name)))
    out.append(proposal_from_draft(target))
    return out[-max_steps:] if max_steps else out


def _stone_signature(draft: Draft, idx: list[int]) -> tuple:
    """What a stone asks, up to which same-kind object plays which role: per goal the predicate,
    the kinds and sizes involved and the parameters (slot offsets aside)."""
    def obj_key(role):
        o = draft.obj(role)
        return o.kind, str(o.size)

    return tuple((g.pred, obj_key(g.obj), tuple((k, obj_key(r)) for k, r in g.refs),
                  tuple(p for p in g.params if p[0] != "offset")) for g in (draft.goals[i] for i in idx))


def draft_from_task(name: str) -> Draft:
    """Describe a registered task as a draft (built at seed 0), so its goals can be cut into
    stepping stones. Relational goals carry over (On, InZone, Pushed, Near, Bridge, and AtPose
    at the seed-0 target); objects keep their kinds and sizes, colours stay random but shared
    colours stay shared (colour as a role), starting stacks stay stacked."""
    import dataclasses

    from envs.core.scene import ObjectSpec, Scene
    from envs.registry import get_task

    cls = get_task(name)
    task, rng = cls(), np.random.default_rng(0)
    scene = Scene(rng)
    task.build(scene, rng)
    goals = task.goals()
    roles = {id(v): k for k, v in vars(task).items() if isinstance(v, ObjectSpec) and k.isidentifier()}
    role = {o.name: roles.get(id(o), o.name if o.name.isidentifier() else f"obj{i}") for i, o in enumerate(scene.objects)}
    palette = {}
    objs = []
    for o in scene.objects:
        color = palette.setdefault(o.color, len(palette))
        if o.kind == "block":
            size = min(BLOCK_WORDS, key=lambda w: abs(BLOCK_WORDS[w] - 2 * o.half_size[0]))
        elif o.kind == "cylinder":
            size = min(CYL_WORDS, key=lambda w: abs(CYL_WORDS[w] - o.half_size[0]))
        elif o.kind == "zone":
            size = (round(2 * o.half_size[0], 3), round(2 * o.half_size[1], 3))
        elif o.kind == "bowl":
            size = round(o.half_size[0], 3)
        else:
            raise ValueError(f"task {name!r} has a {o.kind}; goal-directed procedural curricula support "
                             "blocks, cylinders, zones and bowls")
        objs.append(Obj(role[o.name], o.kind, size, color))
    specs = []
    for g in goals:
        refs, params = [], []
        for f in dataclasses.fields(g):
            v = getattr(g, f.name)
            if f.name == "obj":
                continue
            if isinstance(v, ObjectSpec):
                refs.append((f.name, role[v.name]))
            elif v != f.default:
                params.append((f.name, tuple(round(float(x), 3) for x in v) if isinstance(v, (tuple, list, np.ndarray))
                               else v))
        specs.append(GoalSpec(type(g).__name__, role[g.obj.name], tuple(refs), tuple(params)))
    stacks = [Placement("on", (role[o.name], role[b.name])) for o in scene.objects for b in scene.objects
              if o is not b and o.movable and abs(o.pos[2] - (b.pos[2] + b.half_size[2] + o.half_size[2])) < 1e-3
              and np.linalg.norm(o.pos[:2] - b.pos[:2]) < 1e-3]
    stacked = {p.roles[0] for p in stacks}
    # where each object starts, over a few seeds: one of at most two spots every time (e.g. zones
    # that swap sides) -> fixed at the first, otherwise random within the smallest region that
    # held it every time
    seen = {o.name: [] for o in scene.objects}
    for seed in range(1, 6):
        s_rng = np.random.default_rng(seed)
        s_scene = Scene(s_rng)
        cls().build(s_scene, s_rng)
        for o in s_scene.objects:
            seen[o.name].append(o.pos[:2].copy())
    fixed, groups = [], {}
    for o in scene.objects:
        r = role[o.name]
        if r in stacked:
            continue
        xy = np.array([o.pos[:2]] + seen[o.name])
        if len({tuple(np.round(p, 4)) for p in xy}) <= 2:
            fixed.append(Placement("fixed", (r,), xy=(round(float(xy[0, 0]), 3), round(float(xy[0, 1]), 3))))
        else:
            groups.setdefault(_smallest_region(xy), []).append(r)
    randoms = [Placement("random", tuple(rs), region=reg, min_gap=0.03) for reg, rs in groups.items()]
    return Draft(name, "from_task", (inspect_doc(cls) or f"The task {name}."), objs,
                 fixed + randoms + stacks, specs, instruction="", meta={"target": name})


def _smallest_region(xy: np.ndarray) -> str:
    from envs.core.scene import REGIONS

    def area(r):
        (x0, x1), (y0, y1) = REGIONS[r]
        return (x1 - x0) * (y1 - y0)

    for r in sorted(REGIONS, key=area):
        (x0, x1), (y0, y1) = REGIONS[r]
        if np.all((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)):
            return r
    return "table"


def inspect_doc(cls) -> str:
    import inspect

    module = inspect.getmodule(cls)
    return ((module.__doc__ if module else "") or "").strip().split("\n")[0]
