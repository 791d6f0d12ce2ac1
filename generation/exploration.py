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
    :meth:`upcoming` says which come next if each is admitted (what a parallel caller
    validates ahead)."""

    def __init__(self, drafts: list[Draft], taken: set[str], novelty: NoveltyIndex, rng: np.random.Generator):
        pool = [d for d in drafts if d.name not in taken]
        self.pool = [pool[i] for i in rng.permutation(len(pool))]
        self.vecs = embed([canonical_text(render(d), d.text) for d in self.pool])
        self.alive = np.ones(len(self.pool), bool)
        self.novelty = novelty
        self.last: int | None = None   # the draft yielded last (being validated, maybe not yet admitted)

    def _order(self, alive: np.ndarray, also: list[int] = ()) -> np.ndarray:
        """Alive drafts, most novel first (stable: ties keep the shuffled order, as argmin did),
        against the index plus the drafts ``also`` (assumed admitted)."""
        nov = self.novelty
        sims = nov.vectors @ self.vecs.T if len(nov.names) else np.zeros((1, len(self.pool)))
        if len(also):
            sims = np.vstack([sims, self.vecs[list(also)] @ self.vecs.T])
        score = np.where(alive, sims.max(axis=0), np.inf)
        return np.argsort(score, kind="stable")[:int(alive.sum())]

    def __iter__(self) -> Iterator[Proposal]:
        while self.alive.any():
            best = int(self._order(self.alive)[0])
            self.alive[best] = False
            self.last = best
            yield proposal_from_draft(self.pool[best])

    def upcoming(self, k: int) -> list[Proposal]:
        """The next ``k`` proposals if the one being validated and each of these is admitted (most
        are): each pick then pushes its look-alikes back, as admission will. Guessing the order
        without them would have a parallel caller validate drafts that never come next."""
        alive, taken = self.alive.copy(), [] if self.last is None else [self.last]
        for _ in range(min(k, int(alive.sum()))):
            best = int(self._order(alive, taken)[0])
            alive[best] = False
            taken.append(best)
        return [proposal_from_draft(self.pool[i]) for i in taken[1 if self.last is not None else 0:]]


def explore(drafts: list[Draft], taken: set[str], novelty: NoveltyIndex,
            rng: np.random.Generator) -> Iterator[Proposal]:
    """:class:`Explorer`'s proposals, as an iterator."""
    return iter(Explorer(drafts, taken, novelty, rng))
