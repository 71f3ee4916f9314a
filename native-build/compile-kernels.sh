#!/usr/bin/env bash
# Compiles every kernels/*.cu to PTX for two targets and to sm_90 machine code, and prints ptxas's sm_90
# resource report.
#   <name>.sm_90.cubin     Hopper machine code, loaded first on devices of compute capability 9.0
#   <name>.compute_75.ptx  portable PTX (the oldest target CUDA 13 accepts), JIT-compiled by the driver
#   <name>.compute_90.ptx  PTX tuned for Hopper, chosen at load time on devices of compute capability >= 9.0
# usage: compile-kernels.sh <kernel dir> <output dir>
# nvcc is taken from $NVCC_OVERRIDE (Maven's -Dnvcc=...), then $NVCC, $CUDA_HOME/bin/nvcc, the PATH,
# and /usr/local/cuda/bin/nvcc.
set -euo pipefail
src_dir=${1:?kernel source dir}
out_dir=${2:?output dir}

find_nvcc() {
  local c
  for c in "${NVCC_OVERRIDE:-}" "${NVCC:-}" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" "$(command -v nvcc 2>/dev/null || true)" /usr/local/cuda/bin/nvcc; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  return 1
}

if ! nvcc=$(find_nvcc); then
  cat >&2 <<'MSG'
error: nvcc (the CUDA compiler, CUDA 12.8 or newer) was not found; the kernels cannot be built.
Point the build at one with any of:
  mvn ... -Dnvcc=/usr/local/cuda/bin/nvcc
  export NVCC=/path/to/nvcc   or   export CUDA_HOME=/usr/local/cuda
or put nvcc on the PATH. No GPU is needed to compile.
MSG
  exit 1
fi

mkdir -p "$out_dir"
flags=(-std=c++17 -O3 -lineinfo -Xptxas=-warn-spills)
shopt -s nullglob
for cu in "$src_dir"/*.cu; do
  name=$(basename "$cu" .cu)
  # rebuild when the source or any header is newer than the PTX
  newest=$(ls -t "$cu" "$src_dir"/*.cuh 2>/dev/null | head -1)
  if [ -f "$out_dir/$name.compute_90.ptx" ] && [ "$out_dir/$name.compute_90.ptx" -nt "$newest" ] \
     && [ -f "$out_dir/$name.compute_75.ptx" ] && [ -f "$out_dir/$name.sm_90.cubin" ]; then
    continue
  fi
  "$nvcc" "${flags[@]}" -ptx -arch=compute_75 -o "$out_dir/$name.compute_75.ptx" "$cu"
  "$nvcc" "${flags[@]}" -ptx -arch=compute_90 -o "$out_dir/$name.compute_90.ptx" "$cu"
  echo "ptxas resource usage for $name (sm_90):"
  # The sm_90 machine code is kept too: H100/H200 load it without JIT, and unlike PTX (whose ISA version
  # follows the compiler) it loads on any driver of the same CUDA major version.
  report=$("$nvcc" "${flags[@]}" -cubin -arch=sm_90 -Xptxas -v -o "$out_dir/$name.sm_90.cubin" "$cu" 2>&1)
  echo "$report" | grep -E "Compiling entry|Used|spill" | sed 's/^ptxas info    : /  /'
  if echo "$report" | grep -E "[1-9][0-9]* bytes spill (stores|loads)" >/dev/null; then
    echo "error: a kernel in $name spills registers on sm_90 (see above)" >&2
    exit 1
  fi
done
