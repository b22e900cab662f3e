"""cocotb bench of :class:`tritium.engines.tmv.hdl.TernaryDot`, and its host-side runner.

:func:`run_ternary_dot` builds the design (cached), runs :func:`check_vectors` in
Verilator and returns what the bench measured. Inside the simulator, every result beat
is compared as it arrives with :func:`tritium.engines.tmv.golden.ternary_dot`, under random
valid/ready stalls from the seed; a mismatch or a stall fails the run with
:class:`~tritium.errors.SimulationError`.
"""

from __future__ import annotations

from typing import Any, Sequence

from tritium.engines.tmv.config import TernaryDotConfig
from tritium.engines.tmv.golden import ternary_dot, to_beats

TOP = "ternary_dot"


def design(cfg: TernaryDotConfig):
    from tritium.engines.tmv.hdl import TernaryDot

    from tritium.sim.build import design_of

    return design_of(TernaryDot(cfg), TOP)


def run_ternary_dot(cfg: TernaryDotConfig, vectors: Sequence[tuple[Sequence[int], Sequence[int]]],
                    *, seed: int = 1, valid_prob: float = 1.0, ready_prob: float = 1.0,
                    waves: bool = False, run_dir=None, stall_limit: int = 10_000,
                    testcase: str = "check_vectors", _corrupt_expected: int | None = None
                    ) -> dict[str, Any]:
    """Run ``vectors`` (pairs of weight codes and activations) through the RTL.

    Returns ``results`` (one int per vector, already checked against the golden in the
    bench), ``in_cycles``/``out_cycles`` (clock cycle of every input/output handshake),
    ``error`` (the sticky invalid-code flag), ``monitored_in_beats`` (input payloads as a
    passive monitor saw them) and ``cached`` (whether the Verilator model
    came from the build cache). ``stall_limit``: cycles without any handshake before the
    bench fails naming the stalled stream. ``_corrupt_expected=k`` adds 1 to the k-th
    expected value: only for testing that the bench's comparison can fail.
    """
    from tritium.sim.build import build
    from tritium.sim.run import simulate

    for codes, x in vectors:  # host-side checks: shape and range errors before simulating
        ternary_dot(cfg, codes, x)
    model = build(design(cfg), waves=waves)
    out = simulate(model, __name__, testcase=testcase, seed=seed, waves=waves,
                   run_dir=run_dir, stall_limit=stall_limit,
                   inputs={"config": cfg.to_dict(), "valid_prob": valid_prob,
                           "ready_prob": ready_prob, "corrupt_expected": _corrupt_expected,
                           "vectors": [[list(map(int, c)), list(map(int, x))]
                                       for c, x in vectors]})
    out["cached"] = model.cached
    out["wave_file"] = model.wave_file
    return out


# ---- inside the simulator -------------------------------------------------------------

import cocotb  # noqa: E402  (the bench half of this module runs inside the simulator)

from tritium.sim.payload import pack
from tritium.sim.streams import (StreamMonitor, StreamSink, StreamSource, Watchdog,
                                load_inputs, reset, save_outputs, start_clock)

@cocotb.test()
async def check_vectors(dut):
    """Stream every vector, compare every result with the golden, record timing."""
    from tritium.engines.tmv.hdl.dot import beat_layout

    inp = load_inputs()
    cfg = TernaryDotConfig.from_dict(inp["config"])
    vectors = inp["vectors"]
    layout = beat_layout(cfg)
    expected = [ternary_dot(cfg, c, x)[0] for c, x in vectors]
    if inp.get("corrupt_expected") is not None:
        expected[inp["corrupt_expected"]] += 1
    beats = [pack(layout, {"w": w, "x": xs, "last": int(last)})
             for c, x in vectors for w, xs, last in to_beats(cfg, c, x)]

    start_clock(dut.clk)
    await reset(dut)
    src = StreamSource(dut, "i", dut.clk, valid_prob=inp["valid_prob"])
    sink = StreamSink(dut, "o", dut.clk, ready_prob=inp["ready_prob"], signed=True,
                      expect=expected)
    mon = StreamMonitor(dut, "i", dut.clk)  # independent count of accepted input beats
    Watchdog(dut.clk, [src, sink], busy=lambda: len(sink.received) < len(expected))
    src.queue(beats)
    await sink.receive(len(expected))
    save_outputs({"results": sink.received, "in_cycles": src.beat_cycles,
                  "out_cycles": sink.beat_cycles, "error": int(dut.error.value),
                  "monitored_in_beats": mon.seen})
