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
#   JAVA_OPTS    JVM options of the benchmark JVM (default: -Xmx of 70 % of the machine's memory, at most 24g, and
#                --add-modules jdk.incubator.vector;
#                the 64-layer batch on the CPU holds a 4.3 GB output)
#
# In a bundle made by native-build/make-bundle.sh it uses the bundle's JRE and jars (no Java or Maven needed
# on the GPU machine). Run from a repository checkout it uses target/ (it runs `mvn test-compile` first) and
# the Java on the PATH; Maven runs offline (-o) when the local repository (~/.m2) has every artifact, as after
# any earlier build of the project, and only otherwise goes to the network (a fresh machine needs it once).
# Timings: JMH SampleTime, reported as percentiles; read the median (p0.50). After JMH's own output, a summary
# (org.spectralpeft.bench.JmhRun) lists each result's median, score ± error and error/score in percent, flagged
# over 5 %.
set -euo pipefail

# -Xmx of 70 % of MemTotal, at most 24g (4g where /proc/meminfo cannot be read)
default_heap() {
  local kb mib
  kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || true)
  if [ -z "$kb" ]; then echo "-Xmx4g"; return; fi
  mib=$((kb * 7 / 10 / 1024))
  if [ "$mib" -gt $((24 * 1024)) ]; then mib=$((24 * 1024)); fi
  echo "-Xmx${mib}m"
}

# Maven offline first; online only when that fails (artifacts missing from the local repository)
mvn_offline_first() {
  if ! mvn -B -q -o "$@"; then
    echo "   offline Maven failed (artifacts missing from ~/.m2?): retrying with the network" >&2
    mvn -B -q "$@"
  fi
}

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
  (cd "$repo" && mvn_offline_first -DskipTests test-compile)
  (cd "$repo" && mvn_offline_first dependency:build-classpath -Dmdep.includeScope=test \
    -Dmdep.outputFile="$results/classpath.txt")
  classpath=$repo/target/classes:$repo/target/test-classes:$(cat "$results/classpath.txt")
fi

# The Vector API module turns on the CPU backend's vector loops (README, "The CPU backend's vector
# loops"); JAVA_OPTS replaces both.
jvm_opts=${JAVA_OPTS:-"$(default_heap) --add-modules jdk.incubator.vector"}
echo "== JMH, results in $results (benchmark JVM options: $jvm_opts)"
# The options go to this JVM as well: with -f 0 JMH runs the benchmarks in it, and a system property that picks a
# kernel (say -Dspectralpeft.fourierft.forward=fused) would otherwise reach only forked JVMs.
# shellcheck disable=SC2086
"$java" $jvm_opts -cp "$classpath" org.spectralpeft.bench.JmhRun \
  -jvmArgsAppend "$jvm_opts" -rf json -rff "$results/jmh.json" "$@" 2>&1 | tee "$results/jmh.txt"
