"""Sizes of the Prismatic/OpenVLA architecture, by name (``vla=openvla-7b`` | ``vla=tiny``).

OpenVLA-7B is Prismatic's ``dinosiglip-vit-so-224px`` vision backbone + ``llama2-7b-pure`` with the
``no-align+fused-gelu-mlp`` projector:

- DINOv2 ViT-L/14 with 4 registers (timm ``vit_large_patch14_reg4_dinov2``): 1024 wide, 24 blocks;
- SigLIP so400m/14 (timm ``vit_so400m_patch14_siglip_224``): 1152 wide, 27 blocks, MLP 4304,
  attention-pooling head (kept: the checkpoint carries it, the VLA never runs it);
- both at 224 px, features from their second-to-last block, concatenated per patch (2176);
- projector 2176 -> 8704 -> 4096 -> 4096 (GELU after the first two);
- Llama-2 7B with its 32000-token vocabulary (+ <PAD>) padded to 32064 rows (multiple of 64); its
  other fields are transformers' ``LlamaConfig`` defaults, as the released ``config.json`` leaves
  them (so RMSNorm eps 1e-6 and 2048 positions, what the released model runs with).

``tiny`` is the same classes at a size that trains on two CPU cores.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Optional

from policies.common.config import ConfigError, JSONConfig


@dataclass(frozen=True)
class ViTSize:
    hidden: int
    layers: int
    heads: int
    mlp: int          # MLP hidden width
    patch: int = 14


@dataclass(frozen=True)
class LlamaSize:
    hidden: int
    layers: int
    heads: int
    mlp: int
    vocab_size: int               # the tokenizer's vocabulary; action tokens are its last n_bins ids
    pad_to_multiple_of: int = 64  # the embedding table is padded to a multiple of this
    max_positions: int = 2048
    rms_norm_eps: float = 1e-5

    @property
    def embedding_rows(self) -> int:
        """Rows of the embedding table and the LM head: the vocabulary plus Prismatic's added <PAD>
        token (id ``vocab_size``), rounded up to a multiple of ``pad_to_multiple_of`` (32064)."""
        m, rows = self.pad_to_multiple_of, self.vocab_size + 1
        return rows if m <= 1 else -(-rows // m) * m


@dataclass(frozen=True)
class VLAArchitecture:
    """Every size of the model (the name it is known by is ``name``)."""

    name: str
    image_size: int               # both backbones see image_size x image_size pixels
    dino: ViTSize
    siglip: ViTSize
    llm: LlamaSize
    dino_registers: int = 4
    n_action_bins: int = 256

    @property
    def vision_dim(self) -> int:
        return self.dino.hidden + self.siglip.hidden

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.dino.patch) ** 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VLAArchitecture":
        d = dict(d)
        return cls(dino=ViTSize(**d.pop("dino")), siglip=ViTSize(**d.pop("siglip")), llm=LlamaSize(**d.pop("llm")), **d)


ARCHITECTURES: dict[str, VLAArchitecture] = {
    "openvla-7b": VLAArchitecture(
        name="openvla-7b", image_size=224,
        dino=ViTSize(hidden=1024, layers=24, heads=16, mlp=4096),
        siglip=ViTSize(hidden=1152, layers=27, heads=16, mlp=4304),
        llm=LlamaSize(hidden=4096, layers=32, heads=32, mlp=11008, vocab_size=32000, pad_to_multiple_of=64,
                      max_positions=2048, rms_norm_eps=1e-6),
    ),
    # 56 px -> 4 x 4 = 16 patches; a byte-level text vocabulary (policies.vla.processing.ByteTokenizer)
    "tiny": VLAArchitecture(
        name="tiny", image_size=56,
        dino=ViTSize(hidden=48, layers=2, heads=2, mlp=192),
        siglip=ViTSize(hidden=48, layers=2, heads=2, mlp=96),
        llm=LlamaSize(hidden=64, layers=2, heads=4, mlp=128, vocab_size=576, pad_to_multiple_of=64,
                      max_positions=512, rms_norm_eps=1e-5),
    ),
}


def architecture(name: str, **overrides) -> VLAArchitecture:
    """The named size (``openvla-7b`` | ``tiny``), with optional top-level fields replaced."""
    if name not in ARCHITECTURES:
        raise ConfigError("vla", name, ", ".join(ARCHITECTURES))
    return replace(ARCHITECTURES[name], **overrides) if overrides else ARCHITECTURES[name]


# -- transformers configurations -------------------------------------------------------------
def dino_config(arch: VLAArchitecture):
    from transformers import Dinov2WithRegistersConfig

    d = arch.dino
    if d.mlp % d.hidden:
        raise ConfigError("dino.mlp", d.mlp, f"a multiple of the DINOv2 width {d.hidden}")
    # timm's ViT: LayerNorm eps 1e-6, exact GELU, LayerScale (init 1e-5 in DINOv2; loaded anyway)
    return Dinov2WithRegistersConfig(
        hidden_size=d.hidden, num_hidden_layers=d.layers, num_attention_heads=d.heads, mlp_ratio=d.mlp // d.hidden,
        patch_size=d.patch, image_size=arch.image_size, num_register_tokens=arch.dino_registers,
        hidden_act="gelu", layer_norm_eps=1e-6, layerscale_value=1e-5, qkv_bias=True)


def siglip_config(arch: VLAArchitecture):
    from transformers import SiglipVisionConfig

    s = arch.siglip
    # timm 0.9's SigLIP ViT (what OpenVLA ran) uses exact GELU, not transformers' tanh default
    return SiglipVisionConfig(
        hidden_size=s.hidden, num_hidden_layers=s.layers, num_attention_heads=s.heads, intermediate_size=s.mlp,
        patch_size=s.patch, image_size=arch.image_size, hidden_act="gelu", layer_norm_eps=1e-6,
        vision_use_head=True)


def llama_config(arch: VLAArchitecture):
    from transformers import LlamaConfig

    m = arch.llm
    return LlamaConfig(
        hidden_size=m.hidden, num_hidden_layers=m.layers, num_attention_heads=m.heads, num_key_value_heads=m.heads,
        intermediate_size=m.mlp, vocab_size=m.embedding_rows, max_position_embeddings=m.max_positions,
        rms_norm_eps=m.rms_norm_eps, bos_token_id=1, eos_token_id=2, pad_token_id=m.vocab_size,
        tie_word_embeddings=False)  # RoPE base: LlamaConfig's default 10000, Llama-2's


# -- the policy (train.py's policy=vla group) -----------------------------------------------------
DECODINGS = ("autoregressive", "parallel")
ACTION_HEADS = ("tokens", "l1")


@dataclass
class VLAParams:
    """What a person chooses for a VLA policy (``python train.py policy=vla policy.size=tiny ...``).

    ``autoregressive`` is OpenVLA: ``chunk_size`` actions (1 in OpenVLA) as ``chunk_size x D`` action
    tokens decoded one by one, then EOS. ``parallel`` is OpenVLA-OFT: ``chunk_size x D`` empty action
    positions after the prompt, attending to each other in both directions, all read in one forward
    pass, either as action tokens (``action_head=tokens``) or through an MLP regressing the
    normalized actions with an L1 loss (``action_head=l1``)."""

    size: str = "tiny"               # openvla-7b | tiny (ARCHITECTURES)
    decoding: str = "autoregressive"
    chunk_size: int = 1              # actions predicted per call (OFT uses 8 with parallel decoding)
    action_head: str = "tokens"      # tokens | l1 (parallel decoding only)
    # the cameras the VLA sees, in token order (OpenVLA: one third-person image; OpenVLA-OFT adds the
    # wrist camera: each image through the same backbone, their patches one after the other)
    cameras: tuple[str, ...] = ("front",)
    use_proprio: bool = False        # OFT's proprio token: the robot's own state, projected, after the patches
    # weight of an auxiliary loss (parallel decoding): a linear head on the action slots' mean hidden
    # state regresses where the task's first objects are (policies/common/grounding; demo slots as
    # training targets, never inputs), so the features the actions are read from must say where
    # things are. Without it the VLA fit its demos through the proprio, or barely, from the images
    aux_position_loss: float = 0.0
    weights: Optional[str] = None    # an OpenVLA checkpoint directory to start from (its tokenizer too)
    lora_rank: int = 0               # > 0: LoRA fine-tuning (finetune.py: 32), base weights frozen
    load_in_4bit: bool = False       # with lora_rank: NF4-quantized base (CUDA only)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        from policies.common.config import is_int, require

        require(self.size in ARCHITECTURES, self, "size", ", ".join(ARCHITECTURES))
        require(self.decoding in DECODINGS, self, "decoding", ", ".join(DECODINGS))
        require(self.action_head in ACTION_HEADS, self, "action_head", ", ".join(ACTION_HEADS))
        require(self.action_head == "tokens" or self.decoding == "parallel", self, "action_head",
                "tokens with decoding=autoregressive (the L1 head reads parallel-decoded positions)")
        require(is_int(self.chunk_size, 1) and self.chunk_size <= 64, self, "chunk_size", "an integer in 1..64")
        self.cameras = tuple([self.cameras] if isinstance(self.cameras, str) else self.cameras)
        require(len(self.cameras) >= 1 and set(self.cameras) <= {"front", "wrist"}
                and len(set(self.cameras)) == len(self.cameras), self, "cameras",
                "a list of distinct cameras from front, wrist (e.g. [front] or [front,wrist])")
        require(isinstance(self.use_proprio, bool), self, "use_proprio", "true, false")
        require(isinstance(self.aux_position_loss, (int, float)) and self.aux_position_loss >= 0
                and (not self.aux_position_loss or self.decoding == "parallel"), self, "aux_position_loss",
                "a number >= 0; > 0 only with decoding=parallel (the head reads the action slots' hidden states)")
        require(is_int(self.lora_rank, 0), self, "lora_rank", "an integer >= 0 (0: full fine-tuning)")
        require(not self.load_in_4bit or self.lora_rank > 0, self, "load_in_4bit", "false unless lora_rank > 0")
        require(self.size != "openvla-7b" or bool(self.weights), self, "weights",
                "an OpenVLA checkpoint directory for size=openvla-7b (its Llama-2 tokenizer and weights)")


@dataclass
class VLAConfig(VLAParams, JSONConfig):
    """``VLAParams`` + what the data fixes: the action size and the action statistics
    (``dataset_statistics.json``'s entries, OpenVLA's layout), saved in ``config.json``."""

    action_dim: int = 7
    proprio_dim: int = 0             # with use_proprio: the length of the env's ``proprio`` vector
    norm_stats: dict = field(default_factory=dict)
    unnorm_key: str = "roboforge"

    @classmethod
    def from_params(cls, params: VLAParams, **data) -> "VLAConfig":
        values = {f.name: getattr(params, f.name) for f in fields(VLAParams)}
        return cls(**values, **data)

    @property
    def architecture(self) -> VLAArchitecture:
        return architecture(self.size)

    @property
    def camera_keys(self) -> tuple[str, ...]:
        return tuple(f"{c}_rgb" for c in self.cameras)

    @classmethod
    def from_dict(cls, d):
        # checkpoints written before the wrist camera name one camera as ``camera``
        if "camera" in d:
            d = {**{k: v for k, v in d.items() if k != "camera"}, "cameras": [d["camera"]]}
        return super().from_dict(d)
