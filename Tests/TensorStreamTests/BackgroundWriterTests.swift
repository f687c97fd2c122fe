import Foundation
import XCTest
@testable import TensorStream
import CZstd
import Failure

/// A sink that takes `limit` bytes, then fails as a full disk would; it counts the writes tried.
private final class FullSink: ByteSink, @unchecked Sendable {
    let limit: Int
    private(set) var bytes: [UInt8] = []
    private(set) var tries = 0
    init(limit: Int) { self.limit = limit }
    func write(_ b: UnsafeRawBufferPointer) throws {
        tries += 1
        guard bytes.count + b.count <= limit else { throw StreamError.io("no space left on the test's device") }
        bytes.append(contentsOf: b)
    }
}

/// A sink that takes 20 ms per write.
private final class SlowSink: ByteSink, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var writes: Int { lock.withLock { count } }
    func write(_ b: UnsafeRawBufferPointer) throws {
        usleep(20_000)
        lock.withLock { count += 1 }
    }
}

/// What a submitting thread has done, read by the test's thread.
private final class SubmitState: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0, error: Error? = nil
    var submitted: Int { lock.withLock { count } }
    var failed: Error? { lock.withLock { error } }
    func add() { lock.withLock { count += 1 } }
    func fail(_ e: Error) { lock.withLock { error = e } }
}

/// A sink whose writes wait until `open` is called.
private final class GateSink: ByteSink, @unchecked Sendable {
    private let gate = DispatchSemaphore(value: 0)
    func write(_ b: UnsafeRawBufferPointer) throws { gate.wait(); gate.signal() }
    func open() { gate.signal() }
}

/// `WriterOptions.background`: records compressed and written on the writer's own thread.
final class BackgroundWriterTests: XCTestCase {
    /// Tensors of several records each, interleaved, and tiny ones between them.
    private func sample() -> [Tensor] {
        [Tensor(name: "mean", shape: [3000, 97], floats: (0..<291_000).map { Float(sin(Double($0) * 0.01)) }),
         Tensor(name: "label", dtype: .i64, shape: [3000], data: sampleBytes(24_000, seed: 3)),
         Tensor(name: "var", shape: [3000, 97], floats: (0..<291_000).map { Float($0 % 977) / 977 }),
         Tensor(name: "tiny", dtype: .u8, shape: [], data: [7])]
    }

    private func written(_ background: Bool, chunk: Int, interleave: Bool, compressors: Int = 1) throws -> [UInt8] {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: WriterOptions(chunkBytes: chunk, background: background, compressors: compressors))
        if interleave { try w.write(interleaving: sample()) } else { for t in sample() { try w.write(t) } }
        try w.finish()
        return sink.bytes
    }

    /// One compressing thread or several (each record compressed by whichever is free, the
    /// frames written in order): the same bytes as on the caller's thread.
    func testTheSameBytesAsOnTheCallersThread() throws {
        for chunk in [Format.defaultChunkBytes, 1 << 12, 100] {
            for interleave in [true, false] {
                let plain = try written(false, chunk: chunk, interleave: interleave)
                for compressors in [1, 3] {
                    let bytes = try written(true, chunk: chunk, interleave: interleave, compressors: compressors)
                    XCTAssertEqual(bytes, plain, "chunk \(chunk) interleave \(interleave) compressors \(compressors)")
                    XCTAssertEqual(try decode(bytes).map(\.data), sample().map(\.data))
                }
            }
        }
    }

    /// The sink fails part-way: a later write or finish throws its error, nothing is written
    /// after it, and the writer neither hangs nor ends the stream.
    func testASinkErrorIsThrownByALaterCallAndStopsTheWriting() throws {
        for limit in [0, 10, 5_000, 200_000] { for compressors in [1, 3] {
            let sink = FullSink(limit: limit)
            let w = try TensorStreamWriter(sink: sink, options: WriterOptions(chunkBytes: 1 << 12, background: true, compressors: compressors))
            var thrown: Error?
            do {
                try w.write(interleaving: sample())
                try w.finish()
            } catch { thrown = error }
            guard case StreamError.io(let m)? = thrown else { return XCTFail("limit \(limit): \(String(describing: thrown))") }
            XCTAssertTrue(m.contains("no space left"), m)
            XCTAssertLessThanOrEqual(sink.bytes.count, limit)
            let tries = sink.tries
            XCTAssertThrowsError(try w.finish(), "limit \(limit): finish after the failure")
            XCTAssertEqual(sink.tries, tries, "limit \(limit): written to after the failure")
            XCTAssertThrowsError(try decode(sink.bytes), "limit \(limit): a stream without its end")
        } }
    }

    /// A writer given up half-way (the program failed) goes away without waiting for its
    /// records: the one being written is finished, those waiting are dropped.
    func testAWriterDroppedUnfinishedStopsItsThread() throws {
        let sink = SlowSink()
        do {
            let w = try TensorStreamWriter(sink: sink, options: WriterOptions(chunkBytes: 1 << 16, background: true))
            try w.write(sample()[0])            // 18 records
        }
        let after = sink.writes
        usleep(200_000)
        XCTAssertLessThanOrEqual(sink.writes, after + 1, "records written after the writer was dropped")
    }
}

/// Frees of the compression contexts made by `countedContext()`.
nonisolated(unsafe) private var contextFrees = 0

/// A compression context whose allocations go through malloc and whose frees are counted.
private func countedContext() -> OpaquePointer {
    let memory = ZSTD_customMem(customAlloc: { _, size in malloc(size) },
                                customFree: { _, p in if p != nil { contextFrees += 1 }; free(p) },
                                opaque: nil)
    return ZSTD_createCCtx_advanced(memory)!
}

final class BackgroundEncoderQueueTests: XCTestCase {
    /// Records wait up to 8 MiB of them, or two when they are larger: eight records of 1 MiB (a
    /// block of rows written in records of 1 MiB waits whole, and its writer goes on computing),
    /// two of 4 MiB, two of 12 MiB; the next `submit` waits for the sink.
    func testRecordsWaitUpToEightMiBOrTwoRecords() throws {
        for (size, queued) in [(1 << 20, 8), (4 << 20, 2), (12 << 20, 2)] {
            let sink = GateSink()
            let encoder = try XCTUnwrap(BackgroundEncoder(cctx: ZSTD_createCCtx()!, sink: sink))
            let state = SubmitState()
            let done = DispatchSemaphore(value: 0)
            let total = queued + 4
            Thread.detachNewThread {
                for _ in 0..<total {
                    var record = [UInt8](repeating: 1, count: size)
                    do { try encoder.submit(&record, count: size) } catch { state.fail(error); break }
                    state.add()
                }
                done.signal()
            }
            // One record is at work (its write waits at the gate), `queued` wait, and the next submit waits.
            var polls = 0
            while (encoder.waiting.records < queued || state.submitted < queued + 1) && polls < 1000 { usleep(10_000); polls += 1 }
            usleep(100_000)
            XCTAssertEqual(encoder.waiting.records, queued, "records of \(size) bytes")
            XCTAssertEqual(encoder.waiting.bytes, queued * size)
            XCTAssertEqual(state.submitted, queued + 1, "records of \(size) bytes: submit did not wait")
            sink.open()
            XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
            try encoder.drain()
            XCTAssertNil(state.failed)
            XCTAssertEqual(state.submitted, total)
            XCTAssertEqual(encoder.waiting.records, 0)
            encoder.stop()
        }
    }
}

final class BackgroundEncoderOwnershipTests: XCTestCase {
    /// When its thread cannot start, an encoder leaves the writer's context alone: its deinit
    /// runs all the same, and freed the context, which the writer then went on compressing with
    /// (a crash in zstd under `ulimit -v`, where the thread's stack did not fit).
    func testAnEncoderWhoseThreadDoesNotStartFreesNothing() throws {
        let cctx = countedContext()
        let before = contextFrees
        XCTAssertNil(BackgroundEncoder(cctx: cctx, sink: ArraySink(), startThread: { _ in false }))
        XCTAssertEqual(contextFrees, before, "the failed encoder freed the writer's context")
        // The context still compresses, and what it makes decompresses to the input.
        let input = [UInt8]((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) })
        var frame: [UInt8] = []
        let n = try compressRecord(cctx, input, count: input.count, into: &frame)
        var output = [UInt8](repeating: 0, count: input.count)
        let m = frame.withUnsafeBytes { f in output.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, $0.count, f.baseAddress, n) } }
        XCTAssertEqual(m, input.count)
        XCTAssertEqual(output, input)
        ZSTD_freeCCtx(cctx)
        XCTAssertGreaterThan(contextFrees, before)
    }

    /// Workers after the first whose threads do not start: their contexts are freed at once and
    /// the encoder goes on with those that run.
    func testWorkersThatDoNotStartLeaveTheirContextsFreed() throws {
        let before = contextFrees
        var started = 0
        var encoder = BackgroundEncoder(cctx: countedContext(), sink: ArraySink(), workers: 3, makeContext: { countedContext() },
                                        startThread: { body in
                                            started += 1
                                            return started <= 2 && startDetachedThread(body)
                                        })
        XCTAssertEqual(encoder?.workers, 2)
        XCTAssertEqual(contextFrees, before + 1, "the context of the worker that did not start")
        var record = [UInt8](repeating: 3, count: 100_000)
        try encoder?.submit(&record, count: 100_000)
        try encoder?.drain()
        encoder?.stop()
        encoder = nil
        var waited = 0
        while contextFrees < before + 3 && waited < 500 { usleep(2_000); waited += 1 }
        // A context frees its workspace too (once it has compressed): at least one free each.
        XCTAssertGreaterThanOrEqual(contextFrees, before + 3, "the two running workers' contexts")
    }

    /// Once its thread runs, the encoder owns the context and frees it when it is done.
    func testAStartedEncoderFreesTheContextWhenDone() throws {
        let cctx = countedContext()
        let before = contextFrees
        var encoder = BackgroundEncoder(cctx: cctx, sink: ArraySink())
        XCTAssertNotNil(encoder)
        encoder?.stop()
        encoder = nil
        var waited = 0
        while contextFrees == before && waited < 500 { usleep(2_000); waited += 1 }
        XCTAssertGreaterThan(contextFrees, before, "the context of a stopped encoder was never freed")
    }
}
