"""OpenVLA-compatible vision-language-action policy (Kim et al. 2024) and OpenVLA-OFT's parallel decoding.

- :mod:`~policies.vla.action_tokenizer`: OpenVLA's action tokens and BOUNDS_Q99 statistics;
- :mod:`~policies.vla.configuration`: sizes by name (``openvla-7b``, ``tiny``) and the policy config;
- :mod:`~policies.vla.prismatic`: the Prismatic network on transformers' DINOv2, SigLIP and Llama;
- :mod:`~policies.vla.processing`: prompt, text tokenizers and the 6-channel image;
- :mod:`~policies.vla.checkpoint`: OpenVLA's released checkpoint layout in and out;
- :mod:`~policies.vla.openvla`: ``OpenVLA.from_pretrained(dir).predict_action(image, instruction, unnorm_key)``;
- :mod:`~policies.vla.lora`: LoRA (and 4-bit) as OpenVLA's finetune.py;
- :mod:`~policies.vla.modeling`: ``VLAPolicy``, the roboforge policy surface.

Only the configuration is imported here (no torch / transformers), as ``train.py`` reads it to build
its command-line schema.
"""
from policies.vla.configuration import ARCHITECTURES, VLAConfig, VLAParams, architecture

__all__ = ["ARCHITECTURES", "VLAConfig", "VLAParams", "VLAPolicy", "architecture"]


def __getattr__(name: str):
    if name == "VLAPolicy":
        from policies.vla.modeling import VLAPolicy

        return VLAPolicy
    raise AttributeError(f"module 'policies.vla' has no attribute {name!r}")
