"""The MatMul-free token core (MFC): sequencer, scalar unit, vector unit, TMV adapter.

The instruction set and the bit- and cycle-exact model are :mod:`tritium.engines.mfc.golden`.
"""

from .core import MfcCore  # noqa: F401
from .scalar import MfcScalar  # noqa: F401
from .vector import MfcVector  # noqa: F401
