#!/usr/bin/env bash
# Self-test of the module image parser (module_image.cpp): builds the parser with its test program and,
# from kernels/fourierft.cu, the images cuModuleLoadData may receive (compute_75 and compute_90 PTX, an
# sm_90 cubin, fatbins), then checks that all of them describe the same kernels; likewise for a
# handwritten PTX module (assembled by ptxas) and a CUDA C snippet that uses shared memory.
#
#   module_image_selftest.sh OUT_DIR [--asan]      (works in OUT_DIR/module_image)
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || ( $# -eq 2 && $2 != --asan ) ]]; then
    echo "usage: $0 OUT_DIR [--asan]" >&2
    exit 2
fi
out=$1/module_image
asan=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
kernels=$root/kernels
nvcc=${NVCC:-nvcc}
command -v "$nvcc" >/dev/null || nvcc=/usr/local/cuda/bin/nvcc
command -v "$nvcc" >/dev/null || { echo "error: nvcc not found (set NVCC); the self-test builds its inputs with it" >&2; exit 1; }
ptxas=$(dirname "$(command -v "$nvcc")")/ptxas
[[ -x $ptxas ]] || ptxas=ptxas
mkdir -p "$out"

flags=(-std=c++17 -g -O1 -Wall -Wextra)
if [[ $asan == --asan ]]; then
    flags+=(-fsanitize=address -fno-omit-frame-pointer)
fi
g++ "${flags[@]}" -I"$here/.." "$here/module_image.cpp" "$here/module_image_selftest.cpp" \
    -o "$out/module_image_selftest"

# Compression switches differ between nvcc releases.
if "$nvcc" --help | grep -q -- '--compress-mode'; then
    uncompressed=(--compress-mode=none)
    compressed=(--compress-mode=size)
else
    uncompressed=(--no-compress)
    compressed=()
fi
src=$kernels/fourierft.cu
sm90=(-gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90)
rm -f "$out"/*.ptx "$out"/*.cubin "$out"/*.fatbin
"$out/module_image_selftest" --write-snippet "$out/snippet.ptx"
"$out/module_image_selftest" --write-cuda "$out/shared.cu"
# Two builds at a time.
pids=()
bg() {
  "$@" &
  pids+=($!)
  if [[ ${#pids[@]} -ge 2 ]]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
}
bg "$nvcc" -ptx -arch=compute_75 -I"$kernels" -o "$out/fourierft_75.ptx" "$src"
bg "$nvcc" -ptx -arch=compute_90 -I"$kernels" -o "$out/fourierft_90.ptx" "$src"
bg "$nvcc" -cubin -arch=sm_90 -I"$kernels" -o "$out/fourierft.cubin" "$src"
bg "$nvcc" -fatbin "${uncompressed[@]}" "${sm90[@]}" -I"$kernels" -o "$out/fourierft.fatbin" "$src"
bg "$nvcc" -fatbin "${sm90[@]}" -I"$kernels" -o "$out/fourierft_default.fatbin" "$src"
bg "$nvcc" -fatbin "${uncompressed[@]}" -gencode arch=compute_90,code=compute_90 -I"$kernels" \
  -o "$out/fourierft_ptx.fatbin" "$src"
if [[ ${#compressed[@]} -gt 0 ]]; then
  bg "$nvcc" -fatbin "${compressed[@]}" "${sm90[@]}" -I"$kernels" -o "$out/fourierft_compressed.fatbin" "$src"
fi
bg "$ptxas" -arch=sm_90 -o "$out/snippet.cubin" "$out/snippet.ptx"
bg "$nvcc" -ptx -arch=compute_90 -o "$out/shared.ptx" "$out/shared.cu"
bg "$nvcc" -cubin -arch=sm_90 -o "$out/shared.cubin" "$out/shared.cu"
for pid in "${pids[@]}"; do wait "$pid"; done

"$out/module_image_selftest" "$out"
