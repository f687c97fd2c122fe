// How long to train: enough optimiser steps on small data (issue 13). With few labelled rows an
// epoch is one or two steps, and a fixed number of epochs leaves SVE's singular values and heads
// almost where they started (BBC, 10 rows per class: 10 epochs = 20 steps gave 86 % accuracy,
// 50 epochs = 100 steps 93 %).

/// Optimiser steps per epoch for `rows` training rows in batches of `batchSize` (the last batch
/// may be short), as `train` takes them.
public func stepsPerEpoch(rows: Int, batchSize: Int) -> Int {
    precondition(rows > 0 && batchSize > 0)
    let b = min(batchSize, rows)
    return (rows + b - 1) / b
}

/// The number of epochs that gives at least `minimumSteps` optimiser steps and at least
/// `minimumEpochs` epochs.
public func epochs(minimumSteps: Int, minimumEpochs: Int, rows: Int, batchSize: Int) -> Int {
    precondition(minimumSteps >= 0 && minimumEpochs >= 0)
    let spe = stepsPerEpoch(rows: rows, batchSize: batchSize)
    return max(minimumEpochs, (minimumSteps + spe - 1) / spe, 1)
}
