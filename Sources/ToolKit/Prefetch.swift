import Dispatch
import Failure

/// Runs `produce` on a thread of its own, one item ahead of the consumer: the next block of a
/// stream is read and decompressed while the program works on the current one (emb-sim's corpus
/// blocks, calib-metrics' rows). `next()` hands the items over in order, and an error where
/// `produce` threw it (the producer then stops). Without a thread (none could be started, or
/// the `ThreadBudget` is one thread), `produce` runs inline.
public final class Prefetcher<T>: @unchecked Sendable {
    private let produce: () throws -> T?
    private var item: Result<T?, Error>?
    // Both start at 0: libdispatch traps when a semaphore dies below its initial value.
    private let filled = DispatchSemaphore(value: 0), empty = DispatchSemaphore(value: 0)

    public init(_ produce: @escaping () throws -> T?) {
        self.produce = produce
        empty.signal()  // room for one item
        inline = !ThreadBudget.allowsHelpers || !startDetachedThread { [self] in loop() }
    }

    private var inline = false

    private func loop() {
        while true {
            empty.wait()
            let r = Result { try produce() }
            item = r
            filled.signal()
            if case .success(nil) = r { return }
            if case .failure = r { return }
        }
    }

    /// The next item, nil at the end.
    public func next() throws -> T? {
        if inline { return try produce() }
        filled.wait()
        let r = item!
        item = nil
        if case .success(.some) = r { empty.signal() }
        return try r.get()
    }
}
