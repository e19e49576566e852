"""Hyperparameter sweeps: every grid point x seed is one training job of ``FastNNClassifier``.

    from fastnn.sweep import run_sweep
    rows = run_sweep({"hidden": [28, 88, 128, 256]}, ((X, y), (X_test, y_test)),
                     params={"activation": "relu", "cost": "log_likelihood",
                             "optimizer": "adam", "mini_batch_size": 32, "epochs": 5},
                     seeds=(0, 1, 2), out="results.csv", n_jobs=2)

    python -m fastnn sweep --grid hidden=28,88,128,256 --seeds 0,1,2 --epochs 5 \\
        --set activation=relu --set cost=log_likelihood --set optimizer=adam \\
        --dataset fashion-mnist --out results.csv [--scheduler tcp://host:8786] [--plot a.png]

Backends.  ``backend='local'`` runs the jobs in ``n_jobs`` joblib (loky) worker processes, each
job with ``cores // n_jobs`` engine threads, so workers x threads never exceed the cores.
``backend='dask'`` submits one task per job to a ``dask.distributed`` cluster
(``scheduler='tcp://host:port'``, or a ``Client`` passed as ``client``); the training data is
one task whose result is replicated to every worker once, and each task uses
``cores of its host // worker threads on that host`` engine threads.  Workers import
``fastnn.sweep``, so fastnn must be installed (or on ``PYTHONPATH``) where they run.

Results.  Each finished job is one row, appended to ``out`` the moment it arrives (flushed and
fsync'ed): CSV, or JSON lines when ``out`` ends in ``.jsonl``/``.json``/``.ndjson``.  A row holds
the key, the data set, the seed, every estimator parameter, ``status`` ('ok' or 'error'),
``final_accuracy`` (test accuracy after the last epoch), ``curve`` (test accuracy after each
epoch, from the engine's per-epoch callback), ``seconds`` (the ``fit`` call), ``n_threads``,
``worker`` (host:pid) and ``error``.  The key is the JSON of the data set name, all estimator
parameters and the seed: a re-run skips every key that already has an 'ok' row, and runs the
error rows again.  A half-written last line (a crash during a write) is dropped.

Failures.  An exception inside a job becomes an error row.  A worker process that dies does not
lose the rows already written.  With Dask the scheduler re-runs its tasks on the other workers
(the nanny restarts the dead one); a task that was on a worker at
``distributed.scheduler.allowed-failures`` + 1 deaths ends in ``KilledWorker``; since tasks
queued beside a crashing one share its fate, each such task is run again alone after the others
(when ``retries`` > 0), and is an error row only if it fails alone too.  Locally the unfinished
jobs are run again ``retries`` times, then each one alone in a fresh worker, and a job that
kills its worker even alone gets an error row.  With ``n_jobs=1`` the jobs run in this
process: a hard crash stops the sweep, and a re-run resumes.
"""
import argparse
import csv
import hashlib
import io
import itertools
import json
import numbers
import os
import socket
import sys
import time
import warnings

import numpy as np

__all__ = ["run_sweep", "expand_grid", "config_key", "fit_one", "read_results", "summarize",
           "format_table", "plot_sweep", "load_data", "usable_cores", "main", "ALIASES",
           "FIELDS"]

# short names accepted in grids, on the command line and in config files
ALIASES = {"hidden": "hidden_layer_sizes", "sizes": "hidden_layer_sizes",
           "lr": "learning_rate", "batch": "mini_batch_size", "batch_size": "mini_batch_size",
           "lambda": "lmbda", "mu": "momentum", "act": "activation"}
# estimator parameters a sweep may set (random_state is the seed, n_threads the scheduler's)
PARAM_NAMES = ("hidden_layer_sizes", "activation", "cost", "optimizer", "eta", "learning_rate",
               "momentum", "lmbda", "mini_batch_size", "epochs", "dtype", "initializer")
FIELDS = (("key", "dataset", "seed") + PARAM_NAMES +
          ("status", "final_accuracy", "curve", "seconds", "n_threads", "worker", "error"))
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


# ---------------------------------------------------------------------------------------------
# configurations

def canonical_name(name):
    """Return the estimator parameter called ``name`` (aliases such as 'hidden' resolved)."""
    name = ALIASES.get(name, name)
    if name not in PARAM_NAMES:
        raise ValueError(f"grid/params: unknown parameter {name!r}; expected one of "
                         f"{', '.join(PARAM_NAMES)} (or an alias: {', '.join(ALIASES)})")
    return name


def canonical_value(name, value):
    """Return ``value`` as plain JSON data; hidden sizes become a list of ints.

    Hidden sizes may be an int (128), a sequence ((128, 64)) or a string ('128x64')."""
    if isinstance(value, np.generic):
        value = value.item()
    if name == "hidden_layer_sizes":
        if isinstance(value, str):
            parts = [p for p in value.replace("-", "x").replace(":", "x").split("x") if p]
            try:
                value = [int(p) for p in parts]
            except ValueError:
                raise ValueError(f"hidden_layer_sizes: expected sizes such as 128 or 128x64, "
                                 f"got {value!r}") from None
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = [int(value)]
        elif isinstance(value, (list, tuple)):
            value = [int(v) for v in value]
        else:
            raise TypeError(f"hidden_layer_sizes: expected an int, a list of ints or a string "
                            f"such as '128x64', got {type(value).__name__}")
        return value
    if name == "dtype" and not isinstance(value, str):
        return np.dtype(value).name
    if isinstance(value, tuple):
        return list(value)
    return value


def default_params():
    """FastNNClassifier's defaults for the sweepable parameters, in canonical form."""
    from fastnn.sklearn import FastNNClassifier
    defaults = FastNNClassifier().get_params()
    return {k: canonical_value(k, defaults[k]) for k in PARAM_NAMES}


def expand_grid(grid, params=None, seeds=(0,)):
    """Return the jobs of a sweep: a list of ``(params, seed)``, params complete and canonical.

    ``grid`` maps parameter names to lists of values (their cartesian product is swept);
    ``params`` holds the fixed parameters.  Later grid keys vary fastest, seeds fastest of all.
    """
    base = default_params()
    for k, v in (params or {}).items():
        k = canonical_name(k)
        base[k] = canonical_value(k, v)
    names, values = [], []
    for k, vals in (grid or {}).items():
        name = canonical_name(k)
        if isinstance(vals, (str, bytes)) or not hasattr(vals, "__iter__"):
            vals = [vals]
        vals = [canonical_value(name, v) for v in vals]
        if not vals:
            raise ValueError(f"grid: {k!r} has no values")
        names.append(name)
        values.append(vals)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    jobs = []
    for combo in itertools.product(*values):
        p = dict(base)
        p.update(zip(names, combo))
        for s in seeds:
            jobs.append((p, s))
    return jobs


def config_key(params, seed, dataset=""):
    """The identity of a job in a results file: data set, all parameters and the seed."""
    return json.dumps({"dataset": dataset, "params": params, "seed": int(seed)},
                      sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# one job

def usable_cores():
    """CPUs this process may use: the affinity mask, capped by the cgroup CPU quota.

    (Not ``fastnn.get_num_threads()``: Dask workers set OMP_NUM_THREADS=1, which is about BLAS
    inside the worker, not about how many cores the host has.)"""
    from fastnn import _config
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _config._cpu_quota()
    return max(1, min(n, quota) if quota else n)


def fit_one(params, seed, X_train, y_train, X_test, y_test, n_threads=None):
    """Train one configuration; return ``{status, final_accuracy, curve, seconds, error}``.

    The test set is evaluated after every epoch inside the engine (``eval_set``)."""
    from fastnn.sklearn import FastNNClassifier
    kw = dict(params)
    kw["hidden_layer_sizes"] = tuple(kw["hidden_layer_sizes"])
    try:
        clf = FastNNClassifier(**kw, random_state=int(seed), n_threads=n_threads)
        t0 = time.perf_counter()
        clf.fit(X_train, y_train, eval_set=(X_test, y_test))
        seconds = time.perf_counter() - t0
        curve = [float(a) for a in clf.history_["eval_accuracy"]]
        return {"status": "ok", "final_accuracy": curve[-1], "curve": curve,
                "seconds": round(seconds, 4), "error": ""}
    except Exception as e:  # one bad configuration must not stop the sweep
        return {"status": "error", "final_accuracy": None, "curve": [], "seconds": None,
                "error": f"{type(e).__name__}: {e}"}


def _job(task, params, seed, key, dataset, arrays, n_threads):
    """Run ``task`` (fit_one or a stand-in) and make the full row; an exception is an error
    row."""
    try:
        out = task(params, seed, *arrays, n_threads=n_threads)
    except Exception as e:
        out = {"status": "error", "error": f"{type(e).__name__}: {e}"}
    row = {"key": key, "dataset": dataset, "seed": int(seed)}
    row.update(params)
    row.update(status=out.get("status", "ok"), final_accuracy=out.get("final_accuracy"),
               curve=list(out.get("curve", [])), seconds=out.get("seconds"),
               n_threads=n_threads, worker=f"{socket.gethostname()}:{os.getpid()}",
               error=str(out.get("error", "") or ""))
    return row


def _data_task(arrays):
    """The Dask task that holds the training and test arrays."""
    return arrays


def _dask_job(task, params, seed, key, dataset, arrays, plan):
    """A Dask task: pick this host's thread count from ``plan``, then run the job."""
    if isinstance(plan, numbers.Integral):
        n_threads = int(plan)
    else:
        from distributed import get_worker
        from distributed.comm import get_address_host
        worker = get_worker()
        n_threads = plan.get(get_address_host(worker.address))
        if n_threads is None:   # a worker that joined after the plan was made
            n_threads = max(1, usable_cores() // max(1, worker.state.nthreads))
    return _job(task, params, seed, key, dataset, arrays, n_threads)


def _error_row(job, dataset, message):
    params, seed, key = job
    row = {"key": key, "dataset": dataset, "seed": int(seed)}
    row.update(params)
    row.update(status="error", final_accuracy=None, curve=[], seconds=None, n_threads=None,
               worker="", error=message)
    return row


# ---------------------------------------------------------------------------------------------
# the results file

def _is_jsonl(path):
    return str(path).lower().endswith(JSON_SUFFIXES)


def _cell(value):
    """A CSV cell: strings as they are, everything else as JSON; one line always."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("\r", " ").replace("\n", " | ")
    return json.dumps(value)


def _uncell(name, text):
    if name in ("key", "dataset", "status", "worker", "error"):
        return text
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _drop_partial_tail(path):
    """Cut a last line that has no newline: a row whose write was interrupted."""
    with open(path, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)
        fh.flush()
        os.fsync(fh.fileno())
    warnings.warn(f"{path}: dropped a half-written last row ({size - cut} bytes)")


def read_results(path):
    """Return the rows of a results file (CSV or JSON lines) as dicts, in file order."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return []
    rows = []
    with open(path, newline="") as fh:
        if _is_jsonl(path):
            for i, line in enumerate(fh):
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    if not fh.read().strip():   # only the last line may be half-written
                        break
                    raise ValueError(f"{path}: line {i + 1} is not JSON") from None
                rows.append(row)
        else:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != FIELDS:
                raise ValueError(f"{path}: not a fastnn sweep file (its header is "
                                 f"{reader.fieldnames}, expected {list(FIELDS)}); choose "
                                 f"another --out")
            for rec in reader:
                if None in rec or any(v is None for v in rec.values()):
                    continue                    # a short (half-written) line
                rows.append({k: _uncell(k, v) for k, v in rec.items()})
    return rows


def is_results_file(path):
    """True for an empty file, or one that starts as fastnn writes results: the CSV header
    line, or (JSON lines) a first line that is a JSON object with a 'key' and a 'status'."""
    if os.path.getsize(path) == 0:
        return True
    with open(path, "rb") as fh:
        first = fh.readline(1 << 16)
    if _is_jsonl(path):
        try:
            row = json.loads(first)
        except ValueError:
            return False
        return isinstance(row, dict) and "key" in row and "status" in row
    return first.rstrip(b"\r\n") == ",".join(FIELDS).encode()


def check_out(path, what="out"):
    """Raise ValueError before anything is written unless ``path`` can take sweep results:
    fastnn appends to its own results files and never touches any other file."""
    from fastnn import _safeio
    return _safeio.check_output_file(path, what, is_results_file,
                                     "a fastnn sweep results file (CSV with the header "
                                     f"{','.join(FIELDS[:3])},... or JSON lines of rows)")


def check_plot(path, what="plot"):
    from fastnn import _safeio
    return _safeio.check_output_file(path, what, _safeio.is_image, "an image")


class ResultsFile:
    """Append-only results: one row per finished job, flushed and fsync'ed as it arrives.
    An existing file that is not a results file is refused before a byte is written."""

    def __init__(self, path):
        if isinstance(path, str) and path == "" or path is None:
            raise ValueError(f"out: expected a file name, got {path!r}")
        self.path = os.fspath(path)
        self.jsonl = _is_jsonl(self.path)
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        check_out(self.path)
        if os.path.exists(self.path):
            _drop_partial_tail(self.path)
        self.rows = read_results(self.path)
        self._fh = open(self.path, "a", newline="")
        if not self.jsonl and self._fh.tell() == 0:
            self._write_line(",".join(FIELDS) + "\r\n")

    def done(self):
        """Rows by key: the last 'ok' row of each key, else its last row."""
        best = {}
        for row in self.rows:
            k = row.get("key")
            if k is None:
                continue
            if row.get("status") == "ok" or best.get(k, {}).get("status") != "ok":
                best[k] = row
        return best

    def _write_line(self, text):
        self._fh.write(text)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append(self, row):
        if self.jsonl:
            line = json.dumps({k: row.get(k) for k in FIELDS}) + "\n"
        else:
            buf = io.StringIO()
            csv.writer(buf).writerow([_cell(row.get(k)) for k in FIELDS])
            line = buf.getvalue()
        self._write_line(line)
        self.rows.append(row)

    def close(self):
        self._fh.close()


# ---------------------------------------------------------------------------------------------
# backends

def _run_local(jobs, dataset, arrays, task, n_jobs, n_threads, retries, handle, log):
    cores = usable_cores()
    n_jobs = cores if n_jobs in (None, -1) else int(n_jobs)
    if n_jobs < 1:
        raise ValueError(f"n_jobs: expected a positive int, None or -1, got {n_jobs}")
    n_jobs = max(1, min(n_jobs, len(jobs)))
    if n_jobs > cores:
        warnings.warn(f"n_jobs={n_jobs} is more than the {cores} usable cores")
    per_job = max(1, cores // n_jobs)
    if n_threads is not None:
        if int(n_threads) > per_job:
            warnings.warn(f"n_threads={n_threads} x n_jobs={n_jobs} would exceed the {cores} "
                          f"cores; using {per_job} threads per job")
        per_job = max(1, min(int(n_threads), per_job))
    log(f"local: {n_jobs} worker(s) x {per_job} engine thread(s) on {cores} core(s)")
    if n_jobs == 1:
        for params, seed, key in jobs:
            handle(_job(task, params, seed, key, dataset, arrays, per_job))
        return
    from joblib import Parallel, delayed
    pending = list(jobs)
    finished = set()

    def run(batch, workers):
        gen = Parallel(n_jobs=workers, return_as="generator_unordered")(
            delayed(_job)(task, p, s, k, dataset, arrays, per_job) for p, s, k in batch)
        for row in gen:
            finished.add(row["key"])
            handle(row)

    for attempt in range(retries + 1):
        try:
            run(pending, n_jobs)
            return
        except Exception as e:  # a worker died (TerminatedWorkerError) or the pool broke
            pending = [j for j in pending if j[2] not in finished]
            log(f"local: a worker failed ({type(e).__name__}: {e}); "
                f"{len(pending)} job(s) left" +
                (", running them again" if attempt < retries else ""))
            last = e
    for job in pending:                     # alone, so that a crash names its job
        try:
            run([job], 2)
        except Exception as e:
            handle(_error_row(job, dataset, f"worker died running this job "
                                            f"({type(e).__name__}: {e}; before: {last})"))


def _dask_thread_plan(client):
    """Engine threads per task on each host: cores // (threads of all workers on the host)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(usable_cores)
    threads, host_cores = {}, {}
    for addr, info in workers.items():
        host = info["host"]
        threads[host] = threads.get(host, 0) + int(info["nthreads"])
        host_cores[host] = cores.get(addr, host_cores.get(host, 1))
    return {h: max(1, host_cores[h] // max(1, threads[h])) for h in threads}


def _run_dask(jobs, dataset, arrays, task, scheduler, client, n_threads, retries, handle, log):
    from distributed import Client, as_completed
    from distributed import wait as wait_for
    own = client is None
    if own:
        if scheduler is None:
            raise ValueError("scheduler: backend='dask' needs a scheduler address such as "
                             "tcp://host:8786 (or a Client as client=)")
        client = Client(scheduler)
    try:
        plan = int(n_threads) if n_threads is not None else _dask_thread_plan(client)
        n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
        log(f"dask: {client.scheduler.address}, {n_workers} worker(s), engine threads per "
            f"task {plan}")
        # the data is a task, not scattered data: if every worker that holds it dies, the
        # scheduler can compute it again from the task (scattered data would be lost)
        token = hashlib.sha1(str(time.time_ns()).encode() + os.urandom(8)).hexdigest()[:20]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ll]arge.*", category=UserWarning)
            data = client.submit(_data_task, tuple(arrays), key="fastnn-sweep-data-" + token,
                                 pure=False)
        wait_for([data])
        client.replicate([data])
        futures = {}
        for job in jobs:
            params, seed, key = job
            name = "fastnn-sweep-" + hashlib.sha1(key.encode()).hexdigest()[:20]
            fut = client.submit(_dask_job, task, params, seed, key, dataset, data, plan,
                                key=name, pure=False, retries=retries)
            futures[fut] = job
        killed = []
        for fut in as_completed(list(futures)):
            job = futures.pop(fut)
            try:
                row = fut.result()
            except Exception as e:
                # KilledWorker: workers died while holding this task (maybe because of another
                # task on them), or its result was lost with its worker: errors in the job
                # itself are rows already.  Run it again alone once the others are done.
                killed.append((job, e))
                fut.release()
                continue
            fut.release()
            handle(row)
        for job, first in killed if retries > 0 else ():
            params, seed, key = job
            log(f"dask: running alone a job whose workers died: {_describe_job(job)}")
            name = "fastnn-sweep-alone-" + hashlib.sha1(key.encode()).hexdigest()[:20]
            fut = client.submit(_dask_job, task, params, seed, key, dataset, data, plan,
                                key=name, pure=False, retries=retries)
            try:
                row = fut.result()
            except Exception as e:
                row = _error_row(job, dataset, f"{type(e).__name__}: {e} (it killed its "
                                               f"worker when it ran alone too)")
            fut.release()
            handle(row)
        for job, first in killed if retries <= 0 else ():
            handle(_error_row(job, dataset, f"{type(first).__name__}: {first}"))
    finally:
        if own:
            client.close()


def run_sweep(grid, data, *, backend="local", scheduler=None, client=None, n_jobs=None,
              n_threads=None, out="results.csv", seeds=(0,), params=None, dataset="",
              retries=1, on_row=None, task=None, verbose=False):
    """Run every configuration of ``grid`` x ``seeds``; return their rows in grid order.

    ``data`` is ``((X_train, y_train), (X_test, y_test))`` (X as ``(n, features)`` floats or
    uint8 images).  ``params``: fixed estimator parameters; ``dataset``: a name stored in each
    row and in its key.  Rows already 'ok' in ``out`` are skipped and returned as they are.
    ``on_row(row)`` is called in this process after each new row is written.  ``task``
    replaces ``fit_one`` (same signature) -- for tests.  See the module docstring for
    ``backend``, ``n_jobs``, ``n_threads`` and ``retries``.
    """
    from fastnn import datasets
    if backend not in ("local", "dask"):
        raise ValueError(f"backend: expected 'local' or 'dask', got {backend!r}")
    task = fit_one if task is None else task
    retries = int(retries)
    (X_train, y_train), (X_test, y_test) = data
    base = dict(params or {})
    dtype = np.dtype(canonical_value("dtype", base.get("dtype", "float64")))
    arrays = []
    for X, y in ((X_train, y_train), (X_test, y_test)):
        X = np.asarray(X)
        X = datasets.to_array(X, dtype) if X.dtype.kind in "iub" or X.ndim != 2 else \
            np.ascontiguousarray(X, dtype=dtype)
        arrays += [X, np.asarray(y)]
    jobs = [(p, s, config_key(p, s, dataset)) for p, s in expand_grid(grid, base, seeds)]
    log = print if verbose else (lambda *a, **k: None)
    results = ResultsFile(out)
    try:
        done = results.done()
        todo = [j for j in jobs if done.get(j[2], {}).get("status") != "ok"]
        if len(todo) < len(jobs):
            log(f"{out}: {len(jobs) - len(todo)} of {len(jobs)} job(s) already done, skipped")
        count = [len(jobs) - len(todo)]

        def handle(row):
            results.append(row)
            if row["status"] == "ok" or done.get(row["key"], {}).get("status") != "ok":
                done[row["key"]] = row
            count[0] += 1
            log(f"[{count[0]}/{len(jobs)}] {_describe(row, grid)}")
            if on_row is not None:
                on_row(row)

        if todo:
            if backend == "local":
                _run_local(todo, dataset, arrays, task, n_jobs, n_threads, retries, handle, log)
            else:
                _run_dask(todo, dataset, arrays, task, scheduler, client, n_threads, retries,
                          handle, log)
    finally:
        results.close()
    return [done[k] for _, _, k in jobs if k in done]


def _describe_job(job):
    params, seed, _ = job
    return f"{json.dumps(params, sort_keys=True)} seed={seed}"


def _describe(row, grid):
    names = [canonical_name(k) for k in (grid or {})]
    desc = " ".join(f"{n}={_show(row.get(n))}" for n in names)
    if row["status"] != "ok":
        return f"{desc} seed={row['seed']}: ERROR {row['error']}"
    return (f"{desc} seed={row['seed']}: accuracy {row['final_accuracy']:.4f} "
            f"({row['seconds']:.1f} s, {row['n_threads']} thread(s), {row['worker']})")


# ---------------------------------------------------------------------------------------------
# tables and the plot

def _show(value):
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)


def _hashable(value):
    return json.dumps(value, sort_keys=True)


def summarize(rows, swept):
    """Group 'ok' rows by the swept parameters; mean, std (over seeds) and mean seconds."""
    groups = {}
    for row in rows:
        if row.get("status") != "ok":
            continue
        k = tuple(_hashable(row.get(n)) for n in swept)
        groups.setdefault(k, []).append(row)
    out = []
    for k, rs in groups.items():
        acc = np.array([r["final_accuracy"] for r in rs], dtype=float)
        out.append({**{n: rs[0].get(n) for n in swept}, "seeds": len(rs),
                    "mean_accuracy": float(acc.mean()),
                    "std_accuracy": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
                    "mean_seconds": float(np.mean([r["seconds"] for r in rs]))})
    return out


def format_table(records, columns, formats=None):
    """Return ``records`` (dicts) as a plain text table of ``columns``."""
    formats = formats or {}
    cells = [[c for c in columns]]
    for r in records:
        line = []
        for c in columns:
            v = r.get(c)
            if v is None:
                line.append("-")
            elif c in formats:
                line.append(formats[c](v))
            else:
                line.append(_show(v))
        cells.append(line)
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    text = ["  ".join(s.rjust(w) for s, w in zip(row, widths)) for row in cells]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def _curve_text(curve):
    return " ".join(f"{a:.4f}" for a in curve or [])


def plot_sweep(rows, swept, path, title=None):
    """Save a PNG: final test accuracy (mean +- std over seeds) against each swept parameter,
    one line per combination of the other swept parameters.  Needs matplotlib."""
    check_plot(path, "path")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    ok = [r for r in rows if r.get("status") == "ok"]
    swept = list(swept) or ["hidden_layer_sizes"]
    fig = Figure(figsize=(5.0 * len(swept), 4.0))
    FigureCanvasAgg(fig)
    for i, name in enumerate(swept):
        ax = fig.add_subplot(1, len(swept), i + 1)
        values = []
        for r in ok:
            if _hashable(r.get(name)) not in [_hashable(v) for v in values]:
                values.append(r.get(name))
        flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
        numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in flat)
        order = sorted(range(len(values)), key=lambda j: flat[j] if numeric else j)
        values = [values[j] for j in order]
        xs = [flat[j] for j in order] if numeric else list(range(len(values)))
        others = [n for n in swept if n != name]
        lines = {}
        for r in ok:
            lines.setdefault(tuple(_hashable(r.get(n)) for n in others), []).append(r)
        if len(lines) > 6:                  # too many to tell apart: pool them
            lines = {(): ok}
        for okey, rs in lines.items():
            mean, std = [], []
            for v in values:
                acc = [r["final_accuracy"] for r in rs
                       if _hashable(r.get(name)) == _hashable(v)]
                mean.append(np.mean(acc) if acc else np.nan)
                std.append(np.std(acc, ddof=1) if len(acc) > 1 else 0.0)
            label = ", ".join(f"{n}={_show(json.loads(v))}" for n, v in zip(others, okey))
            ax.errorbar(xs, mean, yerr=std, marker="o", capsize=4, label=label or None)
        if not numeric:
            ax.set_xticks(xs)
            ax.set_xticklabels([_show(v) for v in values])
        elif len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) >= 20:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("final test accuracy (mean +- std over seeds)")
        ax.grid(True, alpha=0.3)
        if any(k for k in lines):
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path


# ---------------------------------------------------------------------------------------------
# the command line

def load_data(dataset, train_size=None, test_size=None, path=None, dtype="float32",
              log=print):
    """Return ``(((X, y), (X_test, y_test)), name)`` for a sweep; ``name`` goes in the keys.

    A ``train_size``/``test_size`` smaller than the split takes that many examples chosen by
    a fixed permutation (seed 0), kept in their original order."""
    from fastnn import datasets
    loaded = datasets.load(dataset, path=path, allow_sample=True)
    name = "sample" if getattr(loaded, "is_sample", False) else dataset
    if name == "sample" and dataset != "sample":
        log(f"{dataset} was not found: using the shipped Fashion-MNIST sample (install the "
            f"full data with `apt-get install dataset-fashion-mnist` or pass --data-path)")
    out = []
    for (x, y), size, what in ((loaded[0], train_size, "train"), (loaded[1], test_size, "test")):
        if size is not None and size < len(x):
            idx = np.sort(np.random.RandomState(0).permutation(len(x))[:size])
            x, y = x[idx], y[idx]
            name += f":{what}={size}"
        out.append((datasets.to_array(x, dtype), np.asarray(y, dtype=np.int64)))
    return tuple(out), name


def _parse_scalar(text):
    t = text.strip()
    if t.lower() in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def _parse_assignment(text, what):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{what}: expected name=value, got {text!r}")
    name, _, value = text.partition("=")
    try:
        return canonical_name(name.strip()), value
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _grid_arg(text):
    name, values = _parse_assignment(text, "--grid")
    return name, [_parse_scalar(v) for v in values.split(",") if v.strip()]


def _set_arg(text):
    name, value = _parse_assignment(text, "--set")
    return name, _parse_scalar(value)


def _seeds_arg(text):
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds: expected ints such as 0,1,2, got "
                                         f"{text!r}") from None


def _read_config(path):
    with open(path) as fh:
        text = fh.read((1 << 20) + 1)
    if len(text) > 1 << 20:
        raise ValueError(f"--config {path}: longer than 1 MiB; a sweep config is a few lines")
    if path.lower().endswith(".json"):
        try:
            cfg = json.loads(text)
        except ValueError as e:
            raise ValueError(f"--config {path}: not valid JSON ({e})") from None
        except RecursionError:
            raise ValueError(f"--config {path}: nested too deeply") from None
    else:
        try:
            import yaml
        except ImportError:
            raise SystemExit(f"--config {path}: reading YAML needs PyYAML "
                             f"(pip install pyyaml), or give a .json file") from None
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"--config {path}: not valid YAML ({' '.join(str(e).split())})") \
                from None
        except RecursionError:
            raise ValueError(f"--config {path}: nested too deeply") from None
    if not isinstance(cfg, dict):
        raise SystemExit(f"--config {path}: expected a mapping at the top level")
    known = {"dataset", "data_path", "train_size", "test_size", "seeds", "out", "plot",
             "n_jobs", "n_threads", "scheduler", "params", "grid", "epochs", "retries"}
    unknown = set(cfg) - known
    if unknown:
        raise SystemExit(f"--config {path}: unknown keys {sorted(unknown)}; expected "
                         f"{sorted(known)}")
    return cfg


def main(argv=None):
    """``python -m fastnn sweep ...``: run a sweep, print its tables, optionally plot it."""
    p = argparse.ArgumentParser(
        prog="fastnn sweep",
        description="Train FastNNClassifier on every point of a parameter grid x seeds, "
                    "locally (joblib) or on a Dask cluster; rows go to --out as they finish, "
                    "and a re-run skips the rows already there.")
    p.add_argument("--config", default=None,
                   help="YAML or JSON file with any of: dataset, data_path, train_size, "
                        "test_size, seeds, out, plot, n_jobs, n_threads, scheduler, retries, "
                        "epochs, params (fixed), grid (swept); flags override it")
    p.add_argument("--grid", type=_grid_arg, action="append", default=[],
                   metavar="NAME=V1,V2,...",
                   help="a swept parameter, e.g. hidden=28,88,128,256 or eta=0.1,0.5 "
                        "(hidden sizes: 128 or 128x64); repeat for a cartesian product")
    p.add_argument("--set", type=_set_arg, action="append", default=[], metavar="NAME=VALUE",
                   help="a fixed estimator parameter, e.g. optimizer=adam")
    p.add_argument("--seeds", type=_seeds_arg, default=None, help="e.g. 0,1,2 (default 0)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--dataset", choices=["fashion-mnist", "mnist", "sample"], default=None,
                   help="default fashion-mnist (the shipped sample when it is not installed)")
    p.add_argument("--data-path", default=None)
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--out", default=None, help="results file, .csv or .jsonl "
                                               "(default results.csv)")
    p.add_argument("--scheduler", default=None,
                   help="run on Dask: tcp://host:port of a running scheduler, or 'local' to "
                        "start a LocalCluster of --n-jobs worker processes (1 thread each)")
    p.add_argument("--n-jobs", type=int, default=None,
                   help="local worker processes (default: the usable cores)")
    p.add_argument("--threads", type=int, default=None,
                   help="engine threads per job (default: cores // workers)")
    p.add_argument("--retries", type=int, default=None)
    p.add_argument("--plot", default=None, help="save accuracy vs each swept parameter (PNG)")
    p.add_argument("--quiet", action="store_true", help="no line per finished job")
    args = p.parse_args(argv)

    try:
        cfg = _read_config(args.config) if args.config else {}
    except (ValueError, OSError) as e:
        from fastnn.__main__ import user_error
        return user_error("sweep", e)
    grid = {canonical_name(k): v for k, v in (cfg.get("grid") or {}).items()}
    grid.update(dict(args.grid))
    if not grid:
        p.error("nothing to sweep: give --grid NAME=V1,V2 or a config file with 'grid'")
    params = {canonical_name(k): v for k, v in (cfg.get("params") or {}).items()}
    if cfg.get("epochs") is not None:
        params["epochs"] = cfg["epochs"]
    params.update(dict(args.set))
    if args.epochs is not None:
        params["epochs"] = args.epochs
    pick = lambda flag, key, default: flag if flag is not None else cfg.get(key, default)  # noqa
    seeds = pick(args.seeds, "seeds", [0])
    dataset = pick(args.dataset, "dataset", "fashion-mnist")
    out = pick(args.out, "out", "results.csv")
    scheduler = pick(args.scheduler, "scheduler", None)
    n_jobs = pick(args.n_jobs, "n_jobs", None)
    n_threads = pick(args.threads, "n_threads", None)
    retries = pick(args.retries, "retries", 1)
    plot = pick(args.plot, "plot", None)
    dtype = canonical_value("dtype", params.get("dtype", "float64"))

    try:
        # the outputs are checked before any data is read or job runs
        check_out(out, "--out" if args.out is not None else "out")
        if plot:
            check_plot(plot, "--plot" if args.plot is not None else "plot")
        data, name = load_data(dataset, pick(args.train_size, "train_size", None),
                               pick(args.test_size, "test_size", None),
                               pick(args.data_path, "data_path", None), dtype)
    except (ValueError, TypeError, OSError) as e:
        from fastnn.__main__ import user_error
        return user_error("sweep", e)
    (X, y), (Xt, yt) = data
    n_jobs_total = len(expand_grid(grid, params, seeds))
    fixed = {k: v for k, v in params.items() if k not in grid}
    print(f"fastnn sweep: {name} ({len(X)} training, {len(Xt)} test), "
          f"{n_jobs_total} job(s) = grid {grid} x seeds {list(seeds)}, fixed {fixed}; "
          f"rows -> {out}")
    cluster = None
    kw = dict(out=out, seeds=seeds, params=params, dataset=name, n_threads=n_threads,
              retries=retries, verbose=not args.quiet)
    t0 = time.perf_counter()
    try:
        if scheduler is None:
            rows = run_sweep(grid, data, backend="local", n_jobs=n_jobs, **kw)
        elif scheduler == "local":
            from distributed import Client, LocalCluster
            cluster = LocalCluster(n_workers=n_jobs or 2, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
            with Client(cluster) as client:
                rows = run_sweep(grid, data, backend="dask", client=client, **kw)
        else:
            rows = run_sweep(grid, data, backend="dask", scheduler=scheduler, **kw)
    finally:
        if cluster is not None:
            cluster.close()
    wall = time.perf_counter() - t0

    swept = list(grid)
    ok = [r for r in rows if r["status"] == "ok"]
    print()
    print(format_table(rows, swept + ["seed", "status", "final_accuracy", "seconds",
                                      "n_threads", "curve"],
                       {"final_accuracy": lambda v: f"{v:.4f}", "seconds": lambda v: f"{v:.2f}",
                        "curve": _curve_text}))
    print()
    print(format_table(summarize(rows, swept),
                       swept + ["seeds", "mean_accuracy", "std_accuracy", "mean_seconds"],
                       {"mean_accuracy": lambda v: f"{v:.4f}",
                        "std_accuracy": lambda v: f"{v:.4f}",
                        "mean_seconds": lambda v: f"{v:.2f}"}))
    failed = len(rows) - len(ok)
    print(f"\n{len(ok)} ok, {failed} failed; wall time {wall:.1f} s; results in {out}")
    if plot and ok:
        try:
            plot_sweep(rows, [n for n in swept if len(grid[n]) > 1] or swept, plot,
                       title=f"{name}: {', '.join(swept)} x seeds {list(seeds)}")
            print(f"plot: {plot}")
        except ImportError:
            print("plot: skipped, matplotlib is not installed (pip install matplotlib)",
                  file=sys.stderr)
    return 0 if not failed else 1
