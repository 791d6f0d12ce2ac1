"""Diffusion policy configuration (defaults follow Chi et al. 2023, scaled down for state tasks).

``DiffusionParams`` holds what a person chooses (the ``policy=diffusion`` group of ``train.py``);
``DiffusionConfig`` adds the observation and action sizes, which the demonstrations fix at run
time, and is what a :class:`~policies.diffusion.modeling.DiffusionPolicy` is built from and saves.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Optional

from policies.common.config import JSONConfig, is_int, is_number, require

BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")
PREDICTION_TYPES = ("epsilon", "sample")
IMAGE_BACKBONES = ("small_cnn", "resnet18")   # policies.common.encoders.BACKBONES
VECTOR_OBS_KEYS = ("state", "slots", "proprio")
OBS_ENCODERS = ("flat", "transformer")
INSTRUCTION_ENCODERS = ("all-MiniLM-L6-v2",)  # referenced by name in config.json, never saved with the weights


@dataclass
class DiffusionParams:
    """Hyper-parameters of a diffusion policy: everything but the data's shapes.

    Time is in control steps (20 Hz in roboforge). The model sees the last ``n_obs_steps``
    observations, denoises a ``horizon``-step action trajectory that starts at the oldest of
    them, and executes ``n_action_steps`` of it starting at the current step before re-planning.
    """

    n_obs_steps: int = 2          # observation history fed to the model
    horizon: int = 16             # length of the denoised action trajectory
    n_action_steps: int = 8       # actions executed per prediction (re-planning period)
    down_dims: tuple[int, ...] = (32, 64, 128)   # U-Net channels per resolution
    kernel_size: int = 5
    n_groups: int = 8             # GroupNorm groups
    diffusion_step_embed_dim: int = 64
    num_train_timesteps: int = 100
    num_inference_steps: int = 10  # DDIM steps at inference
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"
    clip_sample: bool = True       # clip the predicted clean sample to [-1, 1] while sampling
    # Smallest range (raw units: m, rad, quaternion components) an observation dimension is scaled
    # by when normalizing; 0 scales every dimension by its own training range (see Normalizer.fit).
    # 0.1 keeps a barely-varying input (a resting block's height or tilt) from being amplified.
    obs_min_span: float = 0.1
    # -- conditioning beyond the observation vector (train.py fills the run-dependent parts) --
    # the episode's instruction (MiniLM, 384-d) in the U-Net's global condition; null = auto:
    # on for a run of several tasks or any obs_mode but state (only `state` says which object is which)
    use_instruction: Optional[bool] = None
    instruction_proj_dim: int = 64   # a linear projection of the 384-d embedding; 0 = the raw embedding
    # obs_mode=slots: zero every slot's has_goal / goal_delta, so that which object goes where comes
    # from the instruction alone (the slots' goal fields otherwise say it, and language is ignored)
    drop_goal_features: bool = False
    # obs_mode=slots: train with the object slots in a random order per sample (fixed over its
    # history), so the slot index says nothing about an object's role (tasks add their objects in
    # role order: stack_blocks' slot 0 is always the block to move); eval keeps the env's order
    shuffle_slots: bool = False
    # how observation and instruction become the U-Net's condition. flat: the normalized vector
    # history beside the pooled instruction embedding and image features (diffusion_policy's).
    # transformer: tokens for each word piece of the instruction, the robot, each object slot
    # (slots) or each camera and image patch (rgb), fused by a small transformer whose readout
    # tokens are the condition (policies/common/encoders/fusion.py): attention binds a colour
    # word to its object, which the pooled sentence vector cannot carry
    obs_encoder: str = "flat"
    fusion_dim: int = 64             # obs_encoder=transformer: token width
    fusion_layers: int = 2
    fusion_heads: int = 4
    fusion_readouts: int = 4         # readout tokens (the condition is fusion_readouts * fusion_dim)
    instruction_tokens: int = 32     # word pieces it reads (a longer instruction is cut, with a warning)
    fusion_image_grid: int = 4       # rgb: each camera's feature map pooled to grid x grid patch tokens
    # each readout also points at one token (attention) and hands the U-Net that token's input as is.
    # slots: an object, its normalized slot history (the named block's exact position, whichever slot
    # holds it); rgb/rgbd: an image patch of any camera and step, its features and cell coordinates
    fusion_pointer: bool = False
    # weight of a grounding loss on the pointer: readout r is taught to point at the task's r-th
    # object (tasks add their objects in role order: stack_blocks' top, then base). slots: that
    # object's slot. rgb/rgbd: the front camera's cell (current step) that shows the object, found
    # by projecting its position from the demo store's slots, a training target only, never an
    # input. The fusion reads slots as a set and patches by place, so it can only find that object
    # by its colour/kind and the words: supervision of *which* object the instruction names (0 = off)
    fusion_pointer_loss: float = 0.0
    # cameras: take the pointer's cross-entropy only on windows whose current step is below this (the
    # first frames, where only the words tell the named objects apart; later the gripper shows which
    # block it carries, a shortcut the pointer otherwise learns instead of the colours). 0 = every window
    fusion_pointer_steps: int = 0
    # cameras: the U-Net also reads each camera's global image features (spatial softmax) directly,
    # beside the readouts. With the readouts alone (256 patch tokens) it learnt to ignore its
    # condition; the robot's proprio is left out of this path on purpose: handed to the U-Net
    # directly it is a shortcut (the demos' motion so far predicts the next action), which the flat
    # camera encoder took instead of the images (bench/condition_use.py, docs/multitask.md)
    fusion_skip: bool = False
    # cameras + transformer: the robot's proprio is a fusion token (true) or, false, stays out of the
    # fusion and reaches the U-Net beside it, at the current step only. The position head reads the
    # fusion's readouts: with the proprio among their tokens it can say "the block is where the TCP
    # is" near a grasp, true on the demos' paths only; on the policy's own approach its error on
    # that block was 2.6 cm against 0.5 cm on the oracle's (docs/multitask.md)
    fusion_agent: bool = True
    # cameras: weight of an auxiliary loss in which a linear head on the current step's camera
    # features (every camera's global features) regresses where the task's first objects are:
    # position and position minus the TCP, in decimetres, from the demo store's slots (training
    # targets only, never inputs). It teaches the encoder where things are, which the denoising loss
    # alone teaches too slowly here for the U-Net to lean on the images (0 = off)
    aux_position_loss: float = 0.0
    # cameras + aux_position_loss: the U-Net also reads the position head's guesses (every obs step),
    # an object-centric bottleneck the policy computes from its own pixels. The slots policy acts on
    # 24 numbers that say where things are; this hands the camera policy its own estimate of them,
    # where the raw features (rgb_aux) took 4,000 steps to become a third as useful (docs/multitask.md)
    position_condition: bool = False
    # aux_position_loss: the head says only where the objects are; the part relative to the TCP is
    # that guess minus the TCP the proprio reports. A head that also guessed the relative part
    # read the TCP off the images, which holds on the demos' paths only: on the policy's own
    # rollouts its implied TCP was 13 cm off (docs/multitask.md)
    position_from_tcp: bool = False
    image_size: int = 64             # obs_mode=rgb|rgbd: rendered image side, pixels (the encoder's input)
    image_backbone: str = "small_cnn"  # small_cnn | resnet18 (policies/common/encoders)
    image_feature_dim: int = 64      # per-camera feature size
    crop_fraction: float = 0.9       # random crop in training, centre crop in eval (1 = none)
    # obs_mode=pointcloud: the PointNet encoder (policies/common/encoders) reads this many points of
    # each cloud (random ones in training, evenly spaced ones in eval; 0 = all) into this many features
    pointcloud_points: int = 256
    pointcloud_feature_dim: int = 128
    # points at or below this height (m, world; the table top is z = 0) are read only when a cloud
    # has too few others (~90% of a raw cloud is table, which says nothing about the task); null: all alike
    pointcloud_table_z: Optional[float] = None

    def __post_init__(self):
        self.down_dims = tuple(self.down_dims)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~policies.common.config.ConfigError` naming the first invalid field and
        what it allows."""
        for name in ("n_obs_steps", "horizon", "n_action_steps", "kernel_size", "n_groups",
                     "diffusion_step_embed_dim", "num_train_timesteps", "num_inference_steps"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        require(bool(self.down_dims) and all(is_int(d, 1) for d in self.down_dims), self, "down_dims",
                "a non-empty sequence of integers >= 1")
        require(self.n_obs_steps <= self.horizon, self, "n_obs_steps", f"<= horizon ({self.horizon})")
        require(self.n_action_steps <= self.horizon - self.n_obs_steps + 1, self, "n_action_steps",
                f"<= horizon - n_obs_steps + 1 = {self.horizon - self.n_obs_steps + 1}")
        factor = 2 ** (len(self.down_dims) - 1)
        require(self.horizon % factor == 0, self, "horizon", f"a multiple of 2 ** (len(down_dims) - 1) = {factor}")
        require(self.kernel_size % 2 == 1, self, "kernel_size",
                "an odd integer (the convolutions keep the sequence length)")
        require(all(d % self.n_groups == 0 for d in self.down_dims), self, "n_groups",
                f"a divisor of every down_dims entry {list(self.down_dims)}")
        require(self.diffusion_step_embed_dim % 2 == 0 and self.diffusion_step_embed_dim >= 4, self,
                "diffusion_step_embed_dim", "an even integer >= 4 (sinusoidal embedding)")
        require(self.num_inference_steps <= self.num_train_timesteps, self, "num_inference_steps",
                f"<= num_train_timesteps ({self.num_train_timesteps})")
        require(self.beta_schedule in BETA_SCHEDULES, self, "beta_schedule", ", ".join(BETA_SCHEDULES))
        require(self.prediction_type in PREDICTION_TYPES, self, "prediction_type", ", ".join(PREDICTION_TYPES))
        require(isinstance(self.clip_sample, bool), self, "clip_sample", "true or false")
        require(is_number(self.obs_min_span) and self.obs_min_span >= 0, self, "obs_min_span", "a number >= 0")
        require(self.use_instruction is None or isinstance(self.use_instruction, bool), self, "use_instruction",
                "true, false or null (auto: on for several tasks or any obs_mode but state)")
        require(isinstance(self.drop_goal_features, bool), self, "drop_goal_features", "true or false")
        require(isinstance(self.shuffle_slots, bool), self, "shuffle_slots", "true or false")
        require(is_int(self.instruction_proj_dim, 0), self, "instruction_proj_dim",
                "an integer >= 0 (0 = the raw 384-d embedding)")
        require(self.obs_encoder in OBS_ENCODERS, self, "obs_encoder", ", ".join(OBS_ENCODERS))
        for name in ("fusion_dim", "fusion_layers", "fusion_heads", "fusion_readouts", "instruction_tokens",
                     "fusion_image_grid"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        require(isinstance(self.fusion_pointer, bool), self, "fusion_pointer", "true or false")
        require(is_number(self.fusion_pointer_loss) and self.fusion_pointer_loss >= 0, self, "fusion_pointer_loss",
                "a number >= 0")
        require(not self.fusion_pointer_loss or self.fusion_pointer, self, "fusion_pointer_loss",
                "0 unless fusion_pointer=true (it trains the pointer)")
        require(not (self.fusion_pointer_loss and self.shuffle_slots), self, "fusion_pointer_loss",
                "0 with shuffle_slots=true (its targets are the slots' own order; the fusion reads slots as a set anyway)")
        require(self.fusion_dim % self.fusion_heads == 0, self, "fusion_heads", f"a divisor of fusion_dim ({self.fusion_dim})")
        require(is_int(self.image_size, 16), self, "image_size", "an integer >= 16 (pixels)")
        require(self.image_backbone in IMAGE_BACKBONES, self, "image_backbone", ", ".join(IMAGE_BACKBONES))
        require(is_int(self.image_feature_dim, 1), self, "image_feature_dim", "an integer >= 1")
        require(is_number(self.crop_fraction) and 0.5 <= self.crop_fraction <= 1, self, "crop_fraction",
                "a number in [0.5, 1] (1 = no crop)")
        require(is_int(self.pointcloud_points, 0), self, "pointcloud_points", "an integer >= 0 (0 = every point)")
        require(is_int(self.pointcloud_feature_dim, 1), self, "pointcloud_feature_dim", "an integer >= 1")
        require(self.pointcloud_table_z is None or is_number(self.pointcloud_table_z), self, "pointcloud_table_z",
                "null (every point alike) or a height in m (points at or below it are the table)")


@dataclass
class DiffusionConfig(DiffusionParams, JSONConfig):
    """Shapes and schedule of a :class:`~policies.diffusion.modeling.DiffusionPolicy`:
    :class:`DiffusionParams` plus what the data fixes (keyword-only). Saved in the policy's
    ``config.json`` (``to_dict`` / ``from_dict``).

    What the policy reads: the vector observation ``obs_key`` (``state``: a task's flat vector;
    ``slots``: the task-independent one; ``proprio``: the robot's own part only, for a
    visuomotor policy), the images of ``cameras`` (empty: none), the ``pointcloud`` of
    ``pointcloud_dim`` columns per point (xyz + features; 0: none), and with ``instruction_encoder``
    set, the episode's instruction embedded by that named model (empty: no language).
    """

    obs_dim: int = field(kw_only=True)      # size of the vector observation ``obs_key``
    action_dim: int = field(kw_only=True)
    obs_key: str = field(default="state", kw_only=True)
    cameras: tuple[str, ...] = field(default=(), kw_only=True)   # e.g. ("front", "wrist")
    depth: bool = field(default=False, kw_only=True)             # RGB-D images (obs_mode=rgbd)
    pointcloud_dim: int = field(default=0, kw_only=True)         # columns per point (6: xyz + rgb); 0: no cloud
    instruction_encoder: str = field(default="", kw_only=True)   # "" or one of INSTRUCTION_ENCODERS

    def __post_init__(self):
        self.cameras = tuple(self.cameras)
        super().__post_init__()

    def validate(self) -> None:
        for name in ("obs_dim", "action_dim"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        require(self.obs_key in VECTOR_OBS_KEYS, self, "obs_key", ", ".join(VECTOR_OBS_KEYS))
        require(all(isinstance(c, str) and c for c in self.cameras) and len(set(self.cameras)) == len(self.cameras),
                self, "cameras", "a list of distinct camera names (empty: no images)")
        # images are the point of a visuomotor policy: privileged state beside them would make them decoration
        require(not self.cameras or self.obs_key == "proprio", self, "obs_key",
                "proprio when cameras are read (a visuomotor policy sees no privileged state)")
        require(isinstance(self.depth, bool) and (self.cameras or not self.depth), self, "depth",
                "true only with cameras")
        require(self.pointcloud_dim == 0 or is_int(self.pointcloud_dim, 3), self, "pointcloud_dim",
                "0 (no point cloud) or an integer >= 3 (xyz, then per-point features)")
        require(not self.pointcloud_dim or self.obs_key == "proprio", self, "obs_key",
                "proprio when a point cloud is read (the policy sees no privileged state)")
        require(self.instruction_encoder in ("",) + INSTRUCTION_ENCODERS, self, "instruction_encoder",
                "'' (no language) or " + ", ".join(INSTRUCTION_ENCODERS))
        require(not self.drop_goal_features or self.obs_key == "slots", self, "drop_goal_features",
                "false unless obs_mode=slots (only the slots observation has goal fields)")
        require(not self.drop_goal_features or self.instruction_encoder, self, "drop_goal_features",
                "false when the policy reads no instruction (nothing would say the goal)")
        require(self.obs_encoder == "flat" or (self.obs_key == "slots" or self.cameras) and not self.pointcloud_dim,
                self, "obs_encoder", "flat unless obs_mode is slots, rgb or rgbd (the transformer reads object "
                "slots or image patches as tokens)")
        require(not self.fusion_pointer or self.fuses_tokens and (self.obs_key == "slots" or self.cameras), self,
                "fusion_pointer", "false unless obs_encoder=transformer and obs_mode is slots, rgb or rgbd (it "
                "points at object slots or image patches)")
        require(is_int(self.fusion_pointer_steps, 0), self, "fusion_pointer_steps", "an integer >= 0 (0 = every window)")
        require(isinstance(self.aux_position_loss, (int, float)) and self.aux_position_loss >= 0
                and (not self.aux_position_loss or bool(self.cameras)), self, "aux_position_loss",
                "a number >= 0; > 0 only with cameras (obs_mode=rgb|rgbd)")
        require(isinstance(self.position_condition, bool) and (not self.position_condition
                                                               or bool(self.aux_position_loss)), self,
                "position_condition", "true or false; true only with aux_position_loss > 0 (which trains the "
                "head whose guesses it reads)")
        require(isinstance(self.position_from_tcp, bool) and (not self.position_from_tcp
                                                              or bool(self.aux_position_loss)), self,
                "position_from_tcp", "true or false; true only with aux_position_loss > 0 (the head it shapes)")
        require(isinstance(self.fusion_skip, bool) and (not self.fusion_skip or self.obs_encoder == "transformer"
                                                        and bool(self.cameras)), self,
                "fusion_skip", "true or false; true only with obs_encoder=transformer and cameras")
        require(isinstance(self.fusion_agent, bool) and (self.fusion_agent or self.obs_encoder == "transformer"
                                                         and bool(self.cameras)), self,
                "fusion_agent", "true or false; false only with obs_encoder=transformer and cameras")
        require(not self.fusion_pointer_steps or self.fusion_pointer_loss and self.cameras, self, "fusion_pointer_steps",
                "0 unless fusion_pointer_loss > 0 with cameras (it says which windows the camera pointer loss takes)")
        require(not (self.fusion_pointer_loss and self.cameras) or "front" in self.cameras, self,
                "fusion_pointer_loss", "0 unless the front camera is read (its targets are front-camera cells)")
        require(not self.shuffle_slots or self.obs_key == "slots", self, "shuffle_slots",
                "false unless obs_mode=slots (only the slots observation has object slots)")
        super().validate()

    @property
    def reads_instruction(self) -> bool:
        return bool(self.instruction_encoder)

    @property
    def fuses_tokens(self) -> bool:
        """Whether observation and instruction meet in the token-fusion transformer."""
        return self.obs_encoder == "transformer"

    @property
    def obs_keys(self) -> tuple[str, ...]:
        """The observation keys the policy reads, as dataset and env name them."""
        return observation_keys(self.obs_key, self.cameras, self.depth, self.pointcloud_dim > 0)

    @classmethod
    def from_params(cls, params: DiffusionParams, obs_dim: int, action_dim: int, **shapes) -> "DiffusionConfig":
        """The config of a policy with hyper-parameters ``params`` for data of these sizes
        (``shapes``: ``obs_key``, ``cameras``, ``depth``, ``pointcloud_dim``, ``instruction_encoder``)."""
        return cls(**{f.name: getattr(params, f.name) for f in fields(DiffusionParams)},
                   obs_dim=obs_dim, action_dim=action_dim, **shapes)


def observation_keys(obs_key: str, cameras: tuple[str, ...] = (), depth: bool = False,
                     pointcloud: bool = False) -> tuple[str, ...]:
    """The keys a policy reading the vector ``obs_key``, ``cameras`` and maybe the point cloud
    takes from a demo episode or an env observation: ``<camera>_rgb`` (and ``<camera>_depth``) per
    camera, ``pointcloud``, then ``obs_key``."""
    images = tuple(f"{c}_{kind}" for c in cameras for kind in (("rgb", "depth") if depth else ("rgb",)))
    return images + (("pointcloud",) if pointcloud else ()) + (obs_key,)
