"""The token core at real width with its weights in DRAM, on the served (Verilator) SoC:
a 2-layer MMfreeLM-370M-wide checkpoint (H 1024, I 2816, V 32000, written by ``tritium
make-checkpoint --preset mmfreelm-370m --layers 2``) compiled with real addresses, its
14.6 MB of weight lines backdoor-loaded into the ideal DRAM (CRC-proved), the lm_head in
6 chunks; tokens identical to the fixed-point golden, every run's counters equal to the
cycle model, and every weight byte read from DRAM once per token. And a small model with
its weights in the LiteDRAM SDR model: the golden's tokens, the sequencer's own work as
the model counts it, the TMV slowed by the SDRAM; and ``tritium generate --fast`` on
``tritium serve --config`` of that SoC."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tritium.config import SocConfig
from tritium.dram import DramConfig
from tritium.engines.mfc.compile import GoldenCore, compile_model
from tritium.engines.mfc.golden import Op, decode_word
from tritium.engines.mfc.model import dram_core
from tritium.engines.tmv.model import dram_matvec_cycles
from tritium.errors import DeviceError
from tritium.golden.checkpoint import load_checkpoint
from tritium.host import Device
from tritium.sim.serve import DRAM_MAX_PAYLOAD, SimulatedDevice

#: the ideal part with a 16-byte beat: one weight line a beat
DRAM = DramConfig(size=1 << 25, ideal_port_bits=128)
#: the core dram_core sizes for the shape: its DRAM cycle model equals the on-chip one
#: (checked below)
CORE = dram_core(1024, 2816, 32000, 2, DRAM)
CFG = SocConfig(engines=(CORE,), dram=DRAM, max_payload=DRAM_MAX_PAYLOAD)
PROMPT = [17]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "mmfreelm-370m-2l"
    subprocess.run([sys.executable, "-m", "tritium.cli", "make-checkpoint", "--preset",
                    "mmfreelm-370m", "--layers", "2", "-o", str(out), "--quiet"],
                   check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300)
    return out


@pytest.fixture(scope="module")
def compiled(ckpt):
    desc = load_checkpoint(ckpt)
    assert (desc.hidden_size, desc.intermediate_size, desc.vocab_size, len(desc.layers)) == \
        (1024, 2816, 32000, 2)
    return compile_model(desc, CORE)


def test_real_addresses_and_the_dram_cycle_model(compiled):
    t = CORE.tmv
    assert (t.max_in, t.max_out, t.weights_dram, t.weight_depth, t.mem_latency) == \
        (2816, 5632, 1, DRAM.size_bytes // 16, DRAM.spec.latency + 2)
    assert (CORE.vmem_depth, CORE.imem_depth) == (1 << 16, 1024)
    lay = compiled.layout
    assert lay.head_chunks == 6 and lay.vmem_used > 1 << 15
    assert len(compiled.weights) == (2 * (4 * 1024 ** 2 + 3 * 1024 * 2816) + 32000 * 1024) // 64
    tmv = [decode_word(w) for w in compiled.program if decode_word(w).op == Op.TMV]
    assert max(i.b for i in tmv) > 1 << 16    # weight bases past a 16-bit field
    # every command's DRAM timing (tritium.engines.tmv.model, exact on the ideal part) is
    # the on-chip formula the golden's cycle model uses
    t = CORE.tmv
    for i in tmv:
        assert dram_matvec_cycles(t, DRAM, i.d, i.a, i.b)["cycles"] == t.cycles(i.d, i.a)


@pytest.mark.verilator
def test_370m_wide_tokens_from_dram_equal_the_golden(compiled):
    est = compiled.estimate()
    golden = GoldenCore(compiled).generate(PROMPT, 3)
    with SimulatedDevice(CFG) as sim, Device(sim.url) as dev:
        assert "weights" not in dev.map and "dram" in dev.map
        rep = dev.load_core(compiled, fast=sim.backdoor_url)
        assert rep.bytes_sent == len(compiled.weights) * 16
        before = dev.counters()
        tokens, runs = dev.generate(PROMPT, 3)
        after = dev.counters()
        with pytest.raises(DeviceError, match="6 chunks"):
            dev.logits()
    assert tokens == golden and len(runs) == 3
    for run in runs:
        assert {k: run.counters[k] for k in est} == est
    # each token reads every weight line once, nothing else, from the DRAM
    assert after["dram_bytes_read"] - before["dram_bytes_read"] == 3 * rep.bytes_sent
    assert after["dram_bytes_written"] == before["dram_bytes_written"]


#: the ULX3S's SDR SDRAM through LiteDRAM's controller: 8 beats of 16 bits per line
SDR = DramConfig(part="mt48lc16m16", size=1 << 20)


@pytest.mark.verilator
def test_weights_in_the_sdr_model_give_the_golden_tokens(h64_checkpoint):
    core = dram_core(64, 256, 256, 2, SDR)
    compiled = compile_model(h64_checkpoint(0), core)
    est = compiled.estimate()
    golden = GoldenCore(compiled).generate(PROMPT, 3)
    cfg = SocConfig(engines=(core,), dram=SDR, max_payload=DRAM_MAX_PAYLOAD)
    with SimulatedDevice(cfg) as sim, Device(sim.url) as dev:
        dev.load_core(compiled, fast=sim.backdoor_url)
        tokens, runs = dev.generate(PROMPT, 3)
    assert tokens == golden
    for run in runs:
        c = run.counters
        # the sequencer's own work is the model's; the TMV waits on the SDRAM's bandwidth
        # (8 beats a line), which the core's cycle model does not include
        assert {k: c[k] for k in ("instructions", "issue", "vpu_busy", "scalar_busy")} == \
            {k: est[k] for k in ("instructions", "issue", "vpu_busy", "scalar_busy")}
        assert c["tmv_busy"] > 4 * est["tmv_busy"] and c["cycles"] > est["cycles"]
        assert c["cycles"] == c["issue"] + c["vpu_busy"] + c["scalar_busy"] + c["wait_tmv"]


@pytest.mark.verilator
def test_cli_serve_and_generate_with_the_weights_in_dram(h64_checkpoint, tmp_path):
    import json

    core = dram_core(64, 256, 256, 2, SDR)
    cfg = SocConfig(engines=(core,), dram=SDR, max_payload=DRAM_MAX_PAYLOAD)
    (tmp_path / "soc.json").write_text(cfg.to_json())
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    # the URL on stdout, the backdoor's on stderr (serve's console)
    serve = subprocess.Popen([sys.executable, "-m", "tritium.cli", "serve", "--config",
                              str(tmp_path / "soc.json")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = serve.stdout.readline().strip()
        assert url.startswith("socket://"), url
        backdoor = None
        while backdoor is None:
            line = serve.stderr.readline()
            assert line, "serve ended before printing the DRAM backdoor"
            if "backdoor" in line:
                backdoor = line.split()[-1]
        ckpt = h64_checkpoint(0)
        r = subprocess.run([sys.executable, "-m", "tritium.cli", "generate", str(ckpt),
                            "--device", url, "--fast", backdoor, "--prompt-ids", "1,2,3",
                            "-n", "3", "--json"],
                           capture_output=True, text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads(r.stdout)
        golden = GoldenCore(compile_model(ckpt, core)).generate([1, 2, 3], 3)
        assert rep["tokens"] == golden[3:] and rep["identical"] is True
    finally:
        serve.terminate()
        serve.wait(timeout=30)
