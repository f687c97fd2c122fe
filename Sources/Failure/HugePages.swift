#if canImport(Glibc)
import Glibc
#endif

/// Large buffers on 2 MiB pages. On a VM every 4 KiB page a process touches for the first time
/// costs ~1.6 µs (a fault, zeroing, the memory cgroup's accounting), and freeing it costs again:
/// 40 MB of new pages are ~16 ms. Where the kernel's transparent huge pages are in `madvise`
/// mode (as on the machines this was measured on; in `always` mode they are used anyway), a
/// range advised with MADV_HUGEPAGE is faulted in 2 MiB at a time, ~9× cheaper per byte there
/// (64 MB: 3 ms against 27 ms, and 0.3 ms against 5 ms to free). numpy advises its arrays of 4 MiB or more the same way. Only the
/// whole 2 MiB pages inside the range are advised; nothing is allocated or touched; where the
/// kernel has no huge pages (or says no) this does nothing.
public func adviseHugePages(_ start: UnsafeRawPointer?, bytes: Int) {
    #if os(Linux)
    guard let start, bytes >= hugePageAdviceFrom else { return }
    let huge = 2 << 20
    let lo = (Int(bitPattern: start) + huge - 1) & ~(huge - 1)
    let hi = (Int(bitPattern: start) + bytes) & ~(huge - 1)
    guard hi > lo, let p = UnsafeMutableRawPointer(bitPattern: lo) else { return }
    _ = madvise(p, hi - lo, MADV_HUGEPAGE)
    #endif
}

/// Buffers smaller than this are not advised: one huge page (numpy advises from 4 MiB); none
/// are when the environment sets UNCERTAINTY_TOOLBOX_HUGEPAGES=0 (as NUMPY_MADVISE_HUGEPAGE=0
/// does for numpy). On the VMs this was measured on, zeroing a huge page is now and then far
/// slower than usual (about one run in ten of calib-metrics took 40-60 ms longer), which the
/// variable lets a user who cares about the slowest run rather than the usual one avoid.
public let hugePageAdviceFrom = hugePageThreshold(getenv("UNCERTAINTY_TOOLBOX_HUGEPAGES").map { String(cString: $0) })

/// The threshold for a value of UNCERTAINTY_TOOLBOX_HUGEPAGES: "0" turns the advice off.
public func hugePageThreshold(_ setting: String?) -> Int {
    setting == "0" ? Int.max : 2 << 20
}

extension Array {
    /// `reserveCapacity(n)`, and the reserved storage advised onto huge pages (see
    /// `adviseHugePages`) when it is large: for arrays that are about to be filled.
    public mutating func reserveCapacityOnHugePages(_ n: Int) {
        reserveCapacity(n)
        let bytes = capacity * MemoryLayout<Element>.stride
        withUnsafeBufferPointer { adviseHugePages(UnsafeRawPointer($0.baseAddress), bytes: bytes) }
    }
}

extension Array where Element: BitwiseCopyable {
    /// `n` elements left as the allocator gives them (for a buffer written whole before it is
    /// read: zeroing it first would be a pass over memory for nothing), advised onto huge pages
    /// when large.
    public static func uninitializedOnHugePages(_ n: Int) -> [Element] {
        [Element](unsafeUninitializedCapacity: n) { b, initialized in
            adviseHugePages(UnsafeRawPointer(b.baseAddress), bytes: n * MemoryLayout<Element>.stride)
            initialized = n
        }
    }
}

/// `malloc(bytes)` (nil when the system refuses), except that a buffer of `hugePageAdviceFrom`
/// or more starts on a 2 MiB boundary and is advised whole (`adviseHugePages`), so that every
/// byte of it can be on huge pages (a plain malloc'd buffer starts 16 bytes into a 4 KiB page:
/// up to 2 MiB of it stays on small pages). Freed with `free`.
public func allocateBuffer(_ bytes: Int) -> UnsafeMutableRawPointer? {
    guard bytes >= hugePageAdviceFrom else { return malloc(bytes) }
    var p: UnsafeMutableRawPointer? = nil
    guard posix_memalign(&p, 2 << 20, bytes) == 0, let p else { return nil }
    adviseHugePages(p, bytes: bytes)
    return p
}
