"""CLI subcommands of the host layer: ``make-checkpoint`` and ``inspect``.

``inspect --format`` (the packed format ``--device-mem`` assumes) is the TMV engine's
option, added by its ``commands`` hook for the verb ``inspect``: the formats are the ones
it takes.

Both print errors through :func:`tritium.cli.main` (one line, non-zero exit); progress
bars go to stderr and disappear with ``--quiet``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from tritium.cliargs import add_json_flag, add_model_size_options, engine_hooks, int_range
# torch-free at import time: tritium.golden.checkpoint (torch) is imported by the commands
from tritium.golden.shapes import ARCHITECTURES, MODEL_PRESETS, CheckpointError

#: the small generated model's sizes (make-checkpoint without --preset)
SMALL_MODEL = {"hidden": 64, "layers": 2, "vocab": 256}

#: peak host bytes per parameter of the largest tensor while make-checkpoint runs (one
#: tensor at a time): the float32 draw, its bf16 copy and the bytes written
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
    from tritium.golden.checkpoint import (_spec_for, check_host_memory, preset_arch,
                                           synthetic_config, write_checkpoint)
    from tritium.golden.shapes import MODEL_PRESETS
    from tritium.progress import make_progress

    if args.preset is not None:
        given = [o for o in ("hidden", "vocab") if getattr(args, o) is not None]
        if given:
            raise CheckpointError(f"--preset {args.preset} fixes --{given[0]}; leave it out "
                                  "(--layers may reduce the depth)")
        p = MODEL_PRESETS[args.preset]
        args.arch = args.arch or preset_arch(args.preset)
        args.hidden, args.vocab = p["hidden_size"], p["vocab_size"]
        args.layers = args.layers or p["num_hidden_layers"]
    elif args.arch is None:
        raise CheckpointError("give --arch (hgrn-bit, bitnet, bitnet-packed) or --preset")
    args.hidden = args.hidden or SMALL_MODEL["hidden"]
    args.layers = args.layers or SMALL_MODEL["layers"]
    args.vocab = args.vocab or SMALL_MODEL["vocab"]
    spec = _spec_for(synthetic_config(args.arch, args.hidden, args.layers, args.vocab,
                                      args.preset))
    largest = max(math.prod(e.logical or e.shape) for e in spec.tensors)
    check_host_memory(largest * GENERATE_BYTES_PER_PARAM,
                      f"drawing a {largest:,}-parameter tensor of the checkpoint")
    with make_progress(not args.quiet) as progress:
        out = write_checkpoint(args.output, args.arch, args.hidden, args.layers, args.vocab,
                               seed=args.seed, shards=args.shards, progress=progress,
                               unit_scale=args.unit_scale, preset=args.preset)
    if not args.quiet:
        init = "unit-scale toy init" if args.unit_scale else "upstream init (std 0.02)"
        shape = f"preset {args.preset}, " if args.preset else ""
        print(f"wrote {out}: {args.arch}, {shape}hidden {args.hidden}, {args.layers} "
              f"layer(s), vocab {args.vocab}, seed {args.seed}, {init}", file=sys.stderr)
    return 0


# ---- inspect ----------------------------------------------------------------------------------

def cmd_inspect(args) -> int:
    from tritium.golden.checkpoint import check_device_memory, describe, scan_checkpoint
    from tritium.progress import make_progress, track
    from tritium.golden.ternary import pack_t2, pack_t3

    # The memory check needs only the tensor shapes, so it runs before any weight is read.
    spec, source = scan_checkpoint(args.checkpoint)
    need = check_device_memory(spec, args.device_mem, args.format)
    with make_progress(not args.quiet) as progress:
        desc = describe(spec, source, progress)
        linears = list(desc.bitlinears())
        packed = {lin.name: (pack_t2(lin.codes).nbytes, pack_t3(lin.codes).nbytes)
                  for lin in track(progress, linears, "pack", len(linears))}
    rows = [{"bitlinear": lin.name, "out_features": lin.out_features,
             "in_features": lin.in_features, "zeros": lin.sparsity,
             "t2_bytes": packed[lin.name][0], "t3_bytes": packed[lin.name][1]}
            for lin in linears]
    ternary = sum(lin.parameters for lin in linears)
    report = {"checkpoint": str(args.checkpoint), "arch": desc.arch,
              "architectures": desc.config.get("architectures") or [],
              "hidden_size": desc.hidden_size, "num_layers": desc.num_layers,
              "vocab_size": desc.vocab_size, "intermediate_size": desc.intermediate_size,
              "parameters": desc.parameter_count, "ternary_parameters": ternary,
              "zeros": sum(lin.sparsity * lin.parameters for lin in linears) / max(1, ternary),
              "t2_bytes": sum(r["t2_bytes"] for r in rows),
              "t3_bytes": sum(r["t3_bytes"] for r in rows),
              "format": args.format, "device_bytes": need, "device_mem": args.device_mem,
              "bitlinears": rows}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_inspect(report)
    return 0


def _print_inspect(r: dict) -> None:
    print(f"checkpoint    {r['checkpoint']}")
    print(f"architecture  {r['arch']} ({', '.join(r['architectures'])})")
    print(f"hidden {r['hidden_size']}, layers {r['num_layers']}, vocab {r['vocab_size']}, "
          f"intermediate {r['intermediate_size']}")
    print(f"parameters    {r['parameters']:,} ({r['ternary_parameters']:,} ternary)")
    print(f"\n{'bitlinear':<36} {'out x in':>13} {'zeros':>7} {'t2 bytes':>10} "
          f"{'t3 bytes':>10}")
    for row in r["bitlinears"]:
        shape = f"{row['out_features']}x{row['in_features']}"
        print(f"{row['bitlinear']:<36} {shape:>13} {row['zeros']:>7.1%} "
              f"{row['t2_bytes']:>10,} {row['t3_bytes']:>10,}")
    print(f"{'total':<36} {'':>13} {r['zeros']:>7.1%} {r['t2_bytes']:>10,} "
          f"{r['t3_bytes']:>10,}")
    limit = f" of {r['device_mem']:,}" if r["device_mem"] else ""
    print(f"\ndevice memory ({r['format']}): {r['device_bytes']:,} bytes{limit}")


def register(sub) -> None:
    p = sub.add_parser(
        "make-checkpoint", help="write a deterministic checkpoint in the real HF layout",
        description="Write a deterministic checkpoint with the key names, dtypes and "
                    "config.json fields of the released models: HGRN-bit (MMfreeLM, bf16 "
                    "latent), BitNet b1.58 (bf16 latent) or BitNet b1.58 pre-packed (uint8 "
                    "+ weight_scale), small or at a released model's shapes (--preset), "
                    "initialised as upstream initialises one. Tensors are drawn and written "
                    "one at a time, so memory holds one tensor. Nothing is downloaded.")
    p.add_argument("--arch", choices=ARCHITECTURES,
                   help="model family/layout (required without --preset; with it, the "
                        "preset's family, latent weights unless bitnet-packed)")
    p.add_argument("--preset", choices=sorted(MODEL_PRESETS),
                   help="a released model's shapes (hidden, intermediate, heads, vocab, "
                        "depth); --layers N writes a reduced-depth model of real width")
    add_model_size_options(p, **SMALL_MODEL)
    # unset unless given: a preset supplies them (and refuses --hidden/--vocab)
    p.set_defaults(hidden=None, layers=None, vocab=None)
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
    engine_hooks("inspect", p)  # --format: the packed weight formats (the TMV's)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_json_flag(p)
    p.set_defaults(func=cmd_inspect)
