"""Token core without a simulator: the instruction encoding, the sigmoid's error per
setting, the golden's overlap rule, the cycle model, and the hdl's timing constants
against MfcConfig."""

import numpy as np
import pytest

from tritium.engines.mfc.config import INSTR_BITS, INSTR_FIELDS, MfcConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError
from tritium.engines.mfc.golden import (IMM_BITS, INSTR_LAYOUT, Machine, Op, ProgramError, decode_word,
                                disassemble, encode, estimate_cycles, sig_fixed,
                                sigmoid_max_error)

CFG = MfcConfig(tmv=TernaryConfig(simd=4, pe=2, max_in=48, max_out=24, weight_depth=512),
                vmem_depth=512, imem_depth=256, sregs=8)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(1)
    widths = dict(INSTR_FIELDS)
    for _ in range(2000):
        op = Op(int(rng.integers(0, len(Op))))
        d, a, b, c = (int(rng.integers(0, 1 << widths[k])) for k in "dabc")
        if op == Op.SLI:
            imm = int(rng.choice([-(1 << (IMM_BITS - 1)), (1 << (IMM_BITS - 1)) - 1,
                                  int(rng.integers(-(1 << 62), 1 << 62))]))
            ins = decode_word(encode(op, d=d, imm=imm))
            assert (ins.op, ins.d, ins.imm) == (op, d, imm)
        else:
            ins = decode_word(encode(op, d, a, b, c))
            assert (ins.op, ins.d, ins.a, ins.b, ins.c) == (op, d, a, b, c)
        assert disassemble(encode(op, d, a, b, c) if op != Op.SLI else encode(op, d, imm=1))


@pytest.mark.parametrize("name", ["d", "a", "b", "c"])
def test_every_field_round_trips_at_its_edges_and_refuses_one_past(name):
    top = (1 << dict(INSTR_FIELDS)[name]) - 1
    for value in (0, 1, top - 1, top):
        others = {k: 0 if k == name else 1 for k in "dabc"}
        ins = decode_word(encode(Op.TMV, **{**others, name: value}))
        assert getattr(ins, name) == value
        # the neighbours are untouched: a field that spilt would change them
        assert all(getattr(ins, k) == v for k, v in others.items() if k != name)
    with pytest.raises(ValueError, match=f"{name}={top + 1} does not fit"):
        encode(Op.VADD, **{name: top + 1})
    with pytest.raises(ValueError):
        encode(Op.VADD, **{name: -1})


def test_sli_immediate_edges():
    for imm in (-(1 << 63), -1, 0, 1, (1 << 63) - 1):
        ins = decode_word(encode(Op.SLI, d=(1 << dict(INSTR_FIELDS)["d"]) - 1, imm=imm))
        assert ins.imm == imm and ins.op == Op.SLI
    for bad in (1 << 63, -(1 << 63) - 1):
        with pytest.raises(ValueError, match="64 signed bits"):
            encode(Op.SLI, d=0, imm=bad)
    with pytest.raises(ValueError, match="SLI only"):
        encode(Op.VADD, d=0, imm=1)


def test_the_instruction_layout_and_the_limits_it_sets():
    # the word as docs/mfc.md lays it out: op [0,8), d [8,32), a [32,56), b [56,88),
    # c [88,104), zeros to bit 128; SLI's immediate in [32,96)
    op = Op.VADD
    assert INSTR_BITS == 128 and INSTR_LAYOUT.size == 128
    assert encode(op, 1, 2, 3, 4) == int(op) | 1 << 8 | 2 << 32 | 3 << 56 | 4 << 88
    assert encode(Op.SLI, 5, imm=-1) == int(Op.SLI) | 5 << 8 | ((1 << 64) - 1) << 32
    assert MfcConfig().soc_regions()[1] == ("program", 1024 * 16, "w")
    # 24-bit vector addresses, 65536 instructions (START's 2-byte entry)
    MfcConfig(vmem_depth=1 << 24, imem_depth=65536)
    for bad in ({"vmem_depth": (1 << 24) + 1}, {"imem_depth": 65537}):
        with pytest.raises(ConfigError, match="out of range"):
            MfcConfig(**bad)
    # TMV rows in d (24 bits), cols in a (24 bits), the weight base in b (32 bits): the
    # TMV's own largest shapes and depth fit them
    MfcConfig(tmv=TernaryConfig(simd=16, pe=4, max_in=1 << 20, max_out=1 << 20,
                                weight_depth=1 << 24, has_t3=0))
    # the 2.7B model's shapes fit: gate_proj 13824 x 2560, 41M weight lines of 16x4 codes
    MfcConfig(tmv=TernaryConfig(simd=16, pe=4, max_in=6912, max_out=13824,
                                weight_depth=1 << 24, has_t3=0), vmem_depth=1 << 20)


#: (sig_range_log2, sig_segments_log2) settings checked against the table's error bound
SIGMOID_SETTINGS = [(2, 0), (2, 2), (2, 3), (2, 5), (3, 0), (3, 3), (3, 4), (3, 5), (3, 6),
                    (3, 8), (4, 5), (4, 8)]


@pytest.mark.parametrize("lr,g", SIGMOID_SETTINGS)
def test_sigmoid_error_within_its_bound(lr, g):
    """Inside [-L, L): half the chord error h²·max|σ''|/16 (max|σ''| = 1/(6√3)), the
    slope's rounding over half a segment 2^-(F+1)·h/2, one LSB for the intercept's
    rounding and the floor (docs/mfc.md); beyond, the clamp adds at most σ(-L)."""
    cfg = MfcConfig(sig_range_log2=lr, sig_segments_log2=g)
    F, L = cfg.frac_bits, 2.0 ** lr
    h = 2 * L / 2 ** g
    bound = h * h / (16 * 6 * np.sqrt(3)) + h * 2.0 ** -(F + 2) + 2.0 ** -F
    x = np.arange(-int(L) << F, int(L) << F, 5, dtype=np.int64)
    err = sig_fixed(cfg, x) / 2.0 ** F - 1 / (1 + np.exp(-x / 2.0 ** F))
    assert np.abs(err).max() <= bound, (np.abs(err).max(), bound)
    assert sigmoid_max_error(cfg) <= bound + 1 / (1 + np.exp(L))


def test_default_sigmoid_error_and_no_bias():
    """The default table (256 lines over ±8): inside the range within 4e-5 (chords alone
    would give h²·max|σ''|/8 = 4.7e-5 before any rounding) and unbiased to 1e-7."""
    cfg = MfcConfig()
    x = np.arange(-8 << 16, 8 << 16, 3, dtype=np.int64)
    err = sig_fixed(cfg, x) / 2.0 ** 16 - 1 / (1 + np.exp(-x / 2.0 ** 16))
    assert np.abs(err).max() <= 4e-5 and abs(err.mean()) <= 1e-7


def test_overlapping_destination_above_a_source_is_a_program_error():
    m = Machine(CFG)
    m.load_program([encode(Op.SETVL, a=8), encode(Op.VADD, d=3, a=0, b=20), encode(Op.HALT)])
    with pytest.raises(ProgramError, match="over its source"):
        m.run()
    for d in (0, 8, 20):  # in place, just past the source, in place on b
        m = Machine(CFG)
        m.load_program([encode(Op.SETVL, a=8), encode(Op.VADD, d=d, a=0, b=20),
                        encode(Op.HALT)])
        assert m.run()["error"] == 0


def test_estimate_cycles_equals_the_interpreter():
    P = [encode(Op.SETVL, a=9), encode(Op.TMV, d=24, a=48, b=0, c=0),
         encode(Op.VADD, d=100, a=0, b=20), encode(Op.SMUL, d=1, a=0, b=0),
         encode(Op.TMV, d=5, a=5, b=0, c=2), encode(Op.SSQRT, d=1, a=0),
         encode(Op.TWAIT), encode(Op.VNORM, d=0, a=0, c=1), encode(Op.SADD, d=2, a=1, b=1),
         encode(Op.HALT)]
    m = Machine(CFG)
    m.load_program(P)
    out = m.run()
    est = estimate_cycles(CFG, P)
    assert {k: out[k] for k in est} == est
    assert est["cycles"] == est["issue"] + est["vpu_busy"] + est["scalar_busy"] + \
        est["wait_tmv"]


def test_hdl_timing_matches_the_config():
    from tritium.engines.mfc.hdl.scalar import BUSY_CYCLES
    from tritium.engines.mfc.hdl.vector import LATENCY

    assert CFG.scalar_cycles == BUSY_CYCLES
    assert CFG.vpu_latency == 1 + LATENCY
    assert CFG.tmv_cycles(7, 9) == CFG.tmv.cycles(7, 9) + 1


def test_core_elaborates_for_a_non_power_of_two_engine():
    from tritium.engines.mfc.hdl import MfcCore
    from tritium.sim.build import to_verilog

    cfg = MfcConfig(tmv=TernaryConfig(simd=6, pe=3, max_in=30, max_out=12, weight_depth=64,
                                      has_t3=0), vmem_depth=64, imem_depth=16, sregs=4)
    assert "module mfc" in to_verilog(MfcCore(cfg), "mfc")


@pytest.mark.parametrize("kw,words", [
    ({"vpu_lanes": 3}, "power of two"),
    ({"vpu_lanes": 8, "tmv": TernaryConfig(simd=4, pe=2, max_in=48, max_out=24,
                                            weight_depth=512)}, "divide tmv.simd"),
    ({"vpu_lanes": 2, "tmv": TernaryConfig(simd=6, pe=3, max_in=30, max_out=12,
                                            weight_depth=64, has_t3=0)}, "tmv.pe"),
    ({"vpu_lanes": 16, "vmem_depth": 40}, "multiple of vpu_lanes"),
    ({"vpu_lanes": 32}, "vpu_lanes"),
])
def test_the_lane_count_is_checked_against_the_memories(kw, words):
    with pytest.raises(ConfigError, match=words):
        MfcConfig(**kw)


def test_vector_cycles_and_alignment_follow_the_lanes():
    assert MfcConfig(vpu_lanes=8).res_word_lanes == 8      # 8 lanes over pe 4: 2 beats
    assert MfcConfig(vpu_lanes=2).res_word_lanes == 4      # 2 lanes: half a beat
    cfg = MfcConfig(vpu_lanes=4)
    assert [cfg.vector_cycles(n) for n in (0, 1, 4, 5, 1024)] == \
        [5, 6, 6, 7, 256 + 5]
    assert cfg.aligned(8) and not cfg.aligned(6)
    m = Machine(cfg)
    m.load_program([encode(Op.SETVL, a=5), encode(Op.VADD, d=16, a=0, b=8),
                    encode(Op.VADD, d=16, a=2, b=8), encode(Op.HALT)])
    out = m.run()
    assert out["error"] == 1 and out["pc"] == 2
    assert out["vpu_busy"] == 2 + 5    # the aligned VADD: 2 groups of 4, then the latency
