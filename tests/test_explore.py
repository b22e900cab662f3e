"""tritium explore on real Dask clusters: an embedded LocalCluster and a `dask scheduler`
with two `dask worker` processes started from the venv's CLIs on 127.0.0.1."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tritium.boards import explore as X
from tritium.errors import UsageError
from tritium.sim import model as M

BIN = Path(sys.executable).parent
SPEC = {"engine": "tmv", "set": {"simd": [32, 64], "pe": [1, 2]},
        "platforms": ["u250", "ecp5-85f"], "models": ["mmfreelm-370m"], "level": "estimate"}


def _figures(rows):
    return {(r["platform"], r["simd"], r["pe"]): (r["tokens_per_s"], r["j_per_token"], r["lut"])
            for r in rows}


def test_local_cluster_runs_every_point_and_a_rerun_reads_the_cache(tmp_path):
    rep = X.explore(SPEC, tmp_path / "out", workers=2)
    assert rep["points"] == 8 and rep["ran"] == 8 and rep["cached"] == 0
    for r in rep["rows"]:
        e = M.estimate_model(r["model"], r["platform"], simd=r["simd"], pe=r["pe"])
        assert (r["tokens_per_s"], r["j_per_token"]) == (e["tokens_per_s"], e["j_per_token"])
        assert r["worker"].startswith("tcp://127.0.0.1:")
        assert json.loads(r["config_json"]) == {"simd": r["simd"], "pe": r["pe"]}
    for name in ("results.csv", "results.json", "pareto.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    again = X.explore(SPEC, tmp_path / "out", workers=2)
    assert again["ran"] == 0 and again["cached"] == 8
    assert _figures(again["rows"]) == _figures(rep["rows"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", ":0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for i in range(2):
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "worker", addr, "--nthreads", "1", "--nworkers", "1",
             "--name", f"w{i}", "--local-directory", str(tmp_path / f"w{i}")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    deadline = time.time() + 60
    while True:
        try:
            with Client(addr, timeout=5) as c:
                if len(c.scheduler_info()["workers"]) == 2:
                    workers = set(c.scheduler_info()["workers"])
                    break
        except OSError:
            pass
        assert time.time() < deadline, "the dask scheduler/workers did not come up"
        time.sleep(0.5)
    yield addr, workers, procs
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def test_explore_cli_on_a_scheduler_with_two_workers_equals_a_local_run(cluster, tmp_path):
    addr, workers, _ = cluster
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    r = subprocess.run([str(BIN / "tritium"), "explore", str(spec), "--scheduler", addr,
                        "--out", str(tmp_path / "remote"), "--json", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    remote = json.loads(r.stdout)["rows"]
    assert len(remote) == 8 and {row["worker"] for row in remote} <= workers
    local = X.explore(SPEC, tmp_path / "local", workers=1)["rows"]
    assert _figures(remote) == _figures(local)


def test_killing_a_worker_mid_sweep_still_completes_it(cluster, tmp_path):
    addr, workers, procs = cluster
    spec = dict(SPEC, set={"simd": [8, 16, 32, 64, 128], "pe": [1, 2, 4, 8]},
                platforms=["u250", "ecp5-85f", "ice40-up5k", "stratix10"],
                models=["mmfreelm-370m", "mmfreelm-1.3b"])  # 160 points
    seen = {"before": 0, "after": 0, "workers_after": set()}

    def on_row(row):
        if procs[1].poll() is None and seen["before"] == 0:
            procs[1].kill()  # SIGKILL worker w0: its queued and running tasks are lost
            procs[1].wait(timeout=30)
            seen["before"] = 1
        else:
            seen["after"] += 1
            seen["workers_after"].add(row["worker"])

    rep = X.explore(spec, tmp_path / "out", scheduler=addr, on_row=on_row)
    assert procs[1].returncode is not None  # the worker really died
    assert rep["points"] == 160 and len(rep["rows"]) == 160 and seen["after"] == 159
    assert all(not r["error"] for r in rep["rows"])
    # every row gathered after the kill lived on the surviving worker
    assert len(seen["workers_after"]) == 1 and seen["workers_after"] <= workers
    local = X.explore(spec, tmp_path / "local", workers=1)["rows"]
    assert {r["key"]: r["tokens_per_s"] for r in rep["rows"]} == {
        r["key"]: r["tokens_per_s"] for r in local}


RTL_SPEC = {"engine": "tmv", "level": "rtl", "set": {"simd": [8], "pe": [3]},
            "platforms": ["u250", "ecp5-85f"], "models": ["mmfreelm-370m"],
            "shapes": [[8, 32], [5, 20], [32, 64], [1, 1]]}  # 8 points, one shared build


def test_rtl_points_on_a_scheduler_with_two_workers_survive_a_killed_worker(cluster, tmp_path):
    addr, workers, procs = cluster
    seen = {"killed": False}

    def on_row(row):
        if not seen["killed"]:
            procs[1].kill()  # SIGKILL worker w0 after the first RTL row arrives
            procs[1].wait(timeout=30)
            seen["killed"] = True

    rep = X.explore(RTL_SPEC, tmp_path / "out", scheduler=addr, on_row=on_row)
    assert procs[1].returncode is not None
    assert rep["points"] == 8 and len(rep["rows"]) == 8
    assert {r["worker"] for r in rep["rows"]} <= workers  # the dask workers ran them
    for r in rep["rows"]:
        assert r["error"] == ""
        # the closed form of a one-command, unstalled matvec: (words - 1) + latency, with
        # words = ceil(rows/pe) * ceil(cols/simd) and latency 1+1+1 fill, 1 take, 2
        # select/mux, ceil(log2(8)/2) = 2 tree stages, 1 result = 9 for simd=8, t2 only
        words = -(-r["rows"] // 3) * -(-r["cols"] // 8)
        assert r["rtl_cycles"] == r["est_cycles"] == words - 1 + 9
        assert r["rtl_cycles_diff"] == 0
        assert json.loads(r["rtl_config"])["simd"] == 8
    # a local run: the estimate figures of every point, and two whole points re-run in
    # this process (a Verilator run costs seconds; the rest are pinned by the formula above)
    for r in rep["rows"]:
        e = M.estimate_model(r["model"], r["platform"], simd=8, pe=3)
        assert (r["tokens_per_s"], r["j_per_token"]) == (e["tokens_per_s"], e["j_per_token"])
    by_key = {r["key"]: r for r in rep["rows"]}
    pts = X.points(RTL_SPEC)
    for p in (pts[0], pts[-1]):
        here = X.run_point(p)
        there = by_key[X.point_key(p)]
        assert {k: v for k, v in here.items() if k != "worker"} == {
            k: v for k, v in there.items() if k not in ("worker", "key", "pareto")}
    # the key holds the Verilator version: level rtl's keys differ from estimate's
    assert X.point_key(dict(X.points(RTL_SPEC)[0], level="estimate")) != rep["rows"][0]["key"]


def test_rtl_row_fails_loudly_when_the_rtl_disagrees_with_the_golden(tmp_path, monkeypatch):
    from tritium.engines.tmv import golden

    real = golden.ternary_matvec

    def off_by_one(cfg, codes, x):  # a golden that disagrees with the (correct) RTL
        y, bad = real(cfg, codes, x)
        return [v + 1 for v in y], bad

    monkeypatch.setattr(golden, "ternary_matvec", off_by_one)
    row = X.run_point(X.points(RTL_SPEC)[1])
    # the bench's own beat check (in the simulation) or the row's host check catches it
    assert row["error"].startswith("rtl: ")
    assert "disagrees with the golden" in row["error"] or "expected" in row["error"]


@pytest.mark.parametrize("text, suffix, match", [
    ('{"set": {"simd": [8]}, "colour": 1}', ".json", "unknown keys"),
    ('{"level": "pnr"}', ".json", "builds every point on a board"),
    ('{"level": "pnr", "boards": ["arty-a7-35"]}', ".json", "cannot place and route"),
    ('{"level": "pnr", "boards": ["icebreaker"], "set": {"simd": [3]}}', ".json",
     "must be a power of two"),
    ('{"level": "pnr", "boards": ["icebreaker"], "soc": "nope.json"}', ".json",
     "does not exist"),
    ('{"boards": ["icebreaker"]}', ".json", "level pnr only"),
    ('{"level": "rtl", "shapes": [[64, 8]]}', ".json", "rows <= 32"),
    ('{"shapes": [[8, 8]]}', ".json", "levels rtl and pnr only"),
    ("set: {simd: 8}", ".yaml", "non-empty list"),
    ("{not json", ".json", "does not parse"),
    ('{"platforms": ["nope"]}', ".json", "platform 'nope' is unknown"),
])
def test_bad_spec_is_one_line_and_writes_nothing(tmp_path, text, suffix, match):
    spec = tmp_path / f"spec{suffix}"
    spec.write_text(text)
    with pytest.raises(UsageError, match=match):
        X.points(X.load_spec(spec))
    out = tmp_path / "out"
    r = subprocess.run([str(BIN / "tritium"), "explore", str(spec), "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_pareto_front_keeps_only_undominated_rows():
    rows = [{"tokens_per_s": 10, "lut": 100, "j_per_token": 1.0},
            {"tokens_per_s": 5, "lut": 200, "j_per_token": 2.0},   # beaten by the first
            {"tokens_per_s": 20, "lut": 400, "j_per_token": 1.0}]
    assert X.pareto_front(rows) == [rows[0], rows[2]]


def test_pareto_front_uses_the_placed_lut_where_a_row_was_built():
    # the estimate ranks the first row smaller, the place and route the second
    rows = [{"tokens_per_s": 10, "lut": 100, "pnr_lut": 900, "j_per_token": 1.0},
            {"tokens_per_s": 10, "lut": 200, "pnr_lut": 800, "j_per_token": 1.0}]
    assert X.pareto_front(rows) == [rows[1]]
    assert X.pareto_front([dict(r, pnr_lut=None) for r in rows]) == [dict(rows[0], pnr_lut=None)]


def test_pareto_front_is_per_board_and_the_best_built_row_met_timing():
    # a small iCE40 row does not beat a larger ECP5 row: their LUTs are of different parts
    ecp5 = {"board": "ulx3s-12f", "tokens_per_s": 10, "lut": 1, "pnr_lut": 900,
            "j_per_token": 1.0, "soc_config_file": "configs/a.json", "timing_met": False}
    ice = {"board": "icebreaker", "tokens_per_s": 10, "lut": 1, "pnr_lut": 800,
           "j_per_token": 1.0, "soc_config_file": "configs/b.json", "timing_met": True}
    slower = dict(ecp5, tokens_per_s=5, pnr_lut=950, soc_config_file="configs/c.json",
                  timing_met=True)
    rows = [ecp5, ice, slower]
    assert X.pareto_front(rows) == [ecp5, ice]
    for r in rows:
        r["pareto"] = r in X.pareto_front(rows)
    # the ECP5 row is faster on paper but missed its clock: `tritium build` would refuse it
    assert X.best_built(rows) is ice
    assert X.best_built([dict(ecp5, pareto=True)]) is None


def test_failed_rows_are_told_from_data_points():
    assert X.failed({"error": "rtl: RTL disagrees with the golden"})
    assert X.failed({"error": "pnr: ulx3s-12f: FPGA build failed in /tmp/x"})
    assert not X.failed({"error": "pnr: design does not fit", "pnr_fits": False})
    assert not X.failed({"error": "model does not fit the platform"})
    assert not X.failed({"error": ""})
