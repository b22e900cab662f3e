"""iCEBreaker with an iCE40UP5K: 12 MHz clock, FTDI UART, user button as reset."""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from . import Board

BOARD = Board(
    name="icebreaker", part="iCE40UP5K-SG48", platform=ICEBreakerPlatform,
    # 5280 LUT4, 30 x 4 kbit block RAMs: the link takes most of them; 8 lanes, 1 KiB of
    # weights, 256-byte frames (simd=16 needs 33 block RAMs, see bench/fpga.py)
    engine={"kind": "ternary-matvec", "simd": 8, "pe": 1, "max_in": 256,
            "max_out": 256, "weight_depth": 512, "has_t3": 0},
    max_payload=256, openfpgaloader="ice40_generic", reset="button")
