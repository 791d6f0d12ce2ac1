"""Parallel (OpenVLA-OFT) vs autoregressive (OpenVLA) decoding of the tiny VLA: actions per second.

    python -m bench.vla_decoding [--calls 60] [--rounds 3] [--chunk 8]

One policy call (``VLAPolicy.predict_action_chunk``: the 56 px image and the instruction in, a
chunk of actions out, image preprocessing included) at batch 1 on one torch thread, for:

- ``autoregressive, chunk 1``: OpenVLA as released: 7 action tokens decoded one by one (KV cache);
- ``autoregressive, chunk K``: the same model decoding K x 7 tokens one by one;
- ``parallel, chunk K (tokens)``: the same model (the same parameters, so the same size) reading
  K x 7 empty action positions in one forward pass, bidirectional among themselves;
- ``parallel, chunk K (L1 head)``: OFT's full recipe, + the small regression head.

Decoding cost does not depend on the weights (greedy decoding always emits the fixed number of
action tokens; no early EOS), so untrained models are timed. Modes alternate round by round so a
busy neighbour slows all alike; the median call counts, per wall second and per CPU second of the
process (the CPU figure is the one a shared machine disturbs least). Prints a table; writes
bench/results/vla_decoding.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import RESULTS, load, machine, machine_short, versions

INSTRUCTION = "stack the red block on the blue block"


def modes(chunk: int) -> dict[str, dict]:
    return {"autoregressive, chunk 1 (OpenVLA)": dict(decoding="autoregressive", chunk_size=1),
            f"autoregressive, chunk {chunk}": dict(decoding="autoregressive", chunk_size=chunk),
            f"parallel, chunk {chunk} (tokens)": dict(decoding="parallel", chunk_size=chunk),
            f"parallel, chunk {chunk} (L1 head)": dict(decoding="parallel", chunk_size=chunk, action_head="l1")}


def make_policy(size: str, **kw):
    from policies.vla import VLAConfig, VLAPolicy

    torch.manual_seed(0)
    policy = VLAPolicy(VLAConfig(size=size, action_dim=7, **kw)).eval()
    policy.fit_statistics(np.random.default_rng(0).uniform(-1, 1, (100, 7)), num_trajectories=1)
    policy.reset(instruction=INSTRUCTION)
    return policy


def bench(size: str, chunk: int, calls: int, rounds: int) -> dict:
    torch.set_num_threads(1)
    image = np.random.default_rng(0).integers(0, 256, (56, 56, 3), dtype=np.uint8)
    obs = {"front_rgb": image}
    policies = {name: make_policy(size, **kw) for name, kw in modes(chunk).items()}
    for p in policies.values():   # warm-up (allocator, prompt cache)
        for _ in range(3):
            p.predict_action_chunk(obs)
    wall = {k: [] for k in policies}
    cpu = {k: [] for k in policies}
    for _ in range(rounds):
        for name, p in policies.items():
            for _ in range(max(1, calls // rounds)):
                t, c = time.perf_counter(), time.process_time()
                p.predict_action_chunk(obs)
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
    rows = {}
    for name, p in policies.items():
        k = p.config.chunk_size
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        rows[name] = {"decoding": p.config.decoding, "chunk_size": k, "action_head": p.config.action_head,
                      "parameters": sum(x.numel() for x in p.parameters()),
                      "sequential_forward_passes": p.n_action_tokens if p.config.decoding == "autoregressive" else 1,
                      "call_ms": round(1000 * w, 2), "call_cpu_ms": round(1000 * c, 2),
                      "actions_per_s": round(k / w, 1), "actions_per_cpu_s": round(k / c, 1), "calls": len(wall[name])}
    return rows


def ratios(rows: dict, chunk: int) -> dict:
    par, ar_k, ar_1 = (rows[f"parallel, chunk {chunk} (tokens)"], rows[f"autoregressive, chunk {chunk}"],
                       rows["autoregressive, chunk 1 (OpenVLA)"])
    r = lambda a, b, key: round(a[key] / b[key], 2)  # noqa: E731
    return {"parallel_vs_autoregressive_same_chunk": r(par, ar_k, "actions_per_s"),
            "parallel_vs_autoregressive_same_chunk_cpu": r(par, ar_k, "actions_per_cpu_s"),
            "parallel_vs_openvla_chunk_1": r(par, ar_1, "actions_per_s"),
            "parallel_vs_openvla_chunk_1_cpu": r(par, ar_1, "actions_per_cpu_s")}


def table(rows: dict) -> str:
    lines = ["| decoding | parameters | sequential passes | call (ms, wall / CPU) | actions/s (wall / CPU) |",
             "| --- | --- | --- | --- | --- |"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['parameters']:,} | {r['sequential_forward_passes']} | {r['call_ms']} / "
                     f"{r['call_cpu_ms']} | {r['actions_per_s']} / {r['actions_per_cpu_s']} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="tiny", help="a VLA size (policies.vla.ARCHITECTURES) that builds without weights")
    ap.add_argument("--chunk", type=int, default=8, help="actions per chunk for the chunked modes")
    ap.add_argument("--calls", type=int, default=60, help="timed calls per mode, over all rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "vla_decoding.json"))
    args = ap.parse_args(argv)
    if args.size == "openvla-7b":
        ap.error("--size openvla-7b is invalid here; allowed: tiny (the 7B model needs its weights and a GPU)")
    m = machine()
    rows = bench(args.size, args.chunk, args.calls, args.rounds)
    result = {"bench": "vla_decoding", "size": args.size, "batch": 1, "torch_threads": 1, "rows": rows,
              "ratios": ratios(rows, args.chunk), "target": ">= 5x actions/s at chunk 8", "machine": m,
              "machine_short": machine_short(m), "load_avg_1m_end": load(),
              "versions": versions("torch", "transformers"), "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "command": " ".join(["python -m bench.vla_decoding", *(sys.argv[1:] if argv is None else argv)])}
    print(table(rows))
    print(json.dumps(result["ratios"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
