"""``keras.models``: ``Sequential``, ``Model``, ``load_model``, ``save_model``."""
from fastnn.keras.functional import Model
from fastnn.keras.model import Sequential
from fastnn.keras.saving import load_model, save_model

__all__ = ["Sequential", "Model", "load_model", "save_model"]
