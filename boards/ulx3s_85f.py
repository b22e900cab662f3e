"""ULX3S with an ECP5 LFE5U-85F: 25 MHz clock, FTDI UART, FIRE1 button as reset."""

from amaranth_boards.ulx3s import ULX3S_85F_Platform

from tritium.config import SocConfig, TernaryConfig

from . import Board


def soc(clock_hz: int) -> SocConfig:
    # 128 MAC lanes and 64 KiB of weights: a tenth of the part, room for a second engine
    return SocConfig(tmv=TernaryConfig(simd=32, pe=4, max_in=2048, max_out=2048,
                                       weight_depth=4096, has_t3=1),
                     max_payload=1024, clock_hz=clock_hz)


BOARD = Board(name="ulx3s-85f", part="LFE5U-85F-6BG381C", platform=ULX3S_85F_Platform,
              soc=soc, openfpgaloader="ulx3s", reset="button_fire")
