# Sourced by run-gpu-tests.sh, run-benchmarks.sh and run-gpu-suite.sh: finds the CUDA 13 libraries wherever they are
# installed, puts their directories on LD_LIBRARY_PATH, and prints what it found and the GPU.
# ---------------------------------------------------------------------------------------------
# CUDA libraries. cuFFT, cuBLAS and the runtime are loaded by the JavaCPP CUDA presets (their JNI
# libraries link libcufft.so.12, libcublas.so.13, libcublasLt.so.13, libcudart.so.13); JCuda needs
# only the driver's libcuda.so.1. Look for each wherever a toolkit, a distribution package or a
# Python wheel may have put it.
wanted=(libcudart.so.13 libcufft.so.12 libcublas.so.13 libcublasLt.so.13)
optional=(libnvJitLink.so.13 libnvrtc.so.13)

candidates=()
add_candidate() { [ -n "$1" ] && [ -d "$1" ] && candidates+=("$1"); return 0; }

for v in "${CUDA_HOME:-}" "${CUDA_PATH:-}" "${CUDA_ROOT:-}"; do
  [ -n "$v" ] || continue
  add_candidate "$v/lib64"; add_candidate "$v/lib"; add_candidate "$v/targets/x86_64-linux/lib"
done
IFS=: read -r -a ldp <<<"${LD_LIBRARY_PATH:-}"
for d in ${ldp[@]+"${ldp[@]}"}; do add_candidate "$d"; done
add_candidate /usr/local/cuda/lib64
add_candidate /usr/local/cuda/targets/x86_64-linux/lib
# newest versioned toolkit first
while IFS= read -r d; do
  add_candidate "$d/lib64"; add_candidate "$d/targets/x86_64-linux/lib"
done < <(ls -d /usr/local/cuda-* /opt/cuda* /opt/nvidia/cuda* 2>/dev/null | sort -V -r)
add_candidate /usr/lib/x86_64-linux-gnu
add_candidate /usr/lib64
add_candidate /usr/lib/wsl/lib
# Python wheels: nvidia/<component>/lib (CUDA 12-style) and nvidia/cu13/lib (CUDA 13 wheels)
site_dirs=()
for py in python3 python; do
  command -v "$py" >/dev/null 2>&1 || continue
  while IFS= read -r d; do [ -n "$d" ] && site_dirs+=("$d"); done < <("$py" - 2>/dev/null <<'PY' || true
import site, sys
dirs = []
try:
    dirs += site.getsitepackages()
except Exception:
    pass
try:
    dirs.append(site.getusersitepackages())
except Exception:
    pass
dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
print("\n".join(dict.fromkeys(dirs)))
PY
  )
  break
done
for s in ${site_dirs[@]+"${site_dirs[@]}"}; do
  add_candidate "$s/nvidia/cu13/lib"
  for c in cuda_runtime cufft cublas nvjitlink cuda_nvrtc; do add_candidate "$s/nvidia/$c/lib"; done
done

declare -A found=()
lookup_in_candidates() {
  local lib=$1 d
  for d in ${candidates[@]+"${candidates[@]}"}; do
    if [ -e "$d/$lib" ]; then found[$lib]=$d; return 0; fi
  done
  return 1
}
missing=()
for lib in "${wanted[@]}" "${optional[@]}"; do
  lookup_in_candidates "$lib" || missing+=("$lib")
done

# Not in the usual places: ask the loader cache, then search the file system (bounded depth).
if [ ${#missing[@]} -gt 0 ] && command -v ldconfig >/dev/null 2>&1; then
  still=()
  for lib in "${missing[@]}"; do
    # (|| true: awk's early exit can end ldconfig with SIGPIPE, which pipefail and set -e would turn fatal)
    p=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}' || true)
    if [ -n "$p" ] && [ -e "$p" ]; then found[$lib]=$(dirname "$p"); else still+=("$lib"); fi
  done
  missing=(${still[@]+"${still[@]}"})
fi
if [ ${#missing[@]} -gt 0 ]; then
  name_expr=()
  for lib in "${missing[@]}"; do name_expr+=(-o -name "$lib"); done
  roots=()
  for r in /usr /opt /root /home /workspace /data; do [ -d "$r" ] && roots+=("$r"); done
  while IFS= read -r p; do
    lib=$(basename "$p")
    [ -z "${found[$lib]:-}" ] && found[$lib]=$(dirname "$p")
  done < <(find ${roots[@]+"${roots[@]}"} -maxdepth 10 \
             \( -path /proc -o -path /sys -o -path /usr/share -o -path /usr/include \
                -o -path '*/.cache' -o -path '*/node_modules' \) -prune \
             -o \( -type f -o -type l \) \( -false "${name_expr[@]}" \) -print 2>/dev/null | sort -V -r)
fi

echo "== CUDA libraries"
prepend=()
for lib in "${wanted[@]}" "${optional[@]}"; do
  d=${found[$lib]:-}
  if [ -n "$d" ]; then
    printf '  %-20s %s\n' "$lib" "$d"
    dup=0
    for p in ${prepend[@]+"${prepend[@]}"}; do [ "$p" = "$d" ] && dup=1; done
    [ $dup = 1 ] || prepend+=("$d")
  else
    is_opt=0
    for o in "${optional[@]}"; do [ "$o" = "$lib" ] && is_opt=1; done
    if [ $is_opt = 1 ]; then
      printf '  %-20s (not found, optional)\n' "$lib"
    else
      printf '  %-20s NOT FOUND\n' "$lib"
      echo "warning: $lib was not found; tests that need it will fail or be skipped" >&2
    fi
  fi
done
if [ ${#prepend[@]} -gt 0 ]; then
  joined=$(IFS=:; echo "${prepend[*]}")
  export LD_LIBRARY_PATH="$joined${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "  LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

echo "== GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/  /' || true
else
  echo "  nvidia-smi not found"
fi

