"""Where the task's objects are, as training targets for camera policies.

A camera policy never reads these: they come from the demo store's object slots
(``MultiTaskDataset(target_keys=("slots", ...))`` hands them out as ``batch["targets"]["slots"]``)
and auxiliary losses teach the policy's own features to say them (the diffusion policy's camera
pointer and position head, the VLA's position head). Objects are in the task's role order (the
r-th object the task added), which the instruction names.
"""
from __future__ import annotations

import torch

from envs.core import observation as ob

AUX_OBJECTS = 4   # the task's first objects whose place a position head must say


def present_objects(vector: torch.Tensor) -> torch.Tensor:
    """(B, To, SLOTS_DIM) raw slots -> (B, MAX_OBJECTS) bool: the slots holding an object at the current step."""
    return ob.split_slots(vector)[1][:, -1, :, ob.SLOT_FIELD_SLICES["present"]][..., 0] > 0.5


def target_objects(batch: dict, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The task's first r objects at the current step from the training targets (CPU):
    (B, r, SLOT_DIM) raw slot features and (B, r) whether each is present."""
    slots = batch.get("targets", {}).get("slots")
    if slots is None:
        raise ValueError("the pointer or position loss with cameras needs batch['targets']['slots'] (B, n_obs_steps, "
                         "SLOTS_DIM), where the named objects are: MultiTaskDataset(..., target_keys=('slots',))")
    vector = torch.as_tensor(slots, dtype=torch.float32).cpu()
    return ob.split_slots(vector[:, -1])[1][:, :r], present_objects(vector)[:, :r]


def position_targets(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """What a position head must say: (B, AUX_OBJECTS, 6) the task's first objects' pos and rel_pos
    (position minus the TCP) at the current step, in decimetres, and (B, AUX_OBJECTS) whether each is present."""
    objects, present = target_objects(batch, AUX_OBJECTS)                         # (B, r, S), (B, r)
    fields = [objects[..., ob.SLOT_FIELD_SLICES[k]] for k in ("pos", "rel_pos")]
    return torch.cat(fields, -1) * 10, present


def position_loss(guess: torch.Tensor, batch: dict) -> torch.Tensor:
    """Squared error of a position head's guess (B, AUX_OBJECTS * 6) against :func:`position_targets`:
    summed over xyz and both fields, mean over the present objects."""
    target, present = position_targets(batch)
    target, present = target.to(guess.device), present.to(guess.device)
    guess = guess.reshape(-1, AUX_OBJECTS, 6)
    if not present.any():
        return guess.new_zeros(())
    return (guess[present] - target[present]).pow(2).sum(-1).mean()


def position_spread(batch: dict) -> float:
    """The squared error of always guessing the batch's mean place of each object: what a head
    that reads nothing scores on :func:`position_loss` (the scale to read its error against)."""
    target, present = position_targets(batch)
    mean = (target * present[..., None]).sum(0) / present.sum(0).clamp_min(1)[:, None]   # (r, 6)
    return (target - mean)[present].pow(2).sum(-1).mean().item() if present.any() else 0.0
