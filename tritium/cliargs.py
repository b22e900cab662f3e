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


#: the demo's prompt, and the default ``--prompt-ids`` of the commands that run a checkpoint
DEMO_PROMPT = (1, 2, 3)


def prompt_ids(text: str) -> list[int]:
    """``--prompt-ids`` ("1,2,3") -> token ids; TritiumError (said when the command runs,
    not by argparse) for anything but comma-separated integers."""
    from tritium.errors import TritiumError

    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise TritiumError(f"--prompt-ids must be comma-separated integers, got {text!r}") \
            from None


def add_prompt_ids(parser: argparse.ArgumentParser, help: str) -> None:
    """``--prompt-ids`` (default :data:`DEMO_PROMPT`), read by :func:`prompt_ids`."""
    parser.add_argument("--prompt-ids", default=",".join(map(str, DEMO_PROMPT)), help=help)


#: whether the parser being built lists the engines of installed entry points too (set by
#: :func:`tritium.cli.build_parser`; off by default, so start-up scans no distributions)
SCAN_INSTALLED = False


def parser_engines() -> dict:
    """The engines whose subcommands, options and help a command module's parser lists:
    the built-in and ``TRITIUM_ENGINES`` ones, and those of installed entry points while
    :data:`SCAN_INSTALLED` (the CLI parses again so when the first parse fails: an engine
    only an entry point adds is then found by its subcommand or option)."""
    from tritium import registry

    return registry.engines(installed=SCAN_INSTALLED)


def engine_hooks(verb: str, arg) -> list:
    """Each engine's ``commands`` hook called for ``verb`` with ``arg`` (subparsers, or the
    verb's own parser), in registry order: what those that return something return."""
    return [r for r in (e.hook("commands")(verb, arg) for e in parser_engines().values()
                        if e.commands) if r]


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
    return "; ".join(f"{e.name}: {e.title}" for e in parser_engines().values()) \
        + ("" if SCAN_INSTALLED else "; or an engine added by an installed entry point")


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


# ---- options generated from a config dataclass ------------------------------------------

def int_fields(cfg_cls, prefix: str = ""):
    """(option name, path, field) of every integer field, nested configs flattened:
    MfcConfig's ``tmv.simd`` becomes ``--tmv-simd``."""
    import dataclasses

    for f in dataclasses.fields(cfg_cls):
        if f.default is dataclasses.MISSING:     # a nested config (default_factory)
            nested = type(f.default_factory())
            yield from int_fields(nested, f"{prefix}{f.name}.")
        elif f.type in ("int", int):
            yield (prefix + f.name).replace(".", "-").replace("_", "-"), prefix + f.name, f


def _value(cfg, path: str):
    for name in path.split("."):
        cfg = getattr(cfg, name)
    return cfg


def _add_int_options(p, cfg_cls, defaults, opt_prefix: str, dest: str,
                     default_label: str = "default") -> None:
    for opt, path, f in int_fields(cfg_cls):
        lo, hi = f.metadata.get("range", (None, None))
        rng = f" [{lo}..{hi}]" if lo is not None else ""
        p.add_argument(f"--{opt_prefix}{opt}", dest=f"{dest}{path}", type=int, metavar="N",
                       help=f"{f.metadata.get('doc', '')} ({default_label} "
                            f"{_value(defaults, path)}){rng}")


def _overridden(args, cfg_cls, dest: str, base: dict) -> dict:
    """``base`` (a config's dict) with every option given on the command line applied."""
    for _, path, _ in int_fields(cfg_cls):
        v = getattr(args, f"{dest}{path}", None)
        if v is not None:
            *outer, name = path.split(".")
            d = base
            for key in outer:
                d = d[key]
            d[name] = v
    return base


def add_config_options(p: argparse.ArgumentParser, cfg_cls) -> None:
    """One ``--field N`` option per integer field of ``cfg_cls`` (defaults, ranges and help
    from the dataclass), plus ``--config JSON``."""
    _add_int_options(p, cfg_cls, cfg_cls(), "", "cfg_")
    p.add_argument("--config", metavar="JSON", help="read the config from a JSON file "
                   "(options given on the command line override its fields)")


def config_from_args(args, cfg_cls):
    """The ``cfg_cls`` config ``--config`` (or the default) names, with the options of
    :func:`add_config_options` applied; ConfigError if the file holds another kind."""
    from tritium.config import Config, load_config
    from tritium.errors import ConfigError

    base = (load_config(args.config) if args.config else cfg_cls()).to_dict()
    cfg = Config.from_dict(_overridden(args, cfg_cls, "cfg_", base))
    if not isinstance(cfg, cfg_cls):
        raise ConfigError(f"{args.config} holds a {cfg.kind!r} config, not {cfg_cls.kind!r}")
    return cfg


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--NAME-FIELD N`` for every integer field of the config of every engine of
    :func:`parser_engines`, in one group per engine: ``tritium serve --engine tmv --tmv-simd
    8``. Applied by :func:`engine_options_applied`."""
    for e in parser_engines().values():
        cls = e.config_class()
        g = p.add_argument_group(f"{e.name} engine options (fields of {cls.__name__}; they "
                                 f"change the {e.name} engine of the SoC)")
        _add_int_options(g, cls, e.served_config(), f"{e.name}-", f"eng_{e.name}__",
                         "served")


def engine_options_given(args) -> set[str]:
    """The names of the engines whose :func:`add_engine_options` were given."""
    return {k.split("__")[0][4:] for k, v in vars(args).items()
            if k.startswith("eng_") and v is not None}


def engine_options_applied(args, soc):
    """``soc`` with the :func:`add_engine_options` given on the command line applied to its
    engines (each engine's config re-validated). ConfigError naming the option if it is for
    an engine the SoC does not hold."""
    import dataclasses

    from tritium import registry
    from tritium.config import Config
    from tritium.errors import ConfigError

    given = engine_options_given(args)
    if not given:
        return soc
    held = {registry.of(e).name: e for e in soc.engines}
    stray = sorted(given - set(held))
    if stray:
        raise ConfigError(f"--{stray[0]}-... options change the {stray[0]} engine, which this "
                          f"SoC does not hold (it holds {', '.join(held)}); choose "
                          f"--engine {stray[0]} or drop them")
    engines = tuple(Config.from_dict(_overridden(args, type(e), f"eng_{n}__", e.to_dict()))
                    if n in given else e for n, e in held.items())
    return dataclasses.replace(soc, engines=engines)


def _baud_field():
    import dataclasses

    from tritium.config import SocConfig

    (field,) = [f for f in dataclasses.fields(SocConfig) if f.name == "baud"]
    return field


def baud_rate(text: str) -> int:
    """``--baud``: a rate in baud (SocConfig.baud's range), or a board name for the rate
    its default build runs the link at (``ulx3s-85f`` -> 3000000)."""
    if text.isdigit():
        return int_range(*_baud_field().metadata["range"])(text)
    from tritium.boards import BOARDS, get_board

    if text not in BOARDS:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a baud rate nor a board "
                                         f"({', '.join(BOARDS)})")
    return get_board(text).default_config().baud


def add_device_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--device URL`` (required) and ``--baud RATE|BOARD`` (a serial port's rate;
    default the host's :data:`tritium.host.device.DEFAULT_BAUD`), read by
    :func:`device_kwargs`."""
    parser.add_argument("--device", required=True, metavar="URL", help=help)
    parser.add_argument("--baud", type=baud_rate, default=None, metavar="RATE|BOARD",
                        help="serial port rate: baud, or a board name for its build's rate "
                             "(e.g. ulx3s-85f); default the SoC config's default "
                             f"({_baud_field().default}); a socket:// URL ignores it")


def device_kwargs(args) -> dict:
    """The ``Device`` arguments of :func:`add_device_option`'s options."""
    return {"baud": args.baud}
