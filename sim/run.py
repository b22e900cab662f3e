"""Run a cocotb bench on a built Verilator model and collect its outputs.

The bench (a Python module of ``@cocotb.test`` functions) runs inside the simulator
process, so data crosses as files in the run directory: :func:`simulate` writes
``inputs.json``, the bench reads it with :func:`tritium.sim.streams.load_inputs` and
writes ``outputs.json`` with :func:`tritium.sim.streams.save_outputs`. A failing
assertion, a stall caught by the liveness watchdog, or a crashed simulator raises
:class:`~tritium.errors.SimulationError` with cocotb's failure message.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from tritium.errors import SimulationError

from .build import Model, log_tail

log = logging.getLogger("tritium.sim")

#: default liveness limit: cycles with no handshake on any watched stream
DEFAULT_STALL_LIMIT = 10_000


def simulate(model: Model, bench: str, *, testcase: str | None = None,
             inputs: dict[str, Any] | None = None, seed: int = 1,
             stall_limit: int = DEFAULT_STALL_LIMIT, cycle_limit: int | None = None,
             waves: bool = False, run_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run cocotb test module ``bench`` (dotted name) against ``model``.

    ``seed`` drives cocotb's and the bench's random stalls and data. ``stall_limit`` is the
    number of cycles a watched stream may go without a handshake before the bench fails
    naming it; ``cycle_limit`` caps the whole run. ``waves`` needs a model built with
    ``waves=True`` and writes ``model.wave_file`` (waves.fst or waves.vcd) into the run
    directory.
    Returns the bench's ``outputs.json`` (empty dict if it wrote none).
    """
    from cocotb_tools.runner import get_runner

    if waves and not model.waves:
        raise SimulationError("waves requested but the model was built without tracing; "
                              "build it with waves=True")
    rd = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="tritium-sim-"))
    rd.mkdir(parents=True, exist_ok=True)
    (rd / "inputs.json").write_text(json.dumps(inputs or {}))
    out_file = rd / "outputs.json"
    out_file.unlink(missing_ok=True)
    results = (rd / "results.xml").resolve()
    env = {
        "TRITIUM_SIM_DIR": str(rd.resolve()),
        "TRITIUM_STALL_LIMIT": str(stall_limit),
        "TRITIUM_CYCLE_LIMIT": str(cycle_limit or 0),
        "TRITIUM_SEED": str(seed),
    }
    runner = get_runner("verilator")
    runner.build_dir = model.build_dir  # the cached model; no rebuild
    logfile = rd / "sim.log"
    try:
        runner.test(test_module=bench, hdl_toplevel=model.design.top,
                    hdl_toplevel_lang="verilog", testcase=testcase, seed=seed,
                    build_dir=model.build_dir, test_dir=rd, results_xml=str(results),
                    extra_env=env, waves=waves, log_file=logfile,
                    test_args=["--trace-file", model.wave_file] if waves else [])
    except (SystemExit, RuntimeError):
        pass  # judged from results.xml below; cocotb exits under pytest on failure
    failures = _failures(results)
    if failures is None:
        raise SimulationError(f"simulation of {model.design.top} crashed before reporting "
                              f"results; see {logfile}: {log_tail(logfile, 8)}")
    if failures:
        raise SimulationError(f"{model.design.top}: " + "; ".join(failures) + f" (log {logfile})")
    return json.loads(out_file.read_text()) if out_file.exists() else {}


def _failures(results: Path) -> list[str] | None:
    """Failure messages from a cocotb results.xml; None if the file is missing."""
    if not results.is_file():
        return None
    root = ET.parse(results).getroot()
    msgs, count = [], 0
    for case in root.iter("testcase"):
        count += 1
        for bad in list(case.iter("failure")) + list(case.iter("error")):
            msg = (bad.get("message") or bad.text or "failed").strip().splitlines()
            msgs.append(f"{case.get('name')}: {msg[-1] if msg else 'failed'}")
    if count == 0:
        return ["no cocotb test ran (check the bench module name and testcase)"]
    return msgs
