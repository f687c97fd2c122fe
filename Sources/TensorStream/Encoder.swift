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

/// The threads of a writer with `WriterOptions.background`: they compress the records handed to
/// them and write them to the sink, in order, while the writer's caller computes the next rows.
/// Records wait up to `depthBytes` of them, or `depth` records when they are larger; `submit`
/// blocks while they do (in bytes, not records: a block of rows written as records of 1 MiB waits
/// whole, as it did as records of 4 MiB, and its writer computes the next block meanwhile instead of
/// waiting on the compressor record by record). The first error of the sink or of
/// zstd stops the writing and is thrown by the next `submit` or by `drain`.
///
/// With more than one worker (`WriterOptions.compressors`), each takes the next record waiting,
/// compresses it with a context of its own, and writes its frame when the frames before it are
/// written: the same bytes as one worker, in the same order.
///
/// Once its first thread runs, it owns the writer's compression context (freed when both the
/// writer and the threads are done with it); until then, and when no thread starts, the context
/// stays the writer's. The other workers' contexts (`makeContext`) are its own.
final class BackgroundEncoder: @unchecked Sendable {
    static let depth = 2, depthBytes = 8 << 20
    private let cctx: OpaquePointer
    /// Whether the context is this encoder's to free: set once its thread has started.
    private var ownsContext = false
    /// The contexts of the workers after the first.
    private var extraContexts: [OpaquePointer] = []
    private let sink: ByteSink
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `lock`.
    /// Records to compress, and frames to write as they are (`compressed`), with their place in the stream.
    private var queue: [(record: [UInt8], count: Int, compressed: Bool, order: Int)] = []
    /// The bytes of the records in `queue`.
    private var queuedBytes = 0
    private var spares: [[UInt8]] = []
    /// Records taken by a worker and not yet written.
    private var busy = 0
    /// The place of the next record submitted, and of the next frame to write.
    private var submitted = 0, nextToWrite = 0
    private var stopping = false
    private var failure: Error?

    /// nil when no thread can be started (the writer then compresses on the caller's thread, with
    /// its context, which a failed encoder leaves alone: its deinit runs all the same, and freed
    /// the context once, under `ulimit -v` where the thread's stack did not fit, so that the
    /// writer went on with a freed context and crashed in zstd). `workers` threads when they
    /// start (at least the first), the others with contexts from `makeContext`. `startThread`: for tests.
    init?(cctx: OpaquePointer, sink: ByteSink, workers: Int = 1, makeContext: () -> OpaquePointer? = { nil },
          startThread: (@escaping () -> Void) -> Bool = startDetachedThread) {
        self.cctx = cctx; self.sink = sink
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
        guard startThread({ [self] in run(cctx) }) else { return nil }
        // Read only by deinit, which runs after the threads have let go of the encoder.
        ownsContext = true
        for _ in 1 ..< max(1, workers) {
            guard let c = makeContext() else { break }
            guard startThread({ [self] in run(c) }) else { ZSTD_freeCCtx(c); break }
            pthread_mutex_lock(lock)
            extraContexts.append(c)
            pthread_mutex_unlock(lock)
        }
    }

    deinit {
        if ownsContext { ZSTD_freeCCtx(cctx) }
        for c in extraContexts { ZSTD_freeCCtx(c) }
        pthread_cond_destroy(changed); pthread_mutex_destroy(lock)
        changed.deallocate(); lock.deallocate()
    }

    /// Hands over the first `count` bytes of `record` and leaves a spare buffer in its place.
    func submit(_ record: inout [UInt8], count: Int) throws {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        try waitForRoom(count)
        var spare = spares.popLast() ?? []
        swap(&spare, &record)
        queue.append((spare, count, false, submitted))
        submitted += 1
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
        queue.append((copy, frame.count, true, submitted))
        submitted += 1
        queuedBytes += frame.count
        pthread_cond_broadcast(changed)
    }

    /// Waits (holding `lock`) until the queue has room for `bytes` more; throws the threads' first error.
    private func waitForRoom(_ bytes: Int) throws {
        while failure == nil && queue.count >= Self.depth && queuedBytes + bytes > Self.depthBytes { pthread_cond_wait(changed, lock) }
        if let failure { throw failure }
    }

    /// The records waiting to be compressed or written (not those at work) and their bytes: for tests.
    var waiting: (records: Int, bytes: Int) {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        return (queue.count, queuedBytes)
    }

    /// The workers whose threads run: for tests.
    var workers: Int {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        return 1 + extraContexts.count
    }

    /// Waits until every record handed over is written; throws the first error.
    func drain() throws {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        while failure == nil && (busy > 0 || !queue.isEmpty) { pthread_cond_wait(changed, lock) }
        if let failure { throw failure }
    }

    /// Ends the threads; records not yet written are dropped (a writer that is not finished has
    /// failed: its stream is incomplete whatever happens to them).
    func stop() {
        pthread_mutex_lock(lock)
        stopping = true
        queue.removeAll()
        queuedBytes = 0
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(lock)
    }

    /// A worker: takes the next record, compresses it with `context`, writes it in its turn.
    private func run(_ context: OpaquePointer) {
        var compressed: [UInt8] = []
        pthread_mutex_lock(lock)
        while true {
            while queue.isEmpty && !stopping { pthread_cond_wait(changed, lock) }
            if stopping { break }
            let item = queue.removeFirst()
            queuedBytes -= item.count
            busy += 1
            pthread_mutex_unlock(lock)
            var error: Error? = nil, n = item.count
            if !item.compressed {
                do { n = try compressRecord(context, item.record, count: item.count, into: &compressed) } catch let e { error = e }
            }
            pthread_mutex_lock(lock)
            // The frames before this one are written first (or the writing has stopped).
            while nextToWrite != item.order && !stopping && failure == nil { pthread_cond_wait(changed, lock) }
            if error == nil && !stopping && failure == nil {
                pthread_mutex_unlock(lock)
                do {
                    if item.compressed {
                        try item.record.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    } else {
                        try compressed.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    }
                } catch let e { error = e }
                pthread_mutex_lock(lock)
            }
            nextToWrite += 1
            busy -= 1
            if let error, failure == nil { failure = error; queue.removeAll(); queuedBytes = 0 }
            spares.append(item.record)
            pthread_cond_broadcast(changed)
        }
        pthread_mutex_unlock(lock)
    }
}
