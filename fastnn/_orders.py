"""Example orders drawn a chunk of epochs at a time, and the engine called once per chunk.

Drawing every epoch's order before training (epochs x n int32) made ``SGD(epochs=10**9)``
fail at once; here at most ``ORDER_CHUNK`` entries are held, each chunk of epochs is one
engine call, and what a run carries from one call to the next (the optimizer's step, eta, the
epoch numbers, a stop) is carried by ``in_chunks``.  A run whose orders fit one chunk is the
single engine call it always was, with the same random numbers.
"""
import dataclasses

import numpy as np

from fastnn._config import import_engine

_engine = import_engine()

ORDER_CHUNK = 1 << 22    # int32 entries of example orders held at once (16 MiB)
# network.py's (the book's chapter 1, whose memory is the reader's lists): 1 MiB, five epochs
# of MNIST's 50,000 per engine call.  Its runs have no dropout seed, so the chunks give the
# numbers one call gives; measured on the chapter-1 session, 30 epochs: no slower, and its
# peak 5 MiB lower.
BOOK_ORDER_CHUNK = 1 << 18


class EpochOrders:
    """The example order of each epoch, drawn ``chunk`` epochs at a time as training reaches
    them, so that memory does not grow with the number of epochs.

    ``draw(k)`` returns the next k epochs' orders, an int32 array (k, n).  The first chunk is
    drawn here, when the front door would have drawn all of them: the random numbers drawn
    after it (a dropout seed) keep their place, and a run of one chunk (``epochs * n`` up to
    ``ORDER_CHUNK``) draws exactly what it drew when all the orders were made up front.
    ``last`` is the order of the last epoch drawn (None before any)."""

    def __init__(self, n, epochs, draw, chunk=None):
        self.n, self.epochs, self._draw = int(n), int(epochs), draw
        self.chunk = max(1, (ORDER_CHUNK if chunk is None else int(chunk)) // max(self.n, 1))
        self.drawn = 0
        self.last = None
        self._ahead = self._next() if self.epochs > 0 else None

    def _next(self):
        k = min(self.chunk, self.epochs - self.drawn)
        orders = self._draw(k)
        self.drawn += k
        self.last = orders[k - 1]
        return orders

    def next_chunk(self):
        """The orders of the next chunk of epochs, or None when all have been drawn."""
        if self._ahead is not None:
            orders, self._ahead = self._ahead, None
            return orders
        return self._next() if self.drawn < self.epochs else None


def shuffled_orders(n, epochs, rng, chunk=None):
    """EpochOrders as the book's ``rng.shuffle(training_data)`` at the start of each epoch
    gives them: each epoch shuffles the previous epoch's order (see ``nielsen_orders``)."""
    import random as _random
    state = {"last": None, "perm": None}

    def draw(k):
        if rng is _random or type(rng) is _random.Random:
            # the compiled replay shuffles range(n); random.shuffle moves items by position
            # only, so shuffling the last order gives last[that shuffle of range(n)]
            from fastnn._core import nielsen_orders
            rel = nielsen_orders(n, k, rng)
            last = state["last"]
            out = rel if last is None else last[rel]
        else:
            if state["perm"] is None:
                state["perm"] = list(range(n))
            out = np.empty((k, n), dtype=np.int32)
            for e in range(k):
                rng.shuffle(state["perm"])
                out[e] = state["perm"]
        state["last"] = out[k - 1].copy()
        return out

    return EpochOrders(n, epochs, draw, chunk)


def permutation_orders(n, epochs, chunk=None):
    """EpochOrders drawn with ``np.random.permutation(n)`` for each epoch in turn."""
    def draw(k):
        out = np.empty((k, n), dtype=np.int32)
        for e in range(k):
            out[e] = np.random.permutation(n)
        return out

    return EpochOrders(n, epochs, draw, chunk)


def _chunk_seed(seed, first_epoch):
    """The dropout seed of a chunk: the engine numbers the epochs of each call from 0, so
    later chunks get their own seed (the first keeps ``seed``: one chunk is one call)."""
    if first_epoch == 0:
        return seed
    h = (int(seed) ^ (first_epoch * 0x9E3779B97F4A7C15)) & 0xFFFFFFFFFFFFFFFF
    h = ((h ^ (h >> 31)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return h ^ (h >> 29)


def in_chunks(call, config):
    """``call(config)`` (the engine's ``train`` or the xp backend's): once when
    ``config.orders`` is an order array or None, or once per chunk of an EpochOrders.
    Between chunks the optimizer's step, eta (as a callback changed it), the epoch numbers
    the callback sees and a stop or an error carry over; the optimizer state lives in the
    caller's arrays."""
    orders, epochs, on_epoch = config.orders, int(config.epochs), config.on_epoch
    if not isinstance(orders, EpochOrders) or epochs == 0:
        if isinstance(orders, EpochOrders):
            config = dataclasses.replace(config, orders=None)
        return call(config)
    done, res, step, eta = 0, None, config.step, config.eta
    while done < epochs:
        chunk = orders.next_chunk()
        if chunk is None:
            raise ValueError(f"orders: expected orders for {epochs} epochs, got {done}")
        k = min(len(chunk), epochs - done)
        cb = None
        if on_epoch is not None:
            def cb(st, _off=done):
                st = dict(st)
                st["epoch"] += _off
                return on_epoch(st)
        res = dict(call(dataclasses.replace(
            config, epochs=k, orders=chunk, on_epoch=cb, step=step, eta=eta,
            seed=_chunk_seed(config.seed, done))))
        if res.get("diverged_epoch", -1) >= 0:
            res["diverged_epoch"] += done
        res["epochs_done"] = done + res["epochs_done"]
        step, eta = res["step"], res["eta"]
        done += k
        if res["status"] != _engine.STATUS_OK:
            break
    return res
