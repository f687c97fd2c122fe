#!/usr/bin/env bash
# Reads the output of `swift test` (XCTest) and prints one true line:
#   tests: N passed, N failed, N skipped
# counting test cases, not assertions (XCTest's own "N failures" counts failed assertions). A test
# that started and never finished (the process crashed) counts as failed. Exits 1 when any test
# failed or none ran, so the line can never say "0 failed" over a broken run.
set -euo pipefail
log=${1:--}
awk '
  /^Test Case .* started/ { started++ }
  /^Test Case .* passed \(/ { passed++ }
  /^Test Case .* failed \(/ { failed++ }
  /^Test Case .* skipped \(/ { skipped++ }
  END {
    crashed = started - passed - failed - skipped
    if (crashed < 0) crashed = 0
    failed += crashed
    note = ""
    if (crashed > 0) note = " (" crashed " did not finish: the test process crashed)"
    if (started == 0) note = " (no test ran)"
    printf "tests: %d passed, %d failed, %d skipped%s\n", passed, failed, skipped, note
    exit (failed > 0 || started == 0) ? 1 : 0
  }' "$log"
