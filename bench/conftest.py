"""pytest-benchmark set-up for bench/: the session context and the machine line.

Run with ``pytest bench/ --benchmark-only`` (see README.md); FASTNN_BENCH_QUICK=1 shrinks
every workload to smoke sizes.
"""
import pytest

from _harness import QUICK, Context


def pytest_report_header(config):
    return "fastnn bench: %s" % ("QUICK smoke sizes (FASTNN_BENCH_QUICK=1), not benchmarks"
                                 if QUICK else "full sizes")


def pytest_benchmark_update_machine_info(config, machine_info):
    from fastnn import bench
    info = bench.machine_info()
    info["quick"] = QUICK
    machine_info["fastnn_bench"] = info


@pytest.fixture(scope="session")
def ctx():
    """Data, initial weights, GEMM rates and W2's model, shared by every benchmark."""
    return Context()
