"""GravMAD (Chen et al., ICLR 2025): sub-goal GravMaps guiding action diffusion.

So far: GravMaps and their token encoder (:mod:`policies.gravmad.gravmap`), and the keypose
viewer ``python -m policies.gravmad keyposes``. Sub-goal discovery and providers live in
``planners.subgoals``.
"""
from policies.gravmad.gravmap import (GravMapBuilder, GravMapConfig, GravMapEncoder, gravmap_points,
                                      voxel_centres)

__all__ = ["GravMapBuilder", "GravMapConfig", "GravMapEncoder", "gravmap_points", "voxel_centres"]
