"""Policies share one surface: ``act(obs)``, ``reset()``, ``save(dir)``, ``load_policy(dir)``."""
from policies.common.policy import Policy, load_policy, register_policy

__all__ = ["Policy", "load_policy", "register_policy"]
