"""OpenVLA as its users know it: ``vla.predict_action(image, instruction, unnorm_key)``.

    vla = OpenVLA.from_pretrained("/path/to/openvla-7b", device="cuda", dtype=torch.bfloat16)
    action = vla.predict_action(image, "pick up the red block", unnorm_key="bridge_orig")   # (7,)

The model, its text tokenizer, the action tokenizer and the action statistics in one object; it reads
and writes OpenVLA's checkpoint directory (:mod:`policies.vla.checkpoint`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from policies.vla.action_tokenizer import ActionTokenizer, check_unnorm_key, unnormalize_actions
from policies.vla.checkpoint import CONFIG_FILE, load_openvla_checkpoint, save_openvla_checkpoint
from policies.vla.processing import ByteTokenizer, HFTokenizer, TextTokenizer, pixel_values

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


def text_tokenizer(directory: str | os.PathLike, cfg: Mapping, vocab_size: int) -> TextTokenizer:
    """The text tokenizer of a checkpoint directory: the one saved beside the weights (Llama-2's for
    OpenVLA), or roboforge's byte-level one when ``config.json`` says ``roboforge_tokenizer: bytes``."""
    directory = Path(directory)
    if cfg.get("roboforge_tokenizer") == "bytes":
        return ByteTokenizer(vocab_size)
    if any((directory / f).exists() for f in _TOKENIZER_FILES):
        return HFTokenizer(directory, vocab_size)
    raise FileNotFoundError(f"{directory} has no tokenizer ({', '.join(_TOKENIZER_FILES)}); OpenVLA "
                            f"checkpoints ship Llama-2's tokenizer beside the weights")


class OpenVLA:
    """A :class:`~policies.vla.prismatic.PrismaticVLA` with what it takes to act."""

    def __init__(self, model, text_tokenizer: TextTokenizer, norm_stats: Mapping[str, dict]):
        self.model = model
        self.text_tokenizer = text_tokenizer
        self.norm_stats = dict(norm_stats)
        self.action_tokenizer = ActionTokenizer(model.arch.llm.vocab_size, model.arch.n_action_bins)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def action_dim(self, unnorm_key: str | None = None) -> int:
        return len(self.norm_stats[check_unnorm_key(self.norm_stats, unnorm_key)]["action"]["q01"])

    def prompt_ids(self, instruction: str) -> torch.Tensor:
        return torch.tensor([self.text_tokenizer.encode_prompt(instruction)], device=self.device)

    @torch.no_grad()
    def predict_action(self, image, instruction: str, unnorm_key: str | None = None) -> np.ndarray:
        """One RGB image (H, W, 3) + an instruction -> the action (D,) in the dataset's units: greedy
        decoding of D action tokens, bin centres, BOUNDS_Q99 un-normalization with ``unnorm_key``'s
        statistics (may be None when the model knows one dataset)."""
        key = check_unnorm_key(self.norm_stats, unnorm_key)
        dim = self.action_dim(key)
        px = pixel_values(image, self.model.arch.image_size).to(self.device, next(self.model.parameters()).dtype)
        tokens = self.model.generate_greedy(self.prompt_ids(instruction), px, dim)[0].cpu().numpy()
        return unnormalize_actions(self.action_tokenizer.decode(tokens), self.norm_stats[key]["action"])

    # -- persistence ------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> "OpenVLA":
        """Read an OpenVLA checkpoint directory (config.json with norm_stats, sharded safetensors + index,
        the tokenizer's files; roboforge's byte-level VLAs name ``roboforge_tokenizer: bytes`` instead)."""
        model, norm_stats, cfg = load_openvla_checkpoint(directory, device, dtype)
        return cls(model, text_tokenizer(directory, cfg, model.arch.llm.vocab_size), norm_stats)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = save_openvla_checkpoint(self.model, directory, self.norm_stats)
        if isinstance(self.text_tokenizer, ByteTokenizer):
            cfg = json.loads((directory / CONFIG_FILE).read_text())
            cfg["roboforge_tokenizer"] = "bytes"
            (directory / CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
        else:
            self.text_tokenizer.tokenizer.save_pretrained(str(directory))
        return directory
