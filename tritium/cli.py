"""The ``tritium`` command.

Each subcommand lives beside the code it drives, in a module that exposes
``register(subparsers)``; this file only collects them and owns error handling.
Registering is cheap by rule: at import time a command module imports the spec and the
model shapes at most, and everything heavy (numpy, torch, cocotb, Amaranth, the
simulators) inside the command's function, so ``tritium estimate`` loads none of them
(tests/test_cli.py; bench/cli.py times it). Errors:
a :class:`~tritium.errors.TritiumError` prints one line and exits non-zero, no traceback,
and so does a command line argparse refuses (``tritium X: error: ...; see tritium X --help``,
exit status :attr:`UsageError.exit_code`), without the usage block argparse would print.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__, cliargs
from .errors import TritiumError, UsageError

#: modules contributing subcommands, in --help order
COMMAND_MODULES = [
    "tritium.host.device_commands",
    "tritium.sim.commands",
    "tritium.host.commands",
    "tritium.sim.model_commands",
    "tritium.boards.commands",
]


class _ParseAgain(Exception):
    """The first parse failed: parse again with the installed engines listed."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr; subparsers inherit it.
    While :attr:`first_pass`, an error raises :class:`_ParseAgain` instead."""

    first_pass = False

    def error(self, message: str):
        if OneLineParser.first_pass:
            raise _ParseAgain
        message = " ".join(message.split())
        self.exit(UsageError.exit_code,
                  f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser(installed: bool = False) -> argparse.ArgumentParser:
    """The whole command line; ``installed``: with the subcommands and options of the
    engines installed entry points add (:func:`tritium.cliargs.parser_engines`)."""
    cliargs.SCAN_INSTALLED = installed
    parser = OneLineParser(
        prog="tritium",
        description="FPGA accelerators for ternary MatMul-free LMs and SpGEMM: "
                    "Amaranth HDL, cocotb + Verilator simulation, host driver, cycle model.")
    parser.add_argument("--version", action="version", version=f"tritium {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def parse(argv: list[str] | None = None):
    """``(parser, args)``. The first parse lists only the built-in and ``TRITIUM_ENGINES``
    engines (no scan of the installed distributions at start-up); a command line it
    refuses (an engine's subcommand or option an entry point adds, or a plain mistake) is
    parsed again by the parser with every installed engine, which reports the error if
    there is still one."""
    try:
        OneLineParser.first_pass = True
        parser = build_parser()
        return parser, parser.parse_args(argv)
    except _ParseAgain:
        pass
    finally:
        OneLineParser.first_pass = False
    parser = build_parser(installed=True)
    return parser, parser.parse_args(argv)


def _stdout_broken() -> bool:
    """Whether stdout is a pipe whose reader has gone: poll reports an error on the
    write end of a pipe with no reader."""
    import select

    try:
        p = select.poll()
        p.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in p.poll(0))
    except (OSError, ValueError, AttributeError):  # no fd, or no poll on this platform
        return True


def main(argv: list[str] | None = None) -> int:
    parser, args = parse(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except TritiumError as e:
        # one line even when the message quotes a multi-line text (a library's error)
        print(f"tritium {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"tritium {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`tritium ... --json | head`): what it wanted it
        # has. Any other pipe (a subprocess's, a socket) broken is a real failure
        if not _stdout_broken():
            raise
        # point stdout at nothing so the interpreter's final flush does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a pipe writer it cut off


if __name__ == "__main__":
    sys.exit(main())
