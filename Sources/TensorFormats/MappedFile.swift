import TensorStream
#if canImport(Glibc)
import Glibc
#endif

/// `body` on a file's bytes mapped read-only: a file read whole once (a model's weights) is read
/// without copying it out of the page cache into an array first, and without as many fresh pages.
/// The mapping is gone when `body` returns: keep copies, not pointers.
public func withMappedFile<R>(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FormatError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw FormatError("cannot read \(path): \(String(cString: strerror(errno)))") }
    let size = Int(st.st_size)
    guard size > 0 else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
    guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
        throw FormatError("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { munmap(p, size) }
    _ = madvise(p, size, MADV_WILLNEED)   // read ahead: every byte is used
    return try body(UnsafeRawBufferPointer(start: p, count: size))
}

/// The values of a tensor whose bytes are `bytes` as Float (converted from f16/bf16/f64 or
/// integers), whatever their alignment.
public func floats(of bytes: UnsafeRawBufferPointer, dtype: DType) -> [Float] {
    if let base = bytes.baseAddress, Int(bitPattern: base) % dtype.size != 0 {
        return Array(bytes).withUnsafeBytes { convertToFloat($0, from: dtype) }
    }
    return convertToFloat(bytes, from: dtype)
}
