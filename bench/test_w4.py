"""W4: inference, predict the 10,000 test images with W2's model.

One benchmark per implementation; see _harness.py for what each one runs.
"""
import pytest

from _harness import IMPL_NAMES, run_benchmark


@pytest.mark.benchmark(group="W4")
@pytest.mark.parametrize("impl", IMPL_NAMES["W4"])
def test_w4(benchmark, impl, ctx):
    run_benchmark(benchmark, "W4", impl, ctx)
