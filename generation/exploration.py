"""Exploratory mode, procedurally: of the untried drafts, always the one least like anything
already known, so novelty rises rather than being left to chance."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from generation.codegen_procedural import Draft, render
from generation.embedding import NoveltyIndex, canonical_text, embed
from generation.proposal import Proposal, proposal_from_draft


class Explorer:
    """Proposals most-novel-first: each time, the untried draft whose highest similarity to
    everything in ``novelty`` (a NoveltyIndex the caller grows as tasks are admitted) is lowest.
    Ties (and the start) are broken by ``rng``. Every draft is embedded once, up front (read from
    the embedding cache after the first run: :func:`generation.embedding.embed`).
    :meth:`upcoming` says which come next if nothing is admitted meanwhile (what a parallel caller
    validates ahead)."""

    def __init__(self, drafts: list[Draft], taken: set[str], novelty: NoveltyIndex, rng: np.random.Generator):
        pool = [d for d in drafts if d.name not in taken]
        self.pool = [pool[i] for i in rng.permutation(len(pool))]
        self.vecs = embed([canonical_text(render(d), d.text) for d in self.pool])
        self.alive = np.ones(len(self.pool), bool)
        self.novelty = novelty

    def _order(self) -> np.ndarray:
        """Alive drafts, most novel first (stable: ties keep the shuffled order, as argmin did)."""
        nov = self.novelty
        sims = nov.vectors @ self.vecs.T if len(nov.names) else np.zeros((1, len(self.pool)))
        score = np.where(self.alive, sims.max(axis=0), np.inf)
        return np.argsort(score, kind="stable")[:int(self.alive.sum())]

    def __iter__(self) -> Iterator[Proposal]:
        while self.alive.any():
            best = int(self._order()[0])
            self.alive[best] = False
            yield proposal_from_draft(self.pool[best])

    def upcoming(self, k: int) -> list[Proposal]:
        return [proposal_from_draft(self.pool[i]) for i in self._order()[:k]]


def explore(drafts: list[Draft], taken: set[str], novelty: NoveltyIndex,
            rng: np.random.Generator) -> Iterator[Proposal]:
    """:class:`Explorer`'s proposals, as an iterator."""
    return iter(Explorer(drafts, taken, novelty, rng))
