import Failure

/// What can go wrong when loading a model or encoding text: one line, with its kind.
public struct EncoderError: KindedError, CustomStringConvertible, Sendable {
    public let kind: FailureKind
    public let message: String
    public init(_ kind: FailureKind, _ message: String) { self.kind = kind; self.message = message }
    public static func data(_ m: String) -> EncoderError { EncoderError(.badData, m) }
    public static func missing(_ m: String) -> EncoderError { EncoderError(.missingInput, m) }
    public var description: String { message }
}
