"""Pieces every policy shares: the base ``Policy`` surface, the ``Normalizer``, the ``EMAModel``."""
from policies.common.ema import EMAModel
from policies.common.normalizer import Normalizer, NormalizerNotFitted
from policies.common.policy import Policy, load_policy, register_policy

__all__ = ["EMAModel", "Normalizer", "NormalizerNotFitted", "Policy", "load_policy", "register_policy"]
