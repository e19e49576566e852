"""Checks of the numpy oracle against values that do not come from the oracle itself.

Finite differences of the cost, a network computed by hand, the book's update formulas written
out in the test. Run with ``pytest -s`` to see the max differences.
"""

import math
import warnings

import numpy as np
import pytest

from fastnn.reference import (
    ACTIVATIONS, COSTS, DERIVATIVES, LoopNetwork, MatrixNetwork, nielsen_init, relu_prime,
    sigmoid, sigmoid_prime, softmax,
)

SIZES = [4, 6, 5, 3]


def make_data(rng, n, sizes=SIZES, cost="quadratic"):
    """Return ``X (n, n_in)`` and targets suited to ``cost``."""
    X = rng.standard_normal((n, sizes[0]))
    labels = rng.integers(0, sizes[-1], size=n)
    onehot = np.eye(sizes[-1])[labels]
    if cost == "log_likelihood":
        Y = onehot
    elif cost == "cross_entropy":
        Y = rng.uniform(0.05, 0.95, size=(n, sizes[-1]))  # soft targets in (0, 1)
    else:
        Y = rng.standard_normal((n, sizes[-1]))
    return X, Y, labels


def make_params(rng, sizes=SIZES):
    weights = [rng.standard_normal((y, x)) / np.sqrt(x) for x, y in zip(sizes[:-1], sizes[1:])]
    biases = [0.5 * rng.standard_normal((y, 1)) for y in sizes[1:]]
    return weights, biases


def rel_error(a, b):
    """Return ``||a - b|| / (||a|| + ||b||)`` (0 when both are 0)."""
    den = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)


def numeric_gradient(f, params, h=1e-5):
    """Return central differences of the scalar ``f()`` w.r.t. each array in ``params``.

    Each entry is perturbed in place and restored.
    """
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            fp = f()
            p[i] = old - h
            fm = f()
            p[i] = old
            g[i] = (fp - fm) / (2 * h)
        grads.append(g)
    return grads


def hidden_zs(net, X):
    """Return the hidden-layer pre-activations of ``net`` for ``X`` (feature-major)."""
    zs, a = [], X.T
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = w @ a + b
        zs.append(z)
        a = ACTIVATIONS[net.activation](z)
    return zs


def check_gradients(net, X, Y, masks=None, dropout=0.0, label=""):
    nabla_b, nabla_w = net.backprop(X, Y, masks, dropout)
    num_b = numeric_gradient(lambda: net.batch_cost(X, Y, masks, dropout), net.biases)
    num_w = numeric_gradient(lambda: net.batch_cost(X, Y, masks, dropout), net.weights)
    errs = [rel_error(a, n) for a, n in zip(nabla_b + nabla_w, num_b + num_w)]
    diffs = [float(np.max(np.abs(a - n))) for a, n in zip(nabla_b + nabla_w, num_b + num_w)]
    print(f"\n  grad check {label}: max rel err {max(errs):.2e}, max abs diff {max(diffs):.2e}")
    assert max(errs) < 1e-6


# (cost, output activation, cost_scale) pairs whose delta is the true gradient
COST_OUTPUTS = [
    ("quadratic", "sigmoid", 1.0),
    ("quadratic", "identity", 2.0 / 3.0),   # Keras' mse on 3 outputs
    ("quadratic", "tanh", 1.0),
    ("quadratic", "softmax", 1.0),
    ("cross_entropy", "sigmoid", 1.0),
    ("log_likelihood", "softmax", 0.5),
]


# ---------------------------------------------------------------------------------------------
# (a) finite-difference gradient checks
# ---------------------------------------------------------------------------------------------

# activations whose derivative jumps at 0 (elu's does not: alpha = 1)
KINKED = ("relu", "leaky_relu", "selu")

@pytest.mark.parametrize("cost,out,scale", COST_OUTPUTS)
@pytest.mark.parametrize("act", ["identity", "sigmoid", "tanh", "relu", "gelu", "silu", "elu",
                                 "selu", "leaky_relu", "softplus"])
def test_backprop_matches_finite_differences(act, cost, out, scale):
    rng = np.random.default_rng(12)
    weights, biases = make_params(rng)
    X, Y, _ = make_data(rng, 7, cost=cost)
    net = MatrixNetwork(weights, biases, act, out, cost, cost_scale=scale)
    if act in KINKED:  # the kink must be far from every z the differences visit
        assert min(np.abs(z).min() for z in hidden_zs(net, X)) > 1e-3
    check_gradients(net, X, Y, label=f"{act}/{out}/{cost}")


@pytest.mark.parametrize("cost,out,scale", [COST_OUTPUTS[0], COST_OUTPUTS[4], COST_OUTPUTS[5]])
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "gelu", "silu", "elu", "selu",
                                 "leaky_relu", "softplus"])
def test_backprop_with_dropout_mask_matches_finite_differences(act, cost, out, scale):
    rng = np.random.default_rng(3)
    weights, biases = make_params(rng)
    X, Y, _ = make_data(rng, 6, cost=cost)
    net = MatrixNetwork(weights, biases, act, out, cost, cost_scale=scale)
    masks = [(rng.uniform(size=(6, h)) > 0.4).astype(float) for h in SIZES[1:-1]]
    assert 0 < sum(m.sum() for m in masks) < sum(m.size for m in masks)
    if act in KINKED:
        assert min(np.abs(z).min() for z in hidden_zs(net, X)) > 1e-3
    check_gradients(net, X, Y, masks, dropout=0.4, label=f"dropout {act}/{out}/{cost}")
    # the mask really acts: a dropped unit's incoming weights get no gradient from that example
    nb, nw = net.backprop(X[:1], Y[:1], [m[:1] for m in masks], 0.4)
    dropped = masks[0][0] == 0
    assert np.all(nw[0][dropped] == 0) and np.all(nb[0][dropped] == 0)


@pytest.mark.parametrize("lmbda,l1", [(0.0, 0.0), (0.8, 0.0), (0.0, 0.3), (0.8, 0.3)])
def test_regularized_gradient_matches_total_cost(lmbda, l1):
    rng = np.random.default_rng(5)
    weights, biases = make_params(rng)
    X, Y, _ = make_data(rng, 5, cost="cross_entropy")
    net = MatrixNetwork(weights, biases, "tanh", "sigmoid", "cross_entropy")
    g_b, g_w = net.gradient(X, Y, lmbda, l1, n=len(X))
    num_b = numeric_gradient(lambda: net.total_cost(X, Y, lmbda, l1), net.biases)
    num_w = numeric_gradient(lambda: net.total_cost(X, Y, lmbda, l1), net.weights)
    errs = [rel_error(a, n) for a, n in zip(g_b + g_w, num_b + num_w)]
    print(f"\n  total_cost grad check lmbda={lmbda} l1={l1}: max rel err {max(errs):.2e}")
    assert max(errs) < 1e-6


# ---------------------------------------------------------------------------------------------
# (b) the per-example loop and the matrix form agree
# ---------------------------------------------------------------------------------------------

def test_loop_network_matches_matrix_network():
    rng = np.random.default_rng(7)
    sizes = [5, 8, 4]
    weights, biases = nielsen_init(sizes, rng)
    X, _, labels = make_data(rng, 11, sizes)
    Y = np.eye(sizes[-1])[labels]
    loop = LoopNetwork(weights, biases)
    mat = MatrixNetwork(weights, biases)

    sum_b = [np.zeros_like(b) for b in biases]
    sum_w = [np.zeros_like(w) for w in weights]
    for x, y in zip(X, Y):
        nb, nw = loop.backprop(x.reshape(-1, 1), y.reshape(-1, 1))
        for l in range(len(sizes) - 1):
            sum_b[l] += nb[l]
            sum_w[l] += nw[l]
    mb, mw = mat.backprop(X, Y)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(sum_b + sum_w, mb + mw))
    print(f"\n  loop vs matrix backprop: max abs diff {diff:.2e}")
    assert diff < 1e-12

    out_loop = np.hstack([loop.feedforward(x.reshape(-1, 1)) for x in X]).T
    assert np.max(np.abs(out_loop - mat.feedforward(X))) < 1e-12

    order = rng.permutation(len(X))
    for _ in range(2):  # batches of 4, 4, 3
        loop.sgd_epoch(X, Y, order, 4, 3.0)
        mat.train_epoch(X, Y, order, 4, 3.0)
    diff = max(float(np.max(np.abs(a - b)))
               for a, b in zip(loop.weights + loop.biases, mat.weights + mat.biases))
    print(f"  loop vs matrix after 2 epochs: max abs diff {diff:.2e}")
    assert diff < 1e-12
    assert loop.evaluate(X, labels) == mat.accuracy(X, Y) == mat.accuracy(X, labels)


def test_constructors_copy_their_arguments():
    weights, biases = nielsen_init([2, 3, 1], np.random.RandomState(0))
    saved = [a.copy() for a in weights + biases]
    X, Y = np.ones((2, 2)), np.zeros((2, 1))
    LoopNetwork(weights, biases).sgd_epoch(X, Y, [0, 1], 2, 1.0)
    MatrixNetwork(weights, biases).train_epoch(X, Y, [0, 1], 2, 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(saved, weights + biases))


# ---------------------------------------------------------------------------------------------
# (c) a network small enough to do by hand
# ---------------------------------------------------------------------------------------------

def test_one_one_one_network_by_hand():
    # w1 = 0, b1 = 0, w2 = 2, b2 = -1, x = 2, y = 1, eta = 1, sigmoid, quadratic cost:
    #   z1 = 0, a1 = 1/2;  z2 = 2*(1/2) - 1 = 0, a2 = 1/2;  sigma'(0) = 1/4
    #   delta2 = (a2 - y) sigma'(z2) = -1/2 * 1/4 = -1/8   -> dC/db2 = -1/8, dC/dw2 = -1/16
    #   delta1 = w2 delta2 sigma'(z1) = 2 * -1/8 * 1/4 = -1/16 -> dC/db1 = -1/16, dC/dw1 = -1/8
    #   one step: w1 = 1/8, b1 = 1/16, w2 = 2 + 1/16, b2 = -1 + 1/8
    weights = [np.array([[0.0]]), np.array([[2.0]])]
    biases = [np.array([[0.0]]), np.array([[-1.0]])]
    x, y = np.array([[2.0]]), np.array([[1.0]])
    for net in (LoopNetwork(weights, biases), MatrixNetwork(weights, biases)):
        assert net.feedforward(x)[0, 0] == 0.5
        nb, nw = net.backprop(x, y)
        if isinstance(net, LoopNetwork):
            net.update_mini_batch([x], [y], 1.0)
        else:
            net.train_epoch(x, y, [0], 1, 1.0)
        assert [float(g[0, 0]) for g in nb + nw] == [-1 / 16, -1 / 8, -1 / 8, -1 / 16]
        assert [float(p[0, 0]) for p in net.weights + net.biases] == [1 / 8, 2 + 1 / 16,
                                                                       1 / 16, -1 + 1 / 8]


def test_one_one_one_network_two_examples_with_math():
    w1, b1, w2, b2 = 0.7, -0.3, -1.2, 0.4
    xs, ys, eta = [0.5, -1.5], [1.0, 0.0], 0.9

    def s(z):
        return 1.0 / (1.0 + math.exp(-z))

    gw1 = gb1 = gw2 = gb2 = 0.0
    for x, y in zip(xs, ys):
        z1 = w1 * x + b1
        a1 = s(z1)
        z2 = w2 * a1 + b2
        a2 = s(z2)
        d2 = (a2 - y) * a2 * (1 - a2)
        d1 = w2 * d2 * a1 * (1 - a1)
        gw2, gb2, gw1, gb1 = gw2 + d2 * a1, gb2 + d2, gw1 + d1 * x, gb1 + d1
    expected = [w1 - eta / 2 * gw1, w2 - eta / 2 * gw2, b1 - eta / 2 * gb1, b2 - eta / 2 * gb2]
    out0 = s(w2 * s(w1 * xs[0] + b1) + b2)

    X, Y = np.array(xs).reshape(2, 1), np.array(ys).reshape(2, 1)
    weights, biases = [np.array([[w1]]), np.array([[w2]])], [np.array([[b1]]), np.array([[b2]])]
    loop, mat = LoopNetwork(weights, biases), MatrixNetwork(weights, biases)
    assert abs(loop.feedforward(X[:1].T)[0, 0] - out0) < 1e-15
    assert abs(mat.feedforward(X)[0, 0] - out0) < 1e-15
    loop.sgd_epoch(X, Y, [0, 1], 2, eta)
    mat.train_epoch(X, Y, [0, 1], 2, eta)
    for net in (loop, mat):
        got = [float(p[0, 0]) for p in net.weights + net.biases]
        diff = max(abs(a - b) for a, b in zip(got, expected))
        print(f"\n  1-1-1 by hand, {type(net).__name__}: max abs diff {diff:.2e}")
        assert diff < 1e-15


# ---------------------------------------------------------------------------------------------
# (d) activations and costs at the edges
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_has_no_floating_point_warnings(dtype):
    z = np.array([-1000.0, -100.0, -1.0, 0.0, 1.0, 100.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        s = sigmoid(z)
        sp = sigmoid_prime(z)
        sm = softmax(np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [0.0, 0.0]], dtype=dtype))
    assert s.dtype == dtype and sp.dtype == dtype and sm.dtype == dtype
    assert s[0] < 1e-30 and s[-1] == 1.0 and s[3] == 0.5
    assert np.all(np.isfinite(sp)) and np.all(sp >= 0)
    assert np.array_equal(sm[:2], np.eye(2)) and np.all(sm[2] == 0)


def test_sigmoid_equals_textbook_formula_for_moderate_z():
    z = np.linspace(-30, 30, 1201)
    diff = float(np.max(np.abs(sigmoid(z) - 1.0 / (1.0 + np.exp(-z))) / sigmoid(z)))
    print(f"\n  sigmoid vs 1/(1+exp(-z)) on [-30, 30]: max rel diff {diff:.2e}")
    assert diff <= 1e-15
    assert np.array_equal(sigmoid(2.0), np.float64(1.0 / (1.0 + math.exp(-2.0))))
    h = 1e-6
    num = (sigmoid(z + h) - sigmoid(z - h)) / (2 * h)
    assert np.max(np.abs(sigmoid_prime(z) - num)) < 1e-9


def test_derivative_table_matches_finite_differences():
    z = np.array([-2.5, -0.7, 0.3, 1.9])
    h = 1e-6
    for name, fprime in DERIVATIVES.items():
        num = (ACTIVATIONS[name](z + h) - ACTIVATIONS[name](z - h)) / (2 * h)
        assert np.max(np.abs(fprime(z) - num)) < 1e-8, name
    assert relu_prime(np.array([0.0]))[0] == 0.0
    assert relu_prime(np.array([-0.0, 1e-300]))[1] == 1.0


def test_softmax_columns():
    z = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 5.0]])
    a = softmax(z)
    expected = np.exp(z) / np.exp(z).sum(axis=0)
    assert np.max(np.abs(a - expected)) < 1e-15
    assert np.allclose(softmax(z + 700.0), a, rtol=0, atol=1e-15)


def test_cost_values():
    a = np.array([[0.25, 1.0], [0.5, 0.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert COSTS["quadratic"](a, y) == 0.5 * (0.25 ** 2 + 0.5 ** 2)
    assert COSTS["quadratic"](a, y, 3.0) == 1.5 * (0.25 ** 2 + 0.5 ** 2)
    with np.errstate(all="raise"):  # 0 ln 0 and ln(1 - 1) are handled quietly
        ce = COSTS["cross_entropy"](a, y)
        ll = COSTS["log_likelihood"](a, y)
    assert abs(ce - (-math.log(0.75) - math.log(0.5))) < 1e-15
    assert abs(ll - (-math.log(0.5))) < 1e-15


# ---------------------------------------------------------------------------------------------
# (e) the update rules, written out by hand
# ---------------------------------------------------------------------------------------------

def _net_and_batch(seed=11, m=6):
    rng = np.random.default_rng(seed)
    weights, biases = make_params(rng)
    X, Y, _ = make_data(rng, 2 * m, cost="cross_entropy")
    return weights, biases, X, Y


def _max_diff(xs, ys):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(xs, ys))


def test_l2_and_l1_sgd_step_equal_the_book():
    weights, biases, X, Y = _net_and_batch()
    m, n, eta, lmbda, l1 = 6, 50, 0.5, 5.0, 2.0
    plain = MatrixNetwork(weights, biases, "sigmoid", "sigmoid", "cross_entropy")
    nb, nw = plain.backprop(X[:m], Y[:m])

    net = MatrixNetwork(weights, biases, "sigmoid", "sigmoid", "cross_entropy")
    net.train_epoch(X, Y, np.arange(m), m, eta, lmbda=lmbda, n=n)
    book_w = [(1 - eta * lmbda / n) * w - (eta / m) * g for w, g in zip(weights, nw)]
    book_b = [b - (eta / m) * g for b, g in zip(biases, nb)]
    diff = _max_diff(net.weights + net.biases, book_w + book_b)
    print(f"\n  L2 step vs (1-eta lmbda/n)w - eta/m nabla: max abs diff {diff:.2e}")
    assert diff < 1e-14

    net = MatrixNetwork(weights, biases, "sigmoid", "sigmoid", "cross_entropy")
    net.train_epoch(X, Y, np.arange(m), m, eta, l1=l1, n=n)
    book_w = [w - eta * l1 / n * np.sign(w) - (eta / m) * g for w, g in zip(weights, nw)]
    diff = _max_diff(net.weights + net.biases, book_w + book_b)
    print(f"  L1 step vs w - eta l1/n sign(w) - eta/m nabla: max abs diff {diff:.2e}")
    assert diff < 1e-14


def test_momentum_two_steps_by_hand():
    weights, biases, X, Y = _net_and_batch()
    m, eta, mu = 6, 0.3, 0.9
    probe = MatrixNetwork(weights, biases, "tanh", "sigmoid", "cross_entropy")
    params = [p.copy() for p in weights + biases]
    velocity = [np.zeros_like(p) for p in params]
    for k in range(2):
        probe.weights, probe.biases = [p.copy() for p in params[:3]], [p.copy() for p in params[3:]]
        nb, nw = probe.backprop(X[k * m:(k + 1) * m], Y[k * m:(k + 1) * m])
        grads = [g / m for g in nw + nb]
        velocity = [mu * v - eta * g for v, g in zip(velocity, grads)]
        params = [p + v for p, v in zip(params, velocity)]

    net = MatrixNetwork(weights, biases, "tanh", "sigmoid", "cross_entropy")
    net.train_epoch(X, Y, np.arange(2 * m), m, eta, optimizer="momentum", momentum=mu)
    diff = _max_diff(net.weights + net.biases, params)
    print(f"\n  momentum 2 steps vs hand formula: max abs diff {diff:.2e}")
    assert diff < 1e-14

    # the velocity persists across calls (v = mu v - eta g) until reset_optimizer (v = -eta g)
    v_before = [v.copy() for v in net.velocity_w]
    g_b, g_w = net.gradient(X[:m], Y[:m])
    net.train_epoch(X, Y, np.arange(m), m, eta, optimizer="momentum", momentum=mu)
    assert _max_diff(net.velocity_w, [mu * v - eta * g for v, g in zip(v_before, g_w)]) < 1e-15
    net.reset_optimizer()
    assert net.velocity_w is None
    g_b, g_w = net.gradient(X[:m], Y[:m])
    net.train_epoch(X, Y, np.arange(m), m, eta, optimizer="momentum", momentum=mu)
    assert _max_diff(net.velocity_w + net.velocity_b, [-eta * g for g in g_w + g_b]) < 1e-15


def test_adam_two_steps_by_hand():
    weights, biases, X, Y = _net_and_batch()
    m, lr, b1, b2, eps = 6, 0.01, 0.9, 0.999, 1e-7
    probe = MatrixNetwork(weights, biases, "relu", "softmax", "log_likelihood")
    params = [p.copy() for p in weights + biases]
    mom = [np.zeros_like(p) for p in params]
    vel = [np.zeros_like(p) for p in params]
    Yh = np.eye(3)[np.argmax(Y, axis=1)]
    for t in (1, 2):
        probe.weights, probe.biases = [p.copy() for p in params[:3]], [p.copy() for p in params[3:]]
        nb, nw = probe.backprop(X[(t - 1) * m:t * m], Yh[(t - 1) * m:t * m])
        grads = [g / m for g in nw + nb]
        mom = [mm + (1 - b1) * (g - mm) for mm, g in zip(mom, grads)]
        vel = [vv + (1 - b2) * (g * g - vv) for vv, g in zip(vel, grads)]
        step = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        params = [p - step * mm / (np.sqrt(vv) + eps) for p, mm, vv in zip(params, mom, vel)]

    net = MatrixNetwork(weights, biases, "relu", "softmax", "log_likelihood")
    net.train_epoch(X, Yh, np.arange(m), m, lr, optimizer="adam")      # state kept across
    net.train_epoch(X, Yh, np.arange(m, 2 * m), m, lr, optimizer="adam")  # calls: t = 1, 2
    assert net.adam_t == 2
    diff = _max_diff(net.weights + net.biases, params)
    print(f"\n  adam 2 steps vs hand formula: max abs diff {diff:.2e}")
    assert diff < 1e-14


def test_train_epoch_dropout_calls_mask_fn():
    weights, biases, X, Y = _net_and_batch(m=4)
    rng = np.random.default_rng(0)
    masks = {}
    calls = []

    def mask_fn(batch_index, layer_index, shape):
        calls.append((batch_index, layer_index, shape))
        return masks.setdefault((batch_index, layer_index), (rng.uniform(size=shape) > 0.3) * 1.0)

    net = MatrixNetwork(weights, biases, "sigmoid", "sigmoid", "cross_entropy")
    order = np.arange(7)  # batches of 4 and 3
    net.train_epoch(X, Y, order, 4, 0.5, dropout=0.3, mask_fn=mask_fn)
    assert calls == [(0, 0, (4, 6)), (0, 1, (4, 5)), (1, 0, (3, 6)), (1, 1, (3, 5))]

    ref = MatrixNetwork(weights, biases, "sigmoid", "sigmoid", "cross_entropy")
    for j, idx in enumerate([order[:4], order[4:]]):
        nb, nw = ref.backprop(X[idx], Y[idx], [masks[j, 0], masks[j, 1]], 0.3)
        for l in range(3):
            ref.weights[l] -= 0.5 / len(idx) * nw[l]
            ref.biases[l] -= 0.5 / len(idx) * nb[l]
    assert _max_diff(net.weights + net.biases, ref.weights + ref.biases) < 1e-14


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_float32_stays_float32_and_tracks_float64(optimizer):
    weights, biases, X, Y = _net_and_batch()
    nets = [MatrixNetwork(weights, biases, "tanh", "sigmoid", "cross_entropy", dtype=dt)
            for dt in (np.float32, np.float64)]
    for net in nets:
        net.train_epoch(X, Y, np.arange(12), 5, 0.1, lmbda=0.5, l1=0.1, optimizer=optimizer,
                        momentum=0.9)
    assert all(p.dtype == np.float32 for p in nets[0].weights + nets[0].biases)
    assert nets[0].feedforward(X).dtype == np.float32
    diff = _max_diff(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases)
    print(f"\n  float32 vs float64, {optimizer}: max abs diff {diff:.2e}")
    assert diff < 1e-5


# ---------------------------------------------------------------------------------------------
# evaluation, initialisation, validation
# ---------------------------------------------------------------------------------------------

def test_total_cost_and_accuracy():
    net = MatrixNetwork([np.eye(2)], [np.zeros((2, 1))], "sigmoid", "identity", "quadratic")
    X = np.array([[1.0, 1.0], [0.0, 2.0], [3.0, 0.0]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # outputs equal X: errors (0,1), (0,1), (3,-1) -> 0.5*(1+1+10)/3 = 2; + 0.5*(0.6/3)*2
    assert abs(net.total_cost(X, Y) - 2.0) < 1e-15
    assert abs(net.total_cost(X, Y, lmbda=0.6) - 2.2) < 1e-15
    assert abs(net.total_cost(X, Y, l1=0.6) - 2.4) < 1e-15
    assert net.accuracy(X, Y) == 2  # a tie (1, 1) counts as class 0, the first maximum


def test_nielsen_init_reproduces_the_book_draws():
    sizes = [3, 4, 2]
    np.random.seed(42)
    biases = [np.random.randn(y, 1) for y in sizes[1:]]
    weights = [np.random.randn(y, x) for x, y in zip(sizes[:-1], sizes[1:])]
    np.random.seed(42)
    w, b = nielsen_init(sizes)
    assert all(np.array_equal(p, q) for p, q in zip(w + b, weights + biases))
    np.random.seed(42)
    w, b = nielsen_init(sizes, scale="default")
    assert all(np.array_equal(p, q / np.sqrt(q.shape[1])) for p, q in zip(w, weights))
    w, b = nielsen_init(sizes, np.random.RandomState(42))
    assert all(np.array_equal(p, q) for p, q in zip(w + b, weights + biases))
    w, b = nielsen_init(sizes, np.random.default_rng(0))
    assert [p.shape for p in w + b] == [(4, 3), (2, 4), (4, 1), (2, 1)]


def test_bad_arguments_raise():
    w, b = nielsen_init([3, 4, 2], np.random.RandomState(0))
    net = MatrixNetwork(w, b)
    with pytest.raises(ValueError, match="X must be"):
        net.feedforward(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="Y must be"):
        net.backprop(np.zeros((5, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="softmax"):
        MatrixNetwork(w, b, activation="softmax")
    with pytest.raises(ValueError, match="layer 1"):
        MatrixNetwork([w[0], w[1].T], b)
    with pytest.raises(TypeError, match="dtype"):
        MatrixNetwork(w, b, dtype=np.int32)
    with pytest.raises(ValueError, match="mask_fn"):
        net.train_epoch(np.zeros((2, 3)), np.zeros((2, 2)), [0, 1], 2, 0.1, dropout=0.5)
    with pytest.raises(ValueError, match="dropout mask"):
        net.backprop(np.zeros((2, 3)), np.zeros((2, 2)), [np.ones((4, 2))], 0.5)
