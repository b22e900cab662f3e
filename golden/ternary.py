"""Ternary weights: the 2-bit code and its packed byte formats (``t2``, ``t3``).

The engine that computes with them, and its bit-exact model, is the TMV
(:mod:`tritium.engines.tmv.golden`); checkpoint readers and the packers use this module.

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


# --- Packed weight formats ------------------------------------------------------------
#
# ``t2``: 4 codes per byte, code k of a group in bits 2k..2k+1 (first code in the least
# significant bits).  ``t3``: 5 codes per byte, byte = sum(code_k * 3**k), k = 0..4; since
# 3**5 = 243 <= 256 this is 1.6 bits per weight, and bytes 243..255 never occur.  Both pack
# along the last axis; a row whose length is not a multiple of the group is padded with
# CODE_ZERO, so a padded weight can never change a dot product.

T2_PER_BYTE = 4
T3_PER_BYTE = 5
T3_MAX_BYTE = 3 ** T3_PER_BYTE - 1  # 242


def packed_length(n: int, fmt: str) -> int:
    """Bytes that ``n`` codes occupy in format ``fmt`` ('t2' or 't3')."""
    per = {"t2": T2_PER_BYTE, "t3": T3_PER_BYTE}.get(fmt)
    if per is None:
        raise ValueError(f"unknown packing format {fmt!r}; use 't2' or 't3'")
    return -(-int(n) // per)


def _checked_codes(codes, highest: int) -> np.ndarray:
    """``codes`` as an array of at least one dimension; ValueError if outside [0, highest]."""
    c = np.atleast_1d(np.asarray(codes))
    if c.size and ((c.dtype != np.uint8 and c.min() < 0) or c.max() > highest):
        raise ValueError(f"weight codes must lie in [0, {highest}] for this format")
    return c


def _grouped_codes(codes, per: int, highest: int) -> tuple[np.ndarray, tuple]:
    """Codes as a flat C-ordered uint8 array whose rows are whole groups of ``per``.

    Rows whose length is not a multiple of ``per`` are copied with CODE_ZERO padding;
    otherwise the caller's data is used without a copy (and never written).  Returns the
    flat codes and the shape of the packed result.  Raises ValueError if a code lies
    outside [0, highest].
    """
    c = _checked_codes(codes, highest)
    n = c.shape[-1]
    m = -(-n // per)
    if n % per == 0:
        return np.ascontiguousarray(c, dtype=np.uint8).reshape(-1), c.shape[:-1] + (m,)
    rows = c.size // n
    padded = np.full((rows, m * per), CODE_ZERO, np.uint8)
    padded[:, :n] = c.reshape(rows, n)
    return padded.reshape(-1), c.shape[:-1] + (m,)


# Multiplying a little-endian word of codes by one of these constants sums every code, times
# its place value, into a single byte of the product (the "multiply-gather" trick).  No byte
# below that one can carry: for t2 they hold at most 3*(64+16+4) = 252, for t3 at most
# 2*(81+27+9+3) = 240.
_T2_GATHER = np.uint32(64 | 16 << 8 | 4 << 16 | 1 << 24)             # result in byte 3
_T3_GATHER = np.uint64(81 | 27 << 8 | 9 << 16 | 3 << 24 | 1 << 32)   # result in byte 4
# Words per step: keeps the wide temporaries inside the L2 cache.
_CHUNK = 1 << 15
_T2_PLACES = np.array([1 << (2 * k) for k in range(T2_PER_BYTE)], np.uint16)
_T3_PLACES = np.array([3 ** k for k in range(T3_PER_BYTE)], np.uint16)


def _pack_fast(codes, per: int, highest: int, word: str, factor, shift: int,
               places: np.ndarray) -> np.ndarray:
    """Multiply-gather packer shared by t2 and t3; see :func:`pack_t2` for the contract.

    Every whole group of ``per`` codes is read in place as one little-endian ``word``
    starting at the group's first code (words may overlap the next group; those bytes only
    reach product bytes above the one kept).  Only the partial group at a row's end, and a
    last word that would read past the data, are summed separately.
    """
    c = _checked_codes(codes, highest)
    n = c.shape[-1]
    full, rem = divmod(n, per)
    rows = c.size // n if n else 0
    out = np.empty((rows, full + (rem > 0)), np.uint8)
    c2 = np.ascontiguousarray(c, dtype=np.uint8).reshape(rows, n)
    if full and rows:
        overrun = np.dtype(word).itemsize - per  # bytes a word reads past its group
        safe_rows = rows if rem >= overrun else rows - 1
        words = np.ndarray((safe_rows, full), dtype=word, buffer=c2.reshape(-1),
                           strides=(n, per))
        step = max(1, _CHUNK // full)
        for r in range(0, safe_rows, step):
            product = words[r:r + step] * factor
            np.right_shift(product, shift, out=product)
            out[r:r + len(product), :full] = product  # keeps the low byte: the gathered group
        if safe_rows < rows:
            last = c2[-1, :full * per].reshape(full, per)
            out[-1, :full] = last @ places
    if rem:
        tail = np.full((rows, per), CODE_ZERO, np.uint8)
        tail[:, :rem] = c2[:, full * per:]
        out[:, full] = tail @ places
    return out.reshape(c.shape[:-1] + (out.shape[1],))


def pack_t2(codes) -> np.ndarray:
    """Pack 2-bit codes 4 per byte along the last axis: [..., n] -> uint8 [..., ceil(n/4)].

    Code j of a row lands in byte j // 4, bits 2*(j % 4)..+1; a row's last byte is padded
    with CODE_ZERO.  All four 2-bit values (including CODE_INVALID) are representable;
    anything above 3 raises ValueError.
    """
    return _pack_fast(codes, T2_PER_BYTE, CODE_INVALID, "<u4", _T2_GATHER, 24, _T2_PLACES)


def unpack_t2(packed, n: int) -> np.ndarray:
    """Inverse of :func:`pack_t2`: uint8 [..., m] -> codes uint8 [..., n], n <= 4*m."""
    p = np.asarray(packed, dtype=np.uint8)
    if n > p.shape[-1] * T2_PER_BYTE:
        raise ValueError(f"{p.shape[-1]} t2 bytes hold at most {p.shape[-1] * 4} codes, not {n}")
    return _T2_TABLE[p].reshape(p.shape[:-1] + (p.shape[-1] * T2_PER_BYTE,))[..., :n]


def pack_t3(codes) -> np.ndarray:
    """Pack codes 0..2 five per byte along the last axis: [..., n] -> uint8 [..., ceil(n/5)].

    Byte i of a row is sum(code[5i+k] * 3**k, k = 0..4); a row's last byte is padded with
    CODE_ZERO.  CODE_INVALID has no t3 form, so any code above 2 raises ValueError.
    """
    return _pack_fast(codes, T3_PER_BYTE, CODE_POS, "<u8", _T3_GATHER, 32, _T3_PLACES)


def unpack_t3(packed, n: int) -> np.ndarray:
    """Inverse of :func:`pack_t3`: uint8 [..., m] -> codes uint8 [..., n], n <= 5*m.

    Raises ValueError on a byte above 242, which no group of five codes produces.
    """
    p = np.asarray(packed, dtype=np.uint8)
    if p.size and p.max() > T3_MAX_BYTE:
        raise ValueError(f"t3 bytes must be <= {T3_MAX_BYTE}; got {int(p.max())} (corrupt data?)")
    if n > p.shape[-1] * T3_PER_BYTE:
        raise ValueError(f"{p.shape[-1]} t3 bytes hold at most {p.shape[-1] * 5} codes, not {n}")
    return _T3_TABLE[p].reshape(p.shape[:-1] + (p.shape[-1] * T3_PER_BYTE,))[..., :n]


def _digit_table(base: int, digits: int, entries: int) -> np.ndarray:
    values = np.arange(entries)
    return np.stack([(values // base ** k) % base for k in range(digits)], axis=1).astype(np.uint8)


_T2_TABLE = _digit_table(4, T2_PER_BYTE, 256)
_T3_TABLE = _digit_table(3, T3_PER_BYTE, T3_MAX_BYTE + 1)


def pack_t2_simple(codes) -> np.ndarray:
    """Baseline for :func:`pack_t2` (same contract): one shifted OR per position in the byte."""
    return _pack_simple(codes, T2_PER_BYTE, lambda k: 1 << (2 * k), CODE_INVALID)


def pack_t3_simple(codes) -> np.ndarray:
    """Baseline for :func:`pack_t3` (same contract): one multiply-add per trit in the byte."""
    return _pack_simple(codes, T3_PER_BYTE, lambda k: 3 ** k, CODE_POS)


def _pack_simple(codes, per: int, place, highest: int) -> np.ndarray:
    flat, shape = _grouped_codes(codes, per, highest)
    groups = flat.reshape(-1, per)
    out = np.zeros(groups.shape[0], np.uint8)
    for k in range(per):
        out += groups[:, k] * np.uint8(place(k))
    return out.reshape(shape)
