import CZstd
import Failure
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the reader found next in a stream.
public enum StreamEvent {
    /// A tensor appeared for the first time; its description is `reader.tensors[index]`.
    case tensor(index: Int)
    /// Rows of tensor `index`, in C order, little-endian. The bytes stay valid only until the
    /// next call to `next()`: copy what you keep.
    case data(index: Int, rows: Int, bytes: UnsafeRawBufferPointer)
}

/// A DATA record as it arrived: the zstd frame that holds it, still compressed, so that a
/// program that writes the same rows again (`emb-laplace apply`'s means with the identity
/// adapter) can copy it instead of compressing them again (`TensorStreamWriter.write(_:copying:)`).
/// Only frames that a writer may write are offered: one record, the content size and the checksum
/// flag set, no dictionary. The bytes stay valid only until the reader's next call to `next()`.
public struct CompressedData {
    /// The tensor (the reader's description) and its id in the segment the frame came from: the
    /// frame's record names that id, so it can go only where the tensor has the same id.
    public let tensor: TensorInfo
    public let id: Int
    public let rows: Int
    /// The frame, exactly as read (the payload may be byte-shuffled or not).
    public let frame: UnsafeRawBufferPointer
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
    /// Compressed bytes read ahead (`inPos..<inSize` unread); grows to hold a whole frame.
    private var input: UnsafeMutableRawPointer
    private var inputCapacity: Int
    private var inPos = 0
    private var inSize = 0
    /// The decompressed record (all of it, or only its prefix when its payload is unshuffled
    /// straight into `scratch`). Grown with realloc, so that growing never holds two copies.
    private var frame: UnsafeMutableRawPointer
    private var frameCapacity: Int
    /// The caller's place for the next shuffled payload (`next(unshufflingInto:)`).
    private var offered: UnsafeMutableRawBufferPointer?
    /// Whether the bytes of the last `.data` event are in the buffer offered for it.
    public private(set) var lastDataInOffered = false
    /// Unshuffled payloads.
    private var scratch: UnsafeMutableRawPointer?
    private var scratchCapacity = 0
    /// Where decompressed shuffled payload bytes land before they are put in place.
    private var bounce: UnsafeMutableRawPointer?
    private static let bounceBytes = 1 << 16
    private var inputEnded = false
    private var sawAnyByte = false

    /// Shuffled payloads at least this large are unshuffled while they are decompressed, so
    /// that a record is held once, not twice. (Internal: tests set 0 to run every record
    /// through that path.)
    var unshuffleInPlaceFrom = 8 << 20

    /// Tensors one segment may declare (2^20; internal so that tests can lower it).
    var maxSegmentTensors = 1 << 20

    // Per-segment state.
    private var inSegment = false
    private var segments = 0
    private var segmentTensors: [Int] = []      // segment id -> logical index
    private var segmentRows: [Int] = []         // rows seen per segment id
    private var segmentDeclared: [Int?] = []
    private var segmentNames: Set<String> = []

    public init(_ source: ByteSource, label: String = "<stdin>") throws {
        self.source = source
        self.label = label
        guard let d = ZSTD_createDCtx() else { throw StreamError.resources("zstd: out of memory") }
        dctx = d
        inputCapacity = ZSTD_DStreamInSize()
        frameCapacity = 1 << 16
        guard let i = malloc(inputCapacity), let f = malloc(frameCapacity) else {
            ZSTD_freeDCtx(d)
            throw StreamError.resources("out of memory for a record of \(1 << 16) bytes")
        }
        input = i
        frame = f
    }

    deinit {
        ZSTD_freeDCtx(dctx)
        free(input)
        free(frame)
        free(scratch)
        free(bounce)
    }

    /// A reader of records that are not zstd-compressed: each record (tag, length, body) follows
    /// the previous one directly. Not a stream format: it lets a fuzzer exercise the record rules
    /// at full speed, without spending its time in zstd's checksums.
    public convenience init(uncompressedRecords source: ByteSource, label: String = "<records>") throws {
        try self.init(source, label: label)
        rawRecords = true
    }

    private var rawRecords = false

    /// Opens a file ("-" for standard input).
    public convenience init(path: String) throws {
        let src = try FileSource(path: path)
        try self.init(src, label: src.label)
    }

    /// The record of the last `.data` event as its compressed frame, when it arrived as a frame
    /// a writer may copy (see `CompressedData`); nil otherwise. Valid until the next `next()`.
    public private(set) var lastCompressedData: CompressedData?
    /// The compressed bytes of the record being handled, when it was decoded whole.
    private var wholeFrameBytes: UnsafeRawBufferPointer?

    /// Index of the tensor named `name`, if it has appeared.
    public func index(of name: String) -> Int? { byName[name] }
    private var byName: [String: Int] = [:]

    /// The next event, or nil at the end of a complete stream.
    public func next() throws -> StreamEvent? {
        try next(unshufflingInto: nil)
    }

    /// `next()`, with a place of the caller's for the payload of a byte-shuffled DATA record:
    /// when the next event is the data of such a record whose payload fits in `offered` and
    /// fills more than half of it, the payload is unshuffled into the start of `offered` rather
    /// than into the reader's own buffer, and `lastDataInOffered` is true: the event's bytes
    /// are then that part of `offered`, the caller's to keep (a block of rows need not be
    /// copied out of a buffer the next call reuses). Used or not, `offered` may be written to.
    public func next(unshufflingInto offered: UnsafeMutableRawBufferPointer?) throws -> StreamEvent? {
        self.offered = offered.flatMap { $0.count > 0 ? $0 : nil }
        defer { self.offered = nil }
        lastDataInOffered = false
        lastCompressedData = nil
        while true {
            wholeFrameBytes = nil
            guard let rec = try nextRecord() else {
                if !sawAnyByte { throw StreamError.broken(.empty, "empty input: expected a tensor stream") }
                if inSegment {
                    throw StreamError.broken(.cutOff, "\(label): stream cut off (no end record): its producer may have failed")
                }
                return nil
            }
            if let event = try handle(rec) { return event }
        }
    }

    // MARK: - Records

    /// A decompressed record: its tag and body, and for a DATA record whose payload was
    /// unshuffled while decompressing, that payload (then `body` holds only the DATA prefix).
    private struct Record {
        var tag: UInt32
        var body: UnsafeRawBufferPointer
        var unshuffled: UnsafeRawBufferPointer?
    }

    private func fail(_ rule: StreamRule, _ what: String) -> StreamError {
        .broken(rule, "\(label): \(what)")
    }

    private func handle(_ rec: Record) throws -> StreamEvent? {
        let tag = rec.tag
        if !inSegment {
            guard tag == Format.tagStart else {
                throw fail(.noStart, "not a tensor stream (a segment starts with \(Format.tagName(tag)), not TSR1)")
            }
            inSegment = true
            segments += 1
            segmentTensors = []; segmentRows = []; segmentDeclared = []; segmentNames = []
            return nil
        }
        switch tag {
        case Format.tagHead: return try head(rec.body)
        case Format.tagData: return try data(rec)
        case Format.tagEnd: try end(rec.body); return nil
        case Format.tagStart:
            throw fail(.startInSegment, "a stream was cut off and another one follows it")
        default:
            throw fail(.unknownTag, "unknown record \(Format.tagName(tag))")
        }
    }

    private func head(_ body: UnsafeRawBufferPointer) throws -> StreamEvent? {
        var r = ByteReader(body, what: "HEAD", short: .headLength, label: label)
        let id = Int(try r.u32())
        guard id == segmentTensors.count else {
            throw fail(.headId, "damaged HEAD record (tensor id \(id) out of sequence: expected \(segmentTensors.count))")
        }
        guard segmentTensors.count < maxSegmentTensors else {
            throw fail(.segmentTensors, "more than \(maxSegmentTensors) tensors in one segment")
        }
        let code = try r.u8()
        guard let dtype = DType(rawValue: code) else {
            throw fail(.headDtype, "unknown dtype code \(code)")
        }
        let rank = Int(try r.u8())
        let flags = try r.u8()
        let reserved = try r.u8()
        guard rank <= Format.maxRank else { throw fail(.headRank, "rank \(rank) exceeds \(Format.maxRank)") }
        guard flags & ~1 == 0, reserved == 0 else {
            throw fail(.headReserved, "damaged HEAD record (flags \(flags), reserved byte \(reserved))")
        }
        var shape: [Int] = []
        for _ in 0..<rank {
            let d = try r.u64()
            guard d <= UInt64(Int64.max >> 1) else { throw fail(.rowSize, "dimension \(d) is impossible") }
            shape.append(Int(d))
        }
        if rank > 0 && flags & 1 == 0 && shape[0] != 0 {
            throw fail(.headReserved, "damaged HEAD record (row count \(shape[0]) given but not declared)")
        }
        let nameLen = Int(try r.u16())
        guard nameLen > 0 else { throw fail(.headName, "tensor with an empty name") }
        guard nameLen <= Format.maxNameBytes else {
            throw fail(.headName, "tensor name of \(nameLen) bytes (at most \(Format.maxNameBytes))")
        }
        let name = try r.utf8(nameLen)
        let metaCount = Int(try r.u32())
        guard metaCount <= Format.maxMetaEntries else {
            throw fail(.headMetaCount, "tensor '\(escaped(name))' has \(metaCount) metadata entries (at most \(Format.maxMetaEntries))")
        }
        var meta: [String: String] = [:]
        for _ in 0..<metaCount {
            let k = try r.utf8(Int(try r.u16()))
            let v = try r.utf8(Int(try r.u32()))
            meta[k] = v
        }
        guard r.remaining == 0 else { throw fail(.headLength, "damaged HEAD record (\(r.remaining) trailing bytes)") }
        guard !segmentNames.contains(name) else {
            throw fail(.headDuplicate, "tensor '\(escaped(name))' declared twice in one segment")
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
            guard !o, p <= Format.maxRecordBody - Format.dataPrefix else {
                throw fail(.rowSize, "tensor '\(escaped(name))' declares rows of more than \(Format.maxRecordBody - Format.dataPrefix) bytes")
            }
            rowBytes = p
        }
        if let existing = index(of: name) {
            let old = tensors[existing]
            guard !old.isScalar, !info.isScalar else {
                throw fail(.continuation, "0-d tensor '\(escaped(name))' appears in two segments; a 0-d tensor cannot be continued")
            }
            guard old.dtype == info.dtype, old.rowShape == info.rowShape else {
                let what = old.dtype != info.dtype ? "dtype \(info.dtype.name) here but \(old.dtype.name) earlier"
                    : "rows of shape \(info.rowShape) here but \(old.rowShape) earlier"
                throw fail(.continuation, "tensor '\(escaped(name))' has \(what) in the stream; concatenated streams must agree")
            }
        }
        segmentNames.insert(name)
        segmentRows.append(0)
        segmentDeclared.append(info.rows)
        if let existing = index(of: name) {
            if let a = tensors[existing].rows, let b = info.rows { tensors[existing].rows = a + b } else { tensors[existing].rows = nil }
            segmentTensors.append(existing)
            return nil
        }
        byName[name] = tensors.count
        tensors.append(info)
        rowsRead.append(0)
        segmentTensors.append(tensors.count - 1)
        return .tensor(index: tensors.count - 1)
    }

    private func data(_ rec: Record) throws -> StreamEvent? {
        var r = ByteReader(rec.body, what: "DATA", short: .dataLength, label: label)
        let id = Int(try r.u32())
        let filter = try r.u8()
        let reserved = (try r.u8(), try r.u8(), try r.u8())
        let rows64 = try r.u64()
        guard id < segmentTensors.count else {
            throw fail(.dataId, "DATA for tensor id \(id) before its HEAD")
        }
        guard filter <= Format.filterShuffle else {
            throw fail(.dataFilter, "damaged DATA record (unknown filter \(filter))")
        }
        guard reserved == (0, 0, 0) else {
            throw fail(.dataReserved, "damaged DATA record (non-zero reserved bytes)")
        }
        let index = segmentTensors[id]
        let info = tensors[index]
        let payloadCount = rec.unshuffled?.count ?? r.remaining
        let (need, overflow) = info.rowBytes.multipliedReportingOverflow(by: Int(clamping: rows64))
        guard rows64 <= UInt64(Format.maxRecordBody), !overflow, need == payloadCount else {
            throw fail(.dataLength, "damaged DATA record for '\(escaped(info.name))': \(payloadCount) bytes for \(rows64) rows of \(info.rowBytes) bytes")
        }
        let rows = Int(rows64)
        if info.isScalar {
            guard rows == 1, segmentRows[id] == 0 else {
                throw fail(.scalarRows, "0-d tensor '\(escaped(info.name))' has more than one element")
            }
        }
        segmentRows[id] += rows
        if let declared = segmentDeclared[id], segmentRows[id] > declared {
            throw fail(.dataRows, "tensor '\(escaped(info.name))' has more rows than its header declares (\(declared))")
        }
        rowsRead[index] += rows
        if let f = wholeFrameBytes {
            lastCompressedData = CompressedData(tensor: info, id: id, rows: rows, frame: f)
        }
        if let done = rec.unshuffled {
            lastDataInOffered = done.baseAddress == offered.map { UnsafeRawPointer($0.baseAddress!) }
            return .data(index: index, rows: rows, bytes: done)
        }
        let payload = UnsafeRawBufferPointer(rebasing: rec.body[Format.dataPrefix...])
        if filter == Format.filterShuffle && info.dtype.size > 1 && payload.count > 0 {
            let dst = try offeredOrScratch(payload.count)
            lastDataInOffered = dst.baseAddress == offered?.baseAddress
            byteUnshuffle(payload, into: dst, size: info.dtype.size)
            return .data(index: index, rows: rows, bytes: UnsafeRawBufferPointer(dst))
        }
        return .data(index: index, rows: rows, bytes: payload)
    }

    /// Where a payload of `count` bytes is unshuffled: the caller's buffer when it fits and
    /// fills more than half of it (a short record would waste the caller's large buffer).
    private func offeredOrScratch(_ count: Int) throws -> UnsafeMutableRawBufferPointer {
        if let o = offered, count <= o.count && count > o.count / 2 { return UnsafeMutableRawBufferPointer(rebasing: o[..<count]) }
        return try scratchBuffer(count)
    }

    private func scratchBuffer(_ count: Int) throws -> UnsafeMutableRawBufferPointer {
        if scratchCapacity < count {
            free(scratch)
            scratch = nil
            scratchCapacity = 0
            let want = max(count, min(scratchCapacity * 2, Format.maxRecordBody))
            guard let p = allocateBuffer(want) else {
                throw StreamError.resources("\(label): out of memory for a record of \(count) bytes")
            }
            scratch = p
            scratchCapacity = want
        }
        return UnsafeMutableRawBufferPointer(start: scratch, count: count)
    }

    private func end(_ body: UnsafeRawBufferPointer) throws {
        var r = ByteReader(body, what: "ENDS", short: .endsCount, label: label)
        let n = Int(try r.u32())
        guard n == segmentTensors.count, r.remaining == 8 * n else {
            throw fail(.endsCount, "damaged end record (\(n) tensors in \(body.count) bytes; the segment declared \(segmentTensors.count))")
        }
        for id in 0..<n {
            let rows = try r.u64()
            let name = escaped(tensors[segmentTensors[id]].name)
            guard rows == UInt64(segmentRows[id]) else {
                throw fail(.endsRows, "tensor '\(name)' lost rows: \(segmentRows[id]) arrived, \(rows) were written")
            }
            if let declared = segmentDeclared[id], declared != segmentRows[id] {
                throw fail(.endsRows, "tensor '\(name)' declares \(declared) rows but has \(segmentRows[id])")
            }
        }
        inSegment = false
    }

    // MARK: - Frames

    /// Decompresses the next zstd frame; returns its record, or nil at the end of the input
    /// when no frame has begun. Memory grows only with bytes that arrive: a shuffled DATA
    /// payload of `unshuffleInPlaceFrom` bytes or more goes through a small buffer straight to
    /// its unshuffled place, so that a record is held once.
    private func nextRecord() throws -> Record? {
        if rawRecords { return try nextRawRecord() }
        if let rec = try nextWholeFrame() { return rec }
        var produced = 0             // bytes of the record in `frame`
        var recordLength = -1        // the record's length field, once its prefix arrived
        var decided = false          // whether the DATA payload goes to scratch
        var scatter: (dst: UnsafeMutableRawPointer, n: Int, size: Int, done: Int)? = nil
        let prefixBytes = Format.recordPrefix + Format.dataPrefix
        var begun = false
        while true {
            if inPos == inSize {
                if inputEnded { break }
                let n = try fill()
                if n == 0 { inputEnded = true; break }
            }
            begun = true
            // Where this step's output goes: the frame (first only up to the DATA prefix, to
            // decide), or the bounce buffer for a payload that is unshuffled on the way.
            let outStart: UnsafeMutableRawPointer, outSize: Int, outPos: Int
            if let s = scatter {
                outStart = bounce!
                outSize = min(Self.bounceBytes, s.n * s.size - s.done + 1)
                outPos = 0
            } else {
                outStart = frame
                outSize = decided ? frameCapacity : min(frameCapacity, prefixBytes)
                outPos = produced
            }
            var inBuf = ZSTD_inBuffer(src: input, size: inSize, pos: inPos)
            var outBuf = ZSTD_outBuffer(dst: outStart, size: outSize, pos: outPos)
            let ret = ZSTD_decompressStream(dctx, &outBuf, &inBuf)
            inPos = inBuf.pos
            if scatter == nil { produced = outBuf.pos } else { scatter!.done += outBuf.pos }
            if ZSTD_isError(ret) != 0 {
                let what = String(cString: ZSTD_getErrorName(ret))
                ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only)
                throw fail(ZSTD_getErrorCode(ret) == ZSTD_error_prefix_unknown ? .notZstd : .damagedFrame,
                           "damaged stream (zstd: \(what))")
            }
            if recordLength < 0 && produced >= Format.recordPrefix {
                recordLength = Int(UInt32(littleEndian: frame.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
                guard recordLength <= Format.maxRecordBody else {
                    throw fail(.recordSize, "a record of \(recordLength) bytes is larger than \(Format.maxRecordBody)")
                }
            }
            if let s = scatter {
                guard s.done <= s.n * s.size else {
                    throw fail(.frameRecord, "damaged stream (a frame holds more than its record of \(recordLength) bytes)")
                }
                // Put the bytes that arrived in the bounce buffer in their unshuffled place.
                placeScatter(s)
            }
            if recordLength >= 0 && produced > Format.recordPrefix + recordLength {
                throw fail(.frameRecord, "damaged stream (a frame holds more than its record of \(recordLength) bytes)")
            }
            if !decided && (produced >= prefixBytes || ret == 0) {
                decided = true
                if produced >= prefixBytes, let s = try scatterTarget(recordLength: recordLength) {
                    scatter = (s.dst, s.n, s.size, 0)
                }
            }
            if ret == 0 {
                if let s = scatter {
                    guard s.done >= s.n * s.size else {   // (more was refused as it arrived)
                        throw fail(.frameRecord, "damaged stream (record DATA of \(recordLength) bytes in a frame of \(prefixBytes + s.done))")
                    }
                    return Record(tag: Format.tagData,
                                  body: UnsafeRawBufferPointer(start: frame + Format.recordPrefix, count: Format.dataPrefix),
                                  unshuffled: UnsafeRawBufferPointer(start: s.dst, count: s.done))
                }
                return try record(size: produced)
            }
            if scatter == nil && decided && produced == frameCapacity {
                // The frame is full and the record is longer: grow it, to at most the record
                // (and one byte to see a frame that holds more). realloc moves large blocks
                // by remapping pages, so that growing never holds two copies.
                let bigger = min(frameCapacity * 2, Format.recordPrefix + recordLength + 1)
                guard let f = realloc(frame, bigger) else {
                    throw StreamError.resources("\(label): out of memory for a record of \(recordLength) bytes")
                }
                frame = f
                frameCapacity = bigger
                adviseHugePages(f, bytes: bigger)
            }
        }
        if begun {
            throw fail(.cutOff, "stream cut off in the middle of a record")
        }
        return nil
    }

    /// Frames whose content is smaller than this are decoded in one call once the whole frame
    /// is in the input buffer (internal: tests set 0 to send every frame through the streaming path).
    var wholeFrameBelow = 8 << 20

    /// The fast path: when the next frame declares its content size (every writer's frame does)
    /// and is small, its compressed bytes are gathered in the input buffer and decoded in one call
    /// straight into `frame`, without the streaming decoder's window buffer and its extra copy.
    /// nil (nothing consumed) whenever it does not apply, or the frame is damaged: the streaming
    /// path then reads the same bytes and says what is wrong with them.
    private func nextWholeFrame() throws -> Record? {
        if inPos == inSize {
            if inputEnded { return nil }
            if try fill() == 0 { inputEnded = true; return nil }
        }
        // The header first (5 bytes say its size), then the frame: reads stop at what the pipe
        // has, so that a frame is decoded as soon as it is complete, never waiting for the next.
        while inSize - inPos < 5 { guard try readMore(bound: 5) else { return nil } }
        guard let headerSize = Self.zstdFrameHeaderSize(input + inPos) else { return nil }
        while inSize - inPos < headerSize { guard try readMore(bound: headerSize) else { return nil } }
        let content = ZSTD_getFrameContentSize(input + inPos, inSize - inPos)
        guard content < UInt64(min(wholeFrameBelow, Format.recordPrefix + Format.maxRecordBody)) else { return nil }
        let bound = ZSTD_compressBound(Int(content)) + 4096
        var compressed = ZSTD_findFrameCompressedSize(input + inPos, inSize - inPos)
        while ZSTD_isError(compressed) != 0 {
            guard ZSTD_getErrorCode(compressed) == ZSTD_error_srcSize_wrong, try readMore(bound: bound) else { return nil }
            compressed = ZSTD_findFrameCompressedSize(input + inPos, inSize - inPos)
        }
        if frameCapacity < Int(content) {
            guard let f = allocateBuffer(Int(content)) else {
                throw StreamError.resources("\(label): out of memory for a record of \(content) bytes")
            }
            free(frame)
            frame = f
            frameCapacity = Int(content)
        }
        let produced = ZSTD_decompressDCtx(dctx, frame, frameCapacity, input + inPos, compressed)
        guard ZSTD_isError(produced) == 0, produced == Int(content) else {
            ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only)
            return nil
        }
        // A frame a writer may copy: the checksum flag set and no dictionary (descriptor bits 2 and
        // 0–1; the content size is there, or this path would not be taken).
        let descriptor = (input + inPos).load(fromByteOffset: 4, as: UInt8.self)
        wholeFrameBytes = descriptor & 4 != 0 && descriptor & 3 == 0
            ? UnsafeRawBufferPointer(start: input + inPos, count: compressed) : nil
        inPos += compressed
        if produced >= Format.recordPrefix {
            let recordLength = Int(UInt32(littleEndian: frame.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            guard recordLength <= Format.maxRecordBody else {
                throw fail(.recordSize, "a record of \(recordLength) bytes is larger than \(Format.maxRecordBody)")
            }
            if produced > Format.recordPrefix + recordLength {
                throw fail(.frameRecord, "damaged stream (a frame holds more than its record of \(recordLength) bytes)")
            }
        }
        return try record(size: produced)
    }

    /// The size of the zstd frame header that starts at `p` (5 bytes readable), from its
    /// descriptor byte (RFC 8878, 3.1.1.1); nil when `p` does not start a zstd frame.
    static func zstdFrameHeaderSize(_ p: UnsafeRawPointer) -> Int? {
        guard UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)) == 0xFD2F_B528 else { return nil }
        let descriptor = p.load(fromByteOffset: 4, as: UInt8.self)
        let singleSegment = descriptor & 0x20 != 0
        let dictionaryBytes = [0, 1, 2, 4][Int(descriptor & 3)]
        let contentBytes = [singleSegment ? 1 : 0, 2, 4, 8][Int(descriptor >> 6)]
        return 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentBytes
    }

    /// Reads once more input after what is unread, so that up to `bound` unread bytes fit: the
    /// buffer grows to twice `bound`, and unread bytes move to its front only when the space
    /// after them is too small (rarely, and never more than part of a frame). False at the end
    /// of the input, or when `bound` unread bytes are already there.
    private func readMore(bound: Int) throws -> Bool {
        if inSize - inPos >= bound || inputEnded { return false }
        if inputCapacity < 2 * bound {
            // A new buffer and a copy of the bytes read so far (realloc would keep them too, but
            // not on a 2 MiB boundary: see `allocateBuffer`).
            guard let p = allocateBuffer(2 * bound) else {
                throw StreamError.resources("\(label): out of memory for a frame of \(bound) bytes")
            }
            p.copyMemory(from: input, byteCount: inSize)
            free(input)
            input = p
            inputCapacity = 2 * bound
        }
        if inputCapacity - inPos < bound {
            if inSize > inPos { memmove(input, input + inPos, inSize - inPos) }
            inSize -= inPos
            inPos = 0
        }
        let n = try source.read(into: UnsafeMutableRawBufferPointer(start: input + inSize, count: inPos + bound - inSize))
        if n == 0 { inputEnded = true; return false }
        inSize += n
        return true
    }

    /// Bytes of the scattered payload already put in place; the bounce buffer holds the bytes
    /// from there to `done`.
    private var placed = 0

    private func placeScatter(_ s: (dst: UnsafeMutableRawPointer, n: Int, size: Int, done: Int)) {
        let src = bounce!.assumingMemoryBound(to: UInt8.self)
        let dst = s.dst.assumingMemoryBound(to: UInt8.self)
        var g = placed, j = 0
        while g < s.done {
            let b = g / s.n, i = g % s.n
            let run = min(s.done - g, s.n - i)
            var d = dst + i * s.size + b
            for t in 0..<run {
                d.pointee = src[j + t]
                d += s.size
            }
            g += run; j += run
        }
        placed = s.done
    }

    /// For a shuffled DATA record large enough, the buffer its payload is unshuffled into as
    /// it arrives; nil when the record is read whole into the frame (every other case,
    /// including every damaged one: `data` then refuses it with the rule it breaks).
    private func scatterTarget(recordLength: Int) throws -> (dst: UnsafeMutableRawPointer, n: Int, size: Int)? {
        guard inSegment else { return nil }
        let tag = UInt32(littleEndian: frame.loadUnaligned(as: UInt32.self))
        guard tag == Format.tagData else { return nil }
        let body = frame + Format.recordPrefix
        let id = Int(UInt32(littleEndian: body.loadUnaligned(as: UInt32.self)))
        let filter = body.load(fromByteOffset: 4, as: UInt8.self)
        guard filter == Format.filterShuffle, id < segmentTensors.count else { return nil }
        let size = tensors[segmentTensors[id]].dtype.size
        let payload = recordLength - Format.dataPrefix
        guard size > 1, payload > 0, payload % size == 0, payload >= unshuffleInPlaceFrom else { return nil }
        if bounce == nil {
            guard let p = malloc(Self.bounceBytes) else {
                throw StreamError.resources("\(label): out of memory")
            }
            bounce = p
        }
        // malloc of a large block maps pages that become resident only as bytes are placed.
        let dst = try offeredOrScratch(payload)
        placed = 0
        return (dst.baseAddress!, payload / size, size)
    }

    /// The next record of an uncompressed sequence (see `init(uncompressedRecords:)`); memory
    /// grows with the bytes that arrive, as for frames.
    private func nextRawRecord() throws -> Record? {
        var have = 0
        func read(upTo n: Int) throws {
            while have < n {
                if have == frameCapacity {
                    let bigger = min(frameCapacity * 2, n)
                    guard let f = realloc(frame, bigger) else {
                        throw StreamError.resources("\(label): out of memory for a record of \(n) bytes")
                    }
                    frame = f; frameCapacity = bigger
                }
                let got = try source.read(into: UnsafeMutableRawBufferPointer(start: frame + have, count: min(frameCapacity, n) - have))
                if got == 0 { return }
                sawAnyByte = true
                have += got
            }
        }
        try read(upTo: Format.recordPrefix)
        if have == 0 { return nil }
        guard have == Format.recordPrefix else { throw fail(.cutOff, "records cut off in the middle of a record") }
        let len = Int(UInt32(littleEndian: frame.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        guard len <= Format.maxRecordBody else {
            throw fail(.recordSize, "a record of \(len) bytes is larger than \(Format.maxRecordBody)")
        }
        try read(upTo: Format.recordPrefix + len)
        guard have == Format.recordPrefix + len else { throw fail(.cutOff, "records cut off in the middle of a record") }
        return try record(size: have)
    }

    /// The record of a complete frame of `size` bytes. A frame that holds more than its record
    /// was refused while it was decompressed; here, one that holds less (or not even a prefix).
    private func record(size: Int) throws -> Record {
        let tag = size >= 4 ? UInt32(littleEndian: frame.loadUnaligned(as: UInt32.self)) : 0
        let len = size >= Format.recordPrefix ? Int(UInt32(littleEndian: frame.loadUnaligned(fromByteOffset: 4, as: UInt32.self))) : -1
        guard len >= 0, len <= size - Format.recordPrefix else {
            throw fail(.frameRecord, len < 0 ? "damaged stream (a frame of \(size) bytes holds no record)"
                                              : "damaged stream (record \(Format.tagName(tag)) of \(len) bytes in a frame of \(size))")
        }
        return Record(tag: tag, body: UnsafeRawBufferPointer(start: frame + Format.recordPrefix, count: len), unshuffled: nil)
    }

    /// Reads more input. The first time, reads at least 9 bytes (or all there is) and checks
    /// that they begin a zstd frame, naming the format they look like otherwise.
    private func fill() throws -> Int {
        var n = try source.read(into: UnsafeMutableRawBufferPointer(start: input, count: inputCapacity))
        if !sawAnyByte && n > 0 {
            sawAnyByte = true
            while n < 9 {
                let m = try source.read(into: UnsafeMutableRawBufferPointer(start: input + n, count: inputCapacity - n))
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
        let bytes = UnsafeRawBufferPointer(start: input, count: count)
        let head = Array(bytes[0..<min(count, 8)])
        let zstdMagic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
        if head.starts(with: zstdMagic) { return }
        if head.count < 4 && zstdMagic.starts(with: head) {
            throw fail(.cutOff, "stream cut off in the middle of a record")
        }
        var hint = ""
        if head.starts(with: [0x93] + Array("NUMPY".utf8)) {
            hint = " (it is a .npy file: use 'tensor from npy')"
        } else if head.starts(with: Array("PK".utf8)) {
            hint = " (it looks like a zip/.npz file: use 'tensor from npz')"
        } else if count >= 9 && bytes[8] == UInt8(ascii: "{") {
            hint = " (it looks like a .safetensors file: use 'tensor from safetensors')"
        } else if head.allSatisfy({ $0 == 9 || $0 == 10 || $0 == 13 || ($0 >= 0x20 && $0 < 0x7F) }) {
            hint = " (it looks like text: use 'tensor from csv' or 'tensor from tsv')"
        }
        throw fail(.notZstd, "not a tensor stream\(hint)")
    }
}
