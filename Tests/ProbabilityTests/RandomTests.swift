import Foundation
import XCTest
import Probability

/// SeededGenerator against an independent implementation (scripts/fixtures/random.py →
/// Fixtures/random.json): a change of generator changes every trained model and bootstrap interval.
final class RandomTests: XCTestCase {
    func testSequencesArePinnedToTheReference() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/random.json")
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [[String: Any]]
        XCTAssertEqual(cases.count, 5)
        for c in cases {
            let seed = UInt64(c["seed"] as! String)!
            var g = SeededGenerator(seed: seed)
            XCTAssertEqual((0..<8).map { _ in g.next() }, (c["next"] as! [String]).map { UInt64($0)! }, "seed \(seed)")
            XCTAssertEqual((0..<4).map { _ in g.uniform() }, (c["uniform53"] as! [Int]).map { Double($0) * 0x1p-53 }, "seed \(seed)")
            XCTAssertEqual((0..<8).map { _ in g.below(7) }, c["below7"] as! [Int], "seed \(seed)")
            XCTAssertEqual((0..<4).map { _ in g.below(3 * (1 << 61) + 5) }, (c["below_large"] as! [String]).map { Int($0)! }, "seed \(seed)")
            let normals = (0..<5).map { _ in g.normal() }
            for (a, b) in zip(normals, c["normal"] as! [Double]) { XCTAssertEqual(a, b, accuracy: 1e-15 * max(1, abs(b)), "seed \(seed)") }
            XCTAssertEqual(g.permutation(10), c["permutation10"] as! [Int], "seed \(seed)")
        }
    }

    func testIsARandomNumberGeneratorForTheStandardLibrary() {
        var a = SeededGenerator(seed: 9), b = SeededGenerator(seed: 9)
        XCTAssertEqual((0..<20).map { _ in Int.random(in: 0..<1000, using: &a) },
                       (0..<20).map { _ in Int.random(in: 0..<1000, using: &b) })
        var c = SeededGenerator(seed: 9)
        XCTAssertEqual(Array(0..<10).shuffled(using: &a).sorted(), Array(0..<10))
        XCTAssertNotEqual((0..<20).map { _ in c.next() }, (0..<20).map { _ in c.next() })
    }
}
