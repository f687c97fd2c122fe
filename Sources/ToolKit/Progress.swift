#if canImport(Glibc)
import Glibc
#endif

/// Progress on standard error, shown only when it is a terminal (never in pipelines or
/// cron jobs), redrawn at most ten times a second.
public final class Progress {
    private let label: String
    private let unit: String
    private let total: Int?
    private let enabled: Bool
    private var last: Double = 0
    private let start: Double
    private var shown = false

    /// `unit` names what is counted ("rows", "steps"), so that "57/60" says 57 of what.
    public init(_ label: String, total: Int? = nil, unit: String = "rows", enabled: Bool = isTerminal(2)) {
        self.label = label; self.unit = unit; self.total = total; self.enabled = enabled
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
            line += "/\(total) \(unit) (\(Int(pct))%)"
            if done > 0 {
                let eta = (t - start) / Double(done) * Double(total - done)
                line += " eta \(Int(eta.rounded()))s"
            }
        } else {
            line += " \(unit)"
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
