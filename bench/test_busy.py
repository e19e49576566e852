"""W1 and W2 with the default thread count on an idle and on a busy machine (issue 20, item 1).

The engine adapts its team to the machine's load when the thread count is left to it
(src_c/team.h).  Each benchmark times the default count ("auto") round by round, alternated
with the best fixed counts it must match, 1 and 2 threads (their epochs run in each round's
untimed set-up), so that a change in the machine's load falls on all three.  "busy": a
spinning Python process, started and stopped here, keeps one core busy.  extra_info holds
each variant's median epoch, the ratio auto / best fixed count (the target: at most 1.1 busy
and idle) and how many threads auto ran per mini-batch on average.
"""
import contextlib
import subprocess
import sys
import time

import numpy as np
import pytest

from _harness import QUICK, WORKLOADS, FastnnImpl

DTYPE = {"W1": np.float64, "W2": np.float32}
ROUNDS = {"W1": 9, "W2": 5}


@contextlib.contextmanager
def _load(kind):
    """'busy': one other process spinning on a core for the duration; 'idle': nothing."""
    proc = None
    if kind == "busy":
        proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)   # let it start spinning
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


@pytest.mark.benchmark(group="busy")
@pytest.mark.parametrize("load", ["idle", "busy"])
@pytest.mark.parametrize("wid", ["W1", "W2"])
def test_busy(benchmark, ctx, wid, load):
    from fastnn import _config, _engine
    if not _engine.openmp_enabled():
        pytest.skip("fastnn was built without OpenMP: no threads to adapt")
    wl = WORKLOADS[wid]
    impls = {th: FastnnImpl(wl, ctx, DTYPE[wid], th) for th in (1, 2, None)}
    times = {th: [] for th in impls}
    team = []

    def fixed():                      # untimed by pytest-benchmark: timed here
        for th in (1, 2):
            t0 = time.perf_counter()
            impls[th].epoch()
            times[th].append(time.perf_counter() - t0)

    def auto():
        t0 = time.perf_counter()
        impls[None].epoch()
        times[None].append(time.perf_counter() - t0)
        team.append((_config._last_run or {}).get("threads_mean"))

    rounds = 1 if QUICK else ROUNDS[wid]
    with _load(load):
        for impl in impls.values():   # warm-up: the first epoch of each (auto learns the load)
            impl.epoch()
        benchmark.pedantic(auto, setup=fixed, rounds=rounds, iterations=1)
    med = {th: float(np.median(v)) for th, v in times.items()}
    best = min(med[1], med[2])
    info = {"workload": wid, "load": load, "dtype": np.dtype(DTYPE[wid]).name,
            "seconds_auto": med[None], "seconds_1t": med[1], "seconds_2t": med[2],
            "auto_over_best_fixed": med[None] / best, "best_fixed": 1 if med[1] <= med[2] else 2,
            "auto_threads_mean": team, "rounds": rounds, "quick": QUICK,
            "seconds_all": {str(k): v for k, v in times.items()}}
    for k, v in info.items():
        benchmark.extra_info[k] = v
    print(f"\n{wid} {load}: auto {med[None]:.4f} s, 1 thread {med[1]:.4f} s, 2 threads "
          f"{med[2]:.4f} s: auto / best fixed = {med[None] / best:.3f}; auto ran "
          f"{team} threads per mini-batch")
