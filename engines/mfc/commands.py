"""CLI of the token core: ``tritium sim mfc`` (registered through its description's
``commands`` hook). Light at import: the compiler, the runners and numpy load inside the
command."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tritium.cliargs import (add_config_options, add_json_flag, add_model_size_options,
                             int_range)
from tritium.engines.mfc.config import MfcConfig
from tritium.sim.commands import SEED_MAX, sim_report, sim_setup, sim_status

#: most `sim mfc --tokens`: each token is one Verilator run
MAX_TOKENS = 64


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


def register(verb: str, sub) -> None:
    """Add this engine's subcommand of ``verb`` (``sim``) to ``sub``."""
    if verb != "sim":
        return
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
