"""fastnn.keras as a tf.keras user writes it: the names (issue 19 item 1), inputs as Keras takes
them (item 2) and the model's attributes (item 6).  Expected values come from numpy."""
import numpy as np
import pytest

import fastnn
import fastnn.keras as keras


@pytest.fixture(autouse=True)
def restore_np_random():
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def test_the_names_a_keras_lesson_uses():
    assert keras.Sequential is keras.models.Sequential
    assert keras.Input is keras.layers.Input
    for name in ("Dense", "Flatten", "Dropout", "Softmax", "Input", "InputLayer"):
        assert hasattr(keras.layers, name)
    for name in ("SparseCategoricalCrossentropy", "CategoricalCrossentropy",
                 "MeanSquaredError", "BinaryCrossentropy"):
        assert hasattr(keras.losses, name)
    for name in ("Adam", "SGD"):
        assert hasattr(keras.optimizers, name)
    for name in ("Callback", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
                 "TerminateOnNaN", "CSVLogger", "LambdaCallback", "History"):
        assert hasattr(keras.callbacks, name)
    for name in ("relu", "sigmoid", "tanh", "softmax", "linear"):
        assert callable(getattr(keras.activations, name))
    assert callable(keras.models.load_model) and callable(keras.datasets.mnist.load_data)
    assert callable(keras.datasets.fashion_mnist.load_data)
    assert hasattr(keras.metrics, "SparseCategoricalAccuracy")
    # the old spellings are the same objects
    from fastnn.keras import Dense, Sequential
    from fastnn import layers, losses, optimizers
    assert layers is keras.layers and losses is keras.losses and optimizers is keras.optimizers
    assert Dense is fastnn.layers.Dense and Sequential is fastnn.Sequential


def test_activations_match_numpy():
    z = np.linspace(-5, 5, 11).reshape(1, -1)
    np.testing.assert_allclose(keras.activations.relu(z), np.maximum(z, 0))
    np.testing.assert_allclose(keras.activations.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-6)
    e = np.exp(z - z.max())
    np.testing.assert_allclose(keras.activations.softmax(z), e / e.sum(), rtol=1e-6)
    d = keras.layers.Dense(3, activation=keras.activations.relu)
    assert d.activation == "relu"
    with pytest.raises(ValueError, match="activation"):
        keras.layers.Dense(3, activation=np.exp)


def test_datasets_have_keras_shapes(monkeypatch):
    data = {}

    def fake(dataset):
        def load(path=None, download=True):
            data[dataset] = path
            x = np.zeros((6, 28, 28), np.uint8)
            return (x, np.arange(6, dtype=np.uint8)), (x[:2], np.arange(2, dtype=np.uint8))
        return load
    monkeypatch.setattr(fastnn.datasets, "load_mnist", fake("mnist"))
    monkeypatch.setattr(fastnn.datasets, "load_fashion_mnist", fake("fashion"))
    (xt, yt), (xs, ys) = keras.datasets.fashion_mnist.load_data()
    assert xt.shape == (6, 28, 28) and xt.dtype == np.uint8 and ys.shape == (2,)
    keras.datasets.mnist.load_data()
    assert data == {"mnist": None, "fashion": None}


def test_input_first_and_input_shape_give_the_same_model():
    a = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                          keras.layers.Dense(4)])
    b = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)), keras.layers.Dense(4)])
    np.random.seed(0)
    a.build()
    np.random.seed(0)
    b.build()
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert a.input_shape == b.input_shape == (None, 28, 28)
    assert [type(l).__name__ for l in a.layers] == ["Flatten", "Dense"]   # Keras 3: no Input


# ---------------------------------------------------------------------------------------------
# item 2: inputs

CELSIUS = np.array([-40, -10, 0, 8, 15, 22, 38], dtype=float)
FAHRENHEIT = np.array([-40, 14, 32, 46, 59, 72, 100], dtype=float)


def numpy_adam_line(x, y, w, b, lr, steps, b1=0.9, b2=0.999, eps=1e-7):
    """Full-batch Adam (Keras 3's rule) on mean((w x + b - y)^2), in float64."""
    m, v = np.zeros(2), np.zeros(2)
    p = np.array([w, b], dtype=np.float64)
    for t in range(1, steps + 1):
        r = p[0] * x + p[1] - y
        g = np.array([2 * np.mean(r * x), 2 * np.mean(r)])
        m += (1 - b1) * (g - m)
        v += (1 - b2) * (g * g - v)
        p -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    return p


def test_celsius_lesson_one_dimensional_x():
    """The lesson's regression: 1-D x for a model of input shape [1]; predict a 1-D array
    and a list.  The 500 epochs (one 7-example batch each) against Adam in numpy."""
    np.random.seed(1)
    l0 = keras.layers.Dense(units=1, input_shape=[1])
    model = keras.Sequential([l0])
    model.compile(loss="mean_squared_error", optimizer=keras.optimizers.Adam(0.1))
    model.build()
    w0, b0 = (a.item() for a in l0.get_weights())
    history = model.fit(CELSIUS, FAHRENHEIT, epochs=500, verbose=False)
    assert len(history.history["loss"]) == 500
    w, b = l0.get_weights()
    ref = numpy_adam_line(CELSIUS, FAHRENHEIT, w0, b0, 0.1, 500)
    print(f"\nlearned {w.item():.4f} x + {b.item():.4f}; numpy Adam {ref[0]:.4f} x + "
          f"{ref[1]:.4f}")
    assert w.shape == (1, 1) and b.shape == (1,)
    np.testing.assert_allclose([w.item(), b.item()], ref, rtol=1e-3)
    assert history.history["loss"][-1] == pytest.approx(
        np.mean((w.item() * CELSIUS + b.item() - FAHRENHEIT) ** 2), rel=0.05)
    p = model.predict(np.array([100.0]))
    assert p.shape == (1, 1)
    np.testing.assert_allclose(p, [[w.item() * 100 + b.item()]], rtol=1e-5)
    np.testing.assert_array_equal(model.predict([100.0]), p)
    # Keras 3's form of the same model
    m3 = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    m3.compile(loss="mse", optimizer="adam")
    m3.fit(CELSIUS.tolist(), FAHRENHEIT.tolist(), epochs=1, verbose=0)
    assert m3.predict(np.array([1.0, 2.0])).shape == (2, 1)


def test_image_shapes_with_and_without_a_channel_axis():
    rng = np.random.default_rng(2)
    x = rng.random((9, 4, 4))
    y = rng.integers(0, 3, 9)
    np.random.seed(2)
    with_channel = keras.Sequential([keras.Input(shape=(4, 4, 1)), keras.layers.Flatten(),
                                     keras.layers.Dense(3)])
    with_channel.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with_channel.fit(x, y, epochs=1, verbose=0)                   # (n, 4, 4) for (4, 4, 1)
    np.testing.assert_array_equal(with_channel.predict(x), with_channel.predict(x[..., None]))
    plain = keras.Sequential([keras.layers.Flatten(input_shape=(4, 4)), keras.layers.Dense(3)])
    plain.set_weights(with_channel.get_weights())
    np.testing.assert_array_equal(plain.predict(x[..., None]), plain.predict(x))
    with pytest.raises(ValueError, match=r"expected examples of shape \(4, 4\)"):
        plain.predict(x.reshape(9, 2, 8))        # same size, not the same image


def test_python_lists_and_verbose_bool(capsys):
    x = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    y = [1, 1, 0, 0]
    np.random.seed(3)
    model = keras.Sequential([keras.layers.Dense(4, activation="tanh", input_shape=(2,)),
                              keras.layers.Dense(2)])
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=False)
    assert capsys.readouterr().out == ""
    loss, acc = model.evaluate(x, y, verbose=False)
    out = model.predict(x, verbose=False)
    logp = out - np.log(np.exp(out).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-logp[np.arange(4), y].mean(), rel=1e-5)
    assert acc == np.mean(out.argmax(axis=1) == y)
    model.fit(x, y, epochs=1, verbose=True)
    assert "Epoch 1/1" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# item 6: attributes

def test_weights_attributes_are_keras_order_views():
    np.random.seed(4)
    model = keras.Sequential([keras.Input(shape=(3, 2)), keras.layers.Flatten(),
                              keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(2)])
    assert model.weights == []                        # not built yet
    model.build()
    w = model.weights
    assert [a.shape for a in w] == [(6, 5), (5,), (5, 2), (2,)]
    for a, b in zip(w, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert all(isinstance(a, np.ndarray) for a in model.trainable_variables)
    assert len(model.trainable_weights) == 4 and model.non_trainable_weights == []
    dense = model.layers[1]
    assert [a.shape for a in dense.weights] == [(6, 5), (5,)]
    assert model.layers[0].weights == [] and model.layers[2].weights == []
    assert model.input_shape == (None, 3, 2) and model.output_shape == (None, 2)
    assert model.count_params() == 6 * 5 + 5 + 5 * 2 + 2
    # views: training moves them
    before = [a.copy() for a in w]
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3, 2)), np.zeros((4, 2)), epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.weights))
    with pytest.raises(ValueError, match="input_shape"):
        keras.Sequential([keras.layers.Dense(2)]).input_shape
    assert model.get_layer(index=1) is dense and model.get_layer(dense.name) is dense
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")


def test_activation_layers_run_as_the_dense_activation():
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((30, 4)), rng.integers(0, 3, 30)
    a = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5),
                          keras.layers.Activation("relu"), keras.layers.Dense(3),
                          keras.layers.Activation("softmax")], dtype=np.float64)
    b = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")], dtype=np.float64)
    np.random.seed(7)
    a.build()
    b.set_weights(a.get_weights())
    W0, b0, W1, b1 = a.get_weights()
    z = np.maximum(X @ W0 + b0, 0) @ W1 + b1
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(a.predict(X, verbose=0), e / e.sum(axis=1, keepdims=True),
                               rtol=1e-12)
    for m in (a, b):
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        np.random.seed(8)
        m.fit(X, y, epochs=2, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="right after"):
        keras.Sequential([keras.layers.Dense(5, activation="tanh"),
                          keras.layers.Activation("relu")])


def test_utils_and_backend():
    np.testing.assert_array_equal(keras.utils.to_categorical([2, 0], 3),
                                  [[0, 0, 1], [1, 0, 0]])
    keras.utils.set_random_seed(3)
    a = np.random.random()
    keras.utils.set_random_seed(3)
    assert np.random.random() == a
    keras.backend.clear_session()
    assert keras.layers.Dense(2).name == "dense"
    assert keras.layers.Dense(2).name == "dense_1"


def test_initializers_have_keras_distributions():
    """Each rule's limit or spread from its formula, on 200 x 300 draws."""
    n_in, n_out = 200, 300
    np.random.seed(9)
    for name, bound in (("glorot_uniform", np.sqrt(6 / (n_in + n_out))),
                        ("he_uniform", np.sqrt(6 / n_in)),
                        ("lecun_uniform", np.sqrt(3 / n_in))):
        w = keras.initializers.draw(name, (n_in, n_out))
        assert w.shape == (n_in, n_out) and np.abs(w).max() <= bound
        assert abs(np.abs(w).max() - bound) < 0.01 * bound
        assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound
    for name, std in (("he_normal", np.sqrt(2 / n_in)),
                      ("glorot_normal", np.sqrt(2 / (n_in + n_out))),
                      ("lecun_normal", np.sqrt(1 / n_in))):
        w = keras.initializers.draw(name, (n_in, n_out))
        # Keras' truncated normal: cut at 2 of its own deviations, spread restored to `std`
        assert np.abs(w).max() <= 2 * std / keras.initializers.TRUNCATED_STDDEV
        assert abs(w.std() - std) < 0.02 * std
    d = keras.layers.Dense(4, kernel_initializer="he_normal", bias_initializer="ones")
    d.build(10, np.float64)
    np.testing.assert_array_equal(d.bias, np.ones(4))
    # the default draw is the one fastnn always made: U(-l, l) from np.random
    np.random.seed(10)
    e = keras.layers.Dense(4)
    e.build(10, np.float64)
    np.random.seed(10)
    lim = np.sqrt(6 / 14)
    np.testing.assert_array_equal(e.kernel, np.random.uniform(-lim, lim, size=(10, 4)))
    with pytest.raises(ValueError, match="kernel_initializer"):
        keras.layers.Dense(4, kernel_initializer="orthogonal")
    with pytest.raises(ValueError, match="use_bias"):
        keras.layers.Dense(4, use_bias=False)


def test_functional_chain_is_the_sequential_model():
    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    inputs = keras.Input(shape=(6,))
    x = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    x = keras.layers.Dropout(0.0)(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="func")
    assert [l.name for l in model.layers][::2] == ["hidden", "logits"]
    seq = keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(5, activation="relu"),
                            keras.layers.Dense(3)])
    np.random.seed(12)
    model.build()
    seq.set_weights(model.get_weights())
    W0, b0, W1, b1 = model.get_weights()
    np.testing.assert_allclose(model.predict(X, verbose=0),
                               np.maximum(X @ W0 + b0, 0) @ W1 + b1, rtol=1e-5, atol=1e-6)
    for m in (model, seq):
        m.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        np.random.seed(13)
        m.fit(X, y, epochs=2, verbose=0)
    for u, v in zip(model.get_weights(), seq.get_weights()):
        np.testing.assert_array_equal(u, v)
    d = keras.layers.Dense(6)
    with pytest.raises(ValueError, match="used twice"):
        d(d(keras.Input(shape=(6,))))
    with pytest.raises(ValueError, match="single chain"):
        keras.Model(inputs=keras.Input(shape=(6,)), outputs=outputs)
    with pytest.raises(TypeError, match="keras.Input"):
        keras.layers.Dense(2)(X)
