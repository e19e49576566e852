"""The numpy oracle for convolutional networks: plain loops, written from the definitions.

Layouts are the engine's: an example's activations are channels-last, ``(height, width,
channels)``; a conv2d kernel is ``(kh, kw, c_in, c_out)`` (Keras' layout), a dense weight matrix
``(n_out, n_in)``.  A layer is described as the engine describes it (``TrainConfig.layers``):

- ``{"kind": "conv2d", "in_shape": (H, W, C), "out_shape": (OH, OW, CO),
  "geom": (kh, kw, sh, sw, pad_top, pad_left)}``: output pixel ``(oy, ox)`` sees input rows
  ``oy*sh - pad_top + dy`` and columns ``ox*sw - pad_left + dx``, zero outside the input;
- ``{"kind": "maxpool2d", ..., "geom": (ph, pw, sh, sw)}``: the maximum of each window, borders
  no whole window covers ignored; a tie goes to the window's first maximum in row-major order;
- ``{"kind": "flatten", ...}`` and ``{"kind": "dense"}`` (or None).

Nothing here is shared with the engine: the convolution is a loop over output pixels and
kernel taps, the pooling a loop over windows.  ``ConvNetwork`` runs forward, backward (the
four backpropagation equations, with the convolution's and the pooling's own rules for the
delta sent down and for the kernel gradient) and SGD steps on mini-batches.
"""
import numpy as np

from fastnn import reference as R


def same_padding(size, k, s):
    """Keras' "same" padding of one dimension: (output size, padding before)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2


def conv2d_forward(x, K, b, geom, out_shape):
    """``x`` (H, W, C), kernel ``K`` (kh, kw, C, CO), bias ``b`` (CO,) -> z (OH, OW, CO)."""
    kh, kw, sh, sw, pt, pl = geom
    OH, OW, CO = out_shape
    H, W, C = x.shape
    z = np.zeros((OH, OW, CO), dtype=x.dtype)
    for oy in range(OH):
        for ox in range(OW):
            acc = b.astype(x.dtype).copy()
            for dy in range(kh):
                y = oy * sh - pt + dy
                if not 0 <= y < H:
                    continue
                for dx in range(kw):
                    xx = ox * sw - pl + dx
                    if 0 <= xx < W:
                        acc += x[y, xx, :] @ K[dy, dx, :, :]
            z[oy, ox, :] = acc
    return z


def conv2d_backward(x, K, dz, geom):
    """For z = conv2d(x, K, b): return (dx, dK, db) from dz = dC/dz."""
    kh, kw, sh, sw, pt, pl = geom
    H, W, C = x.shape
    OH, OW, CO = dz.shape
    dx = np.zeros_like(x)
    dK = np.zeros_like(K)
    db = dz.sum(axis=(0, 1))
    for oy in range(OH):
        for ox in range(OW):
            g = dz[oy, ox, :]
            for dy in range(kh):
                y = oy * sh - pt + dy
                if not 0 <= y < H:
                    continue
                for dx_ in range(kw):
                    xx = ox * sw - pl + dx_
                    if 0 <= xx < W:
                        dK[dy, dx_, :, :] += np.outer(x[y, xx, :], g)
                        dx[y, xx, :] += K[dy, dx_, :, :] @ g
    return dx, dK, db


def maxpool2d_forward(x, geom, out_shape):
    """``x`` (H, W, C) -> (z (OH, OW, C), where: the flat index in x of each output's max)."""
    ph, pw, sh, sw = geom
    OH, OW, C = out_shape
    H, W, _ = x.shape
    z = np.empty((OH, OW, C), dtype=x.dtype)
    where = np.empty((OH, OW, C), dtype=np.int64)
    for oy in range(OH):
        for ox in range(OW):
            for c in range(C):
                best, arg = None, None
                for dy in range(ph):
                    for dx in range(pw):
                        y, xx = oy * sh + dy, ox * sw + dx
                        v = x[y, xx, c]
                        if best is None or v > best:
                            best, arg = v, (y * W + xx) * C + c
                z[oy, ox, c] = best
                where[oy, ox, c] = arg
    return z, where


def maxpool2d_backward(x_shape, where, dz):
    """Each output's delta to its window's maximum."""
    dx = np.zeros(int(np.prod(x_shape)), dtype=dz.dtype)
    np.add.at(dx, where.ravel(), dz.ravel())
    return dx.reshape(x_shape)


class ConvNetwork:
    """A network of conv2d, maxpool2d, flatten and dense layers, one example at a time.

    ``layers[l]``: the engine's description (None: dense); ``weights[l]``: the kernel (conv2d),
    the matrix (dense) or None; ``biases[l]``: flat, or None; ``acts[l]``: an activation name
    of ``fastnn.reference.ACTIVATIONS`` (identity for maxpool2d and flatten).
    """

    def __init__(self, layers, weights, biases, acts, cost="log_likelihood", cost_scale=1.0):
        self.layers = [l if l is not None else {"kind": "dense"} for l in layers]
        self.weights = [None if w is None else np.array(w, dtype=np.float64) for w in weights]
        self.biases = [None if x is None else np.array(x, dtype=np.float64).ravel()
                       for x in biases]
        self.acts = list(acts)
        self.cost = cost
        self.cost_scale = cost_scale

    def _forward(self, x):
        """One example: the list of (input, z, a, pooling index) per layer."""
        a = np.asarray(x, dtype=np.float64)
        trace = []
        for spec, W, b, act in zip(self.layers, self.weights, self.biases, self.acts):
            kind = spec["kind"]
            inp = a
            where = None
            if kind == "conv2d":
                z = conv2d_forward(inp.reshape(spec["in_shape"]), W, b, spec["geom"],
                                   spec["out_shape"]).ravel()
            elif kind == "maxpool2d":
                z, where = maxpool2d_forward(inp.reshape(spec["in_shape"]), spec["geom"],
                                             spec["out_shape"])
                z = z.ravel()
            elif kind == "flatten":
                z = inp.ravel().copy()
            else:
                z = W @ inp.ravel() + b
            if act == "softmax":
                a = R.softmax(z.reshape(-1, 1)).ravel()
            else:
                a = R.ACTIVATIONS[act](z)
            trace.append((inp, z, a, where))
        return trace

    def feedforward(self, X):
        """The outputs (n, n_out) for examples X (n, ...)."""
        return np.array([self._forward(x)[-1][2] for x in X])

    def cost_sum(self, X, Y):
        """The cost summed over the examples (no regularization)."""
        fn = R.COSTS[self.cost]
        out = self.feedforward(X)
        return float(fn(out.T, np.asarray(Y, dtype=np.float64).T, self.cost_scale))

    def backprop(self, x, y):
        """(gW, gb): the gradient of one example's cost."""
        trace = self._forward(x)
        L = len(self.layers)
        gW = [None if w is None else np.zeros_like(w) for w in self.weights]
        gb = [None if v is None else np.zeros_like(v) for v in self.biases]
        _, zL, aL, _ = trace[-1]
        delta = R.COST_DELTAS[self.cost](zL.reshape(-1, 1), aL.reshape(-1, 1),
                                         np.asarray(y, dtype=np.float64).reshape(-1, 1),
                                         self.acts[-1], self.cost_scale).ravel()
        for l in range(L - 1, -1, -1):
            spec = self.layers[l]
            inp, z, a, where = trace[l]
            kind = spec["kind"]
            if kind == "conv2d":
                dz = delta.reshape(spec["out_shape"])
                dx, gW[l], gb[l] = conv2d_backward(inp.reshape(spec["in_shape"]),
                                                   self.weights[l], dz, spec["geom"])
                dx = dx.ravel()
            elif kind == "maxpool2d":
                dx = maxpool2d_backward(spec["in_shape"], where,
                                        delta.reshape(spec["out_shape"])).ravel()
            elif kind == "flatten":
                dx = delta.copy()
            else:
                gW[l] = np.outer(delta, inp.ravel())
                gb[l] = delta.copy()
                dx = self.weights[l].T @ delta
            if l > 0:
                zb = trace[l - 1][1]
                delta = dx * R.DERIVATIVES[self.acts[l - 1]](zb)
        return gW, gb

    def gradient(self, X, Y):
        """The summed gradients over the examples."""
        gW = [None if w is None else np.zeros_like(w) for w in self.weights]
        gb = [None if v is None else np.zeros_like(v) for v in self.biases]
        for x, y in zip(X, Y):
            w1, b1 = self.backprop(x, y)
            for l in range(len(gW)):
                if gW[l] is not None:
                    gW[l] += w1[l]
                    gb[l] += b1[l]
        return gW, gb

    def sgd_epoch(self, X, Y, order, m, eta, lmbda=0.0, n=None):
        """Plain SGD over the mini-batches that are consecutive slices of ``order``, with the
        book's L2 decay ``(1 - eta lmbda / n)`` on weights."""
        n = len(X) if n is None else n
        for start in range(0, len(order), m):
            idx = order[start:start + m]
            gW, gb = self.gradient(X[idx], Y[idx])
            for l in range(len(gW)):
                if gW[l] is None:
                    continue
                self.weights[l] = (1 - eta * lmbda / n) * self.weights[l] - eta * gW[l] / len(idx)
                self.biases[l] = self.biases[l] - eta * gb[l] / len(idx)
