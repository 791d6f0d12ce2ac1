"""Command line: ``python -m generation {generate,admit,report} ...``

    generate --generator {procedural,llm} --count N --library DIR [--mode exploratory|goal --target TASK] [--json]
                                          exit 0 done, 2 usage error, 3 no LLM call reached the endpoint
             [--workers N | --address auto|HOST:PORT]   (sandboxed gates on Ray workers, docs/scale.md)
    admit FILE --library DIR [--json]     exit 0 admitted, 1 rejected, 2 usage error
    report --library DIR [--json]

With ``--json`` the last line on stdout is one JSON object (for ``admit``:
``{"admitted": bool, "gate": str, "reason": str, ...}``). Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EXIT_ADMITTED, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2
EXIT_UNREACHABLE = 3  # generate --generator llm: not one call reached the endpoint


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors already exit 2; keep the message short
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _gate_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("gates")
    g.add_argument("--runtime-seeds", type=int, default=5, help="seeds built and reset in the runtime gate (default 5)")
    g.add_argument("--oracle-seeds", type=int, default=10, help="distinct seeds the oracle must solve (default 10)")
    g.add_argument("--oracle-threshold", type=float, default=0.8, help="oracle success needed (default 0.8)")
    g.add_argument("--novelty-threshold", type=float, default=None,
                   help="reject at or above this cosine similarity to any known task (default 0.94)")
    g.add_argument("--critic", action="store_true", help="also ask the LLM critic (needs ROBOFORGE_LLM_*)")
    g.add_argument("--sandbox-cpu", type=float, help="CPU seconds per sandbox process (default 60 runtime / 300 oracle)")
    g.add_argument("--sandbox-wall", type=float, help="wall seconds per sandbox process (default 120 / 600)")
    g.add_argument("--sandbox-memory", type=int, help="address-space limit per sandbox process, MiB (default 2048)")
    g.add_argument("--sandbox-isolation", choices=("auto", "bwrap", "fallback"), default="auto",
                   help="the sandbox's walls: bwrap (read-only root, user and project files hidden), the "
                        "rlimits + unshare fallback, or auto: bwrap where it runs (default)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m generation", description="Generate, validate and admit roboforge tasks.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser("generate", help="propose, write, validate and admit new tasks")
    g.add_argument("--generator", choices=("procedural", "llm"), default="procedural",
                   help="procedural (offline default) or llm (an OpenAI-compatible endpoint, see llm/client.py)")
    g.add_argument("--count", type=int, default=10, help="attempts to make (default 10)")
    g.add_argument("--library", required=True, type=Path, help="library directory (created if missing)")
    g.add_argument("--mode", choices=("exploratory", "goal"), default="exploratory")
    g.add_argument("--target", help="goal mode: a registered task, a procedural draft name, or (llm) a description")
    g.add_argument("--seed", type=int, default=0, help="seed for the procedural generator's choices")
    g.add_argument("--json", action="store_true", help="print a JSON summary as the last stdout line")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--workers", type=int, default=0,
                   help="run the sandboxed gates of the coming candidates on N local Ray workers (default 0: no Ray)")
    g.add_argument("--address", help="a running Ray cluster (auto | HOST:PORT) to run the gates on")
    _gate_options(g)

    a = sub.add_parser("admit", help="run every gate on one task program; admit it if it passes")
    a.add_argument("file", type=Path)
    a.add_argument("--library", required=True, type=Path)
    a.add_argument("--generator", default="manual", help="who wrote it, for the metadata (default manual)")
    a.add_argument("--json", action="store_true")
    _gate_options(a)

    r = sub.add_parser("report", help="funnel per gate, admissions, diversity, LLM tokens")
    r.add_argument("--library", required=True, type=Path)
    r.add_argument("--json", action="store_true")
    return p


def _config(args):
    import dataclasses

    from generation import isolation as walls
    from generation.gates import GateConfig

    kw = {"runtime_seeds": args.runtime_seeds, "oracle_seeds": args.oracle_seeds,
          "oracle_threshold": args.oracle_threshold, "critic": args.critic, "isolation": args.sandbox_isolation}
    if args.novelty_threshold is not None:
        kw["novelty_threshold"] = args.novelty_threshold
    config = GateConfig(**kw)
    walls.resolve(config.isolation)  # bwrap asked for where it cannot run: a usage error before any work
    limits = {k: v for k, v in (("cpu_s", args.sandbox_cpu), ("wall_s", args.sandbox_wall),
                                ("memory_mb", args.sandbox_memory)) if v is not None}
    if limits:
        config.runtime_limits = dataclasses.replace(config.runtime_limits, **limits)
        config.oracle_limits = dataclasses.replace(config.oracle_limits, **limits)
    return config


def _client(needed: bool):
    if not needed:
        return None
    from llm import LLMClient

    return LLMClient()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from envs.library import LibraryError
    from llm import LLMConfigError

    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "admit":
            return _admit(args)
        return _report(args)
    except (LLMConfigError, LibraryError, ValueError, FileNotFoundError, IsADirectoryError,
            ConnectionError) as err:   # ConnectionError: --address
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _generate(args) -> int:
    from generation.library import Library
    from generation.pipeline import generate

    if args.count < 1:
        raise ValueError("--count must be >= 1")
    if args.mode == "goal" and not args.target:
        raise ValueError("--mode goal needs --target TASK")
    if args.workers < 0:
        raise ValueError(f"--workers={args.workers} is invalid; allowed: an integer >= 0 (0: no Ray)")
    config = _config(args)
    client = _client(args.generator == "llm" or args.critic)
    pool = None
    if args.workers or args.address:
        from fanout import Pool

        pool = Pool(args.workers, args.address)
    try:
        summary = generate(Library(args.library), args.generator, args.count, args.mode, args.target, config, client,
                           seed=args.seed, progress=not args.no_progress, pool=pool)
    finally:
        if pool is not None:
            pool.close()
    s = summary.as_dict()
    if not args.json:
        print(f"{s['n_admitted']} of {s['attempted']} admitted into {args.library} in {s['wall_s']:.0f} s"
              + (f"; rejected by gate: {json.dumps(s['rejected'])}" if s["rejected"] else "")
              + (f"; LLM tokens {s['tokens']['total_tokens']}" if args.generator == "llm" else ""))
        if s["plan"]:
            print("curriculum: " + " -> ".join(s["plan"]))
    else:
        print(json.dumps(s))
    if summary.llm_failures:
        print(f"LLM calls failed: {len(summary.llm_failures)} of {summary.llm_calls}; first: {summary.llm_failures[0]}",
              file=sys.stderr)
    if summary.endpoint_never_answered:
        print(f"error: no attempt reached the LLM endpoint ({summary.llm_failures[-1]}); check "
              f"ROBOFORGE_LLM_BASE_URL and that the server is running", file=sys.stderr)
        return EXIT_UNREACHABLE
    return 0


def _admit(args) -> int:
    from generation.gates import validate
    from generation.library import Library, load_library
    from generation.pipeline import admission_meta, build_index, taken_names

    if args.file.is_dir():
        raise IsADirectoryError(f"{args.file} is a directory; pass one task file (a .py with one Task class)")
    if not args.file.is_file():
        raise FileNotFoundError(f"no such task file: {args.file}")
    source = args.file.read_text(encoding="utf-8", errors="replace")
    library = Library(args.library)
    if library.names():
        load_library(library.root)
    index = build_index(library)
    t0 = time.monotonic()
    verdict = validate(source, taken_names=taken_names(index), novelty=index, config=_config(args),
                       critic_client=_client(args.critic))
    out = verdict.summary()
    if verdict.admitted:
        meta = admission_meta(verdict, source, args.generator, "", {}, time.monotonic() - t0,
                              extra={"file": str(args.file)})
        out["path"] = str(library.admit(verdict.task_name, source, meta))
    if args.json:
        print(json.dumps(out))
    elif verdict.admitted:
        o = verdict.outcome("oracle").details
        print(f"admitted {verdict.task_name}: oracle {o['success_rate']:.0%} on {len(o['seeds'])} seeds, "
              f"{verdict.reason} -> {out['path']} "
              f"(sandbox: {verdict.isolation})")
    else:
        print(f"rejected at gate {verdict.gate}: {verdict.reason}"
              + (f" (sandbox: {verdict.isolation})" if verdict.isolation else ""))
    return EXIT_ADMITTED if verdict.admitted else EXIT_REJECTED


def _report(args) -> int:
    from generation.library import Library
    from generation.report import build_report, format_report

    if not args.library.is_dir():
        raise FileNotFoundError(f"no library at {args.library}")
    r = build_report(Library(args.library))
    print(json.dumps(r) if args.json else format_report(r))
    return 0
