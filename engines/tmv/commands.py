"""CLI of the TMV engine: ``tritium sim ternary-dot``, ``tritium sim tmv``, ``tritium run
matvec`` and the demo's first part (registered through its description's ``commands``
hook, which each verb's parser calls with its subparsers). Light at import: the runners,
numpy, the checkpoint reader and the golden load inside the commands."""

from __future__ import annotations

from pathlib import Path

from tritium.cliargs import (add_device_option, add_json_flag, add_prompt_ids, device_kwargs,
                             int_range, print_json, prompt_ids)
from tritium.engines.tmv.config import TMV_FORMATS, TernaryConfig, TernaryDotConfig
from tritium.errors import TritiumError, UsageError
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


# ---- run matvec, and the demo's matvecs ---------------------------------------------------

def _run_rows(dev, trace) -> tuple[list[dict], bool]:
    """Run each (name, x_q, golden acc) on the device: one row per BitLinear (cycles beside
    the engine's formula, MAC utilisation, match with the golden) and whether all match."""
    import numpy as np

    t = dev.cfg.tmv
    rows, ok = [], True
    for name, x, golden in trace:
        p = dev.placements[name]
        y, delta = dev.matvec(name, x)
        match = bool(np.array_equal(y, np.asarray(golden, dtype=np.int64)))
        ok &= match
        cycles = delta["tmv_busy_cycles"]
        rows.append({"bitlinear": name, "rows": p.rows, "cols": p.cols, "cycles": cycles,
                     "model_cycles": t.cycles(p.rows, p.cols, p.fmt), "macs": p.rows * p.cols,
                     "mac_utilisation": p.rows * p.cols / max(1, cycles * t.pe * t.simd),
                     "match": match})
    return rows, ok


def _rows_table(title: str, rows: list[dict]):
    from rich.table import Table

    table = Table(title=title)
    for col in ("BitLinear", "rows x cols", "cycles", "model", "MAC util.", "match"):
        table.add_column(col, justify="right" if col != "BitLinear" else "left")
    for r in rows:
        table.add_row(r["bitlinear"], f"{r['rows']} x {r['cols']}", f"{r['cycles']:,}",
                      f"{r['model_cycles']:,}", f"{r['mac_utilisation']:.1%}",
                      "[green]yes[/]" if r["match"] else "[red]NO[/]")
    return table


def float_golden(desc):
    """The float golden model of a checkpoint's architecture (HGRN-bit or BitNet)."""
    from tritium.golden.bitnet import BitNetForCausalLM
    from tritium.golden.hgrn import HGRNBitForCausalLM
    from tritium.golden.checkpoint import ARCH_HGRN

    return (HGRNBitForCausalLM if desc.arch == ARCH_HGRN else BitNetForCausalLM)(desc)


def cmd_run_matvec(args) -> int:
    """``run matvec``: one BitLinear (``--layer``) or, without it, every BitLinear of the
    checkpoint in execution order, each with the activations of the golden model's integer
    path at the prompt's last token and checked against that path's exact accumulators
    (``--random``: random int8 activations, checked against the engine's golden matvec).
    Exit 1 on a mismatch."""
    import numpy as np
    from rich.console import Console

    from tritium.engines.tmv.golden import ternary_matvec
    from tritium.golden.checkpoint import load_checkpoint
    from tritium.host.device import Device

    desc = load_checkpoint(args.checkpoint)
    with Device(args.device, **device_kwargs(args)) as dev:
        dev.attach(desc, args.format)
        if args.layer is not None and args.layer not in dev.placements:
            raise TritiumError(f"no BitLinear {args.layer!r} in {args.checkpoint}; one of: "
                               f"{', '.join(list(dev.placements)[:6])} …")
        if args.random:
            rng = np.random.default_rng(args.seed)
            names = [args.layer] if args.layer else list(dev.placements)
            trace = []
            for name in names:
                x = rng.integers(-128, 128, dev.placements[name].cols)
                trace.append((name, x, ternary_matvec(dev.cfg.tmv, dev.placements[name].codes,
                                                      x)[0]))
        else:
            trace = float_golden(desc).trace_integer_matvecs(prompt_ids(args.prompt_ids))
            if args.layer is not None:
                trace = [t for t in trace if t[0] == args.layer]
        what = args.layer or f"all {len(trace)} BitLinears"
        rows, ok = _run_rows(dev, trace)
    if args.json:
        print_json({"checkpoint": str(args.checkpoint), "arch": desc.arch, "ok": ok,
                     "rows": rows})
    else:
        Console().print(_rows_table(f"matvec {what} ({desc.arch})", rows))
    return 0 if ok else 1


def demo_matvecs(console, desc, args, result: dict) -> bool:
    """The demo's first part: ``desc`` loaded through the driver into the simulated FPGA
    of the served TMV, every BitLinear of one token (the prompt
    :data:`~tritium.cliargs.DEMO_PROMPT`) on the engine against the golden integer path,
    printed on ``console``; ``result`` gains ``matvecs``, ``matvecs_identical``,
    ``load_bytes`` and ``device_crc``. Returns whether every BitLinear matches."""
    from tritium.cliargs import DEMO_PROMPT
    from tritium.config import SocConfig
    from tritium.golden.hgrn import HGRNBitForCausalLM
    from tritium.host.device import Device
    from tritium.sim.serve import SimulatedDevice

    with console.status("building the simulated FPGA (Verilator; cached after the first time)"):
        sim = SimulatedDevice(SocConfig()).start()
    try:
        console.print(f"simulated FPGA on {sim.url}")
        with Device(sim.url) as dev:
            rep = dev.load(desc, fmt="t2", progress=not console.quiet)
            console.print(f"loaded {rep.bytes_sent:,} bytes of t2 weights at "
                          f"{rep.mb_per_s:.2f} MB/s; device CRC {rep.device_crc:#010x} matches "
                          f"the host's")
            trace = HGRNBitForCausalLM(desc).trace_integer_matvecs(list(DEMO_PROMPT))
            t = dev.cfg.tmv
            rows, ok = _run_rows(dev, trace)
            result.update(matvecs=rows, matvecs_identical=ok, load_bytes=rep.bytes_sent,
                          device_crc=rep.device_crc)
            console.print(_rows_table(
                f"one token (prompt {list(DEMO_PROMPT)}): every BitLinear on the TMV engine "
                f"(SIMD {t.simd} x PE {t.pe}) vs the golden integer path", rows))
            cycles, macs = sum(r["cycles"] for r in rows), sum(r["macs"] for r in rows)
            clock = dev.cfg.clock_hz
            console.print(f"{len(trace)} BitLinears, {macs:,} MACs in {cycles:,} engine cycles "
                          f"({macs / max(1, cycles * t.pe * t.simd):.1%} MAC utilisation): "
                          f"{cycles / clock * 1e3:.2f} ms of BitLinear work per token at "
                          f"{clock / 1e6:.0f} MHz")
    finally:
        sim.stop()
    console.print("[bold green]every layer matches the golden model[/]" if ok
                  else "[bold red]MISMATCH against the golden model[/]")
    return ok


def _register_run(sub) -> None:
    q = sub.add_parser("matvec", help="BitLinears on the TMV engine",
                       description="Run one BitLinear (--layer) or every BitLinear of a "
                       "loaded HGRN-bit or BitNet checkpoint on the device's TMV engine, "
                       "each with the golden model's int8 activations at the prompt's last "
                       "token, compare with the golden's exact integer accumulators, print "
                       "cycles.")
    q.add_argument("checkpoint")
    q.add_argument("--layer", help="BitLinear name, e.g. lm_head (default: every BitLinear)")
    add_device_option(q)
    q.add_argument("--format", choices=TMV_FORMATS, default=TMV_FORMATS[0])
    add_prompt_ids(q, "activations from the golden model at this prompt's last token")
    q.add_argument("--random", action="store_true", help="random int8 activations instead")
    q.add_argument("--seed", type=int, default=0)
    add_json_flag(q)
    q.set_defaults(func=cmd_run_matvec)


def register(verb: str, sub):
    """Add this engine's subcommands of ``verb`` (``sim``, ``run``) to ``sub``; for
    ``inspect`` (``sub`` is then its parser) add ``--format``; for ``demo`` (its parser)
    return the demo's part, :func:`demo_matvecs`."""
    if verb == "demo":
        return demo_matvecs
    if verb == "inspect":  # the packed format a checkpoint's device footprint assumes
        sub.add_argument("--format", choices=TMV_FORMATS, default=TMV_FORMATS[0],
                         help="weight format assumed for --device-mem (t2)")
    if verb == "run":
        _register_run(sub)
    if verb != "sim":
        return None
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
