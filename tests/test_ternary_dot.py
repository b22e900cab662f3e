"""TernaryDot: golden model, Amaranth simulation, and cocotb + Verilator against the golden."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from tritium.engines.tmv.config import TernaryDotConfig
from tritium.errors import ConfigError, ShapeError
from tritium.golden.ternary import CODE_INVALID, CODE_NEG, CODE_POS, CODE_ZERO, decode, encode
from tritium.engines.tmv.golden import ternary_dot, to_beats
from tritium.engines.tmv.hdl import TernaryDot
from tritium.engines.tmv.hdl.dot import beat_layout


def random_vectors(cfg, n, rng, max_len=None):
    out = []
    for _ in range(n):
        length = int(rng.integers(1, (max_len or cfg.max_length) + 1))
        out.append((rng.integers(0, 3, length), rng.integers(cfg.act_min, cfg.act_max + 1, length)))
    return out


# ---- golden ------------------------------------------------------------------------------

def test_code_convention_matches_hf_bitnet_value_plus_one():
    assert (CODE_NEG, CODE_ZERO, CODE_POS, CODE_INVALID) == (0, 1, 2, 3)
    assert encode([-1, 0, 1]).tolist() == [0, 1, 2]
    assert decode([0, 1, 2, 3]).tolist() == [-1, 0, 1, 0]
    with pytest.raises(ValueError):
        encode([2])


def test_golden_dot_against_plain_loop():
    cfg = TernaryDotConfig(lanes=4, max_length=64)
    rng = np.random.default_rng(3)
    for codes, x in random_vectors(cfg, 50, rng):
        w = {0: -1, 1: 0, 2: 1}
        expect = sum(w[int(c)] * int(v) for c, v in zip(codes, x))
        assert ternary_dot(cfg, codes, x) == (expect, False)


def test_golden_rejects_bad_shapes():
    cfg = TernaryDotConfig(lanes=4, max_length=8)
    with pytest.raises(ShapeError):
        ternary_dot(cfg, [1] * 9, [0] * 9)
    with pytest.raises(ShapeError):
        ternary_dot(cfg, [1] * 3, [0] * 2)
    with pytest.raises(ShapeError):
        ternary_dot(cfg, [1], [128])


def test_accumulator_width_is_the_exact_bound():
    # worst case: every activation -128 with weight -1 gives +128 * L
    for length in (1, 7, 8, 1000, 4096, 1 << 20):
        cfg = TernaryDotConfig(max_length=length)
        bound = 128 * length
        assert -(1 << (cfg.acc_bits - 1)) <= -bound and bound <= (1 << (cfg.acc_bits - 1)) - 1
        assert bound > (1 << (cfg.acc_bits - 2)) - 1, "one bit narrower would also hold it"


def test_config_validation_and_json_round_trip():
    cfg = TernaryDotConfig(lanes=8, max_length=100)
    assert TernaryDotConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="lanes"):
        TernaryDotConfig(lanes=0)
    with pytest.raises(ConfigError, match="unknown field"):
        TernaryDotConfig.from_dict({"kind": "ternary-dot", "lane": 3})


def test_beats_pad_with_zero_weight():
    cfg = TernaryDotConfig(lanes=4, max_length=16)
    beats = to_beats(cfg, [2, 0, 2, 2, 0], [1, 2, 3, 4, 5])
    assert [b[2] for b in beats] == [False, True]
    assert beats[1][0] == [0, CODE_ZERO, CODE_ZERO, CODE_ZERO]


# ---- Amaranth simulator --------------------------------------------------------------

def amaranth_run(cfg, vectors, *, seed=0, valid_prob=1.0, ready_prob=1.0, max_cycles=100_000):
    """Drive TernaryDot in Amaranth's simulator with random stalls; return results, error
    flag and (first input cycle, output cycles)."""
    dut = TernaryDot(cfg)
    layout = beat_layout(cfg)
    beats = [{"w": w, "x": x, "last": int(last)}
             for c, xs in vectors for w, x, last in to_beats(cfg, c, xs)]
    results, in_cycles, out_cycles = [], [], []
    rng = random.Random(seed)

    async def bench(ctx):
        cycle, k = 0, 0
        while len(results) < len(vectors):
            assert cycle < max_cycles, "Amaranth simulation stalled"
            offer = k < len(beats) and rng.random() < valid_prob
            if offer:
                ctx.set(dut.i.payload, layout.const(beats[k]))
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.o.ready, rng.random() < ready_prob)
            # sample the handshakes as the coming edge sees them
            iv, ir, ov, orr, op = (ctx.get(dut.i.valid), ctx.get(dut.i.ready),
                                   ctx.get(dut.o.valid), ctx.get(dut.o.ready),
                                   ctx.get(dut.o.payload))
            await ctx.tick()
            cycle += 1
            if iv and ir:
                in_cycles.append(cycle)
                k += 1
            if ov and orr:
                results.append(op)
                out_cycles.append(cycle)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results, None, in_cycles, out_cycles


def amaranth_error_flag(cfg, codes, x):
    dut = TernaryDot(cfg)
    layout = beat_layout(cfg)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for w, xs, last in to_beats(cfg, codes, x):
            ctx.set(dut.i.payload, layout.const({"w": w, "x": xs, "last": int(last)}))
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(cfg.latency + 1):
            if ctx.get(dut.o.valid):
                seen["result"] = ctx.get(dut.o.payload)
            await ctx.tick()
        seen["error"] = ctx.get(dut.error)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("lanes,lps", [(1, 1), (5, 1), (8, 2), (16, 3)])
def test_amaranth_random_stalls_match_golden(lanes, lps):
    cfg = TernaryDotConfig(lanes=lanes, max_length=40, levels_per_stage=lps)
    rng = np.random.default_rng(lanes)
    vectors = random_vectors(cfg, 25, rng)
    results, _, _, _ = amaranth_run(cfg, vectors, seed=lanes, valid_prob=0.6, ready_prob=0.5)
    assert results == [ternary_dot(cfg, c, x)[0] for c, x in vectors]


def test_amaranth_extremes_at_max_length():
    cfg = TernaryDotConfig(lanes=4, max_length=12)
    vectors = [([CODE_NEG] * 12, [-128] * 12), ([CODE_POS] * 12, [-128] * 12),
               ([CODE_POS] * 12, [127] * 12), ([CODE_NEG] * 12, [127] * 12)]
    results, _, _, _ = amaranth_run(cfg, vectors)
    assert results == [1536, -1536, 1524, -1524]


def test_amaranth_cycle_formula_and_full_throughput():
    cfg = TernaryDotConfig(lanes=8, max_length=64, levels_per_stage=1)
    for length in (1, 8, 9, 64):
        vec = [([CODE_POS] * length, [1] * length)]
        _, _, ins, outs = amaranth_run(cfg, vec)
        assert outs[0] - ins[0] == cfg.cycles(length)
    # back to back: one beat accepted every cycle, no bubbles between vectors
    vectors = [([CODE_POS] * 20, [1] * 20)] * 5
    _, _, ins, _ = amaranth_run(cfg, vectors)
    assert ins == list(range(ins[0], ins[0] + len(ins)))


def test_amaranth_invalid_code_flags_error_without_hanging():
    cfg = TernaryDotConfig(lanes=4, max_length=8)
    seen = amaranth_error_flag(cfg, [CODE_POS, CODE_INVALID, CODE_POS, CODE_NEG], [5, 7, 2, 1])
    assert seen == {"result": 5 + 0 + 2 - 1, "error": 1}
    assert ternary_dot(cfg, [CODE_POS, CODE_INVALID, CODE_POS, CODE_NEG], [5, 7, 2, 1]) == (6, True)
