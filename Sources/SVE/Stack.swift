import Failure

/// The small language that names a pretrained stack (methods.md 2.2: "the pretrained stack with
/// its activations, every linear layer wrapped"). Items are separated by commas or spaces:
///
///     linear:NAME        a pretrained linear layer (its basis NAME.U, NAME.S, NAME.Vt, NAME.bias)
///     gelu | relu | tanh an activation (GELU is the exact erf form, as in BERT)
///     layernorm:NAME     LayerNorm over the features with the pretrained NAME.weight, NAME.bias
///                        (optionally ':EPS', default 1e-12 as in BERT)
///     residual( ... )    x + (the items inside)(x); may nest
///     attention:NAME:H   BERT's self-attention core over token rows with H heads: the pretrained
///                        linear layers NAME.query, NAME.key, NAME.value (each wrapped like
///                        linear:), softmax(Q Kᵀ/√d) V within each text (the padding mask)
///     mean-pool          the mean over each text's tokens: token rows in, one row per text out
///     bert-layer:P:H     a whole BERT encoder layer with prefix P (e.g. encoder.layer.5) and H heads:
///                        residual(attention:P.attention.self:H linear:P.attention.output.dense)
///                        layernorm:P.attention.output.LayerNorm
///                        residual(linear:P.intermediate.dense gelu linear:P.output.dense)
///                        layernorm:P.output.LayerNorm
///
/// A stack with attention is token level: its input is one row per token, and it must contain
/// mean-pool (once, outside any residual, after every attention).
///
/// BERT's feed-forward block (intermediate, GELU, output, add, LayerNorm) reads
///
///     residual(linear:L.intermediate.dense gelu linear:L.output.dense) layernorm:L.output.LayerNorm
///
/// The member heads are not part of the stack: they always sit on top.
public enum StackOp: Equatable, Sendable {
    case linear(String)
    case activation(Activation)
    case layerNorm(String, eps: Double)
    case residualBegin
    case residualEnd
    case attention(String, heads: Int)
    case meanPool
}

public enum Activation: String, Equatable, Sendable, CaseIterable {
    case gelu, relu, tanh
}

public struct StackSpec: Equatable, Sendable, CustomStringConvertible {
    public var ops: [StackOp]

    public init(ops: [StackOp]) throws {
        self.ops = ops
        try check()
    }

    /// Parses the stack language (see the type's documentation).
    public init(parsing text: String) throws {
        var ops: [StackOp] = []
        // Tokens: split at commas and blanks; '(' ends a token, ')' is a token of its own.
        var tokens: [String] = []
        var cur = ""
        for ch in text {
            switch ch {
            case ",", " ", "\n", "\t":
                if !cur.isEmpty { tokens.append(cur); cur = "" }
            case "(":
                cur.append(ch); tokens.append(cur); cur = ""
            case ")":
                if !cur.isEmpty { tokens.append(cur); cur = "" }
                tokens.append(")")
            default:
                cur.append(ch)
            }
        }
        if !cur.isEmpty { tokens.append(cur) }
        for tok in tokens {
            let lower = tok.lowercased()
            if lower == "residual(" || lower == "res(" {
                ops.append(.residualBegin)
            } else if tok == ")" {
                ops.append(.residualEnd)
            } else if let a = Activation(rawValue: lower) {
                ops.append(.activation(a))
            } else if lower.hasPrefix("linear:") {
                let name = String(tok.dropFirst(7))
                guard !name.isEmpty else { throw SVEError.spec("'linear:' needs a layer name") }
                ops.append(.linear(name))
            } else if lower.hasPrefix("layernorm:") {
                let rest = String(tok.dropFirst(10))
                var name = rest, eps = 1e-12
                if let colon = rest.lastIndex(of: ":"), let e = Double(rest[rest.index(after: colon)...]) {
                    name = String(rest[..<colon]); eps = e
                    guard e > 0 else { throw SVEError.spec("LayerNorm epsilon must be positive, got \(e)") }
                }
                guard !name.isEmpty else { throw SVEError.spec("'layernorm:' needs a name") }
                ops.append(.layerNorm(name, eps: eps))
            } else if lower == "mean-pool" || lower == "meanpool" {
                ops.append(.meanPool)
            } else if lower.hasPrefix("attention:") || lower.hasPrefix("bert-layer:") {
                let whole = lower.hasPrefix("bert-layer:")
                let rest = String(tok.drop(while: { $0 != ":" }).dropFirst())
                guard let colon = rest.lastIndex(of: ":"), let heads = Int(rest[rest.index(after: colon)...]), heads >= 1,
                      colon != rest.startIndex else {
                    throw SVEError.spec("'\(tok)' needs a name and a head count (\(whole ? "bert-layer:encoder.layer.5:12" : "attention:encoder.layer.5.attention.self:12"))")
                }
                let name = String(rest[..<colon])
                if whole {
                    ops += [.residualBegin, .attention(name + ".attention.self", heads: heads), .linear(name + ".attention.output.dense"),
                            .residualEnd, .layerNorm(name + ".attention.output.LayerNorm", eps: 1e-12),
                            .residualBegin, .linear(name + ".intermediate.dense"), .activation(.gelu), .linear(name + ".output.dense"),
                            .residualEnd, .layerNorm(name + ".output.LayerNorm", eps: 1e-12)]
                } else {
                    ops.append(.attention(name, heads: heads))
                }
            } else if tok == "(" {
                throw SVEError.spec("'(' must follow 'residual'")
            } else {
                throw SVEError.spec("unknown stack item '\(tok)' (expected linear:NAME, layernorm:NAME, gelu, relu, tanh, residual( ... ), attention:NAME:H, bert-layer:P:H, mean-pool)")
            }
        }
        try self.init(ops: ops)
    }

    private func check() throws {
        if ops.isEmpty { throw SVEError.spec("the stack is empty") }
        var depth = 0
        for op in ops {
            if op == .residualBegin { depth += 1 }
            if op == .residualEnd {
                depth -= 1
                if depth < 0 { throw SVEError.spec("')' without 'residual('") }
            }
        }
        if depth != 0 { throw SVEError.spec("'residual(' is not closed") }
        var names = Set<String>()
        for n in linearNames {
            if !names.insert(n).inserted { throw SVEError.spec("layer '\(n)' appears twice in the stack") }
        }
        // Token level: mean-pool once, at the top level, after every attention.
        depth = 0
        var pooled = false
        for op in ops {
            switch op {
            case .residualBegin: depth += 1
            case .residualEnd: depth -= 1
            case .meanPool:
                if pooled { throw SVEError.spec("mean-pool appears twice in the stack") }
                if depth > 0 { throw SVEError.spec("mean-pool cannot sit inside a residual block") }
                pooled = true
            case .attention(let n, _):
                if pooled { throw SVEError.spec("attention '\(n)' comes after mean-pool: attention needs token rows") }
            default: break
            }
        }
        if ops.contains(where: { if case .attention = $0 { return true } else { return false } }) && !pooled {
            throw SVEError.spec("a stack with attention needs mean-pool after it (one row per text for the heads)")
        }
    }

    /// One row per token in, pooled inside the stack.
    public var tokenLevel: Bool { ops.contains(.meanPool) }

    /// Names of the linear layers, in order (an attention's query, key and value included).
    public var linearNames: [String] {
        ops.flatMap { op -> [String] in
            switch op {
            case .linear(let n): return [n]
            case .attention(let n, _): return [n + ".query", n + ".key", n + ".value"]
            default: return []
            }
        }
    }
    /// Names of the LayerNorms, in order.
    public var layerNormNames: [String] { ops.compactMap { if case .layerNorm(let n, _) = $0 { return n } else { return nil } } }

    /// The canonical text form (parses back to the same spec).
    public var description: String {
        var parts: [String] = []
        for op in ops {
            switch op {
            case .linear(let n): parts.append("linear:\(n)")
            case .activation(let a): parts.append(a.rawValue)
            case .layerNorm(let n, let eps): parts.append(eps == 1e-12 ? "layernorm:\(n)" : "layernorm:\(n):\(eps)")
            case .residualBegin: parts.append("residual(")
            case .residualEnd: parts.append(")")
            case .attention(let n, let h): parts.append("attention:\(n):\(h)")
            case .meanPool: parts.append("mean-pool")
            }
        }
        var text = ""
        for (i, p) in parts.enumerated() {
            if i > 0 && !parts[i - 1].hasSuffix("(") && p != ")" { text += " " }
            text += p
        }
        return text
    }
}

/// Errors of the SVE library, with messages meant for users. Every case is bad input (a stack,
/// basis, model or data that does not fit): kind `.badData`.
public enum SVEError: KindedError, CustomStringConvertible, Sendable {
    case spec(String)
    case shape(String)
    case data(String)
    case numeric(String)

    public var description: String {
        switch self {
        case .spec(let m), .shape(let m), .data(let m), .numeric(let m): return m
        }
    }

    public var kind: FailureKind { .badData }
    public var message: String { description }
}

/// Whole transformer layers A…B of a BERT-family checkpoint, whose weights are named
/// encoder.layer.N.… (optionally under a prefix such as "bert.").
public struct LayerRange: Sendable, Equatable {
    public let range: ClosedRange<Int>
    /// Metadata key of a basis or model: the model's position table length (the longest text).
    public static let maxPositionsKey = "sve.max_positions"

    public init(_ range: ClosedRange<Int>) { self.range = range }

    /// "A-B" or "A" (layers from 0).
    public init?(parsing text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2, let a = Int(parts[0]), let b = Int(parts.last!), a >= 0, a <= b else { return nil }
        range = a...b
    }

    /// N for a name containing "encoder.layer.N.".
    public static func layerIndex(of name: String) -> Int? {
        guard let r = name.firstRange(of: "encoder.layer.") else { return nil }
        return Int(name[r.upperBound...].prefix { $0.isNumber })
    }

    /// The token-level stack over these layers (each a bert-layer item), then mean-pool.
    public func stack(heads: Int, prefix: String = "") throws -> StackSpec {
        try StackSpec(parsing: range.map { "bert-layer:\(prefix)encoder.layer.\($0):\(heads)" }.joined(separator: " ") + " mean-pool")
    }
}
