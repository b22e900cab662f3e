"""Pack and unpack stream payloads as the flat integers a simulator port carries.

The bit layout is the Amaranth ``data.Layout`` of the port itself, so the bench and
the hdl cannot disagree about where a field sits.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Shape
from amaranth.lib import data


def pack(layout, value: Any) -> int:
    """Python value -> flat int. Structs take dicts, arrays take sequences, scalars ints
    (signed ones may be negative). Out-of-range scalars raise ValueError."""
    if isinstance(layout, data.StructLayout):
        out = 0
        for name, field in layout:
            out |= pack(field.shape, value[name]) << field.offset
        return out
    if isinstance(layout, data.ArrayLayout):
        if len(value) != layout.length:
            raise ValueError(f"array needs {layout.length} elements, got {len(value)}")
        w = Shape.cast(layout.elem_shape).width
        out = 0
        for k, v in enumerate(value):
            out |= pack(layout.elem_shape, v) << (k * w)
        return out
    shape = Shape.cast(layout)
    v = int(value)
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed \
        else (0, (1 << shape.width) - 1)
    if not lo <= v <= hi:
        raise ValueError(f"{v} does not fit {shape}")
    return v & ((1 << shape.width) - 1)


def unpack(layout, raw: int) -> Any:
    """Flat int -> Python value (the inverse of :func:`pack`)."""
    if isinstance(layout, data.StructLayout):
        return {name: unpack(f.shape, raw >> f.offset) for name, f in layout}
    if isinstance(layout, data.ArrayLayout):
        w = Shape.cast(layout.elem_shape).width
        return [unpack(layout.elem_shape, raw >> (k * w)) for k in range(layout.length)]
    shape = Shape.cast(layout)
    v = raw & ((1 << shape.width) - 1)
    if shape.signed and v >> (shape.width - 1):
        v -= 1 << shape.width
    return v
