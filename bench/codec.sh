#!/usr/bin/env bash
# Side-by-side benchmark of the tensor-stream codec on real float32 embeddings:
#   encode/decode throughput against the zstd CLI on the same raw bytes at the same level,
#   against numpy save+load with zstd (the python route), and compression with/without shuffle.
# Usage: bash bench/codec.sh [EMBEDDINGS.npy]    (default: all real embeddings of the data dir)
# Needs: a release build (make release), hyperfine, python3 with numpy and zstandard.
set -euo pipefail
cd "$(dirname "$0")/.."
T=.build/release/tensor
DATA=${DATA:-/work/data-full}
PY=${PY:-python3}
LEVEL=${LEVEL:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

if [ $# -ge 1 ]; then cp "$1" "$W/emb.npy"; else
  "$PY" - "$DATA" "$W/emb.npy" <<'PY'
import glob, sys, numpy as np
parts = []
for f in sorted(glob.glob(sys.argv[1] + "/*.npz")) + sorted(glob.glob(sys.argv[1] + "/*.npy")):
    d = np.load(f)
    arrays = [d] if isinstance(d, np.ndarray) else [d[k] for k in d.files]
    parts += [a.astype(np.float32) for a in arrays if a.dtype.kind == "f" and a.ndim == 2 and a.shape[1] in (384, 512)]
x = np.concatenate([p[:, :384] for p in parts if p.shape[1] >= 384])
np.save(sys.argv[2], x)
print(f"real embeddings: {x.shape[0]} rows x {x.shape[1]} ({x.nbytes/1e6:.1f} MB) from {len(parts)} arrays")
PY
fi
"$PY" -c "import numpy as np; np.load('$W/emb.npy').tofile('$W/raw.f32')"
MB=$(stat -c %s "$W/raw.f32"); MB=$(echo "$MB/1000000" | bc -l)

$T from npy "$W/emb.npy" --name embedding --level $LEVEL > "$W/shuf.tsr"
$T from npy "$W/emb.npy" --name embedding --level $LEVEL --no-shuffle > "$W/plain.tsr"
zstd -q -$LEVEL -c "$W/raw.f32" > "$W/raw.zst"

hyperfine -N -w 2 -r 10 --export-json "$W/h.json" \
  "zstd -q -$LEVEL -c $W/raw.f32" \
  "$T from npy $W/emb.npy --level $LEVEL --no-shuffle" \
  "$T from npy $W/emb.npy --level $LEVEL" \
  "zstd -q -d -c $W/raw.zst" \
  "$T info $W/plain.tsr" \
  "$T info $W/shuf.tsr" >/dev/null

"$PY" - "$W" "$MB" "$LEVEL" <<'PY'
import io, json, os, sys, time
import numpy as np
w, mb, level = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
h = {r["command"]: min(r["times"]) for r in json.load(open(w + "/h.json"))["results"]}
names = list(h)
zc, oc_plain, oc_shuf, zd, od_plain, od_shuf = (h[n] for n in names)
try:
    import zstandard
    x = np.load(w + "/emb.npy")
    def enc():
        b = io.BytesIO(); np.save(b, x); return zstandard.ZstdCompressor(level=level).compress(b.getvalue())
    def dec(c):
        return np.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(c)))
    c = enc()
    ne = min(timeit for timeit in [(lambda t0: (enc(), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(7)])
    nd = min((lambda t0: (dec(c), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(7))
except ImportError:
    ne = nd = float("nan")
size = lambda f: os.path.getsize(os.path.join(w, f))
raw = size("raw.f32")
print(f"data: {mb:.1f} MB of real float32 embeddings, zstd level {level}; best of 10 runs (hyperfine -N)")
print(f"{'':34s}{'seconds':>9s}{'MB/s':>9s}")
rows = [("encode  zstd CLI (raw bytes)", zc), ("encode  tensor, no shuffle", oc_plain), ("encode  tensor, shuffle", oc_shuf),
        ("encode  numpy save + zstandard", ne),
        ("decode  zstd -d (raw bytes)", zd), ("decode  tensor, no shuffle", od_plain), ("decode  tensor, shuffle", od_shuf),
        ("decode  zstandard + numpy load", nd)]
for n, t in rows:
    print(f"{n:34s}{t:9.4f}{mb / t:9.0f}")
print()
print(f"ratio decode tensor/zstd -d (same bytes, no shuffle): {od_plain / zd:.2f}x time")
print(f"ratio decode tensor(shuffle)/zstd -d:                 {od_shuf / zd:.2f}x time")
print(f"ratio encode tensor/zstd CLI (no shuffle):            {oc_plain / zc:.2f}x time")
print(f"end to end (encode+decode) numpy route / tensor shuffle: {(ne + nd) / (oc_shuf + od_shuf):.2f}x")
print(f"compressed size: zstd raw {size('raw.zst') / raw:.3f}, tensor no shuffle {size('plain.tsr') / raw:.3f}, "
      f"tensor shuffle {size('shuf.tsr') / raw:.3f} of {raw} bytes")
PY
