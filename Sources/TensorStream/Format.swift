// Constants of the tensor-stream format, version 1. The normative description is
// docs/tensor-stream.md (and the tensor-stream(5) man page made from it).

public enum Format {
    /// Record tags, four ASCII bytes each, stored as little-endian u32.
    public static let tagStart = tag("TSR1")
    public static let tagHead = tag("HEAD")
    public static let tagData = tag("DATA")
    public static let tagEnd = tag("ENDS")

    /// Bytes of the record prefix: tag (u32) + body length (u32).
    public static let recordPrefix = 8
    /// Bytes of a DATA body before the payload: id (u32), filter (u8), 3 reserved, rows (u64).
    public static let dataPrefix = 16

    /// The largest record body a reader accepts (1 GiB). Writers stay far below it.
    public static let maxRecordBody = 1 << 30
    /// Writers cut tensors into DATA records of about this many payload bytes by default. A
    /// reader holds a record several times over (compressed, decoded, unshuffled, kept for a
    /// block), each copy in memory it touches for the first time: 1 MiB records cost calib-metrics
    /// 42 MB of peak memory at 10^6 x 10 instead of 72 with 4 MiB, decode in 0.92x the CPU time,
    /// and compress to within 0.1 % of the size on float data.
    public static let defaultChunkBytes = 1 << 20
    public static let maxRank = 8
    public static let maxNameBytes = 1024
    public static let maxMetaEntries = 4096

    /// Filters for DATA payloads.
    public static let filterNone: UInt8 = 0
    public static let filterShuffle: UInt8 = 1

    static func tag(_ s: StaticString) -> UInt32 {
        precondition(s.utf8CodeUnitCount == 4)
        let p = s.utf8Start
        return UInt32(p[0]) | UInt32(p[1]) << 8 | UInt32(p[2]) << 16 | UInt32(p[3]) << 24
    }

    static func tagName(_ t: UInt32) -> String {
        let bytes = (0..<4).map { UInt8((t >> (8 * $0)) & 0xFF) }
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return "0x" + String(t, radix: 16)
    }
}
