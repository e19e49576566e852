"""Memory: peak RSS of W1 and W2 training (W1 with Nielsen's lists: the book's session),
fastnn against the numpy reference.

Each case runs in a fresh process (memory.py --child CASE); the time of that run is not a
benchmark, the numbers are in extra_info and the report's memory table.
"""
import pytest

import memory


@pytest.mark.benchmark(group="memory")
@pytest.mark.parametrize("case", list(memory.CASES))
def test_memory(benchmark, case):
    result = {}

    def run():
        result.update(memory.measure(case))

    benchmark.pedantic(run, rounds=1, iterations=1)
    result["workload"] = "memory"
    result["impl"] = case
    for k, v in result.items():
        benchmark.extra_info[k] = v
