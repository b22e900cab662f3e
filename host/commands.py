"""CLI subcommands of the host layer: ``make-checkpoint`` and ``inspect``.

Both print errors through :func:`tritium.cli.main` (one line, non-zero exit); progress
bars go to stderr and disappear with ``--quiet``.
"""

from __future__ import annotations

import argparse
import math
import sys

from tritium.cliargs import int_range
from tritium.config import TMV_FORMATS
# sizes only at import time: tritium.golden.checkpoint (torch) is imported by the commands
from tritium.golden.shapes import ARCHITECTURES, MAX_DIM, MAX_LAYERS, MAX_VOCAB

#: peak host bytes per parameter while make-checkpoint runs: the float32 draw, its bf16
#: copy kept in the state dict, and the serialised file buffer
GENERATE_BYTES_PER_PARAM = 8
#: --seed range: the generator seed is seed * 1_000_003 + crc32(key), within torch's 64 bits
SEED_MAX = 2 ** 32 - 1


def _byte_count(text: str) -> int:
    """'1048576', '512K', '64M', '2G' -> bytes (binary multiples)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().removesuffix("B") or "x"
    factor = units.get(t[-1], 1)
    try:
        value = int(t[:-1] if t[-1] in units else t) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a byte count like 65536 or 64M") \
            from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: device memory must be positive")
    return value


# ---- make-checkpoint ------------------------------------------------------------------------

def cmd_make_checkpoint(args) -> int:
    from tritium.golden.checkpoint import (_spec_for, check_host_memory, make_progress,
                                           synthetic_config, write_checkpoint)

    spec = _spec_for(synthetic_config(args.arch, args.hidden, args.layers, args.vocab))
    params = sum(math.prod(e.logical or e.shape) for e in spec.tensors)
    check_host_memory(params * GENERATE_BYTES_PER_PARAM,
                      f"writing a checkpoint of {params:,} parameters")
    with make_progress(not args.quiet) as progress:
        out = write_checkpoint(args.output, args.arch, args.hidden, args.layers, args.vocab,
                               seed=args.seed, shards=args.shards, progress=progress,
                               unit_scale=args.unit_scale)
    if not args.quiet:
        init = "unit-scale toy init" if args.unit_scale else "upstream init (std 0.02)"
        print(f"wrote {out}: {args.arch}, hidden {args.hidden}, {args.layers} layer(s), "
              f"vocab {args.vocab}, seed {args.seed}, {init}", file=sys.stderr)
    return 0


# ---- inspect ----------------------------------------------------------------------------------

def cmd_inspect(args) -> int:
    from tritium.golden.checkpoint import (check_device_memory, describe, make_progress,
                                           scan_checkpoint, track)
    from tritium.golden.ternary import pack_t2, pack_t3

    # The memory check needs only the tensor shapes, so it runs before any weight is read.
    spec, source = scan_checkpoint(args.checkpoint)
    need = check_device_memory(spec, args.device_mem, args.format)
    with make_progress(not args.quiet) as progress:
        desc = describe(spec, source, progress)
        linears = list(desc.bitlinears())
        packed = {lin.name: (pack_t2(lin.codes).nbytes, pack_t3(lin.codes).nbytes)
                  for lin in track(progress, linears, "pack", len(linears))}
    out = sys.stdout
    print(f"checkpoint    {args.checkpoint}", file=out)
    print(f"architecture  {desc.arch} ({', '.join(desc.config.get('architectures') or [])})",
          file=out)
    print(f"hidden {desc.hidden_size}, layers {desc.num_layers}, vocab {desc.vocab_size}, "
          f"intermediate {desc.intermediate_size}", file=out)
    print(f"parameters    {desc.parameter_count:,} "
          f"({sum(lin.parameters for lin in linears):,} ternary)", file=out)
    print(f"\n{'bitlinear':<36} {'out x in':>13} {'zeros':>7} {'t2 bytes':>10} "
          f"{'t3 bytes':>10}", file=out)
    for lin in linears:
        t2, t3 = packed[lin.name]
        shape = f"{lin.out_features}x{lin.in_features}"
        print(f"{lin.name:<36} {shape:>13} {lin.sparsity:>7.1%} {t2:>10,} {t3:>10,}", file=out)
    t2_total = sum(v[0] for v in packed.values())
    t3_total = sum(v[1] for v in packed.values())
    zeros = sum(lin.sparsity * lin.parameters for lin in linears)
    total = sum(lin.parameters for lin in linears)
    print(f"{'total':<36} {'':>13} {zeros / max(1, total):>7.1%} {t2_total:>10,} "
          f"{t3_total:>10,}", file=out)
    limit = f" of {args.device_mem:,}" if args.device_mem else ""
    print(f"\ndevice memory ({args.format}): {need:,} bytes{limit}", file=out)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "make-checkpoint", help="write a small deterministic checkpoint in the real HF layout",
        description="Write a small, deterministic checkpoint with the key names, dtypes and "
                    "config.json fields of the released models: HGRN-bit (MMfreeLM, bf16 "
                    "latent), BitNet b1.58 (bf16 latent) or BitNet b1.58 pre-packed (uint8 "
                    "+ weight_scale). Nothing is downloaded.")
    p.add_argument("--arch", choices=ARCHITECTURES, required=True, help="model family/layout")
    p.add_argument("--hidden", type=int_range(1, MAX_DIM), default=64,
                   help="hidden size, multiple of 4 (64)")
    p.add_argument("--layers", type=int_range(1, MAX_LAYERS), default=2,
                   help="number of layers (2)")
    p.add_argument("--vocab", type=int_range(1, MAX_VOCAB), default=256,
                   help="vocabulary size (256)")
    p.add_argument("--seed", type=int_range(0, SEED_MAX), default=0, help="random seed (0)")
    p.add_argument("--shards", type=int_range(1), default=1,
                   help="split the weights over N safetensors shards with an index (1)")
    p.add_argument("--unit-scale", action="store_true",
                   help="toy weights with O(1) activations instead of the default upstream "
                        "initialisation (normal std 0.02, norm gains 1, lower bounds 0), "
                        "whose small activations are what real models see")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="output directory (must not exist, or be empty)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=cmd_make_checkpoint)

    p = sub.add_parser(
        "inspect", help="describe a checkpoint: layers, sparsity, packed sizes",
        description="Load a checkpoint (HF directory, .safetensors or torch .bin/.pt), "
                    "ternarise it and print its architecture, layer shapes, parameter count, "
                    "per-layer ternary sparsity and packed sizes in the t2 and t3 formats.")
    p.add_argument("checkpoint", metavar="CKPT", help="model directory or weight file")
    p.add_argument("--device-mem", type=_byte_count, metavar="BYTES",
                   help="device memory (e.g. 65536, 512K, 64M); a model that does not fit "
                        "is an error, reported before any weight is read")
    p.add_argument("--format", choices=TMV_FORMATS, default=TMV_FORMATS[0],
                   help="weight format assumed for --device-mem (t2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_inspect)
