"""W1 in float32 against float64, alternated round by round (issue 20, item 3: float32 at
least 1.9x float64).

The W1 table's fastnn rows run their rounds one benchmark after the other, minutes apart, and
on a shared machine the time of one epoch moves by up to 1.8x between minutes (bench/README.md),
so the ratio of two rows measured apart carries the machine's drift as well as the engine's.
Here each round runs one float64 epoch (in the round's untimed set-up, timed here) and then one
float32 epoch (timed by pytest-benchmark), both exactly as the W1 rows run them (the engine call
of `network.Network.SGD`'s epoch, the test-set evaluation included), so a change in the
machine's load falls on both. extra_info holds each type's median epoch, the ratio of the
medians (`f64_over_f32`) and the median of the rounds' own ratios (`f64_over_f32_paired`).
"""
import time

import numpy as np
import pytest

from _harness import QUICK, WORKLOADS, FastnnImpl
from fastnn import bench as fbench

ROUNDS = 15


@pytest.mark.benchmark(group="types")
@pytest.mark.parametrize("threads", [1, 2])
def test_types(benchmark, ctx, threads):
    from fastnn import _engine
    if threads > 1 and not _engine.openmp_enabled():
        pytest.skip("fastnn was built without OpenMP: %d threads would run as 1" % threads)
    wl = WORKLOADS["W1"]
    impls = {dt: FastnnImpl(wl, ctx, dt, threads) for dt in (np.float64, np.float32)}
    times = {dt: [] for dt in impls}

    def timed_epoch(dt):
        def run():
            t0 = time.perf_counter()
            impls[dt].epoch()
            times[dt].append(time.perf_counter() - t0)
        return run

    for impl in impls.values():       # warm-up: the first epoch of each
        impl.epoch()
    rounds = 1 if QUICK else ROUNDS
    cpu0 = fbench.cpu_times()
    # float64 in each round's set-up (untimed by pytest-benchmark: timed here), then float32
    benchmark.pedantic(timed_epoch(np.float32), setup=timed_epoch(np.float64), rounds=rounds,
                       iterations=1)
    steal = fbench.steal_fraction(cpu0, fbench.cpu_times())
    t32, t64 = np.array(times[np.float32]), np.array(times[np.float64])
    med32, med64 = float(np.median(t32)), float(np.median(t64))
    info = {"workload": "W1", "threads": threads, "rounds": rounds, "quick": QUICK,
            "seconds_f32": med32, "seconds_f64": med64, "f64_over_f32": med64 / med32,
            "f64_over_f32_paired": float(np.median(t64 / t32)),
            "seconds_all": {"float32": t32.tolist(), "float64": t64.tolist()},
            "steal_fraction": steal}
    for k, v in info.items():
        benchmark.extra_info[k] = v
    print(f"\nW1 {threads} thread{'s' if threads > 1 else ''}, alternated: float32 {med32:.4f} s, "
          f"float64 {med64:.4f} s: float64 / float32 = {med64 / med32:.3f} (paired rounds: "
          f"{info['f64_over_f32_paired']:.3f})")
