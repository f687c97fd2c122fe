import Failure
import TensorStream

/// Exit statuses from sysexits(3): what pipelines and cron jobs can test for.
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    case usage = 64        // EX_USAGE: the command line is wrong
    case dataError = 65    // EX_DATAERR: the input is not what it must be
    case noInput = 66      // EX_NOINPUT: an input file is missing or unreadable
    case software = 70     // EX_SOFTWARE: a bug of ours
    case osError = 71      // EX_OSERR: the system refused a resource (memory, address space)
    case cantCreate = 73   // EX_CANTCREAT: an output file cannot be created
    case ioError = 74      // EX_IOERR: reading or writing failed

    /// The one place where a kind of failure becomes an exit status.
    public init(_ kind: FailureKind) {
        switch kind {
        case .usage: self = .usage
        case .badData: self = .dataError
        case .missingInput: self = .noInput
        case .internalError: self = .software
        case .resources: self = .osError
        case .cannotCreate: self = .cantCreate
        case .io: self = .ioError
        }
    }
}

/// An error a tool reports as one line, `tool: message`; its kind decides the exit status.
public struct ToolError: KindedError, CustomStringConvertible, Sendable {
    public let kind: FailureKind
    public let message: String

    public init(_ kind: FailureKind, _ message: String) {
        self.kind = kind; self.message = message
    }

    public static func usage(_ m: String) -> ToolError { ToolError(.usage, m) }
    public static func data(_ m: String) -> ToolError { ToolError(.badData, m) }
    public static func noInput(_ m: String) -> ToolError { ToolError(.missingInput, m) }
    public static func io(_ m: String) -> ToolError { ToolError(.io, m) }
    public static func cantCreate(_ m: String) -> ToolError { ToolError(.cannotCreate, m) }
    public static func resources(_ m: String) -> ToolError { ToolError(.resources, m) }

    /// The exit status this error ends a program with.
    public var status: ExitStatus { ExitStatus(kind) }

    public var description: String { message }

    /// The kind and message of any error a tool may meet: a `KindedError` says its own kind;
    /// anything else is a bug of ours.
    public static func from(_ error: Error) -> ToolError {
        switch error {
        case let e as KindedError: return e as? ToolError ?? ToolError(e.kind, e.message)
        default:
            return ToolError(.internalError, "\(error)")
        }
    }
}

/// Runs `body`; an error it throws keeps its kind and gains `context` ("a file name: ...") at
/// the front of its message. The one way programs add context to library errors.
public func inContext<T>(_ context: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as BrokenPipe {
        throw e
    } catch {
        let e = ToolError.from(error)
        throw ToolError(e.kind, "\(context): \(e.message)")
    }
}
