#!/usr/bin/env bash
# Everything a GPU machine is needed for, from a bundle made by native-build/make-bundle.sh, run from the
# repository root (the Python scripts are read from bench/ and src/test/python/). Each stage fits in a
# 10-minute slot on an H100; logs and results go under OUT_DIR/<stage>/.
#
# usage: native-build/bundle/run-gpu-suite.sh STAGE OUT_DIR
#   tests   PEFT golden fixtures (src/test/python/make_peft_fixtures.py, needs torch + peft), then every
#           test (CPU and GPU) with those fixtures, then the peak-memory report (memory.json)
#   bench   the JMH benchmarks on the CUDA backend, short iterations (jmh.json, jmh.txt)
#   peers   PEFT and the floors timed in PyTorch (bench/side_by_side.py measure), then the side-by-side
#           table from OUT_DIR/bench/jmh.json and OUT_DIR/tests/memory.json (table.md), then where our
#           GPU time goes, stage by stage, per family (StageProfile, FouRAStageProfile, TLoRAStageProfile:
#           stages.md, foura-stages.md, tlora-stages.md), and the host's time per driver and library call
#           (HostOverheadProfile: host-overhead.md)
#   all     the three in order (longer than one slot)
#   foura   FouRA: FouRABenchmark on the CUDA backend next to the PyTorch composition (bench/foura_peer.py
#           measure --device cuda), then their table (OUT_DIR/foura/table.md), then the single forward again
#           on this library's kernels instead of the SGEMMs (-Dspectralpeft.foura.forward=kernels; foura/kernels/)
#           and on the tiled projection (=tiled; foura/tiled/)
#   tlora   TLoRA: TLoRABenchmark on the CUDA backend (device arrays) next to the authors' step and plain LoRA
#           in PyTorch (bench/tlora_peer.py measure --device cuda), then their table (OUT_DIR/tlora/table.md)
#   mixed   mixed batches (a different adapter per token) on the CUDA backend: MixedBatchBenchmark (FourierFT)
#           and FouRAMixedBatchBenchmark (both projection kernels), device arrays, T distinct adapters against
#           one; then what PEFT can do for such a batch on the same device (materializeEach, 1 and 16
#           adapters, into mixed/each/); then FourierFT's forward and backward, single and mixed, on the cuFFT
#           route (-Dspectralpeft.fourierft.forward=cufft, into mixed/cufft/; the default is the fused kernels)
#   fused   FourierFT's fused kernels against the cuFFT route, about 4 minutes (run_fused below: the forward and
#           backward stage profiles, Nsight Compute's sections for one launch of each fused kernel, JMH on the
#           cuFFT route, the fused kernels being the default); with SUITE_ARCHIVE set, packed at the end
#   check   about 5 minutes (its steps' limits add up to 420 s), for what is left of a lease (run_check below):
#           the host's time per call, then short JMH of the default routes (FourierFT forward, backward and mixed
#           batches, FouRA's forward), then the routes waiting for a decision: FouRA's small kernel at T = 1 to 8,
#           its split products and its kernel for the products into y at T = 4096, TLoRA's R = 1 gradients
#           with and without C
#   short   all of it cut to fit one slot of about 9 minutes (for a lease of 15 minutes): the tests tagged
#           gpu (committed fixtures), the float32 CUDA benchmarks with short iterations in two JMH runs (-f 0;
#           not the merge command, whose single-shot calls take most of a slot), PEFT timed with --quick,
#           the table, the stage profiles, then the FouRA, TLoRA and mixed stages, short; each step has its
#           own time limit (SHORT_LIMITS="tests bench peers profile foura tlora mixed" in seconds, default
#           "95 125 30 80 80 55 105"; the benchmarks in two JMH runs, so that a cut loses at most its last
#           benchmarks: a part cut short is read back from its log, bench/jmh_log.py), and
#           with SUITE_ARCHIVE set, OUT_DIR is packed into that .tgz after every step, so a run cut short
#           still returns what it finished
# Give the three stages the same OUT_DIR on the machine (say /tmp/gpu-suite) and copy it out after each
# (cp -r /tmp/gpu-suite "$OUT/"): peers reads bench's jmh.json from there. If the machine was not kept
# between the calls, build the table wherever the results are:
#   python3 bench/side_by_side.py table --jmh bench/jmh.json --peers peers/peers.json --memory tests/memory.json
# environment:
#   JMH_ARGS  replaces the default JMH selection and options of the bench stage
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -d "$here/jre" ]; then bundle=$here; elif [ -d "$here/bundle/jre" ]; then bundle=$here/bundle; else
  echo "error: no bundle next to $0; build one with native-build/make-bundle.sh" >&2; exit 1
fi
stage=${1:?stage: tests, bench, peers, foura, tlora, mixed, fused, check, all or short}
out=${2:?output directory}
mkdir -p "$out"
out=$(cd "$out" && pwd)
python=${PYTHON:-python3}

run_tests() {
  local d=$out/tests
  mkdir -p "$d"
  nvidia-smi > "$d/nvidia-smi.txt" 2>&1 || true
  echo "== PEFT fixtures"
  local fixtures=
  if "$python" src/test/python/make_peft_fixtures.py "$d/peft-fixtures" src/test/resources/java-saved-adapter \
      > "$d/fixtures.log" 2>&1; then
    echo "   made $d/peft-fixtures"
    fixtures=-Dspectralpeft.peft.fixtures=$d/peft-fixtures
  else
    echo "   FAILED (see fixtures.log); the fixture test uses the committed fixtures"; tail -5 "$d/fixtures.log"
  fi
  echo "== tests (all, with the fixtures)"
  # debug: a stream synchronization after each launch, so a faulting kernel is named at its own launch
  JAVA_OPTS="-Xmx6g $fixtures -Dspectralpeft.cuda.debug=true" \
    "$bundle/run-gpu-tests.sh" --all "$d/reports" > "$d/tests.log" 2>&1 || echo "   TESTS FAILED"
  grep -E "(tests|containers) (successful|failed|skipped|aborted)" "$d/tests.log" || tail -20 "$d/tests.log"
  echo "== peak memory"
  "$bundle/jre/bin/java" -cp "$(classpath)" org.spectralpeft.bench.MemoryReport "$d/memory.json" \
    2>&1 | tee "$d/memory.txt" || echo "   MEMORY REPORT FAILED"
}

run_bench() {
  local d=$out/bench
  mkdir -p "$d"
  if [ -n "${JMH_ARGS:-}" ]; then
    # shellcheck disable=SC2086
    "$bundle/run-benchmarks.sh" "$d" $JMH_ARGS > "$d/run.log" 2>&1 || echo "   JMH FAILED (see run.log)"
  else
    # Two JMH runs, so that a run cut short by the slot's time limit loses only its own half (JMH writes
    # its JSON at the end); jmh.json is rejoined from the parts after each run.
    local opts=(-p backend=cuda -wi 2 -w 500ms -i 3 -r 1s -f 1)
    rm -rf "$d/part1" "$d/part2" "$d/jmh.json" "$d/jmh.txt"
    "$bundle/run-benchmarks.sh" "$d/part1" "\.MaterializeBenchmark\.|FloorBenchmark" "${opts[@]}" > "$d/run.log" 2>&1 \
      || echo "   JMH part 1 FAILED (see run.log)"
    join_parts "$d"
    "$bundle/run-benchmarks.sh" "$d/part2" "BatchMaterializeBenchmark|ForwardBackwardBenchmark|MergeCommandBenchmark" \
      "${opts[@]}" >> "$d/run.log" 2>&1 || echo "   JMH part 2 FAILED (see run.log)"
    join_parts "$d"
  fi
  grep -E "^Benchmark|p0.50 " "$d/jmh.txt" | head -80 || tail -20 "$d/run.log"
}

# jmh.json and jmh.txt of the bench stage from whichever of its parts finished (a part that did not is
# left out, saying so).
join_parts() {
  local d=$1
  "$python" - "$d/jmh.json" "$d/part1/jmh.json" "$d/part2/jmh.json" <<'PY' || echo "   JOINING THE JMH RESULTS FAILED"
import json, os, sys
joined = []
sys.path.insert(0, "bench")
import jmh_log
for part in sys.argv[2:]:
    try:
        with open(part) as f:
            joined += json.load(f)
    except (OSError, ValueError) as e:
        # JMH writes its JSON only at the end: a part cut short keeps what its log printed
        log = os.path.join(os.path.dirname(part), "jmh.txt")
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                found = jmh_log.results_from_log(f, source=log)
        except OSError:
            found = []
        joined += found
        print(f"   {part}: {e}; {len(found)} results read back from {log}", file=sys.stderr)
with open(sys.argv[1], "w") as f:
    json.dump(joined, f, indent=1)
PY
  cat "$d/part1/jmh.txt" "$d/part2/jmh.txt" > "$d/jmh.txt" 2>/dev/null || true
}

run_peers() {
  local d=$out/peers
  mkdir -p "$d"
  "$python" bench/side_by_side.py measure --out "$d/peers.json" 2> "$d/measure.log" || {
    echo "   MEASURE FAILED"; tail -20 "$d/measure.log"; }
  local memory=()
  [ -f "$out/tests/memory.json" ] && memory=(--memory "$out/tests/memory.json")
  "$python" bench/side_by_side.py table --jmh "$out/bench/jmh.json" --peers "$d/peers.json" \
    ${memory[@]+"${memory[@]}"} --out "$d/table.md" || echo "   TABLE FAILED"
  echo "== stage profiles"
  stage_profiles "$d"
}

# Where the GPU time goes, stage by stage, for each family: FourierFT (stages.md), FouRA (foura-stages.md) and
# TLoRA (tlora-stages.md), into directory $1, with their logs beside them; first (a few seconds, so that a cut
# step keeps it) the host's time per driver and library call (host-overhead.md).
stage_profiles() {
  local d=$1 main name
  "$bundle/jre/bin/java" -Xmx4g -cp "$(classpath)" org.spectralpeft.bench.HostOverheadProfile "$d/host-overhead.md" \
    > "$d/host-overhead.log" 2>&1 || { echo "   HostOverheadProfile FAILED"; tail -20 "$d/host-overhead.log"; }
  grep -E "^\| " "$d/host-overhead.md" 2>/dev/null || true
  # the families with open targets first: a cut step keeps theirs
  for main in bench.TLoRAStageProfile:tlora-stages bench.FouRAStageProfile:foura-stages fourierft.cuda.StageProfile:stages; do
    name=${main#*:}
    "$bundle/jre/bin/java" -Xmx24g -cp "$(classpath)" "org.spectralpeft.${main%%:*}" "$d/$name.md" > "$d/$name.log" 2>&1 \
      || { echo "   ${main%%:*} FAILED"; tail -20 "$d/$name.log"; }
    grep -E "^## |^wall" "$d/$name.md" 2>/dev/null || true
  done
}

run_short() {
  local limits
  read -r -a limits <<<"${SHORT_LIMITS:-95 125 30 80 80 55 105}"
  local d=$out/tests
  mkdir -p "$d" "$out/bench" "$out/peers"
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
  pack
  echo "== tests tagged gpu ($(date -u +%T))"
  JAVA_OPTS="-Xmx6g -Dspectralpeft.cuda.debug=true" timeout -k 5 "${limits[0]}" \
    "$bundle/run-gpu-tests.sh" "$d/reports" > "$d/tests.log" 2>&1 || echo "   TESTS FAILED OR CUT SHORT (rc $?)"
  grep -E "(tests|containers) (successful|failed|skipped|aborted)" "$d/tests.log" || tail -20 "$d/tests.log"
  pack
  echo "== benchmarks ($(date -u +%T))"
  # two JMH runs, each with its share of the step's time: JMH writes its JSON only at the end, so a run cut
  # short loses its own results, not the other's
  local opts=(-p backend=cuda -p dtype=float32 -wi 1 -w 300ms -i 2 -r 500ms -f 0) first=$((limits[1] * 55 / 100))
  rm -rf "$out/bench/part1" "$out/bench/part2"
  JAVA_OPTS="-Xmx24g" timeout -k 5 "$first" "$bundle/run-benchmarks.sh" "$out/bench/part1" "MaterializeBenchmark" \
    "${opts[@]}" > "$out/bench/run.log" 2>&1 || echo "   JMH PART 1 FAILED OR CUT SHORT (rc $?)"
  JAVA_OPTS="-Xmx24g" timeout -k 5 "$((limits[1] - first))" "$bundle/run-benchmarks.sh" "$out/bench/part2" \
    "FloorBenchmark|ForwardBackwardBenchmark" "${opts[@]}" >> "$out/bench/run.log" 2>&1 \
    || echo "   JMH PART 2 FAILED OR CUT SHORT (rc $?)"
  join_parts "$out/bench"
  grep -E "p0.50 " "$out/bench/jmh.txt" | head -60 || tail -20 "$out/bench/run.log"
  pack
  echo "== PEFT ($(date -u +%T))"
  timeout -k 5 "${limits[2]}" "$python" bench/side_by_side.py measure --quick --out "$out/peers/peers.json" \
    2> "$out/peers/measure.log" || { echo "   MEASURE FAILED OR CUT SHORT"; tail -20 "$out/peers/measure.log"; }
  "$python" bench/side_by_side.py table --jmh "$out/bench/jmh.json" --peers "$out/peers/peers.json" \
    --out "$out/peers/table.md" || echo "   TABLE FAILED"
  pack
  echo "== stage profile ($(date -u +%T))"
  timeout -k 5 "${limits[3]}" bash -c "$(declare -f stage_profiles classpath); $(declare -p bundle); stage_profiles $out/peers" \
    || echo "   STAGE PROFILES FAILED OR CUT SHORT"
  pack
  echo "== FouRA ($(date -u +%T))"
  timeout -k 5 "${limits[4]}" bash -c "$(declare -f run_foura); $(declare -p bundle out python); run_foura short" \
    || echo "   FOURA FAILED OR CUT SHORT"
  pack
  echo "== TLoRA ($(date -u +%T))"
  timeout -k 5 "${limits[5]}" bash -c "$(declare -f run_tlora); $(declare -p bundle out python); run_tlora short" \
    || echo "   TLORA FAILED OR CUT SHORT"
  pack
  echo "== mixed batches ($(date -u +%T))"
  timeout -k 5 "${limits[6]}" bash -c "$(declare -f run_mixed); $(declare -p bundle out); run_mixed short" \
    || echo "   MIXED FAILED OR CUT SHORT"
  pack
  echo "== done ($(date -u +%T))"
}

# FouRA on the CUDA backend (device arrays, as the peer keeps its tensors) and the PyTorch composition on the same device;
# "short": one JVM, short iterations, one round of the peer, the default routes only.
run_foura() {
  local d=$out/foura
  mkdir -p "$d"
  local jmh=(-p backend=cuda -wi 2 -w 500ms -i 3 -r 1s -f 1) peer=(--reps 20 --rounds 3)
  if [ "${1:-}" = short ]; then
    jmh=(-p backend=cuda -p rank=16,64 -wi 1 -w 300ms -i 2 -r 500ms -f 0)
    peer=(--reps 10 --rounds 1)
  fi
  "$bundle/run-benchmarks.sh" "$d" "FouRABenchmark\.forward" "${jmh[@]}" > "$d/run.log" 2>&1 \
    || echo "   FOURA JMH FAILED (see run.log)"
  grep -E "p0.50 " "$d/jmh.txt" | head -40 || tail -20 "$d/run.log"
  "$python" bench/foura_peer.py measure --device cuda "${peer[@]}" --out "$d/peer.json" 2> "$d/peer.log" \
    || { echo "   FOURA PEER FAILED"; tail -20 "$d/peer.log"; }
  "$python" bench/foura_peer.py table --jmh "$d/jmh.json" --peers "$d/peer.json" --out "$d/table.md" \
    || echo "   FOURA TABLE FAILED"
  # after the table, so that a cut step keeps it: the single forward on this library's kernels instead of the
  # SGEMMs (kernels/), then on the tiled projection (tiled/); not in the short run (both lost at every T on an H100)
  [ "${1:-}" = short ] && return 0
  mkdir -p "$d/kernels"
  JAVA_OPTS="-Dspectralpeft.foura.forward=kernels" "$bundle/run-benchmarks.sh" "$d/kernels" "FouRABenchmark\.forward$" \
    "${jmh[@]}" > "$d/kernels/run.log" 2>&1 || echo "   FOURA KERNELS JMH FAILED (see kernels/run.log)"
  echo "   on the forward kernels (-Dspectralpeft.foura.forward=kernels):"
  grep -E "p0.50 " "$d/kernels/jmh.txt" | head -20 || tail -20 "$d/kernels/run.log"
  mkdir -p "$d/tiled"
  JAVA_OPTS="-Dspectralpeft.foura.forward=tiled" "$bundle/run-benchmarks.sh" "$d/tiled" "FouRABenchmark\.forward$" \
    "${jmh[@]}" > "$d/tiled/run.log" 2>&1 || echo "   FOURA TILED JMH FAILED (see tiled/run.log)"
  echo "   on the tiled projection (-Dspectralpeft.foura.forward=tiled):"
  grep -E "p0.50 " "$d/tiled/jmh.txt" | head -20 || tail -20 "$d/tiled/run.log"
}

# TLoRA on the CUDA backend (device arrays) and the authors' step and plain LoRA in PyTorch on the same device;
# "short": one JVM, short iterations, one round of the peers.
run_tlora() {
  local d=$out/tlora
  mkdir -p "$d"
  local jmh=(-p backend=cuda -wi 2 -w 500ms -i 3 -r 1s -f 1) peer=(--reps 20 --rounds 3)
  if [ "${1:-}" = short ]; then
    jmh=(-p backend=cuda -wi 1 -w 200ms -i 2 -r 300ms -f 0)
    peer=(--reps 10 --rounds 1)
  fi
  "$bundle/run-benchmarks.sh" "$d" "TLoRABenchmark" "${jmh[@]}" > "$d/run.log" 2>&1 \
    || echo "   TLORA JMH FAILED (see run.log)"
  grep -E "p0.50 " "$d/jmh.txt" | head -40 || tail -20 "$d/run.log"
  "$python" bench/tlora_peer.py measure --device cuda "${peer[@]}" --out "$d/peer.json" 2> "$d/peer.log" \
    || { echo "   TLORA PEER FAILED"; tail -20 "$d/peer.log"; }
  "$python" bench/tlora_peer.py table --jmh "$d/jmh.json" --peers "$d/peer.json" --out "$d/table.md" \
    || echo "   TLORA TABLE FAILED"
}

# Mixed batches on the CUDA backend, FourierFT and FouRA, T distinct adapters next to one (the batch's baseline);
# "short": one JVM, short iterations, T = 256 and 4096 with 1, 16 and T distinct adapters.
run_mixed() {
  local d=$out/mixed
  mkdir -p "$d"
  local jmh=(-p backend=cuda -p ids=same,fresh -wi 2 -w 500ms -i 3 -r 1s -f 1)
  if [ "${1:-}" = short ]; then
    jmh=(-p backend=cuda -p tokens=256,4096 -p distinct=1,16,0 -p ids=same,fresh -wi 1 -w 200ms -i 2 -r 300ms -f 0)
  fi
  JAVA_OPTS="-Xmx24g" "$bundle/run-benchmarks.sh" "$d" "MixedBatchBenchmark\.mixed" "${jmh[@]}" > "$d/run.log" 2>&1 \
    || echo "   MIXED JMH FAILED (see run.log)"
  grep -E "^Benchmark|p0.50 |adapters per GB" "$d/jmh.txt" "$d/run.log" | head -40 || tail -20 "$d/run.log"
  # what PEFT can do for a mixed batch, on the same device: each used adapter's ΔW, then its tokens' GEMM
  local each=(-p backend=cuda -p distinct=1,16 -wi 2 -w 500ms -i 3 -r 1s -f 1)
  [ "${1:-}" = short ] && each=(-p backend=cuda -p tokens=256,4096 -p distinct=1,16 -wi 1 -w 200ms -i 2 -r 300ms -f 0)
  mkdir -p "$d/each"
  JAVA_OPTS="-Xmx24g" "$bundle/run-benchmarks.sh" "$d/each" "MixedBatchBenchmark\.materializeEach" "${each[@]}" \
    > "$d/each/run.log" 2>&1 || echo "   MATERIALIZE-EACH JMH FAILED (see each/run.log)"
  grep -E "p0.50 " "$d/each/jmh.txt" | head -20 || tail -20 "$d/each/run.log"
  # last, so that a cut step keeps the rest: FourierFT's forward and backward on the cuFFT route (cuFFT's transforms
  # around the gather kernels), single adapter and mixed, beside the fused kernels (the default) measured above and
  # in the bench step
  local cufft=(-p backend=cuda -wi 2 -w 500ms -i 3 -r 1s -f 1)
  [ "${1:-}" = short ] && cufft=(-p backend=cuda -wi 1 -w 200ms -i 2 -r 300ms -f 0)
  mkdir -p "$d/cufft"
  JAVA_OPTS="-Xmx24g -Dspectralpeft.fourierft.forward=cufft" "$bundle/run-benchmarks.sh" "$d/cufft" \
    "ForwardBackwardBenchmark\.(forward|backward)$|\.MixedBatchBenchmark\.(mixed|mixedBackward)$" "${cufft[@]}" -p tokens=1,16,256,4096 \
    -p distinct=1,0 > "$d/cufft/run.log" 2>&1 || echo "   CUFFT ROUTE JMH FAILED (see cufft/run.log)"
  echo "   FourierFT forward and backward on the cuFFT route (-Dspectralpeft.fourierft.forward=cufft):"
  grep -E "p0.50 " "$d/cufft/jmh.txt" | head -20 || tail -20 "$d/cufft/run.log"
}

# FourierFT's fused kernels against the cuFFT route, about 4 minutes: the stage profile of the single and mixed
# forward and backward only (fused/stages.md), then Nsight Compute's sections for one launch of
# fourierft_forward_fused and of fourierft_backward_fused at 4096 x 4096, T = 4096 (occupancy, speed of light, the
# memory tables with shared-memory bank conflicts and L1 sectors: fused/ncu-*.txt; skipped without ncu), then JMH's
# forward and backward on the cuFFT route, the default being the fused kernels (fused/jmh.txt), then the same sections for one launch of TLoRA's
# tlora_ring_apply (fused/ncu-tlora.txt).
run_fused() {
  local d=$out/fused java=$bundle/jre/bin/java cp
  cp=$(classpath)
  mkdir -p "$d"
  echo "== fused kernels: stage profile ($(date -u +%T))"
  timeout -k 5 "${FUSED_PROFILE_LIMIT:-110}" "$java" -Xmx8g -Dspectralpeft.profile.only='^(mixed )?(forward|backward)' \
    -cp "$cp" org.spectralpeft.fourierft.cuda.StageProfile "$d/stages.md" > "$d/stages.log" 2>&1 \
    || echo "   STAGE PROFILE FAILED OR CUT SHORT (see fused/stages.log)"
  grep -E "^## |^wall" "$d/stages.md" 2>/dev/null | paste - - | sed 's/ (p10[^)]*)//' || true
  if command -v ncu > /dev/null; then
    local k pick
    for k in forward backward; do
      pick="^forward \(fused kernel\) 4096x4096 n=1000 T=4096 "
      [ $k = backward ] && pick="^mixed backward \(fused kernel\) 4096x4096 n=1000 T=4096, 1 adapter"
      echo "== ncu: fourierft_${k}_fused ($(date -u +%T))"
      timeout -k 5 90 ncu --section LaunchStats --section Occupancy --section SpeedOfLight \
        --section MemoryWorkloadAnalysis_Tables -k "regex:^fourierft_${k}_fused$" -c 1 \
        "$java" -Xmx8g -Dspectralpeft.profile.only="$pick" -cp "$cp" org.spectralpeft.fourierft.cuda.StageProfile \
        "$d/ncu-$k.md" > "$d/ncu-$k.txt" 2>&1 || echo "   NCU FAILED OR CUT SHORT (see fused/ncu-$k.txt)"
      grep -E "Duration|Achieved Occupancy|Memory Throughput|L1/TEX Hit|Bank|Registers Per|Shared Memory Config" \
        "$d/ncu-$k.txt" | head -12 || true
    done
  else
    echo "   no ncu on this machine: no kernel sections"
  fi
  echo "== the cuFFT route: JMH ($(date -u +%T))"
  JAVA_OPTS="-Xmx24g -Dspectralpeft.fourierft.forward=cufft" timeout -k 5 "${FUSED_JMH_LIMIT:-80}" \
    "$bundle/run-benchmarks.sh" "$d/jmh" "ForwardBackwardBenchmark\.(forward|backward)$" -p backend=cuda \
    -p dtype=float32 -p tokens=1,256,4096 -wi 1 -w 200ms -i 2 -r 300ms -f 0 > "$d/jmh.log" 2>&1 \
    || echo "   JMH FAILED OR CUT SHORT (see fused/jmh.log)"
  grep -E "p0.50 " "$d/jmh/jmh.txt" 2>/dev/null || true
  # last, the same sections for TLoRA's ring apply (1280, R = 1: 54-70 µs per forward for W0·T's 1280 rows, about
  # 2 TFLOPS; the next thing to tune for TLoRA at T = 4096)
  if command -v ncu > /dev/null; then
    echo "== ncu: tlora_ring_apply ($(date -u +%T))"
    timeout -k 5 90 ncu --section LaunchStats --section Occupancy --section SpeedOfLight \
      --section MemoryWorkloadAnalysis_Tables -k "regex:^tlora_ring_apply$" -c 1 "$java" -Xmx8g \
      -Dspectralpeft.profile.only="^forward 1280x1280 R=1 T=4096 " -cp "$cp" org.spectralpeft.bench.TLoRAStageProfile \
      "$d/ncu-tlora.md" > "$d/ncu-tlora.txt" 2>&1 || echo "   NCU FAILED OR CUT SHORT (see fused/ncu-tlora.txt)"
    grep -E "Duration|Achieved Occupancy|Memory Throughput|Bank|Registers Per|Block Limit" "$d/ncu-tlora.txt" | head -12 \
      || true
  fi
}

# About 3 minutes, for what is left of a lease: the host's time per driver and library call (check/host-overhead.md),
# the stage profile of the mixed batches at T = 4096 on both routes with the host passes of each call
# (check/mixed-stages.md), then JMH, short, of the default routes: FourierFT's forward and backward (T = 1, 256, 4096), its mixed batches
# (T = 256 and 4096; 1, 16 and T distinct adapters) and FouRA's forward at r = 16 (check/jmh/); then FouRA's
# forward routes at T = 1 and 16 (stage profile, check/foura-stages.md) and JMH of its one-launch route and of the
# SGEMMs at T = 1 to 8 (-Dspectralpeft.foura.forward=small and gemm, check/small/ and check/gemm/: where the
# default's switch between them belongs), and its forward and forward + backward at T = 4096 with the products of
# thin output split in 1 and 8 parts (-Dspectralpeft.foura.splitK), each with the products into y and ∂x on cuBLAS
# and on foura_add_product (-Dspectralpeft.foura.expand=gemm and kernel; check/split*-*/); then TLoRA's forward +
# backward at R = 1 with the cores' gradients through C and without it (-Dspectralpeft.tlora.cuda.gradient=gram and
# kronecker, check/tlora-*/: the default goes to the faster) and the stage profile of the kronecker route at T = 4096
# (check/tlora-stages.md); then FourierFT's forward and backward at T = 256 and 4096 with the fused kernels' FFT
# passes of two and of three radix-2 stages (-Dspectralpeft.fourierft.fftPass=radix4 and radix8, check/fft-*/);
# then every opt-in route beside its default, case by case (bench/route_decisions.py: check/decisions.md); packed
# at the end.
run_check() {
  local d=$out/check
  mkdir -p "$d"
  echo "== host time per call ($(date -u +%T))"
  timeout -k 5 "${CHECK_HOST_LIMIT:-25}" "$bundle/jre/bin/java" -Xmx4g -cp "$(classpath)" \
    org.spectralpeft.bench.HostOverheadProfile "$d/host-overhead.md" > "$d/host-overhead.log" 2>&1 \
    || echo "   HostOverheadProfile FAILED OR CUT SHORT (see check/host-overhead.log)"
  grep -E "^\| " "$d/host-overhead.md" 2>/dev/null || true
  echo "== mixed batches at T = 4096, both routes, with their host passes ($(date -u +%T))"
  timeout -k 5 "${CHECK_MIXED_LIMIT:-45}" "$bundle/jre/bin/java" -Xmx8g \
    -Dspectralpeft.profile.only='^mixed (forward|backward) (\(fused kernel\) )?4096x4096 n=1000 T=4096' -cp "$(classpath)" \
    org.spectralpeft.fourierft.cuda.StageProfile "$d/mixed-stages.md" > "$d/mixed-stages.log" 2>&1 \
    || echo "   StageProfile FAILED OR CUT SHORT (see check/mixed-stages.log)"
  grep -E "^## |^wall|^\| (resolve|resident|device rows|token rows|tokens by|gradient tiles|gradients)" "$d/mixed-stages.md" \
    2>/dev/null | sed 's/ (p10[^)]*)//' || true
  echo "== JMH, default routes ($(date -u +%T))"
  JAVA_OPTS="-Xmx24g" timeout -k 5 "${CHECK_JMH_LIMIT:-75}" "$bundle/run-benchmarks.sh" "$d/jmh" \
    "ForwardBackwardBenchmark\.(forward|backward)$|\.MixedBatchBenchmark\.(mixed|mixedBackward)$|FouRABenchmark\.forward$" \
    -p backend=cuda -p dtype=float32 -p tokens=256,4096 -p distinct=1,0 -p ids=same,fresh -p rank=16 -wi 1 -w 200ms \
    -i 2 -r 300ms \
    -f 0 > "$d/jmh.log" 2>&1 || echo "   JMH FAILED OR CUT SHORT (see check/jmh.log; bench/jmh_log.py reads it back)"
  grep -E "p0.50 " "$d/jmh/jmh.txt" 2>/dev/null || true
  echo "== FouRA's small-T forward routes: stage profile, then JMH of the one-launch route ($(date -u +%T))"
  timeout -k 5 "${CHECK_FOURA_LIMIT:-35}" "$bundle/jre/bin/java" -Xmx8g -Dspectralpeft.profile.only='^forward (\(kernels\) |\(tiled\) |\(small\) |\(gemm\) )?[0-9].* T=(1|16) ' \
    -cp "$(classpath)" org.spectralpeft.bench.FouRAStageProfile "$d/foura-stages.md" > "$d/foura-stages.log" 2>&1 \
    || echo "   FouRAStageProfile FAILED OR CUT SHORT (see check/foura-stages.log)"
  grep -E "^## |^wall" "$d/foura-stages.md" 2>/dev/null | paste - - | sed 's/ (p10[^)]*)//' || true
  local route
  for route in small gemm; do
    JAVA_OPTS="-Xmx8g -Dspectralpeft.foura.forward=$route" timeout -k 5 "${CHECK_SMALL_LIMIT:-25}" \
      "$bundle/run-benchmarks.sh" "$d/$route" "FouRABenchmark\.forward$" -p backend=cuda -p tokens=1,2,4,8 -p rank=16 \
      -wi 1 -w 200ms -i 2 -r 300ms -f 0 > "$d/$route.log" 2>&1 || echo "   $route JMH FAILED OR CUT SHORT (see check/$route.log)"
    echo "   -Dspectralpeft.foura.forward=$route:"
    grep -E "p0.50 " "$d/$route/jmh.txt" 2>/dev/null || true
  done
  echo "== FouRA's forward and forward + backward at T = 4096, thin products split, products into y on the kernel ($(date -u +%T))"
  local split expand
  for split in 1 8; do
    for expand in gemm kernel; do
      JAVA_OPTS="-Xmx8g -Dspectralpeft.foura.splitK=$split -Dspectralpeft.foura.expand=$expand" timeout -k 5 \
        "${CHECK_SPLIT_LIMIT:-20}" "$bundle/run-benchmarks.sh" "$d/split$split-$expand" "FouRABenchmark\.forward" \
        -p backend=cuda -p tokens=4096 -p rank=16 -wi 1 -w 200ms -i 2 -r 300ms -f 0 > "$d/split$split-$expand.log" 2>&1 \
        || echo "   split $split, expand $expand JMH FAILED OR CUT SHORT (see check/split$split-$expand.log)"
      echo "   -Dspectralpeft.foura.splitK=$split -Dspectralpeft.foura.expand=$expand:"
      grep -E "p0.50 " "$d/split$split-$expand/jmh.txt" 2>/dev/null || true
    done
  done
  echo "== TLoRA forward + backward at R = 1, the cores' gradients through C or without it ($(date -u +%T))"
  local gradients
  for gradients in gram kronecker; do
    JAVA_OPTS="-Xmx8g -Dspectralpeft.tlora.cuda.gradient=$gradients" timeout -k 5 "${CHECK_TLORA_LIMIT:-25}" \
      "$bundle/run-benchmarks.sh" "$d/tlora-$gradients" "TLoRABenchmark\.forwardBackward$" -p backend=cuda -p ring=1 \
      -wi 1 -w 200ms -i 2 -r 300ms -f 0 > "$d/tlora-$gradients.log" 2>&1 \
      || echo "   $gradients JMH FAILED OR CUT SHORT (see check/tlora-$gradients.log)"
    echo "   -Dspectralpeft.tlora.cuda.gradient=$gradients:"
    grep -E "p0.50 " "$d/tlora-$gradients/jmh.txt" 2>/dev/null || true
  done
  timeout -k 5 "${CHECK_TLORA_PROFILE_LIMIT:-20}" "$bundle/jre/bin/java" -Xmx8g -Dspectralpeft.tlora.cuda.gradient=kronecker \
    -Dspectralpeft.profile.only='^forward \+ backward [0-9x]* R=1 T=4096 ' -cp "$(classpath)" \
    org.spectralpeft.bench.TLoRAStageProfile "$d/tlora-stages.md" > "$d/tlora-stages.log" 2>&1 \
    || echo "   TLoRAStageProfile FAILED OR CUT SHORT (see check/tlora-stages.log)"
  grep -E "^## |^wall|tlora_kron|cublasSgemm" "$d/tlora-stages.md" 2>/dev/null | sed 's/ (p10[^)]*)//' || true
  echo "== FourierFT's fused kernels: FFT passes of two or of three radix-2 stages ($(date -u +%T))"
  local passes
  for passes in radix4 radix8; do
    JAVA_OPTS="-Xmx8g -Dspectralpeft.fourierft.fftPass=$passes" timeout -k 5 "${CHECK_FFT_LIMIT:-20}" \
      "$bundle/run-benchmarks.sh" "$d/fft-$passes" "ForwardBackwardBenchmark\.(forward|backward)$" -p backend=cuda \
      -p dtype=float32 -p tokens=256,4096 -wi 1 -w 200ms -i 2 -r 300ms -f 0 > "$d/fft-$passes.log" 2>&1 \
      || echo "   $passes JMH FAILED OR CUT SHORT (see check/fft-$passes.log)"
    echo "   -Dspectralpeft.fourierft.fftPass=$passes:"
    grep -E "p0.50 " "$d/fft-$passes/jmh.txt" 2>/dev/null || true
  done
  echo "== the routes side by side (bench/route_decisions.py, check/decisions.md)"
  rm -f "$d/decisions.md"
  "$python" bench/route_decisions.py "$d" --out "$d/decisions.md" || echo "   ROUTE DECISIONS FAILED"
}

# OUT_DIR packed into SUITE_ARCHIVE, when that is set (replaced whole, never left half written)
pack() {
  [ -n "${SUITE_ARCHIVE:-}" ] || return 0
  tar -czf "$SUITE_ARCHIVE.tmp" -C "$(dirname "$out")" "$(basename "$out")" && mv "$SUITE_ARCHIVE.tmp" "$SUITE_ARCHIVE" \
    || echo "   PACKING $out FAILED"
}

classpath() {
  local e=("$bundle/spectral-peft.jar" "$bundle/spectral-peft-tests.jar") j
  for j in "$bundle"/lib/*.jar; do e+=("$j"); done
  (IFS=:; echo "${e[*]}")
}

# shellcheck source=cuda-env.sh
source "$here/cuda-env.sh" > /dev/null
case $stage in
  tests) run_tests ;;
  bench) run_bench ;;
  peers) run_peers ;;
  foura) run_foura ;;
  tlora) run_tlora ;;
  mixed) run_mixed ;;
  fused) run_fused; pack ;;
  check) run_check; pack ;;
  all) run_tests; run_bench; run_peers; run_foura; run_tlora; run_mixed ;;
  short) run_short ;;
  *) echo "error: unknown stage $stage (tests, bench, peers, foura, tlora, mixed, fused, check, all or short)" >&2; exit 2 ;;
esac
