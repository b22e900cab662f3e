"""Activity-based power, the generic half: bit transitions counted by a Verilator run
built with toggle coverage (``--coverage-toggle``), which an engine's activity model
turns into energy with the family's ``pj_per_toggle`` (sim/energy/<family>.json), beside
the event-based estimate (the TMV's: :mod:`tritium.engines.tmv.activity_model`).

Toggle counts cover nets Verilator keeps, not the technology-mapped netlist.
"""

from __future__ import annotations

import re
from pathlib import Path

_POINT = re.compile(r"^C '(?P<key>[^']*)' (?P<count>\d+)$")


def toggle_count(coverage_dat: str | Path) -> int:
    """Total bit transitions recorded in a Verilator coverage file (toggle points only)."""
    total = 0
    for line in Path(coverage_dat).read_text(errors="replace").splitlines():
        m = _POINT.match(line)
        if m and "\x01page\x02v_toggle" in m["key"]:
            total += int(m["count"])
    return total
