import Foundation
import XCTest
import TestSupport
@testable import TensorStream

/// The same bad inputs for every program that reads a stream: each gives a one-line message
/// `program: ...` and a sysexits status; none crashes, traps or hangs, and none leaves a
/// complete stream or a file behind.
final class BadInputTests: XCTestCase {
    /// Programs and arguments that read a tensor stream on standard input. `{dir}` is replaced
    /// by a scratch directory holding valid side inputs (see `sideInputs`).
    static let invocations: [[String]] = [
        ["tensor", "info"],
        ["tensor", "cat"],
        ["tensor", "to", "npy"],
        ["tensor", "to", "csv"],
        ["tensor", "to", "tsv", "--lines", "{dir}/corpus.tsr"],
        ["tensor", "to", "npz"],
        ["tensor", "head", "-n", "3"],
        ["tensor", "slice", "--start", "1"],
        ["tensor", "select", "embedding"],
        ["tensor", "drop", "x"],
        ["tensor", "rename", "embedding=e"],
        ["tensor", "paste", "-"],
        ["tensor", "split", "--rows", "2", "--prefix", "{dir}/shard-"],
        ["tensor", "where", "split=0"],
        ["tensor", "take", "--indices", "{dir}/idx.tsr"],
        ["emb-laplace", "fit"],
        ["emb-laplace", "apply", "--posterior", "{dir}/post.tsr"],
        ["emb-fuse", "-", "{dir}/corpus.tsr"],
        ["emb-sim", "--corpus", "{dir}/corpus.tsr", "--top-k", "2"],
        ["emb-sim", "--paired", "{dir}/corpus.tsr"],
        ["emb-sim", "--matrix"],
        ["sve-decompose"],
        ["sve-train", "--basis", "{dir}/basis.tsr", "--stack", "linear:l", "--epochs", "1"],
        ["sve-predict", "--model", "{dir}/model.tsr"],
        ["calib-metrics"],
    ]

    /// Valid side inputs some invocations name.
    func sideInputs(_ dir: URL) throws { try makeSideInputs(dir) }

    func stream(_ tensors: [Tensor]) throws -> [UInt8] { try encodeStream(tensors) }

    func badInputs() throws -> [(String, [UInt8])] {
        let good = try stream([Tensor(name: "embedding", shape: [6, 4], floats: (0..<24).map { Float($0) / 8 })])
        var flipped = good
        flipped[good.count / 2] ^= 0xFF
        let npy = [0x93] + Array("NUMPY".utf8) + [1, 0, 70, 0] + Array("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }".utf8) + [10, 0, 0, 128, 63]
        // A header declaring 10^12 × 10^5 floats, then nothing.
        var h = ByteWriter()
        h.u32(0); h.u8(DType.f32.rawValue); h.u8(2); h.u8(1); h.u8(0)
        h.u64(1_000_000_000_000); h.u64(100_000)
        h.u16(9); h.raw("embedding"); h.u32(0)
        var e = ByteWriter()
        e.u32(1); e.u64(1_000_000_000_000)
        let forged = encodeRecord(tag: Format.tagStart, body: []) + encodeRecord(tag: Format.tagHead, body: h.bytes)
            + encodeRecord(tag: Format.tagEnd, body: e.bytes)
        return [
            ("empty", []),
            ("cut off", Array(good.prefix(good.count - 7))),
            ("cut in half", Array(good.prefix(good.count / 2))),
            ("flipped byte", flipped),
            ("npy instead of a stream", npy),
            ("text", Array("0.1,0.2\n0.3,0.4\n".utf8)),
            ("forged huge shape", forged),
            ("two streams, second cut off", good + Array(good.prefix(40))),
        ]
    }

    func testEveryProgramRefusesBadInputCleanly() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try sideInputs(dir)
        let inputs = try badInputs()
        for invocation in Self.invocations {
            let tool = invocation[0]
            let args = invocation.dropFirst().map { $0.replacingOccurrences(of: "{dir}", with: dir.path) }
            for (what, bytes) in inputs {
                let before = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
                let r = try runTool(tool, Array(args), stdin: Data(bytes))
                let label = "\(invocation.joined(separator: " ")) <\(what)>"
                XCTAssertFalse(r.terminatedBySignal, "\(label) crashed: \(r.stderr)")
                XCTAssertTrue([64, 65, 66, 74].contains(r.status), "\(label): status \(r.status): \(r.stderr)")
                XCTAssertTrue(r.stderr.hasPrefix("\(tool): "), "\(label): \(r.stderr)")
                XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "\(label): not one line: \(r.stderr)")
                // Whatever reached standard output must not read as a complete stream.
                if !r.stdout.isEmpty, let reader = try? TensorStreamReader(ArraySource(Array(r.stdout))) {
                    XCTAssertThrowsError(try reader.readAll(), "\(label) wrote a complete stream")
                }
                let after = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
                XCTAssertEqual(after, before, "\(label) left files behind: \(after.subtracting(before))")
            }
        }
    }

    func testUnknownOptionsAreUsageErrors() throws {
        for tool in Set(Self.invocations.map { $0[0] }) {
            let r = try runTool(tool, ["--no-such-option"])
            XCTAssertEqual(r.status, 64, "\(tool): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("\(tool): "), r.stderr)
        }
    }
}
