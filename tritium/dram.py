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
from .protocol import CRC_BYTE_CYCLES


@dataclasses.dataclass(frozen=True)
class DramPart:
    """One memory part as a controller sees it.

    ``kind``: "sdr", "ddr3" or "ideal" (no DRAM timing: ``latency`` cycles from command to
    data, one beat per cycle). ``dq_bits``: the chip's data pins; ``port_bits``: the
    controller's user-port beat (LiteDRAM: dq × ``nphases`` × 2 for DDR). Timing in ns from
    ``source`` (the part's datasheet), ``cl`` in memory clocks at the board's operating
    point; None for the ideal part. ``clk_hz``: the controller (system) clock the part runs
    at on its board; ``nphases``: DFI phases per system clock (1: SDR full rate; 4: DDR3
    at 1:4). ``litedram_module``: LiteDRAM's class for the chip, from which the timings
    this table does not hold (tWTR, tCCD, tRRD, tFAW, tZQCS) are taken.
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
    twr_ns: float | None = None
    burst_length: int = 1
    nphases: int = 1
    clk_hz: float = 0.0
    latency: int = 0
    source: str = ""

    @property
    def size_mib(self) -> float:
        return self.size_bytes / (1 << 20)

    @property
    def burst_beats(self) -> int:
        """Column addresses one native-port beat covers (LiteDRAM's ``address_align``):
        ``nphases`` for SDR, ``2 × nphases`` for DDR."""
        return self.nphases * (1 if self.kind == "sdr" else 2)

    @property
    def row_beats(self) -> int:
        """Native-port beats in one row of one bank."""
        return (1 << self.col_bits) // self.burst_beats

    @property
    def peak_bytes_per_s(self) -> float:
        """One ``port_bits`` beat per system clock: the user port's ceiling."""
        return self.port_bits / 8 * self.clk_hz


#: every part tritium knows, by name (the ``part`` of a :class:`DramConfig`)
PARTS: dict[str, DramPart] = {
    "ideal": DramPart(
        name="ideal", title="ideal memory: fixed latency, one beat per cycle",
        kind="ideal", size_bytes=1 << 26, port_bits=32, latency=8,
        source="no part: a bandwidth + latency bound for the cycle model"),
    "mt48lc16m16": DramPart(
        name="mt48lc16m16", title="ULX3S SDR SDRAM: Micron MT48LC16M16A2, 4M x 16 x 4 banks",
        kind="sdr", size_bytes=32 << 20, port_bits=16, dq_bits=16, banks=4, row_bits=13,
        col_bits=9, litedram_module="MT48LC16M16", cl=2, trcd_ns=20, trp_ns=20,
        tras_ns=44, trfc_ns=66, trefi_ns=64e6 / 8192, twr_ns=15, burst_length=1,
        nphases=1, clk_hz=50e6,
        source="Micron 256Mb SDR SDRAM datasheet (MT48LC16M16A2, 256Mb_sdr.pdf), speed "
               "grade -75, the slowest grade, which the faster -6A and ISSI IS42S16160G-7 "
               "also meet: tRCD = tRP = 20 ns, tRAS = 44 ns, tRFC = 66 ns, tWR = 15 ns, "
               "8192 AUTO REFRESH / 64 ms, CL = 2 up to 100 MHz; burst length 1 as "
               "LiteDRAM's full-rate SDR PHY programs it. The ULX3S v3.0.3 carries "
               "MT48LC16M16A2TG-6A, later batches IS42S16160G-7TL, same organisation "
               "(ULX3S manual, emard/ulx3s doc/MANUAL.md, production table); LiteX's "
               "ULX3S target runs it at 50 MHz"),
    "mt41k128m16": DramPart(
        name="mt41k128m16", title="Arty A7 DDR3L: Micron MT41K128M16JT-125, 16M x 16 x 8 banks",
        kind="ddr3", size_bytes=256 << 20, port_bits=128, dq_bits=16, banks=8, row_bits=14,
        col_bits=10, litedram_module="MT41K128M16", cl=6, trcd_ns=13.75, trp_ns=13.75,
        tras_ns=35, trfc_ns=160, trefi_ns=7800, twr_ns=15, burst_length=8, nphases=4,
        clk_hz=100e6,
        source="Micron 2Gb DDR3L SDRAM datasheet (MT41K128M16JT-125, 2Gb_DDR3L.pdf): "
               "-125 bin tRCD = tRP = 13.75 ns, tRAS = 35 ns, tWR = 15 ns; tRFC = 160 ns "
               "(2Gb); tREFI = 7.8 us (0-85 C); BL8; CL = 6 at tCK = 2.5 ns (DDR3-800: "
               "the Arty's 100 MHz system clock at 1:4). Digilent Arty A7 reference "
               "manual: 256 MB DDR3L, MT41K128M16JT-125"),
}


#: a ceiling on the cycles the CRC command's word path takes a beat, for the host's wait
#: (not a delay): the served SoC measures about 1.05 on the ideal part and 1.04 on the SDR
#: part (bench/results/dram.json; a beat a cycle when the port delivers one); 8 leaves
#: room for a controller refreshing or turning rows around throughout
CRC_CYCLES_PER_BEAT = 8

#: the ideal part's accepted port beats (DramConfig.ideal_port_bits), in bits: at least
#: its own, at most 1024 (a 128-byte beat; the CRC and read-ahead logic grows with it)
IDEAL_PORT_BITS_MIN, IDEAL_PORT_BITS_MAX = PARTS["ideal"].port_bits, 1 << 10
#: the most bytes a device may use of the ideal part (DramConfig.size): no chip bounds
#: it, only the simulation host's memory; ``size`` 0 stays the part's own size
IDEAL_SIZE_MAX = 1 << 30


def part(name: str) -> DramPart:
    """The part called ``name``; ConfigError listing the known ones otherwise."""
    if name not in PARTS:
        raise ConfigError(f"unknown DRAM part {name!r}; choose one of {', '.join(PARTS)}")
    return PARTS[name]


@dataclasses.dataclass(frozen=True)
class DramConfig(Config):
    """The device's DRAM: a part and how many bytes of it the device uses.

    ``size``: bytes used (0 = the whole part; a power of two up to the part's size, so a
    test can model a small DRAM; on the ideal part up to :data:`IDEAL_SIZE_MAX`, for
    released model shapes in simulation). The native port's beat is the part's ``port_bits``, or
    for the ideal part ``ideal_port_bits`` if set (a power of two from
    :data:`IDEAL_PORT_BITS_MIN` to :data:`IDEAL_PORT_BITS_MAX`): a real part's beat is
    its controller's, the ideal part's a modelling choice (a wide one lets the CRC
    command, which takes a beat a cycle, prove a load at tens of MB/s in simulation).
    ``word_crc``: 1 (default) the CRC command reads a DRAM range a beat a cycle; 0 a
    byte a bus request, as every other region (the old path, kept as a baseline).
    """

    kind: ClassVar[str] = "dram"

    part: str = "ideal"
    size: int = _field(0, 0, 1 << 34, "bytes of the part the device uses (0: all of it)")
    ideal_port_bits: int = _field(
        0, 0, IDEAL_PORT_BITS_MAX, "the ideal part's port beat in bits (0: the part's; else "
        f"a power of two, {IDEAL_PORT_BITS_MIN}..{IDEAL_PORT_BITS_MAX}); real parts: 0")
    word_crc: int = _field(1, 0, 1, "1: the CRC command reads DRAM a beat a cycle; "
                           "0: a byte a request (baseline)")

    def validate(self) -> None:
        p = part(self.part)
        w = self.ideal_port_bits
        if w and p.kind != "ideal":
            raise ConfigError(f"dram.ideal_port_bits={w} applies to the ideal part only; "
                              f"part {self.part!r} has its controller's {p.port_bits}-bit "
                              "beat: set it to 0")
        if w and (w & (w - 1) or not IDEAL_PORT_BITS_MIN <= w <= IDEAL_PORT_BITS_MAX):
            raise ConfigError(f"dram.ideal_port_bits={w} must be 0 or a power of two from "
                              f"{IDEAL_PORT_BITS_MIN} to {IDEAL_PORT_BITS_MAX}")
        most = IDEAL_SIZE_MAX if p.kind == "ideal" else p.size_bytes
        if self.size and (self.size & (self.size - 1) or self.size > most
                          or self.size < self.word_bytes):
            raise ConfigError(f"dram.size={self.size} must be a power of two between "
                              f"{self.word_bytes} and {most} bytes (part {self.part})")

    @property
    def spec(self) -> DramPart:
        return part(self.part)

    @property
    def size_bytes(self) -> int:
        return self.size or self.spec.size_bytes

    @property
    def port_bits(self) -> int:
        """The native port's beat: ``ideal_port_bits`` if set, else the part's."""
        return self.ideal_port_bits or self.spec.port_bits

    @property
    def word_bytes(self) -> int:
        return self.port_bits // 8

    def crc_cycles(self, length: int) -> int:
        """A ceiling on the device cycles the CRC command takes over ``length`` bytes of
        this DRAM. The word path (``word_crc``): :data:`CRC_CYCLES_PER_BEAT` a beat of the
        range, one more beat for the read latency, and a cycle for each byte of a partial
        head and tail beat; the byte path: ``tritium.protocol.CRC_BYTE_CYCLES`` a byte."""
        if not self.word_crc:
            return CRC_BYTE_CYCLES * length
        nb = self.word_bytes
        return CRC_CYCLES_PER_BEAT * (-(-length // nb) + 1) + 2 * (nb - 1)

    @property
    def addr_bits(self) -> int:
        """Width of the native port's beat address."""
        return max(1, (self.size_bytes // self.word_bytes - 1).bit_length())


def parts_table() -> str:
    """The parts as a Markdown table (docs/dram.md holds it; a test keeps them equal)."""
    def ns(v):
        return "–" if v is None else f"{v:g}"

    rows = ["| part | kind | size | dq × banks × rows × cols | port beat | clock | CL | "
            "tRCD ns | tRP ns | tRAS ns | tRFC ns | tREFI ns | tWR ns | BL | source |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | "
            "--- | --- |"]
    for p in PARTS.values():
        if p.kind == "ideal":
            continue
        rows.append(
            f"| `{p.name}` | {p.kind} | {p.size_mib:g} MiB | {p.dq_bits} × {p.banks} × "
            f"{1 << p.row_bits} × {1 << p.col_bits} | {p.port_bits} bits | "
            f"{p.clk_hz / 1e6:g} MHz (1:{p.nphases}) | {p.cl} | {ns(p.trcd_ns)} | "
            f"{ns(p.trp_ns)} | {ns(p.tras_ns)} | {ns(p.trfc_ns)} | {ns(p.trefi_ns)} | "
            f"{ns(p.twr_ns)} | {p.burst_length} | {p.source} |")
    return "\n".join(rows) + "\n"
