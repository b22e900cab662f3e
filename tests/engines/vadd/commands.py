"""The example engine's own subcommand, ``tritium run vadd`` (its ``commands`` hook):
random int16 vectors added on the device, the sum checked against the golden model."""

from __future__ import annotations


def cmd_run_vadd(args) -> int:
    """Exit 0 when the device's sum equals the golden's, else 1; prints one line."""
    import numpy as np

    from tritium.host import Device

    from .golden import vadd

    rng = np.random.default_rng(args.seed)
    a, b = (rng.integers(-(1 << 15), 1 << 15, args.n) for _ in range(2))
    with Device(args.device) as dev:
        c, counters = dev.vadd(a, b)
        same = bool(np.array_equal(c, vadd(dev.cfg.engine_config("vadd"), a, b)))
    print(f"vadd of {args.n} elements in {counters['cycles']} cycles: "
          f"{'equals' if same else 'DIFFERS from'} the golden")
    return 0 if same else 1


def register(verb: str, sub) -> None:
    """``run vadd``; nothing for another verb."""
    if verb != "run":
        return
    p = sub.add_parser("vadd", help="add two random int16 vectors on the vadd engine",
                       description="Add two random int16 vectors on the device's vadd "
                       "engine and check the sum against the golden model.")
    p.add_argument("--n", type=int, default=16, help="elements (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", required=True, metavar="URL")
    p.set_defaults(func=cmd_run_vadd)
