"""fastnn's Keras: ``import fastnn.keras as keras`` in place of ``from tensorflow import keras``.

The names mirror tf.keras / Keras 3 where fastnn's engine can run them:

    keras.Sequential, keras.Model (a chain of layer calls), keras.Input,
    keras.models.load_model,
    keras.layers.{Input, InputLayer, Flatten, Dense, Dropout, Softmax, Activation}
    keras.losses.*, keras.optimizers.*, keras.metrics, keras.activations.*,
    keras.callbacks.*, keras.datasets.{fashion_mnist, mnist}.load_data(),
    keras.utils.{to_categorical, set_random_seed}, keras.backend.clear_session

One file per concern: ``model.py`` (the layer list), ``trainer.py`` (compile, fit, evaluate,
predict), ``functional.py`` (``Model`` over a chain of layer calls), ``layers.py``,
``activations.py``, ``initializers.py``, ``losses.py``, ``metrics.py``, ``optimizers.py``,
``callbacks.py``, ``progress.py`` (the progress line and live bar), ``saving.py`` (formats,
fastnn's ``.npz``), ``keras_file.py`` (Keras 3's ``.keras`` and ``.weights.h5``).
"""
from fastnn.keras import (activations, backend, callbacks, datasets, initializers, layers,
                          losses, metrics, models, optimizers, utils)
from fastnn.keras.callbacks import History
from fastnn.keras.layers import (Activation, Dense, Dropout, Flatten, Input, InputLayer, Layer,
                                 Softmax)
from fastnn.keras.functional import Model
from fastnn.keras.model import Sequential
from fastnn.keras.saving import load_model, save_model
from fastnn.keras.trainer import NotCompiledError

__all__ = ["Sequential", "Model", "Input", "History", "load_model", "save_model", "Activation", "Dense",
           "Dropout", "Flatten", "InputLayer", "Layer", "Softmax", "NotCompiledError",
           "activations", "backend", "callbacks", "datasets", "initializers", "layers", "losses", "metrics",
           "models", "optimizers", "utils"]
