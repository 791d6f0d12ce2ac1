"""The instruction encoder beside an exported policy: all-MiniLM-L6-v2 as ``text_encoder.onnx``
plus its ``tokenizer.json``, so the torch-free runtime embeds instruction strings itself.

The graph takes word-piece ids and the attention mask and returns what the training side's
sentence-transformers model returns (:mod:`envs.core.text_embedding`): token embeddings mean-pooled
over the mask, L2-normalized, 384-d. Tokenizing stays outside the graph, in the ``tokenizers``
package (Rust, no torch), reading the model's own ``tokenizer.json``.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from envs.core import text_embedding

TEXT_ENCODER_FILE, TOKENIZER_FILE = "text_encoder.onnx", "tokenizer.json"
ENCODERS = ("all-MiniLM-L6-v2",)   # policies.diffusion.configuration.INSTRUCTION_ENCODERS
ONNX_OPSET = 17


class _MeanPooledEncoder(nn.Module):
    """(input_ids, attention_mask) (B, T) int64 -> (B, dim) unit embeddings and (B, T, dim) word
    pieces (the last hidden states, zero where the mask is: what a token-fusion policy reads)."""

    def __init__(self, transformer: nn.Module):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        return nn.functional.normalize(pooled, dim=-1), tokens * mask


def export_text_encoder(encoder: str, out: Path) -> dict:
    """Write ``text_encoder.onnx`` and ``tokenizer.json`` for ``encoder`` into ``out``; returns the
    manifest's ``language.text_encoder`` entry."""
    if encoder not in ENCODERS:
        raise ValueError(f"instruction encoder {encoder!r} has no exporter; known: {', '.join(ENCODERS)}")
    model = text_embedding.sentence_model()
    transformer = model[0].auto_model.eval()
    tokenizer = model.tokenizer.backend_tokenizer   # the `tokenizers` object the training side runs
    tokenizer.save(str(out / TOKENIZER_FILE))
    example = tokenizer.encode_batch(["stack the red block on the blue block", "push it"])
    ids = torch.tensor([e.ids for e in example])
    mask = torch.tensor([e.attention_mask for e in example])
    # The TorchScript-based exporter: 3 s here against ~35 s for the dynamo one, and exact for BERT
    # (the dynamo exporter also names an internal node "embedding", clashing with output names).
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(_MeanPooledEncoder(transformer), (ids, mask), str(out / TEXT_ENCODER_FILE), dynamo=False,
                          opset_version=ONNX_OPSET, input_names=["input_ids", "attention_mask"],
                          output_names=["sentence_embedding", "token_embeddings"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask",
                                                                                "token_embeddings")})
    pad = tokenizer.padding or {}
    return {"model": encoder, "model_version": text_embedding.model_version(), "file": TEXT_ENCODER_FILE,
            "tokenizer": TOKENIZER_FILE, "tokenizer_library": "tokenizers (pip install tokenizers)",
            "max_tokens": int(model.max_seq_length), "pad_id": int(pad.get("pad_id", 0)),
            "pad_token": pad.get("pad_token", "[PAD]"),
            "truncation": f"instructions longer than {model.max_seq_length} word pieces keep their first ones "
                          f"(the runtime warns), as in training",
            "pooling": "mean over tokens (attention mask), then L2 normalization, inside the graph",
            "inputs": ["input_ids (batch, tokens) int64", "attention_mask (batch, tokens) int64"],
            "output": f"sentence_embedding (batch, {text_embedding.DIM}) float32",
            "outputs": {"sentence_embedding": f"(batch, {text_embedding.DIM}) float32, unit norm",
                        "token_embeddings": f"(batch, tokens, {text_embedding.DIM}) float32, zero at padding "
                                            f"(a token-fusion policy reads its first language.tokens rows)"}}


def text_fidelity(embed, texts: list[str]) -> float:
    """Max |training-side embedding - ``embed(texts)``| (the exported text encoder through the runtime)."""
    ref = text_embedding.encode(list(texts))
    return float(np.abs(np.asarray(embed(texts)) - ref).max())
