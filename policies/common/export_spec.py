"""What a policy hands the exporter: one graph with a fixed signature, plus facts for the manifest.

Every exported graph follows one signature, whatever the policy type, so one runtime serves all.
Inputs, in this order (the ones a policy does not read are absent):

- ``obs_history`` (batch, n_obs_steps, obs_dim) float32: the raw vector observation ``obs_key``
  (``state``, ``slots`` or ``proprio``), oldest first;
- one per camera image key, e.g. ``front_rgb`` (batch, n_obs_steps, H, W, 3) uint8 and
  ``front_depth`` (batch, n_obs_steps, H, W, 1) float32 metres: the env's images as they come;
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
    instruction: dict | None = None      # {"encoder": name, "dim": n}: the graph reads an instruction embedding

    @property
    def input_names(self) -> list[str]:
        return ([OBS_INPUT] + [i.name for i in self.images] + ([INSTRUCTION_INPUT] if self.instruction else [])
                + ([NOISE_INPUT] if self.noise_shape is not None else []))
