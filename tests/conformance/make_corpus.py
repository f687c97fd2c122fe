#!/usr/bin/env python3
"""Writes the tensor-stream conformance corpus (docs/tensor-stream.md): valid/*.tsr with the
tensors each must read as (valid/*.json), and invalid/<rule>[.<variant>].tsr, each breaking
exactly one rule of "What a reader must refuse" in an otherwise valid stream (one that ends with
a proper ENDS record). Records are forged by hand here, independently of any reader or writer.

    .venv/bin/python tests/conformance/make_corpus.py      (needs numpy and zstandard)
"""
import json
import os
import struct

import numpy as np
import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
CODES = {"f16": (1, "<f2"), "bf16": (2, "<u2"), "f32": (3, "<f4"), "f64": (4, "<f8"), "i8": (5, "i1"),
         "i16": (6, "<i2"), "i32": (7, "<i4"), "i64": (8, "<i8"), "u8": (9, "u1"), "u16": (10, "<u2"),
         "u32": (11, "<u4"), "u64": (12, "<u8"), "bool": (13, "?")}
Z = zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=True)


def frame(content):
    return Z.compress(content)


def rec(tag, body=b""):
    return frame(tag + struct.pack("<I", len(body)) + body)


def head(tid, dtype, shape, name, declared=True, meta=None, flags=None, reserved=0, name_bytes=None, meta_count=None):
    code = CODES[dtype][0] if isinstance(dtype, str) else dtype
    fl = (1 if declared else 0) if flags is None else flags
    b = struct.pack("<IBBBB", tid, code, len(shape), fl, reserved) + struct.pack(f"<{len(shape)}Q", *shape)
    nb = name.encode() if name_bytes is None else name_bytes
    b += struct.pack("<H", len(nb)) + nb
    meta = meta or {}
    b += struct.pack("<I", len(meta) if meta_count is None else meta_count)
    for k in sorted(meta):
        kb, vb = k.encode(), meta[k].encode()
        b += struct.pack("<H", len(kb)) + kb + struct.pack("<I", len(vb)) + vb
    return rec(b"HEAD", b)


def data(tid, rows, payload, filt=0, reserved=b"\0\0\0"):
    return rec(b"DATA", struct.pack("<IB", tid, filt) + reserved + struct.pack("<Q", rows) + payload)


def shuffled(a):
    raw = np.ascontiguousarray(a).view(np.uint8).reshape(-1)
    s = a.dtype.itemsize
    return raw.reshape(-1, s).T.tobytes() if s > 1 else raw.tobytes()


def ends(*rows):
    return rec(b"ENDS", struct.pack(f"<I{len(rows)}Q", len(rows), *rows))


START = rec(b"TSR1")


def values(a, dtype):
    if dtype == "bf16":
        return (a.astype("<u4") << 16).view("<f4").reshape(-1).tolist()
    if dtype == "bool":
        return [int(v) for v in a.reshape(-1)]
    return a.reshape(-1).tolist()


def put(kind, name, content, expect=None):
    path = os.path.join(HERE, kind, name + ".tsr")
    with open(path, "wb") as f:
        f.write(content)
    if expect is not None:
        with open(os.path.join(HERE, kind, name + ".json"), "w") as f:
            json.dump({"tensors": expect}, f, indent=1)
            f.write("\n")


def main():
    for kind in ("valid", "invalid"):
        os.makedirs(os.path.join(HERE, kind), exist_ok=True)
        for old in os.listdir(os.path.join(HERE, kind)):
            os.remove(os.path.join(HERE, kind, old))

    # -- valid ------------------------------------------------------------------------------
    x = np.arange(6, dtype="<f4").reshape(2, 3) * 0.5
    y = np.array([3, -1, 7], dtype="<i8")
    c = np.array(0.25, dtype="<f8")
    put("valid", "basic",
        START + head(0, "f32", [2, 3], "x", meta={"model": "m", "a": "1"}) + data(0, 2, shuffled(x), filt=1)
        + head(1, "i64", [3], "labels") + data(1, 3, y.tobytes())
        + head(2, "f64", [], "c") + data(2, 1, c.tobytes(), filt=1) + ends(2, 3, 1),
        [{"name": "x", "dtype": "f32", "shape": [2, 3], "meta": {"a": "1", "model": "m"}, "values": values(x, "f32")},
         {"name": "labels", "dtype": "i64", "shape": [3], "meta": {}, "values": values(y, "i64")},
         {"name": "c", "dtype": "f64", "shape": [], "meta": {}, "values": [0.25]}])

    expect, body, ids = [], START, []
    for i, (dt, (code, npdt)) in enumerate(CODES.items()):
        n = 5
        if dt == "bool":
            a = np.array([1, 0, 1, 1, 0], dtype="?")
        elif dt == "bf16":
            a = (np.array([1.0, -2.5, 0.0, 3.0e10, -1e-3], dtype="<f4").view("<u4") >> 16).astype("<u2")
        elif dt.startswith("f"):
            a = np.array([1.0, -2.5, 0.0, 1024.0, 0.125], dtype=npdt)
        elif dt.startswith("u"):
            a = np.array([0, 1, 2, 200, np.iinfo(npdt).max], dtype=npdt)
        else:
            a = np.array([np.iinfo(npdt).min, -1, 0, 1, np.iinfo(npdt).max], dtype=npdt)
        a = a.reshape(n, 1)
        body += head(i, dt, [n, 1], "t_" + dt) + data(i, 2, shuffled(a[:2]), filt=1) + data(i, 3, a[2:].tobytes())
        expect.append({"name": "t_" + dt, "dtype": dt, "shape": [n, 1], "meta": {}, "values": values(a, dt)})
    put("valid", "all-dtypes", body + ends(*[5] * len(CODES)), expect)

    # Two segments continue the same tensors (`cat a.tsr b.tsr`); rows undeclared in one.
    a1 = np.array([[1, 2], [3, 4]], dtype="<i4")
    a2 = np.array([[5, 6]], dtype="<i4")
    seg1 = START + head(0, "i32", [2, 2], "a") + data(0, 2, a1.tobytes()) + ends(2)
    seg2 = START + head(0, "u8", [0], "b", declared=False) + head(1, "i32", [0, 2], "a", declared=False) \
        + data(1, 1, a2.tobytes()) + ends(0, 1)
    put("valid", "concatenated", seg1 + seg2,
        [{"name": "a", "dtype": "i32", "shape": [3, 2], "meta": {}, "values": [1, 2, 3, 4, 5, 6]},
         {"name": "b", "dtype": "u8", "shape": [0], "meta": {}, "values": []}])

    # Interleaved chunks, a zero-sized row shape, non-ASCII names and metadata.
    m = np.arange(8, dtype="<f2").reshape(4, 2)
    v = np.arange(8, dtype="<f2").reshape(4, 2) + 100
    put("valid", "interleaved",
        START + head(0, "f16", [4, 2], "mean") + head(1, "f16", [4, 2], "vär", meta={"ключ": "値"})
        + head(2, "f32", [3, 0], "empty") + data(2, 3, b"")
        + data(0, 1, shuffled(m[:1]), filt=1) + data(1, 3, shuffled(v[:3]), filt=1)
        + data(0, 3, shuffled(m[1:]), filt=1) + data(1, 1, v[3:].tobytes()) + ends(4, 4, 3),
        [{"name": "mean", "dtype": "f16", "shape": [4, 2], "meta": {}, "values": values(m, "f16")},
         {"name": "vär", "dtype": "f16", "shape": [4, 2], "meta": {"ключ": "値"}, "values": values(v, "f16")},
         {"name": "empty", "dtype": "f32", "shape": [3, 0], "meta": {}, "values": []}])

    put("valid", "no-tensors", START + ends(), [])
    # Level 19 and a record whose content size is not in the frame header (streaming compressor).
    zs = zstandard.ZstdCompressor(level=19, write_checksum=True, write_content_size=False)
    body = struct.pack("<IBBBB", 0, 3, 1, 1, 0) + struct.pack("<Q", 3) + struct.pack("<H", 1) + b"z" + struct.pack("<I", 0)
    z = np.array([1.5, 2.5, -3.5], dtype="<f4")
    d = struct.pack("<IB3xQ", 0, 1, 3) + shuffled(z)
    def streamed(content):
        co = zs.compressobj()
        return co.compress(content) + co.flush()
    put("valid", "no-content-size",
        START + streamed(b"HEAD" + struct.pack("<I", len(body)) + body)
        + streamed(b"DATA" + struct.pack("<I", len(d)) + d) + ends(3),
        [{"name": "z", "dtype": "f32", "shape": [3], "meta": {}, "values": z.tolist()}])

    # -- invalid: one rule each -------------------------------------------------------------
    ok = np.zeros((2, 2), dtype="<f4").tobytes()
    H = head(0, "f32", [2, 2], "x")
    D = data(0, 2, ok)
    good = START + H + D + ends(2)
    bad = {
        "empty": b"",
        "not-zstd": b"name,value\n1,2\n",
        "not-zstd.after-segment": good + b"JUNKJUNKJUNK",
        "damaged-frame": good[:len(START + H) + len(D) - 1] + bytes([good[len(START + H) + len(D) - 1] ^ 0x55]) + ends(2),
        "frame-record": START + frame(b"HEAD" + struct.pack("<I", 0) + b"ENDS" + struct.pack("<I", 4) + b"\0\0\0\0") + ends(0),
        "frame-record.short": START + frame(b"ENDS\0") + ends(),
        # A shuffled DATA record whose frame holds more, or less, than the record's length says
        # (readers that unshuffle while decompressing check these on another path).
        "frame-record.data-longer": START + H + frame(b"DATA" + struct.pack("<I", 32) + struct.pack("<IB3xQ", 0, 1, 2)
                                                       + b"\0" * 20) + ends(2),
        "frame-record.data-shorter": START + H + frame(b"DATA" + struct.pack("<I", 32) + struct.pack("<IB3xQ", 0, 1, 2)
                                                        + b"\0" * 12) + ends(2),
        "frame-record.longer": START + H + frame(b"DATA" + struct.pack("<I", 32) + struct.pack("<IB3xQ", 0, 0, 2)
                                                  + b"\0" * 20) + ends(2),
        "frame-record.shorter": START + H + frame(b"DATA" + struct.pack("<I", 32) + struct.pack("<IB3xQ", 0, 0, 2)
                                                   + b"\0" * 12) + ends(2),
        "record-size": START + frame(b"DATA" + struct.pack("<I", (1 << 30) + 1) + b"\0" * 16) + ends(),
        "unknown-tag": START + rec(b"WHAT") + ends(),
        "no-start": H + D + ends(2),
        "no-start.second-segment": good + H + D + ends(2),
        "start-in-segment": START + H + START + D + ends(2),
        "head-id": START + head(1, "f32", [2, 2], "x") + D + ends(2),
        "head-dtype": START + head(0, 14, [2, 2], "x") + D + ends(2),
        "head-dtype.zero": START + head(0, 0, [2, 2], "x") + D + ends(2),
        "head-rank": START + head(0, "f32", [2] + [1] * 8, "x") + ends(0),
        "head-reserved": START + head(0, "f32", [2, 2], "x", reserved=1) + D + ends(2),
        "head-reserved.flags": START + head(0, "f32", [2, 2], "x", flags=3) + D + ends(2),
        "head-reserved.undeclared-rows": START + head(0, "f32", [2, 2], "x", declared=False) + D + ends(2),
        "head-name": START + head(0, "f32", [2, 2], "") + D + ends(2),
        "head-name.long": START + head(0, "f32", [2, 2], "n" * 1025) + D + ends(2),
        "head-duplicate": START + H + head(1, "f32", [0, 2], "x") + D + ends(2, 0),
        "head-meta-count": START + head(0, "f32", [2, 2], "x", meta_count=4097) + D + ends(2),
        "head-utf8": START + head(0, "f32", [2, 2], "", name_bytes=b"\xffx") + D + ends(2),
        "head-length": START + rec(b"HEAD", b"\0\0\0\0\3\2\1\0" + struct.pack("<QQ", 2, 2) + b"\1\0x\0\0\0\0!") + D + ends(2),
        "head-length.short": START + rec(b"HEAD", b"\0\0\0\0\3\2\1\0" + struct.pack("<Q", 2)) + ends(0),
        "row-size": START + head(0, "f32", [1, 1 << 28, 2], "x") + ends(0),
        "row-size.dimension": START + head(0, "f32", [1 << 63, 2], "x") + ends(0),
        "continuation": good + START + head(0, "f32", [0, 3], "x", declared=False) + ends(0),
        "continuation.dtype": good + START + head(0, "f64", [0, 2], "x", declared=False) + ends(0),
        "continuation.scalar": (lambda s: s + s)(START + head(0, "f64", [], "s") + data(0, 1, b"\0" * 8) + ends(1)),
        "data-id": START + H + data(1, 2, ok) + D + ends(2),
        "data-filter": START + H + data(0, 2, ok, filt=2) + ends(2),
        "data-reserved": START + H + data(0, 2, ok, reserved=b"\0\1\0") + ends(2),
        "data-length": START + H + data(0, 2, ok + b"\0") + ends(2),
        "data-length.short": START + H + rec(b"DATA", b"\0\0\0\0\0\0\0\0") + D + ends(2),
        "data-rows": START + H + D + data(0, 1, ok[:8]) + ends(3),
        "scalar-rows": START + head(0, "f64", [], "s") + data(0, 1, b"\0" * 8) + data(0, 1, b"\0" * 8) + ends(2),
        "scalar-rows.two": START + head(0, "f64", [], "s") + data(0, 2, b"\0" * 16) + ends(2),
        "ends-count": START + H + D + ends(2, 0),
        "ends-count.length": START + H + D + rec(b"ENDS", struct.pack("<IQ", 1, 2) + b"\0"),
        "ends-rows": START + head(0, "f32", [0, 2], "x", declared=False) + D + ends(3),
        "ends-rows.declared": START + head(0, "f32", [3, 2], "x") + D + ends(2),
        "cut-off": START + H + D,
        "cut-off.mid-frame": good[:-3],
        "cut-off.short-magic": b"\x28\xb5",
    }
    # An invalid UTF-8 metadata value (the template above has none).
    mb = struct.pack("<IBBBB", 0, 3, 2, 1, 0) + struct.pack("<QQ", 2, 2) + struct.pack("<H", 1) + b"x" \
        + struct.pack("<I", 1) + struct.pack("<H", 1) + b"k" + struct.pack("<I", 2) + b"\xc3\x28"
    bad["head-utf8.meta"] = START + rec(b"HEAD", mb) + D + ends(2)
    for name, content in bad.items():
        put("invalid", name, content)
    records_seeds()


def records_seeds():
    """The same streams as bare records (zstd frames undone): seeds for the records fuzzer."""
    out = os.path.join(HERE, "..", "..", "fuzz", "corpus", "records")
    os.makedirs(out, exist_ok=True)
    for kind in ("valid", "invalid"):
        for name in sorted(os.listdir(os.path.join(HERE, kind))):
            if not name.endswith(".tsr"):
                continue
            data, recs = open(os.path.join(HERE, kind, name), "rb").read(), []
            while data:
                try:
                    d = zstandard.ZstdDecompressor().decompressobj()
                    recs.append(d.decompress(data))
                    data = d.unused_data if d.eof else b""
                except zstandard.ZstdError:
                    break
            if recs:
                with open(os.path.join(out, f"{kind}-{name[:-4]}.rec"), "wb") as f:
                    f.write(b"".join(recs))


if __name__ == "__main__":
    main()
