"""Ternary weight and int8 activation quantisation, exactly as the reference BitLinear.

The reference (the pure-PyTorch BitLinear of the MatMul-free LM, and Hugging Face's
BitNet ``WeightQuant``/``ActQuant``) computes, in float32:

* weights, per tensor: ``s_w = 1 / max(mean|W|, 1e-5)``, ``W_q = clamp(round(W*s_w), -1, 1)``;
* activations, per token: ``s_x = 127 / max(max|x|, 1e-5)``,
  ``x_q = clamp(round(x*s_x), -128, 127)``;
* so ``y = (x_q @ W_q.T) / (s_x * s_w)``: one exact integer ternary matvec and one rescale.

Every product is taken in float32 so that the codes here are bit-identical to what the
reference feeds its matmul.  ``round`` of the weights is round-half-to-even (torch's) in
both architectures.  The activations round per architecture: BitNet's ``ActQuant`` uses
torch's round (half to even); the released HGRN-bit model quantises its activations
inside the fused norm-and-quantise Triton kernel, whose round takes halves away from zero
(:data:`HGRN_ACT_ROUNDING`).  Weight codes follow :mod:`tritium.golden.ternary`
(``code = weight + 1``).
"""

from __future__ import annotations

import numpy as np
import torch

from tritium.golden.shapes import HF_BITNET_PER_BYTE
from tritium.golden.ternary import CODE_ZERO, encode

#: floor of mean|W| before taking its reciprocal (reference value)
WEIGHT_MEAN_FLOOR = 1e-5
#: floor of max|x| per token before taking its reciprocal (reference value)
ACT_MAX_FLOOR = 1e-5
#: int8 activation range
ACT_QMIN, ACT_QMAX = -128, 127
#: epsilon of the RMSNorm every HGRN-bit BitLinear applies to its input.  The released model
#: runs ``FusedBitLinear``, whose fused norm-and-quantise kernel is called without an eps
#: and so uses its own default of 1e-6; the 1e-8 of the RMSNorm module is used only by the
#: non-fused ``BitLinear``, which the model never instantiates.
BITLINEAR_NORM_EPS = 1e-6
#: rounding modes of :func:`round_half`
ROUND_HALF_EVEN, ROUND_HALF_AWAY = "half-even", "half-away"
#: how the released HGRN-bit model rounds activations (its Triton kernel's round)
HGRN_ACT_ROUNDING = ROUND_HALF_AWAY
#: how BitNet (transformers' ActQuant, torch.round) rounds activations
BITNET_ACT_ROUNDING = ROUND_HALF_EVEN


def weight_scale(w: torch.Tensor) -> torch.Tensor:
    """``s_w = 1 / max(mean|W|, 1e-5)`` as a float32 scalar tensor (W taken as float32)."""
    return 1.0 / w.float().abs().mean().clamp(min=WEIGHT_MEAN_FLOOR)


def quantize_weights(w: torch.Tensor) -> tuple[np.ndarray, float]:
    """Latent weights [out, in] -> (uint8 codes [out, in], s_w).

    Equal to ``encode(clamp(round(W*s_w), -1, 1))``: with round-half-to-even, a product
    t rounds to +1 or more exactly when t > 0.5 and to -1 or less exactly when t < -0.5,
    so two comparisons replace round, clamp and the range check.  ``W ~= decode(codes) / s_w``.
    """
    s = weight_scale(w)
    t = w.float() * s
    codes = (t > 0.5).to(torch.uint8)
    codes.add_(CODE_ZERO).sub_((t < -0.5).to(torch.uint8))
    return codes.numpy(), float(s)


def dequantize_weights_as(w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``clamp(round(W*s_w), -1, 1) / s_w`` with every step in ``dtype``, as the reference
    computes it when the model runs in that precision (float32: the same as decoding
    :func:`quantize_weights`' codes and dividing by its scale)."""
    w = w.to(dtype)
    s = 1.0 / w.abs().mean().clamp(min=WEIGHT_MEAN_FLOOR)
    return (w * s).round().clamp(-1, 1) / s


def quantize_weights_simple(w: torch.Tensor) -> tuple[np.ndarray, float]:
    """Baseline for :func:`quantize_weights` (same contract): the reference formula verbatim."""
    s = weight_scale(w)
    q = (w.float() * s).round().clamp(-1, 1)
    return encode(q.to(torch.int8).numpy()), float(s)


def round_half(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Round to the nearest integer, halves to even (:data:`ROUND_HALF_EVEN`) or away from
    zero (:data:`ROUND_HALF_AWAY`); any other mode raises ValueError."""
    if mode == ROUND_HALF_EVEN:
        return x.round()
    if mode != ROUND_HALF_AWAY:
        raise ValueError(f"rounding mode {mode!r} is not one of "
                         f"{ROUND_HALF_EVEN!r}, {ROUND_HALF_AWAY!r}")
    whole = x.trunc()
    # x - trunc(x) is exact in binary floating point, so a tie is detected exactly
    return torch.where((x - whole).abs() == 0.5, whole + x.sign(), x.round())


def quantize_activations(x: torch.Tensor, rounding: str = ROUND_HALF_EVEN
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token absmax int8: x [..., n] -> (x_q int8 [..., n], s_x float32 [..., 1]),
    halves rounded as ``rounding`` says (see :func:`round_half`)."""
    x = x.float()
    s = ACT_QMAX / x.abs().amax(dim=-1, keepdim=True).clamp(min=ACT_MAX_FLOOR)
    q = round_half(x * s, rounding).clamp(ACT_QMIN, ACT_QMAX)
    return q.to(torch.int8), s


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float,
             kernel: bool = False) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last axis, in float32.

    ``kernel=False`` multiplies by ``rsqrt(mean + eps)`` (transformers' BitNetRMSNorm);
    ``kernel=True`` by ``1 / sqrt(mean + eps)``, the form of the released HGRN-bit's Triton
    norm kernels.  They differ by an ulp at times, which the ternary rounding downstream
    can turn into visibly different logits, so each model uses its own form.
    """
    x = x.float()
    ms = x.pow(2).mean(dim=-1, keepdim=True) + eps
    y = x * (1.0 / torch.sqrt(ms) if kernel else torch.rsqrt(ms))
    return y if weight is None else y * weight


def unpack_hf_bitnet(packed) -> np.ndarray:
    """Hugging Face pre-packed BitNet weight uint8 [out/4, in] -> codes uint8 [out, in].

    Layout of ``transformers.integrations.bitnet``: bits 2i..2i+1 of packed row r hold
    unpacked row ``r + i*out/4`` as ``value + 1``, which is already our code.  The value 3
    (bits 0b11) is not a ternary code; a caller should reject it (see ``decode``).
    """
    p = packed.numpy() if isinstance(packed, torch.Tensor) else np.asarray(packed)
    p = p.astype(np.uint8, copy=False)
    return np.concatenate([(p >> (2 * i)) & 0b11 for i in range(HF_BITNET_PER_BYTE)], axis=0)


def pack_hf_bitnet(codes) -> np.ndarray:
    """Inverse of :func:`unpack_hf_bitnet`; ``out`` must be a multiple of 4."""
    c = np.asarray(codes, dtype=np.uint8)
    rows = c.shape[0]
    if rows % HF_BITNET_PER_BYTE:
        raise ValueError(f"out_features={rows} is not a multiple of {HF_BITNET_PER_BYTE}; "
                         "the Hugging Face BitNet layout cannot hold it")
    q = rows // HF_BITNET_PER_BYTE
    packed = np.zeros((q,) + c.shape[1:], np.uint8)
    for i in range(HF_BITNET_PER_BYTE):
        packed |= c[i * q:(i + 1) * q] << (2 * i)
    return packed
