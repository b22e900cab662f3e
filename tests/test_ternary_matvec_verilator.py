"""TMV in Verilator through cocotb: random shapes and stalls, both formats, block RAM and
external memory, exact counters, error flags; every result beat checked against the golden."""

import numpy as np
import pytest

from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError, ShapeError, SimulationError
from tritium.golden.ternary import CODE_INVALID, CODE_NEG
from tritium.engines.tmv.golden import TMV_FORMAT_CODES, ternary_matvec
from tritium.engines.tmv.runner import run_tmv, run_tmv_commands

pytestmark = pytest.mark.verilator

BRAM = TernaryConfig(simd=8, pe=3, max_in=64, max_out=32, weight_depth=256)
EXT = TernaryConfig(simd=6, pe=2, max_in=30, max_out=12, weight_depth=128, mem_latency=5,
                    mem_bytes_per_cycle=2, levels_per_stage=1)


def random_jobs(cfg, n, seed):
    rng = np.random.default_rng(seed)
    jobs = []
    for k in range(n):
        rows, cols = int(rng.integers(1, cfg.max_out + 1)), int(rng.integers(1, cfg.max_in + 1))
        x = rng.integers(cfg.act_min, cfg.act_max + 1, cols)
        if k and rng.random() < 0.3:
            cols, x = jobs[-1][0].shape[1], None  # reuse the buffered vector
        fmt = cfg.formats[int(rng.integers(len(cfg.formats)))]
        jobs.append((rng.integers(0, 3, (rows, cols)), x, fmt))
    return jobs


def golden(cfg, jobs):
    out, x_prev = [], None
    for codes, x, _ in jobs:
        x_prev = x_prev if x is None else x
        out.append(ternary_matvec(cfg, codes, x_prev)[0])
    return out


@pytest.mark.parametrize("seed,valid_prob,ready_prob", [(1, 1.0, 1.0), (2, 0.5, 0.4),
                                                        (3, 0.8, 0.2)])
def test_back_to_back_random_shapes_and_stalls(seed, valid_prob, ready_prob, tmp_path):
    jobs = random_jobs(BRAM, 8, seed)
    out = run_tmv_commands(BRAM, jobs, seed=seed, valid_prob=valid_prob,
                           ready_prob=ready_prob, run_dir=tmp_path)
    assert out["y"] == golden(BRAM, jobs)  # also checked beat by beat inside the bench
    words = [BRAM.words(*np.shape(c)) for c, _, _ in jobs]
    cnt = out["counters"]
    assert out["error"] == 0 and cnt["mac_slots"] == sum(words) * BRAM.word_codes
    # commands never wait: each stall cycle delays the whole stream by exactly one
    assert cnt["busy_cycles"] == sum(words) - 1 + BRAM.latency + cnt["stall_input"] + \
        cnt["stall_output"]
    assert cnt["stall_memory"] == BRAM.fill_cycles
    assert np.diff(out["cmd_cycles"]).tolist() == words[:-1] or valid_prob < 1 or \
        ready_prob < 1, "a bubble between back-to-back commands"


@pytest.mark.parametrize("fmt", ["t2", "t3"])
@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 8), (4, 9), (32, 64)],
                         ids=["1x1", "one-word", "non-multiples", "max"])
def test_cycle_formula_exact_against_counters(fmt, rows, cols, tmp_path):
    rng = np.random.default_rng(rows * cols)
    codes, x = rng.integers(0, 3, (rows, cols)), rng.integers(-128, 128, cols)
    y, cnt = run_tmv(BRAM, codes, x, fmt=fmt, run_dir=tmp_path)
    assert y == ternary_matvec(BRAM, codes, x)[0]
    assert cnt["busy_cycles"] == BRAM.cycles(rows, cols, fmt)
    assert cnt["stall_memory"] == BRAM.stall_memory_cycles(rows, cols, fmt)
    assert cnt["stall_input"] == cnt["stall_output"] == cnt["error"] == 0


def test_extreme_values_at_max_size(tmp_path):
    cfg = BRAM
    codes = np.full((cfg.max_out, cfg.max_in), CODE_NEG)
    codes[1::2] = 2
    y, _ = run_tmv(cfg, codes, [-128] * cfg.max_in, fmt="t3", run_dir=tmp_path)
    assert y == [128 * 64, -128 * 64] * 16


@pytest.mark.parametrize("fmt", ["t2", "t3"])
def test_external_memory_latency_and_bandwidth(fmt, tmp_path):
    rng = np.random.default_rng(11)
    codes, x = rng.integers(0, 3, (7, 20)), rng.integers(-128, 128, 20)
    y, cnt = run_tmv(EXT, codes, x, fmt=fmt, run_dir=tmp_path)
    assert y == ternary_matvec(EXT, codes, x)[0]
    assert cnt["busy_cycles"] == EXT.cycles(7, 20, fmt)
    assert cnt["stall_memory"] == EXT.stall_memory_cycles(7, 20, fmt)
    # 12 codes per word: t2 3 bytes (2 cycles at 2 bytes/cycle), t3 3 bytes as well
    jobs = random_jobs(EXT, 6, 5)
    out = run_tmv_commands(EXT, jobs, seed=5, valid_prob=0.7, ready_prob=0.5,
                           cmd_valid_prob=0.5, run_dir=tmp_path)
    assert out["y"] == golden(EXT, jobs)


def test_invalid_code_and_bad_command_set_error_without_hanging(tmp_path):
    codes = np.array([[2, CODE_INVALID, 0], [1, 2, 2]])
    x = [5, 7, 2]
    good = {"rows": 2, "cols": 3, "base": 0, "fmt": TMV_FORMAT_CODES["t2"], "load_x": 1,
            "x": [[5, 7, 2, 0, 0, 0, 0, 0]]}
    bad = dict(good, rows=BRAM.max_out + 1, load_x=0)
    bad.pop("x")
    out = run_tmv_commands(BRAM, [(codes, x, "t2")], run_dir=tmp_path, _unchecked=True,
                           _raw_commands=[bad, good])
    assert out["error"] == 1
    assert out["beats"] == [[[5 - 2, 7 + 2, 0], True]]
    # the host refuses the same input before simulating
    with pytest.raises(ShapeError, match="code 3 is invalid"):
        run_tmv(BRAM, codes, x)


def test_bench_detects_a_wrong_result(tmp_path):
    with pytest.raises(SimulationError, match=r"o beat 1: got \d+, expected"):
        run_tmv_commands(BRAM, random_jobs(BRAM, 3, 4), run_dir=tmp_path, _corrupt_expected=1)


def test_stalled_stream_fails_fast_naming_it(tmp_path):
    with pytest.raises(SimulationError, match=r"stalled.*o: valid=1 ready=0"):
        run_tmv_commands(BRAM, random_jobs(BRAM, 2, 6), ready_prob=0.0, stall_limit=200,
                         run_dir=tmp_path)


def test_host_rejects_bad_input_before_simulating():
    with pytest.raises(ShapeError, match="max_in"):
        run_tmv(BRAM, np.ones((2, 65), int), [1] * 65)
    with pytest.raises(ShapeError, match="weight_depth"):
        run_tmv_commands(BRAM, [(np.ones((32, 64), int), [0] * 64, "t2")] * 4)
    with pytest.raises(ConfigError, match="no t3 decoder"):
        run_tmv(TernaryConfig(simd=4, pe=1, has_t3=0), np.ones((1, 1), int), [1], fmt="t3")
