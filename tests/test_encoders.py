"""Observation encoders (policies.common.encoders): shapes, gradients, augmentation, caching."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from policies.common.encoders import (BACKBONES, ImageEncoderConfig, InstructionEncoder, InstructionEncoderConfig,
                                      InstructionTruncatedWarning, MiniLMInstructionEncoder, PointCloudEncoderConfig,
                                      RandomCrop, SpatialSoftmax, images_from_obs, make_encoder)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def camera_batch(cfg: ImageEncoderConfig, *lead: int) -> dict[str, torch.Tensor]:
    return {k: torch.rand(*lead, cfg.in_channels, cfg.image_size, cfg.image_size) for k in cfg.cameras}


# -- image encoders -------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("depth", [False, True])
def test_image_encoder_output_shape(backbone, shared, depth):
    cfg = ImageEncoderConfig(backbone=backbone, shared_backbone=shared, depth=depth, image_size=32,
                             cameras=("front", "wrist", "side"), feature_dim=16, num_keypoints=8, resnet_width=16)
    enc = make_encoder(cfg)
    assert enc.output_dim == 3 * 16
    assert enc(camera_batch(cfg, 2)).shape == (2, 48)
    assert enc(camera_batch(cfg, 2, 5)).shape == (2, 5, 48)           # (batch, time) leading dims kept
    assert enc.tokens(camera_batch(cfg, 2)).shape == (2, 3, 16)
    assert enc(camera_batch(cfg)).shape == (48,)                        # one unbatched observation


@pytest.mark.parametrize("backbone", BACKBONES)
def test_image_encoder_gradients_reach_every_parameter(backbone):
    torch.manual_seed(0)
    cfg = ImageEncoderConfig(backbone=backbone, image_size=40, feature_dim=8, num_keypoints=4, resnet_width=16,
                             shared_backbone=True)
    enc = make_encoder(cfg).train()
    enc(camera_batch(cfg, 3)).square().sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_image_encoder_reads_uint8_like_floats_in_unit_range():
    cfg = ImageEncoderConfig(image_size=24, cameras=("front",), feature_dim=8)
    enc = make_encoder(cfg).eval()
    pixels = torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(enc({"front": pixels}), enc({"front": pixels.float() / 255}), atol=1e-6)


def test_image_encoder_refuses_wrong_cameras_and_shapes():
    cfg = ImageEncoderConfig(image_size=24)
    enc = make_encoder(cfg)
    with pytest.raises(ValueError, match=r"expected exactly \['front', 'wrist'\]"):
        enc({"front": torch.rand(1, 3, 24, 24)})
    with pytest.raises(ValueError,
                       match=r"images\['wrist'\] has shape \(1, 4, 24, 24\); expected \(\.\.\., 3, 24, 24\)"):
        enc({"front": torch.rand(1, 3, 24, 24), "wrist": torch.rand(1, 4, 24, 24)})


def test_spatial_softmax_keypoint_follows_a_bright_spot():
    layer = SpatialSoftmax(in_channels=1, num_keypoints=1)
    with torch.no_grad():
        layer.heatmaps.weight.fill_(1.0)
        layer.heatmaps.bias.zero_()

    def keypoint(row, col):
        img = torch.zeros(1, 1, 21, 21)
        img[0, 0, row, col] = 50.0
        kp = layer(img)[0, 0]
        assert kp.abs().max() <= 1
        return kp

    top_left, bottom_right, centre = keypoint(2, 3), keypoint(18, 17), keypoint(10, 10)
    assert top_left[0] < -0.6 and top_left[1] < -0.6          # (x, y): left and up are negative
    assert bottom_right[0] > 0.6 and bottom_right[1] > 0.6
    assert centre.abs().max() < 0.05
    right = keypoint(10, 15)
    assert right[0] > centre[0] + 0.3 and abs(right[1] - centre[1]) < 0.05   # moving right moves x only
    assert layer(torch.randn(4, 1, 9, 13)).abs().max() <= 1


def test_random_crop_differs_in_training_and_is_the_centre_in_eval():
    crop = RandomCrop(20)
    images = torch.arange(2 * 3 * 24 * 24, dtype=torch.float32).reshape(2, 3, 24, 24)
    crop.train()
    torch.manual_seed(0)
    draws = [crop(images) for _ in range(4)]
    assert all(d.shape == (2, 3, 20, 20) for d in draws)
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    # every crop is a contiguous window of its own image
    d = draws[0][1]
    top, left = divmod(int((d[0, 0, 0] - images[1, 0, 0, 0]).item()), 24)
    assert torch.equal(d, images[1, :, top:top + 20, left:left + 20])
    crop.eval()
    assert torch.equal(crop(images), crop(images))
    assert torch.equal(crop(images), images[:, :, 2:22, 2:22])


def test_image_encoder_is_random_in_training_and_deterministic_in_eval():
    torch.manual_seed(0)
    cfg = ImageEncoderConfig(image_size=32, crop_fraction=0.75, cameras=("front",), feature_dim=8)
    enc = make_encoder(cfg)
    x = camera_batch(cfg, 2)
    with torch.no_grad():
        enc.train()
        assert not torch.equal(enc(x), enc(x))
        enc.eval()
        assert torch.equal(enc(x), enc(x))


def test_config_errors_are_one_line_and_round_trip():
    with pytest.raises(ValueError,
                       match=r"^ImageEncoderConfig.backbone='vit' is invalid; allowed: small_cnn, resnet18$"):
        ImageEncoderConfig(backbone="vit")
    with pytest.raises(ValueError, match=r"^ImageEncoderConfig.image_size=8 is invalid"):
        ImageEncoderConfig(image_size=8)
    with pytest.raises(ValueError, match=r"cnn_channels=\(32, 40\) is invalid; allowed: .*multiples of 16"):
        ImageEncoderConfig(cnn_channels=[32, 40])
    with pytest.raises(ValueError, match=r"^PointCloudEncoderConfig.output_dim=0 is invalid"):
        PointCloudEncoderConfig(output_dim=0)
    with pytest.raises(ValueError, match=r"^unknown key ImageEncoderConfig.img_size=64; allowed keys: cameras, image_size, "):
        ImageEncoderConfig.from_dict({"img_size": 64})
    cfg = ImageEncoderConfig(cameras=["front"], depth=True, image_size=64)
    assert ImageEncoderConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["cameras"] == ["front"]
    assert cfg.crop_size == 58 and cfg.in_channels == 4
    with pytest.raises(TypeError, match="make_encoder takes one of"):
        make_encoder({"image_size": 64})


# -- point clouds ---------------------------------------------------------------------------
def test_point_cloud_encoder_shapes_and_gradients():
    enc = make_encoder(PointCloudEncoderConfig(point_features=3, hidden_dims=(16, 32), output_dim=24))
    assert enc.output_dim == 24
    points = torch.rand(2, 5, 50, 6, requires_grad=True)
    out = enc(points, mask=torch.rand(2, 5, 50) > 0.3)
    assert out.shape == (2, 5, 24)
    out.sum().backward()
    assert points.grad.abs().sum() > 0 and all(p.grad is not None for p in enc.parameters())
    xyz_only = make_encoder(PointCloudEncoderConfig(output_dim=24))
    assert xyz_only(torch.rand(3, 40, 3)).shape == xyz_only(torch.rand(3, 40, 6)).shape == (3, 24)
    with pytest.raises(ValueError, match=r"points have shape \(3, 40, 3\); expected \(\.\.\., N, >= 6\)"):
        enc(torch.rand(3, 40, 3))
    # more feature columns than read (e.g. rgb + a segmentation one-hot): the extra ones are ignored
    seg = make_encoder(PointCloudEncoderConfig(point_features=5, hidden_dims=(16,), output_dim=8)).eval()
    x = torch.rand(2, 30, 10)
    y, z = x.clone(), x.clone()
    y[..., 8:] = 7.0     # past the 5 feature columns read
    z[..., 7] = 7.0      # the 5th feature column
    with torch.no_grad():
        assert torch.equal(seg(x), seg(y)) and not torch.allclose(seg(x), seg(z))


def test_point_cloud_encoder_is_permutation_invariant_and_ignores_masked_points():
    torch.manual_seed(0)
    enc = make_encoder(PointCloudEncoderConfig(point_features=3, hidden_dims=(16, 32), output_dim=24)).eval()
    points = torch.rand(2, 64, 6)
    mask = torch.rand(2, 64) > 0.4
    with torch.no_grad():
        base = enc(points, mask)
        perm = torch.randperm(64)
        assert torch.allclose(enc(points[:, perm], mask[:, perm]), base, atol=1e-5)
        garbage = torch.where(mask[..., None], points, 100 * torch.randn_like(points))
        assert torch.allclose(enc(garbage, mask), base, atol=1e-5)
        only_real = enc(points[0][mask[0]][None])          # the same cloud without padding at all
        assert torch.allclose(only_real[0], base[0], atol=1e-5)
        shifted = points.clone()
        shifted[..., :3] += torch.tensor([0.3, -0.2, 0.5])   # centring makes it translation-invariant
        assert torch.allclose(enc(shifted, mask), base, atol=1e-4)
        empty = enc(points, torch.zeros_like(mask))
        assert torch.isfinite(empty).all()


# -- instructions ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    return MiniLMInstructionEncoder(InstructionEncoderConfig(cache_dir=str(tmp_path_factory.mktemp("emb"))))


def test_instruction_encoder_caches_and_tells_colours_apart(minilm):
    assert isinstance(minilm, InstructionEncoder) and minilm.output_dim == 384
    red = "stack the red block on the blue block"
    green = "stack the green block on the blue block"
    first = minilm.encode([red, green, red])
    assert first.shape == (3, 384) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert np.array_equal(first[0], first[2]) and not np.allclose(first[0], first[1], atol=1e-3)
    computed = minilm.stats["computed"]
    again = minilm.encode([red])
    assert np.array_equal(again[0], first[0]) and minilm.stats["computed"] == computed   # from memory
    again[0, 0] = 99.0                                                                  # a copy, not the cache
    assert minilm.encode([red])[0, 0] == first[0, 0]
    # a fresh encoder on the same folder reads the disk cache without running the model
    other = MiniLMInstructionEncoder(minilm.config)
    assert np.array_equal(other.encode([green])[0], first[1])
    assert other.stats == {"memory_hits": 0, "disk_hits": 1, "computed": 0}
    assert minilm.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="wrap one instruction in a list"):
        minilm.encode(red)


def test_long_instruction_is_truncated_with_one_warning(minilm):
    long = "pick up the red block and " * 80
    with pytest.warns(InstructionTruncatedWarning, match="truncated to all-MiniLM-L6-v2's 256"):
        vec = minilm.encode([long])
    assert vec.shape == (1, 384)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        minilm.encode([long])          # cached: no second warning


def test_env_observations_convert_to_encoder_input():
    rng = np.random.default_rng(0)
    obs = {"state": np.zeros(5, np.float32)}
    for cam in ("front", "wrist"):
        obs[f"{cam}_rgb"] = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)   # a batch of 3, channel-last
        obs[f"{cam}_depth"] = rng.uniform(0, 3, (3, 32, 32, 1)).astype(np.float32)
    cfg = ImageEncoderConfig(image_size=32, depth=True, feature_dim=8)
    images = images_from_obs(obs, cfg.cameras, depth=True)
    assert images["wrist"].shape == (3, 4, 32, 32)
    assert images["front"][1, 0, 5, 7].item() == pytest.approx(obs["front_rgb"][1, 5, 7, 0] / 255.0, abs=1e-6)
    assert images["front"][1, 3, 5, 7] == torch.tensor(obs["front_depth"][1, 5, 7, 0])
    assert make_encoder(cfg)(images).shape == (3, 16)
    with pytest.raises(KeyError, match="no 'front_depth'.*obs_mode=rgbd"):
        images_from_obs({k: v for k, v in obs.items() if k != "front_depth"}, cfg.cameras, depth=True)
