"""Token fusion: a small transformer over the instruction's words and the observation's parts.

Octo's (and RT-1's) answer to language grounding: every input becomes tokens of one width -- each
word piece of the instruction, the robot's proprioception, each object slot (or image patch) --
a transformer mixes them, and a few learned *readout* tokens carry the result to the action head
(here the diffusion U-Net's global condition). Attention is what binds a colour word to the slot
or patch of that colour; a pooled sentence vector cannot, because the swapped instruction
("stack blue on red" for "stack red on blue") has nearly the same embedding (cosine 0.997 with
all-MiniLM-L6-v2, docs/multitask.md).

A token group either has learned positions (the words: their order matters) or none (the object
slots: a set, so the slot order -- which tasks fill in role order -- cannot leak the roles).

``pointer``: each readout also points at one token of a named group (attention of the readout's
output over that group's encoded tokens) and returns the pointed-at tokens' *input* features,
unprojected. A readout that learns "the block the instruction names first" then hands the action
head that block's exact position, as precise as a flat observation, whichever slot it sits in.
:attr:`TokenFusion.pointer_logits` keeps the last forward's pointer logits for a loss that
teaches the pointing directly (the diffusion policy's ``fusion_pointer_loss``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from policies.common.config import JSONConfig, is_int, require


@dataclass
class FusionConfig(JSONConfig):
    """Width and depth of :class:`TokenFusion`; its output is ``readouts * dim`` numbers."""

    dim: int = 64          # token width
    layers: int = 2        # transformer encoder layers (pre-norm)
    heads: int = 4         # attention heads (a divisor of dim)
    readouts: int = 4      # learned readout tokens; their outputs, concatenated, are the result
    pointer: str = ""      # a token group each readout also points into (its inputs returned); "" = none

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        for name in ("dim", "layers", "heads", "readouts"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        require(self.dim % self.heads == 0, self, "heads", f"a divisor of dim ({self.dim})")



class TokenFusion(nn.Module):
    """Groups of tokens -> (B, readouts * dim).

    ``groups`` names each token group with its input width and its number of learned positions
    (0: an unordered set). ``forward`` takes ``{name: (B, N, width)}`` and optional masks
    ``{name: (B, N) bool}`` (True = a real token; padded words and empty slots are False). Each
    group has its own linear projection and a learned type embedding, so the transformer knows a
    word from a slot.
    """

    def __init__(self, config: FusionConfig, groups: Mapping[str, tuple[int, int]]):
        super().__init__()
        self.config = config
        d = config.dim
        self.group_names = list(groups)
        self.proj = nn.ModuleDict({name: nn.Linear(width, d) for name, (width, _) in groups.items()})
        self.positions = nn.ParameterDict({name: nn.Parameter(torch.randn(n, d) * 0.02)
                                           for name, (_, n) in groups.items() if n})
        self.type_embedding = nn.Parameter(torch.randn(len(groups), d) * 0.02)
        self.readout = nn.Parameter(torch.randn(config.readouts, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, config.heads, dim_feedforward=2 * d, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        if config.pointer and config.pointer not in groups:
            raise ValueError(f"FusionConfig.pointer={config.pointer!r} names no token group; groups: {list(groups)}")
        self.pointer_query = nn.Linear(d, d) if config.pointer else None
        self.pointer_key = nn.Linear(d, d) if config.pointer else None
        self.pointer_logits: torch.Tensor | None = None
        self.output_dim = config.readouts * (d + (groups[config.pointer][0] if config.pointer else 0))

    def forward(self, tokens: Mapping[str, torch.Tensor],
                masks: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        masks = masks or {}
        if set(tokens) != set(self.group_names):
            raise ValueError(f"TokenFusion takes the token groups {self.group_names}; got {sorted(tokens)}")
        parts, keep, spans = [], [], {}
        for i, name in enumerate(self.group_names):
            x = self.proj[name](tokens[name]) + self.type_embedding[i]
            if name in self.positions:
                n = x.shape[1]
                if n > self.positions[name].shape[0]:
                    raise ValueError(f"token group {name!r} has {n} tokens; it was built for at most "
                                     f"{self.positions[name].shape[0]}")
                x = x + self.positions[name][:n]
            start = sum(p.shape[1] for p in parts)
            spans[name] = slice(start, start + x.shape[1])
            parts.append(x)
            mask = masks.get(name)
            keep.append(torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None
                        else mask.to(device=x.device, dtype=torch.bool))
        b = parts[0].shape[0]
        parts.append(self.readout.expand(b, -1, -1))
        keep.append(torch.ones(b, self.config.readouts, dtype=torch.bool, device=parts[0].device))
        # readouts are always present, so no row is all-masked (which would give NaN attention)
        keep = torch.cat(keep, 1)
        out = self.encoder(torch.cat(parts, 1), src_key_padding_mask=~keep)
        readouts = self.norm(out[:, -self.config.readouts:])                         # (B, R, d)
        if self.pointer_query is None:
            return readouts.flatten(1)
        span = spans[self.config.pointer]
        logits = self.pointer_query(readouts) @ self.pointer_key(out[:, span]).transpose(1, 2)   # (B, R, N)
        logits = logits / self.config.dim ** 0.5
        logits = logits.masked_fill(~keep[:, None, span], float("-inf"))
        self.pointer_logits = logits   # the last forward's (B, R, N): what a grounding loss supervises
        # a row with no valid token (an empty scene) points at nothing: zeros, not NaN
        weights = torch.nan_to_num(torch.softmax(logits, dim=-1))
        pointed = weights @ tokens[self.config.pointer]                              # (B, R, width)
        return torch.cat([readouts, pointed], -1).flatten(1)
