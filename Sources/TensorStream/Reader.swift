import CZstd

/// What the reader found next in a stream.
public enum StreamEvent {
    /// A tensor appeared for the first time; its description is `reader.tensors[index]`.
    case tensor(index: Int)
    /// Rows of tensor `index`, in C order, little-endian. The bytes stay valid only until the
    /// next call to `next()`: copy what you keep.
    case data(index: Int, rows: Int, bytes: UnsafeRawBufferPointer)
}

/// Reads a tensor stream record by record, in bounded memory: at most one record (and one
/// input buffer) is held at a time, whatever shapes the headers declare.
///
/// Concatenated streams read as one: a tensor whose name appeared in an earlier segment
/// continues it (dtype and row shape must agree); new names are new tensors.
public final class TensorStreamReader {
    public let label: String
    /// Every tensor seen so far, in order of first appearance. `rows` is what the headers
    /// declared (nil if any segment did not declare it); `rowsRead` counts what arrived.
    public private(set) var tensors: [TensorInfo] = []
    public private(set) var rowsRead: [Int] = []

    private let source: ByteSource
    private let dctx: OpaquePointer
    private var input: [UInt8]
    private var inPos = 0
    private var inSize = 0
    private var frame: UnsafeMutableRawPointer
    private var frameCapacity: Int
    private var scratch: UnsafeMutableRawPointer?
    private var scratchCapacity = 0
    private var inputEnded = false
    private var sawAnyByte = false

    // Per-segment state.
    private var inSegment = false
    private var segments = 0
    private var segmentTensors: [Int] = []      // segment id -> logical index
    private var segmentRows: [Int] = []         // rows seen per segment id
    private var segmentDeclared: [Int?] = []
    private var segmentNames: Set<String> = []
    private var scalarWritten: Set<Int> = []

    public init(_ source: ByteSource, label: String = "<stdin>") throws {
        self.source = source
        self.label = label
        guard let d = ZSTD_createDCtx() else { throw StreamError.io("zstd: out of memory") }
        dctx = d
        input = [UInt8](repeating: 0, count: ZSTD_DStreamInSize())
        frameCapacity = 1 << 16
        frame = UnsafeMutableRawPointer.allocate(byteCount: frameCapacity, alignment: 64)
    }

    deinit {
        ZSTD_freeDCtx(dctx)
        frame.deallocate()
        scratch?.deallocate()
    }

    /// Opens a file ("-" for standard input).
    public convenience init(path: String) throws {
        let src = try FileSource(path: path)
        try self.init(src, label: src.label)
    }

    /// Index of the tensor named `name`, if it has appeared.
    public func index(of name: String) -> Int? { tensors.firstIndex { $0.name == name } }

    /// The next event, or nil at the end of a complete stream.
    public func next() throws -> StreamEvent? {
        while true {
            guard let body = try nextRecord() else {
                if !sawAnyByte { throw StreamError.empty }
                if inSegment {
                    throw StreamError.truncated("\(label): stream cut off (no end record): its producer may have failed")
                }
                return nil
            }
            if let event = try handle(tag: body.tag, body: body.bytes) { return event }
        }
    }

    // MARK: - Records

    private func handle(tag: UInt32, body: UnsafeRawBufferPointer) throws -> StreamEvent? {
        if !inSegment {
            guard tag == Format.tagStart else {
                throw StreamError.invalid("\(label): not a tensor stream (a segment starts with \(Format.tagName(tag)), not TSR1)")
            }
            inSegment = true
            segments += 1
            segmentTensors = []; segmentRows = []; segmentDeclared = []; segmentNames = []
            return nil
        }
        switch tag {
        case Format.tagHead: return try head(body)
        case Format.tagData: return try data(body)
        case Format.tagEnd: try end(body); return nil
        case Format.tagStart:
            throw StreamError.truncated("\(label): a stream was cut off and another one follows it")
        default:
            throw StreamError.invalid("\(label): unknown record \(Format.tagName(tag))")
        }
    }

    private func head(_ body: UnsafeRawBufferPointer) throws -> StreamEvent? {
        var r = ByteReader(body, what: "HEAD")
        let id = Int(try r.u32())
        guard id == segmentTensors.count else {
            throw StreamError.invalid("\(label): damaged HEAD record (tensor id \(id) out of sequence)")
        }
        guard segmentTensors.count < 1 << 20 else { throw StreamError.invalid("\(label): too many tensors") }
        let code = try r.u8()
        guard let dtype = DType(rawValue: code) else {
            throw StreamError.invalid("\(label): unknown dtype code \(code)")
        }
        let rank = Int(try r.u8())
        let flags = try r.u8()
        _ = try r.u8()
        guard rank <= Format.maxRank else { throw StreamError.invalid("\(label): rank \(rank) exceeds \(Format.maxRank)") }
        var shape: [Int] = []
        for _ in 0..<rank {
            let d = try r.u64()
            guard d <= UInt64(Int64.max >> 1) else { throw StreamError.invalid("\(label): dimension \(d) is impossible") }
            shape.append(Int(d))
        }
        let nameLen = Int(try r.u16())
        guard nameLen > 0 else { throw StreamError.invalid("\(label): tensor with an empty name") }
        let name = try r.utf8(nameLen)
        let metaCount = Int(try r.u32())
        guard metaCount <= Format.maxMetaEntries else {
            throw StreamError.invalid("\(label): tensor '\(name)' has \(metaCount) metadata entries (at most \(Format.maxMetaEntries))")
        }
        var meta: [String: String] = [:]
        for _ in 0..<metaCount {
            let k = try r.utf8(Int(try r.u16()))
            let v = try r.utf8(Int(try r.u32()))
            meta[k] = v
        }
        guard r.remaining == 0 else { throw StreamError.invalid("\(label): damaged HEAD record (trailing bytes)") }
        guard !segmentNames.contains(name) else {
            throw StreamError.invalid("\(label): tensor '\(name)' declared twice in one stream")
        }
        var info: TensorInfo
        if rank == 0 {
            info = TensorInfo(name: name, dtype: dtype, shape: [], meta: meta)
        } else {
            info = TensorInfo(name: name, dtype: dtype, rowShape: Array(shape.dropFirst()),
                              rows: flags & 1 != 0 ? shape[0] : nil, meta: meta)
        }
        // A row must fit in one record: refuse shapes whose rows could never arrive. Zero
        // dimensions count as 1 here, so that no product of dimensions (a stride) can overflow.
        var rowBytes = dtype.size
        for d in info.rowShape {
            let (p, o) = rowBytes.multipliedReportingOverflow(by: max(d, 1))
            guard !o, p <= Format.maxRecordBody else {
                throw StreamError.invalid("\(label): tensor '\(name)' declares rows of more than \(Format.maxRecordBody) bytes")
            }
            rowBytes = p
        }
        segmentNames.insert(name)
        segmentRows.append(0)
        segmentDeclared.append(info.rows)
        if let existing = index(of: name) {
            let old = tensors[existing]
            guard old.dtype == info.dtype, old.rowShape == info.rowShape, !old.isScalar, !info.isScalar else {
                throw StreamError.invalid("\(label): tensor '\(name)' is \(info.signature) here but \(old.signature) earlier in the stream; concatenated streams must agree")
            }
            if let a = old.rows, let b = info.rows { tensors[existing].rows = a + b } else { tensors[existing].rows = nil }
            segmentTensors.append(existing)
            return nil
        }
        tensors.append(info)
        rowsRead.append(0)
        segmentTensors.append(tensors.count - 1)
        return .tensor(index: tensors.count - 1)
    }

    private func data(_ body: UnsafeRawBufferPointer) throws -> StreamEvent? {
        var r = ByteReader(body, what: "DATA")
        let id = Int(try r.u32())
        let filter = try r.u8()
        let reserved = (try r.u8(), try r.u8(), try r.u8())
        let rows64 = try r.u64()
        guard id < segmentTensors.count else {
            throw StreamError.invalid("\(label): DATA for tensor id \(id) before its HEAD")
        }
        guard filter <= Format.filterShuffle, reserved == (0, 0, 0) else {
            throw StreamError.invalid("\(label): damaged DATA record (unknown filter \(filter))")
        }
        let index = segmentTensors[id]
        let info = tensors[index]
        guard rows64 <= UInt64(Format.maxRecordBody) else {
            throw StreamError.invalid("\(label): damaged DATA record (\(rows64) rows)")
        }
        let rows = Int(rows64)
        guard rows * info.rowBytes == r.remaining else {
            throw StreamError.invalid("\(label): damaged DATA record for '\(info.name)': \(r.remaining) bytes for \(rows) rows of \(info.rowBytes) bytes")
        }
        if info.isScalar {
            guard rows == 1, segmentRows[id] == 0 else {
                throw StreamError.invalid("\(label): 0-d tensor '\(info.name)' has more than one element")
            }
        }
        segmentRows[id] += rows
        if let declared = segmentDeclared[id], segmentRows[id] > declared {
            throw StreamError.invalid("\(label): tensor '\(info.name)' has more rows than its header declares (\(declared))")
        }
        rowsRead[index] += rows
        let payload = UnsafeRawBufferPointer(rebasing: body[Format.dataPrefix...])
        if filter == Format.filterShuffle && info.dtype.size > 1 && payload.count > 0 {
            if scratchCapacity < payload.count {
                scratch?.deallocate()
                scratchCapacity = max(payload.count, scratchCapacity * 2)
                scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchCapacity, alignment: 64)
            }
            let dst = UnsafeMutableRawBufferPointer(start: scratch, count: payload.count)
            byteUnshuffle(payload, into: dst, size: info.dtype.size)
            return .data(index: index, rows: rows, bytes: UnsafeRawBufferPointer(dst))
        }
        return .data(index: index, rows: rows, bytes: payload)
    }

    private func end(_ body: UnsafeRawBufferPointer) throws {
        var r = ByteReader(body, what: "ENDS")
        let n = Int(try r.u32())
        guard n == segmentTensors.count, r.remaining == 8 * n else {
            throw StreamError.invalid("\(label): damaged end record (\(n) tensors; the stream declared \(segmentTensors.count))")
        }
        for id in 0..<n {
            let rows = try r.u64()
            let name = tensors[segmentTensors[id]].name
            guard rows == UInt64(segmentRows[id]) else {
                throw StreamError.invalid("\(label): tensor '\(name)' lost rows: \(segmentRows[id]) arrived, \(rows) were written")
            }
            if let declared = segmentDeclared[id], declared != segmentRows[id] {
                throw StreamError.invalid("\(label): tensor '\(name)' declares \(declared) rows but has \(segmentRows[id])")
            }
        }
        inSegment = false
    }

    // MARK: - Frames

    /// Decompresses the next zstd frame; returns its record (tag and body), or nil at the end
    /// of the input when no frame has begun.
    private func nextRecord() throws -> (tag: UInt32, bytes: UnsafeRawBufferPointer)? {
        var produced = 0
        var begun = false
        while true {
            if inPos == inSize {
                if inputEnded { break }
                let n = try fill()
                if n == 0 { inputEnded = true; break }
            }
            begun = true
            let ret: Int = input.withUnsafeBytes { inb in
                var inBuf = ZSTD_inBuffer(src: inb.baseAddress, size: inSize, pos: inPos)
                var outBuf = ZSTD_outBuffer(dst: frame, size: frameCapacity, pos: produced)
                let r = ZSTD_decompressStream(dctx, &outBuf, &inBuf)
                inPos = inBuf.pos
                produced = outBuf.pos
                return r
            }
            if ZSTD_isError(ret) != 0 {
                let what = String(cString: ZSTD_getErrorName(ret))
                ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only)
                throw StreamError.invalid("\(label): damaged stream (zstd: \(what))")
            }
            if ret == 0 {
                return try record(size: produced)
            }
            if produced == frameCapacity {
                guard frameCapacity < Format.maxRecordBody + Format.recordPrefix else {
                    throw StreamError.invalid("\(label): a record is larger than \(Format.maxRecordBody) bytes")
                }
                let bigger = min(frameCapacity * 2, Format.maxRecordBody + Format.recordPrefix)
                let f = UnsafeMutableRawPointer.allocate(byteCount: bigger, alignment: 64)
                f.copyMemory(from: frame, byteCount: produced)
                frame.deallocate()
                frame = f
                frameCapacity = bigger
            }
        }
        if begun {
            throw StreamError.truncated("\(label): stream cut off in the middle of a record")
        }
        return nil
    }

    private func record(size: Int) throws -> (tag: UInt32, bytes: UnsafeRawBufferPointer) {
        guard size >= Format.recordPrefix else {
            throw StreamError.invalid("\(label): damaged stream (a frame of \(size) bytes holds no record)")
        }
        let tag = UInt32(littleEndian: frame.loadUnaligned(as: UInt32.self))
        let len = Int(UInt32(littleEndian: frame.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        guard len == size - Format.recordPrefix else {
            throw StreamError.invalid("\(label): damaged stream (record \(Format.tagName(tag)) of \(len) bytes in a frame of \(size))")
        }
        return (tag, UnsafeRawBufferPointer(start: frame + Format.recordPrefix, count: len))
    }

    /// Reads more input. The first time, reads at least 9 bytes (or all there is) and checks
    /// that they begin a zstd frame, naming the format they look like otherwise.
    private func fill() throws -> Int {
        var n = try input.withUnsafeMutableBytes { try source.read(into: $0) }
        if !sawAnyByte && n > 0 {
            sawAnyByte = true
            while n < 9 {
                let m = try input.withUnsafeMutableBytes {
                    try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[n...]))
                }
                if m == 0 { break }
                n += m
            }
            try checkMagic(count: n)
        }
        inSize = n
        inPos = 0
        return n
    }

    /// Recognises common other formats at the start of the input, to say what to do.
    private func checkMagic(count: Int) throws {
        let head = Array(input[0..<min(count, 8)])
        let zstdMagic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
        if head.starts(with: zstdMagic) { return }
        if head.count < 4 && zstdMagic.starts(with: head) {
            throw StreamError.truncated("\(label): stream cut off in the middle of a record")
        }
        var hint = ""
        if head.starts(with: [0x93] + Array("NUMPY".utf8)) {
            hint = " (it is a .npy file: use 'tensor from npy')"
        } else if head.starts(with: Array("PK".utf8)) {
            hint = " (it looks like a zip/.npz file: use 'tensor from npz')"
        } else if count >= 9 && input[8] == UInt8(ascii: "{") {
            hint = " (it looks like a .safetensors file: use 'tensor from safetensors')"
        } else if head.allSatisfy({ $0 == 9 || $0 == 10 || $0 == 13 || ($0 >= 0x20 && $0 < 0x7F) }) {
            hint = " (it looks like text: use 'tensor from csv' or 'tensor from tsv')"
        }
        throw StreamError.invalid("\(label): not a tensor stream\(hint)")
    }
}
