"""Sim-to-real export: a checkpoint becomes an ONNX or TorchScript graph plus ``manifest.json``.

    python -m policies.export <checkpoint dir> --format onnx|torchscript --out DIR
    python -m policies.export verify DIR --checkpoint <checkpoint dir> [--episodes 50]

    from policies.export.runtime import ExportedPolicy     # numpy + onnxruntime only, no torch

This package's own import stays torch-free so the runtime can be imported on a robot computer;
``export_policy`` and ``verify_export`` load the torch side when first used. See docs/export.md.
"""
__all__ = ["ExportError", "export_policy", "verify_export"]


class ExportError(ValueError):
    """The checkpoint, its run config or the request cannot be exported; the message says why."""


def __getattr__(name: str):
    if name == "export_policy":
        from policies.export.exporter import export_policy

        return export_policy
    if name == "verify_export":
        from policies.export.verify import verify_export

        return verify_export
    raise AttributeError(f"module 'policies.export' has no attribute {name!r}")
