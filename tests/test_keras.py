"""The Keras-style front door (fastnn.keras) against values computed outside it.

Training is compared with the numpy oracle (fastnn.reference.MatrixNetwork) given the same
initial weights and example order; losses and outputs with numpy written out here.  Run with
``pytest -s`` to see the max differences.
"""
import io
import json
import math
import os
import re
import sys

import numpy as np
import pytest

import fastnn
from fastnn import network2
from fastnn.keras import Sequential, load_model
from fastnn.layers import Dense, Dropout, Flatten, Input, Softmax
from fastnn.losses import (CategoricalCrossentropy, MeanSquaredError,
                           SparseCategoricalCrossentropy)
from fastnn.optimizers import SGD, Adam
from fastnn.reference import MatrixNetwork

@pytest.fixture(autouse=True)
def restore_np_random():
    """These tests seed np.random (initial weights, shuffling); give the state back after."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


# max |difference| allowed after a few optimizer steps, per dtype
TOL = {np.float32: 2e-5, np.float64: 1e-10}


def problem(seed=0, n=37, n_in=6, k=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    y = rng.integers(0, k, size=n)
    return X, y


def classifier(dtype=np.float32, optimizer=None, hidden=9, n_in=6, k=4, seed=1):
    np.random.seed(seed)
    model = Sequential([Dense(hidden, activation="relu", input_shape=(n_in,)), Dense(k)],
                       dtype=dtype)
    model.compile(optimizer=optimizer or Adam(learning_rate=0.01),
                  loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.build()
    return model


def engine_layout(weights):
    """Keras [kernel, bias, ...] -> the oracle's (weights (n_out, n_in), biases (n_out, 1))."""
    return ([np.array(k.T, dtype=np.float64) for k in weights[0::2]],
            [np.array(b.reshape(-1, 1), dtype=np.float64) for b in weights[1::2]])


def max_diff(model_weights, ref):
    Ws, bs = engine_layout(model_weights)
    return max(max(np.abs(w - rw).max() for w, rw in zip(Ws, ref.weights)),
               max(np.abs(b - rb).max() for b, rb in zip(bs, ref.biases)))


def numpy_logits(weights, X, hidden_act=lambda z: np.maximum(z, 0)):
    a = np.asarray(X, dtype=np.float64)
    n_layers = len(weights) // 2
    for l in range(n_layers):
        a = a @ weights[2 * l].astype(np.float64) + weights[2 * l + 1].astype(np.float64)
        if l < n_layers - 1:
            a = hidden_act(a)
    return a


def numpy_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# (1) training matches the oracle

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_fit_matches_reference(dtype):
    X, y = problem()
    n, batch, lr = len(X), 8, 0.01
    model = classifier(dtype)
    w0 = model.get_weights()
    assert w0[0].dtype == dtype and w0[0].shape == (6, 9) and w0[1].shape == (9,)
    assert np.all(w0[1] == 0) and np.abs(w0[0]).max() <= math.sqrt(6 / (6 + 9))

    np.random.seed(123)
    hist = model.fit(X, y, epochs=2, batch_size=batch, verbose=0)

    # the oracle: same weights, same orders (np.random.permutation per epoch), Adam state
    # kept across epochs; the running loss/accuracy are taken before each step
    np.random.seed(123)
    orders = [np.random.permutation(n) for _ in range(2)]
    W, b = engine_layout(w0)
    ref = MatrixNetwork(W, b, activation="relu", output_activation="softmax",
                        cost="log_likelihood", dtype=dtype)
    Y = np.eye(4)[y]
    run_loss, run_acc = [], []
    for order in orders:
        cost = hits = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            cost += ref.batch_cost(X[idx], Y[idx])
            hits += ref.accuracy(X[idx], y[idx])
            ref.train_epoch(X, Y, idx, len(idx), lr, optimizer="adam")
        run_loss.append(cost / n)
        run_acc.append(hits / n)
    d = max_diff(model.get_weights(), ref)
    print(f"\nAdam fit vs oracle, {np.dtype(dtype).name}: max |diff| = {d:.3e}")
    assert d < TOL[dtype]
    assert model.optimizer.iterations == ref.adam_t == 2 * math.ceil(n / batch)
    np.testing.assert_allclose(hist.history["loss"], run_loss, rtol=1e-5)
    np.testing.assert_allclose(hist.history["accuracy"], run_acc)


def test_second_fit_continues_adam():
    X, y = problem(1)
    one = classifier()
    two = classifier()
    np.random.seed(5)
    one.fit(X, y, epochs=2, batch_size=5, verbose=0)
    np.random.seed(5)
    two.fit(X, y, epochs=1, batch_size=5, verbose=0)
    two.fit(X, y, epochs=1, batch_size=5, verbose=0)   # same orders: nothing else draws
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert two.optimizer.iterations == 2 * math.ceil(len(X) / 5)
    # a fresh optimizer restarts Adam: a different result
    three = classifier()
    np.random.seed(5)
    three.fit(X, y, epochs=1, batch_size=5, verbose=0)
    three.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=True))
    three.optimizer.learning_rate = 0.01
    three.fit(X, y, epochs=1, batch_size=5, verbose=0)
    assert max(np.abs(a - b).max() for a, b in zip(one.get_weights(), three.get_weights())) > 1e-4


def test_sgd_momentum_matches_reference():
    X, y = problem(2)
    model = classifier(np.float64, optimizer=SGD(learning_rate=0.1, momentum=0.9))
    w0 = model.get_weights()
    np.random.seed(9)
    model.fit(X, y, epochs=3, batch_size=10, verbose=0)
    np.random.seed(9)
    W, b = engine_layout(w0)
    ref = MatrixNetwork(W, b, activation="relu", output_activation="softmax",
                        cost="log_likelihood", dtype=np.float64)
    for _ in range(3):
        ref.train_epoch(X, np.eye(4)[y], np.random.permutation(len(X)), 10, 0.1,
                        optimizer="momentum", momentum=0.9)
    d = max_diff(model.get_weights(), ref)
    print(f"\nSGD momentum fit vs oracle: max |diff| = {d:.3e}")
    assert d < 1e-10


def test_shuffle_false_uses_data_order():
    X, y = problem(3)
    model = classifier(np.float64, optimizer=SGD(learning_rate=0.5))
    w0 = model.get_weights()
    model.fit(X, y, epochs=1, batch_size=6, shuffle=False, verbose=0)
    W, b = engine_layout(w0)
    ref = MatrixNetwork(W, b, activation="relu", output_activation="softmax",
                        cost="log_likelihood", dtype=np.float64)
    ref.train_epoch(X, np.eye(4)[y], np.arange(len(X)), 6, 0.5)
    assert max_diff(model.get_weights(), ref) < 1e-10


def test_dropout_is_seeded_and_used():
    X, y = problem(4)

    def run(rate):
        np.random.seed(2)
        m = Sequential([Dense(16, activation="relu", input_shape=(6,)), Dropout(rate),
                        Dense(4)])
        m.compile(optimizer=Adam(0.01), loss=SparseCategoricalCrossentropy(from_logits=True))
        m.fit(X, y, epochs=2, batch_size=8, verbose=0)
        return m.get_weights()

    a, b, c = run(0.5), run(0.5), run(0.0)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert max(np.abs(u - v).max() for u, v in zip(a, c)) > 1e-4


# ---------------------------------------------------------------------------------------------
# (2) evaluate, (3) predict + Softmax

def test_evaluate_is_numpy_mean_cross_entropy():
    X, y = problem(5, n=50)
    model = classifier(np.float64)
    np.random.seed(0)
    model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    loss, acc = model.evaluate(X, y, verbose=0)
    z = numpy_logits(model.get_weights(), X)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    want_loss = -logp[np.arange(len(y)), y].mean()
    want_acc = np.mean(z.argmax(axis=1) == y)
    print(f"\nevaluate loss {loss!r} vs numpy {want_loss!r}")
    assert loss == pytest.approx(want_loss, rel=1e-12)
    assert acc == pytest.approx(want_acc)
    # one-hot labels give the same numbers; the loss object agrees too
    assert model.evaluate(X, np.eye(4)[y], verbose=0) == pytest.approx([loss, acc])
    assert SparseCategoricalCrossentropy(from_logits=True)(y, z) == pytest.approx(want_loss)
    assert model.evaluate(X, y, verbose=0, return_dict=True) == \
        pytest.approx({"accuracy": acc, "loss": loss})


def test_evaluate_float32_close_to_numpy():
    X, y = problem(6, n=40)
    model = classifier(np.float32)
    loss, _ = model.evaluate(X, y, verbose=0)
    z = numpy_logits(model.get_weights(), X.astype(np.float32))
    want = -np.log(numpy_softmax(z)[np.arange(len(y)), y]).mean()
    assert loss == pytest.approx(want, rel=1e-5)


def test_predict_with_softmax_is_numpy_softmax():
    X, y = problem(7)
    model = classifier(np.float64)
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    logits = model.predict(X)
    assert logits.shape == (len(X), 4) and logits.dtype == np.float64
    z = numpy_logits(model.get_weights(), X)
    np.testing.assert_allclose(logits, z, rtol=0, atol=1e-12)
    prob_model = Sequential([model, Softmax()])
    p = prob_model.predict(X)
    d = np.abs(p - numpy_softmax(z)).max()
    print(f"\npredict+Softmax vs numpy softmax: max |diff| = {d:.3e}")
    assert d < 1e-12
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # the layers are shared: training the inner model changes the outer one's outputs
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_allclose(prob_model.predict(X), numpy_softmax(model.predict(X)),
                               atol=1e-12)
    # a Softmax after a relu Dense is applied in numpy, after the engine
    np.random.seed(0)
    relu_out = Sequential([Dense(3, activation="relu", input_shape=(6,)), Softmax()],
                          dtype=np.float64)
    zr = numpy_logits(relu_out.build().get_weights(), X)
    np.testing.assert_allclose(relu_out.predict(X), numpy_softmax(np.maximum(zr, 0)),
                               atol=1e-12)


def test_uint8_images_are_not_rescaled():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(12, 4, 5), dtype=np.uint8)
    np.random.seed(0)
    model = Sequential([Flatten(input_shape=(4, 5)), Dense(3)], dtype=np.float64)
    out = model.predict(x)
    want = numpy_logits(model.get_weights(), x.reshape(12, 20).astype(np.float64))
    np.testing.assert_allclose(out, want, atol=1e-9)


def test_input_size_inferred_at_first_fit():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 3, 2))
    y = rng.integers(0, 3, 20)
    model = Sequential([Flatten(), Dense(4, activation="tanh"), Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert not model.built
    model.fit(x, y, epochs=1, verbose=0)
    assert model.built and model.get_weights()[0].shape == (6, 4)
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        model.predict(rng.standard_normal((2, 6)))


# ---------------------------------------------------------------------------------------------
# (4) summary

def test_summary_param_counts(capsys):
    model = Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation="relu"),
                        Dense(10)], name="tutorial")
    model.summary()
    out = capsys.readouterr().out
    # hand-computed: 784*128 + 128 = 100480, 128*10 + 10 = 1290
    assert re.search(r"\(None, 784\)\s+0\n", out)
    assert re.search(r"\(Dense\)\s+\(None, 128\)\s+100,480\n", out)
    assert re.search(r"\(Dense\)\s+\(None, 10\)\s+1,290\n", out)
    assert "Total params: 101,770 (397.54 KB)" in out
    assert 'Model: "tutorial"' in out
    model.build()
    assert model.count_params() == 101770
    lines = []
    Sequential([Dense(5, input_dim=3), Dropout(0.2), Dense(2, activation="softmax")]).summary(
        print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 32 " in text       # 3*5+5 = 20, 5*2+2 = 12
    unbuilt = []
    Sequential([Dense(5), Dense(2)]).summary(print_fn=unbuilt.append)
    assert "0 (unbuilt)" in "\n".join(unbuilt)


# ---------------------------------------------------------------------------------------------
# (5) save / load

def test_save_load_round_trip(tmp_path):
    X, y = problem(8)
    model = Sequential([Input((2, 3)), Flatten(), Dense(9, activation="tanh"), Dropout(0.25),
                        Dense(4)], name="saved")
    np.random.seed(3)
    model.compile(optimizer=Adam(learning_rate=0.02, beta_2=0.99),
                  loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    Xs = X.reshape(-1, 2, 3)
    model.fit(Xs, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]     # no temporary file left
    loaded = fastnn.load_model(path)
    assert loaded.get_config()["layers"] == model.get_config()["layers"]
    assert loaded.name == "saved" and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded.predict(Xs), model.predict(Xs))
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 5
    assert loaded.evaluate(Xs, y, verbose=0) == model.evaluate(Xs, y, verbose=0)
    # training continues identically (weights, Adam moments and step count restored)
    np.random.seed(11)
    model.fit(Xs, y, epochs=1, batch_size=8, verbose=0)
    np.random.seed(11)
    loaded.fit(Xs, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the format is what the docstring says
    with np.load(path, allow_pickle=False) as f:
        cfg = json.loads(str(f["config"][()]))
        assert cfg["format"] == "fastnn.keras.Sequential" and cfg["input_shape"] == [2, 3]
        assert f["kernel_0"].shape == (6, 9) and f["bias_1"].shape == (4,)
        assert f["optimizer_s2_kernel_1"].shape == (9, 4)
    # without compile
    bare = load_model(path, compile=False)
    assert bare.optimizer is None
    # saving an uncompiled, unbuilt model works too
    Sequential([Dense(3), Dense(2)]).save(tmp_path / "empty.npz")
    assert not load_model(tmp_path / "empty.npz").built


def test_corrupted_files_are_rejected(tmp_path):
    model = classifier()
    path = tmp_path / "m.npz"
    model.save(path)
    raw = path.read_bytes()
    bad = tmp_path / "bad.npz"
    for cut in (0, 10, len(raw) // 2, len(raw) - 30):
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="not a valid fastnn model file"):
            load_model(bad)
    # one flipped byte inside the first kernel's data: the zip CRC catches it
    pos = raw.index(b"kernel_0.npy")
    pos = raw.index(b"\n", raw.index(b"{'descr'", pos)) + 40
    flipped = bytearray(raw)
    flipped[pos] ^= 0xFF
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError):
        load_model(bad)
    bad.write_text("not a model")
    with pytest.raises(ValueError):
        load_model(bad)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")

    def rewrite(**changes):
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        arrays.update(changes)
        for k, v in list(arrays.items()):
            if v is None:
                del arrays[k]
        np.savez(bad, **arrays)
        return bad

    cfg = json.loads(str(np.load(path)["config"][()]))
    with pytest.raises(ValueError, match="kernel_1"):
        load_model(rewrite(kernel_1=None))
    with pytest.raises(ValueError, match="shape"):
        load_model(rewrite(kernel_0=np.zeros((5, 9), np.float32)))
    with pytest.raises(ValueError, match="NaN"):
        load_model(rewrite(bias_0=np.full(9, np.nan, np.float32)))
    with pytest.raises(ValueError, match="JSON"):
        load_model(rewrite(config=np.array("{not json")))
    with pytest.raises(ValueError, match="format"):
        load_model(rewrite(config=np.array(json.dumps(dict(cfg, format="other")))))
    layers = [dict(cfg["layers"][0], class_name="Conv2D")] + cfg["layers"][1:]
    with pytest.raises(ValueError, match="layers\\[0\\]"):
        load_model(rewrite(config=np.array(json.dumps(dict(cfg, layers=layers)))))
    with pytest.raises(ValueError, match="unexpected"):
        load_model(rewrite(extra=np.zeros(3)))


# ---------------------------------------------------------------------------------------------
# (6) History and the printed lines

LINE = (r"^(\d+)/(\d+) - \d+s - \d+(us|ms|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}"
        r" - val_accuracy: \d\.\d{4} - val_loss: \d\.\d{4}$")


def test_history_and_printed_lines(capsys):
    X, y = problem(9, n=70)
    model = classifier()
    hist = model.fit(X[:50], y[:50], epochs=3, batch_size=16,
                     validation_data=(X[50:], y[50:]), verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0::2] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    for line in lines[1::2]:
        m = re.match(LINE, line)
        assert m, line
        assert m.group(1) == m.group(2) == "4"          # ceil(50/16)
    assert list(hist.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 3 for v in hist.history.values())
    assert hist.epoch == [0, 1, 2] and len(hist.epoch_seconds) == 3
    assert model.history is hist and hist.params["steps"] == 4
    # the printed values are the history's values
    assert f"loss: {hist.history['loss'][-1]:.4f}" in lines[-1]
    # validation numbers are evaluate() on the validation data at the end of the epoch
    val_loss, val_acc = model.evaluate(X[50:], y[50:], verbose=0)
    assert hist.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-6)
    assert hist.history["val_accuracy"][-1] == pytest.approx(val_acc)
    # verbose=0 is silent; evaluate prints one line
    model.fit(X, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
    model.evaluate(X, y, verbose=2)
    assert re.match(r"^3/3 - \d+s - \d+(us|ms|s)/step - accuracy: \d\.\d{4} - loss: "
                    r"\d\.\d{4}\n$", capsys.readouterr().out)
    # validation_split holds out the last examples
    h2 = model.fit(X, y, epochs=1, validation_split=0.2, verbose=0)
    assert h2.params["steps"] == math.ceil(56 / 32)
    assert h2.history["val_loss"][0] > 0


def on_screen(text):
    """What a terminal shows for ``text``: each line as left by its last carriage return,
    colour and erase-line codes removed."""
    text = re.sub(r"\x1b\[[0-9;]*[mK]", "", text)
    return [line.split("\r")[-1] for line in text.split("\n")]


def test_progress_bar_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        encoding = "utf-8"

        def isatty(self):
            return True

    out = Tty()
    monkeypatch.setattr(sys, "stdout", out)
    X, y = problem(10)
    classifier().fit(X, y, epochs=1, batch_size=8)
    line = on_screen(out.getvalue())[1]
    assert re.match(r"^5/5 ━{20} \d+s \d+(us|ms|s)/step - accuracy: \d\.\d{4} - loss: "
                    r"\d\.\d{4}$", line), line


def test_history_without_metrics():
    X, y = problem(11)
    model = Sequential([Dense(3, input_shape=(6,)), Dense(4)])
    model.compile(optimizer="sgd", loss=SparseCategoricalCrossentropy(from_logits=True))
    hist = model.fit(X, y, epochs=2, verbose=0)
    assert list(hist.history) == ["loss"]
    assert isinstance(model.evaluate(X, y, verbose=0), float)
    assert model.fit(X, y, epochs=0, verbose=0).history == {}


# ---------------------------------------------------------------------------------------------
# (7) bad inputs

def test_bad_inputs_raise():
    X, y = problem(12)
    model = Sequential([Dense(5, activation="relu", input_shape=(6,)), Dense(4)])
    with pytest.raises(ValueError, match="compile"):
        model.fit(X, y)
    with pytest.raises(RuntimeError, match="compile"):
        model.evaluate(X, y)
    model.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    cases = [
        (dict(x=X, y=y[:-1]), ValueError, "37 examples and 36 labels"),
        (dict(x=X, y=y + 4), ValueError, r"labels in 0\.\.3"),
        (dict(x=X, y=y - 1), ValueError, r"labels in 0\.\.3"),
        (dict(x=X, y=y + 0.5), ValueError, "integer"),
        (dict(x=X[:, :5], y=y), ValueError, r"shape \(6,\).*\(37, 5\)"),
        (dict(x=X.reshape(37, 2, 3), y=y), ValueError, "Flatten"),
        (dict(x=X[0], y=y), ValueError, "shape"),
        (dict(x=np.where(X > 1, np.nan, X), y=y), ValueError, "NaN"),
        (dict(x=X.astype(str), y=y), TypeError, "numeric"),
        (dict(x=X, y=y, epochs=-1), ValueError, "epochs"),
        (dict(x=X, y=y, epochs=1.5), TypeError, "epochs"),
        (dict(x=X, y=y, batch_size=0), ValueError, "batch_size"),
        (dict(x=X, y=y, validation_data=(X, y[:3])), ValueError, "validation_data"),
        (dict(x=X, y=y, validation_data=X), ValueError, "validation_data"),
        (dict(x=X, y=y, validation_split=1.0), ValueError, "validation_split"),
        (dict(x=X, y=np.eye(5)[y]), ValueError, r"\(37, 4\)"),
    ]
    for kwargs, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            model.fit(**dict(dict(verbose=0), **kwargs))
    with pytest.raises(ValueError, match="verbose"):
        model.fit(X, y, verbose=3)
    with pytest.raises(ValueError, match="expected one of 'sgd', 'adam', 'rmsprop', 'adagrad'"):
        model.compile(optimizer="nadam", loss="mse")
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="adam", loss="hinge")
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="adam")
    with pytest.raises(TypeError, match="loss"):
        model.compile(optimizer="adam", loss=3)
    with pytest.raises(ValueError, match="metrics"):
        model.compile(loss="mse", metrics=["auc"])
    with pytest.raises(ValueError, match="from_logits=True"):      # linear output needs it
        model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="linear last Dense"):
        Sequential([Dense(4, activation="softmax", input_shape=(6,))]).compile(
            loss=SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="softmax output"):
        Sequential([Dense(4, activation="softmax", input_shape=(6,))]).compile(loss="mse")
    with pytest.raises(ValueError, match="one dropout rate"):
        Sequential([Dense(5), Dropout(0.2), Dense(5), Dropout(0.3), Dense(2)]).compile(
            loss=CategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="one dropout rate"):
        Sequential([Dense(5), Dense(5), Dropout(0.3), Dense(2)]).compile(
            loss=CategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="one dropout rate"):
        Sequential([Flatten(), Dropout(0.3), Dense(2)]).compile(
            loss=CategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="softmax is only allowed on the last Dense"):
        Sequential([Dense(5, activation="softmax"), Dense(2)])
    with pytest.raises(ValueError, match="Softmax is only allowed after the last Dense"):
        Sequential([Dense(5), Softmax(), Dense(2)])
    with pytest.raises(ValueError, match="Flatten must come before"):
        Sequential([Dense(5), Flatten()])
    with pytest.raises(ValueError, match="activation"):
        Dense(3, activation="hard_sigmoid")
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)
    with pytest.raises(TypeError, match="layer"):
        Sequential([Dense(3), "relu"])
    with pytest.raises(ValueError, match="nesterov"):
        SGD(momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="input_shape"):
        Sequential([Flatten(input_shape=(2, 3)), Dense(2, input_shape=(5,))])
    with pytest.raises(ValueError, match="input size is not known"):
        Sequential([Dense(2)]).build()
    one_out = Sequential([Dense(1, input_shape=(6,))])
    one_out.compile(loss="mse", metrics=["accuracy"])
    with pytest.raises(ValueError, match="accuracy"):
        one_out.fit(X, X[:, 0], verbose=0)


# ---------------------------------------------------------------------------------------------
# (8) mean squared error

def test_mse_matches_numpy_and_oracle():
    rng = np.random.default_rng(13)
    X = rng.standard_normal((30, 5))
    T = rng.standard_normal((30, 3))
    np.random.seed(4)
    model = Sequential([Dense(7, activation="sigmoid", input_shape=(5,)), Dense(3)],
                       dtype=np.float64)
    model.compile(optimizer=SGD(learning_rate=0.2), loss="mse")
    model.build()
    w0 = model.get_weights()
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    out = numpy_logits(w0, X, sig)
    want = np.mean((out - T) ** 2)
    assert model.evaluate(X, T, verbose=0) == pytest.approx(want, rel=1e-12)
    assert MeanSquaredError()(T, out) == pytest.approx(want)
    np.random.seed(21)
    hist = model.fit(X, T, epochs=1, batch_size=7, verbose=0)
    np.random.seed(21)
    W, b = engine_layout(w0)
    ref = MatrixNetwork(W, b, activation="sigmoid", output_activation="identity",
                        cost="quadratic", cost_scale=2.0 / 3, dtype=np.float64)
    order = np.random.permutation(30)
    running = 0.0
    for start in range(0, 30, 7):
        idx = order[start:start + 7]
        running += np.sum((ref.feedforward(X[idx]) - T[idx]) ** 2) / 3
        ref.train_epoch(X, T, idx, len(idx), 0.2)
    d = max_diff(model.get_weights(), ref)
    print(f"\nmse SGD fit vs oracle: max |diff| = {d:.3e}")
    assert d < 1e-10
    assert hist.history["loss"][0] == pytest.approx(running / 30, rel=1e-10)
    # one output: float targets (n,)
    single = Sequential([Dense(1, input_shape=(5,))], dtype=np.float64)
    single.compile(optimizer="sgd", loss="mean_squared_error")
    p = single.build().predict(X)[:, 0]
    assert single.evaluate(X, T[:, 0], verbose=0) == pytest.approx(np.mean((p - T[:, 0]) ** 2))


def test_categorical_crossentropy_softmax_output():
    X, y = problem(14)
    np.random.seed(6)
    model = Sequential([Dense(5, activation="tanh", input_shape=(6,)),
                        Dense(4, activation="softmax")], dtype=np.float64)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, np.eye(4)[y], epochs=1, verbose=0)
    p = numpy_softmax(numpy_logits(model.get_weights(), X, np.tanh))
    loss, _ = model.evaluate(X, np.eye(4)[y], verbose=0)
    assert loss == pytest.approx(-np.log(p[np.arange(len(y)), y]).mean(), rel=1e-10)
    np.testing.assert_allclose(model.predict(X), p, atol=1e-12)
    with pytest.raises(ValueError, match="probability rows"):
        model.evaluate(X, np.full((len(X), 4), 0.5), verbose=0)
    # a linear Dense followed by Softmax trains like a softmax Dense
    np.random.seed(6)
    folded = Sequential([Dense(5, activation="tanh", input_shape=(6,)), Dense(4), Softmax()],
                        dtype=np.float64)
    folded.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    folded.fit(X, np.eye(4)[y], epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), folded.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# (9) network2 round trip

def test_network2_round_trip():
    rng = np.random.default_rng(15)
    X = rng.standard_normal((11, 5))
    np.random.seed(7)
    net = network2.Network([5, 8, 6, 3], cost=network2.LogLikelihoodCost, activation="tanh")
    model = Sequential.from_network2(net)
    assert [l.activation for l in model.layers] == ["tanh", "tanh", "softmax"]
    want = net.feedforward(X.T).T
    np.testing.assert_allclose(model.predict(X), want, atol=1e-12)
    back = model.to_network2()
    assert back.sizes == [5, 8, 6, 3] and back.cost is network2.LogLikelihoodCost
    assert back.activation == "tanh" and back.output_activation == "softmax"
    np.testing.assert_allclose(back.feedforward(X.T).T, want, atol=1e-12)
    # the model's weights are copies, not views of the network's
    model.layers[0].W[...] = 0
    np.testing.assert_allclose(net.feedforward(X.T).T, want, atol=1e-12)

    # a Keras-trained logits model: Sequential([model, Softmax()]) converts to softmax +
    # log-likelihood, the model alone to a linear output with the quadratic cost
    Xc, yc = problem(16)
    clf = classifier(np.float64)
    clf.fit(Xc, yc, epochs=1, verbose=0)
    prob = Sequential([clf, Softmax()])
    n2 = prob.to_network2()
    assert n2.cost is network2.LogLikelihoodCost and n2.activation == "relu"
    np.testing.assert_allclose(n2.feedforward(Xc.T).T, prob.predict(Xc), atol=1e-12)
    lin = clf.to_network2()
    assert lin.cost is network2.QuadraticCost and lin.output_activation == "identity"
    np.testing.assert_allclose(lin.feedforward(Xc.T).T, clf.predict(Xc), atol=1e-12)
    mixed = Sequential([Dense(3, activation="relu", input_shape=(2,)),
                        Dense(3, activation="tanh"), Dense(2)])
    with pytest.raises(ValueError, match="one activation"):
        mixed.build().to_network2()


@pytest.mark.parametrize("act", ["gelu", "silu", "swish", "elu", "selu", "leaky_relu",
                                 "softplus"])
@pytest.mark.parametrize("opt", ["rmsprop", "adagrad"])
def test_new_activations_and_optimizers_match_the_oracle(act, opt):
    """Dense(activation=...) with the table's newer activations and the RMSprop/Adagrad
    optimizers: one epoch of fit equals fastnn.reference with the same batches, Keras 3 rules."""
    from fastnn import keras, optimizers, reference
    rng = np.random.RandomState(4)
    X = rng.randn(40, 6)
    y = rng.randint(0, 3, 40)
    model = keras.Sequential([keras.Dense(5, activation=act, input_shape=(6,)),
                              keras.Dense(3, activation="softmax")], dtype="float64")
    opt_obj = (optimizers.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.5)
               if opt == "rmsprop" else optimizers.Adagrad(learning_rate=0.05))
    model.compile(optimizer=opt_obj, loss="sparse_categorical_crossentropy")
    model.build()
    (k0, b0, k1, b1) = [w.copy() for w in model.get_weights()]
    ref_act = "silu" if act == "swish" else act
    ref = reference.MatrixNetwork([k0.T.copy(), k1.T.copy()], [b0.reshape(-1, 1),
                                  b1.reshape(-1, 1)], activation=ref_act,
                                  output_activation="softmax", cost="log_likelihood")
    model.fit(X, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    kw = dict(rho=0.8, momentum=0.5) if opt == "rmsprop" else dict(initial_accumulator=0.1)
    ref.train_epoch(X, np.eye(3)[y], np.arange(40), 8, 0.01 if opt == "rmsprop" else 0.05,
                    optimizer=opt, eps=1e-7, **kw)
    got = model.get_weights()
    want = [ref.weights[0].T, ref.biases[0].ravel(), ref.weights[1].T, ref.biases[1].ravel()]
    diff = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
    print(f"{act}/{opt}: max |fit - oracle| = {diff:.3g}")
    assert diff < 1e-12
    assert model.optimizer.iterations == 5
