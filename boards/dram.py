"""A board's SDRAM: the memory clock, the pins, LiteDRAM's board core and a self-test.

:class:`BoardDram` puts :class:`tritium.hdl.dram.litedram.BoardController` on an ECP5
board with an SDR SDRAM (the ULX3S). It runs on two clocks the board's PLL makes
(:func:`dram_clocks`, :class:`tritium.boards.clocks.Pll`): the memory clock (the
part's ``clk_hz``, domain ``dram``, held in reset until the PLL locks) and the same clock
shifted by 90 degrees (domain ``dram_ps``), which an output DDR register forwards to the
chip's clock pin, as LiteX's ULX3S target does: the chip samples commands and write data
a quarter period after the controller launched them. The controller's native port is in
the SoC's ``sync`` domain (LiteDRAM's own clock-domain crossing).

:class:`DramTester` is the board's check when the SoC has no DRAM port: once the memory
is initialised it writes a pseudo-random pattern to ``beats`` beats, reads them back
and compares, lighting ``ok`` or ``error``.
"""

from __future__ import annotations

from amaranth import Const, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from tritium.dram import DramConfig
from tritium.errors import ConfigError
from tritium.hdl.dram.litedram import BoardController
from tritium.hdl.dram.port import port_signature

from .clocks import PllOutput


def dram_clocks(cfg: DramConfig) -> tuple[PllOutput, ...]:
    """The PLL outputs :class:`BoardDram` needs: the memory clock (``dram``, the part's
    ``clk_hz``; first, so the PLL's feedback) and its copy shifted by 90 degrees
    (``dram_ps``, reset-less: it only drives the chip's clock pin)."""
    hz = cfg.spec.clk_hz
    return (PllOutput("dram", hz), PllOutput("dram_ps", hz, 90.0, reset=False))


class DramTester(wiring.Component):
    """Writes ``beats`` beats of a xorshift pattern from beat 0, reads them back in order and
    compares. ``start``: begin (level; e.g. the controller's ``init_done``); ``done``:
    both passes finished; ``ok``: done without a mismatch; ``error``: a read beat
    differed (sticky). ``port``: the requester side of the DRAM port; it always accepts
    read data. Beat ``i`` holds the low ``port_bits`` of the ``i+1``-th state of a 32-bit
    xorshift (13, 17, 5) from ``seed``, repeated across the beat when wider."""

    def __init__(self, cfg: DramConfig, beats: int, seed: int = 0x1234_5678):
        if not 1 <= beats <= cfg.size_bytes // cfg.word_bytes:
            self._MustUse__silence = True  # refused, so never elaborated
            raise ConfigError(f"the DRAM tester's beats={beats} must be between 1 and the "
                              f"DRAM's {cfg.size_bytes // cfg.word_bytes} beats")
        self.cfg, self.beats, self.seed = cfg, beats, seed
        super().__init__({"port": Out(port_signature(cfg).flip()), "start": In(1),
                          "done": Out(1), "ok": Out(1), "error": Out(1)})

    @staticmethod
    def _next(x):
        a = x ^ (x << 13)[:32]
        b = a ^ (a >> 17)
        return b ^ (b << 5)[:32]

    def elaborate(self, platform):
        m = Module()
        cfg, p = self.cfg, self.port
        reps = -(-cfg.port_bits // 32)
        wstate = Signal(32, init=self.seed)
        rstate = Signal(32, init=self.seed)
        sent = Signal(range(self.beats + 1))
        wsent = Signal(range(self.beats + 1))
        got = Signal(range(self.beats + 1))
        writing = Signal(init=1)
        wnext, rnext = self._next(wstate), self._next(rstate)
        wword = Signal(32)
        m.d.comb += [
            p.cmd.valid.eq(self.start & (sent < self.beats) & (writing | (wsent == self.beats))),
            p.cmd.payload.we.eq(writing), p.cmd.payload.addr.eq(sent),
            p.wdata.valid.eq(writing & (wsent < sent)),
            p.wdata.payload.data.eq(Const(0, cfg.port_bits) | wword.replicate(reps)),
            p.wdata.payload.mask.eq(-1),
            p.rdata.ready.eq(1),
            self.done.eq(~writing & (got == self.beats)),
            self.ok.eq(self.done & ~self.error),
            wword.eq(wnext),
        ]
        with m.If(p.cmd.valid & p.cmd.ready):
            m.d.sync += sent.eq(sent + 1)
        with m.If(p.wdata.valid & p.wdata.ready):
            m.d.sync += [wsent.eq(wsent + 1), wstate.eq(wnext)]
        # all writes taken: the read pass starts from beat 0
        with m.If(writing & (wsent == self.beats) & (sent == self.beats)):
            m.d.sync += [writing.eq(0), sent.eq(0)]
        with m.If(p.rdata.valid & ~writing):
            expect = rnext.replicate(reps)[:cfg.port_bits]
            m.d.sync += [got.eq(got + 1), rstate.eq(rnext)]
            with m.If(p.rdata.payload != expect):
                m.d.sync += self.error.eq(1)
        return m


class BoardDram(Elaboratable):
    """The SDRAM on an ECP5 board (see the module docstring). ``controller.port`` is the
    DRAM port (controller side, ``sync`` domain); ``controller.init_done`` tells when it
    opens. The ``dram`` and ``dram_ps`` domains come from the board top's PLL, which
    makes :func:`dram_clocks`."""

    def __init__(self, cfg: DramConfig):
        self.cfg = cfg
        self.controller = BoardController(cfg)

    def elaborate(self, platform):
        m = Module()
        m.submodules.controller = c = self.controller
        pins = platform.request("sdram", 0, dir="-")
        outs = {"a": c.a, "ba": c.ba, "clk_en": c.cke, "cs": ~c.cs_n, "we": ~c.we_n,
                "ras": ~c.ras_n, "cas": ~c.cas_n, "dqm": c.dm}
        for name, value in outs.items():
            buf = io.Buffer("o", getattr(pins, name))
            m.submodules[f"sdram_{name}"] = buf
            m.d.comb += buf.o.eq(value)
        m.submodules.sdram_dq = dq = io.Buffer("io", pins.dq)
        # one output enable for the bus: LiteDRAM drives every DQ bit together
        m.d.comb += [dq.o.eq(c.dq_o), dq.oe.eq(c.dq_oe[0]), c.dq_i.eq(dq.i)]
        m.submodules.sdram_clk = clk = io.DDRBuffer("o", pins.clk, o_domain="dram_ps")
        m.d.comb += [clk.o[0].eq(1), clk.o[1].eq(0)]
        return m

