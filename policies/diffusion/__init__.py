"""State-based diffusion policy (Chi et al. 2023): ``DiffusionConfig`` + ``DiffusionPolicy``.

``DiffusionPolicy`` loads lazily (PEP 562): reading the configuration (as ``train.py`` does
to build its command-line schema) needs no torch.
"""
from policies.diffusion.configuration import DiffusionConfig, DiffusionParams

__all__ = ["DiffusionConfig", "DiffusionParams", "DiffusionPolicy"]


def __getattr__(name: str):
    if name == "DiffusionPolicy":
        from policies.diffusion.modeling import DiffusionPolicy

        return DiffusionPolicy
    raise AttributeError(f"module 'policies.diffusion' has no attribute {name!r}")
