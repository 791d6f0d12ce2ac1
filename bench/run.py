"""roboforge against the tools you would pick instead, on this machine, in one run, as ratios.

    python -m bench.run [--quick] [--only throughput,scaling,demos,diffusion,learning,export] [--no-install]

``make bench`` runs this. Each benchmark (:mod:`bench.runner`) runs its workers as subprocesses,
ours with the project's interpreter and each peer with the interpreter of its own virtual
environment under ``bench/peers/`` (:mod:`bench.peer_venvs`, created on first use from PyPI, never
a project dependency).

Every worker prints one JSON line; this script writes ``bench/results/<benchmark>.json``
(the date, machine, versions and command included), regenerates the table in
``docs/benchmarks.md`` from all result files (:mod:`bench.report`), and prints that table. Peer
rounds alternate with ours so a busy neighbour on a shared machine slows both alike; the best
round of each counts. ``--quick`` (< 5 minutes once the peer venvs exist) runs fewer steps and one
repeat; it writes to ``bench/results/quick/`` (gitignored) and leaves ``docs/benchmarks.md`` alone.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from bench import report
from bench.common import RESULTS, log, machine
from bench.peer_venvs import peer_pythons
from bench.runner import BENCHMARKS, run_benchmark


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, one repeat (< 5 min with peer venvs in place)")
    ap.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    ap.add_argument("--repeats", type=int, default=None, help="alternating ours/peer repeats (default 2; 1 with --quick)")
    ap.add_argument("--no-install", action="store_true", help="skip peers whose venv is missing instead of creating it")
    ap.add_argument("--no-peers", action="store_true", help="measure roboforge only")
    ap.add_argument("--report-only", action="store_true", help="regenerate docs/benchmarks.md from bench/results/")
    a = ap.parse_args(argv)
    a.repeats = a.repeats or (1 if a.quick else 2)
    only = [b.strip() for b in a.only.split(",") if b.strip()]
    unknown = set(only) - set(BENCHMARKS)
    if unknown:
        ap.error(f"--only: unknown {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}")

    # quick runs are smoke checks: their files stay out of the committed results and this page
    out_dir = RESULTS / "quick" if a.quick else RESULTS
    if not a.report_only:
        out_dir.mkdir(parents=True, exist_ok=True)
        m = machine()
        if m["load_avg_1m_at_start"] > m["cores"]:
            log(f"load average {m['load_avg_1m_at_start']} > {m['cores']} cores: the machine is busy; wall-clock "
                f"figures will be low, per-CPU-second figures hold up better")
        needed = set() if a.no_peers else {p for b in only for p in BENCHMARKS[b].peers}
        peers = peer_pythons(needed, install=not a.no_install)
        cmd = "python -m bench.run " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
        for name in only:
            run_benchmark(name, a, peers, m, cmd.strip(), out_dir)
    results = report.load_results(out_dir)
    rows = report.write_report(results) if not a.quick else report.rows_from(results)
    report.print_table(rows)


if __name__ == "__main__":
    main()
