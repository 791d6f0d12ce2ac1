"""Checkpoint -> export directory: the graph (ONNX or TorchScript), ``manifest.json`` and the runtime.

The graph comes from the policy's ``export_spec()`` (normalizers and image encoder inside, the
diffusion sampler unrolled, noise as an input); the manifest states what the graph expects, read
from the task's environment and the run's config, so the robot side needs nothing else. A policy
that reads an instruction gets its text encoder beside it (``text_encoder.onnx`` +
``tokenizer.json``, :mod:`policies.export.text_encoder`) unless ``text_encoder=False``.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from envs.core.fileio import Artifact, ReplaceRefusedError, atomic_dir, check_replaceable
from policies.common.export_spec import ACTION_OUTPUT, ExportSpec
from policies.common.policy import CONFIG_FILE, WEIGHTS_FILE, Policy
from policies.export.errors import ExportError
from policies.export import manifest as mf
from policies.export.runtime import MANIFEST, MANIFEST_FORMAT

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
ONNX_OPSET = 18
RUNTIME_COPY = "roboforge_runtime.py"   # runtime.py, copied so an export dir works on its own
RUN_CHECKPOINTS = ("checkpoints/last", "checkpoints")   # a run dir's policy: imitation, RL
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


def resolve_checkpoint(path: Path) -> Path:
    """``path`` itself when it is a saved policy directory, else the one its run saved where
    train.py puts it (``checkpoints/last``; RL runs: ``checkpoints``), else ``path`` (refused later)."""
    if (path / CONFIG_FILE).exists():
        return path
    return next((path / sub for sub in RUN_CHECKPOINTS if (path / sub / CONFIG_FILE).exists()), path)


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
    """Example inputs of the export signature, in ``spec.input_names`` order: observations and
    noise ~ N(0, 1), images uniform (uint8 0-255, depth 0-2 m), other observation inputs uniform in
    their ``low``-``high`` box (else N(0, 1)), unit instruction embeddings."""
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(batch, spec.n_obs_steps, spec.obs_dim, generator=g)]
    for img in spec.images:
        shape = (batch, spec.n_obs_steps, *img.shape)
        xs.append(torch.randint(0, 256, shape, generator=g, dtype=torch.uint8) if img.dtype == "uint8"
                  else 2 * torch.rand(shape, generator=g))
    for o in spec.observations:
        shape = (batch, *((spec.n_obs_steps,) if o.history else ()), *o.shape)
        if o.low:   # where real ones lie (a sub-goal far outside the GravMap's box exercises nothing)
            lo, hi = torch.tensor(o.low), torch.tensor(o.high)
            xs.append(lo + (hi - lo) * torch.rand(shape, generator=g))
        else:
            xs.append(torch.randn(shape, generator=g))
    if spec.instruction and "example" in spec.instruction:   # a policy's own instruction input (VLA prompt ids)
        xs.append(torch.as_tensor(spec.instruction["example"](batch, seed)))
    elif spec.instruction:
        xs.append(nn.functional.normalize(torch.randn(batch, spec.instruction["dim"], generator=g), dim=-1))
    if spec.noise_shape is not None:
        xs.append(torch.randn(batch, *spec.noise_shape, generator=g))
    return tuple(xs)


def _batch_dynamic(module: nn.Module, n_inputs: int, batch) -> tuple:
    """``dynamic_shapes`` for torch.export: axis 0 of every input is the batch. Its structure
    follows ``forward``'s signature, so inputs taken as ``*rest`` get a nested tuple."""
    out = []
    for p in inspect.signature(module.forward).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            out.append(tuple({0: batch} for _ in range(n_inputs - len(out))))
            break
        if len(out) == n_inputs:
            break
        out.append({0: batch})
    return tuple(out)


@contextlib.contextmanager
def _no_attention_fastpath():
    """nn.TransformerEncoder's fused inference kernel (the token fusion's) has no ONNX/TorchScript
    form; the plain ops it stands for trace everywhere and compute the same."""
    was = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(was)


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
                              dynamic_shapes=_batch_dynamic(spec.module, len(spec.input_names), batch),
                              external_data=False)
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
        out = run_exported(**{name: x.numpy() for name, x in zip(spec.input_names, xs)})
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def export_policy(checkpoint: str | os.PathLike, fmt: str, out: str | os.PathLike, *, env: str | None = None,
                  sim: str | None = None, obs_mode: str | None = None, control_mode: str | None = None,
                  library: str | None = None, text_encoder: bool = True) -> Path:
    """Export the policy saved in ``checkpoint`` (or by the run directory ``checkpoint``) to
    directory ``out`` (model file, manifest.json, roboforge_runtime.py; for a policy reading
    instructions, text_encoder.onnx + tokenizer.json unless ``text_encoder`` is off, when the
    runtime takes only embeddings). The task(s) and modes
    come from the run's ``config.yaml`` (found next to or above the checkpoint) or the policy
    config; the keyword arguments override them (``env``: a task, ``a,b``, builtin or library)."""
    check_format(fmt)
    ckpt, out = resolve_checkpoint(Path(checkpoint).resolve()), Path(out)
    policy = load_checkpoint(ckpt)
    try:
        spec = policy.export_spec()
    except NotImplementedError as e:
        raise ExportError(str(e)) from e
    spec.module.eval()   # centre crop, no dropout: the graph is what acting runs
    run = mf.run_settings(ckpt, policy, env=env, sim=sim, obs_mode=obs_mode, control_mode=control_mode,
                          library=library)
    try:  # before the work; atomic_dir checks again before it deletes anything
        check_replaceable(out, EXPORT_ARTIFACT)
    except ReplaceRefusedError as e:
        raise ExportError(f"--out: {e}") from e

    # built beside `out`, checked, then swapped in; only a previous export there is replaced whole
    with atomic_dir(out, EXPORT_ARTIFACT) as tmp:
        model_file = tmp / FORMATS[fmt]
        with _no_attention_fastpath():
            (_export_onnx if fmt == "onnx" else _export_torchscript)(spec, model_file)
        shutil.copyfile(Path(__file__).with_name("runtime.py"), tmp / RUNTIME_COPY)
        sha, files = checkpoint_hash(ckpt)
        source = {"checkpoint": str(ckpt), "sha256": sha, "files": files,
                  "run_config": str(run["config_file"]) if run["config_file"] else None}
        text = None
        if spec.instruction and "text_encoder" in spec.instruction:   # the runtime tokenizes by a rule, no files
            text = spec.instruction["text_encoder"]
        elif spec.instruction and text_encoder:
            from policies.export.text_encoder import export_text_encoder

            text = export_text_encoder(spec.instruction["encoder"], tmp)
        manifest = mf.build_manifest(policy, spec, run, fmt=fmt, model_file=model_file, source=source,
                                     opset=ONNX_OPSET if fmt == "onnx" else None, text_encoder=text)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        # the artifact as the runtime will run it, against the torch module it came from
        from policies.export.runtime import ExportedPolicy

        exported = ExportedPolicy(tmp)
        diff = fidelity(spec, exported)
        manifest["export_check"] = {"max_abs_diff": diff, "batch_sizes": [1, 3],
                                    "what": "torch module vs exported graph, same random inputs and noise"}
        if text:
            from policies.export.text_encoder import text_fidelity

            t = manifest["task"]
            texts = [t["instruction_example"], *t["instruction_templates"].values()]
            reference = spec.instruction.get("reference")
            with warnings.catch_warnings():   # a template's "{top.color}" may be cut to the policy's word pieces
                warnings.filterwarnings("ignore", message="instruction of")
                manifest["export_check"]["text_encoder_max_abs_diff"] = (
                    float(np.abs(exported.encode_instructions(texts) - reference(texts)).max()) if reference
                    else text_fidelity(exported.encode_instructions, texts))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("exported %s (%s) -> %s, max |torch - exported| = %.2e", ckpt, fmt, out, diff)
    return out
