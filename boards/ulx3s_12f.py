"""ULX3S with an ECP5 LFE5U-12F: 25 MHz clock, FTDI UART, FIRE1 button as reset."""

from amaranth_boards.ulx3s import ULX3S_12F_Platform

from . import Board

BOARD = Board(
    name="ulx3s-12f", part="LFE5U-12F-6BG381C", platform=ULX3S_12F_Platform,
    # 32 MAC lanes, 16 KiB of weights: about a fifth of the LUTs, under half the BRAM
    engine={"kind": "ternary-matvec", "simd": 16, "pe": 2, "max_in": 1024,
            "max_out": 1024, "weight_depth": 2048, "has_t3": 0},
    max_payload=1024, openfpgaloader="ulx3s", reset="button_fire")
