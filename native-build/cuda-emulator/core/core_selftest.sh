#!/usr/bin/env bash
# Builds and runs core_selftest.cpp against the emulated driver in $CUDA_EMU_DIR, in both stream modes.
# usage: CUDA_EMU_DIR=DIR core_selftest.sh OUT_DIR [--asan]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?output directory}
emu=${CUDA_EMU_DIR:?the emulator build directory}
flags=(-std=c++17 -g -O1 -pthread)
[ "${2:-}" = --asan ] && flags+=(-fsanitize=address -fno-omit-frame-pointer)
include=$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")/include
[ -f "$include/cuda.h" ] || include=/usr/local/cuda/include
mkdir -p "$out"
g++ "${flags[@]}" -I"$include" "$here/core_selftest.cpp" "$emu/libcuda.so.1" -Wl,-rpath,"$emu" -o "$out/core_selftest"
for mode in immediate threaded; do
  # the errors it provokes are expected; only the summary line matters
  SPECTRALPEFT_EMU_STREAMS=$mode ASAN_OPTIONS=detect_leaks=0 "$out/core_selftest" 2>"$out/core_selftest.$mode.log" \
    > "$out/core_selftest.$mode.out" || { cat "$out/core_selftest.$mode.out" "$out/core_selftest.$mode.log" >&2; exit 1; }
  tail -1 "$out/core_selftest.$mode.out"
done
