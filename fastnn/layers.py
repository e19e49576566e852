"""Moved to ``fastnn.keras.layers``; ``fastnn.layers`` is the same module, kept for existing code."""
import sys

from fastnn.keras import layers as _module

sys.modules[__name__] = _module
