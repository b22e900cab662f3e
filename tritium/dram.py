"""External memory: the DRAM parts tritium models and the device's DRAM configuration.

Spec layer (standard library only). :data:`PARTS` is the one table of memory parts: for
each, its organisation and datasheet timing, with the datasheet it comes from. The SoC's
DRAM port (:mod:`tritium.hdl.dram`), the simulated DRAM, the board's controller and the
cycle model all read a part's facts from here.

A :class:`DramConfig` names a part and the slice of it the device uses. Its user port is
the memory controller's native port: ``port_bits`` of data per beat, addressed in beats
(``addr_bits`` wide), reads answered in order.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from .config import Config, _field
from .errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DramPart:
    """One memory part as a controller sees it.

    ``kind``: "sdr", "ddr3" or "ideal" (no DRAM timing: ``latency`` cycles from command to
    data, one beat per cycle). ``dq_bits``: the chip's data pins; ``port_bits``: the
    controller's user-port beat (LiteDRAM: dq × phases × 2 for DDR). Timing in ns from
    ``source`` (the part's datasheet), ``cl`` in clocks; None for the ideal part.
    """

    name: str
    title: str
    kind: str
    size_bytes: int
    port_bits: int
    dq_bits: int = 0
    banks: int = 0
    row_bits: int = 0
    col_bits: int = 0
    litedram_module: str | None = None
    cl: int | None = None
    trcd_ns: float | None = None
    trp_ns: float | None = None
    tras_ns: float | None = None
    trfc_ns: float | None = None
    trefi_ns: float | None = None
    burst_length: int = 1
    latency: int = 0
    source: str = ""


#: every part tritium knows, by name (the ``part`` of a :class:`DramConfig`)
PARTS: dict[str, DramPart] = {
    "ideal": DramPart(
        name="ideal", title="ideal memory: fixed latency, one beat per cycle",
        kind="ideal", size_bytes=1 << 26, port_bits=32, latency=8,
        source="no part: a bandwidth + latency bound for the cycle model"),
}


def part(name: str) -> DramPart:
    """The part called ``name``; ConfigError listing the known ones otherwise."""
    if name not in PARTS:
        raise ConfigError(f"unknown DRAM part {name!r}; choose one of {', '.join(PARTS)}")
    return PARTS[name]


@dataclasses.dataclass(frozen=True)
class DramConfig(Config):
    """The device's DRAM: a part and how many bytes of it the device uses.

    ``size``: bytes used (0 = the whole part; a power of two up to the part's size, so a
    test can model a small DRAM); the native port's beat is the part's ``port_bits``.
    """

    kind: ClassVar[str] = "dram"

    part: str = "ideal"
    size: int = _field(0, 0, 1 << 34, "bytes of the part the device uses (0: all of it)")

    def validate(self) -> None:
        p = part(self.part)
        if self.size and (self.size & (self.size - 1) or self.size > p.size_bytes
                          or self.size < self.word_bytes):
            raise ConfigError(f"dram.size={self.size} must be a power of two between "
                              f"{self.word_bytes} and the part's {p.size_bytes} bytes")

    @property
    def spec(self) -> DramPart:
        return part(self.part)

    @property
    def size_bytes(self) -> int:
        return self.size or self.spec.size_bytes

    @property
    def port_bits(self) -> int:
        return self.spec.port_bits

    @property
    def word_bytes(self) -> int:
        return part(self.part).port_bits // 8

    @property
    def addr_bits(self) -> int:
        """Width of the native port's beat address."""
        return max(1, (self.size_bytes // self.word_bytes - 1).bit_length())
