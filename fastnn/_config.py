"""Threads, BLAS and build configuration.

The engine owns its threads: inside a training call every OpenMP thread calls BLAS on its
own block of neurons, so the BLAS library is held to one thread for the duration of the call
(`blas_single_thread`) and the cores are never oversubscribed.
"""
import contextlib
import ctypes
import os
import sys
import threading

_lock = threading.Lock()
_num_threads = None          # set by set_num_threads; None: follow the environment


def _no_engine_message(error):
    """Why ``fastnn._engine`` did not import, and what to do about it."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(pkg)
    if os.path.isfile(os.path.join(pkg, "_engine.pyx")) and \
            os.path.isfile(os.path.join(root, "setup.py")):
        return (f"fastnn's compiled engine (fastnn._engine) is not built: Python imported "
                f"fastnn from its source folder {pkg}, which has _engine.pyx but no compiled "
                f"module ({error}). Either build it in place, in {root}:\n"
                f"    pip install -e .\n"
                f"or\n"
                f"    python setup.py build_ext --inplace\n"
                f"or run Python from another folder, so that it imports the installed fastnn "
                f"(install it with `pip install .` first).")
    return (f"fastnn's compiled engine (fastnn._engine) could not be imported from {pkg} "
            f"({error}); reinstall fastnn (`pip install --force-reinstall fastnn`).")


def _load_cython_blas():
    """Put ``scipy.linalg.cython_blas`` (where the engine's ``cimport`` finds BLAS) in
    ``sys.modules`` for the engine's import without importing the ``scipy.linalg`` package
    around it: the package loads LAPACK's wrappers and the array-API layer, about 23 MiB of a
    process's memory that the engine never uses (4 MiB for the module alone).  The extension
    is loaded from its file under its own name after ``import scipy`` (whose ``__init__``
    readies the bundled OpenBLAS where a platform needs it); ``import_engine`` takes it out
    of ``sys.modules`` again once the engine has its functions.  True if it was loaded here;
    anything unexpected (another layout, ``scipy.linalg`` already imported) leaves the plain
    import to the engine."""
    import importlib.machinery
    import importlib.util
    name = "scipy.linalg.cython_blas"
    if name in sys.modules or "scipy.linalg" in sys.modules:
        return False
    try:
        import scipy
        folder = os.path.join(os.path.dirname(scipy.__file__), "linalg")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "cython_blas" + suffix)
            if os.path.isfile(path):
                break
        else:
            return False
        loader = importlib.machinery.ExtensionFileLoader(name, path)
        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return True
    except Exception:   # the engine's own import then says what is wrong, if anything is
        return False


def import_engine():
    """Return the compiled module ``fastnn._engine``; if it cannot be imported, raise an
    ImportError that says why and how to build it."""
    try:
        if "fastnn._engine" not in sys.modules:
            loaded = _load_cython_blas()
            try:
                from fastnn import _engine  # noqa: F401
            finally:
                # the engine holds its BLAS functions now; the next `import
                # scipy.linalg.cython_blas` is Python's own, the package with it
                if loaded:
                    sys.modules.pop("scipy.linalg.cython_blas", None)
        from fastnn import _engine
    except ImportError as e:
        raise ImportError(_no_engine_message(e), name="fastnn._engine") from e
    return _engine


def _cpu_quota():
    """CPUs allowed by the cgroup quota (v2 cpu.max or v1 cfs), or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            return max(1, int(int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as fh:
            quota = int(fh.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as fh:
            period = int(fh.read())
        if quota > 0 and period > 0:
            return max(1, quota // period)
    except (OSError, ValueError):
        pass
    return None


def _default_threads():
    """OMP_NUM_THREADS if set, else the CPUs this process may use (affinity, quota)."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env:
        try:
            n = int(env)
            if n >= 1:
                return n
        except ValueError:
            pass
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cpu_quota()
    if quota is not None:
        n = min(n, quota)
    return max(1, n)


# ---- what may limit the team: the cap, fork, worker processes ------------------------------

THREADS_PER_CPU = 4      # n_threads may be at most this many times the CPUs this process may use
_forked = False          # a fork child of a process whose engine may have started threads
_team_ok = 1             # the largest team known to start in this process (see check_team)
_active = 0              # engine calls running now in this process


def max_threads():
    """The most threads a call may ask for: THREADS_PER_CPU times the usable CPUs."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return THREADS_PER_CPU * max(1, n)


def _after_fork_in_child():
    # libgomp cannot rebuild its thread pool in a fork child: a team of 2 or more would wait
    # for threads that do not exist.  One thread never touches the pool.
    global _forked, _team_ok, _active
    if "fastnn._engine" in sys.modules:
        _forked = True
    _team_ok, _active = 1, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def in_worker_process():
    """True in a process started by multiprocessing, concurrent.futures, joblib/loky or a
    Dask nanny: several of them share the cores."""
    import multiprocessing
    try:
        return multiprocessing.parent_process() is not None
    except Exception:
        return False


def get_num_threads():
    """Return the number of threads the engine uses."""
    _engine = import_engine()
    if not _engine.openmp_enabled() or _forked:
        return 1
    if _num_threads is not None:
        return _num_threads
    if in_worker_process():
        return 1
    return min(_default_threads(), max_threads())


def set_num_threads(n):
    """Set the number of engine threads (None: back to OMP_NUM_THREADS / the CPU count)."""
    global _num_threads
    if n is None:
        _num_threads = None
        return
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"n: expected a positive int or None, got {type(n).__name__}")
    n = int(n)
    if n < 1 or n > max_threads():
        raise ValueError(f"n: expected a positive int up to {max_threads()} ({THREADS_PER_CPU} "
                         f"x the usable CPUs) or None, got {n}")
    _num_threads = n


def resolve_threads(n_threads):
    """Validate a per-call thread count; None means get_num_threads()."""
    if n_threads is None:
        return get_num_threads()
    if isinstance(n_threads, bool) or not hasattr(n_threads, "__index__"):
        raise TypeError(f"n_threads: expected a positive int or None, got "
                        f"{type(n_threads).__name__}")
    n = int(n_threads)
    if n < 1 or n > max_threads():
        raise ValueError(f"n_threads: expected a positive int up to {max_threads()} "
                         f"({THREADS_PER_CPU} x the usable CPUs) or None, got {n}")
    _engine = import_engine()
    return n if _engine.openmp_enabled() and not _forked else 1


def _stacksize():
    """The stack size libgomp gives its threads: GOMP_STACKSIZE (KiB) or OMP_STACKSIZE (a
    number with an optional B/K/M/G suffix, KiB by default); 0 for the default."""
    g = os.environ.get("GOMP_STACKSIZE", "").strip()
    o = os.environ.get("OMP_STACKSIZE", "").strip()
    text, unit = (o, 1024) if o else (g, 1024)
    if not text:
        return 0
    units = {"b": 1, "k": 1024, "m": 1 << 20, "g": 1 << 30}
    if text[-1].lower() in units:
        text, unit = text[:-1].strip(), units[text[-1].lower()]
    try:
        return max(0, int(text)) * unit
    except ValueError:
        return 0


def check_team(n):
    """Before the engine first runs a team of ``n`` threads in this process, start n - 1
    threads here (libgomp's pool: the calling thread is the first of the team) and join them:
    libgomp ends the process when it cannot start a thread, this raises RuntimeError."""
    global _team_ok
    if n <= _team_ok:
        return
    try:
        from fastnn import _threads
    except ImportError:
        return
    try:
        _threads.probe(n - 1, _stacksize())
    except (OSError, MemoryError) as e:
        raise RuntimeError(f"n_threads: could not start {n} engine threads ({e}); use fewer "
                           f"threads (n_threads=, fastnn.set_num_threads) or free memory") \
            from None
    _team_ok = n


def adapts(n_threads):
    """Whether a training call with this ``n_threads`` lets the engine adapt its team to the
    machine's load (src_c/team.h): only with the default count (``n_threads`` None, no
    ``set_num_threads``) and unless ``FASTNN_ADAPT=0``.  An explicit count is kept exactly."""
    if n_threads is not None or _num_threads is not None:
        return False
    return os.environ.get("FASTNN_ADAPT", "").strip() != "0"


_split_fma = None


def conv_half():
    """Whether the conv kernels may take 256-bit vectors beside AVX-512's where the channels
    fill them better (src_c/kernels_conv.h; the results are the same numbers either way):
    ``FASTNN_CONV_HALF=0`` or ``1`` says so; by default on CPUs that run a 512-bit FMA as two
    256-bit halves, where a half-width vector costs half (AMD Zen 4: family 25 with
    AVX-512).  Elsewhere a 512-bit FMA costs what a 256-bit one does and full width wins."""
    v = os.environ.get("FASTNN_CONV_HALF", "").strip()
    if v in ("0", "1"):
        return v == "1"
    global _split_fma
    if _split_fma is None:
        _split_fma = False
        try:
            with open("/proc/cpuinfo") as f:
                info = f.read(65536)
            fields = {}
            for line in info.splitlines():
                if not line.strip():
                    break                       # the first CPU is enough
                k, _, val = line.partition(":")
                fields[k.strip()] = val.strip()
            _split_fma = (fields.get("vendor_id") == "AuthenticAMD"
                          and fields.get("cpu family") == "25"
                          and "avx512f" in fields.get("flags", "").split())
        except (OSError, ValueError):
            pass
    return _split_fma


_last_run = {}


def note_run(threads, n_threads, adapt):
    """Record the last training call's team: the threads it could use and how many ran per
    mini-batch on average (show_config() reports them)."""
    _last_run.clear()
    if threads is not None:
        _last_run.update({"threads_max": int(n_threads), "threads_mean": round(float(threads), 3),
                          "adaptive": bool(adapt)})


@contextlib.contextmanager
def engine_team(n_threads):
    """The thread count for one engine call, checked to start (``check_team``).  With no
    explicit count (``n_threads`` None and no ``set_num_threads``), calls running at the
    same time in this process share the default: each gets default // calls running."""
    global _active
    n = resolve_threads(n_threads)
    with _lock:
        _active += 1
        if n_threads is None and _num_threads is None and _active > 1:
            n = max(1, n // _active)
    try:
        check_team(n)
        yield n
    finally:
        with _lock:
            _active -= 1


# ---- BLAS ------------------------------------------------------------------------------------

class _Blas:
    """The OpenBLAS behind scipy.linalg.cython_blas, found in the loaded libraries."""

    def __init__(self):
        self.path = None
        self.name = "unknown"
        self._get = self._set = None
        self._find()

    def _candidates(self):
        paths = []
        try:
            with open("/proc/self/maps") as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) >= 6 and "blas" in parts[-1].lower():
                        if parts[-1] not in paths:
                            paths.append(parts[-1])
        except OSError:
            pass
        try:
            import scipy
            libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
            if os.path.isdir(libs):
                for f in sorted(os.listdir(libs)):
                    p = os.path.join(libs, f)
                    if "blas" in f.lower() and p not in paths:
                        paths.append(p)
        except ImportError:
            pass
        # scipy's own copy first: that is the one cython_blas calls
        paths.sort(key=lambda p: 0 if "scipy" in p else 1)
        return paths

    def _find(self):
        import_engine()   # the engine's cimport has loaded scipy's BLAS
        for path in self._candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("", "64_"):
                    try:
                        get = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                        set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}")
                    except AttributeError:
                        continue
                    get.restype = ctypes.c_int
                    get.argtypes = []
                    set_.restype = None
                    set_.argtypes = [ctypes.c_int]
                    self.path, self._get, self._set = path, get, set_
                    self.name = "OpenBLAS (%s)" % os.path.basename(path)
                    try:
                        cfg = getattr(lib, f"{prefix}_get_config")
                        cfg.restype = ctypes.c_char_p
                        self.name = "%s [%s]" % (self.name, cfg().decode().strip())
                    except (AttributeError, UnicodeDecodeError):
                        pass
                    return

    @property
    def controllable(self):
        return self._set is not None

    def get_threads(self):
        return self._get() if self._get else None

    def set_threads(self, n):
        if self._set:
            self._set(int(n))


_blas = None
_blas_depth = 0
_blas_saved = None


def _get_blas():
    global _blas
    if _blas is None:
        _blas = _Blas()
    return _blas


@contextlib.contextmanager
def blas_single_thread():
    """Hold scipy's OpenBLAS to one thread while engine threads call it."""
    global _blas_depth, _blas_saved
    blas = _get_blas()
    if not blas.controllable:
        yield
        return
    with _lock:
        if _blas_depth == 0:
            _blas_saved = blas.get_threads()
            blas.set_threads(1)
        _blas_depth += 1
    try:
        yield
    finally:
        with _lock:
            _blas_depth -= 1
            if _blas_depth == 0 and _blas_saved is not None:
                blas.set_threads(_blas_saved)


def gpu_available():
    """Return (available, reason): CuPy importable and a CUDA device present."""
    try:
        import cupy  # noqa: F401
    except Exception as e:  # ImportError, or a broken CUDA install
        return False, f"CuPy is not installed or failed to import ({type(e).__name__}: {e})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return False, f"CuPy is installed but no CUDA device is usable ({e})"
    if n < 1:
        return False, "CuPy is installed but no CUDA device was found"
    return True, f"{n} CUDA device(s)"


def show_config(print_=True):
    """Print and return what was built and what the engine will use."""
    _engine = import_engine()
    from fastnn._version import __version__
    try:
        from fastnn._build_info import BUILD_INFO
    except ImportError:
        BUILD_INFO = {}
    import numpy
    import scipy
    blas = _get_blas()
    gpu, gpu_reason = gpu_available() if "cupy" in sys.modules or _cupy_findable() else (
        False, "CuPy is not installed")
    info = {
        "version": __version__,
        "openmp": _engine.openmp_enabled(),
        "threads": get_num_threads(),
        "blas": blas.name,
        "blas_thread_control": blas.controllable,
        "gpu": gpu,
        "gpu_reason": gpu_reason,
        # the CPU level every engine call runs, those the build holds and those this CPU
        # runs (FASTNN_CPU_LEVEL picks a lower one; DESIGN.md, "CPU levels")
        "cpu_level": _engine.CPU_LEVEL,
        "cpu_levels": list(_engine.CPU_LEVELS),
        "cpu_levels_supported": list(_engine.CPU_LEVELS_SUPPORTED),
        "cpu_level_flags": BUILD_INFO.get("cpu_levels", {}).get(_engine.CPU_LEVEL, ""),
        # the conv kernels' 256-bit vectors beside AVX-512's (conv_half)
        "conv_half": conv_half(),
        "debug_cython": bool(BUILD_INFO.get("debug_cython", False)),
        "compile_args": BUILD_INFO.get("compile_args", ""),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "python": sys.version.split()[0],
        # the last training call in this process: at most how many threads, how many ran per
        # mini-batch on average (fewer when the machine was busy), and whether it adapted
        "last_run": dict(_last_run) or None,
    }
    if print_:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}} : {v}")
    return info


def _cupy_findable():
    import importlib.util
    return importlib.util.find_spec("cupy") is not None
