"""Pieces every policy shares: the base ``Policy`` surface, the ``Normalizer``, the ``EMAModel``."""
from policies.common.ema import EMAModel
from policies.common.normalizer import Normalizer, NormalizerNotFitted
from policies.common.policy import Policy, register_policy

__all__ = ["EMAModel", "Normalizer", "NormalizerNotFitted", "Policy", "register_policy"]
