"""Backends other than the compiled CPU engine.

``fastnn.backends.xp`` is the array-API backend behind ``device='cuda'``: the engine's training
semantics written once against a module ``xp`` (numpy or CuPy).  Nothing here imports CuPy at
``import fastnn`` time; ``xp.train``, ``xp.predict`` and ``xp.evaluate`` import it on their
first call with ``device='cuda'``.
"""

__all__ = ["xp"]
