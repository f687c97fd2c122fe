// The Calibration library against golden values computed by scikit-learn, netcal, torchmetrics
// and scipy themselves (scripts/fixtures/calibration.py → Fixtures/calibration.json).
import Foundation
import XCTest
@testable import Calibration

typealias J = [String: JSONValue]

/// A JSON value decoded with JSONDecoder (its number parsing is correctly rounded;
/// corelibs' JSONSerialization is not, which matters for values exactly on bin edges).
enum JSONValue: Decodable, Sendable {
    case number(Double), string(String), array([JSONValue]), object([String: JSONValue]), bool(Bool), null

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}

let fixture: J = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/calibration.json")
    let data = try! Data(contentsOf: url)
    return try! JSONDecoder().decode(J.self, from: data)
}()

func doubles(_ a: Any?) -> [Double] {
    guard case .array(let v)? = a as? JSONValue else { fatalError("not an array") }
    return v.map { if case .number(let d) = $0 { return d }; fatalError("not a number") }
}
func ints(_ a: Any?) -> [Int64] { doubles(a).map { Int64($0) } }
func num(_ a: Any?) -> Double { if case .number(let d)? = a as? JSONValue { return d }; fatalError("not a number") }
func int(_ a: Any?) -> Int { Int(num(a)) }
func str(_ a: Any?) -> String { if case .string(let s)? = a as? JSONValue { return s }; fatalError("not a string") }
func obj(_ a: Any?) -> J? { if case .object(let o)? = a as? JSONValue { return o }; return nil }
func arr(_ a: Any?) -> [JSONValue] { if case .array(let v)? = a as? JSONValue { return v }; fatalError("not an array") }

/// Runs a fixture case through the accumulator in the given convention.
func score(_ c: J, convention: BinningConvention, bootstrap: Int = 0) throws -> ClassificationReport {
    let k = int(c["classes"])
    var o = ClassificationOptions()
    o.bins = int(c["bins"])
    o.convention = convention
    o.precision = str(c["dtype"]) == "float32" ? .float32 : .float64
    o.keepLosses = bootstrap > 0
    let acc = ClassificationAccumulator(classes: k, options: o)
    let p = doubles(c["probs"])
    let labels = ints(c["labels"])
    if o.precision == .float32 {
        try p.map { Float($0) }.withUnsafeBufferPointer { try acc.add(block: $0, labels: labels, firstRow: 0) }
    } else {
        try p.withUnsafeBufferPointer { try acc.add(block: $0, labels: labels, firstRow: 0) }
    }
    return try acc.report(bootstrap: bootstrap, seed: 7)
}

final class GoldenTests: XCTestCase {
    var cases: [J] { arr(fixture["classification"]).map { obj($0)! } }

    func testDefaultModeMatchesSklearnCalibrationCurve() throws {
        for c in cases {
            let name = str(c["name"]), tol = num(c["tolerance"])
            let r = try score(c, convention: .standard)
            let g = obj(c["default"])!
            XCTAssertEqual(r.calibration.ece, num(g["ece"]), accuracy: 1e-12, name)
            XCTAssertEqual(r.calibration.mce, num(g["mce"]), accuracy: 1e-12, name)
            XCTAssertEqual(r.calibration.rmsce, num(g["rmsce"]), accuracy: 1e-12, name)
            let nonEmpty = r.calibration.bins.filter { $0.count > 0 }
            XCTAssertEqual(nonEmpty.map(\.count), ints(g["bin_count"]).map(Int.init), name)
            for (b, (a, cf)) in zip(nonEmpty, zip(doubles(g["bin_accuracy"]), doubles(g["bin_confidence"]))) {
                XCTAssertEqual(b.accuracy!, a, accuracy: 1e-12, name)
                XCTAssertEqual(b.confidence!, cf, accuracy: 1e-12, name)
            }
            XCTAssertEqual(r.accuracy, num(c["accuracy"]), accuracy: 1e-15, name)
            XCTAssertEqual(r.nll, num(c["nll"]), accuracy: tol, name)
            XCTAssertEqual(r.nllClippedRows, int(c["nll_clipped_rows"]), name)
            XCTAssertEqual(r.brier, num(c["brier"]), accuracy: tol, name)
            XCTAssertEqual(r.equalMassECE!, num(c["equal_mass_ece"]), accuracy: 1e-12, name)
            XCTAssertEqual(r.classwiseECE!, num(c["classwise_ece"]), accuracy: 1e-12, name)
            XCTAssertEqual(r.aurc!, num(c["aurc"]), accuracy: 1e-12, name)
            XCTAssertEqual(r.eaurc!, num(c["eaurc"]), accuracy: 1e-12, name)
            if let b = c["brier_sklearn_binary"] { XCTAssertEqual(r.brierSklearnBinary!, num(b), accuracy: tol, name) }
            if let g = obj(c["default_positive"]) { XCTAssertEqual(r.positiveClass!.ece, num(g["ece"]), accuracy: 1e-12, name) }
        }
    }

    func testTorchmetricsModeMatchesTorchmetrics() throws {
        for c in cases {
            let name = str(c["name"])
            let r = try score(c, convention: .torchmetrics)
            if let g = obj(c["torchmetrics"]) {
                // torchmetrics' own binning, accumulated in float64: 1e-9.
                XCTAssertEqual(r.calibration.ece, num(g["ece"]), accuracy: 1e-9, name)
                XCTAssertEqual(r.calibration.mce, num(g["mce"]), accuracy: 1e-9, name)
                XCTAssertEqual(r.calibration.rmsce, num(g["rmsce"]), accuracy: 1e-9, name)
                // Its public API accumulates in float32.
                XCTAssertEqual(r.calibration.ece, num(g["ece_public"]), accuracy: 2e-6, name)
                XCTAssertEqual(r.calibration.mce, num(g["mce_public"]), accuracy: 2e-6, name)
            }
            if let g = obj(c["torchmetrics_binary"]) {
                XCTAssertEqual(r.positiveClass!.ece, num(g["ece"]), accuracy: 1e-9, name)
                XCTAssertEqual(r.positiveClass!.mce, num(g["mce"]), accuracy: 1e-9, name)
                XCTAssertEqual(r.positiveClass!.rmsce, num(g["rmsce"]), accuracy: 1e-9, name)
            }
        }
    }

    func testNetcalModeMatchesNetcal() throws {
        var checked = 0
        for c in cases {
            let name = str(c["name"])
            guard let g = obj(c["netcal"]) else { continue }
            let r = try score(c, convention: .netcal)
            let k = int(c["classes"])
            // netcal scores the positive class for two classes, the top label otherwise.
            let e = k == 2 ? r.positiveClass! : r.calibration
            XCTAssertEqual(e.ece, num(g["ece"]), accuracy: 1e-9, name)
            XCTAssertEqual(e.mce, num(g["mce"]), accuracy: 1e-9, name)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 7)
    }

    func testConventionsDisagreeAtEdgesAsDocumented() throws {
        let c = cases.first { str($0["name"]) == "binary_edges" }!
        let d = try score(c, convention: .standard), t = try score(c, convention: .torchmetrics)
        XCTAssertNotEqual(d.positiveClass!.ece, t.positiveClass!.ece)
        // torchmetrics puts 1.0 into an extra bin [1, 1].
        XCTAssertEqual(t.positiveClass!.bins.count, 16)
        XCTAssertEqual(t.positiveClass!.bins.last!.count, 1)
        XCTAssertEqual(d.positiveClass!.bins.count, 15)
    }

    func testTorchLinspaceBitForBit() {
        let lin = obj(fixture["torch_linspace"])!
        for (b, v) in lin {
            let n = Int(b)!, g = obj(v)!
            XCTAssertEqual(torchLinspaceEdgesFloat32(n), doubles(g["f32"]), "f32 \(n)")
            XCTAssertEqual(torchLinspaceEdgesFloat64(n), doubles(g["f64"]), "f64 \(n)")
        }
    }

    func testNumpyPercentile() {
        let p = obj(fixture["percentile"])!
        let sample = doubles(p["sample"])
        for (b, e) in obj(p["edges"])! {
            let got = percentileLevels(Int(b)!).map { numpyQuantile(sorted: sample, $0) }
            XCTAssertEqual(got, doubles(e), b)
        }
    }

    func testEnsembleMatchesScipyAndSklearn() throws {
        let e = obj(fixture["ensemble"])!
        let m = int(e["members"]), k = int(e["classes"])
        var o = ClassificationOptions(); o.precision = .float64
        let acc = EnsembleAccumulator(members: m, classes: k, options: o)
        try doubles(e["member_probs"]).withUnsafeBufferPointer {
            try acc.add(block: $0, labels: ints(e["labels"]), firstRow: 0)
        }
        let r = try acc.report()
        XCTAssertEqual(r.meanEntropy!, num(e["mean_entropy"]), accuracy: 1e-12)
        XCTAssertEqual(r.meanExpectedEntropy!, num(e["mean_expected_entropy"]), accuracy: 1e-12)
        XCTAssertEqual(r.meanMutualInfo!, num(e["mean_mutual_info"]), accuracy: 1e-12)
        XCTAssertEqual(r.nll, num(e["nll"]), accuracy: 1e-12)
        XCTAssertEqual(r.members!.map(\.nll), doubles(e["member_nll"]), accuracy: 1e-12)
        XCTAssertEqual(r.members!.map(\.accuracy), doubles(e["member_accuracy"]), accuracy: 1e-15)
    }

    func testOODMatchesSklearn() {
        for c in arr(fixture["ood"]).map({ obj($0)! }) {
            let name = str(c["name"])
            let s = OODScores(uncertainty: doubles(c["uncertainty"]), ood: ints(c["ood"]).map { $0 == 1 })
            XCTAssertEqual(s.auroc!, num(c["auroc"]), accuracy: 1e-12, name)
            XCTAssertEqual(s.auprIn!, num(c["aupr_in"]), accuracy: 1e-12, name)
            XCTAssertEqual(s.auprOut!, num(c["aupr_out"]), accuracy: 1e-12, name)
            XCTAssertEqual(s.fpr95!, num(c["fpr_at_95_tpr"]), accuracy: 1e-12, name)
        }
    }

    func testCorrelationsMatchScipy() {
        for c in arr(fixture["correlation"]).map({ obj($0)! }) {
            let x = doubles(c["x"]), y = doubles(c["y"])
            XCTAssertEqual(spearman(x, y)!, num(c["spearman"]), accuracy: 1e-12)
            XCTAssertEqual(pearson(x, y)!, num(c["pearson"]), accuracy: 1e-12)
        }
        XCTAssertNil(pearson([1, 1, 1], [1, 2, 3]))
    }

    func testRetrievalMatchesTorchmetricsAndSklearn() {
        let r = obj(fixture["retrieval"])!
        let retrieved = arr(r["retrieved"]).map { ints($0) }
        let relevant = arr(r["relevant"]).map { ints($0) }
        let ks = ints(r["ks"]).map(Int.init)
        let m = RetrievalMetrics(retrieved: retrieved, relevant: relevant, ks: ks)
        XCTAssertEqual(m.queriesWithoutRelevant, int(r["queries_without_relevant"]))
        XCTAssertEqual(m.mrr, num(r["mrr"]), accuracy: 1e-6)   // torchmetrics works in float32
        let byK = obj(r["by_k"])!
        for a in m.atK {
            let g = obj(byK[String(a.k)])!
            XCTAssertEqual(a.ndcg, num(g["ndcg_sklearn"]), accuracy: 1e-12, "k=\(a.k)")
            XCTAssertEqual(a.ndcg, num(g["ndcg"]), accuracy: 1e-6, "k=\(a.k)")
            XCTAssertEqual(a.recall, num(g["recall"]), accuracy: 1e-6, "k=\(a.k)")
        }
    }
}

func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
