"""``BoardTop``: the SoC on a board -- clock, reset, UART pins, an activity LED.

The ``sync`` domain is the platform's default clock, created by the platform itself
(with its power-on reset, ORed with the board's reset button when it has one), so the
SoC runs at the board clock and its UART divisor (``cfg.uart_divisor``) is derived from
that same clock. Bytes from the UART that arrive while the SoC is not ready are dropped
and counted by ``UartRx``; the link's CRC and retransmission recover them.

With ``dram`` (a :class:`~tritium.dram.DramConfig`), the board's SDRAM controller
(:class:`~tritium.boards.dram.BoardDram`) is built too: its port is wired to the SoC's
DRAM port when the SoC has one (``soc.dram``), else to a :class:`DramTester` that checks
:data:`TESTER_BEATS` beats after power-up and lights LED 1 (pass) or LED 2 (mismatch).
"""

from __future__ import annotations

from amaranth import Elaboratable, Module
from amaranth.build import ResourceError
from amaranth.lib import io, wiring

from tritium.config import SocConfig
from tritium.dram import DramConfig
from tritium.hdl.link.uart import UartRx, UartTx
from tritium.hdl.soc import Soc


#: beats the built-in DRAM tester writes and reads back (256 KiB of a 16-bit part: every
#: bank, 128 rows)
TESTER_BEATS = 1 << 17


class BoardTop(Elaboratable):
    def __init__(self, cfg: SocConfig, uart: str = "uart", dram: DramConfig | None = None):
        self.cfg = cfg
        self.uart = uart
        self.dram = dram

    def elaborate(self, platform):
        m = Module()
        m.submodules.soc = soc = Soc(self.cfg)
        m.submodules.uart_rx = rx = UartRx(self.cfg.uart_divisor)
        m.submodules.uart_tx = tx = UartTx(self.cfg.uart_divisor)
        wiring.connect(m, rx.o, soc.rx)
        wiring.connect(m, soc.tx, tx.i)
        pins = platform.request(self.uart, 0, dir="-")
        m.submodules.rx_pin = rx_pin = io.Buffer("i", pins.rx)
        m.submodules.tx_pin = tx_pin = io.Buffer("o", pins.tx)
        m.d.comb += [rx.rx.eq(rx_pin.i), tx_pin.o.eq(tx.tx)]
        if self.dram is not None:
            self._add_dram(m, platform, soc)
        try:  # LED 0 lit while a frame or a command is in flight
            led = platform.request("led", 0, dir="-")
        except ResourceError:
            return m
        m.submodules.led_pin = led_pin = io.Buffer("o", led)
        m.d.comb += led_pin.o.eq(~soc.idle)
        return m

    def _add_dram(self, m, platform, soc):
        from .dram import BoardDram, DramTester

        m.submodules.dram = dram = BoardDram(self.dram, self.cfg.clock_hz)
        ctrl = dram.controller
        if "dram" in soc.signature.members:
            wiring.connect(m, soc.dram, ctrl.port)
            return
        beats = min(TESTER_BEATS, self.dram.size_bytes // self.dram.word_bytes)
        m.submodules.dram_tester = tester = DramTester(self.dram, beats)
        wiring.connect(m, tester.port, ctrl.port)
        m.d.comb += tester.start.eq(ctrl.init_done)
        for n, value in ((1, tester.ok), (2, tester.error)):
            try:
                led = platform.request("led", n, dir="-")
            except ResourceError:
                continue
            m.submodules[f"led{n}_pin"] = pin = io.Buffer("o", led)
            m.d.comb += pin.o.eq(value)
