"""Bit-exact golden model of the SpGEMM engine (:mod:`tritium.engines.spgemm.hdl`), fixtures,
and an independent check against scipy.sparse.

Algorithm (the hardware's, step for step): C = A·B row by row (Gustavson). For row i,
the *product stream* is, for every stored a_ik of A's row i in column order and every
stored b_kj of B's row k in column order, the pair (j, a_ik ⊗ b_kj). Each PE merges that
stream into a hash table of ``cfg.slots`` slots:

- hash: ``slot(j) = ((j · 0x9E3779B9) mod 2**32) >> (32 - hash_bits)`` (Knuth's
  multiplicative hash with the golden-ratio constant; the top bits of the low word);
- linear probing: slot, slot+1, … (mod slots) until the slot holds j (merge with ⊕) or is
  free (insert, if the table holds fewer than ``cfg.capacity`` entries);
- drain order: the entries of a pass leave in the order they were inserted (first touch
  of each column), which is also the column order of C's row as the engine writes it.

Overflow (a row touching more distinct columns than ``capacity``) is handled by column
windows and extra passes, exact on every row: a pass accepts columns in [lo, hi); hi
starts at the pass's limit. A new column met when the table is full is refused and
lowers hi to that column; later products at or above hi are skipped. Every column below
the final hi had all of its products merged, so the drain emits the entries in [lo, hi)
and the next pass starts at lo = hi. If a pass made no progress (hi == lo), the next one
takes the window [lo, lo + capacity), which can never overflow. Each pass replays the
row's whole product stream.

Semirings (values are ``value_bits``-bit two's complement, "wrap" = modulo 2**value_bits
like the hardware's adders):

==========  =========================  =====================  =========================
name        ⊗ (product)                ⊕ (merge)              operands
==========  =========================  =====================  =========================
plus-times  wrap(a·b)                  wrap(x + y)            any value_bits value
fixed       wrap(floor(a·b / 2**F))    wrap(x + y)            any; F = frac_bits
min-plus    a + b, or S if a or b is S min(x, y)              [path_min, path_max] or S
max-plus    a + b, or S if a or b is S max(x, y)              [path_min, path_max] or S
or-and      a & b                      x | y                  0 or 1
==========  =========================  =====================  =========================

S, the identity of ⊕ and absorbing for ⊗ ("no path"), is ``value_max`` for min-plus and
``value_min`` for max-plus. Finite path operands lie within ±2**(value_bits-2), so a + b
never overflows.

Zeros: the engine keeps every column a product reached, even if its value is 0 (an
explicit zero). scipy drops zeros its product creates; :func:`canonical` sorts column
indices and drops explicit zeros, and comparisons with scipy canonicalise both sides.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from tritium.engines.spgemm.config import SPGEMM_SEMIRINGS, SpgemmConfig
from tritium.errors import ConfigError, ShapeError

HASH_MULTIPLIER = 0x9E3779B9
HASH_WORD_BITS = 32


def hash_slot(cfg: SpgemmConfig, col: int) -> int:
    """The table slot a column hashes to (see the module docstring)."""
    return ((col * HASH_MULTIPLIER) & 0xFFFFFFFF) >> (HASH_WORD_BITS - cfg.hash_bits)


def semiring_code(cfg: SpgemmConfig, semiring: str) -> int:
    """Command code of ``semiring``; ConfigError if unknown or not built into ``cfg``."""
    if semiring not in SPGEMM_SEMIRINGS:
        raise ConfigError(f"unknown semiring {semiring!r}; choose one of {SPGEMM_SEMIRINGS}")
    if semiring not in cfg.semiring_names:
        raise ConfigError(f"semiring {semiring!r} is not built into this engine "
                          f"(built: {cfg.semiring_names}); set its bit in `semirings`")
    return SPGEMM_SEMIRINGS.index(semiring)


def sentinel(cfg: SpgemmConfig, semiring: str) -> int | None:
    """The 'no path' value of min-plus / max-plus, None for the other semirings."""
    return {"min-plus": cfg.value_max, "max-plus": cfg.value_min}.get(semiring)


def wrap(cfg: SpgemmConfig, v: int) -> int:
    m = 1 << cfg.value_bits
    v &= m - 1
    return v - m if v >> (cfg.value_bits - 1) else v


def semiring_ops(cfg: SpgemmConfig, semiring: str) -> tuple[Callable, Callable]:
    """(⊗, ⊕) of ``semiring`` on Python ints, bit-exact with the hardware."""
    if semiring == "plus-times":
        return (lambda a, b: wrap(cfg, a * b)), (lambda x, y: wrap(cfg, x + y))
    if semiring == "fixed":
        f = cfg.frac_bits
        return (lambda a, b: wrap(cfg, (a * b) >> f)), (lambda x, y: wrap(cfg, x + y))
    if semiring in ("min-plus", "max-plus"):
        s = sentinel(cfg, semiring)
        mul = lambda a, b: s if a == s or b == s else a + b  # noqa: E731
        return mul, (min if semiring == "min-plus" else max)
    if semiring == "or-and":
        return (lambda a, b: a & b), (lambda x, y: x | y)
    raise ConfigError(f"unknown semiring {semiring!r}; choose one of {SPGEMM_SEMIRINGS}")


def value_range_ok(cfg: SpgemmConfig, semiring: str, data: np.ndarray) -> bool:
    if data.size == 0:
        return True
    if semiring in ("plus-times", "fixed"):
        return cfg.value_min <= data.min() and data.max() <= cfg.value_max
    if semiring == "or-and":
        return bool(np.isin(data, (0, 1)).all())
    s = sentinel(cfg, semiring)
    finite = data[data != s]
    return finite.size == 0 or (cfg.path_min <= finite.min() and finite.max() <= cfg.path_max)


def check_operands(cfg: SpgemmConfig, A, B, semiring: str) -> None:
    """Raise a typed error for anything the engine cannot take, before running it.

    ShapeError: not scipy CSR, inner dimensions differ, a dimension above ``max_dim``,
    more than ``max_nnz`` entries, unsorted or duplicate column indices, non-integer
    values or values outside the semiring's operand range. ConfigError: unknown or
    unbuilt semiring.
    """
    import scipy.sparse as sp

    semiring_code(cfg, semiring)
    for name, M in (("A", A), ("B", B)):
        if not (sp.issparse(M) and M.format == "csr"):
            raise ShapeError(f"{name} must be a scipy.sparse CSR matrix (got {type(M).__name__}"
                             f"{'/' + M.format if sp.issparse(M) else ''}); convert with .tocsr()")
        if max(M.shape) > cfg.max_dim:
            raise ShapeError(f"{name} is {M.shape[0]}x{M.shape[1]}; this engine takes at most "
                             f"{cfg.max_dim} rows/columns (max_dim)")
        if M.nnz > cfg.max_nnz:
            raise ShapeError(f"{name} has {M.nnz} stored entries; this engine holds at most "
                             f"{cfg.max_nnz} (max_nnz)")
        ip, ix = M.indptr, M.indices
        for r in range(M.shape[0]):
            row = ix[ip[r]:ip[r + 1]]
            if row.size > 1 and not (np.diff(row) > 0).all():
                raise ShapeError(f"{name} row {r} has unsorted or duplicate column indices; "
                                 "call .sum_duplicates() (which also sorts) first")
        if M.dtype.kind not in "iub":
            raise ShapeError(f"{name} has {M.dtype} values; the engine takes integers "
                             "(scale fixed-point values to integers first)")
        if not value_range_ok(cfg, semiring, np.asarray(M.data, dtype=np.int64)):
            raise ShapeError(f"{name} has values outside the {semiring} operand range of a "
                             f"{cfg.value_bits}-bit engine (see tritium.engines.spgemm.golden)")
    if A.shape[1] != B.shape[0]:
        raise ShapeError(f"A is {A.shape[0]}x{A.shape[1]} but B is {B.shape[0]}x{B.shape[1]}: "
                         "A's columns must equal B's rows")


@dataclasses.dataclass
class SpgemmResult:
    """C in the engine's order, plus its statistics.

    ``rows[i]`` = (columns, values) of C's row i in drain order; ``stats`` totals over the
    run, ``row_stats[i]`` the same per row (keys: products, probes, collisions, merges,
    inserts, passes (extra passes), out, mem_reads, mem_writes).
    """

    shape: tuple[int, int]
    rows: list[tuple[list[int], list[int]]]
    stats: dict[str, int]
    row_stats: list[dict[str, int]]

    def csr(self):
        """C as scipy CSR with the engine's per-row column order (not sorted)."""
        import scipy.sparse as sp

        indptr = np.cumsum([0] + [len(c) for c, _ in self.rows])
        cols = [j for c, _ in self.rows for j in c]
        vals = [v for _, v in self.rows for v in v]
        return sp.csr_matrix((np.array(vals, dtype=np.int64), np.array(cols, dtype=np.int64),
                              indptr), shape=self.shape)


STAT_KEYS = ("products", "probes", "collisions", "merges", "inserts", "passes", "out",
             "mem_reads", "mem_writes")


def accumulate_row(cfg: SpgemmConfig, products, add) -> tuple[list[int], list[int], dict]:
    """Merge one row's product stream [(col, value), …] through the hash table, with the
    window/pass scheme. Returns (columns, values, stats) in drain order."""
    slots, cap, no_limit = cfg.slots, cfg.capacity, cfg.no_limit
    st = dict.fromkeys(("probes", "collisions", "merges", "inserts", "passes"), 0)
    out_c, out_v = [], []
    lo, limit = 0, no_limit
    while True:
        keys = [None] * slots
        vals = [0] * slots
        order: list[int] = []
        hi = limit
        for c, v in products:
            if not lo <= c < hi:
                continue
            s = hash_slot(cfg, c)
            st["probes"] += 1
            while keys[s] is not None and keys[s] != c:
                s = (s + 1) & (slots - 1)
                st["probes"] += 1
                st["collisions"] += 1
            if keys[s] is not None:
                vals[s] = add(vals[s], v)
                st["merges"] += 1
            elif len(order) < cap:
                keys[s], vals[s] = c, v
                order.append(s)
                st["merges"] += 1
                st["inserts"] += 1
            else:
                hi = c  # refused: every column from here up waits for a later pass
        for s in order:
            if keys[s] < hi:
                out_c.append(keys[s])
                out_v.append(vals[s])
        if hi < limit:
            lo, limit = hi, (hi + cap if hi == lo else no_limit)
        elif limit != no_limit:
            lo, limit = limit, no_limit
        else:
            return out_c, out_v, st
        st["passes"] += 1


def spgemm(cfg: SpgemmConfig, A, B, semiring: str = "plus-times", *,
           check: bool = True) -> SpgemmResult:
    """Golden C = A·B under ``semiring`` with the engine's statistics."""
    if check:
        check_operands(cfg, A, B, semiring)
    mul, add = semiring_ops(cfg, semiring)
    a_ip, a_ix, a_v = A.indptr.tolist(), A.indices.tolist(), np.asarray(A.data).astype(np.int64).tolist()
    b_ip, b_ix, b_v = B.indptr.tolist(), B.indices.tolist(), np.asarray(B.data).astype(np.int64).tolist()
    rows, row_stats = [], []
    total = dict.fromkeys(STAT_KEYS, 0)
    for i in range(A.shape[0]):
        products = []
        a_lo, a_hi = a_ip[i], a_ip[i + 1]
        for p in range(a_lo, a_hi):
            k, a = a_ix[p], a_v[p]
            for q in range(b_ip[k], b_ip[k + 1]):
                products.append((b_ix[q], mul(a, b_v[q])))
        cols, vals, st = accumulate_row(cfg, products, add)
        passes = st["passes"] + 1
        st["products"] = len(products) * passes
        st["out"] = len(cols)
        # per pass: the row extent, then per A entry the entry and B's row extent, then
        # one B entry per product
        st["mem_reads"] = passes * (1 + 2 * (a_hi - a_lo) + len(products))
        # C: the row's entries, then its extent
        st["mem_writes"] = len(cols) + 1
        rows.append((cols, vals))
        row_stats.append(st)
        for key in STAT_KEYS:
            total[key] += st[key]
    return SpgemmResult((A.shape[0], B.shape[1]), rows, total, row_stats)


# ---- independent references -----------------------------------------------------------------

def canonical(C, value_bits: int = 32):
    """C as int64 CSR with values wrapped to ``value_bits``, explicit zeros dropped and
    column indices sorted: the form in which two products are compared."""
    import scipy.sparse as sp

    C = sp.csr_matrix(C, dtype=np.int64, copy=True)
    m = np.int64(1) << value_bits
    half = np.int64(1) << (value_bits - 1)
    C.data = (C.data + half) % m - half
    C.eliminate_zeros()
    C.sort_indices()
    return C


def scipy_plus_times(A, B, value_bits: int = 32):
    """scipy's A @ B in int64, canonicalised (wrapped to ``value_bits``). Wrapping after an
    exact product equals wrapping after every step: both are arithmetic mod 2**value_bits."""
    import scipy.sparse as sp

    return canonical(sp.csr_matrix(A, dtype=np.int64) @ sp.csr_matrix(B, dtype=np.int64),
                     value_bits)


def same_matrix(X, Y) -> bool:
    """Exact equality of two canonical CSR matrices (shape, structure, values)."""
    return (X.shape == Y.shape and np.array_equal(X.indptr, Y.indptr)
            and np.array_equal(X.indices, Y.indices) and np.array_equal(X.data, Y.data))


# ---- fixtures -------------------------------------------------------------------------------

PYAMG_EXAMPLES = ("airfoil", "bar", "local_disc_galerkin_diffusion", "knot", "unit_square",
                  "recirc_flow")


def pyamg_matrix(name: str, rng=None, low: int = -8, high: int = 8):
    """The structure of a matrix shipped in the pyamg wheel, with random integer values in
    [low, high] (seeded), sorted and without duplicates."""
    import scipy.sparse as sp
    from pyamg.gallery import load_example

    A = sp.csr_matrix(load_example(name)["A"])
    A.sum_duplicates()
    rng = np.random.default_rng(0) if rng is None else rng
    A.data = rng.integers(low, high + 1, A.nnz).astype(np.int64)
    return A


def random_csr(rows: int, cols: int, density: float, rng, low: int = -100, high: int = 100):
    import scipy.sparse as sp

    mask = sp.random(rows, cols, density=density, format="csr", random_state=rng)
    mask.data = rng.integers(low, high + 1, mask.nnz).astype(np.float64)
    M = mask.astype(np.int64)
    M.sort_indices()
    return M


def power_law_graph(n: int, edges_per_node: int, rng, low: int = 1, high: int = 9):
    """Preferential-attachment digraph (Barabási–Albert style): a few hub columns hold most
    entries, so rows collide on the same columns, like social/web graphs."""
    import scipy.sparse as sp

    src, dst = [], []
    targets = list(range(min(n, edges_per_node)))
    pool: list[int] = list(targets)
    for v in range(edges_per_node, n):
        chosen = set()
        while len(chosen) < edges_per_node:
            chosen.add(pool[int(rng.integers(len(pool)))])
        for t in chosen:
            src += [v, t]
            dst += [t, v]
            pool += [v, t]
    M = sp.csr_matrix((np.ones(len(src), np.int64), (src, dst)), shape=(n, n))
    M.sum_duplicates()
    M.data = rng.integers(low, high + 1, M.nnz).astype(np.int64)
    return M


def banded(n: int, half_width: int, rng, low: int = -9, high: int = 9):
    """Banded FEM-like matrix: row i holds columns i-half_width … i+half_width."""
    import scipy.sparse as sp

    offsets = list(range(-half_width, half_width + 1))
    M = sp.diags([np.ones(n - abs(o)) for o in offsets], offsets, shape=(n, n),
                 format="csr").astype(np.int64)
    M.data = rng.integers(low, high + 1, M.nnz).astype(np.int64)
    return M


def block_diagonal(blocks: int, size: int, rng, low: int = -9, high: int = 9):
    """Dense ``size``×``size`` blocks on the diagonal (independent sub-problems)."""
    import scipy.sparse as sp

    M = sp.block_diag([np.ones((size, size), np.int64)] * blocks, format="csr")
    M.data = rng.integers(low, high + 1, M.nnz).astype(np.int64)
    M.sort_indices()
    return M


def colliding_columns(cfg: SpgemmConfig, count: int, start: int = 0) -> list[int]:
    """The first ``count`` columns >= start that hash to the same slot as ``start``."""
    target, out, c = hash_slot(cfg, start), [], start
    while len(out) < count:
        if c >= cfg.max_dim:
            raise ValueError(f"fewer than {count} columns below max_dim hash to slot {target}")
        if hash_slot(cfg, c) == target:
            out.append(c)
        c += 1
    return out
