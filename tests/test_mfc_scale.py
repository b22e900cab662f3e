"""The token core at real scale without a simulator: the lm_head in chunks (its running
argmax against the argmax over all logits of the same model compiled in one chunk, ties
included), real addresses in the shape program, and the refusals of a model that does not
fit (vector memory, weight lines / DRAM, instruction memory), through the API and the CLI."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tritium.config import SocConfig
from tritium.dram import DramConfig
from tritium.engines.mfc.compile import (CompileError, GoldenCore, compile_model,
                                         shape_footprint, shape_program)
from tritium.engines.mfc.config import MfcConfig
from tritium.engines.mfc.golden import Op, decode_word
from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError
from tritium.golden.checkpoint import load_checkpoint, write_checkpoint

VOCAB = 1600
#: max_out 2048: the 1600-row head in one chunk
WIDE = MfcConfig(tmv=dataclasses.replace(MfcConfig().tmv, max_out=2048), vmem_depth=8192)
#: max_out 512 (gate_proj's rows): the head in chunks of 512, 512, 512 and 64 rows (two
#: result banks, each reused)
CHUNKED = dataclasses.replace(WIDE, tmv=dataclasses.replace(WIDE.tmv, max_out=512))
PROMPT = [3, 1, 4, 1, 5]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ck") / "h64-v1600", "hgrn-bit",
                            hidden=64, layers=2, vocab=VOCAB, seed=0)


@pytest.fixture(scope="module")
def desc(ckpt):
    return load_checkpoint(ckpt)


def full_argmax(compiled, ids):
    """Greedy tokens from the logits of a one-chunk compile: np.argmax (first index)."""
    core = GoldenCore(compiled)
    core.reset_state()
    out = []
    for t in ids:
        tok, logits = core.step(t)
        assert tok == int(np.argmax(logits))    # the device's VARGMAX: the first maximum
        out.append(tok)
    return out


def test_chunked_head_gives_the_argmax_over_all_logits(desc):
    wide, chunked = compile_model(desc, WIDE), compile_model(desc, CHUNKED)
    assert (wide.layout.head_chunks, chunked.layout.head_chunks) == (1, 4)
    # every chunk is a placement of its own; together they are the head's lines
    heads = [p for n, p in chunked.placements.items() if n.startswith("lm_head[")]
    assert [(p.rows, p.cols) for p in heads] == [(512, 64)] * 3 + [(64, 64)]
    assert len(chunked.weights) == len(wide.weights)
    ids = list(range(0, VOCAB, 37))
    tokens = [GoldenCore(chunked).step(t)[0] for t in ids]   # each from a fresh state
    assert tokens == [full_argmax(wide, [t])[0] for t in ids]
    # decoding: the same sequence, the state carried over
    assert GoldenCore(chunked).generate(PROMPT, 12) == GoldenCore(wide).generate(PROMPT, 12)
    # no memory holds all the logits: the API says so instead of returning a part
    assert GoldenCore(chunked).step(5)[1] is None
    with pytest.raises(CompileError, match="4 chunks.*max_out >= 1600"):
        GoldenCore(chunked).logits([1, 2])


def test_ties_across_chunks_keep_the_first_index(desc):
    # lm_head rows repeat with period 700 (not a multiple of the 512-row chunk): every
    # logit appears again 700 (and 1400) rows later, in a later chunk, so the maximum is
    # tied across chunks and the first index (< 700) is the golden's rule
    d = dataclasses.replace(desc)
    head = d.lm_head
    codes = np.concatenate([head.codes[:700]] * 3)[:VOCAB]
    object.__setattr__(d, "lm_head", dataclasses.replace(head, codes=codes))
    wide, chunked = compile_model(d, WIDE), compile_model(d, CHUNKED)
    seen = set()
    for t in range(0, VOCAB, 23):
        tok = GoldenCore(chunked).step(t)[0]
        assert tok == full_argmax(wide, [t])[0] and tok < 700
        seen.add(tok // 512)
    assert seen == {0, 1}   # maxima in both chunks that have later duplicates


def test_a_logit_bound_beyond_the_bias_is_refused(desc):
    coarse = dataclasses.replace(CHUNKED, frac_bits=24, norm_frac=24, quant_shift=40,
                                 rescale_frac=40)
    head = desc.lm_head
    big = dataclasses.replace(desc)
    # a head scale that makes its logits' bound exceed 2^30 at 24 fraction bits
    object.__setattr__(big, "lm_head", dataclasses.replace(head, scale=1e-3))
    with pytest.raises(CompileError, match="chunked argmax's exact range"):
        compile_model(big, coarse)


def test_shape_program_has_real_addresses():
    cfg = MfcConfig(tmv=TernaryConfig(simd=16, pe=4, max_in=2816, max_out=5632,
                                      weight_depth=1 << 24, has_t3=0),
                    vmem_depth=1 << 20, imem_depth=1 << 16)
    need = shape_footprint(cfg, 1024, 2816, 32000, 24)
    assert need["head_chunks"] == 6
    # 370M: every ternary weight placed once, 64 codes a line
    per_layer = 4 * 1024 * 1024 + 3 * 1024 * 2816
    assert need["weight_lines"] == (24 * per_layer + 32000 * 1024) // 64
    assert 24 * 6 * 1024 < need["vmem_elements"] < 1 << 19
    program = shape_program(cfg, 1024, 2816, 32000, 24)
    assert len(program) == need["instructions"]
    tmv = [decode_word(w) for w in program if decode_word(w).op == Op.TMV]
    bases = [i.b for i in tmv]
    # the weight bases run through the memory in order, none shared, the last one near
    # the end: real addresses, not placeholders that wrap
    assert bases == sorted(set(bases)) and bases[0] == 0
    assert bases[-1] + cfg.tmv.words(tmv[-1].d, tmv[-1].a) == need["weight_lines"]
    assert max(bases) >= 1 << 16
    top = max(max(i.d, i.a) for w in program for i in [decode_word(w)]
              if Op(i.op).name.startswith("V") and i.op != Op.VQUANT and i.op != Op.VRESCALE)
    assert 1 << 16 < top < need["vmem_elements"]
    # too small a core for the shape: the same refusals as compile_model
    with pytest.raises(CompileError, match="raise mfc.vmem_depth"):
        shape_program(dataclasses.replace(cfg, vmem_depth=1 << 16), 1024, 2816, 32000, 24)
    with pytest.raises(CompileError, match="raise mfc.imem_depth"):
        shape_program(dataclasses.replace(cfg, imem_depth=1024), 1024, 2816, 32000, 24)
    with pytest.raises(CompileError, match="raise mfc.tmv.weight_depth"):
        shape_program(dataclasses.replace(cfg, tmv=dataclasses.replace(
            cfg.tmv, weight_depth=1 << 20)), 1024, 2816, 32000, 24)


def test_the_2p7b_shape_fits_the_fields():
    cfg = MfcConfig(tmv=TernaryConfig(simd=16, pe=4, max_in=6912, max_out=13824,
                                      weight_depth=1 << 26, has_t3=0))
    need = shape_footprint(cfg, 2560, 6912, 32000, 32)
    assert need["weight_lines"] > 1 << 25            # past 16- and 24-bit bases
    assert need["vmem_elements"] > 1 << 16 and need["head_chunks"] == 3


def test_weights_beyond_the_dram_are_refused(desc):
    # 32 KiB of DRAM: 2048 lines of 16 bytes; the model needs 3648
    dram = DramConfig(size=1 << 15)
    t = dataclasses.replace(WIDE.tmv, weights_dram=1, weight_depth=dram.size_bytes // 16)
    cfg = dataclasses.replace(WIDE, tmv=t)
    SocConfig(engines=(cfg,), dram=dram)
    with pytest.raises(CompileError, match=r"3648 lines.*SoC's DRAM.*weight_depth=2048.*soc.dram.size"):
        compile_model(desc, cfg)
    # a weight_depth beyond the DRAM is the config's error, naming the field
    big = dataclasses.replace(cfg, tmv=dataclasses.replace(t, weight_depth=1 << 12))
    with pytest.raises(ConfigError, match="mfc.tmv's 4096 weight lines.*mfc.tmv.weight_depth"):
        SocConfig(engines=(big,), dram=dram)
    with pytest.raises(ConfigError, match="mfc.tmv.weights_dram=1 needs a DRAM"):
        SocConfig(engines=(cfg,))


@pytest.mark.parametrize("args, limit", [
    (["--vmem-depth", "1024"], "raise mfc.vmem_depth"),
    (["--hidden", "256"], "14336 lines.*raise mfc.tmv.weight_depth or put the weights in DRAM"),
])
def test_cli_refuses_a_model_too_big_in_one_line(args, limit):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([sys.executable, "-m", "tritium.cli", "sim", "mfc", *args],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0, r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and re.search(limit, lines[0]), r.stderr
    assert "Traceback" not in r.stderr
