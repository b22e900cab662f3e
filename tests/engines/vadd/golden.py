"""The vector-add engine's bit-exact model."""

from __future__ import annotations

import numpy as np

from tritium.errors import ShapeError

from .config import OPERAND_BITS


def vadd(cfg, a, b) -> np.ndarray:
    """``a + b`` as int64, after the checks the device's driver makes: equal lengths
    1..``cfg.depth``, int16 values. ShapeError naming the limit otherwise."""
    a, b = np.asarray(a), np.asarray(b)
    lo, hi = -(1 << (OPERAND_BITS - 1)), (1 << (OPERAND_BITS - 1)) - 1
    if a.ndim != 1 or a.shape != b.shape or not 1 <= a.size <= cfg.depth:
        raise ShapeError(f"vadd takes two vectors of equal length 1..{cfg.depth} (the "
                         f"engine's depth), got shapes {a.shape} and {b.shape}")
    for name, v in (("a", a), ("b", b)):
        if v.dtype.kind not in "iu" or v.min() < lo or v.max() > hi:
            raise ShapeError(f"vadd: {name} must hold integers in [{lo}, {hi}] (int16)")
    return a.astype(np.int64) + b.astype(np.int64)
