"""Metrics and losses users pick (issue 19 item 4), against numpy on the model's outputs."""
import numpy as np
import pytest

import fastnn.keras as keras


@pytest.fixture(autouse=True)
def restore_np_random():
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def numpy_metrics(out, y, k=3):
    onehot = np.eye(out.shape[1])[y]
    order = np.argsort(-out, axis=1)
    return {"mae": np.mean(np.abs(out - onehot)), "mse": np.mean((out - onehot) ** 2),
            "acc": np.mean(out.argmax(axis=1) == y),
            "top": np.mean([y[i] in order[i, :k] for i in range(len(y))])}


def test_metrics_in_history_and_evaluate_with_keras_names():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 6))
    y = rng.integers(0, 5, 50)
    np.random.seed(0)
    model = keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(5, activation="softmax")], dtype=np.float64)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["acc", "mae", "mse",
                           keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3")])
    hist = model.fit(X[:40], y[:40], epochs=2, validation_data=(X[40:], y[40:]), verbose=0)
    assert list(hist.history) == ["acc", "loss", "mae", "mse", "top3", "val_acc", "val_loss",
                                  "val_mae", "val_mse", "val_top3"]
    assert model.metrics_names == ["loss", "acc", "mae", "mse", "top3"]
    # the validation values are the numpy metrics of the outputs at the end of the fit
    out = model.predict(X[40:], verbose=0)
    ref = numpy_metrics(out, y[40:])
    logs = model.evaluate(X[40:], y[40:], verbose=0, return_dict=True)
    for key, name in (("acc", "acc"), ("mae", "mae"), ("mse", "mse"), ("top", "top3")):
        assert hist.history["val_" + name][-1] == pytest.approx(ref[key], rel=1e-12)
        assert logs[name] == pytest.approx(ref[key], rel=1e-12)
    loss = -np.mean(np.log(out[np.arange(10), y[40:]]))
    assert logs["loss"] == pytest.approx(loss, rel=1e-10)
    # evaluate's list is metrics_names' order
    assert model.evaluate(X[40:], y[40:], verbose=0) == pytest.approx(
        [logs[k] for k in model.metrics_names])
    # training-set output metrics: the end-of-epoch weights on the training data
    ref_train = numpy_metrics(model.predict(X[:40], verbose=0), y[:40])
    assert hist.history["mae"][-1] == pytest.approx(ref_train["mae"], rel=1e-12)


def test_top_k_counts_ties_against_the_true_class_as_keras_does():
    out = np.array([[0.5, 0.2, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]])
    onehot = np.eye(4)[[1, 0]]
    assert keras.metrics.top_k_categorical_accuracy(onehot, out, k=2) == 0.5


def test_binary_crossentropy_one_step_against_numpy():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((24, 3))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(float)
    for from_logits in (False, True):
        np.random.seed(2)
        act = None if from_logits else "sigmoid"
        model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1, activation=act)],
                                 dtype=np.float64)
        model.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.BinaryCrossentropy(from_logits=from_logits),
                      metrics=["accuracy"])
        model.build()
        w, b = model.get_weights()
        hist = model.fit(X, y, epochs=1, batch_size=24, shuffle=False, verbose=0)
        p = 1 / (1 + np.exp(-(X @ w + b).ravel()))
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        g = p - y                                    # d loss / d logit, per example
        w1 = w - 0.5 * (X.T @ g / 24).reshape(w.shape)
        b1 = b - 0.5 * g.mean()
        nw, nb = model.get_weights()
        np.testing.assert_allclose(nw, w1, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(nb, b1, rtol=1e-12, atol=1e-14)
        assert hist.history["loss"][0] == pytest.approx(loss, rel=1e-12)
        # 'accuracy' with binary cross-entropy is binary accuracy (threshold 0.5 on the output)
        out = model.predict(X, verbose=0)
        acc = np.mean((out.ravel() > 0.5) == (y > 0.5))
        logs = model.evaluate(X, y, verbose=0, return_dict=True)
        assert logs["accuracy"] == acc
        if from_logits:          # predict gives the logits
            np.testing.assert_allclose(out.ravel(), X @ nw.ravel() + nb, rtol=1e-12)
        assert logs["loss"] == pytest.approx(keras.losses.BinaryCrossentropy(
            from_logits=from_logits)(y, out), rel=1e-9)


def test_losses_the_engine_lacks_say_so():
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    for name in ("mae", "mean_absolute_error", "huber"):
        with pytest.raises(ValueError, match="needs a cost the engine does not have"):
            model.compile(loss=name)
    with pytest.raises(ValueError, match="engine"):
        keras.losses.Huber()
    with pytest.raises(ValueError, match="sigmoid last Dense"):
        model.compile(loss="binary_crossentropy")
    with pytest.raises(ValueError, match="metrics"):
        model.compile(loss="mse", metrics=["f1_score"])
