"""CLI: ``serve``, ``load``, ``run matvec``, ``generate`` and ``demo`` (the main job).

``demo`` makes a small HGRN-bit checkpoint, starts the simulated FPGA, loads the
checkpoint through the driver, runs every BitLinear of one token through the TMV engine
and compares each result with the golden integer path; then it generates 16 tokens on
the token core (every layer on the device) and checks them against the fixed-point
golden.
"""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path


from tritium.cliargs import (add_engine_options, add_json_flag, engine_name, engine_options_applied,
                             engines_help, parser_engines, print_json)
from tritium import registry
from tritium.config import SocConfig, load_config, served_soc
from tritium.engines.mfc.config import MfcConfig
from tritium.errors import ConfigError, SimulationError, TritiumError

DEMO_PROMPT = (1, 2, 3)
#: default ``--min-agreement`` of ``generate`` and ``demo``: teacher-forced top-1 agreement of
#: the core with the float reference below this is an error. From the noise floor: the float
#: golden's own float16 run agrees 76-99 % with its float32 run on upstream-initialised and
#: unit-scale models (bench/results/mfc.json ``fp16_*_top1``; upstream's fp16 87-97 %), the
#: core at default formats 93-98 % (``agree_*_top1``); over a 19-token generation the
#: sampling spread is about ±9 points; a collapsed core agrees 0-13 %. 0.5 sits between.
DEFAULT_MIN_AGREEMENT = 0.5


def _soc_config(path, engine: str | None = None) -> SocConfig:
    if not path:
        return served_soc(engine or registry.default_name())
    cfg = load_config(path)
    if not isinstance(cfg, SocConfig):
        raise ConfigError(f"{path} holds a {cfg.kind!r} config; `serve` needs a 'soc' config")
    return cfg


def _ids(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise TritiumError(f"--prompt-ids must be comma-separated integers, got {text!r}") \
            from None


# ---- serve ------------------------------------------------------------------------------

def cmd_serve(args) -> int:
    from rich.console import Console

    from tritium.sim.serve import SimulatedDevice

    from tritium.sim.serve import with_dram

    console = Console(stderr=True)
    cfg = engine_options_applied(args, _soc_config(args.config, args.engine))
    if args.dram is not None:
        cfg = with_dram(cfg, args.dram, args.dram_size, large_frames=not args.config)
    dev = SimulatedDevice(cfg, port=args.port)  # checks the port before building
    with console.status("building the simulated FPGA (Verilator; cached after the first time)"):
        dev.start()
    print(dev.url, flush=True)
    console.print(f"simulated FPGA serving on {dev.url} (Ctrl-C to stop)")
    if dev.backdoor_url:
        console.print(f"DRAM backdoor (Device.load_dram(..., fast=URL)): {dev.backdoor_url}")
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    try:
        while not stop and dev.proc.poll() is None:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        died = dev.died()
        dev.stop()
    if died:
        raise SimulationError(f"the simulated FPGA on {dev.url} ended ({died}); hosts "
                              "connected to it lost it: restart `tritium serve`")
    return 0


# ---- load / run -------------------------------------------------------------------------

def cmd_load(args) -> int:
    from tritium.golden.checkpoint import load_checkpoint

    from .device import Device

    desc = load_checkpoint(args.checkpoint)
    with Device(args.device) as dev:
        kw = {"fast": args.fast} if args.fast else {}
        rep = dev.load(desc, fmt=args.format, progress=not args.quiet, **kw)
    print(f"loaded {len(rep.layers)} BitLinears ({rep.bytes_sent:,} bytes, {args.format}) "
          f"in {rep.seconds:.2f} s = {rep.mb_per_s:.2f} MB/s; device CRC {rep.device_crc:#010x} "
          "matches")
    return 0


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


def cmd_run(args) -> int:
    """``run matvec``: one BitLinear (``--layer``) or, without it, every BitLinear of the
    checkpoint in execution order, each with the activations of the golden model's integer
    path at the prompt's last token and checked against that path's exact accumulators
    (``--random``: random int8 activations, checked against the engine's golden matvec)."""
    import numpy as np
    from rich.console import Console

    from tritium.engines.tmv.golden import ternary_matvec
    from tritium.golden.checkpoint import load_checkpoint

    from .device import Device

    desc = load_checkpoint(args.checkpoint)
    with Device(args.device) as dev:
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
            trace = float_golden(desc).trace_integer_matvecs(_ids(args.prompt_ids))
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


#: the per-unit counters a generation report shows, device beside the cycle model
GENERATION_UNITS = ("tmv_busy", "vpu_busy", "scalar_busy", "issue", "wait_tmv", "cycles")


def _generation(desc, compiled, prompt, n, tokens, runs, clock) -> dict:
    """The generated tokens against the fixed-point golden, the last token's cycles by
    unit beside the cycle model, and the agreement with the float reference."""
    from tritium.golden.hgrn import HGRNBitForCausalLM
    from tritium.engines.mfc.compile import GoldenCore, agreement

    golden = GoldenCore(compiled).generate(prompt, n)
    per, est = runs[-1].counters, compiled.estimate()
    return {"prompt": list(prompt), "tokens": tokens[len(prompt):],
            "golden_tokens": golden[len(prompt):], "identical": tokens == golden,
            "clock_hz": clock, "tokens_per_s": clock / max(1, per["cycles"]),
            "cycles": {u: {"device": per[u], "model": est[u]} for u in GENERATION_UNITS},
            "agreement": agreement(compiled, HGRNBitForCausalLM(desc), tokens).as_dict()}


def _print_generation(console, gen: dict) -> None:
    from rich.table import Table

    console.print("tokens: " + ",".join(map(str, gen["tokens"])))
    console.print("[green]identical to the fixed-point golden[/]" if gen["identical"] else
                  f"[red]DIFFERENT from the fixed-point golden[/]: {gen['golden_tokens']}")
    cyc, clock = gen["cycles"], gen["clock_hz"]
    table = Table(title=f"cycles per token at {clock / 1e6:g} MHz (device vs cycle model)")
    for col in ("unit", "device", "model", "of cycles"):
        table.add_column(col, justify="left" if col == "unit" else "right")
    for unit, c in cyc.items():
        table.add_row(unit, f"{c['device']:,}", f"{c['model']:,}",
                      f"{c['device'] / max(1, cyc['cycles']['device']):.1%}")
    console.print(table)
    dev, model = cyc["cycles"]["device"], cyc["cycles"]["model"]
    console.print(f"{gen['tokens_per_s']:,.1f} tokens/s in simulated time "
                  f"({dev:,} cycles/token; model {model:,}, "
                  f"{(dev - model) / max(1, model):+.2%})")
    ag = gen["agreement"]
    console.print(f"fixed point vs float reference, teacher-forced on these {ag['tokens']} "
                  f"tokens: top-1 agreement {ag['top1_agreement']:.1%}, max |dlogit| "
                  f"{ag['max_abs_dlogit']:.4f} "
                  f"({ag['rel_max_dlogit']:.1%} of max |logit|; sigmoid max error "
                  f"{ag['sigmoid_max_error']:.4f}), {ag['zero_projections']} of "
                  f"{ag['projections']} projections all zero")


def _check_agreement(gen: dict, min_agreement: float) -> None:
    """AgreementError when the teacher-forced top-1 agreement with the float reference is
    below ``min_agreement`` (the device may equal the fixed-point golden and still be
    wrong: a collapsed core)."""
    from tritium.engines.mfc.compile import AgreementError

    ag = gen["agreement"]
    if ag["top1_agreement"] < min_agreement:
        raise AgreementError(
            f"top-1 agreement with the float reference is {ag['top1_agreement']:.1%}, below "
            f"--min-agreement {min_agreement:.0%} ({ag['zero_projections']} of "
            f"{ag['projections']} projections all zero): the core's fixed-point numbers are "
            "wrong for this model; use the default MfcConfig formats or check the checkpoint")


# ---- generate ---------------------------------------------------------------------------

def cmd_generate(args) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from tritium.golden.checkpoint import load_checkpoint

    from tritium.engines.mfc.driver import check_prompt

    from .device import Device

    console = Console(quiet=args.json)
    prompt = _ids(args.prompt_ids)
    if args.n < 1:
        raise TritiumError(f"-n must be >= 1, got {args.n}")
    desc = load_checkpoint(args.checkpoint)
    with Device(args.device) as dev:
        compiled = dev.compile(desc, args.format)
        check_prompt(prompt, compiled.vocab)  # before any byte goes to the device
        rep = dev.load_core(compiled, progress=not (args.quiet or args.json))
        console.print(f"loaded {rep.bytes_sent:,} weight bytes (CRC {rep.device_crc:#010x} "
                      f"matches), {len(compiled.program)} instructions, "
                      f"{compiled.layout.vmem_used:,} vector-memory elements")
        with Progress(transient=True, disable=args.quiet,
                      console=Console(stderr=True)) as bar:
            task = bar.add_task("tokens", total=len(prompt) + args.n - 1)
            tokens, runs = dev.generate(prompt, args.n, on_token=lambda r: bar.advance(task))
        clock = dev.cfg.clock_hz
    gen = _generation(desc, compiled, prompt, args.n, tokens, runs, clock)
    if args.json:
        print_json({"checkpoint": str(args.checkpoint), **gen})
    _print_generation(console, gen)
    _check_agreement(gen, args.min_agreement)
    return 0 if gen["identical"] else 1


# ---- demo -------------------------------------------------------------------------------

def cmd_demo(args) -> int:
    from rich.console import Console

    console = Console(quiet=args.json)
    t0 = time.monotonic()
    result: dict = {"seed": args.seed}
    # the checkpoint lives as long as the demo: removed on every way out
    with tempfile.TemporaryDirectory(prefix="tritium-demo-") as work:
        try:
            return _demo(console, Path(work), args.seed, t0, args.min_agreement, result)
        finally:
            if args.json:
                print_json(result)


def _demo(console, work: Path, seed: int, t0: float, min_agreement: float,
          result: dict) -> int:
    """The demo (module docstring), printed on ``console``; ``result`` collects what it
    found (``--json``), as far as it got."""
    from tritium.golden.hgrn import HGRNBitForCausalLM
    from tritium.golden.checkpoint import load_checkpoint, write_checkpoint
    from tritium.sim.serve import SimulatedDevice

    from .device import Device

    ckpt = write_checkpoint(work / "hgrn-bit-h64", "hgrn-bit", hidden=64, layers=2, vocab=256,
                            seed=seed)
    desc = load_checkpoint(ckpt)
    console.print(f"checkpoint: {ckpt} (temporary; HGRN-bit, hidden 64, 2 layers, vocab 256, "
                  f"{sum(l.parameters for l in desc.bitlinears()):,} ternary weights)")
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

    # the token core: the whole model on the device, token by token
    n = 16
    with console.status("building the token-core SoC (Verilator; cached after the first time)"):
        sim = SimulatedDevice(SocConfig(engines=(MfcConfig(),))).start()
    try:
        with Device(sim.url) as dev:
            compiled = dev.compile(desc)
            dev.load_core(compiled)
            console.print(f"token core on {sim.url}: {len(compiled.program)} instructions; "
                          f"generating {n} tokens after the prompt {list(DEMO_PROMPT)}")
            tokens, runs = dev.generate(DEMO_PROMPT, n)
            gen = _generation(desc, compiled, list(DEMO_PROMPT), n, tokens, runs,
                              dev.cfg.clock_hz)
            result["generation"] = gen
            _print_generation(console, gen)
            _check_agreement(gen, min_agreement)
            ok &= gen["identical"]
    finally:
        sim.stop()
    result.update(ok=ok, seconds=round(time.monotonic() - t0, 1))
    console.print(f"demo took {time.monotonic() - t0:.0f} s")
    return 0 if ok else 1


def _fraction(text: str) -> float:
    import argparse
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a fraction between 0 and 1")
    return value


def _min_agreement_arg(p) -> None:
    p.add_argument("--min-agreement", type=_fraction, default=DEFAULT_MIN_AGREEMENT,
                   metavar="FRACTION",
                   help="fail (exit 1) when the core's teacher-forced top-1 agreement with the "
                        "float reference is below this (default %(default)s, set from the "
                        "float16 noise floor)")


def register(sub) -> None:
    p = sub.add_parser("demo", help="the main job: a checkpoint through the host driver into "
                       "the simulated FPGA, every layer checked, then 16 tokens on the token "
                       "core",
                       description="Make a small HGRN-bit checkpoint, start the simulated "
                       "FPGA (Verilator), load the checkpoint through the driver, run every "
                       "BitLinear of one token on the TMV engine and compare each result with "
                       "the golden integer path; then compile the checkpoint for the token "
                       "core, generate 16 tokens on a second simulated SoC and check them "
                       "against the fixed-point golden, the cycles per token against the "
                       "cycle model, and the core's agreement with the float reference "
                       "(--min-agreement).")
    p.add_argument("--seed", type=int, default=0, help="checkpoint seed (default 0)")
    _min_agreement_arg(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="run the simulated FPGA on a local TCP port",
                       description="Build the SoC under Verilator and serve its byte stream "
                       "on 127.0.0.1; prints the socket:// URL for --device.")
    p.add_argument("--config", metavar="JSON", help="SoC config (kind 'soc'); default built in")
    p.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free port)")
    p.add_argument("--engine", type=engine_name, default=registry.default_name(),
                   help=f"without --config: the SoC of this engine alone ({engines_help()}; "
                        "default %(default)s)")
    p.add_argument("--dram", metavar="PART", default=None,
                   help="give the SoC a DRAM of this part (ideal, or a part of "
                        "tritium.dram.PARTS), its simulated controller beside it and a "
                        "backdoor for fast loads (docs/memory.md)")
    p.add_argument("--dram-size", metavar="BYTES", type=int, default=0,
                   help="with --dram: bytes of the part used (a power of two; default all)")
    add_engine_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("generate", help="generate tokens on the token core of a device",
                       description="Compile an HGRN-bit checkpoint for the device's token "
                       "core, load it, and generate greedily token by token on the device. "
                       "Prints the tokens, tokens/s in simulated time at the device clock, "
                       "cycles per token by unit beside the cycle model, the check against "
                       "the fixed-point golden, and the agreement with the float reference.")
    p.add_argument("checkpoint")
    p.add_argument("--device", required=True, metavar="URL",
                   help="socket://127.0.0.1:PORT (tritium serve --engine mfc) or a serial port")
    p.add_argument("--prompt-ids", default=",".join(map(str, DEMO_PROMPT)),
                   help="comma-separated prompt token ids (default %(default)s)")
    p.add_argument("-n", type=int, default=16, help="tokens to generate (default 16)")
    p.add_argument("--format", choices=("t2", "t3"), default="t2")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _min_agreement_arg(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("load", help="load a checkpoint's ternary weights into a device",
                       description="Quantise, pack, tile and stream every BitLinear of a "
                       "checkpoint to the device, then prove the device holds exactly those "
                       "bytes (CRC-32).")
    p.add_argument("checkpoint")
    p.add_argument("--device", required=True, metavar="URL",
                   help="socket://127.0.0.1:PORT (tritium serve) or a serial port")
    p.add_argument("--format", choices=("t2", "t3"), default="t2")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--fast", metavar="URL", default=None,
                   help="weights in a simulated device's DRAM: write them through its "
                        "backdoor (the URL `tritium serve --dram` prints); the CRC proof "
                        "is the same (docs/memory.md)")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("run", help="run an engine on a device and check it against the golden",
                       description="Run work on a device holding a loaded checkpoint.")
    rsub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    q = rsub.add_parser("matvec", help="BitLinears on the TMV engine",
                        description="Run one BitLinear (--layer) or every BitLinear of a "
                        "loaded HGRN-bit or BitNet checkpoint on the device's TMV engine, "
                        "each with the golden model's int8 activations at the prompt's last "
                        "token, compare with the golden's exact integer accumulators, print "
                        "cycles.")
    q.add_argument("checkpoint")
    q.add_argument("--layer", help="BitLinear name, e.g. lm_head (default: every BitLinear)")
    q.add_argument("--device", required=True, metavar="URL")
    q.add_argument("--format", choices=("t2", "t3"), default="t2")
    q.add_argument("--prompt-ids", default=",".join(map(str, DEMO_PROMPT)),
                   help="activations from the golden model at this prompt's last token")
    q.add_argument("--random", action="store_true", help="random int8 activations instead")
    q.add_argument("--seed", type=int, default=0)
    add_json_flag(q)
    q.set_defaults(func=cmd_run)

    for eng in parser_engines().values():  # each engine's own `run` commands
        if eng.commands:
            eng.hook("commands")("run", rsub)
