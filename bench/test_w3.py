"""W3: wide, [784, 1024, 1024, 10] relu, softmax cross-entropy, SGD momentum 0.9,
batch 128, float32; fastnn at 1 and 2 threads is the thread-scaling measurement.

One benchmark per implementation; see _harness.py for what each one runs.
"""
import pytest

from _harness import IMPL_NAMES, run_benchmark


@pytest.mark.benchmark(group="W3")
@pytest.mark.parametrize("impl", IMPL_NAMES["W3"])
def test_w3(benchmark, impl, ctx):
    run_benchmark(benchmark, "W3", impl, ctx)
