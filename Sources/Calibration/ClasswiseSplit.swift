import Synchronization

/// How two threads share the classwise ECE sums of a stream of blocks (calib-metrics): the
/// thread that reads the blocks adds the sums of classes 0..<split of each block
/// (`ClassificationAccumulator.addClasswise(block:labels:classes:)`), the thread that scores
/// them those of the others (`add(block:labels:firstRow:classwiseOf:)`).
///
/// Each class's sums must be added block after block (the same sums to the last bit) and never
/// by both threads at once; the caller orders the work so that any split keeps that true:
/// the reading thread adds its share of a block once the scoring thread has taken the block
/// (it has then finished the block before), and hands over the next block only after that.
///
/// The split balances the two threads' work as they report it: the reading thread the time it
/// took to read a block and to add its share, the scoring thread the time it was busy with a
/// block. From these, per row: d to read, s to score (without classwise sums), c to add one
/// class's sums; the reading thread's share d + x·c equals the scoring thread's s + (K − x)·c
/// at x = (K + (s − d) / c) / 2. Recent blocks weigh more (each report takes a quarter off the
/// weight of those before), so that a slow start (pages touched for the first time) is soon
/// forgotten. Half the classes each (the odd one to the reading thread, which then learns c)
/// until both have reported.
public final class ClasswiseSplit: @unchecked Sendable {
    public let classes: Int
    /// The reading thread's own decayed sums: seconds reading, rows read, seconds adding
    /// classwise sums, and classes × rows added.
    var readSeconds = 0.0, readRows = 0.0, classwiseSeconds = 0.0, classRows = 0.0
    /// The scoring thread's decayed sums: seconds busy, rows, classes × rows of classwise sums.
    let scoring = Mutex<(seconds: Double, rows: Double, classRows: Double)>((0, 0, 0))
    static let decay = 0.75

    public init(classes: Int) {
        precondition(classes >= 1)
        self.classes = classes
    }

    /// On the reading thread, for its next block: it adds the classes 0..<result.
    public func reading() -> Int { balance() ?? (classes + 1) / 2 }

    /// On the reading thread: the seconds it took to read a block of `rows` rows.
    public func read(seconds: Double, rows: Int) {
        readSeconds = readSeconds * Self.decay + seconds
        readRows = readRows * Self.decay + Double(rows)
    }

    /// On the reading thread: the seconds it took to add the sums of `classes` classes of a
    /// block of `rows` rows.
    public func added(seconds: Double, classes there: Int, rows: Int) {
        guard there > 0 && rows > 0 else { return }
        classwiseSeconds = classwiseSeconds * Self.decay + seconds
        classRows = classRows * Self.decay + Double(there * rows)
    }

    /// On the scoring thread, once it has scored a block of `rows` rows and added its sums
    /// (classes `there`..<classes), busy `seconds` with it.
    public func scored(split there: Int, rows: Int, seconds: Double) {
        scoring.withLock { s in
            s = (s.seconds * Self.decay + seconds, s.rows * Self.decay + Double(rows),
                 s.classRows * Self.decay + Double((classes - there) * rows))
        }
    }

    /// The split that balances the costs reported so far; nil before both threads have reported.
    func balance() -> Int? {
        let s = scoring.withLock { $0 }
        guard s.rows > 0, readRows > 0, classRows > 0, classwiseSeconds > 0 else { return nil }
        let c = classwiseSeconds / classRows, d = readSeconds / readRows
        let score = max(0, (s.seconds - c * s.classRows) / s.rows)
        let x = (Double(classes) + (score - d) / c) / 2
        return Int(min(Double(classes), max(0, x)).rounded())
    }
}
