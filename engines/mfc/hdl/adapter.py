"""The token core on the SoC's byte bus (its description: :mod:`tritium.engines.mfc`).

Regions: ``weights`` (write only, as the bare TMV's: the core's TMV; absent with
``tmv.weights_dram``, where weight line ``a`` is the ``line_stride`` bytes at DRAM byte
``a * line_stride``, read through a :class:`~tritium.hdl.mem.DramWeightPort` on the SoC's
DRAM arbiter), ``program`` (write only; ``INSTR_BYTES`` per instruction, committed on
its last byte), ``vmem`` (read/write; 4
bytes per element, committed on the last), ``sregs`` (read only; 8 bytes per register).
START runs from ``entry`` to HALT; while the core runs it holds the bus (every access
NAKed: address), so a host never races it.
"""

from __future__ import annotations

from amaranth import Cat, Mux, Signal
from amaranth.hdl import ResetInserter
from amaranth.lib import wiring

from tritium.engines.mfc.config import INSTR_BYTES
from tritium.engines.tmv.hdl.matvec import TernaryMatVec
from tritium.hdl.adapter import EngineAdapter, EngineBus, EngineOut
from tritium.hdl.mem import DramWeightPort
from .core import MfcCore


class MfcAdapter(EngineAdapter):
    """The token core: weights, program, vector memory and scalar registers on the bus."""

    def elaborate(self, bus: EngineBus) -> EngineOut:
        m, proc, c = bus.m, bus.proc, self.cfg
        core = MfcCore(c)
        m.submodules.mfc = ResetInserter(bus.soft)(core)
        t = c.tmv
        if t.weights_dram:
            # as the bare TMV's (tritium.engines.tmv.hdl.adapter): the host loads the lines
            # over the dram region and proves them with the CRC command
            m.submodules.wport = wport = DramWeightPort(
                dram=bus.dram, stride=t.line_stride, outstanding=t.fifo_depth + 1,
                **TernaryMatVec.mem_args(t))
            wiring.connect(m, core.wmem, wport.mem)
            wiring.connect(m, wport.dram, bus.dram_port())
            m.d.comb += [wport.flush.eq(bus.soft), core.wload.valid.eq(0)]
            crc = lines = None
        else:
            crc, lines = bus.weights(t.line_bits // 8, t.line_stride, core.wload)
        bus.assemble("program", INSTR_BYTES, INSTR_BYTES, core.imem_w.valid,
                     core.imem_w.payload.addr, core.imem_w.payload.data)
        v_we, v_waddr, v_wdata = Signal(), Signal.like(core.host_addr), Signal(32)
        bus.assemble("vmem", 4, 4, v_we, v_waddr, v_wdata)
        v_off, s_off = bus.offset("vmem"), bus.offset("sregs")
        m.d.comb += [core.host_we.eq(v_we), core.host_wdata.eq(v_wdata),
                     core.host_addr.eq(Mux(v_we, v_waddr, v_off[2:])),
                     core.sreg_sel.eq(s_off[3:])]
        # bus reads answer the cycle after: vmem through the core's read port, a scalar
        # register's byte from a register (its read is combinational)
        rd_sreg, rd_lane, sreg_byte = Signal(), Signal(2), Signal(8)
        with m.If(proc.bus_re):
            m.d.sync += [rd_sreg.eq(bus.hit("sregs")), rd_lane.eq(v_off[:2]),
                         sreg_byte.eq(core.sreg_rdata.word_select(s_off[:3], 8))]
        rdata = Mux(rd_sreg, sreg_byte, core.host_rdata.word_select(rd_lane, 8))

        entry = bus.fields["entry"]
        m.d.comb += [core.start.eq(bus.start), core.entry.eq(entry)]
        return EngineOut(flags=Cat(core.busy, core.done, core.error), beats=core.instructions,
                         counters=[getattr(core, n) for n, _ in self.counters()], busy=core.busy,
                         locks=core.busy, args_ok=entry < c.imem_depth, ready=~core.busy,
                         rdata=rdata, rvalid=bus.read_next_cycle(), weight_crc=crc,
                         weight_lines=lines)
