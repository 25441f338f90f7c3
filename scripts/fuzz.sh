#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang, ASan + UBSan) and runs
# each for SECONDS (default 60), both at once. Fails if any target finds a
# crash, a leak, a sanitizer report or a broken property.
#
#   scripts/fuzz.sh [SECONDS]
#
# Seeds come from the build (build/fuzz/fuzz/corpus/*); what the fuzzers
# learn accumulates in build/fuzz/corpus-work/; crashing inputs land in
# build/fuzz/artifacts/. Reproduce one with: build/fuzz/fuzz/TARGET FILE
set -euo pipefail
seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
root=$PWD
targets=(fuzz_frame fuzz_dispatch)
declare -A seeds=([fuzz_frame]=frame [fuzz_dispatch]=dispatch)

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "${targets[@]}"

build="$root/build/fuzz"
mkdir -p "$build/artifacts" "$build/logs"
pids=()
for t in "${targets[@]}"; do
  work="$build/corpus-work/$t"
  mkdir -p "$work"
  echo "fuzz: $t for ${seconds}s (log: build/fuzz/logs/$t.log)"
  "$build/fuzz/$t" -max_total_time="$seconds" -max_len=65536 -timeout=25 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
    "$work" "$build/fuzz/corpus/${seeds[$t]}" >"$build/logs/$t.log" 2>&1 &
  pids+=($!)
done

failed=0
for i in "${!targets[@]}"; do
  t=${targets[$i]}
  if wait "${pids[$i]}"; then
    runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$build/logs/$t.log" | grep -oE '[0-9]+$' || echo '?')
    cov=$(grep -oE 'DONE +cov: [0-9]+' "$build/logs/$t.log" | grep -oE '[0-9]+$' || echo '?')
    echo "fuzz: $t passed: $runs inputs, coverage $cov edges"
  else
    failed=1
    echo "fuzz: $t FAILED; end of its log:" >&2
    tail -n 60 "$build/logs/$t.log" >&2
    for f in "$build/artifacts/$t-"*; do
      if [ -e "$f" ]; then echo "fuzz: artifact: $f (reproduce: $build/fuzz/$t $f)" >&2; fi
    done
  fi
done
exit "$failed"
