"""SpGEMM with A, B and C in the DRAM of the ULX3S's SDR part (MT48LC16M16 through
LiteDRAM and its SDRAMPHYModel) on the served SoC, everything over the link (A and B
loaded and proved, C read back through the ``dram`` region): plus-times equal to scipy
exactly, and the DRAM's byte counters equal to the words the layout gives the reads and
C's writes (16-bit beats: an extent is two beats, an entry four)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tritium.config import SocConfig
from tritium.dram import DramConfig
from tritium.engines.spgemm.config import SpgemmConfig
from tritium.engines.spgemm.model import spgemm_dram_estimate
from tritium.host import Device
from tritium.sim.serve import DRAM_MAX_PAYLOAD, SimulatedDevice

pytestmark = pytest.mark.verilator

DRAM = DramConfig(part="mt48lc16m16", size=1 << 20)
SPG = SpgemmConfig(pes=1, hash_bits=5, max_dim=64, max_nnz=1024, max_c_nnz=2048,
                   operands_dram=1, mem_latency=16, semirings=1)
CFG = SocConfig(engines=(SPG,), dram=DRAM, max_payload=DRAM_MAX_PAYLOAD)


def test_plus_times_from_sdr_equals_scipy():
    rng = np.random.default_rng(3)
    A = sp.random(60, 50, density=0.1, format="csr", random_state=rng,
                  data_rvs=lambda k: rng.integers(-8, 9, k)).astype(np.int64)
    B = sp.random(50, 40, density=0.1, format="csr", random_state=rng,
                  data_rvs=lambda k: rng.integers(-8, 9, k)).astype(np.int64)
    A.data[A.data == 0] = 1  # no stored zeros: the DRAM bytes below count every entry
    B.data[B.data == 0] = 1
    with SimulatedDevice(CFG) as sd, Device(sd.url) as dev:
        C, c = dev.spgemm(A, B)
    S = (A @ B).tocsr()
    C = sp.csr_matrix(C, copy=True)
    C.eliminate_zeros(), S.eliminate_zeros()
    C.sort_indices(), S.sort_indices()
    assert np.array_equal(C.indptr, S.indptr) and np.array_equal(C.indices, S.indices)
    assert np.array_equal(C.data, S.data)
    est = spgemm_dram_estimate(SPG, DRAM, A, B)
    assert c["dram_bytes_read"] == est["dram_bytes"]
    # C: an entry's 8-byte stride and a row extent's 4 (two 12-bit pointers), once each
    assert c["dram_bytes_written"] == est["dram_bytes_written"] == 8 * c["c_words"] + 4 * 60
