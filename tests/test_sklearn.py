"""fastnn.sklearn: scikit-learn's estimator checks, agreement with network2 and the oracle,
Pipeline and the search CVs.  Run with ``pytest -s`` to see the max differences."""
import pickle
import random

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastnn import datasets, network2  # noqa: E402
from fastnn import reference as R  # noqa: E402
from fastnn.sklearn import (  # noqa: E402
    DEFAULT_ETA, FastNNClassifier, FastNNRegressor, init_params,
)

NETWORK2_COST = {"cross_entropy": network2.CrossEntropyCost,
                 "log_likelihood": network2.LogLikelihoodCost,
                 "quadratic": network2.QuadraticCost}

# float32: the engine's GEMM may sum in another order when a batch has fewer rows, so a
# prediction on a subset can differ from the same rows predicted with the others by ~1 ulp
# (2.4e-7 seen); this check's tolerance (1e-7 absolute) is meant for float64.  Deliberately
# skipped for float32 estimators only (it may pass, the xfail is not strict).
FLOAT32_XFAIL = {
    "check_methods_subset_invariance":
        "float32 GEMM results depend on the batch shape by ~1 ulp; the check's 1e-7 "
        "tolerance is for float64",
    "check_methods_sample_order_invariance":
        "float32 GEMM results depend on the batch shape by ~1 ulp; the check's 1e-7 "
        "tolerance is for float64",
}


def expected_failed_checks(estimator):
    return FLOAT32_XFAIL if estimator.dtype == "float32" else {}


@parametrize_with_checks(
    [FastNNClassifier(),
     FastNNClassifier(cost="log_likelihood", activation="relu", optimizer="adam", eta=0.01,
                      dtype="float32", initializer="glorot_uniform"),
     FastNNClassifier(cost="quadratic", optimizer="momentum", hidden_layer_sizes=(8, 8)),
     FastNNRegressor(),
     FastNNRegressor(activation="tanh", optimizer="adam", eta=0.01, epochs=20,
                     dtype="float32")],
    expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------------
# agreement with network2 (same engine, same random draws)

@pytest.fixture(scope="module")
def sample():
    (x, y), (xt, yt) = datasets.load_sample()
    idx = np.sort(np.random.RandomState(0).permutation(len(x))[:500])
    return (datasets.to_array(x[idx]), y[idx].astype(np.int64),
            datasets.to_array(xt[:200]), yt[:200].astype(np.int64))


def max_diff(a_list, b_list):
    return max(float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
               for a, b in zip(a_list, b_list))


@pytest.mark.parametrize("cost, activation, optimizer, lmbda, dtype", [
    ("cross_entropy", "sigmoid", "sgd", 5.0, "float64"),
    ("log_likelihood", "relu", "momentum", 0.0, "float64"),
    ("quadratic", "tanh", "sgd", 1.0, "float32"),
    ("log_likelihood", "sigmoid", "momentum", 2.0, "float32"),
])
def test_matches_network2(sample, cost, activation, optimizer, lmbda, dtype):
    """random_state=s trains the network network2 trains after np.random.seed(s) and
    random.seed(s): both draw biases then weights from np.random's generator and shuffle an
    index list with Python's random, and both make one engine call."""
    X, y, Xt, yt = sample
    seed, eta, mu, epochs, batch = 11, 0.1, 0.5, 3, 10
    np.random.seed(seed)
    random.seed(seed)
    net = network2.Network([784, 20, 10], cost=NETWORK2_COST[cost], activation=activation,
                           dtype=dtype)
    net.SGD((X, y), epochs, batch, eta, lmbda=lmbda,
            momentum=mu if optimizer == "momentum" else 0.0, verbose=False)
    clf = FastNNClassifier(hidden_layer_sizes=(20,), activation=activation, cost=cost,
                           optimizer=optimizer, eta=eta, momentum=mu, lmbda=lmbda,
                           mini_batch_size=batch, epochs=epochs, dtype=dtype,
                           random_state=seed).fit(X, y)
    d = max_diff(net.weights + net.biases, clf.weights_ + clf.biases_)
    print(f"{cost} {activation} {optimizer} lmbda={lmbda} {dtype}: max diff vs network2 {d:.3g}")
    assert d == 0.0
    assert np.array_equal(clf.predict(Xt), np.argmax(net.feedforward(Xt.T), axis=0))
    assert clf.score(Xt, yt) * len(yt) == net.accuracy((Xt, yt))


def test_random_state_none_uses_network2_global_generators(sample):
    X, y, _, _ = sample
    np.random.seed(5)
    random.seed(5)
    net = network2.Network([784, 12, 10])
    net.SGD((X, y), 2, 10, 0.5, verbose=False)
    np.random.seed(5)
    random.seed(5)
    clf = FastNNClassifier(hidden_layer_sizes=12, epochs=2).fit(X, y)
    assert max_diff(net.weights + net.biases, clf.weights_ + clf.biases_) == 0.0


def test_string_labels_map_to_output_neurons(sample):
    """classes_ are the sorted labels; neuron k is classes_[k]."""
    X, y, Xt, yt = sample
    names = np.array(list("abcdefghij"))
    a = FastNNClassifier(hidden_layer_sizes=(10,), epochs=2, random_state=0).fit(X, y)
    b = FastNNClassifier(hidden_layer_sizes=(10,), epochs=2, random_state=0).fit(X, names[y])
    assert list(b.classes_) == list(names)
    assert max_diff(a.weights_, b.weights_) == 0.0
    assert np.array_equal(names[a.predict(Xt)], b.predict(Xt))
    p = b.predict_proba(Xt)
    assert p.shape == (len(Xt), 10) and np.allclose(p.sum(axis=1), 1.0)


def test_adam_matches_the_numpy_oracle(sample):
    """Adam has no network2 counterpart: compare with fastnn.reference, fed the same initial
    weights (init_params with the same RandomState) and the same orders."""
    X, y, _, _ = sample
    seed, epochs, batch, lr = 4, 2, 32, 1e-3
    clf = FastNNClassifier(hidden_layer_sizes=(16,), activation="relu", cost="log_likelihood",
                           optimizer="adam", learning_rate=lr, mini_batch_size=batch,
                           epochs=epochs, initializer="glorot_uniform", random_state=seed)
    clf.fit(X, y)
    W, b = init_params([784, 16, 10], "glorot_uniform", np.random.RandomState(seed),
                       np.float64)
    oracle = R.MatrixNetwork(W, b, activation="relu", output_activation="softmax",
                             cost="log_likelihood")
    rng = random.Random(seed)
    order = list(range(len(X)))
    for _ in range(epochs):
        rng.shuffle(order)
        oracle.train_epoch(X, np.eye(10)[y], order, batch, lr, optimizer="adam")
    d = max_diff(clf.weights_ + clf.biases_, oracle.weights + oracle.biases)
    print(f"adam vs oracle: max diff {d:.3g}")
    assert d < 1e-10


def test_eta_and_learning_rate(sample):
    X, y, _, _ = sample
    kw = dict(hidden_layer_sizes=(8,), epochs=1, random_state=0)
    ref = FastNNClassifier(eta=0.1, **kw).fit(X, y).weights_
    assert max_diff(ref, FastNNClassifier(learning_rate=0.1, **kw).fit(X, y).weights_) == 0
    # eta wins when both are set
    assert max_diff(ref, FastNNClassifier(eta=0.1, learning_rate=3.0, **kw).fit(X, y)
                    .weights_) == 0
    default = FastNNClassifier(**kw).fit(X, y).weights_
    assert max_diff(default, FastNNClassifier(eta=DEFAULT_ETA["sgd"], **kw).fit(X, y)
                    .weights_) == 0
    assert DEFAULT_ETA["adam"] == 1e-3 and DEFAULT_ETA["sgd"] == 0.5


def test_history_and_reproducibility(sample):
    X, y, Xt, yt = sample
    rs_a, rs_b = np.random.RandomState(3), np.random.RandomState(3)
    a = FastNNClassifier(hidden_layer_sizes=(16,), epochs=3, random_state=rs_a)
    a.fit(X, y, eval_set=(Xt, yt))
    b = FastNNClassifier(hidden_layer_sizes=(16,), epochs=3, random_state=rs_b).fit(X, y)
    assert max_diff(a.weights_, b.weights_) == 0.0
    assert a.history_["epoch"] == [0, 1, 2] and a.n_iter_ == 3
    assert len(a.history_["eval_accuracy"]) == 3
    assert a.history_["eval_accuracy"][-1] == pytest.approx(a.score(Xt, yt))
    with pytest.raises(ValueError, match="eval_set"):
        FastNNClassifier(epochs=1).fit(X[y < 5], y[y < 5], eval_set=(Xt, yt))


@pytest.mark.parametrize("param, value, exc, match", [
    ("cost", "hinge", ValueError, "cost"),
    ("optimizer", "rmsprop", ValueError, "optimizer"),
    ("activation", "softmax", ValueError, "activation"),
    ("hidden_layer_sizes", (10, 0), ValueError, r"hidden_layer_sizes\[1\]"),
    ("hidden_layer_sizes", "10", TypeError, "hidden_layer_sizes"),
    ("eta", -1.0, ValueError, "eta"),
    ("learning_rate", "fast", TypeError, "learning_rate"),
    ("epochs", 0, ValueError, "epochs"),
    ("dtype", "int32", TypeError, "dtype"),
    ("initializer", "he", ValueError, "initializer"),
    ("momentum", 1.0, ValueError, "momentum"),
])
def test_bad_parameters_are_named(sample, param, value, exc, match):
    X, y, _, _ = sample
    with pytest.raises(exc, match=match):
        FastNNClassifier(**{param: value}).fit(X[:50], y[:50])


def test_regressor_learns_and_multioutput():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (400, 3))
    Y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] ** 2])
    reg = FastNNRegressor(hidden_layer_sizes=(32,), activation="tanh", optimizer="adam",
                          eta=0.01, epochs=60, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (400, 2)
    assert reg.score(X, Y) > 0.9
    one = clone(reg).fit(X, Y[:, 0])
    assert one.predict(X).shape == (400,)
    assert not hasattr(reg, "predict_proba")


def test_pickle_round_trip(sample):
    X, y, Xt, _ = sample
    clf = FastNNClassifier(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(back.predict_proba(Xt), clf.predict_proba(Xt))


# ---------------------------------------------------------------------------------------------
# Pipeline and the search CVs

def test_pipeline_and_grid_search(sample):
    X, y, Xt, yt = sample
    pipe = make_pipeline(StandardScaler(), FastNNClassifier(
        cost="log_likelihood", activation="relu", optimizer="adam", mini_batch_size=32,
        epochs=3, random_state=0))
    grid = {"fastnnclassifier__hidden_layer_sizes": [(8,), (32,)],
            "fastnnclassifier__learning_rate": [1e-3, 1e-2]}
    search = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(X, y)   # joblib processes
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.score(Xt, yt) > 0.5
    serial = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X, y)
    # same engine threads either way is not guaranteed; same seeds and data give the same
    # scores up to the last bits
    assert np.allclose(serial.cv_results_["mean_test_score"],
                       search.cv_results_["mean_test_score"])


def test_randomized_search(sample):
    X, y, _, _ = sample
    search = RandomizedSearchCV(
        FastNNClassifier(epochs=2, random_state=0),
        {"hidden_layer_sizes": [(8,), (16,), (8, 8)], "eta": [0.1, 0.5, 1.0],
         "optimizer": ["sgd", "momentum"]},
        n_iter=3, cv=2, random_state=0).fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    assert 0.0 <= search.best_score_ <= 1.0
