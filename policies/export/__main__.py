"""Command line: export a checkpoint.

    python -m policies.export CHECKPOINT_OR_RUN --format onnx|torchscript --out DIR [--env TASK ...]

``python -m policies.export verify DIR --checkpoint CHECKPOINT ...`` is kept as an alias of
``python -m train.verify_export DIR --checkpoint CHECKPOINT ...``. It is run with ``runpy`` by
module name, not imported: policies never import train (train evaluates policies, not the
other way round).
"""
from __future__ import annotations

import argparse
import logging
import runpy
import sys


def _export_main(argv: list[str]) -> int:
    from policies.export.exporter import FORMATS

    ap = argparse.ArgumentParser(prog="python -m policies.export",
                                 description="Export a saved policy to ONNX or TorchScript with manifest.json "
                                             "(use `python -m train.verify_export -h` to check an export).")
    ap.add_argument("checkpoint", help="saved policy directory (config.json + model.safetensors), e.g. "
                                       "outputs/<date>/<time>/checkpoints/last, or the run directory holding it")
    ap.add_argument("--format", required=True, help=f"one of {', '.join(FORMATS)}")
    ap.add_argument("--out", required=True, help="export directory to write (a previous export there is replaced; anything else is refused)")
    ap.add_argument("--env", help="task(s) the policy was trained on: a task, a,b, builtin or library "
                                  "(default: from the run's config.yaml)")
    ap.add_argument("--sim", help="mujoco | maniskill (default: from the run's config.yaml)")
    ap.add_argument("--obs-mode", help="default: from the run's config.yaml")
    ap.add_argument("--control-mode", help="default: from the run's config.yaml")
    ap.add_argument("--library", help="generated-task library the task lives in")
    ap.add_argument("--no-text-encoder", action="store_true",
                    help="for a policy reading instructions: leave out text_encoder.onnx + tokenizer.json (~90 MB); "
                         "the runtime then takes only instruction embeddings")
    a = ap.parse_args(argv)

    from policies.export.exporter import check_format, export_policy
    from policies.export.runtime import read_manifest

    try:
        check_format(a.format)
        out = export_policy(a.checkpoint, a.format, a.out, env=a.env, sim=a.sim, obs_mode=a.obs_mode,
                            control_mode=a.control_mode, library=a.library, text_encoder=not a.no_text_encoder)
    except (ValueError, FileNotFoundError) as e:  # ExportError, UnknownTaskError, bad manifests
        print(f"error: {e}", file=sys.stderr)
        return 2
    m = read_manifest(out)
    tasks = m["task"].get("tasks") or [m["task"]["name"]]
    print(f"exported {m['policy']['type']} policy for {', '.join(tasks)} -> {out}/{m['model']['file']} "
          f"({m['model']['format']}); max |torch - exported| = {m['export_check']['max_abs_diff']:.2e}")
    keys = " ".join(f"{k['name']}{k['shape']}" + (" (current only)" if k.get("history") is False else "")
                    for k in m["observation"]["keys"])
    print(f"  obs {keys} x{m['control']['n_obs_steps']} history, action "
          f"{m['action']['shape']} {m['action']['control_mode']} x{m['control']['n_action_steps']} per call, "
          f"{m['control']['frequency_hz']} Hz")
    for k in m["observation"]["keys"]:
        if k.get("source"):   # a key the env itself lacks (GravMAD's sub-goal): say what to feed
            print(f"  {k['name']}{k['shape']}: {k['units']}, {k['frame']}; {k['source']}")
    lang = m.get("language")
    if lang:
        how = ("an instruction string (text_encoder.onnx + tokenizer.json here) or its embedding"
               if lang.get("text_encoder") else "its embedding only (exported with --no-text-encoder)")
        print(f"  instruction: {lang['encoder']} ({lang['dim']}-d); the runtime takes {how}")
    reset = "p.reset(instruction=info['instruction'])" if lang else "p.reset()"
    print(f"  run it: from policies.export.runtime import ExportedPolicy; p = ExportedPolicy({str(out)!r}); "
          f"{reset}; a = p.select_action(obs)")
    return 0


def _verify_alias(argv: list[str]) -> int:
    """``verify ...``: run ``python -m train.verify_export ...`` in this process."""
    sys.argv = ["python -m train.verify_export", *argv]
    try:
        runpy.run_module("train.verify_export", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "verify":
        return _verify_alias(argv[1:])
    return _export_main(argv)


if __name__ == "__main__":
    sys.exit(main())
