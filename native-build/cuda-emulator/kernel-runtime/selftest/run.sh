#!/usr/bin/env bash
# Builds the self-test module (selftest_kernels.cu) and the real kernel module (kernels/*.cu) with the CPU
# kernel runtime, builds the driver, and runs the self-test.
#   usage: run.sh [--asan] OUT_DIR
# With --asan, the modules and the driver are built with -fsanitize=address (the dlopen'ed modules then use
# the driver's ASan runtime). Exit status 0 when every check passes.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
runtime=$(dirname "$here")
repo=$(cd "$runtime/../../.." && pwd)
asan=()
if [ "${1:-}" = "--asan" ]; then asan=(-fsanitize=address -fno-omit-frame-pointer); shift; fi
out=${1:?usage: run.sh [--asan] OUT_DIR}
mkdir -p "$out"
cxx=${CXX:-g++}

# The test kernels must be valid CUDA, not only valid under the CPU runtime.
nvcc=$(command -v nvcc 2>/dev/null || true)
[ -n "$nvcc" ] || { [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc; } || true
if [ -n "$nvcc" ]; then
  "$nvcc" -ptx -arch=compute_90 -std=c++17 -o "$out/selftest_kernels.ptx" "$here/selftest_kernels.cu"
  echo "nvcc: selftest_kernels.cu compiles for compute_90 ($(grep -c '\.entry' "$out/selftest_kernels.ptx") entries)"
else
  echo "nvcc not found: the CUDA compile of selftest_kernels.cu is skipped"
fi

"$runtime/build-module.sh" "$here" "$out/libselftest-kernels.so" "${asan[@]}"
"$runtime/build-module.sh" "$repo/kernels" "$out/libspectralpeft-kernels.so" "${asan[@]}"
"$cxx" -std=c++17 -g -O1 "${asan[@]}" -o "$out/run_selftest" "$here/run_selftest.cpp" -ldl
"$out/run_selftest" "$out/libselftest-kernels.so" "$out/libspectralpeft-kernels.so"
echo "again with blocks spread over 3 OS threads:"
SPECTRALPEFT_EMU_KERNEL_THREADS=3 "$out/run_selftest" "$out/libselftest-kernels.so" "$out/libspectralpeft-kernels.so" --no-timing
