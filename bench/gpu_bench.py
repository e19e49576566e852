"""W1 and W2 (shared/BENCHMARKS.md) on the GPU: fastnn device='cuda' against PyTorch CUDA.

    python bench/gpu_bench.py --out bench/results/gpu-h100.json

Both peers run on the same GPU, with the same batch sizes, in the same run.  Per-epoch time is
the marginal time of one more epoch: (time of N+1 epochs - time of 1 epoch) / N, the median
over --rounds rounds; set-up (data conversion, upload, kernel compilation) is what the first
epoch costs on top.  A standalone script (not a pytest-benchmark file): it needs CuPy, PyTorch
with CUDA and a GPU, and prints a table with the device line and writes the figures as JSON.
"""
import argparse
import contextlib
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import fastnn  # noqa: E402
from fastnn import _core, datasets, network  # noqa: E402


# ---------------------------------------------------------------------------------------------
# machine and data

def device_line():
    """nvidia-smi's name, memory and driver of GPU 0 (or what CuPy says)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30).stdout.strip().splitlines()
        if out:
            return out[0].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as e:  # noqa: BLE001
        return f"unknown GPU ({e})"


def versions():
    v = {"python": platform.python_version(), "numpy": np.__version__,
         "fastnn": fastnn.__version__, "cpu": platform.processor() or platform.machine()}
    try:
        import cupy
        v["cupy"] = cupy.__version__
        v["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    except Exception as e:  # noqa: BLE001
        v["cupy"] = f"missing ({e})"
    try:
        import torch
        v["torch"] = torch.__version__
        v["torch_cuda"] = torch.version.cuda
    except Exception as e:  # noqa: BLE001
        v["torch"] = f"missing ({e})"
    return v


def load_data(kind):
    """(x_train, y_train), (x_test, y_test) as float64 [0, 1] arrays and int labels."""
    if kind == "sample":
        d = datasets.load_sample()
    else:
        d = datasets.load("fashion-mnist", allow_sample=(kind == "auto"), download=False)
    (xtr, ytr), (xte, yte) = d
    src = "shipped sample (3000 train / 1000 test)" if d.is_sample else str(d.source)
    return (datasets.to_array(xtr), np.asarray(ytr, np.int64),
            datasets.to_array(xte), np.asarray(yte, np.int64), src)


def marginal(run, epochs, rounds):
    """run(n_epochs) -> (seconds, accuracy); returns per-epoch, set-up, accuracy, raw."""
    raw = []
    for _ in range(rounds):
        t1, _ = run(1)
        tn, acc = run(epochs + 1)
        raw.append((t1, tn, acc))
    per = statistics.median((tn - t1) / epochs for t1, tn, _ in raw)
    setup = statistics.median(t1 for t1, _, _ in raw) - per
    return per, setup, raw[-1][2], raw


# ---------------------------------------------------------------------------------------------
# W1: Nielsen ch. 1, [784, 30, 10] sigmoid, quadratic cost, float64, SGD batch 10, eta 3.0,
# list input, evaluation on the test set after every epoch

def w1_fastnn(d, n_train, quiet=True):
    xtr, ytr, xte, yte = d
    train = datasets.to_nielsen(xtr[:n_train], ytr[:n_train], vectorize=True)
    test = datasets.to_nielsen(xte, yte)

    def run(epochs):
        random.seed(0)
        np.random.seed(0)
        net = network.Network([784, 30, 10], device="cuda")
        buf = io.StringIO()
        t = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            net.SGD(list(train), epochs, 10, 3.0, test_data=test)
        t = time.perf_counter() - t
        last = buf.getvalue().strip().splitlines()[-1]          # "Epoch k: hits / n"
        hits, n = last.split(":")[1].split("/")
        return t, int(hits) / int(n)
    return run


def w1_torch(d, n_train):
    import torch
    xtr, ytr, xte, yte = d
    dev = torch.device("cuda")

    def run(epochs):
        t = time.perf_counter()
        X = torch.tensor(xtr[:n_train], dtype=torch.float64, device=dev)
        Y = torch.nn.functional.one_hot(torch.tensor(ytr[:n_train], device=dev), 10).double()
        Xt = torch.tensor(xte, dtype=torch.float64, device=dev)
        yt = torch.tensor(yte, device=dev)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.Sigmoid(),
                                    torch.nn.Linear(30, 10), torch.nn.Sigmoid()).double().to(dev)
        with torch.no_grad():               # the book's N(0, 1) initialisation
            for p in model.parameters():
                p.normal_()
        opt = torch.optim.SGD(model.parameters(), lr=3.0)
        n = X.shape[0]
        acc = 0.0
        for _ in range(epochs):
            perm = torch.randperm(n, device=dev)
            for s in range(0, n, 10):
                idx = perm[s:s + 10]
                a = model(X[idx])
                loss = 0.5 * ((a - Y[idx]) ** 2).sum() / idx.shape[0]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                acc = (model(Xt).argmax(1) == yt).sum().item() / len(yte)
        torch.cuda.synchronize()
        return time.perf_counter() - t, acc
    return run


# ---------------------------------------------------------------------------------------------
# W2: the Keras Fashion-MNIST tutorial: Dense(128, relu), Dense(10) + softmax cross-entropy,
# float32, Adam (1e-3, 0.9, 0.999, 1e-7), batch 32; test accuracy after the last epoch

def glorot(rng, n_out, n_in):
    lim = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-lim, lim, size=(n_out, n_in))


def w2_fastnn(d, device="cuda"):
    xtr, ytr, xte, yte = d

    def run(epochs):
        t = time.perf_counter()
        rng = np.random.default_rng(0)
        X = np.ascontiguousarray(xtr, dtype=np.float32)
        Y = np.eye(10, dtype=np.float32)[ytr]
        W = [glorot(rng, 128, 784).astype(np.float32), glorot(rng, 10, 128).astype(np.float32)]
        b = [np.zeros(128, np.float32), np.zeros(10, np.float32)]
        orders = np.stack([rng.permutation(len(X)) for _ in range(epochs)]).astype(np.int32)
        acts = ["relu", "softmax"]
        _core.train(W, b, X, Y, _core.TrainConfig(
            acts=acts, cost="log_likelihood", epochs=epochs, batch=32, eta=1e-3,
            optimizer="adam", beta1=0.9, beta2=0.999, eps=1e-7,
            state=_core.new_state("adam", W, b), orders=orders, device=device))
        t = time.perf_counter() - t
        out = _core.predict(W, b, acts, np.ascontiguousarray(xte, dtype=np.float32),
                            device=device)
        return t, float(np.mean(out.argmax(1) == yte))
    return run


def w2_torch(d):
    import torch
    xtr, ytr, xte, yte = d
    dev = torch.device("cuda")

    def run(epochs):
        t = time.perf_counter()
        X = torch.tensor(xtr, dtype=torch.float32, device=dev)
        y = torch.tensor(ytr, device=dev)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 10)).to(dev)
        for m in model:
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.xavier_uniform_(m.weight)
                torch.nn.init.zeros_(m.bias)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        lossf = torch.nn.CrossEntropyLoss()
        n = X.shape[0]
        for _ in range(epochs):
            perm = torch.randperm(n, device=dev)
            for s in range(0, n, 32):
                idx = perm[s:s + 32]
                loss = lossf(model(X[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        torch.cuda.synchronize()
        t = time.perf_counter() - t
        with torch.no_grad():
            Xt = torch.tensor(xte, dtype=torch.float32, device=dev)
            acc = (model(Xt).argmax(1).cpu().numpy() == yte).mean()
        return t, float(acc)
    return run


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="where to write the JSON figures")
    ap.add_argument("--workloads", default="W1,W2", help="comma-separated: W1,W2")
    ap.add_argument("--epochs", type=int, default=2,
                    help="N in (time(N+1) - time(1)) / N (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    ap.add_argument("--data", choices=["auto", "full", "sample"], default="auto",
                    help="Fashion-MNIST from disk (full), the shipped sample, or full with the "
                         "sample as fallback (auto)")
    ap.add_argument("--no-torch", action="store_true", help="measure fastnn only")
    ap.add_argument("--with-cpu", action="store_true",
                    help="also measure the fastnn CPU engine, for orientation")
    args = ap.parse_args(argv)

    ok, reason = fastnn._config.gpu_available()
    if not ok:
        sys.exit(f"gpu_bench: no GPU for fastnn: {reason}")
    xtr, ytr, xte, yte, src = load_data(args.data)
    d = (xtr, ytr, xte, yte)
    n_w1 = min(50000, len(xtr))
    # (workload, peer, factory(data, n_train) -> run(epochs))
    peers = []
    work = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    if "W1" in work:
        peers.append(("W1", "fastnn cuda (float64)", w1_fastnn))
        if not args.no_torch:
            peers.append(("W1", "torch cuda (float64)", w1_torch))
    if "W2" in work:
        peers.append(("W2", "fastnn cuda (float32)", lambda d, n: w2_fastnn(d)))
        if not args.no_torch:
            peers.append(("W2", "torch cuda (float32)", lambda d, n: w2_torch(d)))
        if args.with_cpu:
            peers.append(("W2", "fastnn cpu (float32)", lambda d, n: w2_fastnn(d, "cpu")))

    # warm-up on a small slice: kernel compilation, cuBLAS handles, the caching allocators
    small = (xtr[:2000], ytr[:2000], xte[:500], yte[:500])
    for _, _, factory in peers:
        factory(small, min(2000, len(xtr)))(1)

    dev = device_line()
    results = []
    for wl, name, factory in peers:
        per, setup, acc, raw = marginal(factory(d, n_w1), args.epochs, args.rounds)
        results.append({"workload": wl, "peer": name, "seconds_per_epoch": per,
                        "setup_seconds": setup, "test_accuracy": acc,
                        "epochs_after": args.epochs + 1,
                        "raw": [{"t_1": a, "t_n_plus_1": b, "accuracy": c} for a, b, c in raw]})
        print(f"  measured {wl} {name}: {per:.3f} s/epoch", file=sys.stderr)

    print(f"device: {dev}")
    print(f"data:   {src}; W1 trains on {n_w1} images, W2 on {len(xtr)}; test {len(xte)}")
    print(f"N = {args.epochs} (per epoch = (t(N+1) - t(1)) / N), median of {args.rounds} rounds")
    print()
    print(f"| workload | peer | s/epoch | set-up s | test acc after {args.epochs + 1} "
          f"| torch / this |")
    print("|---|---|---|---|---|---|")
    for r in results:
        torch_r = next((x for x in results if x["workload"] == r["workload"]
                        and x["peer"].startswith("torch")), None)
        ratio = (f"{torch_r['seconds_per_epoch'] / r['seconds_per_epoch']:.2f}"
                 if torch_r else "")
        print(f"| {r['workload']} | {r['peer']} | {r['seconds_per_epoch']:.3f} | "
              f"{r['setup_seconds']:.2f} | {100 * r['test_accuracy']:.1f} % | {ratio} |")
    payload = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv),
               "device": dev, "versions": versions(), "data": src, "n_train_w1": n_w1,
               "epochs": args.epochs, "rounds": args.rounds, "results": results,
               "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(payload, fh, indent=2)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
