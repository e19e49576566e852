"""Keras' functional API for a chain of layers:

    inputs = keras.Input(shape=(784,))
    x = keras.layers.Dense(64, activation="relu")(inputs)
    outputs = keras.layers.Dense(10)(x)
    model = keras.Model(inputs=inputs, outputs=outputs)

Calling a layer on ``keras.Input(...)`` (or on what such a call returned) records the chain;
``Model(inputs, outputs)`` turns a chain that runs from ``inputs`` to ``outputs`` into the
same model as ``Sequential`` of those layers (the engine runs layer stacks).  Branches,
several inputs or outputs, and a layer used twice raise a ValueError saying so.
"""
from fastnn.keras.layers import Input, Layer
from fastnn.keras.model import Sequential

__all__ = ["Model", "Node"]


class Node:
    """The output of calling layers on ``keras.Input``: the chain of layers so far."""

    def __init__(self, layers):
        self.layers = list(layers)      # an Input first, then the layers called in order

    @property
    def input(self):
        return self.layers[0]

    def __repr__(self):
        return f"<Node of {' -> '.join(l.name for l in self.layers)}>"


def call_layer(layer, x):
    """``layer(x)`` for symbolic ``x`` (an Input or a Node): the chain with ``layer`` added."""
    if isinstance(x, Input):
        return Node([x, layer])
    if isinstance(x, Node):
        if any(l is layer for l in x.layers):
            raise ValueError(f"{layer.name}: a layer used twice in one chain shares its "
                             f"weights, which the engine's layer stack cannot run")
        return Node(x.layers + [layer])
    raise TypeError(f"{layer.name}: call a layer on keras.Input(...) (or on a layer call's "
                    f"result) to build a model; to compute, call model.predict, got "
                    f"{type(x).__name__}")


class Model(Sequential):
    """``keras.Model(inputs=keras.Input(...), outputs=<layer calls on it>)``: a Sequential
    of the chain's layers."""

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
            outputs = outputs[0]
        if not isinstance(inputs, Input):
            raise ValueError(f"inputs: expected one keras.Input(...), got "
                             f"{type(inputs).__name__}; fastnn's Model is a chain of layers "
                             f"from one input (subclassing Model is not supported)")
        if not isinstance(outputs, Node) or outputs.input is not inputs:
            raise ValueError("outputs: expected the result of calling layers, one after the "
                             "other, on `inputs` (a single chain from that Input)")
        for layer in outputs.layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"outputs: {layer!r} is not a layer")
        super().__init__(outputs.layers, name=name, **kwargs)
