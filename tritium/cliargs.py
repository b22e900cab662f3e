"""argparse types the command modules share.

Kept apart from :mod:`tritium.cli` so that the command modules, which the CLI imports,
never import the CLI back (tests/test_layers.py refuses import cycles).
"""

from __future__ import annotations

import argparse

from tritium.golden.shapes import MAX_DIM, MAX_LAYERS, MAX_VOCAB


def int_range(lo: int, hi: int | None = None):
    """An argparse ``type``: an integer in [lo, hi] (no upper bound when hi is None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < lo or (hi is not None and value > hi):
            bounds = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: give an integer "
                                             f"{bounds}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def engine_name(text: str) -> str:
    """argparse type of an ``--engine`` value: a registered engine's name (the error lists
    the known ones). Checked when given, so building the parser scans no installed
    distributions."""
    from tritium import registry
    from tritium.errors import ConfigError

    try:
        return registry.get(text).name
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def engines_help() -> str:
    """The engines an ``--engine`` option takes, for its help text."""
    from tritium import registry

    return "; ".join(f"{e.name}: {e.title}" for e in registry.engines(installed=False).values()) \
        + "; or an engine added by an installed entry point"


def print_json(doc: dict) -> None:
    """The ``--json`` answer: ``doc`` alone on stdout."""
    import json

    print(json.dumps(doc, indent=2))


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """``--json``: the command prints its result as one JSON document instead of a table."""
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON (machine-readable) instead of a table")


def add_model_size_options(parser: argparse.ArgumentParser, *, hidden: int = 64,
                           layers: int = 2, vocab: int = 256) -> None:
    """``--hidden``, ``--layers``, ``--vocab`` of a generated checkpoint, bounded as a
    config.json is (:mod:`tritium.golden.shapes`); these are their defaults."""
    parser.add_argument("--hidden", type=int_range(1, MAX_DIM), default=hidden,
                        help=f"hidden size, multiple of 4 ({hidden})")
    parser.add_argument("--layers", type=int_range(1, MAX_LAYERS), default=layers,
                        help=f"number of layers ({layers})")
    parser.add_argument("--vocab", type=int_range(1, MAX_VOCAB), default=vocab,
                        help=f"vocabulary size ({vocab})")
