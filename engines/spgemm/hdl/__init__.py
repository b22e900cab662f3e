"""SpGEMM (SPG): row-wise (Gustavson) sparse matrix product with hash accumulators.

The algorithm, hash, drain order, overflow scheme and semirings are specified by the
golden model :mod:`tritium.engines.spgemm.golden` and described in docs/spgemm.md.
"""

from .accumulator import HashAccumulator  # noqa: F401
from .engine import RowPE, SpgemmEngine  # noqa: F401
