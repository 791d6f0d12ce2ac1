"""propose -> write code -> validate -> admit, for either generator, with progress and a journal.

``generate(...)`` makes ``count`` attempts. Each attempt is one task program (or one failed try
at getting one from the LLM); it runs through the gates and is admitted or recorded in the
library's journal, rejections also in the error book that later LLM prompts read.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from generation import codegen_llm
from generation.embedding import MODEL_ID, NoveltyIndex, canonical_text, embed
from envs import static_check
from generation.gates import GateConfig, Verdict, _guess_name, sandbox_gates, validate
from generation.library import Library, load_library, now_iso, sha256
from generation.catalogue import procedural_space
from generation.curriculum import curriculum
from generation.exploration import Explorer
from generation.from_task import draft_from_task
from generation.proposal import Proposal, spec_hash
from generation.structure import Structure, task_structure


@dataclass
class Candidate:
    """One attempt's program. ``source`` is None when no program could be had (then ``error``
    says why and ``error_gate`` is "static" for an unusable answer, "llm" for a failed call)."""

    proposal: Proposal
    source: str | None
    prompt_hash: str = ""
    tokens: dict = field(default_factory=dict)
    error: str = ""
    error_gate: str = "static"


@dataclass
class RunSummary:
    generator: str
    mode: str
    attempted: int = 0
    admitted: list[str] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    tokens: dict = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    wall_s: float = 0.0
    plan: list[str] = field(default_factory=list)
    llm_calls: int = 0        # generator calls made (proposal, curriculum, code)
    llm_answered: int = 0     # of those, how many got any answer from the endpoint (an HTTP error counts)
    llm_failures: list[str] = field(default_factory=list)  # why each failed call failed

    def as_dict(self) -> dict:
        return {"generator": self.generator, "mode": self.mode, "attempted": self.attempted,
                "admitted": self.admitted, "n_admitted": len(self.admitted), "rejected": self.rejected,
                "tokens": self.tokens, "wall_s": round(self.wall_s, 1), "plan": self.plan,
                "llm_calls": self.llm_calls, "llm_answered": self.llm_answered, "llm_failures": self.llm_failures}

    @property
    def endpoint_never_answered(self) -> bool:
        """The LLM generator made calls and not one reached the endpoint (dead address, timeouts)."""
        return self.llm_calls > 0 and self.llm_answered == 0


def build_index(library: Library) -> NoveltyIndex:
    """Built-ins + every library task; stored embeddings are reused when the model matches."""
    index = NoveltyIndex.with_builtins()
    for name in library.usable_names():  # a damaged task is skipped, as loading skips it
        meta, source = library.meta(name), library.source(name)
        vec = meta.get("embedding")
        if vec is None or meta.get("embedding_model") != MODEL_ID:
            vec = embed([canonical_text(source, meta.get("instruction", ""))])[0]
        index.add(name, np.asarray(vec, np.float32), source, library_structure(name, meta))
    return index


def library_structure(name: str, meta: dict):
    """A library task's structural signature: built here on 16 seeds when the task is registered
    (the library was loaded), else the one stored at admission (its runtime seeds), else None."""
    from envs.registry import list_tasks, get_task

    if name in list_tasks():
        return task_structure(get_task(name))
    stored = meta.get("gates", {}).get("novelty", {}).get("structure")
    return Structure.from_json(stored) if stored else None


def taken_names(index: NoveltyIndex) -> set[str]:
    """Names a new task may not use: everything compared against plus everything registered."""
    from envs.registry import list_tasks

    return set(index.names) | set(list_tasks())


# -- generators: each yields Candidates ------------------------------------------------------------

class ProceduralCandidates:
    """The procedural generator's candidates, in the order the serial loop takes them;
    :meth:`upcoming` names the next ones (assuming each is admitted) for gates run ahead."""

    def __init__(self, library: Library, index: NoveltyIndex, mode: str, target: str | None,
                 rng: np.random.Generator, plan: list[str]):
        self.explorer, self.steps = None, []
        if mode == "exploratory":
            tried = {r.get("task") for r in library.journal("attempts") if r.get("generator") == "procedural"}
            self.explorer = Explorer(procedural_space(), taken_names(index) | tried, index, rng)
            return
        space = {d.name: d for d in procedural_space()}
        if target in space:
            self.steps = curriculum(space[target])
        else:
            draft = draft_from_task(target)  # a registered task: its stepping stones (it exists already)
            self.steps = curriculum(draft)[:-1]
        plan.extend(p.name for p in self.steps)

    @staticmethod
    def _candidate(p: Proposal) -> Candidate:
        return Candidate(p, p.source(), prompt_hash=spec_hash(p.draft))

    def __iter__(self) -> Iterator[Candidate]:
        proposals = iter(self.explorer) if self.explorer is not None else iter(self.steps)
        for p in proposals:
            if self.explorer is None:
                self.steps = self.steps[1:]
            yield self._candidate(p)

    def upcoming(self, k: int) -> list[Candidate]:
        proposals = self.explorer.upcoming(k) if self.explorer is not None else self.steps[:k]
        return [self._candidate(p) for p in proposals]


def procedural_candidates(library: Library, index: NoveltyIndex, mode: str, target: str | None,
                          rng: np.random.Generator, plan: list[str]) -> Iterator[Candidate]:
    return iter(ProceduralCandidates(library, index, mode, target, rng, plan))


class GatesAhead:
    """The sandboxed gates (runtime, oracle) of the coming candidates, run ahead on Ray workers.
    Their outcome is a pure function of the program, so running them early and in parallel
    changes nothing; static, novelty, critic and admission stay in the caller, one candidate at a
    time, in the serial order. A guess that does not come next costs a worker's time, not a result."""

    def __init__(self, pool, config: GateConfig):
        self.pool, self.config, self.jobs = pool, config, {}

    def prefetch(self, candidates: list[Candidate]) -> None:
        wanted = {}
        for cand in candidates:
            if cand.source is None:
                continue
            name = _guess_name(cand.source) if self.config.skip_static else static_check.check_source(
                cand.source, set()).task_name
            if name:
                wanted[(sha256(cand.source), name)] = cand
        self.jobs = {k: j for k, j in self.jobs.items() if k in wanted}   # a dropped guess runs on, unread
        for (digest, name), cand in wanted.items():
            if (digest, name) not in self.jobs:
                self.jobs[(digest, name)] = self.pool.submit(_sandbox_item, (cand.source, name, self.config),
                                                             label=f"gates of {name}")

    def outcomes(self, source: str, name: str, config: GateConfig) -> list:
        """What :func:`generation.gates.validate` asks for: this program's sandboxed outcomes."""
        job = self.jobs.pop((sha256(source), name), None)
        if job is None:
            job = self.pool.submit(_sandbox_item, (source, name, config), label=f"gates of {name}")
        return job.result()


def _sandbox_item(item):
    source, name, config = item
    return sandbox_gates(source, name, config)


class LLMCandidates:
    """GenSim's two LLM stages: propose (or plan a curriculum), then write the code."""

    def __init__(self, client, library: Library, index: NoveltyIndex, temperature: float = 0.7,
                 summary: RunSummary | None = None):
        self.client, self.library, self.index, self.temperature = client, library, index, temperature
        self.summary = summary if summary is not None else RunSummary("llm", "")

    def _instructions(self) -> dict[str, str]:
        from envs.registry import get_task, list_tasks

        out = {}
        for name in self.index.names:
            out[name] = get_task(name).instruction if name in list_tasks() else self.library.meta(name).get("instruction", "")
        return out

    def _errors(self) -> str:
        return codegen_llm.error_book_text(self.library.journal("error_book"))

    def _ask(self, messages: list[dict]):
        """One generator call, counted: did it reach the endpoint at all (see RunSummary)?"""
        from llm import LLMTimeout, LLMUnreachable

        self.summary.llm_calls += 1
        try:
            resp = self.client.chat(messages, temperature=self.temperature)
        except (LLMUnreachable, LLMTimeout) as err:  # nothing came back
            self.summary.llm_failures.append(str(err))
            raise
        except Exception as err:  # noqa: BLE001  (an HTTP error or a garbled answer: the endpoint answered)
            self.summary.llm_answered += 1
            self.summary.llm_failures.append(str(err))
            raise
        self.summary.llm_answered += 1
        return resp

    def _write(self, proposal: Proposal, tokens: dict) -> Candidate:
        examples = self._retrieve(f"{proposal.description}\n{proposal.instruction}")
        messages = codegen_llm.code_messages(proposal, examples, self._errors())
        ph = codegen_llm.prompt_hash(messages)
        try:
            resp = self._ask(messages)
        except Exception as err:  # noqa: BLE001  (the attempt fails; the run goes on)
            return Candidate(proposal, None, ph, tokens, f"LLM call failed: {err}", "llm")
        tokens = _add_tokens(tokens, resp.usage.as_dict())
        try:
            return Candidate(proposal, codegen_llm.extract_code(resp.text), ph, tokens)
        except codegen_llm.NoCodeBlock as err:
            return Candidate(proposal, None, ph, tokens, str(err), "static")

    def _retrieve(self, query: str, k: int = 3) -> dict[str, str]:
        """The ``k`` library tasks nearest to the proposal, as in-context examples."""
        vec = embed([query])[0]
        return {n: self.index.sources[n] for n, _ in self.index.nearest(vec, k)}

    def candidates(self, mode: str, target: str | None, count: int, plan: list[str]) -> Iterator[Candidate]:
        if mode == "goal":
            yield from self._goal(target, count, plan)
            return
        while True:
            tokens: dict = {}
            messages = codegen_llm.propose_messages(self._instructions(), self._errors())
            try:
                resp = self._ask(messages)
            except Exception as err:  # noqa: BLE001
                yield Candidate(Proposal("llm_proposal", "", origin="llm"), None, codegen_llm.prompt_hash(messages),
                                tokens, f"LLM call failed: {err}", "llm")
                continue
            tokens = resp.usage.as_dict()
            proposal = codegen_llm.proposal_from_json(codegen_llm.parse_json_object(resp.text))
            if proposal is not None:
                proposal.name = _free_name(proposal.name, taken_names(self.index))
            if proposal is None:
                yield Candidate(Proposal("llm_proposal", "", origin="llm"), None, codegen_llm.prompt_hash(messages),
                                tokens, f"the proposal answer is not the requested JSON: {resp.text[:200]!r}", "static")
                continue
            yield self._write(proposal, tokens)

    def _goal(self, target: str, count: int, plan: list[str]) -> Iterator[Candidate]:
        from envs.registry import get_task, list_tasks

        described = target
        if target in list_tasks():
            described = f"{target}: {get_task(target).instruction}"
        messages = codegen_llm.curriculum_messages(described, self._instructions(), count)
        try:
            resp = self._ask(messages)
        except Exception as err:  # noqa: BLE001
            yield Candidate(Proposal("llm_curriculum", described, origin="llm"), None,
                            codegen_llm.prompt_hash(messages), {}, f"LLM call failed: {err}", "llm")
            return
        tokens = resp.usage.as_dict()
        data = codegen_llm.parse_json_object(resp.text)
        steps = [codegen_llm.proposal_from_json(t, "llm-curriculum") for t in (data or {}).get("tasks", [])
                 if isinstance(t, dict)]
        steps = [s for s in steps if s is not None]
        taken = taken_names(self.index)
        for s in steps:
            s.name = _free_name(s.name, taken)
            taken.add(s.name)
        if not steps:
            yield Candidate(Proposal("llm_curriculum", described, origin="llm"), None, codegen_llm.prompt_hash(messages),
                            tokens, f"the curriculum answer is not the requested JSON: {resp.text[:200]!r}", "static")
            return
        plan.extend(s.name for s in steps)
        for i, step in enumerate(steps):
            yield self._write(step, tokens if i == 0 else {})  # the plan's tokens count once


def _free_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``... when taken (LLMs like to re-propose library names)."""
    if name not in taken:
        return name
    i = 2
    while f"{name[:44]}_{i}" in taken:
        i += 1
    return f"{name[:44]}_{i}"


def _add_tokens(a: dict, b: dict) -> dict:
    return {k: int(a.get(k, 0)) + int(b.get(k, 0)) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


# -- the loop ---------------------------------------------------------------------------------------

def generate(library: Library, generator: str = "procedural", count: int = 10, mode: str = "exploratory",
             target: str | None = None, config: GateConfig | None = None, client=None, seed: int = 0,
             progress: bool = True, pool=None) -> RunSummary:
    """Make ``count`` attempts with ``generator`` ("procedural" | "llm") into ``library``.

    ``pool`` (a :class:`fanout.Pool`, ``--workers``): the sandboxed gates of the procedural
    generator's next candidates run ahead on its workers; the admitted set is the serial one.
    The LLM generator's next program depends on the last verdict (its error book), so there each
    candidate's gates still run on a worker but one after another."""
    from tqdm import tqdm

    if mode == "goal" and not target:
        raise ValueError("--mode goal needs --target TASK")
    config = config or GateConfig()
    if library.names():
        load_library(library.root)  # a goal target or a retrieval example may be a library task
    index = build_index(library)
    summary = RunSummary(generator, mode)
    run_id = uuid.uuid4().hex[:8]
    rng = np.random.default_rng(seed)
    if generator == "procedural":
        source = ProceduralCandidates(library, index, mode, target, rng, summary.plan)
    elif generator == "llm":
        source = LLMCandidates(client, library, index, summary=summary).candidates(mode, target, count, summary.plan)
    else:
        raise ValueError(f"unknown generator {generator!r}; choose procedural or llm")
    ahead = GatesAhead(pool, config) if pool is not None else None
    candidates = iter(source)  # `source` itself may also name the upcoming ones (gates run ahead)
    t_start = time.monotonic()
    bar = tqdm(total=count, desc=f"generate[{generator}]", unit="task", disable=not progress, dynamic_ncols=True)
    try:
        while summary.attempted < count:  # checked before the next candidate: no LLM call past count
            cand = next(candidates, None)
            if cand is None:
                break
            summary.attempted += 1
            bar.set_postfix_str(f"{cand.proposal.name[:30]} admitted={len(summary.admitted)}")
            if ahead is not None:
                coming = source.upcoming(min(2 * pool.workers, count - summary.attempted)) \
                    if hasattr(source, "upcoming") else []
                ahead.prefetch([cand, *coming])
            verdict = _attempt(cand, library, index, config, client, bar,
                               ahead.outcomes if ahead is not None else None)
            summary.tokens = _add_tokens(summary.tokens, cand.tokens)
            if verdict.admitted:
                summary.admitted.append(verdict.task_name)
            else:
                summary.rejected[verdict.gate] = summary.rejected.get(verdict.gate, 0) + 1
            _journal(library, run_id, generator, mode, cand, verdict)
            bar.update(1)
    finally:
        bar.close()
    summary.wall_s = time.monotonic() - t_start
    return summary


def _attempt(cand: Candidate, library: Library, index: NoveltyIndex, config: GateConfig, client, bar,
             sandboxed=None) -> Verdict:
    if cand.source is None:
        return Verdict(False, cand.error_gate, cand.error, cand.proposal.name)
    t0 = time.monotonic()
    verdict = validate(cand.source, taken_names=taken_names(index), novelty=index, config=config, critic_client=client,
                       on_gate=lambda g: bar.set_postfix_str(f"{cand.proposal.name[:30]} [{g}]"), sandboxed=sandboxed)
    if verdict.admitted:
        meta = admission_meta(verdict, cand.source, cand.proposal.origin, cand.prompt_hash, cand.tokens,
                              time.monotonic() - t0, description=cand.proposal.description,
                              extra=cand.proposal.meta)
        library.admit(verdict.task_name, cand.source, meta)
        stored = verdict.outcome("novelty").details.get("structure")
        index.add(verdict.task_name, verdict.embedding, cand.source, Structure.from_json(stored) if stored else None)
    return verdict


def admission_meta(verdict: Verdict, source: str, generator: str, prompt_hash: str, tokens: dict,
                   validate_s: float, description: str = "", extra: dict | None = None) -> dict:
    """The metadata record stored next to an admitted task."""
    oracle = verdict.outcome("oracle")
    runtime = verdict.outcome("runtime")
    return {
        "name": verdict.task_name, "instruction": verdict.instruction, "description": description,
        "generator": generator, "prompt_hash": prompt_hash, "source_sha256": sha256(source),
        "admitted_at": now_iso(), "validate_s": round(validate_s, 2),
        "oracle_success": oracle.details["success_rate"], "oracle_seeds": oracle.details["seeds"],
        "runtime_seeds": runtime.details["seeds"], "llm_tokens": tokens,
        "gates": {o.gate: {"passed": o.passed, "reason": o.reason, "wall_s": round(o.wall_s, 2),
                           **{k: v for k, v in o.details.items() if k not in ("episodes", "log_tail")}}
                  for o in verdict.outcomes},
        "oracle_episodes": oracle.details["episodes"],
        "embedding_model": MODEL_ID, "embedding": [round(float(x), 6) for x in verdict.embedding],
        "proposal": extra or {},
    }


def _journal(library: Library, run_id: str, generator: str, mode: str, cand: Candidate, verdict: Verdict) -> None:
    record = {"ts": now_iso(), "run": run_id, "generator": generator, "mode": mode,
              "task": verdict.task_name or cand.proposal.name, "outcome": verdict.gate,
              "reason": verdict.reason, "passed": [o.gate for o in verdict.outcomes if o.passed],
              "isolation": verdict.isolation, "tokens": cand.tokens, "prompt_hash": cand.prompt_hash}
    library.journal_append("attempts", record)
    # the error book feeds later prompts with the model's own mistakes; a call that failed (dead
    # endpoint, timeout, HTTP error) says nothing about the model, so it stays in attempts only
    if not verdict.admitted and verdict.gate != "llm":
        library.journal_append("error_book", {"ts": record["ts"], "generator": generator, "task": record["task"],
                                              "gate": verdict.gate, "reason": verdict.reason})
