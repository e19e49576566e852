"""``keras.datasets.fashion_mnist.load_data()``, from ``fastnn.datasets.load_fashion_mnist``."""
import warnings

from fastnn import datasets as _datasets

__all__ = ["load_data"]


def load_data(path=None):
    """Return ``(x_train, y_train), (x_test, y_test)``: uint8 images (n, 28, 28), uint8 labels.

    ``path``: a file or folder to read instead of the places ``fastnn.datasets`` searches.
    When Fashion-MNIST is neither installed nor downloadable, the real sample shipped with
    fastnn (3,000 training and 1,000 test images) is returned instead, with a warning that
    says so and how to install the full set, so a lesson still runs offline."""
    try:
        data = _datasets.load_fashion_mnist(path=path)
    except _datasets.DatasetNotFoundError as e:
        if path is not None:
            raise
        data = _datasets.load_sample()
        warnings.warn(f"Fashion-MNIST not found, using the {len(data[0][0])}-image sample "
                      f"shipped with fastnn ({e})", UserWarning, stacklevel=2)
    (x_train, y_train), (x_test, y_test) = data
    return (x_train, y_train), (x_test, y_test)
