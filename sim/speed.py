"""Simulation-speed probes on a real design (used by bench/sim_speed.py).

Three ways to run the same Verilated model, measured in simulated clock cycles per
wall-clock second, timed inside the simulator process (start-up excluded):

- ``python_every_cycle``: a Python coroutine wakes on every rising edge and drives the
  input stream (one handshake per cycle): the cost of a Python-driven bench.
- ``stream_helpers``: tritium's own StreamSource + StreamSink + Watchdog, the way the
  test benches run.
- ``python_waits``: inputs held, clock in the simulator (GPI clock), Python sleeps in one
  ``Timer`` for the whole run: the cocotb floor.

:func:`build_cpp_loop` adds the ceiling: a bare C++ ``main`` toggling the clock of the
same Verilated model, with no VPI and no Python.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .build import Design, build_standalone

CPP_LOOP = r"""
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include "verilated.h"
#include "Vtop.h"
// Verilator escapes "__" in port names as "___05F".

template <typename T> static void fill(T& v) { v = (T)0x5555555555555555ULL; }
template <std::size_t N> static void fill(VlWide<N>& v) {
    for (std::size_t k = 0; k < N; ++k) v[k] = 0x55555555u;
}

int main(int argc, char** argv) {
    const unsigned long long cycles = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
    VerilatedContext ctx;
    Vtop top{&ctx};
    top.rst = 1; top.clk = 0; top.eval(); top.clk = 1; top.eval(); top.rst = 0;
    top.i___05Fvalid = 1; top.o___05Fready = 1; fill(top.i___05Fpayload);
    auto t0 = std::chrono::steady_clock::now();
    for (unsigned long long c = 0; c < cycles; ++c) {
        top.clk = 0; top.eval();
        top.clk = 1; top.eval();
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%llu %.6f %d\n", cycles, s, (int)top.o___05Fvalid);
    return 0;
}
"""


def build_cpp_loop(design: Design) -> Path:
    """Build (cached) a bare C++ clock loop around ``design``; returns the executable.

    The design must have Amaranth's ``clk``/``rst`` and stream ports ``i`` and ``o``.
    """
    return build_standalone(design, CPP_LOOP, kind="cpp-loop")


def run_cpp_loop(exe: Path, cycles: int) -> float:
    """Cycles per second of the bare C++ loop."""
    out = subprocess.run([str(exe), str(cycles)], capture_output=True, text=True, check=True)
    n, secs, _ = out.stdout.split()
    return int(n) / float(secs)


import cocotb  # noqa: E402  (the bench half of this module runs inside the simulator)

from cocotb.triggers import RisingEdge, Timer

from .streams import StreamSink, StreamSource, Watchdog, load_inputs, reset, save_outputs, start_clock

async def _timed(dut, body, cycles):
    t0 = time.perf_counter()
    await body(dut, cycles)
    return cycles / (time.perf_counter() - t0)

PORTS = {"in": "i", "out": "o"}  # stream ports of the design under measurement

async def _every_cycle(dut, cycles):
    i, o = PORTS["in"], PORTS["out"]
    clk, valid, payload = dut.clk, getattr(dut, f"{i}__valid"), getattr(dut, f"{i}__payload")
    ready = getattr(dut, f"{o}__ready")
    ready.value = 1
    for c in range(cycles):
        await RisingEdge(clk)
        valid.value = 1
        payload.value = c & 0xFF

async def _helpers(dut, cycles):
    src = StreamSource(dut, "i", dut.clk)
    sink = StreamSink(dut, "o", dut.clk)
    wd = Watchdog(dut.clk, [src, sink])
    src.queue(range(cycles))
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    for helper in (src, sink, wd):
        helper.stop()

async def _waits(dut, cycles):
    dut.i__valid.value = 1
    dut.o__ready.value = 1
    dut.i__payload.value = 0x1234
    await Timer(cycles * 10, unit="ns")

@cocotb.test()
async def measure(dut):
    inp = load_inputs()
    PORTS.update(inp.get("ports", {}))
    start_clock(dut.clk, 10)
    await reset(dut)
    out = {}
    for name, body in (("python_every_cycle", _every_cycle), ("stream_helpers", _helpers),
                       ("python_waits", _waits)):
        if name in inp:
            out[name] = [await _timed(dut, body, inp[name]) for _ in range(inp["repeats"])]
    save_outputs(out)
