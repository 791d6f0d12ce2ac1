"""The admission gates, in order; the first that fails decides, with its reason.

1. static   -- :mod:`envs.static_check` (syntax, imports, no escapes, one task class)
2. runtime  -- sandboxed: build + reset over K distinct seeds, ``check_env``, determinism
3. oracle   -- sandboxed: the goal-derived oracle succeeds on >= ``oracle_threshold`` of N
               distinct seeds (GenSim replayed one seed; one lucky seed proves little)
4. novelty  -- embedding similarity to every built-in and library task stays below a threshold
5. critic   -- optional (off by default): an LLM reviews the task against its nearest neighbours
               (GenSim's reflection step)

Seeds are derived from the program's hash, so a verdict is reproducible and different programs
are tried on different seeds; runtime and oracle seeds are disjoint, and all of them lie above
the ranges demos (0...), conformance (70_000...) and evaluation (100_000...) use.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field

import numpy as np

from envs import static_check
from generation import isolation as walls
from generation import sandbox
from generation.structure import structure as structure_of
from generation.embedding import NoveltyIndex, canonical_text, embed

GATES = ("static", "runtime", "oracle", "novelty", "critic")


@dataclass
class GateConfig:
    runtime_seeds: int = 5
    oracle_seeds: int = 10
    oracle_threshold: float = 0.8
    # Calibrated on the built-ins: the closest pair of distinct hand-written tasks
    # (place_in_zone / unstack) is at 0.895; copies of stack_blocks with renamed roles, a reworded
    # instruction or another block size are at 0.974-0.979, and so is the procedural
    # "put the X block on the Y block".
    novelty_threshold: float = 0.94
    critic: bool = False
    runtime_limits: sandbox.Limits = field(default_factory=lambda: sandbox.Limits(cpu_s=60, wall_s=120, memory_mb=2048))
    oracle_limits: sandbox.Limits = field(default_factory=lambda: sandbox.Limits(cpu_s=300, wall_s=600, memory_mb=2048))
    # the sandbox's walls: "auto" (bwrap where it runs, else the fallback), "bwrap" or "fallback"
    isolation: str = "auto"
    # Tests only: skip the static gate to prove the sandbox holds on its own.
    skip_static: bool = False

    def __post_init__(self):
        if self.runtime_seeds < 1:
            raise ValueError("runtime_seeds must be >= 1")
        if self.oracle_seeds < 10:
            raise ValueError("oracle_seeds must be >= 10: a handful of seeds cannot tell a reliable task from a lucky one")
        if not 0.0 < self.oracle_threshold <= 1.0:
            raise ValueError("oracle_threshold must be in (0, 1]")
        if self.isolation not in walls.CHOICES:
            raise ValueError(f"isolation={self.isolation} is invalid; allowed: {', '.join(walls.CHOICES)}")


@dataclass
class GateOutcome:
    gate: str
    passed: bool
    reason: str = ""
    details: dict = field(default_factory=dict)
    wall_s: float = 0.0


@dataclass
class Verdict:
    admitted: bool
    gate: str                 # the gate that rejected, or "admitted"
    reason: str
    task_name: str = ""
    instruction: str = ""
    outcomes: list[GateOutcome] = field(default_factory=list)
    embedding: np.ndarray | None = None

    def summary(self) -> dict:
        """The JSON the CLI prints: admitted, gate, reason, and per-gate results."""
        oracle = self.outcome("oracle")
        return {"admitted": self.admitted, "gate": self.gate, "reason": self.reason, "task": self.task_name,
                "oracle_success": oracle.details.get("success_rate") if oracle else None,
                "isolation": self.isolation, "novelty": self.novelty(),
                "gates": {o.gate: {"passed": o.passed, "reason": o.reason, "wall_s": round(o.wall_s, 2)}
                          for o in self.outcomes}}

    def novelty(self) -> dict | None:
        """Nearest task by text and by structure, with both scores (None before the gate ran)."""
        o = self.outcome("novelty")
        if o is None:
            return None
        d = o.details
        text = d.get("nearest") or [["", 0.0]]
        return {"nearest": text[0][0], "cosine": text[0][1], "threshold": d.get("threshold"),
                "structural_nearest": d.get("structural_nearest"),
                "structural_similarity": d.get("structural_similarity"),
                "structural_duplicate": d.get("structural_duplicate")}

    def outcome(self, gate: str) -> GateOutcome | None:
        return next((o for o in self.outcomes if o.gate == gate), None)

    @property
    def isolation(self) -> str | None:
        """The walls the sandboxed gates ran behind, or None when no sandbox ran."""
        runtime = self.outcome("runtime")
        return runtime.details.get("isolation") if runtime else None


def seeds_for(source: str, n: int, offset: int) -> list[int]:
    """``n`` distinct seeds from the program's hash; ``offset`` separates the gates' seed sets."""
    base = 1_000_000 + (int(static_hash(source), 16) % 10_000_000) * 10
    return [base + offset + i for i in range(n)]


def static_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def validate(source: str, *, taken_names: set[str], novelty: NoveltyIndex, config: GateConfig | None = None,
             critic_client=None, on_gate=None, sandboxed=None) -> Verdict:
    """Run the gates in order on ``source``. ``on_gate(name)`` is called as each gate starts
    (for progress display). Nothing is written anywhere; admission is the caller's move.
    ``sandboxed(source, name, config)``: where the sandboxed gates' outcomes come from (default
    :func:`sandbox_gates` here; the pipeline's Ray fan-out hands in results computed ahead)."""
    config = config or GateConfig()
    outcomes: list[GateOutcome] = []
    note = on_gate or (lambda gate: None)

    def stop(o: GateOutcome, name="", instruction="") -> Verdict:
        outcomes.append(o)
        return Verdict(False, o.gate, o.reason, name, instruction, outcomes)

    # 1. static
    note("static")
    t0 = time.monotonic()
    if config.skip_static:
        report = static_check.StaticReport(True, "skipped (test mode)", _guess_name(source))
    else:
        report = static_check.check_source(source, taken_names)
    o = GateOutcome("static", report.ok, report.reason, {"task": report.task_name}, time.monotonic() - t0)
    if not report.ok:
        return stop(o)
    outcomes.append(o)
    name, instruction = report.task_name, report.instruction

    # 2. runtime and 3. oracle (sandboxed; on a Ray worker when the caller fans gates out)
    note("runtime")
    sandboxed_outcomes = sandboxed(source, name, config) if sandboxed else sandbox_gates(source, name, config, note)
    for o in sandboxed_outcomes:
        if not o.passed:
            return stop(o, name, instruction)
        outcomes.append(o)

    # 4. novelty: text (embedding) and structure (goal graph + scene signature)
    note("novelty")
    t0 = time.monotonic()
    vec = embed([canonical_text(source, instruction)])[0]
    runtime = next((o for o in outcomes if o.gate == "runtime"), None)
    descriptions = runtime.details.get("structure") if runtime is not None else None
    o = novelty_gate(vec, descriptions, novelty, config.novelty_threshold)
    o.wall_s = time.monotonic() - t0
    if not o.passed:
        return stop(o, name, instruction)
    outcomes.append(o)

    # 5. critic (optional)
    if config.critic:
        note("critic")
        neighbours = novelty.nearest(vec, 3)   # the critic reads the text-nearest tasks' sources
        o = critic_gate(critic_client, source, {n: novelty.sources.get(n, "") for n, _ in neighbours})
        if not o.passed:
            return stop(o, name, instruction)
        outcomes.append(o)

    # the novelty gate's reason names the nearest task and both scores, admitted or not
    novel = next(o for o in outcomes if o.gate == "novelty")
    return Verdict(True, "admitted", novel.reason, name, instruction, outcomes, vec)


def novelty_gate(vec: np.ndarray, descriptions: list[dict] | None, novelty: NoveltyIndex,
                 threshold: float) -> GateOutcome:
    """Text and structure. Rejected when the instruction + code embed at cosine >= ``threshold``
    to a known task, or when the program's structure (its per-seed descriptions from the runtime
    gate; :mod:`generation.structure`) duplicates a known task's, whatever the words. The reason
    always names the nearest task by each measure and both scores, admitted or not."""
    nearest = novelty.nearest(vec, 3)
    top_name, top_sim = nearest[0] if nearest else ("", 0.0)
    details = {"nearest": [[n, round(s, 4)] for n, s in nearest], "threshold": threshold}
    text = f"nearest by text {top_name!r} (cosine {top_sim:.3f}, limit {threshold})"
    dup = False
    if descriptions:
        candidate = structure_of(descriptions)
        s_name, s_sim, dup = novelty.nearest_structure(candidate)
        details.update(structure=candidate.as_json(), structural_nearest=s_name,
                       structural_similarity=round(s_sim, 4), structural_duplicate=dup)
        shape = (f"structural duplicate of {s_name!r} (the same goal graph and scene signature; "
                 f"structural similarity {s_sim:.3f})" if dup else
                 f"nearest by structure {s_name!r} (similarity {s_sim:.3f}, no exact match)")
    else:  # a runtime outcome without descriptions (an old cache or a test double): text only
        shape = "structure not checked (no runtime descriptions)"
    too_close = top_sim >= threshold
    if too_close:
        reason = f"too similar to {top_name!r}: cosine similarity {top_sim:.3f} >= {threshold}; {shape}"
    elif dup:
        reason = f"{shape}; {text}"
    else:
        reason = f"novel: {text}; {shape}"
    return GateOutcome("novelty", not (dup or too_close), reason, details)


def sandbox_gates(source: str, name: str, config: GateConfig, note=None) -> list[GateOutcome]:
    """The runtime gate, then (if it passed) the oracle gate, each in its sandbox process. A pure
    function of the program and the config (seeds come from the program's hash), so it may run
    ahead of time and anywhere: the caller decides in order what the outcomes mean. ``note("oracle")``
    is called as the oracle gate starts (progress, when run in the caller's process)."""
    run_seeds = seeds_for(source, config.runtime_seeds, 0)
    r = sandbox.run_stage(source, "runtime", run_seeds, config.runtime_limits, isolation=config.isolation)
    details = {"seeds": run_seeds, "isolation": r.isolation, **{k: v for k, v in r.data.items() if k != "ok"}}
    if r.ok and r.data.get("task") != name:
        r.ok, r.reason = False, f"the program registered {r.data.get('task')!r}, not {name!r}"
    o = GateOutcome("runtime", r.ok, r.reason, details, r.wall_s)
    if not r.ok:
        o.details["log_tail"] = r.log_tail[-1500:]
        return [o]
    if note is not None:
        note("oracle")
    oracle_seeds = seeds_for(source, config.oracle_seeds, 1000)
    r = sandbox.run_stage(source, "oracle", oracle_seeds, config.oracle_limits, isolation=config.isolation)
    if r.ok:
        episodes = r.data["episodes"]
        rate = sum(e["success"] for e in episodes) / len(episodes)
        failed = [e for e in episodes if not e["success"]]
        conds = sorted({c for e in failed for c in e["failed"]})
        ok = rate >= config.oracle_threshold
        reason = "" if ok else (f"oracle success {rate:.0%} on {len(episodes)} seeds is below "
                                f"{config.oracle_threshold:.0%}; unmet conditions: {', '.join(conds) or 'none'}")
        oracle = GateOutcome("oracle", ok, reason, {"success_rate": rate, "seeds": oracle_seeds,
                                                    "episodes": episodes, "isolation": r.isolation}, r.wall_s)
    else:
        oracle = GateOutcome("oracle", False, r.reason, {"seeds": oracle_seeds, "isolation": r.isolation,
                                                         "log_tail": r.log_tail[-1500:]}, r.wall_s)
    return [o, oracle]


def _guess_name(source: str) -> str:
    m = re.search(r'register_task\(\s*["\']([^"\']+)', source)
    return m.group(1) if m else ""


def critic_gate(client, source: str, neighbours: dict[str, str]) -> GateOutcome:
    """Ask the LLM whether the task is sensible, solvable as described and distinct from its
    nearest neighbours; it must answer JSON ``{"accept": bool, "reason": str}``."""
    from generation.codegen_llm import critic_messages, parse_json_object

    t0 = time.monotonic()
    if client is None:
        return GateOutcome("critic", False, "the critic gate is on but no LLM client is configured")
    try:
        resp = client.chat(critic_messages(source, neighbours), temperature=0.0)
    except Exception as err:  # noqa: BLE001  (an LLM failure is this gate's verdict)
        return GateOutcome("critic", False, f"critic LLM call failed: {err}", wall_s=time.monotonic() - t0)
    answer = parse_json_object(resp.text)
    tokens = resp.usage.as_dict()
    if not isinstance(answer, dict) or not isinstance(answer.get("accept"), bool):
        return GateOutcome("critic", False, f"critic answer is not JSON with a boolean 'accept': {resp.text[:200]!r}",
                           {"tokens": tokens}, time.monotonic() - t0)
    return GateOutcome("critic", answer["accept"], "" if answer["accept"] else f"critic: {answer.get('reason', '')}",
                       {"reason": answer.get("reason", ""), "tokens": tokens}, time.monotonic() - t0)
