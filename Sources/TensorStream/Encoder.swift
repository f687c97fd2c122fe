import CZstd
import Failure
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Compresses `count` bytes of `record` into one zstd frame in `compressed` (grown as needed) and
/// returns the frame's size.
func compressRecord(_ cctx: OpaquePointer, _ record: [UInt8], count: Int, into compressed: inout [UInt8]) throws -> Int {
    let bound = ZSTD_compressBound(count)
    if compressed.count < bound { compressed = [UInt8](repeating: 0, count: bound) }
    return try record.withUnsafeBytes { src in
        try compressed.withUnsafeMutableBytes { dst in
            try zstdCheck(ZSTD_compress2(cctx, dst.baseAddress, dst.count, src.baseAddress, count), "compressing")
        }
    }
}

/// The thread of a writer with `WriterOptions.background`: it compresses the records handed to
/// it, in order, and writes them to the sink, while the writer's caller computes the next rows.
/// Records wait up to `depthBytes` of them, or `depth` records when they are larger; `submit`
/// blocks while they do (in bytes, not records: a block of rows written as records of 1 MiB waits
/// whole, as it did as records of 4 MiB, and its writer computes the next block meanwhile instead of
/// waiting on the compressor record by record). The first error of the sink or of
/// zstd stops the writing and is thrown by the next `submit` or by `drain`.
///
/// Once its thread runs, it owns the compression context (freed when both the writer and the
/// thread are done with it); until then, and when no thread starts, the context stays the writer's.
final class BackgroundEncoder: @unchecked Sendable {
    static let depth = 2, depthBytes = 8 << 20
    private let cctx: OpaquePointer
    /// Whether the context is this encoder's to free: set once its thread has started.
    private var ownsContext = false
    private let sink: ByteSink
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `lock`.
    /// Records to compress, and frames to write as they are (`compressed`).
    private var queue: [(record: [UInt8], count: Int, compressed: Bool)] = []
    /// The bytes of the records in `queue`.
    private var queuedBytes = 0
    private var spares: [[UInt8]] = []
    private var busy = false
    private var stopping = false
    private var failure: Error?

    /// nil when no thread can be started (the writer then compresses on the caller's thread, with
    /// its context, which a failed encoder leaves alone: its deinit runs all the same, and freed
    /// the context once, under `ulimit -v` where the thread's stack did not fit, so that the
    /// writer went on with a freed context and crashed in zstd). `startThread`: for tests.
    init?(cctx: OpaquePointer, sink: ByteSink, startThread: (@escaping () -> Void) -> Bool = startDetachedThread) {
        self.cctx = cctx; self.sink = sink
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
        guard startThread({ [self] in run() }) else { return nil }
        // Read only by deinit, which runs after the thread has let go of the encoder.
        ownsContext = true
    }

    deinit {
        if ownsContext { ZSTD_freeCCtx(cctx) }
        pthread_cond_destroy(changed); pthread_mutex_destroy(lock)
        changed.deallocate(); lock.deallocate()
    }

    /// Hands over the first `count` bytes of `record` and leaves a spare buffer in its place.
    func submit(_ record: inout [UInt8], count: Int) throws {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        try waitForRoom(count)
        var spare = spares.popLast() ?? []
        swap(&spare, &record)
        queue.append((spare, count, false))
        queuedBytes += count
        pthread_cond_broadcast(changed)
    }

    /// Hands over a copy of a frame that is already compressed: it is written in its turn.
    func submit(copying frame: UnsafeRawBufferPointer) throws {
        pthread_mutex_lock(lock)
        var copy = spares.popLast() ?? []
        pthread_mutex_unlock(lock)
        copy.removeAll(keepingCapacity: true)     // copied outside the lock: the thread goes on meanwhile
        copy.append(contentsOf: frame)
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        try waitForRoom(frame.count)
        queue.append((copy, frame.count, true))
        queuedBytes += frame.count
        pthread_cond_broadcast(changed)
    }

    /// Waits (holding `lock`) until the queue has room for `bytes` more; throws the thread's first error.
    private func waitForRoom(_ bytes: Int) throws {
        while failure == nil && queue.count >= Self.depth && queuedBytes + bytes > Self.depthBytes { pthread_cond_wait(changed, lock) }
        if let failure { throw failure }
    }

    /// The records waiting to be compressed or written (not the one at work) and their bytes: for tests.
    var waiting: (records: Int, bytes: Int) {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        return (queue.count, queuedBytes)
    }

    /// Waits until every record handed over is written; throws the first error.
    func drain() throws {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        while failure == nil && (busy || !queue.isEmpty) { pthread_cond_wait(changed, lock) }
        if let failure { throw failure }
    }

    /// Ends the thread; records not yet written are dropped (a writer that is not finished has
    /// failed: its stream is incomplete whatever happens to them).
    func stop() {
        pthread_mutex_lock(lock)
        stopping = true
        queue.removeAll()
        queuedBytes = 0
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(lock)
    }

    private func run() {
        var compressed: [UInt8] = []
        pthread_mutex_lock(lock)
        while true {
            while queue.isEmpty && !stopping { pthread_cond_wait(changed, lock) }
            if stopping { break }
            let item = queue.removeFirst()
            queuedBytes -= item.count
            busy = true
            pthread_mutex_unlock(lock)
            var error: Error? = nil
            do {
                if item.compressed {
                    try item.record.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<item.count])) }
                } else {
                    let n = try compressRecord(cctx, item.record, count: item.count, into: &compressed)
                    try compressed.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                }
            } catch let e { error = e }
            pthread_mutex_lock(lock)
            busy = false
            if let error, failure == nil { failure = error; queue.removeAll(); queuedBytes = 0 }
            spares.append(item.record)
            pthread_cond_broadcast(changed)
        }
        pthread_mutex_unlock(lock)
    }
}
