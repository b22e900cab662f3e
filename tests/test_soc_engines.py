"""The SoC as a list of engines: SocConfig forms, the memory-map builder, the INFO
description, the SpGEMM word packing (no simulator)."""

import dataclasses
import json

import numpy as np
import pytest

from tritium.config import MemoryMap, SocConfig, served_soc
from tritium.engines.mfc.config import MfcConfig
from tritium.engines.spgemm.config import SOC_SPGEMM, SpgemmConfig
from tritium.engines.tmv.config import TernaryConfig
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


def test_the_default_soc_is_the_served_bare_tmv():
    t = TernaryConfig(simd=16, pe=4, max_in=1024, max_out=1024, weight_depth=4096, has_t3=0)
    assert SocConfig() == SocConfig(engines=(t,)) == served_soc("tmv")
    assert SocConfig().tmv == t
    m = MfcConfig()
    assert SocConfig(engines=(m,)).tmv == m.tmv
    s = SocConfig(engines=(SOC_SPGEMM,))
    assert s.tmv is None and s.engine_config("spgemm") == SOC_SPGEMM
    assert s.engine_config("mfc") is None
    with pytest.raises(ConfigError, match="no engine"):
        SocConfig(engines=())


#: JSON as SocConfig wrote it while the engines were fields (tmv, mfc) beside the list
OLD_TMV = {"kind": "ternary-matvec", "simd": 8, "pe": 2, "max_in": 256, "max_out": 64,
           "weight_depth": 512, "has_t3": 0}
OLD_CORE_TMV = {"kind": "ternary-matvec", "simd": 16, "pe": 4, "max_in": 1024,
                "max_out": 1024, "weight_depth": 4096, "has_t3": 0}


@pytest.mark.parametrize("old,engines", [
    ({"kind": "soc", "tmv": OLD_TMV, "mfc": None, "max_payload": 256},
     (TernaryConfig(simd=8, pe=2, max_in=256, max_out=64, weight_depth=512, has_t3=0),)),
    ({"kind": "soc", "tmv": OLD_CORE_TMV, "mfc": {"kind": "mfc", "tmv": OLD_CORE_TMV,
                                                  "sregs": 8}},
     (MfcConfig(sregs=8),)),
    ({"kind": "soc", "tmv": OLD_TMV, "mfc": None, "engines": [OLD_TMV]},
     (TernaryConfig(simd=8, pe=2, max_in=256, max_out=64, weight_depth=512, has_t3=0),)),
    ({"kind": "soc", "tmv": None, "mfc": None,
      "engines": [{"kind": "spgemm", "pes": 1, "hash_bits": 4}]},
     (SpgemmConfig(pes=1, hash_bits=4),)),
])
def test_older_json_loads_as_an_engines_list(tmp_path, old, engines):
    from tritium.config import load_config

    path = tmp_path / "soc.json"
    path.write_text(json.dumps(old))
    cfg = load_config(path)
    assert isinstance(cfg, SocConfig) and cfg.engines == engines
    assert cfg.max_payload == old.get("max_payload", 1024)
    assert "tmv" not in cfg.to_dict() and load_config(path) == SocConfig.from_json(cfg.to_json())


def test_older_json_whose_fields_and_list_disagree_is_refused():
    old = {"kind": "soc", "tmv": OLD_TMV, "engines": [OLD_CORE_TMV]}
    with pytest.raises(ConfigError, match="different engine configs"):
        SocConfig.from_dict(old)
    with pytest.raises(ConfigError, match="no engine"):
        SocConfig.from_dict({"kind": "soc", "tmv": None, "mfc": None})


def test_an_engines_list_keeps_a_tmv_that_is_not_the_default():
    from tritium.boards import get_board

    small = TernaryConfig(simd=8, pe=1, max_in=256, max_out=256, weight_depth=512, has_t3=0)
    cfg = SocConfig(engines=(small,))
    assert cfg.engines == (small,) and cfg.tmv == small
    assert SocConfig.from_json(cfg.to_json()) == cfg
    # a board's SoC is built from its own TMV, and replacing the tmv field still replaces it
    board = get_board("icebreaker")
    assert board.default_config().engines == (board.engine,)
    deeper = dataclasses.replace(board.engine, weight_depth=1024)
    assert board.default_config().replace_engine(deeper).engines == (deeper,)


@pytest.mark.parametrize("cfg", [SocConfig(), SocConfig(engines=(MfcConfig(),)),
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
    assert SocConfig(engines=(MfcConfig(),)).address_map() == {
        "weights": {"base": 0, "size": 65536, "access": "w"},
        # 16 bytes per instruction since the 128-bit word (engines/mfc/config.py)
        "program": {"base": 65536, "size": 16384, "access": "w"},
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
    assert cfg.engine_config("spgemm") == SOC_SPGEMM and cfg.clock_hz == board.clock_hz
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


def test_replace_engine_replaces_the_engine_of_that_kind():
    cfg = SocConfig()
    wide = dataclasses.replace(cfg.tmv, simd=32)
    assert cfg.replace_engine(wide).engines == (wide,)
    two = SocConfig(engines=(cfg.tmv, SOC_SPGEMM))
    small = dataclasses.replace(SOC_SPGEMM, hash_bits=4)
    assert two.replace_engine(small).engines == (cfg.tmv, small)
    core = SocConfig(engines=(MfcConfig(),))
    assert core.replace_engine(MfcConfig(sregs=8)).engines == (MfcConfig(sregs=8),)
    with pytest.raises(ConfigError, match="no ternary-matvec engine to replace"):
        core.replace_engine(wide)
