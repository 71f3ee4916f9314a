#!/usr/bin/env bash
# Runs the test suite from a bundle made by native-build/make-bundle.sh, on a machine that has an
# NVIDIA driver and the CUDA 13 libraries but no Java, no Maven and no network.
#
# usage: run-gpu-tests.sh [--all] [REPORTS_DIR] [LAUNCHER ARGS...]
#   --all         run every test, not only those tagged "gpu"
#   REPORTS_DIR   where the JUnit XML reports go (default: ./reports)
#   LAUNCHER ARGS passed on to the JUnit console launcher, e.g. --select-class=org.example.FooTest
#                 (an explicit selector replaces the class-path scan) or --exclude-tag=slow
#   Put "--" before the launcher arguments when no REPORTS_DIR is given.
# environment:
#   JAVA_OPTS     JVM options (default: -Xmx6g, as in the Maven build)
#   SPECTRALPEFT_REQUIRE_CUDA  1 (the default here): GPU test classes fail, rather than skip, when the
#                 CUDA backend does not open; 0 lets them skip (a dry run on a machine without a GPU)
#
# The script lives in the bundle root (next to jre/ and lib/); run from native-build/ it uses
# native-build/bundle/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -d "$here/jre" ]; then
  bundle=$here
elif [ -d "$here/bundle/jre" ]; then
  bundle=$here/bundle
else
  echo "error: no bundle next to $0 (expected jre/ and lib/); build one with native-build/make-bundle.sh" >&2
  exit 1
fi

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

all=0
args=()
for a in "$@"; do
  case $a in
    --all) all=1 ;;
    -h|--help) usage; exit 0 ;;
    *) args+=("$a") ;;
  esac
done
set -- ${args[@]+"${args[@]}"}

reports=./reports
if [ $# -gt 0 ] && [ "$1" = "--" ]; then
  shift
elif [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  reports=$1
  shift
  if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi
fi
mkdir -p "$reports"
reports=$(cd "$reports" && pwd)

# ---------------------------------------------------------------------------------------------
# shellcheck source=cuda-env.sh
source "$here/cuda-env.sh"

# ---------------------------------------------------------------------------------------------
java=$bundle/jre/bin/java
# modes can be lost when the bundle is copied around
for f in "$java" "$bundle/jre/lib/jspawnhelper"; do
  [ -e "$f" ] && [ ! -x "$f" ] && chmod +x "$f" 2>/dev/null || true
done
shopt -s nullglob
launcher=("$bundle"/lib/junit-platform-console-standalone-*.jar)
if [ ${#launcher[@]} -ne 1 ]; then
  echo "error: expected one junit-platform-console-standalone jar in $bundle/lib" >&2
  exit 1
fi
tests_jar=$bundle/spectral-peft-tests.jar
# Everything goes on the JVM's own class path (not the launcher's --class-path): tests that start a
# child JVM hand it java.class.path. The launcher jar holds the JUnit Platform, Jupiter and opentest4j,
# so their separate copies are left off to avoid duplicate classes.
cp_entries=("${launcher[0]}" "$bundle/spectral-peft.jar" "$tests_jar")
for j in "$bundle"/lib/*.jar; do
  case $(basename "$j") in
    junit-platform-console-standalone-*|junit-platform-*|junit-jupiter-*|opentest4j-*|apiguardian-api-*) ;;
    *) cp_entries+=("$j") ;;
  esac
done
classpath=$(IFS=:; echo "${cp_entries[*]}")

# an explicit selector cannot be combined with the class-path scan
explicit=0
for a in "$@"; do
  case $a in
    -cp) ;;
    --select-*|--scan-modules|-[ufdopcmri]|-[ufdopcmri]=*) explicit=1 ;;
  esac
done
selection=()
[ $explicit = 1 ] || selection=(--scan-class-path="$tests_jar")
filter=()
[ $all = 1 ] || filter=(--include-tag=gpu)

export SPECTRALPEFT_REQUIRE_CUDA=${SPECTRALPEFT_REQUIRE_CUDA:-1}
echo "== Java"
"$java" -version 2>&1 | sed 's/^/  /'
echo "== Tests ($([ $all = 1 ] && echo all || echo 'tag gpu')), reports in $reports"
# shellcheck disable=SC2086
# the committed test files travel in the bundle (test-resources/), so the tests find them from any directory
exec "$java" ${JAVA_OPTS:--Xmx6g} -Dspectralpeft.test.resources="$bundle/test-resources" -cp "$classpath" \
  org.junit.platform.console.ConsoleLauncher execute \
  --disable-banner --disable-ansi-colors \
  ${selection[@]+"${selection[@]}"} \
  --include-classname='^(Test.*|.+[.$]Test.*|.*Tests?|.*TestCase)$' \
  ${filter[@]+"${filter[@]}"} \
  --details=tree --details-theme=ascii \
  --reports-dir="$reports" \
  "$@"
