"""CLI of the TMV engine: ``tritium sim ternary-dot`` and ``tritium sim tmv`` (registered
through its description's ``commands`` hook, which each verb's parser calls with its
subparsers). Light at import: the runners, numpy and the golden load inside the
commands."""

from __future__ import annotations

from pathlib import Path

from tritium.cliargs import add_json_flag, int_range
from tritium.engines.tmv.config import TernaryConfig, TernaryDotConfig
from tritium.errors import UsageError
from tritium.sim.commands import (MAX_VECTORS, add_sim_options, sim_report, sim_setup,
                                  sim_status)


def _random_vectors(cfg, count: int, seed: int, length: int | None):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = length or int(rng.integers(1, cfg.max_length + 1))
        out.append((rng.integers(0, 3, n).tolist(),
                    rng.integers(cfg.act_min, cfg.act_max + 1, n).tolist()))
    return out


def _run_andsim_report(args, cfg, vectors) -> int:
    from tritium.engines.tmv.golden import ternary_dot
    from tritium.engines.tmv.dot_runner import run_ternary_dot

    with sim_status(args, f"building + simulating TernaryDot ({cfg.lanes} lanes) in Verilator"):
        out = run_ternary_dot(cfg, vectors, seed=args.seed, valid_prob=1 - args.stall,
                              ready_prob=1 - args.stall, waves=args.waves,
                              run_dir=args.run_dir)
    golden = [ternary_dot(cfg, c, x)[0] for c, x in vectors]
    rows = [{"index": k, "length": len(c), "rtl": v, "golden": g, "match": v == g}
            for k, (v, g, (c, _)) in enumerate(zip(out["results"], golden, vectors))]
    beats = len(out["in_cycles"])
    span = out["out_cycles"][-1] - out["in_cycles"][0]
    lines = [f"{len(vectors)} dot products, {beats} beats, {span} cycles "
             f"({cfg.lanes * beats / max(span, 1):.1f} lane-MACs/cycle under stalls); "
             f"Verilator model {'reused from cache' if out['cached'] else 'built'}"]
    if args.waves and args.run_dir:
        lines.append(f"waves: {Path(args.run_dir) / out['wave_file']}")
    return sim_report(args, f"TernaryDot, {cfg.lanes} lanes, acc {cfg.acc_bits} bits, "
                         f"random valid/ready stalls p={args.stall}",
                   [("#", "index"), ("length", "length"), ("RTL (Verilator)", "rtl"),
                    ("golden", "golden"), ("match", "match")],
                   rows, lines, out["results"] == golden, show=args.show,
                   config=cfg.to_dict(), beats=beats, cycles=span)


def cmd_sim_dot(args) -> int:
    cfg = sim_setup(args, TernaryDotConfig)
    if args.length is not None and not 1 <= args.length <= cfg.max_length:
        raise UsageError(f"--length {args.length} is out of range: give 1 to "
                         f"{cfg.max_length} (--max-length)")
    vectors = _random_vectors(cfg, args.vectors, args.seed, args.length)
    return _run_andsim_report(args, cfg, vectors)


def cmd_sim_tmv(args) -> int:
    """Random shapes (IN/OUT not multiples of SIMD/PE included), every built format,
    random stalls; each result checked against the golden, counters against the formula."""
    import numpy as np

    from tritium.engines.tmv.golden import ternary_matvec
    from tritium.engines.tmv.runner import run_tmv

    cfg = sim_setup(args, TernaryConfig)
    rng = np.random.default_rng(args.seed)
    rows, ok, lanes = [], True, cfg.pe * cfg.simd
    with sim_status(args, "simulating TernaryMatVec in Verilator"):
        for k in range(args.jobs):
            n_out = int(rng.integers(1, min(cfg.max_out, args.max_shape) + 1))
            n_in = int(rng.integers(1, min(cfg.max_in, args.max_shape) + 1))
            fmt = cfg.formats[k % len(cfg.formats)]
            codes = rng.integers(0, 3, (n_out, n_in))
            x = rng.integers(cfg.act_min, cfg.act_max + 1, n_in)
            y, cnt = run_tmv(cfg, codes, x, fmt, seed=args.seed + k, valid_prob=1 - args.stall,
                             ready_prob=1 - args.stall, waves=args.waves,
                             run_dir=Path(args.run_dir) / f"job{k}" if args.run_dir else None)
            match = list(y) == ternary_matvec(cfg, codes, x)[0]
            # under stalls: busy = unstalled formula + input and output stall cycles
            formula = cfg.cycles(n_out, n_in, fmt) + cnt["stall_input"] + cnt["stall_output"]
            ok &= match and cnt["busy_cycles"] == formula
            rows.append({"index": k, "shape": f"{n_out} x {n_in}", "fmt": fmt, "match": match,
                         "busy_cycles": cnt["busy_cycles"], "formula_cycles": formula,
                         "stalls": f"{cnt['stall_input']}/{cnt['stall_output']}/"
                                   f"{cnt['stall_memory']}",
                         "mac_utilisation": f"{n_out * n_in / max(1, cnt['busy_cycles'] * lanes):.1%}"})
    return sim_report(args, f"TMV SIMD {cfg.simd} x PE {cfg.pe}, formats {'+'.join(cfg.formats)}, "
                         f"stalls p={args.stall}",
                   [("#", "index"), ("rows x cols", "shape"), ("fmt", "fmt"), ("match", "match"),
                    ("busy", "busy_cycles"), ("formula", "formula_cycles"),
                    ("stall in/out/mem", "stalls"), ("MAC util.", "mac_utilisation")],
                   rows, [], ok, config=cfg.to_dict())


def register(verb: str, sub) -> None:
    """Add this engine's subcommands of ``verb`` (``sim``) to ``sub``."""
    if verb != "sim":
        return
    cp = sub.add_parser("ternary-dot", help="TernaryDot on random vectors")
    cp.add_argument("--vectors", type=int_range(1, MAX_VECTORS), default=16,
                    help="dot products (default 16)")
    cp.add_argument("--length", type=int,
                    help="vector length (default: random up to --max-length)")
    cp.add_argument("--show", type=int_range(0), default=16, help="rows to print")
    add_sim_options(cp, TernaryDotConfig)
    add_json_flag(cp)
    cp.set_defaults(func=cmd_sim_dot)

    cp = sub.add_parser("tmv", help="the TMV engine on random shapes, both formats",
                        description="Random shapes (IN/OUT not multiples of SIMD/PE "
                        "included), every built format, random stalls; results against the "
                        "golden, counters against the cycle formula.")
    cp.add_argument("--jobs", type=int_range(1), default=6, help="matvecs (default 6)")
    cp.add_argument("--max-shape", type=int_range(1), default=96,
                    help="largest rows/cols (default 96)")
    add_sim_options(cp, TernaryConfig)
    add_json_flag(cp)
    cp.set_defaults(func=cmd_sim_tmv)
