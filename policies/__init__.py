"""Policies share one surface: ``Policy.from_pretrained(dir)``, ``select_action(obs)``,
``predict_action_chunk(obs)``, ``reset()``, ``save_pretrained(dir)`` (see :mod:`policies.common.policy`).

The names below load lazily (PEP 562) so that ``policies.export.runtime``, the torch-free
deployment runtime, can be imported on a robot computer without torch.
"""
__all__ = ["Policy", "register_policy"]


def __getattr__(name: str):
    if name in __all__:
        from policies.common import policy

        return getattr(policy, name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
