import Foundation
import XCTest
import TestSupport
import TensorStream

/// Faults in pipelines: a producer killed half-way leaves its consumer with an error, never a
/// silently shorter result.
final class FaultTests: XCTestCase {
    func testKilledProducerLeavesConsumerWithAnError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 2.4 M floats at zstd level 19: the producer is still writing when it is killed.
        let values = (0..<2_400_000).map { Float(sin(Double($0) * 0.37)) }
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink, options: WriterOptions(level: 1, chunkBytes: 1 << 16))
        try w.write(Tensor(name: "embedding", shape: [6000, 400], floats: values))
        try w.finish()
        let input = dir.appendingPathComponent("in.tsr")
        try Data(sink.bytes).write(to: input)

        let tensor = productsDirectory().appendingPathComponent("tensor").path
        let producer = Process(), consumer = Process()
        producer.executableURL = URL(fileURLWithPath: tensor)
        producer.arguments = ["cat", "--level", "19", input.path]
        consumer.executableURL = URL(fileURLWithPath: tensor)
        consumer.arguments = ["info"]
        let pipe = Pipe(), err = Pipe(), out = Pipe()
        producer.standardOutput = pipe
        consumer.standardInput = pipe
        consumer.standardError = err
        consumer.standardOutput = out
        try consumer.run()
        try producer.run()
        // Let it write some records, then kill it as a crash would.
        usleep(400_000)
        XCTAssertTrue(producer.isRunning, "the producer finished before it could be killed: make the input larger")
        kill(producer.processIdentifier, SIGKILL)
        producer.waitUntilExit()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let printed = out.fileHandleForReading.readDataToEndOfFile()
        consumer.waitUntilExit()
        XCTAssertEqual(producer.terminationReason, .uncaughtSignal)
        XCTAssertEqual(consumer.terminationStatus, 65, message)
        XCTAssertTrue(message.contains("cut off"), message)
        XCTAssertTrue(printed.isEmpty, "the consumer reported a result from a partial stream")
    }
}
