"""The VLA as one graph for ``python -m policies.export`` (ONNX, run torch-free by the runtime).

Inputs (the export signature of :mod:`policies.common.export_spec`):

- ``obs_history`` (B, 1, 22) float32: the robot's proprio (read by the proprio token when the
  policy has one; otherwise present and unused, as every graph takes its vector input);
- ``<camera>_rgb`` (B, 1, S, S, 3) uint8, one input per camera of ``cameras``: at the policy's image size;
- ``instruction_embedding`` (B, L) float32: the prompt's token ids after BOS (``"In: What action
  should the robot take to ...?\\nOut: "`` as bytes), left-padded with the pad id. The runtime
  writes them from the instruction string (``language.text_encoder.kind = "byte_prompt"``); ids
  are exact in float32 (< 2^24).

Inside: the 6-channel pixel values, the Prismatic forward pass, parallel decoding in one pass or
autoregressive decoding unrolled (without a key/value cache: each step re-reads the sequence, the
same greedy tokens), token -> bin centre (or the L1 head), BOUNDS_Q99 un-normalization.

The sequence is ``[BOS, patches, (proprio), pads..., prompt, action positions]``: pads sit after the
patches instead of before BOS as in the torch policy's left-padded batch, which changes nothing
(pads are masked out, positions count real tokens only), so the graph acts as the policy does.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from policies.vla.action_tokenizer import _action_arrays
from policies.vla.processing import DINO_MEAN, DINO_STD, SIGLIP_MEAN, SIGLIP_STD

PROMPT_KIND = "byte_prompt"


def prompt_length_limit(policy) -> int:
    """Ids after BOS the graph reads: the longest prompt of the policy's context (its positions minus
    the image, proprio and action positions)."""
    a = policy.arch
    used = 1 + a.num_patches * len(policy.config.cameras) + int(policy.config.use_proprio) + policy.n_action_tokens + 1
    return min(160, a.llm.max_positions - used)


class VLAExportGraph(nn.Module):
    def __init__(self, policy, max_prompt: int):
        super().__init__()
        c = policy.config
        self.policy, self.max_prompt = policy, max_prompt
        self.n, self.k, self.d = policy.n_action_tokens, c.chunk_size, c.action_dim
        self.parallel, self.l1 = c.decoding == "parallel", c.action_head == "l1"
        tok = policy.text_tokenizer
        self.bos, self.pad = tok.bos_token_id, policy.arch.llm.vocab_size   # Prismatic's <PAD> id
        self.vocab = policy.action_tokenizer.vocab_size
        self.register_buffer("bin_centers", torch.as_tensor(policy.action_tokenizer.bin_centers, dtype=torch.float32))
        low, high, mask, _ = _action_arrays(policy.action_stats)
        self.register_buffer("act_low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("act_high", torch.as_tensor(high, dtype=torch.float32))
        self.register_buffer("act_mask", torch.as_tensor(mask))
        mean = torch.tensor(DINO_MEAN + SIGLIP_MEAN).view(1, 6, 1, 1)
        std = torch.tensor(DINO_STD + SIGLIP_STD).view(1, 6, 1, 1)
        self.register_buffer("px_mean", mean)
        self.register_buffer("px_std", std)
        if c.use_proprio:
            stats = c.norm_stats[c.unnorm_key]["proprio"]
            plow, phigh, _, pconst = _action_arrays(stats)
            self.register_buffer("pro_low", torch.as_tensor(plow, dtype=torch.float32))
            self.register_buffer("pro_high", torch.as_tensor(phigh, dtype=torch.float32))
            self.register_buffer("pro_const", torch.as_tensor(pconst))

    def _pixels(self, images: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """One (B, 1, S, S, 3) uint8 input per camera -> (B, 6 x cameras, S, S)."""
        per_camera = []
        for rgb in images:
            x = rgb[:, -1].permute(0, 3, 1, 2).float() / 255.0
            per_camera.append((x.repeat(1, 2, 1, 1) - self.px_mean) / self.px_std)
        return torch.cat(per_camera, 1)

    def _proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        x = (2 * (proprio - self.pro_low) / (self.pro_high - self.pro_low + 1e-8) - 1).clamp(-1, 1)
        return self.policy.proprio_projector(torch.where(self.pro_const, torch.zeros_like(x), x))

    def forward(self, obs_history: torch.Tensor, *images_and_prompt: torch.Tensor) -> torch.Tensor:
        """(obs_history, one image per camera, prompt ids), the export signature's order."""
        *images, prompt_ids = images_and_prompt
        net = self.policy.network
        table = net.language_model.get_input_embeddings()
        ids = prompt_ids.long()
        b = ids.shape[0]
        patches = net.projector(net.vision_backbone(self._pixels(tuple(images))))
        bos = table(torch.full((b, 1), self.bos, dtype=torch.long, device=ids.device))
        parts = [bos, patches]
        if self.policy.proprio_projector is not None:
            parts.append(self._proprio(obs_history[:, -1]))
        prefix = torch.cat(parts, 1)
        seq = torch.cat([prefix, table(ids)], 1)
        keep = torch.cat([torch.ones(b, prefix.shape[1], dtype=torch.bool, device=ids.device), ids != self.pad], 1)
        if self.parallel:
            keep = torch.cat([keep, keep.new_ones(b, self.n)], 1)
            hidden = self._run(torch.cat([seq, seq.new_zeros(b, self.n, seq.shape[-1])], 1), keep, self.n)
            slots = hidden[:, -self.n:]
            if self.l1:
                normalized = self.policy.action_head(slots).clamp(-1, 1)
                return self._unnormalize(normalized)
            tokens = net.language_model.lm_head(slots).argmax(-1)
        else:
            generated = []
            for _ in range(self.n):
                hidden = self._run(seq, keep, 0)
                token = net.language_model.lm_head(hidden[:, -1:]).argmax(-1)
                generated.append(token)
                seq = torch.cat([seq, table(token)], 1)
                keep = torch.cat([keep, keep.new_ones(b, 1)], 1)
            tokens = torch.cat(generated, 1)
        index = (self.vocab - tokens - 1).clamp(0, self.bin_centers.shape[0] - 1)
        return self._unnormalize(self.bin_centers[index].reshape(b, self.k, self.d))

    def _run(self, embeds: torch.Tensor, keep: torch.Tensor, bidirectional: int) -> torch.Tensor:
        """Llama's last hidden states under the policy's mask: causal over kept positions, the last
        ``bidirectional`` positions seeing each other, every row seeing itself."""
        b, length = keep.shape
        full = torch.ones(length, length, dtype=torch.bool, device=keep.device).tril()[None, None] & keep[:, None, None, :]
        if bidirectional:
            block = torch.zeros(length, length, dtype=torch.bool, device=keep.device)
            block[length - bidirectional:, length - bidirectional:] = True
            full = full | block[None, None]
        full = full | torch.eye(length, dtype=torch.bool, device=keep.device)[None, None]
        pos = (keep.long().cumsum(1) - 1).clamp(min=0)
        return self.policy.network.language_model.model(inputs_embeds=embeds, attention_mask=full,
                                                        position_ids=pos).last_hidden_state

    def _unnormalize(self, normalized: torch.Tensor) -> torch.Tensor:
        raw = 0.5 * (normalized + 1) * (self.act_high - self.act_low) + self.act_low
        return torch.where(self.act_mask, raw, normalized)


def encode_prompt(instruction: str, spec: dict) -> list[int]:
    """What the runtime writes (policies.export.runtime.BytePrompt, the same rule): the prompt's
    ids after BOS. Used here to check the runtime's copy."""
    ids = [spec["byte_offset"] + b for b in (spec["template"].format(instruction=instruction.lower().strip()
                                                                     .rstrip(".")) + spec["suffix"]).encode("utf-8")]
    return ids


def language_spec(policy, max_prompt: int) -> dict:
    """The manifest's ``language.text_encoder`` entry for the byte-level prompt."""
    from policies.vla.processing import PROMPT

    tok = policy.text_tokenizer
    example = tok.encode_prompt("pick up the block")
    spec = {"kind": PROMPT_KIND, "model": "roboforge byte prompt", "template": PROMPT, "suffix": " ",
            "byte_offset": tok._offset, "pad_id": policy.arch.llm.vocab_size, "max_tokens": max_prompt,
            "what": "UTF-8 bytes of the OpenVLA prompt (instruction lower-cased, trailing '.' dropped) + byte_offset, "
                    "BOS left out (the graph adds it), left-padded with pad_id to max_tokens; float32 ids",
            "padding": "left"}
    if encode_prompt("pick up the block", spec) != example[1:]:
        raise AssertionError("the byte prompt rule of the export differs from the policy's tokenizer")
    return spec


def example_prompts(policy, max_prompt: int, batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    words = ["stack the red block on the blue block", "push the cube into the zone", "reach the target",
             "put the green block in the bowl"]
    rows = []
    for i in range(batch):
        ids = policy.text_tokenizer.encode_prompt(words[rng.integers(len(words))])[1:]
        rows.append([policy.arch.llm.vocab_size] * (max_prompt - len(ids)) + ids)
    return np.asarray(rows, dtype=np.float32)
