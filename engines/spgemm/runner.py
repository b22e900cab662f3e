"""cocotb bench of :class:`tritium.engines.spgemm.hdl.SpgemmEngine`, and its host-side runner.

:func:`run_spgemm` checks the operands (typed errors before anything runs), computes the
golden product, builds the engine (cached), and runs :func:`check_product` in Verilator:
the bench loads A and B through ``load`` and starts one command, all under random
valid/ready stalls from the seed, collects C from ``c`` until ``busy`` falls, and reads
the counters. Every row of C must equal the golden row exactly, in drain order; a
mismatch, an error flag, a stall (no handshake for ``stall_limit`` cycles) or the cycle
limit fails the run with :class:`~tritium.errors.SimulationError`.
"""

from __future__ import annotations

from typing import Any


from tritium.engines.spgemm.config import SpgemmConfig
from tritium.errors import ConfigError, ShapeError, SimulationError
from tritium.engines.spgemm import golden as golden

TOP = "spgemm"

#: Verilator warnings waived on this design's Verilog, with the reason for each:
#: yosys writes comparisons of a field with a narrower constant or index (EXPAND), the
#: FSM's state test as a logical NOT of the state vector (TRUNC), and memory/FSM switches
#: without a default arm (CASEINCOMPLETE); all are width-correct in the Amaranth source.
BUILD_ARGS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE",
              # one C++ file: the wheel's split build trips over its precompiled header
              "--output-split", "0")


def design(cfg: SpgemmConfig):
    from tritium.engines.spgemm.hdl import SpgemmEngine

    from tritium.sim.build import design_of

    return design_of(SpgemmEngine(cfg), TOP)


def load_beats(cfg: SpgemmConfig, A, B) -> list[int]:
    """The ``load`` stream that writes A and B (row extents, then entries) into the engine."""
    from tritium.engines.spgemm.hdl.engine import (MEMORIES, entry_layout, extent_layout,
                                           load_layout)

    from tritium.sim.payload import pack

    lay, ext, ent = load_layout(cfg), extent_layout(cfg), entry_layout(cfg)
    beats = []
    for prefix, M in (("a", A), ("b", B)):
        ip = M.indptr.tolist()
        words = {f"{prefix}_ext": [pack(ext, {"start": ip[r], "end": ip[r + 1]})
                                   for r in range(M.shape[0])],
                 f"{prefix}_ent": [pack(ent, {"col": int(c), "value": int(v)})
                                   for c, v in zip(M.indices, M.data)]}
        for name, ws in words.items():
            code = MEMORIES.index(name)
            beats += [pack(lay, {"mem": code, "addr": a, "data": w}) for a, w in enumerate(ws)]
    return beats


def run_spgemm(cfg: SpgemmConfig, A, B, semiring: str = "plus-times", *, seed: int = 1,
               valid_prob: float = 1.0, ready_prob: float = 1.0, mem_hold_prob: float = 0.0,
               stall_limit: int = 10_000, waves: bool = False, run_dir=None,
               details: bool = False):
    """C = A·B on the RTL. Returns ``(C, counters)``: C as scipy CSR (int64, each row in
    the engine's drain order, explicit zeros kept), read back from the engine's C memory
    (row extents, then each PE bank's entries), and the hardware counters (dict; see
    :data:`tritium.engines.spgemm.hdl.engine.COUNTERS`). C was already compared with the golden
    model inside this call (SimulationError on any difference, or if the stored rows
    overlap or leave a gap). ``details=True`` adds ``counters["golden"]`` (the golden
    result) and ``counters["cached"]``.

    Bad input (not CSR, shapes, unsorted/duplicate indices, values outside the
    semiring's range, a semiring not built, a C larger than ``max_c_nnz``) raises
    ShapeError/ConfigError first; so does ``cfg.operands_dram`` (this bench drives the
    engine's on-chip memories, not a DRAM).
    """
    from tritium.sim.build import build
    from tritium.sim.run import simulate

    if cfg.operands_dram:
        raise ConfigError("operands_dram=1 keeps A, B and C in the SoC's DRAM, which this "
                          "engine-alone bench does not model; run the product with "
                          "Device.spgemm on a device served with a DRAM, or set "
                          "operands_dram=0")

    ref = golden.spgemm(cfg, A, B, semiring)  # checks the operands first
    if ref.stats["out"] > cfg.max_c_nnz:
        raise ShapeError(f"C has {ref.stats['out']} entries; this engine stores at most "
                         f"{cfg.max_c_nnz} (max_c_nnz): raise it or split A's rows")
    code = golden.semiring_code(cfg, semiring)
    work = ref.stats["products"] + ref.stats["probes"] + ref.stats["out"]
    loads = load_beats(cfg, A, B)
    slowest = max(min(valid_prob, ready_prob), 0.05)
    held = 1 / max(1 - mem_hold_prob, 0.05)
    per_pass = 40 + 6 * cfg.fetch_latency * cfg.transfer_cycles(cfg.extent_bytes)
    cycle_limit = int((len(loads) + 4 * (A.shape[0] + ref.stats["out"])) / slowest
                      + held * (4 * work * cfg.transfer_cycles(cfg.entry_bytes)
                                + per_pass * A.shape[0] * (1 + ref.stats["passes"]))) + 10_000
    model = build(design(cfg), waves=waves, build_args=BUILD_ARGS)
    out = simulate(model, __name__, testcase="check_product", seed=seed, waves=waves,
                   run_dir=run_dir, stall_limit=stall_limit, cycle_limit=cycle_limit,
                   inputs={"config": cfg.to_dict(), "valid_prob": valid_prob,
                           "ready_prob": ready_prob, "mem_hold_prob": mem_hold_prob,
                           "loads": loads,
                           "cmd": {"rows": A.shape[0], "b_rows": B.shape[0], "semiring": code}})
    if out["error"]:
        raise SimulationError("the engine raised its error flag on valid operands")
    check_layout(cfg, out["extents"], ref.stats["out"])
    for r, got in enumerate(out["rows"]):
        want = [list(p) for p in zip(*ref.rows[r])]
        if got != want:
            raise SimulationError(f"C row {r} differs from the golden model: got {got[:8]}, "
                                  f"expected {want[:8]} (seed {seed})")
    C = golden.SpgemmResult(ref.shape, [([c for c, _ in r], [v for _, v in r])
                                        for r in out["rows"]], {}, []).csr()
    counters: dict[str, Any] = dict(out["counters"])
    if details:
        counters["golden"] = ref
        counters["cached"] = model.cached
    return C, counters


def check_layout(cfg: SpgemmConfig, extents: list[list[int]], entries: int) -> None:
    """The stored rows tile each PE bank of C's entry memory from its start, without
    overlap or gap, and hold ``entries`` in all."""
    at: dict[int, int] = {}
    for start, end in sorted((s, e) for s, e in extents if e != s):
        bank = start >> cfg.c_bank_bits
        base = at.get(bank, bank << cfg.c_bank_bits)
        if start != base or end < start or (end - 1) >> cfg.c_bank_bits != bank:
            raise SimulationError(f"C's stored rows leave a gap or overlap in bank {bank} at "
                                  f"address {base} (next row [{start}, {end}))")
        at[bank] = end
    total = sum(end - (bank << cfg.c_bank_bits) for bank, end in at.items())
    if total != entries:
        raise SimulationError(f"C's row extents cover {total} entries, expected {entries}")


def run_raw(cfg: SpgemmConfig, loads: list[int], cmd: dict[str, int], *, run_dir=None,
            stall_limit: int = 2_000, cycle_limit: int = 50_000) -> dict[str, Any]:
    """Run the engine on raw ``load`` beats and one command, without host checks or a
    golden comparison: for testing the hardware's own reaction to bad input. Returns
    the bench's outputs (``rows``: C read back per row as ``[col, value]`` pairs,
    ``extents``, ``error``, ``counters``)."""
    from tritium.sim.build import build
    from tritium.sim.run import simulate

    model = build(design(cfg), build_args=BUILD_ARGS)
    return simulate(model, __name__, testcase="check_product", run_dir=run_dir,
                    stall_limit=stall_limit, cycle_limit=cycle_limit,
                    inputs={"config": cfg.to_dict(), "valid_prob": 1.0, "ready_prob": 1.0,
                            "loads": loads, "cmd": cmd})


# ---- inside the simulator -------------------------------------------------------------

import cocotb  # noqa: E402  (the bench half of this module runs inside the simulator)

from cocotb.triggers import RisingEdge

from tritium.sim.payload import pack, unpack
from tritium.sim.streams import (StreamSink, StreamSource, Watchdog, load_inputs, reset,
                                save_outputs, start_clock)

@cocotb.test()
async def check_product(dut):
    """Load A and B, run one command, read C back from the engine's memory (extents, then
    entries), and the counters."""
    from tritium.engines.spgemm.hdl.engine import (c_extent_layout, cmd_layout, counters_layout,
                                           entry_layout, rd_layout, rdata_layout)

    inp = load_inputs()
    cfg = SpgemmConfig.from_dict(inp["config"])
    start_clock(dut.clk)
    await reset(dut)
    load = StreamSource(dut, "load", dut.clk, valid_prob=inp["valid_prob"])
    cmd = StreamSource(dut, "cmd", dut.clk, valid_prob=inp["valid_prob"])
    rd = StreamSource(dut, "rd", dut.clk, valid_prob=inp["valid_prob"])
    sink = StreamSink(dut, "rdata", dut.clk, ready_prob=inp["ready_prob"])
    # while the engine runs no stream moves: the cycle limit bounds that phase, a
    # watchdog each phase around it
    dog = Watchdog(dut.clk, [load, cmd])
    dut.mem_hold.value = 0
    if inp.get("mem_hold_prob", 0):
        cocotb.start_soon(hold_memory(dut, inp["mem_hold_prob"], load.rng))
    await load.send(inp["loads"])
    await cmd.send([pack(cmd_layout(cfg), inp["cmd"])])
    dog.stop()
    for _ in range(2):  # busy rises the cycle after the command is taken
        await RisingEdge(dut.clk)
    while int(dut.busy.value):
        await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    Watchdog(dut.clk, [rd, sink])
    counters = unpack(counters_layout(cfg), dut.counters.value.to_unsigned())

    async def read_at(mem: int, addrs, layout) -> list[dict]:
        have, n = len(sink.received), len(addrs)
        await rd.send([pack(rd_layout(cfg), {"mem": mem, "addr": a}) for a in addrs])
        raw = await sink.receive(have + n)
        word = rdata_layout(cfg)
        return [unpack(layout, unpack(word, r)["data"]) for r in raw[have:]]

    rows = inp["cmd"]["rows"]
    ext = await read_at(0, range(rows), c_extent_layout(cfg))
    # each PE bank up to its last row's end
    ends: dict[int, int] = {}
    for e in ext:
        if e["end"] > e["start"]:
            bank = e["start"] >> cfg.c_bank_bits
            ends[bank] = max(ends.get(bank, 0), e["end"])
    ent: dict[int, dict] = {}
    for bank, end in sorted(ends.items()):
        base = bank << cfg.c_bank_bits
        ent.update(zip(range(base, end), await read_at(1, range(base, end), entry_layout(cfg))))
    save_outputs({"extents": [[e["start"], e["end"]] for e in ext],
                  "rows": [[[ent[k]["col"], ent[k]["value"]] for k in range(e["start"], e["end"])]
                           for e in ext],
                  "error": int(dut.error.value), "counters": counters})


async def hold_memory(dut, prob: float, rng) -> None:
    """Random memory pauses: ``mem_hold`` high with probability ``prob`` each cycle."""
    while True:
        await RisingEdge(dut.clk)
        dut.mem_hold.value = int(rng.random() < prob)
