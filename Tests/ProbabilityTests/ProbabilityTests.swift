import Foundation
import XCTest
import Probability

/// The probability module against numpy (scripts/fixtures/probability.py → Fixtures/probability.json)
/// and closed forms.
final class ProbabilityTests: XCTestCase {
    func golden() throws -> [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/probability.json")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    func testSoftmaxLogSumExpAndEntropyMatchNumpy() throws {
        for row in try golden()["rows"] as! [[String: Any]] {
            let x = row["x"] as! [Double], want = row["softmax"] as! [Double]
            let p = softmax(x)
            for (a, b) in zip(p, want) { XCTAssertEqual(a, b, accuracy: 1e-15 * max(1, abs(b)), "\(x)") }
            XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-15)
            XCTAssertEqual(x.withUnsafeBufferPointer { logSumExp($0) }, row["logsumexp"] as! Double, accuracy: 1e-12, "\(x)")
            XCTAssertEqual(entropy(p), row["entropy"] as! Double, accuracy: 1e-14, "\(x)")
            // Rows: softmaxRows does each row alone.
            var two = x + x
            softmaxRows(&two, width: x.count)
            XCTAssertEqual(Array(two[x.count...]), p)
            // The Float version agrees to float precision.
            var f = x.map(Float.init)
            f.withUnsafeMutableBufferPointer { softmaxInPlace($0) }
            for (a, b) in zip(f, want) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
        }
    }

    func testClosedForms() {
        // Uniform over K: entropy ln K; log-sum-exp of K zeros ln K.
        XCTAssertEqual(entropy([Double](repeating: 0.25, count: 4)), log(4), accuracy: 1e-15)
        XCTAssertEqual([0.0, 0, 0].withUnsafeBufferPointer { logSumExp($0) }, log(3), accuracy: 1e-15)
        XCTAssertEqual(entropy([1.0, 0, 0]), 0)                       // 0 · ln 0 = 0
        XCTAssertEqual(entropy([Float(0.5), 0.5]), log(2), accuracy: 1e-7)
        XCTAssertEqual(([] as [Double]).withUnsafeBufferPointer { logSumExp($0) }, -.infinity)
        // Infinite scores share the probability; no NaN.
        XCTAssertEqual(softmax([.infinity, 1, .infinity]), [0.5, 0, 0.5])
        XCTAssertEqual(softmax([-1e308, 1e308]), [0, 1])
        XCTAssertEqual(mutualInformation(entropyOfMean: 0.5, expectedEntropy: 0.5 + 1e-17), 0)
        XCTAssertEqual(machineEpsilon(Float.self), 0x1p-23)
        XCTAssertEqual(machineEpsilon(Double.self), 0x1p-52)
    }

    func testMutualInformationOfAnEnsembleMatchesNumpy() throws {
        let e = try golden()["ensemble"] as! [String: Any]
        let members = e["members"] as! [[Double]]
        let mean = (0..<members[0].count).map { k in members.map { $0[k] }.reduce(0, +) / Double(members.count) }
        let h = entropy(mean), eh = members.map { entropy($0) }.reduce(0, +) / Double(members.count)
        XCTAssertEqual(h, e["entropy_of_mean"] as! Double, accuracy: 1e-14)
        XCTAssertEqual(eh, e["expected_entropy"] as! Double, accuracy: 1e-14)
        XCTAssertEqual(mutualInformation(entropyOfMean: h, expectedEntropy: eh), e["mutual_information"] as! Double, accuracy: 1e-14)
        XCTAssertGreaterThan(mutualInformation(entropyOfMean: h, expectedEntropy: eh), 0)
    }

    func testNLLClipsAtTheDtypeEpsLikeScikitLearn() throws {
        for c in try golden()["nll"] as! [[String: Any]] {
            let eps = c["dtype"] as! String == "float32" ? machineEpsilon(Float.self) : machineEpsilon(Double.self)
            XCTAssertEqual(eps, c["eps"] as! Double)
            XCTAssertEqual(negativeLogLikelihood(c["p"] as! Double, eps: eps), c["nll"] as! Double,
                           accuracy: 1e-15 * max(1, c["nll"] as! Double), "\(c)")
        }
        // p = 0 is finite: −ln eps.
        XCTAssertEqual(negativeLogLikelihood(0, eps: 0x1p-23), 23 * log(2), accuracy: 1e-12)
    }
}
