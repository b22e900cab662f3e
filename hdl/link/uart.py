"""UART PHY (8N1) for boards: bytes as amaranth.lib.stream, ``divisor`` clocks per bit.

``UartRx``: ``rx`` pin in, ``o`` byte stream out. The line is sampled mid-bit after a
start edge (two-flop synchroniser first); a byte whose stop bit is low is dropped and
counted in ``framing_errors``. If ``o`` is not ready when a byte completes, the byte is
dropped and counted in ``overruns`` (the link's CRC and retransmission recover).

``UartTx``: ``i`` byte stream in, ``tx`` pin out; one byte every 10 bit times.

Rate: the baud is the UART clock over ``divisor``. The receiver's first sample lands 1.5
bit times after it sees the start edge, which it sees up to one clock late (an odd
divisor also halves down by half a clock), then every ``divisor`` clocks; the stop bit
is sampled 9.5 bit times after the edge and must still fall inside it. So a line whose
rate differs from the receiver's by a fraction ``e`` is read while
``9.5 e + 1 / divisor <= 0.5``: :func:`baud_tolerance`. :func:`check_baud` gives the
divisor for a clock and a baud, and refuses a pair whose rate is off by more than half
of that (the other half is the far end's share).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from tritium.config import uart_divisor
from tritium.errors import ConfigError

#: clocks by which the receiver's samples may trail the middle of a bit (the start edge
#: seen up to one clock late)
SAMPLE_SLIP_CLOCKS = 1
#: bit times from the start edge to the sample of the stop bit (1.5 + 8)
STOP_SAMPLE_BITS = 9.5
#: the smallest divisor the PHY takes
MIN_DIVISOR = 4


def baud_tolerance(divisor: int) -> float:
    """The largest relative rate difference between the line and a receiver at
    ``divisor`` clocks per bit that still reads every byte: ``(0.5 - 1/divisor) / 9.5``
    (module docstring)."""
    return (0.5 - SAMPLE_SLIP_CLOCKS / divisor) / STOP_SAMPLE_BITS


def baud_error(clock_hz: float, baud: int) -> float:
    """The relative error of the rate a ``clock_hz`` UART reaches for ``baud``."""
    return abs(clock_hz / uart_divisor(clock_hz, baud) - baud) / baud


def check_baud(clock_hz: float, baud: int) -> int:
    """The divisor for ``baud`` from a ``clock_hz`` UART clock; ConfigError if that rate is
    off by more than half of :func:`baud_tolerance` (the far end may be off by as much)."""
    d = uart_divisor(clock_hz, baud)
    if d < MIN_DIVISOR:
        raise ConfigError(f"baud {baud} from a {clock_hz / 1e6:g} MHz UART clock is "
                          f"{clock_hz / baud:.2f} clocks per bit, below {MIN_DIVISOR}; use a "
                          "faster UART clock or a lower soc.baud")
    err, share = baud_error(clock_hz, baud), baud_tolerance(d) / 2
    if err > share:
        raise ConfigError(f"baud {baud} from a {clock_hz / 1e6:g} MHz UART clock: divisor {d} "
                          f"gives {clock_hz / d:.0f} baud, {100 * err:.2f} % off, more than "
                          f"the {100 * share:.2f} % one end of the line may be; run the UART "
                          "from a clock that is a multiple of the baud (Board.uart_clock_hz) "
                          "or choose a soc.baud this clock divides")
    return d


class UartRx(wiring.Component):
    def __init__(self, divisor: int):
        if divisor < MIN_DIVISOR:
            raise ValueError(f"UART divisor must be >= {MIN_DIVISOR} clocks per bit")
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
        if divisor < MIN_DIVISOR:
            raise ValueError(f"UART divisor must be >= {MIN_DIVISOR} clocks per bit")
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
