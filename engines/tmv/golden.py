"""The TMV engine's golden model: what TernaryDot and TernaryMatVec compute, bit for bit.

- :func:`ternary_dot` / :func:`to_beats`: one dot product of 2-bit weight codes
  (:mod:`tritium.golden.ternary`) with signed activations, and its lane beats;
- :func:`tile_tmv`, :func:`tmv_lines`, :func:`tmv_unpack_lines`: the weight memory's
  line image (words of ``pe * simd`` codes, packed ``t2``/``t3`` into a line's low bytes);
- :func:`check_tmv_command`: the checks the host makes before it sends a command;
- :func:`ternary_matvec`: ``y = W·x``, exact, with the invalid-code flag.

Bad input raises ShapeError (shapes beyond the build, activations out of range) or
ConfigError (a format the build lacks).
"""

from __future__ import annotations

import numpy as np

from tritium.engines.tmv.config import TernaryDotConfig
from tritium.errors import ShapeError
from tritium.golden.ternary import (CODE_INVALID, CODE_ZERO, T3_MAX_BYTE, decode, pack_t2,
                                    pack_t3, unpack_t2, unpack_t3)


def ternary_dot(cfg: TernaryDotConfig, codes, x) -> tuple[int, bool]:
    """Golden twin of :class:`tritium.engines.tmv.hdl.TernaryDot`.

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


def tile_tmv(codes, simd: int, pe: int) -> np.ndarray:
    """Reorder a [rows, cols] code matrix into the word stream the TMV engine reads.

    The engine takes one word of ``pe * simd`` codes per cycle: ``simd`` consecutive columns
    of ``pe`` consecutive rows.  Words are ordered row block by row block, and within a row
    block by column block: word ``rb * ceil(cols/simd) + cb`` holds rows
    ``rb*pe .. rb*pe+pe-1`` and columns ``cb*simd .. cb*simd+simd-1``.  Lanes inside a word
    are pe-major: PE 0's ``simd`` codes first, then PE 1's, and so on.  Rows and columns
    past the matrix are padded with CODE_ZERO.  Returns uint8 [words, pe*simd].
    """
    c = np.asarray(codes, dtype=np.uint8)
    if c.ndim != 2:
        raise ShapeError(f"tile_tmv takes a 2-D [rows, cols] code matrix, got shape {c.shape}")
    if simd < 1 or pe < 1:
        raise ShapeError(f"simd and pe must be >= 1, got simd={simd}, pe={pe}")
    rows, cols = c.shape
    rb, cb = -(-rows // pe), -(-cols // simd)
    padded = np.full((rb * pe, cb * simd), CODE_ZERO, np.uint8)
    padded[:rows, :cols] = c
    return (padded.reshape(rb, pe, cb, simd).transpose(0, 2, 1, 3)
            .reshape(rb * cb, pe * simd))


# --- TMV: the ternary matrix-vector engine -------------------------------------------------
#
# Golden twin of :class:`tritium.engines.tmv.hdl.TernaryMatVec`.  The engine reads one word of
# ``pe*simd`` codes per memory line (``tile_tmv`` order), packed with ``pack_t2`` or
# ``pack_t3`` into the line's low bytes, little-endian.  A t3 byte above 242 is corrupt: the
# hardware decodes it as ``byte - 243`` (its base-3 digit chain drops the carry out of the
# fifth trit) and raises its error flag, which :func:`tmv_unpack_lines` mirrors.

TMV_FORMAT_CODES = {"t2": 0, "t3": 1}


def check_tmv_command(cfg, rows: int, cols: int, fmt: str, base: int = 0) -> None:
    """Raise the error the host must raise before sending a command the build cannot run.

    ShapeError: ``rows``/``cols`` outside [1, max_out]/[1, max_in], or the command's words
    running past the weight memory.  ConfigError: a format this build lacks.
    """
    from tritium.errors import ConfigError

    if fmt not in TMV_FORMAT_CODES:
        raise ConfigError(f"unknown weight format {fmt!r}; use one of {list(TMV_FORMAT_CODES)}")
    if fmt not in cfg.formats:
        raise ConfigError(f"this TMV build has no {fmt} decoder (formats {list(cfg.formats)}); "
                          f"pack the weights as {cfg.formats[0]} or rebuild with has_{fmt}=1")
    if not (1 <= rows <= cfg.max_out and 1 <= cols <= cfg.max_in):
        raise ShapeError(f"a {rows}x{cols} matrix does not fit this TMV build (rows in "
                         f"[1, max_out={cfg.max_out}], cols in [1, max_in={cfg.max_in}])")
    if base < 0 or base + cfg.words(rows, cols) > cfg.weight_depth:
        raise ShapeError(f"{cfg.words(rows, cols)} weight words at base {base} run past the "
                         f"weight memory (weight_depth={cfg.weight_depth} words)")


def tmv_lines(cfg, codes, fmt: str) -> list[int]:
    """Weight memory image of a [rows, cols] code matrix: one int per line (word)."""
    words = tile_tmv(codes, cfg.simd, cfg.pe)
    packed = pack_t2(words) if fmt == "t2" else pack_t3(words)
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def tmv_unpack_lines(cfg, lines, rows: int, cols: int, fmt: str) -> tuple[np.ndarray, bool]:
    """Inverse of :func:`tmv_lines` as the hardware reads it: ``(codes [rows, cols],
    corrupt)``; ``corrupt`` is true if a t3 byte above 242 was read (see above)."""
    nbytes = cfg.word_bytes(fmt)
    mask = (1 << (8 * nbytes)) - 1   # a line's bytes past the word are not read
    raw = np.frombuffer(b"".join((int(v) & mask).to_bytes(nbytes, "little") for v in lines),
                        np.uint8).reshape(len(lines), nbytes)
    corrupt = fmt == "t3" and bool((raw > T3_MAX_BYTE).any())
    if fmt == "t2":
        words = unpack_t2(raw, cfg.word_codes)
    else:
        words = unpack_t3(np.where(raw > T3_MAX_BYTE, raw - (T3_MAX_BYTE + 1), raw),
                          cfg.word_codes)
    rb, cb = -(-rows // cfg.pe), -(-cols // cfg.simd)
    full = (words[:rb * cb].reshape(rb, cb, cfg.pe, cfg.simd).transpose(0, 2, 1, 3)
            .reshape(rb * cfg.pe, cb * cfg.simd))
    return full[:rows, :cols], corrupt


def ternary_matvec(cfg, codes, x) -> tuple[list[int], bool]:
    """Golden twin of the TMV engine: ``(y, invalid_code_seen)`` with ``y = W·x`` exact.

    ``codes`` is the [rows, cols] code matrix (code = weight + 1; the invalid code 3 counts
    as weight 0 and sets the flag, like the hardware), ``x`` the ``cols`` activations.
    Raises ShapeError for shapes beyond the build or activations outside ``act_bits``.
    """
    c = np.asarray(codes, dtype=np.uint8)
    xs = np.asarray(x, dtype=np.int64).ravel()
    if c.ndim != 2:
        raise ShapeError(f"weights must be a 2-D [rows, cols] code matrix, got shape {c.shape}")
    rows, cols = c.shape
    if not (1 <= rows <= cfg.max_out and 1 <= cols <= cfg.max_in):
        raise ShapeError(f"a {rows}x{cols} matrix does not fit this TMV build (rows in "
                         f"[1, max_out={cfg.max_out}], cols in [1, max_in={cfg.max_in}])")
    if xs.size != cols:
        raise ShapeError(f"{cols} weight columns but {xs.size} activations; they must match")
    if xs.min() < cfg.act_min or xs.max() > cfg.act_max:
        raise ShapeError(f"activations must lie in [{cfg.act_min}, {cfg.act_max}] "
                         f"(act_bits={cfg.act_bits})")
    y = decode(c).astype(np.int64) @ xs
    return [int(v) for v in y], bool((c == CODE_INVALID).any())
