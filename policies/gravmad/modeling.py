"""GravMAD policy (Chen et al., ICLR 2025): point-cloud action diffusion guided by the GravMap of
the current sub-goal.

The observation path is the point-cloud diffusion policy's (PointNet over the cloud, proprio,
optionally the instruction; :class:`~policies.diffusion.modeling.DiffusionPolicy`). On top:

- the current sub-goal (``obs["subgoal"]``: x, y, z in m, world frame, and gripper openness; from
  keyposes of the demonstrations in training, from a provider at test time, see
  :class:`planners.subgoals.SubGoalObservation`) becomes a GravMap (cost + gripper maps over a
  voxel grid) and a token (:class:`~policies.gravmad.gravmap.GravMapEncoder`);
- two 1-D U-Nets denoise the action chunk: the position + gripper dimensions conditioned on the
  observation features *and* the token, the rotation dimensions on the observation features only
  (the paper guides position, not rotation);
- an InfoNCE auxiliary loss ties the observation features to the token of the same window.

The sub-goal switches when the provider's does (at keyposes): the policy reads the newest one.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from envs.core import text_embedding
from policies.common.policy import register_policy
from policies.diffusion.modeling import DiffusionPolicy, ExportGraph
from policies.diffusion.unet1d import ConditionalUnet1D
from policies.gravmad.configuration import (GRIPPER_DIMS, POSITION_DIMS, ROTATION_DIMS, SUBGOAL_KEY, GravMADConfig)
from policies.gravmad.gravmap import GravMapEncoder


class GuidedDenoiser(nn.Module):
    """``forward(x (B, T, A), t, cond (B, obs_cond + token))`` -> (B, T, A): the guided U-Net on
    the position + gripper dims (reads all of ``cond``), the unguided one on the rotation dims
    (reads the first ``obs_cond_dim`` columns: the observation features only)."""

    def __init__(self, c: GravMADConfig, obs_cond_dim: int):
        super().__init__()
        self.obs_cond_dim = obs_cond_dim
        guided = sorted(POSITION_DIMS + GRIPPER_DIMS)
        self.register_buffer("guided_idx", torch.tensor(guided), persistent=False)
        self.register_buffer("rotation_idx", torch.tensor(ROTATION_DIMS), persistent=False)
        unet = lambda dims, cond: ConditionalUnet1D(dims, cond, c.down_dims, c.kernel_size,  # noqa: E731
                                                    c.n_groups, c.diffusion_step_embed_dim)
        self.guided = unet(len(guided), obs_cond_dim + c.token_dim)
        self.rotation = unet(len(ROTATION_DIMS), obs_cond_dim)

    def forward(self, x: torch.Tensor, t, cond: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        out[..., self.guided_idx] = self.guided(x[..., self.guided_idx], t, cond)
        out[..., self.rotation_idx] = self.rotation(x[..., self.rotation_idx], t, cond[:, :self.obs_cond_dim])
        return out


@register_policy("gravmad")
class GravMADPolicy(DiffusionPolicy):
    """The diffusion policy's surface (``select_action``, ``predict_action_chunk``, ``reset``,
    ``save_pretrained``, ``from_pretrained``); observations are the env's Dict (``obs_mode=pointcloud``)
    with the current sub-goal under ``"subgoal"``. Modules beyond the diffusion policy's:
    ``gravmap`` (maps + token encoder), ``model`` (a :class:`GuidedDenoiser`), ``infonce_obs`` and
    ``infonce_token`` (the InfoNCE projections)."""

    config_class = GravMADConfig

    def __init__(self, config: GravMADConfig):
        super().__init__(config)
        c = config
        obs_cond_dim = self._obs_cond_dim()
        self.gravmap = GravMapEncoder(c.gravmap_config())
        self.model = GuidedDenoiser(c, obs_cond_dim)
        self.infonce_obs = nn.Linear(obs_cond_dim, c.token_dim)
        self.infonce_token = nn.Linear(c.token_dim, c.token_dim)

    def _obs_cond_dim(self) -> int:
        c = self.config
        dim = c.n_obs_steps * (c.obs_dim + self.pointcloud_encoder.output_dim)
        if self.image_encoder is not None:
            dim += c.n_obs_steps * self.image_encoder.output_dim
        if c.reads_instruction:
            dim += c.instruction_proj_dim or text_embedding.DIM
        return dim

    def _subgoal_token(self, obs) -> torch.Tensor:
        """(B, token_dim): the GravMap token of the newest sub-goal of the observation window."""
        goal = torch.as_tensor(obs[SUBGOAL_KEY]).to(self.device, torch.float32)
        self._check_shape(f"obs[{SUBGOAL_KEY!r}]", goal, (self.config.n_obs_steps, 4))
        return self.gravmap(goal[:, -1, :3], goal[:, -1, 3].clamp(0, 1))

    def _check_obs(self, obs) -> None:
        if not isinstance(obs, Mapping) or "pointcloud" not in obs:
            got = "a flat vector" if not isinstance(obs, Mapping) else f"keys {sorted(obs)}"
            raise ValueError(f"this GravMAD policy needs obs_mode=pointcloud (it reads the point cloud, proprio and "
                             f"the current sub-goal); got {got}")
        if SUBGOAL_KEY not in obs:
            raise ValueError(f"this GravMAD policy reads the current sub-goal obs[{SUBGOAL_KEY!r}]: wrap the env in "
                             f"planners.subgoals.SubGoalObservation (a provider: manual, offline or llm)")

    def _condition(self, obs, instruction_embedding):
        self._check_obs(obs)
        return torch.cat([super()._condition(obs, instruction_embedding), self._subgoal_token(obs)], -1)

    def compute_loss(self, batch: dict) -> torch.Tensor:
        """Denoising loss + ``infonce_weight`` x InfoNCE(observation features, GravMap token);
        ``batch["obs"]`` holds ``obs_keys`` + ``"subgoal"`` (B, n_obs_steps, 4)."""
        c = self.config
        loss, cond = self.denoising_loss(batch)
        if c.infonce_weight > 0 and cond.shape[0] > 1:
            obs_cond, token = cond[:, :self.model.obs_cond_dim], cond[:, self.model.obs_cond_dim:]
            loss = loss + c.infonce_weight * infonce(self.infonce_obs(obs_cond), self.infonce_token(token),
                                                     c.infonce_temperature)
        return loss

    def _observe(self, obs):
        self._check_obs(obs)
        n, single = super()._observe(obs)
        goal = np.asarray(obs[SUBGOAL_KEY], np.float32)
        # after reset() the padded history repeats one dict: the sub-goal joins all of it
        self._obs_history[-1][SUBGOAL_KEY] = goal[None] if single else goal
        return n, single

    def export_spec(self):
        """The diffusion policy's graph (:meth:`DiffusionPolicy.export_spec`: normalizers inside, DDIM
        unrolled, noise an input, the point cloud an input) plus the *current* sub-goal (4,). The
        GravMap (voxel grid, cost and gripper maps, the points kept) is built and encoded inside
        the graph: it is torch ops, so the robot side feeds only the sub-goal."""
        from policies.common.export_spec import ObsInput

        c = self.config
        if c.cameras:
            raise NotImplementedError("this GravMAD policy also reads cameras; policies.export supports GravMAD on the "
                                      "point cloud, proprio and sub-goal (+ instruction)")
        spec = super().export_spec()
        g = c.gravmap_config()
        lo, hi = g.bounds
        spec.observations += (ObsInput(SUBGOAL_KEY, (4,), history=False, low=(*lo, 0.0), high=(*hi, 1.0),
                                       manifest=SUBGOAL_MANIFEST),)
        spec.module = ExportGraph(self, [o.name for o in spec.observations], current_only=(SUBGOAL_KEY,))
        spec.normalization["method"] += "; point cloud and sub-goal raw"
        spec.extra["gravmap"] = {
            "inside_graph": True, "input": SUBGOAL_KEY, "bounds_m": [list(lo), list(hi)],
            "resolution": g.resolution, "cost_radius_m": g.cost_radius, "gripper_radius_m": g.gripper_radius,
            "num_points": g.num_points, "default_open": 1.0,
            "guides": "the position and gripper action dims; the rotation dims never read it",
            "what": "cost map min(|x - pos| / cost_radius, 1) and gripper map (gripper_open within "
                    "max(gripper_radius, half a voxel diagonal) of pos, else 1) over the voxel grid of bounds_m; "
                    "the num_points voxels with cost < 1 kept, encoded to one token"}
        return spec


# the manifest's sub-goal key: what a real-robot integrator feeds (SubGoalObservation's in sim)
SUBGOAL_MANIFEST = {
    "meaning": "the current sub-goal: where the tool centre point should go next and the gripper openness there",
    "units": "x, y, z in m; gripper_open in [0, 1] (0 closed, 1 open)",
    "frame": "robot base frame (the world frame in sim: Panda base at the origin, z up, table top at z = 0)",
    "fields": [{"name": "pos", "slice": [0, 3], "units": "m", "meaning": "sub-goal TCP position, robot base frame"},
               {"name": "gripper_open", "slice": [3, 4], "units": "[0, 1]",
                "meaning": "gripper openness at the sub-goal (clipped to [0, 1] in the graph)"}],
    "source": "in sim, wrap the env in planners.subgoals.SubGoalObservation(env, 'manual' | 'offline' | 'llm'), "
              "which puts the current sub-goal into the observation as obs['subgoal'] (4,) float32; on a robot, "
              "your sub-goal planner's current target, updated when it switches (at keyposes)",
    "gravmap": "built from this input inside the graph (policy.gravmap)"}


def infonce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP's loss) between row-paired embeddings ``a``, ``b`` (B, D): row i of
    each is the positive of the other's row i, the other rows its negatives."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    labels = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
