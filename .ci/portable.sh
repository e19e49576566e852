#!/usr/bin/env bash
# CI stage: what leaves the build machine runs on other CPUs (issue 18).  About 3-4 minutes on
# 2 cores, most of it building the wheel.
#   1. a wheel and an sdist from a clean clone of HEAD with `python -m build` (isolated), and
#      their file lists: no generated or machine-specific file in the sdist;
#   2. the wheel in a fresh venv trains a tiny net natively (the best level this CPU runs, and
#      every lower one by FASTNN_CPU_LEVEL) and under `qemu-x86_64 -cpu max`, a CPU with AVX2
#      and no AVX-512: there it must pick the avx2 kernels, the weights must equal the native
#      run's within float tolerance, and asking it for avx512 must be an ImportError, not
#      SIGILL;
#   3. the C engine cross-compiled for aarch64 (NEON through the same vector types) runs its
#      self-test (tests/c/kernels_selftest.c) under qemu-aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

need=()
command -v qemu-x86_64 >/dev/null || need+=(qemu-user)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-arm64-cross)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "portable.sh: needs ${need[*]} (Debian packages)" >&2
        exit 1
    fi
fi

TMP=$(mktemp -d /tmp/fastnn-portable.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

echo "--- 1. wheel and sdist from a clean clone (python -m build) ---"
git clone -q "$ROOT" "$TMP/src"
$PY -m venv "$TMP/buildenv"
"$TMP/buildenv/bin/pip" install -q build
# a wheel is for other machines: the compiler's generic scheduling, not this one's
if ! (cd "$TMP/src" && FASTNN_MTUNE=generic "$TMP/buildenv/bin/python" -m build -o "$TMP/dist" .) \
        >"$TMP/build.log" 2>&1; then
    tail -40 "$TMP/build.log"
    exit 1
fi
grep -m1 "fastnn: engine CPU levels" "$TMP/build.log"
WHEEL=$(ls "$TMP"/dist/*.whl)
SDIST=$(ls "$TMP"/dist/*.tar.gz)
echo "wheel: $(basename "$WHEEL")"
"$TMP/buildenv/bin/python" -m zipfile -l "$WHEEL" | awk 'NR > 1 {print "  " $1}'
tar tzf "$SDIST" | grep -v '/$' | sed 's|^[^/]*/||' > "$TMP/sdist.txt"   # (no pipe into grep -q:
echo "sdist: $(basename "$SDIST") ($(wc -l < "$TMP/sdist.txt") files)"  # pipefail, SIGPIPE)
sed 's/^/  /' "$TMP/sdist.txt"
bad=$(grep -E '^fastnn/.*\.c$|_build_info\.py$|\.so$|\.o$|\.pyc$' "$TMP/sdist.txt" || true)
if [ -n "$bad" ]; then
    echo "FAIL: generated files in the sdist:"; echo "$bad"; exit 1
fi
for f in LICENSE src_c/level.c src_c/dispatch.h src_c/engine.h fastnn/_engine.pyx; do
    grep -qx "$f" "$TMP/sdist.txt" || { echo "FAIL: $f missing from the sdist"; exit 1; }
done
# nor in the wheel: Cython's C files and objects are no package data
wbad=$("$TMP/buildenv/bin/python" -m zipfile -l "$WHEEL" | awk 'NR > 1 {print $1}' \
       | grep -E '\.c$|\.o$' || true)
if [ -n "$wbad" ]; then
    echo "FAIL: generated files in the wheel:"; echo "$wbad"; exit 1
fi
echo "sdist: sources only (no Cython C files, _build_info.py, objects); LICENSE and src_c/ present"
echo "wheel: no Cython C files or objects"

echo "--- 2. the wheel in a fresh venv: native, then qemu-x86_64 -cpu max ---"
$PY -m venv "$TMP/venv"
"$TMP/venv/bin/pip" install -q "$WHEEL"
VPY="$TMP/venv/bin/python"
cd "$TMP"                       # never the source tree
"$VPY" "$ROOT/.ci/tiny_train.py" native.npz | grep -v "^Epoch"
levels=$("$VPY" -c "from fastnn import _engine; print(' '.join(_engine.CPU_LEVELS_SUPPORTED[1:]))")
runs=(native.npz)
for lv in $levels; do
    FASTNN_CPU_LEVEL=$lv "$VPY" "$ROOT/.ci/tiny_train.py" "forced-$lv.npz" --expect-level "$lv" \
        | grep "^cpu_level"
    runs+=("forced-$lv.npz")
done
echo "under qemu-x86_64 -cpu max:"
qemu-x86_64 -cpu max "$VPY" "$ROOT/.ci/tiny_train.py" qemu.npz --expect-level avx2 \
    | grep -v "^Epoch"
runs+=(qemu.npz)
set +e
out=$(FASTNN_CPU_LEVEL=avx512 qemu-x86_64 -cpu max "$VPY" -c "import fastnn._engine" 2>&1)
rc=$?
set -e
if [ $rc -ne 1 ] || ! grep -q "ImportError: fastnn: FASTNN_CPU_LEVEL=avx512" <<<"$out"; then
    echo "FAIL: FASTNN_CPU_LEVEL=avx512 under qemu -cpu max: exit $rc (want 1, an ImportError)"
    echo "$out" | tail -3
    exit 1
fi
echo "FASTNN_CPU_LEVEL=avx512 under qemu -cpu max: $(tail -1 <<<"$out" | cut -c1-110)..."
"$VPY" "$ROOT/.ci/tiny_train.py" --compare "${runs[@]}"

echo "--- 3. aarch64: the C engine's self-test under qemu-aarch64 ---"
cd "$ROOT"
aarch64-linux-gnu-gcc -O3 -std=c99 -ffp-contract=fast -fno-math-errno -fopenmp \
    -DFASTNN_HAVE_OPENMP -Isrc_c -Wall -Wno-unused-function \
    tests/c/kernels_selftest.c -o "$TMP/selftest-aarch64" -lm
qemu-aarch64 -L /usr/aarch64-linux-gnu "$TMP/selftest-aarch64"
echo "portable.sh: all checks passed"
