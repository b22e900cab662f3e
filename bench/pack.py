"""Packing and quantisation throughput, and the golden HGRN-bit model's speed per token.

Writes bench/results/pack.json. On a 2048x5632 layer (the MLP shape of MMfreeLM-1.3B) the
vectorised t3/t2 packers and the ternary quantiser run beside their simple reference
implementations in the same run (so both see the same machine load), on one thread;
throughput is the median of --repeats runs.  Packing is reported in MB/s of packed output,
quantisation in millions of latent parameters per second.  The HGRN-bit model (2 layers,
H=256) is timed teacher-forced, float path and integer path, in ms per token.
"""

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tritium.golden.hgrn import HGRNBitForCausalLM
from tritium.golden.ternary import pack_t2, pack_t2_simple, pack_t3, pack_t3_simple
from tritium.golden.checkpoint import write_checkpoint
from tritium.golden.quantize import quantize_weights, quantize_weights_simple
from _results import save_results  # bench/_results.py (run as a script)

ROWS, COLS = 2048, 5632


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=64, help="tokens per HGRN logits run")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    latent = (torch.randn(ROWS, COLS, generator=torch.Generator().manual_seed(0))
              * COLS ** -0.5).to(torch.bfloat16)
    codes, _ = quantize_weights(latent)
    results = {"layer_rows": ROWS, "layer_cols": COLS, "repeats": args.repeats,
               "torch_threads": torch.get_num_threads()}

    for name, fast, simple in (("pack_t3", pack_t3, pack_t3_simple),
                               ("pack_t2", pack_t2, pack_t2_simple)):
        out_bytes = fast(codes).nbytes
        if not np.array_equal(fast(codes), simple(codes)):
            raise SystemExit(f"{name} and its reference disagree")
        results[f"{name}_output_bytes"] = out_bytes
        results[f"{name}_mb_per_s"] = out_bytes / 1e6 / median_seconds(
            lambda: fast(codes), args.repeats)
        results[f"{name}_ref_mb_per_s"] = out_bytes / 1e6 / median_seconds(
            lambda: simple(codes), args.repeats)

    fast_q, ref_q = quantize_weights(latent), quantize_weights_simple(latent)
    if not (np.array_equal(fast_q[0], ref_q[0]) and fast_q[1] == ref_q[1]):
        raise SystemExit("quantize_weights and its reference disagree")
    mparams = ROWS * COLS / 1e6
    results["quantize_mparams_per_s"] = mparams / median_seconds(
        lambda: quantize_weights(latent), args.repeats)
    results["quantize_ref_mparams_per_s"] = mparams / median_seconds(
        lambda: quantize_weights_simple(latent), args.repeats)

    with tempfile.TemporaryDirectory() as tmp:
        model = HGRNBitForCausalLM.from_pretrained(
            write_checkpoint(Path(tmp) / "hgrn", "hgrn-bit", hidden=256, layers=2,
                             vocab=1024, seed=0))
    ids = torch.randint(0, 1024, (args.tokens,), generator=torch.Generator().manual_seed(1))
    repeats = max(3, args.repeats // 2)
    results["hgrn_hidden"], results["hgrn_layers"] = 256, 2
    results["hgrn_logits_ms_per_token"] = 1e3 / args.tokens * median_seconds(
        lambda: model.logits(ids), repeats)
    results["hgrn_logits_integer_ms_per_token"] = 1e3 / args.tokens * median_seconds(
        lambda: model.logits(ids, integer=True), repeats)
    report = model.compare(ids)
    results["hgrn_integer_max_abs_dlogit"] = report.max_abs_dlogit
    results["hgrn_integer_top1_agreement"] = report.top1_agreement
    results["python"] = platform.python_version()
    results["machine"] = platform.machine()

    save_results("pack", results, sort_keys=True)
    print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
