"""Shared fixtures: run Python code in a child process that imports the same fastnn as this
one (the repository checkout or the installed package, whichever the tests import)."""
import os
import subprocess
import sys

import pytest

import fastnn

# the folder that holds the fastnn package this test run imports (the repo, or site-packages)
FASTNN_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))


# the book's real MNIST file (Nielsen's mnist.pkl.gz), where CI keeps it: ../shared/data
# beside the clone.  Tests that use it skip when it is absent.
REAL_MNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          os.pardir, "shared", "data", "mnist.pkl.gz")


def real_mnist():
    """The path of the real mnist.pkl.gz, or skip the test."""
    if not os.path.isfile(REAL_MNIST):
        pytest.skip(f"real MNIST not found at {REAL_MNIST}")
    return os.path.abspath(REAL_MNIST)


def child_env(**extra):
    """os.environ for a child Python that imports this fastnn first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [FASTNN_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra)
    return env


@pytest.fixture
def run_python():
    """run_python(args_or_code, timeout=...) -> CompletedProcess of ``python -c code`` (a str)
    or ``python *args`` (a list), stdout and stderr captured as text."""
    def run(what, timeout=120, **env):
        args = ["-c", what] if isinstance(what, str) else list(what)
        # cwd: `python -c` puts the working directory first on sys.path, and the source
        # checkout has no compiled engine when the tests run against the installed package
        return subprocess.run([sys.executable, *args], env=child_env(**env), cwd=FASTNN_ROOT,
                              capture_output=True, text=True, timeout=timeout)
    return run
