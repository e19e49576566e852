"""One-off: the runs kept as files in bench/results/ into the history, and the baseline.

    python tools/bench_piles_to_history.py

Appends, oldest first, the eight 2026-11-23 suite runs (their .json; the command, the
outcomes and the reasons for skips from the .raw.txt) and the four 2026-12-01 before/after
JSONs (source 'before-after', tree 'before' or 'after', round in the note) to
bench/results/history.jsonl, each labelled with its old file name; checks that each line
renders the same report as its JSON (and as the .md beside it); then promotes the fullest
run, the fifth of 2026-11-23 (w1w2-s5 and w3w4-s5: one commit, two invocations 3 minutes
apart, merged into one JSON), to bench/results/baseline-<machine>.json.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fastnn import _bench_history as hist  # noqa: E402
from fastnn import bench  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")
HISTORY = os.path.join(RESULTS, "history.jsonl")

# from bench/README.md and README.md as they described these runs
NOTES = {
    "w1w2": "The first run of 2026-11-23 (with w3w4mem).",
    "w3w4mem": "The first run of 2026-11-23 (with w1w2), and the memory table.",
    "w1w2-s2": "The second run of 2026-11-23 (tensorflow not installed): before the "
               "transposed first layer in training and before the small-batch kernels.",
    "w1w2-s3": "The third run of 2026-11-23: s4's code with 16 KiB tiles.",
    "w3w4-s3": "The third run of 2026-11-23.",
    "w1w2-s4": "The fourth run of 2026-11-23: BLAS for the evaluation passes, before the "
               "transposed first layer there. A W1/W2 run between s3 and s4 was not kept: its "
               "float64 GEMM rate came out at 55 GFLOP/s (another process held a core while "
               "it was measured), which put fastnn at '123 % of the limit'.",
    "w1w2-s5": "The fifth run of 2026-11-23 (with w3w4-s5): after the transposed first layer "
               "in training and in the evaluation and prediction passes, and the spin barrier.",
    "w3w4-s5": "The fifth run of 2026-11-23 (with w1w2-s5).",
}
FILES = {"w1w2": "bench/test_w1.py bench/test_w2.py",
         "w3w4": "bench/test_w3.py bench/test_w4.py",
         "w3w4mem": "bench/test_w3.py bench/test_w4.py bench/test_memory.py"}
BEFORE_AFTER = (
    "W1-W4 before (3d4a074, -march=native) and after (1a08205: the engine's restructuring, "
    "convolution, fixed K-split blocks, CPU-level dispatch, AVX-512), alternated in one run "
    "of bench/before_after.py, fastnn's configurations only; round {round} of 2. Load average "
    "1.0-1.3 with no other work of ours; the same tree's medians varied up to 1.7x between "
    "the two rounds (W1 2 threads), so differences of a few per cent are not resolved. The "
    "compare_builds.py timings of the same trees: "
    "bench/results/2026-12-01-epyc2c-compare-builds.md.")
BEFORE_AFTER_CMD = (
    "python bench/before_after.py BEFORE_TREE AFTER_TREE --repeat 2 (in each tree: python -m "
    "pytest bench/test_w1.py bench/test_w2.py bench/test_w3.py bench/test_w4.py "
    "--benchmark-only -q -p no:cacheprovider -k fastnn --benchmark-json=OUT/{tree}-{round}"
    ".json)")


def outcomes(raw):
    """(outcomes, exit code or None) from pytest's console output."""
    summary = re.findall(r"^=*\s*(\d+ passed.*? in [\d.]+s.*?)\s*=*$", raw, re.M)
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed)", summary[-1])}
    skipped = [["%s (%s test%s)" % (where, n, "" if n == "1" else "s"), why]
               for n, where, why in re.findall(r"^SKIPPED \[(\d+)\] (\S+?): (.*)$", raw, re.M)]
    rc = re.search(r"^rc[ =](\d+)$", raw, re.M)
    return ({"passed": counts.get("passed", 0), "failed": counts.get("failed", 0),
             "skipped": skipped, "summary": summary[-1]}, int(rc.group(1)) if rc else None)


def main():
    runs = []
    for name in sorted(os.listdir(RESULTS)):
        m = re.fullmatch(r"(2026-11-23-epyc2c-(.+))\.json", name)
        if m:
            runs.append(("suite", m.group(1), m.group(2)))
        m = re.fullmatch(r"(2026-12-01-epyc2c-before-after-(before|after)-(\d))\.json", name)
        if m:
            runs.append(("before-after", m.group(1), (m.group(2), int(m.group(3)))))
    loaded = []
    for source, label, key in runs:
        with open(os.path.join(RESULTS, label + ".json")) as fh:
            loaded.append((json.load(fh)["datetime"], source, label, key))
    loaded.sort()
    done = {r["label"] for r in hist.read_history(HISTORY, missing_ok=True)}
    for when, source, label, key in loaded:
        if label in done:
            continue
        data = hist.load_results(os.path.join(RESULTS, label + ".json"))
        if source == "suite":
            with open(os.path.join(RESULTS, label + ".raw.txt")) as fh:
                raw = fh.read()
            data["fastnn_session"], rc = outcomes(raw)
            files = FILES.get(key) or FILES[key.split("-")[0]]
            cmd = ("python -m pytest %s --benchmark-only --benchmark-json=bench/results/%s.json"
                   % (files, label))
            note = "%s pytest: %s. Converted from bench/results/%s.{json,md,raw.txt}; the " \
                   "command is rebuilt from the files the benchmarks name." % (
                       NOTES[key], data["fastnn_session"].pop("summary"), label)
            rec = hist.record(data, label, command=cmd, exit_code=rc, note=note)
            with open(os.path.join(RESULTS, label + ".md")) as fh:
                assert bench.report(hist.to_results(rec)) + "\n" == fh.read(), label
        else:
            tree, rnd = key
            rec = hist.record(data, label, source="before-after",
                              tree=tree, command=BEFORE_AFTER_CMD.format(tree=tree, round=rnd),
                              note=BEFORE_AFTER.format(round=rnd + 1) +
                              " Converted from bench/results/%s.json." % label)
        assert bench.report(hist.to_results(rec)) == bench.report(data), label
        n = hist.append(HISTORY, rec)
        print("%2d %s %s" % (n, when, label))

    # the baseline: the fifth run, W1-W4 in one file
    parts = [hist.load_results(os.path.join(RESULTS, "2026-11-23-epyc2c-%s.json" % k))
             for k in ("w1w2-s5", "w3w4-s5")]
    assert parts[0]["commit_info"] == parts[1]["commit_info"]
    merged = dict(parts[0], benchmarks=parts[0]["benchmarks"] + parts[1]["benchmarks"])
    merged["fastnn_note"] = (
        "The fifth run of 2026-11-23, W1-W4: the benchmarks of 2026-11-23-epyc2c-w1w2-s5 "
        "(whose machine_info and datetime these are) and 2026-11-23-epyc2c-w3w4-s5 (started "
        "%s, load average %.2f), both at commit %s, in one file." % (
            parts[1]["datetime"], parts[1]["machine_info"]["fastnn_bench"]["loadavg"][0],
            parts[1]["commit_info"]["id"][:12]))
    tmp = os.path.join(RESULTS, ".baseline-merge.json")
    with open(tmp, "w") as fh:
        json.dump(merged, fh, indent=4)
        fh.write("\n")
    try:
        machine = hist.machine_id(merged["machine_info"]["fastnn_bench"])
        data = hist.promote(tmp, hist.baseline_path(RESULTS, machine))
    finally:
        os.unlink(tmp)
    print("baseline: %d benchmarks" % len(data["benchmarks"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
