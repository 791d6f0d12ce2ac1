"""Observation encoders every policy shares: instruction (MiniLM), images, point clouds, and the
token fusion (a transformer over words and object slots) that binds language to objects.

Each encoder has a config dataclass (validated on construction, ``to_dict`` / ``from_dict``), an
``output_dim``, and is built with :func:`make_encoder`::

    enc = make_encoder(ImageEncoderConfig(cameras=("front", "wrist"), image_size=64))
    feats = enc(images_from_obs(obs, enc.cameras))          # (B, 2 * 64) from the env's rgb obs
"""
from __future__ import annotations

from policies.common.encoders.fusion import FusionConfig, TokenFusion
from policies.common.encoders.image import BACKBONES, ImageEncoder, ImageEncoderConfig, images_from_obs
from policies.common.encoders.instruction import (InstructionEncoder, InstructionEncoderConfig,
                                                  InstructionTruncatedWarning, MiniLMInstructionEncoder)
from policies.common.encoders.layers import RandomCrop, SpatialSoftmax
from policies.common.encoders.pointcloud import PointCloudEncoder, PointCloudEncoderConfig

_BUILDERS = {ImageEncoderConfig: ImageEncoder, PointCloudEncoderConfig: PointCloudEncoder,
             InstructionEncoderConfig: MiniLMInstructionEncoder}


def make_encoder(cfg):
    """The encoder a config describes: ``ImageEncoderConfig`` -> :class:`ImageEncoder`,
    ``PointCloudEncoderConfig`` -> :class:`PointCloudEncoder`, ``InstructionEncoderConfig`` ->
    :class:`MiniLMInstructionEncoder`."""
    try:
        build = _BUILDERS[type(cfg)]
    except KeyError:
        raise TypeError(f"make_encoder takes one of {[c.__name__ for c in _BUILDERS]}, "
                        f"got {type(cfg).__name__}") from None
    return build(cfg)


__all__ = ["BACKBONES", "FusionConfig", "ImageEncoder", "ImageEncoderConfig", "InstructionEncoder", "InstructionEncoderConfig",
           "InstructionTruncatedWarning", "MiniLMInstructionEncoder", "PointCloudEncoder", "PointCloudEncoderConfig",
           "RandomCrop", "SpatialSoftmax", "TokenFusion", "images_from_obs", "make_encoder"]
