"""fastnn.sweep: grids, the results file, local (joblib) and Dask runs that agree, a killed
worker survived, re-runs that skip finished rows, the plot and the command line."""
import io
import re
import os
import signal
import sys
import time

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("joblib")

from fastnn import datasets, sweep  # noqa: E402

GRID = {"hidden": [8, 16]}
PARAMS = {"activation": "relu", "cost": "log_likelihood", "optimizer": "adam",
          "learning_rate": 1e-2, "mini_batch_size": 32, "epochs": 2, "dtype": "float32"}
SEEDS = (0, 1)
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples")


@pytest.fixture(scope="module")
def data():
    """The shipped sample, subsampled: 400 training and 200 test images."""
    (x, y), (xt, yt) = datasets.load_sample()
    idx = np.sort(np.random.RandomState(0).permutation(len(x))[:400])
    return ((datasets.to_array(x[idx], np.float32), y[idx].astype(np.int64)),
            (datasets.to_array(xt[:200], np.float32), yt[:200].astype(np.int64)))


def accuracies(rows):
    return {r["key"]: (r["final_accuracy"], tuple(r["curve"])) for r in rows}


def file_rows(path):
    return sweep.read_results(str(path))


def slow_fit(params, seed, *arrays, n_threads=None):
    """fit_one, slowed down so that a worker is busy when the test kills it."""
    time.sleep(0.4)
    return sweep.fit_one(params, seed, *arrays, n_threads=n_threads)


def poison_fit(params, seed, *arrays, n_threads=None):
    """fit_one, except that one configuration kills the process running it."""
    if params["hidden_layer_sizes"] == [16] and seed == 1:
        os._exit(3)
    return sweep.fit_one(params, seed, *arrays, n_threads=n_threads)


@pytest.fixture(scope="module")
def local_rows(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "local.csv"
    rows = sweep.run_sweep(GRID, data, params=PARAMS, seeds=SEEDS, out=str(out), n_jobs=2,
                           dataset="sample-400")
    return rows


@pytest.fixture(scope="module")
def cluster():
    """A real LocalCluster: 2 worker processes, 1 thread each, on loopback."""
    distributed = pytest.importorskip("distributed")
    import dask
    # the task functions of this module are pickled by value (workers need not import it)
    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # a task on a worker that dies is given up at once (KilledWorker; the default is after 4
    # deaths), so the sweep's own "run it again alone" is what saves the innocent ones
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as lc:
            with distributed.Client(lc) as client:
                yield client


# ---------------------------------------------------------------------------------------------
# grids and keys

def test_expand_grid_and_aliases():
    jobs = sweep.expand_grid({"hidden": [28, "128x64"], "eta": [0.1, 0.5]},
                             {"optimizer": "momentum", "batch": 32}, seeds=(0, 1, 2))
    assert len(jobs) == 12
    params, seed = jobs[0]
    assert params["hidden_layer_sizes"] == [28] and params["eta"] == 0.1 and seed == 0
    assert params["mini_batch_size"] == 32 and params["optimizer"] == "momentum"
    assert jobs[5][0]["hidden_layer_sizes"] == [28] and jobs[5][0]["eta"] == 0.5
    assert jobs[6][0]["hidden_layer_sizes"] == [128, 64]
    assert set(params) == set(sweep.PARAM_NAMES)
    assert sweep.config_key(params, 0, "d") == sweep.config_key(dict(params), 0, "d")
    assert sweep.config_key(params, 0, "d") != sweep.config_key(params, 1, "d")
    with pytest.raises(ValueError, match="unknown parameter 'hiden'"):
        sweep.expand_grid({"hiden": [1]})


# ---------------------------------------------------------------------------------------------
# local runs, the results file

def test_local_rows_are_complete(local_rows, data):
    assert len(local_rows) == 4
    assert all(r["status"] == "ok" for r in local_rows)
    for r in local_rows:
        assert len(r["curve"]) == PARAMS["epochs"]
        assert r["final_accuracy"] == r["curve"][-1]
        assert r["n_threads"] == 1          # 2 workers x 1 thread on 2 cores
        assert r["seconds"] > 0
    # the row is the estimator's result
    from fastnn.sklearn import FastNNClassifier
    r = local_rows[3]
    clf = FastNNClassifier(hidden_layer_sizes=(16,), random_state=1, n_threads=1,
                           **PARAMS).fit(*data[0])
    assert clf.score(*data[1]) == r["final_accuracy"]


def test_rerun_skips_done_rows_and_retries_errors(data, tmp_path):
    out = tmp_path / "r.jsonl"
    calls = []

    def counting(params, seed, *arrays, n_threads=None):
        calls.append((params["hidden_layer_sizes"][0], seed))
        if params["hidden_layer_sizes"] == [8] and seed == 1 and len(calls) < 5:
            raise RuntimeError("boom")
        return sweep.fit_one(params, seed, *arrays, n_threads=n_threads)

    kw = dict(params=PARAMS, seeds=SEEDS, out=str(out), n_jobs=1, task=counting)
    rows = sweep.run_sweep(GRID, data, **kw)
    assert [r["status"] for r in rows] == ["ok", "error", "ok", "ok"]
    assert rows[1]["error"] == "RuntimeError: boom"
    assert len(calls) == 4
    rows = sweep.run_sweep(GRID, data, **kw)         # only the error row runs again
    assert calls[4:] == [(8, 1)]
    assert all(r["status"] == "ok" for r in rows)
    sweep.run_sweep(GRID, data, **kw)                # nothing left to do
    assert len(calls) == 5
    assert len(file_rows(out)) == 5                  # 4 + the retried one
    # a bigger grid only runs the new points
    sweep.run_sweep({"hidden": [8, 16, 4]}, data, **kw)
    assert calls[5:] == [(4, 0), (4, 1)]


def test_half_written_row_is_dropped(data, tmp_path, local_rows):
    out = tmp_path / "r.csv"
    rows = sweep.run_sweep(GRID, data, params=PARAMS, seeds=(0,), out=str(out), n_jobs=1)
    with open(out, "a") as fh:                       # a crash in the middle of a write
        fh.write('"{""dataset"":"",""par')
    with pytest.warns(UserWarning, match="half-written"):
        again = sweep.run_sweep(GRID, data, params=PARAMS, seeds=(0,), out=str(out),
                                n_jobs=1)
    assert accuracies(again) == accuracies(rows)
    assert len(file_rows(out)) == 2
    with open(out) as fh:
        assert fh.read().endswith("\n")


def test_local_worker_crash_loses_only_that_job(data, tmp_path, local_rows):
    out = tmp_path / "crash.csv"
    rows = sweep.run_sweep(GRID, data, params=PARAMS, seeds=SEEDS, out=str(out), n_jobs=2,
                           dataset="sample-400", task=poison_fit, retries=1)
    status = {(r["hidden_layer_sizes"][0], r["seed"]): r["status"] for r in rows}
    assert status == {(8, 0): "ok", (8, 1): "ok", (16, 0): "ok", (16, 1): "error"}
    assert "worker died" in rows[3]["error"]
    good = {k: v for k, v in accuracies(local_rows).items() if k != rows[3]["key"]}
    assert {k: v for k, v in accuracies(rows).items() if k in good} == good
    assert len(file_rows(out)) == 4


# ---------------------------------------------------------------------------------------------
# Dask

def test_dask_gives_the_local_table(cluster, data, local_rows, tmp_path):
    out = tmp_path / "dask.csv"
    rows = sweep.run_sweep(GRID, data, backend="dask", client=cluster, params=PARAMS,
                           seeds=SEEDS, out=str(out), dataset="sample-400")
    assert [r["key"] for r in rows] == [r["key"] for r in local_rows]
    assert all(r["n_threads"] == 1 for r in rows)   # 2 workers x 1 thread on this host
    assert accuracies(rows) == accuracies(local_rows)
    print("\n" + sweep.format_table(rows, ["hidden_layer_sizes", "seed", "final_accuracy",
                                           "worker"]))


def test_dask_worker_killed_mid_sweep(cluster, data, local_rows, tmp_path):
    """Kill a busy worker after the first row arrives: its task is run again (the nanny
    restarts the dead worker), and no finished row is lost."""
    out = tmp_path / "killed.csv"
    killed = []

    def kill_a_busy_worker(row):
        if killed:
            return
        busy = [a for a, tasks in cluster.processing().items() if tasks]
        if busy:
            pid = cluster.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    rows = sweep.run_sweep(GRID, data, backend="dask", client=cluster, params=PARAMS,
                           seeds=SEEDS, out=str(out), dataset="sample-400", task=slow_fit,
                           on_row=kill_a_busy_worker)
    assert killed, "no worker was busy when the first row came back"
    assert all(r["status"] == "ok" for r in rows)
    assert accuracies(rows) == accuracies(local_rows)
    on_disk = file_rows(out)
    assert sorted(r["key"] for r in on_disk) == sorted(r["key"] for r in rows)
    cluster.wait_for_workers(2, timeout=30)


def test_dask_poison_task_becomes_an_error_row(cluster, data, local_rows, tmp_path):
    """A configuration that kills every worker it runs on is an error row once it has killed
    a worker running alone; the other rows are kept, and a re-run retries only that one."""
    out = tmp_path / "poison.csv"
    rows = sweep.run_sweep(GRID, data, backend="dask", client=cluster, params=PARAMS,
                           seeds=SEEDS, out=str(out), dataset="sample-400", task=poison_fit)
    status = [(r["hidden_layer_sizes"][0], r["seed"], r["status"]) for r in rows]
    assert status == [(8, 0, "ok"), (8, 1, "ok"), (16, 0, "ok"), (16, 1, "error")]
    assert "KilledWorker" in rows[3]["error"]
    cluster.wait_for_workers(2, timeout=30)
    rows = sweep.run_sweep(GRID, data, backend="dask", client=cluster, params=PARAMS,
                           seeds=SEEDS, out=str(out), dataset="sample-400")
    assert accuracies(rows) == accuracies(local_rows)
    assert len(file_rows(out)) == 5


# ---------------------------------------------------------------------------------------------
# the plot and the command line

def test_plot_is_a_png(local_rows, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "sweep.png"
    sweep.plot_sweep(local_rows, ["hidden_layer_sizes"], str(path), title="test")
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert width > 100 and height > 100


def test_cli_with_config_file(tmp_path, capsys):
    pytest.importorskip("yaml")
    pytest.importorskip("matplotlib")
    cfg = tmp_path / "s.yaml"
    cfg.write_text("dataset: sample\ntrain_size: 300\ntest_size: 100\nseeds: [0]\n"
                   "params:\n  optimizer: adam\n  learning_rate: 0.01\n  epochs: 1\n"
                   "grid:\n  hidden: [4, 8]\n")
    out, png = tmp_path / "cli.csv", tmp_path / "cli.png"
    argv = ["--config", str(cfg), "--grid", "lr=0.01,0.02", "--out", str(out), "--plot",
            str(png), "--n-jobs", "1", "--quiet"]
    assert sweep.main(argv) == 0
    text = capsys.readouterr().out
    assert "mean_accuracy" in text and "4 ok, 0 failed" in text
    rows = file_rows(out)
    assert len(rows) == 4 and rows[0]["dataset"] == "sample:train=300:test=100"
    assert {r["learning_rate"] for r in rows} == {0.01, 0.02}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sweep.main(argv) == 0                     # everything is already done
    assert len(file_rows(out)) == 4


def test_example_config_is_the_issue_sweep():
    pytest.importorskip("yaml")
    cfg = sweep._read_config(os.path.join(EXAMPLES, "sweep_hidden.yaml"))
    jobs = sweep.expand_grid(cfg["grid"], cfg["params"], cfg["seeds"])
    assert [p["hidden_layer_sizes"][0] for p, s in jobs[::3]] == [28, 88, 128, 256]
    assert len(jobs) == 12 and cfg["dataset"] == "fashion-mnist"
    p = jobs[0][0]
    assert (p["activation"], p["cost"], p["optimizer"]) == ("relu", "log_likelihood", "adam")


def test_cli_shows_job_progress(tmp_path, capsys):
    """Without --quiet, one progress line per finished job (off a terminal), counting to the
    total and naming each job's result; on a terminal one line redrawn with Keras' bar."""
    pytest.importorskip("yaml")
    out = tmp_path / "p.csv"
    argv = ["--dataset", "sample", "--train-size", "200", "--test-size", "50", "--grid",
            "hidden=4,8", "--seeds", "0", "--out", str(out), "--n-jobs", "1", "--epochs", "1"]
    assert sweep.main(argv) == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if re.match(r"^\d/2 - ", l)]
    assert [l[:3] for l in lines] == ["1/2", "2/2"] and all(": ok, accuracy 0." in l
                                                            for l in lines), lines
    bar = sweep.JobBar(2, stream=_Tty())
    bar.row({"key": "a", "status": "ok", "final_accuracy": 0.5})
    bar.row({"key": "b", "status": "error"})
    text = bar.stream.getvalue()
    assert text.count("\r") == 2 and "2/2 " in text and "b: error" in text and text.endswith("\n")


class _Tty(io.StringIO):
    def isatty(self):
        return True
