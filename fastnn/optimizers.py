"""Moved to ``fastnn.keras.optimizers``; ``fastnn.optimizers`` is the same module, kept for existing code."""
import sys

from fastnn.keras import optimizers as _module

sys.modules[__name__] = _module
