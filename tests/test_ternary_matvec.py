"""TMV: config bound, golden model, t3 decoder and the engine in Amaranth's simulator."""

import random

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError, ShapeError
from tritium.golden.ternary import CODE_INVALID, CODE_NEG, CODE_POS, pack_t3, unpack_t3
from tritium.engines.tmv.golden import (TMV_FORMAT_CODES, check_tmv_command, ternary_matvec,
                                        tmv_lines, tmv_unpack_lines)
from tritium.engines.tmv.hdl.matvec import (COUNTERS, TernaryMatVec, act_layout, cmd_layout,
                                        t3_decode, wload_layout)

BRAM = TernaryConfig(simd=8, pe=3, max_in=40, max_out=16, weight_depth=64)
EXT = TernaryConfig(simd=5, pe=2, max_in=24, max_out=10, weight_depth=64, mem_latency=4,
                    mem_bytes_per_cycle=1, levels_per_stage=1)
T2ONLY = TernaryConfig(simd=1, pe=1, max_in=6, max_out=4, weight_depth=32, has_t3=0)


# ---- config and golden ------------------------------------------------------------------

def test_accumulator_width_is_the_exact_bound():
    for max_in, act_bits in ((1, 8), (40, 8), (4096, 8), (1000, 4), (1 << 16, 15)):
        cfg = TernaryConfig(max_in=max_in, act_bits=act_bits)
        bound = max_in * (1 << (act_bits - 1))  # x = -2**(A-1), w = -1 everywhere
        assert -(1 << (cfg.acc_bits - 1)) <= -bound and bound < 1 << (cfg.acc_bits - 1)
        assert bound > (1 << (cfg.acc_bits - 2)) - 1, "one bit narrower would also hold it"


def test_config_round_trip_and_validation():
    assert TernaryConfig.from_json(EXT.to_json()) == EXT
    with pytest.raises(ConfigError, match="at least one weight format"):
        TernaryConfig(has_t2=0, has_t3=0)
    with pytest.raises(ConfigError, match="int32"):
        TernaryConfig(max_in=1 << 20, act_bits=16)
    assert (BRAM.line_bits, EXT.line_bits, T2ONLY.line_bits) == (48, 24, 8)


def test_golden_matvec_against_plain_loop_and_lines_round_trip():
    rng = np.random.default_rng(5)
    w = {0: -1, 1: 0, 2: 1}
    for _ in range(20):
        rows, cols = int(rng.integers(1, 17)), int(rng.integers(1, 41))
        codes = rng.integers(0, 3, (rows, cols))
        x = rng.integers(-128, 128, cols)
        expect = [sum(w[int(c)] * int(v) for c, v in zip(r, x)) for r in codes]
        assert ternary_matvec(BRAM, codes, x) == (expect, False)
        for fmt in ("t2", "t3"):
            back, corrupt = tmv_unpack_lines(BRAM, tmv_lines(BRAM, codes, fmt), rows, cols, fmt)
            assert np.array_equal(back, codes) and not corrupt


def test_golden_and_host_checks_reject_bad_input():
    with pytest.raises(ShapeError, match="max_out"):
        ternary_matvec(BRAM, np.ones((17, 4)), [0] * 4)
    with pytest.raises(ShapeError, match="activations"):
        ternary_matvec(BRAM, np.ones((2, 4)), [0] * 3)
    with pytest.raises(ShapeError, match=r"\[-128, 127\]"):
        ternary_matvec(BRAM, np.ones((2, 2)), [0, 128])
    with pytest.raises(ConfigError, match="no t3 decoder"):
        check_tmv_command(T2ONLY, 1, 1, "t3")
    with pytest.raises(ShapeError, match="weight_depth"):
        check_tmv_command(BRAM, 16, 40, "t2", base=50)
    assert ternary_matvec(BRAM, [[CODE_INVALID, CODE_POS]], [5, 7]) == ([7], True)


# ---- t3 decoder ---------------------------------------------------------------------------

def test_t3_decoder_every_byte():
    """All 256 bytes: 0..242 give pack_t3's digits, 243..255 give those of byte - 243."""
    m = Module()
    byte = Signal(8)
    digits = t3_decode(m, byte, registered=False)
    got = {}

    async def bench(ctx):
        for b in range(256):
            ctx.set(byte, b)
            got[b] = [ctx.get(d) for d in digits]

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    for b in range(243):
        assert got[b] == unpack_t3(np.array([b], np.uint8), 5).tolist(), b
        assert pack_t3(np.array(got[b])).tolist() == [b]
    for b in range(243, 256):
        assert got[b] == got[b - 243]


# ---- the engine in Amaranth's simulator -----------------------------------------------

def amaranth_run(cfg, lines, commands, n_out, *, seed=0, valid_prob=1.0, ready_prob=1.0,
                 max_cycles=20_000):
    """Drive TernaryMatVec: write ``lines``, then stream ``commands`` (dicts with their
    activation blocks under "x") and collect ``n_out`` result beats under random stalls.
    The command source is never stalled, so the counters follow the cycle formula."""
    dut = TernaryMatVec(cfg)
    cl, al, wl = cmd_layout(cfg), act_layout(cfg), wload_layout(cfg)
    acts = [blk for c in commands for blk in c.get("x", [])]
    rng = random.Random(seed)
    res = {"beats": [], "out_cycles": [], "cmd_cycles": []}

    async def bench(ctx):
        for addr, line in lines:
            ctx.set(dut.wload.payload, wl.const({"addr": addr, "data": line}))
            ctx.set(dut.wload.valid, 1)
            await ctx.tick()
        ctx.set(dut.wload.valid, 0)
        cycle, ci, ai, av = 0, 0, 0, False
        while len(res["beats"]) < n_out or cycle < res.get("done", 1 << 30):
            assert cycle < max_cycles, "Amaranth simulation stalled"
            if len(res["beats"]) == n_out and "done" not in res:
                res["done"] = cycle + 8  # keep watching: no extra beat may follow
            if ci < len(commands):
                c = commands[ci]
                ctx.set(dut.cmd.payload, cl.const({k: c[k] for k in
                                                   ("rows", "cols", "base", "fmt", "load_x")}))
            ctx.set(dut.cmd.valid, ci < len(commands))
            if not av and ai < len(acts) and rng.random() < valid_prob:
                ctx.set(dut.act.payload, al.const({"x": acts[ai]}))
                av = True
            ctx.set(dut.act.valid, av)
            ctx.set(dut.o.ready, rng.random() < ready_prob)
            took_c = ci < len(commands) and ctx.get(dut.cmd.ready)
            took_a = av and ctx.get(dut.act.ready)
            ov, orr, op = ctx.get(dut.o.valid), ctx.get(dut.o.ready), ctx.get(dut.o.payload)
            await ctx.tick()
            cycle += 1
            if took_c:
                res["cmd_cycles"].append(cycle)
                ci += 1
            if took_a:
                ai, av = ai + 1, False
            if ov and orr:
                res["beats"].append((list(op.y), bool(op.last)))
                res["out_cycles"].append(cycle)
        res["counters"] = {k: ctx.get(getattr(dut, k)) for k in COUNTERS}
        res["error"] = ctx.get(dut.error)
        res["acts_taken"] = ai

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return res


def blocks(cfg, x):
    xs = list(map(int, x)) + [0] * ((-len(x)) % cfg.simd)
    return [xs[k:k + cfg.simd] for k in range(0, len(xs), cfg.simd)]


def program(cfg, jobs):
    """Memory image, commands and expected beats of back-to-back jobs (codes, x|None, fmt),
    from the golden model only."""
    lines, commands, expected, base, x_prev = [], [], [], 0, None
    for codes, x, fmt in jobs:
        rows, cols = codes.shape
        lines += list(enumerate(tmv_lines(cfg, codes, fmt), base))
        cmd = {"rows": rows, "cols": cols, "base": base, "fmt": TMV_FORMAT_CODES[fmt],
               "load_x": int(x is not None)}
        if x is not None:
            cmd["x"], x_prev = blocks(cfg, x), x
        commands.append(cmd)
        y, _ = ternary_matvec(cfg, codes, x_prev)
        y += [0] * ((-rows) % cfg.pe)
        nb = len(y) // cfg.pe
        expected += [(y[k * cfg.pe:(k + 1) * cfg.pe], k == nb - 1) for k in range(nb)]
        base += cfg.words(rows, cols)
    return lines, commands, expected


def random_jobs(cfg, n, rng, fmts=None):
    jobs = []
    for k in range(n):
        rows, cols = int(rng.integers(1, cfg.max_out + 1)), int(rng.integers(1, cfg.max_in + 1))
        if k and rng.random() < 0.3:
            cols = jobs[-1][0].shape[1]  # reuse the buffered vector
            x = None
        else:
            x = rng.integers(cfg.act_min, cfg.act_max + 1, cols)
        fmt = (fmts or cfg.formats)[int(rng.integers(len(fmts or cfg.formats)))]
        jobs.append((rng.integers(0, 3, (rows, cols)).astype(np.uint8), x, fmt))
    return jobs


@pytest.mark.parametrize("cfg", [BRAM, T2ONLY], ids=["bram", "t2only-1lane"])
def test_amaranth_back_to_back_random_stalls_exact(cfg):
    rng = np.random.default_rng(cfg.simd)
    jobs = random_jobs(cfg, 6, rng)
    lines, commands, expected = program(cfg, jobs)
    res = amaranth_run(cfg, lines, commands, len(expected), seed=3, valid_prob=0.6,
                       ready_prob=0.6)
    assert res["beats"] == expected
    words = sum(cfg.words(*c.shape) for c, _, _ in jobs)
    cnt = res["counters"]
    assert res["error"] == 0 and cnt["mac_slots"] == words * cfg.word_codes
    # every stall cycle delays the stream of back-to-back commands by exactly one cycle
    assert cnt["busy_cycles"] == (words - 1) + cfg.latency + cnt["stall_input"] + \
        cnt["stall_output"]
    assert cnt["stall_memory"] == cfg.fill_cycles


@pytest.mark.parametrize("fmt", ["t2", "t3"])
def test_amaranth_cycle_formula_exact_and_no_bubbles(fmt):
    for cfg in (BRAM, EXT):
        rng = np.random.default_rng(7)
        for rows, cols in ((1, 1), (cfg.pe, cfg.simd), (cfg.pe + 1, cfg.simd + 1),
                           (cfg.max_out, cfg.max_in)):
            codes = rng.integers(0, 3, (rows, cols)).astype(np.uint8)
            lines, commands, expected = program(cfg, [(codes, rng.integers(-9, 9, cols), fmt)])
            res = amaranth_run(cfg, lines, commands, len(expected))
            assert res["beats"] == expected
            cnt = res["counters"]
            assert cnt["busy_cycles"] == cfg.cycles(rows, cols, fmt)
            assert res["out_cycles"][-1] - res["cmd_cycles"][0] == cfg.cycles(rows, cols, fmt)
            assert cnt["stall_memory"] == cfg.stall_memory_cycles(rows, cols, fmt)
            assert cnt["stall_input"] == cnt["stall_output"] == 0
    # back to back: the next command is taken while the previous issues its last word
    jobs = random_jobs(BRAM, 4, np.random.default_rng(2), fmts=[fmt])
    lines, commands, expected = program(BRAM, jobs)
    res = amaranth_run(BRAM, lines, commands, len(expected))
    assert res["beats"] == expected
    words = [BRAM.words(*c.shape) for c, _, _ in jobs]
    assert np.diff(res["cmd_cycles"]).tolist() == words[:-1]
    assert res["counters"]["busy_cycles"] == sum(words) - 1 + BRAM.latency


def test_amaranth_external_memory_bandwidth_formula():
    # 10 codes per word: t2 3 bytes, t3 2 bytes at 1 byte/cycle: t3 is faster
    assert (EXT.transfer_cycles("t2"), EXT.transfer_cycles("t3")) == (3, 2)
    rng = np.random.default_rng(1)
    for fmt in ("t2", "t3"):
        codes = rng.integers(0, 3, (7, 13)).astype(np.uint8)
        lines, commands, expected = program(EXT, [(codes, rng.integers(-128, 128, 13), fmt)])
        res = amaranth_run(EXT, lines, commands, len(expected), ready_prob=0.7, seed=4)
        assert res["beats"] == expected
        # output stalls overlap the memory's slack, so busy stays within the unstalled
        # time plus the stalls
        assert res["counters"]["busy_cycles"] <= EXT.cycles(7, 13, fmt) + \
            res["counters"]["stall_output"]


def test_amaranth_bad_commands_flag_error_and_are_dropped():
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 3, (4, 6)).astype(np.uint8)
    x = rng.integers(-5, 5, 6)
    lines, good, expected = program(T2ONLY, [(codes, x, "t2")])
    bad = [dict(good[0], rows=0, load_x=0), dict(good[0], cols=T2ONLY.max_in + 1, load_x=0),
           dict(good[0], fmt=TMV_FORMAT_CODES["t3"], load_x=0)]
    for cmd in bad:
        res = amaranth_run(T2ONLY, lines, [cmd] + good, len(expected))
        assert res["error"] == 1, cmd
        assert res["beats"] == expected  # the bad command gave nothing; the next one runs
        assert res["acts_taken"] == len(good[0]["x"])


def test_amaranth_invalid_codes_flag_error_without_hanging():
    codes = np.array([[CODE_POS, CODE_INVALID, CODE_NEG]], np.uint8)
    x = [5, 7, 2]
    lines, commands, expected = program(T2ONLY, [(codes, x, "t2")])
    res = amaranth_run(T2ONLY, lines, commands, len(expected))
    assert res["error"] == 1 and res["beats"] == expected == [([5 - 2], True)]
    # a corrupt t3 byte (250 = 243 + 7) decodes as 7 and raises the flag
    cfg = BRAM
    codes = np.ones((3, 8), np.uint8)
    lines, commands, _ = program(cfg, [(codes, list(range(8)), "t3")])
    lines = [(lines[0][0], lines[0][1] | 250 << 8)]  # second byte of word 0
    want_codes, corrupt = tmv_unpack_lines(cfg, [v for _, v in lines], 3, 8, "t3")
    assert corrupt
    y, _ = ternary_matvec(cfg, want_codes, list(range(8)))
    res = amaranth_run(cfg, lines, commands, 1)
    assert res["error"] == 1 and res["beats"] == [(y, True)]


def test_amaranth_address_past_memory_flags_error():
    cfg = T2ONLY
    codes = np.ones((2, 3), np.uint8)
    lines, commands, expected = program(cfg, [(codes, [1, 2, 3], "t2")])
    commands[0]["base"] = cfg.weight_depth - 2  # 6 words from 30: the last 4 run past 32
    res = amaranth_run(cfg, lines, commands, len(expected))
    assert res["error"] == 1 and len(res["beats"]) == len(expected)
