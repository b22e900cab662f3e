"""Link and served-simulation speed: bench/results/link.json.

In one run, on the default SoC (the `make demo` device):
- ``served_sim_cycles_per_s``: the simulated FPGA behind its TCP socket while the TMV
  engine computes ROWS x COLS matvecs (busy cycles / wall time, from the server's own
  count), median of --repeats connections. ROWS x COLS = 1024 x 256 fills the default
  weight memory exactly (4,096 lines); every run is checked for the engine's error flag;
- ``bare_verilator_loop_cycles_per_s``: the same model and per-cycle port handling with
  no socket and no host (the ceiling), median of --repeats;
- ``cocotb_python_every_cycle_cycles_per_s``: the same SoC under cocotb with a Python
  coroutine on every cycle (the plain cocotb figure);
- ``load_mb_per_s``: host -> simulated FPGA, the demo checkpoint, CRC-verified, median;
- ``protocol_efficiency``: payload bytes / bytes on the wire (both directions) during
  those loads, at the default frame size;
- ``load_s_clean`` and ``load_s_at_ber_1e-3``: seconds for the same CRC-verified load
  through the bit-flipping TCP proxy (tritium.sim.noise) at a bit-error rate of 0 and of
  1e-3 in both directions, alternating, median of --repeats each; the same path both
  times, so the ratio is the cost of the noise alone (goal <= 20). ``ber_measured_*`` are
  the flipped fractions of bits the proxy actually relayed.
"""

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from tritium.config import SocConfig
from tritium import protocol as P
from tritium.engines import tmv as TMV
from tritium.golden.checkpoint import load_checkpoint, write_checkpoint
from tritium.host.device import Device
from tritium.sim.noise import BitFlipProxy
from tritium.sim.serve import SimulatedDevice, selftest
from _results import save_results  # bench/_results.py (run as a script)

ROWS, COLS = 1024, 256
BER = 1e-3


def start_payload() -> bytes:
    return bytes([TMV.START_ID]) + P.pack_fields(
        TMV.START_FIELDS, {"rows": ROWS, "cols": COLS, "base": 0, "fmt": 0})


def served(cfg, repeats, runs):
    speeds, loads, eff = [], [], []
    ckpt = write_checkpoint(Path(tempfile.mkdtemp()) / "ck", "hgrn-bit", hidden=64, layers=2,
                            vocab=256, seed=0)
    desc = load_checkpoint(ckpt)
    with SimulatedDevice(cfg) as sim:
        last = {"busy_cycles": 0.0, "busy_seconds": 0.0}
        for _ in range(repeats):
            with Device(sim.url) as dev:
                for _ in range(runs):
                    dev.run_tmv(ROWS, COLS, 0, "t2")
            st = sim.wait_stats()
            speeds.append((st["busy_cycles"] - last["busy_cycles"]) /
                          (st["busy_seconds"] - last["busy_seconds"]))
            last = st
            with Device(sim.url) as dev:
                before = dev.link.wire_bytes
                rep = dev.load(desc)
                loads.append(rep.mb_per_s)
                eff.append(rep.bytes_sent / (dev.link.wire_bytes - before))
            last = sim.wait_stats()
    return statistics.median(speeds), statistics.median(loads), statistics.median(eff)


def noisy_loads(cfg, repeats):
    """Median seconds of a CRC-verified load through the proxy at BER 0 and at BER,
    alternating; the measured bit-error rates; the median resends at BER."""
    ckpt = write_checkpoint(Path(tempfile.mkdtemp()) / "ck", "hgrn-bit", hidden=64, layers=2,
                            vocab=256, seed=0)
    desc = load_checkpoint(ckpt)
    times = {0.0: [], BER: []}
    resends, flipped = [], {"up": [0, 0], "down": [0, 0]}
    with SimulatedDevice(cfg) as sim:
        for k in range(repeats):
            for ber in (0.0, BER):
                with BitFlipProxy(sim.url, ber, seed=k) as px:
                    with Device(px.url) as dev:
                        t0 = time.monotonic()
                        rep = dev.load(desc)
                        assert rep.verified
                        times[ber].append(time.monotonic() - t0)
                        if ber:
                            resends.append(dev.link.resends)
                    counts = px.totals(1)
                if ber:
                    for d in flipped:
                        flipped[d][0] += counts[f"flips_{d}"]
                        flipped[d][1] += 8 * counts[f"relayed_{d}"]
    return (statistics.median(times[0.0]), statistics.median(times[BER]),
            {d: f / n for d, (f, n) in flipped.items()}, statistics.median(resends),
            rep.bytes_sent)


def cocotb_every_cycle(cfg, cycles):
    from tritium.hdl.soc import Soc
    from tritium.sim.build import build, design_of
    from tritium.sim.run import simulate
    from tritium.sim.serve import BUILD_ARGS

    model = build(design_of(Soc(cfg), "tritium_soc"), build_args=BUILD_ARGS + ("--output-split", "0"))
    out = simulate(model, "tritium.sim.speed", stall_limit=10**9,
                   inputs={"python_every_cycle": cycles, "repeats": 3,
                           "ports": {"in": "rx", "out": "tx"}})
    return statistics.median(out["python_every_cycle"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    cfg = SocConfig()
    t = cfg.tmv
    served_cps, load_mbps, eff = served(cfg, args.repeats, runs=20)
    clean_s, noisy_s, measured, resends, nbytes = noisy_loads(cfg, args.repeats)
    bare = statistics.median(
        (r := selftest(cfg, P.encode(1, P.START, start_payload()), 2_000_000))["busy_cycles"] / r["seconds"]
        for _ in range(args.repeats))
    res = {
        "device": f"SoC default: TMV simd={t.simd} pe={t.pe} formats={'+'.join(t.formats)}, "
                  f"max_payload={cfg.max_payload}",
        "workload": f"{ROWS}x{COLS} t2 matvecs back to back",
        "machine": f"{platform.machine()}, 2 cores shared",
        "repeats": args.repeats,
        "served_sim_cycles_per_s": round(served_cps),
        "bare_verilator_loop_cycles_per_s": round(bare),
        "cocotb_python_every_cycle_cycles_per_s": round(cocotb_every_cycle(cfg, 50_000)),
        "served_goal_cycles_per_s": 2_000_000,
        "load_mb_per_s": round(load_mbps, 3),
        "protocol_efficiency": round(eff, 4),
        "protocol_efficiency_goal": 0.95,
        "load_workload": f"demo checkpoint (HGRN-bit hidden 64, 2 layers), {nbytes:,} weight "
                         "bytes, CRC-verified, through the bit-flipping proxy",
        "load_s_clean": round(clean_s, 4),
        "load_s_at_ber_1e-3": round(noisy_s, 4),
        "load_ber_1e-3_over_clean": round(noisy_s / clean_s, 2),
        "load_ber_1e-3_over_clean_goal": 20,
        "load_resends_at_ber_1e-3": resends,
        "ber_measured_up": round(measured["up"], 6),
        "ber_measured_down": round(measured["down"], 6),
    }
    save_results("link", res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
