"""Simulation: Verilator toolchain and build cache, cocotb benches, runners.

``run_<engine>(cfg, ...)`` functions run the RTL in Verilator and return results and
hardware counters; they are the entry points tests, the CLI and external checks use.
"""


def __getattr__(name):
    # Lazy: importing tritium.sim must not pull in cocotb or build anything.
    if name == "run_ternary_dot":
        from tritium.engines.tmv.dot_runner import run_ternary_dot
        return run_ternary_dot
    if name in ("run_tmv", "run_tmv_commands"):
        from tritium.engines.tmv import runner
        return getattr(runner, name)
    if name == "run_spgemm":
        from tritium.engines.spgemm.runner import run_spgemm
        return run_spgemm
    raise AttributeError(name)
