import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A tool with `--threads` (`CommonOptions`): `ToolRunner` sets the `ThreadBudget` from it after
/// parsing, before `run()`.
public protocol ThreadedTool {
    var common: CommonOptions { get }
}

/// How many threads the program may keep busy, set once before the work starts. Besides the
/// linear algebra (which gets `--threads` itself), a program reads ahead and compresses its
/// output on threads of their own; with a budget of one thread they run on the calling thread,
/// so that `--threads 1` costs one core (several jobs side by side, `make -j`, `xargs -P`).
public enum ThreadBudget {
    private static let limit = Atomic<Int>(Int.max)

    /// The budget: `--threads`, or unlimited.
    public static var threads: Int { limit.load(ordering: .relaxed) }

    /// Whether helper threads (read-ahead, background compression) may run beside the work.
    public static var allowsHelpers: Bool { threads > 1 }

    /// Threads that compress a program's output at once when it has little else to do (`tensor`,
    /// whose conversions are mostly compression): the cores, up to 4, within the budget.
    public static var compressors: Int {
        min(threads, 4, cores)
    }

    /// The processors online: the default of `--threads`.
    public static var cores: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    public static func set(_ threads: Int) {
        precondition(threads >= 1)
        limit.store(threads, ordering: .relaxed)
    }

    /// The budget of a parsed command: its `--threads` when it has them.
    public static func set(from command: Any) {
        if let tool = command as? ThreadedTool { set(tool.common.threadCount) }
    }
}
