"""Shared fixtures, and a summary line of the Verilator build cache at the end of a run.

Every test's Verilator cache events (hits and builds, from tritium.sim.build) travel to
the controlling process as user properties, so the summary also works under xdist.
"""

import pytest


@pytest.fixture(scope="session")
def h64_checkpoint(tmp_path_factory):
    """``h64_checkpoint(seed, unit_scale=False)``: the demo's HGRN-bit shape (hidden 64,
    2 layers, vocab 256), initialised as upstream initialises a model (std 0.02) or at the
    toy unit scale, written once per (seed, unit_scale) and session."""
    from tritium.golden.checkpoint import write_checkpoint

    made = {}

    def make(seed: int = 0, unit_scale: bool = False):
        if (seed, unit_scale) not in made:
            name = f"h64-s{seed}" + ("-unit" if unit_scale else "")
            made[seed, unit_scale] = write_checkpoint(
                tmp_path_factory.mktemp("ck") / name, "hgrn-bit", hidden=64, layers=2,
                vocab=256, seed=seed, unit_scale=unit_scale)
        return made[seed, unit_scale]

    return make


@pytest.fixture(autouse=True)
def _record_verilator_cache(request):
    from tritium.sim import build

    start = len(build.CACHE_EVENTS)
    yield
    for kind, tag in build.CACHE_EVENTS[start:]:
        request.node.user_properties.append(("verilator_cache", f"{kind} {tag}"))


def pytest_terminal_summary(terminalreporter):
    events = []
    for reports in terminalreporter.stats.values():
        for r in reports:
            if getattr(r, "when", None) == "teardown" or getattr(r, "when", None) == "call":
                events += [v for k, v in getattr(r, "user_properties", ()) if k == "verilator_cache"]
    events = sorted(set(events))
    if not events:
        return
    hits = [e for e in events if e.startswith("hit")]
    built = [e for e in events if e.startswith("build")]
    terminalreporter.write_sep("-", "verilator build cache")
    terminalreporter.write_line(f"verilator cache: {len(hits)} hit(s), {len(built)} build(s)")
    for e in built + hits:
        terminalreporter.write_line(f"  {e}")
