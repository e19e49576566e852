"""``keras.datasets``: ``fashion_mnist.load_data()`` and ``mnist.load_data()``.

Keras' shapes and dtypes: ``(x_train, y_train), (x_test, y_test)``, images ``(n, 28, 28)``
uint8, labels ``(n,)`` uint8, read by ``fastnn.datasets`` (which says where it looks, and
downloads with an MD5 check when online)."""
from fastnn.keras.datasets import fashion_mnist, mnist

__all__ = ["fashion_mnist", "mnist"]
