"""Pictures of training and predictions (matplotlib is optional: ``pip install fastnn[plot]``).

- ``plot_history(history)``: loss and accuracy per epoch, training and validation.
- ``plot_predictions(images, labels, predictions, class_names)``: the Fashion-MNIST tutorial's
  grid, each image beside a bar chart of its predicted probabilities; the label under the
  image and the bar of the true class are blue when the prediction is right; when it is wrong
  the label is red, the predicted bar red and the true class's bar blue.

Both return a ``matplotlib.figure.Figure`` and, given ``path``, save it (PNG by the file
name).  They draw on the Agg canvas directly and never touch pyplot's global state or backend,
so they work on machines without a display.
"""
import numpy as np

__all__ = ["plot_history", "plot_predictions"]


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("fastnn.plot needs matplotlib: pip install matplotlib (or "
                          "pip install fastnn[plot])") from None
    return matplotlib, Figure, FigureCanvasAgg


def _new_figure(figsize):
    _, Figure, FigureCanvasAgg = _matplotlib()
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, dpi):
    if path is not None:
        from fastnn import _safeio     # never over a file that is not a figure
        _safeio.check_output_file(path, "path", _safeio.is_image, "an image")
        fig.savefig(path, dpi=dpi)


def plot_history(history, path=None, metrics=("loss", "accuracy"), dpi=100):
    """Plot ``metrics`` per epoch (with their ``val_`` curves) from a History or its dict.

    One panel per metric present in the history; return the Figure (saved to ``path``)."""
    hist = getattr(history, "history", history)
    if not isinstance(hist, dict):
        raise TypeError(f"history: expected a History or its .history dict, got "
                        f"{type(history).__name__}")
    if isinstance(metrics, str):
        metrics = (metrics,)
    shown = [m for m in metrics if m in hist or f"val_{m}" in hist]
    if not shown:
        raise ValueError(f"history: none of {', '.join(metrics)} is in it (keys: "
                         f"{', '.join(hist) or 'none'})")
    fig = _new_figure((5 * len(shown), 3.6))
    from matplotlib.ticker import MaxNLocator
    for k, m in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), k + 1)
        for key, style, label in ((m, "-o", "training"), (f"val_{m}", "--s", "validation")):
            if key in hist and len(hist[key]):
                values = np.asarray(hist[key], dtype=float)
                ax.plot(np.arange(1, len(values) + 1), values, style, label=label,
                        markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(m)
        ax.set_title(m)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save(fig, path, dpi)
    return fig


def _probabilities(predictions):
    p = np.asarray(predictions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"predictions: expected an (n, classes) array, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("predictions: expected finite values, got NaN or Inf")
    if p.size and (p.min() < 0 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3)):
        z = p - p.max(axis=1, keepdims=True)     # logits: turn them into probabilities
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
    return p


def plot_predictions(images, labels, predictions, class_names=None, path=None, num_rows=5,
                     num_cols=3, dpi=100):
    """Draw the first ``num_rows * num_cols`` images, each with a bar chart of its predicted
    class probabilities (the Fashion-MNIST tutorial's figure).

    ``images`` is ``(n, h, w)`` (or ``(n, h*w)`` with a square size), ``labels`` the true
    classes ``(n,)``, ``predictions`` ``(n, classes)`` probabilities (logits are passed through
    softmax), ``class_names`` a name per class (default: the class numbers).  Right answers are
    blue, wrong ones red.  Return the Figure (saved to ``path``)."""
    imgs = np.asarray(images)
    if imgs.ndim == 2 and imgs.shape[0]:
        side = int(round(np.sqrt(imgs.shape[1])))
        if side * side != imgs.shape[1]:
            raise ValueError(f"images: expected (n, h, w) or square (n, h*w) images, got shape "
                             f"{imgs.shape}")
        imgs = imgs.reshape(-1, side, side)
    if imgs.ndim != 3:
        raise ValueError(f"images: expected an (n, h, w) array, got shape {imgs.shape}")
    p = _probabilities(predictions)
    lab = np.asarray(labels)
    if lab.ndim == 2 and lab.shape[1] == p.shape[1]:
        lab = lab.argmax(axis=1)
    lab = lab.astype(np.int64, copy=False).ravel() if lab.dtype.kind in "biu" else lab
    if lab.dtype.kind not in "biu":
        raise TypeError(f"labels: expected integer class labels, got dtype {lab.dtype}")
    n = len(imgs)
    if len(lab) != n or len(p) != n:
        raise ValueError(f"images, labels, predictions: expected the same number of rows, got "
                         f"{n}, {len(lab)} and {len(p)}")
    k = p.shape[1]
    if lab.size and (lab.min() < 0 or lab.max() >= k):
        raise ValueError(f"labels: expected values in 0..{k - 1}, got {lab.min()}..{lab.max()}")
    if class_names is None:
        class_names = [str(c) for c in range(k)]
    class_names = list(class_names)
    if len(class_names) != k:
        raise ValueError(f"class_names: expected {k} names, got {len(class_names)}")
    num_rows = int(num_rows)
    num_cols = int(num_cols)
    if num_rows < 1 or num_cols < 1:
        raise ValueError(f"num_rows, num_cols: expected positive ints, got {num_rows}, "
                         f"{num_cols}")
    shown = min(n, num_rows * num_cols)
    rows = max(1, -(-shown // num_cols))
    fig = _new_figure((2 * 2 * num_cols, 2 * rows))
    for i in range(shown):
        pred, true = int(np.argmax(p[i])), int(lab[i])
        color = "blue" if pred == true else "red"
        ax = fig.add_subplot(rows, 2 * num_cols, 2 * i + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.imshow(imgs[i], cmap="binary")
        ax.set_xlabel(f"{class_names[pred]} {100 * p[i, pred]:2.0f}% ({class_names[true]})",
                      color=color)
        ax = fig.add_subplot(rows, 2 * num_cols, 2 * i + 2)
        ax.set_xticks(range(k))
        ax.set_yticks([])
        ax.grid(False)
        bars = ax.bar(range(k), p[i], color="#777777")
        ax.set_ylim([0, 1])
        bars[pred].set_color("red")
        bars[true].set_color("blue")
    fig.tight_layout()
    _save(fig, path, dpi)
    return fig
