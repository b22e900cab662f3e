"""Activity-based power (Verilator toggle coverage) beside the event-based model."""

import pytest

from tritium.engines.tmv.config import TernaryConfig
from tritium.engines.tmv.activity_model import tmv_power_opinions
from tritium.sim.activity import toggle_count

pytestmark = pytest.mark.verilator

CFG = TernaryConfig(simd=8, pe=3, max_in=64, max_out=32, weight_depth=256)


def test_toggle_count_reads_only_toggle_points(tmp_path):
    dat = tmp_path / "coverage.dat"
    dat.write_text("# SystemC::Coverage-3\n"
                   "C '\x01t\x02toggle\x01page\x02v_toggle/top\x01o\x02a[0]:0->1' 7\n"
                   "C '\x01t\x02line\x01page\x02v_line/top\x01o\x02block' 100\n"
                   "C '\x01t\x02toggle\x01page\x02v_toggle/top\x01o\x02a[0]:1->0' 5\n")
    assert toggle_count(dat) == 12


def test_activity_and_event_power_agree_in_order_of_magnitude():
    small = tmv_power_opinions("ecp5", CFG, 8, 16, 25e6)
    big = tmv_power_opinions("ecp5", CFG, 32, 64, 25e6)
    assert small["toggles"] > 0 and big["toggles"] > 2 * small["toggles"]
    for r in (small, big):
        assert 0.1 < r["activity_over_event_dynamic"] < 10, r
