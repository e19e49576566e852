"""fastnn.network3 (the book's chapter-6 API) against values computed here: the book's forward
pass written in numpy on channels-first images (scipy's true convolution, pooling before the
activation), the CNN oracle (fastnn.reference_cnn) for SGD, printed lines worked out from
separate runs, and hand-made fixtures for the data helpers."""
import gzip
import pickle

import numpy as np
import pytest
from scipy.signal import convolve2d

from fastnn import network3 as n3
from fastnn import reference_cnn as RC
from fastnn.expand_mnist import expand
from fastnn.network3 import ConvPoolLayer, FullyConnectedLayer, Network, SoftmaxLayer

ACT = {n3.linear: lambda z: z, n3.ReLU: lambda z: np.maximum(z, 0.0),
       n3.sigmoid: lambda z: 1.0 / (1.0 + np.exp(-z)), n3.tanh: np.tanh}
ORACLE_ACT = {n3.linear: "identity", n3.ReLU: "relu", n3.sigmoid: "sigmoid", n3.tanh: "tanh"}


def book_forward(layers, x):
    """The book's network3 output for rows ``x``: channels-first images, Theano's convolution
    (the kernel flipped: scipy's convolve2d), max-pooling, then activation(pooled + b);
    x w + b with w (n_in, n_out) and (1 - p_dropout) on the product."""
    a = np.asarray(x, dtype=np.float64)
    n = len(a)
    for layer in layers:
        if isinstance(layer, ConvPoolLayer):
            f, c, fh, fw = layer.filter_shape
            _, _, h, w = layer.image_shape
            imgs = a.reshape(n, c, h, w)
            conv = np.zeros((n, f, h - fh + 1, w - fw + 1))
            for i in range(n):
                for k in range(f):
                    for ch in range(c):
                        conv[i, k] += convolve2d(imgs[i, ch], layer.w[k, ch], mode="valid")
            ph, pw = layer.poolsize
            H, W = conv.shape[2] // ph, conv.shape[3] // pw
            pooled = conv[:, :, :H * ph, :W * pw].reshape(n, f, H, ph, W, pw).max(axis=(3, 5))
            a = ACT[layer.activation_fn](pooled + layer.b[None, :, None, None]).reshape(n, -1)
        else:
            z = (1.0 - layer.p_dropout) * (a @ layer.w) + layer.b
            if isinstance(layer, SoftmaxLayer):
                e = np.exp(z - z.max(axis=1, keepdims=True))
                a = e / e.sum(axis=1, keepdims=True)
            else:
                a = ACT[layer.activation_fn](z)
    return a


def randomize(net, rng):
    """Random weights in every layer (the softmax layer starts at zero)."""
    for layer in net.layers:
        layer.w[...] = rng.normal(size=layer.w.shape) * 0.5
        layer.b[...] = rng.normal(size=layer.b.shape) * 0.3


def two_conv(act, m=3):
    return [ConvPoolLayer((3, 1, 3, 3), (m, 1, 10, 9), (2, 2), act),     # 8x7 -> 4x3
            ConvPoolLayer((4, 3, 2, 2), (m, 3, 4, 3), (1, 2), act),      # 3x2 -> 3x1
            FullyConnectedLayer(12, 6, act, p_dropout=0.3),
            SoftmaxLayer(6, 5, p_dropout=0.2)]


def fc_then_conv(m=3):
    return [FullyConnectedLayer(20, 32, n3.tanh, p_dropout=0.25),       # dropout on x itself
            ConvPoolLayer((3, 2, 2, 2), (m, 2, 4, 4), (1, 1), n3.ReLU),
            SoftmaxLayer(27, 4)]


def rgb_first(m=3):
    return [ConvPoolLayer((2, 3, 3, 3), (m, 3, 6, 6), (2, 2), n3.sigmoid), SoftmaxLayer(8, 3)]


@pytest.mark.parametrize("make", [
    lambda: two_conv(n3.linear), lambda: two_conv(n3.ReLU), lambda: two_conv(n3.sigmoid),
    lambda: two_conv(n3.tanh), fc_then_conv, rgb_first],
    ids=["linear", "ReLU", "sigmoid", "tanh", "fc-then-conv", "3-channel-input"])
def test_outputs_match_the_books_network_written_in_numpy(make):
    """Flipped kernels, channels-first flattening (and reshaping), pooling before the
    activation, (1 - p) at inference: the engine's outputs are the book's, from the book's w."""
    rng = np.random.default_rng(1)
    net = Network(make(), 3, dtype=np.float64)
    randomize(net, rng)
    x = rng.normal(size=(7, int(np.prod(net.layers[0]._in_shape()))))
    got, want = net.feedforward(x), book_forward(net.layers, x)
    diff = float(np.abs(got - want).max())
    print(f"max |engine - numpy book| = {diff:.3g}")
    assert diff < 1e-12


def engine_layout(net):
    """The oracle's description of a one-conv-pool net and its parameters, made by loops from
    the book's arrays: kernel K[dy, dx, c, f] = w[f, c, fh-1-dy, fw-1-dx]; the fully
    connected layer's column for channels-last input j = (y*W + x)*F + f is the book's row
    f*H*W + y*W + x."""
    conv, fc, soft = net.layers
    f, c, fh, fw = conv.filter_shape
    _, _, h, w = conv.image_shape
    ph, pw = conv.poolsize
    K = np.zeros((fh, fw, c, f))
    for dy, dx, ch, k in np.ndindex(K.shape):
        K[dy, dx, ch, k] = conv.w[k, ch, fh - 1 - dy, fw - 1 - dx]
    H, W = (h - fh + 1) // ph, (w - fw + 1) // pw
    Wfc = np.zeros((fc.n_out, fc.n_in))
    for y, x, k in np.ndindex(H, W, f):
        Wfc[:, (y * W + x) * f + k] = fc.w[k * H * W + y * W + x, :]
    layers = [{"kind": "conv2d", "in_shape": (h, w, c), "out_shape": (h - fh + 1, w - fw + 1, f),
               "geom": (fh, fw, 1, 1, 0, 0)},
              {"kind": "maxpool2d", "in_shape": (h - fh + 1, w - fw + 1, f),
               "out_shape": (H, W, f), "geom": (ph, pw, ph, pw)}, None, None]
    weights = [K, None, Wfc, soft.w.T.copy()]
    biases = [conv.b.copy(), None, fc.b.copy(), soft.b.copy()]
    acts = [ORACLE_ACT[conv.activation_fn], "identity", ORACLE_ACT[fc.activation_fn], "softmax"]
    return RC.ConvNetwork(layers, weights, biases, acts)


def small_conv_net(act, m=5):
    return Network([ConvPoolLayer((3, 1, 3, 3), (m, 1, 8, 8), (2, 2), act),
                    FullyConnectedLayer(27, 6, act), SoftmaxLayer(6, 4)], m, dtype=np.float64,
                   n_threads=2)


def labelled(rng, n, n_in, n_out=4):
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


@pytest.mark.parametrize("act", [n3.ReLU, n3.sigmoid], ids=["ReLU", "sigmoid"])
def test_two_epochs_of_sgd_match_the_oracle(act):
    """No shuffling, leftover examples dropped, L2 with n = num_training_batches: two epochs
    equal the oracle's two sgd_epoch calls on the first nb * m examples."""
    np.random.seed(4)
    net = small_conv_net(act)
    rng = np.random.default_rng(4)
    randomize(net, rng)
    x, y = labelled(rng, 23, 64)                    # 4 mini-batches of 5, 3 left over
    oracle = engine_layout(net)
    net.SGD((x, y), 2, 5, 0.2, (x, y), None, lmbda=0.3)
    for _ in range(2):
        oracle.sgd_epoch(x[:20].reshape(20, 8, 8, 1), np.eye(4)[y[:20]], np.arange(20), 5, 0.2,
                         lmbda=0.3, n=4)
    want = engine_layout(net)
    diff = max(float(np.abs(p - q).max()) for p, q in
               zip(oracle.weights + oracle.biases, want.weights + want.biases) if p is not None)
    print(f"max |network3 - oracle| after 2 epochs = {diff:.3g}")
    assert diff < 1e-11


def test_leftover_examples_are_left_out():
    rng = np.random.default_rng(5)
    x, y = labelled(rng, 23, 64)
    nets = []
    for n in (23, 20):
        np.random.seed(5)
        net = small_conv_net(n3.tanh)
        net.SGD((x[:n], y[:n]), 2, 5, 0.5, (x[:n], y[:n]), (x, y))
        nets.append(net)
    for p, q in zip(nets[0].params, nets[1].params):
        assert np.array_equal(p, q)


def expected_lines(x, y, xv, yv, xt, yt, epochs, nb, make):
    """The book's lines, from a twin network trained one epoch per SGD call."""
    twin = make()
    lines, best, best_it, best_test = [], 0.0, 0, None

    def accuracy(net, xs, ys):     # the mean of the per-mini-batch accuracies
        m = net.mini_batch_size
        k = len(xs) // m
        hits = net.feedforward(xs[:k * m]).argmax(axis=1) == ys[:k * m]
        return float(np.mean([hits[i * m:(i + 1) * m].mean() for i in range(k)]))

    for e in range(epochs):
        lines += [f"Training mini-batch number {i}" for i in range(e * nb, (e + 1) * nb)
                  if i % 1000 == 0]
        twin.SGD((x, y), 1, twin.mini_batch_size, 0.5, (xv, yv), None)
        val = accuracy(twin, xv, yv)
        lines.append(f"Epoch {e}: validation accuracy {100 * val:.2f}%")
        if val >= best:
            best, best_it, best_test = val, (e + 1) * nb - 1, accuracy(twin, xt, yt)
            lines += ["This is the best validation accuracy to date.",
                      f"The corresponding test accuracy is {100 * best_test:.2f}%"]
    return lines + ["Finished training network.",
                    f"Best validation accuracy of {100 * best:.2f}% obtained at "
                    f"iteration {best_it}",
                    f"Corresponding test accuracy of {100 * best_test:.2f}%"]


def test_the_printed_lines_are_the_books(capsys):
    """2100 mini-batches of one per epoch: lines at iterations 0, 1000, ..., 4000, each before
    its epoch's validation line, then the epoch and best lines with the accuracies of a twin
    network checked after each epoch."""
    rng = np.random.default_rng(6)
    x, y = labelled(rng, 2100, 4, 3)
    xv, yv = labelled(rng, 9, 4, 3)
    xt, yt = labelled(rng, 11, 4, 3)

    def make():
        np.random.seed(6)
        return Network([FullyConnectedLayer(4, 5), SoftmaxLayer(5, 3)], 1, dtype=np.float64,
                       n_threads=1)

    want = expected_lines(x, y, xv, yv, xt, yt, 3, 2100, make)
    capsys.readouterr()
    make().SGD((x, y), 3, 1, 0.5, (xv, yv), (xt, yt))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Running on the CPU: fastnn's compiled engine, 1 thread, float64"
    assert out[1:] == want
    assert sum("best validation accuracy to date" in s for s in want) >= 1


def test_accuracy_is_the_mean_over_whole_mini_batches(capsys):
    """eta = 0 keeps the zero softmax layer, which predicts class 0 for every image.  The
    validation set's batches of 4 hold 3 and 1 right answers (50 %); its 2 leftover images,
    both right, must not count (they would make it 60 %)."""
    rng = np.random.default_rng(7)
    x, y = labelled(rng, 8, 3, 2)
    xv = rng.random((10, 3))
    yv = np.array([0, 0, 1, 0, 1, 1, 0, 1, 0, 0])
    xt, yt = rng.random((5, 3)), np.array([1, 0, 0, 0, 0])      # one batch: 75 %
    Network([SoftmaxLayer(3, 2)], 4).SGD((x, y), 1, 4, 0.0, (xv, yv), (xt, yt))
    out = capsys.readouterr().out
    assert "Epoch 0: validation accuracy 50.00%\n" in out
    assert "The corresponding test accuracy is 75.00%\n" in out


def test_initial_weights_follow_the_book():
    """N(0, 1/n_out) weights with n_out = filters * kernel area / pool area for a conv layer,
    N(0, 1) biases, zero softmax layer; drawn from np.random in the book's order."""
    np.random.seed(8)
    conv = ConvPoolLayer((50, 20, 5, 5), (10, 20, 12, 12), (2, 2))
    fc = FullyConnectedLayer(300, 2000)
    for w, sd in ((conv.w, np.sqrt(4.0 / (50 * 25))), (fc.w, np.sqrt(1.0 / 2000)),
                  (fc.b, 1.0)):
        print(f"{w.shape}: std {w.std():.4g} (want {sd:.4g}), mean {w.mean():.3g}")
        assert abs(w.std() / sd - 1) < 0.05 and abs(w.mean()) < 4 * sd / np.sqrt(w.size)
    np.random.seed(9)
    layer = ConvPoolLayer((4, 2, 3, 3), (10, 2, 8, 8), (2, 2))
    np.random.seed(9)
    w = np.random.normal(loc=0.0, scale=np.sqrt(4 / 36.0), size=(4, 2, 3, 3))
    b = np.random.normal(loc=0.0, scale=1.0, size=(4,))
    assert np.array_equal(layer.w, w) and np.array_equal(layer.b, b)
    soft = SoftmaxLayer(7, 3)
    assert soft.w.shape == (7, 3) and not soft.w.any() and not soft.b.any()
    net = Network([layer, FullyConnectedLayer(36, 7), soft], 10)
    assert net.layers[0].w.dtype == np.float32 and net.params[0] is net.layers[0].w
    assert np.allclose(net.layers[0].w, w, rtol=1e-6)


def test_dropout_masks_inputs_while_training_and_scales_them_after():
    """A lone SoftmaxLayer(8, 3, p_dropout=0.5): one SGD step on one image changes exactly
    the rows of w whose input was kept, by -eta x_i (a - y) (no 1/(1-p)); predictions use
    (1 - p) x w + b."""
    rng = np.random.default_rng(9)
    x = rng.random((1, 8)) + 0.1
    y = np.array([2])
    net = Network([SoftmaxLayer(8, 3, p_dropout=0.5)], 1, dtype=np.float64)
    net.SGD((x, y), 1, 1, 0.7, (x, y), None)
    kept = np.any(net.layers[0].w != 0, axis=1)
    assert 0 < kept.sum() < 8
    a = np.full(3, 1 / 3)                       # softmax of the zero layer
    want = -0.7 * np.outer(x[0] * kept, a - np.eye(3)[2])
    assert np.abs(net.layers[0].w - want).max() < 1e-14
    assert np.abs(net.layers[0].b - (-0.7) * (a - np.eye(3)[2])).max() < 1e-14
    z = 0.5 * x @ net.layers[0].w + net.layers[0].b
    assert np.abs(net.feedforward(x) - np.exp(z) / np.exp(z).sum()).max() < 1e-14


@pytest.mark.parametrize("layers,m,pattern", [
    (lambda: [ConvPoolLayer((2, 1, 5, 5), (4, 1, 4, 4)), SoftmaxLayer(2, 2)], 4,
     r"layers\[0\].*\(2, 1, 5, 5\).*\(4, 1, 4, 4\)"),
    (lambda: [ConvPoolLayer((2, 3, 3, 3), (4, 1, 8, 8)), SoftmaxLayer(18, 2)], 4,
     r"layers\[0\].*\(2, 3, 3, 3\).*\(4, 1, 8, 8\)"),
    (lambda: [ConvPoolLayer((2, 1, 3, 3), (5, 1, 8, 8)), SoftmaxLayer(18, 2)], 4,
     r"layers\[0\].*4.*\(5, 1, 8, 8\)"),
    (lambda: [ConvPoolLayer((2, 1, 3, 3), (4, 1, 8, 8)), FullyConnectedLayer(20, 5),
              SoftmaxLayer(5, 2)], 4, r"layers\[1\].*\(20,\).*\(2, 3, 3\)"),
    (lambda: [ConvPoolLayer((2, 1, 3, 3), (4, 1, 8, 8)), ConvPoolLayer((3, 3, 2, 2), (4, 3, 3, 3)),
              SoftmaxLayer(3, 2)], 4, r"layers\[1\].*\(3, 3, 3\).*\(2, 3, 3\)"),
    (lambda: [FullyConnectedLayer(10, 7), SoftmaxLayer(8, 2)], 4, r"layers\[1\].*\(8,\).*\(7,\)"),
    (lambda: [ConvPoolLayer((2, 1, 3, 3), (4, 1, 4, 4), (3, 3)), SoftmaxLayer(2, 2)], 4,
     r"layers\[0\].*poolsize \(3, 3\).*2x2"),
    (lambda: [SoftmaxLayer(4, 4), SoftmaxLayer(4, 2)], 4, r"layers\[0\].*SoftmaxLayer"),
], ids=["filter-larger-than-image", "channels", "image_shape[0]", "fc-n_in", "conv-after-conv",
        "softmax-n_in", "pool-larger-than-conv-output", "softmax-not-last"])
def test_layers_that_do_not_chain_are_rejected(layers, m, pattern):
    with pytest.raises(ValueError, match=pattern):
        Network(layers(), m)


def test_bad_arguments_are_named_before_training(capsys):
    with pytest.raises(TypeError, match="activation_fn"):
        FullyConnectedLayer(4, 3, activation_fn=np.tanh)
    with pytest.raises(TypeError, match="filter_shape"):
        ConvPoolLayer((2, 3, 3), (4, 1, 8, 8))
    with pytest.raises(ValueError, match="p_dropout"):
        SoftmaxLayer(4, 3, p_dropout=1.0)
    net = Network([FullyConnectedLayer(4, 3), SoftmaxLayer(3, 2)], 2)
    before = [p.copy() for p in net.params]
    rng = np.random.default_rng(0)
    x, y = rng.random((6, 4)), np.array([0, 1, 0, 1, 1, 0])
    with pytest.raises(ValueError, match="mini_batch_size: expected 2.*got 3"):
        net.SGD((x, y), 1, 3, 0.1, (x, y), (x, y))
    with pytest.raises(ValueError, match=r"training_data x.*4 features.*\(6, 5\)"):
        net.SGD((rng.random((6, 5)), y), 1, 2, 0.1, (x, y), (x, y))
    with pytest.raises(ValueError, match="validation_data: expected at least one mini-batch"):
        net.SGD((x, y), 1, 2, 0.1, (x[:1], y[:1]), (x, y))
    with pytest.raises(ValueError, match=r"test_data y.*0\.\.1"):
        net.SGD((x, y), 1, 2, 0.1, (x, y), (x, y + 1))
    assert capsys.readouterr().out == ""
    assert all(np.array_equal(p, q) for p, q in zip(before, net.params))


# ---------------------------------------------------------------------------------------------
# data: load_data_shared and expand_mnist on small files written here

def write_fixture(path, parts):
    with gzip.open(path, "wb") as f:
        pickle.dump(parts, f, protocol=2)


def tiny_mnist():
    x = np.zeros((2, 784), dtype=np.float32)
    img = x[0].reshape(28, 28)
    img[5, 7], img[0, 3], img[27, 10], img[12, 0], img[14, 27] = 0.25, 0.5, 0.75, 1.0, 0.125
    x[1].reshape(28, 28)[20, 20] = 1.0
    y = np.array([3, 8], dtype=np.int64)
    xv, yv = np.full((1, 784), 0.5, dtype=np.float32), np.array([1], dtype=np.int64)
    xt, yt = np.full((2, 784), 0.25, dtype=np.float32), np.array([2, 4], dtype=np.int64)
    return ((x, y), (xv, yv), (xt, yt))


def image(pixels):
    out = np.zeros((28, 28), dtype=np.float32)
    for (r, c), v in pixels.items():
        out[r, c] = v
    return out.ravel()


def test_load_data_shared_reads_a_file_in_the_books_layout(tmp_path, monkeypatch):
    parts = tiny_mnist()
    (tmp_path / "data").mkdir()
    (tmp_path / "src").mkdir()
    write_fixture(tmp_path / "data" / "mnist.pkl.gz", parts)
    got = n3.load_data_shared(str(tmp_path / "data" / "mnist.pkl.gz"))
    assert [n3.size(d) for d in got] == [2, 1, 2]
    for (x, y), (gx, gy) in zip(parts, got):
        assert np.array_equal(gx, x) and np.array_equal(gy, y)
    monkeypatch.chdir(tmp_path / "src")                 # the book's default, ../data/...
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    assert np.array_equal(n3.load_data_shared()[2][0], parts[2][0])
    with pytest.raises(FileNotFoundError, match="nothere.pkl.gz"):
        n3.load_data_shared("../data/nothere.pkl.gz")


def test_expand_mnist_moves_each_image_one_pixel_four_ways(tmp_path):
    parts = tiny_mnist()
    src, dst = tmp_path / "mnist.pkl.gz", tmp_path / "mnist_expanded.pkl.gz"
    write_fixture(src, parts)
    assert n3.expand_mnist(str(src), str(dst), shuffle=False) == 10
    (x, y), val, test = n3.load_data_shared(str(dst))
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (10, 784)
    assert y.tolist() == [3] * 5 + [8] * 5
    # worked out by hand: original, down, up, right, left; edge pixels leave, nothing wraps
    want0 = [{(5, 7): .25, (0, 3): .5, (27, 10): .75, (12, 0): 1.0, (14, 27): .125},
             {(6, 7): .25, (1, 3): .5, (13, 0): 1.0, (15, 27): .125},
             {(4, 7): .25, (26, 10): .75, (11, 0): 1.0, (13, 27): .125},
             {(5, 8): .25, (0, 4): .5, (27, 11): .75, (12, 1): 1.0},
             {(5, 6): .25, (0, 2): .5, (27, 9): .75, (14, 26): .125}]
    want1 = [{(20, 20): 1.0}, {(21, 20): 1.0}, {(19, 20): 1.0}, {(20, 21): 1.0}, {(20, 19): 1.0}]
    for k, pixels in enumerate(want0 + want1):
        assert np.array_equal(x[k], image(pixels)), k
    for (a, b), (c, d) in zip((val, test), parts[1:]):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    # shuffled (the default): the same images, each with its label
    xs, ys = expand(parts[0][0], parts[0][1], seed=3)
    order = [next(i for i in range(10) if np.array_equal(xs[j], x[i])) for j in range(10)]
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert ys.tolist() == [y[i] for i in order]


def test_expand_mnist_command(tmp_path, capsys):
    from fastnn.__main__ import main
    src, dst = tmp_path / "mnist.pkl.gz", tmp_path / "out.pkl.gz"
    write_fixture(src, tiny_mnist())
    assert main(["expand-mnist", "--source", str(src), "--target", str(dst)]) == 0
    assert "10 training images" in capsys.readouterr().out
    (x, y), _, _ = n3.load_data_shared(str(dst))
    assert x.shape == (10, 784) and sorted(y.tolist()) == [3] * 5 + [8] * 5


def test_the_chapter6_example_builds_every_run():
    """examples/network3_chapter6.py: each of the book's six networks chains, and feeds
    forward one mini-batch of MNIST-shaped images to probabilities."""
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples", "network3_chapter6.py")
    spec = importlib.util.spec_from_file_location("network3_chapter6", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    x = np.random.default_rng(0).random((10, 784))
    for run in example.RUNS:
        net, (epochs, eta, lmbda) = example.build(run)
        out = net.feedforward(x)
        assert out.shape == (10, 10) and np.allclose(out.sum(axis=1), 1, atol=1e-5), run
    assert (epochs, eta, lmbda) == (40, 0.03, 0.0)


def test_mini_batch_lines_follow_the_engines_counters(capsys):
    """The live printer against counter states the engine goes through, 600 mini-batches per
    epoch: iteration 1000 is epoch 1's mini-batch 400.  The state between the engine's two
    stores (the new epoch, the old count 600) must not print ahead."""
    lines = n3._MiniBatchLines(600, 2)
    steps = [((0, 0), "poll", [0]), ((0, 599), "poll", []), ((0, 600), "poll", []),
             ((0, 600), 0, []),                      # end of epoch 0
             ((0, 600), "poll", []),                 # epoch 1 has not published yet
             ((1, 600), "poll", []),                 # epoch stored, count not yet
             ((1, 1), "poll", []), ((1, 399), "poll", []), ((1, 400), "poll", [1000]),
             ((1, 500), "poll", []), ((1, 600), 1, [])]
    for (epoch, done), action, printed in steps:
        lines.progress[:] = (epoch, done)
        if action == "poll":
            lines.poll()
        else:
            lines.end_epoch(action)
            lines.epoch_reported(action)
        out = capsys.readouterr().out
        assert out == "".join(f"Training mini-batch number {i}\n" for i in printed), (
            epoch, done, action)
    jump = n3._MiniBatchLines(1500, 1)               # a poll that never saw mini-batch 1000
    jump.poll()
    jump.progress[:] = (0, 1500)
    jump.end_epoch(0)
    jump.epoch_reported(0)
    assert capsys.readouterr().out.split("\n")[:-1] == [
        "Training mini-batch number 0", "Training mini-batch number 1000"]


def test_next_epochs_first_line_waits_for_the_accuracy_lines(capsys):
    """1000 mini-batches an epoch: iteration 1000 is epoch 1's first, and the book prints its
    line when epoch 1 starts, after epoch 0's accuracy lines.  While those are printed (the
    test accuracy is an engine call, during which the poller runs) no poll may print it."""
    lines = n3._MiniBatchLines(1000, 2)
    lines.poll()
    lines.progress[:] = (0, 1000)
    lines.end_epoch(0)
    print("Epoch 0: validation accuracy 90.00%")
    lines.poll()                                     # the poller during the test accuracy
    print("The corresponding test accuracy is 90.00%")
    lines.epoch_reported(0)
    lines.poll()
    assert capsys.readouterr().out.splitlines() == [
        "Training mini-batch number 0", "Epoch 0: validation accuracy 90.00%",
        "The corresponding test accuracy is 90.00%", "Training mini-batch number 1000"]


def test_the_loaders_limit_admits_the_expanded_data():
    """load_data_shared must read what expand_mnist writes for the book's data: 250,000
    training images and 10,000 + 10,000 others, float32 784 pixels and an int64 label each
    (a full run fell over the old 600 MB guard).  By hand: 270,000 * (784 * 4 + 8) bytes of
    array data, plus the pickle's framing, under the guard."""
    from fastnn import datasets
    arrays = 270000 * (784 * 4 + 8)
    assert arrays == 848_880_000
    assert datasets.MAX_PICKLE_BYTES >= 1.25 * arrays
