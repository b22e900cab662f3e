"""The memory subsystem on the served SoC with the ideal DRAM part: a 4096 x 4096 t2
matvec from DRAM, loads over the link and the backdoor, and what DRAM costs the served
simulation.

Writes bench/results/mem.json. Everything in one run, medians of --repeats:

- ``tmv4096_*``: the bare TMV (simd 16, pe 4) reading 4 MB of t2 weights from DRAM:
  golden equality, RTL busy cycles beside the cycle model
  (:func:`tritium.engines.tmv.model.dram_matvec_cycles`), sustained weight bandwidth
  from the DRAM counters against the port's peak (a beat a cycle);
- ``load_link_*`` / ``load_fast_*``: Device.load_dram of the same 4 MB over the link
  (16 KB frames) and through the backdoor, each proved by the device's CRC;
- ``selftest_*``: the bare served loop (no socket) on the default SoC without DRAM (the
  baseline) and the same SoC with an ideal DRAM attached and idle, 1024x256 t2 matvecs
  from on-chip weights back to back.
"""

import argparse
import platform
import statistics
import time

import numpy as np

from tritium import protocol as P
from tritium.config import SocConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.dram import DramConfig
from tritium.engines import tmv as TMV
from tritium.engines.tmv.golden import ternary_matvec, tmv_lines
from tritium.engines.tmv.model import dram_matvec_cycles
from tritium.host import Device
from tritium.sim.serve import DRAM_MAX_PAYLOAD, SimulatedDevice, selftest, with_dram
from _results import save_results  # bench/_results.py (run as a script)

N = 4096
DRAM = DramConfig(size=1 << 23)
TMV_DRAM = TernaryConfig(simd=16, pe=4, max_in=N, max_out=N,
                         weight_depth=DRAM.size_bytes // 16, has_t3=0, weights_dram=1,
                         mem_latency=16)
CFG = SocConfig(engines=(TMV_DRAM,), dram=DRAM, max_payload=DRAM_MAX_PAYLOAD)


def image_of(t, codes) -> bytes:
    lb = t.line_bits // 8
    return b"".join(v.to_bytes(lb, "little") + bytes(t.line_stride - lb)
                    for v in tmv_lines(t, codes, "t2"))


def matvec_from_dram(repeats: int) -> dict:
    rng = np.random.default_rng(4096)
    codes = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(N, N))
    x = rng.integers(-128, 128, N)
    image = image_of(TMV_DRAM, codes)
    golden = ternary_matvec(TMV_DRAM, codes, x)[0]
    model = dram_matvec_cycles(TMV_DRAM, DRAM, N, N)
    fast_s, fast_verify, link_s, busy, dbusy, dread, wall, ok = [], [], [], [], [], [], [], True
    with SimulatedDevice(CFG) as sd, Device(sd.url) as dev:
        for _ in range(repeats):
            rep = dev.load_dram({0: image}, fast=sd.backdoor_url)
            fast_s.append(rep.seconds)
            fast_verify.append(rep.verify_seconds)
            dev.write(dev.map["activations"]["base"], x.astype(np.int8).tobytes())
            before = dev.counters()
            t0 = time.monotonic()
            dev.run_tmv(N, N, 0, "t2", timeout=600)
            wall.append(time.monotonic() - t0)
            after = dev.counters()
            y = np.frombuffer(dev.read(dev.map["results"]["base"], 4 * N), dtype="<i4")
            ok &= y.astype(np.int64).tolist() == golden
            busy.append(after["tmv_busy_cycles"] - before["tmv_busy_cycles"])
            dbusy.append(after["dram_busy_cycles"] - before["dram_busy_cycles"])
            dread.append(after["dram_bytes_read"] - before["dram_bytes_read"])
        # the link load once (it takes seconds a megabyte), of the first megabyte
        part = image[:1 << 20]
        rep = dev.load_dram({0: part})
        link_s.append(rep.seconds)
        link_verify = rep.verify_seconds
    b, db, rd = statistics.median(busy), statistics.median(dbusy), statistics.median(dread)
    return {
        "tmv4096_golden_equal": ok,
        "tmv4096_weight_bytes": len(image),
        "tmv4096_rtl_busy_cycles": b,
        "tmv4096_model_cycles": model["cycles"],
        "tmv4096_model_error_pct": round(100 * abs(model["cycles"] - b) / b, 4),
        "tmv4096_compute_bound_cycles": model["compute_cycles"],
        "tmv4096_dram_bytes_read": rd,
        "tmv4096_dram_busy_cycles": db,
        "tmv4096_sustained_bytes_per_cycle": round(rd / db, 4),
        "tmv4096_peak_bytes_per_cycle": DRAM.word_bytes,
        "tmv4096_bandwidth_efficiency": round(rd / db / DRAM.word_bytes, 4),
        "tmv4096_engine_bandwidth_efficiency": round(rd / b / DRAM.word_bytes, 4),
        "tmv4096_served_wall_s": round(statistics.median(wall), 3),
        "load_fast_bytes": len(image),
        "load_fast_mb_per_s": round(len(image) / statistics.median(fast_s) / 1e6, 1),
        "load_fast_crc_verify_s": round(statistics.median(fast_verify), 3),
        "load_link_bytes": len(part),
        "load_link_mb_per_s": round(len(part) / statistics.median(link_s) / 1e6, 3),
        "load_link_crc_verify_s": round(link_verify, 3),
    }


def selftests(repeats: int) -> dict:
    start = bytes([TMV.START_ID]) + P.pack_fields(
        TMV.START_FIELDS, {"rows": 1024, "cols": 256, "base": 0, "fmt": 0})
    frames = P.encode(1, P.START, start)
    out = {}
    for name, cfg in (("no_dram", SocConfig()), ("ideal_dram_idle",
                                                   with_dram(SocConfig(), "ideal", 1 << 20))):
        speeds = []
        for _ in range(repeats):
            r = selftest(cfg, frames, 2_000_000)
            speeds.append(r["busy_cycles"] / r["seconds"])
        out[f"selftest_{name}_cycles_per_s"] = round(statistics.median(speeds))
    out["selftest_dram_over_no_dram"] = round(out["selftest_ideal_dram_idle_cycles_per_s"] /
                                              out["selftest_no_dram_cycles_per_s"], 3)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    res = {
        "device": f"SoC: bare TMV simd={TMV_DRAM.simd} pe={TMV_DRAM.pe} t2, weights in DRAM "
                  f"(part {DRAM.part}, {DRAM.size_bytes >> 20} MB, {DRAM.port_bits}-bit "
                  f"beats, latency {DRAM.spec.latency}), max_payload={CFG.max_payload}",
        "machine": f"{platform.machine()}, 2 cores shared",
        "repeats": args.repeats,
        **matvec_from_dram(args.repeats),
        **selftests(args.repeats),
    }
    print(save_results("mem", res))
    for k, v in res.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
