"""Drop-in for Nielsen's ``mnist_loader.py``, in Python 3.

``load_data()`` returns ``(training_data, validation_data, test_data)``, each a tuple
``(x, y)`` with x a float32 array ``(n, 784)`` in [0, 1] and y an int64 array ``(n,)``:
50000 training, 10000 validation and 10000 test examples, exactly the content of his
``mnist.pkl.gz``.  ``load_data_wrapper()`` returns the same data as lists of ``(x, y)``
pairs ready for ``network.Network.SGD``.

Where the data come from, in order: the ``path`` argument; else ``$FASTNN_DATA/<dataset>/``
and ``$FASTNN_DATA``; else, for MNIST, the book's own default ``../data/mnist.pkl.gz``
relative to the working directory (so the book's ``load_data_wrapper()``, run from its
``src/`` folder, reads the book's file); for Fashion-MNIST the Debian folder
``/usr/share/datasets/fashion-mnist/``; then the cache ``~/.cache/fastnn/<dataset>/`` and
``~/.cache/fastnn``; then a download into the cache.  When nothing is found, the error lists
every place searched.
``mnist.pkl.gz`` is read as it is (with data-only unpickling: it cannot run code), where no
IDX files or ``.npz`` of the same data set are found first in the same folder.  Any other
format ``fastnn.datasets`` reads (the four IDX files, a Keras ``.npz``, or a download of the
IDX files) is turned into the same form: the first 50000 training images for training, the
last 10000 for validation, pixels as ``x / 255`` in float32.  (A set with n training images
other than 60000 keeps its last n // 6 for validation.)
"""

import numpy as np

from . import datasets

__all__ = ["load_data", "load_data_wrapper", "vectorized_result"]


def _from_keras(train, test):
    """Return Nielsen's three parts from ``(x_train, y_train), (x_test, y_test)`` uint8."""
    (x_train, y_train), (x_test, y_test) = train, test
    x_train = datasets.to_array(x_train, np.float32)
    x_test = datasets.to_array(x_test, np.float32)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_test = np.asarray(y_test, dtype=np.int64)
    n_train = len(x_train) - len(x_train) // 6
    return ((x_train[:n_train], y_train[:n_train]),
            (x_train[n_train:], y_train[n_train:]),
            (x_test, y_test))


def load_data(path=None, dataset="mnist", download=True):
    """Return the data as ``(training_data, validation_data, test_data)``.

    ``training_data`` is ``(x, y)``: x a float32 array of shape (50000, 784), one row of 784
    pixel values in [0, 1] per image, and y an int64 array of the 50000 digits 0..9.
    ``validation_data`` and ``test_data`` are the same with 10000 images each.

    ``path`` may name ``mnist.pkl.gz``, a Keras ``.npz`` or a folder holding either or the four
    IDX files.  Without it, the places in the module docstring are searched, the book's
    ``../data/mnist.pkl.gz`` among them.  ``dataset`` is 'mnist', 'fashion-mnist' or 'sample'
    (the shipped 3000-image Fashion-MNIST sample: 2500 / 500 / 1000)."""
    # IDX and npz before a pickle in the same folder
    found = datasets.find_source(dataset, path, kinds=("idx", "npz", "pickle"), book=True)
    if found is not None and found[0] == "pickle":
        return datasets.read_nielsen_pickle(found[1])
    if found is not None:
        train, test = datasets._read_source(*found)
    else:
        train, test = datasets._load_dataset(dataset, path, download, book=True)
    return _from_keras(train, test)


def load_data_wrapper(path=None, dataset="mnist", download=True):
    """Return ``(training_data, validation_data, test_data)`` as lists of pairs.

    ``training_data`` is a list of 50000 ``(x, y)``: x a (784, 1) float32 column, y the
    (10, 1) float64 one-hot column of the digit.  ``validation_data`` and ``test_data`` are
    lists of 10000 ``(x, y)`` with y the digit as a ``numpy.int64`` (the book zips the
    pickle's int64 label array, so its labels are numpy.int64 too).  Lists, not zip
    iterators, so they can be used more than once.  The x columns keep the float32 of the
    pickle (as Nielsen's wrapper does); they are views into one array per part.
    """
    tr_d, va_d, te_d = load_data(path, dataset, download)
    training_data = datasets.to_nielsen(tr_d[0], tr_d[1], vectorize=True, dtype=tr_d[0].dtype)
    validation_data = _labelled(*va_d)
    test_data = _labelled(*te_d)
    return (training_data, validation_data, test_data)


def _labelled(x, y):
    """The book's validation and test form: ``(column, label)`` pairs, each label a
    ``numpy.int64`` as iterating the int64 label array gives it."""
    columns = [col for col, _ in datasets.to_nielsen(x, y, dtype=x.dtype)]
    return list(zip(columns, np.asarray(y, dtype=np.int64)))


def vectorized_result(j):
    """Return a (10, 1) unit vector with 1.0 in the ``j``-th place and zeros elsewhere.

    This turns a digit (0...9) into the desired output of the network.
    """
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e
