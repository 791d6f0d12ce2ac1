"""The VLA as a roboforge policy: camera images (``cameras``: OpenVLA one, OFT adds the wrist) + the
episode's instruction -> actions.

    policy = VLAPolicy(VLAConfig(size="tiny", action_dim=7))
    policy.fit_statistics(actions, num_trajectories)        # BOUNDS_Q99 statistics, saved in config.json
    loss = policy.compute_loss(batch)                        # batch: obs[front_rgb], action, instruction
    policy.reset(instruction="stack the red block on the blue block")
    action = policy.select_action(obs)                       # env Dict observation (or a lockstep batch)

Decoding (``config.decoding``):

- ``autoregressive`` (OpenVLA): the ``chunk_size x D`` action tokens then EOS, teacher-forced in
  training (loss on those tokens only), greedy one token at a time at inference;
- ``parallel`` (OpenVLA-OFT): ``chunk_size x D`` empty positions after the prompt attend to each
  other both ways and are read in one forward pass, as action tokens at their own positions
  (``action_head=tokens``, cross-entropy) or through an MLP on each action's D hidden states that
  regresses the normalized action (``action_head=l1``, L1 loss).
"""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from envs.core.observation import AGENT_DIM
from policies.common.grounding import AUX_OBJECTS, position_loss
from policies.common.policy import Policy, register_policy
from policies.vla.action_tokenizer import (ActionTokenizer, compute_statistics, normalize_actions,
                                           save_statistics, unnormalize_actions)
from policies.vla.configuration import VLAConfig
from policies.vla.processing import ByteTokenizer, pixel_values


class ProprioProjector(nn.Module):
    """OpenVLA-OFT's proprio token: the normalized proprio vector -> fc1 -> GELU -> fc2 -> one LLM
    embedding, placed right after the image patches."""

    def __init__(self, llm_dim: int, proprio_dim: int):
        super().__init__()
        self.fc1, self.act_fn1, self.fc2 = nn.Linear(proprio_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim)

    def forward(self, proprio: torch.Tensor) -> torch.Tensor:
        """(B, P) -> (B, 1, H)."""
        return self.fc2(self.act_fn1(self.fc1(proprio)))[:, None]


class L1ActionHead(nn.Module):
    """OFT's continuous head, small: each action's D hidden states (flattened) -> MLP -> D values."""

    def __init__(self, llm_dim: int, action_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(action_dim * llm_dim), nn.Linear(action_dim * llm_dim, llm_dim),
                                 nn.GELU(), nn.Linear(llm_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, action_dim))
        self.action_dim = action_dim

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, K * D, H) -> (B, K, D)."""
        b = hidden.shape[0]
        return self.net(hidden.reshape(b, -1, self.action_dim * hidden.shape[-1]))


@register_policy("vla")
class VLAPolicy(Policy):
    config_class = VLAConfig
    reads_instruction = True

    def __init__(self, config: VLAConfig):
        super().__init__(config)
        from policies.vla.prismatic import PrismaticVLA

        if config.weights:
            from policies.vla.checkpoint import load_openvla_checkpoint
            from policies.vla.openvla import text_tokenizer

            model, _, cfg = load_openvla_checkpoint(config.weights)
            self.text_tokenizer = text_tokenizer(config.weights, cfg, model.arch.llm.vocab_size)
        else:
            model = PrismaticVLA(config.architecture)
            self.text_tokenizer = ByteTokenizer(model.arch.llm.vocab_size)
        self.arch = model.arch
        self.action_tokenizer = ActionTokenizer(self.arch.llm.vocab_size, self.arch.n_action_bins)
        if config.use_proprio and config.proprio_dim < 1:
            raise ValueError(f"use_proprio=true needs proprio_dim >= 1 (the length of the env's proprio vector); "
                             f"got {config.proprio_dim}")
        self.proprio_projector = (ProprioProjector(self.arch.llm.hidden, config.proprio_dim)
                                  if config.use_proprio else None)
        self.action_head = (L1ActionHead(self.arch.llm.hidden, config.action_dim)
                            if config.action_head == "l1" else None)
        self.position_head = nn.Linear(self.arch.llm.hidden, AUX_OBJECTS * 6) if config.aux_position_loss else None
        if config.lora_rank:
            from policies.vla.lora import apply_lora

            model = apply_lora(model, config.lora_rank, load_in_4bit=config.load_in_4bit)
        self.vla = model
        self._prompts: dict[str, list[int]] = {}
        self.reset()

    @property
    def network(self):
        """The PrismaticVLA (under the LoRA wrapper when there is one)."""
        return self.vla.get_base_model() if self.config.lora_rank else self.vla

    @property
    def n_action_tokens(self) -> int:
        return self.config.chunk_size * self.config.action_dim

    # -- data --------------------------------------------------------------------------------
    def fit_statistics(self, actions: np.ndarray, num_trajectories: int, proprio: np.ndarray | None = None) -> None:
        """The training actions (N, D) (and with ``use_proprio`` the proprio vectors (N, P)) ->
        BOUNDS_Q99 statistics under ``config.unnorm_key``."""
        actions = np.asarray(actions)
        if actions.ndim != 2 or actions.shape[1] != self.config.action_dim:
            raise ValueError(f"actions have shape {actions.shape}; expected (N, {self.config.action_dim})")
        if self.config.use_proprio and (proprio is None or np.shape(proprio)[1:] != (self.config.proprio_dim,)):
            raise ValueError(f"use_proprio=true: pass proprio= (N, {self.config.proprio_dim}) to fit its statistics; "
                             f"got {None if proprio is None else np.shape(proprio)}")
        self.config.norm_stats = {self.config.unnorm_key: compute_statistics(actions, proprio, num_trajectories)}

    @property
    def action_stats(self) -> dict:
        if not self.config.norm_stats:
            raise ValueError("the policy has no action statistics; call fit_statistics(actions, ...) first")
        from policies.vla.action_tokenizer import check_unnorm_key

        return self.config.norm_stats[check_unnorm_key(self.config.norm_stats, self.config.unnorm_key)]["action"]

    def _proprio_tokens(self, proprio) -> torch.Tensor | None:
        """Raw proprio (B, P) -> the proprio token (B, 1, H), BOUNDS_Q99-normalized as OFT does; None
        without ``use_proprio``."""
        if self.proprio_projector is None:
            return None
        proprio = proprio.cpu().numpy() if isinstance(proprio, torch.Tensor) else np.asarray(proprio)
        if proprio.ndim != 2 or proprio.shape[1] != self.config.proprio_dim:
            raise ValueError(f"proprio has shape {proprio.shape}; expected (batch, {self.config.proprio_dim})")
        stats = self.config.norm_stats[self.config.unnorm_key]["proprio"]
        norm = normalize_actions(proprio, {**stats, "mask": [True] * proprio.shape[1]})
        x = torch.as_tensor(norm, dtype=torch.float32, device=self.device)
        return self.proprio_projector(x)

    def _prompt(self, instruction: str) -> list[int]:
        if instruction not in self._prompts:
            self._prompts[instruction] = self.text_tokenizer.encode_prompt(instruction)
        return self._prompts[instruction]

    def _pixels(self, images: Sequence) -> torch.Tensor:
        """One (B, H, W, 3) batch per camera -> (B, 6 x cameras, S, S): each camera's 6 channels in
        turn, as OpenVLA-OFT stacks its third-person and wrist images."""
        arrays = [i.cpu().numpy() if isinstance(i, torch.Tensor) else np.asarray(i) for i in images]
        return torch.cat([pixel_values(a, self.arch.image_size) for a in arrays], 1).to(self.device)

    # -- training ----------------------------------------------------------------------------
    def compute_loss(self, batch: dict) -> torch.Tensor:
        """``batch``: ``obs[<camera>_rgb]`` (B, T, H, W, 3) uint8 per camera (the last step is used),
        ``action`` (B, >= chunk_size, D) raw, ``instruction`` (B strings); with ``use_proprio``
        ``obs[proprio]`` (B, T, P)."""
        c = self.config
        px = self._pixels([batch["obs"][key][:, -1] for key in c.camera_keys])
        proprio = self._proprio_tokens(batch["obs"]["proprio"][:, -1]) if c.use_proprio else None
        raw = batch["action"][:, :c.chunk_size].cpu().numpy()
        norm = normalize_actions(raw, self.action_stats)                           # (B, K, D)
        prompts = [self._prompt(s) for s in batch["instruction"]]
        if c.decoding == "autoregressive":
            tokens = torch.from_numpy(self.action_tokenizer.encode(norm).reshape(len(prompts), -1))
            eos = torch.full((len(prompts), 1), self.text_tokenizer.eos_token_id)
            slots = torch.cat([tokens, eos], 1).to(self.device)
            embeds, mask, pos = self.network.multimodal_batch(prompts, px, slot_ids=slots, proprio_embeds=proprio)
            logits = self._lm(embeds, mask.long(), pos).logits
            s = slots.shape[1]
            return F.cross_entropy(logits[:, -s - 1:-1].reshape(-1, logits.shape[-1]).float(), slots.reshape(-1))
        embeds, mask, pos = self.network.multimodal_batch(prompts, px, n_slots=self.n_action_tokens,
                                                          bidirectional_slots=True, proprio_embeds=proprio)
        hidden = self._lm(embeds, mask, pos, hidden=True)[:, -self.n_action_tokens:]
        if c.action_head == "l1":
            target = torch.as_tensor(norm, dtype=torch.float32, device=self.device)
            loss = F.l1_loss(self.action_head(hidden.float()), target)
        else:
            tokens = torch.from_numpy(self.action_tokenizer.encode(norm).reshape(len(prompts), -1)).to(self.device)
            logits = self.network.language_model.lm_head(hidden).float()
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))
        if c.aux_position_loss:
            loss = loss + c.aux_position_loss * position_loss(self.position_head(hidden.float().mean(1)), batch)
        return loss

    def _lm(self, embeds, mask, pos, hidden: bool = False, **kw):
        lm = self.network.language_model
        if hidden:
            return lm.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos).last_hidden_state
        return lm(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, **kw)

    # -- acting ------------------------------------------------------------------------------
    def reset(self, instruction: str | Sequence[str] | None = None, noise_seeds: Sequence[int] | None = None) -> None:
        """Start of an episode: the instruction (one string, or one per lockstep row) and an empty
        action queue. The VLA decodes greedily, so ``noise_seeds`` changes nothing."""
        self._instructions = None if instruction is None else (
            [instruction] if isinstance(instruction, str) else list(instruction))
        self._action_queue: deque[np.ndarray] = deque()

    def select_action(self, obs) -> np.ndarray:
        """Env observation (Dict with each ``<camera>_rgb``) -> the action (D,) to apply now; a lockstep
        batch -> (B, D). A new chunk is decoded when the queued one is used up."""
        if not self._action_queue:
            self._action_queue.extend(np.moveaxis(self.predict_action_chunk(obs), -2, 0))
        return self._action_queue.popleft()

    @torch.no_grad()
    def predict_action_chunk(self, obs) -> np.ndarray:
        """Env observation -> (chunk_size, D) float32 actions in the env's units, first to apply now;
        a batch -> (B, chunk_size, D)."""
        c = self.config
        missing = [k for k in c.camera_keys if not isinstance(obs, Mapping) or k not in obs]
        if missing:
            raise ValueError(f"the VLA reads the {list(c.camera_keys)} images; {missing} missing: pass the env's "
                             f"Dict observation (obs_mode=rgb)")
        images = [np.asarray(obs[k]) for k in c.camera_keys]
        for key, image in zip(c.camera_keys, images):
            if image.ndim not in (3, 4) or image.shape[-1] != 3 or image.ndim != images[0].ndim:
                size = self.arch.image_size
                raise ValueError(f"{key} has shape {image.shape}; expected (H, W, 3) RGB or a batch (B, H, W, 3), "
                                 f"the same for every camera (any H, W is resized to {size}x{size})")
        single = images[0].ndim == 3
        images = [i[None] for i in images] if single else images
        if self._instructions is None:
            raise ValueError("the VLA reads instructions: call policy.reset(instruction=info['instruction']) at the "
                             "start of each episode (a list of strings for a batch)")
        instructions = self._instructions * len(images[0]) if len(self._instructions) == 1 else self._instructions
        if len(instructions) != len(images[0]):
            raise ValueError(f"{len(instructions)} instructions for a batch of {len(images[0])} observations")
        proprio = None
        if c.use_proprio:
            if "proprio" not in obs and "state" not in obs:
                raise ValueError(f"this VLA reads the robot's proprio (use_proprio=true): the observation needs "
                                 f"'proprio' or 'state' (its first {AGENT_DIM} numbers); got keys {sorted(obs)}")
            proprio = np.asarray(obs["proprio"] if "proprio" in obs else np.asarray(obs["state"])[..., :AGENT_DIM])
            proprio = proprio[None] if single else proprio
        normalized = self.decode(images, instructions, proprio)                          # (B, K, D)
        actions = unnormalize_actions(normalized, self.action_stats).astype(np.float32)
        return actions[0] if single else actions

    def decode(self, images: Sequence[np.ndarray], instructions: list[str],
               proprio: np.ndarray | None = None) -> np.ndarray:
        """Images (B, H, W, 3), one batch per camera of ``cameras``, + instructions (+ raw proprio
        (B, P) with ``use_proprio``) -> normalized actions (B, chunk_size, D)."""
        c = self.config
        px = self._pixels(images).to(next(self.network.parameters()).dtype)
        prompts = [self._prompt(s) for s in instructions]
        b, n = len(prompts), self.n_action_tokens
        if c.use_proprio and proprio is None:
            raise ValueError("this VLA reads the robot's proprio (use_proprio=true): pass proprio= (batch, "
                             f"{c.proprio_dim})")
        tokens = self._proprio_tokens(proprio) if c.use_proprio else None
        if c.decoding == "parallel":
            embeds, mask, pos = self.network.multimodal_batch(prompts, px, n_slots=n, bidirectional_slots=True,
                                                              proprio_embeds=tokens)
            if c.action_head == "l1":
                hidden = self._lm(embeds, mask, pos, hidden=True)[:, -n:]
                return self.action_head(hidden.float()).clamp(-1, 1).cpu().numpy()
            tokens = self._lm(embeds, mask, pos).logits[:, -n:].argmax(-1)
        else:
            tokens = self._greedy(prompts, px, n, tokens)
        return self.action_tokenizer.decode(tokens.cpu().numpy()).reshape(b, c.chunk_size, c.action_dim)

    def _greedy(self, prompts: list[list[int]], px: torch.Tensor, n: int,
                proprio: torch.Tensor | None = None) -> torch.Tensor:
        """Greedy decoding of ``n`` tokens for a left-padded batch, with the key/value cache."""
        embeds, mask, pos = self.network.multimodal_batch(prompts, px, proprio_embeds=proprio)
        mask = mask.long()
        out = self._lm(embeds, mask, pos, use_cache=True)
        generated = []
        for i in range(n):
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            generated.append(token)
            if i + 1 == n:
                break
            mask = torch.cat([mask, mask.new_ones(len(prompts), 1)], 1)
            pos = pos[:, -1:] + 1
            out = self.network.language_model(input_ids=token, attention_mask=mask, position_ids=pos,
                                              cache=out.cache, use_cache=True)
        return torch.cat(generated, 1)

    # -- export ------------------------------------------------------------------------------
    def export_spec(self):
        """The VLA as one graph (:mod:`policies.vla.export`): the camera images, the proprio vector
        and the prompt's byte ids in, the raw action chunk out; the runtime turns the instruction
        string into those ids itself (``language.text_encoder.kind = "byte_prompt"``)."""
        from policies.common.export_spec import ExportSpec, ImageInput
        from policies.vla.export import VLAExportGraph, example_prompts, language_spec, prompt_length_limit

        c = self.config
        if c.weights or c.lora_rank:
            raise NotImplementedError("policies.export exports the VLA trained here (size=tiny, byte prompt, no "
                                      "LoRA); a checkpoint with OpenVLA's Llama-2 tokenizer or LoRA adapters is "
                                      "not exportable yet")
        max_prompt = prompt_length_limit(self)
        size = self.arch.image_size
        text = language_spec(self, max_prompt)
        pad = lambda texts: np.asarray([[text["pad_id"]] * (max_prompt - len(i)) + i for i in  # noqa: E731
                                        (self._prompt(t)[1:] for t in texts)], dtype=np.float32)
        instruction = {"encoder": text["model"], "dim": max_prompt, "text_encoder": text, "reference": pad,
                       "example": lambda batch, seed: example_prompts(self, max_prompt, batch, seed),
                       "meaning": "the prompt's byte token ids after BOS, left-padded (float32)"}
        stats = self.action_stats
        return ExportSpec(
            module=VLAExportGraph(self, max_prompt), obs_key="proprio", obs_dim=AGENT_DIM, action_dim=c.action_dim,
            n_obs_steps=1, n_action_steps=c.chunk_size, images=tuple(ImageInput(key, camera, (size, size, 3), "uint8")
                                                               for key, camera in zip(c.camera_keys, c.cameras)),
            image_processing={"image_size": size, "inside_graph": True,
                              "steps": "rgb uint8 / 255, normalized with DINOv2's ImageNet mean/std and with "
                                       "SigLIP's 0.5/0.5, stacked: 6 channels per camera (OpenVLA's pixel_values)"},
            instruction=instruction,
            normalization={"baked_into_graph": True, "method": "BOUNDS_Q99 (OpenVLA): actions un-normalized "
                                                               "from [-1, 1] by q01/q99 on masked dims",
                           "action": {k: stats[k] for k in ("q01", "q99", "mask")},
                           "proprio": "BOUNDS_Q99 by its q01/q99" if c.use_proprio else "not read"},
            extra={"decoding": {"type": c.decoding, "chunk_size": c.chunk_size, "action_head": c.action_head,
                                "proprio_token": c.use_proprio, "greedy": True,
                                "autoregressive_in_graph": "unrolled, no key/value cache"
                                if c.decoding == "autoregressive" else None}})

    # -- persistence -------------------------------------------------------------------------
    def save_pretrained(self, path) -> Path:
        """config.json (statistics inside) + model.safetensors, and dataset_statistics.json beside
        them in OpenVLA's layout."""
        path = super().save_pretrained(path)
        save_statistics(self.config.norm_stats, path)
        return path
