"""Ternary weights: the 2-bit code, and bit-exact models of the ternary datapaths.

Weight code (2 bits per weight), shared by the hardware and the host packers:

====  ======  ==================================================================
code  weight  note
====  ======  ==================================================================
0b00    -1
0b01     0
0b10    +1
0b11     --   invalid: the hardware takes it as 0 and raises a sticky error flag
====  ======  ==================================================================

i.e. ``code = weight + 1``, the convention of Hugging Face's pre-packed BitNet b1.58
checkpoints (value+1 in {0, 1, 2}), so their packed bytes reach the device unchanged.
"""

from __future__ import annotations

import numpy as np

from tritium.config import TernaryDotConfig
from tritium.errors import ShapeError

CODE_NEG, CODE_ZERO, CODE_POS, CODE_INVALID = 0b00, 0b01, 0b10, 0b11


def encode(weights) -> np.ndarray:
    """{-1, 0, +1} weights -> uint8 2-bit codes. Raises ValueError on any other value."""
    w = np.asarray(weights)
    if w.size and (w.min() < -1 or w.max() > 1 or not np.array_equal(w, np.round(w))):
        raise ValueError("ternary weights must be -1, 0 or +1")
    return (w.astype(np.int8) + 1).astype(np.uint8)


def decode(codes) -> np.ndarray:
    """2-bit codes -> int8 weights; the invalid code decodes to 0, like the hardware."""
    c = np.asarray(codes).astype(np.uint8)
    return np.where(c == CODE_INVALID, 0, c.astype(np.int8) - 1).astype(np.int8)


def ternary_dot(cfg: TernaryDotConfig, codes, x) -> tuple[int, bool]:
    """Golden twin of :class:`tritium.hdl.ternary.TernaryDot`.

    Returns ``(sum, invalid_code_seen)``. The sum is exact (Python int), which the
    hardware matches because its accumulator width covers every reachable sum.
    Raises ShapeError if the length exceeds ``cfg.max_length`` or the activations are
    outside the signed ``cfg.act_bits`` range (the hardware could not represent them).
    """
    c = np.asarray(codes, dtype=np.uint8).ravel()
    xs = np.asarray(x, dtype=np.int64).ravel()
    if c.shape != xs.shape:
        raise ShapeError(f"{c.size} weight codes but {xs.size} activations; they must match")
    if c.size == 0 or c.size > cfg.max_length:
        raise ShapeError(
            f"dot length {c.size} is outside [1, {cfg.max_length}] (max_length of this build)")
    if xs.min() < cfg.act_min or xs.max() > cfg.act_max:
        raise ShapeError(f"activations must lie in [{cfg.act_min}, {cfg.act_max}]")
    return int(np.dot(decode(c).astype(np.int64), xs)), bool((c == CODE_INVALID).any())


def to_beats(cfg: TernaryDotConfig, codes, x) -> list[tuple[list[int], list[int], bool]]:
    """Split one dot product into per-beat (codes, activations, last) lane vectors.

    Lanes past the end of the vector are padded with the zero-weight code, so padding
    can never change the sum.
    """
    c = np.asarray(codes, dtype=np.uint8).ravel()
    xs = np.asarray(x, dtype=np.int64).ravel()
    n = cfg.lanes
    pad = (-c.size) % n
    c = np.concatenate([c, np.full(pad, CODE_ZERO, np.uint8)])
    xs = np.concatenate([xs, np.zeros(pad, np.int64)])
    beats = len(c) // n
    return [(c[b * n:(b + 1) * n].tolist(), xs[b * n:(b + 1) * n].tolist(), b == beats - 1)
            for b in range(beats)]
