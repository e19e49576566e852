"""fit(callbacks=[...]) (issue 19 item 3): the hooks Keras calls, with the logs Keras passes,
and what the built-in callbacks decide, checked against the History and against fits that
did the same thing by hand."""
import csv

import numpy as np
import pytest

import fastnn.keras as keras


@pytest.fixture(autouse=True)
def restore_np_random():
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def data(seed=0, n=60, n_in=5, k=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in))
    y = rng.integers(0, k, size=n)
    return X, y


def model(seed=1, lr=0.01, dtype=np.float64, opt=None):
    np.random.seed(seed)
    m = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(3)], dtype=dtype)
    m.compile(optimizer=opt or keras.optimizers.Adam(lr),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    m.build()
    return m


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", None, logs))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch, logs))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, dict(logs), [w.copy() for w in
                                                             self.model.get_weights()]))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", None, logs))


def test_subclass_hooks_order_logs_and_weights():
    X, y = data()
    rec = Recorder()
    m = model()
    hist = m.fit(X[:45], y[:45], epochs=3, batch_size=8, validation_data=(X[45:], y[45:]),
                 callbacks=[rec], verbose=0)
    kinds = [(c[0], c[1]) for c in rec.calls]
    assert kinds == [("train_begin", None), ("epoch_begin", 0), ("epoch_end", 0),
                     ("epoch_begin", 1), ("epoch_end", 1), ("epoch_begin", 2),
                     ("epoch_end", 2), ("train_end", None)]
    assert rec.model is m and rec.params["epochs"] == 3 and rec.params["steps"] == 6
    ends = [c for c in rec.calls if c[0] == "epoch_end"]
    for e, c in enumerate(ends):
        assert c[2] == {k: v[e] for k, v in hist.history.items()}
    # the weights a callback sees at the end of epoch e are the weights after e+1 epochs
    m, m2 = model(seed=5), model(seed=5)
    state = np.random.get_state()
    m.fit(X[:45], y[:45], epochs=2, batch_size=8, callbacks=[rec], verbose=0)
    np.random.set_state(state)
    m2.fit(X[:45], y[:45], epochs=1, batch_size=8, verbose=0)
    first_epoch = [c for c in rec.calls if c[0] == "epoch_end"][3][3]
    # m2's one-epoch fit drew one permutation; the two-epoch fit drew two, the first equal
    for a, b in zip(first_epoch, m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_stop_training_and_early_stopping_restore_best():
    X, y = data(1)
    m = model(lr=0.2)

    class StopAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True
    hist = m.fit(X, y, epochs=10, callbacks=[StopAt()], verbose=0)
    assert hist.epoch == [0, 1]
    # EarlyStopping: the stopping epoch and the restored weights follow the val_loss history
    m = model(seed=2, lr=0.3)
    snaps = []
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: snaps.append(m.get_weights()))
    es = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2,
                                       restore_best_weights=True)
    hist = m.fit(X[:40], y[:40], epochs=40, batch_size=4, validation_split=0.0,
                 validation_data=(X[40:], y[40:]), callbacks=[keep, es], verbose=0)
    vl = hist.history["val_loss"]
    best = int(np.argmin(vl))
    print(f"\nval_loss {np.round(vl, 4).tolist()}, best epoch {best}")
    # stopped `patience` epochs after the best, or ran to the end
    assert len(vl) == min(40, best + 3)
    if len(vl) < 40:
        assert es.stopped_epoch == len(vl) - 1
    for a, b in zip(m.get_weights(), snaps[best]):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau_and_scheduler_reach_the_engine():
    X, y = data(2)
    # a scheduler that sets lr 0 from epoch 1 on: the weights stop moving
    m = model(lr=0.05)
    snaps = []
    sched = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.05 if e == 0 else 0.0)
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: snaps.append(m.get_weights()))
    m.fit(X, y, epochs=3, callbacks=[sched, keep], verbose=0)
    assert m.optimizer.learning_rate == 0.0
    assert any(not np.array_equal(a, b) for a, b in zip(snaps[0], model(lr=0.05).weights))
    for a, b in zip(snaps[0], snaps[2]):
        np.testing.assert_array_equal(a, b)
    # ReduceLROnPlateau with a monitored value that never improves: lr * factor each time
    m = model(opt=keras.optimizers.SGD(0.1))
    rl = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1,
                                           min_delta=1e9, min_lr=0.02)
    lrs = []
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: lrs.append(m.optimizer.learning_rate))
    m.fit(X, y, epochs=5, callbacks=[rl, keep], verbose=0)
    # epoch 0 sets the best; each later epoch fails by min_delta and halves, floored
    assert lrs == [0.1, 0.05, 0.025, 0.02, 0.02]


def test_csv_logger_and_checkpoint(tmp_path):
    X, y = data(3)
    # CSVLogger: one row per epoch, the History's values
    m = model()
    path = tmp_path / "log.csv"
    hist = m.fit(X[:50], y[:50], epochs=3, validation_data=(X[50:], y[50:]),
                 callbacks=[keras.callbacks.CSVLogger(str(path))], verbose=0)
    rows = list(csv.DictReader(open(path)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for k, v in hist.history.items():
        np.testing.assert_allclose([float(r[k]) for r in rows], v, rtol=1e-12)
    # ModelCheckpoint(save_best_only): the saved model is the best val_loss epoch's
    m = model(seed=4, lr=0.3)
    ck = tmp_path / "best.npz"
    snaps = []
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: snaps.append(m.get_weights()))
    hist = m.fit(X[:50], y[:50], epochs=8, batch_size=5, validation_data=(X[50:], y[50:]),
                 callbacks=[keep, keras.callbacks.ModelCheckpoint(str(ck), save_best_only=True)],
                 verbose=0)
    best = int(np.argmin(hist.history["val_loss"]))
    for a, b in zip(keras.models.load_model(ck).get_weights(), snaps[best]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="filepath"):
        keras.callbacks.ModelCheckpoint(str(tmp_path / "m.h5"))


def test_terminate_on_nan(capsys):
    """A NaN loss stops the fit.  (The engine itself ends a fit whose weights stop being
    finite, with fastnn.DivergenceError, so here the callback is given the NaN directly.)"""
    m = model()
    tn = keras.callbacks.TerminateOnNaN()
    tn.set_model(m)
    tn.on_epoch_end(0, {"loss": 0.5})
    assert not m.stop_training
    tn.on_epoch_end(1, {"loss": float("nan")})
    assert m.stop_training
    assert "Epoch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_batch_hooks_take_the_slow_path_with_the_same_result():
    X, y = data(5)
    fast, slow = model(seed=6), model(seed=6)
    batches = []
    hook = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: batches.append((b, dict(logs))))
    np.random.seed(9)
    hf = fast.fit(X, y, epochs=2, batch_size=16, verbose=0)
    np.random.seed(9)
    hs = slow.fit(X, y, epochs=2, batch_size=16, callbacks=[hook], verbose=0)
    assert [b for b, _ in batches] == [0, 1, 2, 3] * 2
    assert set(batches[0][1]) == {"loss", "accuracy"}
    diff = max(np.abs(a - b).max() for a, b in zip(fast.get_weights(), slow.get_weights()))
    print(f"\nslow path vs one engine call: max |dw| = {diff:.2e}")
    assert diff < 1e-12
    assert fast.optimizer.iterations == slow.optimizer.iterations == 8
    np.testing.assert_allclose(hs.history["loss"], hf.history["loss"], rtol=1e-10)
    # the last batch's running loss is the epoch's loss
    assert batches[3][1]["loss"] == pytest.approx(hs.history["loss"][0], rel=1e-12)
    # stop_training from a batch hook ends the epoch there
    stopper = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: setattr(slow, "stop_training", b == 1))
    h = slow.fit(X, y, epochs=3, batch_size=16, callbacks=[stopper], verbose=0)
    assert h.epoch == [0]


def test_bad_callbacks():
    X, y = data(6)
    m = model()
    with pytest.raises(TypeError, match=r"callbacks\[0\]"):
        m.fit(X, y, callbacks=[print], verbose=0)
    with pytest.raises(ValueError, match="val_loss"):
        m.fit(X, y, callbacks=[keras.callbacks.EarlyStopping()], verbose=0)
    with pytest.raises(ValueError, match="mode"):
        keras.callbacks.EarlyStopping(mode="up")
