"""cocotb helpers for ``amaranth.lib.stream`` ports, used inside benches.

Amaranth names a stream member ``s`` of the top module ``s__valid``, ``s__ready`` and
``s__payload`` (the payload is the flat bit vector of its layout). Here:

- :class:`StreamSource` drives a stream into the DUT; holds ``valid`` and the payload
  until the handshake (the stream rule), and between beats idles at random.
- :class:`StreamSink` takes a stream out of the DUT, dropping ``ready`` at random.
- :class:`StreamMonitor` records the beats of a stream without driving it.
- :class:`Watchdog` fails the test, naming the stalled stream, when no watched stream
  completes a handshake for ``stall_limit`` cycles, or the run exceeds ``cycle_limit``.

Handshakes are sampled at the rising edge, before the DUT's registers update, so a beat
is counted exactly when the hardware takes it. Randomness comes from one seeded
``random.Random`` per helper, so a failing seed reproduces.

Bench I/O: :func:`load_inputs` / :func:`save_outputs` read and write the JSON files
that :func:`tritium.sim.run.simulate` exchanges with the bench.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, Sequence

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge

_PERIOD_NS = 10.0


class StallError(AssertionError):
    """No progress on any watched stream for the liveness limit."""


def sim_dir() -> Path:
    return Path(os.environ.get("TRITIUM_SIM_DIR", "."))


def load_inputs() -> dict[str, Any]:
    p = sim_dir() / "inputs.json"
    return json.loads(p.read_text()) if p.exists() else {}


def save_outputs(outputs: dict[str, Any]) -> None:
    (sim_dir() / "outputs.json").write_text(json.dumps(outputs))


def seed() -> int:
    return int(os.environ.get("TRITIUM_SEED", "1"))


def start_clock(clk, period_ns: float = _PERIOD_NS) -> None:
    """Start the clock in the simulator (GPI clock): no Python per cycle for the clock."""
    global _PERIOD_NS
    _PERIOD_NS = period_ns
    Clock(clk, period_ns, unit="ns", impl="gpi").start()


def now_cycles() -> int:
    """Clock cycles since time 0 (the clock of :func:`start_clock`)."""
    return int(get_sim_time("ns") // _PERIOD_NS)


async def reset(dut, cycles: int = 2) -> None:
    """Pulse Amaranth's synchronous ``rst`` for ``cycles`` cycles."""
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0


class _Port:
    def __init__(self, dut, name: str, clk, rng: random.Random | None):
        self.name = name
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk = clk
        self.rng = rng or random.Random(seed())
        self.beats = 0
        self.beat_cycles: list[int] = []  # clock cycle of every handshake

    def _took(self) -> None:
        self.beats += 1
        self.beat_cycles.append(now_cycles())

    def _take_if_handshake(self, signed: bool) -> int | None:
        """At a rising edge: the payload if valid and ready are both high, else None."""
        if int(self.ready.value) and int(self.valid.value):
            v = self.payload.value
            self._took()
            return v.to_signed() if signed else v.to_unsigned()
        return None

    def stop(self) -> None:
        """End this helper's per-cycle task (its port keeps its last driven value)."""
        self._task.cancel()

    def state(self) -> str:
        return f"{self.name}: valid={self.valid.value} ready={self.ready.value}"


class StreamSource(_Port):
    """Drive beats (integers: the flat payload bits) into a DUT stream input.

    ``valid_prob``: probability of offering the next beat on a cycle when one is queued
    (1.0 = back to back). Use :meth:`send` to queue and wait, or :meth:`queue` + the
    running task.
    """

    def __init__(self, dut, name: str, clk, *, valid_prob: float = 1.0, rng=None):
        super().__init__(dut, name, clk, rng)
        self.valid_prob = valid_prob
        self._queue: list[int] = []
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def queue(self, beats: Sequence[int]) -> None:
        self._queue.extend(beats)

    async def send(self, beats: Sequence[int]) -> None:
        self.queue(beats)
        while self._queue or int(self.valid.value):
            await RisingEdge(self.clk)

    async def _run(self) -> None:
        offering = False
        while True:
            await RisingEdge(self.clk)
            if offering and int(self.ready.value):
                self._took()
                offering = False
            if not offering and self._queue and self.rng.random() < self.valid_prob:
                self.payload.value = self._queue.pop(0)
                offering = True
            self.valid.value = int(offering)


class StreamMonitor(_Port):
    """Record the beats of a stream (in ``seen``) without driving it."""

    def __init__(self, dut, name: str, clk, *, signed: bool = False, rng=None):
        super().__init__(dut, name, clk, rng)
        self.signed = signed
        self.seen: list[int] = []
        self._task = cocotb.start_soon(self._run())

    def _beat(self, got: int) -> None:
        self.seen.append(got)

    def _edge(self) -> None:
        """After each edge's sampling (the sink drives ``ready`` here)."""

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.clk)
            got = self._take_if_handshake(self.signed)
            if got is not None:
                self._beat(got)
            self._edge()


class StreamSink(StreamMonitor):
    """Accept beats from a DUT stream output (in ``received``); ``ready_prob`` is the
    chance of ready on a cycle.

    With ``expect`` (a sequence), every beat is compared with the next expected value as
    it arrives, and the first mismatch fails the test naming the beat index; surplus
    beats fail too.
    """

    def __init__(self, dut, name: str, clk, *, ready_prob: float = 1.0, rng=None,
                 signed: bool = False, expect: Sequence[int] | None = None):
        self.ready_prob = ready_prob
        self.expect = None if expect is None else list(expect)
        super().__init__(dut, name, clk, signed=signed, rng=rng)
        self.received = self.seen
        self.ready.value = 0

    def _beat(self, got: int) -> None:
        n = len(self.seen)
        super()._beat(got)
        if self.expect is not None:
            if n >= len(self.expect):
                raise AssertionError(f"{self.name}: unexpected extra beat {n}: {got}")
            if got != self.expect[n]:
                raise AssertionError(f"{self.name} beat {n}: got {got}, expected {self.expect[n]}")

    def _edge(self) -> None:
        self.ready.value = int(self.rng.random() < self.ready_prob)

    async def receive(self, n: int) -> list[int]:
        """Wait until ``n`` beats in total have arrived; return them."""
        while len(self.received) < n:
            await RisingEdge(self.clk)
        return self.received[:n]


class Watchdog:
    """Fail the test when the watched streams stop making progress.

    A stall is ``stall_limit`` consecutive cycles with no handshake on any watched
    stream while some of them still has work (``busy()`` true); the failure names each
    stream's valid/ready state, so the one stuck shows. ``cycle_limit`` (0 = none) caps
    the whole run. Limits default to the values :func:`tritium.sim.run.simulate` passes.
    """

    def __init__(self, clk, ports: Sequence[_Port], *, stall_limit: int | None = None,
                 cycle_limit: int | None = None, busy=lambda: True):
        self.clk = clk
        self.ports = list(ports)
        self.stall_limit = stall_limit or int(os.environ.get("TRITIUM_STALL_LIMIT", "10000"))
        self.cycle_limit = (cycle_limit if cycle_limit is not None
                            else int(os.environ.get("TRITIUM_CYCLE_LIMIT", "0")))
        self.busy = busy
        self.cycle = 0
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        quiet, last_total = 0, -1
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1
            total = sum(p.beats for p in self.ports)
            quiet = 0 if total != last_total else quiet + 1
            last_total = total
            if quiet >= self.stall_limit and self.busy():
                states = ", ".join(p.state() for p in self.ports)
                raise StallError(f"stalled: no handshake on any stream for {quiet} cycles "
                                 f"at cycle {self.cycle} ({states})")
            if self.cycle_limit and self.cycle >= self.cycle_limit:
                raise StallError(f"cycle limit {self.cycle_limit} reached "
                                 f"({', '.join(p.state() for p in self.ports)})")
