#if canImport(Glibc)
import Glibc
#endif
import CZlib
import TensorStream

/// Rows of several tensors set aside in one unlinked temporary file, in the order they arrive,
/// so that they can be written out tensor by tensor in flat memory (an .npy or .npz needs each
/// array whole and contiguous, and its shape before its data; a stream interleaves them).
public final class Spool {
    private let fd: Int32
    private var size = 0
    /// Per tensor: (offset, count) of its pieces in the file, and a CRC-32 of its bytes.
    private var extents: [[(Int, Int)]] = []
    private var crcs: [UInt] = []
    public private(set) var bytes: [Int] = []

    /// The file has no name at any moment where the file system allows it (Linux's O_TMPFILE):
    /// a program killed at any point leaves nothing behind. Elsewhere it is named by mkstemp and
    /// unlinked at once (a window of microseconds in which a signal would leave it in TMPDIR).
    public init(directory: String? = nil) throws {
        let dir = directory ?? (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp")
        #if os(Linux)
        // O_TMPFILE is a macro Swift does not import: __O_TMPFILE | O_DIRECTORY, the same on every
        // Linux architecture glibc supports but alpha, parisc and sparc.
        let unnamed = open(dir, O_RDWR | O_CLOEXEC | O_EXCL | 0o20000000 | O_DIRECTORY, 0o600)
        if unnamed >= 0 { fd = unnamed; return }
        #endif
        var template = Array((dir + "/tensor-spool-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw StreamError.io("cannot create a temporary file in \(dir): \(String(cString: strerror(errno))) (set TMPDIR)")
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        self.fd = fd
    }

    deinit { close(fd) }

    /// The file's descriptor (for tests: what /proc says of it).
    var descriptor: Int32 { fd }

    /// Sets aside bytes of tensor `index` (0, 1, ... in order of appearance).
    public func append(_ index: Int, _ data: UnsafeRawBufferPointer) throws {
        while extents.count <= index { extents.append([]); crcs.append(crc32(0, nil, 0)); bytes.append(0) }
        guard data.count > 0 else { return }
        var done = 0
        while done < data.count {
            let n = pwrite(fd, data.baseAddress! + done, data.count - done, off_t(size + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw StreamError.io("cannot write a temporary file: \(String(cString: strerror(errno))) (set TMPDIR to a larger file system)")
            }
            done += n
        }
        if let last = extents[index].last, last.0 + last.1 == size {
            extents[index][extents[index].count - 1].1 += data.count
        } else {
            extents[index].append((size, data.count))
        }
        crcs[index] = crc32(crcs[index], data.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt32(data.count))
        size += data.count
        bytes[index] += data.count
    }

    /// CRC-32 of tensor `index`'s bytes, as if `prefix` came first.
    func crc(_ index: Int, after prefix: [UInt8]) -> UInt32 {
        let p = prefix.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
        guard index < crcs.count else { return UInt32(p) }
        return UInt32(crc32_combine(p, crcs[index], off_t(bytes[index])))
    }

    /// Tensor `index`'s bytes, in pieces of at most 1 MiB.
    public func forEachPiece(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard index < extents.count else { return }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        for (offset, count) in extents[index] {
            var done = 0
            while done < count {
                let n = pread(fd, buf.baseAddress!, min(buf.count, count - done), off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw StreamError.io("cannot read back a temporary file: \(String(cString: strerror(errno)))") }
                try body(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
                done += n
            }
        }
    }
}

/// Why a tensor name cannot be an archive member's name, or nil. Names become paths when an
/// archive is unpacked: no directories, no "..", no NUL or control characters.
public func unsafeMemberReason(_ name: String) -> String? {
    if name.isEmpty { return "it is empty" }
    if name.contains("/") || name.contains("\\") { return "it holds a path separator" }
    if name == "." || name == ".." || name.hasPrefix("..") { return "it names a directory" }
    if name.unicodeScalars.contains(where: { $0.value < 0x20 || ($0.value >= 0x7F && $0.value < 0xA0) }) {
        return "it holds NUL or control characters"
    }
    return nil
}

/// Writes an .npz archive member by member as the tensors' bytes are copied from a spool:
/// stored members (or deflated ones with `compress`), zip64 records where sizes or offsets
/// need them. Memory stays flat whatever the sizes.
public struct NpzStreamWriter {
    let sink: ByteSink
    let compress: Bool
    private var offset = 0
    private var central: [UInt8] = []
    private var count = 0

    public init(sink: ByteSink, compress: Bool) { self.sink = sink; self.compress = compress }

    private mutating func put(_ b: [UInt8]) throws {
        try b.withUnsafeBytes { try sink.write($0) }
        offset += b.count
    }

    /// Writes one member: `name`.npy holding an .npy header and tensor `index` of `spool`.
    public mutating func add(name: String, header: [UInt8], spool: Spool, index: Int) throws {
        if let why = unsafeMemberReason(name) {
            throw FormatError("tensor '\(escaped(name))' cannot be an npz member: \(why) (rename it with 'tensor rename')")
        }
        let nameBytes = Array((name + ".npy").utf8)
        let size = header.count + (index < spool.bytes.count ? spool.bytes[index] : 0)
        let crc = spool.crc(index, after: header)
        let start = offset
        let flags = compress ? 0x08 : 0            // sizes after the data when deflated
        // zip64 when the member or its offset may pass 4 GiB (deflate can grow data a little).
        let zip64 = size >= 0xFFFF_0000 || start >= 0xFFFF_FFFF
        var local = LEBytes()
        local.u32(0x0403_4B50); local.u16(zip64 ? 45 : 20); local.u16(flags); local.u16(compress ? 8 : 0)
        local.u16(0); local.u16(0x21)
        local.u32(compress ? 0 : crc)
        if zip64 {
            local.u32(0xFFFF_FFFF); local.u32(0xFFFF_FFFF)
        } else {
            local.u32(compress ? 0 : UInt32(size)); local.u32(compress ? 0 : UInt32(size))
        }
        local.u16(nameBytes.count); local.u16(zip64 ? 20 : 0)
        local.bytes += nameBytes
        if zip64 {
            local.u16(1); local.u16(16)
            local.u64(compress ? 0 : UInt64(size)); local.u64(compress ? 0 : UInt64(size))
        }
        try put(local.bytes)
        var stored = 0
        if compress {
            let d = try Deflater()
            try d.feed(header, last: false) { try put($0); stored += $0.count }
            try spool.forEachPiece(index) { piece in
                try d.feed(Array(piece), last: false) { try put($0); stored += $0.count }
            }
            try d.feed([], last: true) { try put($0); stored += $0.count }
            var desc = LEBytes()
            desc.u32(0x0807_4B50); desc.u32(crc)
            if zip64 { desc.u64(UInt64(stored)); desc.u64(UInt64(size)) } else { desc.u32(UInt32(stored)); desc.u32(UInt32(size)) }
            try put(desc.bytes)
        } else {
            try put(header)
            try spool.forEachPiece(index) { try sink.write($0); offset += $0.count }
            stored = size
        }
        guard zip64 || stored < 0xFFFF_FFFF else {
            throw FormatError("npz member '\(escaped(name))' grew past 4 GiB when deflated: write it without --compress")
        }
        var c = LEBytes()
        let big = zip64 || start >= 0xFFFF_FFFF
        c.u32(0x0201_4B50); c.u16(45); c.u16(big ? 45 : 20); c.u16(flags); c.u16(compress ? 8 : 0)
        c.u16(0); c.u16(0x21); c.u32(crc)
        if big { c.u32(0xFFFF_FFFF); c.u32(0xFFFF_FFFF) } else { c.u32(UInt32(stored)); c.u32(UInt32(size)) }
        c.u16(nameBytes.count); c.u16(big ? 28 : 0); c.u16(0); c.u16(0); c.u16(0); c.u32(0)
        c.u32(big ? 0xFFFF_FFFF : UInt32(start))
        c.bytes += nameBytes
        if big { c.u16(1); c.u16(24); c.u64(UInt64(size)); c.u64(UInt64(stored)); c.u64(UInt64(start)) }
        central += c.bytes
        count += 1
    }

    /// Writes the central directory (with zip64 end records when needed).
    public mutating func finish() throws {
        let cdOffset = offset
        try put(central)
        let needs64 = count >= 0xFFFF || cdOffset >= 0xFFFF_FFFF || central.count >= 0xFFFF_FFFF
        var e = LEBytes()
        if needs64 {
            let at = offset
            e.u32(0x0606_4B50); e.u64(44); e.u16(45); e.u16(45); e.u32(0); e.u32(0)
            e.u64(UInt64(count)); e.u64(UInt64(count)); e.u64(UInt64(central.count)); e.u64(UInt64(cdOffset))
            e.u32(0x0706_4B50); e.u32(0); e.u64(UInt64(at)); e.u32(1)
        }
        e.u32(0x0605_4B50); e.u16(0); e.u16(0)
        e.u16(min(count, 0xFFFF)); e.u16(min(count, 0xFFFF))
        e.u32(UInt32(min(central.count, 0xFFFF_FFFF))); e.u32(UInt32(min(cdOffset, 0xFFFF_FFFF))); e.u16(0)
        try put(e.bytes)
    }
}

struct LEBytes {
    var bytes: [UInt8] = []
    mutating func u16(_ v: Int) { bytes += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    mutating func u32(_ v: UInt32) { for k in 0..<4 { bytes.append(UInt8((v >> (8 * UInt32(k))) & 0xFF)) } }
    mutating func u64(_ v: UInt64) { for k in 0..<8 { bytes.append(UInt8((v >> (8 * UInt64(k))) & 0xFF)) } }
}

/// Raw deflate (as zip members hold it), fed piece by piece. The z_stream lives at a fixed
/// address (zlib keeps a pointer back to it).
final class Deflater {
    private let strm = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var out = [UInt8](repeating: 0, count: 1 << 16)
    private var open = false

    init() throws {
        strm.initialize(to: z_stream())
        let ret = deflateInit2_(strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY,
                                ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard ret == Z_OK else { strm.deallocate(); throw FormatError("zlib: deflateInit failed") }
        open = true
    }

    deinit {
        if open { deflateEnd(strm) }
        strm.deallocate()
    }

    func feed(_ input: [UInt8], last: Bool, emit: ([UInt8]) throws -> Void) throws {
        var input = input
        try input.withUnsafeMutableBufferPointer { inb in
            strm.pointee.next_in = inb.baseAddress
            strm.pointee.avail_in = UInt32(inb.count)
            while true {
                let ret: Int32 = out.withUnsafeMutableBufferPointer { ob in
                    strm.pointee.next_out = ob.baseAddress
                    strm.pointee.avail_out = UInt32(ob.count)
                    return deflate(strm, last ? Z_FINISH : Z_NO_FLUSH)
                }
                let produced = out.count - Int(strm.pointee.avail_out)
                if produced > 0 { try emit(Array(out[0..<produced])) }
                if ret == Z_STREAM_END { deflateEnd(strm); open = false; return }
                guard ret == Z_OK || ret == Z_BUF_ERROR else { throw FormatError("zlib: deflate failed (\(ret))") }
                if !last && strm.pointee.avail_in == 0 && strm.pointee.avail_out > 0 { return }
            }
        }
    }
}
