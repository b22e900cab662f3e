"""UART PHY (8N1) for boards: bytes as amaranth.lib.stream, ``divisor`` clocks per bit.

``UartRx``: ``rx`` pin in, ``o`` byte stream out. The line is sampled mid-bit after a
start edge (two-flop synchroniser first); a byte whose stop bit is low is dropped and
counted in ``framing_errors``. If ``o`` is not ready when a byte completes, the byte is
dropped and counted in ``overruns`` (the link's CRC and retransmission recover).

``UartTx``: ``i`` byte stream in, ``tx`` pin out; one byte every 10 bit times.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


class UartRx(wiring.Component):
    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError("UART divisor must be >= 4 clocks per bit")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "framing_errors": Out(16), "overruns": Out(16)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bits = Signal(8)
        n = Signal(range(9))
        m.d.comb += self.o.payload.eq(bits)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM(name="uart_rx"):
            with m.State("IDLE"):
                with m.If(~rx):  # start bit: sample the first data bit 1.5 bit times on
                    m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), n.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [bits.eq(Cat(bits[1:], rx)), n.eq(n + 1),
                                 timer.eq(self.divisor - 1)]
                    with m.If(n == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overruns.eq(self.overruns + 1)
                    with m.Else():
                        m.d.sync += self.o.valid.eq(1)
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError("UART divisor must be >= 4 clocks per bit")
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shift = Signal(10, init=0x3FF)
        n = Signal(range(11))
        m.d.comb += self.tx.eq(shift[0])
        with m.If(n == 0):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):  # stop bit, data LSB first, start bit
                m.d.sync += [shift.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                             n.eq(10), timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), n.eq(n - 1),
                             timer.eq(self.divisor - 1)]
        return m
