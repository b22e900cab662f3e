"""Pure-PyTorch reference of BitNet b1.58 (transformers' BitNetForCausalLM), float and integer paths.

No transformers: the model runs token by token on the CPU in float32 from a
:class:`~tritium.golden.checkpoint.ModelDescription` (latent, pre-packed or unpacked
pre-quantised weights), keeping a key/value cache per layer exactly as cached generation
does.  Forward pass, every norm ``RMSNorm(x) = x * rsqrt(mean(x^2) + eps) * w`` with
``eps = config.rms_norm_eps`` (input_layernorm, attn_sub_norm, post_attention_layernorm,
ffn_sub_norm and the final norm alike)::

    x = embed_tokens[token]
    for each layer:
        a = RMSNorm(x)
        q, k, v = q_proj(a), k_proj(a), v_proj(a)       # heads, kv_heads (grouped query)
        q, k = rope(q, pos), rope(k, pos);  cache k, v
        o = softmax(q k^T / sqrt(head_dim)) v            # query head j reads kv head j // (heads / kv_heads)
        x = x + o_proj(attn_sub_norm(o))
        m = RMSNorm(x)
        x = x + down_proj(ffn_sub_norm(relu(gate_proj(m))^2 * up_proj(m)))
    logits = RMSNorm(x) @ lm_head.T                      # full precision; tied: embed_tokens

    rope(x, p) = x * cos(p * f) + rotate_half(x) * sin(p * f),
    f = theta^(-2i / head_dim) for i < head_dim / 2, repeated twice; rotate_half(x) = [-x2, x1]

Each ternary projection quantises its input as it comes (per-token absmax int8, halves to
even as torch.round) and has no norm of its own; the float path computes as the layout's
transformers module does (see :class:`~tritium.golden.lm.TernaryProjection`), the integer
path as the TMV engine does: exact int8 x ternary accumulation, one rescale by
``1 / (s_x * s_w)``.  Softmax, RoPE and the lm_head are float32 in both paths.
"""

from __future__ import annotations

import os

import torch

from tritium.golden.lm import CausalLM, IntegerPathReport, TernaryProjection
from tritium.golden.checkpoint import (ARCH_BITNET, ARCH_BITNET_PACKED, INFERRED_CONFIG_FIELD,
                                     ModelDescription, UnknownArchitectureError,
                                     UnsupportedConfigError, load_checkpoint)
from tritium.golden.quantize import BITNET_ACT_ROUNDING, rms_norm

__all__ = ["BitNetForCausalLM", "IntegerPathReport"]

#: transformers' BitNetConfig defaults for fields a config.json may leave out
DEFAULT_ROPE_THETA = 500000.0
DEFAULT_HIDDEN_ACT = "relu2"


def _float_form(config: dict) -> str:
    qc = config.get("quantization_config") or {}
    if qc.get("quantization_mode") != "offline":
        return "dequant"
    return "integer" if qc.get("linear_class") == "bitlinear" else "scale_after"


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class BitNetForCausalLM(CausalLM):
    """BitNet b1.58 causal LM from a model description (see the module docstring).

    The state of :meth:`step` is ``(position, [(keys, values) per layer])`` with keys and
    values [B, kv_heads, t, head_dim] after RoPE.  Config fields the model does not
    implement raise :class:`UnsupportedConfigError` naming the field: ``hidden_act`` other
    than relu2, ``attention_bias``, ``rope_scaling``, a ``head_dim`` other than
    hidden_size / num_attention_heads.
    """

    def __init__(self, desc: ModelDescription):
        if desc.arch not in (ARCH_BITNET, ARCH_BITNET_PACKED):
            raise UnknownArchitectureError(
                f"{desc.source} is a {desc.arch} checkpoint; BitNetForCausalLM needs a "
                "BitNet b1.58 checkpoint")
        cfg = desc.config
        if cfg.get(INFERRED_CONFIG_FIELD):
            raise UnsupportedConfigError(
                f"{desc.source} has no config.json, and the tensor shapes do not say "
                "num_attention_heads / num_key_value_heads (only their ratio); pass the model "
                "directory with its config.json")
        self.desc = desc
        self.eps = desc.rms_norm_eps
        self.vocab_size = desc.vocab_size
        self.heads = int(cfg.get("num_attention_heads") or 1)
        self.kv_heads = int(cfg.get("num_key_value_heads") or self.heads)
        self.head_dim = desc.hidden_size // self.heads
        self._check_config(cfg)
        self.theta = float(cfg.get("rope_theta") or DEFAULT_ROPE_THETA)
        t = {k: torch.from_numpy(v) for k, v in desc.tensors.items()}
        self.embeddings = t["model.embed_tokens.weight"]
        self.final_norm = t["model.norm.weight"]
        # tied (or a tied file that still stores lm_head.weight): the embeddings
        self.lm_head = t.get("lm_head.weight", self.embeddings)
        form = _float_form(cfg)
        self.layers = []
        for layer in desc.layers:
            proj = {name: TernaryProjection(lin, BITNET_ACT_ROUNDING, form)
                    for name, lin in layer.linears.items()}
            norms = {k: torch.from_numpy(v) for k, v in layer.tensors.items()}
            sub = {"attn": layer.linears["self_attn.o_proj"].norm_key,
                   "ffn": layer.linears["mlp.down_proj"].norm_key}
            prefix = f"model.layers.{layer.index}."
            norms["attn_sub"] = norms[sub["attn"][len(prefix):]]
            norms["ffn_sub"] = norms[sub["ffn"][len(prefix):]]
            self.layers.append((proj, norms))
        half = torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim
        self.inv_freq = 1.0 / (self.theta ** half)

    def _check_config(self, cfg: dict) -> None:
        act = cfg.get("hidden_act") or DEFAULT_HIDDEN_ACT
        if act != DEFAULT_HIDDEN_ACT:
            raise UnsupportedConfigError(f"config.json field hidden_act={act!r}: BitNet b1.58 "
                                         f"uses {DEFAULT_HIDDEN_ACT!r}, the only one tritium runs")
        if cfg.get("attention_bias"):
            raise UnsupportedConfigError(f"config.json field attention_bias="
                                         f"{cfg['attention_bias']!r}: tritium's BitNet has no "
                                         "projection biases")
        if cfg.get("rope_scaling"):
            raise UnsupportedConfigError("config.json field rope_scaling is set: tritium "
                                         "implements the default RoPE only")
        if cfg.get("head_dim") not in (None, self.head_dim):
            raise UnsupportedConfigError(
                f"config.json field head_dim={cfg['head_dim']!r}: tritium needs head_dim = "
                f"hidden_size / num_attention_heads = {self.head_dim}")

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **load_kwargs) -> "BitNetForCausalLM":
        """Load a BitNet checkpoint (directory or weight file) with :func:`load_checkpoint`."""
        return cls(load_checkpoint(path, **load_kwargs))

    def projections(self) -> list[TernaryProjection]:
        return [p for proj, _ in self.layers for p in proj.values()]

    # --- one token -----------------------------------------------------------------------

    def init_state(self, batch: int = 1):
        """Empty KV cache at position 0."""
        empty = torch.zeros(batch, self.kv_heads, 0, self.head_dim)
        return 0, [(empty, empty) for _ in self.layers]

    def _rope(self, x: torch.Tensor, position: int) -> torch.Tensor:
        freqs = self.inv_freq * float(position)
        emb = torch.cat((freqs, freqs))
        return x * emb.cos() + _rotate_half(x) * emb.sin()

    def step(self, tokens: torch.Tensor, state, integer: bool = False):
        """Advance by one token per sequence: tokens [B] -> (logits [B, V], new state)."""
        position, caches = state
        x = self.embeddings[tokens]
        b = x.shape[0]
        new_caches = []
        for (proj, norms), (keys, values) in zip(self.layers, caches):
            a = rms_norm(x, norms["input_layernorm.weight"], self.eps)
            q = proj["self_attn.q_proj"](a, integer).view(b, self.heads, 1, self.head_dim)
            k = proj["self_attn.k_proj"](a, integer).view(b, self.kv_heads, 1, self.head_dim)
            v = proj["self_attn.v_proj"](a, integer).view(b, self.kv_heads, 1, self.head_dim)
            keys = torch.cat((keys, self._rope(k, position)), dim=2)
            values = torch.cat((values, v), dim=2)
            new_caches.append((keys, values))
            group = self.heads // self.kv_heads
            k_all = keys.repeat_interleave(group, dim=1)
            v_all = values.repeat_interleave(group, dim=1)
            scores = (self._rope(q, position) @ k_all.transpose(2, 3)) * self.head_dim ** -0.5
            o = (scores.softmax(dim=-1) @ v_all).reshape(b, -1)
            x = x + proj["self_attn.o_proj"](rms_norm(o, norms["attn_sub"], self.eps), integer)
            m = rms_norm(x, norms["post_attention_layernorm.weight"], self.eps)
            h = torch.relu(proj["mlp.gate_proj"](m, integer)).square() * \
                proj["mlp.up_proj"](m, integer)
            x = x + proj["mlp.down_proj"](rms_norm(h, norms["ffn_sub"], self.eps), integer)
        logits = rms_norm(x, self.final_norm, self.eps) @ self.lm_head.t()
        return logits, (position + 1, new_caches)

