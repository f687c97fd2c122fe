import TensorStream

/// Exit statuses from sysexits(3): what pipelines and cron jobs can test for.
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    case usage = 64        // EX_USAGE: the command line is wrong
    case dataError = 65    // EX_DATAERR: the input is not what it must be
    case noInput = 66      // EX_NOINPUT: an input file is missing or unreadable
    case software = 70     // EX_SOFTWARE: a bug of ours
    case cantCreate = 73   // EX_CANTCREAT: an output file cannot be created
    case ioError = 74      // EX_IOERR: reading or writing failed
}

/// An error a tool reports as one line, `tool: message`, with its exit status.
public struct ToolError: Error, CustomStringConvertible, Sendable {
    public let status: ExitStatus
    public let message: String

    public init(_ status: ExitStatus, _ message: String) {
        self.status = status; self.message = message
    }

    public static func usage(_ m: String) -> ToolError { ToolError(.usage, m) }
    public static func data(_ m: String) -> ToolError { ToolError(.dataError, m) }
    public static func noInput(_ m: String) -> ToolError { ToolError(.noInput, m) }
    public static func io(_ m: String) -> ToolError { ToolError(.ioError, m) }

    public var description: String { message }

    /// The status and message for any error a tool may meet.
    public static func from(_ error: Error) -> ToolError {
        switch error {
        case let e as ToolError: return e
        case let e as StreamError:
            switch e {
            case .invalid(let m), .truncated(let m): return .data(m)
            case .empty: return .data("empty input: expected a tensor stream")
            case .io(let m): return m.hasPrefix("cannot open") ? .noInput(m) : .io(m)
            case .usage(let m): return .data(m)
            }
        default:
            return ToolError(.software, "\(error)")
        }
    }
}
