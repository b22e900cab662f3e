"""The cycle model's MFC preset (:func:`tritium.engines.mfc.model.estimate_mfc`): the same cycles
as the compiler's own estimate, sane structure at scale, the CLI path, typed errors.
No simulator."""

import dataclasses
import json

import pytest

from tritium.engines.mfc.config import MfcConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.engines.mfc.compile import compile_model
from tritium.engines.mfc.model import estimate_mfc
from tritium.sim import model as M


@pytest.fixture(scope="module")
def ckpt(h64_checkpoint):
    return h64_checkpoint(0)


@pytest.mark.parametrize("cfg", [
    MfcConfig(),
    MfcConfig(tmv=TernaryConfig(simd=8, pe=2, max_in=1024, max_out=1024, has_t3=0, weight_depth=16384,
                                mem_latency=3, mem_bytes_per_cycle=2)),
], ids=["default", "s8p2-ext"])
def test_estimate_on_the_test_shape_equals_the_compiled_programs_estimate(ckpt, cfg):
    est = compile_model(ckpt, cfg).estimate()
    rep = estimate_mfc(ckpt, "ecp5-85f", cfg=cfg)
    assert rep["counters"] == est
    assert rep["cycles_per_token"] == est["cycles"]
    assert rep["tmv_busy_cycles"] == est["tmv_busy"]
    assert rep["tmv_busy_fraction"] == est["tmv_busy"] / est["cycles"]
    assert rep["tokens_per_s"] == pytest.approx(100e6 / est["cycles"])


def test_platform_config_follows_the_preset():
    rep = estimate_mfc("mmfreelm-370m", "ecp5-85f")
    p = M.PLATFORMS["ecp5-85f"]
    tmv = rep["mfc"]["tmv"]
    assert (tmv["simd"], tmv["pe"]) == (p.simd, p.pe)
    assert tmv["mem_bytes_per_cycle"] == int(p.mem_bw // p.clock_hz) == 2
    # down_proj cols, gate_proj rows: the lm_head's 32000 rows run in chunks of those
    assert tmv["max_in"] == 2816 and tmv["max_out"] == 5632
    # real addresses: the core holds the shape's vectors, program and weight lines
    cfg = MfcConfig.from_dict(rep["mfc"])
    assert cfg.vmem_depth >= 24 * 6 * 1024 and cfg.imem_depth > 1024
    codes = sum(o * i for _, o, i in M.model_shapes(M.model_config("mmfreelm-370m"))["linears"])
    assert cfg.tmv.weight_depth >= codes // (p.simd * p.pe)
    assert any("addresses are real" in a and "6 chunk(s)" in a for a in rep["assumptions"])
    assert rep["bound"] == "memory"
    # weights on chip: a line per cycle, the block-RAM TMV
    on_chip = dataclasses.replace(M.PLATFORMS["u250"], mem_bw=None)
    assert estimate_mfc("mmfreelm-370m", on_chip)["mfc"]["tmv"]["mem_bytes_per_cycle"] == 0


def test_370m_structure():
    rep = estimate_mfc("mmfreelm-370m", "u250")
    c, cfg = rep["counters"], MfcConfig.from_dict(rep["mfc"])
    # 6 BitLinears per layer (i, f, g, o, gate, down), plus the head
    assert rep["matvecs_per_token"] == 24 * 6 + 6 == len(rep["matvecs"])   # head: 6 chunks
    assert [m["rows"] for m in rep["matvecs"][-6:]] == [5632] * 5 + [32000 - 5 * 5632]
    assert c["tmv_busy"] == sum(m["tmv_cycles"] for m in rep["matvecs"])
    assert all(m["tmv_cycles"] == cfg.tmv_cycles(m["rows"], m["cols"], m["fmt"])
               for m in rep["matvecs"])
    # the sequencer's time is the partition issue + vector + scalar + waiting for the TMV
    assert c["cycles"] == c["issue"] + c["vpu_busy"] + c["scalar_busy"] + c["wait_tmv"]
    assert sum(rep["sequencer_fractions"].values()) == pytest.approx(1.0)
    assert c["tmv_busy"] <= c["cycles"] and 0 < rep["tmv_busy_fraction"] < 1
    assert rep["ternary_weights"] == sum(o * i for _, o, i in
                                         M.model_shapes(M.model_config("mmfreelm-370m"))["linears"])
    assert rep["j_per_token"] == pytest.approx(rep["power_w"] / rep["tokens_per_s"])
    assert rep["events"]["ternary_add_per_lane"] >= rep["ternary_weights"]
    # bigger models: more cycles, fewer tokens/s
    big = estimate_mfc("mmfreelm-2.7b", "u250")
    assert big["cycles_per_token"] > rep["cycles_per_token"]
    assert big["tokens_per_s"] < rep["tokens_per_s"]


@pytest.mark.parametrize("plat,override,lanes", [
    ("u250", {}, 16),                        # the core's widest unit
    ("tereffic", {}, 16),
    ("u250", {"rowwise_lanes": 2}, 2),       # an override sets it
    ("u250", {"rowwise_lanes": 12}, 8),      # the power of two below
    ("u250", {"rowwise_lanes": 16, "simd": 12}, 4),   # and one dividing the TMV's simd
])
def test_vpu_lanes_the_widest_the_tmv_allows(plat, override, lanes):
    from tritium.engines.mfc.model import mfc_config

    shapes = M.model_shapes(M.model_config("mmfreelm-370m"))
    assert mfc_config(plat, shapes, **override).vpu_lanes == lanes


def test_370m_on_the_u250_with_16_lanes_keeps_the_tmv_90_percent_busy():
    """The issue's goal: >= 100 tok/s and the TMV >= 90 % busy at 16 vector lanes; the
    vector unit's cycles are ceil(VL / 16) + 5 per vector op of the program."""
    from tritium.engines.mfc.compile import shape_program
    from tritium.engines.mfc.golden import VECTOR_OPS, Op, decode_word

    rep = estimate_mfc("mmfreelm-370m", "u250", rowwise_lanes=16)
    assert rep["vpu_elements_per_cycle"] == 16
    assert rep["tokens_per_s"] >= 100 and rep["tmv_busy_fraction"] >= 0.90
    cfg = MfcConfig.from_dict(rep["mfc"])
    vl, vpu = 0, 0
    for w in shape_program(cfg, 1024, 2816, 32000, 24):
        ins = decode_word(w)
        if ins.op == Op.SETVL:
            vl = ins.a
        elif ins.op in VECTOR_OPS:
            vpu += -(-vl // 16) + 5
    assert rep["vpu_busy_cycles"] == vpu
    one = estimate_mfc("mmfreelm-370m", "u250", rowwise_lanes=1)
    assert one["tmv_busy_cycles"] == rep["tmv_busy_cycles"]    # the same matvecs
    assert one["cycles_per_token"] > rep["cycles_per_token"]


def test_cli_prints_and_exits_0(capsys):
    from tritium.cli import main

    assert main(["estimate", "--model", "mmfreelm-370m", "--platform", "ecp5-85f",
                 "--core", "mfc"]) == 0
    out = capsys.readouterr().out
    assert "tmv_busy_fraction" in out and "cycles_per_token" in out
    assert main(["estimate", "--model", "mmfreelm-370m", "--core", "mfc", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["core"] == "mfc" and rep["platform"] == "u250"


def test_cli_help_names_the_core_option(capsys):
    from tritium.cli import main

    with pytest.raises(SystemExit) as e:
        main(["estimate", "--help"])
    assert e.value.code == 0
    assert "--core" in capsys.readouterr().out


def test_bad_inputs_raise_model_error():
    with pytest.raises(M.ModelError, match="unknown model"):
        estimate_mfc("no-such-model", "u250")
    with pytest.raises(M.ModelError, match="unknown platform"):
        estimate_mfc("mmfreelm-370m", "no-such-board")
    with pytest.raises(M.ModelError, match="HGRN-bit"):
        estimate_mfc("bitnet-b1.58-2b", "u250")
    with pytest.raises(M.ModelError, match="TMV fields .rows 24 bits, cols 24 bits"):
        estimate_mfc({"model_type": "hgrn_bit", "hidden_size": 1024,
                      "num_hidden_layers": 1, "vocab_size": 32000,
                      "intermediate_size": (1 << 24) + 256}, "u250")
    # a vocabulary beyond any one command runs in chunks: 70000 rows of 2816
    rep = estimate_mfc({"model_type": "hgrn_bit", "hidden_size": 1024,
                        "num_hidden_layers": 1, "vocab_size": 70000,
                        "intermediate_size": 2816}, "u250")
    assert [m["rows"] for m in rep["matvecs"][6:]] == [5632] * 12 + [70000 - 12 * 5632]
    # a given core that cannot hold the shape is refused, naming what to raise
    with pytest.raises(M.ModelError, match="vmem_depth"):
        estimate_mfc("mmfreelm-370m", "u250", cfg=MfcConfig(tmv=TernaryConfig(
            simd=16, pe=4, max_in=2816, max_out=5632, weight_depth=1 << 24, has_t3=0)))
