# Sourced by the benchmarks: bench_result appends one line of `make bench`'s summary table.
#   bench_result TOOL WHAT OURS PEER [RATIO]
# OURS and PEER are figures of the same unit, named in WHAT ("decode 134 MB, cpu s"; lower is
# better); RATIO defaults to PEER / OURS (above 1: this project is faster). The line goes to the
# file named by $BENCH_SUMMARY (bench/all.sh sets it; without it nothing is written):
#   RESULT<TAB>tool<TAB>what<TAB>ours<TAB>peer<TAB>ratio
# Python benchmarks write the same line (bench/summary.py).
bench_result() {
    [ -n "${BENCH_SUMMARY:-}" ] || return 0
    local ratio=${5:-}
    [ -n "$ratio" ] || ratio=$(awk -v a="$3" -v b="$4" 'BEGIN { if (a + 0 > 0) printf "%.2f", b / a; else print "-" }')
    printf 'RESULT\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$ratio" >> "$BENCH_SUMMARY"
}
