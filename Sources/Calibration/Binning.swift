// Confidence binning for calibration errors (methods.md section 3, "ECE").
//
// Three conventions, because the reference libraries disagree at bin edges:
//   - `.standard` (the toolbox's default): B equal-width bins with edges numpy.linspace(0, 1, B+1),
//     bins (lo, hi]; a confidence of exactly 0 goes to the first bin, 1.0 to the last. This is
//     the binning of sklearn.calibration.calibration_curve(strategy="uniform").
//   - `.torchmetrics`: edges torch.linspace(0, 1, B+1) in float32 (multiclass: torchmetrics casts
//     confidences to float32) or in the input dtype (binary); bins [lo, hi) by
//     torch.bucketize(right=True), plus an extra bin B that holds confidences of exactly 1.0.
//   - `.netcal`: confidences clipped to [eps, 1 - eps] (eps of the input dtype) first, then
//     numpy.linspace edges with bins [lo, hi) and the last bin closed (numpy.histogramdd).

import Probability

/// How confidences are assigned to bins; see the file comment.
public enum BinningConvention: String, CaseIterable, Sendable, Codable {
    case standard = "default"
    case torchmetrics
    case netcal
}

/// The floating-point type the probabilities arrived in; it decides eps (NLL and netcal clipping)
/// and the precision of torchmetrics' bin edges.
public enum InputPrecision: Sendable {
    case float32, float64

    /// Machine epsilon of the type, like numpy.finfo(dtype).eps.
    public var eps: Double { self == .float32 ? machineEpsilon(Float.self) : machineEpsilon(Double.self) }
}

/// numpy.linspace(0, 1, n + 1): edge i is i * (1/n), the last exactly 1.
public func numpyLinspaceEdges(_ n: Int) -> [Double] {
    let step = 1.0 / Double(n)
    var e = (0...n).map { Double($0) * step }
    e[n] = 1
    return e
}

/// torch.linspace(0, 1, n + 1, dtype=float32) reproduced bit for bit: the lower half is
/// step * i, the upper half a fused 1 - step * (n - i) (ATen's vectorised CPU kernel).
public func torchLinspaceEdgesFloat32(_ n: Int) -> [Double] {
    let steps = n + 1
    let step = Float(1) / Float(n)
    let half = steps / 2
    return (0..<steps).map { i -> Double in
        if i < half { return Double(step * Float(i)) }
        return Double(Float(1).addingProduct(-step, Float(steps - 1 - i)))
    }
}

/// torch.linspace(0, 1, n + 1, dtype=float64), the same scheme in double precision.
public func torchLinspaceEdgesFloat64(_ n: Int) -> [Double] {
    let steps = n + 1
    let step = 1.0 / Double(n)
    let half = steps / 2
    return (0..<steps).map { i -> Double in
        if i < half { return step * Double(i) }
        return 1.0.addingProduct(-step, Double(steps - 1 - i))
    }
}

/// Assigns confidences to bins under one convention.
public struct Binning: Sendable {
    public let convention: BinningConvention
    /// Number of ordinary bins B.
    public let bins: Int
    /// B + 1 edges (as Double; torchmetrics' float32 edges are widened exactly).
    public let edges: [Double]
    /// Clipping bounds applied before binning (netcal), else [0, 1] untouched.
    public let clipLow: Double, clipHigh: Double
    /// Whether a confidence is first rounded to float32 (torchmetrics multiclass).
    public let roundToFloat32: Bool
    /// Per slot, the smallest and largest confidence it holds (inclusive; the first slot from −∞,
    /// the last to +∞): the edges with each convention's open and closed ends folded in.
    private let lowest: [Double], highest: [Double]

    /// Number of slots to accumulate into: B, or B + 1 for torchmetrics' bin of exact 1.0.
    public var slots: Int { convention == .torchmetrics ? bins + 1 : bins }

    /// - Parameters:
    ///   - positiveClass: binary positive-class binning (torchmetrics keeps the input dtype there;
    ///     in multiclass it casts confidences to float32).
    public init(_ convention: BinningConvention, bins: Int, precision: InputPrecision, positiveClass: Bool = false) {
        precondition(bins >= 1)
        self.convention = convention
        self.bins = bins
        switch convention {
        case .standard:
            edges = numpyLinspaceEdges(bins); clipLow = 0; clipHigh = 1; roundToFloat32 = false
        case .netcal:
            edges = numpyLinspaceEdges(bins)
            clipLow = precision.eps; clipHigh = 1 - precision.eps; roundToFloat32 = false
        case .torchmetrics:
            let f32 = !positiveClass || precision == .float32
            edges = f32 ? torchLinspaceEdgesFloat32(bins) : torchLinspaceEdgesFloat64(bins)
            clipLow = 0; clipHigh = 1; roundToFloat32 = f32
        }
        let e = edges, slotCount = convention == .torchmetrics ? bins + 1 : bins
        var lo = [Double](), hi = [Double]()
        for s in 0..<slotCount {
            switch convention {
            case .standard:        // (e[s], e[s+1]]
                lo.append(e[s].nextUp); hi.append(s + 1 < bins ? e[s + 1] : .infinity)
            case .netcal:          // [e[s], e[s+1]), the last closed
                lo.append(e[s]); hi.append(s + 1 < bins ? e[s + 1].nextDown : .infinity)
            case .torchmetrics:    // [e[s], e[s+1]), and slot B = [1, ∞)
                lo.append(e[s]); hi.append(s < bins ? e[s + 1].nextDown : .infinity)
            }
        }
        lo[0] = -.infinity
        lowest = lo; highest = hi
    }

    /// The confidence as the convention sees it (rounded to float32, or clipped).
    @inline(__always)
    public func prepare(_ c: Double) -> Double {
        Self.prepare(c, roundToFloat32: roundToFloat32, clips: convention == .netcal, low: clipLow, high: clipHigh)
    }

    @inline(__always)
    static func prepare(_ c: Double, roundToFloat32: Bool, clips: Bool, low: Double, high: Double) -> Double {
        if roundToFloat32 { return Double(Float(c)) }
        if clips { return min(max(c, low), high) }
        return c
    }

    /// The slot of a prepared confidence in [0, 1], without a branch that depends on the data.
    /// c·B truncated is the slot or one of its neighbours, so one step down or up lands on it:
    /// edge i is i/B within a float32 rounding (2^-24 relative), and B < 2^16 keeps B times that
    /// error far below one slot. PropertyTests counts edges at every edge to check it.
    @inline(__always)
    public func index(_ c: Double) -> Int {
        let b = withSlotTable { $0.index(c) }
        assert(b == slotBySearch(c))
        return b
    }

    /// `index` for a loop over many values: the slot bounds held by pointer for the loop.
    /// `float32Slots`: this binning's `float32Slots()`, for `SlotTable.slot`.
    @inline(__always)
    public func withSlotTable<R>(float32Slots: [UInt8]? = nil, _ body: (SlotTable) throws -> R) rethrows -> R {
        try lowest.withUnsafeBufferPointer { lo in
            try highest.withUnsafeBufferPointer { hi in
                try withBytes(float32Slots) { byKey in
                    try body(SlotTable(scale: Double(bins), top: Double(lo.count - 1), lowest: lo.baseAddress!, highest: hi.baseAddress!,
                                       roundToFloat32: roundToFloat32, clips: convention == .netcal, clipLow: clipLow, clipHigh: clipHigh,
                                       byKey: byKey))
                }
            }
        }
    }

    @inline(__always)
    private func withBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafePointer<UInt8>?) throws -> R) rethrows -> R {
        guard let bytes else { return try body(nil) }
        return try bytes.withUnsafeBufferPointer { try body($0.baseAddress) }
    }

    /// What `prepare` and `index` compute, on the bounds of `withSlotTable`.
    public struct SlotTable {
        let scale: Double, top: Double
        let lowest: UnsafePointer<Double>, highest: UnsafePointer<Double>
        let roundToFloat32: Bool, clips: Bool, clipLow: Double, clipHigh: Double
        /// `float32Slots()`, when given to `withSlotTable`.
        let byKey: UnsafePointer<UInt8>?

        /// `index` of a prepared confidence in [0, 1], found by its bits (one byte load) when it
        /// is a float32 value whose key `float32Slots()` decides, else by `index`.
        @inline(__always)
        public func slot(_ c: Double) -> Int {
            if let byKey {
                let f = Float(c)
                if Double(f) == c {
                    let s = byKey[Binning.float32SlotKey(f)]
                    if s != 0xFF { return Int(s) }
                }
            }
            return index(c)
        }

        @inline(__always)
        public func prepare(_ c: Double) -> Double {
            Binning.prepare(c, roundToFloat32: roundToFloat32, clips: clips, low: clipLow, high: clipHigh)
        }

        @inline(__always)
        public func index(_ c: Double) -> Int {
            // Clamped in floating point (minsd/maxsd, where integer min/max become branches),
            // then truncated. The first slot starts at −∞ and the last ends at +∞, so the step
            // cannot leave the slots.
            let b = Int(min(max(c * scale, 0), top))
            return b &+ (c > highest[b] ? 1 : 0) &- (c < lowest[b] ? 1 : 0)
        }
    }

    /// For float32 values in [0, 1] (or −0), keyed by the top 16 bits of the magnitude's bit
    /// pattern: the slot that every value under the key falls in, or 0xFF where an edge splits
    /// the key's values (then `index` decides). A positive float's bits grow with its value, so
    /// a key's values span the interval from its lowest to its highest pattern, and one slot for
    /// both ends is one slot for all. Most values then find their slot with one byte load and no
    /// conversion. nil with more than 254 slots. Values only, no preparing: `.standard`'s use.
    public func float32Slots() -> [UInt8]? {
        guard slots < 0xFF else { return nil }
        let top = Float(1).bitPattern >> 16
        return withSlotTable { table in
            (0...top).map { key -> UInt8 in
                let low = Float(bitPattern: key << 16)
                let high = Float(bitPattern: min(key << 16 | 0xFFFF, Float(1).bitPattern))
                let s = table.index(Double(low))
                return s == table.index(Double(high)) ? UInt8(s) : 0xFF
            }
        }
    }

    /// The key of `float32Slots` for a value in [0, 1] (or −0).
    @inline(__always)
    public static func float32SlotKey(_ v: Float) -> Int { Int((v.bitPattern & 0x7FFF_FFFF) &>> 16) }

    /// The slot of a prepared confidence in [0, 1], found by walking from c·B to the edges that
    /// enclose it: the definition `index` is checked against.
    public func slotBySearch(_ c: Double) -> Int {
        let n = bins
        var b = Int(c * Double(n))
        b = min(max(b, 0), n)
        switch convention {
        case .standard:
            // (lo, hi]: the number of interior edges strictly below c.
            if b >= n { b = n - 1 }
            while b > 0 && c <= edges[b] { b -= 1 }
            while b < n - 1 && c > edges[b + 1] { b += 1 }
            return b
        case .torchmetrics, .netcal:
            // [lo, hi): the number of edges <= c, minus one.
            while b > 0 && c < edges[b] { b -= 1 }
            while b < n && c >= edges[b + 1] { b += 1 }
            if convention == .netcal && b >= n { b = n - 1 }   // last bin closed
            return b
        }
    }
}

/// Per-bin sums for a calibration error: counts, summed confidence, summed correctness.
public struct BinAccumulator: Sendable {
    public var count: [Int]
    public var sumConfidence: [Double]
    public var sumCorrect: [Double]

    public init(slots: Int) {
        count = Array(repeating: 0, count: slots)
        sumConfidence = Array(repeating: 0, count: slots)
        sumCorrect = Array(repeating: 0, count: slots)
    }

    @inline(__always)
    public mutating func add(slot: Int, confidence: Double, correct: Double) {
        count[slot] += 1
        sumConfidence[slot] += confidence
        sumCorrect[slot] += correct
    }

    public mutating func merge(_ o: BinAccumulator) {
        for i in count.indices {
            count[i] += o.count[i]; sumConfidence[i] += o.sumConfidence[i]; sumCorrect[i] += o.sumCorrect[i]
        }
    }
}

/// One bin of a reliability diagram.
public struct ReliabilityBin: Sendable, Codable, Equatable {
    public var lower: Double
    public var upper: Double
    public var count: Int
    /// Mean confidence of the bin's rows (nil when empty).
    public var confidence: Double?
    /// Fraction of the bin's rows that were correct (or positive, for positive-class binning).
    public var accuracy: Double?
}

/// A calibration error under one binning: ECE (L1, weights n_b/N), MCE (max over non-empty
/// bins), RMSCE (L2), with the per-bin data (methods.md section 3).
public struct CalibrationErrors: Sendable, Codable, Equatable {
    public var ece: Double
    public var mce: Double
    public var rmsce: Double
    public var bins: [ReliabilityBin]

    /// Computes the errors from per-bin sums; `edges` label the bins (B + 1 values; a
    /// torchmetrics extra slot is labelled [1, 1]).
    public init(_ acc: BinAccumulator, edges: [Double]) {
        let total = Double(acc.count.reduce(0, +))
        var ece = 0.0, mce = 0.0, sq = 0.0
        var out: [ReliabilityBin] = []
        for s in acc.count.indices {
            let lo = s < edges.count - 1 ? edges[s] : 1
            let hi = s < edges.count - 1 ? edges[s + 1] : 1
            let n = acc.count[s]
            guard n > 0 else {
                out.append(ReliabilityBin(lower: lo, upper: hi, count: 0, confidence: nil, accuracy: nil))
                continue
            }
            let conf = acc.sumConfidence[s] / Double(n)
            let accuracy = acc.sumCorrect[s] / Double(n)
            let gap = abs(accuracy - conf)
            let w = Double(n) / total
            ece += w * gap
            sq += w * gap * gap
            mce = max(mce, gap)
            out.append(ReliabilityBin(lower: lo, upper: hi, count: n, confidence: conf, accuracy: accuracy))
        }
        self.ece = ece; self.mce = mce; self.rmsce = sq.squareRoot(); self.bins = out
    }
}
