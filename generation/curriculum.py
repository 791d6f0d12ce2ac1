"""Goal-directed mode, procedurally: cut a target draft into stepping stones, simpler first."""
from __future__ import annotations

from generation.codegen_procedural import Draft, subset
from generation.proposal import Proposal, proposal_from_draft


def curriculum(target: Draft, max_steps: int | None = None) -> list[Proposal]:
    """Stepping stones towards ``target``, simpler first, then the target itself.

    Stones are the target's goals one at a time (where a goal stands alone: a Bridge needs its
    Near first, and "to where <b> started" needs <b> moved away first) and then growing prefixes
    of its goal list, each with only the objects involved."""
    n = len(target.goals)
    stones: list[list[int]] = []
    for i, g in enumerate(target.goals):
        if g.pred != "Bridge" and not any(str(v).startswith("self.start_") for v in g.params.values()):
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

    return tuple((g.pred, obj_key(g.obj), tuple((k, obj_key(r)) for k, r in g.refs.items()),
                  tuple((k, v) for k, v in g.params.items() if k != "offset")) for g in (draft.goals[i] for i in idx))
