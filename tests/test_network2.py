"""fastnn.network2: the book's chapter-3 API, its extras, and parity with the numpy oracle."""
import json
import random

import numpy as np
import pytest

from fastnn import network2
from fastnn import reference as R

ORACLE_COST = {network2.QuadraticCost: "quadratic", network2.CrossEntropyCost: "cross_entropy",
               network2.LogLikelihoodCost: "log_likelihood"}


def make_data(n, n_in, n_out, seed, labels=False):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_in)
    lab = rng.randint(0, n_out, n)
    pairs = [(x.reshape(-1, 1), int(k) if labels else np.eye(n_out)[k].reshape(-1, 1))
             for x, k in zip(X, lab)]
    return pairs, X, lab


def order_of(n, epochs, seed):
    rng = random.Random(seed)
    perm = list(range(n))
    orders = []
    for _ in range(epochs):
        rng.shuffle(perm)
        orders.append(np.array(perm))
    return orders


@pytest.mark.parametrize("cost, act, lmbda, l1, momentum", [
    (network2.CrossEntropyCost, "sigmoid", 5.0, 0.0, 0.0),
    (network2.LogLikelihoodCost, "relu", 0.0, 0.0, 0.0),
    (network2.LogLikelihoodCost, "tanh", 2.0, 0.0, 0.5),
    (network2.QuadraticCost, "sigmoid", 0.0, 3.0, 0.0),
    (network2.CrossEntropyCost, "relu", 1.0, 1.0, 0.9),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_seeded_epoch_matches_oracle(cost, act, lmbda, l1, momentum, dtype):
    n = 1500
    train, X, lab = make_data(n, 40, 10, seed=1)
    random.seed(7)
    np.random.seed(7)
    net = network2.Network([40, 25, 10], cost=cost, activation=act, dtype=dtype)
    oracle = R.MatrixNetwork(net.weights, net.biases, activation=act,
                             output_activation=net.output_activation,
                             cost=ORACLE_COST[cost], dtype=dtype)
    net.SGD(train, 1, 10, 0.1, lmbda=lmbda, l1=l1, momentum=momentum, verbose=False)
    oracle.train_epoch(X.astype(dtype), np.eye(10, dtype=dtype)[lab], order_of(n, 1, 7)[0], 10,
                       0.1, lmbda=lmbda, l1=l1, n=n,
                       optimizer="momentum" if momentum else "sgd", momentum=momentum)
    diff = max(np.abs(a.astype(np.float64) - b).max()
               for a, b in zip(net.weights + net.biases, oracle.weights + oracle.biases))
    tol = 1e-10 if dtype == np.float64 else 2e-4
    print(f"{cost.__name__} {act} lmbda={lmbda} l1={l1} mu={momentum} "
          f"{np.dtype(dtype).name}: max diff {diff:.3g}")
    assert diff < tol


ACTS = ["sigmoid", "tanh", "relu", "gelu", "silu", "elu", "selu", "leaky_relu", "softplus"]
COSTS = [network2.QuadraticCost, network2.CrossEntropyCost, network2.LogLikelihoodCost]


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("cost", COSTS)
@pytest.mark.parametrize("lmbda", [0.0, 3.0])
def test_backprop_against_total_cost_finite_differences(act, cost, lmbda):
    """d total_cost / dw = mean backprop + (lmbda/n) w, checked by central differences."""
    np.random.seed(5)
    net = network2.Network([4, 5, 3], cost=cost, activation=act)
    data, X, lab = make_data(6, 4, 3, seed=3)
    n = len(data)
    grads_w = [np.zeros_like(w) for w in net.weights]
    grads_b = [np.zeros_like(b) for b in net.biases]
    for x, y in data:
        nb, nw = net.backprop(x, y)
        for l in range(2):
            grads_w[l] += nw[l] / n
            grads_b[l] += nb[l] / n
    for l in range(2):
        grads_w[l] += (lmbda / n) * net.weights[l]
    h = 1e-6
    worst = 0.0
    for params, grads in ((net.weights, grads_w), (net.biases, grads_b)):
        for p, g in zip(params, grads):
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + h
                cp = net.total_cost(data, lmbda)
                p[idx] = old - h
                cm = net.total_cost(data, lmbda)
                p[idx] = old
                fd = (cp - cm) / (2 * h)
                worst = max(worst, abs(fd - g[idx]) / max(1e-7, abs(fd) + abs(g[idx])))
    print(f"{act} x {cost.__name__} x lmbda={lmbda}: worst relative error {worst:.2e}")
    assert worst < 1e-5


def test_l1_step_matches_book_formula():
    """w -> w - (eta l1/n) sgn(w) - (eta/m) sum of gradients, for one mini-batch."""
    np.random.seed(1)
    net = network2.Network([3, 2], cost=network2.QuadraticCost)
    net.weights[0][0, 0] = 0.0
    data, _, _ = make_data(4, 3, 2, seed=2)
    w0 = net.weights[0].copy()
    g = sum(net.backprop(x, y)[1][0] for x, y in data)
    random.seed(0)
    net.SGD(data, 1, 4, 0.5, l1=2.0, verbose=False)
    expect = w0 - 0.5 * 2.0 / 4 * np.sign(w0) - 0.5 / 4 * g
    np.testing.assert_allclose(net.weights[0], expect, rtol=0, atol=1e-14)


def test_printed_lines_and_return_values(capsys):
    train, _, _ = make_data(300, 10, 4, seed=4)
    evald, _, _ = make_data(100, 10, 4, seed=5, labels=True)
    random.seed(1)
    np.random.seed(1)
    net = network2.Network([10, 6, 4])
    # a copy: SGD leaves the caller's list shuffled, and the monitors below are compared
    # with accuracy/total_cost over the same examples in the same order
    out = net.SGD(list(train), 2, 10, 0.5, lmbda=1.0, evaluation_data=evald,
                  monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                  monitor_training_cost=True, monitor_training_accuracy=True)
    ec, ea, tc, ta = out
    assert len(ec) == len(ea) == len(tc) == len(ta) == 2
    assert all(isinstance(a, int) for a in ea + ta)
    lines = capsys.readouterr().out.split("\n")
    assert lines[:6] == [
        "Epoch 0 training complete",
        f"Cost on training data: {tc[0]}",
        f"Accuracy on training data: {ta[0]} / 300",
        f"Cost on evaluation data: {ec[0]}",
        f"Accuracy on evaluation data: {ea[0]} / 100",
        "",
    ]
    # the last epoch's monitors equal the book's accuracy/total_cost on the final weights
    assert ea[-1] == net.accuracy(evald)
    assert ta[-1] == net.accuracy(train, convert=True)
    assert ec[-1] == pytest.approx(net.total_cost(evald, 1.0, convert=True), rel=1e-12)
    assert tc[-1] == pytest.approx(net.total_cost(train, 1.0), rel=1e-12)
    # and the book's cost classes give the same number in plain numpy
    manual = sum(network2.CrossEntropyCost.fn(net.feedforward(x), y) for x, y in train) / 300
    manual += 0.5 * (1.0 / 300) * sum(np.linalg.norm(w) ** 2 for w in net.weights)
    assert tc[-1] == pytest.approx(manual, rel=1e-10)
    out2 = net.SGD(train, 1, 10, 0.5, verbose=False)
    assert out2 == ([], [], [], [])


def test_initializers_follow_the_book_order():
    np.random.seed(4)
    net = network2.Network([6, 5, 2])
    np.random.seed(4)
    b = [np.random.randn(5, 1), np.random.randn(2, 1)]
    w = [np.random.randn(5, 6) / np.sqrt(6), np.random.randn(2, 5) / np.sqrt(5)]
    for a, e in zip(net.biases + net.weights, b + w):
        np.testing.assert_array_equal(a, e)
    np.random.seed(4)
    net.large_weight_initializer()
    np.random.seed(4)
    b = [np.random.randn(5, 1), np.random.randn(2, 1)]
    w = [np.random.randn(5, 6), np.random.randn(2, 5)]
    for a, e in zip(net.biases + net.weights, b + w):
        np.testing.assert_array_equal(a, e)


def test_save_load_round_trip_and_book_fixture(tmp_path):
    np.random.seed(0)
    net = network2.Network([3, 4, 2], cost=network2.QuadraticCost)
    path = tmp_path / "net.json"
    net.save(str(path))
    data = json.loads(path.read_text())
    assert set(data) == {"sizes", "weights", "biases", "cost"}
    assert data["cost"] == "QuadraticCost"
    back = network2.load(str(path))
    x = np.array([[0.1], [0.2], [0.3]])
    np.testing.assert_allclose(back.feedforward(x), net.feedforward(x), rtol=1e-15)
    assert back.cost is network2.QuadraticCost
    assert [p.name for p in tmp_path.iterdir()] == ["net.json"]   # no temp files left
    net.save(str(path))   # class or instance
    net.cost = network2.QuadraticCost()
    net.save(str(path))
    assert json.loads(path.read_text())["cost"] == "QuadraticCost"

    # a file in the book's format, written by hand: 2 -> 1 sigmoid, w = [1, -1], b = [0.5]
    fixture = tmp_path / "book.json"
    fixture.write_text('{"sizes": [2, 1], "weights": [[[1.0, -1.0]]], "biases": [[[0.5]]], '
                       '"cost": "CrossEntropyCost"}')
    book = network2.load(str(fixture))
    out = book.feedforward(np.array([[2.0], [1.0]]))
    assert out[0, 0] == pytest.approx(1 / (1 + np.exp(-1.5)), rel=1e-15)


@pytest.mark.parametrize("text, what", [
    ('{"sizes": [2, 1], "weights": [[[1.0, -1.0]]], "biases": [[[0.5]]], "cost": "Nope"}',
     "unknown cost"),
    ('{"sizes": [3, 1], "weights": [[[1.0, -1.0]]], "biases": [[[0.5]]], '
     '"cost": "CrossEntropyCost"}', "shape"),
    ('{"sizes": [2, 1], "weights": [[[1.0, -1.0]]], "biases": [[[0.5]]], "co', "truncated"),
    ('[1, 2, 3]', "JSON object"),
    ('{"sizes": [2, 1], "weights": [[[1.0, -1.0]]], "cost": "CrossEntropyCost"}', "missing"),
])
def test_load_rejects_bad_files(tmp_path, text, what):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=what):
        network2.load(str(p))


def test_early_stopping_and_eta_schedule():
    train, _, _ = make_data(200, 8, 3, seed=6)
    evald, _, _ = make_data(50, 8, 3, seed=7, labels=True)
    random.seed(0)
    np.random.seed(0)
    net = network2.Network([8, 4, 3])
    # eta so small that accuracy never moves: stops after 1 + early_stopping_n epochs
    out = net.SGD(train, 20, 10, 1e-12, evaluation_data=evald,
                  monitor_evaluation_accuracy=True, early_stopping_n=3, verbose=False)
    assert len(out[1]) == 4
    # halve-on-plateau with plateau_n=1: halvings at epochs 1..7 reach eta/128, then stop
    out = net.SGD(train, 50, 10, 1e-12, evaluation_data=evald,
                  monitor_evaluation_accuracy=True, eta_schedule="halve-on-plateau",
                  plateau_n=1, verbose=False)
    assert len(out[1]) == 8


def test_dropout_is_reproducible_and_changes_training():
    train, X, lab = make_data(400, 20, 5, seed=8)
    results = []
    for p in (0.5, 0.5, 0.0):
        random.seed(3)
        np.random.seed(3)
        net = network2.Network([20, 16, 5])
        net.SGD(list(train), 2, 10, 0.3, dropout=p, verbose=False)
        results.append(net.weights[0].copy())
    np.testing.assert_array_equal(results[0], results[1])
    assert np.abs(results[0] - results[2]).max() > 1e-3


def test_softmax_output_probabilities():
    np.random.seed(2)
    net = network2.Network([5, 4, 3], cost=network2.LogLikelihoodCost)
    x = np.random.rand(5, 1)
    a = net.feedforward(x)
    h = np.tanh if False else (lambda z: 1 / (1 + np.exp(-z)))
    z = net.weights[1] @ h(net.weights[0] @ x + net.biases[0]) + net.biases[1]
    expect = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(a, expect, rtol=1e-12)
    assert network2.vectorized_result(3)[3, 0] == 1.0


def test_engine_quadratic_cost_on_softmax_output_matches_oracle():
    """The engine applies the softmax Jacobian for the quadratic cost (Keras' mse after a
    softmax); the oracle computes a*(g - sum a g)."""
    from fastnn import _core
    rng = np.random.RandomState(0)
    X = rng.rand(40, 6)
    Y = np.eye(3)[rng.randint(0, 3, 40)]
    W = [rng.randn(5, 6), rng.randn(3, 5)]
    b = [rng.randn(5, 1), rng.randn(3, 1)]
    oracle = R.MatrixNetwork(W, b, activation="tanh", output_activation="softmax",
                             cost="quadratic")
    Wc = [w.copy() for w in W]
    bc = [x.copy() for x in b]
    order = np.arange(40)
    _core.train(Wc, [x.reshape(-1) for x in bc], X, Y, _core.TrainConfig(
        acts=["tanh", "softmax"], cost="quadratic", epochs=1, batch=8, eta=0.5,
        orders=order[None, :].astype(np.int32)))
    oracle.train_epoch(X, Y, order, 8, 0.5)
    diff = max(np.abs(a - c).max() for a, c in zip(Wc + bc, oracle.weights + oracle.biases))
    print(f"quadratic + softmax, engine vs oracle: {diff:.3g}")
    assert diff < 1e-12


# ---- files the book's network2 reads (issue 15, item 4) --------------------------------------

class BookModule:
    """What the book's load needs of its module: the two cost classes it defines, looked up
    by the file's ``cost`` name (getattr on the module)."""
    QuadraticCost = type("QuadraticCost", (), {})
    CrossEntropyCost = type("CrossEntropyCost", (), {})


def book_feedforward(data, x):
    """The book's network from a file: sigmoid layers over the stored weights and biases."""
    a = x
    for w, b in zip(data["weights"], data["biases"]):
        a = 1.0 / (1.0 + np.exp(-(np.array(w) @ a + np.array(b))))
    return a


@pytest.mark.parametrize("kw", [
    {"activation": "tanh"},
    {"activation": "relu"},
    {"cost": network2.LogLikelihoodCost},
    {"cost": network2.QuadraticCost, "output_activation": "identity"},
    {"activation": "relu", "cost": network2.LogLikelihoodCost},
])
def test_file_the_book_cannot_run_fails_in_the_books_loader(tmp_path, kw):
    np.random.seed(2)
    net = network2.Network([5, 4, 3], **kw)
    path = tmp_path / "net.json"
    net.save(str(path))
    data = json.loads(path.read_text())
    with pytest.raises(AttributeError):                # the book's load: loud, not wrong
        getattr(BookModule, data["cost"])
    assert "fastnn.network2.load" in data["cost"]
    back = network2.load(str(path))
    x = np.linspace(-1, 1, 10).reshape(5, 2)
    np.testing.assert_array_equal(back.feedforward(x), net.feedforward(x))
    assert (back.cost, back.activation, back.output_activation) == \
        (net.cost, net.activation, net.output_activation)


@pytest.mark.parametrize("cost", [network2.QuadraticCost, network2.CrossEntropyCost])
def test_file_the_book_can_run_stays_the_books_format(tmp_path, cost):
    """Sigmoid networks, also one trained with dropout: exactly the book's four keys, a cost
    the book's module has, and the book's sigmoid forward pass on the file gives fastnn's
    predictions."""
    train, X, _ = make_data(40, 5, 3, seed=3)
    random.seed(1)
    np.random.seed(1)
    net = network2.Network([5, 4, 3], cost=cost)
    net.SGD(train, 2, 10, 0.5, dropout=0.3, verbose=False)
    path = tmp_path / "net.json"
    net.save(str(path))
    data = json.loads(path.read_text())
    assert set(data) == {"sizes", "weights", "biases", "cost"}
    assert getattr(BookModule, data["cost"]).__name__ == cost.__name__
    np.testing.assert_allclose(book_feedforward(data, X.T), net.feedforward(X.T), rtol=1e-13)


def test_own_cost_class_saved_under_its_name(tmp_path, monkeypatch):
    """As in the book: the file names the class; load finds it where the book's load would,
    in the module."""
    class MyCost:
        @staticmethod
        def fn(a, y):
            return 0.5 * float(np.sum((a - y) ** 2))

        @staticmethod
        def delta(z, a, y):
            return (a - y) * network2.sigmoid_prime(z)

    np.random.seed(4)
    net = network2.Network([3, 2], cost=MyCost)
    path = tmp_path / "own.json"
    net.save(str(path))
    assert json.loads(path.read_text())["cost"] == "MyCost"
    with pytest.raises(ValueError, match="unknown cost 'MyCost'"):
        network2.load(str(path))
    monkeypatch.setattr(network2, "MyCost", MyCost, raising=False)
    assert network2.load(str(path)).cost is MyCost

    class OwnTanh:
        fn = staticmethod(np.tanh)

        @staticmethod
        def prime(z):
            return 1 - np.tanh(z) ** 2

    with pytest.raises(ValueError, match="activation"):
        network2.Network([3, 2, 2], activation=OwnTanh).save(str(path))


def test_return_types_are_the_books(capsys):
    """Issue 15, item 5: accuracies are ints, costs numpy.float64 (the book's costs come from
    np.linalg.norm and np.sum), in the monitors' lists and from the methods."""
    from fastnn import network
    train, _, _ = make_data(30, 6, 3, seed=5)
    test, _, lab = make_data(20, 6, 3, seed=6, labels=True)
    test = [(x, np.int64(y)) for x, y in test]          # the loader's labels
    np.random.seed(0)
    net = network2.Network([6, 4, 3])
    ec, ea, tc, ta = net.SGD(train, 2, 10, 0.5, lmbda=1.0, evaluation_data=test,
                             monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                             monitor_training_cost=True, monitor_training_accuracy=True)
    assert all(type(c) is np.float64 for c in ec + tc)
    assert all(type(a) is int for a in ea + ta)
    assert type(net.total_cost(train, 1.0)) is np.float64
    assert type(net.accuracy(test)) is int
    out = capsys.readouterr().out
    assert f"Cost on training data: {float(tc[-1])!r}\n" in out   # printed as a float prints
    net1 = network.Network([6, 4, 3])
    assert type(net1.evaluate(test)) is int
