"""Checkpoint -> export directory: the graph (ONNX or TorchScript), ``manifest.json`` and the runtime.

The graph comes from the policy's ``export_spec()`` (normalizers inside, the diffusion sampler
unrolled, noise as an input); the manifest states what the graph expects, read from the task's
environment and the run's config, so the robot side needs nothing else.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from envs.core.fileio import Artifact, ReplaceRefusedError, atomic_dir, check_replaceable
from policies.common.export_spec import ACTION_OUTPUT, ExportSpec
from policies.common.policy import CONFIG_FILE, WEIGHTS_FILE, Policy
from policies.export.errors import ExportError
from policies.export import manifest as mf
from policies.export.runtime import MANIFEST, MANIFEST_FORMAT

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
ONNX_OPSET = 18
RUNTIME_COPY = "roboforge_runtime.py"   # runtime.py, copied so an export dir works on its own
log = logging.getLogger(__name__)


def _export_manifest_problem(path: Path) -> str | None:
    """None when ``path/manifest.json`` says it is a roboforge export, else why not."""
    try:
        m = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        return f"it has no {MANIFEST}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return f"its {MANIFEST} is not valid JSON"
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        return f"its {MANIFEST} is not a roboforge export manifest (no \"format\": \"{MANIFEST_FORMAT}\")"
    return None


# what `--out` may replace: a previous export (its manifest says so) holding only export files
EXPORT_ARTIFACT = Artifact("policy export", (MANIFEST, RUNTIME_COPY, *FORMATS.values()), _export_manifest_problem)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def checkpoint_hash(ckpt: Path) -> tuple[str, dict[str, str]]:
    """sha256 over config.json + model.safetensors (and each file's own), to tie an export to its source."""
    files, total = {}, hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        data = (ckpt / name).read_bytes()
        files[name] = hashlib.sha256(data).hexdigest()
        total.update(name.encode() + data)
    return total.hexdigest(), files


def load_checkpoint(ckpt: str | os.PathLike):
    """The torch policy in ``ckpt`` with clear errors for what an export needs."""
    ckpt = Path(ckpt)
    if not ckpt.is_dir():
        raise ExportError(f"checkpoint {ckpt} is not a directory; pass a saved policy directory such as "
                          f"outputs/<date>/<time>/checkpoints/last (imitation) or outputs/<run>/checkpoints (RL)")
    for name, what in ((CONFIG_FILE, "the policy config"), (WEIGHTS_FILE, "the weights and normalizer stats")):
        if not (ckpt / name).exists():
            raise ExportError(f"checkpoint {ckpt} has no {name} ({what}); a saved policy directory holds "
                              f"{CONFIG_FILE} and {WEIGHTS_FILE}, as written by policy.save_pretrained()")
    try:
        return Policy.from_pretrained(ckpt)
    except (ValueError, TypeError, KeyError) as e:  # missing normalizer stats, mismatched weights, bad config
        raise ExportError(f"cannot export {ckpt}: {e}") from e


def trace_inputs(spec: ExportSpec, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Example inputs of the export signature (observations ~ N(0, 1): only shapes matter here)."""
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(batch, spec.n_obs_steps, spec.obs_dim, generator=g)]
    if spec.noise_shape is not None:
        xs.append(torch.randn(batch, *spec.noise_shape, generator=g))
    return tuple(xs)


def _export_onnx(spec: ExportSpec, file: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=65536)
    # torch's exporter logs a line per stage and warns about torchvision ops it cannot register
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.onnx._internal.exporter._registration")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", (FutureWarning, UserWarning))  # torch-internal deprecations
            torch.onnx.export(spec.module, trace_inputs(spec, 2), str(file), dynamo=True, opset_version=ONNX_OPSET,
                              input_names=spec.input_names, output_names=[ACTION_OUTPUT],
                              dynamic_shapes=tuple({0: batch} for _ in spec.input_names), external_data=False)
    finally:
        for q, lv in zip(quiet, levels):
            q.setLevel(lv)


def _export_torchscript(spec: ExportSpec, file: Path) -> None:
    # torch marks TorchScript deprecated (ONNX is the recommended format); its tracer also flags
    # GroupNorm's batch-size check as a constant, which it is for inference
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", (DeprecationWarning, torch.jit.TracerWarning))
        traced = torch.jit.trace(spec.module, trace_inputs(spec, 2), check_trace=False)
        torch.jit.save(traced, str(file))


def fidelity(spec: ExportSpec, run_exported, batches=(1, 3), seed: int = 1) -> float:
    """Max |torch - exported| over random inputs at several batch sizes (same inputs, same noise)."""
    worst = 0.0
    for b in batches:
        xs = trace_inputs(spec, b, seed + b)
        with torch.no_grad():
            ref = spec.module(*xs).numpy()
        out = run_exported(*(x.numpy() for x in xs))
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def export_policy(checkpoint: str | os.PathLike, fmt: str, out: str | os.PathLike, *, env: str | None = None,
                  sim: str | None = None, obs_mode: str | None = None, control_mode: str | None = None,
                  library: str | None = None) -> Path:
    """Export the policy saved in ``checkpoint`` to directory ``out`` (model file, manifest.json,
    roboforge_runtime.py). The task and its modes come from the run's ``config.yaml`` (found next
    to or above the checkpoint) or the policy config; the keyword arguments override them."""
    check_format(fmt)
    ckpt, out = Path(checkpoint).resolve(), Path(out)
    policy = load_checkpoint(ckpt)
    try:
        spec = policy.export_spec()
    except NotImplementedError as e:
        raise ExportError(str(e)) from e
    run = mf.run_settings(ckpt, policy, env=env, sim=sim, obs_mode=obs_mode, control_mode=control_mode,
                          library=library)
    try:  # before the work; atomic_dir checks again before it deletes anything
        check_replaceable(out, EXPORT_ARTIFACT)
    except ReplaceRefusedError as e:
        raise ExportError(f"--out: {e}") from e

    # built beside `out`, checked, then swapped in; only a previous export there is replaced whole
    with atomic_dir(out, EXPORT_ARTIFACT) as tmp:
        model_file = tmp / FORMATS[fmt]
        (_export_onnx if fmt == "onnx" else _export_torchscript)(spec, model_file)
        shutil.copyfile(Path(__file__).with_name("runtime.py"), tmp / RUNTIME_COPY)
        sha, files = checkpoint_hash(ckpt)
        source = {"checkpoint": str(ckpt), "sha256": sha, "files": files,
                  "run_config": str(run["config_file"]) if run["config_file"] else None}
        manifest = mf.build_manifest(policy, spec, run, fmt=fmt, model_file=model_file, source=source,
                                     opset=ONNX_OPSET if fmt == "onnx" else None)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        # the artifact as the runtime will run it, against the torch module it came from
        from policies.export.runtime import ExportedPolicy

        exported = ExportedPolicy(tmp)
        diff = fidelity(spec, exported)
        manifest["export_check"] = {"max_abs_diff": diff, "batch_sizes": [1, 3],
                                    "what": "torch module vs exported graph, same random inputs and noise"}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("exported %s (%s) -> %s, max |torch - exported| = %.2e", ckpt, fmt, out, diff)
    return out
