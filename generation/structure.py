"""Structural signatures of tasks: what a task *is*, with its names and words stripped.

The embedding novelty gate reads text, so a renamed and reworded copy of a task ("cube" for
"block", "place onto" for "stack on", other attribute names) can look new to it. This module
describes a task by what its ``build`` and ``goals`` produce on a few seeds:

- **scene signature**: every object as (kind, size class, colour role), where the colour role is
  "fixed" (the same colour on every seed: a colour the instruction can name) or "drawn";
  objects that share their colour on every seed are tied by a ``same_colour`` node (sorting by
  colour), and objects that start resting on another by a ``start_on`` node (unstacking);
- **goal graph**: one node per goal, labelled by its predicate type and its discrete parameters
  (strings, ints and bools such as ``Near``'s direction; tolerances and offsets are left out),
  linked to the objects it names by the argument's role (``obj``, ``base``, ``zone``...). Order
  lives in the roles: "A on B" and "B on A" are different graphs, and a tower's stacking order is
  its chain of ``On`` links. The order of independent goals in the list is not structure: success
  is their conjunction at the end. An ``AtPose`` target equal to where another object started
  becomes a ``start_of`` link (a swap), any other point is just "a point".

Each seed gives one labelled graph (objects and goals as nodes); a task's signature is the set of
their Weisfeiler-Lehman hashes (networkx). A candidate is a **structural duplicate** of a task when
every graph it produced on its seeds is one the task also produces: the candidate adds no
structure. The graded score (shown on every verdict) is the weighted Jaccard overlap of the two
tasks' WL subtree-label multisets, 1.0 for identical structure.

New predicates and object kinds need no code here: goal fields holding objects become links and
discrete fields become labels; a kind without a size table is classed by its footprint.
"""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np

WL_ITERATIONS = 3

# Size classes by kind: the measure (m) and the upper bounds of "small" and "medium".
# Chosen so that the built-ins' and the catalogue's sizes fall on either side of a bound, not on it.
SIZE_CLASSES = {
    "block": (lambda h: 2 * float(np.cbrt(h[0] * h[1] * h[2])), (0.0375, 0.0475)),   # edge of the same-volume cube
    "cylinder": (lambda h: float(h[0]), (0.019, 0.0225)),                            # radius
    "zone": (lambda h: 2 * float(max(h[0], h[1])), (0.075, 0.13)),                    # longer side
    "bowl": (lambda h: float(h[0]), (0.05, 0.07)),                                    # radius
    "marker": (lambda h: 0.0, (1.0, 1.0)),                                            # one class
}
# Goal fields that name interchangeable supports: the label says "support", not which side.
ROLE_ALIASES = {("Bridge", "left"): "support", ("Bridge", "right"): "support"}
START_TOL = 1e-6   # m: an AtPose target this close to an object's start is "where it started"


def size_class(kind: str, half_size) -> str:
    measure, (small, medium) = SIZE_CLASSES.get(kind, (lambda h: float(np.hypot(h[0], h[1])), (0.02, 0.04)))
    m = measure(half_size)
    return "small" if m < small else "medium" if m < medium else "large"


def describe(task, scene) -> dict:
    """One seed's raw description (JSON-safe, colour names still in): objects, goals, start stacks.

    ``task`` is a built task instance (``build`` has run on ``scene``); runs wherever the task
    runs (the sandbox for a candidate), so it only reads the scene spec and the goal objects."""
    objs = list(scene.objects)
    index = {o.name: i for i, o in enumerate(objs)}
    nodes = [{"kind": o.kind, "size": size_class(o.kind, o.half_size), "color": o.color} for o in objs]
    goals = []
    for g in task.goals():
        pred = type(g).__name__
        links, params = [], []
        for f in dataclasses.fields(g):
            v = getattr(g, f.name)
            if hasattr(v, "half_size") and hasattr(v, "kind"):          # an object argument
                if v.name in index:
                    links.append([ROLE_ALIASES.get((pred, f.name), f.name), index[v.name]])
            elif isinstance(v, (bool, str, int)) and not isinstance(v, float):
                params.append(f"{f.name}={v}")
            elif _is_xy(v):
                start = next((i for i, o in enumerate(objs)
                              if np.allclose(o.pos[:2], np.asarray(v, float)[:2], atol=START_TOL)), None)
                if start is not None:
                    links.append([f"{f.name}:start_of", start])
                else:
                    params.append(f"{f.name}=point")
        goals.append({"pred": pred, "params": sorted(params), "links": links})
    starts = []
    for i, a in enumerate(objs):    # a starts resting on b: centred over it and touching its top
        for j, b in enumerate(objs):
            if i != j and a.movable and a.pos[2] > a.half_size[2] + 1e-3 and \
                    np.linalg.norm(a.pos[:2] - b.pos[:2]) < max(b.half_size[0], b.half_size[1]) and \
                    abs(a.pos[2] - a.half_size[2] - (b.pos[2] + b.half_size[2])) < 5e-3:
                starts.append([i, j])
    return {"objects": nodes, "goals": goals, "start_on": starts}


def _is_xy(v) -> bool:
    if isinstance(v, (tuple, list, np.ndarray)) and len(v) in (2, 3):
        try:
            return bool(np.all(np.isfinite(np.asarray(v, float))))
        except (TypeError, ValueError):
            return False
    return False


def describe_task(task_cls, seeds) -> list[dict]:
    """Run ``task_cls``'s build/goals on each seed (no simulator) and describe each."""
    from envs.core.task import build_layout

    out = []
    for seed in seeds:
        task, scene = build_layout(task_cls, np.random.default_rng(seed))
        out.append(describe(task, scene))
    return out


@dataclass
class Structure:
    """A task's structural signature over its seeds: WL hashes (one per distinct graph) and the
    WL subtree-label counts for the graded score."""

    hashes: frozenset
    features: Counter
    graphs: int = 0

    def as_json(self) -> dict:
        return {"hashes": sorted(self.hashes), "features": dict(self.features), "graphs": self.graphs}

    @classmethod
    def from_json(cls, d: dict) -> "Structure":
        return cls(frozenset(d["hashes"]), Counter(d["features"]), d.get("graphs", 0))

    def duplicates(self, other: "Structure") -> bool:
        """Every graph this task produced is one ``other`` produces too."""
        return bool(self.hashes) and self.hashes <= other.hashes

    def similarity(self, other: "Structure") -> float:
        """Weighted Jaccard of the WL subtree-label multisets, in [0, 1]; 1.0 for a duplicate."""
        if self.duplicates(other):
            return 1.0
        inter = sum((self.features & other.features).values())
        union = sum((self.features | other.features).values())
        return inter / union if union else 0.0


def structure(descriptions: list[dict]) -> Structure:
    """The signature of a task from its per-seed descriptions (:func:`describe`)."""
    import networkx as nx

    if not descriptions:
        return Structure(frozenset(), Counter())
    n = len(descriptions[0]["objects"])
    same_n = all(len(d["objects"]) == n for d in descriptions)
    # colour roles are read across seeds: fixed = one colour on every seed; ties = equal on every seed
    fixed = [same_n and len({d["objects"][i]["color"] for d in descriptions}) == 1 and len(descriptions) > 1
             for i in range(n)]
    hashes, features = set(), Counter()
    for d in descriptions:
        objs = d["objects"]
        G = nx.Graph()
        for i, o in enumerate(objs):
            role = "fixed" if same_n and fixed[i] else "drawn"
            G.add_node(("o", i), label=f"{o['kind']}|{o['size']}|{role}")
        for k, g in enumerate(d["goals"]):
            G.add_node(("g", k), label=f"{g['pred']}({','.join(g['params'])})")
            for role, i in g["links"]:
                _link(G, ("g", k), ("o", i), role)
        for k, (i, j) in enumerate(d["start_on"]):
            G.add_node(("s", k), label="start_on")
            _link(G, ("s", k), ("o", i), "top")
            _link(G, ("s", k), ("o", j), "base")
        groups = {}
        for i, o in enumerate(objs):
            tie = tuple(dd["objects"][i]["color"] for dd in descriptions) if same_n else (o["color"],)
            groups.setdefault(tie, []).append(i)
        for k, members in enumerate(m for m in groups.values() if len(m) > 1):
            G.add_node(("c", k), label="same_colour")
            for i in members:
                _link(G, ("c", k), ("o", i), "member")
        h = nx.weisfeiler_lehman_graph_hash(G, node_attr="label", edge_attr="label", iterations=WL_ITERATIONS)
        if h in hashes:
            continue
        hashes.add(h)
        subtrees = nx.weisfeiler_lehman_subgraph_hashes(G, node_attr="label", edge_attr="label",
                                                        iterations=WL_ITERATIONS)
        per_graph = Counter(G.nodes[v]["label"] for v in G)
        for seq in subtrees.values():
            per_graph.update(seq)
        features |= per_graph   # the union (max count) over distinct graphs
    return Structure(frozenset(hashes), features, len(hashes))


def _link(G, a, b, role: str) -> None:
    """An edge labelled by role; a second link between the same pair (an object that is both the
    mover and the reference of one goal) joins the labels."""
    if G.has_edge(a, b):
        G.edges[a, b]["label"] = "+".join(sorted(G.edges[a, b]["label"].split("+") + [role]))
    else:
        G.add_edge(a, b, label=role)


def task_structure(task_cls, seeds=range(16)) -> Structure:
    """A registered task's signature, built in this process (built-ins and loaded library tasks)."""
    return structure(describe_task(task_cls, list(seeds)))


def digest(s: Structure) -> str:
    """A short printable id of a signature (for reports)."""
    return json.dumps(sorted(s.hashes))[:40]
