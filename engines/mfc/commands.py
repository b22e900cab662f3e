"""CLI of the token core: ``tritium sim mfc``, ``tritium generate`` and the demo's second
part with its ``--min-agreement`` (registered through its description's ``commands``
hook). Light at import: the compiler, the runners, the checkpoint reader and numpy load
inside the commands."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tritium.cliargs import (DEMO_PROMPT, add_config_options, add_device_option, add_json_flag,
                             add_model_size_options, add_prompt_ids, device_kwargs, int_range,
                             print_json, prompt_ids)
from tritium.engines.mfc.config import MfcConfig
from tritium.engines.tmv.config import TMV_FORMATS
from tritium.errors import TritiumError
from tritium.sim.commands import SEED_MAX, sim_report, sim_setup, sim_status

#: most `sim mfc --tokens`: each token is one Verilator run
MAX_TOKENS = 64
#: default ``--min-agreement`` of ``generate`` and ``demo``: teacher-forced top-1 agreement of
#: the core with the float reference below this is an error. From the noise floor: the float
#: golden's own float16 run agrees 76-99 % with its float32 run on upstream-initialised and
#: unit-scale models (bench/results/mfc.json ``fp16_*_top1``; upstream's fp16 87-97 %), the
#: core at default formats 93-98 % (``agree_*_top1``); over a 19-token generation the
#: sampling spread is about ±9 points; a collapsed core agrees 0-13 %. 0.5 sits between.
DEFAULT_MIN_AGREEMENT = 0.5
#: tokens the demo generates after its prompt
DEMO_TOKENS = 16
#: the per-unit counters a generation report shows, device beside the cycle model
GENERATION_UNITS = ("tmv_busy", "vpu_busy", "scalar_busy", "issue", "wait_tmv", "cycles")


def cmd_sim_mfc(args) -> int:
    """Tokens of a generated HGRN-bit model on the token core alone: the compiler's
    program, weight lines and vector-memory image through the core's ports, one Verilator
    run per token (the state carries over, the next token is the core's argmax); every
    run's V, S, error flag and counters against the golden machine, its cycles against
    the cycle model."""
    import numpy as np

    from tritium.golden.checkpoint import load_checkpoint, write_checkpoint
    from tritium.engines.mfc.compile import compile_model
    from tritium.engines.mfc.runner import golden_mfc, run_mfc

    cfg = sim_setup(args, MfcConfig)
    with tempfile.TemporaryDirectory(prefix="tritium-sim-mfc-") as work:
        desc = load_checkpoint(write_checkpoint(Path(work) / "model", "hgrn-bit",
                                                hidden=args.hidden, layers=args.layers,
                                                vocab=args.vocab, seed=args.seed))
    compiled = compile_model(desc, cfg)
    model = compiled.estimate()
    vmem = np.zeros(cfg.vmem_depth, dtype=np.int64)
    for addr, values in compiled.vmem.items():
        vmem[addr:addr + len(values)] = values
    x = compiled.layout.x
    token = int(np.random.default_rng(args.seed).integers(0, args.vocab))
    rows, ok = [], True
    with sim_status(args, f"simulating the token core ({len(compiled.program)} instructions) "
                       "in Verilator"):
        for k in range(args.tokens):
            vmem[x:x + compiled.hidden] = compiled.embed(token)
            run_dir = Path(args.run_dir) / f"token{k}" if args.run_dir else None
            got = run_mfc(cfg, compiled.program, vmem=vmem, weights=compiled.weights,
                          seed=args.seed, waves=args.waves, run_dir=run_dir)
            want = golden_mfc(cfg, compiled.program, vmem=vmem, weights=compiled.weights)
            match = all(got[key] == want[key] for key in ("vmem", "sregs", "counters", "error"))
            cycles = got["counters"]["cycles"]
            ok &= match and cycles == model["cycles"]
            argmax = got["sregs"][compiled.layout.argmax]
            rows.append({"index": k, "token": token, "argmax": argmax,
                         "golden_argmax": want["sregs"][compiled.layout.argmax],
                         "match": match, "cycles": cycles,
                         "golden_cycles": want["counters"]["cycles"],
                         "model_cycles": model["cycles"], "error": got["error"]})
            token = argmax
            vmem = np.asarray(got["vmem"], dtype=np.int64)
    lines = [f"HGRN-bit hidden {args.hidden}, {args.layers} layer(s), vocab {args.vocab} "
             f"(seed {args.seed}): {len(compiled.program)} instructions, "
             f"{len(compiled.weights)} weight lines, {compiled.layout.vmem_used:,} "
             "vector-memory elements; V, S, error and counters compared with the golden "
             "machine, cycles with the cycle model"]
    return sim_report(args, f"token core: TMV SIMD {cfg.tmv.simd} x PE {cfg.tmv.pe}, "
                         f"Q{cfg.frac_bits} fixed point, one run per token",
                   [("#", "index"), ("token", "token"), ("argmax", "argmax"),
                    ("golden", "golden_argmax"), ("V, S, counters", "match"),
                    ("cycles", "cycles"), ("model", "model_cycles")],
                   rows, lines, ok, config=cfg.to_dict(), model_counters=model)


# ---- generate, and the demo's generation -------------------------------------------------

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


def cmd_generate(args) -> int:
    """Greedy generation on the device's token core (the parser's description); exit 1
    when the tokens differ from the fixed-point golden, AgreementError below
    ``--min-agreement``."""
    from rich.console import Console
    from rich.progress import Progress

    from tritium.engines.mfc.driver import check_prompt
    from tritium.golden.checkpoint import load_checkpoint
    from tritium.host.device import Device

    console = Console(quiet=args.json)
    prompt = prompt_ids(args.prompt_ids)
    if args.n < 1:
        raise TritiumError(f"-n must be >= 1, got {args.n}")
    desc = load_checkpoint(args.checkpoint)
    with Device(args.device, **device_kwargs(args)) as dev:
        compiled = dev.compile(desc, args.format)
        check_prompt(prompt, compiled.vocab)  # before any byte goes to the device
        rep = dev.load_core(compiled, progress=not (args.quiet or args.json), fast=args.fast)
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


def demo_generation(console, desc, args, result: dict) -> bool:
    """The demo's second part: ``desc`` compiled for the token core of a second simulated
    SoC, :data:`DEMO_TOKENS` tokens generated after :data:`~tritium.cliargs.DEMO_PROMPT`
    and checked against the fixed-point golden, the cycle model and (``--min-agreement``,
    AgreementError) the float reference, printed on ``console``; ``result["generation"]``
    holds the report. Returns whether the tokens equal the golden's."""
    from tritium.config import SocConfig
    from tritium.host.device import Device
    from tritium.sim.serve import SimulatedDevice

    n = DEMO_TOKENS
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
            _check_agreement(gen, args.min_agreement)
    finally:
        sim.stop()
    return gen["identical"]


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


def _register_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate tokens on the token core of a device",
                       description="Compile an HGRN-bit checkpoint for the device's token "
                       "core, load it, and generate greedily token by token on the device. "
                       "Prints the tokens, tokens/s in simulated time at the device clock, "
                       "cycles per token by unit beside the cycle model, the check against "
                       "the fixed-point golden, and the agreement with the float reference.")
    p.add_argument("checkpoint")
    add_device_option(p, "socket://127.0.0.1:PORT (tritium serve --engine mfc) or a serial port")
    add_prompt_ids(p, "comma-separated prompt token ids (default %(default)s)")
    p.add_argument("-n", type=int, default=16, help="tokens to generate (default 16)")
    p.add_argument("--format", choices=TMV_FORMATS, default=TMV_FORMATS[0])
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--fast", metavar="URL", default=None,
                   help="a core with its weights in DRAM (mfc.tmv.weights_dram=1) on a "
                        "simulated device: write them through its backdoor (the URL "
                        "`tritium serve --dram` prints); the CRC proof is the same")
    _min_agreement_arg(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_generate)


def register(verb: str, sub):
    """Add this engine's commands of ``verb`` to ``sub``: ``sim mfc``; for the verb
    ``tritium`` (the top-level subparsers) ``generate``; for ``demo`` (``sub`` is then the
    demo's parser) ``--min-agreement``, returning the demo's part, :func:`demo_generation`."""
    if verb == "demo":
        _min_agreement_arg(sub)
        return demo_generation
    if verb == "tritium":
        _register_generate(sub)
    if verb != "sim":
        return None
    cp = sub.add_parser("mfc", help="the token core on a generated HGRN-bit model",
                        description="Compile a generated HGRN-bit checkpoint for the token "
                        "core and run it token by token on the core in Verilator; each "
                        "run's vector memory, scalar registers, error flag and counters "
                        "against the golden machine, its cycles against the cycle model.")
    cp.add_argument("--tokens", type=int_range(1, MAX_TOKENS), default=2,
                    help="tokens to run (default 2), each fed the previous argmax")
    add_model_size_options(cp, layers=1)
    cp.add_argument("--seed", type=int_range(0, SEED_MAX), default=1,
                    help="model and first-token seed (default 1)")
    cp.add_argument("--waves", action="store_true",
                    help="record waves.fst (waves.vcd without liblz4) in --run-dir")
    cp.add_argument("--run-dir", help="directory for logs, results and waves")
    add_config_options(cp, MfcConfig)
    add_json_flag(cp)
    cp.set_defaults(func=cmd_sim_mfc)
