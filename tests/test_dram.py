"""The DRAM parts table, its document, LiteDRAM's view of the parts and the timing model's
arithmetic (no Verilator: tests/test_dram_litedram.py checks the model against the RTL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritium.dram import PARTS, DramConfig, parts_table
from tritium.errors import ConfigError
from tritium.sim import dram as model

DOC = Path(__file__).resolve().parents[1] / "docs" / "dram.md"
REAL = [p for p in PARTS.values() if p.kind != "ideal"]


@pytest.mark.parametrize("p", REAL, ids=lambda p: p.name)
def test_organisation_adds_up(p):
    assert p.size_bytes == (p.banks << (p.row_bits + p.col_bits)) * p.dq_bits // 8
    assert p.port_bits == p.dq_bits * p.nphases * (1 if p.kind == "sdr" else 2)
    assert p.source and p.litedram_module


@pytest.mark.parametrize("p", REAL, ids=lambda p: p.name)
def test_litedram_knows_the_chip_with_this_organisation(p):
    from litedram import modules

    base = getattr(modules, p.litedram_module)
    assert (base.nbanks, base.nrows, base.ncols) == (p.banks, 1 << p.row_bits, 1 << p.col_bits)
    assert base.memtype == {"sdr": "SDR", "ddr3": "DDR3"}[p.kind]


@pytest.mark.parametrize("p", REAL, ids=lambda p: p.name)
def test_model_clocks_equal_the_controllers(p):
    """The model's ns -> clock conversion is LiteDRAM's: the controller is built from the
    same table entry, and its timing settings are what the model computes."""
    from tritium.hdl.dram.litedram import litedram_module

    t = litedram_module(DramConfig(part=p.name, size=1 << 21)).timing_settings
    assert (t.tRP, t.tRCD, t.tRFC, t.tWR) == tuple(
        model.cycles_of(v, p) for v in (p.trp_ns, p.trcd_ns, p.trfc_ns, p.twr_ns))
    assert t.tREFI == model.refresh_interval(p)


def test_the_ulx3s_sdram_clocks():
    p = PARTS["mt48lc16m16"]
    # 20 ns at 50 MHz is one clock, 66 ns 3.3 -> 4, 7812.5 ns 390.6 -> 391
    assert [model.cycles_of(v, p) for v in (20, 66)] == [1, 4]
    assert model.refresh_interval(p) == 391
    # DDR3 at 1:4 adds 3/4 of a 10 ns clock: 13.75 -> 21.25 -> 3; 160 -> 167.5 -> 17
    q = PARTS["mt41k128m16"]
    assert [model.cycles_of(v, q) for v in (13.75, 160)] == [3, 17]


def test_the_document_holds_the_table():
    assert parts_table() in DOC.read_text(), "paste tritium.dram.parts_table() into docs/dram.md"


def test_a_stream_by_hand():
    # SDR read of one row from beat 0: latency 8, one activate of tRCD 1 + 4, refresh
    # tRP 1 + tRFC 4 + tRCD 1 + 5 = 11 in every 391 clocks
    t = model.stream_cycles("mt48lc16m16", 512)
    assert t.activates == 1
    assert t.cycles == pytest.approx((8 + 511 + 5) / (1 - 11 / 391))
    # one beat past the row opens the next bank's
    assert model.stream_cycles("mt48lc16m16", 2, start=511).activates == 2
    assert model.stream_cycles("mt41k128m16", 129).activates == 2  # 1024 cols / BL8


def test_the_ideal_part_is_latency_plus_beats():
    p = PARTS["ideal"]
    assert model.stream_cycles("ideal", 1000).cycles == p.latency + 999


def test_efficiency_is_below_one_and_grows_with_length():
    short, long = (model.stream_cycles("mt48lc16m16", n) for n in (64, 1 << 16))
    assert short.efficiency < long.efficiency < 1
    assert long.bytes_per_s == pytest.approx(long.efficiency * PARTS["mt48lc16m16"]
                                             .peak_bytes_per_s)


@pytest.mark.parametrize("beats,start", [(0, 0), (4, -1)])
def test_a_bad_stream_is_refused(beats, start):
    with pytest.raises(ConfigError, match="beats >= 1"):
        model.stream_cycles("mt48lc16m16", beats, start)


def test_too_small_a_dram_is_refused_with_the_minimum():
    from tritium.hdl.dram.litedram import geometry

    with pytest.raises(ConfigError, match="at least 8192 bytes"):
        geometry(DramConfig(part="mt48lc16m16", size=4096))


def test_the_ideal_part_is_not_litedrams():
    from tritium.hdl.dram.litedram import geometry

    with pytest.raises(ConfigError, match="not one LiteDRAM drives"):
        geometry(DramConfig(part="ideal"))



def test_the_document_holds_the_measured_constants():
    assert model.overhead_table() in DOC.read_text(), \
        "paste tritium.sim.dram.overhead_table() into docs/dram.md"
