import Synchronization

/// How two threads share the classwise ECE sums of a stream of blocks (calib-metrics): the
/// thread that reads the blocks, one block ahead, adds the sums of classes 0..<split of each
/// block (`ClassificationAccumulator.addClasswise(block:labels:classes:)`), the thread that
/// scores them those of the others (`add(block:labels:firstRow:classwiseOf:)`). After each
/// block the split moves a step toward the scoring thread if it waited for the block, else
/// toward the reading one, so that neither waits long for the other.
///
/// Each class's sums must be added block after block (the same sums to the last bit, and never
/// two threads on one sum): the reading thread may give classes to the scoring thread at any
/// block, but takes one back only once the scoring thread has finished the block before, which
/// it may still be adding.
public final class ClasswiseSplit: @unchecked Sendable {
    public let classes: Int
    let step: Int
    let split: Atomic<Int>
    /// Blocks the scoring thread has finished (release: their sums are written).
    let finished = Atomic<Int>(0)
    /// The reading thread's own: blocks it has split, and the last split.
    var produced = 0, last = 0
    /// The scoring thread's own: blocks it has finished.
    var scoredBlocks = 0

    public init(classes: Int, initialSplit: Int? = nil) {
        precondition(classes >= 1)
        self.classes = classes
        step = max(1, classes / 16)
        split = Atomic(min(classes, max(0, initialSplit ?? classes * 3 / 4)))
    }

    /// On the reading thread, for its next block: it adds the classes 0..<result.
    public func reading() -> Int {
        var there = split.load(ordering: .relaxed)
        if finished.load(ordering: .acquiring) < produced { there = min(there, last) }
        produced += 1
        last = there
        return there
    }

    /// On the scoring thread, once it has added its sums (classes `there`..<classes) of the
    /// block the reading thread split at `there`; `waited`: whether it waited for the block.
    public func scored(split there: Int, waited: Bool) {
        split.store(min(classes, max(0, there + (waited ? -step : step))), ordering: .relaxed)
        scoredBlocks += 1
        finished.store(scoredBlocks, ordering: .releasing)
    }
}
