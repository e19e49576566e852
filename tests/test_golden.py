"""fastnn against golden values from real Keras 3: the outside oracle of issue 16.

``tests/data/golden_keras.npz`` is written by ``tools/make_golden.py`` (Keras 3 with the torch
backend, float64); its ``meta`` key (JSON) names the versions, the layout, the formulas and
every case. Nothing here needs Keras or PyTorch.

- ``act/<a>``: Dense(5, a) -> Dense(4, a) -> Dense(3, softmax), categorical crossentropy,
  SGD(0.1), 3 full-batch steps; and ``a`` and ``a'`` on a grid of 40 points in [-6, 6].
- ``opt/<o>``: Dense(5, tanh) -> Dense(3, softmax), categorical crossentropy, 4 full-batch
  steps of each Keras optimizer; ``opt/adam_mse``: Dense(4, tanh) -> Dense(2, linear), mse.

Each case is checked on two backends: the compiled engine (``fastnn._core``) and the numpy
oracle (``fastnn.reference``), for the forward output and mean loss before training, the
gradient of the mean loss, the weights after every saved step, and the activation grid. All
in float64; a value passes when ``max|fastnn - keras| <= RTOL * max|keras|`` (per array).

The engine and the oracle are reached only through the adapters at the top of this file,
so a change of ``_core.train``'s signature is one edit here.
"""
import json
import os

import numpy as np
import pytest

from fastnn import _core, reference

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden_keras.npz")
RTOL = 1e-10


# ---------------------------------------------------------------------------------------------
# adapters: the only places that call the engine and the oracle

# Optimizer state slots, in order, and the value each starts at ('x' names a hyperparameter).
STATE_SLOTS = {
    "sgd": (),
    "momentum": (0.0,),                     # velocity
    "adam": (0.0, 0.0),                     # m, v
    "rmsprop": (0.0, 0.0),                  # mean square, momentum
    "adagrad": ("initial_accumulator",),    # accumulator
}


def new_state(optimizer, hyper, W, b):
    """A fresh optimizer state for (W, b): per slot, one (W-shaped, b-shaped) pair per layer."""
    slots = []
    for init in STATE_SLOTS[optimizer]:
        fill = hyper[init] if isinstance(init, str) else init
        slots.append([(np.full_like(w, fill), np.full_like(x, fill)) for w, x in zip(W, b)])
    return {"slots": slots, "t": 0}


def run_engine(W, b, acts, cost, X, Y, steps, optimizer, hyper, cost_scale=1.0, state=None):
    """Train W (list of (n_out, n_in)) and b (list of flat (n_out,)) in place for ``steps``
    full-batch steps in ONE engine call. ``hyper``: eta and the optimizer's hyperparameters in
    fastnn's names (momentum, beta1, beta2, eps, rho, initial_accumulator). ``state``: what a
    previous call returned, to continue, or None for a fresh optimizer. Returns the state."""
    missing = sorted({a for a in acts if a not in _core.ACTIVATIONS})
    if missing:
        pytest.fail(f"the engine has no activation {missing} yet")
    if optimizer not in _core.OPTIMIZERS:
        pytest.fail(f"the engine has no optimizer {optimizer!r} yet")
    if state is None:
        state = new_state(optimizer, hyper, W, b)
    kw = {k: v for k, v in hyper.items() if k != "initial_accumulator"}
    res = _core.train(W, b, X, Y, _core.TrainConfig(
        acts=list(acts), cost=cost, epochs=steps, batch=X.shape[0], cost_scale=cost_scale,
        optimizer=optimizer, step=state["t"], state=state["slots"], n_threads=1, **kw))
    state["t"] = int(res["step"])
    return state


def engine_forward(W, b, acts, X):
    """(n, n_out) network output, computed by the engine."""
    missing = sorted({a for a in acts if a not in _core.ACTIVATIONS})
    if missing:
        pytest.fail(f"the engine has no activation {missing} yet")
    return _core.predict(W, b, list(acts), X, n_threads=1)


def engine_gradient(W, b, acts, cost, X, Y, cost_scale=1.0):
    """(gW, gb, mean cost): the gradient of the mean cost over (X, Y), by the engine."""
    missing = sorted({a for a in acts if a not in _core.ACTIVATIONS})
    if missing:
        pytest.fail(f"the engine has no activation {missing} yet")
    gW, gb, c = _core.gradient(W, b, list(acts), cost, X, Y, cost_scale)
    n = X.shape[0]
    return [g / n for g in gW], [g / n for g in gb], c / n


def reference_net(W, b, acts, cost, cost_scale=1.0):
    """fastnn.reference.MatrixNetwork for the layers ``acts`` (hidden layers share one)."""
    hidden = set(acts[:-1])
    assert len(hidden) <= 1, acts
    act = hidden.pop() if hidden else "identity"
    for a in (act, acts[-1]):
        if a not in reference.ACTIVATIONS:
            pytest.fail(f"fastnn.reference has no activation {a!r} yet")
    return reference.MatrixNetwork([w.copy() for w in W], [x.reshape(-1, 1) for x in b],
                                   activation=act, output_activation=acts[-1], cost=cost,
                                   cost_scale=cost_scale, dtype=np.float64)


def run_reference(net, X, Y, steps, optimizer, hyper):
    """``steps`` full-batch steps of the oracle (its optimizer state stays on ``net``)."""
    if optimizer not in reference.OPTIMIZERS:
        pytest.fail(f"fastnn.reference has no optimizer {optimizer!r} yet")
    kw = dict(hyper)
    eta = kw.pop("eta")
    order = np.arange(X.shape[0])
    for _ in range(steps):
        net.train_epoch(X, Y, order, X.shape[0], eta, optimizer=optimizer, **kw)
    return [w.copy() for w in net.weights], [x.ravel().copy() for x in net.biases]


def reference_activation(name, z):
    """(f(z), f'(z)) from the oracle's activation tables."""
    if name not in reference.ACTIVATIONS or name not in reference.DERIVATIVES:
        pytest.fail(f"fastnn.reference has no activation {name!r} yet")
    return reference.ACTIVATIONS[name](z), reference.DERIVATIVES[name](z)


def engine_activation(name, z):
    """(f(z), f'(z)) from the engine: f by a 1 -> 1 layer over the examples z; f' by a
    1 -> len(z) -> 1 net whose hidden layer gets z as its inputs (W0 = z, x = 1) and whose
    identity output sums them with weight 1, with the quadratic cost's target out - 1, so
    the hidden deltas, i.e. the bias gradient gb0, are f'(z)."""
    f = engine_forward([np.ones((1, 1))], [np.zeros(1)], [name], z.reshape(-1, 1))[:, 0]
    W = [z.reshape(-1, 1).copy(), np.ones((1, z.size))]
    b = [np.zeros(z.size), np.zeros(1)]
    x = np.ones((1, 1))
    out = engine_forward(W, b, [name, "identity"], x)
    _, gb, _ = engine_gradient(W, b, [name, "identity"], "quadratic", x, out - 1.0)
    return f, gb[0]


# ---------------------------------------------------------------------------------------------
# the golden file

DATA = np.load(GOLDEN, allow_pickle=False)
META = json.loads(str(DATA["meta"]))
CASES = META["cases"]
ACT_CASES = sorted(c for c in CASES if c.startswith("act/"))
OPT_CASES = sorted(c for c in CASES if c.startswith("opt/"))
BACKENDS = ("engine", "reference")


def params(case, suffix):
    L = len(CASES[case]["sizes"]) - 1
    return ([DATA[f"{case}/W{l}{suffix}"].copy() for l in range(L)],
            [DATA[f"{case}/b{l}{suffix}"].copy() for l in range(L)])


def close(what, got, want, rtol=RTOL):
    """Assert max|got - want| <= rtol * max|want|; print the max difference."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, Keras {want.shape}"
    diff = float(np.max(np.abs(got - want)))
    scale = max(float(np.max(np.abs(want))), 1e-300)
    print(f"{what}: max |fastnn - keras| = {diff:.3g} (relative {diff / scale:.3g})")
    assert diff <= rtol * scale, (f"{what}: fastnn differs from Keras by {diff:.3g} "
                                  f"(relative {diff / scale:.3g} > {rtol:g})")


def close_params(what, got, case, suffix):
    W, b = params(case, suffix)
    for l, (w, x) in enumerate(zip(*got)):
        close(f"{what} W{l}", w, W[l])
        close(f"{what} b{l}", x, b[l])


def setup(case):
    c = CASES[case]
    X, Y = DATA[f"{case}/X"].copy(), DATA[f"{case}/Y"].copy()
    return c, X, Y, c["fastnn_activations"], c["fastnn_cost"], c["cost_scale"]


# ---------------------------------------------------------------------------------------------

def test_meta():
    """The file describes itself: versions, float64, the layout, every activation and
    optimizer of issue 16."""
    print(json.dumps(META["versions"]))
    assert META["floatx"] == "float64"
    assert {"keras", "torch", "numpy"} <= set(META["versions"])
    assert "TRANSPOSE" in META["layout"]
    acts = {CASES[c]["keras_activation"] for c in ACT_CASES}
    assert acts == {"linear", "sigmoid", "tanh", "relu", "gelu", "silu", "elu", "selu",
                    "leaky_relu", "softplus"}
    opts = {CASES[c]["fastnn_optimizer"] for c in OPT_CASES}
    assert opts == {"sgd", "momentum", "adam", "rmsprop", "adagrad"}
    for k in DATA.files:
        assert k == "meta" or DATA[k].dtype == np.float64, k


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ACT_CASES + OPT_CASES)
def test_forward_and_gradient(case, backend):
    """Output, mean loss and gradient of the mean loss at the initial weights."""
    c, X, Y, acts, cost, cost_scale = setup(case)
    W, b = params(case, "_init")
    if backend == "engine":
        out = engine_forward(W, b, acts, X)
        gW, gb, loss = engine_gradient(W, b, acts, cost, X, Y, cost_scale)
    else:
        net = reference_net(W, b, acts, cost, cost_scale)
        out = net.feedforward(X)
        g_b, gW = net.gradient(X, Y)
        gb = [g.ravel() for g in g_b]
        loss = net.batch_cost(X, Y) / X.shape[0]
    close(f"{case} out", out, DATA[f"{case}/out_init"])
    close(f"{case} loss", loss, DATA[f"{case}/loss_init"])
    for l in range(len(W)):
        close(f"{case} gW{l}", gW[l], DATA[f"{case}/gW{l}"])
        close(f"{case} gb{l}", gb[l], DATA[f"{case}/gb{l}"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ACT_CASES)
def test_activation_training(case, backend):
    """3 full-batch SGD steps (lr 0.1) through each activation."""
    c, X, Y, acts, cost, cost_scale = setup(case)
    W, b = params(case, "_init")
    opt, hyper = c["fastnn_optimizer"], c["fastnn_hyper"]
    if backend == "engine":
        run_engine(W, b, acts, cost, X, Y, c["steps"], opt, hyper, cost_scale)
        got = (W, b)
    else:
        got = run_reference(reference_net(W, b, acts, cost, cost_scale), X, Y, c["steps"],
                            opt, hyper)
    close_params(f"{case} after {c['steps']} steps", got, case, "_after")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ACT_CASES)
def test_activation_grid(case, backend):
    """f(z) and f'(z) on 40 points of [-6, 6] against Keras' function and torch autograd."""
    name = CASES[case]["fastnn_activation"]
    z = DATA[f"{case}/grid_z"].copy()
    f, df = (engine_activation if backend == "engine" else reference_activation)(name, z)
    close(f"{case} f(z)", f, DATA[f"{case}/grid_f"])
    close(f"{case} f'(z)", df, DATA[f"{case}/grid_df"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", OPT_CASES)
def test_optimizer_steps(case, backend):
    """The weights after each of 4 full-batch steps, one step per call with the optimizer
    state carried over; for the engine also all 4 steps in one call."""
    c, X, Y, acts, cost, cost_scale = setup(case)
    opt, hyper = c["fastnn_optimizer"], c["fastnn_hyper"]
    W, b = params(case, "_init")
    if backend == "engine":
        state = None
        for k in range(1, c["steps"] + 1):
            state = run_engine(W, b, acts, cost, X, Y, 1, opt, hyper, cost_scale, state)
            close_params(f"{case} step {k}", (W, b), case, f"_step{k}")
        W, b = params(case, "_init")
        run_engine(W, b, acts, cost, X, Y, c["steps"], opt, hyper, cost_scale)
        close_params(f"{case} {c['steps']} steps in one call", (W, b), case,
                     f"_step{c['steps']}")
    else:
        net = reference_net(W, b, acts, cost, cost_scale)
        for k in range(1, c["steps"] + 1):
            got = run_reference(net, X, Y, 1, opt, hyper)
            close_params(f"{case} step {k}", got, case, f"_step{k}")
