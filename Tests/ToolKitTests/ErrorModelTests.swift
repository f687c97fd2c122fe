import XCTest
import Calibration
import Failure
import LinearAlgebra
import SVE
import TensorStream
import ToolKit
import UECStreams

/// One error model: libraries say what kind of failure an error is, ToolKit alone turns the kind
/// into a sysexits status.
final class ErrorModelTests: XCTestCase {
    func testEveryKindHasItsStatus() {
        let expected: [(FailureKind, Int32)] = [(.usage, 64), (.badData, 65), (.missingInput, 66), (.internalError, 70),
                                                (.resources, 71), (.cannotCreate, 73), (.io, 74)]
        for (kind, status) in expected {
            XCTAssertEqual(ExitStatus(kind).rawValue, status, "\(kind)")
            XCTAssertEqual(ToolError(kind, "x").status.rawValue, status)
        }
    }

    func testLibraryErrorsSayTheirKind() {
        let cases: [(Error, FailureKind, Int32)] = [
            (SVEError.spec("s"), .badData, 65),
            (SVEError.numeric("n"), .badData, 65),
            (MetricsError.data("m"), .badData, 65),
            (LinearAlgebraError(kind: .badData, description: "the SVD did not converge"), .badData, 65),
            (UECInputError("u"), .badData, 65),
            (ResourceError("r"), .resources, 71),
            (StreamError.broken(.cutOff, "t"), .badData, 65),
            (StreamError.cannotOpen("cannot open x: No such file or directory"), .missingInput, 66),
            (StreamError.io("cannot write x: No space left on device"), .io, 74),
        ]
        for (error, kind, status) in cases {
            let t = ToolError.from(error)
            XCTAssertEqual(t.kind, kind, "\(error)")
            XCTAssertEqual(t.status.rawValue, status, "\(error)")
        }
        struct Unknown: Error {}
        XCTAssertEqual(ToolError.from(Unknown()).status.rawValue, 70)
    }

    func testContextKeepsTheKind() {
        XCTAssertThrowsError(try inContext("layer.0") { () -> Int in throw LinearAlgebraError(kind: .badData, description: "the SVD did not converge") }) { e in
            let t = e as! ToolError
            XCTAssertEqual(t.status.rawValue, 65)
            XCTAssertEqual(t.message, "layer.0: the SVD did not converge")
        }
    }

    func testCheckedSizes() throws {
        XCTAssertEqual(try checkedProduct(3, 4, 5, what: "x"), 60)
        XCTAssertThrowsError(try checkedProduct(1 << 40, 1 << 30, what: "the heap")) { e in
            XCTAssertEqual((e as? KindedError)?.kind, .resources)
            XCTAssertTrue((e as! KindedError).message.hasPrefix("the heap would need more than"), "\(e)")
        }
        XCTAssertThrowsError(try checkedArray(repeating: 0.0, count: Int.max / 4, what: "scores")) { e in
            XCTAssertEqual((e as? KindedError)?.kind, .resources)
        }
        XCTAssertEqual(try checkedArray(repeating: 1, count: 3, what: "x"), [1, 1, 1])
        XCTAssertEqual(describeBytes(1_500_000_000), "1.5 GB")
        XCTAssertEqual(describeBytes(300_000_000), "300 MB")
    }
}
