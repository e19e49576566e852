"""Write tests/data/golden_torch_cnn.npz: golden values from PyTorch for a small conv net.

The outside oracle of issue 17's convolution and pooling.  One small network with fixed,
seeded weights and data is built in PyTorch (float64), and everything needed to replay it is
saved, so that ``tests/test_golden_cnn.py`` compares fastnn's engine, its numpy oracle
(``fastnn.reference_cnn``) and its xp backend against PyTorch without PyTorch installed.

The network (inputs channels-last, 10 x 12 pixels, 2 channels; 6 examples, 5 classes):

    Conv2d(2 -> 3, 3x3, stride 1, no padding)     10x12x2 -> 8x10x3, then ReLU
    MaxPool2d(2x2, stride 2)                       -> 4x5x3
    Conv2d(3 -> 4, 3x3, stride 2, Keras' "same")   -> 2x3x4, then tanh
        Keras' "same" pads (out - 1) * stride + k - size in total, the smaller half before:
        rows 0 before, 1 after; columns 1 before, 1 after (F.pad, asymmetric)
    flatten in channels-last order (permuted to NHWC before flattening, fastnn's layout)
    Linear(24 -> 5), log-softmax; loss: mean NLL over the 6 examples

Saved (fastnn's layouts: a conv kernel ``(kh, kw, c_in, c_out)``, which is PyTorch's
``(c_out, c_in, kh, kw)`` permuted (2, 3, 1, 0); a dense matrix ``(n_out, n_in)``, PyTorch's
own; biases flat; ``X`` is ``(n, 10*12*2)``, each row an image in (row, column, channel)
order; the layer index ``l`` is fastnn's, 0 conv, 1 pool, 2 conv, 3 flatten, 4 dense):

    meta                          JSON string (versions, layouts, the network, the formulas)
    X, Y, labels                  data: inputs, one-hot targets, class numbers
    W<l>_init, b<l>_init          weights before training, l = 0, 2, 4
    out_init                      softmax probabilities before training (exp of the model's
                                  log-softmax), (6, 5)
    loss_init                     mean NLL before training, shape ()
    gW<l>, gb<l>                  gradient of the mean loss at the initial weights
    sgd/W<l>_step<k>, b<l>_...    weights after step k = 1..3 of torch.optim.SGD(lr=0.1),
                                  full batch
    adam/W<l>_step<k>, b<l>_...   weights after step k = 1..3 of torch.optim.Adam(lr=0.01,
                                  betas=(0.9, 0.999), eps=1e-3), full batch

PyTorch's Adam puts eps outside the bias correction of v (``w -= lr m_hat / (sqrt(v_hat) +
eps)``), Keras' (and fastnn's) inside (``w -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) +
eps)``); the two are the same step when fastnn's eps of step t is ``eps sqrt(1 - b2^t)``
(``meta["formulas"]``).  eps is large (1e-3) so that a wrong conversion shows.

Before writing, the script checks its own PyTorch network against a second computation of
the same forward pass (``torch.nn.functional.conv2d`` on the NHWC data through unfold, a
GEMM, no F.pad), that the ReLU and tanh layers see both signs, and that no pooling window
has a tie at its maximum among positive values (where the winner would matter).

Usage (needs torch; a second or two on one core)::

    python tools/make_golden_cnn.py [--out tests/data/golden_torch_cnn.npz]
"""
import argparse
import io
import json
import os
import platform
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "data", "golden_torch_cnn.npz")

SEED = 1717
N = 6
IN_SHAPE = (10, 12, 2)          # (height, width, channels)
N_CLASSES = 5
SGD_LR = 0.1
ADAM = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-3}
STEPS = 3


def same_padding(size, k, s):
    """Keras' "same" padding of one dimension: (output size, before, after)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def layers_description():
    """The network in fastnn's description (TrainConfig.layers) and its activations."""
    H, W, C = IN_SHAPE
    c1_out = (H - 2, W - 2, 3)
    p_out = (c1_out[0] // 2, c1_out[1] // 2, 3)
    oh, pt, _ = same_padding(p_out[0], 3, 2)
    ow, pl, _ = same_padding(p_out[1], 3, 2)
    c2_out = (oh, ow, 4)
    n_flat = oh * ow * 4
    layers = [
        {"kind": "conv2d", "in_shape": IN_SHAPE, "out_shape": c1_out, "geom": (3, 3, 1, 1, 0, 0)},
        {"kind": "maxpool2d", "in_shape": c1_out, "out_shape": p_out, "geom": (2, 2, 2, 2)},
        {"kind": "conv2d", "in_shape": p_out, "out_shape": c2_out, "geom": (3, 3, 2, 2, pt, pl)},
        {"kind": "flatten", "in_shape": c2_out, "out_shape": (1, 1, n_flat)},
        None,
    ]
    acts = ["relu", "identity", "tanh", "identity", "softmax"]
    return layers, acts, n_flat


def make_inputs():
    """Seeded data and initial weights, in fastnn's layouts (numpy float64)."""
    rng = np.random.default_rng(SEED)
    _, _, n_flat = layers_description()
    X = rng.normal(size=(N,) + IN_SHAPE)
    labels = rng.integers(0, N_CLASSES, N)
    # every class but one at least once, so the targets are not all alike
    labels[:4] = [0, 1, 2, 3]
    params = {
        "W0": rng.normal(size=(3, 3, 2, 3)) * 0.4, "b0": rng.normal(size=3) * 0.2,
        "W2": rng.normal(size=(3, 3, 3, 4)) * 0.3, "b2": rng.normal(size=4) * 0.2,
        "W4": rng.normal(size=(N_CLASSES, n_flat)) * 0.4, "b4": rng.normal(size=N_CLASSES) * 0.1,
    }
    return X, labels, params


class Net:
    """The network in PyTorch, parameters as leaf tensors in PyTorch's layouts."""

    def __init__(self, torch, params):
        self.torch = torch
        t = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)  # noqa: E731
        # fastnn (kh, kw, c_in, c_out) -> PyTorch (c_out, c_in, kh, kw)
        self.k0 = t(np.ascontiguousarray(params["W0"].transpose(3, 2, 0, 1)))
        self.b0 = t(params["b0"])
        self.k2 = t(np.ascontiguousarray(params["W2"].transpose(3, 2, 0, 1)))
        self.b2 = t(params["b2"])
        self.w4 = t(params["W4"])
        self.b4 = t(params["b4"])
        layers, _, _ = layers_description()
        g = layers[2]["geom"]
        H2, W2 = layers[2]["in_shape"][:2]
        _, pt, pb = same_padding(H2, g[0], g[2])
        _, pl, pr = same_padding(W2, g[1], g[3])
        self.pad2 = (pl, pr, pt, pb)                # F.pad's order: last dim first
        self.trace = {}

    def parameters(self):
        return [self.k0, self.b0, self.k2, self.b2, self.w4, self.b4]

    def forward(self, x_nhwc):
        """Log-softmax (n, 5) from channels-last images (n, H, W, C)."""
        F = self.torch.nn.functional
        x = x_nhwc.permute(0, 3, 1, 2)                                  # NCHW
        z0 = F.conv2d(x, self.k0, self.b0, stride=1)
        a0 = self.torch.relu(z0)
        p1 = F.max_pool2d(a0, 2, 2)
        z2 = F.conv2d(F.pad(p1, self.pad2), self.k2, self.b2, stride=2)
        a2 = self.torch.tanh(z2)
        flat = a2.permute(0, 2, 3, 1).reshape(x.shape[0], -1)           # channels-last order
        z4 = flat @ self.w4.T + self.b4
        self.trace = {"z0": z0, "a0": a0, "z2": z2}
        return F.log_softmax(z4, dim=1)

    def to_fastnn(self):
        """The current parameters in fastnn's layouts, as numpy arrays keyed W<l>, b<l>."""
        d = lambda a: a.detach().numpy().copy()  # noqa: E731
        return {"W0": d(self.k0).transpose(2, 3, 1, 0).copy(), "b0": d(self.b0),
                "W2": d(self.k2).transpose(2, 3, 1, 0).copy(), "b2": d(self.b2),
                "W4": d(self.w4), "b4": d(self.b4)}

    def grads_fastnn(self):
        g = lambda a: a.grad.detach().numpy().copy()  # noqa: E731
        return {"gW0": g(self.k0).transpose(2, 3, 1, 0).copy(), "gb0": g(self.b0),
                "gW2": g(self.k2).transpose(2, 3, 1, 0).copy(), "gb2": g(self.b2),
                "gW4": g(self.w4), "gb4": g(self.b4)}


def unfold_forward(torch, params, X):
    """The same network's log-softmax a second way: every conv as an im2col over the
    zero-padded NHWC array (indices built here) and a GEMM with the (kh kw c_in, c_out)
    kernel, pooling as the max over the 4 strided views; for the script's own check."""
    layers, _, _ = layers_description()
    a = torch.tensor(X, dtype=torch.float64)
    for l, spec in enumerate(layers[:4]):
        if spec["kind"] == "conv2d":
            kh, kw, sh, sw, pt, pl = spec["geom"]
            H, W, C = spec["in_shape"]
            OH, OW, CO = spec["out_shape"]
            Hp, Wp = max(H + pt, (OH - 1) * sh + kh), max(W + pl, (OW - 1) * sw + kw)
            pad = torch.zeros((a.shape[0], Hp, Wp, C), dtype=torch.float64)
            pad[:, pt:pt + H, pl:pl + W, :] = a
            cols = torch.stack([pad[:, oy * sh + dy, ox * sw + dx, :]
                                for oy in range(OH) for ox in range(OW)
                                for dy in range(kh) for dx in range(kw)], dim=1)
            cols = cols.reshape(a.shape[0], OH * OW, kh * kw * C)
            K = torch.tensor(params[f"W{l}"].reshape(kh * kw * C, CO))
            z = (cols @ K + torch.tensor(params[f"b{l}"])).reshape(a.shape[0], OH, OW, CO)
            a = torch.relu(z) if l == 0 else torch.tanh(z)
        elif spec["kind"] == "maxpool2d":
            a = torch.maximum(torch.maximum(a[:, 0::2, 0::2], a[:, 0::2, 1::2]),
                              torch.maximum(a[:, 1::2, 0::2], a[:, 1::2, 1::2]))
        else:
            a = a.reshape(a.shape[0], -1)
    z = a @ torch.tensor(params["W4"]).T + torch.tensor(params["b4"])
    return torch.log_softmax(z, dim=1)


def run(torch):
    torch.manual_seed(0)
    X, labels, params = make_inputs()
    Y = np.eye(N_CLASSES)[labels]
    xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.tensor(labels, dtype=torch.int64)
    F = torch.nn.functional
    out = {"X": X.reshape(N, -1), "Y": Y, "labels": labels}
    for k, v in params.items():
        out[f"{k}_init"] = v

    net = Net(torch, params)
    logp = net.forward(xt)
    loss = F.nll_loss(logp, yt)
    loss.backward()
    out["out_init"] = logp.exp().detach().numpy()
    out["loss_init"] = np.array(loss.item())
    out.update(net.grads_fastnn())

    # the script's own checks
    other = unfold_forward(torch, params, X)
    diff = float((other - logp.detach()).abs().max())
    assert diff < 1e-12, f"the second forward pass differs by {diff}"
    for name in ("z0", "z2"):
        z = net.trace[name].detach()
        assert (z > 0).any() and (z < 0).any(), f"{name}: expected both signs"
    a0 = net.trace["a0"].detach()
    windows = torch.stack([a0[:, :, 0::2, 0::2][:, :, :4, :5], a0[:, :, 0::2, 1::2][:, :, :4, :5],
                           a0[:, :, 1::2, 0::2][:, :, :4, :5], a0[:, :, 1::2, 1::2][:, :, :4, :5]])
    top = windows.max(dim=0).values
    ties = ((windows == top).sum(dim=0) > 1) & (top > 0)
    assert not ties.any(), "a pooling window ties at a positive maximum"

    for name, make_opt in (
            ("sgd", lambda ps: torch.optim.SGD(ps, lr=SGD_LR)),
            ("adam", lambda ps: torch.optim.Adam(ps, lr=ADAM["lr"],
                                                 betas=(ADAM["beta1"], ADAM["beta2"]),
                                                 eps=ADAM["eps"]))):
        net = Net(torch, params)
        opt = make_opt(net.parameters())
        for step in range(1, STEPS + 1):
            opt.zero_grad()
            F.nll_loss(net.forward(xt), yt).backward()
            opt.step()
            for k, v in net.to_fastnn().items():
                out[f"{name}/{k}_step{step}"] = v

    layers, acts, _ = layers_description()
    meta = {
        "tool": "tools/make_golden_cnn.py",
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0], "platform": platform.platform()},
        "dtype": "float64",
        "seed": SEED,
        "n_examples": N,
        "layers": layers,
        "acts": acts,
        "cost": "log_likelihood (mean NLL of log-softmax; fastnn: softmax output, "
                "log_likelihood cost, gradients summed over the examples, so divided by n)",
        "layouts": {
            "X": "(n, H*W*C), each row an image in (row, column, channel) order",
            "conv kernel W<l>": "(kh, kw, c_in, c_out) = torch's (c_out, c_in, kh, kw)"
                                ".permute(2, 3, 1, 0)",
            "dense W<l>": "(n_out, n_in), torch's own; its inputs are the conv output "
                          "flattened in channels-last order",
            "b<l>": "(n_out,) or (c_out,)",
            "gradients": "of the mean loss over the n examples",
        },
        "optimizers": {"sgd": {"lr": SGD_LR, "steps": STEPS, "batch": "full"},
                       "adam": dict(ADAM, steps=STEPS, batch="full")},
        "formulas": {
            "sgd": "w -= lr g",
            "adam_torch": "m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; "
                          "w -= lr (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)",
            "adam_as_fastnn": "fastnn's (Keras') step w -= lr sqrt(1-b2^t)/(1-b1^t) m / "
                              "(sqrt(v) + eps_t) with eps_t = eps sqrt(1-b2^t) at step t",
        },
    }
    out["meta"] = np.array(json.dumps(meta))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    import torch
    out = run(torch)
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    with open(args.out, "wb") as f:
        f.write(buf.getvalue())
    print(f"wrote {args.out}: {len(out)} arrays, {len(buf.getvalue())} bytes; loss "
          f"{float(out['loss_init']):.6f}")


if __name__ == "__main__":
    main()
