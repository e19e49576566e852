"""The benchmark history, the baselines and the README's tables (``python -m fastnn.bench``).

- The history, ``bench/results/history.jsonl``: one JSON object a line, one line per run of
  the suite (``record``), only ever appended (``append``), never rewritten.
- One baseline per machine, ``bench/results/baseline-<machine>.json``: a whole
  ``--benchmark-json`` file (``promote``), which ``compare`` holds a run against.
- The README's tables, each between ``<!-- bench:W1 -->`` and ``<!-- /bench -->``, from the
  latest full-size suite run of that workload in the history (``update_readme``).

Every error is a ValueError that names the file (or the argument) and what was expected.
"""
import datetime
import json
import math
import os
import re

from fastnn import bench

SCHEMA = 1
# a benchmark's statistics kept in the history (pytest-benchmark's names; data: the rounds)
STATS = ("median", "min", "max", "mean", "stddev", "iqr", "q1", "q3", "rounds", "iterations",
         "data")
# the peers each README table compares fastnn's rows with (others: every peer in the run)
README_PEERS = {"W1": ("loop", "numpy", "torch"), "W2": ("torch", "keras", "numpy"),
                "W3": ("torch", "numpy"), "W4": ("torch", "numpy", "keras")}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]*")
_START = re.compile(r"<!-- bench:([A-Za-z0-9_-]+) -->")
_END = "<!-- /bench -->"


# ---------------------------------------------------------------------------------------------
# reading

def _check_benchmarks(benches, bad, median_of, median_name):
    """The checks a results file and a history line share: a non-empty ``benchmarks`` list of
    objects, each with a 'name', a positive median (``median_of(b)``) and an object (or
    nothing) as extra_info; ``bad(why)`` makes the error."""
    if not isinstance(benches, list) or not benches:
        raise bad(f"expected a non-empty 'benchmarks' list, got {_short(benches)}")
    for i, b in enumerate(benches):
        if not isinstance(b, dict) or not isinstance(b.get("name"), str):
            raise bad(f"benchmarks[{i}]: expected an object with a 'name', got {_short(b)}")
        med = median_of(b)
        if isinstance(med, bool) or not isinstance(med, (int, float)) or not med > 0:
            raise bad(f"benchmarks[{i}] ({b['name']}): expected a positive {median_name}, "
                      f"got {_short(med)}")
        if not isinstance(b.get("extra_info") or {}, dict):
            raise bad(f"benchmarks[{i}] ({b['name']}): expected an object as extra_info, got "
                      f"{_short(b['extra_info'])}")


def check_results(data, where):
    """Raise ValueError (starting with ``where``) unless ``data`` has the form of a
    pytest-benchmark JSON: an object whose ``benchmarks`` list holds objects with a ``name``
    and a positive ``stats.median``."""
    def bad(why):
        return ValueError(f"{where}: not a pytest-benchmark JSON: {why}")
    if not isinstance(data, dict):
        raise bad(f"expected an object, got {type(data).__name__}")
    _check_benchmarks(
        data.get("benchmarks"), bad,
        lambda b: b["stats"].get("median") if isinstance(b.get("stats"), dict) else None,
        "stats.median")
    if not isinstance(data.get("machine_info") or {}, dict):
        raise bad(f"expected an object as machine_info, got {_short(data['machine_info'])}")


def _check_record(rec, where):
    """Raise ValueError (starting with ``where``) unless ``rec`` has the form of a history
    line: a 'label' and a non-empty 'benchmarks' list, each with a 'name' and a positive
    'median'."""
    def bad(why):
        return ValueError(f"{where}: not a history record: {why}")
    if not isinstance(rec, dict) or not isinstance(rec.get("label"), str):
        raise bad(f"expected an object with a 'label', got {_short(rec)}")
    _check_benchmarks(rec.get("benchmarks"), bad, lambda b: b.get("median"), "'median'")


def _short(x):
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def load_results(path, what="results"):
    """Return the dict of a ``--benchmark-json`` file; a missing file, or one that is not
    such JSON, is a ValueError naming ``what`` and the file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ValueError(f"{what}: {path} does not exist") from None
    except OSError as e:
        raise ValueError(f"{what}: cannot read {path} ({e.strerror})") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:       # JSONDecodeError is a ValueError
        raise ValueError(f"{what}: {path} is not JSON ({e})") from None
    check_results(data, f"{what}: {path}")
    return data


def read_history(path, missing_ok=False):
    """Return the records of the history ``path``, in file order; ValueError naming the file
    and the line when one is not a record (a missing file: [] if ``missing_ok``)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        if missing_ok:
            return []
        raise ValueError(f"history: {path} does not exist") from None
    except OSError as e:
        raise ValueError(f"history: cannot read {path} ({e.strerror})") from None
    records = []
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"history: {path}: line {n} is not JSON ({e})") from None
        _check_record(rec, f"history: {path}: line {n}")
        records.append(rec)
    return records


def find(records, label, path):
    """The record labelled ``label``; ValueError listing the newest labels if none is."""
    for rec in records:
        if rec["label"] == label:
            return rec
    known = ", ".join(r["label"] for r in records[-5:]) or "none"
    raise ValueError(f"history: {path} has no run labelled {label!r} (the newest: {known})")


# ---------------------------------------------------------------------------------------------
# records

def check_name(name, what):
    """A label or machine name: letters, digits and ``_.:+-``, no spaces or slashes."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{what}: expected letters, digits and _.:+- (starting with a letter "
                         f"or digit), got {name!r}")
    return name


def machine_id(info):
    """A short name of the machine from ``bench.machine_info()``'s dict: the CPU model and
    the usable CPUs, e.g. 'amd-epyc-2c'."""
    info = info or {}
    model = str(info.get("cpu_model") or "unknown")
    model = re.sub(r"\((?:R|TM)\)|\bCPU\b|\bProcessor\b|\b\d+-Core\b|@.*$", " ", model,
                   flags=re.I)
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") or "unknown-cpu"
    return "%s-%sc" % (slug, info.get("cpus_usable") or "x")


def _finite(x):
    """``x`` with every NaN and infinity replaced by None (strict JSON for every reader)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def record(data, label, machine=None, source="suite", tree=None, command=None, note=None,
           exit_code=None, appended=None):
    """The history line (a dict) of a ``--benchmark-json`` dict.

    ``source`` is 'suite' for a run of bench/ (the README's tables use only these) or what
    else made the JSON (e.g. 'before-after', with ``tree`` 'before' or 'after');
    ``command`` defaults to the one the suite's conftest records, ``exit_code`` is pytest's.
    """
    check_results(data, f"record {label!r}")
    check_name(label, "label")
    info = (data.get("machine_info") or {}).get("fastnn_bench") or {}
    session = data.get("fastnn_session") or {}
    ci = data.get("commit_info") or {}
    benches = []
    quick = bool(info.get("quick"))
    for b in data["benchmarks"]:
        stats = b.get("stats") or {}
        extra = b.get("extra_info") or {}
        quick = quick or bool(extra.get("quick"))
        row = {"name": b["name"], "group": b.get("group"), "param": b.get("param")}
        row.update((k, stats[k]) for k in STATS if k in stats)
        row["extra_info"] = extra
        benches.append(row)
    rec = {
        "schema": SCHEMA,
        "label": label,
        "when": data.get("datetime"),
        "appended": appended or datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "source": source,
        "tree": tree,
        "machine": check_name(machine, "machine") if machine else machine_id(info),
        "machine_line": bench.machine_line(info or None),
        "quick": quick,
        "commit": {k: ci.get(k) for k in ("id", "dirty", "branch", "time")},
        "command": command or session.get("command"),
        "pytest_command": session.get("command"),
        "exit_code": exit_code,
        "outcomes": {k: session[k] for k in ("passed", "failed", "skipped") if k in session},
        "note": note,
        "pytest_benchmark": data.get("version"),
        "machine_info": info,
        "benchmarks": benches,        # last: the head of a line reads as a summary
    }
    return _finite(rec)


def to_results(rec):
    """A record as the ``--benchmark-json`` dict that ``bench.report`` reads (the same tables
    as from the run's own file)."""
    return {
        "machine_info": {"fastnn_bench": rec.get("machine_info") or None},
        "commit_info": rec.get("commit") or {},
        "datetime": rec.get("when"),
        "version": rec.get("pytest_benchmark"),
        "benchmarks": [{"name": b["name"], "group": b.get("group"), "param": b.get("param"),
                        "extra_info": b.get("extra_info") or {},
                        "stats": {k: b[k] for k in STATS if k in b}}
                       for b in rec["benchmarks"]],
    }


def check_appendable(path, label):
    """Raise ValueError unless a line labelled ``label`` can be appended to the history
    ``path`` (a file, or a name in an existing folder) without touching what is there: every
    line a record, the last one ended by its newline, ``label`` not yet used.  Returns the
    records."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"history: {path} is a folder, expected a .jsonl file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"history: the folder {folder} does not exist")
    records = read_history(path, missing_ok=True)
    if os.path.exists(path):
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    raise ValueError(f"history: {path}: the last line has no newline (an "
                                     f"append cut short, or an edit); fastnn never rewrites "
                                     f"the history, so mend that line by hand")
    if any(r["label"] == label for r in records):
        raise ValueError(f"history: {path} already has a run labelled {label!r}; expected a "
                         f"new label")
    return records


def append(path, rec):
    """Append ``rec`` to the history ``path`` (made if missing) as one line: one write on a
    descriptor opened O_APPEND, then fsync.  What is there is never rewritten: when
    ``check_appendable`` fails, nothing is written.  Returns the number of runs now in it."""
    _check_record(rec, "the new line")
    path = os.fspath(path)
    records = check_appendable(path, rec["label"])
    line = (json.dumps(rec, separators=(",", ":"), allow_nan=False) + "\n").encode()
    made = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        done = 0
        while done < len(line):
            done += os.write(fd, line[done:])
        os.fsync(fd)
    finally:
        os.close(fd)
    if made:    # the new name itself must survive a crash
        _fsync_folder(path)
    return len(records) + 1


def _fsync_folder(path):
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def for_readme(rec):
    """Whether the README may show ``rec``: a full-size suite run that pytest passed."""
    return (rec.get("source", "suite") == "suite" and not rec.get("quick")
            and rec.get("exit_code") in (0, None))


def latest(records, workload):
    """The newest record (by its run's time, then by file order) that the README may show
    and that measured ``workload``; None if there is none."""
    best = None
    for i, rec in enumerate(records):
        if for_readme(rec) and any(b.get("group") == workload for b in rec["benchmarks"]):
            key = (rec.get("when") or "", i)
            if best is None or key >= best[0]:
                best = (key, rec)
    return best[1] if best else None


# ---------------------------------------------------------------------------------------------
# the README's tables

def _impl_name(impl):
    m = re.fullmatch(r"(fastnn|torch)-f?(32|64)?-?(\d+)t", impl)
    if m:
        dtype = " float%s," % m.group(2) if m.group(2) else ""
        n = m.group(3)
        return "%s%s %s thread%s" % (m.group(1), dtype, n, "" if n == "1" else "s")
    return "fastnn.Sequential" if impl == "fastnn-keras" else impl


def _ratio(peer_s, fast_s):
    """Like the report's ratio, without the bold: '45.0x faster', '0.80x (1.25x slower)'."""
    if not peer_s or not fast_s:
        return "n/a"
    r = peer_s / fast_s
    if r >= 1.0:
        return ("%.1fx faster" if r >= 10 else "%.2fx faster") % r
    return "%.2fx (%.2fx slower)" % (r, 1.0 / r)


def _gflops(flops, s):
    if not flops or not s:
        return "n/a"
    g = flops / s / 1e9
    return "%.0f" % g if g >= 1000 else "%.3g" % g


def readme_table(rec, workload):
    """The Markdown of one workload of ``rec`` for the README: a line naming the run, the
    machine and the limit, the table (fastnn's rows fastest first, then the peers), and the
    thread scaling."""
    # the workload's own benchmarks, not another group's that ran on its network
    rows = [r for r in bench._rows(to_results(rec)) if bench._section(r) == workload]
    if not rows:
        raise ValueError(f"run {rec['label']!r} has no benchmark of {workload}")
    # a peer timed on fewer images a round (W5/W6's numpy oracle) is scaled to fastnn's round
    ref = next((r["images"] for r in rows if str(r.get("impl", "")).startswith("fastnn")
                and r.get("images")), None)
    for i, r in enumerate(rows):
        if ref and r.get("images") and r["images"] != ref and r.get("median_s"):
            k = ref / r["images"]
            rows[i] = dict(r, median_s=r["median_s"] * k,
                           flops=r["flops"] * k if r.get("flops") else r.get("flops"),
                           impl="%s (timed on %s images)" % (r.get("impl"), r["images"]))
    # one limit per dtype: the best GEMM rate any benchmark of the run measured (a probe
    # taken while the shared machine was busy reads low and would flatter its row), applied
    # to every row's FLOPs
    best = {}
    for r in rows:
        if r.get("gemm_flops_per_s"):
            best[r.get("dtype")] = max(best.get(r.get("dtype"), 0), r["gemm_flops_per_s"])
    for i, r in enumerate(rows):
        g = best.get(r.get("dtype"))
        if g and r.get("flops") and r.get("median_s"):
            rows[i] = dict(r, fraction=r["flops"] / r["median_s"] / g)
    fast = sorted((r for r in rows if str(r.get("impl", "")).startswith("fastnn")),
                  key=lambda r: (r.get("median_s") or math.inf, r.get("impl")))
    peers = sorted((r for r in rows if not str(r.get("impl", "")).startswith("fastnn")),
                   key=bench._sort_key)
    peer_s = {r["impl"]: r.get("median_s") for r in peers}
    wanted = README_PEERS.get(workload, tuple(peer_s))
    cols = [p for p in wanted if p in peer_s]
    head = rows[0]
    unit = head.get("time_unit")
    if not unit:
        unit = "round of %s images" % format(head["images"], ",") if head.get("images") \
            else "round"

    info = rec.get("machine_info") or {}
    ci = rec.get("commit") or {}
    when = (rec.get("when") or "?")[:16].replace("T", " ")
    text = "Run `%s`, %s UTC, commit %s%s; %s, %s CPUs" % (
        rec["label"], when, (ci.get("id") or "?")[:12], " (dirty)" if ci.get("dirty") else "",
        info.get("cpu_model", "?"), info.get("cpus_usable", "?"))
    if info.get("loadavg"):
        text += ", load average %.2f at the start" % info["loadavg"][0]
    v = info.get("versions") or {}
    libs = ["%s %s" % (d, v[d]) for d in ("torch", "scikit-learn", "tensorflow",
                                          "tensorflow-cpu", "keras") if v.get(d)]
    if libs:
        text += "; " + ", ".join(libs)
    lim = []
    for dt in sorted(best, key=str):
        r0 = next((r for r in fast + peers if r.get("dtype") == dt and r.get("flops")), None)
        if r0:
            lim.append("%s %s s (%.0f GFLOP/s)" % (dt, bench._fmt_s(r0["flops"] / best[dt]),
                                                  best[dt] / 1e9))
    if lim:
        text += (". Limit (FLOPs / numpy's GEMM rate, the best of the run's probes): "
                 + ", ".join(lim))
    out = [text + ".", ""]
    header = ["implementation", "s per %s" % unit] + ["vs %s" % p for p in cols] + [
        "GFLOP/s", "of the limit", "accuracy"]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    for r in fast + peers:
        is_fast = r in fast
        cells = [_impl_name(str(r.get("impl"))), bench._fmt_s(r.get("median_s"))]
        cells += [_ratio(peer_s[p], r.get("median_s")) if is_fast else "" for p in cols]
        acc = bench._fmt_acc(r.get("accuracy"))
        if r.get("epochs_trained"):
            acc += " (%s ep.)" % r["epochs_trained"]
        cells += [_gflops(r.get("flops"), r.get("median_s")), bench._fmt_pct(r.get("fraction")),
                  acc]
        out.append("| " + " | ".join(cells) + " |")
    by = {r.get("impl"): r for r in fast}
    scaling = []
    for dt in ("32", "64"):
        one, two = by.get("fastnn-f%s-1t" % dt), by.get("fastnn-f%s-2t" % dt)
        if one and two and one.get("median_s") and two.get("median_s"):
            scaling.append("float%s %.2fx" % (dt, one["median_s"] / two["median_s"]))
    if scaling:
        out += ["", "2 threads over 1: %s." % ", ".join(scaling)]
    steal = ["%s %.1f %%" % (_impl_name(str(r.get("impl"))), 100 * r["steal_fraction"])
             for r in fast if r.get("steal_fraction") is not None]
    if steal:
        out += ["", "CPU time the host gave to other guests (steal) during the rounds: %s."
                % ", ".join(steal)]
    return "\n".join(out)


def render_readme(text, records, name):
    """``text`` with each block between ``<!-- bench:W -->`` and ``<!-- /bench -->``
    replaced by W's table from the latest run in ``records``.  Returns (new text, the
    workloads filled, the workloads without a run); ValueError naming ``name`` and the line
    for a marker out of place."""
    out, filled, empty = [], [], []
    opened = None
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        s = line.strip()
        m = _START.fullmatch(s)
        if m:
            if opened:
                raise ValueError(f"{name}: line {n}: {s} inside the block opened at line "
                                 f"{opened[0]}; expected {_END} first")
            opened = (n, m.group(1))
            out.append(line)
        elif s == _END:
            if not opened:
                raise ValueError(f"{name}: line {n}: {_END} without a <!-- bench:NAME --> "
                                 f"before it")
            wid = opened[1]
            rec = latest(records, wid)
            if rec is None:
                body = ("No full-size run of %s in the history yet (`python -m fastnn.bench "
                        "run`)." % wid)
                empty.append(wid)
            else:
                body = readme_table(rec, wid)
                filled.append(wid)
            out.append("\n" + body + "\n\n")
            out.append(line)
            opened = None
        elif not opened:
            out.append(line)
    if opened:
        raise ValueError(f"{name}: line {opened[0]}: <!-- bench:{opened[1]} --> has no "
                         f"{_END} after it")
    if not filled and not empty:
        raise ValueError(f"{name}: no <!-- bench:NAME --> ... {_END} block; expected at least "
                         f"one (NAME: a workload, e.g. W1)")
    return "".join(out), filled, empty


def _read_readme(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ValueError(f"readme: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"readme: cannot read {path} as UTF-8 text ({e})") from None


def check_readme(path):
    """Raise ValueError unless ``update_readme`` can rewrite ``path``: its blocks well
    formed, the file and its folder writable."""
    from fastnn import _safeio
    path = os.fspath(path)
    render_readme(_read_readme(path), [], f"readme: {path}")
    _safeio.check_output_file(path, "readme", lambda p: True, "a README")


def update_readme(path, records):
    """Regenerate the blocks of the README ``path`` (``render_readme``); written atomically,
    and only when something changed.  Returns (changed, filled, empty)."""
    path = os.fspath(path)
    text = _read_readme(path)
    new, filled, empty = render_readme(text, records, f"readme: {path}")
    if new != text:
        _atomic_write(path, new.encode("utf-8"))
    return new != text, filled, empty


def _atomic_write(path, payload):
    from fastnn import _core      # lazily: it loads the engine (it keeps the file's mode)
    _core.atomic_write(path, lambda fh: fh.write(payload))


# ---------------------------------------------------------------------------------------------
# baseline and comparison

def baseline_path(results_dir, machine):
    return os.path.join(results_dir, "baseline-%s.json" % check_name(machine, "machine"))


def _is_results_file(path):
    try:
        load_results(path)
    except ValueError:
        return False
    return True


def promote(run_path, dest):
    """Copy the ``--benchmark-json`` file ``run_path`` to the baseline ``dest``, atomically
    and byte for byte.  A smoke run (FASTNN_BENCH_QUICK), or a ``dest`` that exists and is
    not a pytest-benchmark JSON, is a ValueError; nothing is written."""
    from fastnn import _safeio
    data = load_results(run_path, "run")
    if record(data, "promote")["quick"]:
        raise ValueError(f"run: {run_path} is a smoke run (FASTNN_BENCH_QUICK=1); expected a "
                         f"full-size run for a baseline")
    _safeio.check_output_file(dest, "baseline", _is_results_file, "a pytest-benchmark JSON")
    with open(run_path, "rb") as fh:
        payload = fh.read()
    _atomic_write(dest, payload)
    return data


def compare(base, run, base_name, run_name):
    """The Markdown comparison of two records: per benchmark both medians and run/baseline
    (above 1: the run is slower), then what only one of them measured."""
    def head(what, name, rec):
        info = rec.get("machine_info") or {}
        ci = rec.get("commit") or {}
        load = info.get("loadavg")
        return "%s: %s (%s, commit %s%s, %s%s)" % (
            what, name, rec.get("when") or "?", (ci.get("id") or "?")[:12],
            " dirty" if ci.get("dirty") else "", rec.get("machine") or "?",
            ", load average %.2f" % load[0] if load else "")
    out = [head("Baseline", base_name, base), head("Run", run_name, run), ""]
    if base.get("machine") != run.get("machine"):
        out += ["Different machines: the ratios mix the machine with the code.", ""]
    if bool(base.get("quick")) != bool(run.get("quick")):
        out += ["One of the two is a smoke run (FASTNN_BENCH_QUICK=1): the ratios mean "
                "nothing.", ""]
    b_med = {b["name"]: b["median"] for b in base["benchmarks"]}
    r_med = {b["name"]: b["median"] for b in run["benchmarks"]}
    both = [n for n in r_med if n in b_med]
    if both:
        out.append("| benchmark | baseline s | run s | run / baseline |")
        out.append("|---|---|---|---|")
        for n in both:
            r = r_med[n] / b_med[n]
            if r > 1:
                word = "%.2fx slower" % r
            elif r < 1:
                word = "%.2fx faster" % (1 / r)
            else:
                word = "same"
            out.append("| %s | %.4g | %.4g | %.3f (%s) |" % (n, b_med[n], r_med[n], r, word))
        out.append("")
    else:
        out += ["No benchmark in common.", ""]
    only_b = [n for n in b_med if n not in r_med]
    only_r = [n for n in r_med if n not in b_med]
    if only_b:
        out += ["Only in the baseline: " + ", ".join(only_b) + ".", ""]
    if only_r:
        out += ["Only in the run: " + ", ".join(only_r) + ".", ""]
    out.append("Medians of each benchmark's rounds. On a shared machine differences of a few "
               "per cent are noise: compare runs made at a similar load average.")
    return "\n".join(out)
