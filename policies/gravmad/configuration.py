"""GravMAD policy configuration: the point-cloud diffusion policy's hyper-parameters plus the
GravMap and the sub-goal guidance.

``GravMADParams`` is what a person chooses (``policy=gravmad`` in ``train.py``); ``GravMADConfig``
adds the data's shapes (as :class:`~policies.diffusion.configuration.DiffusionConfig` does) and
is what :class:`~policies.gravmad.modeling.GravMADPolicy` is built from and saves.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from planners.subgoals.observation import SUBGOAL_KEY  # noqa: F401  (re-exported: the observation key of the sub-goal)
from policies.common.config import is_int, is_number, require
from policies.diffusion.configuration import DiffusionConfig, DiffusionParams
from policies.gravmad.gravmap import GravMapConfig

# ee_delta_pose actions: dx, dy, dz (position), droll, dpitch, dyaw (rotation), gripper
POSITION_DIMS, ROTATION_DIMS, GRIPPER_DIMS = (0, 1, 2), (3, 4, 5), (6,)


@dataclass
class GravMADParams(DiffusionParams):
    """:class:`~policies.diffusion.configuration.DiffusionParams` (the point-cloud diffusion
    policy) plus the GravMap token that guides it (GravMAD, Chen et al., ICLR 2025).

    As in the paper, the sub-goal guides the position (and gripper) part of the action and not
    the rotation part (their ablation found guiding rotation hurts): two denoisers share the
    observation features, and only the position/gripper one reads the GravMap token.
    """

    gravmap_resolution: int = 32      # voxels per axis of the workspace grid
    gravmap_points: int = 256         # value-carrying voxels encoded per map
    cost_radius: float = 0.25         # m: where the cost map saturates
    gripper_radius: float = 0.05      # m: where the gripper map holds the sub-goal's openness
    token_dim: int = 128              # the GravMap token
    # InfoNCE between the GravMap token and the observation features of the same window (in-batch
    # negatives): the scene features learn to say which sub-goal the robot is heading for
    infonce_weight: float = 0.1
    infonce_temperature: float = 0.1
    pointcloud_table_z: Optional[float] = 0.005   # DiffusionParams' key, on here: the table says nothing

    def validate(self) -> None:
        super().validate()
        for name in ("gravmap_resolution", "gravmap_points", "token_dim"):
            require(is_int(getattr(self, name), 2 if name == "gravmap_resolution" else 1), self, name,
                    "an integer >= 2" if name == "gravmap_resolution" else "an integer >= 1")
        for name in ("cost_radius", "gripper_radius", "infonce_temperature"):
            require(is_number(getattr(self, name)) and getattr(self, name) > 0, self, name, "a number > 0")
        require(is_number(self.infonce_weight) and self.infonce_weight >= 0, self, "infonce_weight",
                "a number >= 0 (0: no InfoNCE loss)")

    def gravmap_config(self) -> GravMapConfig:
        return GravMapConfig(resolution=self.gravmap_resolution, cost_radius=self.cost_radius,
                             gripper_radius=self.gripper_radius, num_points=self.gravmap_points,
                             token_dim=self.token_dim)


@dataclass
class GravMADConfig(GravMADParams, DiffusionConfig):
    """:class:`GravMADParams` plus the shapes (keyword-only, as in ``DiffusionConfig``). A GravMAD
    policy always reads the point cloud (``pointcloud_dim`` > 0) and ``proprio``."""

    def validate(self) -> None:
        require(is_int(self.pointcloud_dim, 3), self, "pointcloud_dim",
                "an integer >= 3: a GravMAD policy reads the point cloud (obs_mode=pointcloud)")
        require(self.action_dim == 7, self, "action_dim",
                "7 (ee_delta_pose: position, rotation, gripper; GravMAD guides the position part)")
        super().validate()

    @classmethod
    def from_params(cls, params: GravMADParams, obs_dim: int, action_dim: int, **shapes) -> "GravMADConfig":
        return cls(**{f.name: getattr(params, f.name) for f in fields(GravMADParams)},
                   obs_dim=obs_dim, action_dim=action_dim, **shapes)
