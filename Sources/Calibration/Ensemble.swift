// Ensembles (N×M×K member probabilities; methods.md sections 2.3 and 3): the prediction is the
// mean of the members' probabilities; uncertainty decomposes into predictive entropy H[p̄],
// expected entropy (1/M) Σ_m H[p_m] (aleatoric) and mutual information H[p̄] − expected
// entropy (epistemic, clamped at 0). Natural log, 0 · ln 0 = 0.

import Probability

public final class EnsembleAccumulator {
    public let members: Int
    public let classes: Int
    /// Metrics of the mean prediction.
    public let mean: ClassificationAccumulator
    let perMember: [ClassificationAccumulator]
    private var buffer: [Double]

    public init(members: Int, classes: Int, options: ClassificationOptions) {
        precondition(members >= 1 && classes >= 1)
        self.members = members
        self.classes = classes
        var o = options
        o.entropy = true
        mean = ClassificationAccumulator(classes: classes, options: o)
        var m = options
        m.classwise = false; m.keepRows = false; m.keepLosses = false; m.entropy = false; m.ood = false
        perMember = (0..<members).map { _ in ClassificationAccumulator(classes: classes, options: m) }
        buffer = Array(repeating: 0, count: classes)
    }

    /// Adds one row: M·K values, member-major.
    public func add<T: BinaryFloatingPoint>(_ p: UnsafeBufferPointer<T>, label: Int64, row: Int, isOOD: Bool = false) throws {
        precondition(p.count == members * classes)
        for k in 0..<classes { buffer[k] = 0 }
        var expected = 0.0
        for m in 0..<members {
            let r = UnsafeBufferPointer(rebasing: p[(m * classes)..<((m + 1) * classes)])
            if isOOD {
                _ = try perMember[m].check(r, row: row, tensor: "member_probs")
            } else {
                try perMember[m].add(r, label: label, row: row, tensor: "member_probs")
            }
            for k in 0..<classes { buffer[k] += Double(r[k]) }
            expected += entropy(r)
        }
        let inv = 1 / Double(members)
        for k in 0..<classes { buffer[k] *= inv }
        expected *= inv
        try buffer.withUnsafeBufferPointer { b in
            let h = entropy(b)
            try mean.add(b, label: label, row: row, isOOD: isOOD, tensor: "member_probs (mean)",
                         ensemble: (expected, mutualInformation(entropyOfMean: h, expectedEntropy: expected)))
        }
    }

    public func add(block p: UnsafeBufferPointer<Float>, labels: [Int64], firstRow: Int, ood: [Bool]? = nil) throws {
        try addBlock(p, labels: labels, firstRow: firstRow, ood: ood)
    }

    public func add(block p: UnsafeBufferPointer<Double>, labels: [Int64], firstRow: Int, ood: [Bool]? = nil) throws {
        try addBlock(p, labels: labels, firstRow: firstRow, ood: ood)
    }

    func addBlock<T: BinaryFloatingPoint>(_ p: UnsafeBufferPointer<T>, labels: [Int64], firstRow: Int, ood: [Bool]?) throws {
        let w = members * classes
        for i in labels.indices {
            try add(UnsafeBufferPointer(rebasing: p[(i * w)..<((i + 1) * w)]), label: labels[i],
                    row: firstRow + i, isOOD: ood?[i] ?? false)
        }
    }

    /// The mean prediction's report with per-member accuracy, ECE, NLL and Brier.
    public func report(bootstrap: Int = 0, seed: UInt64 = 0) throws -> ClassificationReport {
        var r = try mean.report(bootstrap: bootstrap, seed: seed)
        r.members = try perMember.enumerated().map { (m, acc) in
            let s = try acc.report()
            return MemberReport(member: m, accuracy: s.accuracy, ece: s.calibration.ece, nll: s.nll, brier: s.brier)
        }
        return r
    }
}
