"""keras.io's "Training & evaluation with the built-in methods" (examples/lessons/
keras_training.py) runs as written: the functional model, RMSprop, the metric objects,
evaluate/predict, the compile() shortcuts, EarlyStopping and ModelCheckpoint.  MNIST is not
downloaded here: ``load_data`` gets the shipped Fashion-MNIST sample tiled to MNIST's 60,000 +
10,000 images (the guide reshapes to exactly those sizes); the code path is the same.

It trains on 50,000 images for up to 24 epochs (about 30 s of CPU, 85 s on the shared
2-core machine), so it runs only with FASTNN_SLOW_TESTS=1."""
import os
import runpy

import numpy as np
import pytest

import fastnn.datasets

h5py = pytest.importorskip("h5py")        # the guide's ModelCheckpoint writes .keras files

GUIDE = os.path.join(os.path.dirname(__file__), "..", "examples", "lessons",
                     "keras_training.py")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("FASTNN_SLOW_TESTS", "") in ("", "0"),
                    reason="long end-to-end run; set FASTNN_SLOW_TESTS=1")
def test_keras_training_guide(monkeypatch, tmp_path, capsys):
    (xs, ys), (xt, yt) = fastnn.datasets.load_sample()

    def mnist(path=None, download=True):
        return ((np.tile(xs, (20, 1, 1)), np.tile(ys, 20)),
                (np.tile(xt, (10, 1, 1)), np.tile(yt, 10)))
    monkeypatch.setattr(fastnn.datasets, "load_mnist", mnist)
    monkeypatch.chdir(tmp_path)
    state = np.random.get_state()
    np.random.seed(0)
    try:
        ns = runpy.run_path(GUIDE, run_name="__main__")
    finally:
        np.random.set_state(state)
    out = capsys.readouterr().out
    assert "test loss, test acc:" in out and "predictions shape: (3, 10)" in out
    assert sorted(ns["history"].history) == ["loss", "sparse_categorical_accuracy", "val_loss",
                                             "val_sparse_categorical_accuracy"]
    loss, acc = ns["results"]
    assert 0 < loss < 2.3 and acc > 0.5
    np.testing.assert_allclose(ns["predictions"].sum(axis=1), 1, rtol=1e-5)
    assert os.path.exists(tmp_path / "mymodel_1.keras")
    assert type(ns["model"].optimizer).__name__ == "RMSprop"
