"""Benchmark helpers and the report: ``python -m fastnn.bench report results.json``.

The benchmarks themselves live in the source tree's ``bench/`` folder (pytest-benchmark, see
``bench/README.md``); this module holds what they share with the report and the command line:

    python -m fastnn.bench run [--quick]       # pytest bench/ --benchmark-only; the JSON in
                                               # .benchmarks/fastnn/, a line appended to
                                               # bench/results/history.jsonl, README's tables
    python -m fastnn.bench report results.json [--out table.md]   # or --run LABEL
    python -m fastnn.bench compare [RUN]       # against bench/results/baseline-<machine>.json
    python -m fastnn.bench promote RUN.json    # RUN.json becomes the machine's baseline
    python -m fastnn.bench readme | history | append RUN.json

(the history, the baselines and the README's tables: ``fastnn/_bench_history.py``)

- ``training_flops`` / ``forward_flops``: the FLOP count of a workload, as BENCHMARKS.md
  defines it (per example and layer n_in -> n_out: forward 2 n_in n_out, backward 4 n_in n_out
  except 2 n_in n_out for the first layer, whose delta to the input is never needed; plus the
  update, 2 n_in n_out per mini-batch).
- ``gemm_rate``: the FLOP/s of numpy's 2048x2048 ``a @ b``, the machine's limit.
- ``machine_info`` / ``machine_line``: CPU, cores, numpy's BLAS, package versions.
- ``cpu_times`` / ``steal_fraction``: the share of the CPUs' time a hypervisor gave to others
  over an interval (Linux's "steal"), recorded for the session and for each benchmark.
- ``report``: a ``--benchmark-json`` file as Markdown tables, one per workload.
"""
import argparse
import datetime
import math
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import time

import numpy as np

__all__ = ["training_flops", "forward_flops", "gemm_rate", "machine_info", "machine_line",
           "report", "main"]

# the peers, in the order of the ratio columns; every other label is one of fastnn's rows
PEER_ORDER = ("loop", "numpy", "numpy-f32", "torch", "sklearn", "keras")
WORKLOAD_ORDER = ("W1", "W2", "W3", "W4")


# ---------------------------------------------------------------------------------------------
# FLOPs and the limit

def training_flops(sizes, n, batch):
    """Return the FLOPs of one training epoch of ``n`` examples in mini-batches of ``batch``.

    Per example and layer ``n_in -> n_out``: forward ``2 n_in n_out``, backward
    ``4 n_in n_out`` (``2 n_in n_out`` for the first layer: no delta to the input), and per
    mini-batch the update ``2 n_in n_out``.  Biases and activations are not counted.
    """
    pairs = list(zip(sizes[:-1], sizes[1:]))
    per_example = 0
    for l, (n_in, n_out) in enumerate(pairs):
        per_example += 2 * n_in * n_out + (2 if l == 0 else 4) * n_in * n_out
    n_batches = -(-int(n) // int(batch))
    update = 2 * sum(n_in * n_out for n_in, n_out in pairs)
    return int(n) * per_example + n_batches * update


def forward_flops(sizes, n):
    """Return the FLOPs of the forward pass of ``n`` examples: ``2 n_in n_out`` per layer."""
    return int(n) * sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))


def gemm_rate(dtype, n=2048, repeats=3, threads=None, bursts=1, pause_s=1.0):
    """Return ``(best, median)`` FLOP/s of numpy's ``a @ b`` on ``n x n`` matrices of ``dtype``.

    One untimed warm-up product first, then ``bursts`` runs of ``repeats`` timed products,
    ``pause_s`` seconds apart: on a shared machine another process can hold a core through
    one burst, and a limit from that burst alone would be too low.  ``threads`` limits numpy's
    BLAS through threadpoolctl (None: the BLAS default, all the cores it may use); returns
    None when threadpoolctl is missing and a limit was asked for.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    flops = 2.0 * n ** 3

    def measure():
        a @ b
        times = []
        for k in range(max(1, bursts)):
            if k:
                time.sleep(pause_s)
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - t0)
        return flops / min(times), flops / statistics.median(times)

    if threads is None:
        return measure()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    with threadpool_limits(limits=int(threads), user_api="blas"):
        return measure()


# ---------------------------------------------------------------------------------------------
# the machine

def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def _dist_version(name):
    try:
        from importlib.metadata import version, PackageNotFoundError
    except ImportError:  # pragma: no cover
        return None
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _numpy_blas():
    """numpy's build-time BLAS as one line, e.g. 'scipy-openblas 0.3.31 (... Haswell ...)'."""
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        line = "%s %s" % (blas.get("name", "?"), blas.get("version", ""))
        extra = blas.get("openblas configuration")
        if extra:
            line += " [%s]" % " ".join(str(extra).split())
        return line.strip()
    except Exception:  # older numpy: no mode='dicts'
        return "unknown"


def _blas_runtime():
    """The BLAS libraries loaded now (threadpoolctl), one short string each."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    out = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        out.append("%s %s, %s kernels, %s threads (%s)" % (
            lib.get("internal_api", "?"), lib.get("version", "?"),
            lib.get("architecture", "?"), lib.get("num_threads", "?"),
            os.path.basename(lib.get("filepath", ""))))
    return out


def machine_info():
    """Return a JSON-able dict describing this machine and the packages the benchmarks use."""
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        from fastnn._config import _cpu_quota
        quota = _cpu_quota()
    except Exception:
        quota = None
    try:
        from fastnn._config import show_config
        fastnn_cfg = show_config(print_=False)
    except Exception as e:
        fastnn_cfg = {"error": "%s: %s" % (type(e).__name__, e)}
    versions = {"python": platform.python_version()}
    for dist in ("fastnn", "numpy", "scipy", "torch", "scikit-learn", "tensorflow",
                 "tensorflow-cpu", "keras", "pytest-benchmark", "threadpoolctl"):
        versions[dist] = _dist_version(dist)
    if not versions["fastnn"]:
        try:
            from fastnn._version import __version__
            versions["fastnn"] = __version__
        except ImportError:
            pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "hostname": socket.gethostname(),
        "cpu_model": model.group(1).strip() if model else platform.processor() or "unknown",
        "cpus_online": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_quota": quota,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "mem_total_gib": round(int(mem.group(1)) / 2 ** 20, 1) if mem else None,
        "platform": platform.platform(),
        "numpy_blas": _numpy_blas(),
        "blas_runtime": _blas_runtime(),
        "fastnn_config": fastnn_cfg,
        "versions": versions,
        "loadavg": list(load) if load else None,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def cpu_times():
    """(all, steal): the jiffies of every CPU together so far, from /proc/stat's "cpu" line,
    and those of them a hypervisor gave to other guests; None where there is no such line."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (guest and guest_nice are inside user/nice)
    vals = [int(x) for x in fields[1:9]]
    return sum(vals), vals[7]


def steal_fraction(start, end):
    """The share of the CPUs' time stolen between two ``cpu_times()`` readings, or None."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    return (end[1] - start[1]) / (end[0] - start[0])


def machine_line(info):
    """Return the one-paragraph machine line of the report from ``machine_info()``'s dict."""
    if not info:
        return "Machine: not recorded in this file."
    v = info.get("versions", {})
    simd = ", ".join(x for x, on in (("AVX2", info.get("avx2")),
                                     ("AVX-512", info.get("avx512f"))) if on)
    cores = "%s CPUs" % info.get("cpus_usable")
    if info.get("cpus_online") != info.get("cpus_usable"):
        cores += " usable of %s" % info.get("cpus_online")
    if info.get("cpu_quota"):
        cores += ", quota %s" % info["cpu_quota"]
    parts = ["%s (%s%s), %s GiB" % (info.get("cpu_model"), cores,
                                    ", " + simd if simd else "", info.get("mem_total_gib"))]
    parts.append("numpy %s, BLAS %s" % (v.get("numpy"), info.get("numpy_blas")))
    rt = info.get("blas_runtime") or []
    if rt:
        parts.append("BLAS at run time: " + "; ".join(rt))
    cfg = info.get("fastnn_config") or {}
    fastnn = "fastnn %s" % v.get("fastnn")
    if "openmp" in cfg:
        fastnn += " (OpenMP %s, %s threads by default, engine BLAS %s, %s)" % (
            "on" if cfg.get("openmp") else "OFF", cfg.get("threads"), cfg.get("blas"),
            cfg.get("compile_args") or "default flags")
    parts.append(fastnn)
    peers = []
    for name, dist in (("torch", "torch"), ("scikit-learn", "scikit-learn"),
                       ("tensorflow", "tensorflow"), ("tensorflow-cpu", "tensorflow-cpu"),
                       ("keras", "keras")):
        if v.get(dist):
            peers.append("%s %s" % (name, v[dist]))
    parts.append(", ".join(peers) if peers else "no peer libraries installed")
    parts.append("Python %s, %s" % (v.get("python"), info.get("platform")))
    if info.get("loadavg"):
        parts.append("load average at start %.2f" % info["loadavg"][0])
    if info.get("steal_fraction") is not None:
        parts.append("CPU time the host gave to others (steal) during the run %.1f %%"
                     % (100 * info["steal_fraction"]))
    if info.get("date"):
        parts.append(info["date"])
    return "Machine: " + "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------
# the report

def _fmt_s(s):
    if s is None or not math.isfinite(s):
        return "n/a"
    if s >= 100:
        return "%.0f" % s
    if s >= 1:
        return "%.2f" % s
    if s >= 0.01:
        return "%.3f" % s
    return "%.2g" % s


def _fmt_ratio(peer_s, fast_s):
    """'3.4x faster' when fastnn takes less time than the peer, else '0.80x (1.25x slower)'."""
    if not peer_s or not fast_s:
        return "n/a"
    r = peer_s / fast_s
    if r >= 1.0:
        return "**%.1fx faster**" % r if r >= 10 else "**%.2fx faster**" % r
    return "%.2fx (%.2fx slower)" % (r, 1.0 / r)


def _fmt_pct(x):
    if x is None or not math.isfinite(x):
        return "n/a"
    return "%.1f %%" % (100 * x) if x < 0.995 else "%.0f %%" % (100 * x)


def _fmt_acc(x):
    return "n/a" if x is None else "%.1f %%" % (100 * x)


def _rows(data):
    """Benchmarks of a --benchmark-json dict as flat dicts, with the median seconds."""
    rows = []
    for b in data.get("benchmarks", []):
        info = dict(b.get("extra_info") or {})
        stats = b.get("stats") or {}
        median = stats.get("median")
        if median is None:
            median = info.get("seconds_median")
        info.setdefault("workload", b.get("group"))
        info["group"] = b.get("group")
        info.setdefault("impl", b.get("param") or b.get("name"))
        info["name"] = b.get("name")
        info["median_s"] = median
        info["rounds"] = stats.get("rounds")
        info["iqr_s"] = stats.get("iqr")
        if info.get("limit_s") and median:
            info["fraction"] = info["limit_s"] / median
        else:
            info["fraction"] = info.get("fraction_of_limit")
        rows.append(info)
    return rows


def _section(row):
    """The table a row of _rows belongs in: its workload's, or, for a benchmark of another
    group on a workload's network (the alternated types and the busy machine name W1 or W2
    as their workload), its group's."""
    g, w = row.get("group"), row.get("workload")
    return w if g in (None, w) else g


def _sort_key(row):
    impl = row.get("impl", "")
    if impl.startswith("fastnn"):
        return (0, impl)
    try:
        return (1, "%02d" % PEER_ORDER.index(impl))
    except ValueError:
        return (2, impl)


def _workload_table(wid, rows, out):
    rows = sorted(rows, key=_sort_key)
    head = rows[0]
    unit = head.get("time_unit", "epoch")
    out.append("## %s: %s" % (wid, head.get("title", "")))
    out.append("")
    desc = head.get("description")
    if desc:
        out.append(desc)
        out.append("")
    gf = head.get("flops")
    if gf:
        line = "Work per %s: %.3g GFLOP" % (unit, gf / 1e9)
        if head.get("flops_eval") and head.get("flops_train"):
            line += " (training %.3g + evaluation %.3g)" % (head["flops_train"] / 1e9,
                                                           head["flops_eval"] / 1e9)
        limits = sorted({(r.get("dtype"), r.get("limit_s"), r.get("gemm_flops_per_s"))
                         for r in rows if r.get("limit_s")}, key=str)
        if limits:
            line += "; the limit: " + ", ".join(
                "%s %s s (GEMM %.0f GFLOP/s)" % (dt, _fmt_s(ls), g / 1e9) for dt, ls, g in limits)
        out.append(line + ".")
        out.append("")
    peers = [p for p in PEER_ORDER if any(r.get("impl") == p for r in rows)]
    peers += sorted({r.get("impl") for r in rows
                     if not r.get("impl", "").startswith("fastnn") and r.get("impl") not in peers})
    peer_s = {r["impl"]: r.get("median_s") for r in rows if r.get("impl") in peers}
    cols = ["implementation", "dtype", "threads", "s per %s (median)" % unit]
    cols += ["vs %s" % p for p in peers]
    cols += ["of the limit", "accuracy", "set-up s"]
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "|".join(["---"] * len(cols)) + "|")
    fast = [r for r in rows if r.get("impl", "").startswith("fastnn")]
    best = min(fast, key=lambda r: r.get("median_s") or float("inf")) if fast else None
    for r in rows:
        name = r.get("impl", "?")
        if r is best:
            name = "**%s**" % name
        cells = [name, str(r.get("dtype", "")), str(r.get("threads", "")),
                 _fmt_s(r.get("median_s"))]
        for p in peers:
            if r.get("impl", "").startswith("fastnn"):
                cells.append(_fmt_ratio(peer_s.get(p), r.get("median_s")))
            else:
                cells.append("")
        acc = _fmt_acc(r.get("accuracy"))
        if r.get("epochs_trained"):
            acc += " (%s ep.)" % r["epochs_trained"]
        cells += [_fmt_pct(r.get("fraction")), acc,
                  _fmt_s(r.get("setup_s")) if r.get("setup_s") is not None else ""]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    notes = []
    if best is not None:
        notes.append("Fastest fastnn row (bold): %s, %s s per %s." % (
            best.get("impl"), _fmt_s(best.get("median_s")), unit))
    for r in fast:
        bits = []
        if r.get("marginal_epoch_s") is not None:
            bits.append("`Network.SGD` on Nielsen's list, 1 epoch: %s s (list conversion "
                        "included); marginal epoch (T(1+N) - T(1))/N: %s s" % (
                            _fmt_s(r.get("api_call_s")), _fmt_s(r["marginal_epoch_s"])))
        if r.get("shuffle_s") is not None:
            bits.append("drawing the book's `random.shuffle` order in Python: %s s of each "
                        "epoch" % _fmt_s(r["shuffle_s"]))
        if bits:
            notes.append("%s: %s." % (r["impl"], "; ".join(bits)))
    for r in rows:
        if r.get("notes"):
            notes.append("%s: %s" % (r["impl"], r["notes"]))
    if notes:
        out += ["- " + n for n in notes]
        out.append("")


def _thread_scaling(rows, out):
    lines = []
    by = {(r.get("workload"), r.get("impl")): r for r in rows}
    for wid in WORKLOAD_ORDER:
        for dt in ("f32", "f64"):
            one = by.get((wid, "fastnn-%s-1t" % dt))
            two = by.get((wid, "fastnn-%s-2t" % dt))
            if one and two and one.get("median_s") and two.get("median_s"):
                s = one["median_s"] / two["median_s"]
                lines.append("| %s | %s | %s | %s | %.2fx |" % (
                    wid, one.get("dtype"), _fmt_s(one["median_s"]), _fmt_s(two["median_s"]), s))
    if lines:
        out.append("## Thread scaling (fastnn, 2 threads vs 1)")
        out.append("")
        out.append("| workload | dtype | 1 thread s | 2 threads s | speed-up |")
        out.append("|---|---|---|---|---|")
        out += lines
        out.append("")
        out.append("The issue asks for at least 1.7x on W3 (the wide workload).")
        out.append("")


def _memory_table(rows, out):
    if not rows:
        return
    out.append("## Memory: peak RSS of training (fresh process each)")
    out.append("")
    out.append("| workload | implementation | input | data MiB | peak above baseline MiB "
               "(VmHWM) | ru_maxrss - baseline MiB | baseline RSS MiB | peak / baseline |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r.get("case", "")):
        def mib(k):
            v = r.get(k)
            return "n/a" if v is None else "%.1f" % v
        ratio = r.get("peak_over_baseline")
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r.get("mem_workload", r.get("workload")), r.get("mem_impl", r.get("impl")),
            r.get("input", ""), mib("data_mib"), mib("hwm_above_baseline_mib"),
            mib("maxrss_above_baseline_mib"), mib("baseline_rss_mib"),
            "n/a" if ratio is None else "%.3f" % ratio))
    out.append("")
    out.append("Baseline: the process's RSS after loading and converting the data, before "
               "training (for the book's session, W1 with Nielsen's lists: the lists alone, "
               "before `import network`). VmHWM is reset (`/proc/self/clear_refs`) at the "
               "baseline, so its column is the training's own peak; ru_maxrss also holds any "
               "peak from loading.")
    out.append("")


def _types_table(rows, out):
    """bench/test_types.py: W1 in float32 and float64 alternated round by round."""
    out.append("## W1 float32 against float64, alternated round by round")
    out.append("")
    out.append("| threads | float32 s | float64 s | float64 / float32 | median of the rounds' "
               "ratios | rounds |")
    out.append("|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r.get("threads") or 0):
        ratio = r.get("f64_over_f32")
        paired = r.get("f64_over_f32_paired")
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            r.get("threads", "?"), _fmt_s(r.get("seconds_f32")), _fmt_s(r.get("seconds_f64")),
            "%.2fx" % ratio if ratio else "n/a", "%.2fx" % paired if paired else "n/a",
            r.get("rounds", "?")))
    out.append("")


def _headline(rows, out):
    by_w = {}
    for r in rows:
        by_w.setdefault(r.get("workload"), []).append(r)
    wanted = {"W1": ("loop", "numpy", "torch"), "W2": ("torch", "keras"), "W3": ("torch",),
              "W4": ("torch", "keras")}
    lines, slower = [], []
    for wid in WORKLOAD_ORDER:
        rs = by_w.get(wid)
        if not rs:
            continue
        fast = [r for r in rs if r.get("impl", "").startswith("fastnn") and r.get("median_s")]
        if not fast:
            continue
        best = min(fast, key=lambda r: r["median_s"])
        peer = {r["impl"]: r for r in rs if not r.get("impl", "").startswith("fastnn")}
        bits = []
        for p in wanted.get(wid, ()):
            if p in peer and peer[p].get("median_s"):
                bits.append("vs %s %s" % (p, _fmt_ratio(peer[p]["median_s"], best["median_s"])))
        lines.append("- %s: fastnn (%s) %s s, %s of the limit; %s" % (
            wid, best["impl"], _fmt_s(best["median_s"]), _fmt_pct(best.get("fraction")),
            ", ".join(bits) if bits else "no peer measured"))
        for p, pr in peer.items():
            if pr.get("median_s") and pr["median_s"] < best["median_s"]:
                slower.append("- %s: fastnn's fastest row (%s, %s s) is slower than %s (%s s)." % (
                    wid, best["impl"], _fmt_s(best["median_s"]), p, _fmt_s(pr["median_s"])))
    if lines:
        out.append("## Headline")
        out.append("")
        out += lines
        out.append("")
        if slower:
            out.append("Where fastnn is slower than a peer:")
            out.append("")
            out += slower
        else:
            out.append("fastnn's fastest row beats every peer measured in this run.")
        out.append("")


def report(data):
    """Return the Markdown report of a ``--benchmark-json`` dict (already loaded)."""
    mi = (data.get("machine_info") or {}).get("fastnn_bench")
    rows = _rows(data)
    out = ["# fastnn benchmarks", ""]
    out.append(machine_line(mi))
    out.append("")
    if mi and mi.get("quick"):
        out.append("**QUICK smoke sizes (FASTNN_BENCH_QUICK=1): these figures are not "
                   "benchmarks.**")
        out.append("")
    ci = data.get("commit_info") or {}
    if ci.get("id"):
        out.append("Commit %s%s, %s." % (ci["id"][:12], " (dirty)" if ci.get("dirty") else "",
                                        data.get("datetime", "")))
        out.append("")
    train = [r for r in rows if _section(r) in WORKLOAD_ORDER]
    _headline(train, out)
    for wid in WORKLOAD_ORDER:
        rs = [r for r in train if r.get("workload") == wid]
        if rs:
            _workload_table(wid, rs, out)
    others = sorted({_section(r) for r in rows} - set(WORKLOAD_ORDER) - {"memory"}, key=str)
    for sec in others:
        rs = [r for r in rows if _section(r) == sec]
        if sec == "types":
            _types_table(rs, out)
        else:
            _workload_table(str(sec), rs, out)
    _thread_scaling(train, out)
    _memory_table([r for r in rows if r.get("workload") == "memory"], out)
    out.append("Ratios are the peer's median time over fastnn's, from the same run: above 1 "
               "fastnn is faster. 'Of the limit' is (workload FLOPs / GEMM FLOP/s of the "
               "row's dtype) / median time. Peers not installed are skipped and absent.")
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# command line

def _repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _checkout():
    """The source checkout holding this fastnn (it has bench/), else the current folder."""
    root = _repo_root()
    return root if os.path.isdir(os.path.join(root, "bench")) else os.getcwd()


def _paths(args):
    root = _checkout()
    results = os.path.join(root, "bench", "results")
    return (getattr(args, "history", None) or os.path.join(results, "history.jsonl"),
            getattr(args, "readme", None) or os.path.join(root, "README.md"), results)


def _write_text(path, text):
    from fastnn import _bench_history as hist
    hist._atomic_write(path, text.encode("utf-8"))


def _cmd_report(args):
    from fastnn import _bench_history as hist
    if args.out:       # before anything runs; never over a file that is not a report
        from fastnn import _safeio
        _safeio.check_output_file(args.out, "--out", _safeio.starts_with(b"# fastnn "),
                                  "a fastnn benchmark report")
    if (args.results is None) == (args.run is None):
        raise ValueError("expected a results JSON or --run LABEL (one of the two), got %s" % (
            "both" if args.results else "neither"))
    if args.run:
        history, _, _ = _paths(args)
        data = hist.to_results(hist.find(hist.read_history(history), args.run, history))
    else:
        data = hist.load_results(args.results)
    text = report(data)
    if args.out:
        _write_text(args.out, text + "\n")
        print("wrote %s" % args.out, file=sys.stderr)
    print(text)
    return 0


def _cmd_append(args):
    from fastnn import _bench_history as hist
    history, _, _ = _paths(args)
    data = hist.load_results(args.results)
    label = args.label or re.sub(r"\.json$", "", os.path.basename(args.results))
    rec = hist.record(data, label, machine=args.machine, source=args.source, tree=args.tree,
                      command=args.command, note=args.note)
    n = hist.append(history, rec)
    print("appended %s to %s (run %d)" % (label, history, n), file=sys.stderr)
    return 0


def _cmd_readme(args):
    from fastnn import _bench_history as hist
    history, readme, _ = _paths(args)
    changed, filled, empty = hist.update_readme(readme, hist.read_history(history))
    print("%s %s: tables of %s%s" % ("updated" if changed else "unchanged", readme,
                                      ", ".join(filled) or "none",
                                      "; no run of %s yet" % ", ".join(empty) if empty else ""),
          file=sys.stderr)
    return 0


def _is_file_arg(arg):
    """A command-line run that names a JSON file rather than a label in the history."""
    return os.path.exists(arg) or arg.endswith(".json") or os.sep in arg


def _cmd_compare(args):
    from fastnn import _bench_history as hist
    history, _, results = _paths(args)
    loaded = []

    def records():     # the history, read once and only when a label needs it
        if not loaded:
            loaded.append(hist.read_history(history))
        return loaded[0]

    def get(arg, what):
        if _is_file_arg(arg):
            return hist.record(hist.load_results(arg, what), what), arg
        return hist.find(records(), arg, history), "history run %s" % arg

    if args.run:
        run, run_name = get(args.run, "run")
    else:
        shown = [r for r in records() if hist.for_readme(r)]
        if not shown:
            raise ValueError("history: %s has no full-size suite run to compare; name a run "
                             "(a JSON file or a label)" % history)
        run, run_name = shown[-1], "history run %s" % shown[-1]["label"]
    if args.baseline:
        base, base_name = get(args.baseline, "baseline")
    else:
        base_name = hist.baseline_path(results, args.machine or run["machine"])
        if not os.path.exists(base_name):
            raise ValueError("baseline: %s does not exist; make one with `python -m "
                             "fastnn.bench promote RUN.json`" % base_name)
        base = hist.record(hist.load_results(base_name, "baseline"), "baseline")
    print(hist.compare(base, run, base_name, run_name))
    return 0


def _cmd_promote(args):
    from fastnn import _bench_history as hist
    _, _, results = _paths(args)
    data = hist.load_results(args.run, "run")
    machine = args.machine or hist.machine_id((data.get("machine_info") or {}).get(
        "fastnn_bench"))
    dest = args.baseline or hist.baseline_path(results, machine)
    hist.promote(args.run, dest)
    print("promoted %s to the baseline %s" % (args.run, dest), file=sys.stderr)
    return 0


def _cmd_history(args):
    from fastnn import _bench_history as hist
    history, _, _ = _paths(args)
    for n, r in enumerate(hist.read_history(history), 1):
        ci = r.get("commit") or {}
        kind = r.get("source") or "?"
        if r.get("tree"):
            kind += "/" + r["tree"]
        groups = sorted({b.get("group") or "?" for b in r["benchmarks"]}, key=str)
        print("%3d  %-25s  %-36s  %-12s  %s%s  %s  %s%s" % (
            n, r.get("when") or "?", r["label"], r.get("machine"), (ci.get("id") or "?")[:10],
            "+" if ci.get("dirty") else " ", kind, ",".join(groups),
            "  QUICK" if r.get("quick") else ""))
    return 0


def _cmd_run(args, extra):
    from fastnn import _bench_history as hist
    root = _checkout()          # an installed fastnn runs the suite of the checkout it is in
    bench_dir = os.path.join(root, "bench")
    if not os.path.isdir(bench_dir):
        print("fastnn.bench run: no bench/ folder in %s; run it from a source checkout"
              % root, file=sys.stderr)
        return 2
    history, readme, results = _paths(args)
    machine = hist.check_name(args.machine or os.environ.get("FASTNN_BENCH_MACHINE") or
                              hist.machine_id(machine_info()), "--machine")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    label = hist.check_name(args.label or "%s-%s" % (stamp, machine), "--label")
    quick = args.quick or os.environ.get("FASTNN_BENCH_QUICK", "") not in ("", "0")
    # a smoke run goes into a history or README only when one is named
    to_history = not quick or bool(args.history)
    to_readme = to_history and not args.no_readme and (not quick or bool(args.readme))
    # before the suite's minutes: where the results go must take them
    if to_history:
        hist.check_appendable(history, label)
    if to_readme:
        hist.check_readme(readme)
    json_dir = args.json_dir or os.path.join(root, ".benchmarks", "fastnn")
    os.makedirs(json_dir, exist_ok=True)
    out = os.path.join(json_dir, label + ".json")
    if os.path.exists(out):      # never read an older run's file as this one's
        raise ValueError("--label: %s exists already; expected a new label" % out)
    env = dict(os.environ)
    if args.quick:
        env["FASTNN_BENCH_QUICK"] = "1"
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "pytest", bench_dir, "--benchmark-only",
           "--benchmark-json=" + out, "-rs", "-p", "no:cacheprovider"] + extra
    print("+ " + shlex.join(cmd), file=sys.stderr)
    rc = subprocess.call(cmd, cwd=root, env=env)
    if not os.path.exists(out):
        print("fastnn.bench run: pytest wrote no %s (exit %d)" % (out, rc), file=sys.stderr)
        return rc or 1
    data = hist.load_results(out, "run")
    print(report(data))
    print("wrote %s" % out, file=sys.stderr)
    command = "python -m fastnn.bench run " + shlex.join(args.argv)
    if to_history:
        rec = hist.record(data, label, machine=machine, command=command.rstrip(), exit_code=rc)
        n = hist.append(history, rec)
        print("appended %s to %s (run %d)" % (label, history, n), file=sys.stderr)
        if to_readme:
            _cmd_readme(args)
    else:
        print("a smoke run: not added to the history, README untouched", file=sys.stderr)
    baseline = hist.baseline_path(results, machine)
    if os.path.exists(baseline) and not quick:
        base = hist.record(hist.load_results(baseline, "baseline"), "baseline")
        print()
        print(hist.compare(base, hist.record(data, label, machine=machine), baseline, out))
    print("compare: python -m fastnn.bench compare %s\npromote to the baseline: python -m "
          "fastnn.bench promote %s" % (out, out), file=sys.stderr)
    return rc


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastnn.bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    hist_help = "the history file (default: bench/results/history.jsonl)"
    run = sub.add_parser("run", help="run bench/ with pytest, append the run to the history "
                                     "and regenerate the README's tables; arguments after -- "
                                     "go to pytest")
    run.add_argument("--quick", action="store_true",
                     help="FASTNN_BENCH_QUICK=1: smoke sizes (kept out of the history and the "
                          "README unless --history / --readme name one)")
    run.add_argument("--machine", help="the machine's name in the history and the baseline's "
                                       "file name (default: $FASTNN_BENCH_MACHINE, else from "
                                       "the CPU model and count, e.g. amd-epyc-2c)")
    run.add_argument("--label", help="the run's label in the history (default: UTC time and "
                                     "machine)")
    run.add_argument("--json-dir", help="where the run's JSON goes (default: .benchmarks/"
                                        "fastnn, git-ignored)")
    run.add_argument("--history", help=hist_help)
    run.add_argument("--readme", help="the README to regenerate (default: README.md)")
    run.add_argument("--no-readme", action="store_true", help="leave the README alone")
    r = sub.add_parser("report", help="a --benchmark-json file, or a run of the history, as "
                                      "Markdown tables")
    r.add_argument("results", nargs="?", help="the JSON written by pytest --benchmark-json")
    r.add_argument("--run", help="instead: the run with this label in the history")
    r.add_argument("--history", help=hist_help)
    r.add_argument("--out", help="also write the Markdown to this file")
    a = sub.add_parser("append", help="append a --benchmark-json file to the history")
    a.add_argument("results", help="the JSON written by pytest --benchmark-json")
    a.add_argument("--label", help="default: the file's name without .json")
    a.add_argument("--machine", help="default: from the CPU model and count in the file")
    a.add_argument("--source", default="suite",
                   help="'suite' (default: the README may show it) or what made the file, "
                        "e.g. before-after")
    a.add_argument("--tree", help="which tree of a before/after run: before or after")
    a.add_argument("--command", help="the command that made it (default: the one the "
                                     "suite's conftest recorded)")
    a.add_argument("--note", help="a note kept with the run")
    a.add_argument("--history", help=hist_help)
    rd = sub.add_parser("readme", help="regenerate the README's tables from the history")
    rd.add_argument("--history", help=hist_help)
    rd.add_argument("--readme", help="default: README.md")
    c = sub.add_parser("compare", help="a run against the machine's baseline, ratio per "
                                       "benchmark")
    c.add_argument("run", nargs="?", help="a --benchmark-json file or a label in the history "
                                          "(default: the history's newest full-size run)")
    c.add_argument("--baseline", help="a --benchmark-json file or a label in the history "
                                      "(default: bench/results/baseline-<the run's machine>"
                                      ".json)")
    c.add_argument("--machine", help="whose baseline (default: the run's machine)")
    c.add_argument("--history", help=hist_help)
    pr = sub.add_parser("promote", help="make a run's JSON the machine's baseline")
    pr.add_argument("run", help="a --benchmark-json file of a full-size run")
    pr.add_argument("--machine", help="default: from the CPU model and count in the file")
    pr.add_argument("--baseline", help="default: bench/results/baseline-<machine>.json")
    h = sub.add_parser("history", help="list the runs in the history")
    h.add_argument("--history", help=hist_help)
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    args = p.parse_args(argv)
    args.argv = argv[1:] + (["--"] + extra if extra else [])
    try:
        if args.cmd == "run":
            return _cmd_run(args, extra)
        return {"report": _cmd_report, "append": _cmd_append, "readme": _cmd_readme,
                "compare": _cmd_compare, "promote": _cmd_promote,
                "history": _cmd_history}[args.cmd](args)
    except ValueError as e:
        print("fastnn.bench %s: error: %s" % (args.cmd, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
