"""Command line for the VLA.

    python -m policies.vla inspect --vla openvla-7b        # parameter counts per part; no weights needed
    python -m policies.vla inspect --weights /path/to/openvla-7b   # the sizes a checkpoint's config.json names
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _inspect(a) -> int:
    import torch

    from policies.vla.checkpoint import CONFIG_FILE, architecture_from_config, openvla_parameter_counts
    from policies.vla.configuration import architecture
    from policies.vla.prismatic import PrismaticVLA, parameter_counts

    if a.weights:
        cfg_file = Path(a.weights) / CONFIG_FILE
        arch = architecture_from_config(json.loads(cfg_file.read_text()), str(cfg_file))
    else:
        arch = architecture(a.vla)
    with torch.device("meta"):  # shapes only: the 7B model costs no memory here
        model = PrismaticVLA(arch)
    released, modules = openvla_parameter_counts(model), parameter_counts(model)
    print(f"vla={arch.name}: image {arch.image_size}px, {arch.num_patches} patches, vision width {arch.vision_dim}, "
          f"LLM {arch.llm.layers}x{arch.llm.hidden}, vocabulary {arch.llm.vocab_size} "
          f"({arch.llm.embedding_rows} embedding rows)")
    print(f"{'part':<18}{'OpenVLA checkpoint':>20}{'modules here':>16}")
    for part in ("vision_backbone", "projector", "language_model", "total"):
        print(f"{part:<18}{released[part]:>20,}{modules[part]:>16,}")
    if modules["total"] != released["total"]:
        print(f"(modules here carry {modules['total'] - released['total']:,} more: the position row transformers' "
              f"DINOv2 adds to its CLS token, zero for OpenVLA's weights)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m policies.vla", description="OpenVLA-compatible VLA tools")
    sub = ap.add_subparsers(dest="command", required=True)
    ins = sub.add_parser("inspect", help="parameter counts per part (built on the meta device)")
    ins.add_argument("--vla", default="openvla-7b", help="architecture name: openvla-7b | tiny")
    ins.add_argument("--weights", help="an OpenVLA checkpoint directory (reads only its config.json)")
    a = ap.parse_args(argv)
    try:
        return _inspect(a)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
