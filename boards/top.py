"""``BoardTop``: the SoC on a board -- clocks, reset, UART pins, the SDRAM, an activity LED.

The ``sync`` domain is the platform's default clock, created by the platform itself
(with its power-on reset, ORed with the board's reset button when it has one): the SoC
runs at the board clock (``cfg.clock_hz``). The UART runs on the ``sync`` clock too,
unless ``uart_clock_hz`` is given: then in its own ``uart`` domain at that clock (a PLL
output; a baud the board clock does not divide closely enough, e.g. 3 Mbaud from
25 MHz, needs it), behind a small asynchronous FIFO each way. Its divisor is that
clock over ``cfg.baud`` (:func:`tritium.hdl.link.uart.check_baud`, which refuses a
rate outside the UART's tolerance: ConfigError when the top is made). Bytes from the
UART that arrive while the SoC is not ready are dropped and counted by ``UartRx``; the
link's CRC and retransmission recover them.

With ``dram`` (a :class:`~tritium.dram.DramConfig`), the board's SDRAM controller
(:class:`~tritium.boards.dram.BoardDram`) is built too: its port is wired to the SoC's
DRAM port when the SoC has one (``soc.dram``), else to a :class:`DramTester` that checks
:data:`TESTER_BEATS` beats after power-up and lights LED 1 (pass) or LED 2 (mismatch).

Every extra clock (the memory clocks, the UART clock) comes from one ECP5 PLL
(:class:`~tritium.boards.clocks.Pll`) on the board clock, its settings chosen when the
top is made (``pll_params``, ``pll_hz``); ``uart_hz`` and ``uart_divisor`` are what the
UART gets.
"""

from __future__ import annotations

from amaranth import DomainRenamer, Elaboratable, Module
from amaranth.build import ResourceError
from amaranth.lib import fifo, io, wiring

from tritium.config import SocConfig
from tritium.dram import DramConfig
from tritium.errors import ConfigError
from tritium.hdl.link.uart import UartRx, UartTx, check_baud
from tritium.hdl.soc import Soc

from .clocks import Pll, PllOutput, plan

#: beats the built-in DRAM tester writes and reads back (256 KiB of a 16-bit part: every
#: bank, 128 rows)
TESTER_BEATS = 1 << 17
#: bytes each clock-crossing FIFO between the UART and the SoC holds (the SoC takes a
#: byte within a few of its clocks; a UART byte takes tens)
UART_FIFO_DEPTH = 4


class BoardTop(Elaboratable):
    def __init__(self, cfg: SocConfig, uart: str = "uart", dram: DramConfig | None = None,
                 uart_clock_hz: float | None = None):
        from .dram import dram_clocks

        self.cfg, self.uart, self.dram = cfg, uart, dram
        self.clock_outputs = list(dram_clocks(dram)) if dram is not None else []
        if uart_clock_hz is not None:
            self.clock_outputs.append(PllOutput("uart", uart_clock_hz))
        try:
            #: the PLL's parameters and each of its domains' frequency (empty: no PLL)
            self.pll_params, self.pll_hz, _ = (plan(cfg.clock_hz, self.clock_outputs)
                                               if self.clock_outputs else ({}, {}, {}))
            self.own_uart_clock = uart_clock_hz is not None
            self.uart_hz = self.pll_hz["uart"] if self.own_uart_clock else cfg.clock_hz
            self.uart_divisor = check_baud(self.uart_hz, cfg.baud)
        except ConfigError:
            self._MustUse__silence = True  # refused, so never elaborated
            raise

    def elaborate(self, platform):
        m = Module()
        if self.clock_outputs:
            m.domains += [o.domain_of() for o in self.clock_outputs]
            m.submodules.pll = Pll(self.cfg.clock_hz, self.clock_outputs)
        m.submodules.soc = soc = Soc(self.cfg)
        rx, tx = UartRx(self.uart_divisor), UartTx(self.uart_divisor)
        if not self.own_uart_clock:
            m.submodules.uart_rx, m.submodules.uart_tx = rx, tx
            wiring.connect(m, rx.o, soc.rx)
            wiring.connect(m, soc.tx, tx.i)
        else:
            m.submodules.uart_rx = DomainRenamer("uart")(rx)
            m.submodules.uart_tx = DomainRenamer("uart")(tx)
            m.submodules.rx_cdc = rxf = fifo.AsyncFIFO(
                width=8, depth=UART_FIFO_DEPTH, w_domain="uart", r_domain="sync")
            m.submodules.tx_cdc = txf = fifo.AsyncFIFO(
                width=8, depth=UART_FIFO_DEPTH, w_domain="sync", r_domain="uart")
            wiring.connect(m, rx.o, rxf.w_stream)
            wiring.connect(m, rxf.r_stream, soc.rx)
            wiring.connect(m, soc.tx, txf.w_stream)
            wiring.connect(m, txf.r_stream, tx.i)
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

        m.submodules.dram = dram = BoardDram(self.dram)
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
