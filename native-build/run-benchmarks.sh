#!/usr/bin/env bash
# Runs the JMH benchmarks (jmh/ in the repository), CPU and GPU, and keeps their results.
#
# usage: run-benchmarks.sh [RESULTS_DIR] [JMH ARGS...]
#   RESULTS_DIR  where jmh.json and jmh.txt go (default: ./bench-results)
#   JMH ARGS     passed on to org.openjdk.jmh.Main: benchmark regexes and options, e.g.
#                  MaterializeBenchmark -p shape=4096x4096 -p backend=cuda
#                  -p backend=cpu            (CPU only; CUDA benchmarks also skip themselves without a GPU)
#                Put "--" before them when no RESULTS_DIR is given. With none, every benchmark runs.
# environment:
#   JAVA_OPTS    JVM options of the benchmark JVM (default: -Xmx24g; the 64-layer batch on the CPU needs it)
#
# In a bundle made by native-build/make-bundle.sh it uses the bundle's JRE and jars (no Java or Maven needed
# on the GPU machine). Run from a repository checkout it uses target/ (it runs `mvn test-compile` first) and
# the Java on the PATH. Timings: JMH SampleTime, reported as percentiles; read the median (p0.50).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results=./bench-results
if [ $# -gt 0 ] && [ "$1" = "--" ]; then
  shift
elif [ $# -gt 0 ] && [ "${1#-}" = "$1" ] && [[ "$1" != *Benchmark* ]]; then
  results=$1
  shift
  if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi
fi
mkdir -p "$results"
results=$(cd "$results" && pwd)

if [ -d "$here/jre" ]; then
  bundle=$here
  java=$bundle/jre/bin/java
  cp_entries=("$bundle/spectral-peft.jar" "$bundle/spectral-peft-tests.jar")
  for j in "$bundle"/lib/*.jar; do cp_entries+=("$j"); done
  classpath=$(IFS=:; echo "${cp_entries[*]}")
  # shellcheck source=cuda-env.sh
  source "$here/cuda-env.sh"
else
  repo=$(cd "$here/.." && pwd)
  java=java
  (cd "$repo" && mvn -B -q -DskipTests test-compile)
  deps=$(cd "$repo" && mvn -B -q dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=/dev/stdout)
  classpath=$repo/target/classes:$repo/target/test-classes:$deps
fi

echo "== JMH, results in $results"
"$java" -cp "$classpath" org.openjdk.jmh.Main \
  -jvmArgsAppend "${JAVA_OPTS:--Xmx24g}" -rf json -rff "$results/jmh.json" "$@" 2>&1 | tee "$results/jmh.txt"
