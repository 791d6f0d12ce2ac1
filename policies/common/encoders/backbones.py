"""Convolutional trunks for the image encoders, with GroupNorm throughout.

GroupNorm instead of BatchNorm (diffusion_policy's choice): a policy is trained with an EMA copy
of its weights and run on batches of one, where BatchNorm's running statistics go stale. Groups
are ``channels // 16``, as diffusion_policy's ``replace_bn_with_gn``.

The ResNet-18 is written here rather than built from transformers' ``ResNetModel``: that route
needs module surgery on transformers' internal attribute names to swap the norms, costs about
4.5 s of CPU to import on this machine, and buys no pretrained weights (a checkpoint trained with
BatchNorm does not carry over to GroupNorm; diffusion_policy trains its GroupNorm ResNets from
scratch). The blocks are torchvision's BasicBlock layout, so the shapes are the familiar ones.
"""
from __future__ import annotations

from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 16), channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (a 1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False), group_norm(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), group_norm(out_channels))
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          group_norm(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 trunk without its pooling and classifier: (N, C, H, W) -> (N, 8*width, H/32, W/32).

    ``width`` is the first stage's channel count (64 in the original); stages double it.
    """

    def __init__(self, in_channels: int, width: int = 64):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers = [nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False), group_norm(width),
                  nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]
        prev = width
        for i, w in enumerate(widths):
            layers += [BasicBlock(prev, w, stride=1 if i == 0 else 2), BasicBlock(w, w, stride=1)]
            prev = w
        self.layers = nn.Sequential(*layers)
        self.out_channels = prev

    def forward(self, x):
        return self.layers(x)


class SmallCNN(nn.Module):
    """A few 3x3 conv + GroupNorm + ReLU layers, sized for a 2-core CPU.

    Layers alternate stride 2 and stride 1 (the 1st, 3rd, ... halve the resolution), so
    ``channels=(32, 32, 64, 64)`` maps 76x76 to a 19x19 map: fine enough for spatial softmax.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...] = (32, 32, 64, 64)):
        super().__init__()
        layers, prev = [], in_channels
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(prev, c, 3, stride=2 if i % 2 == 0 else 1, padding=1), group_norm(c),
                       nn.ReLU(inplace=True)]
            prev = c
        self.layers = nn.Sequential(*layers)
        self.out_channels = prev

    def forward(self, x):
        return self.layers(x)
