import Synchronization
import Failure

extension TensorStreamReader {
    /// Reads the rest of the stream into memory, every tensor whole, in order of appearance.
    /// Memory grows with the bytes that actually arrive, never with what headers declare.
    public func readAll() throws -> [Tensor] {
        var data: [[UInt8]] = []
        while let event = try next() {
            switch event {
            case .tensor:
                data.append([])
            case .data(let i, _, let bytes):
                data[i].append(contentsOf: bytes)
            }
        }
        return tensors.indices.map { i in
            var info = tensors[i]
            info.rows = info.isScalar ? 1 : rowsRead[i]
            return Tensor(info: info, data: data[i])
        }
    }

    /// Reads the whole stream and returns the tensors with the given names (in that order),
    /// with an error that lists what the stream holds when one is missing.
    public func readTensors(_ names: [String]) throws -> [Tensor] {
        let all = try readAll()
        return try names.map { name in
            guard let t = all.first(where: { $0.name == name }) else {
                throw StreamError.usage(missingMessage(name, have: all.map(\.name)))
            }
            return t
        }
    }
}

extension TensorStreamReader {
    /// The tensor that `slot` takes (of its names, the first the stream declares; for a slot
    /// `orOnly`, else the stream's only tensor), read whole; the stream's other tensors are
    /// skipped, not kept. Throws the reader's error, with the slot's hint, when there is none.
    public func readTensor(_ slot: RowSlot) throws -> Tensor {
        let rows = RowBlockReader(self, slots: [slot], blockRows: 1 << 16, maxBufferedBytes: .max)
        var info = try rows.headers()[0]
        var data: [UInt8] = []
        var count = 0
        while let block = try rows.next() {
            data.append(contentsOf: block[0].data)
            count += block[0].rows
        }
        info.rows = info.isScalar ? 1 : count
        return Tensor(info: info, data: data)
    }
}

func missingMessage(_ name: String, have: [String], label: String = "input") -> String {
    let list = have.isEmpty ? "no tensors" : have.joined(separator: ", ")
    return "\(label) has no tensor '\(name)' (it has: \(list))"
}

/// One slot of a `RowBlockReader`: the tensor that fills it is, of `names`, the first in that
/// order of preference that the stream declares (`mean` before `embedding`, say). An optional slot
/// (`var`) may stay empty; it is filled only when its header arrives before the first rows of data
/// (writers declare every tensor first). A slot `orOnly` takes a stream's only tensor whatever its
/// name (a file of labels given by an option, say): known only at the end of the stream, so such
/// a tensor is held whole, where one with the slot's name is read a block at a time.
public struct RowSlot: Sendable, Equatable {
    public var names: [String]
    public var optional: Bool
    public var orOnly: Bool
    /// Added to the "has no tensor" error of a required slot, after the list of what the stream
    /// holds (say "or give --labels FILE").
    public var hint: String

    public init(_ names: String..., optional: Bool = false, orOnly: Bool = false, hint: String = "") {
        self.init(names: names, optional: optional, orOnly: orOnly, hint: hint)
    }

    public init(names: [String], optional: Bool = false, orOnly: Bool = false, hint: String = "") {
        precondition(!names.isEmpty)
        self.names = names; self.optional = optional; self.orOnly = orOnly; self.hint = hint
    }
}

/// The one reader of row-aligned tensors (`mean` and `var`, say) in blocks of rows, holding only
/// what a block needs. Each slot takes one tensor (see `RowSlot`); tensors no slot asks for are
/// skipped.
///
/// Writers interleave the chunks of row-aligned tensors; a stream that holds all of one tensor
/// before the next is still read, buffering up to `maxBufferedBytes` beyond the block being
/// assembled, and refused past that ("not interleaved").
public final class RowBlockReader {
    public let reader: TensorStreamReader
    public let slots: [RowSlot]
    /// Rows per block; may be changed between blocks (once the headers tell how wide a row is).
    public var blockRows: Int { didSet { precondition(blockRows > 0) } }
    public let maxBufferedBytes: Int
    public var label: String { reader.label }
    /// Rows handed out so far.
    public private(set) var rowsDone = 0
    /// With one tensor to read (one slot filled): a block that has half its `blockRows` rows
    /// ends where a record ends, rather than with rows of the next record. Records of
    /// `blockRows / 2 ..< blockRows` rows are then the blocks, one each, handed out without a
    /// copy; for a caller whose blocks need not be of one size (calib-metrics: a writer whose
    /// caller's pieces are not whole records leaves a short record after each piece).
    public var blocksEndWithRecords = false

    /// Bytes of one tensor not handed out yet: the DATA payloads as they arrived, in arrays of
    /// about a block each (a tensor that arrives whole before the next is held without growing
    /// one array, which would copy it and touch its pages again at every doubling). The payload
    /// that arrived last is first only borrowed (it lives in the reader's buffer until the
    /// reader's next record): a block taken from it is copied once, straight into the block, and
    /// only what is left of it is copied into an array (`keep`), before the reader moves on and
    /// before `nextSlots` returns.
    ///
    /// Each byte is copied once: `keep` fills an array up to a whole block before it starts the
    /// next one, and reserves the block's size for it, so that `take` hands such an array out as
    /// the block (topped up from the borrowed payload when the block ends there) instead of
    /// copying it into another.
    private struct Buffer {
        let spares: Spares
        let rowBytes: Int
        /// Blocks of this many bytes or more, up to `fillMost`, are assembled in arrays of their
        /// own size as the bytes arrive (`RowBlockReader.fillBlocksFrom`).
        let fillLeast: Int
        init(spares: Spares, rowBytes: Int, fillLeast: Int) { self.spares = spares; self.rowBytes = rowBytes; self.fillLeast = fillLeast }
        private var chunks: [[UInt8]] = []
        /// How many bytes the last chunk is filled up to (its block), when it was started for a block.
        private var lastLimit = 0
        /// The first chunk not handed out whole, and the bytes of it handed out.
        private var head = 0, offset = 0
        /// The borrowed payload (after every chunk), and the bytes of it handed out.
        private var borrowed: UnsafeRawBufferPointer? = nil
        private var borrowedOffset = 0
        /// Bytes and rows not handed out.
        private(set) var count = 0
        var rows = 0

        /// Larger blocks would reserve address space a short stream never uses.
        static let fillMost = 64 << 20
        /// Blocks handed out as a copy (not as the array they were kept in): for tests.
        private(set) var copied = 0

        /// Borrows `bytes` until `keep`: the caller keeps them valid until then.
        mutating func append(_ bytes: UnsafeRawBufferPointer, rows n: Int, blockRows: Int) {
            keep(blockRows: blockRows)
            if !bytes.isEmpty { borrowed = bytes; borrowedOffset = 0 }
            count += bytes.count
            rows += n
        }

        /// Takes `a`, the bytes of `n` rows unshuffled straight into it (`pump`), as a chunk of
        /// its own: handed out whole when a block begins and ends with it.
        mutating func append(owned a: [UInt8], rows n: Int, blockRows: Int) {
            keep(blockRows: blockRows)
            guard !a.isEmpty else { return }
            chunks.append(a)
            lastLimit = a.count         // full: nothing is appended to it
            count += a.count
            rows += n
        }

        /// Copies what is left of the borrowed payload into arrays: first into the last chunk,
        /// up to the end of its block, then into new ones that end where blocks of `blockRows`
        /// rows end (blocks are taken from the front), when a block's bytes are within
        /// `fillLeast...fillMost`; else into one array of its own size.
        mutating func keep(blockRows: Int) {
            guard let b = borrowed else { return }
            var at = borrowedOffset
            let (blockBytes, overflow) = blockRows.multipliedReportingOverflow(by: rowBytes)
            let byBlock = !overflow && blockBytes > 0 && blockBytes >= fillLeast && blockBytes <= Self.fillMost
            var kept = count - (b.count - at)      // bytes in chunks, not handed out
            while at < b.count {
                let rest = b.count - at, here: Int
                if head < chunks.count && chunks[chunks.count - 1].count < lastLimit {
                    here = min(rest, lastLimit - chunks[chunks.count - 1].count)
                    chunks[chunks.count - 1].append(contentsOf: UnsafeRawBufferPointer(rebasing: b[at ..< at + here]))
                } else {
                    let limit = byBlock ? blockBytes - kept % blockBytes : rest
                    here = min(rest, limit)
                    var a = spares.take(capacity: limit)
                    a.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[at ..< at + here]))
                    chunks.append(a)
                    lastLimit = limit
                }
                at += here
                kept += here
            }
            borrowed = nil
            borrowedOffset = 0
        }

        /// The next `want` bytes (`n` rows), in one array.
        mutating func take(_ want: Int, rows n: Int) -> [UInt8] {
            precondition(want <= count)
            count -= want
            rows -= n
            if offset == 0 && head < chunks.count && chunks[head].count == want {
                defer { chunks[head] = []; head += 1; compact() }
                return chunks[head]
            }
            var out: [UInt8]
            if offset == 0 && head < chunks.count && chunks[head].count < want && chunks[head].capacity >= want {
                // A chunk started for this block: the rest of the block is appended to it.
                out = []
                swap(&out, &chunks[head])
                head += 1
            } else {
                // Into an array handed back by the caller when there is one (its pages are
                // already the process's), else a new one; appended piece by piece, each a memcpy.
                out = spares.take(capacity: want)
                copied += 1
            }
            while out.count < want && head < chunks.count {
                let here = min(want - out.count, chunks[head].count - offset)
                chunks[head].withUnsafeBytes { src in out.append(contentsOf: UnsafeRawBufferPointer(rebasing: src[offset ..< offset + here])) }
                offset += here
                if offset == chunks[head].count { spares.put(&chunks[head]); head += 1; offset = 0 }
            }
            if out.count < want, let b = borrowed {
                let here = want - out.count
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[borrowedOffset ..< borrowedOffset + here]))
                borrowedOffset += here
            }
            precondition(out.count == want)
            compact()
            return out
        }

        /// Drops the slots of chunks handed out, once they are most of the list.
        private mutating func compact() {
            if head >= 64 && head * 2 >= chunks.count { chunks.removeFirst(head); head = 0 }
        }
    }
    /// Per slot, the stream index of each alternative seen (by position in `names`).
    private var seen: [[Int?]]
    /// Per slot, the stream index of its tensor once resolved (nil: an absent optional slot).
    private var chosen: [Int?]
    private var resolved = false
    private var buffers: [Int: Buffer] = [:]
    private let spares = Spares()
    /// Blocks of this many bytes or more are assembled in arrays of their own as the rows
    /// arrive (see `Buffer`); smaller ones are copied out of arrays of a payload each, which are
    /// large enough for huge pages (`adviseHugePages`: a tensor held whole while another has not
    /// begun is then held on pages ~10× cheaper to touch). Internal: tests lower it.
    var fillBlocksFrom = hugePageAdviceFrom
    /// Blocks handed out as a copy of the bytes kept for them, of every slot (for tests).
    var blocksCopied: Int { buffers.values.reduce(0) { $0 + $1.copied } + copiedBefore }
    private var copiedBefore = 0
    private var sawData = false
    private var ended = false

    public init(_ reader: TensorStreamReader, slots: [RowSlot], blockRows: Int, maxBufferedBytes: Int = 1 << 30) {
        precondition(blockRows > 0 && !slots.isEmpty)
        self.reader = reader
        self.slots = slots
        self.blockRows = blockRows
        self.maxBufferedBytes = maxBufferedBytes
        seen = slots.map { Array(repeating: nil, count: $0.names.count) }
        chosen = Array(repeating: nil, count: slots.count)
    }

    /// One required slot per name.
    public convenience init(_ reader: TensorStreamReader, names: [String], blockRows: Int, maxBufferedBytes: Int = 1 << 30) {
        self.init(reader, slots: names.map { RowSlot($0) }, blockRows: blockRows, maxBufferedBytes: maxBufferedBytes)
    }

    /// The description of every slot's tensor (nil for an absent optional slot), reading until
    /// every slot has its first choice or the data has begun. Throws when a required slot has none.
    public func slotHeaders() throws -> [TensorInfo?] {
        defer { keepBorrowed() }
        if !resolved {
            // The stream's only tensor, for a slot that takes it when none of its names is there.
            func only(_ k: Int) -> Int? {
                slots[k].orOnly && ended && reader.tensors.count == 1 ? 0 : nil
            }
            // Every slot has its first choice; or the data has begun and every required slot has one.
            func known() -> Bool {
                seen.allSatisfy { $0[0] != nil }
                    || (sawData && slots.indices.allSatisfy { slots[$0].optional || seen[$0].contains { $0 != nil } || only($0) != nil })
            }
            while !ended && !known() { try pump() }
            for k in slots.indices {
                chosen[k] = seen[k].first(where: { $0 != nil }) ?? only(k)
                if chosen[k] == nil && !slots[k].optional {
                    let list = reader.tensors.isEmpty ? "no tensors" : reader.tensors.map(\.name).joined(separator: ", ")
                    let want = slots[k].names.map { "'\($0)'" }.joined(separator: " or ")
                    let hint = slots[k].hint.isEmpty ? "" : "; \(slots[k].hint)"
                    throw StreamError.usage("\(label) has no tensor \(want) (it has: \(list)\(hint))")
                }
            }
            resolved = true
            keepChosenOnly()
        }
        return chosen.map { $0.map { reader.tensors[$0] } }
    }

    /// The descriptions of the slots' tensors, for a reader whose slots are all required.
    public func headers() throws -> [TensorInfo] {
        try slotHeaders().map { $0! }
    }

    /// Leaves slot `k` empty from now on (after `slotHeaders`): its tensor is skipped like any
    /// other tensor no slot asks for.
    public func drop(slot k: Int) {
        precondition(resolved)
        chosen[k] = nil
        keepChosenOnly()
    }

    /// The next block (one tensor per slot, the same rows each, nil for an empty slot), or nil at
    /// the end. Refuses tensors of different row counts.
    public func nextSlots() throws -> [Tensor?]? {
        defer { keepBorrowed() }
        let infos = try slotHeaders()
        let active = chosen.compactMap { $0 }
        let recordEnds = blocksEndWithRecords && active.count == 1
        while !ended && active.contains(where: { buffers[$0]!.rows < blockRows }) {
            if recordEnds && buffers[active[0]]!.rows >= max(1, blockRows / 2) { break }
            try pump()
        }
        let n = min(blockRows, active.map { buffers[$0]!.rows }.min() ?? 0)
        if n == 0 {
            if let long = active.first(where: { buffers[$0]!.rows > 0 }), let short = active.first(where: { buffers[$0]!.rows == 0 }) {
                let a = reader.tensors[long].name, b = reader.tensors[short].name
                throw StreamError.invalid("\(label): tensors '\(a)' and '\(b)' have different row counts (\(rowsDone + buffers[long]!.rows) and \(rowsDone) rows)")
            }
            return nil
        }
        var block: [Tensor?] = []
        for k in slots.indices {
            guard let i = chosen[k], var info = infos[k] else { block.append(nil); continue }
            info.rows = n
            block.append(Tensor(info: info, data: buffers[i]!.take(n * info.rowBytes, rows: n)))
        }
        rowsDone += n
        return block
    }

    /// Reads until every slot's tensor has rows waiting (or the stream ends), so that the next
    /// block costs less: for a caller that has a thread idle now and work for this one later
    /// (calib-metrics reads the first rows of --labels while it reads the predictions' headers).
    public func readAhead() throws {
        defer { keepBorrowed() }
        _ = try slotHeaders()
        let active = chosen.compactMap { $0 }
        while !ended && active.contains(where: { buffers[$0]!.rows == 0 }) { try pump() }
    }

    /// Rows of slot `k`'s tensor read but not handed out yet (0 for an empty slot): after
    /// `readAhead`, the rows of the tensor's first record, unless the stream has ended.
    public func rowsWaiting(slot k: Int) -> Int {
        chosen[k].flatMap { buffers[$0]?.rows } ?? 0
    }

    /// Takes back the bytes of a block the caller is done with (leaving `data` empty): the next
    /// blocks are read or copied into them instead of into new arrays. A stream read a block at
    /// a time then touches the same pages for every block rather than new ones (a page the
    /// process touches first costs ~1.6 µs on a VM: 10^4 of them for 40 MB). Safe from any
    /// thread, and for any array: one still held elsewhere is never written over (its holder
    /// keeps the bytes; the reader gets a copy on writing).
    public func recycle(_ data: inout [UInt8]) {
        spares.put(&data)
    }

    /// The next DATA record of the one slot's tensor, as it arrived: its rows, their bytes (valid
    /// until the next call) and, when the reader offers it, the record still compressed (see
    /// `CompressedData`); nil at the end. For a program that can copy records it writes
    /// unchanged. (Blocks and records may alternate only when no rows are waiting for a block.)
    public func nextRecord() throws -> (rows: Int, bytes: UnsafeRawBufferPointer, compressed: CompressedData?)? {
        let infos = try slotHeaders()
        precondition(slots.count == 1 && infos[0] != nil, "nextRecord: a reader of one tensor")
        let want = chosen[0]!
        precondition(buffers[want]!.rows == 0, "nextRecord: rows are waiting for a block")
        while let event = try reader.next() {
            if case .data(let i, let rows, let bytes) = event, i == want, rows > 0 {
                rowsDone += rows
                return (rows, bytes, reader.lastCompressedData)
            }
        }
        ended = true
        return nil
    }

    /// The next block, for a reader whose slots are all required.
    public func next() throws -> [Tensor]? {
        try nextSlots()?.map { $0! }
    }

    private func keepChosenOnly() {
        let keep = Set(chosen.compactMap { $0 })
        for i in Array(buffers.keys) where !keep.contains(i) { copiedBefore += buffers[i]!.copied; buffers[i] = nil }
        for i in keep where buffers[i] == nil { buffers[i] = Buffer(spares: spares, rowBytes: reader.tensors[i].rowBytes, fillLeast: fillBlocksFrom) }
    }

    /// Copies every borrowed payload into arrays of its own: before the reader moves on, and
    /// before a public call returns (so that no caller sees a buffer that depends on it).
    private func keepBorrowed() {
        for i in Array(buffers.keys) { buffers[i]!.keep(blockRows: blockRows) }
    }

    /// The size of a block that a record may begin: of a chosen tensor with no rows waiting (the
    /// largest such block). A shuffled record that fits is unshuffled straight into an array of
    /// the reader's (`TensorStreamReader.next(unshufflingInto:)`), which is handed out whole as
    /// a block that is that record (its size, or one that `blocksEndWithRecords` ends there):
    /// no copy of its bytes.
    private func wholeBlock() -> Int? {
        guard resolved else { return nil }
        var most: Int? = nil
        for i in chosen.compactMap({ $0 }) where buffers[i]!.count == 0 {
            let (bytes, overflow) = blockRows.multipliedReportingOverflow(by: reader.tensors[i].rowBytes)
            if !overflow && bytes > 0 && bytes <= Buffer.fillMost && bytes > (most ?? 0) { most = bytes }
        }
        return most
    }

    private func pump() throws {
        keepBorrowed()
        var target = wholeBlock().map { spares.take(count: $0) } ?? []
        defer { spares.put(&target) }
        guard let event = try target.withUnsafeMutableBytes({ try reader.next(unshufflingInto: $0) }) else { ended = true; return }
        switch event {
        case .tensor(let i):
            guard !resolved else { return }
            let name = reader.tensors[i].name
            for k in slots.indices where !(sawData && slots[k].optional) {
                if let j = slots[k].names.firstIndex(of: name), seen[k][j] == nil {
                    seen[k][j] = i
                    buffers[i] = Buffer(spares: spares, rowBytes: reader.tensors[i].rowBytes, fillLeast: fillBlocksFrom)
                    break
                }
            }
            // The first tensor may be the only one, which a slot `orOnly` takes: its rows are kept
            // until the end of the stream or a second tensor tells.
            if i == 0 && buffers[i] == nil && slots.contains(where: \.orOnly) { buffers[i] = Buffer(spares: spares, rowBytes: reader.tensors[i].rowBytes, fillLeast: fillBlocksFrom) }
            if i == 1 && !seen.contains(where: { $0.contains(0) }) { buffers[0] = nil }
        case .data(let i, let rows, let bytes):
            sawData = true
            guard buffers[i] != nil else { return }
            if reader.lastDataInOffered {
                target.removeLast(target.count - bytes.count)
                buffers[i]!.append(owned: target, rows: rows, blockRows: blockRows)
                target = []
            } else {
                buffers[i]!.append(bytes, rows: rows, blockRows: blockRows)
            }
            // What the next block needs is not counted: a block of many rows of one tensor is
            // the caller's choice (emb-sim's query blocks fill half its memory budget), not a
            // stream whose tensors arrive one after the other.
            let waiting = buffers.reduce(0) { total, e in
                let (need, overflow) = blockRows.multipliedReportingOverflow(by: reader.tensors[e.key].rowBytes)
                return total + (overflow ? 0 : max(0, e.value.count - need))
            }
            if waiting > maxBufferedBytes {
                // Only the stream's first tensor, held until the stream tells whether it is the only
                // one (a slot `orOnly`): its name is what makes it stream.
                if !resolved, buffers.count == 1, buffers[0] != nil, !seen.contains(where: { $0.contains(0) }),
                   let k = slots.firstIndex(where: \.orOnly) {
                    let name = reader.tensors[0].name, want = slots[k].names[0]
                    throw StreamError.invalid("\(label): '\(name)' is held whole until the end of the stream shows that it is the only tensor, and it passed \(maxBufferedBytes >> 20) MiB: name it '\(want)' ('tensor rename \(name)=\(want)'), and it is read a block at a time")
                }
                let names = buffers.keys.sorted().map { "'\(reader.tensors[$0].name)'" }.joined(separator: ", ")
                throw StreamError.invalid("\(label): tensors \(names) are not interleaved: more than \(maxBufferedBytes >> 20) MiB of one arrived before the others (write them with 'tensor paste', which interleaves)")
            }
        }
    }
}

/// Arrays of blocks handed back to a `RowBlockReader` (`recycle`), and of chunks it has handed
/// out, given out again, emptied, for the next blocks and chunks: a few (a reader's caller holds
/// a block or two at a time), of 64 MiB at most together (a reader of blocks of gigabytes keeps
/// none: a new array for such a block costs little beside filling it).
final class Spares: Sendable {
    private let arrays = Mutex<[[UInt8]]>([])
    private static let kept = 6, keptBytes = 64 << 20

    func put(_ data: inout [UInt8]) {
        var a: [UInt8] = []
        swap(&a, &data)
        guard a.capacity > 0 else { return }
        // Kept as it is, bytes and all (for `take(count:)`), even while someone else still
        // holds the storage: whoever writes to it first then gets a copy of their own (copy on
        // write), so a block the caller holds is never written over, and the usual case — two
        // holders of one block, each handing it back when done — costs no copy. The same
        // storage is kept once.
        let storage = a.withUnsafeBufferPointer { $0.baseAddress }
        arrays.withLock { list in
            guard !list.contains(where: { $0.withUnsafeBufferPointer { $0.baseAddress } == storage }) else { return }
            let bytes = list.reduce(a.capacity) { $0 + $1.capacity }
            if list.count < Self.kept && bytes <= Self.keptBytes {
                list.append(a)
            } else if let i = list.indices.min(by: { list[$0].capacity < list[$1].capacity }),
                      list[i].capacity < a.capacity, bytes - list[i].capacity <= Self.keptBytes {
                list[i] = a     // the larger stays: it serves any block the smaller would
            }
        }
    }

    /// How many arrays are kept (for tests).
    var held: Int { arrays.withLock { $0.count } }

    /// An empty array of at least `capacity`: the smallest spare that holds it, else a new one.
    func take(capacity: Int) -> [UInt8] {
        var a = spare(capacity)
        a.removeAll(keepingCapacity: true)
        if a.capacity < capacity { a.reserveCapacityOnHugePages(capacity) }
        return a
    }

    /// An array of `count` bytes whatever they are, to be written over: a spare's (no byte
    /// copied or zeroed when it held as many), else a new one (not zeroed either).
    func take(count: Int) -> [UInt8] {
        var a = spare(count)
        if a.count >= count {
            a.removeLast(a.count - count)
        } else if a.capacity >= count {
            a.append(contentsOf: repeatElement(0, count: count - a.count))
        } else {
            a = [UInt8](unsafeUninitializedCapacity: count) { b, n in
                adviseHugePages(UnsafeRawPointer(b.baseAddress), bytes: count)
                n = count
            }
        }
        return a
    }

    /// The smallest spare of at least `capacity` bytes, taken out; else an empty array.
    private func spare(_ capacity: Int) -> [UInt8] {
        arrays.withLock { list -> [UInt8]? in
            guard let i = list.indices.filter({ list[$0].capacity >= capacity }).min(by: { list[$0].capacity < list[$1].capacity }) else { return nil }
            return list.remove(at: i)
        } ?? []
    }
}
