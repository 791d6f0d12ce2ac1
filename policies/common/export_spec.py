"""What a policy hands the exporter: one graph with a fixed signature, plus facts for the manifest.

Every exported graph follows one signature, whatever the policy type, so one runtime serves all.
Inputs, in this order (the ones a policy does not read are absent):

- ``obs_history`` (batch, n_obs_steps, obs_dim) float32: the raw vector observation ``obs_key``
  (``state``, ``slots`` or ``proprio``), oldest first;
- one per camera image key, e.g. ``front_rgb`` (batch, n_obs_steps, H, W, 3) uint8 and
  ``front_depth`` (batch, n_obs_steps, H, W, 1) float32 metres: the env's images as they come;
- one per other observation key the policy reads (:class:`ObsInput`), e.g. ``pointcloud``
  (batch, n_obs_steps, N, 6) or, without a history axis, GravMAD's current ``subgoal`` (batch, 4);
- ``instruction_embedding`` (batch, dim) float32: the episode's instruction, embedded by the text
  model named in ``instruction["encoder"]``;
- ``noise`` (batch, *noise_shape) float32, standard normal: only for stochastic policies
  (diffusion's initial latent), so exported and torch outputs can be compared exactly.

Output ``action_chunk`` (batch, n_action_steps, action_dim) float32: raw actions, the first one
to be applied now.

A policy type plugs into ``python -m policies.export`` by implementing ``Policy.export_spec()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

OBS_INPUT, NOISE_INPUT, ACTION_OUTPUT = "obs_history", "noise", "action_chunk"
INSTRUCTION_INPUT = "instruction_embedding"


@dataclass(frozen=True)
class ImageInput:
    """One camera image input of the graph: ``name`` is the env's observation key."""

    name: str                       # e.g. "front_rgb", "front_depth"
    camera: str                     # e.g. "front"
    shape: tuple[int, ...]          # per observation, e.g. (64, 64, 3)
    dtype: str                      # numpy dtype name: uint8 (rgb), float32 (depth, metres)


@dataclass(frozen=True)
class ObsInput:
    """One more float32 observation input of the graph (a point cloud, a sub-goal): ``name`` is
    the observation key. ``history`` False: the graph reads only the newest one, (batch, *shape)."""

    name: str
    shape: tuple[int, ...]                # per observation
    history: bool = True
    low: tuple[float, ...] = ()           # example inputs (trace, export check): uniform per last-axis
    high: tuple[float, ...] = ()          # column in [low, high], where the real ones lie; else N(0, 1)
    manifest: dict = field(default_factory=dict)   # its manifest entry: meaning, units, fields, source


@dataclass
class ExportSpec:
    module: nn.Module                    # forward(*inputs in ``input_names`` order) -> action_chunk, normalizers inside
    obs_dim: int
    action_dim: int
    n_obs_steps: int                     # observation history the graph reads
    n_action_steps: int                  # actions per call, executed before the next call
    noise_shape: tuple[int, ...] | None = None   # per-sample shape of the ``noise`` input; None: no noise input
    normalization: dict = field(default_factory=dict)  # manifest section: what is baked into the graph
    extra: dict = field(default_factory=dict)          # policy-specific manifest entries (e.g. the sampler)
    obs_key: str = "state"               # which vector observation ``obs_history`` holds: state | slots | proprio
    images: tuple[ImageInput, ...] = ()  # camera inputs, in graph order
    image_processing: dict = field(default_factory=dict)  # manifest: what the graph does to images (crop, scaling)
    observations: tuple[ObsInput, ...] = ()   # other observation inputs, in graph order after the cameras
    instruction: dict | None = None      # {"encoder": name, "dim": n}: the graph reads an instruction embedding

    @property
    def input_names(self) -> list[str]:
        return ([OBS_INPUT] + [i.name for i in self.images] + [o.name for o in self.observations]
                + ([INSTRUCTION_INPUT] if self.instruction else [])
                + ([NOISE_INPUT] if self.noise_shape is not None else []))
