"""The registry refuses what would make two engines ambiguous, and a description's
hooks fail with typed errors that say what to fix."""

from __future__ import annotations

import textwrap

import pytest

from tritium import registry
from tritium.engine import Engine, load
from tritium.errors import ConfigError


def _package(tmp_path, monkeypatch, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(registry.ENV, name)


def test_the_built_ins_come_first_and_the_first_is_the_default():
    names = registry.names()
    assert names[:3] == ("tmv", "mfc", "spgemm")
    assert [registry.get(n).kind for n in names[:3]] == ["ternary-matvec", "mfc", "spgemm"]


@pytest.mark.parametrize("mod,clash,what", [
    ("clash_name", 'name="tmv", start_id=40', "name 'tmv'"),
    ("clash_start", 'name="other", start_id=1', "START id 1")])
def test_a_second_engine_with_a_taken_name_or_start_id_is_refused(tmp_path, monkeypatch,
                                                                  mod, clash, what):
    _package(tmp_path, monkeypatch, mod, f"""\
        import dataclasses
        from typing import ClassVar
        from tritium.config import Config
        from tritium.engine import Engine

        @dataclasses.dataclass(frozen=True)
        class ClashConfig(Config):
            kind: ClassVar[str] = "{mod}"

        ENGINE = Engine({clash}, config="{mod}:ClashConfig", start_fields=(),
                        counters=(), counter_bits=8)
        """)
    with pytest.raises(ConfigError, match=f"same {what}.*give each engine its own"):
        registry.engines()


def test_a_missing_hook_or_attribute_is_a_config_error():
    bare = Engine(name="bare", config="tritium.config:SocConfig", start_id=200,
                  start_fields=(), counters=(), counter_bits=8)
    with pytest.raises(ConfigError, match="engine bare has no commands"):
        bare.hook("commands")
    with pytest.raises(ConfigError, match="has no 'NOPE'"):
        load("tritium.config:NOPE")
    with pytest.raises(ConfigError, match="cannot import 'tritium.nowhere'"):
        load("tritium.nowhere:X")


@pytest.mark.parametrize("kw,match", [({"name": "no-dash"}, "Python identifier"),
                                      ({"start_id": 256}, "1..255")])
def test_a_bad_description_is_refused(kw, match):
    base = dict(name="ok", config="x:Y", start_id=5, start_fields=(), counters=(),
                counter_bits=8)
    with pytest.raises(ConfigError, match=match):
        Engine(**{**base, **kw})


def test_counters_and_labels_come_from_the_config():
    from tritium.engines.mfc.config import MfcConfig
    from tritium.engines.spgemm.config import SOC_SPGEMM

    spg = registry.get("spgemm")
    assert {b for _, b in spg.counter_widths(SOC_SPGEMM)} == {SOC_SPGEMM.counter_bits}
    assert spg.label(SOC_SPGEMM) == (f"spgemm (pes={SOC_SPGEMM.pes} hash_bits="
                                     f"{SOC_SPGEMM.hash_bits} max_nnz={SOC_SPGEMM.max_nnz} "
                                     f"max_c_nnz={SOC_SPGEMM.max_c_nnz})")
    assert f"tmv.simd={MfcConfig().tmv.simd}" in registry.get("mfc").label(MfcConfig())


def test_verilog_components_come_from_the_descriptions():
    from tritium.hdl import COMPONENTS, components, resolve

    assert sorted(COMPONENTS) == ["mfc", "spgemm", "ternary-dot", "ternary-matvec", "tmv"]
    # the engine's own name is the component of its config class
    assert COMPONENTS["tmv"] == COMPONENTS["ternary-matvec"]
    assert resolve(COMPONENTS["tmv"][1]).__name__ == "TernaryMatVec"
    assert [resolve(COMPONENTS[n][0]).kind for n in ("ternary-dot", "mfc", "spgemm")] == \
        ["ternary-dot", "mfc", "spgemm"]
    assert components() == COMPONENTS


def test_an_engine_config_file_loads_in_a_fresh_process(tmp_path):
    # an engine config's kind parses in a fresh process whose registry has loaded nothing
    import subprocess
    import sys

    path = tmp_path / "tmv.json"
    path.write_text('{"kind": "ternary-matvec", "simd": 8, "pe": 2}')
    code = ("import sys; from tritium.config import load_config; "
            "c = load_config(sys.argv[1]); print(type(c).__name__, c.simd, c.pe)")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "TernaryConfig 8 2\n"
