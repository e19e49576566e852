"""fastnn.mnist_loader: Nielsen's load_data / load_data_wrapper / vectorized_result.

Fixture files are written here with struct / numpy / pickle; the network is never used.
"""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from fastnn import datasets, mnist_loader

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
N_TRAIN, N_TEST = 18, 7   # 18 training images: 15 train + 3 validation (the 5/6 : 1/6 split)


def make_arrays(seed=0):
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, size=N_TRAIN).astype(np.uint8)
    x_test = rng.integers(0, 256, size=(N_TEST, 28, 28), dtype=np.uint8)
    y_test = rng.integers(0, 10, size=N_TEST).astype(np.uint8)
    return x_train, y_train, x_test, y_test


def write_idx_dir(folder, arrays):
    os.makedirs(folder, exist_ok=True)
    for name, arr in zip(IDX_NAMES, arrays):
        head = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">%dI" % arr.ndim, *arr.shape)
        with gzip.open(os.path.join(folder, name + ".gz"), "wb") as f:
            f.write(head + arr.tobytes())
    return str(folder)


def nielsen_parts(arrays):
    """What Nielsen's pickle holds for these images: float32 x/255 rows, int64 labels."""
    x_train, y_train, x_test, y_test = arrays
    flat = x_train.reshape(-1, 784).astype(np.float32) / np.float32(255)
    n = N_TRAIN - N_TRAIN // 6
    y = y_train.astype(np.int64)
    return ((flat[:n], y[:n]), (flat[n:], y[n:]),
            (x_test.reshape(-1, 784).astype(np.float32) / np.float32(255),
             y_test.astype(np.int64)))


def write_pickle(filename, parts):
    with gzip.open(filename, "wb") as f:
        pickle.dump(parts, f, protocol=2)
    return str(filename)


def assert_parts_equal(got, want):
    assert isinstance(got, tuple) and len(got) == 3
    for (gx, gy), (wx, wy) in zip(got, want):
        assert gx.dtype == np.float32 and gy.dtype == np.int64
        assert gx.shape == wx.shape and gy.shape == wy.shape
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    # run from tmp/book/src, as the book's sessions run from its src/ folder: its default
    # file is then tmp/book/data/mnist.pkl.gz, absent unless a test writes it
    (tmp_path / "book" / "src").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "book" / "src")
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.delenv("FASTNN_NO_DOWNLOAD", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(datasets, "DEBIAN_DIRS",
                        {"fashion-mnist": str(tmp_path / "no-debian")})

    def no_network(url, timeout=None):
        raise AssertionError("test tried to open %s" % url)

    monkeypatch.setattr(datasets, "_urlopen", no_network)


@pytest.fixture
def arrays():
    return make_arrays()


def test_vectorized_result():
    for j in range(10):
        e = mnist_loader.vectorized_result(j)
        assert e.shape == (10, 1) and e.dtype == np.float64
        assert e[j, 0] == 1.0 and e.sum() == 1.0


def test_load_data_pickle_as_stored(tmp_path, arrays):
    parts = nielsen_parts(arrays)
    fn = write_pickle(tmp_path / "mnist.pkl.gz", parts)
    assert_parts_equal(mnist_loader.load_data(fn), parts)
    assert_parts_equal(mnist_loader.load_data(str(tmp_path)), parts)   # folder with the pickle


def test_load_data_from_idx_and_npz_matches_pickle(tmp_path, arrays):
    want = nielsen_parts(arrays)
    assert_parts_equal(mnist_loader.load_data(write_idx_dir(tmp_path / "idx", arrays)), want)
    npz = tmp_path / "m.npz"
    np.savez(npz, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2], y_test=arrays[3])
    assert_parts_equal(mnist_loader.load_data(str(npz)), want)


def test_wrapper_shapes_and_types(tmp_path, arrays):
    fn = write_pickle(tmp_path / "mnist.pkl.gz", nielsen_parts(arrays))
    training, validation, test = mnist_loader.load_data_wrapper(fn)
    assert all(isinstance(d, list) for d in (training, validation, test))
    assert (len(training), len(validation), len(test)) == (15, 3, 7)
    for (x, y), img, label in zip(training, arrays[0], arrays[1]):
        assert x.shape == (784, 1) and x.dtype == np.float32
        np.testing.assert_array_equal(x.ravel(), img.ravel().astype(np.float32) / np.float32(255))
        assert y.shape == (10, 1) and y.sum() == 1.0 and y[label, 0] == 1.0
    for data, labels in ((validation, arrays[1][15:]), (test, arrays[3])):
        for (x, y), label in zip(data, labels):
            assert x.shape == (784, 1)
            assert type(y) is np.int64 and y == label   # as the book zips its label array
    # lists, so they can be walked twice (network.SGD does len() and slicing)
    assert len(list(training)) == len(training)


def test_same_result_from_any_cwd(tmp_path, monkeypatch, arrays):
    parts = nielsen_parts(arrays)
    data_dir = tmp_path / "store"
    data_dir.mkdir()
    write_pickle(data_dir / "mnist.pkl.gz", parts)
    monkeypatch.setenv("FASTNN_DATA", str(data_dir))
    # decoys where Nielsen's code looks ("../data/mnist.pkl.gz", after $FASTNN_DATA) and in
    # the cwd itself (never searched)
    decoy = nielsen_parts(make_arrays(seed=9))
    work = tmp_path / "a" / "src"
    (tmp_path / "a" / "data").mkdir(parents=True)
    work.mkdir()
    write_pickle(tmp_path / "a" / "data" / "mnist.pkl.gz", decoy)
    write_pickle(work / "mnist.pkl.gz", decoy)
    results = []
    for cwd in (work, tmp_path, tmp_path / "a"):
        monkeypatch.chdir(cwd)
        results.append(mnist_loader.load_data())
    for r in results:
        assert_parts_equal(r, parts)


def test_cache_then_not_found(tmp_path, arrays):
    with pytest.raises(FileNotFoundError, match="FASTNN_DATA"):
        mnist_loader.load_data(download=False)
    # the book's default file, missing, is not the cache's business: the cache still works
    cache = tmp_path / "home" / ".cache" / "fastnn"
    cache.mkdir(parents=True)
    parts = nielsen_parts(arrays)
    write_pickle(cache / "mnist.pkl.gz", parts)
    assert_parts_equal(mnist_loader.load_data(download=False), parts)


def test_env_beats_cache(tmp_path, monkeypatch, arrays):
    cache = tmp_path / "home" / ".cache" / "fastnn" / "mnist"
    write_idx_dir(cache, make_arrays(seed=3))
    monkeypatch.setenv("FASTNN_DATA", write_idx_dir(tmp_path / "env", arrays))
    assert_parts_equal(mnist_loader.load_data(), nielsen_parts(arrays))


def test_fashion_wrapper_from_debian_folder(tmp_path, monkeypatch, arrays):
    folder = write_idx_dir(tmp_path / "debian", arrays)
    monkeypatch.setattr(datasets, "DEBIAN_DIRS", {"fashion-mnist": folder})
    training, validation, test = mnist_loader.load_data_wrapper(dataset="fashion-mnist")
    assert (len(training), len(validation), len(test)) == (15, 3, 7)
    assert training[0][1].shape == (10, 1) and type(test[0][1]) is np.int64
    with pytest.raises(FileNotFoundError):   # MNIST is not looked for in the Fashion folder
        mnist_loader.load_data(download=False)


def test_sample_split():
    training, validation, test = mnist_loader.load_data(dataset="sample")
    assert training[0].shape == (2500, 784) and validation[0].shape == (500, 784)
    assert test[0].shape == (1000, 784) and training[0].dtype == np.float32
    assert 0.0 <= training[0].min() and training[0].max() <= 1.0
    assert set(np.unique(test[1]).tolist()) <= set(range(10))


# ---- the book's own call: load_data_wrapper() from src/ opens ../data/mnist.pkl.gz ------------

def book_file(tmp_path):
    folder = tmp_path / "book" / "data"
    folder.mkdir(exist_ok=True)
    return folder / "mnist.pkl.gz"


def test_book_default_file_is_read(tmp_path, arrays):
    parts = nielsen_parts(arrays)
    write_pickle(book_file(tmp_path), parts)
    assert_parts_equal(mnist_loader.load_data(), parts)
    training, validation, test = mnist_loader.load_data_wrapper()
    assert (len(training), len(validation), len(test)) == (15, 3, 7)
    np.testing.assert_array_equal(training[4][0].ravel(), parts[0][0][4])
    assert test[6][1] == parts[2][1][6]


def test_search_order_path_env_book_cache(tmp_path, monkeypatch):
    """Each place holds a different data set; each one wins over every place after it."""
    sets = {k: nielsen_parts(make_arrays(seed=s)) for k, s in
            (("path", 1), ("env", 2), ("book", 3), ("cache", 4))}
    explicit = write_pickle(tmp_path / "explicit.pkl.gz", sets["path"])
    (tmp_path / "env").mkdir()
    write_pickle(tmp_path / "env" / "mnist.pkl.gz", sets["env"])
    write_pickle(book_file(tmp_path), sets["book"])
    cache = tmp_path / "home" / ".cache" / "fastnn"
    cache.mkdir(parents=True)
    write_pickle(cache / "mnist.pkl.gz", sets["cache"])
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "env"))
    assert_parts_equal(mnist_loader.load_data(explicit), sets["path"])
    assert_parts_equal(mnist_loader.load_data(), sets["env"])
    monkeypatch.delenv("FASTNN_DATA")
    assert_parts_equal(mnist_loader.load_data(), sets["book"])
    os.remove(book_file(tmp_path))
    assert_parts_equal(mnist_loader.load_data(), sets["cache"])


def test_book_default_is_relative_to_the_working_directory(tmp_path, monkeypatch, arrays):
    parts = nielsen_parts(arrays)
    write_pickle(book_file(tmp_path), parts)
    monkeypatch.chdir(tmp_path / "book")          # ../data from here is tmp/data: absent
    with pytest.raises(FileNotFoundError):
        mnist_loader.load_data(download=False)
    monkeypatch.chdir(tmp_path / "book" / "src")
    assert_parts_equal(mnist_loader.load_data(download=False), parts)


def test_not_found_lists_every_place_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as err:
        mnist_loader.load_data_wrapper(download=False)
    msg = str(err.value)
    print(msg)
    book = str(tmp_path / "book" / "data" / "mnist.pkl.gz")
    cache = str(tmp_path / "home" / ".cache" / "fastnn")
    places = [str(tmp_path / "nowhere" / "mnist"), str(tmp_path / "nowhere"), book,
              os.path.join(cache, "mnist"), cache]
    lines = msg.splitlines()
    found_at = [next(i for i, line in enumerate(lines) if line.strip().split()[0] == p)
                for p in places]
    assert found_at == sorted(found_at)             # listed in the order searched
    assert "../data/mnist.pkl.gz" in lines[found_at[2]]


def test_book_file_only_for_mnist(tmp_path, monkeypatch, arrays):
    """The book's file is MNIST: Fashion-MNIST never reads it, and only that one file counts
    in ../data (IDX files there are not the book's)."""
    write_pickle(book_file(tmp_path), nielsen_parts(arrays))
    with pytest.raises(FileNotFoundError) as err:
        mnist_loader.load_data(dataset="fashion-mnist", download=False)
    assert "../data" not in str(err.value)
    os.remove(book_file(tmp_path))
    write_idx_dir(tmp_path / "book" / "data", arrays)
    with pytest.raises(FileNotFoundError):
        mnist_loader.load_data(download=False)


def test_fastnn_datasets_never_read_the_book_file(tmp_path, arrays):
    """``fastnn.datasets.load_mnist`` (the Keras-style loader) keeps to its own places."""
    write_pickle(book_file(tmp_path), nielsen_parts(arrays))
    with pytest.raises(FileNotFoundError):
        datasets.load_mnist(download=False)


def test_real_mnist_as_the_book_opens_it(tmp_path):
    """The book's session on the real file: 50,000 / 10,000 / 10,000 with the book's types."""
    from conftest import real_mnist
    os.symlink(real_mnist(), book_file(tmp_path))
    training, validation, test = mnist_loader.load_data_wrapper()
    assert (len(training), len(validation), len(test)) == (50000, 10000, 10000)
    x, y = training[0]
    assert x.shape == (784, 1) and x.dtype == np.float32 and y.shape == (10, 1)
    assert int(np.argmax(y)) == 5                  # the first training digit of MNIST is a 5
    assert test[0][1] == 7
    tr, va, te = mnist_loader.load_data()
    assert tr[1].dtype == np.int64 and isinstance(tr[1][0], np.int64)
