"""Reading files fastnn did not write, and writing where a user points, safely.

- ``load_pickle``: Nielsen's ``mnist.pkl.gz`` through an unpickler that can build only
  tuples, lists, numbers, strings, numeric numpy arrays and their dtypes: a pickle that
  names anything else is a ValueError naming the file, and no code in it runs.
- ``read_upto``: read at most n bytes, in blocks, so that a payload longer than its header
  declares never costs more memory than the declared size.
- ``NpzArchive``: the members of an ``.npz`` read one at a time, each checked (name, the
  ``.npy`` header's dtype and shape, against what the caller expects) before its payload is
  read, and then read only up to the size its header declares.
- ``check_output_file``: refuse, before anything is written, to replace a file that is not of
  the kind fastnn writes there.
- ``term_as_interrupt``: while a file is being written, SIGTERM raises (as SIGINT does), so
  the temporary file is removed.

numpy and the standard library only: fastnn.datasets imports this, and never the engine.
"""
import contextlib
import os
import pickle
import signal
import threading
import zipfile
import zlib

import numpy as np

BLOCK = 1 << 20


# ---------------------------------------------------------------------------------------------
# bounded reads

def read_upto(fh, n):
    """Return at most ``n`` bytes from ``fh``, read a block at a time (``fh.read(n)`` on a
    gzip file would allocate n bytes at once, whatever the file holds)."""
    parts, got = [], 0
    while got < n:
        block = fh.read(min(BLOCK, n - got))
        if not block:
            break
        parts.append(block)
        got += len(block)
    return b"".join(parts)


class LimitedReader:
    """A binary file that raises ValueError once more than ``limit`` bytes were read."""

    def __init__(self, fh, limit, name):
        self._fh, self._left, self._name = fh, int(limit), name

    def _take(self, data):
        self._left -= len(data)
        if self._left < 0:
            raise ValueError(f"{self._name}: holds more data than a file of this kind may "
                             f"(read stopped)")
        return data

    def read(self, n=-1):
        if n is None or n < 0:
            n = self._left + 1
        return self._take(read_upto(self._fh, min(n, self._left + 1)))

    def readline(self, n=-1):
        return self._take(self._fh.readline(self._left + 1 if n is None or n < 0
                                            else min(n, self._left + 1)))

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)


# ---------------------------------------------------------------------------------------------
# pickles that can only hold data

_NUMERIC_KINDS = "biuf"


def _reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"array subtype {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, _dtype(dtype))


def _dtype(spec, align=False, copy=True):
    dt = np.dtype(spec) if not isinstance(spec, np.dtype) else spec
    if dt.kind not in _NUMERIC_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise pickle.UnpicklingError(f"dtype {dt!r} (only numeric dtypes are read)")
    return np.dtype(dt)


def _encode(text, encoding="utf-8"):
    # how Python 3 pickles bytes at protocol 2: _codecs.encode(str, 'latin1')
    if encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    if not isinstance(text, str):
        raise pickle.UnpicklingError("_codecs.encode of a non-string")
    return text.encode("latin1")


def _frombuffer(buf, dtype, shape, order):
    # how numpy pickles an array at protocol 5
    dt = _dtype(dtype)
    if order not in ("C", "F"):
        raise pickle.UnpicklingError(f"array order {order!r}")
    arr = np.frombuffer(bytes(buf), dtype=dt)
    return arr.reshape(shape, order=order).copy()


_SAFE_GLOBALS = {
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}; a data pickle holds only tuples and numeric "
                f"numpy arrays") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids")


def load_pickle(fh, name, limit):
    """Unpickle a data pickle (``encoding='latin1'``, for Python 2 files) from the binary
    file ``fh``, reading at most ``limit`` bytes; anything but data is a ValueError naming
    ``name``."""
    try:
        obj = _DataUnpickler(LimitedReader(fh, limit, name), encoding="latin1").load()
    except ValueError as e:
        if str(e).startswith(f"{name}:"):
            raise
        raise ValueError(f"{name}: not a data pickle fastnn reads ({e})") from None
    except (pickle.UnpicklingError, EOFError, OSError, zlib.error, TypeError, KeyError,
            IndexError, AttributeError, MemoryError, RecursionError,
            UnicodeDecodeError) as e:
        raise ValueError(f"{name}: not a data pickle fastnn reads ({type(e).__name__}: "
                         f"{e})") from None
    # ndarray's BUILD state may still name an object dtype: refuse the result
    _refuse_objects(obj, name, 0)
    return obj


def _refuse_objects(obj, name, depth):
    if depth > 8:
        raise ValueError(f"{name}: nested too deeply for a data pickle")
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"{name}: holds an array of dtype {obj.dtype}, expected numbers")
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            _refuse_objects(x, name, depth + 1)


# ---------------------------------------------------------------------------------------------
# .npz archives, a member at a time

class NpzArchive:
    """The ``.npy`` members of an ``.npz`` (a zip archive), read one by one.

    ``keys()`` lists the member names without ``.npy``; ``header(key)`` returns
    ``(shape, dtype)`` from the member's ``.npy`` header; ``read(key, shape=, kinds=)`` checks
    the header against ``shape`` (a tuple, or a function of the shape that returns an error
    text or None) and the dtype kinds, then reads the payload, at most the size the header
    declares.  Every error is a ValueError that starts with the file's name."""

    def __init__(self, path, max_members=4096):
        self.path = os.fspath(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise self.error(f"not an .npz archive ({e})") from None
        infos = self._zip.infolist()
        if len(infos) > max_members:
            self._zip.close()
            raise self.error(f"{len(infos)} members, expected at most {max_members}")
        self._members = {}
        for info in infos:
            if not info.filename.endswith(".npy") or info.is_dir():
                self._zip.close()
                raise self.error(f"member {info.filename[:80]!r} is not an .npy array")
            self._members[info.filename[:-4]] = info

    def error(self, why):
        return ValueError(f"{self.path}: {why}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self._zip.close()

    def keys(self):
        return list(self._members)

    def __contains__(self, key):
        return key in self._members

    def _open(self, key):
        if key not in self._members:
            raise self.error(f"no array {key!r}")
        try:
            fh = self._zip.open(self._members[key])
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unknown .npy version {version}")
        except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile,
                SyntaxError, TypeError, RuntimeError, NotImplementedError) as e:
            raise self.error(f"array {key!r}: unreadable .npy header ({e})") from None
        return fh, shape, fortran, dtype

    def header(self, key):
        fh, shape, _, dtype = self._open(key)
        fh.close()
        return shape, dtype

    def read(self, key, shape=None, kinds=_NUMERIC_KINDS + "U"):
        fh, got_shape, fortran, dtype = self._open(key)
        with fh:
            if dtype.hasobject or dtype.kind not in kinds:
                raise self.error(f"array {key!r} has dtype {dtype}, expected one of the kinds "
                                 f"{kinds!r}")
            if callable(shape):
                why = shape(got_shape)
                if why:
                    raise self.error(f"array {key!r} {why}")
            elif shape is not None and tuple(got_shape) != tuple(shape):
                raise self.error(f"array {key!r} has shape {got_shape}, expected {shape}")
            count = int(np.prod(got_shape, dtype=np.int64))
            nbytes = count * dtype.itemsize
            try:
                data = read_upto(fh, nbytes + 1)
            except (OSError, EOFError, zlib.error, zipfile.BadZipFile, ValueError) as e:
                raise self.error(f"array {key!r}: corrupt data ({e})") from None
        if len(data) != nbytes:
            raise self.error(f"array {key!r}: its header declares {nbytes} bytes of data, "
                             f"the member holds {'more' if len(data) > nbytes else len(data)}")
        arr = np.frombuffer(data, dtype=dtype, count=count)
        arr = arr.reshape(got_shape[::-1]).T if fortran else arr.reshape(got_shape)
        return arr.copy() if not arr.flags.writeable else arr


# ---------------------------------------------------------------------------------------------
# writing where the user points

def check_output_file(path, what, is_ours, kind):
    """Raise ValueError (naming ``what``) unless ``path`` can be written: its folder exists
    and is a writable folder, ``path`` is not a folder, and an existing file there passes
    ``is_ours(path)`` (a file ``kind`` names, that fastnn would write).  Leaves ``path``
    untouched (the folder test makes and removes a temporary file beside it)."""
    if path is None or os.fspath(path) == "":
        raise ValueError(f"{what}: expected a file name, got {path!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{what}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{what}: {path} is a folder, expected a file name")
    if os.path.exists(path):
        if not os.path.isfile(path):
            raise ValueError(f"{what}: {path} exists and is not a regular file")
        if not is_ours(path):
            raise ValueError(f"{what}: {path} exists and is not {kind}; fastnn does not "
                             f"replace a file it did not write (move it, or choose another "
                             f"name)")
        if not os.access(path, os.W_OK):
            raise ValueError(f"{what}: {path} is not writable")
    # a file made and removed at once: the only sure test (os.access says yes to root even
    # on a read-only mount)
    import tempfile
    try:
        fd, probe = tempfile.mkstemp(prefix=".fastnn-probe-", dir=folder)
    except OSError as e:
        raise ValueError(f"{what}: cannot write in the folder {folder} ({e.strerror})") \
            from None
    os.close(fd)
    os.unlink(probe)
    return path


def starts_with(prefix):
    """An ``is_ours`` test: the file is empty or starts with ``prefix`` (bytes)."""
    def test(path):
        with open(path, "rb") as fh:
            head = fh.read(len(prefix))
        return head == b"" or head == prefix
    return test


_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"%PDF", b"<?xml", b"<svg", b"%!PS", b"\xff\xd8\xff",
                b"II*\x00", b"MM\x00*", b"RIFF")


def is_image(path):
    """An ``is_ours`` test for figures: empty, or an image (PNG, PDF, SVG, PostScript,
    JPEG, TIFF, WebP) as matplotlib writes them."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    return head == b"" or head.startswith(_IMAGE_MAGIC)


@contextlib.contextmanager
def term_as_interrupt():
    """While the block runs in the main thread, SIGTERM (when its handler is the default,
    which ends the process at once) raises KeyboardInterrupt instead, so ``finally`` and
    ``except`` clauses remove temporary files."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        old = signal.getsignal(signal.SIGTERM)
    except (ValueError, AttributeError):
        yield
        return
    if old is not signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
