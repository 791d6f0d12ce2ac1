"""What goes into the VLA: the prompt, its tokens and the 6-channel image, as OpenVLA builds them.

- Prompt (Prismatic's ``PurePromptBuilder`` for ``llama2-7b-pure``):
  ``"In: What action should the robot take to {instruction.lower()}?\\nOut:"``, tokenized with BOS,
  followed by the tokenizer's empty-piece token (29871, ``"▁"``, for Llama-2) that the training
  text ``"Out: "`` produced before the action tokens; in training the 7 action tokens and EOS follow
  and only those carry a loss.
- Image: resized to ``image_size`` square (``resize-naive``, bicubic), scaled to [0, 1], normalized
  once with DINOv2's ImageNet mean/std and once with SigLIP's 0.5/0.5; the two stacked on the channel
  axis -> ``pixel_values`` (6, S, S).
"""
from __future__ import annotations

import os
from typing import Protocol, Sequence

import numpy as np
import torch

PROMPT = "In: What action should the robot take to {instruction}?\nOut:"
DINO_MEAN, DINO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SIGLIP_MEAN, SIGLIP_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
LLAMA2_EMPTY_PIECE = 29871


def prompt_text(instruction: str) -> str:
    return PROMPT.format(instruction=instruction.lower().strip().rstrip("."))


class TextTokenizer(Protocol):
    """The text side the VLA needs: a prompt's ids (BOS first, the action-prefix piece last)."""

    vocab_size: int
    bos_token_id: int
    eos_token_id: int

    def encode_prompt(self, instruction: str) -> list[int]: ...


class ByteTokenizer:
    """The tiny VLA's text side: UTF-8 bytes, no learned vocabulary. Ids 0 <unk>, 1 <s>, 2 </s>,
    3..258 the bytes; the last 256 ids of ``vocab_size`` are the action tokens (as in Llama-2,
    whose vocabulary ends in the ids OpenVLA overwrote), so ``vocab_size`` >= 259 + 256."""

    bos_token_id, eos_token_id = 1, 2
    _offset = 3

    def __init__(self, vocab_size: int = 576):
        if vocab_size < self._offset + 256 + 256:
            raise ValueError(f"ByteTokenizer vocab_size={vocab_size} is invalid; allowed: >= 515 (bytes + 256 action tokens)")
        self.vocab_size = vocab_size

    def encode(self, text: str) -> list[int]:
        return [self._offset + b for b in text.encode("utf-8")]

    def encode_prompt(self, instruction: str) -> list[int]:
        # " " plays the part of Llama-2's empty piece after "Out:"
        return [self.bos_token_id] + self.encode(prompt_text(instruction)) + self.encode(" ")


class HFTokenizer:
    """A transformers tokenizer read from a checkpoint directory: Llama-2's, which OpenVLA ships (the
    empty piece 29871 after "Out:" is Llama-2's id)."""

    def __init__(self, directory: str | os.PathLike, vocab_size: int):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(directory))
        self.vocab_size = vocab_size
        self.bos_token_id, self.eos_token_id = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id

    def encode_prompt(self, instruction: str) -> list[int]:
        ids = list(self.tokenizer(prompt_text(instruction), add_special_tokens=True).input_ids)
        # OpenVLA's predict_action appends the empty piece when the prompt does not end in it
        return ids if ids[-1] == LLAMA2_EMPTY_PIECE else ids + [LLAMA2_EMPTY_PIECE]


def pixel_values(images: np.ndarray | Sequence, image_size: int) -> torch.Tensor:
    """RGB images -> (B, 6, S, S) float32. ``images``: one (H, W, 3) uint8 array (or PIL image) or a
    batch (B, H, W, 3); any H, W is resized to S = ``image_size``."""
    from PIL import Image

    if isinstance(images, Image.Image):
        images = [np.asarray(images.convert("RGB"))]
    arr = images if isinstance(images, (list, tuple)) else np.asarray(images)
    if isinstance(arr, np.ndarray) and arr.ndim == 3:
        arr = arr[None]
    out = []
    for img in arr:
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"image of shape {img.shape} is invalid; expected (H, W, 3) RGB (resized to "
                             f"{image_size}x{image_size})")
        if img.dtype != np.uint8:
            img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8) if img.max() <= 1.0 else img.astype(np.uint8)
        if img.shape[:2] != (image_size, image_size):
            img = np.asarray(Image.fromarray(img).resize((image_size, image_size), Image.BICUBIC))
        out.append(img)
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0
    dino = (x - torch.tensor(DINO_MEAN).view(1, 3, 1, 1)) / torch.tensor(DINO_STD).view(1, 3, 1, 1)
    siglip = (x - torch.tensor(SIGLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(SIGLIP_STD).view(1, 3, 1, 1)
    return torch.cat([dino, siglip], dim=1)
