"""GravMAD (Chen et al., ICLR 2025): sub-goal GravMaps guiding action diffusion.

The policy (:mod:`policies.gravmad.modeling`, configured by :mod:`policies.gravmad.configuration`),
GravMaps and their token encoder (:mod:`policies.gravmad.gravmap`), and the keypose viewer
``python -m policies.gravmad keyposes``. Sub-goal discovery and providers live in
``planners.subgoals``; training in ``train/gravmad.py``.
"""
from policies.gravmad.configuration import SUBGOAL_KEY, GravMADConfig, GravMADParams
from policies.gravmad.gravmap import (GravMapBuilder, GravMapConfig, GravMapEncoder, gravmap_points,
                                      voxel_centres)
from policies.gravmad.modeling import GravMADPolicy

__all__ = ["SUBGOAL_KEY", "GravMADConfig", "GravMADParams", "GravMADPolicy", "GravMapBuilder", "GravMapConfig",
           "GravMapEncoder", "gravmap_points", "voxel_centres"]
