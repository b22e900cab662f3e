"""Stream payload packing follows the Amaranth layout bit for bit."""

import pytest
from amaranth import signed
from amaranth.lib import data

from tritium.engines.tmv.config import TernaryDotConfig
from tritium.engines.tmv.hdl.dot import beat_layout
from tritium.sim.payload import pack, unpack


def test_pack_matches_amaranth_const_bits():
    layout = beat_layout(TernaryDotConfig(lanes=3, act_bits=8))
    value = {"w": [0, 2, 1], "x": [-128, 127, -1], "last": 1}
    assert pack(layout, value) == layout.const(value).as_value().value
    assert unpack(layout, pack(layout, value)) == value


def test_field_positions():
    layout = data.StructLayout({"a": 4, "b": signed(4)})
    assert pack(layout, {"a": 0x3, "b": -1}) == 0xF3


@pytest.mark.parametrize("shape,value", [(signed(4), 8), (signed(4), -9), (4, 16), (4, -1)])
def test_out_of_range_is_an_error(shape, value):
    with pytest.raises(ValueError):
        pack(shape, value)
