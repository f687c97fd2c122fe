/// What kind of failure an error is. Libraries say the kind; ToolKit's runner alone maps a kind to a
/// sysexits(3) status, so that no library knows about exit codes.
public enum FailureKind: Sendable, Equatable {
    /// The input is not what it must be (EX_DATAERR, 65).
    case badData
    /// An input file is missing or unreadable (EX_NOINPUT, 66).
    case missingInput
    /// The command line is wrong (EX_USAGE, 64).
    case usage
    /// An output file cannot be created (EX_CANTCREAT, 73).
    case cannotCreate
    /// Reading or writing failed (EX_IOERR, 74).
    case io
    /// The system refused a resource: memory, threads (EX_OSERR, 71).
    case resources
    /// A bug of ours (EX_SOFTWARE, 70).
    case internalError
}

/// An error that knows what kind of failure it is and says it in one line.
public protocol KindedError: Error {
    var kind: FailureKind { get }
    /// One line, without the program's name: "what went wrong (what to do)".
    var message: String { get }
}
