import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Tasks 0, 1, 2, … on a few threads, taken in order: a thread that is free takes the next task
/// not yet taken. A task may wait for an earlier one (`wait(for:)`), never for a later one, so
/// every wait ends: the task waited for has been taken already, by a thread that runs it or
/// waits for a task earlier still. With one thread the tasks run in order and never wait.
///
/// A pipeline whose stages overlap is written as such a sequence: the stages of consecutive
/// blocks interleaved in the order they should start (read block k + 1, multiply block k, …),
/// each waiting for what it needs, so that a thread that would idle at the end of one stage
/// takes the next block's work instead.
public final class TaskSequence: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Tasks done, by index (guarded by `lock`).
    private var done: [Bool] = []
    private let taken = Atomic<Int>(0)

    private init() {
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed); pthread_mutex_destroy(lock)
        changed.deallocate(); lock.deallocate()
    }

    /// Runs tasks 0, 1, 2, … on `threads` threads (on the calling thread when one): `body(i,
    /// tasks)` runs task i and returns true, or returns false when there is no task i: the thread
    /// that took it then stops, and `body` must return false for every later index too. Returns
    /// when every thread has stopped.
    public static func run(threads: Int, _ body: (_ task: Int, _ tasks: TaskSequence) -> Bool) {
        let tasks = TaskSequence()
        withoutActuallyEscaping(body) { body in
            let run = SequenceBody(body: body)
            DispatchQueue.concurrentPerform(iterations: max(1, threads)) { _ in
                while true {
                    let i = tasks.taken.wrappingAdd(1, ordering: .relaxed).oldValue
                    let more = run.body(i, tasks)
                    tasks.finish(i)
                    if !more { break }
                }
            }
        }
    }

    /// Returns once task `j` is done (at once for j < 0). Only for a task earlier than the caller's.
    public func wait(for j: Int) {
        guard j >= 0 else { return }
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        while !(j < done.count && done[j]) { pthread_cond_wait(changed, lock) }
    }

    private func finish(_ i: Int) {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        if done.count <= i { done += [Bool](repeating: false, count: i + 1 - done.count) }
        done[i] = true
        pthread_cond_broadcast(changed)
    }
}

private struct SequenceBody: @unchecked Sendable {
    let body: (Int, TaskSequence) -> Bool
}
