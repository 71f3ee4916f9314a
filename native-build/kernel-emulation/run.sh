#!/usr/bin/env bash
# Builds check_kernels (the kernels of kernels/*.cu compiled for the CPU with g++, see emulation.h) and
# runs it on a fixture file written by org.spectralpeft.cuda.KernelEmulationFixtures.
# usage: run.sh FIXTURE_FILE [BUILD_DIR]
# exit: 0 all cases pass, 1 a case fails, 2 bad usage or build failure, 3 no g++ or CUDA headers (skip)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
fixture=${1:?fixture file}
build=${2:-$repo/target/kernel-emulation}

cxx=${CXX:-g++}
if ! command -v "$cxx" > /dev/null; then echo "skip: no C++ compiler ($cxx)"; exit 3; fi
include=
for d in "${CUDA_HOME:-}" "$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /nonexistent/bin/nvcc)")")" /usr/local/cuda; do
  if [ -n "$d" ] && [ -f "$d/include/cuda_bf16.h" ]; then include=$d/include; break; fi
done
if [ -z "$include" ]; then echo "skip: CUDA headers (cuda_bf16.h) not found"; exit 3; fi

mkdir -p "$build"
exe=$build/check_kernels
if [ ! -x "$exe" ] || [ -n "$(find "$here" "$repo/kernels" -newer "$exe" -type f | head -1)" ]; then
  "$cxx" -std=c++17 -O2 -I"$include" -I"$repo/kernels" -I"$here" "$here/check_kernels.cpp" -o "$exe" || exit 2
fi
"$exe" "$fixture"
