"""ULX3S with an ECP5 LFE5U-85F: 25 MHz clock, FIRE1 button as reset, 32 MB SDR SDRAM
(LiteDRAM at 50 MHz, boards/dram.py) as the SoC's DRAM, and the FT231X USB-UART at
3 Mbaud, its highest rate: the UART runs from a 60 MHz PLL output (20 clocks per bit)."""

from amaranth_boards.ulx3s import ULX3S_85F_Platform

from . import Board

BOARD = Board(
    name="ulx3s-85f", part="LFE5U-85F-6BG381C", platform=ULX3S_85F_Platform,
    # 128 MAC lanes, 64 KiB of weights, both formats: 14 % of the LUTs, 42 % of the BRAM
    engine={"kind": "ternary-matvec", "simd": 32, "pe": 4, "max_in": 2048,
            "max_out": 2048, "weight_depth": 4096, "has_t3": 1},
    max_payload=1024, openfpgaloader="ulx3s", reset="button_fire", dram="mt48lc16m16",
    baud=3_000_000, uart_clock_hz=60_000_000)
