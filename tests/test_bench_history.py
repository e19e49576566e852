"""The benchmark history, baselines, comparison and README tables (fastnn/_bench_history.py).

Small hand-made ``--benchmark-json`` dicts, with the ratios worked out by hand; the smoke run's
real JSON goes through the same path in tests/test_bench_smoke.py.  No benchmark runs here.
"""
import contextlib
import io
import json
import os
import subprocess
import sys
import types

import pytest

import fastnn
from fastnn import _bench_history as hist
from fastnn import bench

FASTNN_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))


def bench_row(group, impl, median, dtype="float64", threads=2, flops=1e9, limit_s=0.25,
              accuracy=0.9, unit="epoch"):
    return {"group": group, "name": "test_%s[%s]" % (group.lower(), impl), "param": impl,
            "stats": {"median": median, "min": median * 0.9, "max": median * 1.1,
                      "rounds": 3, "iterations": 1, "data": [median] * 3},
            "extra_info": {"workload": group, "impl": impl, "dtype": dtype, "threads": threads,
                           "time_unit": unit, "flops": flops, "limit_s": limit_s,
                           "gemm_flops_per_s": flops / limit_s if limit_s else None,
                           "accuracy": accuracy}}


def results(rows, when="2026-12-02T10:00:00+00:00", commit="c0ffee" * 7, quick=False,
            load=0.5):
    return {"machine_info": {"fastnn_bench": {
                "cpu_model": "Test CPU(R) X1 @ 3.00GHz", "cpus_usable": 2, "cpus_online": 2,
                "loadavg": [load, 0.4, 0.3], "versions": {"numpy": "2.0", "torch": "2.13.0"},
                "quick": quick}},
            "commit_info": {"id": commit, "dirty": False, "branch": "main"},
            "datetime": when, "version": "5.3.1", "benchmarks": rows}


# hand-computed below: flops 1e9 and limit 0.25 s for every row (a GEMM rate of 4 GFLOP/s)
W1 = [bench_row("W1", "fastnn-f64-2t", 0.5),
      bench_row("W1", "fastnn-f64-1t", 1.0, threads=1),
      bench_row("W1", "loop", 25.0, threads=1, accuracy=0.8),
      bench_row("W1", "numpy", 2.0),
      bench_row("W1", "torch", 0.4)]


def write_json(path, data):
    path.write_text(json.dumps(data))
    return str(path)


def cli(*args):
    """``python -m fastnn.bench ARGS`` in this process: (returncode, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = bench.main([str(a) for a in args])
    return types.SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())


def test_the_command_line_runs_as_a_module(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fastnn.bench", "history", "--history",
                        str(tmp_path / "none.jsonl")], cwd=FASTNN_ROOT, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=FASTNN_ROOT))
    assert r.returncode == 2 and "history: %s does not exist" % (tmp_path / "none.jsonl") \
        in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------
# the history

def test_machine_id_is_short_and_stable():
    assert hist.machine_id({"cpu_model": "Test CPU(R) X1 @ 3.00GHz", "cpus_usable": 2}) == \
        "test-x1-2c"
    assert hist.machine_id({"cpu_model": "AMD EPYC", "cpus_usable": 2}) == "amd-epyc-2c"
    assert hist.machine_id({}) == "unknown-xc"


def test_record_keeps_what_the_report_reads():
    data = results(W1)
    rec = hist.record(data, "r1", command="python -m fastnn.bench run", exit_code=0)
    assert rec["machine"] == "test-x1-2c" and rec["quick"] is False
    assert rec["commit"]["id"] == "c0ffee" * 7 and rec["exit_code"] == 0
    assert rec["when"] == "2026-12-02T10:00:00+00:00"
    assert "load average at start 0.50" in rec["machine_line"]
    first = rec["benchmarks"][0]
    assert (first["median"], first["min"], first["rounds"]) == (0.5, 0.45, 3)
    assert first["extra_info"]["flops"] == 1e9
    assert bench.report(hist.to_results(rec)) == bench.report(data)


def test_append_adds_one_line_and_never_rewrites(tmp_path):
    hfile = tmp_path / "history.jsonl"
    # a line as no serializer of ours writes it: a rewrite would show
    old = b'{ "benchmarks" : [ {"median": 1.0, "name": "x"} ],  "label":"old" }\n'
    hfile.write_bytes(old)
    inode = os.stat(hfile).st_ino
    run = write_json(tmp_path / "run-1.json", results(W1))
    r = cli("append", run, "--history", hfile, "--note", "first")
    assert r.returncode == 0, r.stderr
    assert "run 2" in r.stderr
    raw = hfile.read_bytes()
    assert raw.startswith(old) and raw.endswith(b"\n") and raw.count(b"\n") == 2
    assert os.stat(hfile).st_ino == inode          # appended in place, not replaced
    new = json.loads(raw[len(old):])
    assert new["label"] == "run-1" and new["note"] == "first" and new["source"] == "suite"
    assert [b["median"] for b in new["benchmarks"]] == [0.5, 1.0, 25.0, 2.0, 0.4]
    # the same label again: refused, nothing written
    r = cli("append", run, "--history", hfile)
    assert r.returncode == 2 and "already has a run labelled 'run-1'" in r.stderr
    assert hfile.read_bytes() == raw
    # a second run appends after both
    hist.append(hfile, hist.record(results(W1), "run-2"))
    assert hfile.read_bytes().startswith(raw)
    assert [r["label"] for r in hist.read_history(hfile)] == ["old", "run-1", "run-2"]


def test_append_refuses_a_history_whose_last_line_is_cut(tmp_path):
    hfile = tmp_path / "history.jsonl"
    cut = b'{"label": "a", "benchmarks": [{"name": "x", "median": 1.0}]}\n{"label": "b", "be'
    hfile.write_bytes(cut)
    with pytest.raises(ValueError, match=r"history.jsonl: line 2 is not JSON"):
        hist.append(hfile, hist.record(results(W1), "c"))
    hfile.write_bytes(cut[:cut.index(b"\n")])       # valid, but no newline at the end
    with pytest.raises(ValueError, match="the last line has no newline"):
        hist.append(hfile, hist.record(results(W1), "c"))
    assert hfile.read_bytes() == cut[:cut.index(b"\n")]


def test_bad_input_names_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ValueError, match="results: .*nope.json does not exist"):
        hist.load_results(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"benchmarks": [')
    with pytest.raises(ValueError, match="broken.json is not JSON"):
        hist.load_results(broken)
    other = write_json(tmp_path / "other.json", {"benchmarks": [{"name": "x", "stats": {}}]})
    with pytest.raises(ValueError, match=r"other.json: not a pytest-benchmark JSON: "
                                         r"benchmarks\[0\] \(x\): expected a positive "
                                         r"stats.median, got None"):
        hist.load_results(other)
    odd = write_json(tmp_path / "odd.json", {"benchmarks": [dict(W1[0], extra_info=[1])]})
    with pytest.raises(ValueError, match=r"odd.json: not a pytest-benchmark JSON: "
                                         r"benchmarks\[0\] \(test_w1\[fastnn-f64-2t\]\): "
                                         r"expected an object as extra_info, got \[1\]"):
        hist.load_results(odd)
    r = cli("append", missing, "--history", tmp_path / "h.jsonl")
    assert r.returncode == 2 and "nope.json does not exist" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "h.jsonl").exists()
    r = cli("compare", broken, "--baseline", broken)
    assert r.returncode == 2 and "run: " in r.stderr and "broken.json is not JSON" in r.stderr
    r = cli("report", other)
    assert r.returncode == 2 and "other.json: not a pytest-benchmark JSON" in r.stderr
    r = cli("promote", broken, "--baseline", tmp_path / "b.json")
    assert r.returncode == 2 and "broken.json is not JSON" in r.stderr
    assert not (tmp_path / "b.json").exists()
    bad_history = tmp_path / "bad.jsonl"
    bad_history.write_text('{"label": "a", "benchmarks": [{"name": "x", "median": 1}]}\n[1]\n')
    r = cli("readme", "--history", bad_history, "--readme", tmp_path / "README.md")
    assert r.returncode == 2 and "bad.jsonl: line 2: not a history record" in r.stderr


def test_run_checks_the_history_and_readme_before_running(tmp_path):
    hfile = tmp_path / "history.jsonl"
    hfile.write_bytes(b'{"label": "a", "benchmarks": [{"name": "x", "median": 1.0}]}')
    r = cli("run", "--history", hfile, "--json-dir", tmp_path / "runs")
    assert r.returncode == 2 and "the last line has no newline" in r.stderr, r.stderr
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:W1 -->\n")
    r = cli("run", "--history", tmp_path / "new.jsonl", "--readme", readme,
            "--json-dir", tmp_path / "runs")
    assert r.returncode == 2 and "has no <!-- /bench --> after it" in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "new.jsonl").exists()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "old.json").write_text("{}")
    r = cli("run", "--label", "old", "--history", tmp_path / "new.jsonl", "--no-readme",
            "--json-dir", tmp_path / "runs")
    assert r.returncode == 2 and "old.json exists already" in r.stderr, r.stderr


# ---------------------------------------------------------------------------------------------
# the README's tables

README = """# Project

Intro.

<!-- bench:W1 -->
an old table
<!-- /bench -->

Between.
<!-- bench:W9 -->
<!-- /bench -->
End.
"""

TABLE_W1 = """Run `new`, 2026-12-02 10:00 UTC, commit c0ffeec0ffee; Test CPU(R) X1 @ 3.00GHz, 2 CPUs, \
load average 0.50 at the start; torch 2.13.0. Limit (FLOPs / numpy's GEMM rate, the best of the run's probes): float64 0.250 s (4 GFLOP/s).

| implementation | s per epoch | vs loop | vs numpy | vs torch | GFLOP/s | of the limit | accuracy |
|---|---|---|---|---|---|---|---|
| fastnn float64, 2 threads | 0.500 | 50.0x faster | 4.00x faster | 0.80x (1.25x slower) | 2 | 50.0 % | 90.0 % |
| fastnn float64, 1 thread | 1.00 | 25.0x faster | 2.00x faster | 0.40x (2.50x slower) | 1 | 25.0 % | 90.0 % |
| loop | 25.00 |  |  |  | 0.04 | 1.0 % | 80.0 % |
| numpy | 2.00 |  |  |  | 0.5 | 12.5 % | 90.0 % |
| torch | 0.400 |  |  |  | 2.5 | 62.5 % | 90.0 % |

2 threads over 1: float64 2.00x."""


def history_records():
    older = [dict(r, stats=dict(r["stats"], median=r["stats"]["median"] * 3)) for r in W1]
    return [hist.record(results(older, when="2026-12-01T10:00:00+00:00"), "old"),
            hist.record(results(W1), "new"),
            # newer, but a smoke run, a before/after tree and a failed run: never shown
            hist.record(results(older, when="2026-12-03T10:00:00+00:00", quick=True), "quick"),
            hist.record(results(older, when="2026-12-03T11:00:00+00:00"), "tree",
                        source="before-after", tree="after"),
            hist.record(results(older, when="2026-12-03T12:00:00+00:00"), "failed",
                        exit_code=1)]


def test_readme_tables_between_the_markers(tmp_path):
    hfile = tmp_path / "history.jsonl"
    for rec in history_records():
        hist.append(hfile, rec)
    readme = tmp_path / "README.md"
    readme.write_text(README)
    r = cli("readme", "--history", hfile, "--readme", readme)
    assert r.returncode == 0, r.stderr
    assert "updated" in r.stderr and "tables of W1; no run of W9 yet" in r.stderr
    text = readme.read_text()
    assert text == README.replace(
        "<!-- bench:W1 -->\nan old table\n", "<!-- bench:W1 -->\n\n" + TABLE_W1 + "\n\n"
    ).replace("<!-- bench:W9 -->\n", "<!-- bench:W9 -->\n\nNo full-size run of W9 in the "
              "history yet (`python -m fastnn.bench run`).\n\n")
    # again: the same text, the file left alone
    mtime = os.stat(readme).st_mtime_ns
    r = cli("readme", "--history", hfile, "--readme", readme)
    assert r.returncode == 0 and "unchanged" in r.stderr
    assert readme.read_text() == text and os.stat(readme).st_mtime_ns == mtime


@pytest.mark.parametrize("text, where", [
    ("a\n<!-- bench:W1 -->\nb\n", "line 2: <!-- bench:W1 --> has no <!-- /bench --> after it"),
    ("a\n<!-- /bench -->\n", "line 2: <!-- /bench --> without a <!-- bench:NAME -->"),
    ("<!-- bench:W1 -->\n<!-- bench:W2 -->\n<!-- /bench -->\n",
     "line 2: <!-- bench:W2 --> inside the block opened at line 1"),
    ("no markers\n", "no <!-- bench:NAME --> ... <!-- /bench --> block"),
])
def test_readme_markers_out_of_place_are_errors(tmp_path, text, where):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(ValueError) as e:
        hist.update_readme(readme, history_records())
    assert str(e.value).startswith("readme: %s" % readme) and where in str(e.value)
    assert readme.read_text() == text


def test_readme_of_a_cnn_workload_names_its_round():
    rows = [bench_row("W5", "fastnn-f32-2t", 2.0, dtype="float32", unit=None),
            bench_row("W5", "torch-2t", 5.0, dtype="float32", unit=None)]
    for r in rows:
        del r["extra_info"]["time_unit"]
        r["extra_info"]["images"] = 10000
    table = hist.readme_table(hist.record(results(rows), "cnn"), "W5")
    assert "| implementation | s per round of 10,000 images | vs torch-2t |" in table
    assert "| fastnn float32, 2 threads | 2.00 | 2.50x faster |" in table


def test_readme_scales_a_peer_timed_on_fewer_images():
    """W5's numpy oracle trains 20 images a round: its time is shown for fastnn's 10,000
    (by hand: 2.0 s * 10000 / 20 = 1000 s, 500x fastnn's 2.0 s)."""
    rows = [bench_row("W5", "fastnn-f32-2t", 2.0, dtype="float32", unit=None),
            bench_row("W5", "numpy-1t", 2.0, dtype="float32", unit=None)]
    for r, n in zip(rows, (10000, 20)):
        del r["extra_info"]["time_unit"]
        r["extra_info"]["images"] = n
    table = hist.readme_table(hist.record(results(rows), "cnn"), "W5")
    assert "| fastnn float32, 2 threads | 2.00 | 500.0x faster |" in table
    assert "| numpy-1t (timed on 20 images) | 1000 |" in table


# ---------------------------------------------------------------------------------------------
# baseline and comparison

def test_compare_gives_the_ratio_per_benchmark(tmp_path):
    def rows(meds):
        return [dict(bench_row("W1", n, m), name=n) for n, m in meds.items()]
    base = write_json(tmp_path / "base.json", results(rows({"a": 2.0, "b": 0.5, "c": 1.0})))
    run = write_json(tmp_path / "run.json", results(rows({"a": 2.5, "b": 0.25, "d": 3.0}),
                                                    load=1.5))
    r = cli("compare", run, "--baseline", base)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Baseline: %s (2026-12-02T10:00:00+00:00, commit c0ffeec0ffee, "
                               "test-x1-2c, load average 0.50)" % base)
    assert "| a | 2 | 2.5 | 1.250 (1.25x slower) |" in lines
    assert "| b | 0.5 | 0.25 | 0.500 (2.00x faster) |" in lines
    assert "Only in the baseline: c." in lines and "Only in the run: d." in lines
    assert not any(line.startswith("| c ") or line.startswith("| d ") for line in lines)


def test_compare_defaults_to_the_newest_run_of_the_history(tmp_path):
    hfile = tmp_path / "history.jsonl"
    for rec in history_records():
        hist.append(hfile, rec)
    base = write_json(tmp_path / "base.json", results(W1))
    r = cli("compare", "--baseline", base, "--history", hfile)
    assert r.returncode == 0, r.stderr
    assert "Run: history run new (2026-12-02T10:00:00+00:00, " in r.stdout
    assert "| test_w1[loop] | 25 | 25 | 1.000 (same) |" in r.stdout
    r = cli("compare", "old", "--baseline", base, "--history", hfile)
    assert "| test_w1[loop] | 25 | 75 | 3.000 (3.00x slower) |" in r.stdout
    r = cli("compare", "old", "--baseline", "new", "--history", hfile)
    assert r.stdout.startswith("Baseline: history run new (2026-12-02T10:00:00+00:00, ")
    assert "| test_w1[loop] | 25 | 75 | 3.000 (3.00x slower) |" in r.stdout
    r = cli("compare", "old", "--baseline", "newer", "--history", hfile)
    assert r.returncode == 2 and "has no run labelled 'newer'" in r.stderr
    r = cli("compare", "--history", hfile, "--machine", "elsewhere")
    assert r.returncode == 2 and "baseline-elsewhere.json does not exist" in r.stderr


def test_promote_copies_the_run_atomically(tmp_path):
    run = write_json(tmp_path / "run.json", results(W1))
    dest = tmp_path / "baseline-test-x1-2c.json"
    r = cli("promote", run, "--baseline", dest)
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == (tmp_path / "run.json").read_bytes()
    assert os.stat(dest).st_mode & 0o777 == os.stat(run).st_mode & 0o777   # not mkstemp's
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fastnn-")] == []
    quick = write_json(tmp_path / "quick.json", results(W1, quick=True))
    r = cli("promote", quick, "--baseline", dest)
    assert r.returncode == 2 and "quick.json is a smoke run" in r.stderr
    assert dest.read_bytes() == (tmp_path / "run.json").read_bytes()
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    r = cli("promote", run, "--baseline", notes)
    assert r.returncode == 2 and "is not a pytest-benchmark JSON" in r.stderr
    assert notes.read_text() == "mine"


def test_readme_limit_is_the_runs_best_gemm_probe():
    """Each W5/W6 benchmark probes the GEMM rate itself; a probe taken while the machine was
    busy reads low. The table's limit is the best probe of the run, and every row's share of
    it is computed against that one rate (here 8 GFLOP/s: the fastnn row's 1e9 FLOPs in 0.25
    s is 4 GFLOP/s, 50 %, not the 100 % its own low probe of 4 GFLOP/s would say)."""
    rows = [bench_row("W5", "fastnn-f32-2t", 0.25, dtype="float32", limit_s=0.25),
            bench_row("W5", "torch-2t", 1.0, dtype="float32", limit_s=0.125)]
    rec = hist.record(results(rows), "probes")
    table = hist.readme_table(rec, "W5")
    assert "float32 0.125 s (8 GFLOP/s)" in table
    lines = {ln.split("|")[1].strip(): ln for ln in table.splitlines() if ln.startswith("| ")}
    assert lines["fastnn float32, 2 threads"].split("|")[-3].strip() == "50.0 %"
    assert lines["torch 2 threads"].split("|")[-3].strip() == "12.5 %"


def test_steal_is_the_share_of_the_cpus_time_between_readings(tmp_path, monkeypatch):
    """/proc/stat's "cpu" line: user nice system idle iowait irq softirq steal guest guest_nice.
    Between the two readings below the CPUs ran 1000 jiffies, 50 of them stolen: 5 %."""
    first = "cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n"
    second = "cpu  500 0 150 1230 20 0 15 85 7 0\ncpu0 1 2 3\n"
    stat = tmp_path / "stat"
    real_open = open

    def fake_open(path, *a, **k):
        return real_open(stat if path == "/proc/stat" else path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    stat.write_text(first)
    a = bench.cpu_times()
    stat.write_text(second)
    b = bench.cpu_times()
    assert a == (1000, 35) and b == (2000, 85)
    assert bench.steal_fraction(a, b) == pytest.approx(0.05)
    assert bench.steal_fraction(b, a) is None and bench.steal_fraction(None, b) is None
    stat.write_text("intr 1 2 3\n")
    assert bench.cpu_times() is None


def test_readme_table_and_machine_line_report_the_steal():
    rows = [bench_row("W1", "fastnn-f64-2t", 0.5), bench_row("W1", "numpy", 2.0)]
    rows[0]["extra_info"]["steal_fraction"] = 0.125
    data = results(rows)
    data["machine_info"]["fastnn_bench"]["steal_fraction"] = 0.0625
    rec = hist.record(data, "steal")
    table = hist.readme_table(rec, "W1")
    assert table.endswith("CPU time the host gave to other guests (steal) during the rounds: "
                          "fastnn float64, 2 threads 12.5 %.")
    assert "(steal) during the run 6.2 %" in rec["machine_line"]
    # a run without the figures (the history's older lines) reports none
    assert "steal" not in hist.readme_table(hist.record(results(W1), "new"), "W1")


def _types_row(threads, f32, f64):
    """A bench/test_types.py record: group "types", its workload W1's network."""
    return {"group": "types", "name": "test_types[%d]" % threads, "param": str(threads),
            "stats": {"median": f32, "min": f32, "max": f32, "rounds": 3, "iterations": 1,
                      "data": [f32] * 3},
            "extra_info": {"workload": "W1", "threads": threads, "rounds": 3,
                           "seconds_f32": f32, "seconds_f64": f64, "f64_over_f32": f64 / f32,
                           "f64_over_f32_paired": 1.5}}


def test_other_groups_on_a_workloads_network_stay_out_of_its_table():
    """The alternated types (and the busy machine) name W1 as their workload: the README's W1
    table and the report's keep to W1's own rows, and the report gives the types their own
    table with the ratio (hand-computed: 0.3 / 0.2 = 1.50x)."""
    rows = W1 + [_types_row(1, 0.4, 0.8), _types_row(2, 0.2, 0.3)]
    busy = bench_row("W1", "fastnn-f64-2t", 9.0)
    busy["group"], busy["name"] = "busy", "test_busy[W1]"
    rows.append(busy)
    table = hist.readme_table(hist.record(results(rows), "types"), "W1")
    impls = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")]
    assert impls == ["| implementation", "| fastnn float64, 2 threads",
                     "| fastnn float64, 1 thread", "| loop", "| numpy", "| torch"]
    assert "| 9.00 |" not in table and "| 9.0 |" not in table
    md = bench.report(results(rows))
    w1 = md.split("## W1: ")[1].split("\n## ")[0]
    firsts = [line.split(" | ")[0] for line in w1.splitlines() if line.startswith("| ")]
    assert "| 1" not in firsts and "| 2" not in firsts
    assert not any(line.startswith("| ") and "9.00" in line for line in w1.splitlines())
    types = md.split("## W1 float32 against float64")[1].split("\n## ")[0]
    assert "| 2 | 0.200 | 0.300 | 1.50x | 1.50x | 3 |" in types
    assert "| 1 | 0.400 | 0.800 | 2.00x | 1.50x | 3 |" in types
