#!/usr/bin/env bash
# Fuzz the readers of untrusted input with libFuzzer.
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]          (make fuzz)
#   RUNS=10000000 bash scripts/fuzz.sh 0 records                  (a fixed number of runs)
# Targets: records (the record rules without zstd: fast), stream (whole zstd streams), csv,
# stack (sve-train --stack), npy, npz, safetensors. Seeds: fuzz/corpus/<target>/ and, for
# records and stream, the conformance corpus (tests/conformance). Crashes land in
# fuzz/crashes/<target>/; each one found becomes a regression test (copy it to the corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}; shift || true
TARGETS=${*:-records stream csv stack npy npz safetensors}
ALL="records stream csv stack npy npz safetensors"
B=.build/fuzz
mkdir -p "$B"
FLAGS=(-sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6)
lib() {  # lib MODULE FILES... : a static library and its module, fuzzer-instrumented
  local m=$1; shift
  swiftc "${FLAGS[@]}" -emit-library -static -emit-module -module-name "$m" -I "$B" -I Sources/CZstd -I Sources/CZlib \
    -emit-module-path "$B/$m.swiftmodule" "$@" -o "$B/lib$m.a"
}
if [ ! -f "$B/.built" ] || [ -n "$(find Sources/Failure Sources/TensorStream Sources/TensorFormats Sources/SVE/Stack.swift fuzz/Harness.swift scripts/fuzz.sh -newer "$B/.built")" ]; then
  lib Failure Sources/Failure/*.swift
  lib TensorStream -enable-testing Sources/TensorStream/*.swift   # (the harness lowers internal thresholds)
  lib TensorFormats Sources/TensorFormats/*.swift
  lib SVEStack Sources/SVE/Stack.swift
  for t in $ALL; do
    libs=(-lTensorFormats -lTensorStream -lFailure -lzstd -lz)
    [ "$t" = stack ] && libs=(-lSVEStack -lFailure)
    swiftc "${FLAGS[@]}" -D "FUZZ_$t" -I "$B" -I Sources/CZstd -I Sources/CZlib fuzz/Harness.swift \
      -L "$B" "${libs[@]}" -o "$B/fuzz-$t" 2>"$B/link-$t.log" \
      || { cat "$B/link-$t.log"; exit 1; }   # (the log otherwise holds only ld.gold's ASan export warnings)
  done
  touch "$B/.built"
fi
for t in $TARGETS; do
  mkdir -p "fuzz/crashes/$t" "$B/corpus-$t"
  seeds=("fuzz/corpus/$t")
  [ "$t" = stream ] && seeds+=(tests/conformance/valid tests/conformance/invalid)
  len=65536; [ "$t" = records ] && len=4096; { [ "$t" = csv ] || [ "$t" = stack ]; } && len=1024
  limit=(-max_total_time="$SECS"); [ -n "${RUNS:-}" ] && limit=(-runs="$RUNS")
  echo "== $t: ${RUNS:-$SECS s}${RUNS:+ runs}, max_len $len"
  "$B/fuzz-$t" "${limit[@]}" -rss_limit_mb=2048 -timeout=10 -max_len=$len -print_final_stats=1 \
    -artifact_prefix="fuzz/crashes/$t/" "$B/corpus-$t" "${seeds[@]}" 2>&1 \
    | grep -E "^#[0-9]+.*(DONE|pulse)|Done [0-9]+ runs|ERROR|SUMMARY|stat::number_of_executed_units|stat::average_exec_per_sec" | tail -5
done
