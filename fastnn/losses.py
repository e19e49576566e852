"""Moved to ``fastnn.keras.losses``; ``fastnn.losses`` is the same module, kept for existing code."""
import sys

from fastnn.keras import losses as _module

sys.modules[__name__] = _module
