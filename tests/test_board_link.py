"""The ULX3S-85F's 3 Mbaud link and its SDRAM as the SoC's DRAM (fast: no synthesis).

The UART clock the board's PLL makes divides to exactly 3,000,000 baud; the receiver
RTL reads a line off by less than its stated tolerance and loses bytes beyond it; the
transmitter's bit time is the divisor; the host opens a real tty at the board's rate.
"""

from __future__ import annotations

import os
import pty
import termios

import pytest
from amaranth.sim import Simulator

from tritium.boards import get_board
from tritium.boards.flow import board_top
from tritium.errors import ConfigError
from tritium.hdl.link.uart import UartRx, UartTx, baud_tolerance, check_baud

MBAUD3 = 3_000_000


def test_ulx3s_85f_default_soc_has_the_sdram_and_3_mbaud():
    board = get_board("ulx3s-85f")
    cfg = board.default_config()
    assert cfg.baud == MBAUD3 and cfg.dram.part == "mt48lc16m16"
    assert cfg.address_map()["dram"]["size"] == 32 << 20  # the whole 32 MB part
    # the other boards keep their on-chip SoC at 115200 baud
    for name in ("ulx3s-12f", "icebreaker", "arty-a7-35"):
        other = get_board(name).default_config()
        assert other.dram is None and other.baud == 115_200, name


def test_the_uart_clock_divides_to_3_mbaud_exactly():
    board = get_board("ulx3s-85f")
    top = board_top(board, board.config_for(None))
    top._MustUse__silence = True  # its settings only: not elaborated here
    p = top.pll_params
    # the VCO from the divider values themselves: 25 MHz / CLKI x CLKFB x CLKOP
    vco = 25e6 / p["p_CLKI_DIV"] * p["p_CLKFB_DIV"] * p["p_CLKOP_DIV"]
    assert 400e6 <= vco <= 800e6
    assert vco / p["p_CLKOP_DIV"] == 50e6                   # SDRAM clock (CLKOP)
    assert vco / p["p_CLKOS2_DIV"] == 60e6                  # UART clock (CLKOS2)
    # 20 clocks a bit at 60 MHz is 3 Mbaud exactly
    assert top.uart_hz == 60e6 and top.uart_divisor == 20
    # its receiver's budget at 20 clocks per bit: (0.5 - 1/20) / 9.5
    assert baud_tolerance(20) == pytest.approx(0.04737, abs=1e-5)


def test_the_25_mhz_board_clock_cannot_make_3_mbaud():
    # 25 MHz / 8 = 3.125 Mbaud: 4.17 % fast, more than one end's 1.97 % at divisor 8
    with pytest.raises(ConfigError, match=r"divisor 8 gives 3125000 baud, 4\.17 % off, more "
                       r"than the 1\.97 %.*multiple of the baud"):
        check_baud(25e6, MBAUD3)
    assert check_baud(25e6, 115_200) == 217
    with pytest.raises(ConfigError, match="below 4"):
        check_baud(25e6, 12_000_000)


def test_a_board_without_a_uart_clock_refuses_3_mbaud_before_building(tmp_path):
    import dataclasses

    from tritium.boards.flow import write_verilog

    board = get_board("ulx3s-12f")
    cfg = dataclasses.replace(board.default_config(), baud=MBAUD3)
    with pytest.raises(ConfigError, match="3125000 baud"):
        write_verilog(board, cfg, tmp_path)
    assert list(tmp_path.iterdir()) == []


def _line(data: bytes, bit_clocks: float, lead: float):
    """The rx line, one value per clock: idle, then ``data`` 8N1 back to back, each bit
    ``bit_clocks`` long (not a whole number: a line at another rate), from ``lead``."""
    bits = [b for byte in data for b in [0, *((byte >> i) & 1 for i in range(8)), 1]]
    end = int(lead + len(bits) * bit_clocks) + 4 * int(bit_clocks)
    for c in range(end):
        k = int((c - lead) // bit_clocks)
        yield bits[k] if 0 <= k < len(bits) else 1


def _receive(divisor: int, bit_clocks: float, data: bytes, lead: float = 7.3):
    rx = UartRx(divisor)
    got, errors = [], []

    async def bench(ctx):
        ctx.set(rx.o.ready, 1)
        for v in _line(data, bit_clocks, lead):
            ctx.set(rx.rx, v)
            await ctx.tick()
            if ctx.get(rx.o.valid):
                got.append(ctx.get(rx.o.payload))
                await ctx.tick()  # one cycle of valid per byte (ready is held high)
        errors.append(ctx.get(rx.framing_errors))

    sim = Simulator(rx)
    sim.add_clock(1 / 60e6)
    sim.add_testbench(bench)
    sim.run()
    return bytes(got), errors[0]


DATA = bytes([0x55, 0x00, 0xFF, 0x80, 0x01, 0xA5, 0x5A, 0x7F, 0xFE, 0x3C])


@pytest.mark.parametrize("scale", [-0.9, 0.0, 0.9])
def test_the_receiver_reads_a_line_within_its_tolerance(scale):
    # the line faster (scale > 0) or slower than 3 Mbaud by up to 0.9 x the tolerance
    tol = baud_tolerance(20)
    got, framing = _receive(20, 20 / (1 + scale * tol), DATA)
    assert got == DATA and framing == 0


def test_the_receiver_loses_bytes_beyond_its_tolerance():
    # 1.3 x the tolerance fast: the late samples slip into the next bit
    got, framing = _receive(20, 20 / (1 + 1.3 * baud_tolerance(20)), DATA)
    assert got != DATA and framing > 0


def test_the_transmitter_bit_time_is_the_divisor():
    tx = UartTx(20)
    levels = []

    async def bench(ctx):
        ctx.set(tx.i.payload, 0x55)
        ctx.set(tx.i.valid, 1)
        await ctx.tick()
        ctx.set(tx.i.valid, 0)
        for _ in range(20 * 12):
            levels.append(ctx.get(tx.tx))
            await ctx.tick()

    sim = Simulator(tx)
    sim.add_clock(1 / 60e6)
    sim.add_testbench(bench)
    sim.run()
    # 0x55 8N1: start 0, then 1,0,1,0,1,0,1,0, stop 1: an edge every bit
    edges = [i for i in range(1, len(levels)) if levels[i] != levels[i - 1]]
    assert len(edges) == 9 and {b - a for a, b in zip(edges, edges[1:])} == {20}
    assert levels[edges[0]] == 1 and levels[edges[0] - 1] == 0


def test_open_transport_opens_a_real_tty_at_the_rate():
    from tritium.host.device import DEFAULT_BAUD, open_transport

    assert DEFAULT_BAUD == 115_200
    master, slave = pty.openpty()
    try:
        path = os.ttyname(slave)
        for baud, speed in ((MBAUD3, termios.B3000000), (None, termios.B115200)):
            port = open_transport(path, 0.001, baud)
            try:
                attrs = termios.tcgetattr(port.fileno())
                assert attrs[4] == attrs[5] == speed, baud  # ispeed, ospeed
            finally:
                port.close()
    finally:
        os.close(master)
        os.close(slave)


def test_the_baud_option_takes_a_rate_or_a_board():
    import argparse

    from tritium.cliargs import baud_rate

    assert baud_rate("ulx3s-85f") == MBAUD3 and baud_rate("icebreaker") == 115_200
    assert baud_rate("921600") == 921_600
    with pytest.raises(argparse.ArgumentTypeError, match="neither a baud rate nor a board"):
        baud_rate("de10-nano")
    with pytest.raises(argparse.ArgumentTypeError, match="out of range"):
        baud_rate("100")


def test_the_uart_clock_alone_is_on_a_secondary_output():
    from tritium.boards.clocks import PllOutput, plan

    # CLKOP (the feedback) can only make multiples of 12.5 MHz from 25 MHz with the input
    # step at 10 MHz or more: 60 MHz goes on CLKOS, CLKOP is feedback only
    params, hz, pins = plan(25e6, [PllOutput("uart", 60e6)])
    vco = 25e6 / params["p_CLKI_DIV"] * params["p_CLKFB_DIV"] * params["p_CLKOP_DIV"]
    assert pins == {"uart": "OS"} and vco / params["p_CLKOS_DIV"] == 60e6 == hz["uart"]
    assert 400e6 <= vco <= 800e6 and vco / params["p_CLKOP_DIV"] <= 400e6
