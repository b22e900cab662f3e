"""Host driver of the SpGEMM engine: C = A·B of scipy.sparse matrices on a device.

:func:`spgemm` (``Device.spgemm``) takes A and B in any scipy.sparse format, checks them
against the device's engine (its ``SpgemmConfig`` from INFO) before anything is sent,
packs them as CSR into the engine's regions (the word layouts of
``SpgemmConfig.word_fields``, one word per ``word_stride`` bytes; docs/protocol.md),
STARTs the engine (its START id and field layout from INFO), polls STATUS until the run
is done, reads C's row extents and entries back and returns
``(C as scipy.sparse.csr_matrix, counters)``.

Values:

- integers (or floats that are whole numbers) go as they are, and must lie in the
  semiring's operand range (:func:`tritium.engines.spgemm.golden.check_operands`);
- other floats, with ``plus-times`` or ``fixed``, go through the engine's fixed-point
  semiring: ``q = round(x · 2**frac_bits)``, C is returned as floats ``c_q / 2**frac_bits``
  (each product is floored to ``frac_bits`` by the engine, see the golden model);
  a device built without ``fixed`` refuses them (ConfigError), as do the other
  semirings (ShapeError).

Refused before anything is sent, with the limit in the message: a dimension above
``max_dim``, more than ``max_nnz`` entries in A or B, and a C with more than
``max_c_nnz`` entries (rows are dealt to the PEs at run time, so all of C must fit one
PE's bank). C keeps every column a product reached (explicit zeros included) and its
rows' columns are sorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tritium.engines.spgemm.config import SpgemmConfig
from tritium.engines.spgemm import ENGINE as SPEC
from tritium.errors import ConfigError, DeviceConfigError, DeviceError, ShapeError
from tritium.engines.spgemm import golden as golden


ENGINE = SPEC.name


@dataclass
class Operands:
    """A and B as the engine takes them: int64 CSR, sorted, no duplicates; ``semiring``
    the one run; ``scale`` the fixed-point scale of float operands (None: integers)."""

    A: object
    B: object
    semiring: str
    scale: float | None


def _as_csr(name: str, M):
    import scipy.sparse as sp

    if not sp.issparse(M):
        raise ShapeError(f"{name} must be a scipy.sparse matrix (got {type(M).__name__}); "
                         "wrap a dense array in scipy.sparse.csr_matrix")
    if M.shape[0] < 1 or M.shape[1] < 1:
        raise ShapeError(f"{name} is {M.shape[0]}x{M.shape[1]}; give at least one row and "
                         "one column")
    M = sp.csr_matrix(M, copy=True)
    M.sum_duplicates()  # sorts the column indices too
    return M


def prepare(cfg: SpgemmConfig, A, B, semiring: str = "plus-times") -> Operands:
    """Normalise and check A and B for the engine ``cfg`` (see the module docstring);
    raises ShapeError/ConfigError naming the limit."""
    golden.semiring_code(cfg, semiring)
    A, B = _as_csr("A", A), _as_csr("B", B)
    scale = None
    fractional = [M.dtype.kind == "f" and not np.all(np.mod(M.data, 1) == 0) for M in (A, B)]
    if any(fractional):
        if semiring not in ("plus-times", "fixed"):
            raise ShapeError(f"{'A' if fractional[0] else 'B'} has fractional values; the "
                             f"{semiring} semiring takes integers")
        if "fixed" not in cfg.semiring_names:
            raise ConfigError("fractional values run through the engine's fixed-point "
                              "semiring, which this device does not have (built: "
                              f"{', '.join(cfg.semiring_names)}); scale the values to "
                              "integers or use a device built with `fixed`")
        scale, semiring = float(1 << cfg.frac_bits), "fixed"
    for M in (A, B):
        if M.dtype.kind not in "iubf":
            raise ShapeError(f"matrix values of type {M.dtype} are not numbers the engine "
                             "takes; give integers or floats")
        data = M.data * scale if scale else M.data
        limit = 2.0 ** 62
        if data.size and not np.all(np.abs(data) < limit):
            raise ShapeError("a value is infinite or far outside the engine's "
                             f"{cfg.value_bits}-bit range")
        M.data = np.round(data).astype(np.int64) if M.dtype.kind == "f" else \
            data.astype(np.int64)
    golden.check_operands(cfg, A, B, semiring)
    c_nnz = structural_nnz(A, B)
    if c_nnz > cfg.max_c_nnz:
        raise ShapeError(f"C = A·B has {c_nnz} entries; this device's engine stores at most "
                         f"{cfg.max_c_nnz} (max_c_nnz: one PE's bank of C, and rows go to "
                         "the PEs at run time); split A's rows into smaller products")
    return Operands(A, B, semiring, scale)


def structural_nnz(A, B) -> int:
    """Entries of C as the engine stores it: every column some product reaches (stored
    zeros of A and B included)."""
    import scipy.sparse as sp

    def pattern(M):
        return sp.csr_matrix((np.ones(M.nnz, np.int64), M.indices, M.indptr), shape=M.shape)

    return int((pattern(A) @ pattern(B)).nnz)


def pack_words(cfg: SpgemmConfig, word: str, columns: dict[str, np.ndarray]) -> bytes:
    """The bytes of words ``word`` (``cfg.word_fields``) with the given field columns,
    ``cfg.word_stride(word)`` bytes each (little-endian, zero padded)."""
    out, pos = None, 0
    for name, bits, _ in cfg.word_fields[word]:
        v = (np.asarray(columns[name], dtype=np.int64).astype(np.uint64)
             & np.uint64((1 << bits) - 1)) << np.uint64(pos)
        out = v if out is None else out | v
        pos += bits
    stride = cfg.word_stride(word)
    raw = out.astype("<u8").view(np.uint8).reshape(-1, 8)
    return raw[:, :stride].tobytes() if stride <= 8 else \
        np.pad(raw, ((0, 0), (0, stride - 8))).tobytes()


def unpack_words(cfg: SpgemmConfig, word: str, raw: bytes) -> dict[str, np.ndarray]:
    """The inverse of :func:`pack_words`: field name -> int64 column (signed fields
    sign-extended)."""
    stride = cfg.word_stride(word)
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, stride)[:, :8]
    w = np.pad(b, ((0, 0), (0, 8 - b.shape[1]))).copy().view("<u8").ravel()
    out, pos = {}, 0
    for name, bits, sign in cfg.word_fields[word]:
        v = ((w >> np.uint64(pos)) & np.uint64((1 << bits) - 1)).astype(np.int64)
        if sign:
            v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
        out[name] = v
        pos += bits
    return out


def operand_images(cfg: SpgemmConfig, beat_bytes: int, A, B) -> dict[int, bytes]:
    """With ``operands_dram``: A's and B's CSR as DRAM images ``{byte offset: bytes}``
    at ``cfg.dram_layout(beat_bytes)`` (each word padded to its stride there)."""
    layout, out = cfg.dram_layout(beat_bytes), {}
    for prefix, M in (("a", A), ("b", B)):
        for name, word, cols in ((f"{prefix}_ext", "ext",
                                  {"start": M.indptr[:-1], "end": M.indptr[1:]}),
                                 (f"{prefix}_ent", "ent", {"col": M.indices, "value": M.data})):
            base, stride, _ = layout[name]
            if not len(cols["start" if word == "ext" else "col"]):
                continue
            raw = pack_words(cfg, word, cols)
            w = cfg.word_stride(word)
            if stride != w:
                a = np.frombuffer(raw, np.uint8).reshape(-1, w)
                raw = np.pad(a, ((0, 0), (0, stride - w))).tobytes()
            out[base] = raw
    return out


def spgemm(dev, A, B, semiring: str = "plus-times", *, timeout: float = 120.0,
           fast: str | None = None):
    """C = A·B under ``semiring`` on device ``dev`` (a :class:`tritium.host.Device`
    with the SpGEMM engine); returns ``(C, counters)`` (see the module docstring).
    With ``operands_dram`` A and B go into the DRAM (:func:`operand_images`, through
    ``Device.load_dram``: the link, or the simulated device's backdoor URL ``fast``, and
    the CRC proof) and C is read from there (``Device.read_dram``, the same way); the
    limits checked before anything is written are the same (``max_nnz``, ``max_dim``,
    ``max_c_nnz``: the DRAM layout's sizes, which the SoC checked against the DRAM). DeviceConfigError if the device has no SpGEMM engine; DeviceError on the
    engine's error flag or a run longer than ``timeout`` seconds."""
    cfg = dev.cfg.engine_config(SpgemmConfig.kind)
    if cfg is None:
        raise DeviceConfigError(f"this device has no SpGEMM engine (engines: "
                                f"{', '.join(dev.cfg.engine_kinds)}); serve one with "
                                "`tritium serve --engine spgemm`")
    op = prepare(cfg, A, B, semiring)
    amap = dev.map
    if cfg.operands_dram:
        dev.load_dram(operand_images(cfg, dev.cfg.dram.word_bytes, op.A, op.B), fast=fast)
    for prefix, M in (("a", op.A), ("b", op.B)) if not cfg.operands_dram else ():
        ext = cfg.SOC_REGIONS[f"{prefix}_ext"][0]
        dev.write(amap[f"{prefix}_ext"]["base"],
                  pack_words(cfg, ext, {"start": M.indptr[:-1], "end": M.indptr[1:]}))
        if M.nnz:
            dev.write(amap[f"{prefix}_ent"]["base"],
                      pack_words(cfg, "ent", {"col": M.indices, "value": M.data}))
    rows = op.A.shape[0]
    before = dev.counters() if cfg.operands_dram else {}
    dev.start(ENGINE, rows=rows, b_rows=op.B.shape[0],
              semiring=golden.semiring_code(cfg, op.semiring))
    dev.wait(f"C = A·B ({op.semiring})", timeout)
    after = dev.counters()
    counters = {k[len(ENGINE) + 1:]: v for k, v in after.items()
                if k.startswith(ENGINE + "_")}
    # the DRAM's counters run from reset: this run's share is the difference
    counters.update({k: after[k] - before[k] for k in before if k.startswith("dram_")})
    C = read_c(dev, cfg, rows, op.B.shape[1], fast=fast)
    if op.scale is not None:
        C = C.astype(np.float64) / op.scale
    return C, counters


class Driver:
    """What ``Device`` gains when the device holds the SpGEMM engine
    (``Engine.driver``): :meth:`spgemm`."""

    def spgemm(self, A, B, semiring: str = "plus-times", *, timeout: float = 120.0,
               fast: str | None = None):
        """C = A·B on the SpGEMM engine: ``(scipy CSR, counters)``; see :func:`spgemm`."""
        return spgemm(self, A, B, semiring, timeout=timeout, fast=fast)


def c_reader(dev, cfg: SpgemmConfig, fast: str | None = None):
    """``words(name, first, n)``: the bytes of words ``first..first+n`` of C's memory
    ``name`` (``c_ext``, ``c_ent``), ``word_stride`` bytes each: from the engine's
    regions, or with ``operands_dram`` from the DRAM at ``cfg.dram_layout``
    (``Device.read_dram``: the link, or the simulated device's backdoor ``fast``),
    the padding of each word's DRAM stride dropped."""
    if not cfg.operands_dram:
        def words(name, first, n):
            stride = cfg.word_stride(cfg.SOC_REGIONS[name][0])
            return dev.read(dev.map[name]["base"] + first * stride, n * stride)
        return words
    lay = cfg.dram_layout(dev.cfg.dram.word_bytes)

    def words(name, first, n):
        base, stride, _ = lay[name]
        raw = dev.read_dram(base + first * stride, n * stride, fast=fast)
        w = cfg.word_stride(cfg.SOC_REGIONS[name][0])
        return np.frombuffer(raw, np.uint8).reshape(-1, stride)[:, :w].tobytes()
    return words


def read_c(dev, cfg: SpgemmConfig, rows: int, cols: int, *, fast: str | None = None):
    """C's ``rows`` row extents, then each PE bank's entries up to its last row's end,
    read back from the device (:func:`c_reader`); as CSR with each row's columns
    sorted."""
    import scipy.sparse as sp

    words = c_reader(dev, cfg, fast)
    c_ext, c_ent = cfg.SOC_REGIONS["c_ext"][0], cfg.SOC_REGIONS["c_ent"][0]
    ext = unpack_words(cfg, c_ext, words("c_ext", 0, rows))
    start, end = ext["start"], ext["end"]
    if np.any(end < start):
        raise DeviceError("C's row extents read back inconsistent (end before start); "
                          "reset the device and rerun")
    used = end > start
    cols_all = np.zeros(int(end.max(initial=0)), np.int64)
    vals_all = np.zeros_like(cols_all)
    for bank in np.unique(start[used] >> cfg.c_bank_bits):
        base = int(bank) << cfg.c_bank_bits
        top = int(end[used & ((start >> cfg.c_bank_bits) == bank)].max())
        got = unpack_words(cfg, c_ent, words("c_ent", base, top - base))
        cols_all[base:top], vals_all[base:top] = got["col"], got["value"]
    take = np.concatenate([np.arange(s, e, dtype=np.int64) for s, e in zip(start, end)])
    if take.size and cols_all[take].max() >= cols:
        raise DeviceError("C read back has a column index beyond B's columns; reset the "
                          "device and rerun")
    indptr = np.concatenate([[0], np.cumsum(end - start)])
    C = sp.csr_matrix((vals_all[take], cols_all[take], indptr), shape=(rows, cols))
    C.has_sorted_indices = False
    C.sort_indices()
    return C


def read_sparse(path: str):
    """A scipy.sparse matrix from a Matrix Market (.mtx, .mtx.gz) or scipy .npz file;
    ShapeError naming the file if it is missing or not such a matrix."""
    import scipy.io
    import scipy.sparse as sp

    p = Path(path)
    if not p.is_file():
        raise ShapeError(f"{p} does not exist; give a Matrix Market (.mtx) or .npz file")
    try:
        M = sp.load_npz(p) if p.suffix == ".npz" else scipy.io.mmread(p)
    except Exception as e:  # scipy raises ValueError, OSError, zipfile/pickle errors
        raise ShapeError(f"cannot read {p} as a sparse matrix ({type(e).__name__}: "
                         f"{str(e)[:100]}); give a Matrix Market (.mtx) or "
                         "scipy.sparse.save_npz file") from None
    if not sp.issparse(M):
        M = sp.csr_matrix(M)
    return M


#: file names a matrix argument is read from rather than looked up as a built-in name
MATRIX_FILES = (".mtx", ".mtx.gz", ".npz")


def load_matrix(name: str, builtins: dict):
    """The matrix a ``--matrix``/``--spgemm`` argument names: ``builtins[name]()`` for a
    built-in name, else a Matrix Market (``.mtx``, ``.mtx.gz``) or ``scipy.sparse.save_npz``
    file, read by :func:`read_sparse` (the reader of ``run spgemm --a``). ShapeError listing
    the built-in names for anything else."""
    if name in builtins:
        return builtins[name]()
    if name.endswith(MATRIX_FILES) or Path(name).is_file():
        return read_sparse(name)
    raise ShapeError(f"unknown matrix {name!r}; choose one of {', '.join(builtins)}, or give "
                     f"a Matrix Market (.mtx) or .npz file")


def self_product(A):
    """The operands of the product run on one matrix: (A, A) if A is square, else
    (A, Aᵀ)."""
    return (A, A) if A.shape[0] == A.shape[1] else (A, A.T.tocsr())
