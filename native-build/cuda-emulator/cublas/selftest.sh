#!/usr/bin/env bash
# Builds and runs selftest.cpp against the cuBLAS stand-ins and the emulated driver in $CUDA_EMU_DIR, in
# both stream modes.
# usage: CUDA_EMU_DIR=DIR selftest.sh OUT_DIR [--asan]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?output directory}
emu=${CUDA_EMU_DIR:?the emulator build directory}
flags=(-std=c++17 -g -O1 -pthread)
[ "${2:-}" = --asan ] && flags+=(-fsanitize=address -fno-omit-frame-pointer)
include=$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")/include
[ -f "$include/cuda.h" ] || include=/usr/local/cuda/include
mkdir -p "$out"
g++ "${flags[@]}" -I"$include" -I"$here" "$here/selftest.cpp" "$emu/libcublas.so.13" "$emu/libcublasLt.so.13" \
  "$emu/libcuda.so.1" -Wl,-rpath,"$emu" -o "$out/cublas_selftest"
for mode in immediate threaded; do
  # the errors it provokes are expected; the summary line and the exit status tell
  SPECTRALPEFT_EMU_STREAMS=$mode ASAN_OPTIONS=detect_leaks=0 "$out/cublas_selftest" 2>"$out/cublas_selftest.$mode.log" \
    >"$out/cublas_selftest.$mode.out" || { cat "$out/cublas_selftest.$mode.out" "$out/cublas_selftest.$mode.log" >&2; exit 1; }
  echo "$mode: $(tail -1 "$out/cublas_selftest.$mode.out")"
done
