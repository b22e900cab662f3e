"""A noisy line for a served device: a TCP proxy that flips bits in both directions.

``BitFlipProxy(url, ber, seed)`` starts a relay process (``python -m tritium.sim.noise``)
that listens on 127.0.0.1 and relays each connection to ``url``
(``socket://127.0.0.1:PORT``, e.g. :class:`~tritium.sim.serve.SimulatedDevice`'s),
flipping every bit that passes, host to device and device to host, independently with
probability ``ber`` (a binary symmetric channel). Nothing else changes: bytes are neither
lost nor added, their order is kept. ``proxy.url`` is what :class:`tritium.host.Device`
takes; connections are served one after another, as the device serves them.

After each connection the relay reports, per direction ("up": host to device, "down":
device to host), the bytes relayed and the bits flipped; :meth:`BitFlipProxy.totals`
sums them. It runs in its own process so that it never competes with the host driver for
the interpreter, and it exits when the process that started it does.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import threading
import time

import numpy as np

from tritium.errors import ConfigError, SimulationError

URL_PREFIX = "socket://127.0.0.1:"


def _port(url: str) -> int:
    if not url.startswith(URL_PREFIX) or not url[len(URL_PREFIX):].isdigit():
        raise ConfigError(f"the bit-flipping proxy relays to {URL_PREFIX}PORT, got {url!r}")
    return int(url[len(URL_PREFIX):])


def _check_ber(ber: float) -> float:
    if not 0.0 <= ber < 1.0:
        raise ConfigError(f"bit-error rate must be in [0, 1), got {ber}")
    return ber


class Flipper:
    """Flips each bit of the bytes it is given with probability ``ber``; counts."""

    def __init__(self, ber: float, seed: int):
        self.ber, self.rng = _check_ber(ber), np.random.default_rng(seed)
        self.flips = {"up": 0, "down": 0}
        self.relayed = {"up": 0, "down": 0}

    def __call__(self, data: bytes, direction: str) -> bytes:
        nbits = 8 * len(data)
        k = int(self.rng.binomial(nbits, self.ber)) if nbits else 0
        self.relayed[direction] += len(data)
        if not k:
            return data
        pos = self.rng.choice(nbits, size=k, replace=False)
        out = np.frombuffer(data, dtype=np.uint8).copy()
        np.bitwise_xor.at(out, pos // 8, (1 << (pos % 8)).astype(np.uint8))
        self.flips[direction] += k
        return out.tobytes()


def _relay(host: socket.socket, device: socket.socket, flip: Flipper, parent: int) -> None:
    for s in (host, device):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sel = selectors.DefaultSelector()
    sel.register(host, selectors.EVENT_READ, (device, "up"))
    sel.register(device, selectors.EVENT_READ, (host, "down"))
    try:
        while os.getppid() == parent:
            for key, _ in sel.select(timeout=0.2):
                peer, direction = key.data
                data = key.fileobj.recv(65536)
                if not data:
                    return
                peer.sendall(flip(data, direction))
    except OSError:
        return
    finally:
        sel.close()
        host.close()
        device.close()


def relay_main(argv=None) -> int:
    """``python -m tritium.sim.noise UPSTREAM_URL BER SEED``: serve until the parent
    process exits; prints ``listening URL`` and, per connection, a ``counts`` line."""
    args = sys.argv[1:] if argv is None else argv
    upstream, flip = _port(args[0]), Flipper(float(args[1]), int(args[2]))
    parent = os.getppid()
    listen = socket.create_server(("127.0.0.1", 0))
    listen.settimeout(0.2)
    print(f"listening {URL_PREFIX}{listen.getsockname()[1]}", flush=True)
    while os.getppid() == parent:
        try:
            host, _ = listen.accept()
        except (socket.timeout, OSError):
            continue
        try:
            device = socket.create_connection(("127.0.0.1", upstream))
        except OSError:
            host.close()
            continue
        _relay(host, device, flip, parent)
        print("counts " + " ".join(f"{k}_{d}={v[d]}" for k, v in
                                   (("flips", flip.flips), ("relayed", flip.relayed))
                                   for d in ("up", "down")), flush=True)
    return 0


class BitFlipProxy:
    """The relay process (see the module docstring); a context manager."""

    def __init__(self, url: str, ber: float, seed: int = 0):
        _port(url)
        self.upstream, self.ber, self.seed = url, _check_ber(ber), seed
        self.url: str | None = None
        self.proc: subprocess.Popen | None = None
        self.counts: dict[str, int] = {}
        self.connections = 0

    def start(self) -> "BitFlipProxy":
        self.proc = subprocess.Popen([sys.executable, "-m", "tritium.sim.noise", self.upstream,
                                      repr(self.ber), str(self.seed)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if line[:1] != ["listening"]:
            self.stop()
            raise SimulationError("the bit-flipping proxy did not start")
        self.url = line[1]
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("counts "):
                self.counts = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
                self.connections += 1

    def totals(self, connections: int, timeout: float = 5.0) -> dict[str, int]:
        """``flips_up``, ``flips_down``, ``relayed_up``, ``relayed_down`` over the first
        ``connections`` connections, once the relay has reported them all."""
        t0 = time.monotonic()
        while self.connections < connections and time.monotonic() - t0 < timeout:
            time.sleep(0.01)
        if self.connections < connections:
            raise SimulationError(f"the proxy reported {self.connections} of {connections} "
                                  "connections")
        return dict(self.counts)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)

    def __enter__(self) -> "BitFlipProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(relay_main())
