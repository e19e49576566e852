"""pytest-benchmark set-up for bench/: the session context and the machine line.

Run with ``pytest bench/ --benchmark-only`` (see README.md); FASTNN_BENCH_QUICK=1 shrinks
every workload to smoke sizes.
"""
import datetime
import os
import shlex

import pytest

from _harness import QUICK, Context


def pytest_report_header(config):
    return "fastnn bench: %s" % ("QUICK smoke sizes (FASTNN_BENCH_QUICK=1), not benchmarks"
                                 if QUICK else "full sizes")


# the load average, the time and the CPUs' time counters when the session starts:
# pytest-benchmark asks for the machine's information only when it saves the results, at the
# end, when the load average counts the run's own threads
_START = {}


def pytest_sessionstart(session):
    try:
        _START["loadavg"] = list(os.getloadavg())
    except OSError:
        _START["loadavg"] = None
    _START["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    from fastnn import bench
    _START["cpu_times"] = bench.cpu_times()


def pytest_benchmark_update_machine_info(config, machine_info):
    from fastnn import bench
    info = bench.machine_info()
    info["quick"] = QUICK
    if _START:
        info["loadavg_end"], info["date_end"] = info["loadavg"], info["date"]
        info["loadavg"], info["date"] = _START["loadavg"], _START["date"]
        # the share of the CPUs' time a hypervisor gave to other guests during the session
        info["steal_fraction"] = bench.steal_fraction(_START["cpu_times"], bench.cpu_times())
    machine_info["fastnn_bench"] = info


# what the JSON cannot tell otherwise: the command, the outcomes, why tests were skipped
_SESSION = {"passed": 0, "failed": 0, "skipped": []}


def pytest_runtest_logreport(report):
    if report.skipped:
        lr = report.longrepr
        reason = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
        if reason.startswith("Skipped: "):
            reason = reason[len("Skipped: "):]
        _SESSION["skipped"].append([report.nodeid, reason])
    elif report.failed:
        _SESSION["failed"] += 1
    elif report.when == "call":
        _SESSION["passed"] += 1


def pytest_benchmark_update_json(config, benchmarks, output_json):
    # read by `python -m fastnn.bench` into the history line
    output_json["fastnn_session"] = dict(
        _SESSION, command="python -m pytest " + shlex.join(config.invocation_params.args))


@pytest.fixture(scope="session")
def ctx():
    """Data, initial weights, GEMM rates and W2's model, shared by every benchmark."""
    return Context()
