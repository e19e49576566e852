"""Importing fastnn from a source folder whose engine is not built says what to do (issue 15,
item 6).  The source folder is a copy of this package without its compiled module."""
import os
import shutil
import subprocess
import sys

from conftest import FASTNN_ROOT


def unbuilt_copy(tmp_path):
    """A folder laid out like the clone (setup.py beside fastnn/), with no compiled engine."""
    src = os.path.join(FASTNN_ROOT, "fastnn")
    shutil.copytree(src, tmp_path / "fastnn",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "_engine.c"))
    if not (tmp_path / "fastnn" / "_engine.pyx").exists():   # an installed package has none
        (tmp_path / "fastnn" / "_engine.pyx").write_text("# the engine's Cython source\n")
    (tmp_path / "setup.py").write_text("# the build script\n")
    return tmp_path


def run_in(folder, code):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_from_unbuilt_source_folder_explains(tmp_path):
    folder = unbuilt_copy(tmp_path)
    for code in ("from fastnn import network", "from fastnn import network2",
                 "import fastnn; fastnn.show_config()"):
        r = run_in(folder, code)
        assert r.returncode != 0, code
        err = r.stderr
        print(err.strip().splitlines()[-1])
        assert "ImportError" in err and "is not built" in err, err
        assert str(folder / "fastnn") in err
        assert "pip install -e ." in err and "python setup.py build_ext --inplace" in err
        assert "another folder" in err


def test_import_error_keeps_the_cause(tmp_path):
    """The original error stays attached, and a folder that is not a source tree gets the
    reinstall advice instead."""
    folder = unbuilt_copy(tmp_path)
    os.remove(folder / "setup.py")
    r = run_in(folder, "from fastnn import network")
    assert r.returncode != 0
    assert "_engine" in r.stderr and "reinstall fastnn" in r.stderr
    assert "build_ext" not in r.stderr.strip().splitlines()[-1]


def test_the_built_package_still_imports(run_python):
    r = run_python("from fastnn import network, network2; import fastnn; "
                   "fastnn.show_config(print_=False); print('ok')")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
