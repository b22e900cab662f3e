"""`tritium compare --quick`: the cycle model against the RTL's hardware counters
(Verilator). TMV's closed form must be within 1 % on every row, SpGEMM's within 5 %."""

import json
import re

import pytest

from tritium.cli import main

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def test_compare_quick_estimates_match_rtl_counters(tmp_path, capsys, monkeypatch):
    # stderr as a terminal (rich draws its progress bar only there); stdout stays JSON
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    assert main(["compare", "--quick", "--out", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    rep = json.loads(out)
    # the bar counted every workload to the end: one per row of the report
    bar = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err)
    assert "simulating the grid" in bar and f"{len(rep['rows'])}/{len(rep['rows'])}" in bar
    on_disk = json.loads((tmp_path / "compare.json").read_text())
    assert on_disk["rows"] == rep["rows"]
    tmv = [r for r in rep["rows"] if r["engine"] == "tmv"]
    spg = [r for r in rep["rows"] if r["engine"] == "spgemm"]
    assert len(tmv) >= 8 and len(spg) >= 3
    assert any(r["bound"] == "memory" for r in tmv if "bound" in r)  # both roofline sides
    for r in tmv:
        assert r["rtl_cycles"] > 0
        assert abs(r["estimate_cycles"] - r["rtl_cycles"]) <= 0.01 * r["rtl_cycles"], r
    for r in spg:
        assert abs(r["estimate_cycles"] - r["rtl_cycles"]) <= 0.05 * r["rtl_cycles"], r
    assert any(r["extra_passes"] > 0 for r in spg)  # overflowing tables are in the grid
    for png in ("scatter.png", "roofline.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
