"""CLI: ``serve``, ``load``, ``run`` and ``demo`` (the main job); each engine adds its own
``run`` subcommands and top-level verbs through its description's ``commands`` hook (the
TMV's ``run matvec``, the token core's ``generate``).

``demo`` makes a small HGRN-bit checkpoint and hands it to each engine's part of the demo,
in registry order: the TMV loads it through the driver into the simulated FPGA, runs
every BitLinear of one token and compares each result with the golden integer path; the
token core then generates 16 tokens (every layer on the device) and checks them against
the fixed-point golden.
"""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path


from tritium.cliargs import (add_device_option, add_engine_options, add_json_flag, device_kwargs,
                             engine_hooks, engine_name, engine_options_applied, engines_help,
                             parser_engines, print_json)
from tritium import registry
from tritium.config import SocConfig, load_config, served_soc
from tritium.errors import ConfigError, SimulationError


def _soc_config(path, engine: str | None = None) -> SocConfig:
    if not path:
        return served_soc(engine or registry.default_name())
    cfg = load_config(path)
    if not isinstance(cfg, SocConfig):
        raise ConfigError(f"{path} holds a {cfg.kind!r} config; `serve` needs a 'soc' config")
    return cfg


# ---- serve ------------------------------------------------------------------------------

def cmd_serve(args) -> int:
    from rich.console import Console

    from tritium.sim.serve import SimulatedDevice

    from tritium.sim.serve import with_dram

    console = Console(stderr=True)
    cfg = engine_options_applied(args, _soc_config(args.config, args.engine))
    if args.dram is not None:
        cfg = with_dram(cfg, args.dram, args.dram_size, large_frames=not args.config)
    dev = SimulatedDevice(cfg, port=args.port)  # checks the port before building
    with console.status("building the simulated FPGA (Verilator; cached after the first time)"):
        dev.start()
    print(dev.url, flush=True)
    console.print(f"simulated FPGA serving on {dev.url} (Ctrl-C to stop)")
    if dev.backdoor_url:
        console.print(f"DRAM backdoor (Device.load_dram(..., fast=URL)): {dev.backdoor_url}")
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    try:
        while not stop and dev.proc.poll() is None:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        died = dev.died()
        dev.stop()
    if died:
        raise SimulationError(f"the simulated FPGA on {dev.url} ended ({died}); hosts "
                              "connected to it lost it: restart `tritium serve`")
    return 0


# ---- load / run -------------------------------------------------------------------------

def cmd_load(args) -> int:
    from tritium.golden.checkpoint import load_checkpoint

    from .device import Device

    desc = load_checkpoint(args.checkpoint)
    with Device(args.device, **device_kwargs(args)) as dev:
        kw = {"fast": args.fast} if args.fast else {}
        rep = dev.load(desc, fmt=args.format, progress=not args.quiet, **kw)
    print(f"loaded {len(rep.layers)} BitLinears ({rep.bytes_sent:,} bytes, {args.format}) "
          f"in {rep.seconds:.2f} s = {rep.mb_per_s:.2f} MB/s; device CRC {rep.device_crc:#010x} "
          "matches")
    return 0


# ---- demo -------------------------------------------------------------------------------

def cmd_demo(args) -> int:
    from rich.console import Console

    console = Console(quiet=args.json)
    t0 = time.monotonic()
    result: dict = {"seed": args.seed}
    # the checkpoint lives as long as the demo: removed on every way out
    with tempfile.TemporaryDirectory(prefix="tritium-demo-") as work:
        try:
            return _demo(console, Path(work), args, t0, result)
        finally:
            if args.json:
                print_json(result)


def _demo(console, work: Path, args, t0: float, result: dict) -> int:
    """The demo (module docstring), printed on ``console``: the engines' parts
    (``args.demo_parts``, each ``part(console, desc, args, result) -> ok``) on one
    checkpoint; ``result`` collects what they found (``--json``), as far as they got."""
    from tritium.golden.checkpoint import load_checkpoint, write_checkpoint

    ckpt = write_checkpoint(work / "hgrn-bit-h64", "hgrn-bit", hidden=64, layers=2, vocab=256,
                            seed=args.seed)
    desc = load_checkpoint(ckpt)
    console.print(f"checkpoint: {ckpt} (temporary; HGRN-bit, hidden 64, 2 layers, vocab 256, "
                  f"{sum(l.parameters for l in desc.bitlinears()):,} ternary weights)")
    ok = True
    for part in args.demo_parts:
        ok &= part(console, desc, args, result)
    result.update(ok=ok, seconds=round(time.monotonic() - t0, 1))
    console.print(f"demo took {time.monotonic() - t0:.0f} s")
    return 0 if ok else 1


def register(sub) -> None:
    p = sub.add_parser("demo", help="the main job: a checkpoint through the host driver into "
                       "the simulated FPGA, every layer checked, then 16 tokens on the token "
                       "core",
                       description="Make a small HGRN-bit checkpoint, start the simulated "
                       "FPGA (Verilator), load the checkpoint through the driver, run every "
                       "BitLinear of one token on the TMV engine and compare each result with "
                       "the golden integer path; then compile the checkpoint for the token "
                       "core, generate 16 tokens on a second simulated SoC and check them "
                       "against the fixed-point golden, the cycles per token against the "
                       "cycle model, and the core's agreement with the float reference "
                       "(--min-agreement).")
    p.add_argument("--seed", type=int, default=0, help="checkpoint seed (default 0)")
    parts = engine_hooks("demo", p)  # each engine's part of the demo, and its options
    add_json_flag(p)
    p.set_defaults(func=cmd_demo, demo_parts=parts)

    p = sub.add_parser("serve", help="run the simulated FPGA on a local TCP port",
                       description="Build the SoC under Verilator and serve its byte stream "
                       "on 127.0.0.1; prints the socket:// URL for --device.")
    p.add_argument("--config", metavar="JSON", help="SoC config (kind 'soc'); default built in")
    p.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free port)")
    p.add_argument("--engine", type=engine_name, default=registry.default_name(),
                   help=f"without --config: the SoC of this engine alone ({engines_help()}; "
                        "default %(default)s)")
    p.add_argument("--dram", metavar="PART", default=None,
                   help="give the SoC a DRAM of this part (ideal, or a part of "
                        "tritium.dram.PARTS), its simulated controller beside it and a "
                        "backdoor for fast loads (docs/memory.md)")
    p.add_argument("--dram-size", metavar="BYTES", type=int, default=0,
                   help="with --dram: bytes of the part used (a power of two; default all)")
    add_engine_options(p)
    p.set_defaults(func=cmd_serve)

    engine_hooks("tritium", sub)  # the engines' own top-level verbs (generate)

    p = sub.add_parser("load", help="load a checkpoint's ternary weights into a device",
                       description="Quantise, pack, tile and stream every BitLinear of a "
                       "checkpoint to the device, then prove the device holds exactly those "
                       "bytes (CRC-32).")
    p.add_argument("checkpoint")
    add_device_option(p, "socket://127.0.0.1:PORT (tritium serve) or a serial port")
    p.add_argument("--format", choices=("t2", "t3"), default="t2")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--fast", metavar="URL", default=None,
                   help="weights in a simulated device's DRAM: write them through its "
                        "backdoor (the URL `tritium serve --dram` prints); the CRC proof "
                        "is the same (docs/memory.md)")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("run", help="run an engine on a device and check it against the golden",
                       description="Run work on a device holding a loaded checkpoint.")
    rsub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    for eng in parser_engines().values():  # each engine's own `run` commands
        if eng.commands:
            eng.hook("commands")("run", rsub)
