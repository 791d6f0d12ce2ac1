"""LoRA fine-tuning as OpenVLA's ``vla-scripts/finetune.py`` sets it up, with ``peft``.

finetune.py: ``LoraConfig(r=lora_rank, lora_alpha=min(lora_rank, 16), lora_dropout=0.0,
target_modules="all-linear", init_lora_weights="gaussian")``, optionally on a 4-bit (NF4,
bfloat16 compute) quantized model. "all-linear" is every ``nn.Linear`` but the output layer;
here that is spelled out as module names (peft resolves "all-linear" only on transformers'
``PreTrainedModel``), and the SigLIP attention-pool head, which the VLA never runs, is left out.
Where timm fuses q, k and v in one ``qkv`` layer the transformers backbones have three, so the
vision towers get three adapters per block instead of one.
"""
from __future__ import annotations

from torch import nn


def lora_target_modules(model: nn.Module) -> list[str]:
    """Names of the linear layers OpenVLA adapts: all but ``lm_head`` (and the unused SigLIP pool)."""
    return sorted(name for name, module in model.named_modules()
                  if isinstance(module, nn.Linear) and not name.endswith("lm_head")
                  and ".fused_featurizer.head." not in f".{name}")


def require_4bit_support() -> None:
    """4-bit quantization needs CUDA and bitsandbytes; say which is missing."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("vla.lora.load_in_4bit=true needs CUDA (bitsandbytes' 4-bit kernels); "
                           "this machine has no CUDA device: set vla.lora.load_in_4bit=false")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise RuntimeError("vla.lora.load_in_4bit=true needs the bitsandbytes package: pip install bitsandbytes") from e


def quantize_4bit(model: nn.Module) -> nn.Module:
    """Replace the language model's linear layers (not lm_head) with bitsandbytes NF4 layers, bfloat16
    compute, as finetune.py's ``BitsAndBytesConfig`` does; CUDA only."""
    require_4bit_support()
    import bitsandbytes as bnb
    import torch

    for name, module in list(model.language_model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child_name != "lm_head":
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=torch.bfloat16, quant_type="nf4")
                q.weight = bnb.nn.Params4bit(child.weight.data.cpu(), requires_grad=False, quant_type="nf4")
                if child.bias is not None:
                    q.bias = nn.Parameter(child.bias.data, requires_grad=False)
                setattr(module, child_name, q.cuda())
    return model


def apply_lora(model: nn.Module, rank: int = 32, dropout: float = 0.0, load_in_4bit: bool = False):
    """Wrap ``model`` in a peft LoRA model (only the adapters train). Returns the peft model; its
    ``merge_and_unload()`` gives back the plain model with the adapters folded in, as finetune.py
    saves it."""
    from peft import LoraConfig, get_peft_model

    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"vla.lora.rank={rank!r} is invalid; allowed: an integer >= 1")
    if load_in_4bit:
        quantize_4bit(model)
    config = LoraConfig(r=rank, lora_alpha=min(rank, 16), lora_dropout=dropout,
                        target_modules=lora_target_modules(model), init_lora_weights="gaussian")
    return get_peft_model(model, config)
