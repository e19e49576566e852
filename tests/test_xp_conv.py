"""The xp backend's layer kinds (fastnn/backends/xp_layers.py) with numpy as ``xp``: conv2d,
maxpool2d, flatten and dense with per-layer dropout, against the compiled engine
(``device='cpu'``) and the plain-loop oracle (fastnn.reference_cnn), and pooling's ties against
values worked out by hand.  Each case prints its largest difference."""
import numpy as np
import pytest

from fastnn import _core, _engine, reference_cnn as RC
from fastnn.backends import xp as xb
from test_conv import CASES, cast, conv_spec, data, flat_spec, pool_spec, small_net

TOL = {np.float64: 1e-12, np.float32: 2e-4}


def max_diff(a, b):
    return max(float(np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).max())
               for p, q in zip(a, b) if p is not None)


def two_conv_net(rng, in_shape=(10, 9, 2), act="relu"):
    """conv (3x3, stride 1, same) -> maxpool 2x2 -> conv (2x3, stride (2, 1), valid) ->
    flatten -> dense 6 -> dense softmax 4."""
    c1 = conv_spec(in_shape, (3, 3), 3, (1, 1), "same")
    p1 = pool_spec(c1["out_shape"])
    c2 = conv_spec(p1["out_shape"], (2, 3), 4, (2, 1), "valid")
    f = flat_spec(c2["out_shape"])
    n_flat = f["out_shape"][2]
    layers = [c1, p1, c2, f, None, None]
    W = [rng.normal(size=(3, 3, in_shape[2], 3)) * 0.4, None,
         rng.normal(size=(2, 3, 3, 4)) * 0.4, None, rng.normal(size=(6, n_flat)) * 0.4,
         rng.normal(size=(4, 6)) * 0.4]
    b = [rng.normal(size=3) * 0.1, None, rng.normal(size=4) * 0.1, None,
         rng.normal(size=6) * 0.1, rng.normal(size=4) * 0.1]
    acts = [act, "identity", "tanh", "identity", "sigmoid", "softmax"]
    return layers, W, b, acts


def train_both(W, b, X, Y, **kw):
    """The same TrainConfig through the engine and through xp with numpy: their (W, b) after
    training, their results and their optimizer states."""
    out = []
    for backend in ("engine", "xp"):
        Wc, bc = cast(W, X.dtype), cast(b, X.dtype)
        opt = kw.get("optimizer", "sgd")
        state = _core.new_state(opt, Wc, bc)
        cfg = _core.TrainConfig(state=state, **kw)
        if backend == "engine":
            res = _core.train(Wc, bc, X, Y, cfg)
        else:
            res = xb.train(Wc, bc, X, Y, cfg, xp=np)
        flat = [a for pair in (p for slot in state for p in slot) for a in pair]
        out.append((Wc + bc, res, flat))
    return out


# ---------------------------------------------------------------------------------------------
# forward-only passes

@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_predict_and_evaluate_match_engine_and_oracle(case, dtype):
    rng = np.random.default_rng(40 + case)
    cfg = CASES[case]
    layers, W, b, acts = small_net(rng, act="relu" if case % 2 else "tanh", **cfg)
    X, Y = data(rng, 13, cfg["in_shape"])
    Wc, bc, Xc, Yc = cast(W, dtype), cast(b, dtype), X.astype(dtype), Y.astype(dtype)
    got = xb.predict(Wc, bc, acts, Xc, xp=np, layers=layers)
    eng = _core.predict(Wc, bc, acts, Xc, layers=layers)
    ref = RC.ConvNetwork(layers, W, b, acts).feedforward(X.reshape(13, *cfg["in_shape"]))
    c_xp = xb.evaluate(Wc, bc, acts, "log_likelihood", Xc, Yc, xp=np, layers=layers)
    c_en = _core.evaluate(Wc, bc, acts, "log_likelihood", Xc, Yc, layers=layers)
    d_ref, d_eng = max_diff([got], [ref]), max_diff([got], [eng])
    print(f"case {case} {np.dtype(dtype).name}: xp vs oracle {d_ref:.3g}, vs engine "
          f"{d_eng:.3g}; cost {c_xp[0]:.6g} vs {c_en[0]:.6g}, hits {c_xp[1]} vs {c_en[1]}")
    assert got.dtype == dtype and got.shape == (13, 4)
    assert d_ref < TOL[dtype] and d_eng < TOL[dtype]
    assert c_xp[1] == c_en[1] and abs(c_xp[0] - c_en[0]) < 100 * TOL[dtype] * max(1, c_en[0])


def test_predict_in_chunks_equals_one_pass(monkeypatch):
    """The forward-only chunks (sized by the im2col columns) give the rows of one pass."""
    rng = np.random.default_rng(3)
    layers, W, b, acts = two_conv_net(rng)
    X, _ = data(rng, 23, (10, 9, 2))
    whole = xb.predict(W, b, acts, X, xp=np, layers=layers)
    from fastnn.backends import xp_layers
    monkeypatch.setattr(xp_layers, "EVAL_COL_ELEMENTS", 3 * 90 * 18)   # 3 examples a chunk
    parts = xb.predict(W, b, acts, X, xp=np, layers=layers)
    ref = RC.ConvNetwork(layers, W, b, acts).feedforward(X.reshape(23, 10, 9, 2))
    print(f"chunks vs one pass {max_diff([parts], [whole]):.3g}, vs oracle "
          f"{max_diff([parts], [ref]):.3g}")
    assert max_diff([parts], [whole]) == 0 and max_diff([parts], [ref]) < 1e-12


def test_pooling_ties_go_to_the_first_maximum_by_hand():
    """The 4x4 input with tied maxima of test_conv: forward values, and where each output's
    delta lands (read off one SGD step of a 1x1 conv2d in front, worked out by hand)."""
    x = np.array([[1, 3, 2, 2],
                  [3, 0, 2, 1],
                  [5, 5, 0, 0],
                  [5, 4, 0, 0]], dtype=np.float64).reshape(4, 4, 1)
    pool = {"kind": "maxpool2d", "in_shape": (4, 4, 1), "out_shape": (2, 2, 1),
            "geom": (2, 2, 2, 2)}
    flat = {"kind": "flatten", "in_shape": (2, 2, 1), "out_shape": (1, 1, 4)}
    got = xb.predict([None, None, np.eye(4)], [None, None, np.zeros(4)], ["identity"] * 3,
                     x.reshape(1, 16), xp=np, layers=[pool, flat, None])
    assert got.ravel().tolist() == [3, 2, 5, 0]
    # channel 0 the tied values, channel 1 numbers the pixels 0..15; the kernel reads channel
    # 0.  Quadratic cost, identity outputs, y = z - d: the deltas are d = 1, 2, 3, 4, the
    # winners pixels 1, 2, 8, 10; so dC/dK = (3*1 + 2*2 + 5*3 + 0*4, 1*1 + 2*2 + 8*3 + 10*4)
    # = (22, 69) and dC/db = 10, and one SGD step with eta 1 on one example moves K and b
    # by minus those.
    x2 = np.concatenate([x, np.arange(16.0).reshape(4, 4, 1)], axis=2).reshape(1, 32)
    layers = [conv_spec((4, 4, 2), (1, 1), 1), pool, flat, None]
    W = [np.array([1.0, 0.0]).reshape(1, 1, 2, 1), None, None, np.eye(4)]
    b = [np.zeros(1), None, None, np.zeros(4)]
    Y = (np.array([3.0, 2.0, 5.0, 0.0]) - np.array([1.0, 2.0, 3.0, 4.0]))[None]
    for dtype in (np.float64, np.float32):
        Wc, bc = cast(W, dtype), cast(b, dtype)
        xb.train(Wc, bc, x2.astype(dtype), Y.astype(dtype), _core.TrainConfig(
            acts=["identity"] * 4, cost="quadratic", epochs=1, batch=1, eta=1.0,
            layers=layers), xp=np)
        assert Wc[0].ravel().tolist() == [1 - 22, 0 - 69] and bc[0].tolist() == [-10]


# ---------------------------------------------------------------------------------------------
# training

@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("batch", [1, 5])
def test_sgd_epochs_match_engine_and_oracle(case, batch):
    """Two SGD epochs with L2 (strides, paddings, channels of CASES): xp against the oracle's
    epochs and the engine's."""
    rng = np.random.default_rng(60 + case)
    cfg = CASES[case]
    layers, W, b, acts = small_net(rng, act="relu" if case % 2 else "tanh", **cfg)
    n = 12
    X, Y = data(rng, n, cfg["in_shape"])
    orders = np.stack([rng.permutation(n) for _ in range(2)]).astype(np.int32)
    (we, re_, _), (wx, rx, _) = train_both(
        W, b, X, Y, acts=acts, cost="log_likelihood", epochs=2, batch=batch, eta=0.15,
        lmbda=0.6, layers=layers, orders=orders)
    ref = RC.ConvNetwork(layers, W, b, acts)
    for e in range(2):
        ref.sgd_epoch(X.reshape(n, *cfg["in_shape"]), Y, orders[e], batch, 0.15, lmbda=0.6)
    d_ref = max_diff(wx, ref.weights + ref.biases)
    d_eng = max_diff(wx, we)
    moved = max_diff(wx, W + b)
    print(f"case {case}, batch {batch}: moved {moved:.3g}; xp vs oracle {d_ref:.3g}, vs "
          f"engine {d_eng:.3g}")
    assert moved > 1e-3 and d_ref < 1e-11 and d_eng < 1e-11
    assert rx["step"] == re_["step"] == 2 * -(-n // batch) and rx["status"] == re_["status"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_two_conv_layers_with_monitors_match_engine(dtype):
    """Two conv layers (same and valid padding, a non-square kernel, stride (2, 1)), pooling,
    dense layers; the per-epoch statistics (training and evaluation cost and hits, weight
    norms) as the engine reports them."""
    rng = np.random.default_rng(7)
    layers, W, b, acts = two_conv_net(rng)
    X, Y = data(rng, 14, (10, 9, 2))
    EX, EY = data(rng, 9, (10, 9, 2))
    X, Y, EX, EY = (a.astype(dtype) for a in (X, Y, EX, EY))
    stats = ([], [])
    orders = np.stack([rng.permutation(14) for _ in range(3)]).astype(np.int32)
    for k, backend in enumerate(("engine", "xp")):
        Wc, bc = cast(W, dtype), cast(b, dtype)
        cfg = _core.TrainConfig(acts=acts, cost="log_likelihood", epochs=3, batch=4, eta=0.1,
                                lmbda=0.3, l1=0.05, layers=layers, orders=orders,
                                eval_data=(EX, EY), monitor_train=True, run_stats=True,
                                on_epoch=lambda st, k=k: stats[k].append(dict(st)))
        if backend == "engine":
            _core.train(Wc, bc, X, Y, cfg)
            we = Wc + bc
        else:
            xb.train(Wc, bc, X, Y, cfg, xp=np)
            wx = Wc + bc
    d = max_diff(wx, we)
    print(f"two conv layers {np.dtype(dtype).name}: xp vs engine {d:.3g}")
    assert d < 10 * TOL[dtype]
    for se, sx in zip(*stats):
        for key in ("train_correct", "eval_correct", "run_correct", "batches"):
            assert sx[key] == se[key], key
        for key in ("train_cost", "eval_cost", "run_cost", "sum_w2", "sum_w1"):
            assert abs(sx[key] - se[key]) <= 100 * TOL[dtype] * max(1, abs(se[key])), key


@pytest.mark.parametrize("optimizer", sorted(_engine.OPTIMIZERS))
def test_every_optimizer_on_a_conv_net_matches_engine(optimizer):
    rng = np.random.default_rng(31)
    layers, W, b, acts = two_conv_net(rng, act="tanh")
    X, Y = data(rng, 16, (10, 9, 2))
    (we, re_, se), (wx, rx, sx) = train_both(
        W, b, X, Y, acts=acts, cost="log_likelihood", epochs=2, batch=6, eta=0.01,
        momentum=0.9, optimizer=optimizer, lmbda=0.2, layers=layers)
    d, ds = max_diff(wx, we), (max_diff(sx, se) if se else 0.0)
    moved = float(np.abs(wx[0] - W[0]).max())
    print(f"{optimizer}: kernel moved {moved:.3g}; xp vs engine: weights {d:.3g}, state "
          f"{ds:.3g}")
    assert moved > 1e-4 and d < 1e-11 and ds < 1e-11 and rx["step"] == re_["step"]


@pytest.mark.parametrize("book", [False, True], ids=["inverted", "book"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_dropout_on_any_layer_matches_engine(book, dtype):
    """Per-layer dropout on a conv layer's, the pooling's and a dense layer's output (either
    rule), the call's dropout on the other hidden layers: the masks are the engine's."""
    rng = np.random.default_rng(9)
    layers, W, b, acts = two_conv_net(rng)
    layers = [dict(l) if l else {"kind": "dense"} for l in layers]
    layers[-1] = None
    for l, p in ((0, 0.2), (1, 0.3), (4, 0.5)):
        layers[l].update(dropout=p, drop_book=book)
    X, Y = data(rng, 15, (10, 9, 2))
    X, Y = X.astype(dtype), Y.astype(dtype)
    kw = dict(acts=acts, cost="log_likelihood", epochs=2, batch=4, eta=0.1, seed=77,
              layers=layers)
    (we, _, _), (wx, _, _) = train_both(W, b, X, Y, dropout=0.25, **kw)
    (wn, _, _), _ = train_both(W, b, X, Y, **dict(kw, layers=[
        None if s is None else dict(s, dropout=0.0) for s in layers]))
    d, effect = max_diff(wx, we), max_diff(wx, wn)
    px = xb.predict(cast(wx[:6], dtype), cast(wx[6:], dtype), acts, X, xp=np, layers=layers)
    pe = _core.predict(cast(wx[:6], dtype), cast(wx[6:], dtype), acts, X, layers=layers)
    print(f"dropout ({'book' if book else 'inverted'}, {np.dtype(dtype).name}): xp vs engine "
          f"{d:.3g}, predict {max_diff([px], [pe]):.3g}; without dropout the weights differ "
          f"by {effect:.3g}")
    assert d < 10 * TOL[dtype] and max_diff([px], [pe]) < TOL[dtype] and effect > 1e-3


def test_book_dropout_scales_at_inference_and_inverted_does_not():
    """network3's rule multiplies the layer's output by 1 - p when predicting; for a layer in
    front of a dense one that is the oracle with that dense layer's weights times 1 - p.
    Inverted dropout changes nothing when predicting."""
    rng = np.random.default_rng(8)
    layers, W, b, acts = small_net(rng, **CASES[0])
    X, _ = data(rng, 5, CASES[0]["in_shape"])
    shape = (5,) + CASES[0]["in_shape"]
    for book, scale in ((True, 0.75), (False, 1.0)):
        layers_d = [dict(l) if l else None for l in layers]
        layers_d[2].update(dropout=0.25, drop_book=book)
        ref = RC.ConvNetwork(layers, W, b, acts)
        ref.weights[3] = ref.weights[3] * scale
        got = xb.predict(W, b, acts, X, xp=np, layers=layers_d)
        d = max_diff([got], [ref.feedforward(X.reshape(shape))])
        print(f"book={book}: predict vs oracle with the next weights x {scale}: {d:.3g}")
        assert d < 1e-12


def test_book_and_inverted_training_masks_by_hand():
    """One SGD step through a flatten layer with dropout on its output (identity units, a
    dense identity output, quadratic cost): the step on the dense weights is -eta d k x,
    with k the engine's keep mask (xb.dropout_keep, the hash of src_c/runtime.h) times 1
    (book) or 1/(1-p) (inverted)."""
    n_in, p = 12, 0.4
    x = np.linspace(0.5, 1.6, n_in)[None]
    W1 = np.zeros((1, n_in))
    y = np.array([[-1.0]])                       # z = 0, so d = a - y = 1
    keep = xb.dropout_keep(5, 0, 0, 1, 0, n_in, p).astype(np.float64)
    assert 0 < keep.sum() < n_in
    for book, mult in ((True, 1.0), (False, 1 / (1 - p))):
        layers = [{"kind": "flatten", "in_shape": (3, 4, 1), "out_shape": (1, 1, n_in),
                   "dropout": p, "drop_book": book}, None]
        W, b = [None, W1.copy()], [None, np.zeros(1)]
        xb.train(W, b, x, y, _core.TrainConfig(acts=["identity", "identity"],
                                               cost="quadratic", epochs=1, batch=1,
                                               eta=0.5, seed=5, layers=layers), xp=np)
        want = -0.5 * keep * mult * x
        assert np.abs(W[1] - want).max() < 1e-15, book


# ---------------------------------------------------------------------------------------------
# boundaries

@pytest.mark.parametrize("bad,msg", [
    (lambda L, W, b, a: L[0].update(out_shape=(9, 9, 3)), r"layers\[0\]"),
    (lambda L, W, b, a: L[1].update(in_shape=(6, 6, 3)), r"layers\[1\]"),
    (lambda L, W, b, a: L[1].update(geom=(2, 2, 0, 2)), r"layers\[1\]"),
    (lambda L, W, b, a: L[0].update(geom=(3, 3, 1)), "geometry integers"),
    (lambda L, W, b, a: L[2].update(kind="pool"), "kind"),
    (lambda L, W, b, a: L[2].update(dropout=1.0), r"layers\[2\]: expected a dropout"),
    (lambda L, W, b, a: L.append(None), "layer descriptions"),
    (lambda L, W, b, a: W.__setitem__(0, W[0][:2]), r"weights\[0\]: expected a conv2d kernel"),
    (lambda L, W, b, a: W.__setitem__(1, np.zeros(3)), r"weights\[1\]/biases\[1\]"),
    (lambda L, W, b, a: b.__setitem__(0, b[0][:1]), r"biases\[0\]"),
    (lambda L, W, b, a: a.__setitem__(1, "relu"), r"activations\[1\]"),
    (lambda L, W, b, a: L[3].update(dropout=0.5), "output layer"),
])
def test_layers_that_do_not_fit_are_rejected(bad, msg):
    rng = np.random.default_rng(0)
    layers, W, b, acts = small_net(rng, **CASES[0])
    layers = [dict(l) if l else {"kind": "dense"} for l in layers]
    bad(layers, W, b, acts)
    X, Y = data(rng, 2, CASES[0]["in_shape"])
    with pytest.raises(ValueError, match=msg):
        xb.predict(W, b, acts, X, xp=np, layers=layers)
    with pytest.raises(ValueError, match=msg):
        xb.train(W, b, X, Y, _core.TrainConfig(acts=acts, cost="log_likelihood", epochs=1, eta=0.1,
                                               batch=2, layers=layers), xp=np)
