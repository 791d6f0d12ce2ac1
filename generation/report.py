"""Library report: GenSim's funnel (syntax -> runtime -> task completed), admissions, diversity,
the sandbox isolation the candidates ran behind, and LLM tokens spent, from the library's
manifest, metadata and journal."""
from __future__ import annotations

import numpy as np

from generation.gates import GATES
from generation.library import Library

# GenSim's names for the first three gates, shown next to ours
FUNNEL_NAMES = {"static": "syntax", "oracle": "task completed"}


def funnel(attempts: list[dict]) -> dict[str, dict]:
    """Per gate: how many attempts reached it, how many passed, the pass rate. An attempt whose
    LLM call failed (outcome "llm") never reached a gate and is counted apart."""
    out = {}
    reached = [a for a in attempts if a.get("outcome") != "llm"]
    for gate in GATES:
        stopped = sum(a.get("outcome") == gate for a in reached)
        passed = sum(gate in a.get("passed", []) for a in reached)
        n = passed + stopped
        if n:
            out[gate] = {"reached": n, "passed": passed, "rate": passed / n}
        reached = [a for a in reached if gate in a.get("passed", [])]
    return out


def isolation_counts(attempts: list[dict], metas: list[dict]) -> dict[str, int]:
    """How many candidates ran behind which sandbox walls ("bwrap", "unshare(net,pid)", ...):
    every ``generate`` attempt that reached the sandbox, plus admitted tasks no attempt records
    (``admit`` keeps no journal; the task's metadata is its record)."""
    journalled = {a.get("task") for a in attempts}
    seen = [a.get("isolation") for a in attempts]
    seen += [m.get("gates", {}).get("runtime", {}).get("isolation") for m in metas if m.get("name") not in journalled]
    counts: dict[str, int] = {}
    for iso in filter(None, seen):
        counts[iso] = counts.get(iso, 0) + 1
    return counts


def build_report(library: Library) -> dict:
    attempts = library.journal("attempts")
    damaged = library.damaged()
    names = library.names()
    metas = [library.meta(n) for n in names if n not in damaged]
    vecs = np.array([m["embedding"] for m in metas if m.get("embedding")], np.float32)
    from generation.embedding import mean_pairwise_distance

    tokens = {k: sum(int((a.get("tokens") or {}).get(k, 0)) for a in attempts)
              for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    by_gen: dict[str, int] = {}
    for m in metas:
        by_gen[m.get("generator", "?")] = by_gen.get(m.get("generator", "?"), 0) + 1
    rates = [m["oracle_success"] for m in metas if "oracle_success" in m]
    return {
        "library": str(library.root), "admitted": len(names), "admitted_by_generator": by_gen,
        "attempts": len(attempts), "llm_call_failures": sum(a.get("outcome") == "llm" for a in attempts),
        "funnel": funnel(attempts),
        "admission_rate": (sum(a.get("outcome") == "admitted" for a in attempts) / len(attempts)) if attempts else None,
        "diversity_mean_pairwise_cosine_distance": mean_pairwise_distance(vecs) if len(vecs) else 0.0,
        "mean_oracle_success": float(np.mean(rates)) if rates else None,
        "sandbox_isolation": isolation_counts(attempts, metas),
        "llm_tokens": tokens, "orphans": library.orphans(), "damaged": damaged,
    }


def format_report(r: dict) -> str:
    lines = [f"library {r['library']}: {r['admitted']} task(s) admitted "
             + (f"({', '.join(f'{k}: {v}' for k, v in r['admitted_by_generator'].items())})" if r["admitted"] else ""),
             f"attempts recorded: {r['attempts']}"
             + (f" ({r['llm_call_failures']} failed LLM calls)" if r["llm_call_failures"] else ""), "",
             f"{'gate':<24}{'reached':>7} {'passed':>7}  {'pass rate':>9}"]
    for gate, f in r["funnel"].items():
        label = gate + (f" ({FUNNEL_NAMES[gate]})" if gate in FUNNEL_NAMES else "")
        lines.append(f"{label:<24}{f['reached']:>7} {f['passed']:>7}  {f['rate']:>9.0%}")
    if r["admission_rate"] is not None:
        lines.append(f"overall admission rate: {r['admission_rate']:.0%}")
    lines += ["", f"diversity (mean pairwise cosine distance of admitted tasks): "
                  f"{r['diversity_mean_pairwise_cosine_distance']:.3f}"]
    if r["mean_oracle_success"] is not None:
        lines.append(f"mean oracle success of admitted tasks: {r['mean_oracle_success']:.0%}")
    if r["sandbox_isolation"]:
        lines.append("sandbox isolation: " + ", ".join(f"{k} ({v} candidate{'s' if v != 1 else ''})"
                                                      for k, v in r["sandbox_isolation"].items()))
    t = r["llm_tokens"]
    lines.append(f"LLM tokens: {t['total_tokens']} (prompt {t['prompt_tokens']}, completion {t['completion_tokens']})")
    for name, why in r["damaged"].items():
        lines.append(f"DAMAGED {name}: not loaded ({why})")
    if r["orphans"]:
        lines.append(f"orphan files from an interrupted admission (swept at the next one): {', '.join(r['orphans'])}")
    return "\n".join(lines)
