"""Activity-based power of the TMV: a second opinion on the event model, from a real
simulation.

:func:`tmv_activity` runs one matvec on the TMV RTL built with Verilator's toggle
coverage (``--coverage-toggle``), sums every bit transition of every signal in the run
(:func:`tritium.sim.activity.toggle_count` of ``coverage.dat``), and turns them into
energy with the family's ``pj_per_toggle`` (sim/energy/<family>.json).
:func:`tmv_power_opinions` puts that next to the event-based estimate
(:func:`tritium.sim.model.power` over the same matvec's MAC slots and memory reads), so a
large disagreement between the two is visible rather than hidden.

Both are estimates: the toggle energy per bit is an order-of-magnitude assumption
(stated in the tables), and toggle counts cover nets Verilator keeps, not the
technology-mapped netlist. The count covers the whole run -- reset and the weight and
activation loads included -- and is charged to the matvec's busy cycles, so for small
matvecs the activity figure leans high.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from tritium.engines.tmv.config import TernaryConfig
from tritium.sim import model as M
from tritium.sim.activity import toggle_count


def tmv_activity(cfg: TernaryConfig, rows: int, cols: int, fmt: str = "t2", *,
                 seed: int = 0, run_dir=None) -> dict:
    """Toggles and busy cycles of one random ``rows × cols`` matvec on the RTL."""
    from tritium.engines.tmv.runner import run_tmv_commands

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, (rows, cols))
    x = rng.integers(cfg.act_min, cfg.act_max + 1, cols)
    rd = Path(run_dir or tempfile.mkdtemp(prefix="tritium-activity-"))
    out = run_tmv_commands(cfg, [(codes, x, fmt)], run_dir=rd,
                           extra_build_args=("--coverage-toggle",))
    return {"toggles": toggle_count(rd / "coverage.dat"),
            "busy_cycles": out["counters"]["busy_cycles"],
            "mac_slots": out["counters"]["mac_slots"]}


def tmv_power_opinions(family: str, cfg: TernaryConfig, rows: int, cols: int,
                       clock_hz: float, fmt: str = "t2", **kw) -> dict:
    """Event-based and activity-based power of the same matvec, side by side."""
    act = tmv_activity(cfg, rows, cols, fmt, **kw)
    seconds = act["busy_cycles"] / clock_hz
    words = cfg.words(rows, cols)
    events = {"ternary_add_per_lane": act["mac_slots"],
              "bram_read_per_bit": words * 8 * cfg.word_bytes(fmt)}
    event = M.power(family, events, seconds)
    table = M.energy_table(family)
    dynamic_j = act["toggles"] * table["pj_per_toggle"] * 1e-12
    activity_w = table["static_w"] + dynamic_j / seconds
    return {"family": family, "rows": rows, "cols": cols, "busy_cycles": act["busy_cycles"],
            "toggles": act["toggles"],
            "toggles_per_cycle": act["toggles"] / max(1, act["busy_cycles"]),
            "event_power_w": event["power_w"], "event_dynamic_w": event["dynamic_w"],
            "activity_power_w": activity_w, "activity_dynamic_w": dynamic_j / seconds,
            "activity_over_event_dynamic": (dynamic_j / seconds) / max(event["dynamic_w"], 1e-30)}
