"""`tritium sim spgemm --matrix` and `tritium estimate --spgemm` take a Matrix Market or
.npz file as well as a built-in name, with the typed one-line errors of `run spgemm --a`.

The files are real ones, written by scipy.io.mmwrite and scipy.sparse.save_npz; the
expected counts come from scipy's own products of the matrices' patterns.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from tritium.engines.spgemm import golden as g


def run(*args):
    return subprocess.run([sys.executable, "-m", "tritium.cli", *args], capture_output=True,
                          text=True)


def pattern(M):
    P = sp.csr_matrix(M, dtype=np.int64, copy=True)
    P.data[:] = 1
    return P


def estimate(matrix):
    r = run("estimate", "--spgemm", str(matrix), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_estimate_of_a_matrix_market_file_equals_the_built_in(tmp_path):
    A = g.pyamg_matrix("airfoil")
    scipy.io.mmwrite(tmp_path / "airfoil.mtx", A)
    got, named = estimate(tmp_path / "airfoil.mtx"), estimate("airfoil")
    P = pattern(A)
    # one product per (A entry, entry of the B row it selects); C: every column reached
    assert got["products"] == int(np.diff(P.indptr)[P.indices].sum())
    assert got["out"] == (P @ P).nnz
    assert {k: got[k] for k in ("cycles", "products", "out", "merges")} == \
        {k: named[k] for k in ("cycles", "products", "out", "merges")}


def test_estimate_of_a_non_square_float_npz_is_a_times_a_transposed(tmp_path):
    rng = np.random.default_rng(3)
    A = sp.random(40, 90, density=0.05, random_state=rng, format="csr") * 3.5
    sp.save_npz(tmp_path / "a.npz", A)
    got = estimate(tmp_path / "a.npz")
    P = pattern(A)
    assert got["out"] == (P @ P.T).nnz
    assert got["products"] == int(np.diff(P.T.tocsr().indptr)[P.indices].sum())
    # fractional values run through the fixed-point semiring, as on the device
    assert got["semiring"] == "fixed"


@pytest.mark.parametrize("command", [("estimate", "--spgemm"), ("sim", "spgemm", "--matrix")])
def test_bad_matrix_files_are_one_line_errors(tmp_path, command):
    (tmp_path / "bad.mtx").write_text("%%MatrixMarket matrix coordinate real general\n3 3\n")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    for path, says in ((tmp_path / "bad.mtx", "cannot read"),
                       (tmp_path / "bad.npz", "cannot read"),
                       (tmp_path / "none.mtx", "does not exist")):
        r = run(*command, str(path))
        assert r.returncode != 0 and says in r.stderr and str(path) in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = run(*command, "no-such-matrix")
    assert r.returncode != 0 and "unknown matrix" in r.stderr and ".mtx" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_matrix_file_beyond_the_engine_names_the_limit(tmp_path):
    scipy.io.mmwrite(tmp_path / "big.mtx", sp.identity(400, dtype=np.int64, format="coo"))
    r = run("sim", "spgemm", "--pes", "2", "--hash-bits", "4", "--max-dim", "300",
            "--max-nnz", "2048", "--matrix", str(tmp_path / "big.mtx"))
    assert r.returncode != 0 and "at most 300" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.verilator
@pytest.mark.parametrize("write,semiring,transposed", [
    (lambda p, A: scipy.io.mmwrite(p / "m.mtx", A), "plus-times", False),
    (lambda p, A: sp.save_npz(p / "m.npz", A.tocsr()), "min-plus", True),
])
def test_sim_spgemm_on_a_matrix_file(tmp_path, write, semiring, transposed):
    # the config of tests/test_spgemm_verilator.py (CFG): its build is reused
    rng = np.random.default_rng(5)
    A = g.random_csr(48, 60 if transposed else 48, 0.08, rng, 1, 9)
    write(tmp_path, A)
    path = next(tmp_path.iterdir())
    as_json = ["--json"] if transposed else []  # one case each way: table and JSON
    r = run("sim", "spgemm", "--pes", "2", "--hash-bits", "4", "--max-dim", "300",
            "--max-nnz", "2048", "--matrix", str(path), "--semiring", semiring, *as_json)
    assert r.returncode == 0, r.stderr
    P = pattern(A)
    c_nnz = (P @ P.T if transposed else P @ P).nnz
    if as_json:
        got = json.loads(r.stdout)
        assert (got["a_rows"], got["a_cols"], got["a_nnz"], got["c_nnz"]) == (
            48, A.shape[1], A.nnz, c_nnz)
        assert got["equals_golden"] and got["semiring"] == semiring
        assert got["counters"]["cycles"] > 0
        assert got["merges_per_cycle"] == got["counters"]["merges"] / got["counters"]["cycles"]
    else:
        assert f"A 48x{A.shape[1]} nnz {A.nnz}; C nnz {c_nnz}; C equals the golden " \
            f"({semiring})" in " ".join(r.stdout.split())
