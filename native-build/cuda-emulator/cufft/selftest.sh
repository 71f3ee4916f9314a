#!/usr/bin/env bash
# Self-test of the cuFFT stand-in: builds selftest.cpp against the emulator in $CUDA_EMU_DIR (libcuda.so.1,
# libcufft.so.12) and runs it in both stream modes.
#
#   CUDA_EMU_DIR=BUILD_DIR selftest.sh OUT_DIR [--asan]
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || ( $# -eq 2 && $2 != --asan ) ]]; then
    echo "usage: CUDA_EMU_DIR=BUILD_DIR $0 OUT_DIR [--asan]" >&2
    exit 2
fi
out=$1
asan=${2:-}
emu=${CUDA_EMU_DIR:?CUDA_EMU_DIR: the emulator build directory}
here=$(cd "$(dirname "$0")" && pwd)
include=${CUDA_HOME:-/usr/local/cuda}/include
mkdir -p "$out"

flags=(-std=c++17 -g -O1 -Wall -Wextra)
if [[ $asan == --asan ]]; then
    flags+=(-fsanitize=address -fno-omit-frame-pointer)
fi
g++ "${flags[@]}" -I"$include" "$here/selftest.cpp" -o "$out/cufft_selftest" \
    "$emu/libcufft.so.12" "$emu/libcuda.so.1" -Wl,-rpath,"$emu"

for mode in immediate threaded; do
    echo "stream mode: $mode"
    SPECTRALPEFT_EMU_STREAMS=$mode "$out/cufft_selftest" 2>"$out/cufft_selftest.$mode.log" || {
        cat "$out/cufft_selftest.$mode.log" >&2
        exit 1
    }
done
