"""One line of `make bench`'s summary table, from a Python benchmark (see bench/summary.sh)."""
import os


def bench_result(tool, what, ours, peer, ratio=None):
    """Appends RESULT<TAB>tool<TAB>what<TAB>ours<TAB>peer<TAB>ratio to $BENCH_SUMMARY (if set).
    ours and peer share the unit named in `what` (lower is better); ratio defaults to peer/ours."""
    path = os.environ.get("BENCH_SUMMARY")
    if not path:
        return
    if ratio is None:
        ratio = peer / ours if ours > 0 else float("nan")
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    with open(path, "a") as f:
        f.write("\t".join(["RESULT", tool, what, fmt(ours), fmt(peer), f"{ratio:.2f}"]) + "\n")
