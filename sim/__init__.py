"""Simulation: Verilator toolchain and build cache, cocotb benches, runners, the cycle and
power model.

Each engine's runners live in its own package (``tritium.engines.NAME.runner``:
``run_tmv``, ``run_spgemm``, ``run_mfc``, ...): they run the RTL in Verilator and return
results and hardware counters, the entry points tests, the CLI and external checks use.
"""
