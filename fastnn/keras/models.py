"""``keras.models``: ``Sequential``, ``load_model``, ``save_model``."""
from fastnn.keras.model import Sequential
from fastnn.keras.saving import load_model, save_model

__all__ = ["Sequential", "load_model", "save_model"]
