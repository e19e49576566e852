"""The xp backend's networks of layer kinds: conv2d, maxpool2d, flatten and dense, with dropout
on any hidden layer, written once against a module ``xp`` (numpy or CuPy).

The layers are the engine's (``TrainConfig.layers``, src_c/layers.h and one file per kind):
channels-last activations, one example a row of ``(m, n_l)``; a conv2d kernel ``(kh, kw, c_in,
c_out)``, a dense matrix ``(n_out, n_in)``.  The parameters live in one flat device vector
``P``, each layer's weights (in the host's layout) then its bias, so one update kernel of
fastnn/backends/xp.py steps them all, with a 0/1 mask keeping regularization off the biases.

Per kind, per mini-batch of m examples (array operations only, the same code on both modules):

    conv2d     im2col: Col (m OH OW, kh kw C) filled by kh*kw strided slices of the zero-padded
               input, one per kernel tap; Z = Col @ K (K as (kh kw C, CO)) + b.  Backward:
               dK = Col^T @ D, db = column sums of D, dCol = D @ K^T, then col2im: the same
               kh*kw strided slices add dCol back into the padded input's delta.
    maxpool2d  the window's taps as ph*pw strided slices; a running maximum takes a tap only
               when it is strictly greater (the first maximum in row-major order wins a tie,
               as the engine), and remembers which tap; backward adds each output's delta
               to the slice of its winning tap.
    flatten    the same numbers.
    dense      Z = A @ W^T + b; dW = D^T @ A, db = column sums of D, delta down D @ W.

The activations, the output phase and the update are xp.py's kernels (``act_forward`` /
``act_backward`` / ``output`` / ``update``: numpy expressions or kernels.cu), with dropout in
them: the keep mask of unit j of layer l for example slot s is the engine's hash of (seed,
epoch, s, l, j), multiplier 1/(1-p) (inverted dropout) or 1 (network3's rule, ``drop_book``,
whose forward-only passes multiply the layer's output by 1-p instead).
"""
import math

import numpy as np

from fastnn._config import import_engine

_engine = import_engine()

LAYER_KINDS = _engine.LAYER_KINDS
LAYER_GEOM = _engine.LAYER_GEOM
_IDENTITY = _engine.ACTIVATIONS["identity"]

# elements of im2col columns per forward-only chunk (64 Mi), so a big evaluation set does
# not hold every example's columns at once
EVAL_COL_ELEMENTS = 1 << 26


def check_layers(W, b, acts, layers, cost, dtype, act_codes_of, output_only, costs):
    """Check the network described by ``layers`` (the engine's descriptions, None: dense),
    with the engine's rules (src_c/fastnn.h, fnn_net_finish).  Returns (sizes, act codes,
    specs): the flat sizes input first, and one normalized description per layer: a dict with
    kind, in_shape, out_shape, geom, dropout, book."""
    L = len(W)
    if not isinstance(layers, (list, tuple)) or len(layers) != L:
        raise ValueError(f"layers: expected {L} layer descriptions (one per layer), got "
                         f"{len(layers) if isinstance(layers, (list, tuple)) else layers!r}")
    sizes, codes, specs = [None] * (L + 1), [], []
    for l in range(L):
        spec = layers[l]
        if spec is not None and not isinstance(spec, dict):
            raise TypeError(f"layers[{l}]: expected a dict or None, got {type(spec).__name__}")
        spec = spec or {}
        kind = spec.get("kind", "dense")
        if kind not in LAYER_KINDS:
            raise ValueError(f"layers[{l}]: expected a kind from {', '.join(LAYER_KINDS)}, got "
                             f"{kind!r}")
        p = float(spec.get("dropout", 0.0))
        if not 0.0 <= p < 1.0:
            raise ValueError(f"layers[{l}]: expected a dropout in [0, 1), got {p}")
        if p > 0 and l == L - 1:
            raise ValueError(f"layers[{l}]: the xp backend takes no dropout on the output "
                             f"layer, got {p}")
        a = acts[l]
        if not isinstance(a, str) or a not in act_codes_of or (a in output_only and l != L - 1):
            raise ValueError(f"activations[{l}]: expected an activation name of the table"
                             f"{'' if l == L - 1 else ' (not an output-only one)'}, got {a!r}")
        codes.append(act_codes_of[a])
        has_params = kind in ("dense", "conv2d")
        for arr, nm in ((W[l], "weights"), (b[l], "biases")):
            if not has_params:
                if arr is not None:
                    raise ValueError(f"weights[{l}]/biases[{l}]: a {kind} layer has no "
                                     f"parameters; expected None")
                continue
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"{nm}[{l}]: expected a numpy array, got {type(arr).__name__}")
            if arr.dtype != dtype:
                raise TypeError(f"{nm}[{l}]: expected dtype {dtype}, got {arr.dtype}")
            if not arr.flags.writeable:
                raise ValueError(f"{nm}[{l}]: expected a writeable array")
        if not has_params and codes[-1] != _IDENTITY:
            raise ValueError(f"activations[{l}]: a {kind} layer takes no activation (put it "
                             f"on the layer before), got {a!r}")
        if kind == "dense":
            if W[l].ndim != 2 or W[l].shape[0] < 1 or W[l].shape[1] < 1:
                raise ValueError(f"weights[{l}]: expected a non-empty matrix, got shape "
                                 f"{W[l].shape}")
            ins, outs, geom = (1, 1, W[l].shape[1]), (1, 1, W[l].shape[0]), ()
            if b[l].size != W[l].shape[0]:
                raise ValueError(f"biases[{l}]: expected {W[l].shape[0]} entries, got shape "
                                 f"{b[l].shape}")
        else:
            ins, outs, geom = spec.get("in_shape"), spec.get("out_shape"), spec.get("geom", ())
            if ins is None or outs is None or len(ins) != 3 or len(outs) != 3:
                raise ValueError(f"layers[{l}]: expected in_shape and out_shape as (height, "
                                 f"width, channels), got {ins!r} and {outs!r}")
            if len(geom) != LAYER_GEOM[kind]:
                raise ValueError(f"layers[{l}]: expected {LAYER_GEOM[kind]} geometry integers "
                                 f"for {kind}, got {tuple(geom)!r}")
            ins, outs, geom = (tuple(int(v) for v in t) for t in (ins, outs, geom))
            if not _fits(kind, ins, outs, geom):
                raise ValueError(f"layers[{l}]: a {kind} layer with input {ins}, output {outs} "
                                 f"and geometry {geom} does not fit itself")
            if kind == "conv2d":
                want = (geom[0], geom[1], ins[2], outs[2])
                if tuple(W[l].shape) != want:
                    raise ValueError(f"weights[{l}]: expected a conv2d kernel of shape {want} "
                                     f"(kh, kw, in, out), got {W[l].shape}")
                if b[l].size != outs[2]:
                    raise ValueError(f"biases[{l}]: expected {outs[2]} entries, got shape "
                                     f"{b[l].shape}")
        n_in, n_out = math.prod(ins), math.prod(outs)
        if l > 0 and n_in != sizes[l]:
            raise ValueError(f"layers[{l}]: a {kind} layer of {n_in} inputs does not chain "
                             f"with the previous layer's {sizes[l]} outputs")
        sizes[l], sizes[l + 1] = n_in, n_out
        specs.append({"kind": kind, "in_shape": ins, "out_shape": outs, "geom": geom,
                      "dropout": p, "book": bool(spec.get("drop_book", False))})
    if cost is not None and (not isinstance(cost, str) or cost not in costs):
        raise ValueError(f"cost: expected one of {', '.join(costs)}, got {cost!r}")
    return sizes, codes, specs


def _fits(kind, ins, outs, g):
    """The engine's geometry rules (fnn_net_finish)."""
    if min(ins) < 1 or min(outs) < 1:
        return False
    if kind == "conv2d":
        kh, kw, sh, sw, pt, pl = g
        return (min(kh, kw, sh, sw) >= 1 and 0 <= pt < kh and 0 <= pl < kw
                and (outs[0] - 1) * sh - pt <= ins[0] - 1 and (outs[1] - 1) * sw - pl <= ins[1] - 1
                and (outs[0] - 1) * sh - pt + kh <= ins[0] + kh - 1
                and (outs[1] - 1) * sw - pl + kw <= ins[1] + kw - 1)
    if kind == "maxpool2d":
        ph, pw, sh, sw = g
        return (min(g) >= 1 and outs[2] == ins[2] and (outs[0] - 1) * sh + ph <= ins[0]
                and (outs[1] - 1) * sw + pw <= ins[1])
    return math.prod(ins) == math.prod(outs)     # flatten


def _taps(kh, kw, OH, OW, sh, sw):
    """The (dy, dx, row slice, column slice) of each kernel tap in row-major order: the
    inputs that tap sees for every output pixel, as strided slices of the (padded) input."""
    return [(dy, dx, slice(dy, dy + (OH - 1) * sh + 1, sh), slice(dx, dx + (OW - 1) * sw + 1, sw))
            for dy in range(kh) for dx in range(kw)]


class LayerNet:
    """The parameters of a network of layer kinds in one flat device vector, and its passes.

    The same interface as xp.py's ``_DeviceNet`` (``P``, ``S``, ``mask``, ``pack_state``,
    ``unpack``, ``unpack_state``, ``weight_mask``, ``upload``, ``alloc``, ``train_batch``,
    ``evaluate_set``, ``forward_out``), so xp.train runs either."""

    def __init__(self, xp, kern, W, b, sizes, acts, specs, dtype, dropout=0.0):
        self.xp, self.kern, self.dtype = xp, kern, np.dtype(dtype)
        self.sizes, self.acts, self.specs, self.L = sizes, acts, specs, len(specs)
        self.dropout = float(dropout)          # the call's dropout on hidden layers
        self.drops_own = any(s["dropout"] > 0 for s in specs)
        # offsets of each layer's weights and bias in P (None: no parameters)
        self.blocks, off = [], 0
        for l in range(self.L):
            if W[l] is None:
                self.blocks.append(None)
                continue
            nw, nb = W[l].size, b[l].size
            self.blocks.append((off, W[l].shape, off + nw, nb))
            off += nw + nb
        self.n_params = off
        self.P = xp.asarray(self.pack([(W[l], b[l]) for l in range(self.L)]))
        self.Wv, self.bv = self.views(self.P)
        self.S = None
        self.mask = None
        self.rows = 1
        self.G = None

    # -- packing between the host layout (W[l], b[l]) and the flat layout ------------------
    def pack(self, pairs):
        """Host flat vector from per-layer (W-like, b-like) host arrays (None: no params)."""
        flat = np.empty(self.n_params, dtype=self.dtype)
        for blk, (w, bb) in zip(self.blocks, pairs):
            if blk is not None:
                ow, shape, ob, nb = blk
                flat[ow:ob] = np.asarray(w).reshape(-1)
                flat[ob:ob + nb] = np.asarray(bb).reshape(-1)
        return flat

    def unpack(self, flat, pairs):
        """Write a host flat vector into per-layer (W-like, b-like) host arrays, in place."""
        for blk, (w, bb) in zip(self.blocks, pairs):
            if blk is not None:
                ow, shape, ob, nb = blk
                np.copyto(w, flat[ow:ob].reshape(w.shape))
                np.copyto(bb, flat[ob:ob + nb].reshape(bb.shape))

    def pack_state(self, state):
        out = np.empty((len(state), self.n_params), dtype=self.dtype)
        for q, pairs in enumerate(state):
            out[q] = self.pack(pairs)
        return out

    def unpack_state(self, flat, state):
        for q, pairs in enumerate(state):
            self.unpack(flat[q], pairs)

    def views(self, flat):
        """Per layer the weights as a matrix (dense (n_out, n_in); conv2d (kh kw C, CO)) and
        the bias, as views of ``flat``; None for layers without parameters."""
        Wv, bv = [], []
        for blk in self.blocks:
            if blk is None:
                Wv.append(None)
                bv.append(None)
                continue
            ow, shape, ob, nb = blk
            rows = shape[0] if len(shape) == 2 else shape[0] * shape[1] * shape[2]
            Wv.append(flat[ow:ob].reshape(rows, -1))
            bv.append(flat[ob:ob + nb])
        return Wv, bv

    def weight_mask(self):
        mask = np.zeros(self.n_params, dtype=self.dtype)
        for blk in self.blocks:
            if blk is not None:
                mask[blk[0]:blk[2]] = 1
        return self.xp.asarray(mask)

    def upload(self, X):
        """X (n, n_in) host -> device."""
        return self.xp.asarray(np.ascontiguousarray(X))

    def alloc(self, rows, brows=0):
        """The forward-only chunk: at most ``rows`` examples, fewer where the im2col columns
        of a chunk would pass EVAL_COL_ELEMENTS; the gradient buffer when training."""
        per = max([math.prod(s["out_shape"][:2]) * s["geom"][0] * s["geom"][1] * s["in_shape"][2]
                   for s in self.specs if s["kind"] == "conv2d"] + [1])
        self.rows = max(1, min(int(rows), EVAL_COL_ELEMENTS // per))
        if brows:
            self.G = self.xp.empty(self.n_params, dtype=self.dtype)
            self.Gw, self.Gb = self.views(self.G)

    # -- one layer at a time ---------------------------------------------------------------
    def _pad(self, x, s, m):
        """x (m, H W C) -> the zero-padded input (m, Hp, Wp, C) of a conv2d layer."""
        xp = self.xp
        (H, W, C), (OH, OW, _) = s["in_shape"], s["out_shape"]
        kh, kw, sh, sw, pt, pl = s["geom"]
        Hp, Wp = max(pt + H, (OH - 1) * sh + kh), max(pl + W, (OW - 1) * sw + kw)
        x4 = x.reshape(m, H, W, C)
        if (Hp, Wp) == (H, W):
            return x4
        xpad = xp.zeros((m, Hp, Wp, C), dtype=self.dtype)
        xpad[:, pt:pt + H, pl:pl + W, :] = x4
        return xpad

    def _im2col(self, x, s, m):
        """Col (m OH OW, kh kw C): row (i, oy, ox) is the receptive field of output pixel
        (oy, ox) of example i in (dy, dx, c) order, the kernel's row order."""
        (H, W, C), (OH, OW, _) = s["in_shape"], s["out_shape"]
        kh, kw, sh, sw, _, _ = s["geom"]
        xpad = self._pad(x, s, m)
        col = self.xp.empty((m, OH, OW, kh, kw, C), dtype=self.dtype)
        for dy, dx, rs, cs in _taps(kh, kw, OH, OW, sh, sw):
            col[:, :, :, dy, dx, :] = xpad[:, rs, cs, :]
        return col.reshape(m * OH * OW, kh * kw * C)

    def _col2im(self, dcol, s, m):
        """The delta (m, H W C) of a conv2d layer's input from dCol (m OH OW, kh kw C)."""
        xp = self.xp
        (H, W, C), (OH, OW, _) = s["in_shape"], s["out_shape"]
        kh, kw, sh, sw, pt, pl = s["geom"]
        Hp, Wp = max(pt + H, (OH - 1) * sh + kh), max(pl + W, (OW - 1) * sw + kw)
        dpad = xp.zeros((m, Hp, Wp, C), dtype=self.dtype)
        d6 = dcol.reshape(m, OH, OW, kh, kw, C)
        for dy, dx, rs, cs in _taps(kh, kw, OH, OW, sh, sw):
            dpad[:, rs, cs, :] += d6[:, :, :, dy, dx, :]
        return xp.ascontiguousarray(dpad[:, pt:pt + H, pl:pl + W, :]).reshape(m, H * W * C)

    def _pool(self, x, s, m):
        """(z (m, OH OW C), win (m, OH, OW, C) int32: the winning tap of each output)."""
        xp = self.xp
        (H, W, C), (OH, OW, _) = s["in_shape"], s["out_shape"]
        ph, pw, sh, sw = s["geom"]
        x4 = x.reshape(m, H, W, C)
        z = win = None
        for t, (_, _, rs, cs) in enumerate(_taps(ph, pw, OH, OW, sh, sw)):
            v = x4[:, rs, cs, :]
            if t == 0:
                z = xp.array(v, dtype=self.dtype)
                win = xp.zeros(z.shape, dtype=np.int32)
                continue
            better = v > z          # strictly: a tie stays with the earlier tap
            z = xp.where(better, v, z)
            win = xp.where(better, np.int32(t), win)
        return z.reshape(m, OH * OW * C), win

    def _unpool(self, d, win, s, m):
        """The delta (m, H W C) of a maxpool2d layer's input: each output's delta to its
        window's winner."""
        xp = self.xp
        (H, W, C), (OH, OW, _) = s["in_shape"], s["out_shape"]
        ph, pw, sh, sw = s["geom"]
        d4 = d.reshape(m, OH, OW, C)
        dx = xp.zeros((m, H, W, C), dtype=self.dtype)
        zero = self.dtype.type(0)
        for t, (_, _, rs, cs) in enumerate(_taps(ph, pw, OH, OW, sh, sw)):
            dx[:, rs, cs, :] += xp.where(win == t, d4, zero)
        return dx.reshape(m, H * W * C)

    def _drop(self, l, ps):
        """Layer l's dropout tuple for xp.py's kernels in pass ``ps`` ((seed, epoch, slot0)
        while training, None otherwise), or None."""
        if ps is None:
            return None
        s = self.specs[l]
        p = s["dropout"] if s["dropout"] > 0 else (self.dropout if l < self.L - 1 else 0.0)
        if p <= 0:
            return None
        seed, epoch, slot0 = ps
        return (p, seed, epoch, slot0, l, 1 if s["book"] else 0)

    def forward(self, x, m, ps=None):
        """Examples x (m, n_0) -> (Z of the output layer, the trace: per layer (input, z,
        pooling winners or im2col columns)).  ``ps``: (seed, epoch, slot0) while training."""
        xp, kern = self.xp, self.kern
        a, trace = x, []
        for l, s in enumerate(self.specs):
            kind, aux = s["kind"], None
            if kind == "conv2d":
                aux = self._im2col(a, s, m)
                z = (aux @ self.Wv[l] + self.bv[l]).reshape(m, -1)
            elif kind == "maxpool2d":
                z, aux = self._pool(a, s, m)
            elif kind == "flatten":
                z = a
            else:
                z = a @ self.Wv[l].T + self.bv[l]
            trace.append((a, z, aux))
            if l == self.L - 1:
                return z, trace
            a = xp.empty((m, self.sizes[l + 1]), dtype=self.dtype)
            kern.act_forward(a, z, self.acts[l], self._drop(l, ps))
            if ps is None and s["book"] and s["dropout"] > 0:
                a *= self.dtype.type(1.0 - s["dropout"])     # network3: the expected value

    def train_batch(self, inp, y, m, acc, cost, scale, ps, k):
        """One mini-batch: forward, output delta, backward, one update of all parameters.
        ``ps``: (seed, epoch, slot0), the dropout masks' pass."""
        xp, kern, L = self.xp, self.kern, self.L
        zL, trace = self.forward(inp, m, ps)
        out = xp.empty((m, self.sizes[L]), dtype=self.dtype)
        d = xp.empty((m, self.sizes[L]), dtype=self.dtype)
        kern.output(zL, y, out, d, acc, self.acts[L - 1], cost, scale)
        for l in range(L - 1, -1, -1):
            s, (a, _, aux) = self.specs[l], trace[l]
            kind = s["kind"]
            if kind == "conv2d":
                co = s["out_shape"][2]
                d2 = d.reshape(-1, co)
                self.Gw[l][...] = aux.T @ d2
                self.Gb[l][...] = d2.sum(axis=0)
                dn = self._col2im(d2 @ self.Wv[l].T, s, m) if l > 0 else None
            elif kind == "maxpool2d":
                dn = self._unpool(d, aux, s, m) if l > 0 else None
            elif kind == "flatten":
                dn = d
            else:
                self.Gw[l][...] = d.T @ a
                self.Gb[l][...] = d.sum(axis=0)
                dn = d @ self.Wv[l] if l > 0 else None
            if l > 0:
                d = xp.empty((m, self.sizes[l]), dtype=self.dtype)
                kern.act_backward(d, dn, trace[l - 1][1], self.acts[l - 1],
                                  self._drop(l - 1, ps))
        kern.update(self.P, self.G, self.S, self.mask, 1.0 / m, k)

    def forward_out(self, X, out):
        """Outputs of the rows of device X into out (n, n_L): the forward pass in chunks of
        ``self.rows``, then the output layer's activation."""
        n = X.shape[0]
        for s in range(0, n, self.rows):
            m = min(self.rows, n - s)
            zL, _ = self.forward(X[s:s + m], m)
            self.kern.output(zL, None, out[s:s + m], None, None, self.acts[-1], 0, 1.0)

    def evaluate_set(self, Xe, Ye, acc, cost, scale):
        """Cost sum and hits over device data (Xe, Ye) into acc (2,)."""
        n = Xe.shape[0]
        for s in range(0, n, self.rows):
            m = min(self.rows, n - s)
            zL, _ = self.forward(Xe[s:s + m], m)
            a = self.xp.empty(zL.shape, dtype=self.dtype)
            self.kern.output(zL, Ye[s:s + m], a, None, acc, self.acts[-1], cost, scale)

    def norms(self, mask):
        return norms(self.xp, self.P, mask)


def norms(xp, P, mask):
    """Device (3,) float64 of the flat parameters P: sum w^2, sum |w| over the weights (mask
    1), sum |b| over the biases (mask 0)."""
    p = P.astype(np.float64)
    ap = xp.abs(p)
    w = mask.astype(np.float64)
    return xp.stack([xp.sum(p * p * w), xp.sum(ap * w), xp.sum(ap * (1 - w))])
