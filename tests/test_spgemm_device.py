"""SpGEMM on the served SoC: Device.spgemm over a real socket to the Verilated SoC, every
product checked exactly against the golden model (and scipy for plus-times)."""

import json

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from tritium import cli
from tritium.config import served_soc
from tritium.engines.spgemm.config import SOC_SPGEMM, SPGEMM_SEMIRINGS
from tritium.errors import ConfigError, ShapeError
from tritium.engines.spgemm import golden as g
from tritium import protocol as P
from tritium.engines import tmv as TMV, spgemm as SPGEMM
from tritium.host.device import Device, DeviceConfigError, DeviceError
from tritium.sim.serve import SimulatedDevice

pytestmark = pytest.mark.verilator

CFG = served_soc("spgemm")  # `tritium serve --engine spgemm`: one build for the module
SPG = CFG.engine_config("spgemm")


@pytest.fixture(scope="module")
def sim():
    with SimulatedDevice(CFG) as s:
        yield s


@pytest.fixture()
def dev(sim):
    with Device(sim.url) as d:
        yield d


def golden_csr(A, B, semiring):
    C = g.spgemm(SPG, sp.csr_matrix(A), sp.csr_matrix(B), semiring).csr()
    C.sort_indices()
    return C


def operands(name, semiring):
    """A pyamg matrix's structure with values the semiring takes."""
    low, high = {"or-and": (0, 1), "fixed": (-(3 << SPG.frac_bits), 3 << SPG.frac_bits)}.get(
        semiring, (-8, 8))
    return g.pyamg_matrix(name, np.random.default_rng(7), low=low, high=high)


def test_info_reports_the_engine(dev):
    assert dev.cfg == CFG and dev.cfg.engine_config("spgemm") == SOC_SPGEMM
    assert dev.map == CFG.address_map()
    spec = dev.info["engines"]["spgemm"]
    assert spec["start"] == SPGEMM.START_ID == 3
    assert [tuple(f) for f in spec["fields"]] == [("rows", 4), ("b_rows", 4), ("semiring", 1)]
    assert spec["regions"] == ["a_ext", "a_ent", "b_ext", "b_ent", "c_ext", "c_ent"]
    assert ["spgemm_cycles", 32] in spec["counters"]
    assert dev.info["counters"][:2] == ["spgemm_cycles", "spgemm_products"]


@pytest.mark.parametrize("semiring", SPGEMM_SEMIRINGS)
def test_pyamg_every_semiring_equals_golden(dev, semiring):
    assert semiring in SPG.semiring_names  # the served engine has every semiring
    A = operands("airfoil", semiring)
    C, cnt = dev.spgemm(A, A, semiring)
    want = golden_csr(A, A, semiring)
    assert g.same_matrix(C, want)
    ref = g.spgemm(SPG, A, A, semiring).stats
    assert (cnt["products"], cnt["merges"], cnt["c_words"]) == \
        (ref["products"], ref["merges"], ref["out"])
    if semiring == "plus-times":
        assert g.same_matrix(g.canonical(C), g.scipy_plus_times(A, A))


@pytest.mark.parametrize("name", ["knot", "unit_square"])
def test_more_pyamg_matrices_plus_times(dev, name):
    A = operands(name, "plus-times")
    C, _ = dev.spgemm(A, A)
    assert g.same_matrix(C, golden_csr(A, A, "plus-times"))
    assert g.same_matrix(g.canonical(C), g.scipy_plus_times(A, A))


def test_rectangular_matrix_market_file(dev, tmp_path):
    rng = np.random.default_rng(3)
    A = g.random_csr(40, 70, 0.1, rng)
    B = g.random_csr(70, 55, 0.08, rng)
    scipy.io.mmwrite(tmp_path / "A.mtx", A)
    scipy.io.mmwrite(tmp_path / "B.mtx", B.tocoo())
    A2, B2 = scipy.io.mmread(tmp_path / "A.mtx"), scipy.io.mmread(tmp_path / "B.mtx")
    assert not sp.isspmatrix_csr(A2)  # the driver takes any format (COO here)
    C, _ = dev.spgemm(A2, B2, "min-plus")
    assert C.shape == (40, 55)
    assert g.same_matrix(C, golden_csr(A, B, "min-plus"))
    C, _ = dev.spgemm(A2, B2)
    assert g.same_matrix(g.canonical(C), g.scipy_plus_times(A, B))


def test_floats_run_through_the_fixed_point_semiring(dev):
    rng = np.random.default_rng(5)
    A = sp.random(30, 30, 0.15, format="csr", random_state=rng)
    A.data = np.round(rng.uniform(-2, 2, A.nnz), 3)
    C, _ = dev.spgemm(A, A)
    scale = 1 << SPG.frac_bits
    Aq = sp.csr_matrix(A, copy=True)
    Aq.data = np.round(A.data * scale).astype(np.int64)
    want = golden_csr(Aq, Aq, "fixed")
    assert C.dtype == np.float64
    assert np.array_equal(C.indices, want.indices) and np.array_equal(C.indptr, want.indptr)
    assert np.array_equal(C.data * scale, want.data.astype(np.float64))
    assert abs(C - A @ A).max() < 30 * 2.0 / scale * 4  # floors of 30 products at most
    with pytest.raises(ShapeError, match="integers"):
        dev.spgemm(A, A, "min-plus")


def executed(dev):
    """The device's last executed WRITE/START/RESET: unchanged = none of them arrived."""
    st = dev.status()
    return st["have_last"], st["last_seq"]


@pytest.mark.parametrize("make,limit", [
    (lambda: sp.identity(SPG.max_dim + 1, dtype=np.int64, format="csr"), f"{SPG.max_dim}"),
    (lambda: sp.csr_matrix(np.ones((70, 70), np.int64)), f"{SPG.max_nnz}"),
    (lambda: sp.csr_matrix(np.ones((1, 9000), np.int64)), f"{SPG.max_dim}"),
])
def test_too_large_is_refused_before_anything_is_sent(dev, make, limit):
    dev.write(dev.map["a_ext"]["base"], bytes(4))  # a known last_seq
    before = executed(dev)
    with pytest.raises(ShapeError, match=limit):
        dev.spgemm(make(), make().T)
    assert executed(dev) == before


def test_c_beyond_the_bank_is_refused_with_its_limit(dev):
    n = 100  # 100 x 100 dense C from a 100 x 1 column times a 1 x 100 row
    A = sp.csr_matrix(np.ones((n, 1), np.int64))
    B = sp.csr_matrix(np.ones((1, n), np.int64))
    assert n * n > SPG.max_c_nnz
    dev.write(dev.map["a_ext"]["base"], bytes(4))
    before = executed(dev)
    with pytest.raises(ShapeError, match=f"{n * n} entries.*at most {SPG.max_c_nnz}"):
        dev.spgemm(A, B)
    assert executed(dev) == before


def test_bad_operands_are_typed_errors(dev):
    A = sp.csr_matrix(np.ones((3, 4), np.int64))
    with pytest.raises(ShapeError, match="A's columns must equal B's rows"):
        dev.spgemm(A, A)
    with pytest.raises(ShapeError, match="operand range"):
        dev.spgemm(A * (1 << 40), A.T)
    with pytest.raises(ConfigError, match="unknown semiring"):
        dev.spgemm(A, A.T, "max-times")
    with pytest.raises(ShapeError, match="scipy.sparse"):
        dev.spgemm(np.ones((2, 2)), np.ones((2, 2)))


@pytest.mark.parametrize("fields", [
    {"rows": 0, "b_rows": 4, "semiring": 0},
    {"rows": SOC_SPGEMM.max_dim + 1, "b_rows": 4, "semiring": 0},
    {"rows": 4, "b_rows": 0, "semiring": 0},
    {"rows": 4, "b_rows": 4, "semiring": len(SPGEMM_SEMIRINGS)},
    {"rows": 4, "b_rows": 4, "semiring": 255},
])
def test_bad_start_is_naked(dev, fields):
    dev.write(dev.map["a_ext"]["base"], bytes(4))  # a known last_seq
    before, ran = dev.counters()["naks"], executed(dev)
    with pytest.raises(DeviceError, match="argument out of range"):
        dev.start("spgemm", **fields)
    # NAKed (more than once if the link resent it on a slow answer), and nothing ran
    assert dev.counters()["naks"] > before and executed(dev) == ran
    assert not dev.status()["flags"] & P.STATUS_BUSY


def test_unknown_engine_id_is_naked(dev):
    with pytest.raises(DeviceError, match="argument out of range"):
        dev.link.request(P.START, bytes([TMV.START_ID]) + bytes(13))


def test_no_weight_memory_on_this_device(dev):
    with pytest.raises(DeviceConfigError, match="has no tmv engine"):
        dev.plan([])


def test_cli_run_spgemm(sim, tmp_path, capsys):
    A = g.pyamg_matrix("unit_square", np.random.default_rng(2), low=0, high=5)
    scipy.io.mmwrite(tmp_path / "A.mtx", A)
    sp.save_npz(tmp_path / "B.npz", A.T.tocsr())
    assert cli.main(["run", "spgemm", "--a", str(tmp_path / "A.mtx"), "--b",
                     str(tmp_path / "B.npz"), "--device", sim.url, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    want = golden_csr(A, A.T, "plus-times")
    assert res["equal_golden"] is True and res["equal_scipy"] is True
    assert res["c_nnz"] == want.nnz and res["a_nnz"] == A.nnz
    assert cli.main(["run", "spgemm", "--a", str(tmp_path / "A.mtx"), "--semiring",
                     "max-plus", "--device", sim.url]) == 0
    assert "equal_golden" in capsys.readouterr().out


def test_cli_run_spgemm_bad_file(sim, tmp_path, capsys):
    (tmp_path / "bad.mtx").write_text("not a matrix\n")
    code = cli.main(["run", "spgemm", "--a", str(tmp_path / "bad.mtx"), "--device", sim.url])
    err = capsys.readouterr().err
    assert code != 0 and "cannot read" in err and len(err.strip().splitlines()) == 1
    code = cli.main(["run", "spgemm", "--a", str(tmp_path / "none.mtx"), "--device", sim.url])
    assert code != 0 and "does not exist" in capsys.readouterr().err


def test_reset_mid_run_leaves_the_next_product_exact(dev):
    """RESET while rows are being merged: the tables' RAM keeps the interrupted pass's
    used slots, which the engine sweeps clear after the reset, so the next products equal
    the golden (without the sweep every later product lost entries)."""
    A = operands("airfoil", "plus-times")
    C, c = dev.spgemm(A, A)  # A and B now in the engine's memories
    assert g.same_matrix(C, golden_csr(A, A, "plus-times"))
    hits = 0
    for k in range(4):
        dev.start(SPGEMM.ENGINE.name, rows=A.shape[0], b_rows=A.shape[0], semiring=0)
        for _ in range(k):
            dev.status()
        hits += dev.status()["flags"] & P.STATUS_BUSY
        dev.reset()
    assert hits >= 2, f"only {hits} of 4 RESETs landed mid-run: the test lost its point"
    for _ in range(2):
        C2, c2 = dev.spgemm(A, A)
        assert g.same_matrix(C2, golden_csr(A, A, "plus-times"))
        assert c2["cycles"] == c["cycles"]
