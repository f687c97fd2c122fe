import CSearch
import Failure
import LinearAlgebra
import Parallel

// Exact cosine top-k with a reduced-precision first pass (emb-sim --precision int16 or int8).
//
// Queries and corpus rows are quantised row by row to integers (code = round(x / scale)) of at
// most 12 bits (int16: AVX-512 VNNI vpdpwssd, 32 multiply-adds per instruction, twice float
// FMA's; AVX2 vpmaddwd where there is no VNNI) or 8 bits (int8, codes within ±127: vpdpbusd, 64
// multiply-adds per instruction; AVX2 widens the codes to 16 bits for the int16 kernel). The
// approximate score of a pair is scale_q·scale_c·Σ code_q·code_c, the sum exact in int32; every
// kernel gives the same bits. The error of that score is bounded per pair by Cauchy–Schwarz:
//
//     |q·c − q'·c'| ≤ ‖q‖·‖c − c'‖ + ‖q − q'‖·‖c'‖          (q', c': the dequantised rows)
//
// plus the float roundings of both sides. A pair whose approximate score is at most the query's
// k-th best exact score minus that bound cannot enter the top-k, so only the others are scored
// again, exactly (csearch_dot: products and sum in double, rounded once), and offered to the heap.
// The result is the top-k by exact scores: the f32 search's, up to float rounding (the f32 GEMM's
// own order of summation differs by an ulp or so). Fewer bits: a wider bound, more pairs scored
// again (about 16 times the int16 pass's bound), each integer instruction twice the work.

/// The integer codes of the reduced-precision pass.
public enum CodePrecision: String, Sendable, CaseIterable {
    /// Codes of at most 12 bits in int16 (fewer for rows wider than 512: the sums fit an int32).
    case int16
    /// Codes within ±127 in int8 (fewer for rows wider than 66,311: the VNNI kernel's sums fit an int32).
    case int8

    /// The largest code for rows of dimension `d` (0: too wide for this precision).
    public func codeLimit(_ d: Int) -> Int {
        Int(self == .int16 ? csearch_code_limit(d) : csearch_code_limit_i8(d))
    }
}

/// Integer codes of a block of rows, with what the error bound needs.
public struct IntegerCodes: Sendable {
    public let precision: CodePrecision
    public let rows: Int
    /// Row width in codes: D rounded up to even (int16) or to a multiple of 4 (int8).
    public let width: Int
    /// The codes, in the layout of their precision (int16: `codes16`, int8: `codes8`, the other empty).
    public let codes16: [Int16]
    public let codes8: [Int8]
    /// int8, packed: each row's sum of codes (0 for the padding rows of the last group of 16).
    public let sums: [Int32]
    public let scales: [Float]
    /// Per row: ‖x − x'‖ and ‖x'‖ (x' the dequantised row).
    public let errors: [Double]
    public let norms: [Double]
    public let maxError: Double
    public let maxNorm: Double

    /// `packed`: the corpus layout (groups of 16 rows), else row-major (queries). The rows'
    /// dimension must have a code limit ≥ 1 (`CodePrecision.codeLimit`).
    public init(_ m: Matrix<Float>, precision: CodePrecision = .int16, packed: Bool) {
        let rows = m.rows, step = precision == .int16 ? 2 : 4, width = (m.cols + step - 1) / step * step
        let limit = Int32(precision.codeLimit(m.cols))
        precondition(limit > 0 || m.cols == 0, "rows of \(m.cols) dimensions are too wide for \(precision.rawValue) codes")
        let count = packed ? (rows + 15) / 16 * 16 * width : rows * width
        var c16 = [Int16](repeating: 0, count: precision == .int16 ? count : 0)
        var c8 = [Int8](repeating: 0, count: precision == .int8 ? count : 0)
        var sums = [Int32](repeating: 0, count: precision == .int8 && packed ? (rows + 15) / 16 * 16 : 0)
        var scales = [Float](repeating: 0, count: rows)
        var errors = [Double](repeating: 0, count: rows), norms = errors
        // One row's codes before they are spread or narrowed (a heap buffer: D is not bounded).
        var tmp = [Int16](repeating: 0, count: max(width, 1))
        if rows > 0 {
            m.data.withUnsafeBufferPointer { x in
            scales.withUnsafeMutableBufferPointer { s in
            errors.withUnsafeMutableBufferPointer { e in
            norms.withUnsafeMutableBufferPointer { n in
            tmp.withUnsafeMutableBufferPointer { t in
            c16.withUnsafeMutableBufferPointer { o16 in
            c8.withUnsafeMutableBufferPointer { o8 in
            sums.withUnsafeMutableBufferPointer { sm in
                let (x, s, e, n, t) = (x.baseAddress!, s.baseAddress!, e.baseAddress!, n.baseAddress!, t.baseAddress!)
                switch (precision, packed) {
                case (.int16, true): csearch_quantize_packed(x, rows, m.cols, width, limit, o16.baseAddress!, s, e, n, t)
                case (.int16, false): csearch_quantize_rows(x, rows, m.cols, width, limit, o16.baseAddress!, s, e, n)
                case (.int8, true): csearch_quantize_packed_i8(x, rows, m.cols, width, limit, o8.baseAddress!, sm.baseAddress!, s, e, n, t)
                case (.int8, false): csearch_quantize_rows_i8(x, rows, m.cols, width, limit, o8.baseAddress!, s, e, n, t)
                }
            }}}}}}}}
        }
        self.precision = precision
        self.rows = rows; self.width = width
        codes16 = c16; codes8 = c8; self.sums = sums
        self.scales = scales; self.errors = errors; self.norms = norms
        maxError = errors.max() ?? 0
        maxNorm = norms.max() ?? 0
    }

    public var bytes: Int { codes16.count * 2 + codes8.count + sums.count * 4 + rows * 20 }

    /// Approximate scores of `nq` of these rows (queries, row-major) from row `first` against the
    /// packed corpus codes `c` (same precision and width) into `out` (row stride `ldo`), by the
    /// best kernel of this CPU (or the ones in `kernel`, CSEARCH_KERNEL_* bits, for tests).
    public func scores(first: Int, count nq: Int, against c: IntegerCodes, into out: UnsafeMutablePointer<Float>, ldo: Int,
                       kernel: Int32 = Int32(CSEARCH_KERNEL_BEST)) {
        precondition(c.precision == precision && c.width == width && first >= 0 && first + nq <= rows)
        guard nq > 0, c.rows > 0 else { return }
        scales.withUnsafeBufferPointer { qs in c.scales.withUnsafeBufferPointer { cs in
            let qs = qs.baseAddress! + first, cs = cs.baseAddress!
            switch precision {
            case .int16:
                codes16.withUnsafeBufferPointer { q in c.codes16.withUnsafeBufferPointer { cc in
                    csearch_scores_i16_with(kernel, q.baseAddress! + first * width, nq, cc.baseAddress!, c.rows, width, qs, cs, out, ldo)
                }}
            case .int8:
                codes8.withUnsafeBufferPointer { q in c.codes8.withUnsafeBufferPointer { cc in c.sums.withUnsafeBufferPointer { sm in
                    csearch_scores_i8_with(kernel, q.baseAddress! + first * width, nq, cc.baseAddress!, sm.baseAddress!, c.rows, width, qs, cs, out, ldo)
                }}}
            }
        }}
    }
}

/// The dot product of two float rows, exact but for one final rounding (almost always).
@inline(__always)
func exactDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ d: Int) -> Float {
    csearch_dot(a, b, d)
}

/// How many pairs the reduced-precision pass let through, and how good its own top-k was.
public struct ReducedPrecisionStats: Sendable {
    public var pairs = 0
    public var rescored = 0
    /// Σ over queries of |approximate top-k ∩ exact top-k| and of the list lengths (when measured).
    public var agreeing = 0
    public var listed = 0
    public var recall: Double? { listed > 0 ? Double(agreeing) / Double(listed) : nil }
    public init() {}
}

/// Exact cosine top-k of a block of queries over prepared corpus blocks (`CorpusBlock` with
/// `codes`), by the reduced-precision pass and exact re-scoring above. Same order as `TopK`
/// (ties to the lower corpus row). With `measureRecall`, also keeps the top-k of the approximate
/// scores alone, to report how often the first pass would have been right by itself.
public final class ReducedTopK: TopKSearch {
    public let queries: Matrix<Float>
    public let k: Int
    /// The integer kernel this CPU runs: "AVX-512 VNNI", "AVX2" or "generic".
    public static var kernelName: String { String(cString: csearch_scores_kernel_name()) }
    public let precision: CodePrecision
    private let codes: IntegerCodes
    private let queryNorms: [Double]
    private let tiles: [Range<Int>]
    private let chunks: [[Range<Int>]]
    private var tops: [[TopK]]
    private var approxTops: [[TopK]]?
    private var s = [Float]()
    public private(set) var corpusRows = 0
    public var topOne: TopOneVariance? { nil }
    private var counts: [[(pairs: Int, rescored: Int)]]
    private let threads: Int

    /// `precision`: the corpus blocks given to `add` must have codes of the same precision.
    public init(queries: Matrix<Float>, k: Int, threads: Int, precision: CodePrecision = .int16,
                tileRows: Int = BlockTopK.defaultTileRows, measureRecall: Bool = false) {
        precondition(tileRows > 0)
        self.queries = queries; self.k = k; self.threads = max(1, threads); self.precision = precision
        codes = IntegerCodes(queries, precision: precision, packed: false)
        let d = queries.cols
        queryNorms = (0..<queries.rows).map { r in
            var t = 0.0
            for j in 0..<d { let x = Double(queries.data[r * d + j]); t += x * x }
            return t.squareRoot()
        }
        // The top-k is exact whatever the chunks (integer first pass, f32 rescoring of each pair on
        // its own): a tile is cut into four chunks per thread (of at least 64 queries, fewer when
        // that leaves a thread without one), taken by the threads as they come free, so that a
        // thread slowed down (by the corpus's decoding on the prefetch thread) leaves less waiting.
        let tile = min(tileRows, max(queries.rows, 1)), workers = max(1, threads)
        let chunkRows = min(max(64, (tile + 4 * workers - 1) / (4 * workers)), (tile + workers - 1) / workers)
        (tiles, chunks) = queryTiles(queries.rows, tileRows: tileRows, chunkRows: max(1, chunkRows))
        tops = chunks.map { $0.map { TopK(queries: $0.count, k: k) } }
        approxTops = measureRecall ? tops : nil
        counts = chunks.map { $0.map { _ in (0, 0) } }
    }

    public func add(_ c: CorpusBlock) throws {
        guard let cc = c.codes else { preconditionFailure("ReducedTopK.add: a corpus block without codes") }
        let m = c.rows, d = queries.cols
        precondition(c.mean.cols == d && cc.width == codes.width && cc.precision == precision)
        for t in tops.indices { for i in tops[t].indices { try tops[t][i].reserve(rows: corpusRows + m) } }
        if approxTops != nil { for t in approxTops!.indices { for i in approxTops![t].indices { try approxTops![t][i].reserve(rows: corpusRows + m) } } }
        let tileMax = tiles.map(\.count).max() ?? 0
        if s.count < tileMax * m { s = try checkedArray(repeating: 0, count: tileMax * m, what: "a tile of approximate scores") }
        let offset = corpusRows, qcodes = codes
        // The bound's parts that depend on the corpus block (methods in the file's header).
        let u = Double(Float.ulpOfOne) / 2
        let cErr = cc.maxError, cNorm = cc.maxNorm
        let qn = queryNorms, qe = codes.errors
        for (t, tile) in tiles.enumerated() where !tile.isEmpty {
            let tileChunks = chunks[t]
            s.withUnsafeMutableBufferPointer { ps in
                tops[t].withUnsafeMutableBufferPointer { pt in
                    counts[t].withUnsafeMutableBufferPointer { pc in
                        withOptionalBuffer(&approxTops, t) { pa in
                            queries.data.withUnsafeBufferPointer { pq in
                                c.mean.data.withUnsafeBufferPointer { pm in
                                    let box = ReducedPointers(s: ps.baseAddress!, tops: pt.baseAddress!, approx: pa, counts: pc.baseAddress!,
                                                              q: pq.baseAddress!, c: pm.baseAddress!, qn: qn, qe: qe)
                                    onChunks(tileChunks.count, threads: threads) { i in
                                        let r = tileChunks[i], first = (r.lowerBound - tile.lowerBound) * m
                                        let out = box.s + first
                                        qcodes.scores(first: r.lowerBound, count: r.count, against: cc, into: out, ldo: m)
                                        box.approx?[i].add(UnsafePointer(out), cols: m, offset: offset)
                                        var rescored = 0
                                        for (row, q) in r.enumerated() {
                                            let qn = box.qn[q], qe = box.qe[q]
                                            let bound = (qn * cErr + qe * cNorm + 3.001 * u * (qn + qe) * cNorm
                                                         + (u + Double(d) * 1.2e-16) * qn * (cNorm + cErr)) * (1 + 1e-9)
                                            let qrow = box.q + q * d
                                            rescored += box.tops[i].addRescored(row: row, approx: UnsafePointer(out + row * m), cols: m,
                                                                                offset: offset, bound: bound) { j in
                                                exactDot(qrow, box.c + j * d, d)
                                            }
                                        }
                                        box.counts[i].pairs += r.count * m
                                        box.counts[i].rescored += rescored
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        corpusRows += m
    }

    /// Pairs seen, pairs scored again, and (with `measureRecall`) the approximate pass's recall.
    public var stats: ReducedPrecisionStats {
        var st = ReducedPrecisionStats()
        for c in counts.joined() { st.pairs += c.pairs; st.rescored += c.rescored }
        if let approxTops {
            let exact = results(), w = k
            var approxIdx: [Int64] = []
            for t in approxTops.joined() { approxIdx += t.results().indices }
            for q in 0..<queries.rows {
                let e = Set(exact.indices[q * w ..< (q + 1) * w].filter { $0 >= 0 })
                st.agreeing += approxIdx[q * w ..< (q + 1) * w].filter { e.contains($0) }.count
                st.listed += e.count
            }
        }
        return st
    }

    public func results(width: Int? = nil) -> (scores: [Float], indices: [Int64]) {
        joinedResults(tops, width: width)
    }
}

private func withOptionalBuffer<R>(_ a: inout [[TopK]]?, _ t: Int, _ body: (UnsafeMutablePointer<TopK>?) -> R) -> R {
    guard a != nil else { return body(nil) }
    return a![t].withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}

/// Raw pointers handed to the worker threads; every thread touches disjoint rows and heaps.
private struct ReducedPointers: @unchecked Sendable {
    let s: UnsafeMutablePointer<Float>
    let tops: UnsafeMutablePointer<TopK>
    let approx: UnsafeMutablePointer<TopK>?
    let counts: UnsafeMutablePointer<(pairs: Int, rescored: Int)>
    let q: UnsafePointer<Float>
    let c: UnsafePointer<Float>
    let qn: [Double]
    let qe: [Double]
}

/// What emb-sim's --top-k drives: the f32 search (`BlockTopK`) or the reduced-precision one.
public protocol TopKSearch: AnyObject {
    func add(_ c: CorpusBlock) throws
    func results(width: Int?) -> (scores: [Float], indices: [Int64])
    var corpusRows: Int { get }
    var topOne: TopOneVariance? { get }
}

extension BlockTopK: TopKSearch {}

extension TopK {
    /// Offers query `row`'s corpus rows offset ..< offset + m through their approximate scores:
    /// a pair goes on to `exact` (its exact score, by column) unless its approximate score is at
    /// most the heap's worst kept score minus `bound`, which proves it cannot enter. Returns how
    /// many pairs were scored exactly. After `reserve(rows: offset + cols)`.
    mutating func addRescored(row q: Int, approx: UnsafePointer<Float>, cols m: Int, offset: Int, bound: Double,
                              exact: (Int) -> Float) -> Int {
        var rescored = 0
        var j = 0
        while j < m && count(q) < k {
            offer(q, exact(j), Int64(offset + j))
            rescored += 1
            j += 1
        }
        guard count(q) == k else { return rescored }
        func cut() -> Float { Float(Double(worst(q)) - bound).nextDown }
        var threshold = cut()
        while true {
            j = nextAbove(approx, from: j, count: m, threshold: threshold)
            if j >= m { break }
            rescored += 1
            if offer(q, exact(j), Int64(offset + j)) { threshold = cut() }
            j += 1
        }
        return rescored
    }
}
