"""Arty A7-35T (Artix-7 XC7A35T): 100 MHz clock, FTDI UART, RESET button.

Verilog and XDC constraints only: the bitstream needs Vivado, which the open flow lacks.
"""

from amaranth_boards.arty_a7 import ArtyA7_35Platform

from . import Board

# the platform already names "rst" as its reset
BOARD = Board(
    name="arty-a7-35", part="XC7A35TICSG324-1L", platform=ArtyA7_35Platform,
    # 20k LUT6, 50 x 36 kbit block RAMs: the ULX3S-85F engine fits (not verified by a build)
    engine={"kind": "ternary-matvec", "simd": 32, "pe": 4, "max_in": 2048,
            "max_out": 2048, "weight_depth": 4096, "has_t3": 1},
    max_payload=1024, openfpgaloader="arty_a7_35t", bitstream=False)
