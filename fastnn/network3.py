"""A drop-in for the book's chapter-6 ``network3.py``, without Theano.

    from fastnn import network3
    from fastnn.network3 import Network, ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer
    training_data, validation_data, test_data = network3.load_data_shared()
    net = Network([ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(20, 1, 5, 5)),
                   FullyConnectedLayer(n_in=20 * 12 * 12, n_out=100),
                   SoftmaxLayer(n_in=100, n_out=10)], 10)
    net.SGD(training_data, 60, 10, 0.1, validation_data, test_data)

Data are ``(x, y)`` pairs of numpy arrays, x ``(n, n_in)`` and y the integer labels ``(n,)``
(what ``load_data_shared`` returns; slice x and y alike to take part of a set).  A layer's
``w`` and ``b`` (and ``params``) are numpy arrays in the book's shapes: a conv layer's ``w`` is
``(filters, in_channels, fh, fw)``, a fully connected or softmax layer's ``w`` is
``(n_in, n_out)``.  ``SGD`` copies them into the engine's layouts, trains in one compiled
call, and writes the result back into the same arrays.

What the book's Theano graph computes, and how the engine computes the same thing:

- Theano's ``conv2d`` is a true convolution (the kernel is flipped) on channels-first images;
  the engine correlates channels-last images with ``(fh, fw, in, out)`` kernels.  The copy
  into the engine flips and transposes ``w``, so the network is the book's network with the
  book's weights, not just one like it.  (With random initial weights the flip and the layout
  are only reparametrizations anyway: the same distribution of networks.)
- The book flattens a conv layer's output channels-first before a fully connected layer; the
  engine's order is channels-last.  The copy permutes the rows of that layer's ``w`` (and the
  outputs of a fully connected layer that feeds a conv layer) to match, so ``w`` reads in the
  book's order.  Multi-channel input images are taken channels-first, as the book's reshape.
- The book pools ``conv(x)`` and then applies ``activation(pooled + b)``; the engine puts the
  bias and the activation on the conv layer and pools after them.  For non-decreasing
  activations (all four here: ``linear``, ``ReLU``, ``sigmoid``, ``tanh``) the maximum of the
  activations is the activation of the maximum, so both orders give the same outputs.
- Dropout on the inputs of a ``FullyConnectedLayer``/``SoftmaxLayer`` is the engine's
  ``drop_book`` dropout on the output of the layer before (a 0/1 mask while training,
  outputs times ``1 - p_dropout`` otherwise); a first layer with dropout gets a parameterless
  flatten layer in front of it to carry the mask.
- The cost is the mean log-likelihood of the mini-batch plus
  ``0.5 lmbda sum ||w||^2 / num_training_batches`` (so the L2 step uses ``n`` = the number of
  mini-batches, not of examples); no shuffling; the ``n % mini_batch_size`` leftover
  examples of every set are left out; validation and test accuracy are the mean of the
  per-mini-batch accuracies.
- The book's printed lines.  ``Training mini-batch number N`` (every 1000 iterations) is
  printed live, by a thread that reads the engine's progress counters; whatever it has not
  printed when an epoch ends is printed then, before that epoch's validation line, so the
  lines always come in the book's order.  Instead of "Trying to run under a GPU..." the
  first line says which device and how many threads run the network.
"""
import os
import threading

import numpy as np

from fastnn import _core, mnist_loader
from fastnn._config import resolve_threads
from fastnn.expand_mnist import expand_mnist  # noqa: F401  (the book's expand_mnist.py)

__all__ = ["Network", "ConvPoolLayer", "FullyConnectedLayer", "SoftmaxLayer",
           "load_data_shared", "size", "linear", "ReLU", "sigmoid", "tanh", "expand_mnist"]

BOOK_DATA = "../data/mnist.pkl.gz"


# ---------------------------------------------------------------------------------------------
# activation functions: plain numpy functions, which the engine recognizes by identity

def linear(z):
    """Return ``z``."""
    return z


def ReLU(z):
    """Return ``max(0, z)`` element-wise."""
    return np.maximum(0.0, z)


def sigmoid(z):
    """Return ``1 / (1 + exp(-z))`` element-wise (as ``(1 + tanh(z/2)) / 2``: no overflow)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z)))


def tanh(z):
    """Return ``tanh(z)`` element-wise."""
    return np.tanh(z)


_ENGINE_ACT = {linear: "identity", ReLU: "relu", sigmoid: "sigmoid", tanh: "tanh"}


def _engine_act(fn, name):
    try:
        return _ENGINE_ACT[fn]
    except (KeyError, TypeError):
        pass
    raise TypeError(f"{name}: expected one of network3.linear, network3.ReLU, network3.sigmoid, "
                    f"network3.tanh, got {fn!r}")


def _int_tuple(value, n, name):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != n:
        raise TypeError(f"{name}: expected a tuple of {n} positive ints, got {value!r}")
    return tuple(_core.check_int(v, f"{name}[{i}]", minimum=1) for i, v in enumerate(value))


# ---------------------------------------------------------------------------------------------
# layers

class ConvPoolLayer:
    """A convolutional layer ("valid": no padding, stride 1) followed by max-pooling
    (borders a whole pool does not cover are ignored), then ``activation_fn(pooled + b)``.

    ``filter_shape`` is ``(filters, in_channels, fh, fw)``; ``image_shape`` is
    ``(mini_batch_size, in_channels, height, width)``; ``poolsize`` is ``(ph, pw)``.
    Initial weights are N(0, 1/n_out) with n_out = filters * fh * fw / (ph * pw), biases
    N(0, 1), drawn from ``np.random`` in the book's order (weights, then biases)."""

    def __init__(self, filter_shape, image_shape, poolsize=(2, 2), activation_fn=sigmoid):
        self.filter_shape = _int_tuple(filter_shape, 4, "filter_shape")
        self.image_shape = _int_tuple(image_shape, 4, "image_shape")
        self.poolsize = _int_tuple(poolsize, 2, "poolsize")
        self.activation_fn = activation_fn
        _engine_act(activation_fn, "activation_fn")
        f, _, fh, fw = self.filter_shape
        n_out = f * fh * fw / (self.poolsize[0] * self.poolsize[1])
        self.w = np.random.normal(loc=0.0, scale=np.sqrt(1.0 / n_out), size=self.filter_shape)
        self.b = np.random.normal(loc=0.0, scale=1.0, size=(f,))
        self.params = [self.w, self.b]

    def _in_shape(self):
        return self.image_shape[1:]

    def _out_shape(self):
        f, _, fh, fw = self.filter_shape
        _, _, h, w = self.image_shape
        return (f, (h - fh + 1) // self.poolsize[0], (w - fw + 1) // self.poolsize[1])


class FullyConnectedLayer:
    """``activation_fn(x w + b)`` with ``w`` of shape ``(n_in, n_out)``; ``p_dropout`` is the
    probability of dropping each input while training (inputs times ``1 - p_dropout``
    otherwise).  Initial weights N(0, 1/n_out), biases N(0, 1)."""

    def __init__(self, n_in, n_out, activation_fn=sigmoid, p_dropout=0.0):
        self.n_in = _core.check_int(n_in, "n_in", minimum=1, maximum=_core.INT_MAX)
        self.n_out = _core.check_int(n_out, "n_out", minimum=1, maximum=_core.INT_MAX)
        self.activation_fn = activation_fn
        _engine_act(activation_fn, "activation_fn")
        self.p_dropout = _core.check_float(p_dropout, "p_dropout", 0.0, 1.0, max_open=True)
        self.w = np.random.normal(loc=0.0, scale=np.sqrt(1.0 / self.n_out),
                                  size=(self.n_in, self.n_out))
        self.b = np.random.normal(loc=0.0, scale=1.0, size=(self.n_out,))
        self.params = [self.w, self.b]

    def _in_shape(self):
        return (self.n_in,)

    def _out_shape(self):
        return (self.n_out,)


class SoftmaxLayer(FullyConnectedLayer):
    """The softmax output layer, ``softmax(x w + b)``; weights and biases start at zero."""

    def __init__(self, n_in, n_out, p_dropout=0.0):
        self.n_in = _core.check_int(n_in, "n_in", minimum=1, maximum=_core.INT_MAX)
        self.n_out = _core.check_int(n_out, "n_out", minimum=1, maximum=_core.INT_MAX)
        self.activation_fn = None
        self.p_dropout = _core.check_float(p_dropout, "p_dropout", 0.0, 1.0, max_open=True)
        self.w = np.zeros((self.n_in, self.n_out))
        self.b = np.zeros((self.n_out,))
        self.params = [self.w, self.b]


def _chw_to_hwc(shape):
    """For a (C, H, W) image: ``perm[j]`` is the channels-first index of the value the engine
    keeps at channels-last index ``j``."""
    c, h, w = shape
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()


def _describe(layer):
    if isinstance(layer, ConvPoolLayer):
        return (f"ConvPoolLayer(filter_shape={layer.filter_shape}, "
                f"image_shape={layer.image_shape}, poolsize={layer.poolsize})")
    return f"{type(layer).__name__}(n_in={layer.n_in}, n_out={layer.n_out})"


def _check_chain(layers, mini_batch_size):
    """ValueError naming the layer and both shapes where the layers do not fit together."""
    for i, layer in enumerate(layers):
        if isinstance(layer, ConvPoolLayer):
            f, c, fh, fw = layer.filter_shape
            m, ci, h, w = layer.image_shape
            if m != mini_batch_size:
                raise ValueError(f"layers[{i}]: image_shape[0] is the mini-batch size, expected "
                                 f"{mini_batch_size} (Network's mini_batch_size), got "
                                 f"image_shape {layer.image_shape}")
            if c != ci:
                raise ValueError(f"layers[{i}]: filter_shape {layer.filter_shape} expects {c} "
                                 f"input channels, image_shape {layer.image_shape} has {ci}")
            if fh > h or fw > w:
                raise ValueError(f"layers[{i}]: the {fh}x{fw} filters of filter_shape "
                                 f"{layer.filter_shape} are larger than the {h}x{w} images of "
                                 f"image_shape {layer.image_shape}")
            if 0 in layer._out_shape():
                raise ValueError(f"layers[{i}]: poolsize {layer.poolsize} is larger than the "
                                 f"{h - fh + 1}x{w - fw + 1} convolution output of "
                                 f"filter_shape {layer.filter_shape} on image_shape "
                                 f"{layer.image_shape}")
        if i == 0:
            continue
        prev = layers[i - 1]
        have, want = prev._out_shape(), layer._in_shape()
        if isinstance(layer, ConvPoolLayer) and isinstance(prev, ConvPoolLayer):
            ok = have == want
        else:
            ok = int(np.prod(have)) == int(np.prod(want))
        if not ok:
            raise ValueError(f"layers[{i}]: {_describe(layer)} takes inputs of shape {want}, "
                             f"but layers[{i - 1}], {_describe(prev)}, gives outputs of shape "
                             f"{have}")


# ---------------------------------------------------------------------------------------------
# the network

class Network:
    """The layers, in order, and the mini-batch size the conv layers' ``image_shape`` use.

    Keyword-only extras: ``dtype`` (float32, the book's GPU setting, or float64),
    ``n_threads`` (default: ``fastnn.set_num_threads`` / ``OMP_NUM_THREADS``) and ``seed``
    (of the dropout masks)."""

    def __init__(self, layers, mini_batch_size, *, dtype=np.float32, n_threads=None, seed=0):
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__"):
            raise TypeError(f"layers: expected a list of layers, got {type(layers).__name__}")
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("layers: expected at least one layer, got none")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, (ConvPoolLayer, FullyConnectedLayer)):
                raise TypeError(f"layers[{i}]: expected a ConvPoolLayer, FullyConnectedLayer or "
                                f"SoftmaxLayer, got {type(layer).__name__}")
            if isinstance(layer, SoftmaxLayer) != (i == len(self.layers) - 1):
                raise ValueError(f"layers[{i}]: expected the last layer, and only the last, to "
                                 f"be a SoftmaxLayer (the cost is its log-likelihood), got "
                                 f"{type(layer).__name__} at {i} of {len(self.layers)}")
        self.mini_batch_size = _core.check_int(mini_batch_size, "mini_batch_size", minimum=1,
                                               maximum=_core.INT_MAX)
        self.dtype = _core.check_dtype(dtype)
        self.n_threads = _core.check_n_threads(n_threads)
        self.seed = _core.check_int(seed, "seed", minimum=0)
        _check_chain(self.layers, self.mini_batch_size)
        for layer in self.layers:
            layer.w = np.array(layer.w, dtype=self.dtype)
            layer.b = np.array(layer.b, dtype=self.dtype)
            layer.params = [layer.w, layer.b]
        self.params = [p for layer in self.layers for p in layer.params]
        self._guard = _core.TrainingGuard()
        self._build()
        if len(self._specs) > _core._engine.MAX_LAYERS:
            raise ValueError(f"layers: expected at most {_core._engine.MAX_LAYERS} engine layers "
                             f"(a ConvPoolLayer is two), got {len(self._specs)}")
        self._calls = 0

    # -- the engine's view: layer descriptions, activations, and where each book array goes

    def _build(self):
        specs, acts, self._slots = [], [], []
        self._in_perm = None
        first = self.layers[0]
        if isinstance(first, ConvPoolLayer) and first.image_shape[1] > 1:
            self._in_perm = _chw_to_hwc(first._in_shape())   # book's x rows are channels-first
        for i, layer in enumerate(self.layers):
            p = getattr(layer, "p_dropout", 0.0)
            if p > 0:
                if i == 0:
                    n = layer.n_in
                    specs.append({"kind": "flatten", "in_shape": (1, 1, n), "out_shape": (1, 1, n)})
                    acts.append("identity")
                    self._slots.append(None)
                specs[-1].update(dropout=p, drop_book=True)
            if isinstance(layer, ConvPoolLayer):
                f, c, fh, fw = layer.filter_shape
                _, _, h, w = layer.image_shape
                ch, cw = h - fh + 1, w - fw + 1
                ph, pw = layer.poolsize
                specs.append({"kind": "conv2d", "in_shape": (h, w, c), "out_shape": (ch, cw, f),
                              "geom": (fh, fw, 1, 1, 0, 0)})
                acts.append(_ENGINE_ACT[layer.activation_fn])
                self._slots.append((i, None, None))
                specs.append({"kind": "maxpool2d", "in_shape": (ch, cw, f),
                              "out_shape": (ch // ph, cw // pw, f), "geom": (ph, pw, ph, pw)})
                acts.append("identity")
                self._slots.append(None)
            else:
                prev = self.layers[i - 1] if i else None
                nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
                pin = _chw_to_hwc(prev._out_shape()) if isinstance(prev, ConvPoolLayer) else None
                pout = _chw_to_hwc(nxt._in_shape()) if isinstance(nxt, ConvPoolLayer) else None
                specs.append({"kind": "dense"})
                acts.append("softmax" if isinstance(layer, SoftmaxLayer) else
                            _ENGINE_ACT[layer.activation_fn])
                self._slots.append((i, pin, pout))
        self._specs, self._acts = specs, acts

    def _engine_params(self):
        """The book's arrays copied into the engine's layouts."""
        W, B = [], []
        for slot in self._slots:
            if slot is None:
                W.append(None)
                B.append(None)
                continue
            i, pin, pout = slot
            layer = self.layers[i]
            if isinstance(layer, ConvPoolLayer):   # (f, c, fh, fw), flipped -> (fh, fw, c, f)
                k = layer.w[:, :, ::-1, ::-1].transpose(2, 3, 1, 0)
                b = layer.b
            else:                                   # (n_in, n_out) -> (n_out, n_in)
                w = layer.w if pin is None else layer.w[pin, :]
                k = (w if pout is None else w[:, pout]).T
                b = layer.b if pout is None else layer.b[pout]
            kw = _core.aligned_empty(k.shape, self.dtype)
            kw[...] = k
            W.append(kw)
            B.append(np.array(b, dtype=self.dtype))
        return W, B

    def _store(self, W, B):
        """The engine's arrays written back into the book's arrays, in place."""
        for slot, k, b in zip(self._slots, W, B):
            if slot is None:
                continue
            i, pin, pout = slot
            layer = self.layers[i]
            if isinstance(layer, ConvPoolLayer):
                layer.w[...] = k.transpose(3, 2, 0, 1)[:, :, ::-1, ::-1]
                layer.b[...] = b
            else:
                rows = np.arange(layer.n_in) if pin is None else pin
                cols = np.arange(layer.n_out) if pout is None else pout
                layer.w[np.ix_(rows, cols)] = k.T
                layer.b[cols] = b

    def _inputs(self, x, name):
        n_in = int(np.prod(self.layers[0]._in_shape()))
        X = _core._as_float_matrix(x, name, self.dtype, n_in)
        if self._in_perm is not None:
            X = np.ascontiguousarray(X[:, self._in_perm])
        return X

    def _data(self, data, name, n_batches=True):
        """(X, Y) of the whole mini-batches of an ``(x, y)`` pair; the rest is left out."""
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise TypeError(f"{name}: expected an (x, y) pair of numpy arrays, got "
                            f"{type(data).__name__}")
        x, y = _core.as_array(data[0], f"{name} x"), _core.as_array(data[1], f"{name} y")
        if x.ndim < 1 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{name}: expected x (n, n_in) and labels y (n,), got shapes "
                             f"{x.shape} and {y.shape}")
        m = self.mini_batch_size
        keep = len(x) // m * m
        if keep == 0:
            raise ValueError(f"{name}: expected at least one mini-batch of {m} examples, got "
                             f"{len(x)}")
        X = self._inputs(x[:keep], f"{name} x")
        Y, _ = _core.labels_to_onehot(y[:keep], self.layers[-1].n_out, self.dtype, f"{name} y")
        return X, Y

    def feedforward(self, x):
        """Return the network's outputs ``(n, n_out)`` for the images ``x`` ``(n, n_in)``, as
        the book's ``output`` (dropout as its expected value)."""
        W, B = self._engine_params()
        return _core.predict(W, B, self._acts, self._inputs(x, "x"), self.n_threads,
                             layers=self._specs)

    def SGD(self, training_data, epochs, mini_batch_size, eta, validation_data, test_data,
            lmbda=0.0):
        """Train the network with mini-batch stochastic gradient descent, printing the book's
        lines.  Each data set is an ``(x, y)`` pair; ``test_data`` may be None."""
        epochs = _core.check_int(epochs, "epochs", minimum=0, maximum=_core.INT_MAX)
        m = _core.check_int(mini_batch_size, "mini_batch_size", minimum=1)
        if m != self.mini_batch_size:
            raise ValueError(f"mini_batch_size: expected {self.mini_batch_size}, the size the "
                             f"Network (and its layers' image_shape) was built for, got {m}")
        eta = _core.check_float(eta, "eta", minimum=0.0)
        lmbda = _core.check_float(lmbda, "lmbda", minimum=0.0)
        if validation_data is None:
            raise TypeError("validation_data: expected an (x, y) pair of numpy arrays, got None")
        X, Y = self._data(training_data, "training_data")
        Xv, Yv = self._data(validation_data, "validation_data")
        test = self._data(test_data, "test_data") if test_data is not None else None
        with self._guard:     # one training call at a time: the layers' arrays are shared
            self._train(X, Y, Xv, Yv, test, epochs, m, eta, lmbda)

    def _train(self, X, Y, Xv, Yv, test, epochs, m, eta, lmbda):
        nb = len(X) // m
        threads = resolve_threads(self.n_threads)
        print(f"Running on the CPU: fastnn's compiled engine, {threads} "
              f"thread{'s' if threads > 1 else ''}, {self.dtype.name}", flush=True)

        W, B = self._engine_params()
        best = {"val": 0.0, "iteration": 0, "test": None}
        lines = _MiniBatchLines(nb, epochs)

        def on_epoch(stats):
            e = stats["epoch"]
            lines.end_epoch(e)
            try:
                report(stats, e)
            finally:
                # only now may the next epoch's first line appear (the book prints it when
                # that epoch starts, after this epoch's accuracy lines)
                lines.epoch_reported(e)

        def report(stats, e):
            iteration = (e + 1) * nb - 1
            accuracy = stats["eval_correct"] / len(Xv)
            print(f"Epoch {e}: validation accuracy {accuracy:.2%}", flush=True)
            if accuracy >= best["val"]:
                print("This is the best validation accuracy to date.", flush=True)
                best.update(val=accuracy, iteration=iteration)
                if test is not None:
                    _, hits = _core.evaluate(W, B, self._acts, "log_likelihood", *test,
                                             n_threads=self.n_threads, layers=self._specs)
                    best["test"] = hits / len(test[0])
                    print(f"The corresponding test accuracy is {best['test']:.2%}", flush=True)

        config = _core.TrainConfig(
            acts=self._acts, cost="log_likelihood", epochs=epochs, batch=m, eta=eta,
            lmbda=lmbda, reg_n=nb, layers=self._specs, orders=None, eval_data=(Xv, Yv),
            on_epoch=on_epoch, progress=lines.progress, n_threads=self.n_threads,
            seed=self.seed + self._calls)
        self._calls += 1
        try:
            with lines:
                _core.train(W, B, X, Y, config)
        finally:
            self._store(W, B)
        print("Finished training network.")
        print(f"Best validation accuracy of {best['val']:.2%} obtained at iteration "
              f"{best['iteration']}")
        if best["test"] is not None:
            print(f"Corresponding test accuracy of {best['test']:.2%}")


class _MiniBatchLines:
    """Prints ``Training mini-batch number N`` for N = 0, 1000, 2000, ... while the engine
    trains: a thread polls the engine's counters (``progress``: the epoch running and the
    mini-batches done in it); ``end_epoch`` prints what is left of an epoch's lines."""

    EVERY = 1000

    def __init__(self, nb, epochs, poll_s=0.1):
        self.nb, self.total, self.poll_s = nb, nb * epochs, poll_s
        self.progress = np.zeros(2, dtype=np.int64)
        self._next = 0          # the next iteration to print
        self._epochs_done = 0   # epochs whose end_epoch has run
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _print_upto(self, iteration):
        while self._next <= min(iteration, self.total - 1):
            print(f"Training mini-batch number {self._next}", flush=True)
            self._next += self.EVERY

    def poll(self):
        with self._lock:
            e_done = self._epochs_done
            done = int(self.progress[1])    # read before the epoch: the engine stores the
            epoch = int(self.progress[0])   # epoch first, then the count
            if epoch < e_done:              # the next epoch has not finished a mini-batch
                self._print_upto(e_done * self.nb)
            elif done < self.nb:            # (done == nb: end_epoch will print the rest)
                self._print_upto(epoch * self.nb + done)

    def end_epoch(self, epoch):
        """The epoch's training is over: print the rest of its lines."""
        with self._lock:
            self._print_upto((epoch + 1) * self.nb - 1)

    def epoch_reported(self, epoch):
        """The epoch's accuracy lines are printed: the next epoch's lines may follow."""
        with self._lock:
            self._epochs_done = epoch + 1

    def _run(self):
        while not self._stop.wait(self.poll_s):
            self.poll()

    def __enter__(self):
        self.poll()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


# ---------------------------------------------------------------------------------------------
# data

def load_data_shared(filename=BOOK_DATA):
    """Return ``[training_data, validation_data, test_data]`` from Nielsen's ``mnist.pkl.gz``
    (or a file in its layout, such as ``mnist_expanded.pkl.gz``): each an ``(x, y)`` pair, x a
    float32 array ``(n, 784)``, y the int64 labels ``(n,)``.

    The default, the book's ``../data/mnist.pkl.gz``, is looked for where
    ``fastnn.mnist_loader.load_data()`` looks (``$FASTNN_DATA``, the book's path, the cache);
    any other name must be a file."""
    if filename == BOOK_DATA and not os.path.isfile(filename):
        parts = mnist_loader.load_data()
    else:
        if not os.path.isfile(filename):
            raise FileNotFoundError(f"filename: no such file {filename!r}")
        parts = mnist_loader.load_data(filename, download=False)
    return [(np.asarray(x), np.asarray(y)) for x, y in parts]


def size(data):
    """Return the number of examples in ``data``, an ``(x, y)`` pair."""
    return len(data[0])
