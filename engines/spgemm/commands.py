"""CLI of the SpGEMM engine: ``tritium run spgemm`` (registered through its description's
``commands`` hook, which each verb's parser calls with its subparsers)."""

from __future__ import annotations

from tritium.cliargs import add_json_flag, print_json
from tritium.engines.spgemm.config import SPGEMM_SEMIRINGS, SpgemmConfig


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
    with Device(args.device) as dev:
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


def register(verb: str, sub) -> None:
    """Add this engine's subcommand of ``verb`` (``run``) to ``sub``."""
    if verb != "run":
        return
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
    q.add_argument("--device", required=True, metavar="URL")
    add_json_flag(q)
    q.set_defaults(func=cmd_run_spgemm)
