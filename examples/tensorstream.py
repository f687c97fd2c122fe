#!/usr/bin/env python3
"""Read and write tensor streams (docs/tensor-stream.md) from Python: one file, numpy + zstandard.

    import tensorstream as ts
    arrays = ts.read(open("emb.tsr", "rb"))              # {name: numpy array}
    ts.write(open("out.tsr", "wb"), {"mean": m, "var": v}, meta={"mean": {"model": "x"}})

    with ts.Writer(sys.stdout.buffer) as w:              # rows as they come; ENDS only on success
        i = w.add("embedding", "f32", row_shape=[384])
        for block in blocks: w.append(i, block)

    python3 examples/tensorstream.py FILE.tsr            # prints names, dtypes, shapes (or the rule broken)

A reader refuses what the format forbids: `StreamError.rule` names the rule (the same names as
the Swift reader's StreamRule and tests/conformance/invalid/*.tsr). bf16 is widened to float32
when read; write bf16 by passing dtype="bf16" with float32 values (rounded to nearest even).
Needs numpy and zstandard (pip install numpy zstandard).
"""
import struct
import sys

import numpy as np
import zstandard

__all__ = ["read", "read_with_info", "write", "Reader", "Writer", "StreamError", "TensorInfo"]

MAGIC = b"\x28\xb5\x2f\xfd"
MAX_RECORD = 1 << 30
MAX_RANK, MAX_NAME, MAX_META, MAX_TENSORS = 8, 1024, 4096, 1 << 20
DATA_PREFIX = 16
CODES = {1: "f16", 2: "bf16", 3: "f32", 4: "f64", 5: "i8", 6: "i16", 7: "i32", 8: "i64",
         9: "u8", 10: "u16", 11: "u32", 12: "u64", 13: "bool"}
NAMES = {v: k for k, v in CODES.items()}
NUMPY = {"f16": "<f2", "bf16": "<u2", "f32": "<f4", "f64": "<f8", "i8": "i1", "i16": "<i2", "i32": "<i4",
         "i64": "<i8", "u8": "u1", "u16": "<u2", "u32": "<u4", "u64": "<u8", "bool": "?"}
FROM_NUMPY = {np.dtype(v).str: k for k, v in NUMPY.items() if k != "bf16"}


class StreamError(ValueError):
    """The input breaks rule `rule` of the format."""

    def __init__(self, rule, message):
        super().__init__(f"{message} [{rule}]")
        self.rule = rule


class TensorInfo:
    def __init__(self, name, dtype, row_shape, rows, scalar, meta):
        self.name, self.dtype, self.row_shape, self.rows = name, dtype, list(row_shape), rows
        self.scalar, self.meta = scalar, meta

    def __repr__(self):
        return f"TensorInfo({self.name!r}, {self.dtype}, rows={self.rows}, row_shape={self.row_shape})"


# -- reading ---------------------------------------------------------------------------------

def _frames(f, chunk=1 << 16):
    """The content of each zstd frame of `f`, one at a time (a record each)."""
    buf = f.read(chunk)
    if not buf:
        raise StreamError("empty", "empty input: expected a tensor stream")
    first = True
    while True:
        while len(buf) < 4:
            more = f.read(chunk)
            if not more:
                break
            buf += more
        if not buf:
            return
        if buf[:4] != MAGIC:
            if len(buf) < 4 and (MAGIC.startswith(buf) or not first):
                raise StreamError("cut-off", "stream cut off in the middle of a record")
            raise StreamError("not-zstd", "not a tensor stream")
        first = False
        d = zstandard.ZstdDecompressor().decompressobj()
        out = []
        size = 0
        while True:
            try:
                part = d.decompress(buf)
            except zstandard.ZstdError as e:
                raise StreamError("damaged-frame", f"damaged stream (zstd: {e})") from None
            out.append(part)
            size += len(part)
            if size >= 8:
                (length,) = struct.unpack_from("<I", out[0] if len(out[0]) >= 8 else b"".join(out), 4)
                if length > MAX_RECORD:
                    raise StreamError("record-size", f"a record of {length} bytes is larger than {MAX_RECORD}")
                if size > 8 + length:
                    raise StreamError("frame-record", "damaged stream (a frame holds more than its record)")
            if d.eof:
                buf = d.unused_data
                break
            buf = f.read(chunk)
            if not buf:
                raise StreamError("cut-off", "stream cut off in the middle of a record")
        yield b"".join(out)


class _Body:
    """Fields of a record body, refusing to read past its end (as rule `short`)."""

    def __init__(self, body, what, short):
        self.b, self.o, self.what, self.short = body, 0, what, short

    def take(self, fmt):
        n = struct.calcsize(fmt)
        if self.o + n > len(self.b):
            raise StreamError(self.short, f"damaged {self.what} record (a field runs past its end)")
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += n
        return v if len(v) > 1 else v[0]

    def text(self, n):
        if self.o + n > len(self.b):
            raise StreamError(self.short, f"damaged {self.what} record (a field runs past its end)")
        raw = bytes(self.b[self.o:self.o + n])
        self.o += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StreamError("head-utf8", f"damaged {self.what} record (a string is not valid UTF-8)") from None

    def remaining(self):
        return len(self.b) - self.o


def _unshuffle(raw, size):
    return raw.reshape(size, -1).T.reshape(-1) if size > 1 and raw.size else raw


class Reader:
    """Iterates a stream's events, checking every rule: ("tensor", info) when a tensor first
    appears, ("data", info, array) for each chunk of rows. Holds one record at a time."""

    def __init__(self, f):
        self.f = f
        self.tensors = {}  # name -> TensorInfo, in order of appearance

    def __iter__(self):
        in_segment, segments = False, 0
        for rec in _frames(self.f):
            if len(rec) < 8:
                raise StreamError("frame-record", f"damaged stream (a frame of {len(rec)} bytes holds no record)")
            tag, length = struct.unpack_from("<4sI", rec, 0)
            if length != len(rec) - 8:
                raise StreamError("frame-record", f"damaged stream (record of {length} bytes in a frame of {len(rec)})")
            body = memoryview(rec)[8:]
            if not in_segment:
                if tag != b"TSR1":
                    raise StreamError("no-start", f"not a tensor stream (a segment starts with {tag!r}, not TSR1)")
                in_segment, segments = True, segments + 1
                ids, rows, declared, names = [], [], [], set()
            elif tag == b"HEAD":
                info = self._head(body, ids, names)
                ids.append(info)
                rows.append(0)
                declared.append(info.rows)
                if info.name in self.tensors:
                    old = self.tensors[info.name]
                    old.rows = old.rows + info.rows if old.rows is not None and info.rows is not None else None
                    ids[-1] = old
                else:
                    self.tensors[info.name] = info
                    yield ("tensor", info)
            elif tag == b"DATA":
                r = _Body(body, "DATA", "data-length")
                tid, filt, r1, r2, r3, nrows = r.take("<IBBBBQ")
                if tid >= len(ids):
                    raise StreamError("data-id", f"DATA for tensor id {tid} before its HEAD")
                if filt > 1:
                    raise StreamError("data-filter", f"damaged DATA record (unknown filter {filt})")
                if (r1, r2, r3) != (0, 0, 0):
                    raise StreamError("data-reserved", "damaged DATA record (non-zero reserved bytes)")
                t = ids[tid]
                dt = np.dtype(NUMPY[t.dtype])
                row_bytes = dt.itemsize * int(np.prod(t.row_shape, dtype=np.int64))
                if nrows > MAX_RECORD or nrows * row_bytes != r.remaining():
                    raise StreamError("data-length", f"damaged DATA record for {t.name!r}: "
                                      f"{r.remaining()} bytes for {nrows} rows of {row_bytes} bytes")
                if t.scalar and (nrows != 1 or rows[tid] != 0):
                    raise StreamError("scalar-rows", f"0-d tensor {t.name!r} has more than one element")
                rows[tid] += nrows
                if declared[tid] is not None and rows[tid] > declared[tid]:
                    raise StreamError("data-rows", f"tensor {t.name!r} has more rows than its header declares")
                raw = np.frombuffer(body[DATA_PREFIX:], dtype=np.uint8)
                if filt == 1:
                    raw = _unshuffle(raw, dt.itemsize)
                a = raw.view(dt)
                if t.dtype == "bf16":
                    a = (a.astype("<u4") << 16).view("<f4")
                yield ("data", t, a.reshape(() if t.scalar else [nrows] + t.row_shape))
            elif tag == b"ENDS":
                r = _Body(body, "ENDS", "ends-count")
                count = r.take("<I")
                if count != len(ids) or r.remaining() != 8 * count:
                    raise StreamError("ends-count", f"damaged end record ({count} tensors; the segment declared {len(ids)})")
                for i, total in enumerate(struct.unpack_from(f"<{count}Q", body, 4)):
                    if total != rows[i] or (declared[i] is not None and declared[i] != rows[i]):
                        raise StreamError("ends-rows", f"tensor {ids[i].name!r} lost rows: {rows[i]} arrived, {total} written")
                in_segment = False
            elif tag == b"TSR1":
                raise StreamError("start-in-segment", "a stream was cut off and another one follows it")
            else:
                raise StreamError("unknown-tag", f"unknown record {tag!r}")
        if in_segment:
            raise StreamError("cut-off", "stream cut off (no end record): its producer may have failed")

    def _head(self, body, ids, names):
        r = _Body(body, "HEAD", "head-length")
        tid = r.take("<I")
        if tid != len(ids):
            raise StreamError("head-id", f"damaged HEAD record (tensor id {tid} out of sequence)")
        if len(ids) >= MAX_TENSORS:
            raise StreamError("segment-tensors", "too many tensors in one segment")
        code = r.take("<B")
        if code not in CODES:
            raise StreamError("head-dtype", f"unknown dtype code {code}")
        rank, flags, reserved = r.take("<BBB")
        if rank > MAX_RANK:
            raise StreamError("head-rank", f"rank {rank} exceeds {MAX_RANK}")
        if flags & ~1 or reserved:
            raise StreamError("head-reserved", f"damaged HEAD record (flags {flags}, reserved byte {reserved})")
        shape = [r.take("<Q") for _ in range(rank)]
        if any(d > (1 << 62) - 1 for d in shape):
            raise StreamError("row-size", "a dimension is impossible")
        if rank and not flags & 1 and shape[0]:
            raise StreamError("head-reserved", "damaged HEAD record (row count given but not declared)")
        n = r.take("<H")
        if not 1 <= n <= MAX_NAME:
            raise StreamError("head-name", f"tensor name of {n} bytes (1 to {MAX_NAME})")
        name = r.text(n)
        count = r.take("<I")
        if count > MAX_META:
            raise StreamError("head-meta-count", f"tensor {name!r} has {count} metadata entries")
        meta = {}
        for _ in range(count):
            k = r.text(r.take("<H"))
            meta[k] = r.text(r.take("<I"))
        if r.remaining():
            raise StreamError("head-length", f"damaged HEAD record ({r.remaining()} trailing bytes)")
        if name in names:
            raise StreamError("head-duplicate", f"tensor {name!r} declared twice in one segment")
        names.add(name)
        dtype = CODES[code]
        row_bytes = np.dtype(NUMPY[dtype]).itemsize
        for d in shape[1:]:
            row_bytes *= max(d, 1)
            if row_bytes > MAX_RECORD - DATA_PREFIX:
                raise StreamError("row-size", f"tensor {name!r} declares rows of more than {MAX_RECORD - DATA_PREFIX} bytes")
        info = TensorInfo(name, dtype, shape[1:], (shape[0] if flags & 1 else None) if rank else 1, rank == 0, meta)
        old = self.tensors.get(name)
        if old is not None:
            if old.scalar or info.scalar:
                raise StreamError("continuation", f"0-d tensor {name!r} appears in two segments")
            if old.dtype != info.dtype or old.row_shape != info.row_shape:
                raise StreamError("continuation", f"tensor {name!r} is {info.dtype}{info.row_shape} here but "
                                  f"{old.dtype}{old.row_shape} earlier; concatenated streams must agree")
        return info


def read_with_info(f):
    """({name: array}, {name: TensorInfo}); bf16 is widened to float32."""
    reader, chunks = Reader(f), {}
    for ev in reader:
        if ev[0] == "tensor":
            chunks[ev[1].name] = []
        else:
            chunks[ev[1].name].append(ev[2])
    out = {}
    for name, info in reader.tensors.items():
        dt = "<f4" if info.dtype == "bf16" else NUMPY[info.dtype]
        parts = chunks[name]
        out[name] = parts[0] if info.scalar else np.concatenate(parts) if parts else np.zeros([0] + info.row_shape, dt)
    return out, reader.tensors


def read(f):
    """{name: numpy array} in order of appearance."""
    return read_with_info(f)[0]


# -- writing ---------------------------------------------------------------------------------

class Writer:
    """Writes one segment: add() tensors, append() their rows in any interleaving, finish().
    As a context manager, finishes only when the block ends without an exception, so a
    producer that fails never leaves a stream that reads as complete."""

    def __init__(self, f, level=3, shuffle=True, chunk_bytes=1 << 20):
        self.f, self.shuffle, self.chunk_bytes = f, shuffle, chunk_bytes
        self.c = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
        self.infos, self.written, self.started, self.finished = [], [], False, False

    def _emit(self, tag, body):
        if not self.started:
            self.started = True
            self._emit(b"TSR1", b"")
        self.f.write(self.c.compress(tag + struct.pack("<I", len(body)) + body))

    def add(self, name, dtype, row_shape=(), rows=None, meta=None, scalar=False):
        """Declares a tensor; returns its id. `rows` declares the row count in advance."""
        if self.finished:
            raise ValueError("stream already finished")
        raw = name.encode()
        if not 1 <= len(raw) <= MAX_NAME or any(i.name == name for i in self.infos):
            raise ValueError(f"bad or duplicate tensor name {name!r}")
        if dtype not in NAMES or len(row_shape) + (0 if scalar else 1) > MAX_RANK:
            raise ValueError(f"tensor {name!r}: bad dtype {dtype} or rank")
        meta = dict(meta or {})
        shape = [] if scalar else [rows or 0] + list(row_shape)
        b = struct.pack("<IBBBB", len(self.infos), NAMES[dtype], len(shape), 1 if scalar or rows is not None else 0, 0)
        b += struct.pack(f"<{len(shape)}Q", *shape) + struct.pack("<H", len(raw)) + raw
        b += struct.pack("<I", len(meta))
        for k in sorted(meta, key=lambda k: k.encode()):
            kb, vb = k.encode(), str(meta[k]).encode()
            b += struct.pack("<H", len(kb)) + kb + struct.pack("<I", len(vb)) + vb
        self._emit(b"HEAD", b)
        self.infos.append(TensorInfo(name, dtype, row_shape, 1 if scalar else rows, scalar, meta))
        self.written.append(0)
        return len(self.infos) - 1

    def append(self, tid, array):
        """Appends rows (an array of shape [n] + row_shape; for a 0-d tensor, its one value)."""
        t = self.infos[tid]
        a = np.asarray(array)
        if t.dtype == "bf16":
            u = np.ascontiguousarray(a, dtype="<f4").view("<u4")
            a = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")   # round to nearest even
            a = np.where(np.isnan(np.asarray(array, dtype="<f4")), np.uint16(0x7FC0), a)
        a = np.array(a, dtype=NUMPY[t.dtype], order="C")
        if t.scalar:
            if a.shape != () or self.written[tid]:
                raise ValueError(f"tensor {t.name!r} is 0-d: it takes exactly one value")
            n = 1
        else:
            if list(a.shape[1:]) != list(t.row_shape) or a.ndim < 1:
                raise ValueError(f"tensor {t.name!r}: rows of shape {list(a.shape[1:])}, expected {t.row_shape}")
            n = a.shape[0]
        if t.rows is not None and self.written[tid] + n > t.rows:
            raise ValueError(f"tensor {t.name!r}: more rows than declared ({t.rows})")
        size = a.dtype.itemsize
        row_bytes = max(1, a.nbytes // max(n, 1))
        per = max(1, self.chunk_bytes // row_bytes)
        flat = a.reshape(n, -1) if not t.scalar else a.reshape(1, 1)
        start = 0
        while True:
            part = flat[start:start + per]
            payload = part.view(np.uint8).reshape(-1)
            filt = 1 if self.shuffle and size > 1 else 0
            if filt:
                payload = payload.reshape(-1, size).T.reshape(-1)
            self._emit(b"DATA", struct.pack("<IB3xQ", tid, filt, len(part)) + payload.tobytes())
            start += per
            if start >= n:
                break
        self.written[tid] += n

    def finish(self):
        if self.finished:
            return
        for t, n in zip(self.infos, self.written):
            if t.rows is not None and t.rows != n:
                raise ValueError(f"tensor {t.name!r} declared {t.rows} rows but {n} were written")
        self._emit(b"ENDS", struct.pack(f"<I{len(self.written)}Q", len(self.written), *self.written))
        self.finished = True

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.finish()
        return False


def write(f, tensors, meta=None, dtypes=None, **options):
    """Writes {name: array} (or (name, array) pairs) as one segment. `meta` maps names to
    {key: value}; `dtypes` maps names to a stream dtype (such as "bf16") other than the array's."""
    items = tensors.items() if hasattr(tensors, "items") else tensors
    with Writer(f, **options) as w:
        for name, array in items:
            a = np.asarray(array)
            dt = (dtypes or {}).get(name) or FROM_NUMPY.get(a.dtype.newbyteorder("<").str if a.dtype.itemsize > 1 else a.dtype.str)
            if dt is None:
                raise ValueError(f"tensor {name!r}: numpy dtype {a.dtype} has no stream dtype")
            tid = w.add(name, dt, a.shape[1:], rows=a.shape[0] if a.ndim else None,
                        meta=(meta or {}).get(name), scalar=a.ndim == 0)
            w.append(tid, a)


def main(prog="tensorstream"):
    """Prints each tensor's name, dtype and shape; exit 65 with the rule on an invalid stream."""
    src = open(sys.argv[1], "rb") if len(sys.argv) > 1 else sys.stdin.buffer
    try:
        for name, a in read(src).items():
            print(name, a.dtype, list(a.shape))
    except StreamError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(65)


if __name__ == "__main__":
    main()
