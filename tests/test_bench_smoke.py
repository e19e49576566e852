"""Smoke run of bench/: every benchmark once at tiny sizes, so none of them rots.

``pytest bench/ --benchmark-only`` runs in a subprocess with FASTNN_BENCH_QUICK=1 (2,000
training examples; each benchmark is a pedantic run of one round, no warm-up: one call each,
nothing worth reading in the times), then ``python -m fastnn.bench report`` turns its JSON into
the Markdown tables.  Peers that are not installed are skipped by the suite itself.  About
30 s on a 2-core machine, most of it importing torch and TensorFlow.
"""
import json
import os
import subprocess
import sys

import pytest

from fastnn import bench

import fastnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the folder holding the fastnn this run imports (the checkout, or site-packages): children run
# there and import it first, never the uncompiled source tree
FASTNN_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))


def test_flop_formula_matches_benchmarks_md():
    # BENCHMARKS.md: W1 is about 5.0 GFLOP of training plus 0.48 GFLOP of evaluation
    assert bench.training_flops([784, 30, 10], 50000, 10) == 5_032_200_000
    assert bench.forward_flops([784, 30, 10], 10000) == 476_400_000
    # one layer: forward 2, backward 2 (no delta to the input), update 2 per batch
    assert bench.training_flops([3, 2], 4, 2) == 4 * (2 + 2) * 6 + 2 * 2 * 6


def test_ratio_wording():
    assert "faster" in bench._fmt_ratio(2.0, 1.0)
    assert "slower" in bench._fmt_ratio(1.0, 2.0)


@pytest.fixture(scope="module")
def smoke_json(tmp_path_factory):
    pytest.importorskip("pytest_benchmark")
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    env = dict(os.environ)
    env["FASTNN_BENCH_QUICK"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([FASTNN_ROOT, os.path.join(ROOT, "bench")] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [sys.executable, "-m", "pytest", os.path.join(ROOT, "bench"), "--benchmark-only",
           "--benchmark-json=%s" % out, "-p", "no:cacheprovider", "-q", "-rs",
           "--benchmark-columns=median,rounds"]
    proc = subprocess.run(cmd, cwd=FASTNN_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    with open(out) as fh:
        return json.load(fh), str(out)


def test_every_benchmark_ran_and_recorded_the_limit(smoke_json):
    data, _ = smoke_json
    rows = data["benchmarks"]
    groups = {b["group"] for b in rows}
    assert {"W1", "W2", "W3", "W4", "memory", "types"} <= groups
    for wid in ("W1", "W2", "W3", "W4"):
        names = {b["extra_info"]["impl"] for b in rows if b["group"] == wid}
        for variant in ("fastnn-f64-1t", "fastnn-f32-1t", "numpy"):
            assert variant in names, (wid, names)
    assert "loop" in {b["extra_info"]["impl"] for b in rows if b["group"] == "W1"}
    for b in rows:
        info = b["extra_info"]
        if b["group"] == "memory":
            assert info["baseline_rss_mib"] > 0
            assert info["maxrss_above_baseline_mib"] is not None
            continue
        if b["group"] == "busy":      # the default thread count against fixed ones
            assert info["load"] in ("idle", "busy")
            assert info["auto_over_best_fixed"] > 0 and info["seconds_1t"] > 0
            assert all(t >= 1.0 for t in info["auto_threads_mean"])
            continue
        if b["group"] == "types":     # W1 float32 against float64, alternated
            t32, t64 = info["seconds_all"]["float32"], info["seconds_all"]["float64"]
            assert len(t32) == len(t64) == info["rounds"] >= 1
            assert info["seconds_f32"] == pytest.approx(sorted(t32)[len(t32) // 2])
            assert info["f64_over_f32"] == pytest.approx(info["seconds_f64"] / info["seconds_f32"])
            continue
        assert info["quick"] is True
        assert info["flops"] > 0 and info["gemm_flops_per_s"] > 0
        assert info["limit_s"] > 0 and info["fraction_of_limit"] > 0
        assert 0.0 <= info["accuracy"] <= 1.0
        assert info["dtype"] in ("float32", "float64")
    mi = data["machine_info"]["fastnn_bench"]
    # the machine line's load average is the one at the start of the session (pytest-benchmark
    # asks for the machine's information at the end, when it saves), the end's kept beside it
    assert len(mi["loadavg"]) == 3 and len(mi["loadavg_end"]) == 3
    # and the share of the CPUs' time the host gave to others, for the session and each row
    # (None without Linux's /proc/stat, or for a row whose rounds took under one tick of its
    # counters, 10 ms, as the smoke sizes' can)
    steals = [b["extra_info"]["steal_fraction"] for b in rows
              if b["group"] in ("W1", "W2", "W3", "W4")]
    assert all(s is None or 0.0 <= s <= 1.0 for s in steals + [mi["steal_fraction"]])
    assert os.path.exists("/proc/stat") <= (mi["steal_fraction"] is not None)
    assert os.path.exists("/proc/stat") <= any(s is not None for s in steals)
    assert mi["date"] <= mi["date_end"]
    assert data["benchmarks"] and all(b["stats"]["rounds"] >= 1 for b in data["benchmarks"])


def test_report_renders_every_workload(smoke_json, tmp_path):
    _, path = smoke_json
    md = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, "-m", "fastnn.bench", "report", path, "--out",
                           str(md)], cwd=FASTNN_ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=FASTNN_ROOT))
    assert proc.returncode == 0, proc.stderr
    text = md.read_text()
    for heading in ("## W1", "## W2", "## W3", "## W4", "## Memory", "Machine:", "QUICK"):
        assert heading in text
    assert "of the limit" in text


def test_smoke_run_goes_into_a_history(smoke_json, tmp_path):
    """The smoke run's JSON appended to a history in tmp_path (never the repository's): one
    line with the machine, the commit, the command and every benchmark's numbers."""
    from fastnn import _bench_history as hist
    data, path = smoke_json
    hfile = tmp_path / "history.jsonl"
    proc = subprocess.run([sys.executable, "-m", "fastnn.bench", "append", path, "--history",
                           str(hfile), "--label", "smoke-1"], cwd=FASTNN_ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=FASTNN_ROOT))
    assert proc.returncode == 0, proc.stderr
    assert hfile.read_bytes().count(b"\n") == 1
    (rec,) = hist.read_history(hfile)
    assert rec["label"] == "smoke-1" and rec["quick"] is True and rec["source"] == "suite"
    assert rec["machine"] == hist.machine_id(data["machine_info"]["fastnn_bench"])
    assert rec["commit"]["id"] == data["commit_info"].get("id")
    assert "load average at start" in rec["machine_line"]
    # what bench/conftest.py records: the command, the outcomes, the reasons for skips
    assert "--benchmark-only" in rec["command"] and rec["command"] == rec["pytest_command"]
    assert rec["outcomes"]["passed"] == len(data["benchmarks"])
    assert rec["outcomes"]["failed"] == 0
    assert all(len(s) == 2 and s[1] for s in rec["outcomes"]["skipped"])
    assert [(b["name"], b["median"], b["min"], b["rounds"]) for b in rec["benchmarks"]] == \
        [(b["name"], b["stats"]["median"], b["stats"]["min"], b["stats"]["rounds"])
         for b in data["benchmarks"]]
    assert [b["extra_info"] for b in rec["benchmarks"]] == \
        [hist._finite(b["extra_info"]) for b in data["benchmarks"]]
    assert bench.report(hist.to_results(rec)) == bench.report(data)
    # a smoke run never reaches the README's tables
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:W1 -->\n<!-- /bench -->\n")
    hist.update_readme(readme, [rec])
    assert "No full-size run of W1 in the history yet" in readme.read_text()
