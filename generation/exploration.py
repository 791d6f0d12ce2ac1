"""Exploratory mode, procedurally: of the untried drafts, always the one least like anything
already known, so novelty rises rather than being left to chance."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from generation.codegen_procedural import Draft, render
from generation.embedding import NoveltyIndex, canonical_text, embed
from generation.proposal import Proposal, proposal_from_draft


def explore(drafts: list[Draft], taken: set[str], novelty: NoveltyIndex,
            rng: np.random.Generator) -> Iterator[Proposal]:
    """Yield proposals most-novel-first: each time, the untried draft whose highest similarity to
    everything in ``novelty`` (a NoveltyIndex the caller grows as tasks are admitted) is lowest.
    Ties (and the start) are broken by ``rng``. Every draft is embedded once, up front."""
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
