"""How large is the procedural generator's space? (issue 19, target 1; docs/generation.md)

    nice -n 10 python -m bench.generation_space --offline          # minutes: no simulator
    nice -n 10 python -m bench.generation_space --oracle-sample 12 # the oracle on 12 composed drafts
    nice -n 10 python -m bench.generation_space --calibrate        # structural false rejects
    nice -n 10 python -m bench.generation_space --count 250 --second 40   # the gates, for real

``--offline`` reads the space without running a task: every draft is rendered, embedded (the
novelty gate's text) and described structurally by running its ``build``/``goals`` on 5 seeds in
this process (the gate's structure, without the sandbox); then the exploration order is replayed
against the built-ins: least similar draft first, admitted when its cosine to everything admitted
is below the threshold and it duplicates no structure. That is the number of mutually novel tasks
the space holds, an upper bound on what a live run admits (the oracle gate may still reject).

Without ``--offline``: ``generate --generator procedural --count N`` into an empty library (every
gate, the oracle on 10 seeds each), then ``--second M`` more attempts into the same library; the
admitted counts, the funnel per gate, the admitted tasks' oracle success and the wall times.
Writes ``bench/results/generation_space.json`` (offline: ``generation_space_offline.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from bench.common import RESULTS, load, log, machine  # noqa: E402


def _draft_structure(draft, seeds=(0, 1, 2, 3, 4)):
    """A draft's structure, built in this process (the source is ours: rendered from data)."""
    import envs.registry
    from generation.codegen_procedural import render
    from generation.structure import describe_task, structure

    found = []
    real = envs.registry.register_task
    envs.registry.register_task = lambda name: (lambda cls: found.append(cls) or cls)
    try:
        exec(compile(render(draft), f"<{draft.name}>", "exec"), {"__name__": "draft"})
    finally:
        envs.registry.register_task = real
    return structure(describe_task(found[0], list(seeds)))


def offline(threshold: float) -> dict:
    from generation.catalogue import procedural_space
    from generation.codegen_procedural import render
    from generation.embedding import NoveltyIndex, canonical_text, embed

    t0 = time.monotonic()
    drafts = procedural_space()
    log(f"{len(drafts)} drafts; embedding")
    vecs = embed([canonical_text(render(d), d.text) for d in drafts])
    log("structures")
    structs = [_draft_structure(d) for d in drafts]
    index = NoveltyIndex.with_builtins()
    admitted, alive = [], np.ones(len(drafts), bool)
    why = Counter()
    while alive.any():   # the Explorer's order: least similar to everything known first
        sims = index.vectors @ vecs.T
        score = np.where(alive, sims.max(axis=0), np.inf)
        i = int(np.argmin(score))
        alive[i] = False
        if score[i] >= threshold:
            why["text"] += int(alive.sum()) + 1   # everything left is at least this close
            break
        _, _, dup = index.nearest_structure(structs[i])
        if dup:
            why["structure"] += 1
            continue
        admitted.append(drafts[i].name)
        index.add(drafts[i].name, vecs[i], "", structs[i])
    classes = len({s.hashes for s in structs})
    fams = Counter(d.family.split("_")[0] if d.family.startswith("duo") else "catalogue" for d in drafts
                   if d.name in set(admitted))
    return {"drafts": len(drafts), "structural_classes": classes, "mutually_novel": len(admitted),
            "rejected": dict(why), "admitted_by_source": dict(fams), "threshold": threshold,
            "wall_s": round(time.monotonic() - t0, 1), "admitted": admitted}


def calibrate() -> dict:
    """Structural false rejects: which built-ins duplicate each other, and how the hand-made
    catalogue drafts fall together (with each other and with the built-ins)."""
    import itertools
    from collections import defaultdict

    from generation.catalogue import FAMILIES
    from generation.embedding import builtin_structures

    b = builtin_structures()
    builtin_dups = [[x, y] for x, y in itertools.permutations(b, 2) if b[x].duplicates(b[y])]
    drafts = [d for family in FAMILIES for d in family()]
    s = {d.name: _draft_structure(d) for d in drafts}
    groups = defaultdict(list)
    for name, sig in s.items():
        groups[sig.hashes].append(name)
    dup_of_builtin = {n: [x for x, t in b.items() if sig.duplicates(t)] for n, sig in s.items()}
    return {"builtins": len(b), "builtin_pairs": len(b) * (len(b) - 1), "builtin_duplicates": builtin_dups,
            "catalogue_drafts": len(drafts), "catalogue_structures": len(groups),
            "shared_groups": [g for g in groups.values() if len(g) > 1],
            "dup_of_builtin": {k: v for k, v in dup_of_builtin.items() if v}}


def oracle_sample(n: int, seeds: int) -> dict:
    """The oracle on ``seeds`` seeds of ``n`` composed drafts drawn at random (in this process,
    as the oracle gate runs it in the sandbox): how many of the new drafts are solvable."""
    from generation.codegen_procedural import render
    from generation.compose import composed_space
    from generation.runner import stage_oracle

    drafts = composed_space()
    pick = np.random.default_rng(0).choice(len(drafts), size=min(n, len(drafts)), replace=False)
    rows = []
    for i in pick:
        d = drafts[int(i)]
        t = time.monotonic()
        exec(compile(render(d), f"<{d.name}>", "exec"), {"__name__": "draft"})   # registers it
        eps = stage_oracle(d.name, list(range(2_000_000, 2_000_000 + seeds)))["episodes"]
        rate = sum(e["success"] for e in eps) / len(eps)
        failed = sorted({c for e in eps for c in e["failed"]})
        rows.append({"task": d.name, "success": rate, "failed": failed, "wall_s": round(time.monotonic() - t, 1)})
        log(f"{d.name}: oracle {rate:.0%} on {seeds} seeds ({rows[-1]['wall_s']} s) {failed or ''}")
    passed = sum(r["success"] >= 0.8 for r in rows)
    return {"drafts": len(rows), "seeds": seeds, "pass_at_0.8": passed, "rows": rows}


def novelty_split(attempts: list[dict]) -> dict:
    """Novelty rejections by measure (text, structure), read from the journal's reasons."""
    out = Counter()
    for a in attempts:
        if a.get("outcome") == "novelty":
            out["text" if a["reason"].startswith("too similar") else "structure"] += 1
    return dict(out)


def library_facts(lib) -> dict:
    """What the filled library holds: mutual novelty read back from the stored embeddings and
    structures, and the admitted tasks' oracle success."""
    metas = [lib.meta(n) for n in lib.names()]
    vecs = np.array([m["embedding"] for m in metas], np.float32).reshape(len(metas), -1)
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -1.0)
    return {"tasks": len(metas), "max_pairwise_cosine": round(float(sims.max()), 4) if len(metas) > 1 else None,
            "distinct_structures": len({tuple(m["gates"]["novelty"]["structure"]["hashes"]) for m in metas}),
            "composed": sum(m["name"].startswith("duo_") for m in metas),
            "with_reach": sum("reach" in m["name"] for m in metas),
            "oracle_counts": {str(k): v for k, v in sorted(Counter(m["oracle_success"] for m in metas).items())}}


def live(count: int, second: int, workers: int, library: Path | None, on_run=None) -> dict:
    """Two ``generate`` runs into one new library. ``on_run(out)`` after each run (the bench
    writes its result file then, so a first run's figures survive a second run cut short)."""
    from generation.library import Library
    from generation.pipeline import generate

    out = {}
    with tempfile.TemporaryDirectory() as root:
        lib = Library(library or Path(root) / "lib")   # a named one can be read while the run goes on
        if lib.names():
            raise SystemExit(f"--library {library} already holds tasks; the bench starts from an empty one")
        pool = None
        if workers > 1:
            from fanout import Pool
            pool = Pool(workers=workers)
        for run, n in (("first", count), ("second", second)):
            if n <= 0:
                continue
            log(f"{run} run: {n} attempts")
            t, load_start, seen = time.monotonic(), load(), len(lib.journal("attempts"))
            s = generate(lib, "procedural", count=n, progress=True, seed=0 if run == "first" else 1, pool=pool)
            rates = [lib.meta(name)["oracle_success"] for name in s.admitted]
            out[run] = {"attempted": s.attempted, "admitted": len(s.admitted), "rejected": s.rejected,
                        "wall_s": round(time.monotonic() - t, 1), "load_start": load_start, "load_end": load(),
                        "oracle_mean": round(float(np.mean(rates)), 3) if rates else None,
                        "oracle_min": round(float(np.min(rates)), 3) if rates else None,
                        "oracle_at_least_0.8": sum(r >= 0.8 for r in rates),
                        "novelty_split": novelty_split(lib.journal("attempts")[seen:]),
                        "names": s.admitted}
            log(f"{run}: {len(s.admitted)}/{s.attempted} admitted in {out[run]['wall_s']} s; rejected {s.rejected}")
            out["library"] = library_facts(lib)
            if on_run is not None:
                on_run(out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--offline", action="store_true", help="read the space without the simulator")
    ap.add_argument("--oracle-sample", type=int, default=0, metavar="N",
                    help="run the oracle on N composed drafts drawn at random (10 seeds each)")
    ap.add_argument("--calibrate", action="store_true",
                    help="structural duplicates among the built-ins and the hand-made catalogue drafts")
    ap.add_argument("--count", type=int, default=250, help="attempts of the first live run")
    ap.add_argument("--second", type=int, default=40, help="attempts of the second live run")
    ap.add_argument("--workers", type=int, default=1, help="Ray workers for the sandboxed gates")
    ap.add_argument("--library", type=Path, default=None,
                    help="the (new) library directory to fill; default a temporary one")
    ap.add_argument("--threshold", type=float, default=0.94, help="novelty threshold (the gate's default)")
    args = ap.parse_args(argv)
    m = machine()
    if args.calibrate:
        res = {"mode": "calibrate", **calibrate()}
        path = RESULTS / "generation_space_calibration.json"
        rows = [("built-in ordered pairs that are structural duplicates",
                 f"{len(res['builtin_duplicates'])} of {res['builtin_pairs']}"),
                ("hand-made drafts / distinct structures", f"{res['catalogue_drafts']} / {res['catalogue_structures']}"),
                ("groups of drafts sharing one structure", len(res["shared_groups"])),
                ("drafts that duplicate a built-in", len(res["dup_of_builtin"]))]
    elif args.oracle_sample:
        res = {"mode": "oracle_sample", **oracle_sample(args.oracle_sample, 10)}
        path = RESULTS / "generation_space_oracle.json"
        rows = [(r["task"], f"{r['success']:.0%}  {' '.join(r['failed'])}") for r in res["rows"]]
        rows.append(("drafts with oracle >= 80% on 10 seeds", f"{res['pass_at_0.8']} of {res['drafts']}"))
    elif args.offline:
        res = {"mode": "offline", **offline(args.threshold)}
        path = RESULTS / "generation_space_offline.json"
        rows = [("drafts in the space", res["drafts"]), ("distinct structures", res["structural_classes"]),
                ("mutually novel (text < threshold, no structural duplicate)", res["mutually_novel"]),
                ("left out by structure", res["rejected"].get("structure", 0)),
                ("left out by text", res["rejected"].get("text", 0)),
                ("wall", f"{res['wall_s']} s")]
    else:
        path = RESULTS / "generation_space.json"
        res = {"mode": "live", "count": args.count, "second_count": args.second, "workers": args.workers,
               "command": "python -m bench.generation_space " + " ".join(sys.argv[1:] if argv is None else argv),
               "date": time.strftime("%Y-%m-%d", time.gmtime())}

        def partial(out):
            RESULTS.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**res, **out, "machine": m, "load_end": load()}, indent=1) + "\n")

        res.update(live(args.count, args.second, args.workers, args.library, on_run=partial))
        rows = []
        for run in ("first", "second"):
            r = res.get(run)
            if r:
                rows.append((f"{run} run", f"{r['admitted']} of {r['attempted']} admitted, rejected {r['rejected']}, "
                                          f"oracle mean {r['oracle_mean']} (min {r['oracle_min']}), {r['wall_s']} s"))
    res["machine"], res["load_end"] = m, load()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1) + "\n")
    width = max(len(k) for k, _ in rows) if rows else 0
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(f"load average at start {m['load_avg_1m_at_start']:.1f}, at end {res['load_end']:.1f}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
