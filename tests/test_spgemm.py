"""SpGEMM: golden model against scipy and independent dense references, host-side bad
input, config, and the HashAccumulator in Amaranth's simulator against the golden."""

import random

import numpy as np
import pytest
import scipy.sparse as sp
from amaranth.sim import Simulator

from tritium.engines.spgemm.config import SPGEMM_SEMIRINGS, SpgemmConfig
from tritium.errors import ConfigError, ShapeError
from tritium.engines.spgemm import golden as g
from tritium.engines.spgemm.hdl import HashAccumulator

BIG = SpgemmConfig(hash_bits=6, max_dim=2000, max_nnz=60_000)
SMALL = SpgemmConfig(hash_bits=3, max_dim=2000, max_nnz=60_000)  # capacity 6: many passes


def csr(dense):
    M = sp.csr_matrix(np.asarray(dense, dtype=np.int64))
    M.sort_indices()
    return M


def assert_matches_scipy(cfg, A, B):
    res = g.spgemm(cfg, A, B)
    assert g.same_matrix(g.canonical(res.csr(), cfg.value_bits),
                         g.scipy_plus_times(A, B, cfg.value_bits))
    return res


# ---- golden vs scipy --------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [BIG, SMALL], ids=["H6", "H3"])
@pytest.mark.parametrize("seed,shape,density", [(1, (30, 40, 50), 0.1), (2, (60, 20, 70), 0.3),
                                                (3, (5, 200, 5), 0.05), (4, (1, 1, 1), 1.0)])
def test_golden_random_matches_scipy(cfg, seed, shape, density):
    rng = np.random.default_rng(seed)
    m, k, n = shape
    assert_matches_scipy(cfg, g.random_csr(m, k, density, rng), g.random_csr(k, n, density, rng))


@pytest.mark.parametrize("name", ["airfoil", "bar", "knot"])
def test_golden_pyamg_a_times_a_matches_scipy(name):
    A = g.pyamg_matrix(name)
    res = assert_matches_scipy(BIG, A, A)
    assert res.stats["products"] >= res.stats["merges"] >= res.stats["out"] > 0


@pytest.mark.parametrize("make", [
    lambda rng: g.power_law_graph(300, 3, rng),
    lambda rng: g.banded(200, 5, rng),
    lambda rng: g.block_diagonal(6, 12, rng),
], ids=["power_law", "banded", "block_diagonal"])
@pytest.mark.parametrize("cfg", [BIG, SMALL], ids=["H6", "H3"])
def test_golden_structured_matches_scipy(make, cfg):
    A = make(np.random.default_rng(5))
    assert_matches_scipy(cfg, A, A)


def test_adversarial_rows_are_exact():
    cfg = SpgemmConfig(hash_bits=3, max_dim=256, max_nnz=4096)
    # empty matrix and empty rows
    Z = sp.csr_matrix((4, 4), dtype=np.int64)
    res = assert_matches_scipy(cfg, Z, Z)
    assert res.rows == [([], [])] * 4 and res.stats["products"] == 0
    # one dense row far wider than the table (capacity 6): windows and passes
    A = csr(np.eye(3, 1, dtype=np.int64) * 3)
    B = csr(np.arange(1, 201).reshape(1, 200))
    res = assert_matches_scipy(cfg, A, B)
    assert res.row_stats[0]["passes"] >= 200 // cfg.capacity - 1
    assert res.rows[0][0] == list(range(200)), "windows leave in ascending column order"
    # every column in one hash bucket: probe chains, still exact
    cols = g.colliding_columns(cfg, 5)
    B = sp.csr_matrix((np.arange(1, 6), (np.zeros(5, int), cols)), shape=(1, 256)).astype(np.int64)
    res = assert_matches_scipy(cfg, csr([[1]]), B)
    assert res.stats["collisions"] == 0 + 1 + 2 + 3 + 4
    # extreme values wrap like int32
    A = csr([[cfg.value_min, cfg.value_max], [cfg.value_max, cfg.value_max]])
    assert_matches_scipy(cfg, A, A)


def test_row_of_collisions_matches_a_hand_computed_table():
    # hash_bits=3: 8 slots; columns hashing to one slot fill consecutive slots in order
    cfg = SpgemmConfig(hash_bits=3, max_dim=256, max_nnz=256)
    cols = g.colliding_columns(cfg, 3)
    products = [(cols[0], 1), (cols[1], 2), (cols[0], 10), (cols[2], 3), (cols[1], 20)]
    c, v, st = g.accumulate_row(cfg, products, lambda x, y: x + y)
    assert (c, v) == (cols, [11, 22, 3])
    # probes: 1, 2, 1, 3, 2
    assert (st["probes"], st["collisions"], st["merges"], st["inserts"]) == (9, 4, 5, 3)


def test_hash_is_knuth_multiplicative():
    cfg = SpgemmConfig(hash_bits=10)
    assert g.hash_slot(cfg, 0) == 0
    assert g.hash_slot(cfg, 1) == 0x9E3779B9 >> 22
    assert g.hash_slot(cfg, 12345) == ((12345 * 2654435769) % 2**32) >> 22


# ---- other semirings against dense references written independently ---------------------

def dense_semiring(A, B, semiring, cfg):
    """C by the definition, on dense arrays with a structure mask, no hashing."""
    a, b = A.toarray(), B.toarray()
    ma, mb = A.copy(), B.copy()
    ma.data[:] = 1
    mb.data[:] = 1
    ma, mb = ma.toarray().astype(bool), mb.toarray().astype(bool)
    m, n = a.shape[0], b.shape[1]
    out = {}
    for i in range(m):
        for j in range(n):
            terms = [(int(a[i, k]), int(b[k, j])) for k in range(a.shape[1])
                     if ma[i, k] and mb[k, j]]
            if not terms:
                continue
            if semiring == "fixed":
                val = sum((x * y) // (1 << cfg.frac_bits) for x, y in terms)
                val = (val + 2**31) % 2**32 - 2**31
            elif semiring in ("min-plus", "max-plus"):
                inf = cfg.value_max if semiring == "min-plus" else cfg.value_min
                sums = [inf if inf in (x, y) else x + y for x, y in terms]
                val = min(sums) if semiring == "min-plus" else max(sums)
            else:  # or-and
                val = int(any(x and y for x, y in terms))
            out[i, j] = val
    return out


def as_dict(res):
    return {(i, j): v for i, (cs, vs) in enumerate(res.rows) for j, v in zip(cs, vs)}


@pytest.mark.parametrize("semiring", ["fixed", "min-plus", "max-plus", "or-and"])
@pytest.mark.parametrize("cfg", [BIG, SMALL], ids=["H6", "H3"])
def test_golden_semirings_match_definition(semiring, cfg):
    rng = np.random.default_rng(7)
    A, B = g.random_csr(15, 25, 0.3, rng), g.random_csr(25, 18, 0.3, rng)
    if semiring == "fixed":
        A.data = rng.integers(-(1 << 20), 1 << 20, A.nnz)
        B.data = rng.integers(-(1 << 20), 1 << 20, B.nnz)
    elif semiring == "or-and":
        A.data, B.data = A.data & 1, B.data & 1
    else:
        inf = g.sentinel(cfg, semiring)
        A.data[::5] = inf  # some "no path" operands
        B.data = rng.integers(cfg.path_min, cfg.path_max, B.nnz)
    assert as_dict(g.spgemm(cfg, A, B, semiring)) == dense_semiring(A, B, semiring, cfg)


# ---- host-side bad input -----------------------------------------------------------------

def test_bad_operands_raise_typed_errors():
    cfg = SpgemmConfig(max_dim=8, max_nnz=16, semirings=0b00101)
    A = csr(np.eye(4))
    with pytest.raises(ShapeError, match="CSR"):
        g.spgemm(cfg, A.tocsc(), A)
    with pytest.raises(ShapeError, match="CSR"):
        g.spgemm(cfg, A.toarray(), A)
    with pytest.raises(ShapeError, match="columns must equal"):
        g.spgemm(cfg, A, csr(np.eye(3)))
    with pytest.raises(ShapeError, match="max_dim"):
        g.spgemm(cfg, csr(np.eye(9)), csr(np.eye(9)))
    with pytest.raises(ShapeError, match="max_nnz"):
        g.spgemm(cfg, csr(np.ones((5, 4))), A)
    bad = sp.csr_matrix((np.array([1, 2]), np.array([2, 1]), np.array([0, 2, 2, 2, 2])), shape=(4, 4))
    with pytest.raises(ShapeError, match="unsorted or duplicate"):
        g.spgemm(cfg, bad, A)
    dup = sp.csr_matrix((np.array([1, 2]), np.array([1, 1]), np.array([0, 2, 2, 2, 2])), shape=(4, 4))
    with pytest.raises(ShapeError, match="unsorted or duplicate"):
        g.spgemm(cfg, dup, A)
    with pytest.raises(ShapeError, match="integers"):
        g.spgemm(cfg, A.astype(np.float64), A)
    with pytest.raises(ShapeError, match="operand range"):
        g.spgemm(cfg, csr(np.eye(4) * 2**31), A)
    with pytest.raises(ShapeError, match="operand range"):
        g.spgemm(cfg, csr(np.eye(4) * 2**30), A, "min-plus")
    with pytest.raises(ConfigError, match="not built"):
        g.spgemm(cfg, A, A, "or-and")
    with pytest.raises(ConfigError, match="unknown semiring"):
        g.spgemm(cfg, A, A, "max-times")


def test_config_round_trip_and_ranges():
    cfg = SpgemmConfig(pes=3, hash_bits=5, max_dim=100, max_nnz=1000, semirings=0b10001)
    assert SpgemmConfig.from_json(cfg.to_json()) == cfg
    assert cfg.semiring_names == ("plus-times", "or-and")
    assert cfg.capacity == 24 and cfg.capacity < cfg.slots
    assert (1 << cfg.index_bits) >= cfg.max_dim and cfg.ptr_bits == (1000).bit_length()
    assert cfg.no_limit > cfg.max_dim + cfg.capacity
    with pytest.raises(ConfigError, match="pes"):
        SpgemmConfig(pes=0)
    with pytest.raises(ConfigError, match="frac_bits"):
        SpgemmConfig(value_bits=16, frac_bits=16)


# ---- HashAccumulator in Amaranth's simulator ------------------------------------------

def run_accumulator(cfg, rows, semiring="plus-times", seed=0, valid_prob=1.0, ready_prob=1.0,
                    max_cycles=200_000):
    """Drive the accumulator with each row's products, running the window/pass control
    the PE applies; returns per row the drained pairs and the summed event strobes."""
    dut = HashAccumulator(cfg)
    rng = random.Random(seed)
    results = []

    async def bench(ctx):
        ctx.set(dut.op, SPGEMM_SEMIRINGS.index(semiring))
        cycles = 0

        async def tick():
            nonlocal cycles
            await ctx.tick()
            cycles += 1
            assert cycles < max_cycles, "HashAccumulator stalled"

        for products in rows:
            out, ev = [], dict.fromkeys(("probe", "collision", "merge", "insert", "hazard"), 0)
            lo, limit = 0, cfg.no_limit
            while True:
                ctx.set(dut.lo, lo)
                ctx.set(dut.limit, limit)
                ctx.set(dut.start, 1)
                await tick()
                ctx.set(dut.start, 0)
                k = 0
                while k < len(products) or not ctx.get(dut.idle):
                    offer = k < len(products) and rng.random() < valid_prob
                    if offer:
                        ctx.set(dut.i.payload, {"col": products[k][0], "value": products[k][1]})
                    ctx.set(dut.i.valid, offer)
                    took = offer and ctx.get(dut.i.ready)
                    for e in ev:
                        ev[e] += ctx.get(getattr(dut, f"ev_{e}"))
                    await tick()
                    k += took
                ctx.set(dut.i.valid, 0)
                ctx.set(dut.drain, 1)
                await tick()
                ctx.set(dut.drain, 0)
                while True:
                    ready = rng.random() < ready_prob
                    ctx.set(dut.o.ready, ready)
                    if ready and ctx.get(dut.o.valid):
                        p = ctx.get(dut.o.payload)
                        out.append((p.col, p.value))
                    done = ctx.get(dut.idle) and not ctx.get(dut.o.valid)
                    await tick()
                    if done:
                        break
                hi = ctx.get(dut.hi)
                if hi < limit:
                    lo, limit = hi, (hi + cfg.capacity if hi == lo else cfg.no_limit)
                elif limit != cfg.no_limit:
                    lo, limit = limit, cfg.no_limit
                else:
                    break
            results.append((out, ev))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


def golden_row(cfg, products, semiring="plus-times"):
    c, v, st = g.accumulate_row(cfg, products, g.semiring_ops(cfg, semiring)[1])
    return list(zip(c, v)), st


ACC = SpgemmConfig(hash_bits=3, max_dim=64, max_nnz=64)


@pytest.mark.parametrize("semiring", SPGEMM_SEMIRINGS)
def test_accumulator_random_rows_with_stalls_match_golden(semiring):
    rng = random.Random(SPGEMM_SEMIRINGS.index(semiring))
    lo, hi = (0, 1) if semiring == "or-and" else (-1000, 1000)
    rows = [[(rng.randrange(30), rng.randint(lo, hi)) for _ in range(rng.randrange(0, 30))]
            for _ in range(8)]
    got = run_accumulator(ACC, rows, semiring, seed=3, valid_prob=0.7, ready_prob=0.5)
    for products, (out, ev) in zip(rows, got):
        want, st = golden_row(ACC, products, semiring)
        assert out == want
        assert (ev["probe"], ev["collision"], ev["merge"], ev["insert"]) == \
            (st["probes"], st["collisions"], st["merges"], st["inserts"])


def test_accumulator_back_to_back_same_column_forwards_every_update():
    products = [(9, k) for k in range(1, 41)]
    [(out, ev)] = run_accumulator(ACC, [products])
    assert out == [(9, sum(range(1, 41)))]
    # every product after the first reads the slot the one before it is writing
    assert ev["hazard"] == len(products) - 1 and ev["collision"] == 0


def test_accumulator_alternating_colliding_columns():
    a, b = g.colliding_columns(ACC, 2)
    products = [(a, 1), (b, 100)] * 10 + [(a, 5)]
    [(out, ev)] = run_accumulator(ACC, [products])
    assert out == [(a, 15), (b, 1000)]
    assert ev["collision"] == 10  # every b probes past a's slot


def test_accumulator_drain_clears_the_table_between_rows():
    rows = [[(3, 7), (4, 1)], [(5, 2)], [], [(3, 1)]]
    got = run_accumulator(ACC, rows, ready_prob=0.3)
    assert [out for out, _ in got] == [[(3, 7), (4, 1)], [(5, 2)], [], [(3, 1)]]


def test_accumulator_overflowing_row_takes_passes_and_stays_exact():
    products = [(c, c + 1) for c in reversed(range(40))] + [(0, 5), (39, 5)]
    [(out, _)] = run_accumulator(ACC, [products], valid_prob=0.8, ready_prob=0.7)
    want, st = golden_row(ACC, products)
    assert out == want and st["passes"] > 0
    assert sorted(out) == [(c, c + 1 + 5 * (c in (0, 39))) for c in range(40)]
