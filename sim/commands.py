"""CLI subcommands of the simulation layer: ``verilog``, ``sim``.

Component options are generated from the config dataclass of the component
(``--lanes`` from ``TernaryDotConfig.lanes`` …), so defaults and ranges live in
:mod:`tritium.config` only.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

from tritium.cliargs import (add_config_options as _add_config_options, add_json_flag,
                             add_model_size_options, config_from_args as _config_from_args,
                             int_range)
from tritium.errors import TritiumError, UsageError

#: largest --seed: it becomes cocotb's 32-bit RANDOM_SEED, and `sim tmv` adds the job index
SEED_MAX = 2 ** 30
#: most --vectors: all are drawn (up to max_length elements each) before the run starts
MAX_VECTORS = 1 << 16
#: most `sim mfc --tokens`: each token is one Verilator run
MAX_TOKENS = 64


def _components():
    from tritium.hdl import COMPONENTS

    return COMPONENTS


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temp file and rename, so a failure never leaves half a file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise TritiumError(f"output directory {path.parent} does not exist; create it first")
    if path.is_dir():
        raise UsageError(f"-o {path} is a directory; give a file name, e.g. {path}/out.v")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:
        raise TritiumError(f"cannot write in {path.parent} ({e.strerror}); choose a "
                           "writable directory") from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        # mkstemp makes the file 0600; the output is an ordinary file, so the umask decides
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise TritiumError(f"cannot write {path} ({e.strerror}); choose another file") \
            from None
    except BaseException:
        os.unlink(tmp)
        raise


# ---- verilog ---------------------------------------------------------------------------

def cmd_verilog(args) -> int:
    from tritium.hdl import resolve

    from .build import to_verilog

    cfg_path, comp_path, top = _components()[args.component]
    cfg = _config_from_args(args, resolve(cfg_path))
    text = to_verilog(resolve(comp_path)(cfg), top)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        _write_atomic(Path(args.output), text)
        print(f"wrote {args.output}: module {top}, {text.count(chr(10))} lines "
              f"({cfg.kind} {cfg.to_dict()})", file=sys.stderr)
    return 0


# ---- demo / sim -------------------------------------------------------------------------

def _random_vectors(cfg, count: int, seed: int, length: int | None):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = length or int(rng.integers(1, cfg.max_length + 1))
        out.append((rng.integers(0, 3, n).tolist(),
                    rng.integers(cfg.act_min, cfg.act_max + 1, n).tolist()))
    return out


def _report(args, title: str, columns: list[tuple[str, str]], rows: list[dict],
            lines: list[str], ok: bool, show: int | None = None, **extra) -> int:
    """Print ``rows`` as a rich table titled ``title`` (``columns``: header, row key; at
    most ``show`` rows), then ``lines`` and the verdict against the golden model; or,
    with ``--json``, one JSON document ``{"ok", "rows" (every row), "summary", **extra}``.
    Exit status 0 when ``ok``, else 1."""
    import json

    from rich.console import Console
    from rich.table import Table

    if args.json:
        print(json.dumps({"ok": ok, "rows": rows, "summary": lines, **extra}, indent=2))
        return 0 if ok else 1
    console = Console()
    table = Table(title=title)
    for header, _ in columns:
        table.add_column(header, justify="right")
    for row in rows[:show]:
        table.add_row(*(("yes" if row[key] else "NO") if isinstance(row[key], bool)
                        else str(row[key]) for _, key in columns))
    console.print(table)
    for line in lines:
        console.print(line)
    console.print("[bold green]every result equals the golden model[/]" if ok
                  else "[bold red]MISMATCH against the golden model[/]")
    return 0 if ok else 1


def _status(args, what: str):
    """A spinner on stderr while ``what`` runs (none with --json: stdout stays JSON)."""
    from rich.console import Console

    return Console(stderr=True, quiet=args.json).status(what)


def _run_and_report(args, cfg, vectors) -> int:
    from tritium.engines.tmv.golden import ternary_dot

    from tritium.engines.tmv.dot_runner import run_ternary_dot

    with _status(args, f"building + simulating TernaryDot ({cfg.lanes} lanes) in Verilator"):
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
    return _report(args, f"TernaryDot, {cfg.lanes} lanes, acc {cfg.acc_bits} bits, "
                         f"random valid/ready stalls p={args.stall}",
                   [("#", "index"), ("length", "length"), ("RTL (Verilator)", "rtl"),
                    ("golden", "golden"), ("match", "match")],
                   rows, lines, out["results"] == golden, show=args.show,
                   config=cfg.to_dict(), beats=beats, cycles=span)


def _sim_setup(args):
    from tritium.hdl import resolve

    cfg = _config_from_args(args, resolve(_components()[args.component][0]))
    if not 0 <= getattr(args, "stall", 0) < 1:
        raise TritiumError("--stall is a probability in [0, 1)")
    if args.waves and not args.run_dir:
        args.run_dir = tempfile.mkdtemp(prefix="tritium-waves-")
    return cfg


def cmd_sim(args) -> int:
    cfg = _sim_setup(args)
    if args.length is not None and not 1 <= args.length <= cfg.max_length:
        raise UsageError(f"--length {args.length} is out of range: give 1 to "
                         f"{cfg.max_length} (--max-length)")
    vectors = _random_vectors(cfg, args.vectors, args.seed, args.length)
    return _run_and_report(args, cfg, vectors)


def cmd_sim_tmv(args) -> int:
    """Random shapes (IN/OUT not multiples of SIMD/PE included), every built format,
    random stalls; each result checked against the golden, counters against the formula."""
    import numpy as np

    from tritium.engines.tmv.golden import ternary_matvec

    from tritium.engines.tmv.runner import run_tmv

    cfg = _sim_setup(args)
    rng = np.random.default_rng(args.seed)
    rows, ok, lanes = [], True, cfg.pe * cfg.simd
    with _status(args, "simulating TernaryMatVec in Verilator"):
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
    return _report(args, f"TMV SIMD {cfg.simd} x PE {cfg.pe}, formats {'+'.join(cfg.formats)}, "
                         f"stalls p={args.stall}",
                   [("#", "index"), ("rows x cols", "shape"), ("fmt", "fmt"), ("match", "match"),
                    ("busy", "busy_cycles"), ("formula", "formula_cycles"),
                    ("stall in/out/mem", "stalls"), ("MAC util.", "mac_utilisation")],
                   rows, [], ok, config=cfg.to_dict())


def cmd_sim_spgemm(args) -> int:
    """One product A·A (or A·Aᵀ for non-square) under a semiring; C read back from the
    engine's memory and checked against the golden inside the run; prints merges/cycle
    and GOPS at a clock. ``--stall`` also pauses the operand memories at random."""
    import numpy as np
    from rich.console import Console

    from tritium.engines.spgemm import golden as G
    from tritium.engines.spgemm.driver import load_matrix, prepare, self_product
    from tritium.engines.spgemm.runner import run_spgemm

    cfg = _sim_setup(args)
    if not 0 < args.clock < math.inf:
        raise UsageError(f"--clock {args.clock} is not a clock frequency; give Hz, e.g. 100e6")
    rng = np.random.default_rng(args.seed)
    makers = {"airfoil": lambda: G.pyamg_matrix("airfoil", rng),
              "random": lambda: G.random_csr(64, 64, 0.08, rng),
              "powerlaw": lambda: G.power_law_graph(128, 3, rng),
              "banded": lambda: G.banded(128, 3, rng)}
    A = load_matrix(args.matrix, makers).tocsr()
    if args.semiring == "or-and":
        A.data = (A.data != 0).astype(A.data.dtype)
    elif args.semiring in ("min-plus", "max-plus"):
        A.data = np.abs(A.data)
    # normalised and checked as Device.spgemm does (typed errors naming the limit)
    op = prepare(cfg, *self_product(A), args.semiring)
    A, semiring = op.A, op.semiring
    console = Console()
    with console.status(f"simulating SpgemmEngine on {args.matrix} ({semiring})"):
        C, cnt = run_spgemm(cfg, A, op.B, semiring, seed=args.seed,
                            valid_prob=1 - args.stall, ready_prob=1 - args.stall,
                            mem_hold_prob=args.stall,
                            waves=args.waves, run_dir=args.run_dir)
    cycles = max(1, cnt["cycles"])
    console.print(f"{args.matrix}: A {A.shape[0]}x{A.shape[1]} nnz {A.nnz}; C nnz {C.nnz}; "
                  f"C equals the golden ({semiring})")
    console.print(f"cycles {cnt['cycles']:,}, products {cnt['products']:,}, "
                  f"merges/cycle {cnt['merges'] / cycles:.3f} "
                  f"({cnt['merges'] / cycles / cfg.pes:.3f} per PE), "
                  f"{2 * cnt['merges'] / cycles * args.clock / 1e9:.3f} GOPS at "
                  f"{args.clock / 1e6:.0f} MHz; C read back from the engine's CSR memory "
                  f"({cnt['mem_writes']:,} words written)")
    console.print("counters: " + ", ".join(f"{k} {v}" for k, v in cnt.items()
                                            if isinstance(v, int)))
    console.print("[bold green]every result equals the golden model[/]")
    return 0


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

    cfg = _sim_setup(args)
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
    with _status(args, f"simulating the token core ({len(compiled.program)} instructions) "
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
    return _report(args, f"token core: TMV SIMD {cfg.tmv.simd} x PE {cfg.tmv.pe}, "
                         f"Q{cfg.frac_bits} fixed point, one run per token",
                   [("#", "index"), ("token", "token"), ("argmax", "argmax"),
                    ("golden", "golden_argmax"), ("V, S, counters", "match"),
                    ("cycles", "cycles"), ("model", "model_cycles")],
                   rows, lines, ok, config=cfg.to_dict(), model_counters=model)


def register(sub) -> None:
    from tritium.hdl import resolve

    comps = sorted(_components())
    p = sub.add_parser("verilog", help="emit Verilog for a component",
                       description="Emit Verilog for a component from its config. "
                       f"Components: {', '.join(comps)}.")
    csub = p.add_subparsers(dest="component", metavar="COMPONENT", required=True)
    for name in comps:
        cp = csub.add_parser(name, help=f"{name} (options from its config)")
        cp.add_argument("-o", "--output", metavar="FILE", help="output file (default stdout)")
        _add_config_options(cp, resolve(_components()[name][0]))
        cp.set_defaults(func=cmd_verilog)

    p = sub.add_parser("sim", help="simulate a component in Verilator against its golden",
                       description="Run a component in Verilator and check it against the "
                       "golden model: ternary-dot and tmv on random vectors and shapes under "
                       "random valid/ready stalls, spgemm on a matrix, mfc on a generated "
                       "model token by token.")
    csub = p.add_subparsers(dest="component", metavar="COMPONENT", required=True)

    def common(cp, name):
        cp.add_argument("--seed", type=int_range(0, SEED_MAX), default=1,
                        help="random seed (default 1)")
        cp.add_argument("--stall", type=float, default=0.3,
                        help="probability of a stall cycle on each stream (default 0.3)")
        cp.add_argument("--waves", action="store_true",
                        help="record waves.fst (waves.vcd without liblz4) in --run-dir")
        cp.add_argument("--run-dir", help="directory for logs, results and waves")
        _add_config_options(cp, resolve(_components()[name][0]))

    cp = csub.add_parser("ternary-dot", help="TernaryDot on random vectors")
    cp.add_argument("--vectors", type=int_range(1, MAX_VECTORS), default=16,
                    help="dot products (default 16)")
    cp.add_argument("--length", type=int,
                    help="vector length (default: random up to --max-length)")
    cp.add_argument("--show", type=int_range(0), default=16, help="rows to print")
    common(cp, "ternary-dot")
    add_json_flag(cp)
    cp.set_defaults(func=cmd_sim)

    cp = csub.add_parser("tmv", help="the TMV engine on random shapes, both formats",
                         description="Random shapes (IN/OUT not multiples of SIMD/PE "
                         "included), every built format, random stalls; results against the "
                         "golden, counters against the cycle formula.")
    cp.add_argument("--jobs", type=int_range(1), default=6, help="matvecs (default 6)")
    cp.add_argument("--max-shape", type=int_range(1), default=96,
                    help="largest rows/cols (default 96)")
    common(cp, "tmv")
    add_json_flag(cp)
    cp.set_defaults(func=cmd_sim_tmv)

    cp = csub.add_parser("spgemm", help="the SpGEMM engine on a matrix and a semiring",
                         description="C = A·A on the RTL, checked against the golden, with "
                         "merges/cycle and GOPS.")
    cp.add_argument("--matrix", default="airfoil",
                    help="airfoil (pyamg), random, powerlaw, banded (default airfoil), or a "
                         "Matrix Market (.mtx) or .npz file; A·A (A·Aᵀ if A is not square); "
                         "or-and takes its pattern, min-/max-plus its absolute values")
    cp.add_argument("--semiring", default="plus-times",
                    choices=("plus-times", "fixed", "min-plus", "max-plus", "or-and"))
    cp.add_argument("--clock", type=float, default=100e6, help="clock for GOPS (default 100e6)")
    common(cp, "spgemm")
    cp.set_defaults(func=cmd_sim_spgemm)

    cp = csub.add_parser("mfc", help="the token core on a generated HGRN-bit model",
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
    _add_config_options(cp, resolve(_components()["mfc"][0]))
    add_json_flag(cp)
    cp.set_defaults(func=cmd_sim_mfc)
