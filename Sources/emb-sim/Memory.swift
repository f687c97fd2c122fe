import ArgumentParser
import Failure
import ToolKit
import UEC

/// --memory: bytes ("512M", "4G", "1073741824") or a share of the memory the process may use
/// ("25%": of the machine's memory, or of a cgroup's or ulimit -v's limit when lower; MachineMemory).
enum MemorySize: ExpressibleByArgument, Equatable {
    case bytes(Int)
    case percent(Double)

    init?(argument: String) {
        let s = argument.trimmingCharacters(in: " ")
        if s.hasSuffix("%") {
            guard let p = Double(s.dropLast()), p > 0, p <= 100 else { return nil }
            self = .percent(p)
            return
        }
        let units: [Character: Int] = ["K": 10, "M": 20, "G": 30, "T": 40]
        var digits = Substring(s), shift = 0
        if let last = s.last?.uppercased().first, let u = units[last] { shift = u; digits = digits.dropLast() }
        if digits.uppercased().hasSuffix("I") || digits.isEmpty { return nil }
        guard let v = Double(digits), v >= 0, v.isFinite, v * Double(1 << shift) < Double(Int.max / 2) else { return nil }
        self = .bytes(Int(v * Double(1 << shift)))
    }

    var defaultValueDescription: String {
        switch self {
        case .bytes(let n): return "\(n)"
        case .percent(let p): return "\(p == p.rounded() ? "\(Int(p))" : "\(p)")%"
        }
    }

    /// The budget in bytes.
    var bytes: Int {
        switch self {
        case .bytes(let n): return n
        case .percent(let p): return Int(Double(MachineMemory.available()) * p / 100)
        }
    }
}

private extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = self[...]
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}

/// How --top-k spends its memory budget: half for a block of queries (as many as it holds, at
/// least `leastQueries`, unless --query-block says), the rest, minus the per-block work buffers,
/// for the decoded corpus kept between blocks of queries. A corpus that fits is decoded once; one that does not is decoded
/// once per block of queries, and the blocks of queries are then as large as the budget allows.
struct TopKPlan {
    let budget: Int
    let perQuery: Int
    let work: Int
    let queryRows: Int
    let corpusBlock: Int
    /// Whether `corpusBlock` is the plan's choice (no --corpus-block).
    let automaticCorpusBlock: Bool

    /// The corpus blocks an automatic plan tries, the largest first: 4096 rows, unless the budget
    /// cannot hold the search's least (`least`) with them.
    static let corpusBlocks = [4096, 2048, 1024, 512, 256]

    /// `corpusBlock` nil: the largest of `corpusBlocks` whose plan the budget holds (the least,
    /// 256, when none). Before, the block was 4096 rows whatever the budget: 20,000 × 384
    /// probabilistic rows under --memory 50M held 108 MB of buffers (a warning said so).
    init(budget: Int, d: Int, k: Int, corpusBlock: Int?, variances: Bool, queryBlock: Int?) {
        func plan(_ rows: Int, automatic: Bool) -> TopKPlan {
            TopKPlan(budget: budget, d: d, k: k, fixedCorpusBlock: rows, variances: variances, queryBlock: queryBlock, automatic: automatic)
        }
        if let corpusBlock {
            self = plan(corpusBlock, automatic: false)
        } else {
            self = Self.corpusBlocks.lazy.map { plan($0, automatic: true) }.first { $0.least <= budget }
                ?? plan(Self.corpusBlocks.last!, automatic: true)
        }
    }

    private init(budget: Int, d: Int, k: Int, fixedCorpusBlock corpusBlock: Int, variances: Bool, queryBlock: Int?, automatic: Bool) {
        self.budget = budget
        self.corpusBlock = corpusBlock
        automaticCorpusBlock = automatic
        // The block three times over at its peak (the reader's buffer, the tensor cut from it,
        // the normalised matrix; mean and var), its σ² side (2d), the heaps and the results:
        // `bench/scale.sh` measured 1.6 GB of peak RSS for a block of 0.54 GB of means.
        perQuery = 4 * d * (variances ? 8 : 3) + 24 * min(k, 1 << 20) + 64
        // Score buffers of one tile of queries against one corpus block, and a decoded corpus
        // block in flight (read, normalised, prepared).
        work = BlockTopK.workBytes(queries: BlockTopK.defaultTileRows, d: d, corpusBlock: corpusBlock, variances: variances)
            + 4 * d * corpusBlock * (variances ? 5 : 2)
        let auto = max(Self.leastQueries, (budget / 2 - work) / perQuery)
        queryRows = queryBlock ?? min(1 << 20, auto)
    }

    /// The fewest queries of an automatic block, whatever the budget (--query-block may ask for
    /// fewer). A budget smaller than the work buffers gave blocks of 1 query: each GEMM then a
    /// matrix-vector product, the corpus read once per query (20,000 queries against 20,000
    /// rows under --memory 50M did not end in 20 s, against 9 s with 100M). 256 queries cost
    /// 1-13 kB each beside the buffers.
    static let leastQueries = 256

    /// The least the search holds: the work buffers and a block of `queryRows` queries.
    var least: Int { work + queryRows * perQuery }

    /// A warning when `least` is more than the budget, which the search then exceeds (before the
    /// warning, a search under `--memory 50M` peaked at 168 MB of resident memory and said
    /// nothing). Nil when the budget holds it.
    var exceedsBudget: String? {
        guard least > budget else { return nil }
        return "warning: the memory budget (\(describeBytes(budget))) is less than the least this search holds, "
            + "\(describeBytes(least)) (score buffers, a corpus block of \(corpusBlock) rows, \(queryRows) queries): "
            + (automaticCorpusBlock ? "it uses that much" : "it uses that much; a smaller --corpus-block needs less")
    }

    /// What is left for the decoded corpus beside a block of `queries` queries.
    func corpusBytes(queries: Int) -> Int {
        max(0, budget - work - queries * perQuery)
    }

    func describe(queries: Int) -> String {
        "memory \(describeBytes(budget)): corpus blocks of \(corpusBlock) rows, blocks of up to \(queryRows) queries (this one \(queries), \(describeBytes(queries * perQuery))), "
            + "\(describeBytes(corpusBytes(queries: queries))) left for the corpus"
    }
}
