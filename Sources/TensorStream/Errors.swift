/// Why a stream could not be read or written. The message is written for people: it says
/// what is wrong and, where it can, what to do.
public enum StreamError: Error, CustomStringConvertible, Sendable {
    /// The bytes are not a tensor stream, or break its rules (damaged, forged, wrong format).
    case invalid(String)
    /// The stream ended before its end record: cut off, or its producer failed.
    case truncated(String)
    /// Reading or writing the underlying file or pipe failed.
    case io(String)
    /// The reader was given no bytes at all.
    case empty
    /// A caller asked for something the stream does not hold, or mis-used the API.
    case usage(String)

    public var description: String {
        switch self {
        case .invalid(let m): return m
        case .truncated(let m): return m
        case .io(let m): return m
        case .empty: return "empty input: expected a tensor stream"
        case .usage(let m): return m
        }
    }
}
