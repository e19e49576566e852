"""Keras-style convolutional layers (issue 17): Conv2D, MaxPooling2D, Flatten and Dropout in
``fastnn.keras.Sequential``, against the numpy oracle ``fastnn.reference_cnn.ConvNetwork``
(one SGD epoch on the same mini-batches, and predict), against a file real Keras 3 wrote
(tests/data/keras3/cnn.*, made by tools/make_keras_conv_golden.py), and through fastnn's own
files.  The oracle's layer descriptions are written out here by hand from Keras' rules, not
taken from the model.  Each comparison prints its largest difference."""
import json
import os
import re
import zipfile

import numpy as np
import pytest

import fastnn.keras as keras
from fastnn import reference_cnn as RC

L = keras.layers
DATA = os.path.join(os.path.dirname(__file__), "data", "keras3")


def oracle_specs(in_shape, k, filters, stride, padding, pool, pool_stride):
    """conv -> maxpool -> flatten -> dense -> dense, as the oracle describes them."""
    H, W, C = in_shape
    if padding == "same":
        oh, pt = RC.same_padding(H, k[0], stride[0])
        ow, pl = RC.same_padding(W, k[1], stride[1])
    else:
        oh, ow, pt, pl = (H - k[0]) // stride[0] + 1, (W - k[1]) // stride[1] + 1, 0, 0
    conv = {"kind": "conv2d", "in_shape": in_shape, "out_shape": (oh, ow, filters),
            "geom": (k[0], k[1], stride[0], stride[1], pt, pl)}
    ph, pw = (oh - pool[0]) // pool_stride[0] + 1, (ow - pool[1]) // pool_stride[1] + 1
    mp = {"kind": "maxpool2d", "in_shape": (oh, ow, filters), "out_shape": (ph, pw, filters),
          "geom": pool + pool_stride}
    n = ph * pw * filters
    flat = {"kind": "flatten", "in_shape": (ph, pw, filters), "out_shape": (1, 1, n)}
    return [conv, mp, flat, None, None], n


def model_for(in_shape, k, stride, padding, pool, pool_stride, filters=3, dtype=np.float64):
    return keras.Sequential([keras.Input(shape=in_shape),
                             L.Conv2D(filters, k, strides=stride, padding=padding,
                                      activation="tanh"),
                             L.MaxPooling2D(pool, strides=pool_stride),
                             L.Flatten(),
                             L.Dense(6, activation="relu"),
                             L.Dense(3, activation="softmax")], dtype=dtype)


def oracle_of(model, specs):
    """The oracle with the model's weights (engine layouts: kernel as is, dense (out, in))."""
    k0, b0, k1, b1, k2, b2 = model.get_weights()
    return RC.ConvNetwork(specs, [k0, None, None, k1.T, k2.T], [b0, None, None, b1, b2],
                          ["tanh", "identity", "identity", "relu", "softmax"])


# every padding and stride kind: (image, kernel, strides, padding, pool, pool strides)
CASES = [
    ((9, 8, 2), (3, 3), (1, 1), "valid", (2, 2), (2, 2)),
    ((9, 8, 2), (3, 2), (2, 2), "valid", (2, 2), (1, 1)),
    ((9, 8, 1), (3, 3), (1, 1), "same", (2, 2), (2, 2)),
    ((9, 8, 3), (2, 3), (2, 1), "same", (3, 2), (2, 2)),
    ((7, 7, 2), (4, 4), (3, 3), "same", (1, 2), (1, 1)),
    ((8, 9, 2), (1, 1), (1, 2), "valid", (2, 3), (2, 3)),
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_fit_one_epoch_and_predict_match_the_oracle(index):
    case = CASES[index]
    in_shape, k, stride, padding, pool, pool_stride = case
    specs, _ = oracle_specs(in_shape, k, 3, stride, padding, pool, pool_stride)
    rng = np.random.default_rng(index)
    n, batch, lr = 11, 4, 0.1
    x = rng.standard_normal((n,) + in_shape)
    y = rng.integers(0, 3, n)
    np.random.seed(3)
    model = model_for(*case)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.build()
    ref = oracle_of(model, specs)
    pred_diff = np.abs(model.predict(x, verbose=0) - ref.feedforward(x)).max()
    start = model.get_weights()
    model.fit(x, y, epochs=1, batch_size=batch, shuffle=False, verbose=0)
    ref.sgd_epoch(x, np.eye(3)[y], np.arange(n), batch, lr)
    got = model.get_weights()
    want = [ref.weights[0], ref.biases[0], ref.weights[3].T, ref.biases[3], ref.weights[4].T,
            ref.biases[4]]
    diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
    moved = min(float(np.abs(g - w).max()) for g, w in zip(got, start))
    print(f"{case}: predict {pred_diff:.3g}, one SGD epoch max |fastnn - oracle| = {diff:.3g} "
          f"(every array moved by at least {moved:.3g})")
    assert pred_diff < 1e-12 and diff < 1e-10 and moved > 1e-5


def test_weights_use_keras_layout_and_round_trip():
    np.random.seed(5)
    model = keras.Sequential([L.Conv2D(4, (3, 2), input_shape=(6, 5, 2)), L.MaxPooling2D(),
                              L.Flatten(), L.Dense(3)])
    model.build()
    shapes = [w.shape for w in model.get_weights()]
    # conv (6, 5, 2) -> (4, 4, 4) -> pool (2, 2, 4) -> 16 values
    assert shapes == [(3, 2, 2, 4), (4,), (16, 3), (3,)]
    assert [w.shape for w in model.layers[0].weights] == [(3, 2, 2, 4), (4,)]
    assert [w.shape for w in model.weights] == shapes
    new = [np.random.standard_normal(s) for s in shapes]
    model.set_weights(new)
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b.astype(np.float32))
    with pytest.raises(ValueError, match=r"conv2d.* kernel: expected shape \(3, 2, 2, 4\)"):
        model.set_weights([np.zeros((2, 3, 2, 4))] + new[1:])
    assert model.count_params() == 3 * 2 * 2 * 4 + 4 + 16 * 3 + 3


def test_images_without_the_channel_axis():
    """(n, 28, 28) data for Input(shape=(28, 28, 1)) are the same images."""
    np.random.seed(6)
    model = keras.Sequential([keras.Input(shape=(7, 6, 1)), L.Conv2D(2, 3, padding="same"),
                              L.Flatten(), L.Dense(2)])
    x = np.random.standard_normal((4, 7, 6))
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  model.predict(x[..., None], verbose=0))


def test_save_and_load_both_formats(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((20, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    np.random.seed(8)
    model = keras.Sequential([keras.Input(shape=(8, 8, 1)),
                              L.Conv2D(3, 3, padding="same", activation="relu"),
                              L.MaxPooling2D(2, 2), L.Dropout(0.2),
                              L.Conv2D(4, 2, strides=2, activation="elu"), L.Flatten(),
                              L.Dense(5, activation="relu"), L.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    pytest.importorskip("h5py")
    loaded = {}
    for name in ("m.npz", "m.keras"):
        model.save(tmp_path / name)
        back = loaded[name] = keras.models.load_model(tmp_path / name)
        np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
        assert [type(l).__name__ for l in back.layers] == [type(l).__name__
                                                           for l in model.layers]
        assert back.optimizer.iterations == model.optimizer.iterations == 6
    # the kernels' Adam moments came back: one more epoch (same shuffle, same dropout masks)
    # trains each loaded model exactly as the one that was saved
    state = np.random.get_state()
    for back in loaded.values():
        np.random.set_state(state)
        back.fit(x, y, epochs=1, batch_size=8, verbose=0)
    np.random.set_state(state)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for back in loaded.values():
        for a, b in zip(back.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
    model.save_weights(tmp_path / "m.weights.h5")
    fresh = keras.Sequential([keras.Input(shape=(8, 8, 1)),
                              L.Conv2D(3, 3, padding="same", activation="relu"),
                              L.MaxPooling2D(2, 2), L.Dropout(0.2),
                              L.Conv2D(4, 2, strides=2, activation="elu"), L.Flatten(),
                              L.Dense(5, activation="relu"), L.Dense(3, activation="softmax")])
    fresh.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def golden():
    with np.load(os.path.join(DATA, "cnn.npz")) as f:
        return {k: f[k] for k in f.files}


def test_loads_the_file_keras_wrote_and_trains_on_as_keras_did():
    pytest.importorskip("h5py")
    g = golden()
    model = keras.models.load_model(os.path.join(DATA, "cnn.keras"))
    assert [type(l).__name__ for l in model.layers] == ["Conv2D", "MaxPooling2D", "Conv2D",
                                                        "Flatten", "Dense", "Dense"]
    assert model.layers[0].padding == "same" and model.layers[0].strides == (2, 1)
    diff = np.abs(model.predict(g["x"], verbose=0) - g["pred"]).max()
    assert model.optimizer.iterations == int(g["iterations"])
    model.fit(g["x"], g["y"], epochs=1, batch_size=len(g["x"]), shuffle=False, verbose=0)
    step = max(float(np.abs(w - g[f"next_{i}"]).max())
               for i, w in enumerate(model.get_weights()))
    print(f"Keras' cnn.keras: predict max diff {diff:.2e}, one more Adam epoch {step:.2e}")
    assert diff < 1e-6 and step < 1e-6
    w = keras.Sequential([keras.Input(shape=(9, 8, 2)),
                          L.Conv2D(3, 3, strides=(2, 1), padding="same", activation="relu"),
                          L.MaxPooling2D(2), L.Conv2D(4, (2, 3), activation="tanh"),
                          L.Flatten(), L.Dense(5, activation="relu"),
                          L.Dense(3, activation="softmax")])
    w.load_weights(os.path.join(DATA, "cnn.weights.h5"))
    assert np.abs(w.predict(g["x"], verbose=0) - g["pred"]).max() < 1e-6


def _h5_shapes(data):
    import h5py
    import io
    shapes = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        f.visititems(lambda name, obj: shapes.__setitem__(name, obj.shape)
                     if isinstance(obj, h5py.Dataset) else None)
    return shapes


def test_fastnn_writes_the_layout_keras_wrote(tmp_path):
    """Our .keras file for the golden model has Keras' members, layer configs and h5 paths
    and shapes (optimizer variables included)."""
    pytest.importorskip("h5py")
    model = keras.models.load_model(os.path.join(DATA, "cnn.keras"))
    model.save(tmp_path / "ours.keras")
    with zipfile.ZipFile(tmp_path / "ours.keras") as ours, \
            zipfile.ZipFile(os.path.join(DATA, "cnn.keras")) as ks:
        assert sorted(ours.namelist()) == sorted(ks.namelist())
        oc, kc = (json.loads(z.read("config.json"))["config"]["layers"] for z in (ours, ks))
        for a, b in zip(oc, kc):
            assert a["class_name"] == b["class_name"]
            for key in ("filters", "kernel_size", "strides", "padding", "pool_size",
                        "activation", "units", "data_format"):
                assert a["config"].get(key) == b["config"].get(key), (a["class_name"], key)
        assert _h5_shapes(ours.read("model.weights.h5")) == \
            _h5_shapes(ks.read("model.weights.h5"))


def test_real_keras_loads_fastnn_conv_files(tmp_path):
    """Runs where Keras 3 is installed (not needed by the default suite)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    real = pytest.importorskip("keras")
    if not str(real.__version__).startswith("3."):
        pytest.skip(f"Keras {real.__version__}, not Keras 3")
    rng = np.random.default_rng(10)
    x = rng.standard_normal((16, 9, 8, 2)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    np.random.seed(10)
    m = keras.Sequential([keras.Input(shape=(9, 8, 2)),
                          L.Conv2D(3, 3, strides=(2, 1), padding="same", activation="relu"),
                          L.MaxPooling2D(2), L.Conv2D(4, (2, 3), activation="tanh"),
                          L.Flatten(), L.Dropout(0.1), L.Dense(5, activation="relu"),
                          L.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    m.save(tmp_path / "f.keras")
    km = real.models.load_model(tmp_path / "f.keras")
    diff = np.abs(np.asarray(km.predict(x, verbose=0)) - m.predict(x, verbose=0)).max()
    print(f"\nKeras {real.__version__} predicting with fastnn's conv file: max diff {diff:.2e}")
    assert diff < 1e-5 and int(km.optimizer.iterations) == m.optimizer.iterations
    assert [type(l).__name__ for l in km.layers] == [type(l).__name__ for l in m.layers]


def test_summary_shapes_and_counts():
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)),
                              L.Conv2D(32, 3, padding="same", activation="relu"),
                              L.MaxPooling2D(2, 2),
                              L.Conv2D(64, 3, padding="same", activation="relu"),
                              L.MaxPooling2D(2, 2), L.Flatten(), L.Dropout(0.5),
                              L.Dense(128, activation="relu"),
                              L.Dense(10, activation="softmax")], name="cnn")
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines) + "\n"
    # by hand: 3*3*1*32 + 32; 3*3*32*64 + 64; 7*7*64 = 3136 inputs * 128 + 128; 128*10 + 10
    want = [("Conv2D", "(None, 28, 28, 32)", "320"), ("MaxPooling2D", "(None, 14, 14, 32)", "0"),
            ("Conv2D", "(None, 14, 14, 64)", "18,496"),
            ("MaxPooling2D", "(None, 7, 7, 64)", "0"), ("Flatten", "(None, 3136)", "0"),
            ("Dropout", "(None, 3136)", "0"), ("Dense", "(None, 128)", "401,536"),
            ("Dense", "(None, 10)", "1,290")]
    for cls, shape, params in want:
        assert re.search(rf"\({cls}\)\s+{re.escape(shape)}\s+{params}\n", text), (cls, text)
    assert "Total params: 421,642 (1.61 MB)" in text
    model.build()
    assert model.count_params() == 421642


def test_dropout_anywhere_goes_on_the_engine_layer_before_it():
    model = keras.Sequential([keras.Input(shape=(6, 6, 1)), L.Dropout(0.1),
                              L.Conv2D(2, 3), L.Dropout(0.2), L.MaxPooling2D(),
                              L.Flatten(), L.Dropout(0.3), L.Dense(4), L.Dropout(0.5),
                              L.Dense(2, activation="softmax")])
    st = model._structure()
    specs = model._engine_layers(st)
    got = [(s["kind"], s["dropout"]) for s in specs]
    assert got == [("flatten", 0.1), ("conv2d", 0.2), ("maxpool2d", 0.0), ("flatten", 0.3),
                   ("dense", 0.5), ("dense", 0.0)]
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = np.random.default_rng(2).standard_normal((10, 6, 6, 1))
    y = np.eye(2)[np.arange(10) % 2]
    runs = []
    model.build()
    for seed in (11, 11, 12):
        model.set_weights([np.full(w.shape, 0.1) for w in model.get_weights()])
        np.random.seed(seed)
        model.fit(x, y, epochs=1, batch_size=5, verbose=0)
        runs.append(model.get_weights())
    same = max(float(np.abs(a - b).max()) for a, b in zip(runs[0], runs[1]))
    other = max(float(np.abs(a - b).max()) for a, b in zip(runs[0], runs[2]))
    assert same == 0.0 and other > 0.0          # the masks follow np.random's seed
    p = model.predict(x, verbose=0)             # no dropout when predicting
    np.testing.assert_array_equal(p, model.predict(x, verbose=0))


def test_bad_layers_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"conv2d.*kernel_size \(5, 5\) is larger than its "
                                         r"input \(4, 4, 1\)"):
        keras.Sequential([keras.Input(shape=(4, 4, 1)), L.Conv2D(2, 5, name="conv2d_big"),
                          L.Flatten(), L.Dense(2)]).build()
    with pytest.raises(ValueError, match=r"pool_size \(3, 3\) is larger than its input"):
        keras.Sequential([keras.Input(shape=(2, 2, 1)), L.MaxPooling2D(3), L.Flatten(),
                          L.Dense(2)]).build()
    with pytest.raises(ValueError, match=r"Conv2D takes images .* gives vectors"):
        keras.Sequential([keras.Input(shape=(8, 8, 1)), L.Flatten(), L.Conv2D(2, 3)])
    with pytest.raises(ValueError, match=r"Dense takes vectors.*Flatten\(\)"):
        keras.Sequential([keras.Input(shape=(8, 8, 1)), L.Conv2D(2, 3), L.Dense(2)])
    model = keras.Sequential([L.Conv2D(2, 3), L.Flatten(), L.Dense(2)])
    with pytest.raises(ValueError, match=r"takes images \(height, width, channels\), got "
                                         r"examples of shape \(8, 8\)"):
        model.predict(np.zeros((3, 8, 8)), verbose=0)
    model = keras.Sequential([keras.Input(shape=(8, 8, 1)), L.Conv2D(2, 3), L.Flatten(),
                              L.Dense(2)])
    with pytest.raises(ValueError, match=r"x: expected examples of shape \(8, 8, 1\).*"
                                         r"\(3, 8, 8, 3\)"):
        model.predict(np.zeros((3, 8, 8, 3)), verbose=0)
    with pytest.raises(ValueError, match="padding: the engine's max pooling has no padding"):
        L.MaxPooling2D(2, padding="same")
    with pytest.raises(ValueError, match=r"padding: expected 'valid' or 'same', got 'full'"):
        L.Conv2D(2, 3, padding="full")
    with pytest.raises(TypeError, match=r"kernel_size: expected an int or a pair"):
        L.Conv2D(2, "3")
    with pytest.raises(ValueError, match="data_format: .*channels_last.*channels_first"):
        L.Conv2D(2, 3, data_format="channels_first")
    with pytest.raises(ValueError, match=r"input_shape: Conv2D takes images"):
        L.Conv2D(2, 3, input_shape=(28, 28))
    with pytest.raises(ValueError, match="the last layer that computes must be a Dense"):
        keras.Sequential([keras.Input(shape=(8, 8, 1)), L.Conv2D(2, 3), L.Flatten(),
                          L.Dense(2), L.Flatten()]).build()
    with pytest.raises(ValueError, match="expected at least one Dense layer"):
        keras.Sequential([keras.Input(shape=(8, 8, 1)), L.Conv2D(2, 3)]).build()


def test_real_keras_continues_training_a_fastnn_conv_model(tmp_path):
    """The conv kernels' Adam moments in fastnn's .keras file mean to Keras what they mean
    to fastnn: one more full-batch epoch in each from the same file gives the same weights
    (runs where Keras 3 is installed)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    real = pytest.importorskip("keras")
    rng = np.random.default_rng(12)
    x = rng.standard_normal((16, 9, 8, 2)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    np.random.seed(12)
    m = keras.Sequential([keras.Input(shape=(9, 8, 2)),
                          L.Conv2D(3, 3, strides=(2, 1), padding="same", activation="relu"),
                          L.MaxPooling2D(2), L.Conv2D(4, (2, 3), activation="tanh"),
                          L.Flatten(), L.Dense(5, activation="relu"),
                          L.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    m.save(tmp_path / "f.keras")
    km = real.models.load_model(tmp_path / "f.keras")
    km.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    fm = keras.models.load_model(tmp_path / "f.keras")
    fm.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    diff = max(float(np.abs(np.asarray(a) - b).max())
               for a, b in zip(km.get_weights(), fm.get_weights()))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(m.get_weights(), fm.get_weights()))
    print(f"\nconv, Adam: one more epoch, max |Keras - fastnn| = {diff:.2e} (the step moved "
          f"the weights by up to {moved:.2e})")
    assert diff < 1e-5 and moved > 1e-3


def test_float32_predict_matches_the_oracle():
    case = CASES[3]
    specs, _ = oracle_specs(case[0], case[1], 3, *case[2:])
    rng = np.random.default_rng(13)
    x = rng.standard_normal((9,) + case[0])
    np.random.seed(13)
    model = model_for(*case, dtype=np.float32)
    model.build()
    diff = np.abs(model.predict(x, verbose=0) - oracle_of(model, specs).feedforward(x)).max()
    print(f"float32 predict: max |fastnn - oracle| = {diff:.3g}")
    assert diff < 1e-5


def test_batch_callbacks_train_a_conv_model_as_one_call():
    """A batch-level callback makes fit run one engine call per mini-batch; the weights are
    those of the single call."""
    class Count(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1

    rng = np.random.default_rng(14)
    x = rng.standard_normal((13, 7, 6, 2))
    y = rng.integers(0, 3, 13)
    out = []
    for callbacks in ([], [Count()]):
        np.random.seed(14)
        model = model_for((7, 6, 2), (3, 3), (1, 1), "same", (2, 2), (2, 2))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=callbacks)
        out.append(model.get_weights())
    assert callbacks[0].batches == 8
    diff = max(float(np.abs(a - b).max()) for a, b in zip(*out))
    print(f"per-batch calls against one call: max diff {diff:.3g}")
    assert diff < 1e-12
