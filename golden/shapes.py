"""Model families without torch: what HGRN-bit and BitNet b1.58 checkpoints hold.

The torch-free half of checkpoint ingest, so that sizing a model (``tritium estimate``,
the device-memory check) reads one definition of each architecture and imports neither
torch nor numpy:

* :func:`hgrn_spec` / :func:`bitnet_spec`: every tensor (key, shape, role) and every
  BitLinear (out, in, the norm it applies) an architecture stores for a config.json;
* :func:`read_config`: a config.json read with bounded size and nesting, every field
  tritium reads type- and range-checked (``_CONFIG_FIELDS``);
* :data:`MODEL_PRESETS`: the config.json fields of the released checkpoints;
* the :class:`ModelDescription` a loaded checkpoint becomes (:mod:`tritium.golden.checkpoint`
  fills it; the golden models run on it), and the :class:`CheckpointError` family that
  every check here and there raises, each message naming the field or file and what to do.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from tritium.errors import TritiumError

if TYPE_CHECKING:
    import numpy as np

# numpy and tritium.golden.ternary are imported where a loaded model's codes are used, not
# here: sizing a model (tritium estimate) stays free of numpy as well as of torch

ARCH_HGRN = "hgrn-bit"
ARCH_BITNET = "bitnet"
ARCH_BITNET_PACKED = "bitnet-packed"
ARCHITECTURES = (ARCH_HGRN, ARCH_BITNET, ARCH_BITNET_PACKED)

#: bytes per non-ternary parameter on the device (16-bit fixed point or bf16)
DEVICE_BYTES_PER_PARAM = 2
#: bytes per BitLinear scale on the device (one float32)
DEVICE_BYTES_PER_SCALE = 4

#: set (True) in the config of a checkpoint read without config.json, whose config fields
#: were inferred from the tensor shapes (a BitNet's head count cannot be)
INFERRED_CONFIG_FIELD = "_inferred_from_tensors"
#: roles of the tensors that hold a BitLinear's ternary weight (see Expected)
_TERNARY_ROLES = ("latent", "packed", "ternary")
#: codes per byte of Hugging Face's pre-packed BitNet weights
HF_BITNET_PER_BYTE = 4


# --- errors ------------------------------------------------------------------------------

class CheckpointError(TritiumError):
    """A checkpoint cannot be read or does not describe a model tritium can run."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path, or a file it refers to, does not exist."""


class CorruptCheckpointError(CheckpointError):
    """A weight file is truncated or not in the format its name says."""


class CheckpointDtypeError(CheckpointError):
    """A tensor has a dtype its role does not allow (e.g. int32 where latent floats belong)."""


class CheckpointShapeError(CheckpointError):
    """A tensor's shape disagrees with config.json (or with the other tensors)."""


class UnknownArchitectureError(CheckpointError):
    """config.json or the tensor names name a model tritium does not implement."""


class UnsupportedConfigError(UnknownArchitectureError):
    """config.json asks for a variant of a known architecture that tritium does not run
    (and the released model code cannot run either); the message names the field."""


class CheckpointConfigError(CheckpointError, ValueError):
    """A config.json field has the wrong JSON type or a value out of range."""



# --- the model description -----------------------------------------------------------------

@dataclasses.dataclass
class BitLinear:
    """One ternary projection ``y = (x_q @ W_q.T) / (s_x * scale)``.

    ``codes`` is uint8 [out_features, in_features] in the tritium code (weight + 1);
    ``scale`` is ``s_w`` (``W ~= decode(codes) / scale``); ``norm_weight`` is the RMSNorm
    gain applied to this projection's input (its own norm in HGRN-bit, the preceding
    block norm in BitNet), float32 [in_features], or None.
    """

    name: str
    out_features: int
    in_features: int
    codes: np.ndarray
    scale: float
    norm_weight: np.ndarray | None = None
    norm_key: str | None = None

    @property
    def weights(self) -> np.ndarray:
        """The ternary weights as int8 {-1, 0, +1}."""
        from tritium.golden.ternary import decode
        return decode(self.codes)

    @property
    def sparsity(self) -> float:
        """Fraction of zero weights."""
        from tritium.golden.ternary import CODE_ZERO
        return float((self.codes == CODE_ZERO).sum()) / max(1, self.codes.size)

    @property
    def parameters(self) -> int:
        return self.out_features * self.in_features


@dataclasses.dataclass
class Layer:
    """One block: its BitLinears and its non-ternary tensors, keyed by name within the block
    (e.g. ``"attn.i_proj"``, ``"attn_norm.weight"``)."""

    index: int
    linears: dict[str, BitLinear]
    tensors: dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """Architecture, config.json (or the config inferred from the tensors) and sizes."""

    arch: str
    config: dict[str, Any]
    hidden_size: int
    num_layers: int
    vocab_size: int
    intermediate_size: int
    rms_norm_eps: float


@dataclasses.dataclass(frozen=True)
class ModelDescription(ModelSize):
    """A loaded checkpoint, independent of the file layout it came from.

    ``tensors`` holds the model-level non-ternary tensors under their checkpoint keys
    (embeddings, final norm, lower bounds, an untied non-ternary lm_head).  ``lm_head`` is
    the ternary output projection where the architecture has one (HGRN-bit), else None.
    """

    source: Path = Path()
    layers: list[Layer] = dataclasses.field(default_factory=list)
    tensors: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    lm_head: BitLinear | None = None

    def bitlinears(self) -> Iterator[BitLinear]:
        """Every BitLinear, in layer order, then the lm_head."""
        for layer in self.layers:
            yield from layer.linears.values()
        if self.lm_head is not None:
            yield self.lm_head

    @property
    def parameter_count(self) -> int:
        """Logical parameters: ternary weights count one each, scales are not counted."""
        count = sum(lin.parameters for lin in self.bitlinears())
        count += sum(t.size for t in self.tensors.values())
        count += sum(t.size for layer in self.layers for t in layer.tensors.values())
        count += sum(lin.norm_weight.size for lin in self._owned_norms())
        return count

    def _owned_norms(self) -> Iterator[BitLinear]:
        # HGRN-bit BitLinears own their norm; BitNet's point at block norms already counted.
        if self.arch == ARCH_HGRN:
            yield from (lin for lin in self.bitlinears() if lin.norm_weight is not None)


# --- what each architecture stores -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Expected:
    """One tensor an architecture stores.

    ``role``: "latent" (float ternary weight), "packed" (uint8 HF BitNet weight),
    "ternary" (a pre-quantised weight stored unpacked as floats in {-1, 0, +1}),
    "scale" (a pre-quantised weight's weight_scale), "float" (any other float tensor) or
    "tied" (the lm_head of a tied model: the embeddings replace it, so it must equal
    them).  ``logical`` is the [out, in] shape of a ternary weight.  ``optional`` tensors
    may be absent.
    """

    key: str
    shape: tuple[int, ...]
    role: str
    logical: tuple[int, ...] = ()
    optional: bool = False


@dataclasses.dataclass(frozen=True)
class LinearSpec:
    layer: int | None      # None: model level (lm_head)
    name: str              # name within the block, e.g. "attn.i_proj"
    module: str            # full module key, e.g. "model.layers.0.attn.i_proj"
    norm_key: str | None   # key of the RMSNorm weight applied to its input
    out_features: int
    in_features: int


@dataclasses.dataclass(frozen=True)
class Spec(ModelSize):
    """Everything an architecture + config says the checkpoint must contain."""

    tensors: tuple[Expected, ...] = ()
    linears: tuple[LinearSpec, ...] = ()
    # weight_scale holds s_w itself (linear_class "bitlinear" divides by it) rather than
    # 1/s_w (linear_class "autobitlinear" multiplies by it, the released layout)
    scale_divides: bool = False
    # True when there was no config.json and the sizes were read off the tensors
    inferred: bool = False

    def by_key(self) -> dict[str, Expected]:
        return {e.key: e for e in self.tensors}

    def device_bytes(self, fmt: str) -> int:
        """Device footprint: packed ternary rows, one scale per BitLinear, 16-bit others."""
        from tritium.golden.ternary import packed_length
        total = 0
        for e in self.tensors:
            if e.role in _TERNARY_ROLES:
                out, inp = e.logical
                total += out * packed_length(inp, fmt) + DEVICE_BYTES_PER_SCALE
            elif e.role == "float":
                total += math.prod(e.shape) * DEVICE_BYTES_PER_PARAM
        return total


def hgrn_intermediate_size(hidden_size: int, hidden_ratio: float = 4) -> int:
    """MLP width of HGRN-bit when config.json leaves intermediate_size null:
    int(H * hidden_ratio * 2/3) rounded up to a multiple of 256 (1024 -> 2816)."""
    width = int(hidden_size * hidden_ratio * 2 / 3)
    return 256 * ((width + 255) // 256)


def _cfg_int(cfg: dict, name: str, default: int | None = None) -> int:
    value = cfg.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CheckpointShapeError(
            f"config.json field {name!r} must be a positive integer, got {value!r}; "
            "fix config.json")
    return value


def _linear(tensors: list, linears: list, layer, name, module, norm_key, out, inp,
            role: str, owns_norm: bool) -> None:
    shape = (out // HF_BITNET_PER_BYTE, inp) if role == "packed" else (out, inp)
    tensors.append(Expected(f"{module}.weight", shape, role, (out, inp)))
    if role != "latent":
        tensors.append(Expected(f"{module}.weight_scale", (1,), "scale"))
    if owns_norm:
        tensors.append(Expected(norm_key, (inp,), "float"))
    linears.append(LinearSpec(layer, name, module, norm_key, out, inp))


def hgrn_spec(cfg: dict) -> Spec:
    """Tensors of HGRNBitForCausalLM (ridger/MMfreeLM-*) for this config.json.

    ``num_heads`` only has to divide ``hidden_size`` (as the released model code asserts):
    the recurrence is element-wise and ``g_norm`` normalises the whole width with one
    weight of shape [hidden_size], so heads have no numerical effect and no tensor depends
    on them.  ``use_short_conv=true`` and ``expand_ratio != 1`` raise
    :class:`UnsupportedConfigError` naming the field: the released code cannot run either
    (an argument mismatch in the short convolution; lower bounds of width hidden_size
    against gates of width hidden_size * expand_ratio) and no released checkpoint uses them.
    """
    if cfg.get("use_short_conv"):
        raise UnsupportedConfigError(
            "config.json field use_short_conv=true: tritium does not implement HGRN-bit's "
            "short convolutions, and the released model code cannot run them either (the "
            "released MMfreeLM checkpoints do not use them); use a checkpoint without them")
    h, n_layers = _cfg_int(cfg, "hidden_size"), _cfg_int(cfg, "num_hidden_layers")
    vocab = _cfg_int(cfg, "vocab_size")
    expand = cfg.get("expand_ratio")
    if expand is not None and expand != 1:
        raise UnsupportedConfigError(
            f"config.json field expand_ratio={expand!r}: tritium runs HGRN-bit with "
            "expand_ratio 1 only (the released model code cannot run other values with "
            "lower bounds, and the released MMfreeLM checkpoints use 1)")
    heads = _cfg_int(cfg, "num_heads", 1)
    if h % heads:
        raise CheckpointShapeError(f"config.json field num_heads={heads} does not divide "
                                   f"hidden_size={h}; fix config.json")
    d = h
    inter = cfg.get("intermediate_size") or hgrn_intermediate_size(
        h, cfg.get("hidden_ratio") or 4)
    tensors: list[Expected] = [Expected("model.embeddings.weight", (vocab, h), "float")]
    linears: list[LinearSpec] = []
    if cfg.get("use_lower_bound", True):
        tensors.append(Expected("model.lower_bounds", (n_layers, h), "float"))
    for l in range(n_layers):
        p = f"model.layers.{l}."
        tensors.append(Expected(p + "attn_norm.weight", (h,), "float"))
        for proj in ("i_proj", "f_proj", "g_proj"):
            _linear(tensors, linears, l, f"attn.{proj}", p + f"attn.{proj}",
                    p + f"attn.{proj}.norm.weight", d, h, "latent", True)
        tensors.append(Expected(p + "attn.g_norm.weight", (d,), "float"))
        _linear(tensors, linears, l, "attn.o_proj", p + "attn.o_proj",
                p + "attn.o_proj.norm.weight", h, d, "latent", True)
        tensors.append(Expected(p + "mlp_norm.weight", (h,), "float"))
        _linear(tensors, linears, l, "mlp.gate_proj", p + "mlp.gate_proj",
                p + "mlp.gate_proj.norm.weight", 2 * inter, h, "latent", True)
        _linear(tensors, linears, l, "mlp.down_proj", p + "mlp.down_proj",
                p + "mlp.down_proj.norm.weight", h, inter, "latent", True)
    tensors.append(Expected("model.norm.weight", (h,), "float"))
    if cfg.get("tie_word_embeddings"):
        raise UnsupportedConfigError(
            "config.json field tie_word_embeddings=true: HGRN-bit's lm_head is a BitLinear "
            "of its own, so tritium runs it untied only (the released MMfreeLM checkpoints "
            "are untied)")
    _linear(tensors, linears, None, "lm_head", "lm_head", "lm_head.norm.weight",
            vocab, h, "latent", True)
    return Spec(ARCH_HGRN, cfg, h, n_layers, vocab, inter,
                float(cfg.get("rms_norm_eps", 1e-6)), tuple(tensors), tuple(linears))


# 1bitLLM's checkpoints and Microsoft's name the two sub-norms differently
_BITNET_SUBNORMS = {"attn_sub_norm": "ffn_sub_norm", "inner_attn_ln": "ffn_layernorm"}


def bitnet_spec(cfg: dict, packed: bool, attn_subnorm: str = "attn_sub_norm",
                unpacked: bool = False) -> Spec:
    """Tensors of BitNet b1.58 (BitNetForCausalLM / BitnetForCausalLM) for this config.json.

    BitLinears: q/k/v (input: input_layernorm), o (input: the attention sub-norm),
    gate/up (input: post_attention_layernorm), down (input: the MLP sub-norm).
    ``packed``: pre-quantised ("offline") weights with a weight_scale each, stored as
    uint8 with 4 codes per byte, or with ``unpacked`` as floats [out, in] in {-1, 0, +1}
    (the other layout transformers' offline AutoBitLinear loads).  A tied config
    (tie_word_embeddings) may still store ``lm_head.weight``: the tie makes the embeddings
    the output matrix, so it must equal them (else CorruptCheckpointError).
    """
    h, n_layers = _cfg_int(cfg, "hidden_size"), _cfg_int(cfg, "num_hidden_layers")
    vocab, inter = _cfg_int(cfg, "vocab_size"), _cfg_int(cfg, "intermediate_size")
    heads = _cfg_int(cfg, "num_attention_heads", 1)
    kv_heads = _cfg_int(cfg, "num_key_value_heads", heads)
    if h % heads:
        raise CheckpointShapeError(f"config.json: hidden_size={h} is not a multiple of "
                                   f"num_attention_heads={heads}; fix config.json")
    if heads % kv_heads:
        raise CheckpointShapeError(
            f"config.json field num_key_value_heads={kv_heads} does not divide "
            f"num_attention_heads={heads} (grouped-query attention needs it to); fix config.json")
    kv = h // heads * kv_heads
    qc = cfg.get("quantization_config") or {}
    scale_divides = qc.get("linear_class") == "bitlinear"
    if unpacked and scale_divides:
        raise CheckpointDtypeError(
            "quantization_config linear_class \"bitlinear\" holds packed uint8 weights, but "
            "this checkpoint stores them unpacked as floats; repack them or use linear_class "
            "\"autobitlinear\"")
    role = "latent" if not packed else "ternary" if unpacked else "packed"
    if role == "packed" and any(n % HF_BITNET_PER_BYTE for n in (h, kv, inter)):
        raise CheckpointShapeError(
            "pre-packed BitNet needs every out_features to be a multiple of 4 "
            f"(hidden {h}, kv {kv}, intermediate {inter}); fix config.json")
    ffn_subnorm = _BITNET_SUBNORMS[attn_subnorm]
    tensors: list[Expected] = [Expected("model.embed_tokens.weight", (vocab, h), "float")]
    linears: list[LinearSpec] = []
    for l in range(n_layers):
        p = f"model.layers.{l}."
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors.append(Expected(p + f"{norm}.weight", (h,), "float"))
        tensors.append(Expected(p + f"self_attn.{attn_subnorm}.weight", (h,), "float"))
        tensors.append(Expected(p + f"mlp.{ffn_subnorm}.weight", (inter,), "float"))
        for name, out, inp, norm in (
                ("self_attn.q_proj", h, h, "input_layernorm"),
                ("self_attn.k_proj", kv, h, "input_layernorm"),
                ("self_attn.v_proj", kv, h, "input_layernorm"),
                ("self_attn.o_proj", h, h, f"self_attn.{attn_subnorm}"),
                ("mlp.gate_proj", inter, h, "post_attention_layernorm"),
                ("mlp.up_proj", inter, h, "post_attention_layernorm"),
                ("mlp.down_proj", h, inter, f"mlp.{ffn_subnorm}")):
            _linear(tensors, linears, l, name, p + name, p + f"{norm}.weight", out, inp,
                    role, False)
    tensors.append(Expected("model.norm.weight", (h,), "float"))
    # BitNet keeps its lm_head in full precision
    tied = bool(cfg.get("tie_word_embeddings", False))
    tensors.append(Expected("lm_head.weight", (vocab, h), "tied" if tied else "float",
                            optional=tied))
    return Spec(ARCH_BITNET_PACKED if packed else ARCH_BITNET, cfg, h, n_layers, vocab, inter,
                float(cfg.get("rms_norm_eps", 1e-5)), tuple(tensors), tuple(linears),
                scale_divides=scale_divides)


# --- config.json ------------------------------------------------------------------------------

#: JSON files (config.json, shard indexes) larger than this are refused unread; the index
#: of a 100-shard model is about 100 KB
MAX_JSON_BYTES = 16 << 20
#: deepest nesting accepted in those files (config.json nests three levels)
MAX_JSON_DEPTH = 32
#: bounds on the sizes a config.json may state, far above any released model; they keep
#: a typo (or a hostile file) from making the tensor list itself exhaust memory
MAX_LAYERS = 1024
MAX_DIM = 1 << 20
MAX_VOCAB = 1 << 24
MAX_RATIO = 64

# config.json fields tritium reads -> (JSON kind, highest value for numbers); numbers must
# be positive, null stands for "absent" (the architecture's default applies)
_CONFIG_FIELDS: dict[str, tuple[str, float | None]] = {
    "architectures": ("strings", None), "model_type": ("str", None),
    "hidden_size": ("int", MAX_DIM), "intermediate_size": ("int", MAX_DIM),
    "vocab_size": ("int", MAX_VOCAB), "num_hidden_layers": ("int", MAX_LAYERS),
    "num_heads": ("int", MAX_DIM), "num_attention_heads": ("int", MAX_DIM),
    "num_key_value_heads": ("int", MAX_DIM), "expand_ratio": ("number", MAX_RATIO),
    "hidden_ratio": ("number", MAX_RATIO), "rms_norm_eps": ("number", 1.0),
    "use_short_conv": ("bool", None), "use_lower_bound": ("bool", None),
    "tie_word_embeddings": ("bool", None), "quantization_config": ("object", None),
}
_QUANT_FIELDS = {"linear_class": ("str", None), "quantization_mode": ("str", None)}
_KIND_WORDS = {"int": "a positive integer", "number": "a positive number",
               "bool": "true or false", "str": "a string", "object": "a JSON object",
               "strings": "a list of strings"}


def _json_depth(data: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    depth, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else \
            node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, level + 1))
        if isinstance(node, (dict, list)):
            depth = max(depth, level)
    return depth


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; size and nesting are bounded before anything uses it."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise CorruptCheckpointError(
                f"{path} is {size:,} bytes, more than the {MAX_JSON_BYTES:,} a config or "
                "shard index can need; it is not a JSON file: fix the file or re-download it")
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{path} does not exist") from None
    except RecursionError:
        raise CorruptCheckpointError(
            f"{path} nests deeper than any config (more than {MAX_JSON_DEPTH} levels); "
            "fix the file or re-download it") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise CorruptCheckpointError(
            f"{path} is not valid JSON ({one_line(e)}); fix the file or re-download it") from None
    except OSError as e:
        raise CorruptCheckpointError(
            f"cannot read {path} ({e.strerror or type(e).__name__}); check that it is a "
            "readable file") from None
    if not isinstance(data, dict):
        raise CorruptCheckpointError(
            f"{path} must hold a JSON object; fix the file or re-download it")
    if _json_depth(data) > MAX_JSON_DEPTH:
        raise CorruptCheckpointError(
            f"{path} nests deeper than any config (more than {MAX_JSON_DEPTH} levels); "
            "fix the file or re-download it")
    return data


def one_line(e: BaseException, limit: int = 160) -> str:
    """An exception's message as one bounded line, for embedding in ours."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _config_field(cfg: dict, name: str, kind: str, hi: float | None = None,
                  where: str = "config.json", label: str | None = None) -> None:
    """Raise CheckpointConfigError unless ``cfg[name]`` is absent, null or a value of
    ``kind`` (see ``_KIND_WORDS``); numbers must lie in (0, hi].  ``where`` names the
    file, ``label`` the field in the message (default ``name``)."""
    value = cfg.get(name)
    if value is None:
        return
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = {"int": is_int,
          "number": is_int or isinstance(value, float),
          "bool": isinstance(value, bool),
          "str": isinstance(value, str),
          "object": isinstance(value, dict),
          "strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
          }[kind]
    if ok and kind in ("int", "number"):
        ok = 0 < value <= hi  # also False for NaN
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:39] + "\u2026"
        limit = "" if hi is None else \
            f" no larger than {int(hi):,}" if float(hi).is_integer() else f" no larger than {hi}"
        raise CheckpointConfigError(
            f"{where} field {label or name!r} must be {_KIND_WORDS[kind]}{limit}, got {shown}; "
            f"fix {where}")


def _check_config(cfg: dict, path: Path) -> dict:
    """Type- and range-check every config.json field tritium reads (before any is used).

    Returns the config without those fields that are null, so that every reader applies
    the architecture's default for them, as for an absent field."""
    for name, (kind, hi) in _CONFIG_FIELDS.items():
        _config_field(cfg, name, kind, hi, path.name)
    for name, (kind, hi) in _QUANT_FIELDS.items():
        _config_field(cfg.get("quantization_config") or {}, name, kind, hi, path.name,
                      f"quantization_config.{name}")
    return {k: v for k, v in cfg.items() if v is not None or k not in _CONFIG_FIELDS}


def read_config(path: str | os.PathLike) -> dict:
    """A checkpoint's config.json, bounded and field-checked as :func:`load_checkpoint`
    reads it (CheckpointError subclasses otherwise)."""
    path = Path(path)
    return _check_config(read_json(path), path)


# --- the released models ---------------------------------------------------------------------

#: config.json fields of the released checkpoints (ridger/MMfreeLM-370M, -1.3B, -2.7B:
#: intermediate 256·ceil((8H/3)/256); microsoft/bitnet-b1.58-2B-4T), by preset name
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "mmfreelm-370m": {"model_type": "hgrn_bit", "hidden_size": 1024, "num_hidden_layers": 24,
                      "vocab_size": 32000, "intermediate_size": 2816},
    "mmfreelm-1.3b": {"model_type": "hgrn_bit", "hidden_size": 2048, "num_hidden_layers": 24,
                      "vocab_size": 32000, "intermediate_size": 5632},
    "mmfreelm-2.7b": {"model_type": "hgrn_bit", "hidden_size": 2560, "num_hidden_layers": 32,
                      "vocab_size": 32000, "intermediate_size": 6912},
    "bitnet-b1.58-2b": {"model_type": "bitnet", "hidden_size": 2560, "num_hidden_layers": 30,
                        "num_attention_heads": 20, "num_key_value_heads": 5,
                        "intermediate_size": 6912, "vocab_size": 128256,
                        "tie_word_embeddings": True},
}
