import Foundation

/// BERT's tokenizer as the Hugging Face `tokenizers` library runs it (BertNormalizer,
/// BertPreTokenizer, WordPiece, the [CLS] … [SEP] template):
///  1. special tokens ([CLS], [SEP], [MASK], …) found verbatim in the text stay whole;
///  2. normalisation of the rest: characters U+0000, U+FFFD and control/format/unassigned/private
///     characters removed, whitespace made a space, CJK ideographs surrounded by spaces, accents
///     stripped (NFD, then nonspacing marks removed) and lower-casing when the model says so;
///  3. words: split at whitespace (dropped) and at punctuation (each mark a word of its own);
///  4. WordPiece: greedy longest match from the left, continuations prefixed by "##"; a word with
///     no full match, or longer than `maxInputCharsPerWord` characters, is [UNK];
///  5. [CLS] tokens [SEP], truncated to `maxLength` in all.
public struct WordPieceTokenizer: Sendable {
    public struct Options: Sendable, Equatable {
        public var lowercase = true
        /// nil: strip accents when lower-casing (BERT's default).
        public var stripAccents: Bool? = nil
        public var cleanText = true
        public var handleChineseChars = true
        public var continuingSubwordPrefix = "##"
        public var maxInputCharsPerWord = 100
        public init() {}
    }

    public struct AddedToken: Sendable, Equatable {
        public var content: String
        public var id: Int32
        public var lstrip = false
        public var rstrip = false
        public init(content: String, id: Int32, lstrip: Bool = false, rstrip: Bool = false) {
            self.content = content; self.id = id; self.lstrip = lstrip; self.rstrip = rstrip
        }
    }

    /// Vocabulary keyed by UTF-8 bytes: Swift's String equality is canonical equivalence, which
    /// would merge entries that `tokenizers` keeps apart (é precomposed and decomposed).
    let vocab: [[UInt8]: Int32]
    public let options: Options
    public let unkID: Int32
    public let clsID: Int32
    public let sepID: Int32
    public let padID: Int32
    /// Longest encoding, [CLS] and [SEP] included.
    public var maxLength: Int
    let added: [(bytes: [UInt8], token: AddedToken)]
    let prefix: [UInt8]

    public var vocabularySize: Int { vocab.count }

    /// - Parameters: `vocab` maps each token to its id; the specials must be in it.
    public init(vocab: [String: Int32], options: Options = Options(), unk: String = "[UNK]", cls: String = "[CLS]",
                sep: String = "[SEP]", pad: String = "[PAD]", addedTokens: [AddedToken] = [], maxLength: Int = 512) throws {
        var v: [[UInt8]: Int32] = [:]
        v.reserveCapacity(vocab.count)
        for (k, id) in vocab { v[Array(k.utf8)] = id }
        self.vocab = v
        func special(_ s: String) throws -> Int32 {
            if let id = v[Array(s.utf8)] { return id }
            if let a = addedTokens.first(where: { $0.content.utf8.elementsEqual(s.utf8) }) { return a.id }
            throw EncoderError.data("the vocabulary has no \(s) token (a BERT WordPiece vocabulary needs [UNK], [CLS] and [SEP])")
        }
        unkID = try special(unk); clsID = try special(cls); sepID = try special(sep)
        padID = (try? special(pad)) ?? 0
        guard maxLength >= 2 else { throw EncoderError.data("maximum sequence length \(maxLength) leaves no room for [CLS] and [SEP]") }
        self.options = options
        self.maxLength = maxLength
        // Longest first, so that a special token that contains another one wins.
        self.added = addedTokens.filter { !$0.content.isEmpty }
            .map { (Array($0.content.utf8), $0) }
            .sorted { $0.0.count > $1.0.count }
        self.prefix = Array(options.continuingSubwordPrefix.utf8)
    }

    public func id(of token: String) -> Int32? { vocab[Array(token.utf8)] }

    /// The ids of one text: [CLS] … [SEP], truncated to maxLength; `count` is the length before
    /// truncation (specials included).
    public func encode(_ text: String) -> (ids: [Int32], count: Int) {
        var ids: [Int32] = [clsID]
        for piece in splitAdded(text) {
            switch piece {
            case .special(let id): ids.append(id)
            case .text(let s): tokenizeText(s, into: &ids)
            }
        }
        ids.append(sepID)
        let count = ids.count
        if ids.count > maxLength {
            ids.removeSubrange((maxLength - 1) ..< (ids.count - 1))
        }
        return (ids, count)
    }

    /// The WordPiece tokens of a text, without specials or truncation (for inspection and tests).
    public func tokens(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for piece in splitAdded(text) {
            switch piece {
            case .special(let id): ids.append(id)
            case .text(let s): tokenizeText(s, into: &ids)
            }
        }
        return ids
    }

    enum Piece { case text(String), special(Int32) }

    /// Splits the raw text at verbatim occurrences of the added (special) tokens.
    func splitAdded(_ text: String) -> [Piece] {
        if added.isEmpty { return [.text(text)] }
        let bytes = Array(text.utf8)
        var pieces: [Piece] = []
        var start = 0, i = 0
        func emitText(_ a: Int, _ b: Int) {
            if b > a { pieces.append(.text(String(decoding: bytes[a..<b], as: UTF8.self))) }
        }
        while i < bytes.count {
            var matched: (len: Int, tok: AddedToken)? = nil
            for (b, t) in added where b.count <= bytes.count - i {
                if bytes[i] == b[0] && bytes[i ..< i + b.count].elementsEqual(b) { matched = (b.count, t); break }
            }
            guard let m = matched else { i += 1; continue }
            var textEnd = i
            if m.tok.lstrip { while textEnd > start && isASCIISpaceByte(bytes[textEnd - 1]) { textEnd -= 1 } }
            emitText(start, textEnd)
            pieces.append(.special(m.tok.id))
            i += m.len
            if m.tok.rstrip { while i < bytes.count && isASCIISpaceByte(bytes[i]) { i += 1 } }
            start = i
        }
        emitText(start, bytes.count)
        return pieces
    }

    func isASCIISpaceByte(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    /// Normalise, split into words, WordPiece each word.
    func tokenizeText(_ text: String, into ids: inout [Int32]) {
        let scalars = normalize(text)
        var word: [Unicode.Scalar] = []
        func flush() {
            if !word.isEmpty { wordPiece(word, into: &ids); word.removeAll(keepingCapacity: true) }
        }
        for s in scalars {
            if s.properties.isWhitespace {
                flush()
            } else if isPunctuation(s) {
                flush()
                wordPiece([s], into: &ids)
            } else {
                word.append(s)
            }
        }
        flush()
    }

    /// BertNormalizer.
    func normalize(_ text: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for s in text.unicodeScalars {
            if options.cleanText {
                if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
                if isWhitespace(s) { out.append(" "); continue }
            }
            if options.handleChineseChars && isChineseChar(s) {
                out.append(" "); out.append(s); out.append(" ")
            } else {
                out.append(s)
            }
        }
        if options.stripAccents ?? options.lowercase {
            var s = String.UnicodeScalarView()
            s.append(contentsOf: out)
            let nfd = String(s).decomposedStringWithCanonicalMapping
            out = nfd.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if options.lowercase {
            var lower: [Unicode.Scalar] = []
            lower.reserveCapacity(out.count)
            for s in out {
                if s.isASCII {
                    lower.append(s.value >= 65 && s.value <= 90 ? Unicode.Scalar(s.value + 32)! : s)
                } else {
                    lower.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                }
            }
            out = lower
        }
        return out
    }

    /// Greedy longest-match-first WordPiece of one word.
    func wordPiece(_ word: [Unicode.Scalar], into ids: inout [Int32]) {
        if word.count > options.maxInputCharsPerWord { ids.append(unkID); return }
        // UTF-8 of the word and where each character starts.
        var bytes: [UInt8] = []
        var starts: [Int] = []
        for s in word {
            starts.append(bytes.count)
            bytes.append(contentsOf: String(s).utf8)
        }
        starts.append(bytes.count)
        let mark = ids.count
        var start = 0
        var key: [UInt8] = []
        while start < word.count {
            var end = word.count
            var found: Int32? = nil
            while start < end {
                key.removeAll(keepingCapacity: true)
                if start > 0 { key.append(contentsOf: prefix) }
                key.append(contentsOf: bytes[starts[start] ..< starts[end]])
                if let id = vocab[key] { found = id; break }
                end -= 1
            }
            guard let id = found else {
                ids.removeSubrange(mark...)
                ids.append(unkID)
                return
            }
            ids.append(id)
            start = end
        }
    }
}

/// `tokenizers`' is_whitespace: tab, newline, carriage return, or Unicode White_Space.
@inline(__always) func isWhitespace(_ s: Unicode.Scalar) -> Bool {
    s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
}

/// `tokenizers`' is_control: general category C (Cc, Cf, Cn, Co, Cs) except tab, newline, carriage return.
@inline(__always) func isControl(_ s: Unicode.Scalar) -> Bool {
    if s == "\t" || s == "\n" || s == "\r" { return false }
    switch s.properties.generalCategory {
    case .control, .format, .unassigned, .privateUse, .surrogate: return true
    default: return false
    }
}

/// ASCII punctuation or Unicode general category P.
@inline(__always) func isPunctuation(_ s: Unicode.Scalar) -> Bool {
    let v = s.value
    if v < 128 {
        return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
    }
    switch s.properties.generalCategory {
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
         .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
    default: return false
    }
}

/// The CJK Unified Ideographs blocks BERT treats as words of their own.
@inline(__always) func isChineseChar(_ s: Unicode.Scalar) -> Bool {
    switch s.value {
    case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
         0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
    default: return false
    }
}

extension WordPieceTokenizer {
    /// The largest id the tokenizer can produce.
    public var largestID: Int32 {
        max(vocab.values.max() ?? 0, added.map(\.token.id).max() ?? 0)
    }
}
