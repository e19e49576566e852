"""The lessons in examples/lessons/ run as written (issue 19): each is executed here, with
matplotlib drawing off screen and, for the classification lesson, the Fashion-MNIST sample
shipped with fastnn in place of the full download (load_data's offline fallback)."""
import os
import runpy
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import fastnn.datasets  # noqa: E402

LESSONS = os.path.join(os.path.dirname(__file__), "..", "examples", "lessons")


@pytest.fixture(autouse=True)
def quiet_plots(monkeypatch):
    import matplotlib.pyplot as plt
    monkeypatch.setattr(plt, "show", lambda *a, **k: plt.close("all"))
    state = np.random.get_state()
    np.random.seed(0)
    yield
    plt.close("all")
    np.random.set_state(state)


def test_celsius_lesson(capsys):
    ns = runpy.run_path(os.path.join(LESSONS, "celsius.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "Finished training the model" in out
    assert "These are the l2 variables" in out
    # the second model's layers are the ones the lesson named
    w, b = ns["model"].layers[0].get_weights()
    assert ns["model"].layers[0] is ns["l0"]
    assert ns["history"].history["loss"][-1] < ns["history"].history["loss"][0]
    assert w.shape == (1, 4) and b.shape == (4,)


def test_classification_lesson_offline(monkeypatch, capsys):
    def missing(path=None, download=True):
        raise fastnn.datasets.DatasetNotFoundError("not installed (test)")
    monkeypatch.setattr(fastnn.datasets, "load_fashion_mnist", missing)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ns = runpy.run_path(os.path.join(LESSONS, "classification.py"), run_name="__main__")
    assert any("sample shipped with fastnn" in str(w.message) for w in caught)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 10 and "Test accuracy:" in out
    p = ns["predictions_single"]
    assert p.shape == (1, 10) and abs(p.sum() - 1) < 1e-5
    # the probability model's rows are the softmax of the model's logits
    logits = ns["model"].predict(ns["test_images"][:5], verbose=0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(ns["predictions"][:5], e / e.sum(axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-7)
    assert ns["test_acc"] > 0.6          # 10 epochs on the 3,000-image sample
