#!/usr/bin/env bash
# Builds the CUDA emulator into OUT_DIR and runs its own self-tests:
#   libcuda.so.1                  the driver: device, primary context, memory and its checks, streams,
#                                 events, modules, launches (core/), plus weak stand-ins for every other
#                                 driver function JCuda or the JavaCPP presets import (symbols/driver.txt)
#   libcudart.so.13               the runtime API over it (cudart/)
#   libcufft.so.12                cuFFT over FFTW in double precision (cufft/)
#   libcublas.so.13, libcublasLt.so.13   cuBLAS's GEMMs in double precision (cublas/)
#   libspectralpeft-kernels.so    every kernels/*.cu compiled by g++ with the fiber runtime (kernel-runtime/)
#   libfftw3.so.3                 from Maven Central's org.bytedeco:fftw jar (FFTW_JAR, or the local repository)
#   libasan.so                    a link to the compiler's AddressSanitizer runtime (the JVM preloads it)
#   emulator.env                  the environment a JVM needs to run on the emulator (see README)
# Everything is built with AddressSanitizer unless --no-asan is given. Rebuilds only what changed.
# usage: build.sh OUT_DIR [--no-asan] [--no-selftest]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:?output directory}
asan=1
selftest=1
for a in "${@:2}"; do
  case $a in
    --no-asan) asan=0 ;;
    --no-selftest) selftest=0 ;;
    *) echo "error: unknown argument $a" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

cxx=${CXX:-g++}
command -v "$cxx" >/dev/null || { echo "error: no C++ compiler ($cxx); the CUDA emulator needs g++" >&2; exit 1; }
include=
for d in "${CUDA_HOME:-}" "$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /none/bin/nvcc)")")" /usr/local/cuda; do
  if [ -n "$d" ] && [ -f "$d/include/cuda.h" ] && [ -f "$d/include/cuda_bf16.h" ]; then include=$d/include; break; fi
done
[ -n "$include" ] || { echo "error: CUDA headers (cuda.h) not found; set CUDA_HOME" >&2; exit 1; }

flags=(-std=c++17 -fPIC -g -O1 -pthread -fvisibility=default -I"$include" -I"$here")
if [ $asan = 1 ]; then flags+=(-fsanitize=address -fsanitize-recover=address -fno-omit-frame-pointer); fi

# Rebuild everything when any source, the flags or the compiler changed (a full build takes well under a minute).
stamp=$out/.build-stamp
signature=$( { echo "${flags[*]} $asan $("$cxx" --version | head -1)";
               find "$here" "$repo/kernels" -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \
                    -o -name '*.sh' -o -name '*.txt' -o -name '*.map' \) -print0 | sort -z | xargs -0 sha1sum; } \
             | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$signature" ]; then
  echo "cuda emulator: up to date in $out"
  exit 0
fi
rm -f "$stamp"
gen=$out/generated
mkdir -p "$gen"

# ------------------------------------------------------------------ FFTW (for the cuFFT stand-in)
fftw_jar=${FFTW_JAR:-${MAVEN_REPO:-$HOME/.m2/repository}/org/bytedeco/fftw/3.3.10-1.5.13/fftw-3.3.10-1.5.13-linux-x86_64.jar}
[ -f "$fftw_jar" ] || { echo "error: $fftw_jar not found (Maven fetches it: org.bytedeco:fftw:3.3.10-1.5.13:linux-x86_64)" >&2; exit 1; }
unzip -o -q -j "$fftw_jar" 'org/bytedeco/fftw/linux-x86_64/libfftw3.so.3' -d "$out"

# ------------------------------------------------------------------ libraries
version_script() { # NAME PATTERN...
  local name=$1; shift
  { echo "$name {"; echo "  global:"; for p in "$@"; do echo "    $p;"; done; echo "  local: *;"; echo "};"; } > "$gen/$name.map"
  echo "$gen/$name.map"
}
sources() { find "$1" -maxdepth 1 -name '*.cpp' ! -name '*selftest*' | sort; }

echo "== cuda emulator: libcuda.so.1"
"$here/gen-stubs.sh" "$here/symbols/driver.txt" 801 "$gen/driver_stubs.cpp"
# shellcheck disable=SC2046
"$cxx" "${flags[@]}" -shared -Wl,-soname,libcuda.so.1 -o "$out/libcuda.so.1" \
  $(sources "$here/core") "$gen/driver_stubs.cpp" -ldl

echo "== cuda emulator: libcudart.so.13"
"$here/gen-stubs.sh" "$here/symbols/cudart.txt" 801 "$gen/cudart_stubs.cpp"
"$cxx" "${flags[@]}" -shared -Wl,-soname,libcudart.so.13 \
  -Wl,--version-script="$(version_script libcudart.so.13 'cuda*')" -o "$out/libcudart.so.13" \
  $(sources "$here/cudart") "$gen/cudart_stubs.cpp" "$out/libcuda.so.1" -Wl,-rpath,'$ORIGIN'

if [ -d "$here/cufft" ] && [ -n "$(sources "$here/cufft")" ]; then
  echo "== cuda emulator: libcufft.so.12"
  "$here/gen-stubs.sh" "$here/symbols/cufft.txt" 16 "$gen/cufft_stubs.cpp"
  "$cxx" "${flags[@]}" -shared -Wl,-soname,libcufft.so.12 \
    -Wl,--version-script="$(version_script libcufft.so.12 'cufft*')" -o "$out/libcufft.so.12" \
    $(sources "$here/cufft") "$gen/cufft_stubs.cpp" "$out/libcuda.so.1" "$out/libfftw3.so.3" -Wl,-rpath,'$ORIGIN'
fi

if [ -d "$here/cublas" ] && [ -n "$(sources "$here/cublas")" ]; then
  echo "== cuda emulator: libcublasLt.so.13, libcublas.so.13"
  "$here/gen-stubs.sh" "$here/symbols/cublasLt.txt" 15 "$gen/cublasLt_stubs.cpp"
  "$here/gen-stubs.sh" "$here/symbols/cublas.txt" 15 "$gen/cublas_stubs.cpp"
  lt_sources=$(sources "$here/cublas" | grep '/cublaslt[^/]*\.cpp$' || true)
  blas_sources=$(sources "$here/cublas" | grep -v '/cublaslt[^/]*\.cpp$' || true)
  # shellcheck disable=SC2086
  "$cxx" "${flags[@]}" -shared -Wl,-soname,libcublasLt.so.13 \
    -Wl,--version-script="$(version_script libcublasLt.so.13 'cublasLt*')" -o "$out/libcublasLt.so.13" \
    $lt_sources "$gen/cublasLt_stubs.cpp" "$out/libcuda.so.1" -Wl,-rpath,'$ORIGIN'
  # shellcheck disable=SC2086
  "$cxx" "${flags[@]}" -shared -Wl,-soname,libcublas.so.13 \
    -Wl,--version-script="$(version_script libcublas.so.13 'cublas*')" -o "$out/libcublas.so.13" \
    $blas_sources "$gen/cublas_stubs.cpp" "$out/libcuda.so.1" "$out/libcublasLt.so.13" -Wl,-rpath,'$ORIGIN'
fi

echo "== cuda emulator: libspectralpeft-kernels.so"
module_flags=()
if [ $asan = 1 ]; then module_flags=(-fsanitize=address -fsanitize-recover=address -fno-omit-frame-pointer); fi
bash "$here/kernel-runtime/build-module.sh" "$repo/kernels" "$out/libspectralpeft-kernels.so" ${module_flags[@]+"${module_flags[@]}"}

# ------------------------------------------------------------------ every import resolved?
check_exports() { # LIB LIST [VERSION]
  local lib=$1 list=$2 version=${3:-} missing
  if [ -n "$version" ]; then
    missing=$(comm -23 <(sort -u "$list") <(nm -D --defined-only "$lib" | awk '{print $3}' | grep "@@$version\$" | sed 's/@.*//' | sort -u))
  else
    missing=$(comm -23 <(sort -u "$list") <(nm -D --defined-only "$lib" | awk '{print $3}' | sort -u))
  fi
  if [ -n "$missing" ]; then
    echo "error: $(basename "$lib") does not export $(echo "$missing" | wc -l) imported names, e.g. $(echo "$missing" | head -3 | tr '\n' ' ')" >&2
    exit 1
  fi
}
check_exports "$out/libcuda.so.1" "$here/symbols/driver.txt"
check_exports "$out/libcudart.so.13" "$here/symbols/cudart.txt" libcudart.so.13
[ ! -f "$out/libcufft.so.12" ] || check_exports "$out/libcufft.so.12" "$here/symbols/cufft.txt" libcufft.so.12
[ ! -f "$out/libcublas.so.13" ] || check_exports "$out/libcublas.so.13" "$here/symbols/cublas.txt" libcublas.so.13
[ ! -f "$out/libcublasLt.so.13" ] || check_exports "$out/libcublasLt.so.13" "$here/symbols/cublasLt.txt" libcublasLt.so.13

# ------------------------------------------------------------------ environment for a JVM
# halt_on_error=0: a bad access is reported through the core (the next CUDA call fails in the test that
# caused it) rather than ending the JVM; the JVM handles its own SIGSEGVs.
asan_options=handle_segv=0:detect_leaks=0:allow_user_segv_handler=1:use_sigaltstack=0:detect_stack_use_after_return=0:halt_on_error=0:suppressions=$here/asan.supp
asan_lib=
if [ $asan = 1 ]; then
  asan_lib=$("$cxx" -print-file-name=libasan.so)
  ln -sf "$(readlink -f "$asan_lib")" "$out/libasan.so"
fi
{
  echo "# Sourced (or read) to run a JVM on the CUDA emulator in $out"
  echo "LD_LIBRARY_PATH=$out"
  echo "SPECTRALPEFT_EMU_KERNELS=$out/libspectralpeft-kernels.so"
  if [ $asan = 1 ]; then
    echo "LD_PRELOAD=$out/libasan.so"
    echo "ASAN_OPTIONS=$asan_options"
  fi
} > "$out/emulator.env"

# ------------------------------------------------------------------ self-tests
if [ $selftest = 1 ]; then
  for t in "$here"/*/selftest.sh "$here"/*/*_selftest.sh "$here"/kernel-runtime/selftest/run.sh; do
    [ -f "$t" ] || continue
    echo "== cuda emulator self-test: ${t#"$here"/}"
    args=("$out/selftest")
    [ $asan = 1 ] && args+=(--asan)
    CUDA_EMU_DIR=$out bash "$t" "${args[@]}"
  done
fi
echo "$signature" > "$stamp"
echo "cuda emulator: built in $out ($([ $asan = 1 ] && echo 'with AddressSanitizer' || echo 'without AddressSanitizer'))"
