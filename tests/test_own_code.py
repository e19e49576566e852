"""The reader's own code runs (issue 15, item 2): the book's exercises override methods of
``network.Network`` / ``network2.Network`` or pass a cost of their own; fastnn then runs the
book's algorithm in Python, calling that code where the book's code calls it.

Independent values: counted calls, weights that must not move, the per-example oracle
(``fastnn.reference.LoopNetwork``) replaying the same shuffles, and the compiled engine on
an equivalent built-in network.
"""
import math
import random
import warnings

import numpy as np
import pytest

from fastnn import network, network2
from fastnn import reference as R


def make_data(n, n_in=12, n_out=4, seed=0):
    """Book-style lists: training y one-hot columns, test y int labels."""
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_in)
    lab = rng.randint(0, n_out, n)
    train = [(x.reshape(-1, 1), np.eye(n_out)[k].reshape(-1, 1)) for x, k in zip(X, lab)]
    test = [(x.reshape(-1, 1), int(k)) for x, k in zip(X, lab)]
    return train, test, X, lab


def seeded(cls, sizes, seed=7, **kw):
    random.seed(seed)
    np.random.seed(seed)
    return cls(sizes, **kw)


def max_diff(a_list, b_list):
    return max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for a, b in zip(a_list, b_list))


# ---- the three tests ------------------------------------------------------------------

def test_zero_cost_derivative_learns_nothing(capsys):
    class ZeroDerivative(network.Network):
        def cost_derivative(self, output_activations, y):
            return np.zeros_like(output_activations)

    train, test, _, _ = make_data(60)
    net = seeded(ZeroDerivative, [12, 6, 4])
    w0 = [w.copy() for w in net.weights] + [b.copy() for b in net.biases]
    with pytest.warns(UserWarning, match="cost_derivative") as rec:
        net.SGD(train, 2, 10, 3.0, test_data=test)
    assert "compiled engine is not used" in str(rec[0].message)
    assert max_diff(w0, net.weights + net.biases) == 0.0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2                                   # nothing learned between epochs
    assert lines[0].split(":")[1] == lines[1].split(":")[1]
    # the same network with the book's cost_derivative does learn
    plain = seeded(network.Network, [12, 6, 4])
    plain.SGD(train, 2, 10, 3.0)
    assert max_diff(w0, plain.weights + plain.biases) > 1e-3


class MyCrossEntropy:
    """The cross-entropy cost, written here from its formula (not the built-in class)."""

    @staticmethod
    def fn(a, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = -(y * np.log(a)) - (1.0 - y) * np.log(1.0 - a)
        return np.sum(np.nan_to_num(terms))

    @staticmethod
    def delta(z, a, y):
        return a - y


def test_user_cost_equal_to_cross_entropy_gives_the_builtin_weights(capsys):
    train, test, _, _ = make_data(90, seed=1)
    mine = seeded(network2.Network, [12, 7, 4], cost=MyCrossEntropy)
    ref = seeded(network2.Network, [12, 7, 4], cost=network2.CrossEntropyCost)
    assert max_diff(mine.weights, ref.weights) == 0.0
    random.seed(3)
    with pytest.warns(UserWarning, match="MyCrossEntropy"):
        got = mine.SGD(list(train), 3, 10, 0.5, lmbda=2.0, evaluation_data=test,
                       monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                       monitor_training_cost=True, monitor_training_accuracy=True)
    out_mine = capsys.readouterr().out
    random.seed(3)
    want = ref.SGD(list(train), 3, 10, 0.5, lmbda=2.0, evaluation_data=test,
                   monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                   monitor_training_cost=True, monitor_training_accuracy=True)
    out_ref = capsys.readouterr().out
    diff = max_diff(mine.weights + mine.biases, ref.weights + ref.biases)
    print(f"max |own cost class - built-in CrossEntropyCost| after 3 epochs: {diff:.3g}")
    assert diff < 1e-10
    assert got[1] == want[1] and got[3] == want[3]            # accuracies, exactly
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10)   # costs
    np.testing.assert_allclose(got[2], want[2], rtol=1e-10)
    assert [l for l in out_mine.splitlines() if "Accuracy" in l] == \
        [l for l in out_ref.splitlines() if "Accuracy" in l]


@pytest.mark.parametrize("front", ["network", "network2"])
@pytest.mark.parametrize("n, m", [(53, 10), (40, 10), (7, 10), (30, 1)])
def test_user_update_mini_batch_called_ceil_n_over_m_times(front, n, m, capsys):
    calls = []
    if front == "network":
        class Counting(network.Network):
            def update_mini_batch(self, mini_batch, eta):
                calls.append(len(mini_batch))
                super().update_mini_batch(mini_batch, eta)
    else:
        class Counting(network2.Network):
            def update_mini_batch(self, mini_batch, eta, lmbda, n_total):
                calls.append(len(mini_batch))
                assert n_total == n
                super().update_mini_batch(mini_batch, eta, lmbda, n_total)
    train, _, _, _ = make_data(n, seed=2)
    net = seeded(Counting, [12, 5, 4])
    with pytest.warns(UserWarning, match="update_mini_batch"):
        net.SGD(train, 3, m, 0.5)
    per_epoch = math.ceil(n / m)
    assert len(calls) == 3 * per_epoch
    assert sum(calls) == 3 * n and max(calls) <= m


# ---- the Python path is the book's algorithm ------------------------------------------------

def replay_orders(n, epochs, seed):
    rng = random.Random(seed)
    perm = list(range(n))
    out = []
    for _ in range(epochs):
        rng.shuffle(perm)
        out.append(list(perm))
    return out


def test_python_path_matches_the_per_example_oracle():
    """An override that changes nothing (feedforward calling the base) sends SGD through the
    Python path; two epochs must equal the oracle replaying the same shuffles."""
    class SameFeedforward(network.Network):
        def feedforward(self, a):
            return super().feedforward(a)

    train, test, X, lab = make_data(75, seed=4)
    net = seeded(SameFeedforward, [12, 9, 4])
    oracle = R.LoopNetwork([w.copy() for w in net.weights], [b.copy() for b in net.biases])
    before = list(train)
    random.seed(21)
    with pytest.warns(UserWarning, match="feedforward"):
        net.SGD(train, 2, 8, 2.0, test_data=test)
    Y = np.eye(4)[lab]
    orders = replay_orders(75, 2, 21)
    for order in orders:
        oracle.sgd_epoch(X, Y, np.array(order), 8, 2.0)
    diff = max_diff(net.weights + net.biases, oracle.weights + oracle.biases)
    print(f"max |Python path - per-example oracle| after two epochs: {diff:.3g}")
    assert diff < 1e-12
    # the caller's list is shuffled in place, as the book's random.shuffle leaves it (each
    # replayed order is the list's arrangement after that epoch's shuffle)
    assert [id(p) for p in train] == [id(before[i]) for i in orders[-1]]


def test_overridden_backprop_is_used_where_the_book_calls_it():
    """backprop returning twice the gradient is a step of 2*eta: the compiled engine with
    2*eta gives the same weights."""
    class Doubled(network.Network):
        def backprop(self, x, y):
            nb, nw = super().backprop(x, y)
            return [2 * g for g in nb], [2 * g for g in nw]

    train, _, _, _ = make_data(64, seed=5)
    net = seeded(Doubled, [12, 6, 4])
    ref = seeded(network.Network, [12, 6, 4])
    random.seed(8)
    with pytest.warns(UserWarning, match="backprop"):
        net.SGD(list(train), 2, 10, 1.5)
    random.seed(8)
    ref.SGD(list(train), 2, 10, 3.0)
    diff = max_diff(net.weights + net.biases, ref.weights + ref.biases)
    print(f"max |doubled backprop, eta - compiled, 2 eta|: {diff:.3g}")
    assert diff < 1e-10


def test_overridden_evaluate_and_feedforward_print_what_they_return(capsys):
    class Fixed(network.Network):
        def evaluate(self, test_data):
            return 42

    train, test, _, _ = make_data(30, seed=6)
    net = seeded(Fixed, [12, 5, 4])
    with pytest.warns(UserWarning, match="evaluate"):
        net.SGD(train, 2, 10, 1.0, test_data=test)
    assert capsys.readouterr().out == "Epoch 0: 42 / 30\nEpoch 1: 42 / 30\n"

    class AlwaysTwo(network.Network):
        def feedforward(self, a):
            out = np.zeros((4, 1))
            out[2] = 1.0
            return out

    net = seeded(AlwaysTwo, [12, 5, 4])
    with pytest.warns(UserWarning, match="feedforward"):
        assert net.evaluate(test) == sum(1 for _, y in test if y == 2)


def test_instance_attribute_override_counts_too():
    train, _, _, _ = make_data(40, seed=9)
    net = seeded(network.Network, [12, 5, 4])
    w0 = [w.copy() for w in net.weights]
    net.cost_derivative = lambda a, y: 0.0 * a
    with pytest.warns(UserWarning, match="cost_derivative"):
        net.SGD(train, 1, 10, 3.0)
    assert max_diff(w0, net.weights) == 0.0


def test_replaced_module_sigmoid_is_used(monkeypatch):
    """A reader who edits network.py's sigmoid: feedforward and training use theirs."""
    monkeypatch.setattr(network, "sigmoid", lambda z: np.tanh(z))
    monkeypatch.setattr(network, "sigmoid_prime", lambda z: 1.0 - np.tanh(z) ** 2)
    net = seeded(network.Network, [12, 5, 4])
    x = np.linspace(0, 1, 12).reshape(-1, 1)
    with pytest.warns(UserWarning, match="network.sigmoid"):
        out = net.feedforward(x)
    want = np.tanh(net.weights[1] @ np.tanh(net.weights[0] @ x + net.biases[0]) +
                   net.biases[1])
    np.testing.assert_allclose(out, want, rtol=1e-14)


def test_own_activation_object_matches_the_engine_tanh():
    class Tanh:
        @staticmethod
        def fn(z):
            return np.tanh(z)

        @staticmethod
        def prime(z):
            return 1.0 - np.tanh(z) ** 2

    train, test, _, _ = make_data(50, seed=10)
    mine = seeded(network2.Network, [12, 6, 4], activation=Tanh)
    ref = seeded(network2.Network, [12, 6, 4], activation="tanh")
    random.seed(4)
    with pytest.warns(UserWarning, match="activation"):
        mine.SGD(list(train), 2, 10, 0.3, lmbda=1.0, verbose=False)
    random.seed(4)
    ref.SGD(list(train), 2, 10, 0.3, lmbda=1.0, verbose=False)
    diff = max_diff(mine.weights + mine.biases, ref.weights + ref.biases)
    print(f"max |own tanh object - engine tanh|: {diff:.3g}")
    assert diff < 1e-10
    assert mine.accuracy(test) == ref.accuracy(test)


def test_network2_overrides_called_by_the_monitors(capsys):
    seen = {"total_cost": 0, "accuracy": 0}

    class Watched(network2.Network):
        def total_cost(self, data, lmbda, convert=False):
            seen["total_cost"] += 1
            return super().total_cost(data, lmbda, convert)

        def accuracy(self, data, convert=False):
            seen["accuracy"] += 1
            return 7

    train, test, _, _ = make_data(40, seed=11)
    net = seeded(Watched, [12, 5, 4])
    with pytest.warns(UserWarning):
        ec, ea, tc, ta = net.SGD(train, 2, 10, 0.5, evaluation_data=test,
                                 monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                                 monitor_training_cost=True, monitor_training_accuracy=True)
    assert seen == {"total_cost": 4, "accuracy": 4}
    assert ea == [7, 7] and ta == [7, 7]
    assert all(type(c) is np.float64 for c in ec + tc)
    out = capsys.readouterr().out
    assert out.count("Accuracy on evaluation data: 7 / 40") == 2
    assert out.count("Accuracy on training data: 7 / 40") == 2


def test_only_what_reaches_the_change_leaves_the_engine():
    """An overridden evaluate does not make backprop or update_mini_batch Python: no
    warning from them, and their results are the compiled ones."""
    class OwnEvaluate(network.Network):
        def evaluate(self, test_data):
            return 0

    net = seeded(OwnEvaluate, [12, 5, 4])
    train, _, _, _ = make_data(20, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.backprop(*train[0])
        net.update_mini_batch(train[:5], 0.5)
        net.feedforward(train[0][0])


def test_warned_once_per_class():
    class Quiet(network.Network):
        def cost_derivative(self, output_activations, y):
            return output_activations - y

    train, _, _, _ = make_data(20, seed=13)
    net = seeded(Quiet, [12, 5, 4])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        net.SGD(train, 2, 5, 0.5)
        net.backprop(*train[0])
        Quiet([12, 3, 4]).SGD(train, 1, 5, 0.5)
    assert len(rec) == 1 and issubclass(rec[0].category, UserWarning)
    assert "Quiet.SGD" in str(rec[0].message) and "cost_derivative" in str(rec[0].message)


def test_python_path_refuses_what_the_book_has_not():
    train, _, _, _ = make_data(20, seed=14)
    net = seeded(network2.Network, [12, 5, 4], cost=MyCrossEntropy)
    for kw in ({"momentum": 0.9}, {"dropout": 0.5}, {"l1": 1.0}):
        with warnings.catch_warnings(), pytest.raises(ValueError, match=list(kw)[0]):
            warnings.simplefilter("ignore")
            net.SGD(train, 1, 10, 0.5, **kw)
    with pytest.raises(TypeError, match="cost: expected"):
        network2.Network([12, 5, 4], cost=object)
    with pytest.raises(TypeError, match="activation: expected"):
        network2.Network([12, 5, 4], activation=np.tanh)


def test_python_path_early_stopping():
    class Flat(network2.Network):
        def accuracy(self, data, convert=False):
            return 3                     # never improves after the first epoch

    train, test, _, _ = make_data(20, seed=15)
    net = seeded(Flat, [12, 5, 4])
    with pytest.warns(UserWarning):
        _, ea, _, _ = net.SGD(train, 30, 10, 0.5, evaluation_data=test,
                              monitor_evaluation_accuracy=True, early_stopping_n=3,
                              verbose=False)
    assert ea == [3, 3, 3, 3]


def test_python_path_keeps_float32_and_tracks_float64():
    class Same(network.Network):
        def cost_derivative(self, output_activations, y):
            return output_activations - y

    train, _, _, _ = make_data(40, seed=16)
    nets = []
    for dtype in (np.float32, np.float64):
        net = seeded(Same, [12, 6, 4], dtype=dtype)
        random.seed(2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net.SGD(list(train), 2, 10, 1.0)
        assert all(a.dtype == dtype for a in net.weights + net.biases)
        nets.append(net)
    diff = max_diff(nets[0].weights, nets[1].weights)
    print(f"max |float32 - float64| on the Python path: {diff:.3g}")
    assert diff < 1e-4


@pytest.mark.parametrize("activation", ["relu", "tanh", "identity"])
def test_own_cost_with_engine_activations_matches_the_engine(activation):
    """The Python path's hidden layers use the oracle's activations by name."""
    train, _, _, _ = make_data(50, seed=17)
    mine = seeded(network2.Network, [12, 6, 4], cost=MyCrossEntropy, activation=activation)
    ref = seeded(network2.Network, [12, 6, 4], cost=network2.CrossEntropyCost,
                 activation=activation)
    for net in (mine, ref):
        random.seed(6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net.SGD(list(train), 2, 10, 0.1, lmbda=0.5, verbose=False)
    diff = max_diff(mine.weights + mine.biases, ref.weights + ref.biases)
    print(f"max |Python path - engine| with {activation} hidden layers: {diff:.3g}")
    assert diff < 1e-10
