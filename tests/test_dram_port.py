"""The DRAM subsystem's parts in Amaranth's simulator, on the real ideal controller: the
link's write combining under back pressure (its queue full while another requester takes
half the port), round-robin sharing, read-after-write through the read-ahead, and the
CRC command's word path (zlib's CRC of any range, a beat a cycle, a write meanwhile)."""

from __future__ import annotations

import random
import sys
import zlib

import pytest

from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from tritium.dram import DramConfig
from tritium.hdl.dram.ideal import IdealController
from tritium.hdl.mem import DramArbiter, DramLineWriter, LinkDramPort



@pytest.fixture
def deep_recursion():
    """Amaranth's Python simulator compiles an expression by recursing through it; the
    1024-bit word CRC's XOR trees, reached from inside a pytest-xdist worker's deeper
    stack, pass Python's default limit of 1000 frames (the Verilator builds are not
    affected: they go through yosys). Raised for the test, restored after it."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, 20_000))
    yield
    sys.setrecursionlimit(before)

CFG = DramConfig(size=1 << 12)


class Rig(wiring.Component):
    """The arbiter's requester 0 on the ideal controller: the link's DRAM port, or
    ``writer`` (a DramLineWriter) instead; the testbench drives requester 1."""

    def __init__(self, cfg=CFG, writer=None):
        self.link = LinkDramPort(cfg) if writer is None else None
        self.writer = writer
        self.arb = DramArbiter(cfg, 2)
        self.ctrl = IdealController(cfg, storage="amaranth")  # pysim: no Verilog array
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.arb, m.submodules.ctrl = self.arb, self.ctrl
        if self.link is not None:
            m.submodules.link = self.link
            wiring.connect(m, self.link.port, self.arb.r0)
            m.d.comb += self.link.invalidate.eq(self.arb.wrote)
        else:
            m.submodules.writer = self.writer
            wiring.connect(m, self.writer.dram, self.arb.r0)
        wiring.connect(m, self.arb.ctrl, self.ctrl.port)
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


async def _write_beat(ctx, r1, cfg, beat, data: bytes):
    """One full beat written through requester 1: its command, then its data."""
    ctx.set(r1.cmd.payload.we, 1)
    ctx.set(r1.cmd.payload.addr, beat)
    ctx.set(r1.cmd.valid, 1)
    await ctx.tick().until(r1.cmd.ready)
    ctx.set(r1.cmd.valid, 0)
    ctx.set(r1.wdata.payload.data, int.from_bytes(data, "little"))
    ctx.set(r1.wdata.payload.mask, (1 << cfg.word_bytes) - 1)
    ctx.set(r1.wdata.valid, 1)
    await ctx.tick().until(r1.wdata.ready)
    ctx.set(r1.wdata.valid, 0)


async def _fill(ctx, r1, cfg, blob):
    """``blob`` into the DRAM through requester 1, beat by beat."""
    nb = cfg.word_bytes
    for b in range(len(blob) // nb):
        await _write_beat(ctx, r1, cfg, b, blob[b * nb:(b + 1) * nb])


async def _crc(ctx, link, addr, length):
    """The word path's CRC of ``length`` bytes at ``addr`` and the cycles it took."""
    ctx.set(link.crc_start, 1)
    ctx.set(link.crc_addr, addr)
    ctx.set(link.crc_len, length)
    await ctx.tick()
    ctx.set(link.crc_start, 0)
    cycles = 0
    while ctx.get(link.crc_busy):
        await ctx.tick()
        cycles += 1
        assert cycles < 10 * length + 100, "the CRC does not end"
    return ctx.get(link.crc_value), cycles


@pytest.mark.parametrize("bits", [32, 128, 1024])
def test_word_crc_any_range_a_beat_a_cycle(bits, deep_recursion):
    cfg = DramConfig(size=1 << 12, ideal_port_bits=bits)
    nb, size = cfg.word_bytes, cfg.size_bytes
    rig = Rig(cfg)
    r1 = rig.arb.r1
    blob = random.Random(bits).randbytes(size)
    ranges = [(0, 0), (5, 1), (0, 1), (size - 1, 1), (nb - 1, 2), (3, nb), (1, 3 * nb + 5),
              (nb, 4 * nb), (7, size - 7), (0, size)]
    got, rate = {}, {}

    async def bench(ctx):
        ctx.set(r1.rdata.ready, 1)
        await _fill(ctx, r1, cfg, blob)
        for a, n in ranges:
            got[a, n], _ = await _crc(ctx, rig.link, a, n)
        # the rate: a long aligned range costs a cycle a beat plus the read latency once
        _, cycles = await _crc(ctx, rig.link, 0, size)
        rate["cycles"] = cycles
        # another requester writes a beat mid-range: the CRC is of the memory it reads
        ctx.set(rig.link.crc_start, 1)
        ctx.set(rig.link.crc_addr, 0)
        ctx.set(rig.link.crc_len, size)
        await ctx.tick()
        ctx.set(rig.link.crc_start, 0)
        for _ in range(8):
            await ctx.tick()
        await _write_beat(ctx, r1, cfg, size // nb - 1, bytes(nb))
        await ctx.tick().until(~rig.link.crc_busy)
        got["rewritten"] = ctx.get(rig.link.crc_value)

    sim = Simulator(rig)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for a, n in ranges:
        assert got[a, n] == zlib.crc32(blob[a:a + n]), (a, n)
    assert got["rewritten"] == zlib.crc32(blob[:size - nb] + bytes(nb))
    beats = size // nb
    # one beat a cycle after the controller's latency (and the read-ahead's two stages)
    assert beats <= rate["cycles"] <= beats + cfg.spec.latency + 8, rate


def test_line_writer_busy_until_its_last_beat_is_taken():
    """``busy`` stays high from a line's take until the port has accepted its last beat's
    data: whenever it is low, every byte of every line taken is written (the arbiter's
    counter), so an engine that reports done on ``~busy`` leaves its result whole."""
    cfg = CFG
    w = DramLineWriter(dram=cfg, width=4 * cfg.port_bits, max_beats=4)
    rig = Rig(cfg, writer=w)
    nb = cfg.word_bytes
    rng = random.Random(7)
    lines = [(rng.randrange(0, 200), rng.randint(1, 4)) for _ in range(40)]
    seen = {"low_checked": 0}

    async def bench(ctx):
        taken = 0
        for addr, beats in lines:
            ctx.set(w.w.payload.addr, addr)
            ctx.set(w.w.payload.beats, beats)
            ctx.set(w.w.payload.data, rng.getrandbits(beats * cfg.port_bits))
            ctx.set(w.w.valid, 1)
            await ctx.tick().until(w.w.ready)
            ctx.set(w.w.valid, 0)
            taken += beats * nb
            # a pause now and then, so busy has room to fall between lines
            for _ in range(rng.choice([0, 0, 1, 3])):
                await ctx.tick()
                if not ctx.get(w.busy):
                    seen["low_checked"] += 1
                    assert ctx.get(rig.arb.bytes_written) == taken, "busy fell early"
        for _ in range(40):
            await ctx.tick()
            if not ctx.get(w.busy):
                seen["low_checked"] += 1
                assert ctx.get(rig.arb.bytes_written) == taken, "busy fell early"

    async def rival(ctx):
        # requester 1 reads now and then, so the writer's commands wait for the port
        r1 = rig.arb.r1
        ctx.set(r1.rdata.ready, 1)
        for _ in range(300):
            ctx.set(r1.cmd.payload.we, 0)
            ctx.set(r1.cmd.payload.addr, rng.randrange(256, 512))
            ctx.set(r1.cmd.valid, rng.random() < 0.5)
            await ctx.tick()
        ctx.set(r1.cmd.valid, 0)

    sim = Simulator(rig)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_testbench(rival)
    sim.run()
    assert seen["low_checked"] > 10, "busy was never seen low: the test lost its point"
