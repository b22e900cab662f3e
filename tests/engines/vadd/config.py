"""The vector-add engine's config: every width and limit of the example engine."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from tritium.config import Config, field

#: operand and result element widths, bits (the bus moves whole bytes of them)
OPERAND_BITS = 16
RESULT_BITS = 32


@dataclasses.dataclass(frozen=True)
class VaddConfig(Config):
    """``c[i] = a[i] + b[i]`` for up to ``depth`` int16 elements, int32 results."""

    kind: ClassVar[str] = "vadd"

    depth: int = field(64, 1, 4096, "elements a run can take")
    counter_bits: int = field(32, 8, 48, "width of the cycle and element counters")

    def soc_regions(self) -> tuple[tuple[str, int, str], ...]:
        """(name, bytes, access) on the device bus: A and B written, C read back."""
        return (("vadd_a", self.depth * OPERAND_BITS // 8, "w"),
                ("vadd_b", self.depth * OPERAND_BITS // 8, "w"),
                ("vadd_c", self.depth * RESULT_BITS // 8, "r"))

    def cycles(self, n: int) -> int:
        """Busy cycles of a run of ``n`` elements: one per element issued, one for the
        block-RAM read of the last, one to see the pipeline empty."""
        return n + 2
