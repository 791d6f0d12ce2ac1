"""The reverse compiler: a registered task (built at a few seeds) described as a procedural
draft, so that a goal-directed curriculum can cut its goals into stepping stones."""
from __future__ import annotations

import dataclasses
import inspect

import numpy as np

from envs.core.scene import REGIONS, ObjectSpec, Scene
from envs.registry import get_task
from generation.codegen_procedural import BLOCK_SIZES, CYLINDER_SIZES, Draft, GoalSpec, Obj, Placement

CYLINDER_RADII = {word: radius for word, (radius, _) in CYLINDER_SIZES.items()}


def draft_from_task(name: str) -> Draft:
    """Describe a registered task as a draft (built at seed 0), so its goals can be cut into
    stepping stones. Relational goals carry over (On, InZone, Pushed, Near, Bridge, and AtPose
    at the seed-0 target); objects keep their kinds and sizes, colours stay random but shared
    colours stay shared (colour as a role), starting stacks stay stacked."""
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
            size = min(BLOCK_SIZES, key=lambda w: abs(BLOCK_SIZES[w] - 2 * o.half_size[0]))
        elif o.kind == "cylinder":
            size = min(CYLINDER_RADII, key=lambda w: abs(CYLINDER_RADII[w] - o.half_size[0]))
        elif o.kind == "zone":
            size = (round(2 * o.half_size[0], 3), round(2 * o.half_size[1], 3))
        elif o.kind == "bowl":
            size = round(o.half_size[0], 3)
        else:
            raise ValueError(f"task {name!r} has a {o.kind}; goal-directed procedural curricula support "
                             "blocks, cylinders, zones and bowls")
        objs.append(Obj(role=role[o.name], kind=o.kind, size=size, color=color))
    specs = []
    for g in goals:
        refs, params = {}, {}
        for f in dataclasses.fields(g):
            v = getattr(g, f.name)
            if f.name == "obj":
                continue
            if isinstance(v, ObjectSpec):
                refs[f.name] = role[v.name]
            elif v != f.default:
                params[f.name] = tuple(round(float(x), 3) for x in v) if isinstance(v, (tuple, list, np.ndarray)) else v
        specs.append(GoalSpec(pred=type(g).__name__, obj=role[g.obj.name], refs=refs, params=params))
    stacks = [Placement.on(top=role[o.name], base=role[b.name]) for o in scene.objects for b in scene.objects
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
            fixed.append(Placement.fixed(role=r, xy=(round(float(xy[0, 0]), 3), round(float(xy[0, 1]), 3))))
        else:
            groups.setdefault(_smallest_region(xy), []).append(r)
    randoms = [Placement.random(roles=tuple(rs), region=reg, min_gap=0.03) for reg, rs in groups.items()]
    return Draft(name=name, family="from_task", summary=_first_doc_line(cls) or f"The task {name}.",
                 objects=objs, placements=fixed + randoms + stacks, goals=specs, instruction="", meta={"target": name})


def _smallest_region(xy: np.ndarray) -> str:
    def area(r):
        (x0, x1), (y0, y1) = REGIONS[r]
        return (x1 - x0) * (y1 - y0)

    for r in sorted(REGIONS, key=area):
        (x0, x1), (y0, y1) = REGIONS[r]
        if np.all((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)):
            return r
    return "table"


def _first_doc_line(cls) -> str:
    """The first line of the task module's docstring."""
    module = inspect.getmodule(cls)
    return ((module.__doc__ if module else "") or "").strip().split("\n")[0]
