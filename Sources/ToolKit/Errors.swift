import Failure
import TensorStream

/// Exit statuses from sysexits(3): what pipelines and cron jobs can test for.
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    case usage = 64        // EX_USAGE: the command line is wrong
    case dataError = 65    // EX_DATAERR: the input is not what it must be
    case noInput = 66      // EX_NOINPUT: an input file is missing or unreadable
    case osError = 71      // EX_OSERR: the system refused a resource (memory)
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
        case let e as KindedError:
            let status: ExitStatus
            switch e.kind {
            case .badData: status = .dataError
            case .missingInput: status = .noInput
            case .usage: status = .usage
            case .cannotCreate: status = .cantCreate
            case .io: status = .ioError
            case .resources: status = .osError
            case .internalError: status = .software
            }
            return ToolError(status, e.message)
        default:
            return ToolError(.software, "\(error)")
        }
    }
}
