"""Build the fastnn extension: one Cython module over the C kernels in src_c/.

Environment switches
--------------------
FASTNN_USE_OMP=0          build without OpenMP (single-threaded engine)
FASTNN_FAIL_NO_OPENMP=1   make a build without OpenMP an error (CI sets it)
FASTNN_DEBUG_CYTHON=1     Cython bounds checks and C assertions on, -O1 -g
FASTNN_MARCH=...          unset (the default): the engine is compiled once per CPU level
                          (x86-64: avx512, avx2, sse42) and the module picks one at import;
                          "native" (or any -march value): one level for this machine only,
                          not to be shipped; "none": one level, the compiler's default target
FASTNN_MTUNE=...          the -mtune of the x86-64 levels' code: unset (the default) is
                          "native", scheduled for the building machine (pip installs from
                          source build where they run; measured 2-10 % faster on W1/W2 than
                          the compiler's generic tuning, DESIGN.md "CPU levels"); wheels for
                          other machines set "generic".  It changes no instruction set.
FASTNN_SANITIZE=address   build with AddressSanitizer (see README, "Sanitizers")

How the CPU levels are built: src_c/level.c holds the whole engine; a build_ext subclass
(build_ext_levels, below) compiles it once per level with that level's flags into the build
folder and links the objects into fastnn._engine, whose own C code (compiled without them)
picks one at import (src_c/dispatch.h, DESIGN.md "CPU levels").
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name, default="0"):
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def _compiler_cmd():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()


def _env_words(*names):
    """The words of the environment's CFLAGS-like variables (a probe must see the -I and -L
    that the build itself gets from them, as Apple clang needs for libomp)."""
    return [w for n in names for w in os.environ.get(n, "").split()]


def _try_compile(flags, link_flags, source):
    """Return True when `source` compiles and links with the given flags."""
    tmp = tempfile.mkdtemp(prefix="fastnn-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(source)
        cmd = (_compiler_cmd() + _env_words("CPPFLAGS", "CFLAGS") + flags
               + [src, "-o", os.path.join(tmp, "probe")] + _env_words("LDFLAGS") + link_flags)
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


# The CPU levels of an x86-64 build, best first: a name (a C identifier: the engine's table
# for it is fnn_kernels_<name>) and the flags of the instruction sets its code may use.  The
# check at run time reads what the compiler made of the flags (src_c/level.c), so it never
# falls out of step with this list.
X86_SSE42 = ["-msse3", "-mssse3", "-msse4.1", "-msse4.2", "-mpopcnt"]           # x86-64-v2
X86_AVX2 = X86_SSE42 + ["-mavx", "-mavx2", "-mfma", "-mbmi", "-mbmi2"]          # x86-64-v3
X86_AVX512 = X86_AVX2 + ["-mavx512f", "-mavx512cd", "-mavx512bw", "-mavx512dq",  # x86-64-v4
                         "-mavx512vl"]
X86_LEVELS = [("avx512", X86_AVX512), ("avx2", X86_AVX2), ("sse42", X86_SSE42)]

_PROBE_MAIN = "int main(void){return 0;}\n"
_PROBE_X86 = "#if !defined(__x86_64__)\n#error not x86-64\n#endif\n" + _PROBE_MAIN


def cpu_levels():
    """The levels to compile the engine for: [(name, flags)], best first."""
    march = os.environ.get("FASTNN_MARCH", "").strip()
    if march.lower() == "none":
        return [("baseline", [])]
    if march:
        flag = ["-march=" + march]
        if not _try_compile(flag, [], _PROBE_MAIN):
            sys.exit(f"fastnn: FASTNN_MARCH={march}: the compiler rejects {flag[0]}")
        return [("native", flag)]
    if not _try_compile([], [], _PROBE_X86):
        return [("baseline", [])]     # aarch64 (NEON is its baseline), ppc64le, ...
    tune = os.environ.get("FASTNN_MTUNE", "").strip() or "native"
    tune_flag = ["-mtune=" + tune]
    if not _try_compile(tune_flag, [], _PROBE_MAIN):
        sys.stderr.write(f"fastnn: WARNING: the compiler rejects {tune_flag[0]}: generic "
                         f"tuning\n")
        tune_flag = []
    levels = []
    for name, flags in X86_LEVELS:
        if _try_compile(flags, [], _PROBE_MAIN):
            levels.append((name, flags + tune_flag))
        else:
            sys.stderr.write(f"fastnn: WARNING: the compiler rejects the {name} flags "
                             f"({' '.join(flags)}): no {name} kernels in this build\n")
    if not levels:
        sys.exit("fastnn: the compiler takes none of the x86-64 levels' flags; set "
                 "FASTNN_MARCH=none to build for its default target")
    return levels


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
    compile_args += ["-O3", "-fno-math-errno"]
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

levels = cpu_levels()
print(f"fastnn: engine CPU levels: {', '.join(name for name, _ in levels)}")

build_info = {
    "openmp": have_omp,
    "openmp_flags": " ".join(omp_c or []),
    "debug_cython": debug,
    "sanitize": sanitize or None,
    "compile_args": " ".join(compile_args),
    "cpu_levels": {name: " ".join(flags) for name, flags in levels},
}

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": False,
    "cdivision": not debug,
    "initializedcheck": debug,
    "embedsignature": True,
}

SRC_C = os.path.join(HERE, "src_c")
ext = Extension(
    "fastnn._engine",
    sources=["fastnn/_engine.pyx"],
    include_dirs=[np.get_include(), SRC_C],
    depends=[os.path.join("src_c", f) for f in sorted(os.listdir(SRC_C))],
    # the module's own C code knows which levels are linked in (src_c/dispatch.h)
    define_macros=macros + [("FNN_WITH_" + name, "1") for name, _ in levels],
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


class build_ext_levels(build_ext):
    """build_ext that first compiles src_c/level.c once per CPU level, each with its own
    flags, into the build folder, links those objects into the extension, and writes
    fastnn/_build_info.py next to the built module (never into the sources: the sdist ships
    no generated file)."""

    def _level_object(self, ext, name, flags):
        out_dir = os.path.join(self.build_temp, "level-" + name)
        args = compile_args + flags
        obj = self.compiler.object_filenames(["src_c/level.c"], output_dir=out_dir)[0]
        stamp = obj + ".args"
        stamp_text = " ".join(args) + "\n"
        try:
            with open(stamp) as fh:
                same_args = fh.read() == stamp_text
            newest = max(os.path.getmtime(p) for p in ext.depends + ["src_c/level.c"])
            if same_args and os.path.getmtime(obj) >= newest and not self.force:
                return obj
        except OSError:
            pass
        self.compiler.compile(["src_c/level.c"], output_dir=out_dir,
                              macros=macros + [("FNN_LEVEL", name)],
                              include_dirs=ext.include_dirs, extra_postargs=args)
        with open(stamp, "w") as fh:
            fh.write(stamp_text)
        return obj

    def build_extension(self, ext):
        if ext.name == "fastnn._engine":
            # the levels compile side by side (each is a whole engine: most of the build time)
            workers = max(1, min(len(levels), os.cpu_count() or 1))
            with ThreadPoolExecutor(workers) as pool:
                objs = list(pool.map(lambda lv: self._level_object(ext, *lv), levels))
            ext.extra_objects = [o for o in (ext.extra_objects or []) if o not in objs] + objs
            # a level object compiled anew (new flags) must be linked again: build_ext looks
            # only at the sources and depends to decide
            ext.depends = [d for d in ext.depends if d not in objs] + objs
        super().build_extension(ext)

    def run(self):
        super().run()
        # after setuptools' run: with --inplace (and editable installs) the module has been
        # copied into the source tree, and get_ext_fullpath points there
        for e in self.extensions:
            if e.name == "fastnn._engine":
                self._write_build_info(e)

    def _build_info_path(self, ext):
        return os.path.join(os.path.dirname(self.get_ext_fullpath(ext.name)), "_build_info.py")

    def _write_build_info(self, ext):
        path = self._build_info_path(ext)
        text = "# Written by setup.py at build time.\nBUILD_INFO = %r\n" % (build_info,)
        try:
            with open(path) as fh:
                if fh.read() == text:
                    return
        except OSError:
            pass
        with open(path, "w") as fh:
            fh.write(text)

    def get_outputs(self):
        return super().get_outputs() + [self._build_info_path(e) for e in self.extensions
                                        if e.name == "fastnn._engine"]


from Cython.Build import cythonize  # noqa: E402

setup(
    cmdclass={"build_ext": build_ext_levels},
    ext_modules=cythonize(
        [ext, threads_ext],
        compiler_directives=directives,
        compile_time_env={"FASTNN_HAVE_OPENMP": have_omp},
        force=bool(debug or sanitize),
    ),
)
