#!/usr/bin/env bash
# Compiles every kernels/*.cu to PTX for two targets and to sm_90 machine code, and writes ptxas's sm_90
# resource report to REPORT (standard output stays quiet for -q builds).
#   <name>.sm_90.cubin     Hopper machine code, loaded first on devices of compute capability 9.0
#   <name>.compute_75.ptx  portable PTX (the oldest target CUDA 13 accepts), JIT-compiled by the driver
#   <name>.compute_90.ptx  PTX tuned for Hopper, chosen at load time on devices of compute capability >= 9.0
# usage: compile-kernels.sh <kernel dir> <output dir> <report file>
# nvcc is taken from $NVCC_OVERRIDE (Maven's -Dnvcc=...), then $NVCC, $CUDA_HOME/bin/nvcc, the PATH,
# and /usr/local/cuda/bin/nvcc. "none" in NVCC_OVERRIDE or NVCC, or no nvcc anywhere, builds no kernels:
# the library is then CPU-only, and the CUDA backend says its kernels were not built.
set -euo pipefail
src_dir=${1:?kernel source dir}
out_dir=${2:?output dir}
report_file=${3:?report file}

no_kernels() { # REASON
  # Stale kernels from an earlier build must not end up in a jar whose kernels were not built.
  rm -f "$out_dir"/*.ptx "$out_dir"/*.cubin
  echo "warning: $1; building the CPU-only library without CUDA kernels (-Dnvcc=/path/to/nvcc builds them)" >&2
  exit 0
}

# An nvcc named explicitly must exist: a mistyped path should not silently pick another compiler.
for var in NVCC_OVERRIDE NVCC; do
  c=${!var:-}
  label=$var
  [ $var = NVCC ] || label=-Dnvcc
  if [ "$c" = none ]; then no_kernels "nvcc disabled ($label=none)"; fi
  if [ -n "$c" ] && [ ! -x "$c" ]; then
    echo "error: $label=$c is not an executable nvcc (give a CUDA 13 nvcc, or none to build without kernels)" >&2
    exit 1
  fi
done

nvcc=
for c in "${NVCC_OVERRIDE:-}" "${NVCC:-}" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" "$(command -v nvcc 2>/dev/null || true)" /usr/local/cuda/bin/nvcc; do
  if [ -n "$c" ] && [ -x "$c" ]; then nvcc=$c; break; fi
done
[ -n "$nvcc" ] || no_kernels "nvcc (CUDA 13) not found on the PATH, in \$CUDA_HOME/bin or /usr/local/cuda/bin"

mkdir -p "$out_dir" "$(dirname "$report_file")"
# One report per kernel source, kept so that an up-to-date kernel's lines stay in the combined report.
parts_dir=${report_file%.txt}.d
mkdir -p "$parts_dir"
flags=(-std=c++17 -O3 -lineinfo -Xptxas=-warn-spills)
shopt -s nullglob
for cu in "$src_dir"/*.cu; do
  name=$(basename "$cu" .cu)
  part=$parts_dir/$name.txt
  # rebuild when the source or any header is newer than the PTX
  newest=$(ls -t "$cu" "$src_dir"/*.cuh 2>/dev/null | head -1)
  if [ -f "$out_dir/$name.compute_90.ptx" ] && [ "$out_dir/$name.compute_90.ptx" -nt "$newest" ] \
     && [ -f "$out_dir/$name.compute_75.ptx" ] && [ -f "$out_dir/$name.sm_90.cubin" ] && [ -f "$part" ]; then
    continue
  fi
  rm -f "$part"
  "$nvcc" "${flags[@]}" -ptx -arch=compute_75 -o "$out_dir/$name.compute_75.ptx" "$cu"
  "$nvcc" "${flags[@]}" -ptx -arch=compute_90 -o "$out_dir/$name.compute_90.ptx" "$cu"
  # The sm_90 machine code is kept too: H100/H200 load it without JIT, and unlike PTX (whose ISA version
  # follows the compiler) it loads on any driver of the same CUDA major version.
  if ! raw=$("$nvcc" "${flags[@]}" -cubin -arch=sm_90 -Xptxas -v -o "$out_dir/$name.sm_90.cubin" "$cu" 2>&1); then
    echo "$raw" >&2
    exit 1
  fi
  summary=$( { echo "ptxas resource usage for $name (sm_90):"
               echo "$raw" | grep -E "Compiling entry|Used|spill" | sed 's/^ptxas info    : /  /'; } )
  # Nonzero spills, each with the function it belongs to.
  spills=$(echo "$raw" | awk '
    /Function properties for / { fn = $NF }
    !/^ptxas warning/ && /[1-9][0-9]* bytes spill (stores|loads)/ { sub(/^[ \t]+/, ""); print "  " (fn != "" ? fn ": " : "") $0 }')
  if [ -n "$spills" ]; then
    echo "$summary" > "$report_file"
    rm -f "$out_dir/$name.sm_90.cubin" # so the next build compiles it again
    echo "error: a kernel in $name spills registers on sm_90 (full report: $report_file):" >&2
    echo "$spills" >&2
    exit 1
  fi
  echo "$summary" > "$part"
done

# The combined report covers exactly the current kernel sources.
: > "$report_file"
for cu in "$src_dir"/*.cu; do
  cat "$parts_dir/$(basename "$cu" .cu).txt" >> "$report_file"
done
