"""cocotb benches of the token core (:class:`tritium.engines.mfc.hdl.MfcCore`) and its units, and
their host-side runners.

- :func:`run_mfc` loads weights, V, the scalar registers and a program through the core's
  ports, runs it from one or more entry points and reads back V, S, ``error`` and the
  counters of each run. :func:`golden_mfc` returns the same dict from
  :class:`tritium.engines.mfc.golden.Machine`, so a test compares the two with ``==``.
- :func:`run_mfc_vector` / :func:`run_mfc_scalar` drive the vector and the scalar unit
  alone under random valid/ready stalls; their expected values come from the golden
  machine executing the same operations.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from tritium.engines.mfc.config import MfcConfig
from tritium.engines.mfc.golden import (COUNTERS, IMM_BITS, SCALAR_OPS, VECTOR_OPS, Instr, Machine,
                                Op, encode, s32)

TOP = "mfc"
#: Verilator warnings waived on the core's Verilog: yosys prints constant operands and
#: zero-extended fields at their minimal width (EXPAND), the FSM state tests and memory
#: address slices narrower than the expression (TRUNC), memory/FSM switches without a
#: default arm (CASEINCOMPLETE); all are width-correct in the Amaranth source.
#: ``--output-split 0``: one C++ file (the wheel's split build trips over its
#: precompiled header). ``-CFLAGS -O0``: these benches simulate thousands of cycles, so
#: the C++ compile dominates; unoptimised it builds 2.4x faster (27 s vs 65 s measured
#: for the 16x4 core), the simulation is still well under a second.
BUILD_ARGS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE",
              "--output-split", "0", "-CFLAGS", "-O0")
#: what the spare lanes of a part-full group carry into the vector unit alone: the largest
#: int32, which a reduction would pick up if it read them
I32_JUNK = (1 << 31) - 1
#: cycles the bench waits for ``done`` before it declares the core hung
DEFAULT_MAX_CYCLES = 1 << 20


@functools.lru_cache(maxsize=8)
def design(cfg: MfcConfig, unit: str = "core"):
    """The Verilog of the core (or of its ``"vector"`` / ``"scalar"`` unit); elaborating
    the core takes seconds, so a process converts each config once."""
    from tritium.engines.mfc.hdl import MfcCore, MfcScalar, MfcVector

    from tritium.sim.build import design_of

    if unit == "vector":
        return design_of(MfcVector(cfg), "mfc_vector")
    if unit == "scalar":
        return design_of(MfcScalar(), "mfc_scalar")
    return design_of(MfcCore(cfg), TOP)


def _entries(entry) -> list[int]:
    return [int(entry)] if isinstance(entry, (int, np.integer)) else [int(e) for e in entry]


def _prelude(cfg: MfcConfig, sregs) -> list[int]:
    """SLI words that load ``sregs`` (each within the 64-bit immediate), then HALT."""
    lo, hi = -(1 << (IMM_BITS - 1)), (1 << (IMM_BITS - 1)) - 1
    words = []
    for k, v in enumerate(sregs):
        if not lo <= int(v) <= hi:
            raise ValueError(f"sregs[{k}]={v} is outside the SLI immediate [{lo}, {hi}]; "
                             "build wider values in the program (SMUL)")
        words.append(encode(Op.SLI, d=k, imm=int(v)))
    if len(words) + 1 > cfg.imem_depth:
        raise ValueError("too many scalar registers for the instruction memory")
    return words + [encode(Op.HALT)]


def golden_mfc(cfg: MfcConfig, program, *, vmem=None, weights=None, sregs=None,
               entry: int | Sequence[int] = 0, check_races: bool = True) -> dict[str, Any]:
    """What :func:`run_mfc` returns, from the golden :class:`Machine`."""
    mach = Machine(cfg)
    if vmem is not None:
        mach.vmem[:len(vmem)] = np.asarray(vmem, dtype=np.int64)
    if weights is not None:
        mach.load_weights(list(weights))
    if sregs is not None:
        _prelude(cfg, sregs)  # same range check as the RTL loader
        mach.sregs[:len(sregs)] = [int(v) for v in sregs]
    mach.load_program(list(program))
    runs = []
    for e in _entries(entry):
        out = mach.run(e, check_races=check_races)
        runs.append({"counters": {k: out[k] for k in COUNTERS}, "error": out["error"]})
    return {"vmem": [int(v) for v in mach.vmem], "sregs": [int(v) for v in mach.sregs],
            "runs": runs, **runs[-1]}


def run_mfc(cfg: MfcConfig, program, *, vmem=None, weights=None, sregs=None,
            entry: int | Sequence[int] = 0, seed: int = 0, max_cycles: int = DEFAULT_MAX_CYCLES,
            waves: bool = False, run_dir=None) -> dict[str, Any]:
    """Run ``program`` (instruction words) on the core in Verilator.

    ``vmem``: initial V (from address 0); ``weights``: TMV weight lines (from line 0);
    ``sregs``: initial scalar registers (from S0), loaded by a prelude run of SLIs, so
    each must fit the 64-bit immediate; ``entry``: one entry point or a list of them, run
    one after another on the same state. Returns ``vmem`` and ``sregs`` (final),
    ``runs`` (per run: ``counters`` and ``error``), the last run's ``counters`` and
    ``error``, and ``cached`` (the build came from the cache). A run that does not finish
    within ``max_cycles`` fails with SimulationError.
    """
    from tritium.sim.build import build
    from tritium.sim.run import simulate

    words = [int(w) for w in program]
    if len(words) > cfg.imem_depth:
        raise ValueError(f"a program of {len(words)} words exceeds imem_depth="
                         f"{cfg.imem_depth}")
    if vmem is not None and len(vmem) > cfg.vmem_depth:
        raise ValueError(f"{len(vmem)} V values exceed vmem_depth={cfg.vmem_depth}")
    prelude = _prelude(cfg, sregs) if sregs is not None else None
    model = build(design(cfg), waves=waves, build_args=BUILD_ARGS)
    out = simulate(model, __name__, testcase="check_run", seed=seed, waves=waves,
                   run_dir=run_dir, inputs={
                       "config": cfg.to_dict(), "program": words, "prelude": prelude,
                       "vmem": [int(v) for v in vmem] if vmem is not None else [],
                       "weights": [int(w) for w in weights] if weights is not None else [],
                       "entries": _entries(entry), "max_cycles": max_cycles})
    out.update(out["runs"][-1])
    out["cached"] = model.cached
    return out


# ---- the units alone ----------------------------------------------------------------------

def vector_jobs_expected(cfg: MfcConfig, jobs) -> list[tuple[int, int | None]]:
    """Per element of ``jobs`` (each ``(op, x, y, s0, s1)``): ``(data, acc)`` as the
    golden machine computes them; ``data`` is None for reductions, ``acc`` is the
    reduction's result on a vector's last element and None elsewhere."""
    expected = []
    for op, x, y, s0, s1 in jobs:
        n = len(x)
        mach = Machine(cfg)
        mach.vmem[:n] = x
        mach.vmem[n:2 * n] = y
        mach.res[:n] = x
        mach.sregs[:2] = [int(s0), int(s1)]
        mach._vector(Op(op), Instr(int(op), 2 * n, 0, n, 0, 0), n, cfg.frac_bits)
        spec = VECTOR_OPS[Op(op)]
        if spec.get("c") == "sw":
            expected += [(None, None)] * (n - 1) + [(None, mach.sregs[0] & ((1 << 64) - 1))]
        elif spec.get("c") == "sk":   # VNORM: elements and the reduction in S[c+1]
            data = [int(v) for v in mach.vmem[2 * n:3 * n]]
            expected += [(v, None) for v in data[:-1]] + \
                [(data[-1], mach.sregs[1] & ((1 << 64) - 1))]
        elif op == Op.VQUANT:
            expected += [(int(v), None) for v in mach.act[2 * n:3 * n]]
        else:
            expected += [(int(v), None) for v in mach.vmem[2 * n:3 * n]]
    return expected


def run_mfc_vector(cfg: MfcConfig, jobs, *, seed: int = 1, valid_prob: float = 1.0,
                   ready_prob: float = 1.0, run_dir=None) -> dict[str, Any]:
    """Stream ``jobs`` (``(op, x, y, s0, s1)``, x and y int32 sequences of one length >= 1)
    through the vector unit under random stalls, in groups of ``cfg.vpu_lanes`` elements
    (a vector's last group part-full, its spare lanes holding junk the unit must ignore).
    Returns ``got`` and ``expected``: per element ``(data, acc)`` with the fields that op
    defines (None elsewhere)."""
    from tritium.sim.build import build
    from tritium.sim.run import simulate

    L, beats = cfg.vpu_lanes, []
    for op, x, y, s0, s1 in jobs:
        n = len(x)
        for g in range(0, n, L):
            pad = [I32_JUNK] * (g + L - n)
            beats.append({"op": int(op), "x": [int(v) for v in x[g:g + L]] + pad,
                          "y": [int(v) for v in y[g:g + L]] + pad, "s0": s32(int(s0)),
                          "s1": s32(int(s1)), "mask": (1 << min(L, n - g)) - 1,
                          "first": int(g == 0), "last": int(g + L >= n)})
    model = build(design(cfg, "vector"), build_args=BUILD_ARGS)
    out = simulate(model, __name__, testcase="check_vector", seed=seed, run_dir=run_dir,
                   inputs={"config": cfg.to_dict(), "beats": beats, "valid_prob": valid_prob,
                           "ready_prob": ready_prob})
    expected = vector_jobs_expected(cfg, jobs)
    got = [(d if e[0] is not None else None, a if e[1] is not None else None)
           for (d, a), e in zip(out["results"], expected)]
    return {"got": got, "expected": expected, "cached": model.cached}


def run_mfc_scalar(cfg: MfcConfig, jobs, *, seed: int = 1, valid_prob: float = 1.0,
                   ready_prob: float = 1.0, run_dir=None) -> dict[str, Any]:
    """Run ``jobs`` (``(op, a, b, shift)``, op an :class:`Op` of the scalar unit, a and b
    signed 64-bit) through the scalar unit under random stalls. Returns ``got`` and
    ``expected`` (signed 64-bit results; expected from the golden machine)."""
    from tritium.engines.mfc.hdl.scalar import SCALAR_CODES

    from tritium.sim.build import build
    from tritium.sim.run import simulate

    expected = []
    for op, a, b, shift in jobs:
        mach = Machine(cfg)
        mach.sregs[:2] = [int(a), int(b)]
        mach.load_program([encode(Op(op), 2, 0, 1, int(shift)), encode(Op.HALT)])
        mach.run()
        expected.append(mach.sregs[2])
    beats = [{"op": SCALAR_CODES[SCALAR_OPS[Op(op)]], "a": int(a) & ((1 << 64) - 1),
              "b": int(b) & ((1 << 64) - 1), "shift": int(s)} for op, a, b, s in jobs]
    model = build(design(cfg, "scalar"), build_args=BUILD_ARGS)
    out = simulate(model, __name__, testcase="check_scalar", seed=seed, run_dir=run_dir,
                   inputs={"beats": beats, "valid_prob": valid_prob, "ready_prob": ready_prob})
    return {"got": out["results"], "expected": expected, "cached": model.cached}


# ---- inside the simulator -------------------------------------------------------------

import cocotb  # noqa: E402  (the bench half of this module runs inside the simulator)

from cocotb.triggers import ClockCycles, FallingEdge  # noqa: E402

from tritium.sim.payload import pack, unpack  # noqa: E402
from tritium.sim.streams import (StreamSink, StreamSource, Watchdog, load_inputs,  # noqa: E402
                                 reset, save_outputs, start_clock)


async def _run_to_done(dut, entry: int, max_cycles: int) -> None:
    """Pulse ``start`` and wait for ``done`` (inputs change on falling edges)."""
    await FallingEdge(dut.clk)
    dut.entry.value = entry
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    waited = 0
    while int(dut.busy.value):
        await ClockCycles(dut.clk, 16)
        waited += 16
        if waited > max_cycles:
            raise AssertionError(f"the core is still busy after {max_cycles} cycles (hung)")
    await FallingEdge(dut.clk)
    assert int(dut.done.value), "busy fell without done"


@cocotb.test()
async def check_run(dut):
    """Load weights, V, S and the program; run each entry; read V, S and the counters."""
    from tritium.engines.mfc.hdl.core import imem_layout
    from tritium.engines.tmv.hdl.matvec import wload_layout

    inp = load_inputs()
    cfg = MfcConfig.from_dict(inp["config"])
    start_clock(dut.clk)
    for name in ("start", "host_we", "host_addr", "host_wdata", "entry", "sreg_sel"):
        getattr(dut, name).value = 0
    await reset(dut)
    wl, il = wload_layout(cfg.tmv), imem_layout(cfg)
    wsrc = StreamSource(dut, "wload", dut.clk)
    isrc = StreamSource(dut, "imem_w", dut.clk)
    await wsrc.send([pack(wl, {"addr": a, "data": d}) for a, d in enumerate(inp["weights"])])
    wsrc.stop()

    await FallingEdge(dut.clk)
    for a, v in enumerate(inp["vmem"]):
        dut.host_addr.value, dut.host_wdata.value, dut.host_we.value = a, v & 0xFFFFFFFF, 1
        await FallingEdge(dut.clk)
    dut.host_we.value = 0

    async def load_program(words):
        await isrc.send([pack(il, {"addr": a, "data": w}) for a, w in enumerate(words)])

    if inp["prelude"] is not None:
        await load_program(inp["prelude"])
        await _run_to_done(dut, 0, inp["max_cycles"])
        assert not int(dut.error.value), "the register prelude set error"
    await load_program(inp["program"])
    isrc.stop()

    runs = []
    for entry in inp["entries"]:
        await _run_to_done(dut, entry, inp["max_cycles"])
        runs.append({"counters": {k: int(getattr(dut, k).value) for k in COUNTERS},
                     "error": int(dut.error.value)})

    sregs = []
    for k in range(cfg.sregs + 1):
        if k:
            sregs.append(dut.sreg_rdata.value.to_signed())
        if k < cfg.sregs:
            dut.sreg_sel.value = k
        await FallingEdge(dut.clk)
    vmem = []
    for a in range(cfg.vmem_depth + 1):
        if a:
            vmem.append(dut.host_rdata.value.to_signed())  # V[a - 1]
        if a < cfg.vmem_depth:
            dut.host_addr.value = a
        await FallingEdge(dut.clk)
    save_outputs({"runs": runs, "vmem": vmem, "sregs": sregs})


async def _through_unit(dut, in_layout, out_layout) -> list[dict]:
    """Stream the input beats through a unit (``i`` -> ``o``) under the random stalls of
    the inputs; returns the unpacked ``o`` beats, checking that no extra beat follows."""
    inp = load_inputs()
    start_clock(dut.clk)
    await reset(dut)
    src = StreamSource(dut, "i", dut.clk, valid_prob=inp["valid_prob"])
    sink = StreamSink(dut, "o", dut.clk, ready_prob=inp["ready_prob"])
    Watchdog(dut.clk, [src, sink], stall_limit=1000)
    src.queue([pack(in_layout, b) for b in inp["beats"]])
    raw = await sink.receive(len(inp["beats"]))
    await ClockCycles(dut.clk, 8)
    assert len(sink.received) == len(inp["beats"]), "extra beats on o"
    return [unpack(out_layout, r) for r in raw]


@cocotb.test()
async def check_vector(dut):
    """Element beats through the vector unit; records ``(data, acc)`` per result."""
    from tritium.engines.mfc.hdl.vector import in_layout, out_layout

    cfg = MfcConfig.from_dict(load_inputs()["config"])
    res = await _through_unit(dut, in_layout(cfg), out_layout(cfg))
    save_outputs({"results": [(r["data"][k], r["acc"]) for r in res
                              for k in range(cfg.vpu_lanes) if r["mask"] >> k & 1]})


@cocotb.test()
async def check_scalar(dut):
    """Operations through the scalar unit; records the signed results."""
    from tritium.engines.mfc.hdl.scalar import IN_LAYOUT, OUT_LAYOUT

    res = await _through_unit(dut, IN_LAYOUT, OUT_LAYOUT)
    save_outputs({"results": [r["value"] - ((r["value"] >> 63) << 64) for r in res]})
