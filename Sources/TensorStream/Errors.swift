import Failure

/// The rules of docs/tensor-stream.md ("What a reader must refuse") that a stream can break,
/// one case each. The raw value names the rule in the conformance corpus
/// (tests/conformance/invalid/<rule>.tsr) and in the Python reader.
public enum StreamRule: String, CaseIterable, Sendable {
    /// An empty input is not a stream.
    case empty = "empty"
    /// The input does not start with a zstd frame.
    case notZstd = "not-zstd"
    /// A zstd frame whose checksum or structure is damaged.
    case damagedFrame = "damaged-frame"
    /// A frame that does not hold exactly one record.
    case frameRecord = "frame-record"
    /// A record longer than 2^30 bytes.
    case recordSize = "record-size"
    /// An unknown record tag.
    case unknownTag = "unknown-tag"
    /// A segment whose first record is not START.
    case noStart = "no-start"
    /// START inside a segment (a stream was cut off and another follows).
    case startInSegment = "start-in-segment"
    /// A HEAD out of id sequence.
    case headId = "head-id"
    /// More tensors in one segment than a reader keeps (2^20).
    case segmentTensors = "segment-tensors"
    /// A HEAD with an unknown dtype code.
    case headDtype = "head-dtype"
    /// A HEAD with a rank over 8.
    case headRank = "head-rank"
    /// Non-zero reserved byte, unknown flag bits, or shape[0] set while not declared.
    case headReserved = "head-reserved"
    /// A name of 0 or more than 1024 bytes.
    case headName = "head-name"
    /// A name declared twice in one segment.
    case headDuplicate = "head-duplicate"
    /// More than 4096 metadata entries.
    case headMetaCount = "head-meta-count"
    /// A name, key or value that is not UTF-8.
    case headUTF8 = "head-utf8"
    /// A HEAD body that ends before its fields or has trailing bytes.
    case headLength = "head-length"
    /// A row larger than 2^30 − 16 bytes, or an impossible dimension.
    case rowSize = "row-size"
    /// A tensor continued from an earlier segment with another dtype or row shape, or a 0-d one.
    case continuation = "continuation"
    /// DATA for an id no HEAD of the segment declared.
    case dataId = "data-id"
    /// DATA with an unknown filter.
    case dataFilter = "data-filter"
    /// DATA with non-zero reserved bytes.
    case dataReserved = "data-reserved"
    /// A DATA payload whose length is not rows × row_bytes (or a body shorter than its prefix).
    case dataLength = "data-length"
    /// More rows than the HEAD declared.
    case dataRows = "data-rows"
    /// A 0-d tensor with other than one chunk of one row.
    case scalarRows = "scalar-rows"
    /// An ENDS whose tensor count (or length) disagrees with the segment.
    case endsCount = "ends-count"
    /// An ENDS whose row totals disagree with the rows that arrived or were declared.
    case endsRows = "ends-rows"
    /// The input ended inside a segment or a frame.
    case cutOff = "cut-off"
}

/// Why a stream could not be read or written. The message is written for people: it says
/// what is wrong and, where it can, what to do.
public enum StreamError: KindedError, CustomStringConvertible, Sendable {
    /// The bytes break rule `rule` of the format (damaged, forged, cut off, another format).
    case broken(StreamRule, String)
    /// The stream is valid but its content is not what the caller needs.
    case invalid(String)
    /// A file could not be opened.
    case cannotOpen(String)
    /// Reading or writing the underlying file or pipe failed.
    case io(String)
    /// Memory for a record could not be had.
    case resources(String)
    /// A caller asked for something the stream does not hold, or mis-used the API.
    case usage(String)

    /// The rule broken, for `.broken`.
    public var rule: StreamRule? {
        if case .broken(let r, _) = self { return r }
        return nil
    }

    public var message: String {
        switch self {
        case .broken(_, let m), .invalid(let m), .cannotOpen(let m), .io(let m), .resources(let m), .usage(let m):
            return m
        }
    }

    public var kind: FailureKind {
        switch self {
        case .broken, .invalid, .usage: return .badData
        case .cannotOpen: return .missingInput
        case .io: return .io
        case .resources: return .resources
        }
    }

    public var description: String { message }
}
