"""fastnn: Nielsen's network.py / network2.py and a Keras-style API on one compiled engine.

    from fastnn import network          # in place of `import network`
    net = network.Network([784, 30, 10])
    net.SGD(training_data, 30, 10, 3.0, test_data=test_data)

Heavy or optional parts (the Keras-style API, plotting, CuPy) are imported on first use.
"""
import os as _os

# The engine's threads meet at a barrier a few times per mini-batch.  libgomp's default is to
# spin for a long time (~300,000 rounds) before sleeping, which wastes whole time slices when
# another process holds the core the partner thread needs.  A short spin keeps barriers fast
# on an idle machine and bounded on a busy one.  A user's own setting wins; it must be set
# before libgomp loads, which happens when the engine is first imported.
_os.environ.setdefault("GOMP_SPINCOUNT", "20000")

from fastnn._version import __version__  # noqa: E402
from fastnn._config import get_num_threads, set_num_threads, show_config  # noqa: E402

__all__ = ["__version__", "show_config", "get_num_threads", "set_num_threads",
           "network", "network2", "network3", "mnist_loader", "datasets",
           "Sequential", "layers", "losses", "optimizers", "load_model", "set_device",
           "DivergenceError", "keras", "get_logger"]

_LAZY = {
    "Sequential": ("fastnn.keras", "Sequential"),
    "load_model": ("fastnn.keras", "load_model"),
    "layers": ("fastnn.keras.layers", None),
    "losses": ("fastnn.keras.losses", None),
    "optimizers": ("fastnn.keras.optimizers", None),
    "set_device": ("fastnn._device", "set_device"),
    "get_device": ("fastnn._device", "get_device"),
    "DivergenceError": ("fastnn._core", "DivergenceError"),
}


def get_logger():
    """The ``fastnn`` logger (``logging.getLogger('fastnn')``), as ``tf.get_logger()``."""
    import logging
    return logging.getLogger("fastnn")


def __getattr__(name):
    if name in _LAZY:
        import importlib
        mod_name, attr = _LAZY[name]
        mod = importlib.import_module(mod_name)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    if name in ("network", "network2", "network3", "mnist_loader", "datasets", "reference",
                "plot", "sklearn", "bench", "sweep", "keras"):
        import importlib
        return importlib.import_module("fastnn." + name)
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")
