"""Write tests/data/golden_keras.npz: golden values from real Keras 3 (torch backend, float64).

The outside oracle of issue 16. Small dense networks with fixed, seeded weights and data are
built in Keras 3, trained for a few full-batch steps, and everything needed to replay them is
saved, so that ``tests/test_golden.py`` can compare fastnn against Keras without Keras or
PyTorch installed.

Cases (``meta["cases"]`` describes each one):

- ``act/<name>`` for every activation (``linear sigmoid tanh relu gelu silu elu selu
  leaky_relu softplus``): Dense(5, name) -> Dense(4, name) -> Dense(3, softmax), 6 inputs,
  8 examples, categorical crossentropy on one-hot targets, SGD(learning_rate=0.1), 3
  full-batch steps (batch_size 8). Saved: the initial weights, the data, the forward output
  and the loss before training, the gradient of the mean loss at the initial weights, and the
  weights after the 3 steps. Plus the activation and its derivative on a grid of ``z``.
- ``opt/<name>`` for every optimizer (SGD, SGD with momentum, Adam, RMSprop, RMSprop with
  momentum, Adagrad, all with non-default hyperparameters): Dense(5, tanh) -> Dense(3,
  softmax), 6 inputs, 8 examples, categorical crossentropy, 4 full-batch steps, weights after
  every step; and ``opt/adam_mse``: Dense(4, tanh) -> Dense(2, linear), mse loss, Adam.

Layout of the arrays (fastnn's, see DESIGN.md "Conventions"): ``W<l>`` is ``(n_out, n_in)``,
the TRANSPOSE of Keras' kernel ``(n_in, n_out)``; ``b<l>`` is ``(n_out,)``; ``X`` is
``(n, n_in)``, ``Y`` is ``(n, n_out)``. The gradients ``gW<l>``, ``gb<l>`` are those of the
mean loss over the 8 examples (what Keras' optimizers receive, and fastnn's ``g``). Keys:

    meta                          JSON string (versions, layout, formulas, every case)
    act/<a>/X, Y                  data
    act/<a>/W<l>_init, b<l>_init  weights before training, l = 0, 1, 2
    act/<a>/out_init              model(X) before training, (8, 3)
    act/<a>/loss_init             mean loss before training, shape ()
    act/<a>/gW<l>, gb<l>          gradient of the mean loss at the initial weights
    act/<a>/W<l>_after, b<l>_after  weights after the 3 SGD steps
    act/<a>/grid_z, grid_f, grid_df the activation f(z) and f'(z) (torch autograd), 40 points
    opt/<o>/X, Y, W<l>_init, b<l>_init, out_init, loss_init, gW<l>, gb<l>   as above, l = 0, 1
    opt/<o>/W<l>_step<k>, b<l>_step<k>   weights after step k = 1..4

Everything is float64 (``keras.config.set_floatx("float64")``, set before any model or
optimizer exists, so Keras' learning-rate variable is float64 too). The script checks, before
writing, that (1) a plain-PyTorch forward/backward of the same nets gives the same outputs and
gradients as Keras, and (2) the optimizer formulas written in ``meta["formulas"]``, replayed in
numpy on Keras' own gradients, give Keras' weights, so the formulas in the file are the ones
Keras ran. It also checks that every hidden layer gets both negative and positive inputs, and
that the softmax outputs stay inside Keras' clipping range [1e-7, 1 - 1e-7].

Usage (needs keras >= 3 and torch; about 10 s on one core)::

    KERAS_BACKEND=torch python tools/make_golden.py [--out tests/data/golden_keras.npz]
"""

import argparse
import io
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "data", "golden_keras.npz")

N_EXAMPLES = 8
N_IN = 6
SEED = 20260

# Keras name -> fastnn name (the engine's table; "linear" is Keras' identity)
ACTIVATIONS = {
    "linear": "identity", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu",
    "gelu": "gelu", "silu": "silu", "elu": "elu", "selu": "selu",
    "leaky_relu": "leaky_relu", "softplus": "softplus",
}

ACT_FORMULAS = {
    "linear": "z",
    "sigmoid": "1/(1+exp(-z))",
    "tanh": "tanh(z)",
    "relu": "max(z, 0)",
    "gelu": "0.5 z (1 + erf(z/sqrt(2)))  (exact, approximate=False)",
    "silu": "z sigmoid(z)  (Keras alias: swish)",
    "elu": "z if z > 0 else alpha (exp(z) - 1), alpha = 1",
    "selu": "scale z if z > 0 else scale alpha (exp(z) - 1), "
            "alpha = 1.6732632423543772848170429916717, "
            "scale = 1.0507009873554804934193349852946 (torch's constants)",
    "leaky_relu": "z if z > 0 else 0.2 z  (Keras 3 default negative_slope = 0.2)",
    "softplus": "log(1 + exp(z))",
    "softmax": "exp(z - max z) / sum exp(z - max z) over the features of one example",
}

# name -> (Keras class, Keras kwargs, fastnn optimizer name, fastnn hyperparameters)
OPTIMIZERS = {
    "sgd": ("SGD", {"learning_rate": 0.05}, "sgd", {"eta": 0.05}),
    "sgd_mom": ("SGD", {"learning_rate": 0.05, "momentum": 0.9},
                "momentum", {"eta": 0.05, "momentum": 0.9}),
    "adam": ("Adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-7},
             "adam", {"eta": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-7}),
    "rmsprop": ("RMSprop", {"learning_rate": 0.01, "rho": 0.8, "epsilon": 1e-7},
                "rmsprop", {"eta": 0.01, "rho": 0.8, "momentum": 0.0, "eps": 1e-7}),
    "rmsprop_mom": ("RMSprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5,
                                "epsilon": 1e-7},
                    "rmsprop", {"eta": 0.01, "rho": 0.8, "momentum": 0.5, "eps": 1e-7}),
    "adagrad": ("Adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.1,
                            "epsilon": 1e-7},
                "adagrad", {"eta": 0.05, "initial_accumulator": 0.1, "eps": 1e-7}),
}

OPT_FORMULAS = {
    "sgd": "w -= lr g",
    "momentum": "v = momentum v - lr g; w += v  (v starts at 0)",
    "adam": "t += 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; "
            "w -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps)  (m, v start at 0)",
    "rmsprop": "v = rho v + (1-rho) g^2; inc = lr g / sqrt(v + eps)  (eps INSIDE the sqrt); "
               "momentum == 0: w -= inc; momentum > 0: u = momentum u + inc; w -= u  "
               "(v, u start at 0)",
    "adagrad": "a += g^2; w -= lr g / sqrt(a + eps)  (eps INSIDE the sqrt; a starts at "
               "initial_accumulator for every weight and bias)",
}

GRID_Z = np.linspace(-6.0, 6.0, 40)   # 40 points: no z == 0, far from softplus' threshold 20


# ---------------------------------------------------------------------------------------------
# seeded initial weights and data (fastnn layout)

def init_weights(rng, sizes, scale=1.5):
    """W[l] (n_out, n_in) uniform in +-scale/sqrt(n_in), b[l] (n_out,) uniform in +-0.5."""
    W = [rng.uniform(-1, 1, (o, i)) * scale / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    b = [rng.uniform(-0.5, 0.5, o) for o in sizes[1:]]
    return W, b


def make_data(rng, n_out, regression=False):
    """X (8, 6) spread over [-3, 3] (each column holds both signs); one-hot Y or real Y."""
    X = rng.uniform(-3.0, 3.0, (N_EXAMPLES, N_IN))
    if regression:
        return X, rng.uniform(-1.0, 1.0, (N_EXAMPLES, n_out))
    labels = np.arange(N_EXAMPLES) % n_out
    rng.shuffle(labels)
    return X, np.eye(n_out)[labels]


# ---------------------------------------------------------------------------------------------
# Keras

def keras_model(sizes, acts, W, b):
    import keras
    layers = [keras.Input((sizes[0],), dtype="float64")]
    layers += [keras.layers.Dense(n, activation=a) for n, a in zip(sizes[1:], acts)]
    model = keras.Sequential(layers)
    model.set_weights([x for w, bb in zip(W, b) for x in (w.T, bb)])   # kernel = W.T
    return model


def keras_weights(model):
    """(W, b) in fastnn layout from a Keras model."""
    ws = model.get_weights()
    return [np.array(k.T) for k in ws[0::2]], [np.array(x) for x in ws[1::2]]


def keras_loss(name):
    import keras
    return {"categorical_crossentropy": keras.losses.CategoricalCrossentropy(),
            "mse": keras.losses.MeanSquaredError()}[name]


def keras_forward_grad(model, loss_name, X, Y):
    """(model(X), mean loss, gW, gb) through torch autograd, as Keras' torch trainer does."""
    import torch
    out = model(torch.tensor(X))
    loss = keras_loss(loss_name)(torch.tensor(Y), out)
    params = [v.value for v in model.trainable_weights]
    grads = torch.autograd.grad(loss, params)
    grads = [g.detach().cpu().numpy() for g in grads]
    return (out.detach().cpu().numpy(), float(loss.detach().cpu()),
            [g.T.copy() for g in grads[0::2]], list(grads[1::2]))


def keras_optimizer(cls, kwargs):
    import keras
    return getattr(keras.optimizers, cls)(**kwargs)


def train_keras(model, loss_name, optimizer, X, Y, steps):
    """Full-batch train_on_batch `steps` times; the fastnn-layout weights after each step."""
    model.compile(optimizer=optimizer, loss=keras_loss(loss_name))
    after = []
    for _ in range(steps):
        model.train_on_batch(X, Y)
        after.append(keras_weights(model))
    return after


# ---------------------------------------------------------------------------------------------
# independent checks: plain PyTorch forward/backward, numpy replay of the optimizer formulas

def torch_forward_grad(sizes, acts, W, b, loss_name, X, Y):
    import torch
    import torch.nn.functional as F
    funcs = {
        "linear": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu,
        "gelu": lambda z: 0.5 * z * (1 + torch.erf(z / np.sqrt(2.0))),
        "silu": lambda z: z * torch.sigmoid(z),
        "elu": lambda z: torch.where(z > 0, z, torch.expm1(z)),
        "selu": lambda z: 1.0507009873554804934193349852946 * torch.where(
            z > 0, z, 1.6732632423543772848170429916717 * torch.expm1(z)),
        "leaky_relu": lambda z: torch.where(z > 0, z, 0.2 * z),
        "softplus": lambda z: torch.log1p(torch.exp(z)),
        "softmax": lambda z: torch.softmax(z, dim=1),
    }
    Wt = [torch.tensor(w, requires_grad=True) for w in W]
    bt = [torch.tensor(x, requires_grad=True) for x in b]
    a = torch.tensor(X)
    for w, bb, act in zip(Wt, bt, acts):
        a = funcs[act](a @ w.T + bb)
    y = torch.tensor(Y)
    if loss_name == "mse":
        loss = ((a - y) ** 2).mean()
    else:
        loss = -(y * torch.log(a)).sum(dim=1).mean()
    loss.backward()
    return (a.detach().numpy(), float(loss.detach()), [w.grad.numpy() for w in Wt],
            [x.grad.numpy() for x in bt])


def replay_optimizer(opt, hyper, W, b, grad_fn, steps):
    """The formulas of OPT_FORMULAS in numpy; grad_fn(W, b) -> (gW, gb)."""
    W = [w.copy() for w in W]
    b = [x.copy() for x in b]
    params = W + b
    fill = hyper.get("initial_accumulator", 0.0)
    s1 = [np.full_like(p, fill) for p in params]
    s2 = [np.zeros_like(p) for p in params]
    lr = hyper["eta"]
    after = []
    for t in range(1, steps + 1):
        gW, gb = grad_fn(W, b)
        for p, g, u, v in zip(params, gW + gb, s1, s2):
            if opt == "sgd":
                p -= lr * g
            elif opt == "momentum":
                u[...] = hyper["momentum"] * u - lr * g
                p += u
            elif opt == "adam":
                b1, b2 = hyper["beta1"], hyper["beta2"]
                u[...] = b1 * u + (1 - b1) * g
                v[...] = b2 * v + (1 - b2) * g * g
                p -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * u / (np.sqrt(v) + hyper["eps"])
            elif opt == "rmsprop":
                rho = hyper["rho"]
                u[...] = rho * u + (1 - rho) * g * g
                inc = lr * g / np.sqrt(u + hyper["eps"])
                if hyper["momentum"] > 0:
                    v[...] = hyper["momentum"] * v + inc
                    p -= v
                else:
                    p -= inc
            elif opt == "adagrad":
                u += g * g
                p -= lr * g / np.sqrt(u + hyper["eps"])
        after.append(([w.copy() for w in W], [x.copy() for x in b]))
    return after


def max_rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def check(what, a, b, tol=1e-12):
    err = max_rel(a, b)
    if not err <= tol:
        raise SystemExit(f"make_golden: {what}: Keras and the independent check differ by "
                         f"{err:.3g} (relative), more than {tol:g}")
    return err


def check_ranges(tag, acts, W, b, X):
    """Each hidden layer's pre-activations hold both signs; softmax stays unclipped."""
    a = X
    for l, (w, bb, act) in enumerate(zip(W, b, acts)):
        z = a @ w.T + bb
        if l < len(W) - 1:
            neg = float(np.mean(z < 0))
            if not 0.15 <= neg <= 0.85:
                raise SystemExit(f"make_golden: {tag}: layer {l} has {neg:.0%} negative inputs")
            if np.max(np.abs(z)) > 15:
                raise SystemExit(f"make_golden: {tag}: layer {l} has |z| > 15")
        a = forward_act(act, z)
    if acts[-1] == "softmax" and not (a.min() > 1e-6 and a.max() < 1 - 1e-6):
        raise SystemExit(f"make_golden: {tag}: softmax output reaches Keras' clipping range")


def forward_act(act, z):
    import torch
    from keras import activations
    return activations.get(act)(torch.tensor(z)).detach().numpy()


def activation_grid(name):
    import torch
    from keras import activations
    z = torch.tensor(GRID_Z, requires_grad=True)
    f = activations.get(name)(z)
    (df,) = torch.autograd.grad(f.sum(), z)
    return f.detach().numpy(), df.numpy()


# ---------------------------------------------------------------------------------------------

def keep_float64():
    """Make Keras' torch backend compute float64 ops in float64.

    Keras 3 promotes dtypes as JAX does without x64: ``dtypes.result_type`` maps float64 to
    float32 on every backend but TensorFlow (``BIT64_TO_BIT32_DTYPE``), so with the torch
    backend ``ops.matmul`` of two float64 tensors (Dense layers) casts both to float32 and the
    product back to float64, even with floatx float64: outputs agree with float64 to about
    1e-7 only. This keeps float64 as float64; nothing else of Keras changes, and the plain
    PyTorch check in ``build`` confirms every value is float64-exact."""
    from keras.src.backend.common import dtypes
    if dtypes.BIT64_TO_BIT32_DTYPE.get("float64") != "float64":
        dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
        return True
    return False


def build(verbose=True):
    import keras
    import torch
    keras.config.set_floatx("float64")
    patched = keep_float64()
    torch.set_num_threads(1)
    keras.utils.set_random_seed(SEED)
    arrays = {}
    cases = {}
    checks = {}

    def put(prefix, name, value):
        arrays[f"{prefix}/{name}"] = np.asarray(value, dtype=np.float64)

    def put_params(prefix, suffix, W, b):
        for l, (w, x) in enumerate(zip(W, b)):
            put(prefix, f"W{l}{suffix}", w)
            put(prefix, f"b{l}{suffix}", x)

    # -- activations -----------------------------------------------------------------------
    sizes = [N_IN, 5, 4, 3]
    for k, (act, fnn_act) in enumerate(ACTIVATIONS.items()):
        prefix = f"act/{act}"
        rng = np.random.default_rng(SEED + k)
        W, b = init_weights(rng, sizes)
        X, Y = make_data(rng, sizes[-1])
        acts = [act, act, "softmax"]
        check_ranges(prefix, acts, W, b, X)
        model = keras_model(sizes, acts, W, b)
        out, loss, gW, gb = keras_forward_grad(model, "categorical_crossentropy", X, Y)
        t_out, t_loss, t_gW, t_gb = torch_forward_grad(sizes, acts, W, b,
                                                        "categorical_crossentropy", X, Y)
        errs = [check(f"{prefix} out", out, t_out), check(f"{prefix} loss", loss, t_loss)]
        errs += [check(f"{prefix} gW{l}", g, t) for l, (g, t) in enumerate(zip(gW, t_gW))]
        errs += [check(f"{prefix} gb{l}", g, t) for l, (g, t) in enumerate(zip(gb, t_gb))]
        steps = 3
        after = train_keras(model, "categorical_crossentropy",
                            keras_optimizer("SGD", {"learning_rate": 0.1}), X, Y, steps)
        replay = replay_optimizer("sgd", {"eta": 0.1}, W, b, lambda W_, b_: torch_forward_grad(
            sizes, acts, W_, b_, "categorical_crossentropy", X, Y)[2:], steps)
        errs += [check(f"{prefix} step {s + 1}", np.concatenate([p.ravel() for p in
                       after[s][0] + after[s][1]]), np.concatenate(
                       [p.ravel() for p in replay[s][0] + replay[s][1]]))
                 for s in range(steps)]
        put(prefix, "X", X)
        put(prefix, "Y", Y)
        put_params(prefix, "_init", W, b)
        put(prefix, "out_init", out)
        put(prefix, "loss_init", loss)
        for l, (g, gbl) in enumerate(zip(gW, gb)):
            put(prefix, f"gW{l}", g)
            put(prefix, f"gb{l}", gbl)
        put_params(prefix, "_after", *after[-1])
        f, df = activation_grid(act)
        put(prefix, "grid_z", GRID_Z)
        put(prefix, "grid_f", f)
        put(prefix, "grid_df", df)
        cases[prefix] = {
            "kind": "activation", "keras_activation": act, "fastnn_activation": fnn_act,
            "formula": ACT_FORMULAS[act], "sizes": sizes,
            "keras_activations": acts, "fastnn_activations": [fnn_act, fnn_act, "softmax"],
            "loss": "categorical_crossentropy", "fastnn_cost": "log_likelihood",
            "cost_scale": 1.0, "keras_optimizer": {"class": "SGD", "learning_rate": 0.1},
            "fastnn_optimizer": "sgd", "fastnn_hyper": {"eta": 0.1}, "steps": steps,
            "batch_size": N_EXAMPLES, "saved_after": "W<l>_after, b<l>_after (after step 3)",
        }
        checks[prefix] = max(errs)

    # -- optimizers ------------------------------------------------------------------------
    opt_cases = [(name, [N_IN, 5, 3], ["tanh", "softmax"], "categorical_crossentropy")
                 for name in OPTIMIZERS]
    opt_cases.append(("adam_mse", [N_IN, 4, 2], ["tanh", "linear"], "mse"))
    for k, (name, sizes, acts, loss_name) in enumerate(opt_cases):
        prefix = f"opt/{name}"
        cls, kw, fnn_opt, hyper = OPTIMIZERS["adam" if name == "adam_mse" else name]
        rng = np.random.default_rng(SEED + 100 + k)
        W, b = init_weights(rng, sizes)
        X, Y = make_data(rng, sizes[-1], regression=loss_name == "mse")
        check_ranges(prefix, acts, W, b, X)
        model = keras_model(sizes, acts, W, b)
        out, loss, gW, gb = keras_forward_grad(model, loss_name, X, Y)
        t_out, t_loss, t_gW, t_gb = torch_forward_grad(sizes, acts, W, b, loss_name, X, Y)
        errs = [check(f"{prefix} out", out, t_out), check(f"{prefix} loss", loss, t_loss)]
        errs += [check(f"{prefix} gW{l}", g, t) for l, (g, t) in enumerate(zip(gW, t_gW))]
        errs += [check(f"{prefix} gb{l}", g, t) for l, (g, t) in enumerate(zip(gb, t_gb))]
        steps = 4
        after = train_keras(model, loss_name, keras_optimizer(cls, kw), X, Y, steps)
        replay = replay_optimizer(fnn_opt, hyper, W, b, lambda W_, b_: torch_forward_grad(
            sizes, acts, W_, b_, loss_name, X, Y)[2:], steps)
        for s in range(steps):
            errs.append(check(f"{prefix} step {s + 1}", np.concatenate(
                [p.ravel() for p in after[s][0] + after[s][1]]), np.concatenate(
                [p.ravel() for p in replay[s][0] + replay[s][1]]), tol=1e-11))
        put(prefix, "X", X)
        put(prefix, "Y", Y)
        put_params(prefix, "_init", W, b)
        put(prefix, "out_init", out)
        put(prefix, "loss_init", loss)
        for l, (g, gbl) in enumerate(zip(gW, gb)):
            put(prefix, f"gW{l}", g)
            put(prefix, f"gb{l}", gbl)
        for s in range(steps):
            put_params(prefix, f"_step{s + 1}", *after[s])
        fnn_acts = [ACTIVATIONS.get(a, a) for a in acts]
        mse = loss_name == "mse"
        cases[prefix] = {
            "kind": "optimizer", "sizes": sizes, "keras_activations": acts,
            "fastnn_activations": fnn_acts, "loss": loss_name,
            "fastnn_cost": "quadratic" if mse else "log_likelihood",
            "cost_scale": 2.0 / sizes[-1] if mse else 1.0,
            "keras_optimizer": dict(kw, **{"class": cls}), "fastnn_optimizer": fnn_opt,
            "fastnn_hyper": hyper, "formula": OPT_FORMULAS[fnn_opt], "steps": steps,
            "batch_size": N_EXAMPLES,
            "saved_after": "W<l>_step<k>, b<l>_step<k> for k = 1..%d" % steps,
        }
        checks[prefix] = max(errs)

    meta = {
        "description": "Golden values from Keras 3 (torch backend, float64) for fastnn; "
                       "written by tools/make_golden.py",
        "versions": {"keras": keras.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": sys.version.split()[0],
                     "keras_backend": keras.backend.backend()},
        "floatx": keras.config.floatx(),
        "float64_matmul": "Keras 3's torch backend computes float64 matmuls in float32 "
                          "(keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE); "
                          "make_golden.py maps float64 to float64 there, so every value is "
                          "float64 (patched: %s)" % patched,
        "seed": SEED,
        "layout": "W<l> is fastnn's (n_out, n_in), the TRANSPOSE of the Keras kernel "
                  "(n_in, n_out); b<l> is (n_out,); X (n, n_in); Y (n, n_out); l counts "
                  "Dense layers from 0. gW<l>/gb<l>: gradient of the MEAN loss over the "
                  "batch at the initial weights. out_init: model(X) before training; "
                  "loss_init: the mean loss there. Training: full batch (batch_size = n = 8), "
                  "no shuffling, Keras train_on_batch once per step.",
        "losses": {
            "categorical_crossentropy": "mean over examples of -sum y ln a (Keras clips a to "
                                        "[1e-7, 1-1e-7]; never reached here) = fastnn cost "
                                        "log_likelihood, cost_scale 1",
            "mse": "mean over examples and outputs of (a - y)^2 = fastnn cost quadratic "
                   "(0.5 ||a-y||^2) with cost_scale = 2 / n_out",
        },
        "formulas": {"activations": ACT_FORMULAS, "optimizers": OPT_FORMULAS},
        "grid": "act/<a>/grid_z: 40 points linspace(-6, 6, 40) (no exact 0); grid_f = f(z) "
                "and grid_df = f'(z) from Keras' activation and torch autograd",
        "checks": "relative max difference of Keras against a plain-PyTorch forward/backward "
                  "and a numpy replay of the formulas, per case",
        "check_max_rel": checks,
        "cases": cases,
    }
    arrays["meta"] = np.array(json.dumps(meta, indent=1, sort_keys=True))
    if verbose:
        for tag, err in checks.items():
            print(f"{tag:24s} Keras vs independent check: max rel diff {err:.2e}")
    return arrays


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    arrays = build()
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "wb") as fh:
        fh.write(buf.getvalue())
    print(f"wrote {args.out}: {len(arrays)} arrays, {len(buf.getvalue())} bytes")


if __name__ == "__main__":
    main()
