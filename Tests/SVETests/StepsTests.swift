import Foundation
import TensorStream
import TestSupport
import XCTest
@testable import SVE

/// sve-train trains long enough: --steps, the default minimum of steps, --head-init-std.
extension CLITests {
    func testEpochsForAMinimumOfSteps() {
        XCTAssertEqual(stepsPerEpoch(rows: 30, batchSize: 16), 2)
        XCTAssertEqual(stepsPerEpoch(rows: 32, batchSize: 16), 2)
        XCTAssertEqual(stepsPerEpoch(rows: 5, batchSize: 16), 1)
        XCTAssertEqual(epochs(minimumSteps: 100, minimumEpochs: 10, rows: 30, batchSize: 16), 50)
        XCTAssertEqual(epochs(minimumSteps: 101, minimumEpochs: 10, rows: 30, batchSize: 16), 51)
        XCTAssertEqual(epochs(minimumSteps: 100, minimumEpochs: 10, rows: 2000, batchSize: 16), 10)
        XCTAssertEqual(epochs(minimumSteps: 0, minimumEpochs: 3, rows: 30, batchSize: 16), 3)
        XCTAssertEqual(epochs(minimumSteps: 1, minimumEpochs: 0, rows: 30, batchSize: 16), 1)
    }

    func trainedMeta(_ extra: [String], rows: Int = 30) throws -> (meta: [String: String], model: [String: Tensor], stderr: String) {
        let basis = try basisFile()
        let r = try runTool("sve-train", ["--basis", basis, "--stack", stack, "--members", "2", "--val-fraction", "0", "-v"] + extra,
                            stdin: try encode(dataset(n: rows)))
        XCTAssertEqual(r.status, 0, r.stderr)
        let model = try decode(r.stdout)
        return (model[ModelMeta.temperature]!.meta, model, r.stderr)
    }

    func testStepsDecideTheEpochs() throws {
        // 30 rows, batches of 16: 2 steps per epoch.
        let s = try trainedMeta(["--steps", "13"])
        XCTAssertEqual(s.meta["sve.epochs"], "7")
        XCTAssertEqual(s.meta["sve.steps"], "14")
        XCTAssertEqual(s.stderr.components(separatedBy: "\n").filter { $0.hasPrefix("epoch ") }.count, 7, s.stderr)
        // The default on small data: at least 100 steps (50 epochs here), not 10 epochs.
        XCTAssertEqual(try trainedMeta([]).meta["sve.epochs"], "50")
        // --epochs alone is obeyed; with --steps the longer wins.
        XCTAssertEqual(try trainedMeta(["--epochs", "3"]).meta["sve.epochs"], "3")
        XCTAssertEqual(try trainedMeta(["--epochs", "3", "--steps", "10"]).meta["sve.epochs"], "5")
        XCTAssertEqual(try trainedMeta(["--epochs", "8", "--steps", "10"]).meta["sve.epochs"], "8")
        // Many rows per epoch: the default stays at 10 epochs.
        XCTAssertEqual(try trainedMeta(["--batch-size", "1"], rows: 30).meta["sve.epochs"], "10")
    }

    func testHeadInitStd() throws {
        // A learning rate too small to move anything: the heads are as initialised.
        func headStd(_ extra: [String]) throws -> Double {
            let h = try trainedMeta(["--epochs", "1", "--lr", "1e-30"] + extra).model["head.weight"]!.doubles()
            return (h.reduce(0) { $0 + $1 * $1 } / Double(h.count)).squareRoot()
        }
        let def = try headStd([]), wide = try headStd(["--head-init-std", "0.5"])
        XCTAssertEqual(def, 0.01, accuracy: 0.004)
        XCTAssertEqual(wide, 0.5, accuracy: 0.2)
        XCTAssertEqual(try trainedMeta(["--epochs", "1", "--head-init-std", "0.5"]).meta["sve.head_init_std"], "0.5")
        let bad = try runTool("sve-train", ["--basis", "b.tsr", "--stack", stack, "--head-init-std", "-1"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderr.contains("--head-init-std"), bad.stderr)
    }
}
