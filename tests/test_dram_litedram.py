"""LiteDRAM's simulated controller alone under Verilator (tritium.sim.dram_rtl's C++
driver): data through the port and the backdoor, the measured controller constants, and
the timing model against the RTL's cycles on long sequential streams."""

from __future__ import annotations

import numpy as np
import pytest

from tritium.dram import DramConfig
from tritium.sim import dram as model
from tritium.sim.dram_rtl import BUILD_ARGS, Harness, measure_overheads

pytestmark = [pytest.mark.verilator, pytest.mark.slow]

#: big enough for 128k-beat streams on either part, small enough to build and start fast
CFGS = [DramConfig(part="mt48lc16m16", size=1 << 20), DramConfig(part="mt41k128m16", size=1 << 21)]
IDS = [c.part for c in CFGS]


@pytest.fixture(scope="module", params=CFGS, ids=IDS)
def rtl(request):
    with Harness(request.param) as h:
        yield h


def words(cfg, n, seed):
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (n, cfg.word_bytes), dtype=np.uint8)
    return [int.from_bytes(bytes(r), "little") for r in raw]


def test_a_random_pattern_reads_back(rtl):
    cfg = rtl.cfg
    beats = cfg.size_bytes // cfg.word_bytes
    # across several rows and banks, starting off a row boundary
    start, n = 3 * cfg.spec.row_beats - 37, 4 * cfg.spec.row_beats + 91
    data = words(cfg, n, 1)
    rtl.write(start, data)
    assert rtl.read(start, n) == data
    # the last beat of the DRAM, and a write does not disturb its neighbours
    rtl.write(beats - 1, [data[0]])
    assert rtl.read(beats - 1, 1) == [data[0]]
    assert rtl.read(start, n) == data


def test_byte_enables_write_only_their_bytes(rtl):
    cfg = rtl.cfg
    start, n = 2 * cfg.spec.row_beats - 2, 5
    old, new = words(cfg, n, 4), words(cfg, n, 5)
    rtl.write(start, old)
    # every other byte: bytes 0, 2, 4, ... of each beat come from the new words
    mask = sum(1 << i for i in range(0, cfg.word_bytes, 2))
    rtl.write(start, new, mask=mask)
    keep = sum(0xff << (8 * i) for i in range(1, cfg.word_bytes, 2))
    assert rtl.read(start, n) == [(o & keep) | (w & ~keep) for o, w in zip(old, new)]


def test_backdoor_write_then_port_read(rtl):
    cfg = rtl.cfg
    rng = np.random.default_rng(2)
    # unaligned bytes spanning a bank boundary
    addr = cfg.spec.row_beats * cfg.word_bytes - 5
    blob = rng.integers(0, 256, 3 * cfg.word_bytes + 7, dtype=np.uint8).tobytes()
    rtl.backdoor_write(addr, blob)
    first = addr // cfg.word_bytes
    n = -(-(addr + len(blob)) // cfg.word_bytes) - first
    got = b"".join(w.to_bytes(cfg.word_bytes, "little") for w in rtl.read(first, n))
    off = addr - first * cfg.word_bytes
    assert got[off:off + len(blob)] == blob


def test_port_write_then_backdoor_read(rtl):
    cfg = rtl.cfg
    start = 5 * cfg.spec.row_beats + 3
    data = words(cfg, 2 * cfg.spec.row_beats, 3)
    rtl.write(start, data)
    expect = b"".join(w.to_bytes(cfg.word_bytes, "little") for w in data)
    assert rtl.backdoor_read(start * cfg.word_bytes, len(expect)) == expect
    assert rtl.backdoor_read(start * cfg.word_bytes + 3, 10) == expect[3:13]


def test_the_controller_constants_are_as_measured(rtl):
    got = measure_overheads(rtl.cfg)
    kind = rtl.cfg.spec.kind
    for direction, o in got.items():
        want = model.LITEDRAM_OVERHEAD[kind, direction]
        assert o.latency == want.latency
        # a refresh or an activate can land one clock either way of the median phase
        assert abs(o.refresh - want.refresh) <= 1, (direction, o)
        assert abs(o.activate - want.activate) <= 1, (direction, o)


@pytest.mark.parametrize("start,beats", [(0, 1 << 16), (12345, 1 << 16), (777, 100_000),
                                         (3, 1 << 17)])
@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_the_model_is_within_two_percent_of_the_rtl(rtl, start, beats, write):
    cycles, _ = rtl.stream(start, beats, write)
    predicted = model.stream_cycles(rtl.cfg.part, beats, start, write=write).cycles
    assert abs(predicted - cycles) / cycles < 0.02, (cycles, predicted)


def test_a_long_read_stream_sustains_most_of_the_peak(rtl):
    cycles, first = rtl.stream(0, 1 << 16)
    efficiency = (1 << 16) / cycles
    # refresh and row openings cost a few percent: more than none, far less than 15 %
    assert 0.85 <= efficiency < 0.99, efficiency
    # the first beat: the pipeline, plus at most an activate if the row was closed
    p = rtl.cfg.spec
    latency = model.LITEDRAM_OVERHEAD[p.kind, "read"].latency
    t_act = model.cycles_of(p.trcd_ns, p) + model.LITEDRAM_OVERHEAD[p.kind, "read"].activate
    assert latency <= first <= latency + t_act


def test_only_the_bank_memories_are_public():
    from tritium.hdl.dram.litedram import sim_controller

    assert "--public" not in BUILD_ARGS and "--public-flat-rw" not in BUILD_ARGS
    b = sim_controller(CFGS[0])
    b.component._MustUse__silence = True  # inspected, not elaborated
    lines = b.vlt.read_text().splitlines()
    public = [ln for ln in lines if ln.startswith("public_flat_rw")]
    assert len(public) == CFGS[0].spec.banks
    assert b.sources[-1] == b.vlt and b.sources[0].suffix == ".v"
    assert "dram_backdoor_write" in b.backdoor_cpp and "dram_backdoor_read" in b.backdoor_cpp


def test_the_generated_core_is_cached(tmp_path, monkeypatch):
    from tritium.hdl.dram.litedram import sim_core

    monkeypatch.setenv("TRITIUM_CACHE_DIR", str(tmp_path))
    first = sim_core(CFGS[0])
    stamp = first.verilog.stat().st_mtime_ns
    again = sim_core(CFGS[0])
    assert again.verilog == first.verilog and again.verilog.stat().st_mtime_ns == stamp
    assert first.verilog.is_relative_to(tmp_path / "dram")
    # another size is another core
    other = sim_core(DramConfig(part="mt48lc16m16", size=1 << 19))
    assert other.verilog != first.verilog


@pytest.mark.parametrize("ready_pct", [70, 30, 3])
def test_a_stalling_consumer_loses_no_beat(rtl, ready_pct):
    """LiteDRAM pushes a read beat whether or not the consumer is ready; the controller's
    read buffer keeps every one: a consumer ready in only ``ready_pct`` % of the cycles
    (at random) still gets every beat of a stream across rows and banks, in order. (The
    harness gives up on a transfer that stalls: a lost beat never arrives.)"""
    cfg = rtl.cfg
    start, n = cfg.spec.row_beats - 7, 3 * cfg.spec.row_beats + 50
    data = words(cfg, n, 9 + ready_pct)
    rtl.write(start, data)
    assert rtl.read(start, n, ready_pct=ready_pct) == data
    # and a ready consumer afterwards: the buffer is empty, nothing left over
    assert rtl.read(start, 5) == data[:5]
