"""The device link: byte-stream framing with CRC-32, the command processor, a UART PHY.

Protocol constants and the host codec live in :mod:`tritium.protocol`
(docs/protocol.md); the hardware here implements the device end of it.
"""

from .deframer import Deframer  # noqa: F401
from .framer import Framer  # noqa: F401
from .uart import UartRx, UartTx  # noqa: F401
