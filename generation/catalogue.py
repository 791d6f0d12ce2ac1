"""The procedural generator's catalogue: every task draft it can write, as data.

Each family below spells out, field by field, the objects (role, kind, size, colour), how they
start (:class:`~generation.codegen_procedural.Placement`) and the goals over them
(:class:`~generation.codegen_procedural.GoalSpec`), over a few axes of variation: object kinds and
sizes, colour roles (random distinct colours, fixed colours named in the instruction, "the block
that matches the zone"), counts, goal predicates (On, InZone, Near, AtPose, Bridge, Pushed),
fixed spots and regions, and goal orders. Every draft in the space was checked to be solvable by
the goal-derived oracle (>= 90% over 12 seeds); drafts that duplicate a built-in are left out.
"""
from __future__ import annotations

import itertools

from generation.codegen_procedural import DIR_WORDS, Draft, GoalSpec, Obj, Placement

# Fixed spots on the table (x, y in m; robot at the origin, +x away from it, +y to its left)
SPOTS = {"left": (0.5, 0.13), "right": (0.5, -0.13), "far": (0.6, 0.0), "near": (0.42, 0.0),
         "centre": (0.5, 0.0)}
SPOT_WORDS = {"left": "on the left", "right": "on the right", "far": "at the far edge of the table",
              "near": "close to the robot", "centre": "in the middle of the table"}
FIXED_PALETTES = [("red", "blue", "yellow"), ("green", "orange", "purple"), ("cyan", "pink", "brown")]


def _palette(i: int) -> tuple[str, ...]:
    return FIXED_PALETTES[i % len(FIXED_PALETTES)]


def _zone(role: str = "zone", color: object = 0, size: tuple[float, float] = (0.1, 0.1)) -> Obj:
    return Obj(role=role, kind="zone", size=size, color=color)


def _mark() -> Obj:
    """A small white zone that marks a target point."""
    return Obj(role="mark", kind="zone", size=(0.05, 0.05), color="white")


def _placed_at(role: str, spot: str | None) -> list[Placement]:
    return [Placement.fixed(role=role, xy=SPOTS[spot])] if spot else []


def _where(spot: str | None) -> str:
    return f" {SPOT_WORDS[spot]}" if spot else ""


def _spot_tag(spot: str | None) -> str:
    return f"_{spot}" if spot else ""


def family_stack() -> list[Draft]:
    out = []
    short = {"block": "block", "cylinder": "cyl"}
    for top, base, sizes, colors in itertools.product(short, short, ("same", "graded"), ("random", "fixed")):
        top_size, base_size = ("medium", "medium") if sizes == "same" else ("small", "large")
        top_color, base_color = (0, 1) if colors == "random" else _palette(len(out))[:2]
        graded = sizes == "graded"
        out.append(Draft(
            name=f"stack_{'graded_' if graded else ''}{short[top]}_on_{short[base]}"
                 + (f"_{top_color}_{base_color}" if colors == "fixed" else ""),
            family="stack", summary=f"Put one {top} on top of a {base}.",
            objects=[Obj(role="top", kind=top, size=top_size, color=top_color, say_size=graded),
                     Obj(role="base", kind=base, size=base_size, color=base_color, say_size=graded)],
            placements=[Placement.random(roles=("top", "base"), min_gap=0.05)],
            goals=[GoalSpec(pred="On", obj="top", refs={"base": "base"}, phrase="put <top> on <base>")]))
    for top, sizes, colors in itertools.product(("block", "cylinder"), ("same", "graded"), ("random", "fixed")):
        size = ("medium",) * 3 if sizes == "same" else ("large", "medium", "small")
        color = (0, 1, 2) if colors == "random" else _palette(len(out))
        graded = sizes == "graded"
        words = "largest at the bottom, smallest on top" if graded else "one on another"
        out.append(Draft(
            name=f"tower_{'graded' if graded else 'even'}_{'cyl_top' if top == 'cylinder' else 'blocks'}"
                 + (f"_{'_'.join(color)}" if colors == "fixed" else ""),
            family="tower", summary=f"Build a three-high tower ({words}).",
            objects=[Obj(role="b0", kind="block", size=size[0], color=color[0], say_size=graded),
                     Obj(role="b1", kind="block", size=size[1], color=color[1], say_size=graded),
                     Obj(role="b2", kind=top, size=size[2], color=color[2], say_size=graded)],
            placements=[Placement.random(roles=("b0", "b1", "b2"), min_gap=0.04)],
            goals=[GoalSpec(pred="On", obj="b1", refs={"base": "b0"}, phrase="put <b1> on <b0>"),
                   GoalSpec(pred="On", obj="b2", refs={"base": "b1"}, phrase="put <b2> on <b1>")],
            instruction=f"build a tower, {words}: <b0> at the bottom, then <b1>, then <b2>"))
    return out


def family_stack_in_zone() -> list[Draft]:
    out = []
    for base, top, spot in itertools.product(("block", "cylinder"), ("block", "cylinder"),
                                             (None, "left", "right", "far")):
        where = _where(spot)
        out.append(Draft(
            name=f"stack_{top[:3]}_on_{base[:3]}_in_zone{_spot_tag(spot)}",
            family="stack_in_zone", summary=f"Build a two-high stack inside a zone{where}.",
            objects=[_zone(color=0, size=(0.11, 0.11)), Obj(role="base", kind=base, size="large", color=1),
                     Obj(role="top", kind=top, size="small", color=2)],
            placements=_placed_at("zone", spot) + [Placement.random(roles=("zone", "base", "top"), min_gap=0.04)],
            goals=[GoalSpec(pred="InZone", obj="base", refs={"zone": "zone"}, params={"margin": 0.02},
                            phrase=f"put <base> in <zone>{where}"),
                   GoalSpec(pred="On", obj="top", refs={"base": "base"}, phrase="put <top> on it")],
            instruction=f"move <base> into <zone>{where} and stack <top> on it"))
    return out


def family_zone() -> list[Draft]:
    """One to three objects into one zone, optionally at a fixed spot, with colour roles."""
    out = []
    sets = {"block": ("block",), "cyl": ("cylinder",), "pair_blocks": ("block", "block"),
            "block_and_cyl": ("block", "cylinder"), "pair_cyls": ("cylinder", "cylinder"),
            "three": ("block", "cylinder", "block")}
    offsets = {1: [(0.0, 0.0)], 2: [(0.0, 0.04), (0.0, -0.04)], 3: [(0.0, 0.06), (0.0, 0.0), (0.0, -0.06)]}
    zone_size = {1: (0.1, 0.1), 2: (0.1, 0.16), 3: (0.08, 0.18)}
    for (tag, kinds), spot in itertools.product(sets.items(), (None, "left", "right", "far", "near")):
        n = len(kinds)
        if n == 3 and spot not in ("far", "near"):
            continue  # a 0.18 m zone only leaves room for three objects when it sits at one edge
        roles = [f"item{i}" for i in range(n)]
        where = _where(spot)
        if spot:  # three objects start on the other side of the table from the zone
            region = {"far": "near", "near": "far"}[spot] if n == 3 else "table"
            placements = _placed_at("zone", spot) + [Placement.random(roles=tuple(roles), region=region,
                                                                      min_gap=0.03)]
        else:
            placements = [Placement.random(roles=("zone", *roles), min_gap=0.03)]
        out.append(Draft(
            name=f"zone_{tag}{_spot_tag(spot)}", family="zone",
            summary=f"Gather {n} object(s) into a zone{where}.",
            objects=[_zone(color=0, size=zone_size[n])]
                    + [Obj(role=role, kind=kind, size="small" if n == 3 else "medium", color=i + 1)
                       for i, (role, kind) in enumerate(zip(roles, kinds))],
            placements=placements,
            goals=[GoalSpec(pred="InZone", obj=role, refs={"zone": "zone"}, params={"margin": 0.015, "offset": offset},
                            phrase=f"put <{role}> in <zone>") for role, offset in zip(roles, offsets[n])],
            instruction=f"put {' and '.join(f'<{r}>' for r in roles)} in <zone>{where}"))
    # colour as a role: the object that matches the zone's colour, among distractors
    for kind, distractors in itertools.product(("block", "cylinder"), (1, 2)):
        others = [f"other{i}" for i in range(distractors)]
        out.append(Draft(
            name=f"match_{kind}_to_zone_{distractors + 1}_choices", family="match_zone",
            summary=f"Pick the {kind} whose colour matches the zone among {distractors + 1}.",
            objects=[_zone(color=0), Obj(role="match", kind=kind, size="medium", color=0)]
                    + [Obj(role=role, kind=kind, size="medium", color=i + 1) for i, role in enumerate(others)],
            placements=[Placement.random(roles=("zone", "match", *others), min_gap=0.04)],
            goals=[GoalSpec(pred="InZone", obj="match", refs={"zone": "zone"}, params={"margin": 0.02})],
            instruction=f"of the {kind}s, put the one with the zone's colour ({{zone.color}}) into the zone"))
    return out


def family_push() -> list[Draft]:
    out = []
    for kind, size, spot in itertools.product(("block", "cylinder"), ("medium", "large"),
                                              (None, "left", "right", "far")):
        where = _where(spot)
        out.append(Draft(
            name=f"push_{'big_' if size == 'large' else ''}{kind[:3]}_to_zone{_spot_tag(spot)}", family="push",
            summary=f"Push a {kind} along the table into a zone{where}.",
            objects=[Obj(role="item", kind=kind, size=size, color=0, say_size=size == "large"),
                     _zone(color=1, size=(0.11, 0.11))],
            placements=_placed_at("zone", spot) + [Placement.random(roles=("item", "zone"), min_gap=0.05)],
            goals=[GoalSpec(pred="Pushed", obj="item", refs={"zone": "zone"}, params={"margin": 0.025})],
            instruction=f"without lifting it, push <item> into <zone>{where}"))
    return out


def family_bowl() -> list[Draft]:
    out = []
    for items, spot in itertools.product((("cylinder",), ("block",), ("cylinder", "cylinder")),
                                         (None, "left", "right", "far")):
        roles = [f"item{i}" for i in range(len(items))]
        offsets = [(0.0, 0.0)] if len(items) == 1 else [(0.0, 0.025), (0.0, -0.025)]
        where = _where(spot)
        name = f"bowl_{'two_cyls' if len(items) == 2 else items[0][:3]}{_spot_tag(spot)}"
        if name == "bowl_cyl":
            continue  # that is the built-in place_in_bowl
        out.append(Draft(
            name=name, family="bowl", summary=f"Drop {len(items)} object(s) into a bowl{where}.",
            objects=[Obj(role="bowl", kind="bowl", size=0.07 if len(items) == 2 else 0.06, color=0)]
                    + [Obj(role=role, kind=kind, size="small", color=i + 1)
                       for i, (role, kind) in enumerate(zip(roles, items))],
            placements=_placed_at("bowl", spot) + [Placement.random(roles=("bowl", *roles), min_gap=0.04)],
            goals=[GoalSpec(pred="InZone", obj=role, refs={"zone": "bowl"}, params={"margin": 0.015, "offset": offset})
                   for role, offset in zip(roles, offsets)],
            instruction=f"drop {' and '.join(f'<{r}>' for r in roles)} into <bowl>{where}"))
    return out


def family_beside() -> list[Draft]:
    out = []
    for kind, anchor, side in itertools.product(("block", "cylinder"), ("block", "cylinder"), DIR_WORDS):
        out.append(Draft(
            name=f"{kind[:3]}_{side}_of_{anchor[:3]}", family="beside",
            summary=f"Place a {kind} {DIR_WORDS[side]} a {anchor}.",
            objects=[Obj(role="anchor", kind=anchor, size="medium", color=0),
                     Obj(role="item", kind=kind, size="medium", color=1)],
            placements=[Placement.fixed(role="anchor", xy=(0.5, 0.0)), Placement.random(roles=("item",), min_gap=0.06)],
            goals=[GoalSpec(pred="Near", obj="item", refs={"other": "anchor"}, params={"direction": side, "gap": 0.07},
                            phrase=f"put <item> {DIR_WORDS[side]} <anchor>")]))
    for kinds in (("block", "block", "block"), ("cylinder", "block", "cylinder"), ("block", "cylinder", "block")):
        out.append(Draft(
            name=f"flank_{kinds[1][:3]}_with_{kinds[0][:3]}_and_{kinds[2][:3]}", family="flank",
            summary="Put two objects on either side of a third.",
            objects=[Obj(role="middle", kind=kinds[1], size="medium", color=0),
                     Obj(role="a", kind=kinds[0], size="medium", color=1),
                     Obj(role="b", kind=kinds[2], size="medium", color=2)],
            placements=[Placement.fixed(role="middle", xy=(0.5, 0.0)),
                        Placement.random(roles=("a", "b"), min_gap=0.05)],
            goals=[GoalSpec(pred="Near", obj="a", refs={"other": "middle"},
                            params={"direction": "left", "gap": 0.07}),
                   GoalSpec(pred="Near", obj="b", refs={"other": "middle"},
                            params={"direction": "right", "gap": 0.07})],
            instruction="put <a> on the left and <b> on the right of <middle>"))
    for direction, kind in itertools.product(("behind", "front"), ("block", "cylinder")):
        way = "away from the robot" if direction == "behind" else "towards the robot"
        out.append(Draft(
            name=f"row_{kind[:3]}s_{'away_from' if direction == 'behind' else 'towards'}_robot", family="row",
            summary=f"Line three {kind}s up in a row {way}.",
            objects=[Obj(role=role, kind=kind, size="medium", color=i)
                     for i, role in enumerate(("first", "second", "third"))],
            placements=[Placement.fixed(role="first", xy=(0.42, 0.0) if direction == "behind" else (0.6, 0.0)),
                        Placement.random(roles=("second", "third"), min_gap=0.05)],
            goals=[GoalSpec(pred="Near", obj="second", refs={"other": "first"},
                            params={"direction": direction, "gap": 0.065}),
                   GoalSpec(pred="Near", obj="third", refs={"other": "second"},
                            params={"direction": direction, "gap": 0.065})],
            instruction=f"make a row {way}: <second> {DIR_WORDS[direction]} <first>, "
                        f"then <third> {DIR_WORDS[direction]} that"))
    return out


def family_at_pose() -> list[Draft]:
    out = []
    for kind, spot in itertools.product(("block", "cylinder"), SPOTS):
        if (kind, spot) == ("block", "centre"):
            continue  # the built-in place_at_center
        out.append(Draft(
            name=f"{kind[:3]}_to_mark_{spot}", family="at_pose",
            summary=f"Move a {kind} onto a small white mark {SPOT_WORDS[spot]}.",
            objects=[Obj(role="item", kind=kind, size="medium", color=0), _mark()],
            placements=[Placement.fixed(role="mark", xy=SPOTS[spot]), Placement.random(roles=("item",), min_gap=0.06)],
            goals=[GoalSpec(pred="AtPose", obj="item", params={"xy": SPOTS[spot], "tol": 0.02})],
            instruction=f"move <item> onto the white mark {SPOT_WORDS[spot]}"))
    return out


def family_bridge() -> list[Draft]:
    """A third object laid across two side by side (the fingers close along x, so the pair is
    always side by side in y: one behind the other would leave no room for them)."""
    out = []
    for bases, apex in itertools.product(("block", "cylinder"), ("medium", "large")):
        name = f"bridge_{'wide_' if apex == 'large' else ''}block_over_{bases[:3]}s"
        if name == "bridge_block_over_blos":
            continue  # the built-in stack_pyramid
        out.append(Draft(
            name=name, family="bridge", summary=f"Two {bases}s side by side, a block laid across both.",
            objects=[Obj(role="left", kind=bases, size="medium", color=0),
                     Obj(role="right", kind=bases, size="medium", color=1),
                     Obj(role="apex", kind="block", size=apex, color=2, say_size=apex == "large")],
            placements=[Placement.random(roles=("left", "right", "apex"), min_gap=0.05, yaw_range=0.0)],
            goals=[GoalSpec(pred="Near", obj="right", refs={"other": "left"},
                            params={"direction": "left", "gap": 0.05 if apex == "medium" else 0.06, "tol": 0.015}),
                   GoalSpec(pred="Bridge", obj="apex", refs={"left": "left", "right": "right"})],
            instruction=f"set <right> just left of <left> and lay <apex> across the two {bases}s"))
    return out


def family_unstack() -> list[Draft]:
    out = []
    for top_kind, target in itertools.product(("block", "cylinder"), ("left", "right", "behind", "mark", "onto")):
        objects = [Obj(role="base", kind="block", size="large", color=0),
                   Obj(role="top", kind=top_kind, size="medium", color=1)]
        if target == "mark":
            objects.append(_mark())
            placements = [Placement.fixed(role="mark", xy=SPOTS["far"]),
                          Placement.random(roles=("base",), min_gap=0.05)]
            goal = GoalSpec(pred="AtPose", obj="top", params={"xy": SPOTS["far"], "tol": 0.02})
            text = "take <top> off <base> and put it on the white mark at the far edge"
        elif target == "onto":
            objects.append(Obj(role="other", kind="block", size="large", color=2))
            placements = [Placement.random(roles=("base", "other"), min_gap=0.06)]
            goal = GoalSpec(pred="On", obj="top", refs={"base": "other"})
            text = "move <top> from <base> onto <other>"
        else:
            placements = [Placement.fixed(role="base", xy=(0.5, 0.0))]
            goal = GoalSpec(pred="Near", obj="top", refs={"other": "base"}, params={"direction": target, "gap": 0.075})
            text = f"take <top> off <base> and set it down {DIR_WORDS[target]} it"
        tag = {"mark": "to_mark", "onto": "restack"}.get(target, target)
        out.append(Draft(
            name=f"unstack_{top_kind[:3]}_{tag}", family="unstack",
            summary=f"Take the top object off a stack ({target}).",
            objects=objects, placements=placements + [Placement.on(top="top", base="base")], goals=[goal],
            instruction=text))
    out.append(Draft(
        name="reverse_two_block_stack", family="unstack", summary="Swap the order of a two-block stack.",
        objects=[Obj(role="base", kind="block", size="medium", color=0),
                 Obj(role="top", kind="block", size="medium", color=1),
                 Obj(role="parking", kind="zone", size=(0.06, 0.06), color="gray")],
        placements=[Placement.random(roles=("base", "parking"), min_gap=0.06), Placement.on(top="top", base="base")],
        goals=[GoalSpec(pred="On", obj="base", refs={"base": "top"})],
        instruction="reverse the stack: <base> must end up on top of <top>",
        oracle_goals=[GoalSpec(pred="InZone", obj="top", refs={"zone": "parking"}),
                      GoalSpec(pred="On", obj="base", refs={"base": "top"})]))
    return out


def family_sort() -> list[Draft]:
    out = []
    slots = [(0.0, 0.035), (0.0, -0.035)]
    zones = [Obj(role="zone_a", kind="zone", size=(0.1, 0.14), color=0),
             Obj(role="zone_b", kind="zone", size=(0.1, 0.14), color=1)]
    zone_spots = [Placement.fixed(role="zone_a", xy=(0.6, 0.1)), Placement.fixed(role="zone_b", xy=(0.6, -0.1))]
    for per_zone, kind in itertools.product((1, 2), ("block", "cylinder")):
        if (per_zone, kind) == (2, "block"):
            continue  # the built-in sort_by_color
        objects, goals = list(zones), []
        for z, zone in enumerate(("zone_a", "zone_b")):
            for k in range(per_zone):
                role = f"{kind[:3]}_{z}{k}"
                objects.append(Obj(role=role, kind=kind, size="small", color=z))  # the colour of its zone
                goals.append(GoalSpec(pred="InZone", obj=role, refs={"zone": zone},
                                      params={"margin": 0.015, "offset": slots[k] if per_zone == 2 else (0.0, 0.0)}))
        movers = tuple(o.role for o in objects if o.movable)
        out.append(Draft(
            name=f"sort_{per_zone * 2}_{kind}s_by_colour", family="sort",
            summary=f"Sort {kind}s into the zone of their own colour.", objects=objects,
            placements=zone_spots + [Placement.random(roles=movers, region="near", min_gap=0.02)], goals=goals,
            instruction=f"sort the {kind}s by colour: each {kind} goes in the zone of its colour"))
    sorting = {"block_0": ("zone_a", slots[0]), "block_1": ("zone_a", slots[1]),
               "cyl_0": ("zone_b", slots[0]), "cyl_1": ("zone_b", slots[1])}
    out.append(Draft(
        name="sort_blocks_from_cylinders", family="sort",
        summary="Sort by shape: blocks in one zone, cylinders in another.",
        objects=[*zones, Obj(role="block_0", kind="block", size="small", color=2),
                 Obj(role="cyl_0", kind="cylinder", size="small", color=3),
                 Obj(role="block_1", kind="block", size="small", color=4),
                 Obj(role="cyl_1", kind="cylinder", size="small", color=5)],
        placements=zone_spots + [Placement.random(roles=("block_0", "cyl_0", "block_1", "cyl_1"), region="near",
                                                  min_gap=0.02)],
        goals=[GoalSpec(pred="InZone", obj=role, refs={"zone": zone}, params={"margin": 0.015, "offset": slot})
               for role, (zone, slot) in sorting.items()],
        instruction="sort by shape: both blocks in <zone_a>, both cylinders in <zone_b>"))
    return out


def family_combo() -> list[Draft]:
    """Two independent sub-tasks in one scene, in a stated order."""
    firsts = {
        "stack": {"objects": [Obj(role="top", kind="block", size="medium", color=0),
                              Obj(role="base", kind="block", size="medium", color=1)],
                  "goals": [GoalSpec(pred="On", obj="top", refs={"base": "base"}, phrase="stack <top> on <base>")]},
        "cylstack": {"objects": [Obj(role="top", kind="cylinder", size="medium", color=0),
                                 Obj(role="base", kind="block", size="large", color=1)],
                     "goals": [GoalSpec(pred="On", obj="top", refs={"base": "base"}, phrase="stand <top> on <base>")]},
        "beside": {"objects": [Obj(role="anchor", kind="block", size="medium", color=0),
                               Obj(role="item", kind="cylinder", size="medium", color=1)],
                   "goals": [GoalSpec(pred="Near", obj="item", refs={"other": "anchor"},
                                      params={"direction": "front", "gap": 0.07},
                                      phrase="put <item> in front of <anchor>")],
                   "fixed": [Placement.fixed(role="anchor", xy=(0.55, 0.08))]},
    }
    seconds = {
        "zone": {"objects": [Obj(role="thing", kind="block", size="small", color=2), _zone(color=3)],
                 "goals": [GoalSpec(pred="InZone", obj="thing", refs={"zone": "zone"}, params={"margin": 0.02},
                                    phrase="put <thing> in <zone>")]},
        "push": {"objects": [Obj(role="thing", kind="cylinder", size="large", color=2),
                             _zone(color=3, size=(0.1, 0.1))],
                 "goals": [GoalSpec(pred="Pushed", obj="thing", refs={"zone": "zone"}, params={"margin": 0.025},
                                    phrase="push <thing> into <zone> at the far edge")],
                 "fixed": [Placement.fixed(role="zone", xy=SPOTS["far"])]},
        "mark": {"objects": [Obj(role="thing", kind="cylinder", size="medium", color=2), _mark()],
                 "goals": [GoalSpec(pred="AtPose", obj="thing", params={"xy": SPOTS["near"], "tol": 0.02},
                                    phrase="move <thing> to the white mark close to the robot")],
                 "fixed": [Placement.fixed(role="mark", xy=SPOTS["near"])]},
    }
    out = []
    for (f, first), (s, second) in itertools.product(firsts.items(), seconds.items()):
        if (f, s) == ("beside", "push"):
            continue  # the push stroke tends to knock the arranged pair apart (oracle ~70%)
        objects = first["objects"] + second["objects"]
        fixed = second.get("fixed", []) + first.get("fixed", [])
        movers = tuple(o.role for o in objects if not any(p.roles == (o.role,) for p in fixed))
        for name, goals in ((f"{f}_then_{s}", first["goals"] + second["goals"]),
                            (f"{s}_then_{f}", second["goals"] + first["goals"])):
            out.append(Draft(
                name=name, family="combo", summary=f"Two sub-tasks in order: {name.replace('_', ' ')}.",
                objects=list(objects),
                placements=fixed + [Placement.random(roles=movers, region="table", min_gap=0.03)],
                goals=goals))
    return out


def family_multi() -> list[Draft]:
    """Scenes with two structures or an object between others: two stacks, one object between
    two anchors, a tower built inside a zone, two pushes, a bowl and a zone at once, swaps."""
    out = []
    for kinds in (("block", "block"), ("cylinder", "block"), ("block", "cylinder")):
        out.append(Draft(
            name=f"two_stacks_{kinds[0][:3]}_and_{kinds[1][:3]}", family="multi",
            summary="Build two separate two-high stacks.",
            objects=[Obj(role="base_a", kind="block", size="large", color=0),
                     Obj(role="top_a", kind=kinds[0], size="medium", color=1),
                     Obj(role="base_b", kind="block", size="large", color=2),
                     Obj(role="top_b", kind=kinds[1], size="medium", color=3)],
            placements=[Placement.random(roles=("base_a", "base_b", "top_a", "top_b"), min_gap=0.035)],
            goals=[GoalSpec(pred="On", obj="top_a", refs={"base": "base_a"}),
                   GoalSpec(pred="On", obj="top_b", refs={"base": "base_b"})],
            instruction="make two stacks: <top_a> on <base_a>, and <top_b> on <base_b>"))
    for kind in ("block", "cylinder"):
        out.append(Draft(
            name=f"{kind[:3]}_between_two_blocks", family="multi", summary=f"Put a {kind} midway between two blocks.",
            objects=[Obj(role="post_l", kind="block", size="medium", color=0),
                     Obj(role="post_r", kind="block", size="medium", color=1),
                     Obj(role="item", kind=kind, size="medium", color=2)],
            placements=[Placement.fixed(role="post_r", xy=(0.5, -0.07)), Placement.fixed(role="post_l", xy=(0.5, 0.07)),
                        Placement.random(roles=("item",), min_gap=0.05)],
            goals=[GoalSpec(pred="Near", obj="item", refs={"other": "post_r"},
                            params={"direction": "left", "gap": 0.07})],
            instruction="put <item> in the gap between <post_l> and <post_r>"))
    out.append(Draft(
        name="tower_of_three_in_zone", family="multi", summary="Build a three-high tower inside a zone.",
        objects=[_zone(color=0, size=(0.12, 0.12)), Obj(role="b0", kind="block", size="large", color=1),
                 Obj(role="b1", kind="block", size="medium", color=2),
                 Obj(role="b2", kind="block", size="small", color=3)],
        placements=[Placement.fixed(role="zone", xy=SPOTS["far"]),
                    Placement.random(roles=("b0", "b1", "b2"), region="near", min_gap=0.03)],
        goals=[GoalSpec(pred="InZone", obj="b0", refs={"zone": "zone"}, params={"margin": 0.025}),
               GoalSpec(pred="On", obj="b1", refs={"base": "b0"}), GoalSpec(pred="On", obj="b2", refs={"base": "b1"})],
        instruction="build a tower inside <zone>: <b0> first, then <b1>, then <b2> on top"))
    for kinds in (("block", "cylinder"), ("cylinder", "cylinder")):
        out.append(Draft(
            name=f"push_{kinds[0][:3]}_and_{kinds[1][:3]}_into_zone", family="multi",
            summary="Push two objects into one zone, one after the other.",
            objects=[_zone(color=0, size=(0.1, 0.16)), Obj(role="first", kind=kinds[0], size="medium", color=1),
                     Obj(role="second", kind=kinds[1], size="medium", color=2)],
            placements=[Placement.fixed(role="zone", xy=SPOTS["far"]),
                        Placement.random(roles=("first", "second"), region="near", min_gap=0.05)],
            goals=[GoalSpec(pred="Pushed", obj="first", refs={"zone": "zone"},
                            params={"margin": 0.02, "offset": (0.0, 0.04)}),
                   GoalSpec(pred="Pushed", obj="second", refs={"zone": "zone"},
                            params={"margin": 0.02, "offset": (0.0, -0.04)})],
            instruction="push <first> and then <second> into <zone> without picking them up"))
    for kind in ("block", "cylinder"):
        out.append(Draft(
            name=f"bowl_and_zone_{kind[:3]}", family="multi", summary="Put one object in a bowl and another in a zone.",
            objects=[Obj(role="bowl", kind="bowl", size=0.06, color=0), _zone(color=1),
                     Obj(role="to_bowl", kind="cylinder", size="small", color=2),
                     Obj(role="to_zone", kind=kind, size="medium", color=3)],
            placements=[Placement.fixed(role="bowl", xy=SPOTS["left"]), Placement.fixed(role="zone", xy=SPOTS["right"]),
                        Placement.random(roles=("to_bowl", "to_zone"), min_gap=0.04)],
            goals=[GoalSpec(pred="InZone", obj="to_bowl", refs={"zone": "bowl"}, params={"margin": 0.015}),
                   GoalSpec(pred="InZone", obj="to_zone", refs={"zone": "zone"}, params={"margin": 0.02})],
            instruction="drop <to_bowl> into <bowl> on the left and put <to_zone> in <zone> on the right"))
    for kinds in (("block", "cylinder"), ("cylinder", "cylinder")):
        out.append(Draft(
            name=f"swap_{kinds[0][:3]}_with_{kinds[1][:3]}", family="multi",
            summary="Exchange the places of two objects.",
            objects=[Obj(role="a", kind=kinds[0], size="medium", color=0),
                     Obj(role="b", kind=kinds[1], size="medium", color=1),
                     Obj(role="parking", kind="zone", size=(0.06, 0.06), color="gray")],
            placements=[Placement.random(roles=("a", "b", "parking"), min_gap=0.05)],
            goals=[GoalSpec(pred="AtPose", obj="a", params={"xy": "self.start_b"}),
                   GoalSpec(pred="AtPose", obj="b", params={"xy": "self.start_a"})],
            instruction="swap the places of <a> and <b>", remember_start=("a", "b"),
            oracle_goals=[GoalSpec(pred="InZone", obj="a", refs={"zone": "parking"}),
                          GoalSpec(pred="AtPose", obj="b", params={"xy": "self.start_a"}),
                          GoalSpec(pred="AtPose", obj="a", params={"xy": "self.start_b"})]))
    corners = {"front_left": (0.42, 0.14), "front_right": (0.42, -0.14), "back_left": (0.6, 0.14),
               "back_right": (0.6, -0.14)}
    for corner, xy in corners.items():
        words = corner.replace("_", "-").replace("back", "far").replace("front", "near")
        out.append(Draft(
            name=f"block_to_{corner}_corner", family="at_pose", summary=f"Move a block to the {words} corner mark.",
            objects=[Obj(role="item", kind="block", size="medium", color=0), _mark()],
            placements=[Placement.fixed(role="mark", xy=xy), Placement.random(roles=("item",), min_gap=0.06)],
            goals=[GoalSpec(pred="AtPose", obj="item", params={"xy": xy, "tol": 0.02})],
            instruction=f"carry <item> to the white mark in the {words} corner of the table"))
    return out


FAMILIES = (family_stack, family_stack_in_zone, family_zone, family_push, family_bowl, family_beside,
            family_at_pose, family_bridge, family_unstack, family_sort, family_combo, family_multi)


def procedural_space() -> list[Draft]:
    """Every draft the procedural generator can write, unique by name, in a fixed order: the
    families above, then two sub-tasks side by side (:mod:`generation.compose`)."""
    from generation.compose import composed_space

    seen, out = set(), []
    for family in FAMILIES + (composed_space,):
        for draft in family():
            if draft.name not in seen:
                seen.add(draft.name)
                out.append(draft)
    return out
