import Synchronization

/// How two threads share the classwise ECE sums of a stream of blocks (calib-metrics): the
/// thread that reads the blocks, one block ahead, adds the sums of classes 0..<split of each
/// block (`ClassificationAccumulator.addClasswise(block:labels:classes:)`), the thread that
/// scores them those of the others (`add(block:labels:firstRow:classwiseOf:)`). After each
/// block the split moves toward the scoring thread if it waited for the block (by steps that
/// double while it keeps waiting), else a step toward the reading one, so that neither waits
/// long for the other.
///
/// Each class's sums must be added block after block (the same sums to the last bit, and never
/// two threads on one sum): the reading thread may give classes to the scoring thread at any
/// block, but takes one back only once the scoring thread has finished the block before, which
/// it may still be adding: in practice only after the scoring thread waited (a reading thread
/// that keeps ahead splits the next block while the scoring thread is on the one before).
public final class ClasswiseSplit: @unchecked Sendable {
    public let classes: Int
    let step: Int
    let split: Atomic<Int>
    /// Blocks the scoring thread has finished (release: their sums are written).
    let finished = Atomic<Int>(0)
    /// The reading thread's own: blocks it has split, and the last split.
    var produced = 0, last = 0
    /// The scoring thread's own: blocks it has finished, and how many of the last in a row it
    /// waited for.
    var scoredBlocks = 0, waitsInARow = 0

    /// The reading thread starts with every class: it can give classes up at any block, but
    /// take them back only when the scoring thread waits (see above).
    public init(classes: Int) {
        precondition(classes >= 1)
        self.classes = classes
        step = max(1, classes / 16)
        split = Atomic(classes)
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
    /// Waits in a row move the split by steps that double (up to 16 steps), so that a split
    /// far from the balance gets there in a few blocks.
    public func scored(split there: Int, waited: Bool) {
        waitsInARow = waited ? waitsInARow + 1 : 0
        let move = waited ? -(step << min(waitsInARow - 1, 4)) : step
        split.store(min(classes, max(0, there + move)), ordering: .relaxed)
        scoredBlocks += 1
        finished.store(scoredBlocks, ordering: .releasing)
    }
}
