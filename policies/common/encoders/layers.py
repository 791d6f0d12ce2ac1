"""Image building blocks shared by the image encoders: crop augmentation and spatial softmax."""
from __future__ import annotations

import torch
from torch import nn


class RandomCrop(nn.Module):
    """Square crop of ``size`` pixels: a random one per image in training, the centre one in eval
    (diffusion_policy's ``CropRandomizer``). Input (N, C, H, W), output (N, C, size, size).

    Offsets are drawn from torch's global generator, so ``torch.manual_seed`` makes them repeat.
    """

    def __init__(self, size: int):
        super().__init__()
        self.size = int(size)
        self.offsets: tuple[torch.Tensor, torch.Tensor] | None = None   # the last call's (top, left), (N,) each

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        s = self.size
        if s > h or s > w:
            raise ValueError(f"RandomCrop: crop size {s} is larger than the image ({h}x{w})")
        if not self.training or (s == h and s == w):
            top, left = (h - s) // 2, (w - s) // 2
            self.offsets = tuple(torch.full((n,), v, dtype=torch.long, device=images.device) for v in (top, left))
            return images[:, :, top:top + s, left:left + s]
        # one gather for the whole batch instead of a Python loop over images
        top = torch.randint(0, h - s + 1, (n, 1), device=images.device)
        left = torch.randint(0, w - s + 1, (n, 1), device=images.device)
        self.offsets = (top[:, 0], left[:, 0])
        offsets = torch.arange(s, device=images.device)
        rows, cols = top + offsets, left + offsets                    # (N, s) each
        batch = torch.arange(n, device=images.device)[:, None, None]
        crops = images[batch, :, rows[:, :, None], cols[:, None, :]]  # (N, s, s, C)
        return crops.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class SpatialSoftmax(nn.Module):
    """Feature map -> keypoints (Levine et al. 2016; robomimic / diffusion_policy's pooling).

    A 1x1 convolution makes ``num_keypoints`` heat maps; each is softmaxed over the pixels and
    its expected image coordinate is the keypoint. Input (N, C, H, W); output (N, K, 2) as (x, y)
    in [-1, 1] image coordinates: x from the left column (-1) to the right (+1), y from the top
    row (-1) to the bottom (+1). Unlike global average pooling this keeps *where* things are.
    """

    def __init__(self, in_channels: int, num_keypoints: int, temperature: float = 1.0):
        super().__init__()
        self.num_keypoints = int(num_keypoints)
        self.heatmaps = nn.Conv2d(in_channels, self.num_keypoints, kernel_size=1)
        self.temperature = float(temperature)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n, _, h, w = features.shape
        logits = self.heatmaps(features).flatten(2) / self.temperature        # (N, K, H*W)
        attention = torch.softmax(logits, dim=-1)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=features.device, dtype=features.dtype),
                                torch.linspace(-1, 1, w, device=features.device, dtype=features.dtype),
                                indexing="ij")
        grid = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)           # (H*W, 2) as (x, y)
        return attention @ grid                                                # (N, K, 2)
