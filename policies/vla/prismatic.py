"""The Prismatic VLM that OpenVLA is, on transformers classes.

    pixel_values (B, 6, H, W)  -- DINOv2-normalized RGB stacked on SigLIP-normalized RGB
      -> DINOv2 (registers) + SigLIP, each read at its second-to-last block, prefix tokens dropped
      -> per-patch concatenation (B, P, 1024 + 1152)
      -> projector fc1 -> GELU -> fc2 -> GELU -> fc3                 (B, P, 4096)
    input_ids (B, T) = [BOS, prompt..., action tokens..., EOS]
      -> embeddings [BOS, patches, prompt..., actions..., EOS] -> Llama-2 -> logits (B, 1 + P + T - 1, V)

Module names follow OpenVLA's checkpoint (``vision_backbone.featurizer``,
``vision_backbone.fused_featurizer``, ``projector.fc1..3``, ``language_model``); the loader in
:mod:`policies.vla.checkpoint` maps timm's names inside the two backbones.
"""
from __future__ import annotations

import torch
from torch import nn

from policies.vla.configuration import VLAArchitecture, dino_config, llama_config, siglip_config

IGNORE_INDEX = -100  # labels the loss skips (PyTorch's and transformers' convention)


class FusedVisionBackbone(nn.Module):
    """DINOv2-with-registers + SigLIP, both read at the output of their second-to-last block
    (timm's ``get_intermediate_layers(n={depth - 2})``, unnormalized), patch tokens only."""

    def __init__(self, arch: VLAArchitecture):
        super().__init__()
        from transformers import Dinov2WithRegistersModel, SiglipVisionModel

        self.featurizer = Dinov2WithRegistersModel(dino_config(arch))
        # masked-image-modelling token: DINOv2's pre-training only; timm's ViT (OpenVLA) has none
        del self.featurizer.embeddings.mask_token
        self.featurizer.embeddings.mask_token = None
        self.fused_featurizer = SiglipVisionModel(siglip_config(arch))
        self.dino_prefix = 1 + arch.dino_registers  # CLS + registers precede the patches
        self.embed_dim = arch.vision_dim
        self.image_size = arch.image_size

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 6 N, H, W) -> (B, N P, dino + siglip width): N images (OpenVLA-OFT's
        ``num_images_in_input``; OpenVLA: 1), each 6 channels, through the same backbone, their
        patches one image after the other."""
        if pixel_values.shape[1] % 6:
            raise ValueError(f"pixel_values has {pixel_values.shape[1]} channels; expected 6 per image "
                             "(DINOv2- and SigLIP-normalized RGB stacked)")
        b, n = pixel_values.shape[0], pixel_values.shape[1] // 6
        # the images of a row become rows of one backbone batch
        images = pixel_values.reshape(b * n, 6, *pixel_values.shape[2:])
        img, img_fused = torch.split(images, [3, 3], dim=1)
        # hidden_states[-2]: the output of the second-to-last block (hidden_states[0] is the embedding)
        patches = self.featurizer(pixel_values=img, output_hidden_states=True).hidden_states[-2]
        patches_fused = self.fused_featurizer(pixel_values=img_fused, output_hidden_states=True).hidden_states[-2]
        fused = torch.cat([patches[:, self.dino_prefix:], patches_fused], dim=2)
        return fused.reshape(b, n * fused.shape[1], fused.shape[2])


class FusedGELUProjector(nn.Module):
    """Prismatic's ``fused-gelu-mlp``: vision_dim -> 4 vision_dim -> llm -> llm."""

    def __init__(self, vision_dim: int, llm_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, 4 * vision_dim, bias=True)
        self.fc2 = nn.Linear(4 * vision_dim, llm_dim, bias=True)
        self.fc3 = nn.Linear(llm_dim, llm_dim, bias=True)
        self.act_fn1, self.act_fn2 = nn.GELU(), nn.GELU()

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act_fn2(self.fc2(self.act_fn1(self.fc1(patches)))))


class PrismaticVLA(nn.Module):
    """Vision backbone + projector + Llama; ``forward`` returns (logits, loss)."""

    def __init__(self, arch: VLAArchitecture):
        super().__init__()
        from transformers import LlamaForCausalLM

        self.arch = arch
        self.vision_backbone = FusedVisionBackbone(arch)
        self.projector = FusedGELUProjector(arch.vision_dim, arch.llm.hidden)
        self.language_model = LlamaForCausalLM(llama_config(arch))

    @property
    def num_patches(self) -> int:
        return self.arch.num_patches

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the projected patches inserted after BOS (B, 1 + P + T - 1, D)."""
        patches = self.projector(self.vision_backbone(pixel_values))
        tokens = self.language_model.get_input_embeddings()(input_ids)
        return torch.cat([tokens[:, :1], patches.to(tokens.dtype), tokens[:, 1:]], dim=1)

    def expand_for_patches(self, per_token: torch.Tensor, fill, num_patches: int | None = None) -> torch.Tensor:
        """A (B, T) per-token tensor (attention mask, labels) widened to the multimodal sequence
        (``num_patches``: of every image; default one image's)."""
        pad = per_token.new_full((per_token.shape[0], num_patches or self.num_patches), fill)
        return torch.cat([per_token[:, :1], pad, per_token[:, 1:]], dim=1)

    def forward(self, input_ids: torch.Tensor, pixel_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None):
        """Logits over the multimodal sequence and, given ``labels`` (B, T; -100 where no loss), the
        next-token cross-entropy (patch positions never carry a label)."""
        embeds = self.embed(input_ids, pixel_values)
        patches = embeds.shape[1] - input_ids.shape[1]
        mask = None if attention_mask is None else self.expand_for_patches(attention_mask, 1, patches)
        mm_labels = None if labels is None else self.expand_for_patches(labels, IGNORE_INDEX, patches)
        out = self.language_model(inputs_embeds=embeds, attention_mask=mask, labels=mm_labels, use_cache=False)
        return out.logits, out.loss

    def multimodal_batch(self, prompts: list[list[int]], pixel_values: torch.Tensor,
                         slot_ids: torch.Tensor | None = None, n_slots: int = 0, bidirectional_slots: bool = False,
                         proprio_embeds: torch.Tensor | None = None):
        """Prompts of different lengths as one left-padded batch, each [BOS, patches, prompt...] followed
        by the same number of slots: ``slot_ids`` (B, S) embedded (teacher forcing), or ``n_slots``
        empty (zero) positions as OpenVLA-OFT feeds its action positions. ``proprio_embeds`` (B, N, D):
        tokens placed right after the patches (OpenVLA-OFT's projected proprio). Returns ``inputs_embeds``
        (B, L, D), the attention mask -- (B, L) bool, or with ``bidirectional_slots`` (B, 1, L, L)
        bool: causal, except that the slots (the last S positions) see each other -- and
        ``position_ids`` (B, L) counting from each row's BOS."""
        table = self.language_model.get_input_embeddings()
        patches = self.projector(self.vision_backbone(pixel_values)).to(table.weight.dtype)
        device = table.weight.device
        rows = []
        for i, prompt in enumerate(prompts):
            tok = table(torch.as_tensor(prompt, device=device))
            parts = [tok[:1], patches[i]]
            if proprio_embeds is not None:
                parts.append(proprio_embeds[i].to(tok.dtype))
            parts.append(tok[1:])
            if slot_ids is not None:
                parts.append(table(slot_ids[i].to(device)))
            elif n_slots:
                parts.append(tok.new_zeros(n_slots, tok.shape[-1]))
            rows.append(torch.cat(parts))
        length = max(len(r) for r in rows)
        embeds = rows[0].new_zeros(len(rows), length, rows[0].shape[-1])
        mask = torch.zeros(len(rows), length, dtype=torch.bool, device=device)
        for i, r in enumerate(rows):
            embeds[i, length - len(r):] = r
            mask[i, length - len(r):] = True
        position_ids = (mask.long().cumsum(1) - 1).clamp(min=0)
        if not bidirectional_slots:
            return embeds, mask, position_ids
        s = slot_ids.shape[1] if slot_ids is not None else n_slots
        full = torch.ones(length, length, dtype=torch.bool, device=device).tril()[None, None] & mask[:, None, None, :]
        full[:, :, length - s:, length - s:] = True
        # padded query rows attend to themselves (a row of all False makes softmax NaN)
        full |= torch.eye(length, dtype=torch.bool, device=device)[None, None]
        return embeds, full, position_ids

    @torch.no_grad()
    def generate_greedy(self, input_ids: torch.Tensor, pixel_values: torch.Tensor, n_tokens: int) -> torch.Tensor:
        """Greedy decoding of ``n_tokens`` after the prompt (1, T) with a key/value cache -> (1, n_tokens)."""
        if input_ids.shape[0] != 1:
            raise ValueError(f"greedy decoding takes one prompt at a time; got a batch of {input_ids.shape[0]}")
        out = self.language_model(inputs_embeds=self.embed(input_ids, pixel_values), use_cache=True)
        generated = []
        for i in range(n_tokens):
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            generated.append(token)
            if i + 1 < n_tokens:
                out = self.language_model(input_ids=token, cache=out.cache, use_cache=True)
        return torch.cat(generated, dim=1)


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per part, as OpenVLA's parts are named."""
    parts = {"vision_backbone": 0, "projector": 0, "language_model": 0}
    for name, p in model.named_parameters():
        parts[name.split(".", 1)[0]] = parts.get(name.split(".", 1)[0], 0) + p.numel()
    parts["total"] = sum(parts.values())
    return parts
