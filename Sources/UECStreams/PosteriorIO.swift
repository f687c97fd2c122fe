import Failure
import LinearAlgebra
import TensorStream
import ToolKit
import UEC

/// The posterior stream written by `emb-laplace fit` and read by `emb-laplace apply`:
/// `var_weight` (D×P, f64), `var_bias` (D), `prior_precision` and `variance_scale` (0-d), and
/// for a real last layer its MAP `weight` (D×P) and `bias` (D). What it was fitted on is in
/// the metadata of `var_weight` (and `variance_scale`).
public enum PosteriorStream {
    public static func write(_ post: LaplacePosterior, to writer: TensorStreamWriter,
                             meta: [String: String], scaleMeta: [String: String]) throws {
        let d = post.layer.outputs, p = post.layer.inputs
        try writer.write(Tensor(name: "var_weight", shape: [d, p], doubles: post.weightVariance.data, meta: meta))
        try writer.write(Tensor(name: "var_bias", shape: [d], doubles: post.biasVariance))
        try writer.write(Tensor(name: "prior_precision", shape: [], doubles: [post.priorPrecision]))
        try writer.write(Tensor(name: "variance_scale", shape: [], doubles: [post.varianceScale], meta: scaleMeta))
        if let w = post.layer.weight {
            try writer.write(Tensor(name: "weight", shape: [d, p], doubles: w.data))
            try writer.write(Tensor(name: "bias", shape: [d], doubles: post.layer.bias))
        }
    }

    /// Reads and checks a posterior file; returns it with the metadata of `var_weight`.
    public static func read(_ path: String) throws -> (LaplacePosterior, [String: String]) {
        let reader = try openStream(path)
        let all = try reader.readAll()
        func get(_ n: String) throws -> Tensor {
            guard let t = all.first(where: { $0.name == n }) else {
                throw UECInputError("\(reader.label) is not a posterior from 'emb-laplace fit': no tensor '\(n)' (it has: \(all.map(\.name).joined(separator: ", ")))")
            }
            return t
        }
        let vw = try get("var_weight"), vb = try get("var_bias")
        for t in all where ["var_weight", "var_bias", "prior_precision", "variance_scale", "weight", "bias"].contains(t.name) {
            try requireFloat(t.info, in: reader.label)
        }
        guard vw.shape.count == 2, vb.shape == [vw.shape[0]] else {
            throw UECInputError("\(reader.label): var_weight is \(vw.info.signature) and var_bias \(vb.info.signature) (expected D×P and D)")
        }
        let d = vw.shape[0], p = vw.shape[1]
        let lambda = try get("prior_precision").doubles().first ?? .nan
        let scale = try get("variance_scale").doubles().first ?? .nan
        guard lambda.isFinite, lambda > 0, scale.isFinite, scale > 0 else {
            throw UECInputError("\(reader.label): prior_precision and variance_scale must be positive numbers")
        }
        let layer: LastLayer
        if let w = all.first(where: { $0.name == "weight" }) {
            let b = try get("bias")
            guard w.shape == [d, p], b.shape == [d] else {
                throw UECInputError("\(reader.label): weight is \(w.info.signature) and bias \(b.info.signature), expected \(d)×\(p) and \(d)")
            }
            layer = LastLayer(weight: Matrix(rows: d, cols: p, data: w.doubles()), bias: b.doubles())
        } else {
            guard d == p else { throw UECInputError("\(reader.label): identity posterior must be D×D, it is \(d)×\(p)") }
            layer = .identity(d)
        }
        let post = LaplacePosterior(layer: layer, weightVariance: Matrix(rows: d, cols: p, data: vw.doubles()),
                                    biasVariance: vb.doubles(), priorPrecision: lambda, varianceScale: scale)
        return (post, vw.meta)
    }
}

/// How a tool normalises probabilistic embeddings before cosine-style scoring.
public enum NormalizeMode: String, CaseIterable, Sendable {
    /// Normalise rows that are not unit vectors yet (|‖μ‖ − 1| > 1e-4), delta-method variance.
    case auto
    case delta
    case simple
    case none
}

/// Applies a normalisation mode to a block (methods.md 1.1, "Normalisation").
public func normalizeBlock(_ block: inout ProbBlock, _ mode: NormalizeMode) {
    switch mode {
    case .none: return
    case .delta: normalize(mean: &block.mean, variance: &block.variance, method: .delta)
    case .simple: normalize(mean: &block.mean, variance: &block.variance, method: .simple)
    case .auto:
        let d = block.mean.cols
        let rowsToDo = (0..<block.rows).filter { r in
            var n2: Float = 0
            for k in 0..<d { n2 += block.mean.data[r * d + k] * block.mean.data[r * d + k] }
            return abs(n2.squareRoot() - 1) > 1e-4
        }
        if rowsToDo.isEmpty { return }
        if rowsToDo.count == block.rows {
            normalize(mean: &block.mean, variance: &block.variance, method: .delta)
            return
        }
        for r in rowsToDo {
            var m = block.mean.rows(r ..< r + 1)
            var v = block.variance?.rows(r ..< r + 1)
            normalize(mean: &m, variance: &v, method: .delta)
            for k in 0..<d {
                block.mean.data[r * d + k] = m.data[k]
                if let v { block.variance!.data[r * d + k] = v.data[k] }
            }
        }
    }
}

/// Formats a number for metadata.
public func metaNumber(_ x: Double) -> String { "\(x)" }

/// Input the UEC tools cannot use (a posterior, embeddings): bad data, exit status 65 by way of
/// ToolKit's runner. A library error: it says its kind, never an exit status.
public struct UECInputError: KindedError, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var kind: FailureKind { .badData }
    public var description: String { message }
}

/// Refuses a tensor that is not floating point (integers or booleans are not embeddings), with
/// the conversion to run.
public func requireFloat(_ info: TensorInfo, in label: String) throws {
    guard info.dtype.isFloat else {
        throw UECInputError("\(label): '\(info.name)' is \(info.dtype.name), not floating point (convert it when importing: tensor from … --dtype f32)")
    }
}
