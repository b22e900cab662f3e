"""The SoC as a list of engines: SocConfig forms, the memory-map builder, the INFO
description, the SpGEMM word packing (no simulator)."""

import dataclasses
import json

import numpy as np
import pytest

from tritium.config import SOC_SPGEMM, MemoryMap, MfcConfig, SocConfig, SpgemmConfig, served_soc
from tritium.errors import ConfigError
from tritium.hdl.soc import counter_names, info_bytes
from tritium import protocol as P
from tritium.engines.spgemm.driver import pack_words, unpack_words


def test_memory_map_places_aligned_regions_in_order():
    mm = MemoryMap()
    assert mm.add("a", 100, "w") == 0          # span 128
    assert mm.add("b", 1000, "rw") == 1024     # span 1024, aligned up from 128
    assert mm.add("c", 8, "r") == 2048
    assert mm.add("d", 16, "r", base=4096) == 4096
    assert mm.regions()["b"] == {"base": 1024, "size": 1000, "access": "rw"}


@pytest.mark.parametrize("args,match", [
    (("a", 64, "w", 32), "not aligned"),
    (("a", 64, "w", 0), "overlaps 'x'"),
    (("x", 8, "w"), "defined twice"),
    (("a", 0, "w"), "size >= 1"),
    (("a", 8, "x"), "access"),
    (("a", (1 << 31) + 1, "w"), "past the 32-bit bus"),
])
def test_memory_map_refuses_bad_regions(args, match):
    mm = MemoryMap()
    mm.add("x", 16, "rw")
    with pytest.raises(ConfigError, match=match):
        mm.add(*args)


def test_older_form_and_engines_form_are_the_same_device():
    t = SocConfig().tmv
    assert SocConfig() == SocConfig(engines=(t,))
    m = MfcConfig()
    assert SocConfig(mfc=m) == SocConfig(engines=(m,))
    assert SocConfig(mfc=m).tmv == m.tmv and SocConfig(mfc=m).engine == "mfc"
    s = SocConfig(engines=(SOC_SPGEMM,))
    assert s.tmv is None and s.mfc is None and s.spgemm == SOC_SPGEMM and s.engine == "none"


def test_an_engines_list_keeps_a_tmv_that_is_not_the_default():
    from tritium.boards import get_board
    from tritium.config import TernaryConfig

    small = TernaryConfig(simd=8, pe=1, max_in=256, max_out=256, weight_depth=512, has_t3=0)
    cfg = SocConfig(engines=(small,))
    assert cfg.engines == (small,) and cfg.tmv == small
    assert SocConfig.from_json(cfg.to_json()) == cfg
    # a board's SoC is built from its own TMV, and replacing the tmv field still replaces it
    board = get_board("icebreaker")
    assert board.default_config().engines == (board.tmv,)
    deeper = dataclasses.replace(board.tmv, weight_depth=1024)
    assert dataclasses.replace(board.default_config(), tmv=deeper).engines == (deeper,)


@pytest.mark.parametrize("cfg", [SocConfig(), SocConfig(mfc=MfcConfig()),
                                 served_soc("spgemm"),
                                 SocConfig(engines=(SocConfig().tmv, SOC_SPGEMM))])
def test_json_round_trip(cfg):
    assert SocConfig.from_json(cfg.to_json()) == cfg


def test_unchanged_maps_of_the_older_devices():
    # the TMV and token-core maps as the device reported them before engines were a list
    assert SocConfig().address_map() == {
        "weights": {"base": 0, "size": 65536, "access": "w"},
        "activations": {"base": 65536, "size": 1024, "access": "rw"},
        "results": {"base": 69632, "size": 4096, "access": "r"}}
    assert SocConfig(mfc=MfcConfig()).address_map() == {
        "weights": {"base": 0, "size": 65536, "access": "w"},
        "program": {"base": 65536, "size": 8192, "access": "w"},
        "vmem": {"base": 81920, "size": 16384, "access": "rw"},
        "sregs": {"base": 98304, "size": 128, "access": "r"}}


def test_spgemm_regions():
    amap = served_soc("spgemm").address_map()
    # max_dim 1024, max_nnz 4096, pes 1, max_c_nnz 8192: ptr 13 bits -> extents 26 bits
    # (4 bytes), entries 10 + 32 bits (6 bytes, stride 8), C pointers 14 bits (4 bytes),
    # one C bank of 8192 entries
    assert {k: (v["size"], v["access"]) for k, v in amap.items()} == {
        "a_ext": (4096, "w"), "a_ent": (32768, "w"), "b_ext": (4096, "w"),
        "b_ent": (32768, "w"), "c_ext": (4096, "r"), "c_ent": (8192 * 8, "r")}


@pytest.mark.parametrize("engines,match", [
    ((MfcConfig(), SocConfig().tmv), "not both"),
    ((SOC_SPGEMM, SOC_SPGEMM), "at most one"),
    ((SpgemmConfig(), "tmv"), "at most one"),
])
def test_bad_engine_lists(engines, match):
    with pytest.raises(ConfigError, match=match):
        SocConfig(engines=engines)


def test_info_describes_every_engine():
    cfg = SocConfig(engines=(SocConfig().tmv, SOC_SPGEMM))
    info = json.loads(info_bytes(cfg))
    assert info["map"] == cfg.address_map()
    assert info["engines"]["tmv"]["start"] == 1 and info["engines"]["spgemm"]["start"] == 3
    assert info["engines"]["tmv"]["fields"] == [["rows", 4], ["cols", 4], ["base", 4],
                                                ["fmt", 1]]
    assert ["tmv_busy_cycles", 48] in info["engines"]["tmv"]["counters"]
    names = counter_names(cfg)
    assert names[0] == "tmv_busy_cycles" and "spgemm_merges" in names
    assert names[-len(P.LINK_COUNTERS):] == P.LINK_COUNTERS
    assert SocConfig.from_dict(info["config"]) == cfg


def test_pack_words_bytes():
    cfg = SpgemmConfig(max_dim=16, max_nnz=8, value_bits=8, frac_bits=4)
    # index 4 bits, value 8 bits: {col 3, value -2} = 0x3 | 0xFE << 4 = 0xFE3, stride 2
    assert cfg.word_stride("ent") == 2
    assert pack_words(cfg, "ent", {"col": [3, 15], "value": [-2, 127]}) == \
        bytes([0xE3, 0x0F, 0xFF, 0x07])
    got = unpack_words(cfg, "ent", bytes([0xE3, 0x0F, 0xFF, 0x07]))
    assert got["col"].tolist() == [3, 15] and got["value"].tolist() == [-2, 127]
    # ptr 4 bits: {start 1, end 9} = 0x91, one byte
    assert pack_words(cfg, "ext", {"start": np.array([1]), "end": np.array([9])}) == b"\x91"


def test_board_verilog_with_the_spgemm_engine(tmp_path):
    import subprocess
    import sys

    from tritium.boards import get_board

    board = get_board("ulx3s-85f")
    cfg = board.default_config("spgemm")
    assert cfg.spgemm == SOC_SPGEMM and cfg.clock_hz == board.clock_hz
    r = subprocess.run([sys.executable, "-m", "tritium.cli", "build", "--board", "ulx3s-85f",
                        "--engine", "spgemm", "--verilog-only", "-o", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    v = (tmp_path / "tritium_ulx3s_85f.v").read_text()
    assert "module \\tritium_ulx3s_85f.soc.spgemm " in v and ".soc.tmv " not in v
    (tmp_path / "soc.json").write_text(cfg.to_json())
    r = subprocess.run([sys.executable, "-m", "tritium.cli", "build", "--board", "ulx3s-85f",
                        "--engine", "spgemm", "--config", str(tmp_path / "soc.json"),
                        "--verilog-only"], capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "not both" in r.stderr


def test_replacing_tmv_or_mfc_replaces_that_engine():
    import dataclasses

    cfg = SocConfig()
    wide = dataclasses.replace(cfg.tmv, simd=32)
    assert dataclasses.replace(cfg, tmv=wide).engines == (wide,)
    core = SocConfig(mfc=MfcConfig())
    small = MfcConfig(sregs=8)
    assert dataclasses.replace(core, mfc=small).engines == (small,)
    with pytest.raises(ConfigError, match="beside a token core"):
        dataclasses.replace(core, tmv=wide)
