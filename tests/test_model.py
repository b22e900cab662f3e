"""The cycle/power model as pure functions: formulas against independent counts,
presets against published figures, bad input → typed errors."""

import json
import math
from pathlib import Path

import pytest

from tritium.cli import main
from tritium.engines.spgemm.config import SpgemmConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError
from tritium.engines.spgemm import golden as g
from tritium.engines.spgemm.model import spgemm_estimate
from tritium.engines.tmv.model import tmv_matvec, tmv_stream_cycles
from tritium.sim import model as M


def test_u250_matvec_takes_d_squared_over_128_cycles_as_published():
    cfg = TernaryConfig(simd=128, pe=1, max_in=1024, max_out=1024)
    r = tmv_matvec(cfg, 1024, 1024, "t2")
    assert r["words"] == 1024 * 1024 // 128 == 8192
    assert 8192 <= r["cycles"] <= 8192 * 1.01  # pipeline fill only
    assert r["bound"] == "compute"


def test_roofline_switches_to_memory_bound_when_bandwidth_drops():
    cfg = TernaryConfig(simd=64, pe=1, max_in=1024, max_out=1024)
    fast = tmv_matvec(cfg, 512, 1024, "t2", clock_hz=100e6, mem_bw=100e9)
    slow = tmv_matvec(cfg, 512, 1024, "t2", clock_hz=100e6, mem_bw=200e6)
    assert fast["bound"] == "compute" and slow["bound"] == "memory"
    # 16-byte words over 2 bytes/cycle: 8 cycles per word
    assert slow["cycles"] == pytest.approx(8 * slow["words"], rel=0.01)
    assert slow["weight_bytes"] == 512 * 1024 // 4


def test_stream_formula_overlaps_commands():
    cfg = TernaryConfig(simd=8, pe=3, max_in=64, max_out=32)
    one = [cfg.cycles(32, 64), cfg.cycles(7, 13)]
    both = tmv_stream_cycles(cfg, [(32, 64, "t2"), (7, 13, "t2")])
    assert both < sum(one)
    assert both == cfg.words(32, 64) + cfg.words(7, 13) - 1 + cfg.latency


@pytest.mark.parametrize("name,params", [("mmfreelm-370m", 370e6), ("mmfreelm-1.3b", 1.3e9),
                                         ("mmfreelm-2.7b", 2.7e9)])
def test_model_shapes_match_the_published_parameter_counts(name, params):
    s = M.model_shapes(M.model_config(name))
    ternary = sum(o * i for _, o, i in s["linears"])
    embeddings = s["vocab"] * s["hidden"]
    assert len(s["linears"]) == 6 * s["layers"] + 1  # i, f, g, o, gate, down + lm_head
    assert abs(ternary + embeddings - params) / params < 0.06


def test_u250_preset_reproduces_86_tokens_per_s_within_10_percent():
    e = M.estimate_model("mmfreelm-370m", "u250")
    assert abs(e["tokens_per_s"] - 86) / 86 <= 0.10
    assert abs(e["matmul_fraction"] - 0.76) <= 0.05
    assert e["bound"] == "compute"
    assert e["required_bw_bytes_per_s"] < 19.2e9


def test_bigger_models_are_slower_and_need_more_bytes():
    es = [M.estimate_model(m, "u250") for m in ("mmfreelm-370m", "mmfreelm-1.3b",
                                                 "mmfreelm-2.7b")]
    assert es[0]["tokens_per_s"] > es[1]["tokens_per_s"] > es[2]["tokens_per_s"]
    assert es[0]["weight_bytes_per_token"] < es[1]["weight_bytes_per_token"]
    # 2-bit packing: a quarter byte per ternary weight (simd=128 divides every width)
    assert es[1]["weight_bytes_per_token"] == es[1]["ternary_weights"] // 4


def test_bitnet_preset_and_anchor_report():
    e = M.estimate_model("bitnet-b1.58-2b", "u250")
    assert e["arch"] == "bitnet" and e["tokens_per_s"] > 0
    assert any("lm_head" in a for a in e["assumptions"])
    errs = M.anchor_errors()
    assert {(a["platform"], a["metric"]) for a in errs} >= {("u250", "tokens_per_s"),
                                                           ("stratix10", "tokens_per_s")}
    assert all(math.isfinite(a["error_pct"]) for a in errs)


def test_ecp5_is_bandwidth_bound_and_draws_little_power():
    e = M.estimate_model("mmfreelm-370m", "ecp5-85f")
    assert e["bound"] == "memory"
    assert 0.9 * 200e6 < e["required_bw_bytes_per_s"] <= 200e6  # row-wise time: a little idle
    assert e["power_w"] < 2 and e["resources"]["fits"]


def test_checkpoint_config_json_is_read(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "hgrn_bit", "hidden_size": 64, "num_hidden_layers": 2,
         "vocab_size": 100, "intermediate_size": 256}))
    e = M.estimate_model(str(tmp_path), "u250")
    assert e["matvecs_per_token"] == 13 and e["arch"] == "hgrn"


def test_power_is_static_plus_events():
    p = M.power("ecp5", {}, 2.0)
    assert p["power_w"] == pytest.approx(M.energy_table("ecp5")["static_w"])
    q = M.power("ecp5", {"link_byte": 1e9}, 1.0)
    assert q["dynamic_w"] == pytest.approx(1e9 * 50e-12)
    for fam in ("ecp5", "ice40_up5k", "ultrascale_plus", "stratix10"):
        t = M.energy_table(fam)
        assert set(t["pj_per_event"]) <= set(t["sources"]) | {"bram_write_per_bit"}


def test_spgemm_overflowing_table_costs_more_cycles():
    A = g.pyamg_matrix("airfoil")
    small = spgemm_estimate(SpgemmConfig(pes=2, hash_bits=3, max_dim=300, max_nnz=2048), A, A)
    big = spgemm_estimate(SpgemmConfig(pes=2, hash_bits=6, max_dim=300, max_nnz=2048), A, A)
    assert small["extra_passes"] > 0 == big["extra_passes"]
    assert small["cycles"] > big["cycles"]
    four = spgemm_estimate(SpgemmConfig(pes=4, hash_bits=6, max_dim=300, max_nnz=2048), A, A)
    assert four["cycles"] < big["cycles"]


@pytest.mark.parametrize("call,err", [
    (lambda: M.estimate_model("nope"), M.ModelError),
    (lambda: M.estimate_model("mmfreelm-370m", "nowhere"), M.ModelError),
    (lambda: M.estimate_model("mmfreelm-370m", "u250", clock_hz=-1), M.ModelError),
    (lambda: M.estimate_model("mmfreelm-370m", "u250", mem_bw=0.0), M.ModelError),
    (lambda: M.estimate_model("mmfreelm-370m", "u250", simd=0), ConfigError),
    (lambda: M.estimate_model({"model_type": "llama", "hidden_size": 8}), M.ModelError),
    (lambda: tmv_matvec(TernaryConfig(has_t3=0), 4, 4, "t3"), ConfigError),
    (lambda: tmv_matvec(TernaryConfig(), 0, 4), M.ModelError),
    (lambda: M.power("nofamily", {}, 1.0), M.ModelError),
    (lambda: M.power("ecp5", {"warp_drive": 1}, 1.0), M.ModelError),
])
def test_bad_input_raises_typed_errors(call, err):
    with pytest.raises(err):
        call()


def test_bad_config_json_is_a_model_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(M.ModelError, match="fix the file"):
        M.estimate_model(str(tmp_path))


def test_cli_estimate_json_and_user_errors(capsys):
    assert main(["estimate", "--model", "mmfreelm-370m", "--simd", "128", "--pe", "1",
                 "--clock", "300e6", "--mem-bw", "19.2e9", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["simd"] == 128 and rep["tokens_per_s"] > 0
    assert main(["estimate", "--model", "mmfreelm-370m"]) == 0
    assert "tokens_per_s" in capsys.readouterr().out
    assert main(["estimate", "--spgemm", "airfoil", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] > 0
    for argv in (["estimate", "--model", "nope"], ["estimate"],
                 ["estimate", "--spgemm", "nomatrix"],
                 ["estimate", "--model", "mmfreelm-370m", "--clock", "-5"]):
        assert main(argv) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "error" in err[0]


def test_the_whole_model_walk_runs_its_matvecs_on_the_registrys_unit():
    # the generic walk names no engine: its matvecs are the TMV's (the built-in engine with
    # an lm_matvecs hook), each one command priced by the config's own closed form
    import dataclasses

    from tritium.engines.tmv.model import lm_matvecs

    assert M.matvec_unit() is lm_matvecs
    plat = dataclasses.replace(M.PLATFORMS["u250"], mem_bw=None)  # weights on chip
    e = M.estimate_model("mmfreelm-370m", plat)
    shapes = M.model_shapes(M.model_config("mmfreelm-370m"))
    cfg = TernaryConfig(simd=128, pe=1, max_in=max(i for _, _, i in shapes["linears"]),
                        max_out=max(o for _, o, _ in shapes["linears"]), has_t3=0)
    assert e["matvec_cycles"] == sum(cfg.cycles(o, i, "t2") for _, o, i in shapes["linears"])
    assert e["matvecs_per_token"] == len(shapes["linears"]) == 6 * 24 + 1


def test_many_cores_multiply_rate_and_share_board_power_and_bandwidth():
    one = M.estimate_model("mmfreelm-370m", "u250")
    # 4 cores with their own weight streams split one 19.2 GB/s channel: 4.8 GB/s each is
    # below the 7.3 GB/s a core needs, so each core slows down to the memory's pace
    split = M.estimate_model("mmfreelm-370m", "u250", cores=4)
    assert split["bound"] == "memory" and split["tokens_per_s_per_core"] < one["tokens_per_s"]
    assert split["required_bw_bytes_per_s"] <= 19.2e9 * 1.0001
    # one broadcast stream: every core keeps the single core's rate
    bcast = M.estimate_model("mmfreelm-370m", "u250", cores=4, shared_weights=True)
    assert bcast["tokens_per_s_per_core"] == one["tokens_per_s"]
    assert bcast["tokens_per_s"] == 4 * one["tokens_per_s"]
    assert bcast["resources"]["device_lut"] == 4 * one["resources"]["lut"]
    # a fixed board budget: the system draws exactly it, J/token = W / (tok/s)
    board = M.estimate_model("mmfreelm-370m", "u250", cores=4, shared_weights=True,
                             board_w=53.0, devices=3)
    assert abs(board["power_w"] - 3 * 53.0) < 1e-6
    assert abs(board["j_per_token"] - 3 * 53.0 / board["tokens_per_s"]) < 1e-12
    assert board["tokens_per_s"] == 12 * one["tokens_per_s"]


def test_many_core_bad_input_is_a_typed_error():
    with pytest.raises(M.ModelError, match="cores and devices"):
        M.estimate_model("mmfreelm-370m", "u250", cores=0)
    with pytest.raises(M.ModelError, match="board budget"):
        M.estimate_model("mmfreelm-370m", "u250", cores=1000, shared_weights=True,
                         board_w=5.0)


def test_every_anchor_within_25_percent_and_labelled():
    errs = M.anchor_errors()
    want = {("u250", "mmfreelm-370m", "tokens_per_s"),
            ("u250-board", "mmfreelm-370m", "j_per_token"),
            ("stratix10", "mmfreelm-370m", "tokens_per_s"),
            ("stratix10", "mmfreelm-1.3b", "tokens_per_s"),
            ("stratix10", "mmfreelm-1.3b", "power_w"),
            ("tereffic", "mmfreelm-370m", "tokens_per_s_per_w")}
    assert want <= {(a["platform"], a["model"], a["metric"]) for a in errs}
    for a in errs:
        assert abs(a["error_pct"]) <= 25, a
    # published values as printed in the papers, not read back from the model
    by = {(a["platform"], a["metric"]): a["value"] for a in errs}
    assert by[("u250-board", "j_per_token")] == 14.4e-3
    assert by[("tereffic", "tokens_per_s_per_w")] == 455.0
    for name in ("u250-board", "tereffic"):
        assert any("ASSUMPTION" in s for s in M.PLATFORMS[name].assumptions)


def test_docs_anchor_table_is_the_generated_one():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text()
    part = doc.split("<!-- bench:anchors begin -->\n", 1)[1].split(
        "\n<!-- bench:anchors end -->", 1)[0]
    assert part == M.anchor_table()


def test_compare_anchors_cli_prints_every_anchor(tmp_path):
    import subprocess
    import sys

    cli = str(Path(sys.executable).with_name("tritium"))
    r = subprocess.run([cli, "compare", "--anchors", "--json"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == len(M.ANCHORS) and all(abs(a["error_pct"]) <= 25 for a in rows)
    assert not any(tmp_path.iterdir())  # no report written
