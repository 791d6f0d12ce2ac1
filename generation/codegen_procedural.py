"""Procedural code generation: a :class:`Draft` (objects x goal predicates x arrangement) is
rendered to the SOURCE of a task program on the ordinary task API, which then goes through the
same gates as an LLM-written one. Nothing here registers or runs a task.

A draft is kept structured (roles, goal specs, placements) rather than as text so that it can be
cut down into stepping stones (:func:`subset`) for goal-directed curricula.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from envs.core.scene import COLORS

# Edge length (m) of blocks and (radius, height) of cylinders by size word.
BLOCK_SIZES = {"small": 0.035, "medium": 0.04, "large": 0.05}
CYLINDER_SIZES = {"small": (0.018, 0.045), "medium": (0.02, 0.05), "large": (0.024, 0.05)}
# Control steps the oracle typically needs per goal, by skill (a budget, not a promise).
STEP_BUDGET = {"On": 110, "InZone": 110, "AtPose": 110, "Near": 110, "Bridge": 130, "Pushed": 220}
STEP_BUDGET["Reached"] = 80
NOUN = {"block": "block", "cylinder": "cylinder", "zone": "zone", "bowl": "bowl", "marker": "marker"}
DIR_WORDS = {"left": "to the left of", "right": "to the right of", "front": "in front of", "behind": "behind"}


@dataclass(frozen=True, kw_only=True)
class Obj:
    """One object of a draft. ``color`` is a palette name (a fixed colour that the instruction can
    name: colour as a role) or an int: index into the episode's randomly drawn distinct colours.
    ``size`` is a size word for blocks/cylinders, (x, y) metres for zones, radius (m) for bowls
    and markers."""

    role: str
    kind: str
    size: object = "medium"
    color: object = 0
    say_size: bool = False  # mention the size word in the instruction

    @property
    def phrase(self) -> str:
        color = f"{{{self.role}.color}}" if isinstance(self.color, int) else self.color
        size = f"{self.size} " if self.say_size and isinstance(self.size, str) else ""
        return f"the {size}{color} {NOUN[self.kind]}"

    @property
    def movable(self) -> bool:
        return self.kind in ("block", "cylinder")


@dataclass(frozen=True, kw_only=True)
class GoalSpec:
    """``pred`` over ``obj`` (a role); ``refs`` maps the predicate's other object fields
    (``base``, ``zone``, ``other``, ``left``, ``right``) to roles; ``params`` are its literal
    keyword arguments (a string ``"self.start_<role>"`` refers to a remembered start)."""

    pred: str
    obj: str
    refs: dict[str, str] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    phrase: str = ""  # how the instruction says it; <role> markers become object phrases

    def roles(self) -> list[str]:
        """Every role the goal involves, remembered starts (``"self.start_<role>"``) included."""
        starts = [v[len("self.start_"):] for v in self.params.values()
                  if isinstance(v, str) and v.startswith("self.start_")]
        return [self.obj, *self.refs.values(), *starts]

    def text(self) -> str:
        """The phrase, or a default wording of the predicate."""
        if self.phrase:
            return self.phrase
        ref, par = self.refs, self.params
        if self.pred == "On":
            return f"put <{self.obj}> on <{ref['base']}>"
        if self.pred == "InZone":
            return f"put <{self.obj}> in <{ref['zone']}>"
        if self.pred == "Pushed":
            return f"push <{self.obj}> into <{ref['zone']}>"
        if self.pred == "Near":
            return f"put <{self.obj}> {DIR_WORDS[par.get('direction', 'left')]} <{ref['other']}>"
        if self.pred == "Bridge":
            return f"lay <{self.obj}> across <{ref['left']}> and <{ref['right']}>"
        if self.pred == "Reached":
            return f"touch <{self.obj}> with the gripper"
        if self.pred == "AtPose":
            xy = par.get("xy", (0.5, 0.0))
            if isinstance(xy, str) and xy.startswith("self.start_"):
                return f"move <{self.obj}> to where <{xy[len('self.start_'):]}> started"
            x, y = xy
            return f"move <{self.obj}> to the point {x:.2f} m out, {y:+.2f} m across"
        return f"make <{self.obj}> satisfy {self.pred}"


@dataclass(frozen=True, kw_only=True)
class Placement:
    """How objects start. ``how``: "fixed" (roles[0] at ``xy``, m), "random" (non-overlapping in
    ``region``, at least ``min_gap`` m apart), "on" (roles[0] resting on roles[1]), "air" (a
    marker at a random reachable point above ``region``). The constructors :meth:`fixed`,
    :meth:`random`, :meth:`on` and :meth:`air` say which."""

    how: str
    roles: tuple[str, ...]
    region: str = "table"
    min_gap: float = 0.04
    xy: tuple[float, float] = (0.5, 0.0)
    yaw_range: float | None = None

    @classmethod
    def fixed(cls, *, role: str, xy: tuple[float, float]) -> "Placement":
        return cls(how="fixed", roles=(role,), xy=xy)

    @classmethod
    def random(cls, *, roles: tuple[str, ...], region: str = "table", min_gap: float = 0.04,
               yaw_range: float | None = None) -> "Placement":
        return cls(how="random", roles=tuple(roles), region=region, min_gap=min_gap, yaw_range=yaw_range)

    @classmethod
    def on(cls, *, top: str, base: str) -> "Placement":
        return cls(how="on", roles=(top, base))

    @classmethod
    def air(cls, *, role: str, region: str = "table") -> "Placement":
        return cls(how="air", roles=(role,), region=region)


@dataclass(kw_only=True)
class Draft:
    """A task idea as data: objects by role, how they start, and the goals over them."""

    name: str
    family: str
    summary: str
    objects: list[Obj]
    placements: list[Placement]
    goals: list[GoalSpec]
    instruction: str = ""        # family's own wording; default: the goal phrases joined
    oracle_goals: list[GoalSpec] | None = None
    remember_start: tuple[str, ...] = ()  # roles whose start xy is stored as self.start_<role>
    meta: dict = field(default_factory=dict)

    def obj(self, role: str) -> Obj:
        return next(o for o in self.objects if o.role == role)

    @property
    def text(self) -> str:
        """The instruction template (task-API format fields such as ``{top.color}``)."""
        words = self.instruction or _join(self.goals)
        return _fill(words, self)

    @property
    def max_steps(self) -> int:
        steps = 40 + sum(STEP_BUDGET.get(g.pred, 110) for g in (self.oracle_goals or self.goals))
        return int(min(600, -(-steps // 50) * 50))


def _join(goals: list[GoalSpec]) -> str:
    parts = [g.text() for g in goals]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + ", then " + parts[-1]


def _fill(text: str, draft: Draft) -> str:
    """Replace ``<role>`` markers with the object's phrase ("the small {a.color} block")."""
    return re.sub(r"<(\w+)>", lambda m: draft.obj(m.group(1)).phrase, text)


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def _goal_expr(g: GoalSpec, draft: Draft) -> str:
    args = [f"self.{g.obj}"] + [f"{k}=self.{r}" for k, r in g.refs.items()]
    for k, v in g.params.items():
        if isinstance(v, str) and v.startswith("self."):
            args.append(f"{k}={v}")
        else:
            args.append(f"{k}={_fmt(v)}")
    return f"{g.pred}({', '.join(args)})"


def render(draft: Draft) -> str:
    """The task program (Python source) for ``draft``."""
    preds = sorted({g.pred for g in draft.goals + (draft.oracle_goals or [])})
    n_random = max([o.color + 1 for o in draft.objects if isinstance(o.color, int)], default=0)
    fixed = sorted({o.color for o in draft.objects if isinstance(o.color, str)})
    assert all(c in COLORS for c in fixed), fixed
    lines = [f'"""{draft.summary}"""', f"# Written by roboforge's procedural generator (family: {draft.family}).",
             f"from envs.core import {', '.join(preds + ['Task'])}",
             "from envs.registry import register_task", "", "",
             f'@register_task("{draft.name}")', f"class {_camel(draft.name)}(Task):",
             f"    instruction = {_quote(draft.text)}", f"    max_episode_steps = {draft.max_steps}"]
    if any(o.kind == "bowl" for o in draft.objects):
        lines.append('    features = frozenset({"bowl"})')
    lines += ["", "    def build(self, scene, rng):"]
    if n_random:
        quoted = ", ".join('"' + c + '"' for c in fixed)
        excl = f", exclude=({quoted},)" if fixed else ""
        lines.append(f"        c = scene.distinct_colors({n_random}{excl})")
    for o in draft.objects:
        color = f"c[{o.color}]" if isinstance(o.color, int) else f'"{o.color}"'
        lines.append(f"        self.{o.role} = {_add_expr(o, color)}")
    for p in draft.placements:
        lines += _placement_lines(p, draft)
    for role in draft.remember_start:
        lines.append(f"        self.start_{role} = tuple(float(v) for v in self.{role}.pos[:2])")
    lines += ["", "    def goals(self):"]
    lines += _return_list([_goal_expr(g, draft) for g in draft.goals])
    if draft.oracle_goals:
        lines += ["", "    def oracle_goals(self):",
                  "        # the solution passes through a state the final goals do not describe"]
        lines += _return_list([_goal_expr(g, draft) for g in draft.oracle_goals])
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _return_list(exprs: list[str]) -> list[str]:
    one = f"        return [{', '.join(exprs)}]"
    if len(one) <= 100:
        return [one]
    body = [f"        return [{exprs[0]},"]
    body += [f"                {e}," for e in exprs[1:-1]]
    body.append(f"                {exprs[-1]}]")
    return body


def _add_expr(o: Obj, color: str) -> str:
    if o.kind == "block":
        return f'scene.add_block({color}, size={BLOCK_SIZES[o.size]:g}, name="{o.role}")'
    if o.kind == "cylinder":
        r, h = CYLINDER_SIZES[o.size]
        return f'scene.add_cylinder({color}, radius={r:g}, height={h:g}, name="{o.role}")'
    if o.kind == "zone":
        return f'scene.add_zone({color}, size={_fmt(tuple(float(s) for s in o.size))}, name="{o.role}")'
    if o.kind == "bowl":
        return f'scene.add_bowl({color}, radius={float(o.size):g}, height=0.03, name="{o.role}")'
    if o.kind == "marker":
        return f'scene.add_marker({color}, radius={float(o.size):g}, name="{o.role}")'
    raise ValueError(f"unknown kind {o.kind!r}")


def _placement_lines(p: Placement, draft: Draft) -> list[str]:
    if p.how == "fixed":
        r = p.roles[0]
        return [f"        self.{r}.pos[:] = ({p.xy[0]:g}, {p.xy[1]:g}, self.{r}.half_size[2])"]
    if p.how == "on":
        return [f"        scene.place_on(self.{p.roles[0]}, self.{p.roles[1]})"]
    if p.how == "air":   # above the objects: nothing collides with a marker
        return [f'        scene.place_in_air(self.{p.roles[0]}, region="{p.region}", z_range=(0.12, 0.22))']
    # Fixtures (large footprints) are placed first: placing them after the movers often finds no
    # room. Roles already put at a fixed spot keep it.
    fixed = {r for q in draft.placements if q.how == "fixed" for r in q.roles}
    roles = [r for r in p.roles if r not in fixed]
    roles.sort(key=lambda r: draft.obj(r).movable)
    if not roles:
        return []
    objs = ", ".join(f"self.{r}" for r in roles)
    yaw = "" if p.yaw_range is None else f", yaw_range={p.yaw_range:g}"
    return [f'        scene.place_randomly([{objs}], region="{p.region}", min_gap={p.min_gap:g}{yaw})']


def subset(draft: Draft, goal_idx: list[int], name: str) -> Draft:
    """A stepping stone: only the goals ``goal_idx`` and the objects they involve.

    Objects that start stacked on a kept object stay (they are part of the arrangement);
    everything else is dropped, and the instruction is rebuilt from the kept goals' phrases."""
    goals = [draft.goals[i] for i in goal_idx]
    keep = {r for g in goals for r in g.roles()}
    changed = True
    while changed:  # an object resting on (or under) a kept one changes what the oracle faces
        changed = False
        for p in draft.placements:
            if p.how == "on" and (p.roles[0] in keep) != (p.roles[1] in keep):
                keep |= set(p.roles)
                changed = True
    placements = []
    for p in draft.placements:
        roles = tuple(r for r in p.roles if r in keep)
        if roles and (p.how != "on" or len(roles) == 2):
            placements.append(replace(p, roles=roles))
    objects = [o for o in draft.objects if o.role in keep]
    # renumber random colours densely so distinct_colors asks for no more than needed
    idx = sorted({o.color for o in objects if isinstance(o.color, int)})
    objects = [replace(o, color=idx.index(o.color)) if isinstance(o.color, int) else o for o in objects]
    return Draft(name=name, family=draft.family,
                 summary=f"Stepping stone towards {draft.name}: {len(goals)} of its {len(draft.goals)} goals.",
                 objects=objects, placements=placements, goals=goals, instruction="",
                 remember_start=tuple(r for r in draft.remember_start if r in keep),
                 meta={**draft.meta, "stepping_stone_of": draft.name, "goals": goal_idx})
