import Failure

/// The small language that names a pretrained stack (methods.md 2.2: "the pretrained stack with
/// its activations, every linear layer wrapped"). Items are separated by commas or spaces:
///
///     linear:NAME        a pretrained linear layer (its basis NAME.U, NAME.S, NAME.Vt, NAME.bias)
///     gelu | relu | tanh an activation (GELU is the exact erf form, as in BERT)
///     layernorm:NAME     LayerNorm over the features with the pretrained NAME.weight, NAME.bias
///                        (optionally ':EPS', default 1e-12 as in BERT)
///     residual( ... )    x + (the items inside)(x); may nest
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
            } else if tok == "(" {
                throw SVEError.spec("'(' must follow 'residual'")
            } else {
                throw SVEError.spec("unknown stack item '\(tok)' (expected linear:NAME, layernorm:NAME, gelu, relu, tanh, residual( ... ))")
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
        for case .linear(let n) in ops {
            if !names.insert(n).inserted { throw SVEError.spec("layer '\(n)' appears twice in the stack") }
        }
    }

    /// Names of the linear layers, in order.
    public var linearNames: [String] { ops.compactMap { if case .linear(let n) = $0 { return n } else { return nil } } }
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
