"""Link reliability on the served device: exactly once at the sequence wrap, a load through
a real bit-flipping TCP proxy, the server's lifecycle, and the smaller link faults.

Everything runs against the real Verilated SoC behind its real TCP bridge.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tritium.config import SocConfig
from tritium.engines.mfc.config import MfcConfig
from tritium.errors import ConfigError
from tritium.golden.hgrn import HGRNBitForCausalLM
from tritium.hdl.soc import counter_names
from tritium import protocol as P
from tritium.engines import tmv as TMV
from tritium.golden.checkpoint import load_checkpoint
from tritium.host.device import Device, DeviceError, LinkError
from tritium.sim.noise import BitFlipProxy
from tritium.sim.serve import SimulatedDevice

pytestmark = pytest.mark.verilator

CFG = SocConfig()  # the demo's device (one build shared with the other link tests)


@pytest.fixture(scope="module")
def sim():
    with SimulatedDevice(CFG) as s:
        yield s


@pytest.fixture(scope="module")
def ckpt(h64_checkpoint):
    return h64_checkpoint(3)


def act(dev) -> int:
    return dev.map["activations"]["base"]


def cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tritium.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_line_error(r) -> str:
    """The CLI's error: non-zero exit, no traceback, one line on stderr; returns it."""
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def raw_socket(url) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_frames(s, timeout=2.0) -> list:
    """Frames until the peer closes or ``timeout`` passes."""
    dec, out, deadline = P.Decoder(), [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(1e-3, deadline - time.monotonic()))
        try:
            data = s.recv(4096)
        except socket.timeout:
            break
        if not data:
            break
        out += dec.feed(data)
    return out


# ---- exactly once at the wrap ---------------------------------------------------------------

@pytest.mark.parametrize("between", [255, 256, 600])
def test_a_write_after_many_idempotent_requests_is_executed(sim, between):
    """WRITE, `between` idempotent requests, WRITE, read back: the second WRITE must run.
    (With one counter for all requests, 255 polls gave both WRITEs the same number and the
    device acknowledged the second as a repeat without running it.)"""
    with Device(sim.url) as dev:
        a = act(dev)
        dev.write(a, bytes([0x11]) * 32)
        for k in range(between):
            (dev.status, dev.counters, lambda: dev.read(a, 8))[k % 3]()
        dev.write(a, bytes([0x22]) * 32)
        assert dev.read(a, 32) == bytes([0x22]) * 32, "the second WRITE was taken for a repeat"


def test_refused_requests_do_not_use_up_sequence_numbers(sim):
    """130 refused STARTs (NAK 6) between two WRITEs: a refused request gives its number
    back, so the WRITE after them never meets the device's last executed number."""
    bad = bytes([TMV.START_ID]) + P.pack_fields(
        TMV.START_FIELDS, {"rows": CFG.tmv.max_out + 1, "cols": 16, "base": 0, "fmt": 0})
    with Device(sim.url) as dev:
        a = act(dev)
        dev.write(a, b"\x01" * 16)
        for _ in range(2 * P.SEQ_SPAN + 2):
            with pytest.raises(DeviceError, match="argument"):
                dev.link.request(P.START, bad)
        dev.write(a, b"\x02" * 16)
        assert dev.read(a, 16) == b"\x02" * 16


# ---- a noisy line ---------------------------------------------------------------------------

def test_load_at_ber_1e_3_both_ways_through_a_bit_flipping_proxy(sim, ckpt):
    """A real TCP proxy flips each bit with probability 1e-3 in both directions: the load
    completes CRC-verified, and a matvec through the same line matches the golden."""
    desc = load_checkpoint(ckpt)
    name, x, acc = HGRNBitForCausalLM(desc).trace_integer_matvecs([5])[-1]
    t0 = time.monotonic()
    with BitFlipProxy(sim.url, 1e-3, seed=11) as px:
        with Device(px.url) as dev:
            rep = dev.load(desc)
            assert rep.verified
            y, _ = dev.matvec(name, x)
            assert y.tolist() == acc.tolist()
            assert dev.link.resends > 50
        counts = px.totals(1)
    assert time.monotonic() - t0 < 60, "the noisy load took too long"
    for d in ("up", "down"):
        rate = counts[f"flips_{d}"] / (8 * counts[f"relayed_{d}"])
        assert 0.7e-3 < rate < 1.3e-3, (d, counts)  # the line really was that noisy
    assert counts["flips_down"] > 50


def test_a_hopeless_line_says_what_it_saw(sim):
    with BitFlipProxy(sim.url, 3e-2, seed=2) as px:
        t0 = time.monotonic()
        with pytest.raises(LinkError) as e:
            Device(px.url, timeout=0.2, retries=2)
    msg = str(e.value)
    assert re.search(r"\d+ of \d+ attempts NAKed for CRC, \d+ answered garbled", msg), msg
    assert "the line is noisy" in msg and "\n" not in msg
    assert time.monotonic() - t0 < 20


# ---- a slow device ---------------------------------------------------------------------------

def stall(sim, seconds: float) -> threading.Thread:
    """Stop the simulator process (as a loaded machine deschedules it) for ``seconds``."""
    os.kill(sim.proc.pid, signal.SIGSTOP)
    t = threading.Timer(seconds, os.kill, (sim.proc.pid, signal.SIGCONT))
    t.start()
    return t


def test_a_stalled_device_is_waited_for_not_given_up_on(sim):
    """Eight silent attempts are not enough to give up once the round trip is known to be
    short: silence must also last retries x timeout (4 s by default). Without that, the
    waits (~16 ms here, doubling) ran out in ~2 s, shorter than a loaded machine can keep
    a simulator descheduled."""
    with Device(sim.url) as dev:
        dev.status()
        t = stall(sim, 3.0)
        t0 = time.monotonic()
        assert dev.status()["last_seq"] >= 0
        t.join()
        assert time.monotonic() - t0 >= 2.9
        assert dev.link.last_attempts > 1


def test_a_repeated_long_request_leaves_its_copies_time_to_run(sim):
    """A CRC sent twice (its first wait ran out while the device was stalled) runs twice;
    after its answer the host waits for the second copy's work too, beyond the link's
    own patience (0.2 s here)."""
    with Device(sim.url, timeout=0.1, retries=2) as dev:
        region = dev.map["activations"]
        body = P.pack_fields(P.CRC_FIELDS, {"addr": region["base"], "length": region["size"]})
        dev.status()
        t = stall(sim, 0.6)  # past the first wait (0.405 s), within the second
        dev.link.request(P.CRC, body, expect=P.CRC_ANSWER_BYTES, work=0.4)
        t.join()
        assert dev.link.last_attempts > 1
        # the device "still runs" the second copy (up to the 0.4 s of work): no answer for
        # longer than the link's patience, and the next request is still not given up on
        t = stall(sim, 0.3)
        t0 = time.monotonic()
        dev.status()
        assert time.monotonic() - t0 >= 0.25
        t.join()


# ---- the served device's lifecycle ----------------------------------------------------------

def test_a_second_host_is_told_busy_at_once(sim):
    with Device(sim.url):
        t0 = time.monotonic()
        with pytest.raises(LinkError, match="busy: another host is connected"):
            Device(sim.url)
        assert time.monotonic() - t0 < 2


def test_a_second_hosts_frames_never_run(sim):
    with Device(sim.url) as first:
        a = act(first)
        first.write(a, b"old!" * 8)
        other = raw_socket(sim.url)
        other.sendall(P.encode(3, P.WRITE, a.to_bytes(4, "little") + b"NEW!" * 8))
        frames = recv_frames(other)
        other.close()
        assert [(f.cmd, f.payload) for f in frames] == [(P.NAK, bytes([P.NAK_HOST_BUSY]))]
        assert first.read(a, 32) == b"old!" * 8
    with Device(sim.url) as later:
        assert later.read(a, 32) == b"old!" * 8


def test_a_departed_hosts_partial_frame_is_dropped_before_the_next_host(sim):
    with Device(sim.url) as d:
        before = d.counters()
        a = act(d)
    frame = P.encode(9, P.WRITE, a.to_bytes(4, "little") + b"\xee" * 200)
    s = raw_socket(sim.url)
    s.sendall(frame[:100])  # the header and part of the payload, then gone
    s.close()
    with Device(sim.url) as d:
        after = d.counters()
        assert d.read(a, 4) != b"\xee" * 4
    # the partial frame timed out on its own; had it taken in the next host's first
    # request, the two would have ended as one frame with a bad CRC
    assert after["timeouts"] == before["timeouts"] + 1
    assert after["crc_errors"] == before["crc_errors"]


def _serve():
    p = subprocess.Popen([sys.executable, "-m", "tritium.cli", "serve"], text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = p.stdout.readline().strip()
    assert url.startswith("socket://127.0.0.1:"), p.stderr.read()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
        if kids:
            return p, url, kids[0]
        time.sleep(0.05)
    p.kill()
    raise AssertionError("tritium serve started no simulator")


def _gone(pid) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True


def test_serve_exits_non_zero_with_a_message_when_the_simulator_dies():
    p, url, sim_pid = _serve()
    try:
        os.kill(sim_pid, signal.SIGKILL)
        rc = p.wait(timeout=15)
        err = p.stderr.read()
    finally:
        p.kill()
    assert rc != 0 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "simulated FPGA" in last and "ended" in last and "signal 9" in last, err


def test_killing_serve_takes_the_simulator_and_its_port_with_it():
    p, url, sim_pid = _serve()
    port = int(url.rsplit(":", 1)[1])
    p.kill()
    p.wait()
    deadline = time.monotonic() + 10
    while not _gone(sim_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(sim_pid), "the simulator outlived its server"
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_port_out_of_range_is_one_line(port):
    line = one_line_error(cli("serve", "--port", port, timeout=120))
    assert "0..65535" in line
    with pytest.raises(ConfigError, match="0..65535"):
        SimulatedDevice(CFG, port=int(port))


# ---- the smaller faults ---------------------------------------------------------------------

def _start(rows, cols, base):
    return bytes([TMV.START_ID]) + P.pack_fields(
        TMV.START_FIELDS, {"rows": rows, "cols": cols, "base": base, "fmt": 0})


def test_start_past_the_end_of_weight_memory_is_refused(sim):
    t = CFG.tmv
    with Device(sim.url) as dev:
        dev.reset()
        # two weight lines from the last line, and a whole 1024x1024 matrix from line 0
        for rows, cols, base in ((2 * t.pe, t.simd, t.weight_depth - 1),
                                 (t.max_out, t.max_in, 0)):
            assert base + t.words(rows, cols) > t.weight_depth
            with pytest.raises(DeviceError, match="engine argument out of range"):
                dev.link.request(P.START, _start(rows, cols, base))
            assert dev.status()["flags"] == 0  # not started, no sticky error
        # the same two lines ending exactly at the end run cleanly
        dev.run_tmv(2 * t.pe, t.simd, t.weight_depth - 2)
        assert not dev.status()["flags"] & P.STATUS_ENGINE_ERROR


LINK_CLEARED = ("crc_errors", "timeouts", "oversize", "naks", "duplicates")


def test_reset_clears_the_link_counters(sim):
    # one copy of each frame over a raw socket, so no resend can add to the counters
    names = counter_names(CFG)
    s = raw_socket(sim.url)

    def ask(seq, cmd, payload=b""):
        s.sendall(P.encode(seq, cmd, payload))
        (fr,) = recv_frames(s, timeout=1.0)
        return fr

    def counters():
        raw = ask(0x81, P.COUNTERS).payload
        return {n: int.from_bytes(raw[8 * k:8 * k + 8], "little") for k, n in enumerate(names)}

    bad = bytearray(P.encode(0x82, P.STATUS))
    bad[-1] ^= 0xFF
    assert ask(0x82, 0x42).payload == bytes([P.NAK_COMMAND])
    assert recv_frames(s, 0.0) == []
    s.sendall(bytes(bad) + bytes([P.SOF, 3, P.WRITE, 0xFF, 0xFF]))
    assert [f.payload for f in recv_frames(s, timeout=1.0)] == [bytes([P.NAK_CRC])]
    before = counters()
    assert before["crc_errors"] and before["naks"] >= 2 and before["oversize"]
    last = P.unpack_fields(P.STATUS_FIELDS, ask(0x83, P.STATUS).payload)["last_seq"]
    assert ask(P.next_seq(last), P.RESET).cmd == P.RESET | P.ACK_BIT
    after = counters()
    s.close()
    assert {k: after[k] for k in LINK_CLEARED} == dict.fromkeys(LINK_CLEARED, 0)
    assert after["frames"] == 1  # the COUNTERS request itself
    assert after["cycles"] < before["cycles"]
    assert all(v == 0 for k, v in after.items() if k.startswith("tmv_"))


@pytest.fixture(scope="module")
def core():
    with SimulatedDevice(SocConfig(engines=(MfcConfig(),))) as s:
        yield s


def test_run_matvec_on_a_token_core_device_is_one_line(core, ckpt):
    line = one_line_error(cli("run", "matvec", str(ckpt), "--layer", "lm_head",
                              "--device", core.url))
    assert "token core" in line and "tritium serve" in line


def test_generate_refuses_out_of_vocabulary_ids_before_writing_anything(core, ckpt):
    line = one_line_error(cli("generate", str(ckpt), "--device", core.url,
                              "--prompt-ids", "1,256", "-n", "2", "--quiet"))
    assert "prompt ids" in line and "[0, 255]" in line
    with Device(core.url) as dev:
        st = dev.status()
        assert st["weight_lines"] == 0 and not st["have_last"], "bytes were written"


def test_demo_removes_its_temporary_directory(tmp_path):
    r = cli("demo", env={**os.environ, "TMPDIR": str(tmp_path)}, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert str(tmp_path) in r.stdout.replace("\n", "")  # it did make its directory there
    assert list(tmp_path.iterdir()) == []


def test_demo_json(tmp_path):
    r = cli("demo", "--json", env={**os.environ, "TMPDIR": str(tmp_path)}, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rep = json.loads(r.stdout)   # the JSON document only: no table, no status lines
    # the demo's checkpoint: 2 layers of 6 BitLinears and the lm_head, each on the TMV
    assert len(rep["matvecs"]) == 13 and rep["matvecs"][-1]["bitlinear"] == "lm_head"
    assert rep["matvecs_identical"] and all(m["match"] for m in rep["matvecs"])
    gen = rep["generation"]
    assert gen["identical"] and len(gen["tokens"]) == 16 and gen["prompt"] == [1, 2, 3]
    assert gen["tokens"] == gen["golden_tokens"]
    assert gen["cycles"]["cycles"]["device"] == gen["cycles"]["cycles"]["model"]
    assert rep["ok"] is True and list(tmp_path.iterdir()) == []
