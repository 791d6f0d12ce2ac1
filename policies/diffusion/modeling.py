"""Diffusion policy (Chi et al., RSS 2023): denoise an action trajectory conditioned on recent states.

Training noises normalized action trajectories with diffusers' ``DDPMScheduler`` and learns to
predict the noise. Acting samples with the DDIM schedule of diffusers' ``DDIMScheduler`` (same
betas) in ``num_inference_steps`` steps and executes ``n_action_steps`` actions before re-planning.

Time indexing (diffusion_policy's): with ``To = n_obs_steps``, the observation window is steps
``t-To+1 .. t`` and the trajectory covers ``horizon`` steps from ``t-To+1``; the executed chunk is
``traj[:, To-1 : To-1+n_action_steps]``, i.e. it starts at the current step ``t``.
"""
from __future__ import annotations

from collections import deque
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from envs.core import observation as ob
from envs.core import text_embedding
from envs.core.robot import WORKSPACE
from policies.common.encoders import (FusionConfig, ImageEncoder, ImageEncoderConfig, MiniLMInstructionEncoder,
                                      PointCloudEncoder, PointCloudEncoderConfig, TokenFusion, images_from_obs)
from policies.common.grounding import AUX_OBJECTS, position_loss, present_objects, target_objects
from policies.common.normalizer import Normalizer
from policies.common.policy import Policy, register_policy
from policies.diffusion.configuration import DiffusionConfig
from policies.diffusion.unet1d import ConditionalUnet1D

# where the TCP position sits in every vector observation (state, slots and proprio all start with the proprio fields)
_TCP_POS = ob.slots_layout()["tcp_pos"]

# what an instruction says of an object, and so what a readout names of its own (pointer loss, cameras)
NAMED_FIELDS_DIM = {"rgb": 3, "kind": len(ob.SLOT_KINDS)}


@register_policy("diffusion")
class DiffusionPolicy(Policy):
    """Diffusion policy on the common surface (``select_action``, ``predict_action_chunk``,
    ``reset``, ``save_pretrained``, ``from_pretrained``); ``policy(obs_hist, noise)`` is the tensor graph.

    Reads a vector observation (``state``, ``slots`` or, beside cameras or a point cloud,
    ``proprio``), optionally camera images (``config.cameras``), the point cloud
    (``config.pointcloud_dim``) and the episode's instruction (``config.instruction_encoder``); all
    of them form the U-Net's global FiLM condition: concatenated (``obs_encoder=flat``), or as the
    readout tokens of a transformer over the instruction's word pieces, the robot and each object
    slot (``obs_encoder=transformer``, :class:`~policies.common.encoders.TokenFusion`).

    Modules: ``obs_normalizer`` (obs_dim), ``action_normalizer`` (action_dim), ``model`` (the U-Net),
    ``image_encoder`` (with cameras), ``pointcloud_encoder`` (with a point cloud),
    ``instruction_proj`` (with an instruction and a projection), ``fusion`` (obs_encoder=transformer).
    The text model is referenced by name in ``config.json`` and not saved with the weights.
    Observations and actions are raw (unnormalized) everywhere in the public API.
    """

    config_class = DiffusionConfig

    def __init__(self, config: DiffusionConfig):
        super().__init__(config)
        c = config
        self.obs_normalizer = Normalizer(c.obs_dim)
        self.action_normalizer = Normalizer(c.action_dim)
        cond_dim = c.n_obs_steps * c.obs_dim
        # drop_goal_features: a 1/0 mask over the slots vector (not saved: rebuilt from the layout)
        self.register_buffer("obs_mask", torch.from_numpy(ob.slots_goal_mask()) if c.drop_goal_features else None,
                             persistent=False)
        # Images: one encoder for every camera of the history, trained end to end with the U-Net
        # (its weights are saved with the policy); random crop in train(), centre crop in eval().
        self.image_encoder = None
        if c.cameras:
            self.image_encoder = ImageEncoder(ImageEncoderConfig(
                cameras=c.cameras, image_size=c.image_size, crop_fraction=c.crop_fraction, depth=c.depth,
                backbone=c.image_backbone, feature_dim=c.image_feature_dim))
            cond_dim += c.n_obs_steps * self.image_encoder.output_dim
        # Point cloud: PointNet over every step's cloud (xyz in the world frame, not centred: where
        # the points are is what the arm acts on; the feature columns after xyz, e.g. rgb, all read).
        self.pointcloud_encoder = None
        if c.pointcloud_dim:
            self.pointcloud_encoder = PointCloudEncoder(PointCloudEncoderConfig(
                point_features=c.pointcloud_dim - 3, center_xyz=False, output_dim=c.pointcloud_feature_dim))
            cond_dim += c.n_obs_steps * self.pointcloud_encoder.output_dim
        # Language: the instruction's embedding (computed by a named, frozen text model that is
        # not saved) joins the global FiLM condition, through a small learned projection.
        self.instruction_proj = None
        instruction_dim = 0   # what the flat condition reads of the instruction
        self.fusion = None
        self.attribute_head = None
        if c.fuses_tokens:
            # tokens: the robot's history; each object slot's history (a set: no positions) or each
            # camera's feature and image patch per step (positions: which camera, step and cell);
            # each word piece (ordered). The condition is the readouts alone (they attend to all).
            slots = c.obs_key == "slots"
            groups = {"agent": (c.n_obs_steps * (ob.AGENT_DIM if slots else c.obs_dim), 0)} if c.fusion_agent else {}
            if slots:
                groups["objects"] = (c.n_obs_steps * ob.SLOT_DIM, 0)
            if self.image_encoder is not None:
                views = c.n_obs_steps * len(c.cameras)
                groups["cameras"] = (c.image_feature_dim, views)
                # + the cell's (row, col) in [-1, 1]: a pointed-at patch says where it is
                groups["patches"] = (self.image_encoder.patch_dim + 2, views * c.fusion_image_grid ** 2)
            if c.reads_instruction:
                groups["words"] = (text_embedding.DIM, c.instruction_tokens)
            self.fusion = TokenFusion(FusionConfig(dim=c.fusion_dim, layers=c.fusion_layers, heads=c.fusion_heads,
                                                   readouts=c.fusion_readouts,
                                                   pointer=("objects" if slots else "patches") if c.fusion_pointer
                                                   else ""), groups)
            skip = c.n_obs_steps * len(c.cameras) * c.image_feature_dim if c.fusion_skip else 0
            skip += 0 if c.fusion_agent else c.obs_dim      # the proprio's current step, beside the fusion
            cond_dim = self.fusion.output_dim + skip
            # cameras + pointer loss: each readout also names its object's colour and kind (the words
            # say them). Without it the pointer sits at chance between the scene's objects: its query
            # must first pick the r-th named colour out of the words, which nothing else teaches it
            self.attribute_head = nn.Linear(c.fusion_dim, sum(NAMED_FIELDS_DIM.values())) \
                if c.fusion_pointer_loss and c.cameras else None
        elif c.reads_instruction:
            instruction_dim = text_embedding.DIM
            if c.instruction_proj_dim:
                self.instruction_proj = nn.Linear(instruction_dim, c.instruction_proj_dim)
                instruction_dim = c.instruction_proj_dim
            cond_dim += instruction_dim
        # aux_position_loss: current camera features -> (pos, rel_pos) of the task's first objects.
        # position_condition: the U-Net reads that guess, so it must say which object is which: the
        # head also reads what names them (the fusion's readouts, which point at the named objects'
        # patches, or the instruction) and has a hidden layer to match colours to words
        head_in = len(c.cameras) * c.image_feature_dim
        self.position_head = None
        head_out = AUX_OBJECTS * (3 if c.position_from_tcp else 6)   # position_from_tcp: rel_pos from the proprio
        if c.position_condition:
            head_in += self.fusion.output_dim if self.fusion is not None else instruction_dim
            self.position_head = nn.Sequential(nn.Linear(head_in, 256), nn.Mish(), nn.Linear(256, head_out))
            cond_dim += AUX_OBJECTS * 6
        elif c.aux_position_loss:
            self.position_head = nn.Linear(head_in, head_out)
        self._camera_features = self._positions = None
        self.model = ConditionalUnet1D(c.action_dim, cond_dim, c.down_dims, c.kernel_size,
                                       c.n_groups, c.diffusion_step_embed_dim)
        schedule = dict(num_train_timesteps=c.num_train_timesteps, beta_schedule=c.beta_schedule,
                        clip_sample=c.clip_sample, prediction_type=c.prediction_type)
        self.noise_scheduler = DDPMScheduler(**schedule)
        # diffusion_policy's inference settings: the last step lands on the clean sample (alpha=1).
        self.inference_scheduler = DDIMScheduler(**schedule, set_alpha_to_one=True, steps_offset=0)
        self.inference_scheduler.set_timesteps(c.num_inference_steps)
        self._register_ddim_schedule()
        self._instruction_encoder = None   # built on first use (loads the text model)
        self.reset()

    @property
    def reads_instruction(self) -> bool:
        """Whether ``reset(instruction=...)`` must name each episode's instruction."""
        return self.config.reads_instruction

    @property
    def instruction_encoder(self):
        """The text model named by ``config.instruction_encoder`` (cached per string)."""
        if self._instruction_encoder is None:
            self._instruction_encoder = MiniLMInstructionEncoder()
        return self._instruction_encoder

    def embed_instructions(self, instructions: Sequence[str]):
        """Instruction strings -> what the condition reads of them, on the policy's device: (N, 384)
        float32 sentence embeddings, or with ``obs_encoder=transformer`` the word pieces
        ``(tokens (N, instruction_tokens, 384), mask (N, instruction_tokens) bool)``."""
        if self.config.fuses_tokens:
            tokens, mask = self.instruction_encoder.encode_tokens(list(instructions), self.config.instruction_tokens)
            return torch.from_numpy(tokens).to(self.device), torch.from_numpy(mask).to(self.device)
        return torch.from_numpy(self.instruction_encoder.encode(list(instructions))).to(self.device)

    def _register_ddim_schedule(self) -> None:
        """Per-step DDIM constants as (non-persistent) buffers: the sampling loop is then plain
        tensor arithmetic with a fixed length, traceable for export and on the policy's device.
        Matches ``DDIMScheduler.step`` with eta=0 (checked in the tests)."""
        sched = self.inference_scheduler
        timesteps = sched.timesteps.long()
        prev = timesteps - sched.config.num_train_timesteps // sched.num_inference_steps
        alphas = sched.alphas_cumprod
        alpha_prev = torch.where(prev >= 0, alphas[prev.clamp_min(0)], sched.final_alpha_cumprod)
        self.register_buffer("ddim_timesteps", timesteps, persistent=False)
        self.register_buffer("ddim_alpha", alphas[timesteps].float(), persistent=False)
        self.register_buffer("ddim_alpha_prev", alpha_prev.float(), persistent=False)

    # -- training --------------------------------------------------------------------------
    def fit_normalizer(self, obs: np.ndarray, actions: np.ndarray) -> None:
        """Fit both normalizers on raw training data: obs (N, obs_dim), actions (N, action_dim).
        With ``shuffle_slots`` or the token fusion every object slot gets the range of all slots
        together: an object is scaled the same in whichever slot it sits (as training moves it)."""
        if self.config.obs_key == "slots" and (self.config.shuffle_slots or self.config.fuses_tokens):
            obs = np.asarray(obs, dtype=np.float32).reshape(-1, self.config.obs_dim)
            bounds = np.stack([obs.min(0), obs.max(0)])                         # (2, SLOTS_DIM)
            objects = ob.split_slots(bounds)[1]                                 # a view into bounds
            objects[0], objects[1] = objects[0].min(0), objects[1].max(0)       # every slot: the pooled range
            obs = bounds                                                        # min/max of these 2 rows = the tied stats
        self.obs_normalizer.fit(obs, min_span=self.config.obs_min_span)
        self.action_normalizer.fit(actions)

    def compute_loss(self, batch: dict) -> torch.Tensor:
        """Denoising loss (scalar). ``batch["action"]`` (B, horizon, action_dim) raw; ``batch["obs"]``
        either (B, n_obs_steps, obs_dim) (the vector observation) or ``{key: (B, n_obs_steps, ...)}``
        holding :attr:`DiffusionConfig.obs_keys` (camera images uint8 (..., H, W, 3) and point
        clouds (..., N, pointcloud_dim) as the demo store hands them out; an optional
        ``pointcloud_mask`` (..., N) bool marks real points of padded clouds). A policy that reads instructions also needs
        ``batch["instruction"]`` (B strings) or ``batch["instruction_embedding"]`` (B, 384)."""
        return self.denoising_loss(batch)[0]

    def denoising_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The denoising loss and the global condition it used (B, cond_dim), for subclasses that
        add terms on the condition (GravMAD's InfoNCE)."""
        c = self.config
        actions = batch["action"].to(self.device)
        self._check_shape("batch['action']", actions, (c.horizon, c.action_dim))
        cond = self._condition(batch["obs"], self._batch_instruction(batch))
        clean = self.action_normalizer.normalize(actions)
        noise = torch.randn_like(clean)
        t = torch.randint(0, c.num_train_timesteps, (clean.shape[0],), device=clean.device)
        noisy = self.noise_scheduler.add_noise(clean, noise, t)
        pred = self.model(noisy, t, cond)
        target = noise if c.prediction_type == "epsilon" else clean
        demo = batch.get("demo")
        if demo is None:
            loss = F.mse_loss(pred, target)
        else:   # exploration windows (data.explore_episodes) teach the perception losses only
            demo = torch.as_tensor(demo, device=pred.device, dtype=pred.dtype)
            per_sample = (pred - target).pow(2).mean((1, 2))
            loss = (per_sample * demo).sum() / demo.sum().clamp_min(1)
        if c.fusion_pointer_loss:
            loss = loss + c.fusion_pointer_loss * self._pointer_loss(batch)
        if c.aux_position_loss:
            loss = loss + c.aux_position_loss * position_loss(self._positions, batch)
        return loss, cond

    def _pointer_loss(self, batch: dict) -> torch.Tensor:
        """Cross-entropy of each readout's pointer against the task's object of the same rank
        (readout r -> the r-th object the task added), over the objects present (and, for
        cameras, in view); readouts past the scene's objects are free. slots: the target is slot r
        (the fusion read the slots as a set, so the index reached the loss only); cameras: the
        patch of the front camera's current image that shows object r."""
        logits = self.fusion.pointer_logits                                   # (B, R, N)
        extra = logits.new_zeros(())
        if self.config.cameras:
            target, supervised = self._object_patches(batch)
            named, present = self._named_attributes(batch, target.shape[1])
            if present.any():
                guess = self.attribute_head(self._readouts[:, :target.shape[1]])
                # squared error summed over the features: a mean would dilute the colour's 3 numbers in the kind's zeros
                extra = (guess[present] - named[present]).pow(2).sum(-1).mean()
        else:
            obs = batch["obs"]
            vector = obs[self.config.obs_key] if isinstance(obs, Mapping) else obs
            present = present_objects(vector.to(self.device))
            r = min(logits.shape[1], ob.MAX_OBJECTS)
            target = torch.arange(r, device=logits.device).expand(logits.shape[0], r)
            supervised = present[:, :r]                                        # (B, r): slot r holds an object
        r = target.shape[1]
        if not supervised.any():
            return extra
        return F.cross_entropy(logits[:, :r][supervised], target[supervised]) + extra

    def _named_attributes(self, batch: dict, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, r, colour + kind) of the task's first r objects and (B, r) whether each is present."""
        objects, present = target_objects(batch, r)
        named = torch.cat([objects[..., ob.SLOT_FIELD_SLICES[k]] for k in NAMED_FIELDS_DIM], -1)
        return named.to(self.device), present.to(self.device)

    def _object_patches(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """For the pointer loss with cameras: (B, r) the patch token showing the task's r-th object
        in the front camera's current image (after the crop the encoder just drew) and (B, r) bool
        whether that object is present and in view. From ``batch["targets"]["slots"]``."""
        c = self.config
        objects, present = target_objects(batch, min(c.fusion_readouts, ob.MAX_OBJECTS))   # (B, r, S), (B, r)
        pixels = torch.from_numpy(ob.front_camera_pixels(objects[..., ob.SLOT_FIELD_SLICES["pos"]].numpy(),
                                                         c.image_size)).float()            # (B, r, 2) col, row
        top, left = (o.cpu().reshape(-1, c.n_obs_steps)[:, -1:].float() for o in self.image_encoder.crop_offsets["front"])
        size, grid = self.image_encoder.config.crop_size, c.fusion_image_grid
        col, row = (pixels[..., 0] - left) / size, (pixels[..., 1] - top) / size             # in the crop, [0, 1)
        in_view = (col >= 0) & (col < 1) & (row >= 0) & (row < 1)                           # NaN compares False
        cell = (row.nan_to_num(0).clamp(0, 1 - 1e-6) * grid).long() * grid \
            + (col.nan_to_num(0).clamp(0, 1 - 1e-6) * grid).long()
        view = (c.n_obs_steps - 1) * len(c.cameras) + c.cameras.index("front")          # current step, front camera
        supervised = present & in_view
        if c.fusion_pointer_steps:   # only the first frames: there the words alone say which block is which
            step = batch["targets"].get("step")
            if step is None:
                raise ValueError("fusion_pointer_steps needs batch['targets']['step'] (each window's current step): "
                                 "MultiTaskDataset(..., target_keys=('slots', 'step'))")
            supervised = supervised & (torch.as_tensor(step).cpu() < c.fusion_pointer_steps)[:, None]
        return (view * grid ** 2 + cell).to(self.device), supervised.to(self.device)

    def _batch_instruction(self, batch: dict) -> torch.Tensor | None:
        if not self.reads_instruction:
            return None
        if "instruction_embedding" in batch and not self.config.fuses_tokens:
            return batch["instruction_embedding"].to(self.device, torch.float32)
        if "instruction" not in batch:
            raise ValueError("this policy reads instructions: the batch needs 'instruction' (strings)"
                             + ("" if self.config.fuses_tokens else " or 'instruction_embedding' (B, 384)")
                             + "; MultiTaskDataset provides them")
        return self.embed_instructions(batch["instruction"])

    def _condition(self, obs, instruction_embedding: torch.Tensor | None) -> torch.Tensor:
        """The U-Net's global condition (B, cond_dim): the normalized vector history, the image
        features of every camera and step, and the (projected) instruction embedding."""
        c = self.config
        vector = obs[c.obs_key] if isinstance(obs, Mapping) else obs
        vector = vector.to(device=self.device, dtype=torch.float32)
        self._check_shape(f"obs[{c.obs_key!r}]" if isinstance(obs, Mapping) else "obs", vector,
                          (c.n_obs_steps, c.obs_dim))
        if self.training and c.shuffle_slots:
            vector = self._shuffle_slots(vector)
        normalized = self.obs_normalizer.normalize(vector)
        if self.obs_mask is not None:
            normalized = normalized * self.obs_mask
        images = None
        if self.image_encoder is not None:
            if not isinstance(obs, Mapping):
                raise ValueError(f"this policy reads cameras {list(c.cameras)}: obs must be a dict with "
                                 f"{list(c.obs_keys)}")
            images = images_from_obs({k: obs[k] for k in c.obs_keys if k != c.obs_key}, c.cameras, c.depth)
            images = {k: v.to(self.device) for k, v in images.items()}
        if self.fusion is not None:
            fused, readouts = self._fuse(vector, normalized, images, instruction_embedding)
            return self._with_positions(fused, readouts, vector)
        parts = [normalized.flatten(1)]
        if images is not None:
            self._camera_features = self.image_encoder(images)              # (B, To, n_cameras * feature_dim)
            parts.append(self._camera_features.flatten(1))
        if self.pointcloud_encoder is not None:
            if not isinstance(obs, Mapping):
                raise ValueError(f"this policy reads a point cloud: obs must be a dict with {list(c.obs_keys)}")
            parts.append(self._encode_pointcloud(obs["pointcloud"], obs.get("pointcloud_mask")).flatten(1))
        if self.reads_instruction:
            if instruction_embedding is None:
                raise ValueError("this policy reads instructions; none was given (policy.reset(instruction=...))")
            emb = instruction_embedding.to(self.device, torch.float32)
            # (the batch sizes are compared first: equal in an export trace, where "is it 1" is undecidable)
            if emb.shape[0] != vector.shape[0] and emb.shape[0] == 1:
                emb = emb.expand(vector.shape[0], -1)
            if emb.shape != (vector.shape[0], text_embedding.DIM):
                raise ValueError(f"instruction embedding has shape {tuple(emb.shape)}; expected "
                                 f"({vector.shape[0]}, {text_embedding.DIM}), one per observation in the batch")
            parts.append(self.instruction_proj(emb) if self.instruction_proj is not None else emb)
        n_instruction = parts[-1].shape[-1] if self.reads_instruction else 0
        cond = torch.cat(parts, dim=-1)
        return self._with_positions(cond, cond[:, cond.shape[1] - n_instruction:], vector)

    def _fuse(self, raw: torch.Tensor, normalized: torch.Tensor, images, instruction) -> tuple[torch.Tensor, torch.Tensor]:
        """obs_encoder=transformer: (B, To, obs_dim) raw and normalized vectors, the images
        ``{camera: (B, To, C, H, W)}`` (or None) and the instruction's word pieces -> the condition
        (with fusion_skip the cameras' global features, then the readouts) and the readouts alone.
        An object token is its slot over the history; empty slots (``present`` 0 at the current
        step) are masked out."""
        c = self.config
        b, t = normalized.shape[:2]
        tokens, masks = ({"agent": normalized.reshape(b, 1, -1)} if c.fusion_agent else {}), {}
        if c.obs_key == "slots":
            agent, objects = ob.split_slots(normalized)                       # (B, To, A), (B, To, M, S)
            tokens["agent"] = agent.reshape(b, 1, t * ob.AGENT_DIM)
            tokens["objects"] = objects.permute(0, 2, 1, 3).reshape(b, ob.MAX_OBJECTS, t * ob.SLOT_DIM)
            masks["objects"] = present_objects(raw)
        if images is not None:
            feats, patches = self.image_encoder.patches(images, c.fusion_image_grid)   # (B, To, K, F), (B, To, K, P, C)
            tokens["cameras"] = feats.reshape(b, -1, feats.shape[-1])
            self._camera_features = feats.reshape(b, t, -1)
            g = c.fusion_image_grid
            cells = torch.linspace(-1, 1, g, device=patches.device) if g > 1 else patches.new_zeros(1)
            coords = torch.stack(torch.meshgrid(cells, cells, indexing="ij"), -1).reshape(g * g, 2)   # (row, col)
            patches = torch.cat([patches, coords.expand(*patches.shape[:-1], 2)], -1)
            tokens["patches"] = patches.reshape(b, -1, patches.shape[-1])
        if c.reads_instruction:
            if instruction is None:
                raise ValueError("this policy reads instructions; none was given (policy.reset(instruction=...))")
            words, word_mask = instruction
            words, word_mask = words.to(self.device, torch.float32), word_mask.to(self.device)
            if words.shape[0] != b and words.shape[0] == 1:
                words, word_mask = words.expand(b, -1, -1), word_mask.expand(b, -1)
            if words.shape[0] != b:
                raise ValueError(f"instruction word pieces for {words.shape[0]} rows; the batch has {b}")
            tokens["words"], masks["words"] = words, word_mask
        fused = self.fusion(tokens, masks)
        if self.attribute_head is not None:   # the readouts alone, for the pointer loss's naming term
            self._readouts = fused.reshape(b, c.fusion_readouts, -1)[..., :c.fusion_dim]
        readouts = fused
        if c.fusion_skip:   # the cameras' global features, not the proprio (a shortcut: see the config)
            fused = torch.cat([tokens["cameras"].flatten(1), fused], dim=-1)
        if not c.fusion_agent:   # the proprio beside the readouts, not in them (the position head reads them)
            fused = torch.cat([fused, normalized[:, -1]], dim=-1)
        return fused, readouts

    def _with_positions(self, cond: torch.Tensor, names: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        """The position head's guess at the current step (B, AUX_OBJECTS * 6, decimetres) from the
        camera features (+ ``names``: what tells the objects apart, with position_condition), kept
        for the aux loss and, with position_condition, appended to the condition. Not detached: the
        denoising loss shapes the head too, while the aux loss keeps it saying where things are.
        position_from_tcp: the head says (pos) per object and rel_pos = pos - the TCP of the raw
        proprio ``vector`` (B, To, obs_dim) at the current step."""
        if self.position_head is None:
            return cond
        features = self._camera_features[:, -1]
        if self.config.position_condition:
            features = torch.cat([features, names], -1)
        guess = self.position_head(features)
        if self.config.position_from_tcp:
            pos = guess.reshape(-1, AUX_OBJECTS, 3)
            tcp = vector[:, -1, _TCP_POS].to(pos.dtype) * 10          # decimetres, as the targets
            guess = torch.cat([pos, pos - tcp[:, None]], -1).reshape(-1, AUX_OBJECTS * 6)
        self._positions = guess
        return torch.cat([cond, guess], -1) if self.config.position_condition else cond

    @staticmethod
    def _shuffle_slots(vector: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, T, SLOTS_DIM) with each sample's object slots in a random order, the same at every step."""
        b, t = vector.shape[:2]
        objects = vector[..., ob.AGENT_DIM:].reshape(b, t, ob.MAX_OBJECTS, ob.SLOT_DIM)
        perm = torch.argsort(torch.rand(b, ob.MAX_OBJECTS, generator=generator).to(vector.device), dim=1)
        objects = torch.gather(objects, 2, perm[:, None, :, None].expand(b, t, ob.MAX_OBJECTS, ob.SLOT_DIM))
        return torch.cat([vector[..., :ob.AGENT_DIM], objects.reshape(b, t, -1)], dim=-1)

    def _encode_pointcloud(self, points: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, To, N, pointcloud_dim) raw clouds -> (B, To, pointcloud_feature_dim). Reads
        ``pointcloud_points`` of each cloud: random ones in training (an augmentation, and the cost
        of the per-point MLP falls with them), evenly spaced ones in eval (the clouds are ordered by
        camera and pixel row, so these spread over the scene)."""
        c = self.config
        points = torch.as_tensor(points).to(device=self.device, dtype=torch.float32)
        self._check_shape("obs['pointcloud']", points[:, :, 0], (c.n_obs_steps, c.pointcloud_dim))
        mask = None if mask is None else torch.as_tensor(mask).to(self.device).bool()
        n, k = points.shape[-2], c.pointcloud_points
        if k and k < n and c.pointcloud_table_z is not None:
            # points above the table first (random ones in training; in eval a fixed spread over
            # the cloud), table points only to fill up: the objects are what the cloud is for
            spread = (torch.rand(points.shape[:-1], device=self.device) if self.training else
                      (torch.arange(n, device=self.device) * 0.6180339887 % 1.0).expand(points.shape[:-1]))
            idx = (spread + (points[..., 2] > c.pointcloud_table_z).float()).topk(k, dim=-1).indices
        elif k and k < n:
            if self.training:
                idx = torch.rand(points.shape[:-1], device=self.device).argsort(-1)[..., :k]     # (B, To, k)
            else:
                idx = torch.linspace(0, n - 1, k, device=self.device).long().expand(*points.shape[:-2], k)
        if k and k < n:
            points = points.gather(-2, idx[..., None].expand(*idx.shape, points.shape[-1]))
            mask = None if mask is None else mask.gather(-1, idx)
        return self.pointcloud_encoder(points, mask)

    # -- sampling --------------------------------------------------------------------------
    def _ddim_step(self, k: int, model_output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """x_t -> x_{t_prev} for step ``k`` of the DDIM schedule (deterministic, eta = 0)."""
        a_t, a_prev = self.ddim_alpha[k], self.ddim_alpha_prev[k]
        if self.config.prediction_type == "epsilon":
            eps = model_output
            x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        else:  # "sample"
            x0 = model_output
            eps = (x - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
        if self.config.clip_sample:
            x0 = x0.clamp(-1.0, 1.0)  # normalized actions live in [-1, 1]
        return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps

    @torch.no_grad()
    def sample_trajectory(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """DDIM from ``noise`` (B, horizon, action_dim) given the flattened normalized observation
        history ``cond`` (B, n_obs_steps * obs_dim) -> normalized trajectory (B, horizon, action_dim)."""
        x = noise
        for k in range(self.config.num_inference_steps):  # a fixed python count: unrolls when traced
            x = self._ddim_step(k, self.model(x, self.ddim_timesteps[k], cond), x)
        return x

    @torch.no_grad()
    def forward(self, obs_hist, noise: torch.Tensor | None = None,
                instruction_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """The policy as one tensor graph (what an exporter traces): raw observations
        (B, n_obs_steps, obs_dim), oldest first, or ``{key: (B, n_obs_steps, ...)}`` for a policy
        reading images -> raw actions (B, n_action_steps, action_dim), the first to be applied now.
        Called as ``policy(obs_hist, noise)``; a policy that reads instructions also takes
        ``instruction_embedding`` (B, 384) (or (1, 384) for all).

        ``noise`` (B, horizon, action_dim) is the initial latent; giving it makes the result
        deterministic (no other randomness), e.g. to compare an exported graph with this one.
        """
        c = self.config
        vector = obs_hist[c.obs_key] if isinstance(obs_hist, Mapping) else obs_hist
        shape = (vector.shape[0], c.horizon, c.action_dim)
        if noise is None and self._noise_generators is not None:
            if len(self._noise_generators) != shape[0]:
                raise ValueError(f"reset(noise_seeds=...) gave {len(self._noise_generators)} seeds for a batch of {shape[0]}")
            noise = torch.stack([torch.randn(shape[1:], generator=g) for g in self._noise_generators])
        elif noise is None:
            noise = torch.randn(shape, device=self.device)
        elif not torch.jit.is_tracing() and tuple(noise.shape) != shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)}; expected {shape} = (batch, horizon, action_dim)")
        cond = self._condition(obs_hist, instruction_embedding)
        traj = self.sample_trajectory(cond, noise.to(device=self.device, dtype=torch.float32))
        start = c.n_obs_steps - 1  # the trajectory starts at the oldest observation; act from the current one
        return self.action_normalizer.unnormalize(traj[:, start:start + c.n_action_steps])

    def export_spec(self):
        """The whole sampler as one graph: normalize -> (image encoder, instruction projection) ->
        ``num_inference_steps`` DDIM steps -> unnormalize, with the initial noise as an input (see
        :mod:`policies.export`). Images enter as the env gives them (uint8 HWC, depth in metres);
        the instruction as its embedding (the text model is exported beside the graph)."""
        from policies.common.export_spec import ExportSpec, ImageInput, ObsInput

        c = self.config
        images, image_processing, observations = (), {}, ()
        if c.pointcloud_dim:   # example inputs: xyz in the robot's workspace, the other columns (rgb) in [0, 1]
            lo, hi = WORKSPACE
            rest = c.pointcloud_dim - 3
            observations = (ObsInput("pointcloud", (ob.POINTCLOUD_POINTS, c.pointcloud_dim), low=(*lo, *[0.0] * rest),
                                     high=(*hi, *[1.0] * rest), manifest=_pointcloud_manifest(c)),)
        if c.cameras:
            size = c.image_size
            images = tuple(ImageInput(key, key.rsplit("_", 1)[0], (size, size, 3) if key.endswith("_rgb") else
                                      (size, size, 1), "uint8" if key.endswith("_rgb") else "float32")
                           for key in c.obs_keys if key != c.obs_key)
            e = self.image_encoder.config
            image_processing = {
                "image_size": size, "crop": {"size": e.crop_size, "fraction": e.crop_fraction, "where": "centre"},
                "inside_graph": True,
                "steps": "rgb uint8 / 255 -> [0, 1] -> * 2 - 1; depth (m) clipped to [0, max_depth_m] -> [-1, 1]; "
                         "centre crop of crop.size pixels (training cropped at random); per-camera encoder",
                "max_depth_m": e.max_depth if c.depth else None, "backbone": e.backbone,
                "feature_dim": e.feature_dim}
        instruction = {"encoder": c.instruction_encoder, "dim": text_embedding.DIM} if c.reads_instruction else None
        if instruction and c.fuses_tokens:   # the word pieces themselves: (batch, tokens, dim), zero rows pad
            n = c.instruction_tokens
            instruction.update(
                tokens=n, meaning=f"the instruction's first {n} word pieces embedded by {c.instruction_encoder} "
                                  f"(last hidden states, [CLS] first), zero rows after its last piece",
                example=lambda batch, seed: _example_word_pieces(batch, n, seed),
                reference=lambda texts: self.instruction_encoder.encode_tokens(list(texts), n)[0])
        keys = [i.name for i in images] + [o.name for o in observations]
        module = self if not (keys or instruction) else ExportGraph(self, keys)
        minmax = lambda n: {"low": n.low.tolist(), "high": n.high.tolist()}  # noqa: E731
        return ExportSpec(
            module=module, obs_key=c.obs_key, images=images, image_processing=image_processing,
            observations=observations, instruction=instruction, obs_dim=c.obs_dim, action_dim=c.action_dim,
            n_obs_steps=c.n_obs_steps,
            n_action_steps=c.n_action_steps, noise_shape=(c.horizon, c.action_dim),
            normalization={"baked_into_graph": True,
                           "method": "per-dimension min/max of the training data -> [-1, 1]; a dimension "
                                     "whose range was < 1e-4 is only centred",
                           "observation": minmax(self.obs_normalizer), "action": minmax(self.action_normalizer)},
            extra={"sampler": {"type": "DDIM", "eta": 0.0, "num_inference_steps": c.num_inference_steps,
                               "num_train_timesteps": c.num_train_timesteps, "beta_schedule": c.beta_schedule,
                               "prediction_type": c.prediction_type, "clip_sample": c.clip_sample,
                               "horizon": c.horizon, "noise": "standard normal (batch, horizon, action_dim); "
                                                             "draw fresh noise for every call",
                               "chunk_offset": c.n_obs_steps - 1}})

    # -- acting ----------------------------------------------------------------------------
    def reset(self, instruction: str | Sequence[str] | None = None,
              noise_seeds: Sequence[int] | None = None) -> None:
        """Start of an episode: clear the observation history and the queued actions.

        A policy that reads instructions (``reads_instruction``) takes the episode's instruction
        here (``info["instruction"]`` after ``env.reset``): one string, or a list of B strings for B
        environments stepped in lockstep. It is embedded once and used until the next ``reset``.

        ``noise_seeds`` (one int per batch row) gives each row its own sampler noise stream (a CPU
        ``torch.Generator``), so an episode's actions depend on its seed only, not on the global
        RNG or on the other rows of the batch. Without it the sampler draws from the global RNG."""
        self._obs_history: deque[dict[str, np.ndarray]] = deque(maxlen=self.config.n_obs_steps)
        self._action_queue: deque[np.ndarray] = deque()
        self._noise_generators = (None if noise_seeds is None else
                                  [torch.Generator().manual_seed(int(s)) for s in noise_seeds])
        self._instruction_embedding = None
        if instruction is not None and self.reads_instruction:
            texts = [instruction] if isinstance(instruction, str) else list(instruction)
            self._instruction_embedding = self.embed_instructions(texts)

    def select_action(self, obs) -> np.ndarray:
        """Raw observation -> action (action_dim,) float32 to apply now.

        ``obs`` is what the env returns: the flat vector (obs_dim,) (``state`` or ``slots``), or
        in an image mode the Dict (the policy takes its cameras and the robot part of ``state``).
        A batch (B, ...) -> (B, action_dim) is accepted too, for B environments stepped in
        lockstep (they share the re-planning schedule). A new chunk is predicted every
        ``n_action_steps`` calls; after ``reset()`` the history is padded with the first observation.
        """
        if not self._action_queue:
            chunk = self.predict_action_chunk(obs)                                     # (B?, n, action_dim)
            self._action_queue.extend(np.moveaxis(chunk, -2, 0))                       # n x (B?, action_dim)
        else:
            self._observe(obs)
        return self._action_queue.popleft()

    def predict_action_chunk(self, obs) -> np.ndarray:
        """Raw observation (as :meth:`select_action`) -> the whole chunk (n_action_steps, action_dim)
        float32 the policy predicts from its observation history, first action to apply now; a batch
        -> (B, n_action_steps, action_dim). ``obs`` joins the history (padded with it after
        ``reset()``); the queue ``select_action`` executes is left alone."""
        _, single = self._observe(obs)
        if self.reads_instruction and self._instruction_embedding is None:
            raise ValueError("this policy reads instructions: call policy.reset(instruction=info['instruction']) "
                             "at the start of each episode (a list of strings for a batch)")
        hist = {k: torch.from_numpy(np.stack([h[k] for h in self._obs_history], axis=1))   # (B, To, ...)
                for k in self._obs_history[-1]}
        if not self.config.cameras and not self.config.pointcloud_dim:
            hist = hist[self.config.obs_key]
        extra = {"instruction_embedding": self._instruction_embedding} if self.reads_instruction else {}
        chunk = self(hist, **extra).cpu().numpy().astype(np.float32)
        return chunk[0] if single else chunk

    def _observe(self, obs) -> tuple[int, bool]:
        """Append one observation (or a lockstep batch) to the history as ``{key: (B, ...)}``
        holding only the keys the policy reads; returns (batch size, was-single)."""
        c = self.config
        vector = self._vector_of(obs)
        single = vector.ndim == 1
        batch = vector[None] if single else vector
        if batch.ndim != 2 or batch.shape[1] != c.obs_dim:
            raise ValueError(f"observation has shape {vector.shape}; this policy expects ({c.obs_dim},) "
                             f"or (batch, {c.obs_dim}), the {c.obs_key} observation it was trained on")
        step = {c.obs_key: batch}
        for key in c.obs_keys:
            if key != c.obs_key:
                image = np.array(obs[key])
                step[key] = image[None] if single else image
        if self._obs_history and next(iter(self._obs_history[-1].values())).shape[0] != batch.shape[0]:
            raise ValueError(f"batch size changed from {next(iter(self._obs_history[-1].values())).shape[0]} to "
                             f"{batch.shape[0]} within an episode; call policy.reset() first")
        if not self._obs_history:
            self._obs_history.extend([step] * c.n_obs_steps)
        else:
            self._obs_history.append(step)
        return batch.shape[0], single

    def _vector_of(self, obs) -> np.ndarray:
        """The vector observation the policy reads, as a float32 copy (callers may reuse their
        buffer in place). A Dict observation gives its ``state`` entry, or for ``proprio`` the
        robot part every flat observation starts with; images come only from their own keys."""
        c = self.config
        if c.pointcloud_dim and not isinstance(obs, Mapping):
            raise ValueError("this policy reads a point cloud: pass the env's Dict observation (obs_mode=pointcloud)")
        if c.cameras and not isinstance(obs, Mapping):
            raise ValueError(f"this policy reads cameras {list(c.cameras)}: pass the env's Dict observation "
                             f"(obs_mode={'rgbd' if c.depth else 'rgb'})")
        if isinstance(obs, Mapping):
            if c.obs_key in obs:
                obs = obs[c.obs_key]
            elif c.obs_key == "proprio":
                return np.array(np.asarray(obs["state"])[..., :ob.AGENT_DIM], dtype=np.float32)
            else:
                obs = obs["state"]
        return np.array(obs, dtype=np.float32)

    @staticmethod
    def _check_shape(name: str, x: torch.Tensor, tail: tuple[int, ...]) -> None:
        if torch.jit.is_tracing():  # shapes are fixed by the example inputs there
            return
        if x.ndim != len(tail) + 1 or tuple(x.shape[1:]) != tail:
            raise ValueError(f"{name} has shape {tuple(x.shape)}; expected (batch, {', '.join(map(str, tail))})")


class ExportGraph(nn.Module):
    """The policy's ``forward`` with flat positional inputs, as an export graph takes them
    (:mod:`policies.common.export_spec`): obs_history, one tensor per observation key (camera
    images, then e.g. the point cloud), the instruction embedding (if read), noise. The keys in
    ``current_only`` come without a history axis (the graph reads the newest one, e.g. GravMAD's
    sub-goal) and are repeated over the policy's window."""

    def __init__(self, policy: DiffusionPolicy, keys: list[str], current_only: tuple[str, ...] = ()):
        super().__init__()
        self.policy = policy
        self.keys = list(keys)
        self.current_only = tuple(current_only)

    def forward(self, obs_history: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        c = self.policy.config
        n = len(self.keys)
        obs = {c.obs_key: obs_history, **dict(zip(self.keys, rest[:n]))} if n else obs_history
        for key in self.current_only:
            obs[key] = obs[key].unsqueeze(1).expand(-1, c.n_obs_steps, *obs[key].shape[1:])
        instruction = rest[n] if c.reads_instruction else None
        if instruction is not None and c.fuses_tokens:   # word pieces: a zero row is padding
            instruction = (instruction, instruction.abs().sum(-1) > 0)
        return self.policy(obs, rest[-1], instruction_embedding=instruction)


def _pointcloud_manifest(c: DiffusionConfig) -> dict:
    """The manifest's point-cloud key: its columns and which of its points the graph reads."""
    if not c.pointcloud_points:
        picked = "every point"
    elif c.pointcloud_table_z is None:
        picked = f"{c.pointcloud_points} evenly spaced points"
    else:
        picked = (f"{c.pointcloud_points} points, those above z = {c.pointcloud_table_z} m (the table top) first, "
                  f"in a fixed spread over the cloud")
    return {"meaning": "the env's point cloud (obs_mode=pointcloud): the front and wrist depth images unprojected, "
                       "as the env gives it", "units": "xyz m (robot base frame), rgb [0, 1]",
            "fields": [{"name": "xyz", "slice": [0, 3], "units": "m", "meaning": "point position, robot base frame"}]
            + ([{"name": "rgb", "slice": [3, c.pointcloud_dim], "units": "[0, 1]", "meaning": "point colour"}]
               if c.pointcloud_dim > 3 else []),
            "processing": f"inside the graph: it reads {picked}; PointNet encoder"}


def _example_word_pieces(batch: int, n: int, seed: int) -> torch.Tensor:
    """(batch, n, DIM) trace inputs for a word-piece instruction: random rows, the later ones of
    every other sample zero (padding), so the graph's mask is exercised."""
    g = torch.Generator().manual_seed(seed)
    words = torch.randn(batch, n, text_embedding.DIM, generator=g)
    words[1::2, n // 2:] = 0
    return words
