"""The SpGEMM engine's cycle and power model (sim layer), and its ``estimate`` and
``compare`` hooks.

Cycles (:func:`spgemm_estimate`)
    From the golden model's per-row statistics on the actual matrices: each row costs a
    PE ``row_overhead + products + collisions + refusals + extra_passes · (pass_setup +
    drain_extra)`` cycles: a product per cycle (every pass replays the row), a collision
    or a refusal holds the table a cycle; the first pass's fetch and the drains overlap
    the neighbouring rows (two tables per PE, a run-ahead fetcher), but an extra pass of
    the same row waits for its re-fetch behind the drain (constants derived from the PE
    pipeline, see :data:`SPGEMM_TIMING`). Rows are dealt to the first idle PE as
    the engine's dealer does, and the run ends when the last PE finishes.

Power (:func:`spgemm_power`)
    Hash probes, memory-word reads and the result's link bytes on the family's energy
    table (:func:`tritium.sim.model.power`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tritium.engines.spgemm.config import SpgemmConfig
from tritium.sim.model import compare_row, power

# The compare grid reuses the designs tests/test_*_verilator.py build (cached by content).
COMPARE_CONFIGS = {
    "p2-h4": SpgemmConfig(pes=2, hash_bits=4, max_dim=300, max_nnz=2048),
    "p3-h3": SpgemmConfig(pes=3, hash_bits=3, max_dim=64, max_nnz=512, semirings=0b00101),
}


#: PE cycle constants of the SpGEMM engine (engines/spgemm/hdl/engine.py, accumulator.py)
SPGEMM_TIMING = {
    # IDLE (take the row) before the first pass
    "row_overhead": 1,
    # START, EXTENT, then F0 -> F1 -> F2 -> FIFO -> load -> issue -> product reg -> R
    # -> read -> S1 before the first product merges, and the RUN->DRAIN handshake
    "pass_setup": 12,
    # a drain walks every entry inserted in the pass (also those at or above the
    # lowered hi, which it discards) and costs entries + 3 (accumulator docstring); an
    # extra pass of a row waits for those 3 cycles before its re-fetch
    "drain_extra": 3,
}


def spgemm_estimate(cfg: SpgemmConfig, A, B, semiring: str = "plus-times", *,
                    golden=None, timing: dict | None = None) -> dict[str, Any]:
    """Cycles of C = A·B on ``cfg`` from the golden model's per-row statistics (module
    docstring); ``golden``: the golden's result of that product, when already computed."""
    from tritium.engines.spgemm import golden as g

    t = {**SPGEMM_TIMING, **(timing or {})}
    ref = golden or g.spgemm(cfg, A, B, semiring)
    row_cycles = []
    for st in ref.row_stats:
        # one cycle per product entering the table (every pass replays the row), one per
        # collision or refusal holding it; the first pass's fetch and every drain overlap
        # the neighbouring work (two tables, run-ahead fetcher), but an extra pass of the
        # same row re-fetches the row behind its table's drain
        row_cycles.append(t["row_overhead"] + st["products"] + st["collisions"] + st["passes"]
                          + st["passes"] * (t["pass_setup"] + t["drain_extra"]))
    free = [0] * cfg.pes
    for rc in row_cycles:  # dealer: a row per cycle to the first idle PE, lowest index
        k = min(range(cfg.pes), key=lambda j: (free[j], j))
        free[k] += rc
    cycles = max(free) + 2 if row_cycles else 2
    st = ref.stats
    words = st["mem_reads"]
    return {"cycles": cycles, "pe_cycles": sum(row_cycles), "products": st["products"],
            "probes": st["probes"], "merges": st["merges"], "out": st["out"],
            "extra_passes": st["passes"], "mem_reads": words,
            "merges_per_cycle": st["merges"] / cycles,
            "formula_cycles": math.ceil(sum(
                cfg.row_cycles(s["probes"], s["out"], s["passes"] + 1)
                for s in ref.row_stats) / cfg.pes)}


#: cycles a write beat holds the DRAM's port: the arbiter learns whose data comes next
#: from its write-id FIFO (two cycles from the command to the FIFO's output), and the
#: ideal controller takes no command while a write waits for its data
DRAM_WRITE_BEAT_CYCLES = 3


def spgemm_dram_estimate(cfg: SpgemmConfig, dram, A, B, semiring: str = "plus-times", *,
                         golden=None) -> dict[str, Any]:
    """Cycles of C = A·B with A, B and C in the SoC's DRAM (``cfg.operands_dram``;
    ``dram``: the DramConfig): the engine's own estimate (:func:`spgemm_estimate`) or the
    DRAM's time to deliver every operand word and take every word of C, whichever is
    longer, plus the DRAM latency once per pass beyond the rows' first:
    ``fetch_latency`` at the DRAM's latency (the re-fetch's four dependent reads, during
    which the DRAM idles), and once for the first row. The DRAM delivers a beat a cycle
    (the ideal part's rate; refresh and row misses of an SDR part are not modelled),
    shared by every reader and writer, and takes a written beat every
    :data:`DRAM_WRITE_BEAT_CYCLES`, so ``dram_cycles = ext_reads · ext_beats +
    ent_reads · ent_beats + DRAM_WRITE_BEAT_CYCLES · (c_nnz · c_ent_beats + rows ·
    c_ext_beats)`` with ``ext_reads`` = per pass of row i, its A extent and one B extent
    per A entry, and ``ent_reads`` = the golden's other reads; a refetch hides the
    writes of the pass drained before it, up to its own length. ``dram_bytes`` (read)
    and ``dram_bytes_written`` (C: every entry and row extent, each its whole stride)
    are exact. Misses: the readers' and writers' interleaving, and each pass's
    first-word latency beyond the ideal part's."""
    import numpy as np

    from tritium.engines.spgemm import golden as g

    ref = golden or g.spgemm(cfg, A, B, semiring)
    est = spgemm_estimate(cfg, A, B, semiring, golden=ref)
    lay = cfg.dram_layout(dram.word_bytes)
    beats = {n: lay[n][1] // dram.word_bytes for n in lay}
    n_a, n_b = np.diff(A.indptr), np.diff(B.indptr)
    passes = np.array([st["passes"] + 1 for st in ref.row_stats])
    # marker reads move a DRAM word too (mem_reads leaves them out): an empty A row's
    # marker passes every stage (an A entry, a B extent, a B entry), and an empty B row
    # that is its A row's last reads a B entry
    last = A.indices[np.maximum(A.indptr[1:] - 1, 0)] if A.nnz else np.zeros_like(n_a)
    markers = int(np.sum(passes * (2 * (n_a == 0) + ((n_a > 0) & (n_b[last] == 0)))))
    ext_reads = int(np.sum(passes * (1 + (n_a == 0) + n_a)))
    ent_reads = ref.stats["mem_reads"] - int(np.sum(passes * (1 + n_a))) + markers
    c_nnz, rows = ref.stats["out"], A.shape[0]
    write_beats = c_nnz * beats["c_ent"] + rows * beats["c_ext"]
    dram_cycles = ext_reads * beats["a_ext"] + ent_reads * beats["a_ent"] + \
        DRAM_WRITE_BEAT_CYCLES * write_beats
    # an extra pass stops the DRAM stream: the PE's fetcher does not run ahead into the
    # next row, so the pass's four dependent reads (fetch_latency at the DRAM's latency)
    # start after the drain, with nothing else to read meanwhile
    refetch = dataclasses.replace(cfg, mem_latency=max(1, dram.spec.latency)).fetch_latency
    # ... but the entries the drain before it wrote go to the DRAM meanwhile: a row's
    # extra pass hides the writes of one pass's entries (out / passes on average), up to
    # the refetch's length
    hidden = sum(st["passes"] * min(refetch, DRAM_WRITE_BEAT_CYCLES * beats["c_ent"]
                                    * st["out"] / (st["passes"] + 1))
                 for st in ref.row_stats)
    cycles = max(est["cycles"], dram_cycles) + refetch * (1 + ref.stats["passes"]) - \
        round(hidden)
    return {**est, "cycles": cycles, "engine_cycles": est["cycles"],
            "dram_cycles": dram_cycles,
            "dram_bytes": ext_reads * lay["a_ext"][1] + ent_reads * lay["a_ent"][1],
            "dram_bytes_written": c_nnz * lay["c_ent"][1] + rows * lay["c_ext"][1],
            "dram_write_beats": write_beats,
            "merges_per_cycle": ref.stats["merges"] / cycles}


def spgemm_power(family: str, cfg: SpgemmConfig, est: dict, clock_hz: float) -> dict:
    word_bits = 2 * cfg.ptr_bits + cfg.index_bits + cfg.value_bits
    events = {"hash_probe": est["probes"], "bram_read_per_bit": est["mem_reads"] * word_bits,
              "link_byte": est["out"] * math.ceil((2 * cfg.index_bits + cfg.value_bits) / 8)}
    out = power(family, events, est["cycles"] / clock_hz, ops=2 * est["products"])
    out["j_per_run"] = out.pop("j_per_token")
    out.pop("tokens_per_s_per_w")
    return out


def compare_grid(quick: bool) -> list[tuple[str, str, str]]:
    """(config, workload, semiring) of ``tritium compare``'s SpGEMM runs."""
    grid = [("p2-h4", "airfoil", "plus-times"), ("p2-h4", "banded250", "plus-times"),
            ("p3-h3", "random64", "min-plus")]
    if not quick:
        grid += [("p2-h4", "powerlaw200", "plus-times")]
    return grid


def compare(quick: bool, rng) -> list:
    """``tritium compare``'s SpGEMM workloads (:func:`compare_grid`): one job per
    product; a job runs the RTL and returns its row (the estimate from the golden's own
    statistics, the closed formula beside it). The matrices are fixed, ``rng`` unused."""
    from .runner import run_spgemm

    def job(cname, wname, semiring):
        cfg = COMPARE_CONFIGS[cname]
        A = spgemm_workload(wname)
        _, cnt = run_spgemm(cfg, A, A, semiring, details=True)
        est = spgemm_estimate(cfg, A, A, semiring, golden=cnt.pop("golden"))
        return compare_row("spgemm", cname, f"{wname} {semiring}", est["cycles"],
                             cnt["cycles"], formula_cycles=est["formula_cycles"],
                             extra_passes=est["extra_passes"], products=est["products"])

    return [lambda a=g: job(*a) for g in compare_grid(quick)]


def estimate(cfg, workload: str, plat, semiring: str = "plus-times") -> dict:
    """Cycles, throughput and power of A·A (A·Aᵀ for a non-square A) for the matrix
    ``workload`` (a pyamg example, a fixture name or a ``.mtx``/``.npz`` file) on ``cfg``
    at the platform's clock, the operands normalised as ``Device.spgemm`` takes them (any
    sparse format, floats as fixed point)."""
    from .driver import prepare, self_product

    op = prepare(cfg, *self_product(spgemm_workload(workload)), semiring)
    est = spgemm_estimate(cfg, op.A, op.B, op.semiring)
    rep = {"matrix": workload, "semiring": op.semiring, "pes": cfg.pes,
           "hash_bits": cfg.hash_bits, "clock_hz": plat.clock_hz, **est,
           "seconds": est["cycles"] / plat.clock_hz,
           "gops": 2 * est["products"] / (est["cycles"] / plat.clock_hz) / 1e9,
           **spgemm_power(plat.family, cfg, est, plat.clock_hz)}
    rep.pop("events", None)
    return rep


def spgemm_workload(name: str):
    """A named operand A (the product is A·A): a pyamg example, a fixture, or a matrix
    file (:func:`~tritium.engines.spgemm.driver.load_matrix`)."""
    import numpy as np

    from tritium.engines.spgemm import golden as g

    from .driver import load_matrix

    fixtures = {
        "banded250": lambda: g.banded(250, 3, np.random.default_rng(2)),
        "powerlaw200": lambda: g.power_law_graph(200, 3, np.random.default_rng(1)),
        "random64": lambda: g.random_csr(64, 64, 0.08, np.random.default_rng(4), 0, 20),
        **{e: (lambda e=e: g.pyamg_matrix(e)) for e in g.PYAMG_EXAMPLES},
    }
    return load_matrix(name, fixtures)
