import Failure
import LinearAlgebra
import Parallel
import Probability
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The last linear layer z(x) = W h(x) + b whose weights get a Laplace posterior
/// (methods.md 1.1). `weight == nil` is the identity adapter: h(x) = e(x), W = I, b = 0.
public struct LastLayer: Sendable {
    /// W, D×P, or nil for the identity adapter (then P = D).
    public var weight: Matrix<Double>?
    /// b, D values (all zero for the identity adapter).
    public var bias: [Double]
    /// Output dimension D.
    public let outputs: Int
    /// Input dimension P.
    public let inputs: Int

    /// The identity adapter of dimension D (methods.md 1.1, the default).
    public static func identity(_ d: Int) -> LastLayer {
        LastLayer(weight: nil, bias: Array(repeating: 0, count: d), outputs: d, inputs: d)
    }

    /// A real last layer with weights W (D×P) and bias b (D).
    public init(weight: Matrix<Double>, bias: [Double]) {
        precondition(bias.count == weight.rows, "bias has \(bias.count) values, W has \(weight.rows) rows")
        self.weight = weight; self.bias = bias; outputs = weight.rows; inputs = weight.cols
    }

    private init(weight: Matrix<Double>?, bias: [Double], outputs: Int, inputs: Int) {
        self.weight = weight; self.bias = bias; self.outputs = outputs; self.inputs = inputs
    }

    public var isIdentity: Bool { weight == nil }

    /// ‖θ̂‖² = ‖W‖²_F + ‖b‖² (= D for the identity adapter), used by MacKay's update.
    public var squaredNorm: Double {
        guard let w = weight else { return Double(outputs) }
        return w.data.reduce(0) { $0 + $1 * $1 } + bias.reduce(0) { $0 + $1 * $1 }
    }

    /// z = H Wᵀ + b for a block of inputs H (rows × P).
    public func forward(_ h: Matrix<Double>) -> Matrix<Double> {
        guard weight != nil else { return h }
        precondition(h.cols == inputs, "forward: inputs have \(h.cols) columns, the layer \(inputs)")
        return Matrix(rows: h.rows, cols: outputs, data: h.data.withUnsafeBufferPointer { forward(rows: $0.baseAddress!, count: h.rows) })
    }

    /// z = H Wᵀ + b for `count` rows of P inputs at `h` (row-major), as count × D values; the same
    /// bits as `forward(_:)` on those rows. Not for the identity adapter.
    func forward(rows h: UnsafePointer<Double>, count: Int) -> [Double] {
        let w = weight!, d = outputs
        guard count > 0 else { return [] }
        return [Double](unsafeUninitializedCapacity: count * d) { z, initialized in
            w.data.withUnsafeBufferPointer { wb in
                Double.gemm(false, true, count, d, inputs, 1, h, inputs, wb.baseAddress!, inputs, 0, z.baseAddress!, d)
            }
            for r in 0..<count { for k in 0..<d { z[r * d + k] += bias[k] } }
            initialized = count * d
        }
    }
}

/// Accumulates the diagonal empirical Fisher F = Σ_batches Σ_n (∂ℓ_n/∂θ)² of in-batch InfoNCE
/// for θ = (W, b), in float64, by the exact three-GEMM closed form of methods.md 1.1:
///
///     s_nj = z(q_n)·z(p_j)/τ,  R_nj = softmax_j(s_nj) − δ_nj
///     A = R Z_p / τ,  C = R H_p / τ
///     F_W += (A∘A)ᵀ(H∘H) + 2 (A∘Z)ᵀ(H∘C) + (Z∘Z)ᵀ(C∘C),   F_b += Σ_n a_n∘a_n
///
/// where Z, H are the query side's outputs and inputs of the layer.
public struct InfoNCEFisher: Sendable {
    public let layer: LastLayer
    public let temperature: Double
    /// F_W, D×P.
    public private(set) var weight: Matrix<Double>
    /// F_b, D.
    public private(set) var bias: [Double]
    /// Pairs and batches seen, and the summed loss Σ ℓ_n (for reports).
    public private(set) var pairs = 0
    public private(set) var batches = 0
    public private(set) var lossSum = 0.0

    public init(layer: LastLayer, temperature: Double = 1) {
        precondition(temperature > 0)
        self.layer = layer; self.temperature = temperature
        weight = Matrix(rows: layer.outputs, cols: layer.inputs)
        bias = Array(repeating: 0, count: layer.outputs)
    }

    /// Adds one batch of B positive pairs: layer inputs of the queries and of the positives
    /// (B×P each; for the identity adapter, the embeddings). A batch of one pair has no
    /// negatives, its gradient is zero; it is counted and contributes nothing.
    public mutating func add(queries hq: Matrix<Double>, positives hp: Matrix<Double>) {
        add(queries: hq, positives: hp, batchSize: max(1, hq.rows))
    }

    /// Adds consecutive batches of `batchSize` pairs (the last one may be shorter): the batches
    /// of `add(queries:positives:)` one after the other, with their GEMMs at shapes where a GEMM
    /// runs near the machine's rate instead of B-row slivers, on `threads` threads of its own
    /// with OpenBLAS on one thread each (no OpenBLAS workers spinning between small products).
    ///
    /// The work is cut at fixed places, whatever the threads: the layer's forward pass and a
    /// batch's factors in groups of whole batches (about `groupRows` pairs), then the one Fisher
    /// GEMM of all the groups in `fisherPieces` pieces of F_W's columns; F_b and the loss are added
    /// afterwards row by row in order. So the sums have the same bits on any number of threads.
    public mutating func add(queries hq: Matrix<Double>, positives hp: Matrix<Double>, batchSize: Int, threads: Int = 1) {
        var given: (Matrix<Double>, Matrix<Double>)? = (hq, hp)
        // One block, given: nothing that can fail.
        try! add(blocks: { defer { given = nil }; return given }, batchSize: batchSize, threads: threads)
    }

    /// Adds the pairs of consecutive blocks (queries, positives) that `next` gives until it gives
    /// nil, each block as `add(queries:positives:batchSize:threads:)` adds it, one after the
    /// other: the same bits. The blocks overlap on the threads: `next` is called for block k + 1
    /// while the Fisher GEMM of block k runs, and block k + 1's forward pass and factors are
    /// computed while its last pieces do (into a second set of factor matrices), so that a thread
    /// that would wait for the other at the end of a block takes the next block's work instead.
    /// `next` is called one call at a time, from any of the threads; its error stops the reading
    /// and is thrown once the blocks read before it are added.
    public mutating func add(blocks next: () throws -> (Matrix<Double>, Matrix<Double>)?, batchSize: Int, threads: Int = 1) throws {
        precondition(batchSize >= 1)
        let p = layer.inputs
        let width = max(1, (p + Self.fisherPieces - 1) / Self.fisherPieces)
        let pipeline = FisherPipeline(layer: layer, temperature: temperature, batchSize: batchSize, factorTasks: max(1, threads),
                                      pieces: p == 0 ? [0 ..< 0] : stride(from: 0, to: p, by: width).map { $0 ..< min($0 + width, p) },
                                      bias: bias, lossSum: lossSum)
        withoutActuallyEscaping(next) { next in
            weight.data.withUnsafeMutableBufferPointer { wb in
                let source = BlockSource(next: next), out = UncheckedPointer(p: wb.baseAddress!)
                func run() { TaskSequence.run(threads: threads) { i, tasks in pipeline.task(i, tasks, source: source, weight: out.p) } }
                if threads > 1 { BLASThreading.singleThreaded(run) } else { run() }
            }
        }
        bias = pipeline.bias
        lossSum = pipeline.lossSum
        pairs += pipeline.pairs
        batches += pipeline.batches
        // `next`'s error, once the blocks before it are added (the rest of the work cannot fail).
        if let e = pipeline.failure { throw e }
    }

    /// Pairs per group of whole batches whose forward pass is one GEMM (fewer when a batch is larger).
    static let groupRows = 128
    /// Pieces of F_W's columns, one Fisher GEMM each.
    static let fisherPieces = 4

    /// Where the groups write their rows of the stacked factors and their losses: each group
    /// touches only its own rows.
    fileprivate struct FactorRows: @unchecked Sendable {
        let x: UnsafeMutablePointer<Double>, y: UnsafeMutablePointer<Double>, loss: UnsafeMutablePointer<Double>
    }

    /// The factors of the pairs `group` (whole batches of `batchSize`, from the first): the layer's
    /// outputs, R = softmax(s) − I per batch, A = R Z_p / τ and C = R H_p / τ, and their rows
    /// A∘A, 2 A∘Z, Z∘Z (of X) and H∘H, H∘C, C∘C (of Y) at n, stride + n, 2·stride + n; −log of
    /// each pair's softmax on its positive in `loss`.
    fileprivate static func factors(of group: Range<Int>, queries: Matrix<Double>, positives: Matrix<Double>, batchSize: Int,
                                layer: LastLayer, temperature: Double, stride rows: Int, into out: FactorRows) {
        let d = layer.outputs, p = layer.inputs, count = group.count, first = group.lowerBound
        let scale = 1 / temperature
        // The group's rows are read in place (no copies); the layer's outputs of both sides and a
        // batch's R, A and C are held once per group and overwritten batch after batch.
        queries.data.withUnsafeBufferPointer { qb in
        positives.data.withUnsafeBufferPointer { pb in
            let hq = qb.baseAddress! + first * p, hp = pb.baseAddress! + first * p
            let identity = layer.isIdentity
            let zqStore = identity ? [] : layer.forward(rows: hq, count: count)
            let zpStore = identity ? [] : layer.forward(rows: hp, count: count)
            let b0 = min(batchSize, count)
            var r = [Double](repeating: 0, count: b0 * b0), a = [Double](repeating: 0, count: b0 * d)
            var cc = [Double](repeating: 0, count: identity ? 0 : b0 * p)
            zqStore.withUnsafeBufferPointer { zqs in
            zpStore.withUnsafeBufferPointer { zps in
            r.withUnsafeMutableBufferPointer { rb in
            a.withUnsafeMutableBufferPointer { ab in
            cc.withUnsafeMutableBufferPointer { cb in
                let zq = identity ? hq : zqs.baseAddress!, zp = identity ? hp : zps.baseAddress!
                let rp = rb.baseAddress!, ap = ab.baseAddress!
                for start in Swift.stride(from: 0, to: count, by: batchSize) {
                    let b = min(batchSize, count - start)
                    let zqb = zq + start * d, zpb = zp + start * d
                    // S = Z_q Z_pᵀ / τ, then R = softmax(S) − I row by row (stable), and the loss
                    // −s_nn + logsumexp_j s_nj.
                    Double.gemm(false, true, b, b, d, scale, zqb, d, zpb, d, 0, rp, b)
                    for m in 0..<b {
                        let row = UnsafeMutableBufferPointer(start: rp + m * b, count: b)
                        softmaxInPlace(row)
                        out.loss[first + start + m] = -log(row[m])
                        row[m] -= 1
                    }
                    // A = R Z_p / τ; C = R H_p / τ (h = z on the positive side of the identity
                    // adapter, so there C = A).
                    Double.gemm(false, false, b, d, b, scale, rp, b, zpb, d, 0, ap, d)
                    let c: UnsafePointer<Double>
                    if identity {
                        c = UnsafePointer(ap)
                    } else {
                        Double.gemm(false, false, b, p, b, scale, rp, b, hp + start * p, p, 0, cb.baseAddress!, p)
                        c = UnsafePointer(cb.baseAddress!)
                    }
                    let hqb = hq + start * p
                    for m in 0..<b {
                        let n = first + start + m
                        let x0 = out.x + n * d, x1 = out.x + (rows + n) * d, x2 = out.x + (2 * rows + n) * d
                        let am = ap + m * d, zm = zqb + m * d
                        for k in 0..<d {
                            let av = am[k], zv = zm[k]
                            x0[k] = av * av
                            x1[k] = 2 * av * zv
                            x2[k] = zv * zv
                        }
                        let y0 = out.y + n * p, y1 = out.y + (rows + n) * p, y2 = out.y + (2 * rows + n) * p
                        let hm = hqb + m * p, cm = c + m * p
                        for i in 0..<p {
                            let hv = hm[i], cv = cm[i]
                            y0[i] = hv * hv
                            y1[i] = hv * cv
                            y2[i] = cv * cv
                        }
                    }
                }
            }}}}}
        }}
    }

    /// The Fisher as one flat vector (W row-major, then b), as MacKay's update sees it.
    public var flat: [Double] { weight.data + bias }
}

/// The tasks of `InfoNCEFisher.add(blocks:batchSize:threads:)`, in the order threads take them
/// (a `TaskSequence`): R(0), then G(0, s) for s in 0..<F, then for each block k the round
///
///     R(k + 1), P(k, 0), G(k + 1, 0..<F), P(k, 1..<pieces)
///
/// R(m) reads block m; G(m, s) computes block m's forward pass and factors for its groups s,
/// s + F, …; P(k, j) adds block k's piece j of the Fisher GEMM to F_W (P(k, 0) also F_b and the
/// loss, row by row). Blocks of even and odd m use two input slots and two sets of factor
/// matrices. Each task waits for what it reads and for the tasks that still read what it
/// overwrites:
///
///     R(m):    R(m − 1) (one read at a time), G(m − 2, ·) (input slot m % 2);
///              P(m − 2, ·) too when it must grow factor slot m % 2 (a block larger than before)
///     G(m, s): R(m) (its block), P(m − 2, ·) (factor slot m % 2)
///     P(k, j): G(k, ·) (its factors), P(k − 1, j) (F_W's columns, F_b and the loss block after block)
///
/// so every sum is added in the same order as block after block on one thread. A task of round
/// k first waits for R(k) and stops its thread when there is no block k.
private final class FisherPipeline: @unchecked Sendable {
    let layer: LastLayer, temperature: Double, batchSize: Int
    /// F: the G tasks of a block.
    let factorTasks: Int
    let pieces: [Range<Int>]
    /// F_b and the summed loss (from the accumulator's, added to row after row), pairs and
    /// batches added (by P(k, 0), one block after the other).
    var bias: [Double], lossSum: Double, pairs = 0, batches = 0
    /// The reading's error (set by an R task; read after the run).
    var failure: Error?
    /// Blocks read so far (set by R tasks, read by any task once it has waited for R(k)).
    let blocksRead = Atomic<Int>(0)
    /// Set by an R task that found no block or an error: no R reads after it.
    var ended = false
    /// Rows of block k, for its P tasks once its input slot is taken by block k + 2.
    let rows = Mutex<[Int]>([])
    /// The blocks of even and odd m (written by R(m), read by G(m, ·)).
    let inputs: UnsafeMutablePointer<(Matrix<Double>, Matrix<Double>)?>
    let slots = [FactorSlot(), FactorSlot()]

    /// One set of factor matrices, for blocks of up to `capacity` rows, and the rows' losses. The
    /// three GEMMs (A∘A)ᵀ(H∘H) + 2 (A∘Z)ᵀ(H∘C) + (Z∘Z)ᵀ(C∘C) of every batch of a block run as one
    /// GEMM over the stacked factors X = [A∘A; 2 A∘Z; Z∘Z] (3·rows × D) and Y = [H∘H; H∘C; C∘C]
    /// (3·rows × P), rows n, rows + n and 2·rows + n for pair n: the same sum, at a GEMM shape
    /// with a long inner dimension. Every element of X and Y is written by `factors` before the
    /// GEMM reads it: no zeros first.
    final class FactorSlot {
        var capacity = 0
        var x: UnsafeMutablePointer<Double>? = nil, y: UnsafeMutablePointer<Double>? = nil, loss: UnsafeMutablePointer<Double>? = nil

        func reserve(rows: Int, d: Int, p: Int) {
            guard rows > capacity else { return }
            release()
            func buffer(_ n: Int) -> UnsafeMutablePointer<Double> {
                guard let b = allocateBuffer(n * MemoryLayout<Double>.stride) else {
                    preconditionFailure("out of memory for the Fisher's factors (\(n) values)")
                }
                return b.bindMemory(to: Double.self, capacity: n)
            }
            x = buffer(3 * rows * d); y = buffer(3 * rows * p); loss = buffer(rows)
            capacity = rows
        }

        func release() {
            free(x); free(y); free(loss)
            x = nil; y = nil; loss = nil; capacity = 0
        }

        deinit { release() }
    }

    init(layer: LastLayer, temperature: Double, batchSize: Int, factorTasks: Int, pieces: [Range<Int>], bias: [Double], lossSum: Double) {
        self.layer = layer; self.temperature = temperature; self.batchSize = batchSize
        self.factorTasks = factorTasks; self.pieces = pieces; self.bias = bias; self.lossSum = lossSum
        inputs = .allocate(capacity: 2)
        inputs.initialize(repeating: nil, count: 2)
    }

    deinit { inputs.deinitialize(count: 2); inputs.deallocate() }

    // Task indices: R(0) is 0, G(0, s) is 1 + s; round k starts at `first + k · round`.
    var first: Int { 1 + factorTasks }
    var round: Int { 1 + factorTasks + pieces.count }
    func read(_ m: Int) -> Int { m == 0 ? 0 : first + (m - 1) * round }
    func factors(_ m: Int, _ s: Int) -> Int { m == 0 ? 1 + s : first + (m - 1) * round + 2 + s }
    func piece(_ k: Int, _ j: Int) -> Int { first + k * round + (j == 0 ? 1 : 1 + factorTasks + j) }

    func waitForFactors(of m: Int, _ tasks: TaskSequence) {
        guard m >= 0 else { return }
        for s in 0..<factorTasks { tasks.wait(for: factors(m, s)) }
    }

    func waitForPieces(of k: Int, _ tasks: TaskSequence) {
        guard k >= 0 else { return }
        for j in pieces.indices { tasks.wait(for: piece(k, j)) }
    }

    /// Runs task i; false when there is none (no block for its round).
    func task(_ i: Int, _ tasks: TaskSequence, source: BlockSource, weight: UnsafeMutablePointer<Double>) -> Bool {
        if i < first {
            if i == 0 { readBlock(0, tasks, source) } else { addFactors(0, i - 1, tasks) }
            return true
        }
        let k = (i - first) / round, slot = (i - first) % round
        tasks.wait(for: read(k))
        guard k < blocksRead.load(ordering: .acquiring) else { return false }
        switch slot {
        case 0: readBlock(k + 1, tasks, source)
        case 1: addPiece(k, 0, tasks, weight)
        case 2 ..< 2 + factorTasks: addFactors(k + 1, slot - 2, tasks)
        default: addPiece(k, slot - 1 - factorTasks, tasks, weight)
        }
        return true
    }

    func readBlock(_ m: Int, _ tasks: TaskSequence, _ source: BlockSource) {
        if m > 0 { tasks.wait(for: read(m - 1)) }
        guard !ended else { return }
        waitForFactors(of: m - 2, tasks)
        let block: (Matrix<Double>, Matrix<Double>)?
        do { block = try source.next() } catch { failure = error; ended = true; return }
        guard let (hq, hp) = block else { ended = true; return }
        precondition(hq.rows == hp.rows && hq.cols == layer.inputs && hp.cols == layer.inputs)
        if hq.rows > slots[m % 2].capacity {
            waitForPieces(of: m - 2, tasks)
            slots[m % 2].reserve(rows: hq.rows, d: layer.outputs, p: layer.inputs)
        }
        inputs[m % 2] = (hq, hp)
        rows.withLock { $0.append(hq.rows) }
        blocksRead.store(m + 1, ordering: .releasing)
    }

    func addFactors(_ m: Int, _ s: Int, _ tasks: TaskSequence) {
        tasks.wait(for: read(m))
        guard m < blocksRead.load(ordering: .acquiring), let (hq, hp) = inputs[m % 2] else { return }
        waitForPieces(of: m - 2, tasks)
        let count = hq.rows, slot = slots[m % 2]
        guard count > 0 else { return }
        let perGroup = max(1, InfoNCEFisher.groupRows / batchSize) * batchSize
        let out = InfoNCEFisher.FactorRows(x: slot.x!, y: slot.y!, loss: slot.loss!)
        for g in stride(from: s * perGroup, to: count, by: factorTasks * perGroup) {
            InfoNCEFisher.factors(of: g ..< min(g + perGroup, count), queries: hq, positives: hp, batchSize: batchSize,
                                  layer: layer, temperature: temperature, stride: count, into: out)
        }
    }

    func addPiece(_ k: Int, _ j: Int, _ tasks: TaskSequence, _ weight: UnsafeMutablePointer<Double>) {
        waitForFactors(of: k, tasks)
        if k > 0 { tasks.wait(for: piece(k - 1, j)) }
        let count = rows.withLock { $0[k] }, slot = slots[k % 2]
        let d = layer.outputs, p = layer.inputs, c = pieces[j]
        guard count > 0 else { return }
        // F_W[:, piece] += Xᵀ Y[:, piece] (the stacked factors: `FactorSlot`).
        if !c.isEmpty { Double.gemm(true, false, d, c.count, 3 * count, 1, slot.x!, d, slot.y! + c.lowerBound, p, 1, weight + c.lowerBound, p) }
        guard j == 0 else { return }
        let x = slot.x!, loss = slot.loss!
        for n in 0..<count {
            for i in 0..<d { bias[i] += x[n * d + i] }
            lossSum += loss[n]
        }
        pairs += count
        batches += (count + batchSize - 1) / batchSize
    }
}

/// The caller's `next`, called by one task at a time.
private struct BlockSource: @unchecked Sendable {
    let next: () throws -> (Matrix<Double>, Matrix<Double>)?
}

private struct UncheckedPointer: @unchecked Sendable {
    let p: UnsafeMutablePointer<Double>
}

