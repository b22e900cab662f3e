"""Ternary ("1.58-bit") datapaths: weights in {-1, 0, +1}, no multipliers.

Weight codes are documented in :mod:`tritium.golden.ternary` (``code = weight + 1``).
"""

from .dot import TernaryDot, ternary_products, adder_tree  # noqa: F401
from .matvec import TernaryMatVec  # noqa: F401
