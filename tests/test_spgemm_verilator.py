"""SpgemmEngine in Verilator through cocotb: every semiring, overflowing and colliding
rows, skewed rows across PEs, on-chip and external (latency, bandwidth) operand memory,
random stalls on the streams and on the memories; C read back from the engine's CSR
memory and the counters against the golden model, C against scipy for plus-times; the
hardware's reaction to bad input."""

import numpy as np
import pytest
import scipy.sparse as sp

from tritium.engines.spgemm.config import SPGEMM_SEMIRINGS, SpgemmConfig
from tritium.errors import ShapeError
from tritium.engines.spgemm import golden as g
from tritium.engines.spgemm.runner import load_beats, run_raw, run_spgemm

pytestmark = pytest.mark.verilator

# two designs in all: 2 PEs with a 16-slot table on block RAM; 3 PEs with an 8-slot
# table, only two semirings built, on external memory (5-cycle latency, 4 bytes per
# cycle: an entry read takes 2 cycles of its port)
CFG = SpgemmConfig(pes=2, hash_bits=4, max_dim=300, max_nnz=2048)
CFG3 = SpgemmConfig(pes=3, hash_bits=3, max_dim=64, max_nnz=512, max_c_nnz=2048,
                    semirings=0b00101, mem_latency=5, mem_bytes_per_cycle=4)

#: counters defined to equal the golden model's statistics exactly
EXACT = {"products": "products", "probes": "probes", "collisions": "collisions",
         "merges": "merges", "inserts": "inserts", "passes": "passes",
         "mem_reads": "mem_reads", "c_words": "out", "mem_writes": "mem_writes"}


def check(cfg, A, B, semiring="plus-times", **kw):
    C, cnt = run_spgemm(cfg, A, B, semiring, details=True, **kw)
    ref = cnt.pop("golden")
    # run_spgemm compared C row by row with the golden already; check again here
    assert g.same_matrix(C, ref.csr())
    for hw, gold in EXACT.items():
        assert cnt[hw] == ref.stats[gold], hw
    if semiring == "plus-times":
        assert g.same_matrix(g.canonical(C), g.scipy_plus_times(A, B))
    return C, cnt, ref


def operands(semiring, cfg, seed, m=24, k=30, n=40, density=0.15):
    rng = np.random.default_rng(seed)
    A, B = g.random_csr(m, k, density, rng), g.random_csr(k, n, density, rng)
    if semiring == "or-and":
        A.data, B.data = A.data & 1, B.data & 1
    elif semiring in ("min-plus", "max-plus"):
        A.data[::4] = g.sentinel(cfg, semiring)
        B.data[B.data == 0] = 1
    elif semiring == "fixed":
        A.data = rng.integers(cfg.value_min, cfg.value_max, A.nnz)
        B.data = rng.integers(-(1 << 20), 1 << 20, B.nnz)
    return A, B


@pytest.mark.parametrize("semiring", SPGEMM_SEMIRINGS)
def test_every_semiring_with_random_stalls(semiring, tmp_path):
    A, B = operands(semiring, CFG, SPGEMM_SEMIRINGS.index(semiring))
    _, cnt, _ = check(CFG, A, B, semiring, seed=3, valid_prob=0.6, ready_prob=0.5,
                      mem_hold_prob=0.3, run_dir=tmp_path)
    assert cnt["stall_memory"] > 0, "the random memory pauses reached the PEs"
    stalls = ("stall_merge", "stall_memory", "stall_fetch", "stall_pass", "idle_pe")
    assert cnt["products"] + sum(cnt[k] for k in stalls) == cnt["cycles"] * CFG.pes


def test_airfoil_a_times_a_matches_scipy(tmp_path):
    A = g.pyamg_matrix("airfoil")
    _, cnt, ref = check(CFG, A, A, run_dir=tmp_path)
    assert ref.stats["passes"] > 0, "16-slot tables overflow on airfoil rows"


def test_wide_row_and_colliding_columns(tmp_path):
    cols = g.colliding_columns(CFG, 6)
    rows, cs, vs = [], [], []
    for c in cols:  # row 0 of B: six columns in one bucket
        rows.append(0), cs.append(c), vs.append(c + 1)
    for c in range(250):  # row 1: 250 columns, far above the 12-entry capacity
        rows.append(1), cs.append(c), vs.append(-c)
    B = sp.csr_matrix((vs, (rows, cs)), shape=(2, 300)).astype(np.int64)
    A = sp.csr_matrix(np.array([[1, 0], [0, 2], [3, 1], [0, 0]], dtype=np.int64))
    _, cnt, ref = check(CFG, A, B, seed=5, valid_prob=0.9, ready_prob=0.7, run_dir=tmp_path)
    assert cnt["collisions"] >= 1 + 2 + 3 + 4 + 5
    assert ref.row_stats[1]["passes"] >= 250 // CFG.capacity - 1


def test_extreme_values_and_tiny_shapes(tmp_path):
    A = sp.csr_matrix(np.array([[CFG.value_min, CFG.value_max]], dtype=np.int64))
    B = sp.csr_matrix(np.array([[CFG.value_max], [CFG.value_max]], dtype=np.int64))
    check(CFG, A, B, run_dir=tmp_path)
    check(CFG, sp.csr_matrix(np.array([[7]])), sp.csr_matrix(np.array([[-6]])), run_dir=tmp_path)
    Z = sp.csr_matrix((5, 5), dtype=np.int64)
    C, cnt, _ = check(CFG, Z, Z, run_dir=tmp_path)
    assert C.nnz == 0 and cnt["c_words"] == 0


def test_skewed_rows_keep_the_other_pes_busy(tmp_path):
    # row 0 is long (a dense row times dense B rows); rows 1.. are short
    rng = np.random.default_rng(9)
    B = g.random_csr(60, 60, 0.12, rng)
    dense_row = np.zeros((1, 60), np.int64)
    dense_row[0, :] = 1
    short = g.random_csr(40, 60, 0.03, rng)
    A = sp.vstack([sp.csr_matrix(dense_row), short], format="csr")
    A.sort_indices()
    _, alone, _ = check(CFG3, A[:1], B, run_dir=tmp_path / "alone")
    _, rest, _ = check(CFG3, A[1:], B, run_dir=tmp_path / "rest")
    _, both, _ = check(CFG3, A, B, run_dir=tmp_path / "both")
    # the short rows run on the other two PEs while the long one is in progress
    assert both["cycles"] < alone["cycles"] + rest["cycles"] // 2
    # a PE holds up to three rows, so a short row dealt on a tie can finish behind the
    # long one: a few percent, not a second long row
    assert both["cycles"] <= 1.05 * alone["cycles"]


def test_external_memory_with_random_pauses_stays_exact(tmp_path):
    A, B = operands("min-plus", CFG3, 11, m=40, k=40, n=40, density=0.2)
    _, cnt, ref = check(CFG3, A, B, "min-plus", seed=2, valid_prob=0.7, ready_prob=0.6,
                        mem_hold_prob=0.4, run_dir=tmp_path)
    assert ref.stats["passes"] > 0 and cnt["stall_memory"] > 0
    # without pauses the same run is faster, and C is the same
    _, calm, _ = check(CFG3, A, B, "min-plus", run_dir=tmp_path / "calm")
    assert calm["cycles"] < cnt["cycles"]


def test_c_memory_is_csr_in_drain_order(tmp_path):
    # the stored rows tile the entry memory (checked inside run_spgemm); each row's
    # extent gives its entries, which leave in drain order (first touch of a column)
    A = sp.csr_matrix(np.array([[0, 1, 1], [0, 0, 0], [1, 0, 0]], dtype=np.int64))
    B = sp.csr_matrix(np.array([[0, 0, 4, 0], [0, 0, 0, 2], [3, 0, 5, 0]], dtype=np.int64))
    C, cnt, _ = check(CFG, A, B, run_dir=tmp_path)
    assert C.indices.tolist() == [3, 0, 2, 2] and C.data.tolist() == [2, 3, 5, 4]
    assert C.indptr.tolist() == [0, 3, 3, 4]
    assert cnt["mem_writes"] == C.nnz + A.shape[0]


def test_unbuilt_semiring_sets_error_and_finishes(tmp_path):
    A = sp.csr_matrix(np.eye(3, dtype=np.int64))
    with pytest.raises(Exception, match="not built"):
        run_spgemm(CFG3, A, A, "or-and")
    # the hardware itself, given the command anyway: error flag, no output, no hang
    code = SPGEMM_SEMIRINGS.index("or-and")
    out = run_raw(CFG3, load_beats(CFG3, A, A), {"rows": 3, "b_rows": 3, "semiring": code},
                  run_dir=tmp_path)
    assert out["error"] == 1 and out["counters"]["products"] == 0
    assert out["counters"]["mem_writes"] == 0


def test_column_index_beyond_b_sets_error_and_skips_the_entry(tmp_path):
    A = sp.csr_matrix(np.array([[1, 0, 2]], dtype=np.int64))
    B = sp.csr_matrix(np.array([[5], [6], [7]], dtype=np.int64))
    # tell the engine B has two rows: A's column 2 points past it
    out = run_raw(CFG3, load_beats(CFG3, A, B), {"rows": 1, "b_rows": 2, "semiring": 0},
                  run_dir=tmp_path)
    assert out["error"] == 1 and out["rows"] == [[[0, 5]]]


def test_host_rejects_bad_operands_before_simulating():
    A = sp.csr_matrix(np.eye(3, dtype=np.int64))
    with pytest.raises(ShapeError):
        run_spgemm(CFG3, A, sp.csr_matrix(np.eye(4, dtype=np.int64)))
    with pytest.raises(ShapeError):
        run_spgemm(CFG3, sp.csr_matrix(np.eye(65, dtype=np.int64)),
                   sp.csr_matrix(np.eye(65, dtype=np.int64)))
    with pytest.raises(ShapeError, match="max_c_nnz"):  # C would not fit its memory
        ones = sp.csr_matrix(np.ones((50, 10), dtype=np.int64))
        run_spgemm(CFG3, ones, ones.T.tocsr())
