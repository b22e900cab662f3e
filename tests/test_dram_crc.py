"""The CRC command's word path on the served Verilator model, for every DRAM part: the
ideal part at its own 32-bit beat and at a 1024-bit ``ideal_port_bits``, LiteDRAM's
ULX3S SDR model (16-bit beats) and its Arty DDR3 model (128-bit beats). Every range (a
byte, odd offsets, partial head and tail beats, a row crossed, the DRAM's last byte)
answers zlib's CRC of bytes the host wrote; the DRAM counters show a beat read per beat
of the range, not one per byte; the byte path (``word_crc=0``) gives the same CRCs."""

from __future__ import annotations

import random
import sys
import zlib
from pathlib import Path

import pytest

from tritium.config import SocConfig
from tritium.host import Device
from tritium.sim.serve import SimulatedDevice, with_dram

from test_tmv_dram import on_part  # the DDR3 device that test builds (one build for both)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from dram import proof_config  # noqa: E402  the bench's proof devices: one build for both


DEVICES = {
    "ideal32": with_dram(SocConfig(), "ideal", 1 << 20),   # tests/test_dram_soc.py's
    "ideal1024": proof_config("ideal"),
    "sdr": proof_config("mt48lc16m16"),
    "ddr3": on_part("mt41k128m16", 256),
}


def ranges(cfg: SocConfig) -> list[tuple[int, int]]:
    """(offset, length) in the DRAM: alignments around the beat, a row crossed, the end."""
    d = cfg.dram
    nb, size = d.word_bytes, d.size_bytes
    spec = d.spec
    row = spec.row_beats * nb if spec.kind != "ideal" else 4096
    return [(0, 1), (1, 1), (nb - 1, 1), (nb - 1, 2), (3, nb), (nb, nb), (5, 3 * nb + 7),
            (row - 3, 2 * nb + 6), (row - nb - 1, 5 * nb), (size - 1, 1), (size - nb - 3, nb + 3),
            (17, 70_001), (0, 0)]


def crcs_match(dev: Device, cfg: SocConfig, seed: int):
    """Random bytes around every range of :func:`ranges`, written over the link in order
    (later ones overwrite earlier ones where they overlap: a host-side copy follows),
    then each range's CRC from the device against zlib's of that copy."""
    base = dev.map["dram"]["base"]
    rng = random.Random(seed)
    spans = ranges(cfg)
    shadow = {}
    for off, n in spans:
        lo = max(0, off - 64)
        hi = min(cfg.dram.size_bytes, off + n + 64)
        blob = rng.randbytes(hi - lo)
        dev.write(base + lo, blob)
        shadow.update(zip(range(lo, hi), blob))
    for off, n in spans:
        want = zlib.crc32(bytes(shadow[a] for a in range(off, off + n)))
        assert dev.crc(base + off, n) == want, (off, n)


def _cost(dev: Device, n: int) -> dict:
    """DRAM bytes read and device cycles over one CRC of ``n`` bytes from the DRAM's start
    (the cycles include the request, the answer and the COUNTERS frames), and ``runs``:
    how many times the device ran it. The host resends a request whose answer is late (a
    simulator descheduled on a loaded machine), sometimes in several copies, and the
    device runs every copy it gets; the link counts the frames it wrote."""
    base = dev.map["dram"]["base"]
    before = dev.counters()
    sent = dev.link.frames_sent
    dev.crc(base, n)
    runs = dev.link.frames_sent - sent
    after = dev.counters()
    got = {k: after[k] - before[k] for k in ("dram_bytes_read", "cycles")}
    return {**got, "runs": runs}


@pytest.mark.parametrize("name", list(DEVICES))
def test_every_part_every_alignment_gives_zlib(name):
    cfg = DEVICES[name]
    with SimulatedDevice(cfg) as sd, Device(sd.url) as dev:
        crcs_match(dev, cfg, seed=cfg.dram.word_bytes)
        # within the ceiling the host waits for (an empty CRC's frames, twice for slack)
        empty, got = _cost(dev, 0), _cost(dev, 1 << 16)
        ceiling = cfg.dram.crc_cycles(1 << 16) + 2 * empty["cycles"] / empty["runs"]
        assert got["cycles"] <= got["runs"] * ceiling, got


@pytest.mark.parametrize("name", ["ideal1024", "sdr"])
def test_word_path_reads_each_beat_once(name):
    """An aligned range reads each of its beats once (plus the read-ahead's beats past
    its end), where the byte path read a beat for every byte."""
    cfg = DEVICES[name]
    n, nb = 1 << 16, cfg.dram.word_bytes
    with SimulatedDevice(cfg) as sd, Device(sd.url) as dev:
        got = _cost(dev, n)
    runs = got["runs"]
    assert runs * n <= got["dram_bytes_read"] <= runs * (n + 64 * nb), got


def test_byte_path_baseline_gives_the_same_crcs():
    """``word_crc=0`` keeps the old byte path (the bench's baseline): same answers, at
    least a cycle a byte."""
    cfg = proof_config("ideal", word_crc=0)
    with SimulatedDevice(cfg) as sd, Device(sd.url) as dev:
        crcs_match(dev, cfg, seed=5)
        assert _cost(dev, 1 << 16)["cycles"] >= 1 << 16
