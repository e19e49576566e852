"""The compiled replay of random.shuffle draws exactly the book's orders."""
import random

import numpy as np
import pytest

from fastnn import _core


@pytest.mark.parametrize("n, epochs, seed", [(1, 1, 0), (2, 3, 1), (10, 4, 2), (1000, 3, 3),
                                             (50000, 2, 4), (70001, 1, 5)])
def test_orders_equal_python_shuffle(n, epochs, seed):
    rng = random.Random(seed)
    expect, perm = [], list(range(n))
    for _ in range(epochs):
        rng.shuffle(perm)
        expect.append(list(perm))
    after_python = rng.random()

    rng2 = random.Random(seed)
    orders = _core.nielsen_orders(n, epochs, rng2)
    assert [list(o) for o in orders] == expect
    assert rng2.random() == after_python      # the state advanced exactly as Python's


def test_global_random_module_state_advances_like_the_book():
    random.seed(42)
    perm = list(range(300))
    random.shuffle(perm)
    random.shuffle(perm)
    after = random.random()
    random.seed(42)
    orders = _core.nielsen_orders(300, 2, random)
    assert list(orders[1]) == perm and random.random() == after


def test_custom_rng_falls_back_to_its_shuffle():
    class Reverse:
        def shuffle(self, x):
            x.reverse()
    orders = _core.nielsen_orders(5, 2, Reverse())
    assert list(orders[0]) == [4, 3, 2, 1, 0] and list(orders[1]) == [0, 1, 2, 3, 4]
