"""The token core in Verilator through cocotb: random programs over every opcode, TMV
overlapped with vector work on both banks, bad programs, and the scalar and vector units
alone under random stalls. Every core run is compared with the golden machine exactly:
V, S, error and every counter."""

import dataclasses

import numpy as np
import pytest

from tritium.engines.mfc.config import MfcConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.engines.mfc.golden import VECTOR_OPS, Op, encode
from tritium.engines.tmv.golden import tmv_lines
from tritium.engines.mfc.runner import golden_mfc, run_mfc, run_mfc_scalar, run_mfc_vector

pytestmark = pytest.mark.verilator

#: both weight formats, a narrow engine, a 4-bit sigmoid table
SMALL = MfcConfig(tmv=TernaryConfig(simd=4, pe=2, max_in=48, max_out=24, weight_depth=512),
                  vmem_depth=512, imem_depth=256, sregs=8, sig_segments_log2=4)
#: the default engine shape, other fixed-point formats
MID = MfcConfig(tmv=TernaryConfig(simd=16, pe=4, max_in=64, max_out=32, weight_depth=128,
                                  has_t3=0),
                vmem_depth=256, imem_depth=128, sregs=16, frac_bits=12, quant_shift=20,
                rescale_frac=20, sig_segments_log2=3, sig_range_log2=2)

#: the vector unit at 4 and 16 elements a cycle (4 = the narrow engine's simd, 16 = MID's:
#: VQUANT's group fills a whole activation word; 16 lanes over pe 4: four TMV beats a RES word)
SMALL4 = dataclasses.replace(SMALL, vpu_lanes=4)
MID16 = dataclasses.replace(MID, vpu_lanes=16)

I32 = (-(1 << 31), (1 << 31) - 1)
EXTREMES = [I32[0], I32[1], 0, -1, 1, I32[0] + 1]


def random_values(rng, n):
    """int32 values: a mix of the full range, small Q.F-like values and the extremes."""
    full = rng.integers(I32[0], I32[1], n, endpoint=True)
    small = rng.integers(-(1 << 20), 1 << 20, n)
    ext = rng.choice(EXTREMES, n)
    pick = rng.integers(0, 3, n)
    return np.where(pick == 0, full, np.where(pick == 1, small, ext)).tolist()


def random_imm(rng):
    lim = 1 << 41
    return int(rng.choice([-lim, lim - 1, 0, -1, 1, 1 << 16, int(rng.integers(-lim, lim)),
                           int(rng.integers(-(1 << 24), 1 << 24))]))


class ProgramMaker:
    """Random, race-free programs: every opcode, VL edge cases, TMV commands overlapped with
    vector work on the banks the engine is not using."""

    def __init__(self, cfg: MfcConfig, rng):
        self.cfg, self.rng = cfg, rng
        self.words, self.weights = [], []
        self.vl = 0
        self.inflight = None  # (act bank, res bank) of the last TMV since a TWAIT

    def r(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def addr(self, lo, hi):
        """A vector operand address in [lo, hi] that the lanes allow (a multiple of L)."""
        L = self.cfg.vpu_lanes
        return L * self.r(-(-lo // L), hi // L)

    def emit(self, op, **kw):
        self.words.append(encode(op, **kw))

    def setvl(self, n=None):
        cfg = self.cfg
        if n is None:
            n = int(self.rng.choice([0, 1, 2, self.r(3, 12), self.r(12, 40),
                                     self.r(1, min(cfg.vmem_depth // 2, cfg.act_elems))]))
        self.vl = n
        self.emit(Op.SETVL, a=n)

    def scalar(self, op):
        s = self.cfg.sregs
        c = 0 if op == Op.SADD else int(self.rng.choice([0, 1, 63, self.r(0, 63)]))
        self.emit(op, d=self.r(0, s - 1), a=self.r(0, s - 1), b=self.r(0, s - 1), c=c)

    def tmv(self):
        t = self.cfg.tmv
        rows, cols = self.r(1, t.max_out), self.r(1, t.max_in)
        if self.rng.random() < 0.3:
            rows, cols = self.r(1, 3), self.r(1, t.simd + 1)
        fmt = t.formats[self.r(0, len(t.formats) - 1)]
        words = t.words(rows, cols)
        if len(self.weights) + words > t.weight_depth:
            return self.emit(Op.TWAIT)
        base = len(self.weights)
        codes = self.rng.integers(0, 3, (rows, cols)).astype(np.uint8)
        self.weights += tmv_lines(t, codes, fmt)
        ab, rb = self.r(0, 1), self.r(0, 1)
        self.inflight = (ab, rb)
        self.emit(Op.TMV, d=rows, a=cols, b=base, c=t.formats.index(fmt) | ab << 1 | rb << 2)

    def bank_range(self, elems):
        """A start in the flat two-bank space, clear of the in-flight bank."""
        n = self.vl
        if self.inflight is None or n > elems:
            if self.inflight is not None:
                self.twait()
            return self.addr(0, 2 * elems - n)
        return self.addr(0, elems - n) + (1 - self.inflight[0 if elems == self.cfg.act_elems
                                                             else 1]) * elems

    def twait(self):
        self.inflight = None
        self.emit(Op.TWAIT)

    def vector(self, op):
        cfg, spec = self.cfg, VECTOR_OPS[op]
        banked = {Op.VQUANT: cfg.act_elems, Op.VRESCALE: cfg.res_elems}.get(op)
        if banked is not None and self.vl > banked:
            self.setvl(self.r(0, banked))
        n, f = self.vl, {}
        for k in ("a", "b"):
            if spec.get(k) == "v":
                f[k] = self.addr(0, cfg.vmem_depth - n)
        if spec.get("d") == "v":
            d = self.addr(0, cfg.vmem_depth - n)
            if f and self.rng.random() < 0.3:
                d = f["a"]
            if any(s < d < s + n for s in f.values()):
                d = min(f.values())  # in place or below every source: no overlap hazard
            f["d"] = d
        if op == Op.VQUANT:
            f["d"] = self.bank_range(cfg.act_elems)
        if op == Op.VRESCALE:
            f["a"] = self.bank_range(cfg.res_elems)
        if "c" in spec:
            f["c"] = self.r(0, cfg.sregs - 1 - (spec["c"] in ("sr2", "sk")))
        self.emit(op, **f)

    def make(self, n: int) -> list[int]:
        kinds = [Op.SETVL, Op.SLI, Op.SMUL, Op.SDIV, Op.SSQRT, Op.SADD, Op.TMV, Op.TWAIT,
                 *VECTOR_OPS, *VECTOR_OPS]
        for k in range(self.cfg.sregs):
            self.emit(Op.SLI, d=k, imm=random_imm(self.rng))
        self.setvl()
        # every opcode at least once, then random ones
        order = kinds[:8 + len(VECTOR_OPS)] + [kinds[self.r(0, len(kinds) - 1)]
                                               for _ in range(n)]
        for op in order:
            if op == Op.SETVL:
                self.setvl()
            elif op == Op.SLI:
                self.emit(Op.SLI, d=self.r(0, self.cfg.sregs - 1), imm=random_imm(self.rng))
            elif op in (Op.SMUL, Op.SDIV, Op.SSQRT, Op.SADD):
                self.scalar(op)
            elif op == Op.TMV:
                self.tmv()
            elif op == Op.TWAIT:
                self.twait()
            else:
                self.vector(op)
        self.emit(Op.HALT)
        return self.words


def check(cfg, program, tmp_path, **kw):
    """Run on the RTL and the golden; everything must agree exactly."""
    exp = golden_mfc(cfg, program, **kw)
    got = run_mfc(cfg, program, run_dir=tmp_path, **kw)
    assert got["runs"] == exp["runs"]
    assert got["sregs"] == exp["sregs"]
    diff = [a for a in range(cfg.vmem_depth) if got["vmem"][a] != exp["vmem"][a]]
    assert not diff, f"V differs at {diff[:8]}: {[got['vmem'][a] for a in diff[:8]]} " \
                     f"!= {[exp['vmem'][a] for a in diff[:8]]}"
    return got


@pytest.mark.parametrize("cfg,seed", [(SMALL, 1), (SMALL, 2), (MID, 3), (MID, 4),
                                      (SMALL4, 5), (SMALL4, 6), (MID16, 7), (MID16, 8)],
                         ids=["small-1", "small-2", "mid-3", "mid-4", "small-lanes4-5",
                              "small-lanes4-6", "mid-lanes16-7", "mid-lanes16-8"])
def test_random_programs_every_opcode(cfg, seed, tmp_path):
    rng = np.random.default_rng(seed)
    maker = ProgramMaker(cfg, rng)
    program = maker.make(min(cfg.imem_depth - 40, 90))
    got = check(cfg, program, tmp_path, vmem=random_values(rng, cfg.vmem_depth),
                weights=maker.weights)
    cnt = got["counters"]
    assert got["error"] == 0 and cnt["tmv_busy"] > 0 and cnt["vpu_busy"] > 0


@pytest.mark.parametrize("cfg", [SMALL, MID], ids=["small", "mid"])
def test_tmv_overlapped_with_vector_work_on_both_banks(cfg, tmp_path):
    """A layer's pattern: quantise into one act bank while the engine reads the other,
    rescale one result bank while the engine writes the other; the vector work hides
    behind the matvecs, and three entry points share the state."""
    t, rng = cfg.tmv, np.random.default_rng(7)
    rows, cols = t.max_out, t.max_in
    weights = []
    for fmt in t.formats:
        weights += tmv_lines(t, rng.integers(0, 3, (rows, cols)).astype(np.uint8), fmt)
    ae, re_ = cfg.act_elems, cfg.res_elems
    fmt_b = t.formats.index(t.formats[-1])
    base_b = t.words(rows, cols) if len(t.formats) > 1 else 0
    P = [encode(Op.SLI, d=0, imm=1 << (cfg.quant_shift - 4)),
         encode(Op.SLI, d=1, imm=1 << (cfg.rescale_frac - 6)),
         encode(Op.SETVL, a=cols), encode(Op.VQUANT, d=0, a=0, c=0),
         encode(Op.TMV, d=rows, a=cols, b=0, c=0),                   # act 0 -> res 0
         encode(Op.VQUANT, d=ae, a=cols, c=0),                        # fills act 1
         encode(Op.VSIG, d=2 * cols, a=cols),
         encode(Op.TMV, d=rows, a=cols, b=base_b, c=fmt_b | 2 | 4),   # waits; act 1 -> res 1
         encode(Op.SETVL, a=rows), encode(Op.VRESCALE, d=100, a=0, c=1),  # res 0, free
         encode(Op.VSILU, d=140, a=100), encode(Op.TWAIT),
         encode(Op.VRESCALE, d=180, a=re_, c=1),
         # an RMS as the compiler takes it: max|v|, k = 2^31 // max, normalise and sum
         encode(Op.VMAXABS, a=180, c=5), encode(Op.SLI, d=6, imm=1 << cfg.frac_bits),
         encode(Op.SDIV, d=2, a=6, b=5, c=cfg.norm_shift), encode(Op.VNORM, d=180, a=180, c=2),
         encode(Op.SADD, d=7, a=3, b=3), encode(Op.HALT)]
    second = len(P)
    P += [encode(Op.VMAXABS, a=100, c=3), encode(Op.TMV, d=1, a=1, b=0, c=0), encode(Op.HALT)]
    third = len(P)
    P += [encode(Op.VARGMAX, a=180, c=4), encode(Op.HALT)]
    vmem = [int(v) for v in rng.integers(-(1 << cfg.frac_bits + 2), 1 << cfg.frac_bits + 2,
                                         2 * cols)]
    got = check(cfg, P, tmp_path, vmem=vmem, weights=weights, entry=[0, second, third])
    first = got["runs"][0]["counters"]
    assert first["tmv_busy"] == 2 * cfg.tmv_cycles(rows, cols)


def test_edge_cases_vl_and_scalars(tmp_path):
    """VL = 0 and 1 for every vector op, division by zero, shifts by 63, extremes."""
    cfg = SMALL
    big = (1 << 41) - 1
    P = [encode(Op.SLI, d=0, imm=-(1 << 41)), encode(Op.SLI, d=1, imm=big),
         encode(Op.SLI, d=2, imm=0), encode(Op.SLI, d=3, imm=-1),
         encode(Op.SMUL, d=4, a=0, b=1, c=0), encode(Op.SMUL, d=5, a=4, b=4, c=63),
         encode(Op.SMUL, d=6, a=4, b=0, c=0), encode(Op.SDIV, d=7, a=1, b=2, c=5),  # / 0
         encode(Op.SDIV, d=2, a=3, b=1, c=63), encode(Op.SDIV, d=5, a=5, b=3, c=0),
         encode(Op.SSQRT, d=6, a=3, c=0), encode(Op.SSQRT, d=7, a=1, c=63),
         encode(Op.SSQRT, d=3, a=6, c=0), encode(Op.SADD, d=4, a=1, b=1),
         encode(Op.SADD, d=5, a=0, b=0), encode(Op.SADD, d=6, a=0, b=3)]
    for vl in (0, 1):
        P.append(encode(Op.SETVL, a=vl))
        for op in VECTOR_OPS:
            kw = {"d": 20, "a": 0, "b": 1} if VECTOR_OPS[op].get("d") == "v" else {"a": 0}
            if op == Op.VQUANT:
                kw = {"d": cfg.act_elems - vl, "a": 0}
            if op == Op.VRESCALE:
                kw = {"d": 20, "a": 2 * cfg.res_elems - vl}
            if "c" in VECTOR_OPS[op]:
                kw["c"] = 6 if VECTOR_OPS[op]["c"] in ("sr2", "sk") else 7
            P.append(encode(op, **kw))
    P.append(encode(Op.HALT))
    check(cfg, P, tmp_path, vmem=[I32[0], I32[1]] * 4, sregs=[0] * 8)


BAD = {
    "unknown-opcode": encode(Op.HALT) | 0x3F,
    "vector-past-vmem": encode(Op.VADD, d=SMALL.vmem_depth - 3, a=0, b=0),
    "act-past-end": encode(Op.VQUANT, d=2 * SMALL.act_elems - 3, a=0, c=0),
    "sreg-pair": encode(Op.VAFF, d=0, a=0, c=SMALL.sregs - 1),
    "scalar-reg": encode(Op.SMUL, d=SMALL.sregs, a=0, b=0),
    "sadd-reg": encode(Op.SADD, d=0, a=SMALL.sregs, b=0),
    "vnorm-pair": encode(Op.VNORM, d=0, a=0, c=SMALL.sregs - 1),
    "tmv-rows-0": encode(Op.TMV, d=0, a=4, b=0, c=0),
    "tmv-flags": encode(Op.TMV, d=4, a=4, b=0, c=8),
}


def test_bad_programs_set_error_and_halt(tmp_path):
    """Each bad word (one entry point each) after a TMV still in flight: error, no hang,
    the state as the golden has it; every next run clears error, and a good run after
    them runs normally."""
    cfg = SMALL
    rng = np.random.default_rng(5)
    w = tmv_lines(cfg.tmv, rng.integers(0, 3, (24, 48)).astype(np.uint8), "t2")
    P, entries = [], []
    for k, word in enumerate(BAD.values()):
        entries.append(len(P))
        P += [encode(Op.SETVL, a=4), encode(Op.TMV, d=24, a=48, b=0, c=0),
              encode(Op.VADD, d=48 + 4 * k, a=0, b=4), word, encode(Op.VSUB, d=40, a=0, b=4),
              encode(Op.HALT)]
    entries.append(len(P))
    P += [encode(Op.SLI, d=0, imm=9), encode(Op.VSUB, d=44, a=0, b=4), encode(Op.HALT)]
    got = check(cfg, P, tmp_path, vmem=list(range(1, 9)), weights=w, entry=entries)
    assert [r["error"] for r in got["runs"]] == [1] * len(BAD) + [0]
    assert got["vmem"][40] == 0 and got["vmem"][44] == 1 - 5


def test_fetch_past_imem_and_entry_out_of_range(tmp_path):
    cfg = SMALL
    P = [encode(Op.HALT)] + [encode(Op.SETVL, a=1)] * (cfg.imem_depth - 1)
    got = check(cfg, P, tmp_path, entry=[cfg.imem_depth - 3, cfg.imem_depth + 5, 0])
    assert [r["error"] for r in got["runs"]] == [1, 1, 0]
    assert got["runs"][1]["counters"]["cycles"] == 0


# ---- the units alone, under random stalls ------------------------------------------------

@pytest.mark.parametrize("valid_prob,ready_prob", [(1.0, 1.0), (0.6, 0.4)])
def test_vector_unit_random_ops_and_stalls(valid_prob, ready_prob, tmp_path):
    rng = np.random.default_rng(11)
    jobs = []
    for k in range(60):
        op = list(VECTOR_OPS)[k % len(VECTOR_OPS)]
        n = int(rng.choice([1, 2, int(rng.integers(3, 9))]))
        s0, s1 = (int(v) for v in rng.integers(-(1 << 63), (1 << 63) - 1, 2, endpoint=True))
        jobs.append((op, random_values(rng, n), random_values(rng, n), s0, s1))
    out = run_mfc_vector(SMALL, jobs, seed=3, valid_prob=valid_prob, ready_prob=ready_prob,
                         run_dir=tmp_path)
    assert out["got"] == out["expected"]


def test_vector_unit_at_4_lanes_part_full_groups_and_stalls(tmp_path):
    """Groups of 4 under random stalls, vectors of 1 to 9 elements (part-full last groups
    whose idle lanes carry the largest int32): every lane's result and each reduction
    across the groups (VARGMAX's ties among lanes and groups included) equal the golden."""
    cfg = dataclasses.replace(SMALL, vpu_lanes=4)
    rng = np.random.default_rng(21)
    jobs = []
    for k in range(40):
        op = list(VECTOR_OPS)[k % len(VECTOR_OPS)]
        n = int(rng.choice([1, 3, 4, 5, int(rng.integers(6, 10))]))
        s0, s1 = (int(v) for v in rng.integers(-(1 << 63), (1 << 63) - 1, 2, endpoint=True))
        x = random_values(rng, n)
        if op == Op.VARGMAX and k % 2:
            x = [int(v) for v in rng.integers(-3, 3, n)]     # ties in and across groups
        jobs.append((op, x, random_values(rng, n), s0, s1))
    out = run_mfc_vector(cfg, jobs, seed=5, valid_prob=0.7, ready_prob=0.5, run_dir=tmp_path)
    assert out["got"] == out["expected"]


def test_scalar_unit_edge_cases_and_stalls(tmp_path):
    rng = np.random.default_rng(12)
    lo, hi = -(1 << 63), (1 << 63) - 1
    edges = [lo, hi, 0, -1, 1, 3, 1 << 32]
    jobs = [(op, a, b, s) for op in (Op.SMUL, Op.SDIV, Op.SSQRT)
            for a, b, s in [(lo, lo, 0), (lo, -1, 0), (hi, hi, 63), (hi, 0, 1), (-1, 0, 63),
                            (1, 3, 0), (lo, 1, 63), (hi, 1 << 32, 17)]]
    jobs += [(Op(int(rng.choice([Op.SMUL, Op.SDIV, Op.SSQRT]))),
              int(rng.choice(edges + [int(rng.integers(lo, hi))])),
              int(rng.choice(edges + [int(rng.integers(lo, hi))])), int(rng.integers(0, 64)))
             for _ in range(40)]
    out = run_mfc_scalar(SMALL, jobs, seed=4, valid_prob=0.5, ready_prob=0.5,
                         run_dir=tmp_path)
    assert out["got"] == out["expected"]


def test_misaligned_vector_operands_set_error_at_4_lanes(tmp_path):
    """At 4 lanes a vector operand address that is not a multiple of 4 (in V, ACT or RES)
    is a bad instruction: error, the run halts before it; aligned ones run, a part-full
    last group (VL = 6) included."""
    cfg = SMALL4
    bad = [encode(Op.VADD, d=1, a=0, b=4), encode(Op.VADD, d=0, a=2, b=4),
           encode(Op.VMUL, d=0, a=0, b=7), encode(Op.VQUANT, d=2, a=0, c=0),
           encode(Op.VRESCALE, d=0, a=cfg.res_elems + 1, c=0), encode(Op.VMAXABS, a=3, c=0)]
    P, entries = [], []
    for k, word in enumerate(bad):
        entries.append(len(P))
        P += [encode(Op.SETVL, a=6), encode(Op.VADD, d=16 + 8 * k, a=0, b=8), word,
              encode(Op.VSUB, d=64, a=0, b=8), encode(Op.HALT)]
    entries.append(len(P))
    P += [encode(Op.SETVL, a=6), encode(Op.VSUB, d=64, a=0, b=8), encode(Op.VARGMAX, a=8, c=3),
          encode(Op.HALT)]
    got = check(cfg, P, tmp_path, vmem=list(range(-7, 9)), entry=entries)
    assert [r["error"] for r in got["runs"]] == [1] * len(bad) + [0]
    assert got["vmem"][16:22] == [-7 + k + (1 + k) for k in range(6)]
    assert got["vmem"][64:72] == [-8] * 6 + [0, 0] and got["sregs"][3] == 5
