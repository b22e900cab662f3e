"""CLI of the SpGEMM engine: ``tritium run spgemm`` and ``tritium sim spgemm``
(registered through its description's ``commands`` hook, which each verb's parser calls
with its subparsers)."""

from __future__ import annotations

import math

from tritium.cliargs import add_device_option, add_json_flag, device_kwargs, print_json
from tritium.engines.spgemm.config import SPGEMM_SEMIRINGS, SpgemmConfig
from tritium.errors import UsageError
from tritium.sim.commands import add_sim_options, sim_setup


def cmd_run_spgemm(args) -> int:
    """``run spgemm``: C = A·B on the device, checked against the golden and scipy."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from tritium.host import Device

    from . import golden
    from .driver import prepare, read_sparse

    A = read_sparse(args.a)
    B = read_sparse(args.b) if args.b else A
    with Device(args.device, **device_kwargs(args)) as dev:
        C, counters = dev.spgemm(A, B, args.semiring)
        cfg = dev.cfg.engine_config(SpgemmConfig.kind)
    op = prepare(cfg, A, B, args.semiring)
    ref = golden.spgemm(cfg, op.A, op.B, op.semiring).csr()
    ref.sort_indices()
    got = C if op.scale is None else (C * op.scale).astype(np.int64)
    same = golden.same_matrix(got, ref)
    # scipy is exact only for integers under plus-times (values wrapped as the engine's)
    vs_scipy = None
    if op.semiring == "plus-times":
        vs_scipy = golden.same_matrix(golden.canonical(got, cfg.value_bits),
                                      golden.scipy_plus_times(op.A, op.B, cfg.value_bits))
    cycles = max(1, counters["cycles"])
    res = {"a": args.a, "b": args.b or args.a, "semiring": args.semiring,
           "a_shape": list(op.A.shape), "a_nnz": int(op.A.nnz), "b_nnz": int(op.B.nnz),
           "c_nnz": int(C.nnz), "cycles": counters["cycles"], "products": counters["products"],
           "merges": counters["merges"], "passes": counters["passes"],
           "merges_per_cycle_per_pe": round(counters["merges"] / cycles / cfg.pes, 4),
           "equal_golden": same, "equal_scipy": vs_scipy}
    if args.json:
        print_json(res)
    else:
        table = Table(title=f"C = A·B ({args.semiring}) on the SpGEMM engine ({cfg.pes} PEs)")
        table.add_column("quantity")
        table.add_column("value", justify="right")
        for k, v in res.items():
            shown = {True: "[green]yes[/]", False: "[red]NO[/]", None: "n/a"}.get(v, v) \
                if isinstance(v, bool) or v is None else v
            table.add_row(k, str(shown))
        Console().print(table)
    return 0 if same and vs_scipy is not False else 1


def cmd_sim_spgemm(args) -> int:
    """One product A·A (or A·Aᵀ for non-square) under a semiring; C read back from the
    engine's memory and checked against the golden inside the run; prints merges/cycle
    and GOPS at a clock. ``--stall`` also pauses the operand memories at random."""
    import numpy as np
    from rich.console import Console

    from tritium.engines.spgemm import golden as G
    from tritium.engines.spgemm.driver import load_matrix, prepare, self_product
    from tritium.engines.spgemm.runner import run_spgemm

    cfg = sim_setup(args, SpgemmConfig)
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
    console = Console(stderr=args.json)
    with console.status(f"simulating SpgemmEngine on {args.matrix} ({semiring})"):
        C, cnt = run_spgemm(cfg, A, op.B, semiring, seed=args.seed,
                            valid_prob=1 - args.stall, ready_prob=1 - args.stall,
                            mem_hold_prob=args.stall,
                            waves=args.waves, run_dir=args.run_dir)
    cycles = max(1, cnt["cycles"])
    if args.json:
        print_json({"matrix": str(args.matrix), "semiring": semiring, "pes": cfg.pes,
                    "a_rows": A.shape[0], "a_cols": A.shape[1], "a_nnz": int(A.nnz),
                    "c_nnz": int(C.nnz), "equals_golden": True, "clock_hz": args.clock,
                    "merges_per_cycle": cnt["merges"] / cycles,
                    "gops": 2 * cnt["merges"] / cycles * args.clock / 1e9,
                    "counters": {k: v for k, v in cnt.items() if isinstance(v, int)}})
        return 0
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


def estimate_workload(args, plat) -> dict:
    """``tritium estimate --spgemm MATRIX``: A·A on a SpGEMM engine of ``--pes`` PEs and
    ``--hash-bits`` tables, its memories as large as the matrix needs, under
    ``--semiring`` (:func:`tritium.engines.spgemm.model.estimate`)."""
    from tritium.engines.spgemm.model import estimate

    cfg = SpgemmConfig(pes=args.pes, hash_bits=args.hash_bits, max_dim=1 << 16,
                       max_nnz=1 << 22, max_c_nnz=1 << 22)
    return estimate(cfg, args.spgemm, plat, args.semiring)


def register(verb: str, sub):
    """Add this engine's subcommand of ``verb`` (``run``, ``sim``) to ``sub``; for
    ``estimate`` (``sub`` is then the estimate parser) add its workload options and
    return ``(dest, "--spgemm MATRIX", estimate_workload)``."""
    if verb == "estimate":
        sub.add_argument("--spgemm", metavar="MATRIX",
                         help="pyamg example or fixture name, or a Matrix Market (.mtx) or "
                              ".npz file; A·A (A·Aᵀ if A is not square)")
        sub.add_argument("--pes", type=int, default=2, help="SpGEMM row-PEs")
        sub.add_argument("--hash-bits", type=int, default=6, help="SpGEMM table: log2 slots")
        sub.add_argument("--semiring", default="plus-times")
        return "spgemm", "--spgemm MATRIX", estimate_workload
    if verb == "sim":
        cp = sub.add_parser("spgemm", help="the SpGEMM engine on a matrix and a semiring",
                            description="C = A·A on the RTL, checked against the golden, "
                            "with merges/cycle and GOPS.")
        cp.add_argument("--matrix", default="airfoil",
                        help="airfoil (pyamg), random, powerlaw, banded (default airfoil), "
                             "or a Matrix Market (.mtx) or .npz file; A·A (A·Aᵀ if A is not "
                             "square); or-and takes its pattern, min-/max-plus its absolute "
                             "values")
        cp.add_argument("--semiring", default="plus-times", choices=SPGEMM_SEMIRINGS)
        cp.add_argument("--clock", type=float, default=100e6,
                        help="clock for GOPS (default 100e6)")
        add_sim_options(cp, SpgemmConfig)
        add_json_flag(cp)
        cp.set_defaults(func=cmd_sim_spgemm)
        return
    if verb != "run":
        return None
    q = sub.add_parser("spgemm", help="C = A·B of sparse matrices on the SpGEMM engine",
                       description="Read A (and B; default B = A) from Matrix Market (.mtx) "
                       "or scipy .npz files, compute C = A·B under the semiring on the "
                       "device's SpGEMM engine (`tritium serve --engine spgemm`), check C "
                       "exactly against the golden model and, for plus-times on integers, "
                       "against scipy's A @ B; print the engine's counters. Exit 1 on a "
                       "mismatch.")
    q.add_argument("--a", required=True, metavar="FILE", help="A: .mtx or .npz")
    q.add_argument("--b", metavar="FILE", help="B: .mtx or .npz (default: A)")
    q.add_argument("--semiring", default="plus-times", choices=SPGEMM_SEMIRINGS)
    add_device_option(q)
    add_json_flag(q)
    q.set_defaults(func=cmd_run_spgemm)
