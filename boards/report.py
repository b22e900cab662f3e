"""Parse what yosys and nextpnr write into one flat resource/timing summary.

Pure functions over the tools' own outputs (no tool is run here), so they are tested on
real logs kept in ``tests/data/boards``:

- :func:`yosys_cells`: cell counts from a yosys ``stat`` listing (both the
  ``count name`` layout of yosys >= 0.40 and the older ``name count``);
- :func:`nextpnr_utilisation`: the "Device utilisation" table of a nextpnr log
  (``CELL: used/ available pct%``), present even when placement later fails -- the
  numbers behind a "does not fit" error;
- :func:`summarize`: a nextpnr ``--report`` JSON (utilization + fmax) into LUT/FF/BRAM/DSP
  used and available and Fmax per clock against its target.
"""

from __future__ import annotations

import re

#: nextpnr cell types counted as each resource, ECP5 then iCE40. ECP5 "lut" counts
#: TRELLIS_COMB: LUT4s, carry-chain halves and LUT-RAM. An iCE40 logic cell holds a LUT4
#: and a flip-flop, so iCE40 "ff" comes from yosys (SB_DFF* cells) over the logic cells.
RESOURCES = {
    "lut": ("TRELLIS_COMB", "ICESTORM_LC"),
    "ff": ("TRELLIS_FF",),
    "bram": ("DP16KD", "ICESTORM_RAM"),
    "dsp": ("MULT18X18D", "ALU54B", "ICESTORM_DSP"),
    "spram": ("ICESTORM_SPRAM",),
    "lutram": ("TRELLIS_RAMW",),
}


def yosys_cells(stat_text: str) -> dict[str, int]:
    """Cell type -> count of the last design listed by yosys ``stat`` in ``stat_text``."""
    # a log holds one stat listing per synthesis step; keep the final (mapped) one, and
    # of that the hierarchy total when yosys prints one
    start = max(stat_text.rfind("Number of cells"), stat_text.rfind("Count including submodules"))
    text = stat_text[start:] if start >= 0 else stat_text
    cells = {m.group(2): int(m.group(1)) for m in
             re.finditer(r"^\s+(\d+)\s+([A-Z$][\w$]*)\s*$", text, re.M)}
    if not cells:  # older yosys prints "name count"
        cells = {m.group(1): int(m.group(2)) for m in
                 re.finditer(r"^\s+([A-Z$][\w$]*)\s+(\d+)\s*$", text, re.M)}
    return cells


def nextpnr_utilisation(log_text: str) -> dict[str, dict[str, int]]:
    """Cell type -> {used, available} from the last "Device utilisation" table of a log."""
    start = log_text.rfind("Device utilisation")
    if start < 0:
        return {}
    out = {}
    for line in log_text[start:].splitlines()[1:]:
        m = re.search(r"\s([A-Za-z_0-9]+):\s+(\d+)\s*/\s*(\d+)\s+\d+%", line)
        if not m:
            if out:
                break
            continue
        out[m.group(1)] = {"used": int(m.group(2)), "available": int(m.group(3))}
    return out


def over_capacity(util: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {k: v for k, v in util.items() if v["used"] > v["available"]}


def resources(util: dict[str, dict[str, int]], cells: dict[str, int] | None = None
              ) -> dict[str, dict[str, int]]:
    """{lut, ff, bram, dsp, spram} -> {used, available} from nextpnr utilisation (and
    yosys cells for the iCE40 flip-flops)."""
    out = {}
    for name, types in RESOURCES.items():
        hit = [util[t] for t in types if t in util]
        if hit:
            out[name] = {"used": sum(h["used"] for h in hit),
                         "available": sum(h["available"] for h in hit)}
    if "ff" not in out and "ICESTORM_LC" in util and cells is not None:
        out["ff"] = {"used": sum(n for c, n in cells.items() if c.startswith("SB_DFF")),
                     "available": util["ICESTORM_LC"]["available"]}
    return out


def fmax(report: dict) -> dict[str, dict[str, float]]:
    """Clock -> {achieved_mhz, target_mhz} from a nextpnr ``--report`` JSON."""
    return {clk: {"achieved_mhz": round(v["achieved"], 2), "target_mhz": round(v["constraint"], 2)}
            for clk, v in report.get("fmax", {}).items()}


def summarize(report: dict, cells: dict[str, int] | None = None) -> dict:
    """Resources and Fmax of a nextpnr ``--report`` JSON (see :func:`resources`)."""
    return {"resources": resources(report.get("utilization", {}), cells),
            "fmax": fmax(report)}
