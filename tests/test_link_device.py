"""The simulated FPGA over real TCP sockets: driver, fuzzing, noisy links, crashes."""

import json
import random
import socket
import subprocess
import sys
import time

import pytest
import serial

from tritium.config import SocConfig
from tritium.golden.hgrn import HGRNBitForCausalLM
from tritium.engines.tmv.golden import ternary_matvec
from tritium import protocol as P
from tritium.engines import tmv as TMV
from tritium.golden.checkpoint import load_checkpoint, write_checkpoint
from tritium.engines.tmv.driver import weight_image
from tritium.host.device import Device, DeviceConfigError, DeviceError, LinkError
from tritium.sim.serve import SimulatedDevice

pytestmark = pytest.mark.verilator

CFG = SocConfig()  # the demo's device: one Verilator build shared with `make demo`


@pytest.fixture(scope="module")
def sim():
    with SimulatedDevice(CFG) as s:
        yield s


@pytest.fixture(scope="module")
def ckpt(h64_checkpoint):
    return h64_checkpoint(3)


@pytest.fixture()
def dev(sim):
    with Device(sim.url) as d:
        yield d


def act_base(dev):
    return dev.map["activations"]["base"]


def test_info_reports_config_map_and_counters(dev):
    assert dev.cfg == CFG
    assert dev.map == CFG.address_map()
    assert "tmv_busy_cycles" in dev.info["counters"] and "crc_errors" in dev.info["counters"]


def test_write_read_round_trip(dev):
    data = bytes(random.Random(1).randrange(256) for _ in range(CFG.tmv.max_in))
    dev.write(act_base(dev), data)
    assert dev.read(act_base(dev), len(data)) == data
    assert dev.read(act_base(dev) + 10, 5) == data[10:15]


@pytest.mark.parametrize("cmd,payload,reason", [
    (P.WRITE, (0x11000).to_bytes(4, "little") + b"x", "address out of range"),  # results: r/o
    (P.READ, (0).to_bytes(4, "little") + (4).to_bytes(2, "little"), "address out of range"),
    (P.READ, (0x10000).to_bytes(4, "little") + (5000).to_bytes(2, "little"), "bad length"),
    (0x42, b"", "unknown command"),
    (P.START, bytes([TMV.START_ID]) + P.pack_fields(
        TMV.START_FIELDS, {"rows": 5000, "cols": 64, "base": 0, "fmt": 0}), "argument"),
    (P.START, bytes([TMV.START_ID]) + P.pack_fields(
        TMV.START_FIELDS, {"rows": 64, "cols": 64, "base": 0, "fmt": 1}), "argument"),
])
def test_bad_requests_are_refused_without_effect(dev, cmd, payload, reason):
    before = dev.status()
    with pytest.raises(DeviceError, match=reason):
        dev.link.request(cmd, payload)
    after = dev.status()
    assert after["weight_lines"] == before["weight_lines"]
    assert after["flags"] & P.STATUS_BUSY == 0


def test_load_and_every_bitlinear_matches_the_golden(dev, ckpt):
    desc = load_checkpoint(ckpt)
    rep = dev.load(desc)
    assert rep.verified and rep.bytes_sent == sum(p.lines for p in rep.layers.values()) * \
        CFG.line_stride
    trace = HGRNBitForCausalLM(desc).trace_integer_matvecs([5, 6, 7])
    assert len(trace) == 13
    t = CFG.tmv
    for name, x, acc in trace:
        y, delta = dev.matvec(name, x)
        assert y.tolist() == acc.tolist(), name
        # and against the TMV golden twin on the same codes
        assert y.tolist() == ternary_matvec(t, dev.placements[name].codes, x)[0]
        p = dev.placements[name]
        assert delta["tmv_busy_cycles"] == t.cycles(p.rows, p.cols, "t2")
        assert delta["tmv_mac_slots"] == t.words(p.rows, p.cols) * t.pe * t.simd


def test_attach_refuses_a_device_holding_other_weights(dev, ckpt, tmp_path):
    dev.load(load_checkpoint(ckpt))
    other = write_checkpoint(tmp_path / "o", "hgrn-bit", hidden=64, layers=2, vocab=256, seed=9)
    with pytest.raises(DeviceError, match="not this checkpoint"):
        dev.attach(load_checkpoint(other))
    dev.attach(load_checkpoint(ckpt))  # the right one is accepted


def test_config_mismatch_is_refused_before_anything_is_sent(sim):
    with pytest.raises(DeviceConfigError, match="differs"):
        Device(sim.url, expect=SocConfig(max_payload=512))


def test_checkpoint_too_large_is_refused_before_anything_is_sent(dev, tmp_path):
    big = write_checkpoint(tmp_path / "big", "hgrn-bit", hidden=1152, layers=1, vocab=64,
                           seed=0)  # 1152 columns > max_in 1024
    before = dev.status()
    sent = dev.link.wire_bytes
    with pytest.raises(DeviceConfigError, match="does not fit"):
        dev.load(load_checkpoint(big))
    assert dev.link.wire_bytes == sent, "bytes went out before the check"
    assert dev.status()["weight_crc"] == before["weight_crc"]


class NoisyTransport:
    """A pyserial transport that flips bytes in both directions at ``rate``."""

    def __init__(self, inner, rate, seed=0):
        self.inner, self.rate, self.rng = inner, rate, random.Random(seed)
        self.flipped = 0

    def _noise(self, data: bytes) -> bytes:
        out = bytearray(data)
        for k in range(len(out)):
            if self.rng.random() < self.rate:
                out[k] ^= self.rng.randrange(1, 256)
                self.flipped += 1
        return bytes(out)

    def write(self, data):
        return self.inner.write(self._noise(data))

    def read(self, n):
        return self._noise(self.inner.read(n))

    @property
    def in_waiting(self):
        return self.inner.in_waiting

    def close(self):
        self.inner.close()


def test_noisy_link_still_loads_every_byte(sim, ckpt):
    noisy = NoisyTransport(serial.serial_for_url(sim.url, timeout=0.05), 1e-3, seed=4)
    with Device(transport=noisy, timeout=0.5, retries=12) as dev:
        rep = dev.load(load_checkpoint(ckpt))
        assert rep.verified
        assert noisy.flipped > 20, "the transport did not inject errors"
        assert dev.link.resends > 0


def test_killed_device_gives_a_clear_error_and_a_rerun_succeeds(ckpt):
    desc = load_checkpoint(ckpt)
    first = SimulatedDevice(CFG).start()
    try:
        dev = Device(first.url, timeout=0.3, retries=3)
        sent = []

        def kill_after_a_few_frames(n):
            sent.append(n)
            if len(sent) == 5:
                first.kill()

        with pytest.raises(LinkError, match="restart|running|went away"):
            plan, image = weight_image(dev, desc, "t2")
            dev.write(dev.map["weights"]["base"], image, kill_after_a_few_frames)
    finally:
        first.kill()
    with SimulatedDevice(CFG) as second, Device(second.url) as dev2:
        assert dev2.load(desc).verified


# ---- fuzzing the command processor ---------------------------------------------------------

def diagnose(url) -> str:
    """Device status and counters over a fresh connection, for failure messages."""
    try:
        with Device(url, timeout=0.5, retries=3) as d:
            return f"status {d.status()} counters {d.counters()}"
    except Exception as e:  # the message is what matters here
        return f"(no diagnosis: {e})"


class RawClient:
    """Frames over a plain socket, with the sequence numbers under the test's control."""

    def __init__(self, url, timeout=0.05):
        self.url = url
        self.history = []
        port = int(url.rsplit(":", 1)[1])
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.dec = P.Decoder()
        self.timeout = timeout
        self.frames_sent = 0

    def send(self, data: bytes, frames: int = 1):
        self.history = (self.history + [data.hex()])[-4:]
        self.s.sendall(data)
        self.frames_sent += frames

    def wait(self, seq, timeout):
        """The response with ``seq``, or None (timeout, or a CRC NAK for someone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.s.settimeout(max(1e-3, deadline - time.monotonic()))
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                return None
            for f in self.dec.feed(data):
                if f.seq == seq and not f.is_nak:
                    return f
                if f.is_nak and f.payload[:1] == bytes([P.NAK_CRC]):
                    return None
        return None

    def request(self, seq, cmd, payload=b"", tries=40):
        frame = P.encode(seq, cmd, payload)
        for attempt in range(tries):
            self.send(frame)
            # back off: the device drops a partial frame only after a silence of
            # frame_timeout cycles, which a loaded machine may stretch past 50 ms
            r = self.wait(seq, min(self.timeout * 2 ** attempt, 1.0))
            if r is not None:
                return r
        self.close()
        raise AssertionError(f"no answer to seq {seq} after {tries} tries ({self.history}): "
                             f"device hung? {diagnose(self.url)}")

    def close(self):
        self.s.close()


@pytest.mark.slow
def test_fuzz_100k_frames_no_hang_no_bad_write_exactly_once(sim):
    rng = random.Random(2026)
    base, size = CFG.address_map()["activations"]["base"], 256
    c = RawClient(sim.url)
    try:
        _fuzz(c, rng, base, size, sim)
    finally:
        c.close()


def _fuzz(c, rng, base, size, sim):
    status = P.unpack_fields(P.STATUS_FIELDS, c.request(1, P.STATUS).payload)
    seq = (status["last_seq"] + 1) & 0xFF  # a number the device has not just executed
    mirror = bytearray(base and size)
    mirror[:] = c.request(seq, P.READ, base.to_bytes(4, "little") +
                          size.to_bytes(2, "little")).payload

    def fresh_write():
        off = rng.randrange(size - 16)
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 17)))
        return off, data, (base + off).to_bytes(4, "little") + data

    def noise(kind, s):
        off, data, payload = fresh_write()
        frame = bytearray(P.encode(s, P.WRITE, payload))
        if kind == "flip":
            for _ in range(rng.randrange(1, 4)):
                frame[rng.randrange(1, len(frame))] ^= 1 << rng.randrange(8)
            return bytes(frame)
        if kind == "truncate":
            return bytes(frame[:rng.randrange(1, len(frame))])
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24)))  # garbage

    # establish a last executed sequence number for the replays
    seq = (seq + 1) & 0xFF
    off, data, payload = fresh_write()
    c.request(seq, P.WRITE, payload)
    mirror[off:off + len(data)] = data
    replays = executed = 0
    while c.frames_sent < 100_000:
        kind = rng.choice(["flip", "truncate", "garbage", "replay"])
        if kind == "replay":
            # the last executed sequence number again, with other data: acknowledged,
            # never executed
            off, data, payload = fresh_write()
            r = c.request(seq, P.WRITE, payload)
            assert r.cmd == P.WRITE | P.ACK_BIT
            replays += 1
        else:
            c.send(noise(kind, (seq + 1) & 0xFF))
        # a valid frame after the noise: executed exactly once (resent until answered)
        seq = (seq + 1) & 0xFF
        off, data, payload = fresh_write()
        r = c.request(seq, P.WRITE, payload)
        assert r.cmd == P.WRITE | P.ACK_BIT
        mirror[off:off + len(data)] = data
        executed += 1
        if executed % 5000 == 0:
            seq = (seq + 1) & 0xFF
            got = c.request(seq, P.READ, base.to_bytes(4, "little") + size.to_bytes(2, "little"))
            assert got.payload == bytes(mirror), "device memory differs from the valid writes"
    seq = (seq + 1) & 0xFF
    got = c.request(seq, P.READ, base.to_bytes(4, "little") + size.to_bytes(2, "little"))
    assert got.payload == bytes(mirror)
    seq = (seq + 1) & 0xFF
    counters = c.request(seq, P.COUNTERS).payload
    c.close()
    with Device(sim.url) as d:
        cnt = d.counters()
    assert cnt["crc_errors"] > 1000 and cnt["duplicates"] >= replays
    assert executed >= 40_000 and replays > 5_000
    assert len(counters) == 8 * len(d.info["counters"])


def test_cli_load_and_run_matvec(sim, ckpt):
    run = lambda *a: subprocess.run([sys.executable, "-m", "tritium.cli", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    r = run("load", str(ckpt), "--device", sim.url, "--quiet")
    assert r.returncode == 0 and "matches" in r.stdout, r.stderr
    r = run("run", "matvec", str(ckpt), "--layer", "lm_head", "--device", sim.url)
    assert r.returncode == 0 and "yes" in r.stdout, r.stdout + r.stderr
    r = run("run", "matvec", str(ckpt), "--layer", "nope", "--device", sim.url)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_cli_run_matvec_json_has_every_bitlinear(sim, ckpt):
    run = lambda *a: subprocess.run([sys.executable, "-m", "tritium.cli", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    r = run("load", str(ckpt), "--device", sim.url, "--quiet")
    assert r.returncode == 0, r.stderr
    r = run("run", "matvec", str(ckpt), "--device", sim.url, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    linears = list(load_checkpoint(ckpt).bitlinears())
    assert rep["ok"] is True and rep["arch"] == "hgrn-bit"
    # every BitLinear once (in execution order, which is not the checkpoint's)
    assert sorted((row["bitlinear"], row["rows"], row["cols"]) for row in rep["rows"]) == \
        sorted((lin.name, lin.out_features, lin.in_features) for lin in linears)
    assert all(row["match"] and row["cycles"] == row["model_cycles"] for row in rep["rows"])


def test_cli_unreachable_device_is_one_line():
    r = subprocess.run([sys.executable, "-m", "tritium.cli", "load", "x", "--device",
                        "socket://127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
