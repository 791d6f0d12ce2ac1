"""Task proposals: what to build next.

A :class:`Proposal` is a task idea: a name, a one-paragraph description and (procedurally) a
:class:`~generation.codegen_procedural.Draft`. Two modes, as in GenSim:

- exploratory: bootstrap from the library towards new tasks. Procedurally, the space is the
  draft catalogue (:mod:`generation.catalogue`), taken most novel first
  (:mod:`generation.exploration`: farthest in embedding space from everything in the library).
- goal-directed: given a target, a curriculum of stepping stones (:mod:`generation.curriculum`:
  subsets of the target's goals, fewer objects first), then the target itself; a registered task
  becomes a draft to cut up through :mod:`generation.from_task`.

The LLM side of both modes lives in :mod:`generation.codegen_llm`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from generation.codegen_procedural import Draft, render


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


def proposal_from_draft(draft: Draft) -> Proposal:
    return Proposal(name=draft.name, description=draft.summary, instruction=draft.text, draft=draft,
                    meta={"family": draft.family, **draft.meta})


def spec_hash(draft: Draft) -> str:
    """Stable id of a procedural 'prompt' (the draft), recorded like an LLM prompt hash."""
    return hashlib.sha256(render(draft).encode()).hexdigest()[:16]
