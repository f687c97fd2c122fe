import CZstd

/// How a writer encodes records.
public struct WriterOptions: Sendable {
    /// The default zstd level: on shuffled float32 data (embeddings, variances) level 1 writes
    /// streams as small as level 3 (measured: 0.840 vs 0.851 of the raw bytes) at half its CPU time.
    public static let defaultLevel: Int32 = 1

    /// zstd compression level (1...19; negative levels are faster still).
    public var level: Int32 = WriterOptions.defaultLevel
    /// Byte-shuffle the payloads of multi-byte dtypes before compression.
    public var shuffle: Bool = true
    /// Target payload bytes per DATA record: bounds the memory of writer and readers.
    public var chunkBytes: Int = Format.defaultChunkBytes
    /// zstd worker threads (0: compress on the calling thread).
    public var threads: Int32 = 0
    /// Compress and write the records on a thread of the writer's own while the caller goes on
    /// (the same bytes as without; a few records, each at most `chunkBytes`, wait at a time). An
    /// error of the sink is then thrown by a later `write` or by `finish`, not by the `write`
    /// whose record failed.
    public var background: Bool = false
    /// With `background`: threads that compress records at once (each with its own zstd
    /// context, the frames written in order: the same bytes as one). For a writer whose caller
    /// has little else to do while its output is compressed (`tensor`'s conversions); where the
    /// caller computes on the other cores it only takes their time.
    public var compressors: Int = 1

    public init(level: Int32 = WriterOptions.defaultLevel, shuffle: Bool = true, chunkBytes: Int = Format.defaultChunkBytes,
                threads: Int32 = 0, background: Bool = false, compressors: Int = 1) {
        self.level = level; self.shuffle = shuffle; self.chunkBytes = chunkBytes; self.threads = threads
        self.background = background; self.compressors = compressors
    }
}

/// Writes one segment of a tensor stream: declare tensors, write their rows in any
/// interleaving, then `finish()`. Until `finish()` has written the end record, a reader
/// refuses the stream as truncated, so a producer that fails half-way is never taken for
/// complete.
public final class TensorStreamWriter {
    private let sink: ByteSink
    private let options: WriterOptions
    private let cctx: OpaquePointer
    private var started = false
    private var finished = false
    private var tensors: [TensorInfo] = []
    private var written: [Int] = []
    private var record: [UInt8] = []
    private var compressed: [UInt8] = []

    public init(sink: ByteSink, options: WriterOptions = WriterOptions()) throws {
        self.sink = sink
        self.options = options
        let c = try Self.context(options)
        cctx = c
        encoder = options.background
            ? BackgroundEncoder(cctx: c, sink: sink, workers: options.compressors, makeContext: { try? Self.context(options) })
            : nil
    }

    /// A compression context with the options' level, checksums and zstd threads.
    private static func context(_ options: WriterOptions) throws -> OpaquePointer {
        guard let c = ZSTD_createCCtx() else { throw StreamError.io("zstd: out of memory") }
        do {
            _ = try zstdCheck(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, options.level), "compression level")
            _ = try zstdCheck(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1), "checksum")
            if options.threads > 0 {
                _ = try zstdCheck(ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, options.threads), "threads")
            }
        } catch {
            ZSTD_freeCCtx(c)
            throw error
        }
        return c
    }

    deinit {
        if let encoder { encoder.stop() } else { ZSTD_freeCCtx(cctx) }  // the encoder frees its context
    }

    /// The thread that compresses and writes, with `WriterOptions.background`.
    private let encoder: BackgroundEncoder?

    /// The tensors declared so far, in order (their index is their id).
    public var declared: [TensorInfo] { tensors }

    /// Declares a tensor (writes its HEAD record) and returns its id for `write`.
    @discardableResult
    public func add(_ info: TensorInfo) throws -> Int {
        guard !finished else { throw StreamError.usage("stream already finished") }
        try validate(info)
        if tensors.contains(where: { $0.name == info.name }) {
            throw StreamError.usage("tensor '\(info.name)' declared twice in one stream")
        }
        try startIfNeeded()
        var w = ByteWriter()
        let id = tensors.count
        w.u32(UInt32(id))
        w.u8(info.dtype.rawValue)
        let shape = info.isScalar ? [] : [info.rows ?? 0] + info.rowShape
        w.u8(UInt8(shape.count))
        w.u8(info.isScalar || info.rows != nil ? 1 : 0)
        w.u8(0)
        for d in shape { w.u64(UInt64(d)) }
        let name = Array(info.name.utf8)
        w.u16(UInt16(name.count))
        w.bytes.append(contentsOf: name)
        let keys = info.meta.keys.sorted()  // sorted: the same tensor always encodes the same way
        w.u32(UInt32(keys.count))
        for k in keys {
            let kb = Array(k.utf8), vb = Array(info.meta[k]!.utf8)
            w.u16(UInt16(kb.count)); w.bytes.append(contentsOf: kb)
            w.u32(UInt32(vb.count)); w.bytes.append(contentsOf: vb)
        }
        try emit(tag: Format.tagHead, body: w.bytes)
        tensors.append(info)
        written.append(0)
        return id
    }

    /// The rows of a full DATA record of tensor `id` (as many as `chunkBytes` holds, at least
    /// one): `write` cuts what it is given into records of this many rows and one shorter record
    /// for the rest, so a caller whose writes are multiples of it writes no short record but the last.
    public func rowsPerRecord(_ id: Int) -> Int {
        let rowBytes = tensors[id].rowBytes
        return rowBytes == 0 ? 1 : max(1, options.chunkBytes / rowBytes)
    }

    /// Appends `rows` rows of tensor `id`; `bytes` holds them in C order, little-endian.
    public func write(_ id: Int, rows: Int, bytes: UnsafeRawBufferPointer) throws {
        guard id >= 0 && id < tensors.count else { throw StreamError.usage("unknown tensor id \(id)") }
        let info = tensors[id]
        let rowBytes = info.rowBytes
        guard bytes.count == rows * rowBytes else {
            throw StreamError.usage("tensor '\(info.name)': \(bytes.count) bytes given for \(rows) rows of \(rowBytes) bytes")
        }
        if info.isScalar && (rows != 1 || written[id] != 0) {
            throw StreamError.usage("tensor '\(info.name)' is 0-d: it takes exactly one element")
        }
        if let declared = info.rows, written[id] + rows > declared {
            throw StreamError.usage("tensor '\(info.name)' declared \(declared) rows; \(written[id] + rows) written")
        }
        let perChunk = rowBytes == 0 ? max(rows, 1) : max(1, options.chunkBytes / rowBytes)
        var start = 0
        repeat {
            let n = min(perChunk, rows - start)
            try emitData(id: id, info: info, rows: n,
                         payload: UnsafeRawBufferPointer(rebasing: bytes[start * rowBytes ..< (start + n) * rowBytes]))
            start += n
        } while start < rows
        written[id] += rows
    }

    /// Appends the rows of a DATA record copied from another stream as it is, still compressed
    /// (`TensorStreamReader.lastCompressedData`): no compressing, no shuffling. The record names
    /// its tensor's id, so it can go only to the tensor `id` that is the same id here, with the
    /// same dtype and row shape; its encoding (level, filter) is the one it was written with.
    public func write(_ id: Int, copying data: CompressedData) throws {
        guard !finished else { throw StreamError.usage("stream already finished") }
        guard id >= 0 && id < tensors.count else { throw StreamError.usage("unknown tensor id \(id)") }
        let info = tensors[id]
        guard data.id == id, data.tensor.dtype == info.dtype, data.tensor.rowShape == info.rowShape, !info.isScalar else {
            throw StreamError.usage("tensor '\(info.name)' (id \(id)) cannot take a record of tensor id \(data.id) with rows of \(data.tensor.dtype.name) \(data.tensor.rowShape)")
        }
        if let declared = info.rows, written[id] + data.rows > declared {
            throw StreamError.usage("tensor '\(info.name)' declared \(declared) rows; \(written[id] + data.rows) written")
        }
        if let encoder {
            try encoder.submit(copying: data.frame)
        } else {
            try sink.write(data.frame)
        }
        written[id] += data.rows
    }

    /// Appends `rows` rows of tensor `id` (`bytes`, as `write(_:rows:bytes:)` takes them), by
    /// copying `record` when it holds those rows and can go to this tensor as it is (the same id,
    /// dtype and row shape; not a 0-d tensor), else by compressing `bytes`. The one rule of every
    /// program that copies records; returns whether it copied.
    @discardableResult
    public func write(_ id: Int, rows: Int, bytes: UnsafeRawBufferPointer, orCopying record: CompressedData?) throws -> Bool {
        if let r = record, r.rows == rows, id >= 0, id < tensors.count, r.id == id, !tensors[id].isScalar,
           r.tensor.dtype == tensors[id].dtype, r.tensor.rowShape == tensors[id].rowShape {
            try write(id, copying: r)
            return true
        }
        try write(id, rows: rows, bytes: bytes)
        return false
    }

    /// Writes everything `reader` has left, tensor for tensor in order, each record copied
    /// still compressed where it can be (`write(_:rows:bytes:orCopying:)`), and finishes: a
    /// one-input `tensor cat`, the oracle of the tests and the fuzzer that copied records read as
    /// their input. Returns the DATA records seen and those copied.
    @discardableResult
    func copyAll(from reader: TensorStreamReader) throws -> (records: Int, copied: Int) {
        var ids: [Int] = [], records = 0, copied = 0
        while let e = try reader.next() {
            switch e {
            case .tensor(let i):
                var info = reader.tensors[i]
                if !info.isScalar { info.rows = nil }
                ids.append(try add(info))
            case .data(let i, let rows, let b):
                records += 1
                if try write(ids[i], rows: rows, bytes: b, orCopying: reader.lastCompressedData) { copied += 1 }
            }
        }
        try finish()
        return (records, copied)
    }

    /// Appends rows given as an array of plain values (Float, Double, Int64, ...).
    public func write<T>(_ id: Int, rows: Int, values: [T]) throws {
        try values.withUnsafeBytes { try write(id, rows: rows, bytes: $0) }
    }

    /// Declares a tensor and writes all of it.
    public func write(_ tensor: Tensor) throws {
        let id = try add(tensor.info)
        try tensor.data.withUnsafeBytes { try write(id, rows: tensor.rows, bytes: $0) }
    }

    /// Declares the tensors and writes all of them, the tensors that share a row count (query and
    /// positive, mean and var, features and labels) interleaved a chunk of rows at a time, so that
    /// a reader takes the same rows of each together in bounded memory (`RowBlockReader`); the
    /// others whole, after them. Every tensor gets the same rows as `write(_:)` would give it.
    public func write(interleaving list: [Tensor]) throws {
        let ids = try list.map { try add($0.info) }
        var groups: [Int: [Int]] = [:]      // row count -> positions in `list`
        for (k, t) in list.enumerated() where !t.info.isScalar { groups[t.rows, default: []].append(k) }
        for (k, t) in list.enumerated() where t.info.isScalar || groups[t.rows]!.count == 1 {
            try t.data.withUnsafeBytes { try write(ids[k], rows: t.rows, bytes: $0) }
        }
        for rows in groups.keys.sorted() {
            let members = groups[rows]!
            guard members.count > 1 else { continue }
            // A turn's rows: as many as the widest member's chunk holds (each member's chunk is
            // then at most its own chunk size).
            let widest = members.map { list[$0].info.rowBytes }.max()!
            let step = widest == 0 ? max(rows, 1) : max(1, options.chunkBytes / widest)
            var start = 0
            repeat {
                let n = min(step, rows - start)
                for k in members {
                    let rb = list[k].info.rowBytes
                    try list[k].data.withUnsafeBytes { b in
                        try write(ids[k], rows: n, bytes: UnsafeRawBufferPointer(rebasing: b[start * rb ..< (start + n) * rb]))
                    }
                }
                start += n
            } while start < rows
        }
    }

    /// Writes the end record. Checks that every tensor got the rows it declared.
    public func finish() throws {
        guard !finished else { return }
        try startIfNeeded()
        for (i, t) in tensors.enumerated() {
            if let declared = t.rows, declared != written[i] {
                throw StreamError.usage("tensor '\(t.name)' declared \(declared) rows but \(written[i]) were written")
            }
        }
        var w = ByteWriter()
        w.u32(UInt32(tensors.count))
        for n in written { w.u64(UInt64(n)) }
        try emit(tag: Format.tagEnd, body: w.bytes)
        try encoder?.drain()
        finished = true
    }

    // MARK: - Records

    private func validate(_ info: TensorInfo) throws {
        let nameBytes = info.name.utf8.count
        guard nameBytes > 0 && nameBytes <= Format.maxNameBytes else {
            throw StreamError.usage("tensor name must be 1 to \(Format.maxNameBytes) bytes")
        }
        guard info.rowShape.count + 1 <= Format.maxRank, info.rowShape.allSatisfy({ $0 >= 0 }) else {
            throw StreamError.usage("tensor '\(info.name)': bad shape \(info.rowShape)")
        }
        guard info.rowBytes <= Format.maxRecordBody - Format.dataPrefix else {
            throw StreamError.usage("tensor '\(info.name)': one row is larger than a record may be")
        }
        guard info.meta.count <= Format.maxMetaEntries,
              info.meta.allSatisfy({ $0.key.utf8.count <= 0xFFFF }) else {
            throw StreamError.usage("tensor '\(info.name)': too much metadata")
        }
    }

    private func startIfNeeded() throws {
        if !started {
            started = true
            try emit(tag: Format.tagStart, body: [])
        }
    }

    private func emit(tag: UInt32, body: [UInt8]) throws {
        record.removeAll(keepingCapacity: true)
        var w = ByteWriter()
        w.u32(tag); w.u32(UInt32(body.count))
        record.append(contentsOf: w.bytes)
        record.append(contentsOf: body)
        try compressAndSend()
    }

    private func emitData(id: Int, info: TensorInfo, rows: Int, payload: UnsafeRawBufferPointer) throws {
        let size = info.dtype.size
        let filter = options.shuffle && size > 1 ? Format.filterShuffle : Format.filterNone
        let bodyCount = Format.dataPrefix + payload.count
        let total = Format.recordPrefix + bodyCount
        if record.count < total {   // (a buffer handed back may be shorter: it held a copied frame)
            record.reserveCapacity(total)               // exactly, not doubled
            record.append(contentsOf: repeatElement(0, count: total - record.count))
        }
        record.withUnsafeMutableBytes { r in
            r.storeBytes(of: Format.tagData.littleEndian, toByteOffset: 0, as: UInt32.self)
            r.storeBytes(of: UInt32(bodyCount).littleEndian, toByteOffset: 4, as: UInt32.self)
            r.storeBytes(of: UInt32(id).littleEndian, toByteOffset: 8, as: UInt32.self)
            r.storeBytes(of: UInt32(filter), toByteOffset: 12, as: UInt32.self)
            r.storeBytes(of: UInt64(rows).littleEndian, toByteOffset: 16, as: UInt64.self)
            let dst = UnsafeMutableRawBufferPointer(rebasing: r[24 ..< total])
            if filter == Format.filterShuffle {
                byteShuffle(payload, into: dst, size: size)
            } else if payload.count > 0 {
                dst.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: payload.count)
            }
        }
        try compressAndSend(count: total)
    }

    private func compressAndSend(count: Int? = nil) throws {
        let n = count ?? record.count
        if let encoder { return try encoder.submit(&record, count: n) }
        let written = try compressRecord(cctx, record, count: n, into: &compressed)
        try compressed.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<written])) }
    }
}
