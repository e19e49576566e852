"""MNIST and Fashion-MNIST as uint8 arrays, laid out like ``tf.keras.datasets``.

``load_mnist()`` and ``load_fashion_mnist()`` return ``(x_train, y_train), (x_test, y_test)``:
images ``(n, 28, 28)`` uint8, labels ``(n,)`` uint8 -- the shapes and dtypes of
``tf.keras.datasets.mnist.load_data()``.  Three on-disk formats are read:

- the four IDX files (gzip or raw): ``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``,
  ``t10k-labels-idx1-ubyte[.gz]``;
- a Keras ``.npz`` with the keys ``x_train, y_train, x_test, y_test``;
- Nielsen's ``mnist.pkl.gz`` (a Python 2 pickle of float32 784-vectors in [0, 1], split
  50000 train + 10000 validation + 10000 test), read by an unpickler that can build only
  tuples and numeric numpy arrays: a pickle naming anything else is a ValueError, and no
  code in it runs.  In a folder holding several formats, IDX files and ``.npz`` win over a
  pickle.

Every reader checks names, headers and declared sizes before it reads a payload, and reads at
most what the header declares (plus a byte, to notice more): a broken or hostile file costs
no more memory than a valid one of its declared size, and every error names the file.

Where the files are looked for when ``path`` is None, in order:

1. ``$FASTNN_DATA/<dataset>/`` then ``$FASTNN_DATA/``;
   (``fastnn.mnist_loader`` then tries the book's own default, ``../data/mnist.pkl.gz``
   relative to the working directory, for MNIST only)
2. the Debian folder of the dataset (``/usr/share/datasets/fashion-mnist/`` for Fashion-MNIST,
   from ``apt-get install dataset-fashion-mnist``);
3. the cache ``~/.cache/fastnn/<dataset>/`` then ``~/.cache/fastnn/``;
4. a download of the four official IDX ``.gz`` files into ``~/.cache/fastnn/<dataset>/``,
   each checked against its published MD5 (skipped with ``download=False`` or
   ``FASTNN_NO_DOWNLOAD=1``).

Apart from the book's default that ``mnist_loader`` asks for, nothing here depends on the
current directory, and nothing imports the compiled engine: this module is numpy and the
standard library only.
"""

import gzip
import hashlib
import os
import struct
import sys
import tempfile
import urllib.request
import zlib

import numpy as np

from fastnn import _safeio

__all__ = [
    "DatasetNotFoundError", "LoadedData", "load", "load_mnist", "load_fashion_mnist",
    "load_sample", "read_idx", "read_idx_dir", "read_npz", "read_nielsen_pickle",
    "read_pickle_keras", "find_source", "to_array", "one_hot", "to_nielsen", "SAMPLE_FILE",
    "FASHION_CLASSES",
]

# The four IDX files of a dataset, in the order (x_train, y_train, x_test, y_test), with the
# magic number and rank each must have.
IDX_FILES = (
    ("train-images-idx3-ubyte", 0x0803, 3),
    ("train-labels-idx1-ubyte", 0x0801, 1),
    ("t10k-images-idx3-ubyte", 0x0803, 3),
    ("t10k-labels-idx1-ubyte", 0x0801, 1),
)
KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SHAPE = (28, 28)

# Per dataset: display name, file names of the single-file formats, download mirrors (tried
# in order) and the published MD5 of each official .gz file.  MNIST's checksums are the ones
# torchvision verifies; Fashion-MNIST's are those in zalandoresearch/fashion-mnist's README.
DATASETS = {
    "mnist": {
        "title": "MNIST",
        "npz": ("mnist.npz",),
        "pickle": ("mnist.pkl.gz", "mnist.pkl"),
        "mirrors": (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion-mnist": {
        "title": "Fashion-MNIST",
        "npz": ("fashion-mnist.npz", "fashion_mnist.npz"),
        "pickle": ("fashion-mnist.pkl.gz",),
        "mirrors": (
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
ALIASES = {"fashion": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist"}

# Folders installed by distribution packages (monkeypatch this in tests).
DEBIAN_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}
APT_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}

# Where the book's mnist_loader.py, run from the book's src/ folder, opens the data: relative to
# the working directory.  Searched only when asked (book=True, as fastnn.mnist_loader does), for
# MNIST, after $FASTNN_DATA and before the Debian folder and the cache.
BOOK_PICKLE = os.path.join(os.pardir, "data", "mnist.pkl.gz")

SAMPLE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                           "fashion-mnist-sample.npz")
DOWNLOAD_TIMEOUT = 15.0  # seconds per socket operation

# IDX type byte -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetNotFoundError(FileNotFoundError):
    """The data set is in none of the searched places and could not be downloaded."""


class LoadedData(tuple):
    """``((x_train, y_train), (x_test, y_test))`` plus where it came from.

    Unpacks and compares like the plain tuple Keras returns.  ``source`` names the file or
    folder read; ``is_sample`` is True when this is the small sample shipped with fastnn.
    """

    def __new__(cls, train, test, source="", is_sample=False):
        self = super().__new__(cls, (tuple(train), tuple(test)))
        self.source = source
        self.is_sample = is_sample
        return self

    def __reduce__(self):
        return (LoadedData, (self[0], self[1], self.source, self.is_sample))


def _canonical(dataset):
    name = str(dataset).lower().strip()
    name = ALIASES.get(name, name)
    if name not in DATASETS and name != "sample":
        raise ValueError("dataset must be one of 'mnist', 'fashion-mnist', 'sample'; got %r"
                         % (dataset,))
    return name


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------

# the most a Nielsen-layout pickle may unpickle from (a guard against a decompression bomb):
# mnist.pkl.gz is about 220 MB, the book's expanded data (250,000 training images, written by
# network3.expand_mnist) about 850 MB
MAX_PICKLE_BYTES = 1536 << 20


def _open_data(filename):
    """``(reader, file)``: the file, gunzipped on the fly when it starts with the gzip
    magic; close ``file`` when done."""
    fh = open(filename, "rb")
    magic = fh.read(2)
    fh.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb"), fh
    return fh, fh


def _read_checked(filename, f, n):
    try:
        return _safeio.read_upto(f, n)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError("%s: corrupt or truncated gzip data (%s)" % (filename, e)) from None


def read_idx_header(filename, magic=None, ndim=None):
    """Return ``(dims, dtype)`` from the header of the IDX file ``filename`` (gzip or raw)
    without reading its data.  Raise ``ValueError`` naming the file when it is wrong."""
    f, raw = _open_data(filename)
    with raw:
        return _idx_header(filename, f, magic, ndim)[:2]


def _idx_header(filename, f, magic, ndim):
    head = _read_checked(filename, f, 4)
    if len(head) < 4:
        raise ValueError("%s: not an IDX file (%d bytes, the header alone needs 4)"
                         % (filename, len(head)))
    zero, type_code, rank = struct.unpack(">HBB", head)
    found_magic = (type_code << 8) | rank
    if zero != 0 or type_code not in _IDX_DTYPES:
        raise ValueError("%s: bad IDX magic number 0x%08x" % (filename, (zero << 16) | found_magic))
    if magic is not None and found_magic != magic:
        raise ValueError("%s: bad IDX magic number 0x%08x, expected 0x%08x"
                         % (filename, found_magic, magic))
    if ndim is not None and rank != ndim:
        raise ValueError("%s: IDX rank %d, expected %d" % (filename, rank, ndim))
    header = 4 + 4 * rank
    rest = _read_checked(filename, f, header - 4)
    if len(rest) < header - 4:
        raise ValueError("%s: truncated IDX header (%d bytes, expected %d)"
                         % (filename, 4 + len(rest), header))
    dims = struct.unpack(">%dI" % rank, rest)
    return dims, np.dtype(_IDX_DTYPES[type_code]), header


def read_idx(filename, magic=None, ndim=None, dims_check=None):
    """Return the array stored in the IDX file ``filename`` (gzip or raw).

    The header is two zero bytes, a type byte (0x08 = uint8, ...), the rank ``d``, then ``d``
    big-endian uint32 dimensions; the data follow in C order.  ``magic`` and ``ndim``, when
    given, are the expected ``(type << 8) | rank`` and rank; ``dims_check(dims)`` may return
    an error text before the data are read.  At most the declared data (and one byte, to
    notice more) are read.  Raise ``ValueError`` naming the file when the header or the
    length is wrong.
    """
    f, raw = _open_data(filename)
    with raw:
        dims, dtype, header = _idx_header(filename, f, magic, ndim)
        if dims_check is not None:
            why = dims_check(dims)
            if why:
                raise ValueError("%s: %s" % (filename, why))
        expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
        if f is raw:
            size = os.fstat(raw.fileno()).st_size
            if size < header + expected:
                raise ValueError("%s: truncated IDX file: dimensions %s need %d bytes, found %d"
                                 % (filename, dims, header + expected, size))
            if size > header + expected:
                raise ValueError("%s: IDX file has %d bytes after the data of dimensions %s"
                                 % (filename, size - header - expected, dims))
        data = _read_checked(filename, f, expected + 1)
    if len(data) < expected:
        raise ValueError("%s: truncated IDX file: dimensions %s need %d bytes, found %d"
                         % (filename, dims, header + expected, header + len(data)))
    if len(data) > expected:
        raise ValueError("%s: IDX file has more data than its dimensions %s declare"
                         % (filename, dims))
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def _check_split(x, y, what, source):
    """Validate one (images, labels) pair; return it as uint8 arrays."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise ValueError("%s: %s images have shape %s, expected (n, 28, 28)"
                         % (source, what, x.shape))
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError("%s: %s labels have shape %s, expected (%d,) to match %d images"
                         % (source, what, y.shape, len(x), len(x)))
    for name, a in (("images", x), ("labels", y)):
        if a.dtype != np.uint8:
            if a.dtype.kind not in "iu" or (a.size and (a.min() < 0 or a.max() > 255)):
                raise ValueError("%s: %s %s have dtype %s, expected uint8 values"
                                 % (source, what, name, a.dtype))
    return x.astype(np.uint8, copy=False), y.astype(np.uint8, copy=False)


def _idx_paths(directory):
    """Return the four IDX paths found in ``directory`` (raw preferred to .gz), or None."""
    paths = []
    for name, _, _ in IDX_FILES:
        for candidate in (name, name + ".gz"):
            p = os.path.join(directory, candidate)
            if os.path.isfile(p):
                paths.append(p)
                break
        else:
            return None
    return paths


def read_idx_dir(directory):
    """Return ``((x_train, y_train), (x_test, y_test))`` from the IDX files in ``directory``."""
    paths = _idx_paths(directory)
    if paths is None:
        raise FileNotFoundError("%s: the four IDX files (%s) are not all there"
                                % (directory, ", ".join(n for n, _, _ in IDX_FILES)))
    # every header first: the image and label counts must agree before any payload is read
    heads = [read_idx_header(p, magic, ndim)[0] for p, (_, magic, ndim) in zip(paths, IDX_FILES)]
    for k, what in ((0, "training"), (2, "test")):
        if tuple(heads[k][1:]) != IMAGE_SHAPE:
            raise ValueError("%s: %s images have shape %s, expected (n, 28, 28)"
                             % (paths[k], what, tuple(heads[k])))
        if heads[k][0] != heads[k + 1][0]:
            raise ValueError("%s: %s labels have shape %s, expected (%d,) to match %d images"
                             " in %s" % (paths[k + 1], what, tuple(heads[k + 1]), heads[k][0],
                                         heads[k][0], paths[k]))
    arrays = [read_idx(p, magic, ndim, dims_check=lambda d, want=tuple(h): (
                  None if tuple(d) == want else "the header changed while reading"))
              for p, (_, magic, ndim), h in zip(paths, IDX_FILES, heads)]
    train = _check_split(arrays[0], arrays[1], "training", paths[0])
    test = _check_split(arrays[2], arrays[3], "test", paths[2])
    return train, test


def read_npz(filename):
    """Return ``((x_train, y_train), (x_test, y_test))`` from a Keras-layout ``.npz``.

    The members' ``.npy`` headers are checked (names, integer dtypes, shapes (n, 28, 28) and
    (n,) with the same n) before any payload is read."""
    filename = os.fspath(filename)
    with _safeio.NpzArchive(filename) as z:
        missing = [k for k in KERAS_KEYS if k not in z]
        if missing:
            raise ValueError("%s: missing key(s) %s; a Keras .npz holds %s"
                             % (filename, ", ".join(missing), ", ".join(KERAS_KEYS)))
        shapes = {k: z.header(k)[0] for k in KERAS_KEYS}
        for x, y, what in (("x_train", "y_train", "training"), ("x_test", "y_test", "test")):
            if len(shapes[x]) != 3 or tuple(shapes[x][1:]) != IMAGE_SHAPE:
                raise ValueError("%s: %s images have shape %s, expected (n, 28, 28)"
                                 % (filename, what, shapes[x]))
            if tuple(shapes[y]) != (shapes[x][0],):
                raise ValueError("%s: %s labels have shape %s, expected (%d,) to match %d "
                                 "images" % (filename, what, shapes[y], shapes[x][0],
                                             shapes[x][0]))
        arrays = [z.read(k, shape=shapes[k], kinds="iu") for k in KERAS_KEYS]
    train = _check_split(arrays[0], arrays[1], "training", filename)
    test = _check_split(arrays[2], arrays[3], "test", filename)
    return train, test


def read_nielsen_pickle(filename):
    """Return Nielsen's ``(training_data, validation_data, test_data)`` from ``mnist.pkl.gz``.

    Each part is ``(x, y)``: x a float array ``(n, 784)`` in [0, 1], y an integer array
    ``(n,)``, as stored.  The file is a Python 2 pickle, read with ``encoding='latin1'``
    by an unpickler that builds only tuples, lists, numbers and numeric numpy arrays (from at
    most ``MAX_PICKLE_BYTES``): a pickle that names any other class or function is a
    ValueError naming the file, and nothing in it runs.
    """
    f, raw = _open_data(filename)
    with raw:
        parts = _safeio.load_pickle(f, filename, MAX_PICKLE_BYTES)
    if not (isinstance(parts, (tuple, list)) and len(parts) == 3
            and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in parts)):
        raise ValueError("%s: expected a (training, validation, test) tuple of (x, y) pairs"
                         % filename)
    out = []
    for what, (x, y) in zip(("training", "validation", "test"), parts):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 2 or x.shape[1] != 784 or x.dtype.kind != "f":
            raise ValueError("%s: %s images have shape %s dtype %s, expected float (n, 784)"
                             % (filename, what, x.shape, x.dtype))
        if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
            raise ValueError("%s: %s labels have shape %s dtype %s, expected int (%d,)"
                             % (filename, what, y.shape, y.dtype, len(x)))
        out.append((x, y))
    return tuple(out)


def _pixels_from_float(x, source):
    """Return uint8 pixels from floats in [0, 1].

    The scale is detected: values that are multiples of 1/255 give ``round(x*255)``, values that
    are multiples of 1/256 (as in the deeplearning.net pickle Nielsen ships) give
    ``round(x*256)``; anything else falls back to ``round(x*255)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1 or not np.isfinite(x).all()):
        raise ValueError("%s: image values must lie in [0, 1]" % source)
    scaled = x * 255
    if x.size and np.abs(scaled - np.rint(scaled)).max() > 1e-3:
        alt = x * 256
        if np.abs(alt - np.rint(alt)).max() <= 1e-3:
            scaled = alt
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def read_pickle_keras(filename):
    """Return Nielsen's pickle in the Keras form: train + validation joined, uint8 pixels."""
    (xtr, ytr), (xva, yva), (xte, yte) = read_nielsen_pickle(filename)
    x_train = _pixels_from_float(np.concatenate([xtr, xva]), filename).reshape(-1, *IMAGE_SHAPE)
    y_train = np.concatenate([ytr, yva])
    x_test = _pixels_from_float(xte, filename).reshape(-1, *IMAGE_SHAPE)
    train = _check_split(x_train, y_train, "training", filename)
    test = _check_split(x_test, yte, "test", filename)
    return train, test


# ---------------------------------------------------------------------------------------------
# Finding the files
# ---------------------------------------------------------------------------------------------

def _cache_root():
    return os.path.join(os.path.expanduser("~"), ".cache", "fastnn")


def _file_kind(filename):
    name = filename.lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".pkl", ".pkl.gz", ".pickle", ".pickle.gz")):
        return "pickle"
    return None


def _find_in_dir(directory, dataset, kinds):
    """Return ``(kind, path)`` for the first format of ``kinds`` present in ``directory``."""
    if not os.path.isdir(directory):
        return None
    spec = DATASETS[dataset]
    for kind in kinds:
        if kind == "idx":
            if _idx_paths(directory) is not None:
                return ("idx", directory)
        else:
            for name in spec[kind]:
                p = os.path.join(directory, name)
                if os.path.isfile(p):
                    return (kind, p)
    return None


def _search_dirs(dataset, book=False):
    """Return the places searched when no path is given, in order, each with a flag saying
    whether bare IDX files there count (not in the cache root, shared by both data sets).
    With ``book`` (MNIST only) the book's own file comes after ``$FASTNN_DATA``; its entry
    is that file's absolute path, with the flag 'file'."""
    dirs = []
    env = os.environ.get("FASTNN_DATA")
    if env:
        env = os.path.expanduser(env)
        dirs += [(os.path.join(env, dataset), True), (env, True)]
    if book and dataset == "mnist":
        dirs.append((os.path.abspath(BOOK_PICKLE), "file"))
    if dataset in DEBIAN_DIRS:
        dirs.append((DEBIAN_DIRS[dataset], True))
    cache = _cache_root()
    dirs += [(os.path.join(cache, dataset), True), (cache, False)]
    return dirs


def find_source(dataset, path=None, kinds=("idx", "npz", "pickle"), book=False):
    """Return ``(kind, path)`` of the files of ``dataset`` without downloading, or None.

    ``kind`` is 'idx' (path is a folder), 'npz' or 'pickle'; ``kinds`` gives the formats
    tried, in order, in each folder.  ``path`` may be a folder or a single .npz / .pkl.gz
    file; when it is None the default places are searched (with ``book``, for MNIST, also
    the book's ``../data/mnist.pkl.gz`` relative to the working directory).
    """
    dataset = _canonical(dataset)
    if dataset == "sample":
        return ("npz", SAMPLE_FILE)
    if path is not None:
        path = os.path.expanduser(os.fspath(path))
        if os.path.isfile(path):
            kind = _file_kind(path)
            if kind is None:
                raise ValueError("%s: unknown file type; pass a .npz, a .pkl.gz or a folder "
                                 "holding the four IDX files" % path)
            return (kind, path)
        for d in (path, os.path.join(path, dataset)):
            found = _find_in_dir(d, dataset, kinds)
            if found:
                return found
        return None
    for d, idx_ok in _search_dirs(dataset, book):
        if idx_ok == "file":
            if "pickle" in kinds and os.path.isfile(d):
                return ("pickle", d)
            continue
        found = _find_in_dir(d, dataset, [k for k in kinds if idx_ok or k != "idx"])
        if found:
            return found
    return None


def _read_source(kind, path):
    if kind == "idx":
        return read_idx_dir(path)
    if kind == "npz":
        return read_npz(path)
    return read_pickle_keras(path)


# ---------------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------------

_urlopen = urllib.request.urlopen  # replaced in the tests, which never touch the network


def _md5_file(filename):
    h = hashlib.md5()
    with open(filename, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url, target, md5, timeout):
    """Download ``url`` to ``target`` through a temporary file; check its MD5 first."""
    folder = os.path.dirname(target)
    with _safeio.term_as_interrupt():        # SIGTERM, like Ctrl-C, removes the .part file
        _fetch_to(url, target, md5, timeout, folder)


def _fetch_to(url, target, md5, timeout, folder):
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target), suffix=".part")
    try:
        h = hashlib.md5()
        with os.fdopen(fd, "wb") as out, _urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 16), b""):
                h.update(block)
                out.write(block)
        if h.hexdigest() != md5:
            raise ValueError("MD5 %s does not match the published %s" % (h.hexdigest(), md5))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _download(dataset, timeout=DOWNLOAD_TIMEOUT):
    """Download the four IDX .gz files of ``dataset`` into the cache; return the folder."""
    spec = DATASETS[dataset]
    folder = os.path.join(_cache_root(), dataset)
    os.makedirs(folder, exist_ok=True)
    for name, md5 in spec["md5"].items():
        target = os.path.join(folder, name)
        if os.path.isfile(target) and _md5_file(target) == md5:
            continue
        errors = []
        for base in spec["mirrors"]:
            url = base + name
            print("fastnn: downloading %s" % url, file=sys.stderr)
            try:
                _fetch(url, target, md5, timeout)
                break
            except (OSError, ValueError) as e:  # URLError and timeouts are OSErrors
                errors.append("%s: %s" % (url, e))
        else:
            raise OSError("; ".join(errors))
    return folder


def _not_found(dataset, path, why, book=False):
    spec = DATASETS[dataset]
    names = ", ".join(spec["md5"])
    if path is not None:
        lines = ["%s was not found in %s." % (spec["title"], path)]
    else:
        lines = ["%s was not found. Searched:" % spec["title"]]
        if not os.environ.get("FASTNN_DATA"):
            lines.append("  $FASTNN_DATA (not set)")
        lines += ["  " + (d + "  (the book's ../data/mnist.pkl.gz, from the working directory)"
                          if flag == "file" else d)
                  for d, flag in _search_dirs(dataset, book)]
    if why:
        lines.append(why)
    lines.append("To fix, do one of:")
    if dataset in APT_PACKAGES:
        lines.append("  - sudo apt-get install %s   (Debian/Ubuntu; installs %s)"
                     % (APT_PACKAGES[dataset], DEBIAN_DIRS[dataset]))
    lines.append("  - download %s from %s into a folder, then pass path='that/folder' or "
                 "set FASTNN_DATA=that/folder" % (names, spec["mirrors"][0]))
    lines.append("  - pass path= a Keras .npz (keys %s) or Nielsen's mnist.pkl.gz"
                 % ", ".join(KERAS_KEYS))
    return DatasetNotFoundError("\n".join(lines))


def _load_dataset(dataset, path=None, download=True, book=False):
    dataset = _canonical(dataset)
    if dataset == "sample":
        return load_sample()
    found = find_source(dataset, path, book=book)
    if found is None:
        if path is not None:
            raise _not_found(dataset, path, "")
        if not download or os.environ.get("FASTNN_NO_DOWNLOAD", "") not in ("", "0"):
            raise _not_found(dataset, None, "Downloading is switched off.", book)
        try:
            found = ("idx", _download(dataset))
        except OSError as e:
            raise _not_found(dataset, None, "The download failed: %s" % e, book) from None
    train, test = _read_source(*found)
    return LoadedData(train, test, source=found[1])


# ---------------------------------------------------------------------------------------------
# Public loaders
# ---------------------------------------------------------------------------------------------

def load_mnist(path=None, download=True):
    """Return MNIST as ``(x_train, y_train), (x_test, y_test)`` uint8 arrays.

    Shapes are (60000, 28, 28), (60000,), (10000, 28, 28), (10000,).  See the module
    docstring for ``path`` and the places searched.
    """
    return _load_dataset("mnist", path, download)


def load_fashion_mnist(path=None, download=True):
    """Return Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)`` uint8 arrays."""
    return _load_dataset("fashion-mnist", path, download)


def load_sample():
    """Return the real Fashion-MNIST sample shipped with fastnn.

    3000 training images (300 of each class) and the first 1000 test images, in the same
    ``(x_train, y_train), (x_test, y_test)`` uint8 form; ``is_sample`` is True.
    """
    train, test = read_npz(SAMPLE_FILE)
    return LoadedData(train, test, source=SAMPLE_FILE, is_sample=True)


def load(dataset, path=None, allow_sample=False, download=True):
    """Return ``dataset`` ('mnist', 'fashion-mnist' or 'sample') as a ``LoadedData``.

    With ``allow_sample`` a data set that cannot be found gives the shipped sample instead;
    the result's ``is_sample`` is then True, so the caller can say "using the shipped sample".
    """
    try:
        return _load_dataset(dataset, path, download)
    except DatasetNotFoundError:
        if not allow_sample:
            raise
        return load_sample()


# ---------------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------------

def to_array(x, dtype=np.float64):
    """Return images ``x`` as a C-contiguous ``(n, 784)`` array of ``dtype``.

    Integer images (uint8 pixels) are divided by 255 into [0, 1]; float images are taken as
    already scaled and only reshaped and cast.
    """
    x = np.asarray(x)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError("dtype must be a float type, got %s" % dtype)
    if x.ndim < 1:
        raise ValueError("x must hold n images, got shape %s" % (x.shape,))
    flat = x.reshape(len(x), -1)
    if x.dtype.kind in "iub":
        return np.ascontiguousarray(flat.astype(dtype) / dtype.type(255))
    return np.ascontiguousarray(flat, dtype=dtype)


def one_hot(y, n_classes=10, dtype=np.float64):
    """Return integer labels ``y`` as ``(n, n_classes)`` one-hot rows of ``dtype``."""
    y = np.asarray(y)
    if y.ndim != 1 or (y.size and (y.min() < 0 or y.max() >= n_classes)):
        raise ValueError("y must be (n,) labels in 0..%d, got shape %s" % (n_classes - 1, y.shape))
    out = np.zeros((len(y), n_classes), dtype=dtype)
    out[np.arange(len(y)), y.astype(np.intp)] = 1
    return out


def to_nielsen(x, y, vectorize=False, dtype=np.float64):
    """Return Nielsen's list of ``(x, y)`` pairs from images ``x`` and labels ``y``.

    Each x is a ``(784, 1)`` column of ``dtype`` in [0, 1] (a view of one row of
    ``to_array(x, dtype)``).  y is a ``(10, 1)`` float64 one-hot column when ``vectorize``,
    else a Python int -- the training and the test forms of ``load_data_wrapper``.
    """
    flat = to_array(x, dtype)
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(flat):
        raise ValueError("y must have shape (%d,), got %s" % (len(flat), labels.shape))
    n_in = flat.shape[1]
    columns = [row.reshape(n_in, 1) for row in flat]
    if vectorize:
        targets = []
        for j in labels.tolist():
            e = np.zeros((10, 1))
            e[j] = 1.0
            targets.append(e)
        return list(zip(columns, targets))
    return list(zip(columns, labels.tolist()))
