"""DRAM timing model: clock cycles of a sequential stream through LiteDRAM's native port.

For ``n`` sequential read (or write) commands from beat ``a`` on a part at its clock::

    cycles = (latency + n - 1 + activates * t_act) / (1 - t_ref / t_refi)

- ``latency``: cycles from the first command offered to the first read beat (reads), or
  the write pipeline's depth (writes), at an open row: LiteDRAM's, measured;
- ``activates``: row openings. LiteDRAM maps beats ROW_BANK_COL, so a sequential stream
  opens a row every ``row_beats`` = ``2^col_bits / burst`` beats (moving to the next
  bank), plus one for the first row: ``floor((a + n - 1) / row_beats) - floor(a /
  row_beats) + 1``;
- ``t_act`` = tRCD + the controller's activate overhead (measured). The stream returns to
  a bank after ``banks × row_beats`` beats; if that takes longer than tREFI a refresh has
  closed the bank by then (precharge-all), else the open row must be closed first: tRP
  more per activate;
- refresh: every tREFI cycles LiteDRAM precharges all banks, refreshes and reopens the
  row: ``t_ref`` = tRP + tRFC + tRCD + the controller's refresh overhead (measured; a
  write stream's also holds write recovery). The refresh timer runs whatever the traffic,
  so it takes the fraction ``t_ref / t_refi`` of all cycles.

Timings in clocks are LiteDRAM's conversion of the table's ns (:func:`cycles_of`):
``ceil((t + margin) / t_ck)`` with a margin of 0, 1/2 or 3/4 of a clock at 1:1, 1:2, 1:4.

The controller's own constants (:data:`LITEDRAM_OVERHEAD`) were measured on the RTL with
:func:`tritium.sim.dram_rtl.measure_overheads` (short streams at many refresh phases);
tests/test_dram_litedram.py measures them again and checks the model against the RTL on
streams of 64k beats and more, within 2 %. The ideal part takes ``latency + n - 1``.

Pure arithmetic (no LiteDRAM, no Verilator), for the cycle model and the benches.
"""

from __future__ import annotations

import dataclasses
import math

from tritium.dram import DramPart, part as part_named
from tritium.errors import ConfigError

#: clock-cycle margin LiteDRAM adds before rounding a ns timing up, by PHY rate (nphases)
RATE_MARGIN = {1: 0.0, 2: 0.5, 4: 0.75}


@dataclasses.dataclass(frozen=True)
class Overhead:
    """LiteDRAM's controller cycles beyond the datasheet terms, for one stream direction.

    ``latency``: first command to first read beat (reads) / write pipeline (writes), row
    open; ``refresh``: bubble of one refresh beyond tRP + tRFC + tRCD; ``activate``:
    bubble of one row opening beyond tRCD."""

    latency: int
    refresh: int
    activate: int


#: measured on LiteDRAM 2024.12 (controller + crossbar + SDRAMPHYModel) at each part's
#: clock, by (kind, "read" | "write")
LITEDRAM_OVERHEAD: dict[tuple[str, str], Overhead] = {
    ("sdr", "read"): Overhead(latency=8, refresh=5, activate=4),
    ("sdr", "write"): Overhead(latency=4, refresh=11, activate=4),
    ("ddr3", "read"): Overhead(latency=12, refresh=5, activate=5),
    ("ddr3", "write"): Overhead(latency=5, refresh=17, activate=5),
}


def cycles_of(ns: float, p: DramPart, clk_hz: float | None = None) -> int:
    """``ns`` in controller clocks of part ``p`` at ``clk_hz`` (default: its board clock),
    rounded as LiteDRAM does."""
    t_ck = 1e9 / (clk_hz or p.clk_hz)
    return math.ceil((ns + RATE_MARGIN[p.nphases] * t_ck) / t_ck - 1e-9)


def refresh_interval(p: DramPart, clk_hz: float | None = None) -> int:
    """tREFI in controller clocks as LiteDRAM's refresh timer counts it (no margin)."""
    return math.ceil(p.trefi_ns * (clk_hz or p.clk_hz) / 1e9 - 1e-9)


@dataclasses.dataclass(frozen=True)
class StreamTime:
    """The model's answer for one stream: cycles and how they split."""

    beats: int
    cycles: float
    activates: int
    refresh_fraction: float
    clk_hz: float
    beat_bytes: int

    @property
    def efficiency(self) -> float:
        """Beats per cycle: the fraction of the port's peak the stream sustains."""
        return self.beats / self.cycles

    @property
    def bytes_per_s(self) -> float:
        return self.beats * self.beat_bytes * self.clk_hz / self.cycles


def stream_cycles(part: str | DramPart, beats: int, start: int = 0, *, write: bool = False,
                  clk_hz: float | None = None) -> StreamTime:
    """Cycles of ``beats`` sequential commands from beat ``start`` (see the module's formula).

    ConfigError for a negative ``start``, ``beats`` < 1, or a part without measured
    controller constants."""
    p = part if isinstance(part, DramPart) else part_named(part)
    if beats < 1 or start < 0:
        raise ConfigError(f"a DRAM stream needs beats >= 1 and start >= 0, got beats={beats}, "
                          f"start={start}")
    if p.kind == "ideal":
        return StreamTime(beats, p.latency + beats - 1, 0, 0.0, clk_hz or p.clk_hz,
                          p.port_bits // 8)
    key = (p.kind, "write" if write else "read")
    if key not in LITEDRAM_OVERHEAD:
        raise ConfigError(f"no measured LiteDRAM constants for {p.kind!r} parts; measure them "
                          "with tritium.sim.dram_rtl.measure_overheads")
    o = LITEDRAM_OVERHEAD[key]
    clk = clk_hz or p.clk_hz
    trp, trcd = cycles_of(p.trp_ns, p, clk), cycles_of(p.trcd_ns, p, clk)
    trfc = cycles_of(p.trfc_ns, p, clk)
    trefi = refresh_interval(p, clk)
    rb = p.row_beats
    activates = (start + beats - 1) // rb - start // rb + 1
    t_act = trcd + o.activate + (trp if p.banks * rb < trefi else 0)
    t_ref = trp + trfc + trcd + o.refresh
    frac = t_ref / trefi
    cycles = (o.latency + beats - 1 + activates * t_act) / (1 - frac)
    return StreamTime(beats, cycles, activates, frac, clk, p.port_bits // 8)


def overhead_table() -> str:
    """:data:`LITEDRAM_OVERHEAD` as a Markdown table (docs/dram.md holds it)."""
    rows = ["| part kind | stream | latency | refresh overhead | activate overhead |",
            "| --- | --- | --- | --- | --- |"]
    rows += [f"| {k} | {d} | {o.latency} | {o.refresh} | {o.activate} |"
             for (k, d), o in LITEDRAM_OVERHEAD.items()]
    return "\n".join(rows) + "\n"
