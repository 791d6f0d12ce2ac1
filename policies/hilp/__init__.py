"""HILP (Park et al. 2024): Hilbert representations and a zero-shot latent-conditioned policy
(``policy_type`` ``hilp``): ``HILPConfig`` + ``HILPPolicy``; see docs/hilp.md.

``HILPPolicy`` loads lazily (PEP 562): reading the configuration (as ``train.py`` does to build
its command-line schema) needs no torch.
"""
from policies.common.lazy import lazy_getattr
from policies.hilp.configuration import HILPConfig, HILPParams

__all__ = ["HILPConfig", "HILPParams", "HILPPolicy"]
__getattr__ = lazy_getattr(__name__, {"HILPPolicy": "policies.hilp.modeling"})
