"""W1: Nielsen ch. 1, [784, 30, 10] sigmoid, quadratic cost, SGD batch 10, eta 3.0, float64,
evaluation on the test set after every epoch (timed).

One benchmark per implementation; see _harness.py for what each one runs.
"""
import pytest

from _harness import IMPL_NAMES, run_benchmark


@pytest.mark.benchmark(group="W1")
@pytest.mark.parametrize("impl", IMPL_NAMES["W1"])
def test_w1(benchmark, impl, ctx):
    run_benchmark(benchmark, "W1", impl, ctx)
