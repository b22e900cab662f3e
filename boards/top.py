"""``BoardTop``: the SoC on a board -- clock, reset, UART pins, an activity LED.

The ``sync`` domain is the platform's default clock, created by the platform itself
(with its power-on reset, ORed with the board's reset button when it has one), so the
SoC runs at the board clock and its UART divisor (``cfg.uart_divisor``) is derived from
that same clock. Bytes from the UART that arrive while the SoC is not ready are dropped
and counted by ``UartRx``; the link's CRC and retransmission recover them.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module
from amaranth.build import ResourceError
from amaranth.lib import io, wiring

from tritium.config import SocConfig
from tritium.hdl.link.uart import UartRx, UartTx
from tritium.hdl.soc import Soc


class BoardTop(Elaboratable):
    def __init__(self, cfg: SocConfig, uart: str = "uart"):
        self.cfg = cfg
        self.uart = uart

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
        try:  # LED 0 lit while a frame or a command is in flight
            led = platform.request("led", 0, dir="-")
        except ResourceError:
            return m
        m.submodules.led_pin = led_pin = io.Buffer("o", led)
        m.d.comb += led_pin.o.eq(~soc.idle)
        return m
