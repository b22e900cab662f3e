"""TernaryDot in Verilator through cocotb: random data, random stalls, beat-by-beat golden."""

import numpy as np
import pytest

from tritium.engines.tmv.config import TernaryDotConfig
from tritium.errors import ShapeError, SimulationError
from tritium.golden.ternary import CODE_INVALID, CODE_NEG, CODE_POS
from tritium.engines.tmv.golden import ternary_dot, to_beats
from tritium.engines.tmv.hdl.dot import beat_layout
from tritium.sim.payload import pack
from tritium.engines.tmv.dot_runner import run_ternary_dot

pytestmark = pytest.mark.verilator

CFG16 = TernaryDotConfig(lanes=16, max_length=256)
CFG5 = TernaryDotConfig(lanes=5, max_length=64, levels_per_stage=1)


def vectors(cfg, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.integers(1, cfg.max_length + 1))
        out.append((rng.integers(0, 3, length).tolist(),
                    rng.integers(cfg.act_min, cfg.act_max + 1, length).tolist()))
    return out


@pytest.mark.parametrize("cfg", [CFG16, CFG5], ids=["lanes16", "lanes5"])
@pytest.mark.parametrize("seed,valid_prob,ready_prob", [(1, 1.0, 1.0), (2, 0.5, 0.4), (3, 0.9, 0.2)])
def test_random_vectors_random_stalls(cfg, seed, valid_prob, ready_prob, tmp_path):
    vecs = vectors(cfg, 30, seed)
    out = run_ternary_dot(cfg, vecs, seed=seed, valid_prob=valid_prob, ready_prob=ready_prob,
                          run_dir=tmp_path)
    # the bench already compared beat by beat; check again on this side of the process
    assert out["results"] == [ternary_dot(cfg, c, x)[0] for c, x in vecs]
    assert out["error"] == 0
    assert len(out["in_cycles"]) == sum(-(-len(c) // cfg.lanes) for c, _ in vecs)
    # a passive monitor on the input saw exactly the beats the source sent, in order
    layout = beat_layout(cfg)
    sent = [pack(layout, {"w": w, "x": x, "last": int(last)})
            for c, xs in vecs for w, x, last in to_beats(cfg, c, xs)]
    assert out["monitored_in_beats"] == sent


def test_extreme_values_at_max_length(tmp_path):
    cfg = TernaryDotConfig(lanes=16, max_length=4096)
    n = cfg.max_length
    vecs = [([CODE_NEG] * n, [-128] * n), ([CODE_POS] * n, [-128] * n)]
    out = run_ternary_dot(cfg, vecs, run_dir=tmp_path)
    assert out["results"] == [128 * n, -128 * n]


def test_cycle_formula_and_back_to_back_throughput(tmp_path):
    cfg = CFG16
    for length in (1, 16, 17, 200):
        out = run_ternary_dot(cfg, [([CODE_POS] * length, [3] * length)], run_dir=tmp_path)
        assert out["out_cycles"][0] - out["in_cycles"][0] == cfg.cycles(length)
    vecs = vectors(cfg, 10, 7)
    out = run_ternary_dot(cfg, vecs, run_dir=tmp_path)
    ins = out["in_cycles"]
    assert ins == list(range(ins[0], ins[0] + len(ins))), "a bubble between beats"


def test_invalid_code_sets_error_and_does_not_hang(tmp_path):
    vec = [([CODE_POS, CODE_INVALID, CODE_NEG] * 5, list(range(15)))]
    out = run_ternary_dot(CFG16, vec, run_dir=tmp_path)
    assert out["error"] == 1
    assert out["results"] == [ternary_dot(CFG16, *vec[0])[0]]


def test_bench_detects_a_wrong_result(tmp_path):
    with pytest.raises(SimulationError, match=r"o beat 2: got (-?\d+), expected"):
        run_ternary_dot(CFG16, vectors(CFG16, 4, 9), run_dir=tmp_path, _corrupt_expected=2)


def test_stalled_stream_fails_fast_naming_it(tmp_path):
    # nobody ever takes the result: the watchdog must name `o` as valid but not ready
    with pytest.raises(SimulationError, match=r"stalled.*o: valid=1 ready=0"):
        run_ternary_dot(CFG16, vectors(CFG16, 3, 4), ready_prob=0.0, stall_limit=200,
                        run_dir=tmp_path)


def test_host_rejects_too_long_vector_before_simulating():
    with pytest.raises(ShapeError, match="max_length"):
        run_ternary_dot(CFG16, [([CODE_POS] * 257, [1] * 257)])


def test_waves_are_recorded(tmp_path):
    cfg = TernaryDotConfig(lanes=2, max_length=8)
    out = run_ternary_dot(cfg, [([CODE_POS] * 5, [1, 2, 3, 4, 5])], waves=True, run_dir=tmp_path)
    assert out["results"] == [15]
    trace = tmp_path / out["wave_file"]
    assert trace.stat().st_size > 0
    if trace.suffix == ".vcd":  # FST is binary; VCD names the ports in its header
        head = trace.read_text()[:4000]
        assert "o__payload" in head and "i__valid" in head
