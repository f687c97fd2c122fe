import CZlib

/// One member of a zip archive, as numpy's .npz files use them (stored or deflated, with
/// zip64 extensions).
struct ZipEntry {
    var name: String
    var method: UInt16
    var crc: UInt32
    var compressedSize: Int
    var size: Int
    var localOffset: Int
}

struct LE {
    let b: [UInt8]
    func u16(_ o: Int) throws -> UInt16 {
        guard o >= 0, o <= b.count - 2 else { throw FormatError("truncated zip file") }
        return UInt16(b[o]) | UInt16(b[o + 1]) << 8
    }
    func u32(_ o: Int) throws -> UInt32 {
        guard o >= 0, o <= b.count - 4 else { throw FormatError("truncated zip file") }
        return UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }
    func u64(_ o: Int) throws -> UInt64 { UInt64(try u32(o)) | UInt64(try u32(o + 4)) << 32 }
}

enum Zip {
    /// Lists the members of a zip archive held in memory.
    static func entries(_ bytes: [UInt8]) throws -> [ZipEntry] {
        let r = LE(b: bytes)
        var eocd = -1
        var p = bytes.count - 22
        while p >= max(0, bytes.count - 22 - 65535) {
            if try r.u32(p) == 0x0605_4B50 { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw FormatError("not a zip/.npz file (no end of central directory)") }
        var count = Int(try r.u16(eocd + 10))
        var cdOffset = Int(try r.u32(eocd + 16))
        if eocd >= 20, try r.u32(eocd - 20) == 0x0706_4B50 {
            // Offsets and counts from the file: converted only when they fit (a forged u64 must
            // not trap), then bounds-checked by every read.
            guard let z64 = Int(exactly: try r.u64(eocd - 12)), z64 < bytes.count,
                  try r.u32(z64) == 0x0606_4B50,
                  let c = Int(exactly: try r.u64(z64 + 32)), let off = Int(exactly: try r.u64(z64 + 48)),
                  off < bytes.count else {
                throw FormatError("damaged zip64 directory")
            }
            count = c
            cdOffset = off
        }
        guard count < 1 << 20 else { throw FormatError("zip file claims \(count) members") }
        var out: [ZipEntry] = []
        var o = cdOffset
        for _ in 0..<count {
            guard try r.u32(o) == 0x0201_4B50 else { throw FormatError("damaged zip central directory") }
            let method = try r.u16(o + 10)
            let crc = try r.u32(o + 16)
            var csize = UInt64(try r.u32(o + 20))
            var usize = UInt64(try r.u32(o + 24))
            let nameLen = Int(try r.u16(o + 28)), extraLen = Int(try r.u16(o + 30)), commentLen = Int(try r.u16(o + 32))
            var local = UInt64(try r.u32(o + 42))
            guard o + 46 + nameLen <= bytes.count else { throw FormatError("truncated zip file") }
            let name = String(decoding: bytes[o + 46 ..< o + 46 + nameLen], as: UTF8.self)
            // zip64 extra field: the 0xFFFFFFFF fields, in order.
            var e = o + 46 + nameLen
            let eEnd = e + extraLen
            while e + 4 <= eEnd {
                let id = try r.u16(e), len = Int(try r.u16(e + 2))
                if id == 1 {
                    var f = e + 4
                    if usize == 0xFFFF_FFFF { usize = try r.u64(f); f += 8 }
                    if csize == 0xFFFF_FFFF { csize = try r.u64(f); f += 8 }
                    if local == 0xFFFF_FFFF { local = try r.u64(f); f += 8 }
                }
                e += 4 + len
            }
            guard usize < 1 << 50, csize < 1 << 50, local < 1 << 50 else { throw FormatError("damaged zip entry sizes") }
            out.append(ZipEntry(name: name, method: method, crc: crc, compressedSize: Int(csize),
                                size: Int(usize), localOffset: Int(local)))
            o += 46 + nameLen + extraLen + commentLen
        }
        return out
    }

    /// The uncompressed bytes of one member, CRC-checked.
    static func extract(_ bytes: [UInt8], _ e: ZipEntry) throws -> [UInt8] {
        let r = LE(b: bytes)
        guard try r.u32(e.localOffset) == 0x0403_4B50 else { throw FormatError("damaged zip local header for \(e.name)") }
        let start = e.localOffset + 30 + Int(try r.u16(e.localOffset + 26)) + Int(try r.u16(e.localOffset + 28))
        guard start + e.compressedSize <= bytes.count else { throw FormatError("truncated zip member \(e.name)") }
        // Sizes come from the archive: check them against the bytes that are there before
        // allocating (deflate expands at most 1032:1), so a forged header cannot claim gigabytes.
        guard e.method != 0 || e.size == e.compressedSize,
              e.method != 8 || e.size <= e.compressedSize * 1032 + 64 else {
            throw FormatError("zip member \(e.name) is damaged (claims \(e.size) bytes from \(e.compressedSize) stored)")
        }
        var out: [UInt8]
        switch e.method {
        case 0:
            out = Array(bytes[start ..< start + e.compressedSize])
        case 8:
            out = try inflate(bytes, start: start, count: e.compressedSize, expected: e.size, name: e.name)
        default:
            throw FormatError("zip member \(e.name) uses compression method \(e.method) (only stored and deflated are supported)")
        }
        guard out.count == e.size else { throw FormatError("zip member \(e.name) has the wrong size") }
        let crc = out.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
        guard crc == e.crc else { throw FormatError("zip member \(e.name) is damaged (CRC mismatch)") }
        return out
    }

    static func inflate(_ bytes: [UInt8], start: Int, count: Int, expected: Int, name: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: expected)
        var strm = z_stream()
        guard inflateInit2_(&strm, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FormatError("zlib: cannot initialise")
        }
        defer { inflateEnd(&strm) }
        let ret: Int32 = bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                strm.next_in = UnsafeMutablePointer(mutating: src.baseAddress! + start)
                strm.avail_in = UInt32(count)
                strm.next_out = dst.baseAddress
                strm.avail_out = UInt32(expected)
                return CZlib.inflate(&strm, Z_FINISH)
            }
        }
        guard ret == Z_STREAM_END, Int(strm.total_out) == expected else {
            throw FormatError("zip member \(name) is damaged (inflate failed)")
        }
        return out
    }

    /// Writes members (name, bytes) as a zip archive; deflated when `compress`.
    static func write(_ members: [(String, [UInt8])], compress: Bool) throws -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func u16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func u32(_ v: Int, _ a: inout [UInt8]) { for k in 0..<4 { a.append(UInt8((v >> (8 * k)) & 0xFF)) } }
        for (name, data) in members {
            let crc = data.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, UInt32($0.count))) }
            let body = compress ? try deflate(data) : data
            guard out.count < 0xFFFF_FFFF, body.count < 0xFFFF_FFFF, data.count < 0xFFFF_FFFF else {
                throw FormatError("npz members over 4 GiB are not supported; write .npy files instead")
            }
            let nameBytes = Array(name.utf8)
            let offset = out.count
            var local: [UInt8] = []
            u32(0x0403_4B50, &local); u16(20, &local); u16(0, &local); u16(compress ? 8 : 0, &local)
            u16(0, &local); u16(0x21, &local)  // time, date (1980-01-01)
            u32(crc, &local); u32(body.count, &local); u32(data.count, &local)
            u16(nameBytes.count, &local); u16(0, &local)
            out += local + nameBytes + body
            u32(0x0201_4B50, &central); u16(20, &central); u16(20, &central); u16(0, &central)
            u16(compress ? 8 : 0, &central); u16(0, &central); u16(0x21, &central)
            u32(crc, &central); u32(body.count, &central); u32(data.count, &central)
            u16(nameBytes.count, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central)
            u32(0, &central); u32(offset, &central)
            central += nameBytes
        }
        let cdOffset = out.count
        out += central
        var end: [UInt8] = []
        u32(0x0605_4B50, &end); u16(0, &end); u16(0, &end)
        u16(members.count, &end); u16(members.count, &end)
        u32(central.count, &end); u32(cdOffset, &end); u16(0, &end)
        return out + end
    }

    static func deflate(_ data: [UInt8]) throws -> [UInt8] {
        var strm = z_stream()
        guard deflateInit2_(&strm, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw FormatError("zlib: cannot initialise") }
        defer { deflateEnd(&strm) }
        let bound = Int(deflateBound(&strm, UInt(data.count)))
        var out = [UInt8](repeating: 0, count: bound)
        let ret: Int32 = data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                strm.next_in = UnsafeMutablePointer(mutating: src.baseAddress ?? UnsafePointer(dst.baseAddress!))
                strm.avail_in = UInt32(data.count)
                strm.next_out = dst.baseAddress
                strm.avail_out = UInt32(bound)
                return CZlib.deflate(&strm, Z_FINISH)
            }
        }
        guard ret == Z_STREAM_END else { throw FormatError("zlib: deflate failed") }
        return Array(out[0 ..< Int(strm.total_out)])
    }
}

public enum Npz {
    /// Every array of an .npz archive, in archive order, named without ".npy".
    public static func read(_ bytes: [UInt8]) throws -> [Tensor] {
        let (tensors, skipped) = try read(bytes, skipUnsupported: false)
        precondition(skipped.isEmpty)
        return tensors
    }

    /// Every array of an .npz archive; with `skipUnsupported`, arrays whose dtype has no tensor
    /// equivalent (strings, objects, structured) are left out and listed with the reason.
    public static func read(_ bytes: [UInt8], skipUnsupported: Bool) throws -> (tensors: [Tensor], skipped: [(String, String)]) {
        var tensors: [Tensor] = []
        var skipped: [(String, String)] = []
        for e in try Zip.entries(bytes) {
            let name = e.name.hasSuffix(".npy") ? String(e.name.dropLast(4)) : e.name
            let member = try Zip.extract(bytes, e)
            do {
                tensors.append(try Npy.read(member, name: name))
            } catch let err as FormatError {
                if skipUnsupported && err.description.hasPrefix("unsupported numpy dtype") {
                    skipped.append((name, err.description))
                    continue
                }
                throw FormatError("\(e.name): \(err.description)")
            }
        }
        return (tensors, skipped)
    }

    /// Tensors as an .npz archive (numpy.savez, or savez_compressed when `compress`).
    public static func write(_ tensors: [Tensor], compress: Bool) throws -> [UInt8] {
        try Zip.write(tensors.map { ($0.name + ".npy", try Npy.write($0)) }, compress: compress)
    }
}

import TensorStream
