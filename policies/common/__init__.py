"""Pieces every policy shares: the base ``Policy`` surface, the ``Normalizer``, the ``EMAModel``,
and the config plumbing (``ConfigError``, ``from_dict``, ``JSONConfig``).

The names load lazily (PEP 562), so ``policies.common.config`` imports without torch.
"""
import importlib

_WHERE = {"EMAModel": "policies.common.ema", "Normalizer": "policies.common.normalizer",
          "NormalizerNotFitted": "policies.common.normalizer", "Policy": "policies.common.policy",
          "register_policy": "policies.common.policy",
          "ConfigError": "policies.common.config", "JSONConfig": "policies.common.config",
          "from_dict": "policies.common.config"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'policies.common' has no attribute {name!r}")
