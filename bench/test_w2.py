"""W2: the Keras Fashion-MNIST tutorial, Dense(128, relu) + Dense(10) logits, Adam 1e-3,
batch 32, float32.

One benchmark per implementation; see _harness.py for what each one runs.
"""
import pytest

from _harness import IMPL_NAMES, run_benchmark


@pytest.mark.benchmark(group="W2")
@pytest.mark.parametrize("impl", IMPL_NAMES["W2"])
def test_w2(benchmark, impl, ctx):
    run_benchmark(benchmark, "W2", impl, ctx)
