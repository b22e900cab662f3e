"""Link and served-simulation speed: bench/results/link.json.

In one run, on the default SoC (the `make demo` device):
- ``served_sim_cycles_per_s``: the simulated FPGA behind its TCP socket while the TMV
  engine computes 1024x1024 matvecs (busy cycles / wall time, from the server's own
  count), median of --repeats connections;
- ``bare_verilator_loop_cycles_per_s``: the same model and per-cycle port handling with
  no socket and no host (the ceiling), median of --repeats;
- ``cocotb_python_every_cycle_cycles_per_s``: the same SoC under cocotb with a Python
  coroutine on every cycle (the plain cocotb figure);
- ``load_mb_per_s``: host -> simulated FPGA, the demo checkpoint, CRC-verified, median;
- ``protocol_efficiency``: payload bytes / bytes on the wire (both directions) during
  those loads, at the default frame size.
"""

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

from tritium.config import SocConfig
from tritium.host import protocol as P
from tritium.host.checkpoint import load_checkpoint, write_checkpoint
from tritium.host.device import Device
from tritium.sim.serve import SimulatedDevice, selftest
from _results import save_results  # bench/_results.py (run as a script)

ROWS = COLS = 1024


def start_payload() -> bytes:
    return bytes([P.ENGINE_TMV]) + P.pack_fields(
        P.TMV_START_FIELDS, {"rows": ROWS, "cols": COLS, "base": 0, "fmt": 0})


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
    }
    save_results("link", res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
