"""fastnn.datasets: the IDX / npz / pickle readers, the search order, downloads, the sample.

Every fixture file is written here, by this test, with struct / numpy / pickle -- not with the
code under test.  The network is never used: ``_urlopen`` is replaced in every test.
"""

import gzip
import hashlib
import io
import os
import pickle
import struct
import urllib.error

import numpy as np
import pytest

from fastnn import datasets

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ------------------------------------------------------------------------------ fixture writers

def make_arrays(seed=0, n_train=12, n_test=5):
    """Small uint8 data set with every pixel value 0..255 present in the training images."""
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    x_train.reshape(-1)[:256] = np.arange(256, dtype=np.uint8)
    y_train = (np.arange(n_train) * 7 % 10).astype(np.uint8)
    x_test = rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8)
    y_test = (np.arange(n_test) * 3 % 10).astype(np.uint8)
    return x_train, y_train, x_test, y_test


def idx_bytes(arr):
    """IDX encoding of a uint8 array: 0, 0, type 0x08, rank, big-endian dims, data."""
    head = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim)
    head += b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + bytes(bytearray(arr.ravel().tolist()))


def write_idx_dir(folder, arrays, gz=True):
    os.makedirs(folder, exist_ok=True)
    for name, arr in zip(IDX_NAMES, arrays):
        data = idx_bytes(arr)
        if gz:
            with gzip.open(os.path.join(folder, name + ".gz"), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
    return str(folder)


def write_npz(filename, arrays):
    np.savez_compressed(filename, **dict(zip(("x_train", "y_train", "x_test", "y_test"),
                                             arrays)))
    return str(filename)


def write_nielsen_pickle(filename, arrays, scale=255.0):
    """Nielsen's layout: ((x, y) train 5/6, (x, y) validation 1/6, (x, y) test), gzipped."""
    x_train, y_train, x_test, y_test = arrays
    flat = x_train.reshape(len(x_train), 784).astype(np.float32) / np.float32(scale)
    n = len(flat) - len(flat) // 6
    labels = y_train.astype(np.int64)
    parts = ((flat[:n], labels[:n]), (flat[n:], labels[n:]),
             (x_test.reshape(len(x_test), 784).astype(np.float32) / np.float32(scale),
              y_test.astype(np.int64)))
    with gzip.open(filename, "wb") as f:
        pickle.dump(parts, f, protocol=2)
    return str(filename)


def assert_same(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    for got, want in zip((x_train, y_train, x_test, y_test), arrays):
        assert got.dtype == np.uint8
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No $FASTNN_DATA, a fresh $HOME (so an empty cache), no Debian folder, no network."""
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.delenv("FASTNN_NO_DOWNLOAD", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(datasets, "DEBIAN_DIRS",
                        {"fashion-mnist": str(tmp_path / "no-debian" / "fashion-mnist")})

    def no_network(url, timeout=None):
        raise AssertionError("test tried to open %s" % url)

    monkeypatch.setattr(datasets, "_urlopen", no_network)


@pytest.fixture
def arrays():
    return make_arrays()


# ------------------------------------------------------------------------------------ readers

@pytest.mark.parametrize("gz", [True, False])
def test_idx_dir_gz_and_raw(tmp_path, arrays, gz):
    folder = write_idx_dir(tmp_path / "idx", arrays, gz=gz)
    data = datasets.load_mnist(folder)
    assert_same(data, arrays)
    assert data.source == folder and not data.is_sample


def test_read_idx_single_file(tmp_path, arrays):
    p = tmp_path / "labels"
    p.write_bytes(idx_bytes(arrays[1]))
    y = datasets.read_idx(str(p), magic=0x0801, ndim=1)
    assert y.dtype == np.uint8 and y.shape == (12,)
    np.testing.assert_array_equal(y, arrays[1])


def test_npz(tmp_path, arrays):
    assert_same(datasets.load_mnist(write_npz(tmp_path / "m.npz", arrays)), arrays)


@pytest.mark.parametrize("scale", [255.0, 256.0])
def test_nielsen_pickle_keras_form(tmp_path, arrays, scale):
    # train + validation are joined back into 12 training images; x*255 (or x*256) -> uint8
    fn = write_nielsen_pickle(tmp_path / "mnist.pkl.gz", arrays, scale=scale)
    assert_same(datasets.load_mnist(fn), arrays)


def test_nielsen_pickle_raw(tmp_path, arrays):
    fn = write_nielsen_pickle(tmp_path / "mnist.pkl.gz", arrays)
    tr, va, te = datasets.read_nielsen_pickle(fn)
    assert tr[0].shape == (10, 784) and va[0].shape == (2, 784) and te[0].shape == (5, 784)
    assert tr[0].dtype == np.float32 and tr[1].dtype == np.int64


def test_three_formats_identical(tmp_path, arrays):
    results = [
        datasets.load_mnist(write_idx_dir(tmp_path / "idx", arrays)),
        datasets.load_mnist(write_npz(tmp_path / "m.npz", arrays)),
        datasets.load_mnist(write_nielsen_pickle(tmp_path / "mnist.pkl.gz", arrays)),
    ]
    for other in results[1:]:
        for a, b in zip(results[0][0] + results[0][1], other[0] + other[1]):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def test_folder_holding_single_files(tmp_path, arrays):
    write_npz(tmp_path / "mnist.npz", arrays)
    assert_same(datasets.load_mnist(str(tmp_path)), arrays)
    folder = tmp_path / "f"
    folder.mkdir()
    write_nielsen_pickle(folder / "mnist.pkl.gz", arrays)
    assert_same(datasets.load_mnist(str(folder)), arrays)


# ------------------------------------------------------------------------------- corrupt files

def _corrupt_dir(tmp_path, arrays, name, data):
    folder = write_idx_dir(tmp_path / "bad", arrays, gz=False)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)
    return folder


def test_bad_magic(tmp_path, arrays):
    data = bytearray(idx_bytes(arrays[0]))
    data[2] = 0x42  # unknown type byte
    folder = _corrupt_dir(tmp_path, arrays, IDX_NAMES[0], bytes(data))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*magic"):
        datasets.load_mnist(folder)


def test_labels_file_with_image_magic(tmp_path, arrays):
    folder = _corrupt_dir(tmp_path, arrays, IDX_NAMES[1], idx_bytes(arrays[0]))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*magic"):
        datasets.load_mnist(folder)


def test_truncated_data(tmp_path, arrays):
    folder = _corrupt_dir(tmp_path, arrays, IDX_NAMES[2], idx_bytes(arrays[2])[:-100])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.*truncated"):
        datasets.load_mnist(folder)


def test_truncated_header(tmp_path, arrays):
    folder = _corrupt_dir(tmp_path, arrays, IDX_NAMES[2], idx_bytes(arrays[2])[:9])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.*truncated"):
        datasets.load_mnist(folder)


def test_trailing_bytes(tmp_path, arrays):
    folder = _corrupt_dir(tmp_path, arrays, IDX_NAMES[3], idx_bytes(arrays[3]) + b"\0\0")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*after the data"):
        datasets.load_mnist(folder)


def test_truncated_gzip(tmp_path, arrays):
    folder = write_idx_dir(tmp_path / "bad", arrays, gz=True)
    p = os.path.join(folder, IDX_NAMES[0] + ".gz")
    with open(p, "rb") as f:
        data = f.read()
    with open(p, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz.*gzip"):
        datasets.load_mnist(folder)


def test_count_mismatch(tmp_path, arrays):
    folder = _corrupt_dir(tmp_path, arrays, IDX_NAMES[1], idx_bytes(arrays[1][:-1]))
    with pytest.raises(ValueError, match="labels have shape"):
        datasets.load_mnist(folder)


def test_wrong_image_size(tmp_path, arrays):
    small = np.zeros((12, 27, 28), dtype=np.uint8)
    folder = _corrupt_dir(tmp_path, arrays, IDX_NAMES[0], idx_bytes(small))
    with pytest.raises(ValueError, match=r"expected \(n, 28, 28\)"):
        datasets.load_mnist(folder)


def test_npz_missing_key(tmp_path, arrays):
    fn = tmp_path / "m.npz"
    np.savez(fn, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2])
    with pytest.raises(ValueError, match="y_test"):
        datasets.load_mnist(str(fn))


def test_garbage_pickle_and_npz(tmp_path):
    for name in ("x.pkl.gz", "x.npz"):
        p = tmp_path / name
        p.write_bytes(b"not a data file at all")
        with pytest.raises(ValueError, match=name):
            datasets.load_mnist(str(p))


def test_unknown_file_type(tmp_path):
    p = tmp_path / "data.csv"
    p.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="unknown file type"):
        datasets.load_mnist(str(p))


# -------------------------------------------------------------------------------- search order

def test_fastnn_data_env(tmp_path, monkeypatch, arrays):
    root = tmp_path / "data"
    write_idx_dir(root, arrays)
    monkeypatch.setenv("FASTNN_DATA", str(root))
    assert_same(datasets.load_mnist(download=False), arrays)
    # the subfolder named after the data set comes first
    other = make_arrays(seed=1)
    write_idx_dir(root / "mnist", other)
    assert_same(datasets.load_mnist(download=False), other)


def test_search_order_env_debian_cache(tmp_path, monkeypatch):
    env_data, deb_data, cache_data = (make_arrays(seed=s) for s in (1, 2, 3))
    debian = write_idx_dir(tmp_path / "debian" / "fashion-mnist", deb_data)
    monkeypatch.setattr(datasets, "DEBIAN_DIRS", {"fashion-mnist": debian})
    write_idx_dir(tmp_path / "home" / ".cache" / "fastnn" / "fashion-mnist", cache_data)

    assert_same(datasets.load_fashion_mnist(download=False), deb_data)   # Debian before cache
    write_idx_dir(tmp_path / "env" / "fashion-mnist", env_data)
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "env"))
    assert_same(datasets.load_fashion_mnist(download=False), env_data)   # $FASTNN_DATA first
    monkeypatch.delenv("FASTNN_DATA")
    monkeypatch.setattr(datasets, "DEBIAN_DIRS", {})
    assert_same(datasets.load_fashion_mnist(download=False), cache_data)  # then the cache
    # MNIST never looks in the Fashion-MNIST folders
    with pytest.raises(FileNotFoundError):
        datasets.load_mnist(download=False)


def test_explicit_path_wins(tmp_path, monkeypatch, arrays):
    other = make_arrays(seed=5)
    monkeypatch.setenv("FASTNN_DATA", write_idx_dir(tmp_path / "env", other))
    assert_same(datasets.load_mnist(write_idx_dir(tmp_path / "mine", arrays)), arrays)


# ------------------------------------------------------------------------ not found / download

def test_not_found_fashion_message(tmp_path):
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.load_fashion_mnist(download=False)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "path=" in msg and "FASTNN_DATA" in msg
    assert "train-images-idx3-ubyte.gz" in msg


def test_not_found_mnist_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist(download=False)
    msg = str(info.value)
    assert "path=" in msg and "FASTNN_DATA" in msg and "apt-get" not in msg


def test_not_found_explicit_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="empty"):
        datasets.load_mnist(str(tmp_path / "empty"))


def test_no_download_env(monkeypatch):
    monkeypatch.setenv("FASTNN_NO_DOWNLOAD", "1")
    with pytest.raises(FileNotFoundError, match="switched off"):
        datasets.load_fashion_mnist()


def test_offline_download_fails_cleanly(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(datasets, "_urlopen", offline)
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.load_fashion_mnist()
    msg = str(info.value)
    assert "download failed" in msg and "apt-get install dataset-fashion-mnist" in msg
    cache = tmp_path / "home" / ".cache" / "fastnn" / "fashion-mnist"
    assert not cache.exists() or os.listdir(cache) == []


def _serve(files):
    """A fake urlopen serving ``files`` (name -> bytes) by the last part of the URL."""
    def fake(url, timeout=None):
        assert timeout is not None and timeout <= 60
        return io.BytesIO(files[url.rsplit("/", 1)[1]])
    return fake


def _gz_files(arrays):
    return {name + ".gz": gzip.compress(idx_bytes(a)) for name, a in zip(IDX_NAMES, arrays)}


def test_download_verified_into_cache(tmp_path, monkeypatch, arrays, capsys):
    files = _gz_files(arrays)
    spec = dict(datasets.DATASETS["mnist"])
    spec["md5"] = {n: hashlib.md5(b).hexdigest() for n, b in files.items()}
    monkeypatch.setitem(datasets.DATASETS, "mnist", spec)
    monkeypatch.setattr(datasets, "_urlopen", _serve(files))
    data = datasets.load_mnist()
    assert_same(data, arrays)
    cache = tmp_path / "home" / ".cache" / "fastnn" / "mnist"
    assert sorted(os.listdir(cache)) == sorted(files)
    assert "downloading" in capsys.readouterr().err
    # second call reads the cache without the network
    monkeypatch.setattr(datasets, "_urlopen", None)
    assert_same(datasets.load_mnist(), arrays)


def test_download_checksum_mismatch(tmp_path, monkeypatch, arrays):
    files = _gz_files(arrays)
    monkeypatch.setattr(datasets, "_urlopen", _serve(files))  # real MD5s: these files fail
    with pytest.raises(datasets.DatasetNotFoundError, match="MD5"):
        datasets.load_mnist()
    cache = tmp_path / "home" / ".cache" / "fastnn" / "mnist"
    assert os.listdir(cache) == []  # no partial or temporary files left


def test_published_checksums_look_right():
    for spec in datasets.DATASETS.values():
        assert sorted(spec["md5"]) == sorted(n + ".gz" for n in IDX_NAMES)
        assert all(len(h) == 32 and int(h, 16) >= 0 for h in spec["md5"].values())


# -------------------------------------------------------------------------- sample and load()

def test_shipped_sample():
    data = datasets.load_sample()
    (x_train, y_train), (x_test, y_test) = data
    assert x_train.shape == (3000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (3000,) and y_train.dtype == np.uint8
    assert x_test.shape == (1000, 28, 28) and y_test.shape == (1000,)
    assert np.bincount(y_train, minlength=10).tolist() == [300] * 10
    assert y_test.min() >= 0 and y_test.max() <= 9
    assert x_train.max() > 200 and x_train.min() == 0
    assert data.is_sample and os.path.getsize(datasets.SAMPLE_FILE) < 2.5e6


def test_load_helper(tmp_path, arrays):
    assert datasets.load("sample").is_sample
    folder = write_idx_dir(tmp_path / "idx", arrays)
    got = datasets.load("mnist", path=folder, allow_sample=True)
    assert not got.is_sample
    assert_same(got, arrays)
    with pytest.raises(FileNotFoundError):
        datasets.load("fashion-mnist", download=False)
    fallback = datasets.load("fashion_mnist", allow_sample=True, download=False)
    assert fallback.is_sample and fallback[0][0].shape == (3000, 28, 28)
    with pytest.raises(ValueError, match="dataset"):
        datasets.load("cifar10")


def test_loaded_data_is_a_plain_pair(tmp_path, arrays):
    data = datasets.load_mnist(write_npz(tmp_path / "m.npz", arrays))
    assert isinstance(data, tuple) and len(data) == 2
    (a, b), (c, d) = data
    assert a.shape == (12, 28, 28)
    copy = pickle.loads(pickle.dumps(data))   # e.g. sent to a joblib worker
    assert copy.source == data.source and copy.is_sample is False
    np.testing.assert_array_equal(copy[0][0], a)


# ---------------------------------------------------------------------------------- converters

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_array(arrays, dtype):
    x = datasets.to_array(arrays[0], dtype)
    assert x.shape == (12, 784) and x.dtype == dtype and x.flags.c_contiguous
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x, arrays[0].reshape(12, 784).astype(dtype) / dtype(255))


def test_one_hot(arrays):
    y = datasets.one_hot(arrays[1])
    assert y.shape == (12, 10) and (y.sum(axis=1) == 1).all()
    assert (y.argmax(axis=1) == arrays[1]).all()
    with pytest.raises(ValueError):
        datasets.one_hot(np.array([10]))


def test_to_nielsen(arrays):
    x_train, y_train = arrays[0], arrays[1]
    train = datasets.to_nielsen(x_train, y_train, vectorize=True)
    test = datasets.to_nielsen(x_train, y_train)
    assert isinstance(train, list) and isinstance(test, list) and len(train) == 12
    for (x, y), (x2, j), label, img in zip(train, test, y_train, x_train):
        assert x.shape == (784, 1) and x.dtype == np.float64
        assert 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_array_equal(x.ravel(), img.ravel() / 255.0)
        assert y.shape == (10, 1) and y.sum() == 1.0 and y[label, 0] == 1.0
        assert type(j) is int and j == label
