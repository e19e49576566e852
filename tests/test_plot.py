"""fastnn.plot renders PNG files; the pictures are read back and checked."""
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is not installed "
                                                      "(pip install fastnn[plot])")
import matplotlib.image  # noqa: E402

from fastnn import plot  # noqa: E402
from fastnn.keras import History  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png(path):
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_MAGIC
    img = matplotlib.image.imread(str(path))
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    return img[..., :3]


def count_color(img, rgb):
    """Pixels within 0.1 of the pure colour ``rgb`` in every channel."""
    return int(np.all(np.abs(img - np.asarray(rgb, dtype=img.dtype)) < 0.1, axis=2).sum())


BLUE, RED = (0, 0, 1), (1, 0, 0)


def test_plot_history_png(tmp_path):
    h = History()
    for e, (l, a, vl, va) in enumerate([(0.9, 0.6, 1.0, 0.55), (0.5, 0.8, 0.6, 0.75),
                                        (0.4, 0.85, 0.55, 0.8)]):
        h._record(e, {"accuracy": a, "loss": l, "val_accuracy": va, "val_loss": vl})
    path = tmp_path / "history.png"
    fig = plot.plot_history(h, path=path, dpi=50)
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]   # training and validation
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), [0.9, 0.5, 0.4])
    img = read_png(path)
    assert img.shape[:2] == (180, 500)          # (3.6 x 10 inches) at 50 dpi
    assert img.std() > 0.01                     # not a blank image
    # a dict works too; only the metrics present get a panel
    fig = plot.plot_history({"loss": [1.0, 0.5]}, path=tmp_path / "loss.png")
    assert len(fig.axes) == 1
    read_png(tmp_path / "loss.png")
    with pytest.raises(ValueError, match="none of"):
        plot.plot_history({"mae": [1.0]})
    with pytest.raises(TypeError):
        plot.plot_history([1, 2])


def _images(n, side=8):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)


def test_plot_predictions_colours(tmp_path):
    k = 4
    labels = np.array([0, 1, 2, 3])
    right = np.full((4, k), 0.1)
    right[np.arange(4), labels] = 0.7                      # every prediction right
    path = tmp_path / "right.png"
    fig = plot.plot_predictions(_images(4), labels, right, ["a", "b", "c", "d"], path=path,
                                num_rows=2, num_cols=2, dpi=60)
    assert len(fig.axes) == 8                              # image + bars per example
    img = read_png(path)
    assert count_color(img, BLUE) > 100                    # the four blue bars
    assert count_color(img, RED) == 0                      # nothing red

    wrong = right.copy()
    wrong[1] = [0.6, 0.2, 0.1, 0.1]                        # example 1: predicts 0, is 1
    path = tmp_path / "wrong.png"
    fig = plot.plot_predictions(_images(4), labels, wrong, path=path, num_rows=2, num_cols=2,
                                dpi=60)
    img = read_png(path)
    assert count_color(img, RED) > 50                      # the red bar and label
    assert count_color(img, BLUE) > 100
    bars = fig.axes[3].patches                             # example 1's bar chart
    colours = [tuple(np.round(b.get_facecolor()[:3], 3)) for b in bars]
    assert colours[0] == (1.0, 0.0, 0.0) and colours[1] == (0.0, 0.0, 1.0)
    assert fig.axes[2].xaxis.label.get_color() == "red"
    assert fig.axes[0].xaxis.label.get_text() == "0 70% (0)"


def test_plot_predictions_logits_and_errors(tmp_path):
    labels = np.array([2, 0])
    logits = np.array([[0.0, 1.0, 5.0], [3.0, -1.0, 0.0]])
    fig = plot.plot_predictions(_images(2, 6), labels, logits, path=tmp_path / "p.png",
                                num_rows=1, num_cols=2)
    heights = [b.get_height() for b in fig.axes[1].patches]
    e = np.exp(logits[0] - logits[0].max())
    np.testing.assert_allclose(heights, e / e.sum())
    read_png(tmp_path / "p.png")
    with pytest.raises(ValueError, match="same number"):
        plot.plot_predictions(_images(3), labels, logits)
    with pytest.raises(ValueError, match="class_names"):
        plot.plot_predictions(_images(2), labels, logits, class_names=["a"])
    with pytest.raises(ValueError, match="labels"):
        plot.plot_predictions(_images(2), np.array([0, 3]), logits)
