"""aux_position_loss: a linear head on the current camera features learns where the task's objects
are (from the demo store's slots, training targets only), teaching the image encoder to localize."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from envs.core import observation as ob
from policies.common.config import ConfigError
from policies.diffusion import DiffusionConfig, DiffusionPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 24
CFG = dict(n_obs_steps=1, horizon=8, n_action_steps=4, down_dims=(16, 32), n_groups=4, diffusion_step_embed_dim=16,
           obs_dim=ob.AGENT_DIM, obs_key="proprio", cameras=("front",), image_size=SIZE, crop_fraction=1.0,
           image_feature_dim=16, action_dim=7)


def scene(rng, batch):
    """One white square where the front camera sees a random table point; its slot says where."""
    images = np.zeros((batch, 1, SIZE, SIZE, 3), np.uint8)
    slots = np.zeros((batch, 1, ob.SLOTS_DIM), np.float32)
    for i in range(batch):
        while True:
            point = np.array([rng.uniform(0.3, 0.65), rng.uniform(-0.2, 0.2), 0.02])
            u, v = ob.front_camera_pixels(point[None], SIZE)[0]
            if 2 < u < SIZE - 2 and 2 < v < SIZE - 2:
                break
        images[i, 0, int(v) - 2:int(v) + 2, int(u) - 2:int(u) + 2] = 255
        objects = ob.split_slots(slots[i])[1]
        objects[0, 0, ob.SLOT_FIELD_SLICES["present"]] = 1.0
        objects[0, 0, ob.SLOT_FIELD_SLICES["pos"]] = point
        objects[0, 0, ob.SLOT_FIELD_SLICES["rel_pos"]] = point - np.array([0.4, 0.0, 0.3])
    return {"obs": {"front_rgb": torch.from_numpy(images), "proprio": torch.zeros(batch, 1, ob.AGENT_DIM)},
            "action": torch.zeros(batch, 8, 7), "targets": {"slots": torch.from_numpy(slots)}}


def test_the_position_head_learns_where_the_object_is_from_the_image():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    p = DiffusionPolicy(DiffusionConfig(**CFG, aux_position_loss=1.0))
    p.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    test = scene(rng, 128)
    pos = ob.split_slots(test["targets"]["slots"][:, -1])[1][:, 0, ob.SLOT_FIELD_SLICES["pos"]] * 10   # dm
    spread = (pos - pos.mean(0)).pow(2).sum(-1).mean().item()      # the error of always guessing the mean
    opt = torch.optim.Adam(p.parameters(), 3e-3)
    for _ in range(300):
        loss = p.compute_loss(scene(rng, 32))
        opt.zero_grad(), loss.backward(), opt.step()
    p.eval()
    with torch.no_grad():
        p._condition(test["obs"], None)
        guess = p._positions[:, :3]
    assert (guess - pos).pow(2).sum(-1).mean().item() < 0.3 * spread
    with pytest.raises(ValueError, match="needs batch\\['targets'\\]\\['slots'\\]"):
        p.train().compute_loss({k: v for k, v in test.items() if k != "targets"})
    with pytest.raises(ConfigError, match="aux_position_loss=1.0 is invalid; allowed: a number >= 0; > 0 only with cameras"):
        DiffusionConfig(**{**CFG, "cameras": (), "obs_key": "state", "obs_dim": 10}, aux_position_loss=1.0)


def test_position_condition_hands_the_heads_guesses_to_the_unet():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    plain = DiffusionPolicy(DiffusionConfig(**CFG, aux_position_loss=1.0))
    plain.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    p = DiffusionPolicy(DiffusionConfig(**CFG, aux_position_loss=1.0, position_condition=True))
    p.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    batch = scene(rng, 4)
    with torch.no_grad():
        cond = p.eval()._condition(batch["obs"], None)
    # the head's guess of 4 objects x (pos, rel_pos) at the current step, after what the plain policy reads
    assert cond.shape[1] == plain.eval()._condition(batch["obs"], None).shape[1] + 4 * 6
    assert torch.equal(cond[:, -24:], p._positions)
    # not detached: the denoising loss reaches the head through the condition, not only the aux loss
    p.train()._condition(batch["obs"], None).pow(2).sum().backward()
    assert p.position_head[0].weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="position_condition=True is invalid; allowed: true or false; true only "
                                          "with aux_position_loss > 0"):
        DiffusionConfig(**CFG, position_condition=True)


def test_without_the_fusion_the_heads_guess_reads_the_instruction():
    """Flat encoder + language: the head reads the camera features and the instruction embedding,
    so the words can say which object is which."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    p = DiffusionPolicy(DiffusionConfig(**CFG, aux_position_loss=1.0, position_condition=True,
                                        instruction_encoder="all-MiniLM-L6-v2"))
    p.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    batch = scene(rng, 2)
    with torch.no_grad():
        p.eval()._condition(batch["obs"], p.embed_instructions(["stack the red block on the blue block"] * 2))
        said = p._positions.clone()
        p._condition(batch["obs"], p.embed_instructions(["stack the blue block on the red block"] * 2))
    assert said.shape == (2, 24) and not torch.allclose(said, p._positions)


def test_position_from_tcp_takes_the_relative_part_from_the_proprio():
    """The head says where the objects are; where they are from the gripper is that minus the TCP
    the proprio reports, so a TCP the images never showed (off the demos' paths) cannot mislead it."""
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    p = DiffusionPolicy(DiffusionConfig(**CFG, aux_position_loss=1.0, position_condition=True, position_from_tcp=True))
    p.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    batch = scene(rng, 3)
    tcp = torch.tensor([[0.4, 0.1, 0.3], [0.5, -0.1, 0.2], [0.6, 0.0, 0.1]])
    batch["obs"]["proprio"][:, -1, ob.slots_layout()["tcp_pos"]] = tcp
    with torch.no_grad():
        cond = p.eval()._condition(batch["obs"], None)
    guess = p._positions.reshape(3, 4, 6)
    assert p.position_head[-1].out_features == 4 * 3                       # positions only
    torch.testing.assert_close(guess[..., 3:], guess[..., :3] - 10 * tcp[:, None])   # decimetres
    assert torch.equal(cond[:, -24:], p._positions)
    p.train().compute_loss(batch).backward()                               # the aux loss reaches the head
    assert p.position_head[0].weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="position_from_tcp=True is invalid; allowed: true or false; true only "
                                          "with aux_position_loss > 0"):
        DiffusionConfig(**CFG, position_from_tcp=True)


def test_exploration_windows_teach_the_head_not_the_actions():
    """batch['demo'] False (data.explore_episodes): the window's actions are exploration, left out
    of the denoising loss; the position loss still learns where things are from its frames."""
    rng = np.random.default_rng(3)
    p = DiffusionPolicy(DiffusionConfig(**CFG, aux_position_loss=1.0))
    p.fit_normalizer(rng.normal(size=(64, ob.AGENT_DIM)), rng.normal(size=(64, 7)))
    batch = {**scene(rng, 4), "demo": torch.tensor([True, True, False, False])}
    other = {**batch, "action": batch["action"].clone()}
    other["action"][2:] = 5.0                        # what the explorer did does not matter
    losses = []
    for b in (batch, other):
        torch.manual_seed(0)
        losses.append(p.compute_loss(b).item())
    assert losses[0] == losses[1]
    torch.manual_seed(0)
    assert p.compute_loss({k: v for k, v in other.items() if k != "demo"}).item() != losses[0]   # unflagged: imitated
    p.zero_grad()
    p.compute_loss({**batch, "demo": torch.zeros(4, dtype=torch.bool)}).backward()   # exploration only
    assert p.position_head.weight.grad.abs().sum() > 0 and p.model.final[-1].weight.grad.abs().sum() == 0
