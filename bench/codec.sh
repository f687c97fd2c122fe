#!/usr/bin/env bash
# Side-by-side benchmark of the tensor-stream codec on real float32 embeddings:
#   encode/decode throughput against the zstd CLI on the same raw bytes at the same level,
#   against numpy save+load with zstd (the python route), and compression with/without shuffle.
# Usage: bash bench/codec.sh [EMBEDDINGS.npy]    (default: all real embeddings of the data dir:
#   DATA, default data/full when `make data` has made it, else the bundled examples/data)
# Needs: a release build (make release), hyperfine, PY (default .venv/bin/python, `make venv`)
# with numpy and zstandard.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/summary.sh
T=.build/release/tensor
if [ -z "${DATA:-}" ]; then DATA=data/full; [ -d "$DATA" ] || DATA=examples/data; fi
PY=${PY:-.venv/bin/python}
LEVEL=${LEVEL:-1}           # the tools' default level
MB_TARGET=${CODEC_MB:-128}   # repeat the rows up to this many MB
RUNS=${CODEC_RUNS:-10}       # hyperfine runs per command
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

if [ $# -ge 1 ]; then cp "$1" "$W/emb.npy"; else
  "$PY" - "$DATA" "$W/emb.npy" "$MB_TARGET" <<'PY'
import glob, sys, numpy as np
parts, halves = [], 0
for f in sorted(glob.glob(sys.argv[1] + "/*.npz")) + sorted(glob.glob(sys.argv[1] + "/*.npy")):
    d = np.load(f)
    arrays = [d] if isinstance(d, np.ndarray) else [d[k] for k in d.files]
    arrays = [a for a in arrays if a.dtype.kind == "f" and a.ndim == 2 and a.shape[1] in (384, 512)]
    halves += sum(a.dtype == np.float16 for a in arrays)
    parts += [a.astype(np.float32) for a in arrays]
x = np.concatenate([p[:, :384] for p in parts if p.shape[1] >= 384])
n = len(x)
# Repeat the real rows up to ~128 MB (CODEC_MB) so that process start-up does not dominate. The repeats are
# 10+ MB apart: farther than zstd's window at these levels, so they compress no better than new rows.
reps = max(1, int(np.ceil(float(sys.argv[3]) * 1e6 / x.nbytes)))
x = np.concatenate([x] * reps)
if halves:
    # The bundled data are float16: widened, their 13 low mantissa bits are zero, which compresses
    # far better than real float32 embeddings. Fill those bits with noise (fresh in every repeat),
    # as a float32 model's output has them: sign and exponent stay those of the real embeddings.
    rng = np.random.default_rng(0)
    x = (x.view(np.uint32) | rng.integers(0, 1 << 13, size=x.shape, dtype=np.uint32)).view(np.float32)
    print(f"({halves} float16 arrays: their 13 low mantissa bits filled with noise, like float32 embeddings)")
np.save(sys.argv[2], x)
print(f"real embeddings: {n} distinct rows x 384 from {len(parts)} arrays, repeated {reps}x: {x.nbytes/1e6:.1f} MB")
PY
fi
"$PY" -c "import numpy as np; np.load('$W/emb.npy').tofile('$W/raw.f32')"
MB=$(stat -c %s "$W/raw.f32"); MB=$(echo "$MB/1000000" | bc -l)

$T from npy "$W/emb.npy" --name embedding --level $LEVEL > "$W/shuf.tsr"
$T from npy "$W/emb.npy" --name embedding --level $LEVEL --no-shuffle > "$W/plain.tsr"
zstd -q -$LEVEL -c "$W/raw.f32" > "$W/raw.zst"

hyperfine -N -w 2 -r "$RUNS" --export-json "$W/h.json" \
  "zstd -q -$LEVEL -c $W/raw.f32" \
  "$T from npy $W/emb.npy --level $LEVEL --no-shuffle" \
  "$T from npy $W/emb.npy --level $LEVEL" \
  "zstd -q -d -c $W/raw.zst" \
  "$T info $W/plain.tsr" \
  "$T info $W/shuf.tsr" >/dev/null

"$PY" - "$W" "$MB" "$LEVEL" "$RUNS" <<'PY'
import io, json, os, sys, time
import numpy as np
w, mb, level, runs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
# CPU time (user + system, mean over runs) is what this shared, noisy 2-core machine measures
# best; wall-clock minima are printed beside it.
res = json.load(open(w + "/h.json"))["results"]
wall = [min(r["times"]) for r in res]
cpu = [r["user"] + r["system"] for r in res]
zc, oc_plain, oc_shuf, zd, od_plain, od_shuf = cpu
try:
    import zstandard
    x = np.load(w + "/emb.npy")
    def enc():
        b = io.BytesIO(); np.save(b, x); return zstandard.ZstdCompressor(level=level).compress(b.getvalue())
    def dec(c):
        return np.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(c)))
    c = enc()
    def cpu_time(f, n=7):
        ts = []
        for _ in range(n):
            t0 = time.process_time(); f(); ts.append(time.process_time() - t0)
        return sum(ts) / n
    ne = cpu_time(enc)
    nd = cpu_time(lambda: dec(c))
except ImportError:
    ne = nd = float("nan")
size = lambda f: os.path.getsize(os.path.join(w, f))
raw = size("raw.f32")
print(f"data: {mb:.1f} MB of real float32 embeddings, zstd level {level}; {runs} runs each (hyperfine -N)")
print(f"{'':34s}{'cpu s':>9s}{'MB/s':>9s}{'wall min':>10s}")
wall = wall[:3] + [float("nan")] + wall[3:] + [float("nan")]   # the python route is timed in-process
rows = [("encode  zstd CLI (raw bytes)", zc), ("encode  tensor, no shuffle", oc_plain), ("encode  tensor, shuffle", oc_shuf),
        ("encode  numpy save + zstandard", ne),
        ("decode  zstd -d (raw bytes)", zd), ("decode  tensor, no shuffle", od_plain), ("decode  tensor, shuffle", od_shuf),
        ("decode  zstandard + numpy load", nd)]
for (n, t), wt in zip(rows, wall):
    print(f"{n:34s}{t:9.4f}{mb / t:9.0f}{wt:10.4f}")
print()
print(f"ratio decode tensor/zstd -d (same bytes, no shuffle): {od_plain / zd:.2f}x time")
print(f"ratio decode tensor(shuffle)/zstd -d:                 {od_shuf / zd:.2f}x time")
print(f"ratio encode tensor/zstd CLI (no shuffle):            {oc_plain / zc:.2f}x time")
print(f"end to end (encode+decode) numpy route / tensor shuffle: {(ne + nd) / (oc_shuf + od_shuf):.2f}x")
print(f"compressed size: zstd raw {size('raw.zst') / raw:.3f}, tensor no shuffle {size('plain.tsr') / raw:.3f}, "
      f"tensor shuffle {size('shuf.tsr') / raw:.3f} of {raw} bytes")
with open(w + "/results.txt", "w") as f:
    f.write(f"{mb:.0f} {od_shuf:.4f} {zd:.4f} {oc_shuf:.4f} {zc:.4f} {od_plain:.4f}\n")
PY
read -r mb od_shuf zd oc_shuf zc od_plain < "$W/results.txt"
bench_result tensor "decode $mb MB of embeddings (shuffled), cpu s; peer zstd -d of the raw bytes" "$od_shuf" "$zd"
bench_result tensor "decode $mb MB, no shuffle, cpu s; peer zstd -d" "$od_plain" "$zd"
bench_result tensor "encode $mb MB (shuffled, level $LEVEL), cpu s; peer zstd -$LEVEL" "$oc_shuf" "$zc"
