"""The default device ('cpu' or 'cuda') and the checks behind device='cuda'.

Nothing here imports CuPy until a CUDA device is asked for."""
_default = "cpu"


def set_device(device):
    """Set the default device of new networks and models: 'cpu' or 'cuda'."""
    global _default
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        require_cuda()
    _default = device


def get_device():
    """Return the default device."""
    return _default


def require_cuda():
    """Raise RuntimeError saying what is missing when CuPy or a GPU is not there."""
    from fastnn._config import gpu_available
    ok, reason = gpu_available()
    if not ok:
        raise RuntimeError(f"device='cuda' is not available: {reason}. Install CuPy "
                           f"(pip install fastnn[gpu]) on a machine with an NVIDIA GPU, or use "
                           f"device='cpu'.")
