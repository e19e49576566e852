"""fastnn's conv2d, maxpool2d and flatten against golden values from PyTorch.

``tests/data/golden_torch_cnn.npz`` is written by ``tools/make_golden_cnn.py`` (PyTorch,
float64): a small conv net (conv 3x3 valid + ReLU, max-pool 2x2, conv 3x3 stride 2 with Keras'
asymmetric "same" padding + tanh, flatten channels-last, dense + log-softmax, mean NLL over 6
examples); its ``meta`` key (JSON) names the versions, the layouts and the formulas.  Nothing
here needs PyTorch.

Three fastnn backends are compared, each for the forward output and the mean loss before
training, the gradient of the mean loss, and the weights after each of 3 SGD steps and 3 Adam
steps (full batch): the compiled engine (``fastnn._core``), the numpy oracle
(``fastnn.reference_cnn``; Adam replayed on its gradients from DESIGN.md's formula) and the
xp backend with numpy.  A value passes when ``max|fastnn - torch| <= RTOL * max|torch|``.

PyTorch's Adam puts eps outside the bias correction, fastnn's (Keras') inside; step t of
PyTorch's is fastnn's with eps_t = eps sqrt(1 - beta2^t), so Adam runs one step per call.
"""
import json
import math
import os

import numpy as np
import pytest

from fastnn import _core, reference_cnn as RC
from fastnn.backends import xp as xb

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                      "golden_torch_cnn.npz")
RTOL = 1e-10


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as f:
        g = {k: f[k] for k in f.files}
    g["meta"] = json.loads(str(g["meta"]))
    return g


def net_of(g):
    """(layers, acts, W, b, param layers) of the golden net, initial weights, fastnn's layout."""
    meta = g["meta"]
    layers, acts = meta["layers"], meta["acts"]
    have = [l for l in range(len(layers)) if f"W{l}_init" in g]
    W = [g[f"W{l}_init"].copy() if l in have else None for l in range(len(layers))]
    b = [g[f"b{l}_init"].copy() if l in have else None for l in range(len(layers))]
    return layers, acts, W, b, have


def compare(what, got, want):
    """max|got - want| against RTOL * max|want|; prints it; returns whether it passes."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    d = float(np.abs(got - want).max())
    scale = float(np.abs(want).max())
    ok = d <= RTOL * scale
    print(f"  {what:<28} max|fastnn - torch| = {d:.3g}  (scale {scale:.3g})"
          f"{'' if ok else '  FAIL'}")
    return ok


def check_all(results, g):
    """Every (what, golden key, array) of results against the golden value g[golden key]."""
    bad = [f"{what}" for what, gold_key, arr in results if not compare(what, arr, g[gold_key])]
    assert not bad, f"differ from PyTorch: {bad}"


# ---------------------------------------------------------------------------------------------
# the three backends: forward, mean loss, mean gradient, one step of SGD or Adam

def adam_eps(g, t):
    """fastnn's eps at step t that makes its Adam step PyTorch's."""
    a = g["meta"]["optimizers"]["adam"]
    return a["eps"] * math.sqrt(1.0 - a["beta2"] ** t)


class Engine:
    name = "engine"

    def __init__(self, g):
        self.g = g
        self.layers, self.acts, self.W, self.b, self.have = net_of(g)

    def forward(self, X):
        return _core.predict(self.W, self.b, self.acts, X, n_threads=1, layers=self.layers)

    def gradient(self, X, Y):
        gW, gb, c = _core.gradient(self.W, self.b, self.acts, "log_likelihood", X, Y,
                                   layers=self.layers)
        n = X.shape[0]
        return [None if w is None else w / n for w in gW], \
            [None if v is None else v / n for v in gb], c / n

    def _train(self, X, Y, **kw):
        return _core.train(self.W, self.b, X, Y, _core.TrainConfig(
            acts=self.acts, cost="log_likelihood", epochs=1, batch=X.shape[0],
            layers=self.layers, n_threads=1, **kw))

    def sgd_step(self, X, Y, lr):
        self._train(X, Y, eta=lr)

    def adam_step(self, X, Y, t, state):
        a = self.g["meta"]["optimizers"]["adam"]
        self._train(X, Y, eta=a["lr"], optimizer="adam", beta1=a["beta1"], beta2=a["beta2"],
                    eps=adam_eps(self.g, t), step=t - 1, state=state)


class XpNumpy(Engine):
    name = "xp(numpy)"

    def forward(self, X):
        return xb.predict(self.W, self.b, self.acts, X, xp=np, layers=self.layers)

    def gradient(self, X, Y):
        return None                         # the xp backend has no gradient entry point

    def _train(self, X, Y, **kw):
        return xb.train(self.W, self.b, X, Y, _core.TrainConfig(
            acts=self.acts, cost="log_likelihood", epochs=1, batch=X.shape[0],
            layers=self.layers, **kw), xp=np)


class Oracle(Engine):
    name = "oracle"

    def __init__(self, g):
        super().__init__(g)
        self.net = RC.ConvNetwork(self.layers, self.W, self.b, self.acts)
        self.shape = (-1,) + tuple(self.layers[0]["in_shape"])
        self.W, self.b = self.net.weights, self.net.biases

    def forward(self, X):
        return self.net.feedforward(X.reshape(self.shape))

    def gradient(self, X, Y):
        gW, gb = self.net.gradient(X.reshape(self.shape), Y)
        n = X.shape[0]
        return [None if w is None else w / n for w in gW], \
            [None if v is None else v / n for v in gb], self.net.cost_sum(X.reshape(self.shape), Y) / n

    def sgd_step(self, X, Y, lr):
        self.net.sgd_epoch(X.reshape(self.shape), Y, np.arange(X.shape[0]), X.shape[0], lr)

    def adam_step(self, X, Y, t, state):
        # DESIGN.md's Adam (Keras 3's) on the oracle's gradient of the mean loss
        a = self.g["meta"]["optimizers"]["adam"]
        b1, b2, eps = a["beta1"], a["beta2"], adam_eps(self.g, t)
        gW, gb, _ = self.gradient(X, Y)
        lr_t = a["lr"] * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for l in self.have:
            for k, (p, grad) in enumerate(((self.net.weights, gW), (self.net.biases, gb))):
                m, v = state[0][l][k], state[1][l][k]
                m += (1 - b1) * (grad[l] - m)
                v += (1 - b2) * (grad[l] * grad[l] - v)
                p[l] = p[l] - lr_t * m / (np.sqrt(v) + eps)


BACKENDS = [Engine, Oracle, XpNumpy]


# ---------------------------------------------------------------------------------------------
# the tests

def test_golden_file_describes_itself(golden):
    meta = golden["meta"]
    assert meta["dtype"] == "float64" and "torch" in meta["versions"]
    assert [l and l["kind"] for l in meta["layers"]] == ["conv2d", "maxpool2d", "conv2d",
                                                         "flatten", None]
    # the second conv's padding is Keras' asymmetric "same" (rows 0 before, 1 after)
    assert tuple(meta["layers"][2]["geom"]) == (3, 3, 2, 2, 0, 1)
    assert golden["X"].dtype == np.float64 and golden["W0_init"].shape == (3, 3, 2, 3)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_forward_loss_and_gradient_match_torch(golden, backend):
    be = backend(golden)
    X, Y = golden["X"], golden["Y"]
    print(f"\n{be.name}:")
    results = [("output", "out_init", be.forward(X))]
    grads = be.gradient(X, Y)
    if grads is not None:
        gW, gb, loss = grads
        results.append(("loss", "loss_init", np.array(loss)))
        for l in be.have:
            results += [(f"dC/dW{l}", f"gW{l}", gW[l]), (f"dC/db{l}", f"gb{l}", gb[l])]
    check_all(results, golden)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_steps_match_torch(golden, backend, optimizer):
    be = backend(golden)
    X, Y = golden["X"], golden["Y"]
    steps = golden["meta"]["optimizers"][optimizer]["steps"]
    state = _core.new_state("adam", be.W, be.b) if optimizer == "adam" else None
    print(f"\n{be.name}, {optimizer}:")
    results = []
    for t in range(1, steps + 1):
        if optimizer == "sgd":
            be.sgd_step(X, Y, golden["meta"]["optimizers"]["sgd"]["lr"])
        else:
            be.adam_step(X, Y, t, state)
        for l in be.have:
            results += [(f"W{l} after step {t}", f"{optimizer}/W{l}_step{t}", be.W[l].copy()),
                        (f"b{l} after step {t}", f"{optimizer}/b{l}_step{t}", be.b[l].copy())]
    moved = float(np.abs(be.W[0] - golden["W0_init"]).max())
    assert moved > 1e-3, moved
    check_all(results, golden)


def test_a_perturbed_golden_value_fails(golden):
    """The comparison catches a golden value off by a relative 1e-8 (and a wrong Adam eps)."""
    be = Engine(golden)
    gW, _, _ = be.gradient(golden["X"], golden["Y"])
    assert compare("dC/dW2", gW[2], golden["gW2"])
    bad = golden["gW2"].copy()
    bad.flat[5] += 1e-8 * float(np.abs(bad).max())
    assert not compare("dC/dW2 (perturbed)", gW[2], bad)
    # Adam with PyTorch's eps taken as fastnn's, unconverted: off by far more than RTOL
    state = _core.new_state("adam", be.W, be.b)
    a = golden["meta"]["optimizers"]["adam"]
    be._train(golden["X"], golden["Y"], eta=a["lr"], optimizer="adam", beta1=a["beta1"],
              beta2=a["beta2"], eps=a["eps"], step=0, state=state)
    assert not compare("W4 after step 1 (eps as is)", be.W[4], golden["adam/W4_step1"])
