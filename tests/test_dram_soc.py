"""The SoC's memory subsystem on the served Verilator model with the ideal DRAM part:
the dram region over the link (write combining, read-ahead), the CRC command, the DRAM
counters, Device.load_dram over the link and through the backdoor, and its bad input."""

from __future__ import annotations

import os
import random
import threading
import zlib

import pytest

from tritium import protocol as P
from tritium.config import MemoryMap, SocConfig
from tritium.dram import DramConfig
from tritium.errors import ConfigError, DeviceError
from tritium.hdl.soc import counter_names
from tritium.host import Device
from tritium.host.device import LinkError
from tritium.errors import DeviceConfigError
from tritium.sim.serve import DRAM_MAX_PAYLOAD, SimulatedDevice, served_top, with_dram

DRAM_BYTES = 1 << 20
CFG = with_dram(SocConfig(), "ideal", DRAM_BYTES)


@pytest.fixture(scope="module")
def served():
    with SimulatedDevice(CFG) as sd:
        yield sd


@pytest.fixture
def dev(served):
    with Device(served.url) as d:
        yield d


def test_config_map_and_counters():
    amap = CFG.address_map()
    r = amap["dram"]
    assert r["size"] == DRAM_BYTES and r["access"] == "rw"
    assert r["base"] % DRAM_BYTES == 0
    for name, other in amap.items():  # no on-chip region overlaps it
        if name != "dram":
            assert other["base"] + other["size"] <= r["base"] or other["base"] >= \
                r["base"] + r["size"]
    assert CFG.max_payload == DRAM_MAX_PAYLOAD
    names = counter_names(CFG)
    assert names[-len(P.LINK_COUNTERS) - len(P.DRAM_COUNTERS):-len(P.LINK_COUNTERS)] == \
        P.DRAM_COUNTERS
    # without DRAM: no region, no counters, no controller in the served top
    plain = SocConfig()
    assert "dram" not in plain.address_map()
    assert not set(P.DRAM_COUNTERS) & set(counter_names(plain))
    design, sources, backdoor = served_top(plain)
    assert sources == () and backdoor is None and "ideal_store" not in design.verilog
    # a JSON round trip keeps the DRAM
    assert SocConfig.from_json(CFG.to_json()) == CFG
    with pytest.raises(ConfigError, match="unknown DRAM part"):
        with_dram(SocConfig(), "nosuchpart")
    with pytest.raises(ConfigError, match="power of two"):
        SocConfig(dram=DramConfig(size=3 << 10))
    # the ideal part grows past its 64 MB default up to IDEAL_SIZE_MAX (released model
    # shapes in simulation); a real part stops at its own size
    assert DramConfig(size=1 << 28).size_bytes == 1 << 28 and DramConfig().size_bytes == 1 << 26
    with pytest.raises(ConfigError, match=str(1 << 30)):
        DramConfig(size=1 << 31)
    with pytest.raises(ConfigError, match=str(1 << 25)):
        DramConfig(part="mt48lc16m16", size=1 << 26)
    # an overlap with an on-chip region is the map's error
    mm = MemoryMap()
    mm.add("weights", 4096, "w")
    with pytest.raises(ConfigError, match="overlaps"):
        mm.add("dram", DRAM_BYTES, "rw", base=0)


def test_write_read_unaligned_and_counters(dev):
    base = dev.map["dram"]["base"]
    rng = random.Random(1)
    before = dev.counters()
    spans = [(3, 5), (1001, 40000), (DRAM_BYTES - 7, 7)]
    data = {off: bytes(rng.getrandbits(8) for _ in range(n)) for off, n in spans}
    for off, blob in data.items():
        dev.write(base + off, blob)
    for off, blob in data.items():
        assert dev.read(base + off, len(blob)) == blob
    # a byte rewritten inside a beat others share: the neighbours keep their values
    dev.write(base + 1002, b"\xAA")
    want = data[1001][:1] + b"\xAA" + data[1001][2:8]
    assert dev.read(base + 1001, 8) == want
    after = dev.counters()
    written = after["dram_bytes_written"] - before["dram_bytes_written"]
    assert written == sum(n for _, n in spans) + 1  # byte masks: exactly the bytes sent
    read = after["dram_bytes_read"] - before["dram_bytes_read"]
    word = CFG.dram.word_bytes
    assert read >= sum(n for _, n in spans) + 8
    assert after["dram_busy_cycles"] > before["dram_busy_cycles"]
    assert read % word == 0


def test_crc_command(dev):
    base = dev.map["dram"]["base"]
    blob = os.urandom(70001)
    dev.write(base + 12345, blob)
    assert dev.crc(base + 12345, len(blob)) == zlib.crc32(blob)
    assert dev.crc(base + 12345 + 1, 100) == zlib.crc32(blob[1:101])
    assert dev.crc(base, 0) == zlib.crc32(b"")
    # an on-chip readable region through the same command
    act = dev.map["activations"]
    dev.write(act["base"], bytes(range(64)))
    assert dev.crc(act["base"], 64) == zlib.crc32(bytes(range(64)))
    with pytest.raises(DeviceError, match="address out of range"):
        dev.crc(base + DRAM_BYTES - 4, 8)         # past the DRAM's end
    with pytest.raises(DeviceError, match="address out of range"):
        dev.crc(dev.map["weights"]["base"], 16)   # a write-only region
    with pytest.raises(DeviceError, match="bad length"):
        dev.link.request(P.CRC, b"\x00" * 7)


def test_load_dram_link_and_fast(served, dev):
    rng = random.Random(7)
    images = {0: bytes(rng.getrandbits(8) for _ in range(50_000)),
              300_001: bytes(rng.getrandbits(8) for _ in range(20_000))}
    rep = dev.load_dram(images, chunk=1 << 15)
    assert rep.bytes_sent == 70_000 and not rep.fast and rep.mb_per_s > 0
    base = dev.map["dram"]["base"]
    assert dev.read(base + 300_001, 100) == images[300_001][:100]
    big = os.urandom(DRAM_BYTES // 2)
    rep = dev.load_dram({DRAM_BYTES // 2: big}, fast=served.backdoor_url)
    assert rep.fast and rep.crcs and rep.bytes_sent == len(big)
    assert dev.read(base + DRAM_BYTES - 16, 16) == big[-16:]
    assert dev.crc(base + DRAM_BYTES // 2, len(big)) == zlib.crc32(big)


def test_load_dram_bad_input_writes_nothing(served, dev):
    base = dev.map["dram"]["base"]
    dev.write(base, b"\x11" * 16)
    before = dev.counters()["dram_bytes_written"]
    with pytest.raises(DeviceConfigError, match="does not fit"):
        dev.load_dram({0: b"\x00" * (DRAM_BYTES + 1)})
    with pytest.raises(DeviceConfigError, match="does not fit"):
        dev.load_dram({0: b"ok", DRAM_BYTES - 2: b"abc"})
    with pytest.raises(DeviceConfigError, match="overlap"):
        dev.load_dram({0: b"\x00" * 100, 99: b"\x00"})
    with pytest.raises(DeviceConfigError, match="overlap"):
        dev.load_dram({0: b"\x00" * 100, 50: b"\x00"}, fast=served.backdoor_url)
    assert dev.counters()["dram_bytes_written"] == before
    assert dev.read(base, 16) == b"\x11" * 16


def test_load_dram_refused_without_dram():
    from tritium.sim.serve import SimulatedDevice as Sim

    with Sim(SocConfig()) as sd, Device(sd.url) as d:
        with pytest.raises(DeviceConfigError, match="no DRAM"):
            d.load_dram({0: b"x"})


def test_device_lost_mid_load_then_rerun():
    image = os.urandom(400_000)
    sd = SimulatedDevice(CFG).start()
    try:
        with Device(sd.url) as d:
            seen = []

            def progress_kill():  # the device dies once some frames went through
                while not seen and sd.proc.poll() is None:
                    threading.Event().wait(0.01)
                sd.kill()

            killer = threading.Thread(target=progress_kill)
            killer.start()
            orig = d.write

            def write(addr, data, progress=None, **kw):
                def tick(n):
                    seen.append(n)
                    if progress:
                        progress(n)
                return orig(addr, data, tick, **kw)

            d.write = write
            with pytest.raises(LinkError, match="went away|no answer"):
                d.load_dram({0: image})
            killer.join()
    finally:
        sd.stop()
    with SimulatedDevice(CFG) as sd2, Device(sd2.url) as d2:
        rep = d2.load_dram({0: image})
        assert rep.bytes_sent == len(image)


def test_cli_serve_refuses_a_bad_part_in_one_line():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "tritium.cli", "serve", "--dram", "nosuchpart"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown DRAM part" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
