#if canImport(Glibc)
import Glibc
#endif

/// Progress on standard error, shown only when it is a terminal (never in pipelines or
/// cron jobs), redrawn at most ten times a second.
public final class Progress {
    private let label: String
    private let total: Int?
    private let enabled: Bool
    private var last: Double = 0
    private let start: Double
    private var shown = false

    public init(_ label: String, total: Int? = nil, enabled: Bool = isTerminal(2)) {
        self.label = label; self.total = total; self.enabled = enabled
        start = Progress.now()
    }

    /// Reports `done` units of work, with an optional note (a loss, an accuracy).
    public func update(_ done: Int, note: String = "") {
        guard enabled else { return }
        let t = Progress.now()
        guard t - last >= 0.1 else { return }
        last = t
        var line = "\r\(label): \(done)"
        if let total, total > 0 {
            let pct = Double(done) / Double(total) * 100
            line += "/\(total) (\(Int(pct))%)"
            if done > 0 {
                let eta = (t - start) / Double(done) * Double(total - done)
                line += " eta \(Int(eta.rounded()))s"
            }
        }
        if !note.isEmpty { line += "  \(note)" }
        writeStderr(line + "\u{1B}[K")
        shown = true
    }

    /// Clears the line.
    public func finish() {
        if enabled && shown { writeStderr("\r\u{1B}[K") }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
