"""OMNI's model of interestingness: given the tasks already mastered, is a candidate task
interesting, or boring (a near-copy of something mastered)? Boring tasks are down-weighted by
the curriculum (x0.001), never removed.

Two judges, one surface (``judge(mastered, candidates) -> {task: Verdict}``, where both
arguments map task name -> description):

- :class:`EmbeddingJudge` (offline default): a candidate is boring when its description's
  MiniLM embedding is within ``similarity_threshold`` (cosine) of a mastered task's *and*, when a
  novelty score is supplied (e.g. HILP: distance in phi-space to the mastered tasks' goal
  states), that score is below ``novelty_threshold``: both views must agree it is a copy.
- :class:`LLMJudge`: asks the project's LLM client with the mastered tasks and the candidates,
  expects JSON verdicts, caches each (mastered set, candidate) pair. An answer that is not valid
  JSON is counted and its candidates are treated as interesting; a timeout or failed call falls
  back to the offline judge (logged).

Every verdict carries its reason; the curriculum logs each one.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

# (candidate task, mastered task names) -> novelty score, larger = more novel (HILP's phi distance)
NoveltyFn = Callable[[str, Sequence[str]], float]


@dataclass
class Verdict:
    task: str
    interesting: bool
    reason: str
    judge: str          # which judge decided: embedding, llm, llm-invalid-json, embedding (llm ...)

    def as_dict(self) -> dict:
        return asdict(self)


def task_descriptions(tasks: Sequence[str]) -> dict[str, str]:
    """What a judge reads about each task: its instruction template and the first line of its
    docstring (registered tasks, generated ones included)."""
    import envs

    out = {}
    for t in tasks:
        cls = envs.get_task(t)
        doc = (cls.__doc__ or "").strip().splitlines()
        out[t] = f"{getattr(cls, 'instruction', '') or t}. {doc[0] if doc else ''}".strip()
    return out


def minilm_embed(texts: list[str]) -> np.ndarray:
    """(N, 384) unit rows from all-MiniLM-L6-v2 (offline): the project's one recipe."""
    from envs.core import text_embedding

    return text_embedding.encode(list(texts))


class EmbeddingJudge:
    """Offline judge: text similarity to the mastered tasks (+ an optional novelty score)."""

    name = "embedding"

    def __init__(self, similarity_threshold: float = 0.85, novelty: NoveltyFn | None = None,
                 novelty_threshold: float = 0.5, embed: Callable[[list[str]], np.ndarray] = minilm_embed):
        self.similarity_threshold, self.novelty_threshold = float(similarity_threshold), float(novelty_threshold)
        self.novelty, self.embed = novelty, embed
        self._vectors: dict[str, np.ndarray] = {}   # description -> embedding (descriptions repeat every evaluation)

    def _vector(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if new:
            for t, v in zip(new, self.embed(new)):
                self._vectors[t] = np.asarray(v, np.float32)
        return np.stack([self._vectors[t] for t in texts])

    def judge(self, mastered: Mapping[str, str], candidates: Mapping[str, str]) -> dict[str, Verdict]:
        if not candidates:
            return {}
        if not mastered:
            return {t: Verdict(t, True, "nothing mastered yet", self.name) for t in candidates}
        names = list(mastered)
        sims = self._vector(list(candidates.values())) @ self._vector([mastered[m] for m in names]).T
        out = {}
        for row, task in zip(sims, candidates):
            j = int(np.argmax(row))
            similar = float(row[j]) >= self.similarity_threshold
            reason = f"description similarity {row[j]:.2f} to mastered {names[j]!r} " \
                     f"({'>=' if similar else '<'} {self.similarity_threshold:g})"
            interesting = not similar
            if self.novelty is not None:
                try:
                    score = float(self.novelty(task, names))
                except ValueError as err:   # e.g. no oracle goal state to measure: the text view decides alone
                    reason += f"; novelty unavailable ({err})"
                else:
                    novel = score >= self.novelty_threshold
                    reason += f"; novelty {score:.3f} ({'>=' if novel else '<'} {self.novelty_threshold:g})"
                    interesting = not similar or novel
            out[task] = Verdict(task, interesting, reason, self.name)
        return out


class LLMJudge:
    """Verdicts from the LLM (``client``: :class:`llm.LLMClient`), cached per (mastered set,
    candidate); ``fallback`` judges when the LLM cannot be reached in time."""

    name = "llm"

    def __init__(self, client, fallback: EmbeddingJudge, temperature: float = 0.0):
        self.client, self.fallback, self.temperature = client, fallback, temperature
        self.cache: dict[str, dict] = {}     # pair key -> Verdict.as_dict()
        self.invalid_json = 0                # answers that were not the JSON asked for
        self.fallbacks = 0                   # calls that timed out or failed (offline judge used)

    @staticmethod
    def pair_key(mastered: Mapping[str, str], task: str, description: str) -> str:
        m = json.dumps(sorted(mastered.items()))
        return hashlib.sha256(f"{m}\n{task}\n{description}".encode()).hexdigest()[:24]

    def judge(self, mastered: Mapping[str, str], candidates: Mapping[str, str]) -> dict[str, Verdict]:
        from llm import LLMError, LLMTimeout

        out, ask = {}, {}
        for t, d in candidates.items():
            hit = self.cache.get(self.pair_key(mastered, t, d))
            if hit is not None:
                out[t] = Verdict(**hit)
            else:
                ask[t] = d
        if not ask:
            return out
        try:
            text = self.client.chat(judge_messages(mastered, ask), temperature=self.temperature).text
        except LLMError as err:
            self.fallbacks += 1
            kind = "timed out" if isinstance(err, LLMTimeout) else "failed"
            log.warning("interestingness LLM %s (%s); judging %d task(s) offline", kind, err, len(ask))
            for t, v in self.fallback.judge(mastered, ask).items():
                out[t] = Verdict(t, v.interesting, f"{v.reason} [LLM {kind}: {err}]", f"embedding (llm {kind})")
            return out
        parsed = parse_verdicts(text, list(ask))
        if parsed is None:
            self.invalid_json += 1
            log.warning("interestingness LLM answer is not the JSON asked for (%d so far); treating %d task(s) as "
                        "interesting: %r", self.invalid_json, len(ask), text[:200])
            for t in ask:
                out[t] = Verdict(t, True, f"LLM answer not valid JSON verdicts: {text[:120]!r}", "llm-invalid-json")
            return out   # not cached: asked again next time
        for t, d in ask.items():
            interesting, reason = parsed[t]
            v = Verdict(t, interesting, reason, self.name)
            self.cache[self.pair_key(mastered, t, d)] = v.as_dict()
            out[t] = v
        return out

    def state_dict(self) -> dict:
        return {"cache": dict(self.cache), "invalid_json": self.invalid_json, "fallbacks": self.fallbacks}

    def load_state_dict(self, state: Mapping) -> None:
        self.cache.update(state.get("cache", {}))
        self.invalid_json = int(state.get("invalid_json", 0))
        self.fallbacks = int(state.get("fallbacks", 0))


SYSTEM = ("You judge a robot learning curriculum. A task is INTERESTING if learning it would teach the robot "
          "something new given what it has already mastered; it is BORING if it is essentially a copy or a trivial "
          "variation (another colour, another zone, the same motion) of a mastered task. Answer with JSON only.")


def judge_messages(mastered: Mapping[str, str], candidates: Mapping[str, str]) -> list[dict]:
    """The prompt: the mastered tasks, then the candidates, and the JSON shape of the answer."""
    lines = ["Tasks the robot has mastered:"]
    lines += [f"- {t}: {d}" for t, d in mastered.items()] or ["- (none)"]
    lines += ["", "Candidate tasks:"] + [f"- {t}: {d}" for t, d in candidates.items()]
    lines += ["", 'Answer {"verdicts": [{"task": <candidate name>, "interesting": true|false, "reason": <one '
              'sentence>}, ...]} with one entry per candidate.']
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def parse_verdicts(text: str, tasks: list[str]) -> dict[str, tuple[bool, str]] | None:
    """``{task: (interesting, reason)}`` for every one of ``tasks``, or None when the answer is
    not JSON of the asked shape (a verdict missing, or ``interesting`` not a boolean)."""
    from generation.codegen_llm import parse_json_object

    obj = parse_json_object(text)
    items = obj.get("verdicts") if isinstance(obj, dict) else None
    if not isinstance(items, list):
        return None
    got = {}
    for item in items:
        if isinstance(item, dict) and item.get("task") in tasks and isinstance(item.get("interesting"), bool):
            got[item["task"]] = (item["interesting"], str(item.get("reason", "")).strip() or "(no reason given)")
    return got if set(got) == set(tasks) else None
