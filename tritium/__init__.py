"""tritium: FPGA accelerators for workloads that avoid dense multiplication.

Subpackages (each a top-level folder of the repository):

- ``tritium.hdl``    Amaranth components (streams, ternary engines, SpGEMM, link, SoC)
- ``tritium.golden`` bit-exact Python models of every hdl block, float references
- ``tritium.sim``    Verilator toolchain, build cache, cocotb benches, cycle model
- ``tritium.host``   checkpoint ingest, packing, link protocol, device driver
- ``tritium.boards`` board tops and the open FPGA flow
"""

__version__ = "0.1.0"

from .errors import TritiumError, ConfigError  # noqa: F401
