#!/usr/bin/env python3
"""A complete reader of the tensor-stream format (docs/tensor-stream.md) in one page.

    python3 examples/read_tensor_stream.py < emb.tsr          # prints names, dtypes, shapes
    from read_tensor_stream import read; arrays = read(open("emb.tsr", "rb"))

Needs numpy, and either the `zstandard` module or the `zstd` command.
"""
import struct
import subprocess
import sys

import numpy as np

DTYPES = {1: "<f2", 2: "bf16", 3: "<f4", 4: "<f8", 5: "i1", 6: "<i2", 7: "<i4", 8: "<i8",
          9: "u1", 10: "<u2", 11: "<u4", 12: "<u8", 13: "?"}


def decompressed(f):
    """The concatenated content of all zstd frames (records are self-delimiting)."""
    try:
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    except ImportError:
        return subprocess.run(["zstd", "-dcq"], stdin=f, stdout=subprocess.PIPE, check=True).stdout


def read(f):
    """Returns {name: numpy array} (bf16 is widened to float32), checking the end records."""
    buf, pos = decompressed(f), 0
    tensors, order, in_segment = {}, [], False
    while pos < len(buf):
        tag, length = struct.unpack_from("<4sI", buf, pos)
        body = memoryview(buf)[pos + 8: pos + 8 + length]
        pos += 8 + length
        if tag == b"TSR1":
            assert not in_segment, "stream cut off before another one"
            in_segment, ids, rows = True, [], []
        elif tag == b"HEAD":
            tid, code, rank, flags = struct.unpack_from("<IBBB", body, 0)
            shape = list(struct.unpack_from(f"<{rank}Q", body, 8))
            o = 8 + 8 * rank
            (n,) = struct.unpack_from("<H", body, o)
            name = bytes(body[o + 2: o + 2 + n]).decode()
            if name not in tensors:
                tensors[name] = {"dtype": DTYPES[code], "row": shape[1:], "scalar": rank == 0, "chunks": []}
                order.append(name)
            ids.append(name)
            rows.append(0)
        elif tag == b"DATA":
            tid, filt, nrows = struct.unpack_from("<IB3xQ", body, 0)
            t = tensors[ids[tid]]
            raw = np.frombuffer(body[16:], dtype=np.uint8)
            size = 2 if t["dtype"] == "bf16" else np.dtype(t["dtype"]).itemsize
            if filt == 1 and size > 1:
                raw = raw.reshape(size, -1).T.copy().reshape(-1)
            if t["dtype"] == "bf16":
                a = (raw.view("<u2").astype("<u4") << 16).view("<f4")
            else:
                a = raw.view(t["dtype"])
            t["chunks"].append(a.reshape([nrows] + t["row"]) if not t["scalar"] else a.reshape(()))
            rows[tid] += nrows
        elif tag == b"ENDS":
            (count,) = struct.unpack_from("<I", body, 0)
            assert list(struct.unpack_from(f"<{count}Q", body, 4)) == rows, "rows lost"
            in_segment = False
        else:
            raise ValueError(f"unknown record {tag!r}")
    if in_segment or not order:
        raise ValueError("truncated or empty tensor stream")
    out = {}
    for name in order:
        t = tensors[name]
        out[name] = t["chunks"][0] if t["scalar"] else np.concatenate(t["chunks"]) if t["chunks"] \
            else np.zeros([0] + t["row"], dtype=t["dtype"].replace("bf16", "<f4"))
    return out


if __name__ == "__main__":
    src = open(sys.argv[1], "rb") if len(sys.argv) > 1 else sys.stdin.buffer
    for name, a in read(src).items():
        print(name, a.dtype, list(a.shape))
