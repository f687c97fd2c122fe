#!/usr/bin/env bash
# Fuzz the stream decoder and the npy, npz and safetensors readers with libFuzzer.
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (make fuzz)
# Crashes land in fuzz/crashes/<target>/; each one found becomes a regression test in
# Tests/TensorStreamTests/FuzzRegressionTests.swift (copy it to fuzz/regressions/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}; shift || true
TARGETS=${*:-stream npy npz safetensors}
B=.build/fuzz
mkdir -p "$B"
FLAGS=(-sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6)
if [ ! -f "$B/.built" ] || [ -n "$(find Sources/TensorStream Sources/TensorFormats fuzz/Harness.swift -newer "$B/.built")" ]; then
  swiftc "${FLAGS[@]}" -emit-library -static -emit-module -module-name TensorStream -I Sources/CZstd \
    -emit-module-path "$B/TensorStream.swiftmodule" Sources/TensorStream/*.swift -o "$B/libTensorStream.a"
  swiftc "${FLAGS[@]}" -emit-library -static -emit-module -module-name TensorFormats -I "$B" -I Sources/CZstd -I Sources/CZlib \
    -emit-module-path "$B/TensorFormats.swiftmodule" Sources/TensorFormats/*.swift -o "$B/libTensorFormats.a"
  for t in stream npy npz safetensors; do
    swiftc "${FLAGS[@]}" -D "FUZZ_$t" -I "$B" -I Sources/CZstd -I Sources/CZlib fuzz/Harness.swift \
      -L "$B" -lTensorFormats -lTensorStream -lzstd -lz -o "$B/fuzz-$t" 2>"$B/link-$t.log" \
      || { cat "$B/link-$t.log"; exit 1; }   # (the log otherwise holds only ld.gold's ASan export warnings)
  done
  touch "$B/.built"
fi
for t in $TARGETS; do
  mkdir -p "fuzz/crashes/$t" "$B/corpus-$t"
  echo "== $t: $SECS s"
  "$B/fuzz-$t" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -artifact_prefix="fuzz/crashes/$t/" "$B/corpus-$t" "fuzz/corpus/$t" 2>&1 \
    | grep -E "^#[0-9]+.*(DONE|pulse)|Done [0-9]+ runs|ERROR|SUMMARY" | tail -3
done
