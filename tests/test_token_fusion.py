"""obs_encoder=transformer: the instruction's word pieces, the robot and each object slot as
tokens of one transformer (policies/common/encoders/fusion.py). What it must guarantee: the
object slots are a set (their order cannot leak roles), empty slots are ignored, word order
reaches the condition (a swapped instruction conditions differently), and it trains and acts
through the usual surface."""
import numpy as np
import pytest
import torch

from envs.core import observation as ob
from policies.common.config import ConfigError
from policies.common.encoders import InstructionTruncatedWarning, MiniLMInstructionEncoder, images_from_obs
from policies.diffusion import DiffusionConfig, DiffusionPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(n_obs_steps=2, horizon=8, n_action_steps=4, down_dims=(16, 32), n_groups=4, diffusion_step_embed_dim=16,
            num_inference_steps=2, action_dim=7, obs_dim=ob.SLOTS_DIM, obs_key="slots", obs_encoder="transformer",
            fusion_dim=16, fusion_heads=2, fusion_readouts=2, instruction_tokens=16)
SAID = "stack the red block on the blue block"
SWAPPED = "stack the blue block on the red block"


def slots_history(rng, n_objects=3, batch=1):
    x = rng.normal(size=(batch, 2, ob.SLOTS_DIM)).astype(np.float32)
    _, objects = ob.split_slots(x)
    objects[..., ob.SLOT_FIELD_SLICES["present"]] = 0.0
    objects[:, :, :n_objects, ob.SLOT_FIELD_SLICES["present"]] = 1.0
    objects[:, :, n_objects:] = 0.0
    return torch.from_numpy(x)


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    p = DiffusionPolicy(DiffusionConfig(**TINY, instruction_encoder="all-MiniLM-L6-v2"))
    rng = np.random.default_rng(0)
    p.fit_normalizer(rng.normal(size=(64, ob.SLOTS_DIM)), rng.normal(size=(64, 7)))
    return p.eval()


def condition(policy, x, text):
    return policy._condition(x, policy.embed_instructions([text] * x.shape[0]))


def test_slot_order_does_not_change_the_condition_and_empty_slots_are_ignored(policy):
    x = slots_history(np.random.default_rng(1))
    agent, objects = ob.split_slots(x)
    permuted = torch.cat([agent, objects[:, :, [2, 0, 1, 3, 4, 5, 6, 7]].flatten(2)], -1)
    assert torch.allclose(condition(policy, x, SAID), condition(policy, permuted, SAID), atol=1e-5)
    garbage = x.clone()
    ob.split_slots(garbage)[1][:, :, 5, 1:] = 9.0          # an empty slot's features: masked out
    assert torch.allclose(condition(policy, x, SAID), condition(policy, garbage, SAID), atol=1e-5)
    moved = x.clone()
    ob.split_slots(moved)[1][:, :, 0, ob.SLOT_FIELD_SLICES["pos"]] += 0.5   # a real object moved: it counts
    assert not torch.allclose(condition(policy, x, SAID), condition(policy, moved, SAID), atol=1e-4)


def test_a_swapped_instruction_conditions_differently(policy):
    x = slots_history(np.random.default_rng(2))
    said, swapped = condition(policy, x, SAID), condition(policy, x, SWAPPED)
    assert not torch.allclose(said, swapped, atol=1e-4)


def test_word_pieces_are_padded_masked_and_cut_with_a_warning():
    enc = MiniLMInstructionEncoder()
    tokens, mask = enc.encode_tokens([SAID, "lift it"], max_tokens=12)
    assert tokens.shape == (2, 12, 384) and mask.dtype == bool
    assert mask[0].sum() == 10 and mask[1].sum() == 4            # [CLS] .. [SEP]
    assert not tokens[1, 4:].any()
    # the swapped instruction's colour words sit at each other's places
    t2, _ = enc.encode_tokens([SWAPPED], max_tokens=12)
    assert not np.allclose(tokens[0], t2[0], atol=1e-3)
    with pytest.warns(InstructionTruncatedWarning, match="cut to the policy's 6"):
        short, m = enc.encode_tokens([SAID + " and then lift the green one"], max_tokens=6)
    assert m.all() and short.shape == (1, 6, 384)


def test_it_trains_and_acts_through_the_usual_surface(policy, tmp_path):
    rng = np.random.default_rng(3)
    torch.manual_seed(0)
    p = DiffusionPolicy(DiffusionConfig(**TINY, instruction_encoder="all-MiniLM-L6-v2"))
    p.fit_normalizer(rng.normal(size=(64, ob.SLOTS_DIM)), rng.normal(size=(64, 7)))
    opt = torch.optim.Adam(p.parameters(), 1e-3)
    batch = {"obs": slots_history(rng, batch=4).expand(4, 2, -1), "action": torch.randn(4, 8, 7),
             "instruction": [SAID, SWAPPED, SAID, "lift the red block"]}
    losses = []
    for _ in range(30):
        loss = p.compute_loss(batch)
        opt.zero_grad(), loss.backward(), opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    p.save_pretrained(tmp_path / "ckpt")
    q = DiffusionPolicy.from_pretrained(tmp_path / "ckpt").eval()
    q.reset(instruction=SAID)
    obs = slots_history(rng)[0, -1].numpy()
    assert q.select_action(obs).shape == (7,)
    with pytest.raises(ValueError, match="reads instructions"):
        q.reset()
        q.select_action(obs)
    spec = q.export_spec()   # exports with the word pieces as its instruction input (tests/test_export_multitask.py)
    assert spec.instruction["tokens"] == 16 and spec.input_names == ["obs_history", "instruction_embedding", "noise"]


def test_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match="obs_encoder"):
        DiffusionConfig(**{**TINY, "obs_encoder": "attention"})
    with pytest.raises(ConfigError, match="obs_encoder"):
        DiffusionConfig(**{**TINY, "obs_dim": 40, "obs_key": "state"})
    with pytest.raises(ConfigError, match="fusion_heads"):
        DiffusionConfig(**{**TINY, "fusion_heads": 3})


def test_an_rgb_policy_fuses_image_patches_with_the_words(tmp_path):
    """obs_mode=rgb: each camera's feature and its pooled patches are tokens beside the robot
    and the words; it trains, acts from the env's Dict observation, and reloads."""
    torch.manual_seed(0)
    cfg = {**TINY, "obs_dim": ob.AGENT_DIM, "obs_key": "proprio", "cameras": ("front", "wrist"), "image_size": 32,
           "fusion_image_grid": 2, "image_feature_dim": 8}
    p = DiffusionPolicy(DiffusionConfig(**cfg, instruction_encoder="all-MiniLM-L6-v2"))
    assert p.fusion.positions["patches"].shape[0] == 2 * 2 * 4      # steps x cameras x cells
    rng = np.random.default_rng(4)
    p.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    images = lambda b: torch.from_numpy(rng.integers(0, 256, (b, 2, 32, 32, 3), dtype=np.uint8))   # noqa: E731
    obs = {"proprio": torch.randn(4, 2, ob.AGENT_DIM), "front_rgb": images(4), "wrist_rgb": images(4)}
    opt = torch.optim.Adam(p.parameters(), 1e-3)
    loss = p.compute_loss({"obs": obs, "action": torch.randn(4, 8, 7), "instruction": [SAID] * 4})
    opt.zero_grad(), loss.backward(), opt.step()
    assert p.image_encoder.encoders[0].trunk.layers[0].weight.grad.abs().sum() > 0    # patches train the trunk
    p.eval()
    one = {k: v[:1] for k, v in obs.items()}
    said, swapped = (p._condition(one, p.embed_instructions([t])) for t in (SAID, SWAPPED))
    assert not torch.allclose(said, swapped, atol=1e-4)
    p.save_pretrained(tmp_path / "ckpt")
    q = DiffusionPolicy.from_pretrained(tmp_path / "ckpt")
    q.reset(instruction=SAID)
    env_obs = {"state": rng.normal(size=40).astype(np.float32), "front_rgb": images(1)[0, 0].numpy(),
               "wrist_rgb": images(1)[0, 0].numpy()}
    assert q.select_action(env_obs).shape == (7,)


def test_fusion_skip_hands_the_unet_the_camera_features_beside_the_readouts():
    """fusion_skip: the condition is [each camera's global features, readouts]; the proprio
    reaches the U-Net only through the fusion."""
    torch.manual_seed(0)
    cfg = {**TINY, "obs_dim": ob.AGENT_DIM, "obs_key": "proprio", "cameras": ("front", "wrist"), "image_size": 32,
           "fusion_image_grid": 2, "image_feature_dim": 8}
    plain = DiffusionPolicy(DiffusionConfig(**cfg, instruction_encoder="all-MiniLM-L6-v2"))
    p = DiffusionPolicy(DiffusionConfig(**cfg, fusion_skip=True, instruction_encoder="all-MiniLM-L6-v2"))
    rng = np.random.default_rng(5)
    p.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    images = lambda b: torch.from_numpy(rng.integers(0, 256, (b, 2, 32, 32, 3), dtype=np.uint8))   # noqa: E731
    obs = {"proprio": torch.randn(3, 2, ob.AGENT_DIM), "front_rgb": images(3), "wrist_rgb": images(3)}
    p.eval()
    cond = p._condition(obs, p.embed_instructions([SAID] * 3))
    skip = 2 * 2 * 8                                                   # steps x cameras x features
    assert cond.shape == (3, skip + plain.fusion.output_dim)
    feats, _ = p.image_encoder.patches(images_from_obs({k: obs[k] for k in ("front_rgb", "wrist_rgb")},
                                                       ("front", "wrist"), False), 2)
    torch.testing.assert_close(cond[:, :skip], feats.reshape(3, -1))
    assert torch.isfinite(p.compute_loss({"obs": obs, "action": torch.randn(3, 8, 7), "instruction": [SAID] * 3}))
    with pytest.raises(ConfigError, match="fusion_skip=True is invalid; allowed: true or false; true only with"):
        DiffusionConfig(**{**cfg, "obs_encoder": "flat"}, fusion_skip=True)
    with pytest.raises(ConfigError, match="fusion_skip=True is invalid"):
        DiffusionConfig(**{**cfg, "cameras": (), "obs_key": "slots", "obs_dim": ob.SLOTS_DIM}, fusion_skip=True)


def test_without_the_agent_token_the_position_head_cannot_read_the_proprio():
    """fusion_agent=false: the proprio stays out of the fusion (whose readouts the position head
    reads) and reaches the U-Net beside it, at the current step. A different TCP then moves only
    the relative part of the guess (position_from_tcp), never where the head says objects are."""
    torch.manual_seed(0)
    cfg = {**TINY, "obs_dim": ob.AGENT_DIM, "obs_key": "proprio", "cameras": ("front", "wrist"), "image_size": 32,
           "fusion_image_grid": 2, "image_feature_dim": 8, "fusion_skip": True, "aux_position_loss": 1.0,
           "position_condition": True, "position_from_tcp": True, "instruction_encoder": "all-MiniLM-L6-v2"}
    with_agent = DiffusionPolicy(DiffusionConfig(**cfg))
    p = DiffusionPolicy(DiffusionConfig(**cfg, fusion_agent=False))
    assert "agent" not in p.fusion.group_names and "agent" in with_agent.fusion.group_names
    rng = np.random.default_rng(6)
    for policy in (with_agent, p):
        policy.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
        policy.eval()
    images = lambda b: torch.from_numpy(rng.integers(0, 256, (b, 2, 32, 32, 3), dtype=np.uint8))   # noqa: E731
    obs = {"proprio": torch.randn(3, 2, ob.AGENT_DIM), "front_rgb": images(3), "wrist_rgb": images(3)}
    moved = {**obs, "proprio": obs["proprio"] + torch.randn(3, 2, ob.AGENT_DIM)}
    words = p.embed_instructions([SAID] * 3)
    with torch.no_grad():
        guesses = []
        for policy in (p, with_agent):
            policy._condition(obs, words)
            first = policy._positions.reshape(3, 4, 6)[..., :3].clone()
            policy._condition(moved, words)
            guesses.append((first, policy._positions.reshape(3, 4, 6)[..., :3]))
        cond, moved_cond = p._condition(obs, words), p._condition(moved, words)
    torch.testing.assert_close(*guesses[0])                       # positions: the pixels and words only
    assert not torch.allclose(*guesses[1])                        # with the token, the proprio leaks in
    assert cond.shape[1] == with_agent._condition(obs, words).shape[1] + ob.AGENT_DIM
    torch.testing.assert_close(cond[:, -24 - ob.AGENT_DIM:-24], p.obs_normalizer.normalize(obs["proprio"])[:, -1])
    assert not torch.allclose(cond, moved_cond)                   # the U-Net still reads the proprio
    assert torch.isfinite(p.train().compute_loss({"obs": obs, "action": torch.randn(3, 8, 7), "instruction": [SAID] * 3,
                                                   "targets": {"slots": torch.zeros(3, 2, ob.SLOTS_DIM)}}))
    with pytest.raises(ConfigError, match="fusion_agent=False is invalid; allowed: true or false; false only with"):
        DiffusionConfig(**{**cfg, "obs_encoder": "flat", "fusion_skip": False}, fusion_agent=False)


def test_a_pointer_hands_over_the_pointed_objects_own_features():
    """fusion_pointer: each readout returns its attention-weighted mix of the object tokens' inputs;
    with one object in the scene that is exactly that object's normalized slot history."""
    from policies.common.encoders import FusionConfig, TokenFusion
    torch.manual_seed(0)
    fusion = TokenFusion(FusionConfig(dim=16, heads=2, readouts=2, pointer="objects"),
                         {"agent": (5, 0), "objects": (6, 0)})
    assert fusion.output_dim == 2 * (16 + 6)
    objects = torch.randn(3, 4, 6)
    present = torch.zeros(3, 4, dtype=torch.bool)
    present[:, 2] = True
    out = fusion({"agent": torch.randn(3, 1, 5), "objects": objects}, {"objects": present})
    pointed = out.reshape(3, 2, 22)[..., 16:]
    assert torch.allclose(pointed, objects[:, None, 2].expand(3, 2, 6), atol=1e-6)
    empty = fusion({"agent": torch.randn(1, 1, 5), "objects": objects[:1]}, {"objects": present[:1] & False})
    assert torch.isfinite(empty).all() and not empty.reshape(2, 22)[:, 16:].any()
    with pytest.raises(ValueError, match="names no token group"):
        TokenFusion(FusionConfig(pointer="patches"), {"agent": (5, 0)})
    p = DiffusionPolicy(DiffusionConfig(**TINY, fusion_pointer=True, instruction_encoder="all-MiniLM-L6-v2"))
    assert p.fusion.output_dim == 2 * (16 + 2 * ob.SLOT_DIM)
    with pytest.raises(ConfigError, match="fusion_pointer"):
        DiffusionConfig(**{**TINY, "obs_encoder": "flat"}, fusion_pointer=True)


def test_the_pointer_loss_teaches_readouts_to_find_the_named_objects():
    """fusion_pointer_loss: readout r is taught to point at the task's r-th object (slot r at
    training time). The fusion reads slots as a set, so what it learns is to find that object by
    the colour the instruction names: after training, with the objects in any slot order, readout
    0 points at the block named first and readout 1 at the block named second."""
    from envs.core.scene import COLORS
    torch.manual_seed(0)
    names = ["red", "green", "blue"]
    cfg = DiffusionConfig(**{**TINY, "fusion_pointer": True, "fusion_pointer_loss": 1.0},
                          instruction_encoder="all-MiniLM-L6-v2")
    p = DiffusionPolicy(cfg)
    rng = np.random.default_rng(5)
    color = ob.SLOT_FIELD_SLICES["rgb"]

    def scene(batch):
        x = slots_history(rng, n_objects=2, batch=batch)
        pairs = [rng.choice(3, 2, replace=False) for _ in range(batch)]
        for i, (a, b) in enumerate(pairs):
            objects = ob.split_slots(x)[1]
            objects[i, :, 0, color] = torch.tensor(COLORS[names[a]][:3])
            objects[i, :, 1, color] = torch.tensor(COLORS[names[b]][:3])
        return x, [f"stack the {names[a]} block on the {names[b]} block" for a, b in pairs]

    x, _ = scene(256)
    p.fit_normalizer(x.reshape(-1, ob.SLOTS_DIM).numpy(), rng.normal(size=(64, 7)))
    opt = torch.optim.Adam(p.parameters(), 3e-3)
    for _ in range(300):
        x, said = scene(32)
        loss = p.compute_loss({"obs": x, "action": torch.zeros(32, 8, 7), "instruction": said})
        opt.zero_grad(), loss.backward(), opt.step()
    p.eval()
    x, said = scene(64)
    agent, objects = ob.split_slots(x)
    swapped = torch.cat([agent, objects[:, :, [1, 0, 2, 3, 4, 5, 6, 7]].flatten(2)], -1)   # top now in slot 1
    with torch.no_grad():
        p._condition(swapped, p.embed_instructions(said))
    picked = p.fusion.pointer_logits.argmax(-1)                              # (B, readouts)
    assert (picked[:, 0] == 1).float().mean() > 0.9 and (picked[:, 1] == 0).float().mean() > 0.9
    with pytest.raises(ConfigError, match="fusion_pointer_loss"):
        DiffusionConfig(**TINY, fusion_pointer_loss=1.0)
    with pytest.raises(ConfigError, match="fusion_pointer_loss"):
        DiffusionConfig(**TINY, fusion_pointer=True, fusion_pointer_loss=1.0, shuffle_slots=True)



def test_the_pointer_loss_finds_the_named_block_in_the_camera_image():
    """fusion_pointer_loss with cameras: readout r is taught to point at the front camera's patch
    that shows the task's r-th object (projected from the store's slots, which the policy never
    reads). Two coloured squares drawn where the front camera sees two table points, the
    instruction naming them in role order: after training, readout 0 points at the patch of the
    square named first, whichever colour and place it has. (The loss also has each readout name
    its object's colour: without that term the pointer stays at chance, 0.5, between the two.)"""
    from envs.core.scene import COLORS
    torch.manual_seed(0)
    names, size = ["red", "green", "blue"], 24
    cfg = {**TINY, "n_obs_steps": 1, "obs_dim": ob.AGENT_DIM, "obs_key": "proprio", "cameras": ("front",),
           "image_size": size, "crop_fraction": 1.0, "fusion_image_grid": 4, "image_feature_dim": 8,
           "fusion_dim": 32, "fusion_heads": 4, "fusion_pointer": True, "fusion_pointer_loss": 1.0}
    p = DiffusionPolicy(DiffusionConfig(**cfg, instruction_encoder="all-MiniLM-L6-v2"))
    rng = np.random.default_rng(6)
    p.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))

    def scene(batch):
        images = np.zeros((batch, 1, size, size, 3), np.uint8)
        slots = np.zeros((batch, 1, ob.SLOTS_DIM), np.float32)
        said = []
        for i in range(batch):
            while True:   # two table points the camera sees apart
                points = np.c_[rng.uniform(0.3, 0.65, 2), rng.uniform(-0.2, 0.2, 2), [0.02, 0.02]]
                pixels = ob.front_camera_pixels(points, size)
                if np.all((pixels > 2) & (pixels < size - 2)) and np.abs(pixels[0] - pixels[1]).max() > 5:
                    break
            a, b = rng.choice(3, 2, replace=False)
            objects = ob.split_slots(slots[i])[1]
            for k, (color, point, (u, v)) in enumerate(zip((a, b), points, pixels.astype(int))):
                images[i, 0, v - 2:v + 2, u - 2:u + 2] = np.array(COLORS[names[color]][:3]) * 255
                objects[0, k, ob.SLOT_FIELD_SLICES["present"]] = 1.0
                objects[0, k, ob.SLOT_FIELD_SLICES["pos"]] = point
                objects[0, k, ob.SLOT_FIELD_SLICES["rgb"]] = COLORS[names[color]][:3]
            said.append(f"stack the {names[a]} block on the {names[b]} block")
        obs = {"front_rgb": torch.from_numpy(images), "proprio": torch.zeros(batch, 1, ob.AGENT_DIM)}
        return {"obs": obs, "action": torch.zeros(batch, 8, 7), "instruction": said,
                "targets": {"slots": torch.from_numpy(slots)}}

    opt = torch.optim.Adam(p.parameters(), 1e-3)
    for _ in range(400):
        loss = p.compute_loss(scene(32))
        opt.zero_grad(), loss.backward(), opt.step()
    p.eval()
    batch = scene(128)
    with torch.no_grad():
        p._condition(batch["obs"], p.embed_instructions(batch["instruction"]))
    target, shown = p._object_patches(batch)
    assert shown.all()
    picked = p.fusion.pointer_logits.argmax(-1)                                 # (B, readouts)
    assert (picked[:, 0] == target[:, 0]).float().mean() > 0.85
    assert (picked[:, 1] == target[:, 1]).float().mean() > 0.85
    with pytest.raises(ValueError, match="target_keys=\\('slots',\\)"):
        p.train().compute_loss({k: v for k, v in batch.items() if k != "targets"})
    with pytest.raises(ConfigError, match="fusion_pointer_loss"):
        DiffusionConfig(**{**cfg, "cameras": ("wrist",)}, instruction_encoder="all-MiniLM-L6-v2")
    # fusion_pointer_steps: the cross-entropy only on windows whose current step is below it
    q = DiffusionPolicy(DiffusionConfig(**cfg, fusion_pointer_steps=5, instruction_encoder="all-MiniLM-L6-v2")).eval()
    q.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    with torch.no_grad():
        q._condition(batch["obs"], q.embed_instructions(batch["instruction"]))
    steps = torch.arange(len(batch["instruction"])) % 10
    _, kept = q._object_patches({**batch, "targets": {**batch["targets"], "step": steps}})
    assert torch.equal(kept.any(1), steps < 5)
    with pytest.raises(ValueError, match="target_keys=\\('slots', 'step'\\)"):
        q._object_patches(batch)
    with pytest.raises(ConfigError, match="fusion_pointer_steps"):
        DiffusionConfig(**{**cfg, "fusion_pointer_loss": 0.0}, fusion_pointer_steps=5)


def test_position_condition_reads_the_readouts_so_the_words_say_which_object_is_which():
    """position_condition with the fusion: the head's guess (appended to the condition) reads the
    current camera features and the readouts, so a different instruction changes it."""
    torch.manual_seed(0)
    cfg = {**TINY, "obs_dim": ob.AGENT_DIM, "obs_key": "proprio", "cameras": ("front", "wrist"), "image_size": 32,
           "fusion_image_grid": 2, "image_feature_dim": 8, "fusion_skip": True, "aux_position_loss": 1.0,
           "instruction_encoder": "all-MiniLM-L6-v2"}
    plain = DiffusionPolicy(DiffusionConfig(**cfg))
    p = DiffusionPolicy(DiffusionConfig(**cfg, position_condition=True))
    rng = np.random.default_rng(5)
    for policy in (plain, p):
        policy.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    images = lambda b: torch.from_numpy(rng.integers(0, 256, (b, 2, 32, 32, 3), dtype=np.uint8))   # noqa: E731
    obs = {"proprio": torch.randn(3, 2, ob.AGENT_DIM), "front_rgb": images(3), "wrist_rgb": images(3)}
    p.eval(), plain.eval()
    with torch.no_grad():
        cond = p._condition(obs, p.embed_instructions([SAID] * 3))
        assert cond.shape == (3, plain._condition(obs, plain.embed_instructions([SAID] * 3)).shape[1] + 24)
        assert torch.equal(cond[:, -24:], p._positions)
        said = p._positions.clone()
        p._condition(obs, p.embed_instructions(["stack the green block on the red block"] * 3))
    assert not torch.allclose(said, p._positions)
