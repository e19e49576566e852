"""Build the fastnn extension: one Cython module over the C kernels in src_c/.

Environment switches
--------------------
FASTNN_USE_OMP=0          build without OpenMP (single-threaded engine)
FASTNN_FAIL_NO_OPENMP=1   make a build without OpenMP an error (CI sets it)
FASTNN_DEBUG_CYTHON=1     Cython bounds checks and C assertions on, -O1 -g
FASTNN_MARCH=...          value for -march (default: native; "none" to omit)
FASTNN_SANITIZE=address   build with AddressSanitizer (see README, "Sanitizers")
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name, default="0"):
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def _compiler_cmd():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()


def _try_compile(flags, link_flags, source):
    """Return True when `source` compiles and links with the given flags."""
    tmp = tempfile.mkdtemp(prefix="fastnn-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(source)
        cmd = _compiler_cmd() + flags + [src, "-o", os.path.join(tmp, "probe")] + link_flags
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return res.returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


OPENMP_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d\n", n + omp_get_max_threads());
    return 0;
}
"""


def openmp_flags():
    """Find OpenMP flags for this compiler: gcc/clang, Apple clang, or none."""
    if not _env_flag("FASTNN_USE_OMP", "1"):
        return None, None
    candidates = [
        (["-fopenmp"], ["-fopenmp"]),
        (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),
        (["/openmp"], []),
    ]
    for cflags, lflags in candidates:
        if _try_compile(cflags, lflags, OPENMP_PROBE):
            return cflags, lflags
    return None, None


def march_flags():
    march = os.environ.get("FASTNN_MARCH", "native")
    if march.lower() == "none":
        return []
    flag = ["-march=" + march]
    if _try_compile(flag, [], "int main(void){return 0;}\n"):
        return flag
    return []


debug = _env_flag("FASTNN_DEBUG_CYTHON")
sanitize = os.environ.get("FASTNN_SANITIZE", "").strip()
omp_c, omp_l = openmp_flags()
have_omp = omp_c is not None

bar = "=" * 72
if have_omp:
    print(f"{bar}\nfastnn: building WITH OpenMP ({' '.join(omp_c)})\n{bar}")
else:
    msg = (f"{bar}\nfastnn: WARNING: building WITHOUT OpenMP: the engine will run on one "
           f"thread.\nInstall a compiler with OpenMP (gcc, or clang with libomp) for threads.\n{bar}")
    if _env_flag("FASTNN_FAIL_NO_OPENMP"):
        sys.stderr.write(msg.replace("WARNING", "ERROR") + "\nFASTNN_FAIL_NO_OPENMP=1 is set.\n")
        sys.exit(1)
    sys.stderr.write(msg + "\n")

# -ffp-contract=fast: -std=c99 alone turns off fusing a*b+c into one FMA instruction, which
# halves the speed of the small-batch kernels
compile_args = ["-std=c99", "-ffp-contract=fast"] if sys.platform != "win32" else []
link_args = []
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if debug:
    # -fno-ivopts: GCC 12.2 at -O1/-O2 deletes the calls to backward_f64/f32 (seen in its
    # dumps and disassembly); -O3 release builds are not affected
    compile_args += ["-O1", "-g", "-UNDEBUG", "-fno-ivopts"]
    macros.append(("FASTNN_DEBUG", "1"))
else:
    compile_args += ["-O3", "-fno-math-errno"] + march_flags()
if sanitize:
    compile_args += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer"]
    link_args += [f"-fsanitize={sanitize}"]
if have_omp:
    compile_args += omp_c
    link_args += omp_l
    macros.append(("FASTNN_HAVE_OPENMP", "1"))
else:
    # '#pragma omp' lines are ignored; silence the warnings about them.
    compile_args += ["-Wno-unknown-pragmas"]

build_info = {
    "openmp": have_omp,
    "openmp_flags": " ".join(omp_c or []),
    "debug_cython": debug,
    "sanitize": sanitize or None,
    "compile_args": " ".join(compile_args),
}

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": False,
    "cdivision": not debug,
    "initializedcheck": debug,
    "embedsignature": True,
}

ext = Extension(
    "fastnn._engine",
    sources=["fastnn/_engine.pyx"],
    include_dirs=[np.get_include(), os.path.join(HERE, "src_c")],
    depends=[os.path.join("src_c", f) for f in os.listdir(os.path.join(HERE, "src_c"))],
    define_macros=macros,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)


# a thread-start probe (fastnn/_threads.pyx): plain C and pthreads, no OpenMP, no numpy
threads_ext = Extension(
    "fastnn._threads",
    sources=["fastnn/_threads.pyx"],
    extra_compile_args=["-O2"] if sys.platform != "win32" else [],
    extra_link_args=["-pthread"] if sys.platform != "win32" else [],
)


def _write_build_info():
    path = os.path.join(HERE, "fastnn", "_build_info.py")
    text = "# Written by setup.py at build time.\nBUILD_INFO = %r\n" % (build_info,)
    try:
        with open(path) as fh:
            if fh.read() == text:
                return
    except OSError:
        pass
    with open(path, "w") as fh:
        fh.write(text)


_write_build_info()

from Cython.Build import cythonize  # noqa: E402

setup(
    ext_modules=cythonize(
        [ext, threads_ext],
        compiler_directives=directives,
        compile_time_env={"FASTNN_HAVE_OPENMP": have_omp},
        force=bool(debug or sanitize),
    ),
)
