"""The DRAM subsystem's parts in Amaranth's simulator, on the real ideal controller: the
link's write combining under back pressure (its queue full while another requester takes
half the port), round-robin sharing, read-after-write through the read-ahead."""

from __future__ import annotations

import random

from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from tritium.dram import DramConfig
from tritium.hdl.dram.ideal import IdealController
from tritium.hdl.mem import DramArbiter, LinkDramPort

CFG = DramConfig(size=1 << 12)


class Rig(wiring.Component):
    def __init__(self):
        self.link = LinkDramPort(CFG)
        self.arb = DramArbiter(CFG, 2)
        self.ctrl = IdealController(CFG, storage="amaranth")  # pysim: no Verilog array
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.link, m.submodules.arb = self.link, self.arb
        m.submodules.ctrl = self.ctrl
        wiring.connect(m, self.link.port, self.arb.r0)
        wiring.connect(m, self.arb.ctrl, self.ctrl.port)
        m.d.comb += self.link.invalidate.eq(self.arb.wrote)
        return m


def test_strided_writes_hold_the_bus_and_lose_nothing():
    rig = Rig()
    r1 = rig.arb.r1
    rng = random.Random(3)
    # one byte in each of 64 beats: one beat a cycle asked of a port the other requester
    # takes every other cycle of, so the queue fills and wready must drop
    writes = [(4 * k + rng.randrange(4), rng.randrange(256)) for k in range(64)]
    seen = {"held": 0, "r1_beats": 0}

    async def bench(ctx):
        ctx.set(r1.rdata.ready, 1)
        ctx.set(r1.cmd.valid, 1)   # requester 1 streams reads of beat 1000 on
        ctx.set(r1.cmd.payload.addr, 1000)
        for addr, byte in writes:
            ctx.set(rig.link.we, 1)
            ctx.set(rig.link.addr, addr)
            ctx.set(rig.link.wdata, byte)
            while True:
                await ctx.delay(1e-9)
                ready = ctx.get(rig.link.wready)
                if ctx.get(r1.cmd.ready):
                    ctx.set(r1.cmd.payload.addr, ctx.get(r1.cmd.payload.addr) + 1)
                seen["r1_beats"] += ctx.get(r1.rdata.valid)
                await ctx.tick()
                if ready:
                    break
                seen["held"] += 1
        ctx.set(rig.link.we, 0)
        ctx.set(r1.cmd.valid, 0)
        for _ in range(40):
            await ctx.tick()
        assert not ctx.get(rig.link.busy)
        # read every written byte back through the link's read-ahead
        for addr, byte in writes:
            ctx.set(rig.link.re, 1)
            ctx.set(rig.link.addr, addr)
            await ctx.tick()
            ctx.set(rig.link.re, 0)
            for _ in range(40):
                if ctx.get(rig.link.rvalid):
                    break
                await ctx.tick()
            assert ctx.get(rig.link.rvalid), f"no answer for byte {addr}"
            assert ctx.get(rig.link.rdata) == byte, f"byte {addr}"
            await ctx.tick()
        assert ctx.get(rig.arb.bytes_written) == len(writes)  # masks: one byte each

    sim = Simulator(rig)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["held"] > 0, "the write queue never filled: the test lost its point"
    assert seen["r1_beats"] > 0
