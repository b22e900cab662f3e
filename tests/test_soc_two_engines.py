"""A served SoC with two engines (the TMV and a SpGEMM engine): one map, START by
engine id, STATUS of the engine started last, bus reads from both, over a real socket."""

import numpy as np
import pytest

from tritium.config import SocConfig
from tritium.engines.spgemm.config import SpgemmConfig
from tritium.engines.spgemm import golden as g
from tritium.engines.tmv.golden import ternary_matvec
from tritium import protocol as P
from tritium.engines import mfc as MFC
from tritium.golden.checkpoint import load_checkpoint
from tritium.host.device import Device, DeviceError
from tritium.sim.serve import SimulatedDevice

pytestmark = pytest.mark.verilator

SPG = SpgemmConfig(pes=2, hash_bits=5, max_dim=256, max_nnz=2048, max_c_nnz=4096)
CFG = SocConfig(engines=(SocConfig().tmv, SPG))


@pytest.fixture(scope="module")
def sim():
    with SimulatedDevice(CFG) as s:
        yield s


def test_both_engines_on_one_device(sim, h64_checkpoint):
    desc = load_checkpoint(h64_checkpoint(1))
    rng = np.random.default_rng(4)
    with Device(sim.url) as dev:
        assert set(dev.info["engines"]) == {"tmv", "spgemm"} and dev.map == CFG.address_map()
        dev.load(desc)
        name = next(iter(dev.placements))
        p = dev.placements[name]
        x = rng.integers(-128, 128, p.cols)
        y, _ = dev.matvec(name, x)
        assert np.array_equal(y, ternary_matvec(CFG.tmv, p.codes, x)[0])
        A = g.pyamg_matrix("unit_square", rng, low=-3, high=3)
        for semiring in ("plus-times", "min-plus"):
            C, cnt = dev.spgemm(A, A, semiring)
            want = g.spgemm(SPG, A, A, semiring).csr()
            want.sort_indices()
            assert g.same_matrix(C, want)
            assert dev.status()["result_beats"] == cnt["c_words"] == want.nnz
        # the TMV again, after the SpGEMM run: its results, its STATUS
        y2, _ = dev.matvec(name, -x)
        assert np.array_equal(y2, ternary_matvec(CFG.tmv, p.codes, -x)[0])
        # the TMV's result words since the load's RESET: two matvecs of ceil(rows/pe)
        assert dev.status()["result_beats"] == 2 * -(-p.rows // CFG.tmv.pe)
        with pytest.raises(DeviceError, match="argument out of range"):
            dev.link.request(P.START, bytes([MFC.START_ID, 0, 0]))
