"""``keras.datasets.mnist.load_data()``, from ``fastnn.datasets.load_mnist``."""
from fastnn import datasets as _datasets

__all__ = ["load_data"]


def load_data(path=None):
    """Return ``(x_train, y_train), (x_test, y_test)``: uint8 images (n, 28, 28), uint8 labels.

    ``path``: a file or folder to read instead of the places ``fastnn.datasets`` searches
    (Keras' own ``path`` names a file in its cache; a Keras ``.npz`` is read here too)."""
    (x_train, y_train), (x_test, y_test) = _datasets.load_mnist(path=path)
    return (x_train, y_train), (x_test, y_test)
