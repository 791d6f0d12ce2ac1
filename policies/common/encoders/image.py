"""Multi-camera image encoder: crop augmentation -> conv trunk -> spatial-softmax keypoints -> linear.

diffusion_policy's visual encoder (ResNet-18 with GroupNorm and spatial softmax) plus a small CNN
for CPU training, behind one config. Each camera's image becomes a ``feature_dim`` vector; the
encoder returns them concatenated in ``cameras`` order (``forward``) or as one token per camera
(``tokens``). :func:`images_from_obs` turns an env observation (``<camera>_rgb`` (..., H, W, 3)
uint8, ``<camera>_depth`` (..., H, W, 1) metres) into the encoder's input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn

from policies.common.config import JSONConfig, is_int, is_number, require
from policies.common.encoders.backbones import ResNet18, SmallCNN
from policies.common.encoders.layers import RandomCrop, SpatialSoftmax

BACKBONES = ("small_cnn", "resnet18")


@dataclass
class ImageEncoderConfig(JSONConfig):
    """What the image encoder reads and how it is built.

    Input per camera: (..., C, H, W) float with H = W = ``image_size``; channels 0-2 RGB in [0, 1]
    (uint8 0-255 also accepted), channel 3 (``depth=True``) depth in metres.
    """

    cameras: tuple[str, ...] = ("front", "wrist")
    image_size: int = 64             # rendered image height = width, pixels (64: bench/encoders.py)
    crop_fraction: float = 0.9       # crop side / image side: random crop in training, centre in eval
    depth: bool = False              # RGB-D: depth as a 4th channel
    max_depth: float = 2.0           # metres; depth is clipped to [0, max_depth], then scaled
    backbone: str = "small_cnn"      # small_cnn | resnet18
    shared_backbone: bool = False    # one trunk for all cameras + a learned camera embedding
    num_keypoints: int = 32          # spatial-softmax keypoints per camera
    feature_dim: int = 64            # per-camera feature size
    cnn_channels: tuple[int, ...] = (32, 32, 64, 64)   # small_cnn layers
    resnet_width: int = 64           # resnet18 first-stage channels (64 = the original)

    def __post_init__(self):
        self.cameras = tuple(self.cameras)
        self.cnn_channels = tuple(self.cnn_channels)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field and what it allows."""
        require(len(self.cameras) > 0 and all(isinstance(c, str) and c for c in self.cameras)
                and len(set(self.cameras)) == len(self.cameras), self, "cameras", "a non-empty list of distinct names")
        require(is_int(self.image_size, 16), self, "image_size", "an integer >= 16 (pixels)")
        require(is_number(self.crop_fraction) and 0.5 <= self.crop_fraction <= 1, self, "crop_fraction",
                "a number in [0.5, 1] (1 = no crop)")
        require(isinstance(self.depth, bool), self, "depth", "true or false")
        require(is_number(self.max_depth) and self.max_depth > 0, self, "max_depth", "a number > 0 (metres)")
        require(self.backbone in BACKBONES, self, "backbone", ", ".join(BACKBONES))
        require(isinstance(self.shared_backbone, bool), self, "shared_backbone", "true or false")
        require(is_int(self.num_keypoints), self, "num_keypoints", "an integer >= 1")
        require(is_int(self.feature_dim), self, "feature_dim", "an integer >= 1")
        require(len(self.cnn_channels) > 0 and all(is_int(c, 16) and c % 16 == 0 for c in self.cnn_channels),
                self, "cnn_channels", "a non-empty list of multiples of 16 (GroupNorm groups of 16)")
        require(is_int(self.resnet_width, 16) and self.resnet_width % 16 == 0, self, "resnet_width",
                "a multiple of 16 (GroupNorm groups of 16)")

    @property
    def in_channels(self) -> int:
        return 4 if self.depth else 3

    @property
    def crop_size(self) -> int:
        """Side of the crop the trunk sees, pixels."""
        return max(1, round(self.image_size * self.crop_fraction))

    @property
    def output_dim(self) -> int:
        return len(self.cameras) * self.feature_dim


class CameraEncoder(nn.Module):
    """One camera's path: trunk -> spatial softmax -> linear, (N, C, h, w) -> (N, feature_dim)."""

    def __init__(self, cfg: ImageEncoderConfig):
        super().__init__()
        if cfg.backbone == "resnet18":
            self.trunk = ResNet18(cfg.in_channels, cfg.resnet_width)
        else:
            self.trunk = SmallCNN(cfg.in_channels, cfg.cnn_channels)
        self.keypoints = SpatialSoftmax(self.trunk.out_channels, cfg.num_keypoints)
        self.project = nn.Linear(2 * cfg.num_keypoints, cfg.feature_dim)

    def forward(self, images: torch.Tensor, grid: int = 0):
        """(N, feature_dim); with ``grid`` also the trunk's feature map max-pooled to
        grid x grid cells, (N, grid * grid, channels): patch tokens for a fusion transformer.
        Max, not mean: a 4-pixel block in a 16-pixel cell keeps its colour's response (a mean
        would dilute it 16-fold), and the words are matched against that colour."""
        maps = self.trunk(images)
        feats = self.project(self.keypoints(maps).flatten(1))
        if not grid:
            return feats
        return feats, F.adaptive_max_pool2d(maps, grid).flatten(2).transpose(1, 2)


class ImageEncoder(nn.Module):
    """Images from several cameras -> one feature vector per sample.

    ``forward({camera: (..., C, H, W)})`` -> (..., output_dim); leading dims (batch, time) are kept.
    Training mode crops at random, eval mode at the centre; the crop is part of the module, so a
    policy only switches ``train()`` / ``eval()``.
    """

    def __init__(self, cfg: ImageEncoderConfig):
        super().__init__()
        self.config = cfg
        self.cameras = cfg.cameras
        self.crop = RandomCrop(cfg.crop_size)
        # each camera's crop offsets of the last call: (top, left) (N,) each, N = the flattened leading
        # dims; a grounding loss maps image pixels into the trunk's view with them
        self.crop_offsets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        n = 1 if cfg.shared_backbone else len(cfg.cameras)
        self.encoders = nn.ModuleList(CameraEncoder(cfg) for _ in range(n))
        # A shared trunk cannot tell the cameras apart by its weights; the embedding does it.
        self.camera_embedding = nn.Parameter(0.02 * torch.randn(len(cfg.cameras), cfg.feature_dim)) \
            if cfg.shared_backbone else None

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def _prepare(self, camera: str, images: torch.Tensor) -> torch.Tensor:
        """Check one camera's batch and map it to (N, C, h, w) floats in [-1, 1], cropped."""
        c = self.config
        if images.dim() < 3 or images.shape[-3:] != (c.in_channels, c.image_size, c.image_size):
            raise ValueError(f"images[{camera!r}] has shape {tuple(images.shape)}; expected "
                             f"(..., {c.in_channels}, {c.image_size}, {c.image_size}) "
                             f"({'RGB-D' if c.depth else 'RGB'}, image_size={c.image_size})")
        x = images.reshape(-1, *images.shape[-3:])
        rgb = x[:, :3]
        rgb = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float()
        channels = [rgb * 2 - 1]
        if c.depth:
            channels.append(x[:, 3:4].float().clamp(0, c.max_depth) * (2 / c.max_depth) - 1)
        cropped = self.crop(torch.cat(channels, dim=1))
        self.crop_offsets[camera] = self.crop.offsets
        return cropped

    @property
    def patch_dim(self) -> int:
        """Channels of a patch token (:meth:`patches`): the trunk's output channels."""
        return self.encoders[0].trunk.out_channels

    def tokens(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """One feature per camera: (..., n_cameras, feature_dim)."""
        return self._encode(images, 0)

    def patches(self, images: dict[str, torch.Tensor], grid: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-camera features of :meth:`tokens` and, from the same trunk pass, each camera's
        feature map pooled to ``grid`` x ``grid`` cells: (..., n_cameras, grid * grid, patch_dim).
        The cells keep *what* is *where* (a red block in the left of the image), which a language
        transformer can attend to."""
        return self._encode(images, grid)

    def _encode(self, images: dict[str, torch.Tensor], grid: int):
        missing = [k for k in self.cameras if k not in images]
        extra = [k for k in images if k not in self.cameras]
        if missing or extra:
            raise ValueError(f"images have cameras {sorted(images)}; expected exactly {list(self.cameras)}")
        lead = images[self.cameras[0]].shape[:-3]
        prepared = [self._prepare(k, images[k]) for k in self.cameras]
        n, k = prepared[0].shape[0], len(self.cameras)
        if self.camera_embedding is not None:   # one trunk call for all cameras
            out = self.encoders[0](torch.cat(prepared), grid)
            out = [o.reshape(k, n, *o.shape[1:]).transpose(0, 1) for o in (out if grid else (out,))]
            out[0] = out[0] + self.camera_embedding
        else:
            outs = [enc(x, grid) for enc, x in zip(self.encoders, prepared)]
            out = [torch.stack(parts, dim=1) for parts in (zip(*outs) if grid else (outs,))]
        feats = out[0].reshape(*lead, k, -1)
        if not grid:
            return feats
        return feats, out[1].reshape(*lead, k, grid * grid, -1)

    def forward(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.tokens(images).flatten(-2)


def images_from_obs(obs: Mapping[str, np.ndarray | torch.Tensor], cameras: tuple[str, ...] | list[str],
                    depth: bool = False) -> dict[str, torch.Tensor]:
    """Env observation -> the encoder's input: ``{camera: (..., C, H, W) float32}`` from
    ``<camera>_rgb`` (..., H, W, 3) uint8 (scaled to [0, 1]) and, with ``depth``, ``<camera>_depth``
    (..., H, W, 1) metres as the 4th channel. Works on single observations and on batches alike."""
    out = {}
    for cam in cameras:
        keys = [f"{cam}_rgb"] + ([f"{cam}_depth"] if depth else [])
        missing = [k for k in keys if k not in obs]
        if missing:
            raise KeyError(f"observation has no {missing[0]!r} (keys: {sorted(obs)}); "
                           f"expected obs_mode={'rgbd' if depth else 'rgb'} with cameras {list(cameras)}")
        rgb = torch.as_tensor(obs[keys[0]])
        rgb = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float()
        parts = [rgb] + ([torch.as_tensor(obs[keys[1]]).float()] if depth else [])
        out[cam] = torch.cat(parts, dim=-1).movedim(-1, -3).contiguous()
    return out
