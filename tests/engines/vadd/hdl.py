"""The vector-add engine on the SoC's byte bus (the contract: :mod:`vadd`)."""

from __future__ import annotations

from amaranth import Cat, Const, Signal
from amaranth.lib import memory

from tritium.hdl.adapter import EngineAdapter, EngineBus, EngineOut

from .config import OPERAND_BITS, RESULT_BITS


class VaddAdapter(EngineAdapter):
    def elaborate(self, bus: EngineBus) -> EngineOut:
        m, cfg, soft = bus.m, self.cfg, bus.soft
        ob = OPERAND_BITS // 8
        ports = {}
        for name in ("vadd_a", "vadd_b"):
            mem = memory.Memory(shape=OPERAND_BITS, depth=cfg.depth, init=[])
            m.submodules[name] = mem
            w, r = mem.write_port(), mem.read_port()
            bus.assemble(name, ob, ob, w.en, w.addr, w.data)
            ports[name] = r
        m.submodules.vadd_c = cmem = memory.Memory(shape=RESULT_BITS, depth=cfg.depth, init=[])
        cw, c_bus = cmem.write_port(), cmem.read_port()
        c_off = bus.offset("vadd_c")
        lane = Signal(2)
        m.d.comb += c_bus.addr.eq(c_off[2:])
        with m.If(bus.proc.bus_re):
            m.d.sync += lane.eq(c_off[:2])

        # one element issued per cycle; its sum is written the cycle after (block RAM)
        n, i = Signal(range(cfg.depth + 1)), Signal(range(cfg.depth + 1))
        busy, done, written, idx = Signal(), Signal(), Signal(), Signal(range(cfg.depth))
        cycles, elements = Signal(cfg.counter_bits), Signal(cfg.counter_bits)
        issue = busy & (i < n)
        a, b = ports["vadd_a"], ports["vadd_b"]
        m.d.comb += [a.addr.eq(i), b.addr.eq(i),
                     cw.en.eq(written), cw.addr.eq(idx),
                     cw.data.eq(a.data.as_signed() + b.data.as_signed())]
        m.d.sync += [written.eq(issue), idx.eq(i)]
        with m.If(issue):
            m.d.sync += i.eq(i + 1)
        with m.If(written):
            m.d.sync += elements.eq(elements + 1)
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If((i == n) & ~written):
                m.d.sync += [busy.eq(0), done.eq(1)]
        f = bus.fields
        with m.If(bus.start):
            m.d.sync += [busy.eq(1), done.eq(0), n.eq(f["n"]), i.eq(0), cycles.eq(0),
                         elements.eq(0)]
        with m.If(soft):
            m.d.sync += [busy.eq(0), done.eq(0), written.eq(0), cycles.eq(0),
                         elements.eq(0)]
        return EngineOut(flags=Cat(busy, done, Const(0, 1)), beats=elements,
                         counters=[cycles, elements], busy=busy, locks=busy,
                         args_ok=(f["n"] >= 1) & (f["n"] <= cfg.depth), ready=~busy,
                         rdata=c_bus.data.word_select(lane, 8),
                         rvalid=bus.read_next_cycle())
