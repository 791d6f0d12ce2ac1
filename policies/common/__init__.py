"""Pieces every policy shares: the base ``Policy`` surface, the ``Normalizer``, the ``EMAModel``,
and the config plumbing (``ConfigError``, ``from_dict``, ``JSONConfig``).

The names load lazily (PEP 562), so ``policies.common.config`` imports without torch.
"""
from policies.common.lazy import lazy_getattr

_WHERE = {"EMAModel": "policies.common.ema", "Normalizer": "policies.common.normalizer",
          "NormalizerNotFitted": "policies.common.normalizer", "Policy": "policies.common.policy",
          "register_policy": "policies.common.policy",
          "ConfigError": "policies.common.config", "JSONConfig": "policies.common.config",
          "from_dict": "policies.common.config"}
__all__ = sorted(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
