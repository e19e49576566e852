"""The book's algorithms, one example at a time in Python, for a network the reader has changed.

The compiled engine runs a whole ``SGD`` call by itself: it never calls ``update_mini_batch``,
``backprop``, ``cost_derivative``, ``feedforward``, ``evaluate``, ``accuracy`` or
``total_cost``.  The book's exercises change exactly those methods (in a subclass, or on an
instance), or hand ``network2`` a cost class of their own.  Then the front doors run the
functions below instead: the book's algorithm step by step, calling the network's methods (the
reader's where they are overridden) at the points where the book's code calls them, with the
same ``random.shuffle`` of the training list and the same printed lines.  A ``UserWarning``
says once per class what was changed and that the compiled engine is not used.

Each front door describes its methods by ``CALLS``: which methods and module functions the
book's version of each method calls.  A method of ours runs in Python when something it
reaches through ``CALLS`` was changed by the reader; otherwise it stays compiled (an
overridden ``evaluate`` does not slow down ``backprop``).
"""
import random
import warnings

import numpy as np

from fastnn import _core

__all__ = ["originals", "changed", "python_reasons", "warn_once", "sgd", "sgd2",
           "update_mini_batch", "backprop", "feedforward", "evaluate", "accuracy", "total_cost"]

_warned = set()


def originals(cls, names):
    """Record the methods ``names`` of ``cls`` as defined: a later override is told apart by
    identity, whether made in a subclass, on an instance or on ``cls`` itself."""
    return {name: getattr(cls, name) for name in names}


def changed(net, original):
    """The names in ``original`` that ``net`` does not take from there."""
    own = getattr(net, "__dict__", {})
    return {name for name, fn in original.items()
            if name in own or getattr(type(net), name, None) is not fn}


def reachable(calls, method):
    """Every name the book's ``method`` calls, directly or through the methods it calls."""
    seen, todo = set(), list(calls.get(method, ()))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(calls.get(name, ()))
    return seen


def python_reasons(net, method):
    """Sorted names of what the reader changed that the book's ``method`` would call: empty
    when our compiled ``method`` gives what the book's code with the reader's changes gives.
    ``net._reader_changes()`` says what was changed, ``net._CALLS`` who calls what."""
    changes = net._reader_changes()
    if not changes:
        return []
    return sorted(reachable(net._CALLS, method) & changes)


def warn_once(net, method, reasons):
    """One UserWarning per network class and set of changes: the compiled engine is not used."""
    describe = getattr(net, "_describe_change", str)
    key = (type(net), tuple(sorted(describe(c) for c in net._reader_changes())))
    if key in _warned:
        return
    _warned.add(key)
    what = ", ".join(describe(r) for r in reasons)
    warnings.warn(
        f"{type(net).__name__}.{method}: your code changes {what}, which the book's "
        f"{method} calls; fastnn runs the book's algorithm in Python, calling your code where "
        f"the book's code calls it, and the compiled engine is not used (expect the book's "
        f"speed, not fastnn's).", UserWarning, stacklevel=4)


# ---------------------------------------------------------------------------------------------
# data as the book's lists

def as_book_list(data, net, name, training):
    """The caller's list as it is (the book's code works on it in place); an (X, y) pair of
    arrays or any other iterable as a new list of the book's (x, y) pairs: x a column, y a
    one-hot column for training data and an int64 label otherwise."""
    if data is None or isinstance(data, list):
        return data
    if _core.is_array_pair(data):
        X, Y, n = net._arrays(data, name, one_hot=training)
        if training:
            return [(X[i].reshape(-1, 1), Y[i].reshape(-1, 1).astype(np.float64))
                    for i in range(n)]
        return [(X[i].reshape(-1, 1), np.int64(np.argmax(Y[i]))) for i in range(n)]
    return _core.as_pairs(data, name)


def label_of(y):
    """An int label, or the index of the largest entry of a one-hot vector (the first)."""
    y = np.asarray(y)
    return int(y) if y.size == 1 and y.ndim < 2 and y.dtype.kind in "iub" else \
        int(np.argmax(y))


def one_hot_of(y, n_out):
    """A target column: an int label as the book's ``vectorized_result``, a vector as given."""
    y_arr = np.asarray(y)
    if y_arr.ndim == 0 and y_arr.dtype.kind in "iu":
        e = np.zeros((n_out, 1))
        e[int(y_arr)] = 1.0
        return e
    return y


# ---------------------------------------------------------------------------------------------
# the book's methods

def layer_functions(net):
    """``[(f, f')]`` per layer, from the front door (which looks up the module's sigmoid)."""
    return net._layer_activations()


def feedforward(net, a):
    """Return the output for input column(s) ``a``: ``a = f(w a + b)`` layer by layer."""
    for (f, _), w, b in zip(layer_functions(net), net.weights, net.biases):
        a = f(np.dot(w, a) + b)
    return a


def backprop(net, x, y, output_delta):
    """Return ``(nabla_b, nabla_w)`` for one example by the four equations of chapter 2.

    ``output_delta(z, a, y)`` is the error of the output layer (BP1): the cost's ``delta`` in
    chapter 3, ``cost_derivative(a, y) * sigmoid_prime(z)`` in chapter 1."""
    fns = layer_functions(net)
    zs, activations = [], [x]
    for (f, _), w, b in zip(fns, net.weights, net.biases):
        zs.append(np.dot(w, activations[-1]) + b)
        activations.append(f(zs[-1]))
    L = len(net.weights)
    nabla_b, nabla_w = [None] * L, [None] * L
    delta = output_delta(zs[-1], activations[-1], y)
    for l in range(L - 1, -1, -1):
        if l < L - 1:                                        # BP2, back through layer l + 1
            delta = np.dot(net.weights[l + 1].T, delta) * fns[l][1](zs[l])
        nabla_b[l] = delta                                   # BP3
        nabla_w[l] = np.dot(delta, activations[l].T)         # BP4
    return nabla_b, nabla_w


def update_mini_batch(net, mini_batch, eta, lmbda=0.0, n=1):
    """One gradient step: the gradients ``net.backprop`` gives, summed over the mini-batch and
    averaged; weights decay by ``1 - eta*lmbda/n`` (1 in chapter 1)."""
    sum_b = [np.zeros_like(b) for b in net.biases]
    sum_w = [np.zeros_like(w) for w in net.weights]
    for x, y in mini_batch:
        d_b, d_w = net.backprop(x, y)
        sum_b = [s + d for s, d in zip(sum_b, d_b)]
        sum_w = [s + d for s, d in zip(sum_w, d_w)]
    step = eta / len(mini_batch)
    decay = 1 - eta * (lmbda / n)
    # a float32 network stays float32 (float64 inputs would otherwise promote the weights)
    net.weights = [(decay * w - step * s).astype(w.dtype, copy=False)
                   for w, s in zip(net.weights, sum_w)]
    net.biases = [(b - step * s).astype(b.dtype, copy=False)
                  for b, s in zip(net.biases, sum_b)]


def evaluate(net, test_data):
    """Return how many ``(x, y)`` in ``test_data`` have ``argmax(net.feedforward(x)) == y``."""
    test_data = as_book_list(test_data, net, "test_data", False)
    return sum(int(int(np.argmax(net.feedforward(x))) == label_of(y)) for x, y in test_data)


def accuracy(net, data, convert=False):
    """As ``evaluate``; ``y`` may be a label or a one-hot vector whatever ``convert`` says."""
    return evaluate(net, data)


def total_cost(net, data, lmbda, convert=False):
    """Mean of ``net.cost.fn(net.feedforward(x), y)`` plus ``0.5*(lmbda/n)*sum ||w||^2``; an
    int label ``y`` is made a one-hot column first."""
    data = as_book_list(data, net, "data", False)
    n = len(data)
    cost = np.float64(0.0)
    for x, y in data:
        cost += net.cost.fn(net.feedforward(x), one_hot_of(y, net.sizes[-1])) / n
    cost += 0.5 * (lmbda / n) * sum(np.linalg.norm(w) ** 2 for w in net.weights)
    return cost


# ---------------------------------------------------------------------------------------------
# the book's SGD loops

def batches(training_data, size):
    return [training_data[k:k + size] for k in range(0, len(training_data), size)]


def sgd(net, training_data, epochs, mini_batch_size, eta, test_data=None):
    """Chapter 1's SGD: shuffle the list, one ``update_mini_batch`` per slice, then print the
    ``evaluate`` count (or that the epoch is complete)."""
    training_data = as_book_list(training_data, net, "training_data", True)
    test_data = as_book_list(test_data, net, "test_data", False)
    if test_data:
        n_test = len(test_data)
    for j in range(epochs):
        random.shuffle(training_data)
        for mini_batch in batches(training_data, mini_batch_size):
            net.update_mini_batch(mini_batch, eta)
        if test_data:
            print("Epoch {0}: {1} / {2}".format(j, net.evaluate(test_data), n_test))
        else:
            print("Epoch {0} complete".format(j))


def sgd2(net, training_data, epochs, mini_batch_size, eta, lmbda, evaluation_data,
         monitor_evaluation_cost, monitor_evaluation_accuracy, monitor_training_cost,
         monitor_training_accuracy, early_stopping_n=0, eta_schedule=None, plateau_n=10,
         verbose=True):
    """Chapter 3's SGD with its four monitors; returns their four lists.

    ``accuracy`` is called once per monitored data set and epoch (the book's code calls it a
    second time on the evaluation data only to print it; the printed number is the same).
    ``early_stopping_n`` and ``eta_schedule`` act as in the compiled loop."""
    training_data = as_book_list(training_data, net, "training_data", True)
    evaluation_data = as_book_list(evaluation_data, net, "evaluation_data", False)
    say = print if verbose else (lambda *a: None)
    n_data = len(evaluation_data) if evaluation_data else 0
    n = len(training_data)
    evaluation_cost, evaluation_accuracy = [], []
    training_cost, training_accuracy = [], []
    best, since = -1, 0
    eta0 = eta
    for j in range(epochs):
        random.shuffle(training_data)
        for mini_batch in batches(training_data, mini_batch_size):
            net.update_mini_batch(mini_batch, eta, lmbda, len(training_data))
        say("Epoch %s training complete" % j)
        if monitor_training_cost:
            cost = net.total_cost(training_data, lmbda)
            training_cost.append(cost)
            say("Cost on training data: {}".format(cost))
        if monitor_training_accuracy:
            acc = net.accuracy(training_data, convert=True)
            training_accuracy.append(acc)
            say("Accuracy on training data: {} / {}".format(acc, n))
        eval_acc = None
        if monitor_evaluation_cost:
            cost = net.total_cost(evaluation_data, lmbda, convert=True)
            evaluation_cost.append(cost)
            say("Cost on evaluation data: {}".format(cost))
        if monitor_evaluation_accuracy:
            eval_acc = net.accuracy(evaluation_data)
            evaluation_accuracy.append(eval_acc)
            say("Accuracy on evaluation data: {} / {}".format(eval_acc, n_data))
        say()
        if early_stopping_n or eta_schedule:
            if eval_acc is None:
                eval_acc = net.accuracy(evaluation_data)
            if eval_acc > best:
                best, since = eval_acc, 0
            else:
                since += 1
            if early_stopping_n and since >= early_stopping_n:
                break
            if eta_schedule and since >= plateau_n:
                eta, since = eta / 2.0, 0
                if eta <= eta0 / 128.0:
                    break
    return evaluation_cost, evaluation_accuracy, training_cost, training_accuracy
