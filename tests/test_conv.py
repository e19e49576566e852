"""Convolutional layers: the oracle (fastnn.reference_cnn) against finite differences and
hand-computed values, and the engine's conv2d, maxpool2d and flatten kinds against the oracle.

Each case prints its largest difference.  Shapes are channels-last (height, width, channels);
kernels (kh, kw, c_in, c_out)."""
import numpy as np
import pytest

from fastnn import _core, reference_cnn as RC

TOL = {np.float64: 1e-12, np.float32: 2e-4}


def conv_spec(in_shape, k, co, stride=(1, 1), padding="valid"):
    """The engine's description of a conv2d layer, Keras' "valid"/"same" padding."""
    H, W, C = in_shape
    if padding == "same":
        oh, pt = RC.same_padding(H, k[0], stride[0])
        ow, pl = RC.same_padding(W, k[1], stride[1])
    else:
        oh, ow, pt, pl = (H - k[0]) // stride[0] + 1, (W - k[1]) // stride[1] + 1, 0, 0
    return {"kind": "conv2d", "in_shape": (H, W, C), "out_shape": (oh, ow, co),
            "geom": (k[0], k[1], stride[0], stride[1], pt, pl)}


def pool_spec(in_shape, p=(2, 2), stride=None):
    H, W, C = in_shape
    s = stride or p
    return {"kind": "maxpool2d", "in_shape": in_shape,
            "out_shape": ((H - p[0]) // s[0] + 1, (W - p[1]) // s[1] + 1, C),
            "geom": (p[0], p[1], s[0], s[1])}


def flat_spec(shape):
    return {"kind": "flatten", "in_shape": tuple(shape), "out_shape": (1, 1, int(np.prod(shape)))}


def small_net(rng, in_shape=(9, 8, 2), k=(3, 3), co=3, stride=(1, 1), padding="valid",
              pool=(2, 2), act="tanh", n_out=4):
    """conv -> maxpool -> flatten -> dense softmax, random parameters."""
    c = conv_spec(in_shape, k, co, stride, padding)
    p = pool_spec(c["out_shape"], pool)
    f = flat_spec(p["out_shape"])
    n_flat = f["out_shape"][2]
    layers = [c, p, f, None]
    W = [rng.normal(size=(k[0], k[1], in_shape[2], co)) * 0.5, None, None,
         rng.normal(size=(n_out, n_flat)) * 0.5]
    b = [rng.normal(size=co) * 0.1, None, None, rng.normal(size=n_out) * 0.1]
    acts = [act, "identity", "identity", "softmax"]
    return layers, W, b, acts


def data(rng, n, in_shape, n_out=4):
    X = rng.normal(size=(n, int(np.prod(in_shape))))
    Y = np.eye(n_out)[rng.integers(0, n_out, n)]
    return X, Y


def cast(ps, dtype):
    return [None if p is None else np.array(p, dtype=dtype, order="C") for p in ps]


# ---------------------------------------------------------------------------------------------
# the oracle

def _fd_worst(net, Xs, Y, pairs, h=1e-6):
    """The largest |central difference of the summed cost - backprop's gradient| over every
    entry of the (parameter, gradient) pairs."""
    worst = 0.0
    for p, g in pairs:
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            cp = net.cost_sum(Xs, Y)
            p[idx] = old - h
            cm = net.cost_sum(Xs, Y)
            p[idx] = old
            worst = max(worst, abs((cp - cm) / (2 * h) - g[idx]))
    return worst

@pytest.mark.parametrize("stride,padding,cin,cout", [
    ((1, 1), "valid", 1, 2), ((2, 2), "valid", 2, 3), ((1, 2), "same", 3, 2),
    ((2, 1), "same", 2, 4), ((3, 3), "same", 1, 1)])
def test_oracle_conv_gradient_matches_finite_differences(stride, padding, cin, cout):
    rng = np.random.default_rng(5)
    in_shape = (7, 6, cin)
    c = conv_spec(in_shape, (3, 2), cout, stride, padding)
    f = flat_spec(c["out_shape"])
    n_flat = f["out_shape"][2]
    layers = [c, f, None]
    W = [rng.normal(size=(3, 2, cin, cout)), None, rng.normal(size=(3, n_flat)) * 0.3]
    b = [rng.normal(size=cout), None, rng.normal(size=3)]
    net = RC.ConvNetwork(layers, W, b, ["sigmoid", "identity", "softmax"])
    X, Y = data(rng, 3, in_shape, 3)
    Xs = X.reshape(3, *in_shape)
    gW, gb = net.gradient(Xs, Y)
    worst = _fd_worst(net, Xs, Y, [(p, g) for p, g in zip(net.weights + net.biases, gW + gb)
                                   if p is not None])
    print(f"conv stride {stride} {padding} {cin}->{cout}: max |fd - backprop| = {worst:.3g}")
    assert worst < 1e-7


def test_oracle_pooling_gradient_matches_finite_differences():
    rng = np.random.default_rng(6)
    layers, W, b, acts = small_net(rng, in_shape=(8, 8, 2), pool=(2, 2))
    net = RC.ConvNetwork(layers, W, b, acts)
    X, Y = data(rng, 2, (8, 8, 2))
    Xs = X.reshape(2, 8, 8, 2)
    gW, gb = net.gradient(Xs, Y)
    worst = _fd_worst(net, Xs, Y, [(net.weights[0], gW[0]), (net.biases[0], gb[0])])
    print(f"through max pooling: max |fd - backprop| = {worst:.3g}")
    assert worst < 1e-7


def test_pooling_ties_go_to_the_first_maximum_by_hand():
    """A 4x4 single-channel input with tied maxima: forward values and where each output's
    delta lands, worked out by hand."""
    x = np.array([[1, 3, 2, 2],
                  [3, 0, 2, 1],
                  [5, 5, 0, 0],
                  [5, 4, 0, 0]], dtype=np.float64).reshape(4, 4, 1)
    z, where = RC.maxpool2d_forward(x, (2, 2, 2, 2), (2, 2, 1))
    assert z.ravel().tolist() == [3, 2, 5, 0]
    # first maximum in row-major order: (0,1), (0,2), (2,0), (2,2)
    assert where.ravel().tolist() == [1, 2, 8, 10]
    dx = RC.maxpool2d_backward((4, 4, 1), where, np.array([1.0, 2.0, 3.0, 4.0]).reshape(2, 2, 1))
    want = np.zeros(16)
    want[[1, 2, 8, 10]] = [1, 2, 3, 4]
    assert np.array_equal(dx.ravel(), want)
    # the engine: the same forward values and the same routing (a pooling-only net)
    layers = [{"kind": "maxpool2d", "in_shape": (4, 4, 1), "out_shape": (2, 2, 1),
               "geom": (2, 2, 2, 2)}, {"kind": "flatten", "in_shape": (2, 2, 1),
                                        "out_shape": (1, 1, 4)}, None]
    W = [None, None, np.eye(4)]
    b = [None, None, np.zeros(4)]
    acts = ["identity", "identity", "identity"]
    X = x.reshape(1, 16)
    assert _core.predict(W, b, acts, X, layers=layers).ravel().tolist() == [3, 2, 5, 0]
    # The routing in the engine: a 1x1 conv2d in front reads channel 0 (the tied values) of a
    # 2-channel input whose channel 1 numbers the pixels 0..15; then dC/dK for channel 1 is
    # the sum over outputs of (pixel number of the winner) x (its delta): with the quadratic
    # cost and y = z - d the deltas are d = 1, 2, 3, 4 and the winners pixels 1, 2, 8, 10.
    x2 = np.concatenate([x, np.arange(16.0).reshape(4, 4, 1)], axis=2).reshape(1, 32)
    layers = [conv_spec((4, 4, 2), (1, 1), 1),
              {"kind": "maxpool2d", "in_shape": (4, 4, 1), "out_shape": (2, 2, 1),
               "geom": (2, 2, 2, 2)},
              {"kind": "flatten", "in_shape": (2, 2, 1), "out_shape": (1, 1, 4)}, None]
    W = [np.array([1.0, 0.0]).reshape(1, 1, 2, 1), None, None, np.eye(4)]
    b = [np.zeros(1), None, None, np.zeros(4)]
    acts = ["identity"] * 4
    d = np.array([1.0, 2.0, 3.0, 4.0])
    Y = (np.array([3.0, 2.0, 5.0, 0.0]) - d)[None]
    for dtype in (np.float64, np.float32):
        gW, gb, _ = _core.gradient(cast(W, dtype), cast(b, dtype), acts, "quadratic",
                                   x2.astype(dtype), Y.astype(dtype), layers=layers)
        assert gW[0].ravel().tolist() == [3 * 1 + 2 * 2 + 5 * 3 + 0 * 4, 1 * 1 + 2 * 2 + 8 * 3 + 10 * 4]
        assert gb[0][0] == 10.0


# ---------------------------------------------------------------------------------------------
# the engine against the oracle

CASES = [
    dict(in_shape=(9, 8, 2), k=(3, 3), co=3, stride=(1, 1), padding="valid", pool=(2, 2)),
    dict(in_shape=(9, 8, 2), k=(3, 3), co=3, stride=(2, 2), padding="same", pool=(2, 2)),
    dict(in_shape=(10, 10, 1), k=(5, 5), co=4, stride=(1, 1), padding="valid", pool=(2, 2)),
    dict(in_shape=(7, 9, 3), k=(2, 4), co=5, stride=(1, 2), padding="same", pool=(1, 2)),
    dict(in_shape=(12, 12, 2), k=(3, 3), co=6, stride=(1, 1), padding="same", pool=(3, 3)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_engine_forward_and_gradient_match_the_oracle(case, dtype):
    rng = np.random.default_rng(10 + case)
    cfg = CASES[case]
    layers, W, b, acts = small_net(rng, act="relu" if case % 2 else "tanh", **cfg)
    X, Y = data(rng, 11, cfg["in_shape"])
    ref = RC.ConvNetwork(layers, W, b, acts)
    Xs = X.reshape(11, *cfg["in_shape"])
    out = _core.predict(cast(W, dtype), cast(b, dtype), acts, X.astype(dtype), n_threads=2,
                        layers=layers)
    d_out = float(np.abs(out - ref.feedforward(Xs)).max())
    gW, gb, c = _core.gradient(cast(W, dtype), cast(b, dtype), acts, "log_likelihood",
                               X.astype(dtype), Y.astype(dtype), layers=layers)
    rW, rb = ref.gradient(Xs, Y)
    d_grad = max(float(np.abs(g - r).max()) for g, r in zip(gW + gb, rW + rb) if g is not None)
    d_cost = abs(c - ref.cost_sum(Xs, Y))
    print(f"case {case} {dtype.__name__}: output {d_out:.3g}, gradient {d_grad:.3g}, "
          f"cost {d_cost:.3g}")
    assert d_out < TOL[dtype] and d_grad < 10 * TOL[dtype] and d_cost < 100 * TOL[dtype]


# the second conv layer's backward pass (the delta to its input) takes one of two routes by
# shape: "full" (stride 1, input at most 1.25 times the output's pixels: the padded deltas
# convolved with the flipped kernel) or "col" (one row of kernel products per output pixel,
# scattered back onto the input).  (second layer's kernel, stride, padding, its route)
SECOND = [((3, 3), (1, 1), "valid", "col"),    # 8x7 in, 6x5 out: 56 > 1.25 x 30
          ((3, 3), (1, 1), "same", "full"),
          ((1, 2), (1, 1), "valid", "full"),    # 8x7 in, 8x6 out: 56 <= 1.25 x 48
          ((2, 3), (2, 1), "valid", "col"),     # strides other than 1 always "col"
          ((4, 4), (1, 1), "valid", "col")]     # the book's shape: larger kernel, valid


@pytest.mark.parametrize("second", SECOND, ids=[s[3] + "-" + s[2] + "-" + "x".join(map(str, s[0]))
                                                + "-s" + str(s[1][0]) for s in SECOND])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_engine_second_conv_layer_gradient_matches_the_oracle(second, dtype):
    """Two conv layers: the gradient of the first layer's kernel goes through the second's
    backward pass, so each route is checked against the oracle's loops."""
    k, stride, padding, _ = second
    rng = np.random.default_rng(41)
    c1 = conv_spec((10, 9, 2), (3, 3), 3)
    c2 = conv_spec(c1["out_shape"], k, 4, stride, padding)
    f = flat_spec(c2["out_shape"])
    layers = [c1, c2, f, None]
    W = [rng.normal(size=(3, 3, 2, 3)) * 0.5, rng.normal(size=k + (3, 4)) * 0.5, None,
         rng.normal(size=(5, f["out_shape"][2])) * 0.3]
    b = [rng.normal(size=3) * 0.1, rng.normal(size=4) * 0.1, None, rng.normal(size=5) * 0.1]
    acts = ["tanh", "relu", "identity", "softmax"]
    X, Y = data(rng, 6, (10, 9, 2), n_out=5)
    Xs = X.reshape(6, 10, 9, 2)
    rW, rb = RC.ConvNetwork(layers, W, b, acts).gradient(Xs, Y)
    gW, gb, _ = _core.gradient(cast(W, dtype), cast(b, dtype), acts, "log_likelihood",
                               X.astype(dtype), Y.astype(dtype), layers=layers)
    scale = float(np.abs(rW[0]).max())
    d = float(np.abs(gW[0] - rW[0]).max())
    print(f"{second[3]} {k} {stride} {padding} {np.dtype(dtype).name}: first kernel's "
          f"gradient {d:.3g} (largest {scale:.3g})")
    assert scale > 1e-3 and d < 10 * TOL[dtype] * max(scale, 1.0)
    assert max(float(np.abs(g - r).max()) for g, r in zip(gW + gb, rW + rb)
               if g is not None) < 10 * TOL[dtype] * max(scale, 1.0)


@pytest.mark.parametrize("path,threads", [("serial", 1), ("rows", 2), (None, 2)])
@pytest.mark.parametrize("batch", [1, 4, 7])
def test_engine_sgd_epoch_matches_the_oracle(path, threads, batch):
    rng = np.random.default_rng(20 + batch)
    cfg = CASES[1]
    layers, W, b, acts = small_net(rng, **cfg)
    X, Y = data(rng, 13, cfg["in_shape"])
    order = rng.permutation(13).astype(np.int32)
    Wc, bc = cast(W, np.float64), cast(b, np.float64)
    res = _core.train(Wc, bc, X, Y, _core.TrainConfig(
        acts=acts, cost="log_likelihood", epochs=1, batch=batch, eta=0.2, lmbda=0.7,
        layers=layers, orders=order[None, :], n_threads=threads, path=path))
    ref = RC.ConvNetwork(layers, W, b, acts)
    ref.sgd_epoch(X.reshape(13, *cfg["in_shape"]), Y, order, batch, 0.2, lmbda=0.7)
    diff = max(float(np.abs(g - r).max()) for g, r in zip(Wc + bc, ref.weights + ref.biases)
               if g is not None)
    print(f"{res['path']} x{threads}, batch {batch}: max |engine - oracle| = {diff:.3g}")
    assert diff < 1e-11
    if path is not None and batch >= threads:
        assert res["path"] == path


@pytest.mark.parametrize("optimizer", ["momentum", "adam", "rmsprop", "adagrad"])
def test_engine_optimizers_on_a_conv_net_match_one_thread_and_two(optimizer):
    """Every optimizer trains the conv kernel; two threads (the rows path, channels split in
    the update) give the same weights as one."""
    rng = np.random.default_rng(31)
    cfg = CASES[4]
    layers, W, b, acts = small_net(rng, **cfg)
    X, Y = data(rng, 16, cfg["in_shape"])
    out = []
    for threads, path in ((1, "serial"), (2, "rows")):
        Wc, bc = cast(W, np.float64), cast(b, np.float64)
        _core.train(Wc, bc, X, Y, _core.TrainConfig(
            acts=acts, cost="log_likelihood", epochs=2, batch=8, eta=0.01, momentum=0.9,
            optimizer=optimizer, state=_core.new_state(optimizer, Wc, bc), layers=layers,
            n_threads=threads, path=path))
        out.append(Wc + bc)
    moved = float(np.abs(out[0][0] - W[0]).max())
    diff = max(float(np.abs(p - q).max()) for p, q in zip(*out) if p is not None)
    print(f"{optimizer}: kernel moved {moved:.3g}; 1 vs 2 threads {diff:.3g}")
    assert moved > 1e-4 and diff < 1e-12


def test_book_dropout_scales_at_inference():
    """network3's rule on a layer's output: the expected value (times 1 - p) when predicting."""
    rng = np.random.default_rng(8)
    layers, W, b, acts = small_net(rng, **CASES[0])
    X, _ = data(rng, 5, CASES[0]["in_shape"])
    plain = _core.predict(W, b, acts, X, layers=layers)
    layers_d = [dict(l) if l else None for l in layers]
    layers_d[2]["dropout"] = 0.25
    layers_d[2]["drop_book"] = True
    ref = RC.ConvNetwork(layers, [None if w is None else w.copy() for w in W], b, acts)
    ref.weights[3] = ref.weights[3] * 0.75      # (0.75 x) @ W = x @ (0.75 W)
    got = _core.predict(W, b, acts, X, layers=layers_d)
    want = ref.feedforward(X.reshape(5, *CASES[0]["in_shape"]))
    assert np.abs(got - want).max() < 1e-12 and np.abs(got - plain).max() > 1e-3


@pytest.mark.parametrize("bad,msg", [
    (lambda L: L[0].update(out_shape=(9, 9, 3)), r"layers\[0\]"),
    (lambda L: L[1].update(in_shape=(6, 6, 3)), r"layers\[1\]"),
    (lambda L: L[1].update(geom=(2, 2, 0, 2)), r"layers\[1\]"),
    (lambda L: L[0].update(geom=(3, 3, 1)), "geometry integers"),
    (lambda L: L[2].update(kind="pool"), "kind"),
])
def test_layers_that_do_not_fit_are_rejected(bad, msg):
    rng = np.random.default_rng(0)
    layers, W, b, acts = small_net(rng, **CASES[0])
    layers = [dict(l) if l else None for l in layers]
    bad(layers)
    X, _ = data(rng, 2, CASES[0]["in_shape"])
    with pytest.raises(ValueError, match=msg):
        _core.predict(W, b, acts, X, layers=layers)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_half_width_conv_kernels_give_the_same_numbers(monkeypatch, dtype):
    """The conv kernels' 256-bit vectors (taken beside AVX-512's where the channels fill them
    better: 20 and 40 channels here, as in the book's chapter 6) sum each lane over the same
    terms in the same order: training with them on and off ends in the same bits, and both
    match the oracle."""
    rng = np.random.default_rng(43)
    c1 = conv_spec((12, 12, 1), (5, 5), 20)
    p1 = pool_spec(c1["out_shape"])
    c2 = conv_spec(p1["out_shape"], (3, 3), 40)
    f = flat_spec(c2["out_shape"])
    layers = [c1, p1, c2, f, None]
    W = [rng.normal(size=(5, 5, 1, 20)) * 0.3, None, rng.normal(size=(3, 3, 20, 40)) * 0.1,
         None, rng.normal(size=(5, f["out_shape"][2])) * 0.1]
    b = [rng.normal(size=20) * 0.1, None, rng.normal(size=40) * 0.1, None,
         rng.normal(size=5) * 0.1]
    acts = ["relu", "identity", "relu", "identity", "softmax"]
    X, Y = data(rng, 12, (12, 12, 1), n_out=5)
    order = rng.permutation(12).astype(np.int32)[None]
    out = []
    for half in ("0", "1"):
        monkeypatch.setenv("FASTNN_CONV_HALF", half)
        Wc, bc = cast(W, dtype), cast(b, dtype)
        cfg = _core.TrainConfig(acts=acts, cost="log_likelihood", epochs=1, batch=4, eta=0.1,
                                layers=layers, orders=order, n_threads=2)
        _core.train(Wc, bc, X.astype(dtype), Y.astype(dtype), cfg)
        out.append([p for p in Wc + bc if p is not None])
    assert all(np.array_equal(a, c) for a, c in zip(*out))
    # and the oracle agrees with them
    ref = RC.ConvNetwork(layers, W, b, acts)
    ref.sgd_epoch(X.reshape(12, 12, 12, 1), Y, order[0], 4, 0.1)
    d = max(float(np.abs(g - r).max()) for g, r in
            zip(out[1], [p for p in ref.weights + ref.biases if p is not None]))
    print(f"{np.dtype(dtype).name}: half and full the same bits; oracle {d:.3g}")
    assert d < 10 * TOL[dtype]
