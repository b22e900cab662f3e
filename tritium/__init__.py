"""tritium: FPGA accelerators for workloads that avoid dense multiplication.

Here: the spec (``config``, ``errors``, ``protocol``, ``progress``) and the ``tritium``
command (``cli``). The subpackages are each a top-level folder of the repository, in
the layers of docs/engines.md:

- ``tritium.hdl``    Amaranth components (streams, ternary engines, SpGEMM, link, SoC)
- ``tritium.golden`` bit-exact Python models of every hdl block, float references,
                     checkpoint ingest and quantisation, model shapes
- ``tritium.sim``    Verilator toolchain, build cache, cocotb benches, cycle model
- ``tritium.host``   the device driver (each engine's driver, compiler and placement: its package)
- ``tritium.boards`` board tops and the open FPGA flow
"""

__version__ = "0.1.0"

from .errors import TritiumError, ConfigError  # noqa: F401
from . import dram  # noqa: F401,E402  (registers the DRAM config kind SocConfig.dram takes)
