"""DRAM for issue 15 in one run: bench/results/dram.json (flat keys, units in the names,
medians of ``--repeats``, every baseline measured in the same run).

Memory level, per LiteDRAM part (ULX3S SDR ``mt48lc16m16``, Arty DDR3 ``mt41k128m16``), on
LiteDRAM's simulated controller alone under Verilator (tritium.sim.dram_rtl):

- ``<part>_read_cycles`` / ``_write_cycles``: a sequential stream of ``--beats`` beats
  from beat 0;
- ``<part>_read_mb_per_s`` / ``_write_mb_per_s``: sustained bandwidth at the part's
  clock; ``<part>_peak_mb_per_s``: one beat per clock, the baseline;
- ``<part>_read_efficiency`` / ``_write_efficiency``: of that peak;
- ``<part>_read_model_error_pct`` / ``_write_model_error_pct``: the timing model
  (tritium.sim.dram) against those cycles, signed, in percent;
- ``<part>_sim_cycles_per_s``: simulated clocks per wall second of the stream;

and the ideal part's model figures beside them (``ideal_*``).

SoC level, on the served SoC (bare TMV simd 16, pe 4, t2 weights in DRAM), for the ideal
part and LiteDRAM's ULX3S SDR model:

- ``<part>_tmv<N>_*``: an N x N matvec from DRAM (N = 4096, 4 MB of weights; 1024 with
  ``--quick``): golden equality, RTL busy cycles beside the cycle model
  (:func:`tritium.engines.tmv.model.dram_matvec_cycles`) and its error, sustained weight
  bandwidth (``dram_bytes_read`` over the matvec's busy cycles) against the port's peak,
  the compute bound (a word a cycle) as the baseline;
- ``<part>_load_fast_*`` / ``<part>_load_link_*``: Device.load_dram of the image through
  the backdoor and (its first megabyte: the link's baseline) over the link in 16 KB
  frames, each proved by the device's CRC (load_dram raises unless every chunk's CRC
  equals the host's; ``_crc_chunks_verified`` counts them); ``_mb_per_s`` is the write,
  ``_end_to_end_mb_per_s`` includes the proof;
- ``<part>_crc_*``: the fast path end to end on a served SoC with 8 MB of the part
  (:func:`proof_config`; the ideal part at a 1024-bit ``ideal_port_bits``): a
  ``--proof-mb`` image through the backdoor (``_fast_write_mb_per_s``), proved by the CRC
  command's word path, a beat a cycle (``_proof_mb_per_s``, ``_proof_bytes_per_cycle``
  from the device's cycle counter), both together (``_fast_end_to_end_mb_per_s``); the
  baselines: the link path on the same device (``--link-kb`` in frames, then the same
  proof: ``_link_load_end_to_end_mb_per_s``) and the old byte path (``word_crc=0``, a
  byte a request, its own build) over ``--baseline-kb`` (``_byte_proof_*``), and the
  speedup. The SDR part's proof is bounded
  by its 16-bit port: 2 bytes a cycle at most (``_proof_bound_bytes_per_cycle``);
- ``selftest_*``: the bare served loop (no socket) on the default SoC without DRAM (the
  baseline) and with an ideal DRAM attached and idle, 1024x256 t2 matvecs from on-chip
  weights back to back.
"""

import argparse
import json
import platform
import statistics
import time

import numpy as np

from tritium import protocol as P
from tritium.config import SocConfig
from tritium.dram import PARTS, DramConfig
from tritium.engines import tmv as TMV
from tritium.engines.tmv.config import TernaryConfig
from tritium.engines.tmv.golden import ternary_matvec, tmv_lines
from tritium.engines.tmv.model import dram_matvec_cycles
from tritium.host import Device
from tritium.sim.serve import DRAM_MAX_PAYLOAD, SimulatedDevice, selftest, with_dram
from tritium.sim import dram as model
from tritium.sim.dram_rtl import Harness
from _results import RESULTS_DIR, save_results  # bench/_results.py (run as a script)

#: the simulated DRAM of each part: 2 MiB holds the longest stream on either
SIZE = 1 << 21


def measure(part: str, beats: int, repeats: int) -> dict:
    p = PARTS[part]
    out = {f"{part}_peak_mb_per_s": round(p.peak_bytes_per_s / 1e6, 3)}
    with Harness(DramConfig(part=part, size=SIZE)) as h:
        for write in (False, True):
            d = "write" if write else "read"
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                cycles, _ = h.stream(0, beats, write)
                runs.append((cycles, time.perf_counter() - t0))
            cycles = statistics.median(c for c, _ in runs)
            wall = statistics.median(s for _, s in runs)
            predicted = model.stream_cycles(p, beats, write=write).cycles
            out[f"{part}_{d}_cycles"] = cycles
            out[f"{part}_{d}_mb_per_s"] = round(beats * p.port_bits / 8 * p.clk_hz
                                                / cycles / 1e6, 3)
            out[f"{part}_{d}_efficiency"] = round(beats / cycles, 4)
            out[f"{part}_{d}_model_cycles"] = round(predicted, 1)
            out[f"{part}_{d}_model_error_pct"] = round((predicted - cycles) / cycles * 100, 3)
            out[f"{part}_{d}_sim_cycles_per_s"] = round(cycles / wall)
    return out



#: the served SoC's DRAM for the matvecs: 8 MB holds the 4 MB image
SOC_DRAM_BYTES = 1 << 23


def soc_config(part: str, n: int) -> SocConfig:
    dram = DramConfig(part=part, size=SOC_DRAM_BYTES)
    t = TernaryConfig(simd=16, pe=4, max_in=n, max_out=n, weight_depth=dram.size_bytes // 16,
                      has_t3=0, weights_dram=1, mem_latency=32)
    return SocConfig(engines=(t,), dram=dram, max_payload=DRAM_MAX_PAYLOAD)


def image_of(t, codes) -> bytes:
    lb = t.line_bits // 8
    return b"".join(v.to_bytes(lb, "little") + bytes(t.line_stride - lb)
                    for v in tmv_lines(t, codes, "t2"))


def matvec_from_dram(part: str, n: int, repeats: int) -> dict:
    cfg = soc_config(part, n)
    t, dram = cfg.engines[0], cfg.dram
    rng = np.random.default_rng(n)
    codes = rng.choice(np.array([0, 1, 2], dtype=np.uint8), size=(n, n))
    x = rng.integers(-128, 128, n)
    image = image_of(t, codes)
    golden = ternary_matvec(t, codes, x)[0]
    model = dram_matvec_cycles(t, dram, n, n)
    fast_s, fast_verify, busy, dread, wall, ok = [], [], [], [], [], True
    with SimulatedDevice(cfg) as sd, Device(sd.url) as dev:
        for _ in range(repeats):
            rep = dev.load_dram({0: image}, fast=sd.backdoor_url)
            fast_s.append(rep.seconds)
            fast_verify.append(rep.verify_seconds)
            dev.write(dev.map["activations"]["base"], x.astype(np.int8).tobytes())
            before = dev.counters()
            t0 = time.monotonic()
            dev.run_tmv(n, n, 0, "t2", timeout=600)
            wall.append(time.monotonic() - t0)
            after = dev.counters()
            y = np.frombuffer(dev.read(dev.map["results"]["base"], 4 * n), dtype="<i4")
            ok &= y.astype(np.int64).tolist() == golden
            busy.append(after["tmv_busy_cycles"] - before["tmv_busy_cycles"])
            dread.append(after["dram_bytes_read"] - before["dram_bytes_read"])
        fast_crcs = len(rep.crcs)
        # the link load once (it takes seconds a megabyte), of the first megabyte
        first = image[:1 << 20]
        rep = dev.load_dram({0: first})
        link_s, link_verify = rep.seconds, rep.verify_seconds
        link_crcs = len(rep.crcs)
    b, rd = statistics.median(busy), statistics.median(dread)
    fs, fv = statistics.median(fast_s), statistics.median(fast_verify)
    k = f"{part}_tmv{n}"
    clocked = {f"{k}_sustained_mb_per_s": round(rd / b * dram.spec.clk_hz / 1e6, 3)} \
        if dram.spec.clk_hz else {}  # the ideal part has no clock
    return {**clocked,
        f"{k}_golden_equal": ok,
        f"{k}_weight_bytes": len(image),
        f"{k}_rtl_busy_cycles": b,
        f"{k}_model_cycles": model["cycles"],
        f"{k}_model_error_pct": round(100 * (model["cycles"] - b) / b, 4),
        f"{k}_compute_bound_cycles": model["compute_cycles"],
        f"{k}_dram_bytes_read": rd,
        f"{k}_sustained_bytes_per_cycle": round(rd / b, 4),
        f"{k}_peak_bytes_per_cycle": dram.word_bytes,
        f"{k}_bandwidth_efficiency": round(rd / b / dram.word_bytes, 4),
        f"{k}_served_wall_s": round(statistics.median(wall), 3),
        f"{part}_load_fast_bytes": len(image),
        f"{part}_load_fast_mb_per_s": round(len(image) / fs / 1e6, 1),
        f"{part}_load_fast_crc_verify_s": round(fv, 3),
        f"{part}_load_fast_end_to_end_mb_per_s": round(len(image) / (fs + fv) / 1e6, 3),
        f"{part}_load_fast_crc_chunks_verified": fast_crcs,
        f"{part}_load_link_bytes": len(first),
        f"{part}_load_link_mb_per_s": round(len(first) / link_s / 1e6, 3),
        f"{part}_load_link_crc_verify_s": round(link_verify, 3),
        f"{part}_load_link_crc_chunks_verified": link_crcs,
    }


#: the CRC proof's served SoCs: 8 MB of the part, the ideal part 1024 bits wide
PROOF_DRAM_BYTES, PROOF_IDEAL_BITS = 1 << 23, 1024


def proof_config(part: str, word_crc: int = 1) -> SocConfig:
    """The default SoC with 8 MB of ``part`` (tests/test_dram_crc.py builds the same)."""
    wide = PROOF_IDEAL_BITS if PARTS[part].kind == "ideal" else 0
    return SocConfig(dram=DramConfig(part=part, size=PROOF_DRAM_BYTES, ideal_port_bits=wide,
                                     word_crc=word_crc), max_payload=DRAM_MAX_PAYLOAD)


def _proofs(cfg: SocConfig, image: bytes, repeats: int, load: bool) -> dict:
    """Medians over ``repeats``: backdoor write seconds (``load``), CRC-proof seconds, the
    device's cycles during the proof; the proof's chunks."""
    write_s, proof_s, cycles = [], [], []
    with SimulatedDevice(cfg) as sd, Device(sd.url) as dev:
        base = dev.map["dram"]["base"]
        if not load:  # the baseline proves bytes put there once
            dev.load_dram({0: image}, fast=sd.backdoor_url)
        for _ in range(repeats):
            before = dev.counters()["cycles"]
            if load:
                rep = dev.load_dram({0: image}, fast=sd.backdoor_url)
                write_s.append(rep.seconds)
                proof_s.append(rep.verify_seconds)
                chunks = len(rep.crcs)
            else:
                t0 = time.monotonic()
                if dev.crc(base, len(image)) != P.crc32(image):
                    raise SystemExit("the byte-path CRC differs from the host's")
                proof_s.append(time.monotonic() - t0)
                chunks = 1
            cycles.append(dev.counters()["cycles"] - before)
    med = statistics.median
    return {"write_s": med(write_s) if write_s else None, "proof_s": med(proof_s),
            "cycles": med(cycles), "chunks": chunks}


def crc_proof(part: str, proof_bytes: int, baseline_bytes: int, link_bytes: int,
              repeats: int) -> dict:
    cfg = proof_config(part)
    rng = np.random.default_rng(15)
    image = rng.integers(0, 256, proof_bytes, dtype=np.uint8).tobytes()
    fast = _proofs(cfg, image, repeats, load=True)
    n = len(image)
    k = f"{part}_crc"
    proof_rate = n / fast["proof_s"] / 1e6
    out = {
        f"{k}_device": f"default SoC, {PROOF_DRAM_BYTES >> 20} MB of {part}, "
                       f"{cfg.dram.port_bits}-bit port beat",
        f"{k}_port_bits": cfg.dram.port_bits,
        f"{k}_proof_bound_bytes_per_cycle": cfg.dram.word_bytes,
        f"{k}_load_bytes": n,
        f"{k}_chunks_verified": fast["chunks"],
        f"{k}_fast_write_mb_per_s": round(n / fast["write_s"] / 1e6, 1),
        f"{k}_proof_mb_per_s": round(proof_rate, 3),
        f"{k}_fast_end_to_end_mb_per_s": round(n / (fast["write_s"] + fast["proof_s"]) / 1e6,
                                               3),
        f"{k}_proof_device_cycles": fast["cycles"],
        f"{k}_proof_bytes_per_cycle": round(n / fast["cycles"], 3),
        f"{k}_proof_sim_cycles_per_s": round(fast["cycles"] / fast["proof_s"]),
    }
    # the link path's baseline on the same device: frames in, the same proof
    with SimulatedDevice(cfg) as sd, Device(sd.url) as dev:
        runs = [dev.load_dram({0: image[:link_bytes]}) for _ in range(repeats)]
    link_s = statistics.median(r.seconds + r.verify_seconds for r in runs)
    out[f"{k}_link_load_bytes"] = link_bytes
    out[f"{k}_link_load_end_to_end_mb_per_s"] = round(link_bytes / link_s / 1e6, 3)
    if baseline_bytes:  # the old byte path's proof (word_crc=0: its own build)
        byte = _proofs(proof_config(part, word_crc=0), image[:baseline_bytes], repeats,
                       load=False)
        b = baseline_bytes
        byte_rate = b / byte["proof_s"] / 1e6
        out.update({
            f"{k}_byte_proof_bytes": b,
            f"{k}_byte_proof_mb_per_s": round(byte_rate, 3),
            f"{k}_byte_proof_device_cycles": byte["cycles"],
            f"{k}_byte_proof_bytes_per_cycle": round(b / byte["cycles"], 4),
            f"{k}_proof_speedup": round(proof_rate / byte_rate, 1),
        })
    return out


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
    ap.add_argument("--quick", action="store_true",
                    help="16k beats, a 1024 x 1024 matvec, one repeat")
    ap.add_argument("--beats", type=int, default=1 << 17)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--proof-mb", type=int, default=4,
                    help="MB the fast path loads and proves (the <part>_crc_* keys)")
    ap.add_argument("--baseline-kb", type=int, default=512,
                    help="KB the byte-path baseline proves (0: skip it and its build)")
    ap.add_argument("--link-kb", type=int, default=256,
                    help="KB the link-path baseline loads and proves")
    ap.add_argument("--parts", default="ideal,mt48lc16m16",
                    help="parts of the <part>_crc_* section (comma-separated)")
    ap.add_argument("--only-crc", action="store_true",
                    help="run only the <part>_crc_* section and update those keys in the "
                         "existing results file")
    args = ap.parse_args(argv)
    if args.only_crc:
        res = json.loads((RESULTS_DIR / "dram.json").read_text())
        for part in args.parts.split(","):
            res.update(crc_proof(part, args.proof_mb << 20, args.baseline_kb << 10,
                                 args.link_kb << 10, args.repeats))
        for k, v in res.items():
            print(f"{k}: {v}")
        print(save_results("dram", res))
        return
    beats, repeats = (1 << 14, 1) if args.quick else (args.beats, args.repeats)
    n = 1024 if args.quick else 4096
    res = {"dram_machine": f"{platform.machine()}, 2 cores shared",
           "dram_workload": f"{beats} sequential beats from beat 0, read then write, "
                            f"median of {repeats}",
           "dram_controller": "LiteDRAM 2024.12 controller + crossbar + SDRAMPHYModel, "
                              "Verilator, C++ port driver"}
    for part in ("mt48lc16m16", "mt41k128m16"):
        res.update(measure(part, beats, repeats))
    ideal = PARTS["ideal"]
    t = model.stream_cycles(ideal, beats)
    res["ideal_read_model_cycles"] = t.cycles
    res["ideal_read_efficiency"] = round(t.efficiency, 4)
    res["ideal_latency_cycles"] = ideal.latency
    res["soc_device"] = (f"SoC: bare TMV simd=16 pe=4 t2, weights in DRAM "
                         f"({SOC_DRAM_BYTES >> 20} MB), max_payload={DRAM_MAX_PAYLOAD}")
    for part in ("ideal", "mt48lc16m16"):
        res.update(matvec_from_dram(part, n, repeats))
    for part in args.parts.split(","):
        res.update(crc_proof(part, args.proof_mb << 20, args.baseline_kb << 10,
                             args.link_kb << 10, repeats))
    res.update(selftests(repeats))
    for k, v in res.items():
        print(f"{k}: {v}")
    print(save_results("dram", res))


if __name__ == "__main__":
    main()
