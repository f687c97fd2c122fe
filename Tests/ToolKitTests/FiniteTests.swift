import XCTest
import ToolKit

/// The vectorised checks against a plain search, at every position of arrays of every length
/// around the 16-value groups.
final class FiniteTests: XCTestCase {
    func testFirstNonFiniteAndFirstNegativeAgreeWithAPlainSearch() {
        for n in 0...50 {
            let clean = (0..<n).map { Float($0) * 0.25 - 0.0 }
            XCTAssertNil(firstNonFinite(clean), "n \(n)")
            XCTAssertNil(firstNonFinite(clean.map { Double($0) }), "n \(n)")
            XCTAssertNil(firstNegative(clean + [-0.0]), "n \(n): −0 is not negative")
            XCTAssertNil(firstNonFinite([Float.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude] + clean))
            for at in 0..<n {
                for bad: Float in [.nan, .infinity, -.infinity, .signalingNaN] {
                    var f = clean
                    f[at] = bad
                    if at + 3 < n { f[at + 3] = .nan }     // a later one is not the first
                    XCTAssertEqual(firstNonFinite(f), at, "n \(n) at \(at) \(bad)")
                    XCTAssertEqual(firstNonFinite(f.map { Double($0) }), at, "n \(n) at \(at) \(bad) (double)")
                }
                var g = clean
                g[at] = -1e-30
                XCTAssertEqual(firstNegative(g), at, "n \(n) at \(at)")
            }
        }
    }
}
