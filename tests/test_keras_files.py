"""Keras 3 files (issue 19 item 5), against files real Keras 3.15.1 wrote
(tests/data/keras3/, made by tools/make_keras_golden.py): fastnn reads them and predicts what
Keras predicted; fastnn's own files have the layout Keras' files have.  The last test loads
fastnn's files in real Keras and runs only where Keras is installed."""
import json
import os
import zipfile

import numpy as np
import pytest

import fastnn.keras as keras

h5py = pytest.importorskip("h5py")

DATA = os.path.join(os.path.dirname(__file__), "data", "keras3")
NAMES = ("classifier", "logits", "regression", "binary", "rmsprop", "adagrad")


def golden(name):
    with np.load(os.path.join(DATA, f"{name}.npz")) as f:
        return {k: f[k] for k in f.files}


def h5_tree(path_or_file):
    """{dataset path: shape} and {group path: name attribute} of an h5 file."""
    shapes, names = {}, {}
    with h5py.File(path_or_file, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                shapes[name] = obj.shape
            elif "name" in obj.attrs:
                names[name] = obj.attrs["name"]
        f.visititems(visit)
    return shapes, names


@pytest.mark.parametrize("name", NAMES)
def test_load_files_keras_wrote(name):
    g = golden(name)
    model = keras.models.load_model(os.path.join(DATA, f"{name}.keras"))
    out = model.predict(g["x"], verbose=0)
    diff = np.abs(out - g["pred"]).max()
    print(f"\n{name}: max |fastnn - Keras| = {diff:.2e}")
    assert out.shape == g["pred"].shape and diff < 1e-5
    assert model.optimizer.iterations == int(g["iterations"])
    # the weights file alone, into a fresh model of the same layers
    fresh = keras.models.load_model(os.path.join(DATA, f"{name}.keras"), compile=False)
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(os.path.join(DATA, f"{name}.weights.h5"))
    np.testing.assert_array_equal(fresh.predict(g["x"], verbose=0), out)
    # and it trains on (the compile settings came with it)
    model.fit(g["x"], g["y"], epochs=1, verbose=0)


@pytest.mark.parametrize("name", ["rmsprop", "adagrad"])
def test_keras_optimizer_state_is_read_as_keras_reads_it(name):
    """One more full-batch epoch from Keras' file, in fastnn, gives the weights Keras got
    (tests/data/keras3/<name>.npz next_*): RMSprop's velocities-then-momentums and Adagrad's
    accumulators are read into the right slots."""
    g = golden(name)
    model = keras.models.load_model(os.path.join(DATA, f"{name}.keras"))
    before = model.get_weights()
    model.fit(g["x"], g["y"], epochs=1, batch_size=len(g["x"]), shuffle=False, verbose=0)
    after = model.get_weights()
    diff = max(float(np.abs(a - g[f"next_{i}"]).max()) for i, a in enumerate(after))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(after, before))
    print(f"\n{name}: one more epoch, max |fastnn - Keras| = {diff:.2e} (moved {moved:.2e})")
    assert diff < 1e-5 and moved > 1e-3


def test_what_the_loaded_models_are():
    m = keras.models.load_model(os.path.join(DATA, "classifier.keras"))
    assert [type(l).__name__ for l in m.layers] == ["Flatten", "Dense", "Dropout", "Dense",
                                                    "Softmax"]
    assert m.input_shape == (None, 4, 3) and m.compiled_metrics == ["accuracy"]
    assert type(m.optimizer).__name__ == "Adam" and m.optimizer.learning_rate == \
        pytest.approx(0.01)
    lg = keras.models.load_model(os.path.join(DATA, "logits.keras"))
    assert lg.loss.from_logits
    r = keras.models.load_model(os.path.join(DATA, "regression.keras"))
    assert type(r.optimizer).__name__ == "SGD" and r.optimizer.momentum == pytest.approx(0.9)
    assert r.compiled_metrics == ["mae"]
    b = keras.models.load_model(os.path.join(DATA, "binary.keras"))
    assert type(b.loss).__name__ == "BinaryCrossentropy"


def test_unsupported_layer_is_named():
    with pytest.raises(ValueError, match=r"Conv2D.*supported: InputLayer, Flatten, Dense"):
        keras.models.load_model(os.path.join(DATA, "conv.keras"))


def test_fastnn_writes_keras_layout(tmp_path):
    """Our file for the golden classifier's layers has the members, the h5 paths, names and
    shapes of the one Keras wrote, and round-trips through fastnn exactly."""
    g = golden("classifier")
    np.random.seed(0)
    m = keras.Sequential([keras.Input(shape=(4, 3)), keras.layers.Flatten(),
                          keras.layers.Dense(6, activation="relu"), keras.layers.Dropout(0.25),
                          keras.layers.Dense(3), keras.layers.Softmax()])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    m.fit(g["x"], g["y"], epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "m.keras"
    m.save(path)
    with zipfile.ZipFile(path) as ours, zipfile.ZipFile(os.path.join(DATA,
                                                                     "classifier.keras")) as ks:
        assert sorted(ours.namelist()) == sorted(ks.namelist())
        ours_cfg, ks_cfg = json.loads(ours.read("config.json")), json.loads(
            ks.read("config.json"))
        assert [l["class_name"] for l in ours_cfg["config"]["layers"]] == \
            [l["class_name"] for l in ks_cfg["config"]["layers"]]
        assert ours_cfg["config"]["build_input_shape"] == ks_cfg["config"]["build_input_shape"]
        (tmp_path / "ours.h5").write_bytes(ours.read("model.weights.h5"))
        (tmp_path / "ks.h5").write_bytes(ks.read("model.weights.h5"))
    s1, _ = h5_tree(tmp_path / "ours.h5")
    s2, _ = h5_tree(tmp_path / "ks.h5")
    assert s1 == s2
    back = keras.models.load_model(path)
    np.testing.assert_array_equal(back.predict(g["x"]), m.predict(g["x"]))
    assert back.optimizer.iterations == m.optimizer.iterations == 6
    # Adam's moments came back: the next epoch trains identically
    np.random.seed(1)
    m.fit(g["x"], g["y"], epochs=1, batch_size=8, verbose=0)
    np.random.seed(1)
    back.fit(g["x"], g["y"], epochs=1, batch_size=8, verbose=0)
    for a, b in zip(m.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
    m.save_weights(tmp_path / "m.weights.h5")
    assert h5_tree(tmp_path / "m.weights.h5")[0] == s1


def test_suffixes(tmp_path):
    m = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    for bad in ("m.h5", "m.hdf5", "m", "m.json"):
        with pytest.raises(ValueError, match="filepath"):
            m.save(tmp_path / bad)
    with pytest.raises(ValueError, match=".weights.h5"):
        m.save_weights(tmp_path / "m.h5")
    m.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        m.save(tmp_path / "m.keras", overwrite=False)
    (tmp_path / "junk.keras").write_bytes(b"PK not a zip")
    with pytest.raises(ValueError):
        keras.models.load_model(tmp_path / "junk.keras")


def test_real_keras_loads_fastnn_files(tmp_path):
    """Runs where Keras 3 is installed (not needed by the default suite)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    real = pytest.importorskip("keras")
    if not real.__version__.startswith("3."):
        pytest.skip(f"Keras {real.__version__}, not Keras 3")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 4, 3)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    np.random.seed(5)
    m = keras.Sequential([keras.Input(shape=(4, 3)), keras.layers.Flatten(),
                          keras.layers.Dense(7), keras.layers.Activation("tanh"),
                          keras.layers.Dense(3)])
    m.compile(optimizer="adam",
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    m.fit(x, y, epochs=2, verbose=0)
    m.save(tmp_path / "f.keras")
    m.save_weights(tmp_path / "f.weights.h5")
    km = real.models.load_model(tmp_path / "f.keras")
    diff = np.abs(np.asarray(km.predict(x, verbose=0)) - m.predict(x)).max()
    print(f"\nKeras {real.__version__} predicting with fastnn's file: max diff {diff:.2e}")
    assert diff < 1e-5 and int(km.optimizer.iterations) == m.optimizer.iterations
    assert [type(l).__name__ for l in km.layers] == ["Flatten", "Dense", "Activation", "Dense"]
    km.load_weights(tmp_path / "f.weights.h5")
    assert np.abs(np.asarray(km.predict(x, verbose=0)) - m.predict(x)).max() < 1e-5


@pytest.mark.parametrize("opt", ["adam", "momentum", "rmsprop", "adagrad"])
def test_real_keras_continues_training_from_fastnn_state(tmp_path, opt):
    """The optimizer state in fastnn's .keras file means to Keras what it means to fastnn:
    one more full-batch epoch in Keras and in fastnn from the same file give the same weights
    (runs where Keras 3 is installed)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    real = pytest.importorskip("keras")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((24, 5)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    make = {"adam": lambda: keras.optimizers.Adam(0.01),
            "momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
            "rmsprop": lambda: keras.optimizers.RMSprop(0.01, momentum=0.5),
            "adagrad": lambda: keras.optimizers.Adagrad(0.05)}[opt]
    np.random.seed(6)
    m = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(6, activation="elu"),
                          keras.layers.Dense(3)])
    m.compile(optimizer=make(),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    m.save(tmp_path / "f.keras")
    km = real.models.load_model(tmp_path / "f.keras")
    km.fit(x, y, epochs=1, batch_size=24, shuffle=False, verbose=0)
    fm = keras.models.load_model(tmp_path / "f.keras")
    fm.fit(x, y, epochs=1, batch_size=24, shuffle=False, verbose=0)
    diff = max(float(np.abs(np.asarray(a) - b).max())
               for a, b in zip(km.get_weights(), fm.get_weights()))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(m.get_weights(), fm.get_weights()))
    print(f"\n{opt}: one more epoch, max |Keras - fastnn| = {diff:.2e} (the step moved the "
          f"weights by up to {moved:.2e})")
    assert diff < 1e-5 and moved > 1e-3
