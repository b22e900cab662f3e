"""The bare TMV reading its weights from DRAM on the served SoC (ideal part): golden
equality, the DRAM counters, sustained bandwidth against the port's peak, the cycle
model (exact for the ideal part), and the link's DRAM traffic beside a running matvec."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

from tritium.config import SocConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.dram import DramConfig
from tritium.engines.tmv.golden import ternary_matvec, tmv_lines
from tritium.engines.tmv.model import dram_matvec_cycles
from tritium.errors import ConfigError, DeviceError
from tritium.host import Device
from tritium.sim.serve import DRAM_MAX_PAYLOAD, SimulatedDevice

N = 1024
DRAM = DramConfig(size=1 << 20)
TMV = TernaryConfig(simd=16, pe=4, max_in=N, max_out=N, weight_depth=DRAM.size_bytes // 16,
                    has_t3=0, weights_dram=1, mem_latency=16)
CFG = SocConfig(engines=(TMV,), dram=DRAM, max_payload=DRAM_MAX_PAYLOAD)


def image_of(codes, t=TMV) -> bytes:
    lb = t.line_bits // 8
    return b"".join(v.to_bytes(lb, "little") + bytes(t.line_stride - lb)
                    for v in tmv_lines(t, codes, "t2"))


def on_part(part: str, n: int) -> SocConfig:
    """A bare DRAM-weight TMV for ``n`` x ``n`` on 1 MB of ``part``."""
    dram = DramConfig(part=part, size=1 << 20)
    t = TernaryConfig(simd=16, pe=4, max_in=n, max_out=n, weight_depth=dram.size_bytes // 16,
                      has_t3=0, weights_dram=1, mem_latency=32)
    return SocConfig(engines=(t,), dram=dram, max_payload=DRAM_MAX_PAYLOAD)


@pytest.fixture(scope="module")
def served():
    with SimulatedDevice(CFG) as sd:
        yield sd


def run(dev, rows, cols, base, x):
    dev.write(dev.map["activations"]["base"], np.asarray(x, dtype=np.int8).tobytes())
    before = dev.counters()
    dev.run_tmv(rows, cols, base, "t2")
    after = dev.counters()
    y = np.frombuffer(dev.read(dev.map["results"]["base"], 4 * rows), dtype="<i4")
    return y.astype(np.int64).tolist(), {k: after[k] - before[k] for k in after}


def check_from(sd, dev, cfg, line, image, x, golden):
    """Backdoor-load ``image`` at weight line ``line``, run the square matvec from there:
    the golden, every weight byte read once, >= 85 % of the port's peak over the busy
    cycles, the cycle model within 2 % of them."""
    t, dram = cfg.engines[0], cfg.dram
    n = len(x)
    dev.load_dram({line * t.line_stride: image}, fast=sd.backdoor_url)
    y, d = run(dev, n, n, line, x)
    assert y == golden
    assert d["dram_bytes_read"] == len(image)
    assert d["dram_bytes_read"] / d["tmv_busy_cycles"] / dram.word_bytes >= 0.85
    model = dram_matvec_cycles(t, dram, n, n, line)
    assert model["bytes"] == len(image)
    assert abs(model["cycles"] - d["tmv_busy_cycles"]) <= 0.02 * d["tmv_busy_cycles"]


def test_config_checks():
    assert "weights" not in CFG.address_map()
    with pytest.raises(ConfigError, match="needs a DRAM"):
        SocConfig(engines=(TMV,))
    with pytest.raises(ConfigError, match="must fit"):
        SocConfig(engines=(TMV,), dram=DramConfig(size=1 << 16))
    with pytest.raises(ConfigError, match="mem_bytes_per_cycle"):
        TernaryConfig(weights_dram=1, mem_bytes_per_cycle=4)


def test_1024_matvec_from_dram_golden_counters_model(served):
    rng = np.random.default_rng(5)
    codes = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(N, N))
    x = rng.integers(-128, 128, N)
    base = 4096  # lines: the image sits 64 KB into the DRAM
    image = image_of(codes)
    with Device(served.url) as dev:
        rep = dev.load_dram({base * TMV.line_stride: image}, fast=served.backdoor_url)
        assert rep.fast and rep.bytes_sent == len(image) == 256 * 1024
        y, d = run(dev, N, N, base, x)
    assert y == ternary_matvec(TMV, codes, x)[0]
    model = dram_matvec_cycles(TMV, DRAM, N, N, base)
    assert d["dram_bytes_read"] == model["bytes"] == len(image)
    assert d["dram_bytes_written"] == 0
    assert d["tmv_busy_cycles"] == model["cycles"]          # exact for the ideal part
    assert d["tmv_mac_slots"] == TMV.words(N, N) * TMV.word_codes
    # sustained bandwidth: bytes per busy cycle of the port against its peak (a beat a
    # cycle); the matvec is DRAM-bound (4 beats a word), so this is the engine's rate too
    peak = DRAM.word_bytes
    sustained = d["dram_bytes_read"] / d["dram_busy_cycles"]
    assert sustained / peak >= 0.99
    assert d["dram_stall_cycles"] == 0


def test_small_shapes_and_refusal(served):
    rng = np.random.default_rng(9)
    with Device(served.url) as dev:
        for rows, cols in ((1, 1), (5, 17), (64, 100)):
            codes = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(rows, cols))
            x = rng.integers(-128, 128, cols)
            dev.load_dram({0: image_of(codes)})  # over the link
            y, d = run(dev, rows, cols, 0, x)
            assert y == ternary_matvec(TMV, codes, x)[0]
            assert d["tmv_busy_cycles"] == dram_matvec_cycles(TMV, DRAM, rows, cols)["cycles"]
        with pytest.raises(DeviceError, match="argument out of range"):
            dev.start("tmv", rows=N, cols=N, base=TMV.weight_depth - 1, fmt=0)


def test_link_traffic_beside_a_running_matvec(served):
    """The arbiter shares the port: the host writes and reads another DRAM range while
    the engine streams its weights; both are right."""
    rng = np.random.default_rng(11)
    codes = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(N, N))
    x = rng.integers(-128, 128, N)
    blob = os.urandom(4000)
    far = 800 * 1024
    with Device(served.url) as dev:
        dev.load_dram({0: image_of(codes)}, fast=served.backdoor_url)
        dram = dev.map["dram"]["base"]
        dev.write(dev.map["activations"]["base"], x.astype(np.int8).tobytes())
        before = dev.counters()
        dev.start("tmv", rows=N, cols=N, base=0, fmt=0)
        dev.write(dram + far, blob)
        mid = dev.status()
        assert dev.read(dram + far, len(blob)) == blob
        assert dev.crc(dram + far, len(blob)) == zlib.crc32(blob)
        dev.wait("matvec")
        after = dev.counters()
        y = np.frombuffer(dev.read(dev.map["results"]["base"], 4 * N), dtype="<i4")
    assert y.astype(np.int64).tolist() == ternary_matvec(TMV, codes, x)[0]
    busy = after["tmv_busy_cycles"] - before["tmv_busy_cycles"]
    assert mid["flags"] & 1, "the writes were meant to overlap the matvec"
    # sharing costs the engine cycles (stalls), never data
    assert busy > dram_matvec_cycles(TMV, DRAM, N, N)["cycles"]
    assert after["dram_stall_cycles"] > before["dram_stall_cycles"]
    assert after["dram_bytes_written"] - before["dram_bytes_written"] == len(blob)


def test_checkpoint_load_into_dram_and_every_bitlinear(served, h64_checkpoint):
    """Device.load of a real safetensors checkpoint onto a DRAM-weight TMV (the backdoor,
    then over the link), every BitLinear against the reference's integer matvec; attach
    proves a second process's view with the CRC command."""
    from tritium.golden.checkpoint import load_checkpoint
    from tritium.golden.hgrn import HGRNBitForCausalLM

    desc = load_checkpoint(h64_checkpoint(3))
    trace = HGRNBitForCausalLM(desc).trace_integer_matvecs([5, 6, 7])
    with Device(served.url) as dev:
        rep = dev.load(desc, fast=served.backdoor_url)
        assert rep.verified and rep.bytes_sent == \
            sum(p.lines for p in rep.layers.values()) * TMV.line_stride
        rep = dev.load(desc)  # over the link: the same bytes, the same proof
        for name, x, acc in trace:
            y, delta = dev.matvec(name, x)
            assert y.tolist() == acc.tolist(), name
            p = dev.placements[name]
            assert delta["tmv_busy_cycles"] == dram_matvec_cycles(TMV, DRAM, p.rows, p.cols,
                                                                  p.base)["cycles"]
    with Device(served.url) as other:
        assert set(other.attach(desc)) == set(rep.layers)
        other.write(other.map["dram"]["base"], b"\x00" * 16)  # clobber line 0
        with pytest.raises(DeviceError, match="not this checkpoint"):
            other.attach(desc)


def test_matvec_from_the_ulx3s_sdram_model():
    """The same engine on LiteDRAM's controller and SDR PHY model of the ULX3S part
    (16-bit beats, 8 a line): the link's reads, writes and CRC, the backdoor load, a
    1024 x 1024 matvec's golden, the sustained share of the port's peak (the issue asks
    >= 85 %), and the cycle model (refresh, row openings, the controller's pipeline)
    within 2 % of the RTL's busy cycles, from two bases (a row boundary and not)."""
    n = 1024
    cfg = on_part("mt48lc16m16", n)
    t = cfg.engines[0]
    rng = np.random.default_rng(2)
    codes = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(n, n))
    x = rng.integers(-128, 128, n)
    blob = os.urandom(5000)
    image = image_of(codes, t)
    golden = ternary_matvec(t, codes, x)[0]
    with SimulatedDevice(cfg) as sd, Device(sd.url) as dev:
        base = dev.map["dram"]["base"]
        dev.write(base + 7, blob)
        assert dev.read(base + 7, len(blob)) == blob
        assert dev.crc(base + 7, len(blob)) == zlib.crc32(blob)
        for line in (0, 1001):
            check_from(sd, dev, cfg, line, image, x, golden)


def test_matvec_from_the_arty_ddr3_model():
    """The engine on LiteDRAM's DDR3 controller and PHY model of the Arty part (128-bit
    beats at 1:4: a beat is a line, so the weight port has no beat counter): the golden
    from two bases, at least 85 % of the port's peak, the cycle model within 2 %."""
    n = 256
    cfg = on_part("mt41k128m16", n)
    t, dram = cfg.engines[0], cfg.dram
    assert t.line_stride == dram.word_bytes
    rng = np.random.default_rng(3)
    codes = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(n, n))
    x = rng.integers(-128, 128, n)
    image = image_of(codes, t)
    golden = ternary_matvec(t, codes, x)[0]
    with SimulatedDevice(cfg) as sd, Device(sd.url) as dev:
        for line in (0, 4096):
            check_from(sd, dev, cfg, line, image, x, golden)


def reset_mid_matvec(sd, dev, cfg, line, codes, x, *, exact: bool):
    """Start a square matvec from weight line ``line``, RESET while it streams, then: the
    device answers STATUS (idle, no result), the counters restart, the weight image in
    DRAM is intact (the CRC command), and the same matvec run again equals the golden
    and reads every weight byte exactly once (no stale or lost word from the burst that
    was in flight), in the model's cycles (``exact``: to the cycle; else within 2 %)."""
    from tritium import protocol as P

    t, dram = cfg.engines[0], cfg.dram
    n = len(x)
    image = image_of(codes, t)
    at = line * t.line_stride
    dev.load_dram({at: image}, fast=sd.backdoor_url)
    dev.write(dev.map["activations"]["base"], np.asarray(x, dtype=np.int8).tobytes())
    before = dev.counters()
    dev.start("tmv", rows=n, cols=n, base=line, fmt=0)
    mid = dev.counters()
    assert dev.status()["flags"] & P.STATUS_BUSY, "the RESET was meant to land mid-run"
    assert 0 < mid["dram_bytes_read"] - before["dram_bytes_read"] < len(image)
    dev.reset()
    st = dev.status()
    assert st["flags"] == 0 and st["result_beats"] == 0
    after = dev.counters()
    assert all(after[k] == 0 for k in after if k.startswith("tmv_")), after
    assert after["dram_bytes_written"] == 0
    # what the controller still returned after the RESET (dropped by the weight port):
    # at most the lines the port had in flight
    assert after["dram_bytes_read"] <= (t.fifo_depth + 1) * t.line_stride
    assert after["cycles"] < mid["cycles"]
    assert dev.crc(dev.map["dram"]["base"] + at, len(image)) == zlib.crc32(image)
    y, d = run(dev, n, n, line, x)
    assert y == ternary_matvec(t, codes, x)[0]
    assert d["dram_bytes_read"] == len(image)
    assert d["tmv_mac_slots"] == t.words(n, n) * t.word_codes
    model = dram_matvec_cycles(t, dram, n, n, line)["cycles"]
    if exact:
        assert d["tmv_busy_cycles"] == model
    else:
        assert abs(model - d["tmv_busy_cycles"]) <= 0.02 * d["tmv_busy_cycles"]


def test_reset_during_a_dram_matvec():
    """RESET while the engine streams its weights from the ideal part: the device
    recovers as :func:`reset_mid_matvec` checks, twice on one device (two bases, a
    fresh load and CRC proof before each)."""
    with SimulatedDevice(CFG) as sd, Device(sd.url) as dev:
        for line, seed in ((0, 17), (777, 18)):
            rng = np.random.default_rng(seed)
            codes = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(N, N))
            x = rng.integers(-128, 128, N)
            reset_mid_matvec(sd, dev, CFG, line, codes, x, exact=True)


def test_reset_during_a_matvec_from_the_ulx3s_sdram_model():
    """The same on LiteDRAM's SDR controller of the ULX3S part: its read bursts are still
    coming back when the RESET lands, and the weight port drops them. Three sequences on
    one device (load, CRC proof, matvec, RESET, CRC, matvec): the device keeps answering
    through all of them."""
    n = 1024
    cfg = on_part("mt48lc16m16", n)
    with SimulatedDevice(cfg) as sd, Device(sd.url) as dev:
        for line, seed in ((0, 19), (1001, 20), (0, 21)):
            rng = np.random.default_rng(seed)
            codes = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(n, n))
            x = rng.integers(-128, 128, n)
            reset_mid_matvec(sd, dev, cfg, line, codes, x, exact=False)


@pytest.mark.verilator
def test_the_engine_alone_on_a_slow_variable_memory():
    """The DRAM-weight engine built alone, its weight port at the top level and the
    cocotb bench as the memory behind it: each request answered 1 to 60 cycles later
    (beyond what the weight FIFO covers, so the engine waits), 40 % of the requests
    refused at first; back-to-back commands in both formats, one reusing the vector,
    under activation and result stalls: every result is the golden's."""
    from tritium.engines.tmv.runner import run_tmv_commands

    t = TernaryConfig(simd=4, pe=2, max_in=40, max_out=12, weight_depth=256,
                      weights_dram=1, mem_latency=3)
    rng = np.random.default_rng(23)
    shapes = [((7, 13), "t2", True), ((12, 40), "t3", True), ((12, 40), "t2", False),
              ((1, 1), "t3", True)]
    jobs, golden, x = [], [], None
    for (rows, cols), fmt, fresh in shapes:
        codes = rng.integers(0, 3, (rows, cols))
        if fresh:
            x = rng.integers(-128, 128, cols)
        jobs.append((codes, x if fresh else None, fmt))
        golden.append(ternary_matvec(t, codes, x)[0])
    out = run_tmv_commands(t, jobs, mem_ready_prob=0.6, mem_latency=(1, 60),
                           ready_prob=0.7, valid_prob=0.8)
    assert out["y"] == golden
    assert out["error"] == 0
    unstalled = sum(t.stall_memory_cycles(*c.shape, f) for c, _, f in jobs)
    assert out["counters"]["stall_memory"] > unstalled
