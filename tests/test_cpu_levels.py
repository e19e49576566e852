"""The engine's CPU levels (DESIGN.md, "CPU levels"): the choice at import and the numbers.

* pick_level, the rule the module applies at import, on made-up CPUs: the best level the CPU
  runs; FASTNN_CPU_LEVEL's level when the CPU runs it; an ImportError naming the missing
  features when it does not, when the name is not in the build, and when the CPU is below
  every level.
* Every level this CPU runs, forced by FASTNN_CPU_LEVEL in a fresh process, is the level the
  engine reports, and trains the same weights as the best one within float tolerance (the
  levels round differently: FMA or not, 2 to 8 lanes summed).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import _engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEVELS = _engine._levels_built()
ALL_FEATURES = tuple(f for _, needs in LEVELS for f in needs)


def test_the_chosen_level_is_the_best_this_cpu_runs():
    assert _engine.CPU_LEVEL in _engine.CPU_LEVELS_SUPPORTED
    if not os.environ.get("FASTNN_CPU_LEVEL"):
        assert _engine.CPU_LEVEL == _engine.CPU_LEVELS_SUPPORTED[0]
    cfg = fastnn.show_config(print_=False)
    assert cfg["cpu_level"] == _engine.CPU_LEVEL
    assert cfg["cpu_levels"] == list(_engine.CPU_LEVELS)
    assert _engine.VECTOR_BYTES in (16, 32, 64)


def test_pick_level_takes_the_best_level_the_cpu_runs():
    assert _engine.pick_level(ALL_FEATURES) == LEVELS[0][0]
    for i, (name, needs) in enumerate(LEVELS):
        # a CPU with exactly this level's features runs it and nothing above it
        assert _engine.pick_level(needs) == name, (name, needs)
        assert _engine.pick_level(ALL_FEATURES, name) == name


def test_pick_level_errors_name_what_is_missing():
    names = [n for n, _ in LEVELS]
    with pytest.raises(ImportError, match=r"FASTNN_CPU_LEVEL='no-such-level'.*" + names[0]):
        _engine.pick_level(ALL_FEATURES, "no-such-level")
    needing = [(n, needs) for n, needs in LEVELS if needs]
    if not needing:
        pytest.skip(f"the levels of this build ({names}) need no feature beyond the target's")
    top, needs = needing[0]
    with pytest.raises(ImportError, match=rf"FASTNN_CPU_LEVEL={top}, but this CPU lacks "
                                          rf"{needs[-1]}"):
        _engine.pick_level(needs[:-1], top)
    low, low_needs = LEVELS[-1]
    if low_needs:
        with pytest.raises(ImportError, match=rf"below the engine's baseline.*\({low}\) uses "
                                              rf"{low_needs[0]}"):
            _engine.pick_level(())


TRAIN = r"""
import json, sys
import numpy as np
from fastnn import _core, _engine
rng = np.random.RandomState(0)
out = {"level": _engine.CPU_LEVEL}
for dtype in ("float64", "float32"):
    X = rng.rand(120, 70).astype(dtype)
    Y = np.eye(5, dtype=dtype)[rng.randint(0, 5, 120)]
    W = [(rng.randn(o, i) / np.sqrt(i)).astype(dtype) for i, o in ((70, 24), (24, 5))]
    b = [rng.randn(o).astype(dtype) for o in (24, 5)]
    _core.train(W, b, X, Y, _core.TrainConfig(
        acts=["sigmoid", "sigmoid"], cost="quadratic", epochs=2, batch=10, eta=0.5,
        optimizer="sgd", state=[], orders=None, n_threads=1))
    out[dtype] = [w.ravel().tolist() for w in W + b]
    # mini-batches of 100 with momentum: the dense update's own tiles (update_fused), whose
    # shape follows the level's vector width
    W = [(rng.randn(o, i) / np.sqrt(i)).astype(dtype) for i, o in ((70, 24), (24, 5))]
    b = [rng.randn(o).astype(dtype) for o in (24, 5)]
    _core.train(W, b, X, Y, _core.TrainConfig(
        acts=["sigmoid", "sigmoid"], cost="quadratic", epochs=2, batch=100, eta=0.5,
        optimizer="momentum", momentum=0.9, state=_core.new_state("momentum", W, b),
        orders=None, n_threads=1))
    out[dtype] += [w.ravel().tolist() for w in W + b]
print(json.dumps(out))
"""


def _train_at(level):
    # the fastnn under test (the checkout built in place, or the installed package), from a
    # folder where Python does not find the uncompiled source tree first
    from conftest import child_env
    env = child_env(FASTNN_CPU_LEVEL=level)
    res = subprocess.run([sys.executable, "-c", TRAIN], env=env, cwd=os.path.dirname(ROOT),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_every_level_this_cpu_runs_trains_the_same_weights():
    runs = {lv: _train_at(lv) for lv in _engine.CPU_LEVELS_SUPPORTED}
    best = runs[_engine.CPU_LEVELS_SUPPORTED[0]]
    for lv, got in runs.items():
        assert got["level"] == lv
        for dtype, tol in (("float64", 1e-10), ("float32", 1e-4)):
            diff = max(float(np.max(np.abs(np.subtract(a, b))))
                       for a, b in zip(best[dtype], got[dtype]))
            print(f"{lv} vs {_engine.CPU_LEVELS_SUPPORTED[0]}, {dtype}: max |diff| {diff:.3g}")
            assert diff <= tol, (lv, dtype, diff)
