"""SpGEMM with A, B and C in the SoC's DRAM (``operands_dram``) on the served SoC: real
Verilator, real sockets, the ideal part. Every semiring equal to the golden model (and
plus-times to scipy), an edge case (empty rows, a row that overflows its table), the DRAM
counters against the words the engine read and wrote, bad input refused before anything
is written, and a product whose A, B and C each hold over 200k non-zeros."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tritium.config import SocConfig
from tritium.dram import DramConfig
from tritium.engines.spgemm import golden as g
from tritium.engines.spgemm.config import SPGEMM_SEMIRINGS, SpgemmConfig
from tritium.engines.spgemm.driver import operand_images
from tritium.errors import ConfigError, ShapeError
from tritium.host import Device
from tritium.sim.serve import DRAM_MAX_PAYLOAD, SimulatedDevice

pytestmark = pytest.mark.verilator

DRAM = DramConfig(size=1 << 16)
SPG = SpgemmConfig(pes=1, hash_bits=4, max_dim=64, max_nnz=1024, max_c_nnz=2048,
                   operands_dram=1, mem_latency=16)
CFG = SocConfig(engines=(SPG,), dram=DRAM, max_payload=DRAM_MAX_PAYLOAD)


@pytest.fixture(scope="module")
def served():
    with SimulatedDevice(CFG) as sd:
        yield sd


def random_operands(rng, n, density, semiring):
    low, high = {"or-and": (0, 2), "fixed": (-(3 << SPG.frac_bits), 3 << SPG.frac_bits)}.get(
        semiring, (-8, 9))
    def one():
        M = sp.random(n, n, density=density, format="csr", random_state=rng,
                      data_rvs=lambda k: rng.integers(low, high, k))
        return M.astype(np.int64)
    return one(), one()


def golden_csr(A, B, semiring):
    C = g.spgemm(SPG, A, B, semiring).csr()
    C.sort_indices()
    return C


def scipy_equal(C, A, B):
    """C equals scipy's A @ B exactly (the engine keeps entries that cancel to 0; scipy
    keeps some too: both without stored zeros)."""
    C, S = sp.csr_matrix(C, copy=True), (A @ B).tocsr()
    C.eliminate_zeros(); S.eliminate_zeros()
    return same(C, S)


def same(C, G):
    C, G = sp.csr_matrix(C), sp.csr_matrix(G)
    C.sort_indices(); G.sort_indices()
    return (C.shape == G.shape and np.array_equal(C.indptr, G.indptr)
            and np.array_equal(C.indices, G.indices) and np.array_equal(C.data, G.data))


def test_layout_and_config_checks():
    lay = SPG.dram_layout(DRAM.word_bytes)
    assert list(lay) == ["a_ext", "a_ent", "b_ext", "b_ent", "c_ext", "c_ent"]
    assert lay["a_ext"] == (0, 4, 64)  # 2 x 11-bit pointers: 3 bytes, one 4-byte beat
    assert lay["a_ent"] == (256, 8, 1024)  # 6-bit column + 32-bit value: 5 bytes -> 8
    assert lay["b_ext"] == (256 + 8192, 4, 64) and lay["b_ent"] == (8704, 8, 1024)
    # C: 2 x 12-bit pointers (0..2048) in one beat, then one bank of 2048 entries
    assert lay["c_ext"] == (8704 + 8192, 4, 64) and lay["c_ent"] == (16896 + 256, 8, 2048)
    assert SPG.dram_bytes(DRAM.word_bytes) == 17152 + 8 * 2048
    assert not {"a_ent", "c_ext", "c_ent"} & set(CFG.address_map())
    with pytest.raises(ConfigError, match="mem_bytes_per_cycle"):
        SpgemmConfig(operands_dram=1, mem_bytes_per_cycle=4)
    # built alone, the engine's DRAM ports are shaped for the smallest ideal DRAM that
    # holds the layout (33,536 bytes: 64 KiB)
    assert SPG.standalone_dram() == DramConfig(part="ideal", size=1 << 16)
    # 16 banks of 2**22 8-byte entries of C: 512 MiB, more than any part (256 MiB)
    with pytest.raises(ConfigError, match="lower max_dim, max_nnz or max_c_nnz"):
        SpgemmConfig(operands_dram=1, pes=16, max_c_nnz=1 << 22)


def test_engine_alone_bench_refuses_dram_operands():
    from tritium.engines.spgemm.runner import run_spgemm

    A = sp.identity(4, dtype=np.int64, format="csr")
    with pytest.raises(ConfigError, match="Device.spgemm on a device served with a DRAM"):
        run_spgemm(SPG, A, A)


@pytest.mark.parametrize("dram, message", [(None, "SoC has none"),
                                           (DramConfig(size=1 << 14), "more than the 16384")])
def test_soc_without_room_for_the_operands_is_refused(dram, message):
    from tritium.hdl.soc import Soc
    from tritium.sim.build import to_verilog

    with pytest.raises(ConfigError, match=message):
        to_verilog(Soc(SocConfig(engines=(SPG,), dram=dram)), "tritium_soc")


def test_every_semiring_from_dram_equals_golden(served):
    rng = np.random.default_rng(11)
    with Device(served.url) as dev:
        for semiring in SPGEMM_SEMIRINGS:
            A, B = random_operands(rng, 48, 0.08, semiring)
            C, c = dev.spgemm(A, B, semiring, fast=served.backdoor_url)
            assert same(C, golden_csr(A, B, semiring)), semiring
            if semiring == "plus-times":
                assert scipy_equal(C, A, B)
            stats = g.spgemm(SPG, A, B, semiring).stats
            assert c["products"] == stats["products"]
            assert c["mem_reads"] == stats["mem_reads"]
            # an extent is one 4-byte beat, an entry two: the run's DRAM reads lie
            # between 4 and 8 bytes per operand word (the load's CRC proof came before)
            assert 4 * c["mem_reads"] <= c["dram_bytes_read"] <= 8 * c["mem_reads"]
            # C went to the DRAM: 8 bytes an entry (its stride), 4 a row extent
            assert c["dram_bytes_written"] == 8 * C.nnz + 4 * A.shape[0]
            assert c["c_words"] == C.nnz and c["mem_writes"] == C.nnz + A.shape[0]


def test_edges_empty_rows_and_overflow(served):
    # row 0 empty, row 1 reaches every column of B (more than the 12-entry table: extra
    # passes), row 2 a single entry, B with an empty row
    n = 40
    A = sp.lil_matrix((n, n), dtype=np.int64)
    A[1, :] = np.arange(1, n + 1)
    A[2, 5] = -3
    B = sp.lil_matrix((n, n), dtype=np.int64)
    for r in range(n):
        if r != 7:
            B[r, (3 * r) % n] = r + 1
            B[r, (5 * r + 1) % n] = -r
    A, B = A.tocsr(), B.tocsr()
    with Device(served.url) as dev:
        C, c = dev.spgemm(A, B, fast=served.backdoor_url)
    assert same(C, golden_csr(A, B, "plus-times"))
    assert scipy_equal(C, A, B)
    assert c["passes"] >= 1 and C[0].nnz == 0
    # the marker reads of the empty rows move DRAM words too (the model counts them)
    from tritium.engines.spgemm.model import spgemm_dram_estimate

    assert c["dram_bytes_read"] == spgemm_dram_estimate(SPG, DRAM, A, B)["dram_bytes"]


def test_too_large_refused_before_writing(served):
    with Device(served.url) as dev:
        A = sp.random(64, 64, density=0.5, format="csr", random_state=1,
                      data_rvs=lambda k: np.ones(k)).astype(np.int64)
        assert A.nnz > SPG.max_nnz
        before = dev.counters()["dram_bytes_written"]
        with pytest.raises(ShapeError, match=str(SPG.max_nnz)):
            dev.spgemm(A, A, fast=served.backdoor_url)
        assert dev.counters()["dram_bytes_written"] == before


def test_read_dram_outside_the_dram_is_refused(served):
    from tritium.errors import DeviceConfigError

    with Device(served.url) as dev:
        for off, n in ((DRAM.size_bytes - 4, 8), (-1, 4)):
            with pytest.raises(DeviceConfigError, match="outside the device's 65536-byte"):
                dev.read_dram(off, n, fast=served.backdoor_url)
        # inside it, the link and the backdoor read the same bytes
        assert dev.read_dram(0, 64) == dev.read_dram(0, 64, fast=served.backdoor_url)


def test_cycle_model_against_the_rtl_counters(served):
    """The DRAM estimate (spgemm_dram_estimate) against the engine's cycle counter and the
    DRAM's byte counter on a power-law product (A·A) and a banded one."""
    from tritium.engines.spgemm.model import spgemm_dram_estimate

    cases = [g.power_law_graph(64, 3, np.random.default_rng(1)),
             g.banded(64, 2, np.random.default_rng(2))]
    with Device(served.url) as dev:
        for A in cases:
            A = sp.csr_matrix(A).astype(np.int64)
            _, c = dev.spgemm(A, A, fast=served.backdoor_url)
            est = spgemm_dram_estimate(SPG, DRAM, A, A)
            assert c["dram_bytes_read"] == est["dram_bytes"]
            assert c["dram_bytes_written"] == est["dram_bytes_written"]
            err = abs(est["cycles"] - c["cycles"]) / c["cycles"]
            print(f"model {est['cycles']} rtl {c['cycles']} err {err:.3f} "
                  f"dram {est['dram_cycles']} engine {est['engine_cycles']}")
            assert err <= 0.10


# ---- A, B and C that no chip holds ---------------------------------------------------------

#: the on-chip sizes these operands exceed: the served device's SpGEMM engine
#: (tritium.engines.spgemm.config.SOC_SPGEMM) keeps A and B to max_nnz = 4096 entries and
#: C to max_c_nnz = 8192 on chip, and the largest ECP5 the ULX3S carries (LFE5U-85F) has
#: 208 block RAMs of 18 Kbit, 3,833,856 bits in all
ECP5_85F_BRAM_BITS = 208 * 18 * 1024
#: values of 8 bits and indices of 18 (B's 235,520 rows): an entry is one 4-byte beat
BIG = SpgemmConfig(pes=1, hash_bits=9, max_dim=1 << 18, max_nnz=1 << 18, max_c_nnz=1 << 18,
                   value_bits=8, frac_bits=4, semirings=1, operands_dram=1, mem_latency=16)
BIG_DRAM = DramConfig(size=1 << 24)


def big_operands(rng):
    """A: 1024 x 235,520, 230 entries a row, each of its columns once; B: 235,520 x 1024,
    one entry a row at a random column. C's row i merges 230 products into ~206 columns:
    C has ~211k entries. Values ±1, ±2, so no sum leaves the 8-bit range."""
    rows, per = 1024, 230
    n = rows * per
    vals = np.array([-2, -1, 1, 2])
    A = sp.csr_matrix((rng.choice(vals, n), rng.permutation(n),
                       np.arange(0, n + 1, per)), shape=(rows, n), dtype=np.int64)
    B = sp.csr_matrix((rng.choice(vals, n), rng.integers(0, rows, n), np.arange(n + 1)),
                      shape=(n, rows), dtype=np.int64)
    A.sort_indices()
    return A, B


def test_product_larger_than_any_chip_from_dram_equals_scipy():
    """A, B and C each over 200k non-zeros and each larger than the on-chip memory for it,
    served from the DRAM (ideal part): C equals scipy's product exactly, the DRAM's byte
    counters equal the layout's words, and the cycle model is within 10 % of the RTL."""
    from tritium.config import SocConfig as Soc
    from tritium.engines.spgemm.config import SOC_SPGEMM
    from tritium.engines.spgemm.model import spgemm_dram_estimate

    A, B = big_operands(np.random.default_rng(15))
    S = (A @ B).tocsr()
    S.eliminate_zeros()
    assert min(A.nnz, B.nnz, S.nnz) >= 200_000
    assert np.abs(S.data).max() <= BIG.value_max  # no wrap: scipy's values are the engine's
    word = BIG.word_bits("ent")  # 26 bits
    for M in (A, B, S):
        assert M.nnz > max(SOC_SPGEMM.max_nnz, SOC_SPGEMM.max_c_nnz)
        assert M.nnz * word > ECP5_85F_BRAM_BITS
    soc = Soc(engines=(BIG,), dram=BIG_DRAM, max_payload=DRAM_MAX_PAYLOAD)
    with SimulatedDevice(soc) as sd, Device(sd.url) as dev:
        C, c = dev.spgemm(A, B, fast=sd.backdoor_url)
    C = sp.csr_matrix(C, copy=True)
    C.eliminate_zeros()
    assert same(C, S)
    est = spgemm_dram_estimate(BIG, BIG_DRAM, A, B)
    assert c["dram_bytes_read"] == est["dram_bytes"]
    # every entry of C (4-byte stride) and every row extent (8) once
    assert c["dram_bytes_written"] == est["dram_bytes_written"] == 4 * c["c_words"] + 8 * 1024
    err = abs(est["cycles"] - c["cycles"]) / c["cycles"]
    print(f"big: A {A.nnz} B {B.nnz} C {C.nnz}; rtl {c['cycles']} model {est['cycles']} "
          f"err {err:.4f}; dram read {c['dram_bytes_read']} written {c['dram_bytes_written']}")
    assert err <= 0.10


def test_reset_during_a_dram_run_leaves_the_device_whole():
    """RESET while the engine reads A and B from DRAM and writes C there: the readers
    and writers first let what is in flight pass, then the engine is reset, so the DRAM
    still answers (a link read, a CRC) and the next product equals the golden. A reset
    with a write's data still queued would have left the arbiter waiting for it, and
    every later DRAM access (STATUS after it) unanswered."""
    from tritium.engines.spgemm.driver import ENGINE, prepare

    rng = np.random.default_rng(23)
    n = 64
    # a long run with a small C: B's entries in 16 columns, A nearly full
    A = sp.random(n, n, density=0.24, format="csr", random_state=rng,
                  data_rvs=lambda k: rng.integers(-8, 9, k)).astype(np.int64)
    B = sp.csr_matrix((rng.integers(-8, 9, n * 15), (np.repeat(np.arange(n), 15),
                       np.tile(np.arange(0, 60, 4), n))), shape=(n, n), dtype=np.int64)
    hits = 0
    with SimulatedDevice(CFG) as sd, Device(sd.url) as dev:
        op = prepare(SPG, A, B, "plus-times")
        dev.load_dram(operand_images(SPG, DRAM.word_bytes, op.A, op.B), fast=sd.backdoor_url)
        for k in range(6):
            dev.start(ENGINE, rows=n, b_rows=n, semiring=0)
            for _ in range(k % 3):
                dev.counters()  # a round trip or two further into the run
            hits += dev.status()["flags"] & 1  # still running when RESET comes
            dev.reset()
            assert not dev.status()["flags"] & 1, f"still busy after RESET ({k})"
            assert len(dev.read_dram(0, 256)) == 256
            dev.crc(dev.map["dram"]["base"], 4096)
        C, c = dev.spgemm(A, B, fast=sd.backdoor_url)
    assert hits >= 3, f"only {hits} of 6 RESETs landed mid-run: the test lost its point"
    assert c["products"] > 10_000
    assert same(C, golden_csr(A, B, "plus-times")) and scipy_equal(C, A, B)
