"""Sim-to-real export: a checkpoint becomes an ONNX or TorchScript graph plus ``manifest.json``.

    python -m policies.export <checkpoint dir> --format onnx|torchscript --out DIR

    from policies.export.runtime import ExportedPolicy     # numpy + onnxruntime only, no torch

Checking an export against its checkpoint in sim is training-side work: ``python -m
train.verify_export DIR --checkpoint CKPT`` (:func:`train.verify_export.verify_export`).

This package's own import stays torch-free so the runtime can be imported on a robot computer;
``export_policy`` loads the torch side when first used. See docs/export.md.
"""
from policies.export.errors import ExportError

__all__ = ["ExportError", "export_policy"]


def __getattr__(name: str):
    if name == "export_policy":
        from policies.export.exporter import export_policy

        return export_policy
    raise AttributeError(f"module 'policies.export' has no attribute {name!r}")
