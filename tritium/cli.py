"""The ``tritium`` command.

Each subcommand lives beside the code it drives, in a module that exposes
``register(subparsers)``; this file only collects them and owns error handling:
a :class:`~tritium.errors.TritiumError` prints one line and exits non-zero, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import TritiumError

#: modules contributing subcommands, in --help order
COMMAND_MODULES = [
    "tritium.host.device_commands",
    "tritium.sim.commands",
    "tritium.host.commands",
    "tritium.sim.model_commands",
    "tritium.boards.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritium",
        description="FPGA accelerators for ternary MatMul-free LMs and SpGEMM: "
                    "Amaranth HDL, cocotb + Verilator simulation, host driver, cycle model.")
    parser.add_argument("--version", action="version", version=f"tritium {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except TritiumError as e:
        print(f"tritium {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"tritium {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
