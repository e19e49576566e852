"""fastnn.network against the book's API and our independent per-example oracle."""
import random

import numpy as np
import pytest

from fastnn import network
from fastnn import reference as R


def make_data(n, n_in=784, n_out=10, seed=0, labels=False):
    """Nielsen-style lists: x (n_in, 1) in [0, 1); y one-hot (n_out, 1) or an int label."""
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_in)
    lab = rng.randint(0, n_out, n)
    pairs = []
    for x, k in zip(X, lab):
        y = int(k) if labels else np.eye(n_out)[k].reshape(-1, 1)
        pairs.append((x.reshape(-1, 1), y))
    return pairs, X, lab


def replay_orders(n, epochs, seed):
    """The example order of each epoch, as random.shuffle on the data list gives it."""
    rng = random.Random(seed)
    perm = list(range(n))
    out = []
    for _ in range(epochs):
        rng.shuffle(perm)
        out.append(np.array(perm))
    return out


def test_api_and_initialisation_follow_the_book():
    np.random.seed(3)
    net = network.Network([5, 4, 3])
    np.random.seed(3)
    biases = [np.random.randn(y, 1) for y in (4, 3)]
    weights = [np.random.randn(4, 5), np.random.randn(3, 4)]
    assert net.num_layers == 3 and net.sizes == [5, 4, 3]
    for a, b in zip(net.biases + net.weights, biases + weights):
        np.testing.assert_array_equal(a, b)
    for name in ("feedforward", "SGD", "update_mini_batch", "backprop", "evaluate",
                 "cost_derivative"):
        assert callable(getattr(net, name))
    assert callable(network.sigmoid) and callable(network.sigmoid_prime)


def test_feedforward_matches_numpy():
    np.random.seed(0)
    net = network.Network([6, 5, 4])
    a = np.random.rand(6, 1)
    expect = a
    for w, b in zip(net.weights, net.biases):
        expect = 1.0 / (1.0 + np.exp(-(w @ expect + b)))
    out = net.feedforward(a)
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out, expect, rtol=1e-12, atol=1e-15)
    cols = np.random.rand(6, 7)
    np.testing.assert_allclose(net.feedforward(cols)[:, 2:3], net.feedforward(cols[:, 2:3]),
                               rtol=1e-12)


def test_sigmoid_no_overflow_and_exact():
    z = np.array([-1000.0, -50.0, -3.0, 0.0, 2.5, 40.0, 1000.0])
    with np.errstate(all="raise"):
        s = network.sigmoid(z)
    assert np.all(np.isfinite(s)) and 0 <= s[0] < 1e-300 and s[-1] == 1.0
    mid = np.linspace(-30, 30, 101)
    np.testing.assert_allclose(network.sigmoid(mid), 1 / (1 + np.exp(-mid)), rtol=1e-15)
    # the book's s*(1-s) loses digits to cancellation for large z, so compare on [-10, 10]
    small = np.linspace(-10, 10, 41)
    np.testing.assert_allclose(network.sigmoid_prime(small),
                               np.exp(-small) / (1 + np.exp(-small)) ** 2, rtol=1e-9)


def test_seeded_epoch_matches_per_example_oracle():
    """One epoch of 3,000 examples: weights equal the book's algorithm within 1e-8."""
    train, X, lab = make_data(3000)
    random.seed(11)
    np.random.seed(11)
    net = network.Network([784, 30, 10])
    oracle = R.LoopNetwork([w.copy() for w in net.weights], [b.copy() for b in net.biases])
    net.SGD(train, 1, 10, 3.0)
    order = replay_orders(3000, 1, 11)[0]
    oracle.sgd_epoch(X, np.eye(10)[lab], order, 10, 3.0)
    diff = max(np.abs(a - b).max() for a, b in zip(net.weights + net.biases,
                                                   oracle.weights + oracle.biases))
    print(f"max |fastnn - per-example oracle| after one epoch: {diff:.3g}")
    assert diff < 1e-8


def test_printed_lines_and_counts(capsys):
    train, _, _ = make_data(500, n_in=20, seed=1)
    test, Xt, labt = make_data(200, n_in=20, seed=2, labels=True)
    random.seed(0)
    np.random.seed(0)
    net = network.Network([20, 8, 10])
    net.SGD(train, 2, 10, 1.0, test_data=test)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    expect = int(np.sum(np.argmax(net.feedforward(Xt.T), axis=0) == labt))
    assert lines[1] == f"Epoch 1: {expect} / 200"
    assert lines[0].startswith("Epoch 0: ") and lines[0].endswith(" / 200")
    net.SGD(train, 1, 10, 1.0)
    assert capsys.readouterr().out == "Epoch 0 complete\n"
    assert net.evaluate(test) == int(np.sum(np.argmax(net.feedforward(Xt.T), axis=0) == labt))


def test_caller_list_left_shuffled_like_the_book():
    train, _, _ = make_data(50, n_in=6, n_out=3, seed=4)
    before = list(train)
    random.seed(5)
    np.random.seed(5)
    net = network.Network([6, 4, 3])
    net.SGD(train, 3, 7, 0.5)
    expect = list(before)
    rng = random.Random(5)
    for _ in range(3):
        rng.shuffle(expect)
    assert all(a is b for a, b in zip(train, expect))


def test_iterables_and_array_fast_path_agree():
    train, X, lab = make_data(300, n_in=12, n_out=4, seed=6)
    results = []
    for form in ("list", "zip", "tuple", "arrays_labels", "arrays_onehot"):
        random.seed(9)
        np.random.seed(9)
        net = network.Network([12, 5, 4])
        if form == "list":
            data = list(train)
        elif form == "zip":
            data = zip([x for x, _ in train], [y for _, y in train])
        elif form == "tuple":
            data = tuple(train)
        elif form == "arrays_labels":
            data = (X.copy(), lab.copy())
        else:
            data = (X.copy(), np.eye(4)[lab])
        net.SGD(data, 2, 10, 0.7)
        results.append(net.weights[0].copy())
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=0, atol=1e-13)


def test_backprop_matches_finite_differences():
    np.random.seed(2)
    net = network.Network([5, 4, 3])
    x = np.random.rand(5, 1)
    y = np.eye(3)[1].reshape(-1, 1)
    nabla_b, nabla_w = net.backprop(x, y)
    assert [g.shape for g in nabla_w] == [w.shape for w in net.weights]
    assert [g.shape for g in nabla_b] == [b.shape for b in net.biases]

    def cost():
        return 0.5 * float(np.sum((net.feedforward(x) - y) ** 2))

    h = 1e-6
    worst = 0.0
    for params, grads in ((net.weights, nabla_w), (net.biases, nabla_b)):
        for p, g in zip(params, grads):
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + h
                cp = cost()
                p[idx] = old - h
                cm = cost()
                p[idx] = old
                fd = (cp - cm) / (2 * h)
                worst = max(worst, abs(fd - g[idx]) / max(1e-8, abs(fd) + abs(g[idx])))
    print(f"backprop vs finite differences, worst relative error {worst:.2e}")
    assert worst < 1e-6


def test_update_mini_batch_matches_oracle():
    train, X, lab = make_data(17, n_in=9, n_out=4, seed=8)
    np.random.seed(4)
    net = network.Network([9, 6, 4])
    oracle = R.LoopNetwork(net.weights, net.biases)
    net.update_mini_batch(train, 2.0)
    oracle.update_mini_batch([x for x, _ in train], [y for _, y in train], 2.0)
    for a, b in zip(net.weights + net.biases, oracle.weights + oracle.biases):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    assert net.cost_derivative(np.ones((4, 1)), np.zeros((4, 1))).sum() == 4


def test_threads_one_and_two_agree():
    train, _, _ = make_data(2000, seed=10)
    out = []
    for nt in (1, 2):
        random.seed(1)
        np.random.seed(1)
        net = network.Network([784, 40, 10], n_threads=nt)
        net.SGD(list(train), 1, 10, 3.0)   # a copy: SGD shuffles the caller's list
        out.append(net.weights)
    diff = max(np.abs(a - b).max() for a, b in zip(*out))
    print(f"threads 1 vs 2: max weight difference {diff:.3g}")
    assert diff < 1e-10


def test_float32_tracks_float64():
    train, X, lab = make_data(1000, n_in=50, seed=12)
    nets = {}
    for dt in (np.float64, np.float32):
        random.seed(2)
        np.random.seed(2)
        nets[dt] = network.Network([50, 20, 10], dtype=dt)
        nets[dt].SGD(list(train), 1, 10, 1.0)
    assert nets[np.float32].weights[0].dtype == np.float32
    diff = max(np.abs(a - b.astype(np.float64)).max()
               for a, b in zip(nets[np.float64].weights, nets[np.float32].weights))
    print(f"float32 vs float64 after one epoch: {diff:.3g}")
    assert diff < 1e-3


def test_user_assigned_weights_are_used():
    np.random.seed(0)
    net = network.Network([3, 2])
    net.weights[0] = np.asfortranarray(np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]]))
    net.biases[0] = np.array([[0.0], [-1.0]], dtype=np.float32)
    x = np.array([[1.0], [2.0], [3.0]])
    expect = 1 / (1 + np.exp(-(np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]]) @ x +
                                np.array([[0.0], [-1.0]]))))
    np.testing.assert_allclose(net.feedforward(x), expect, rtol=1e-12)


@pytest.mark.parametrize("bad, exc", [
    (([784],), ValueError), ((["a", 3],), TypeError), (([3, 0, 2],), ValueError),
])
def test_bad_sizes(bad, exc):
    with pytest.raises(exc, match="sizes"):
        network.Network(*bad)
