import LinearAlgebra

/// A named array, the library's neutral form of a tensor (the executables map it to a stream).
public struct NamedArray: Sendable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
    public init(name: String, shape: [Int], values: [Float]) { self.name = name; self.shape = shape; self.values = values }
}

/// Metadata keys of a trained model.
public enum ModelMeta {
    public static let format = "sve.format"
    public static let stack = "sve.stack"
    public static let method = "sve.method"
    public static let members = "sve.members"
    public static let classes = "sve.classes"
    public static let inputDim = "sve.input_dim"
    public static let temperature = "temperature"
}

extension EnsembleNetwork {
    /// The model as arrays: `temperature` (0-d) first, then every parameter once — the shared
    /// basis (`L.U`, `L.Vt`, frozen LayerNorms) once, per-member parameters stacked on a first
    /// axis of length M (`L.s`, `L.b`, `head.weight`, `head.bias`; a deep ensemble's
    /// `L.weight`, `L.bias`). The metadata describes the stack, for `EnsembleNetwork.load`.
    public func archive(temperature: Double) -> (arrays: [NamedArray], meta: [String: String]) {
        var arrays = [NamedArray(name: ModelMeta.temperature, shape: [], values: [Float(temperature)])]
        for p in parameters {
            arrays.append(NamedArray(name: p.name, shape: p.shape, values: asFloats(p.value)))
        }
        let meta = [ModelMeta.format: "1", ModelMeta.stack: spec.description, ModelMeta.method: method.rawValue,
                    ModelMeta.members: "\(members)", ModelMeta.classes: "\(classes)", ModelMeta.inputDim: "\(inputDim)"]
        return (arrays, meta)
    }

    /// Rebuilds a trained network from `archive`'s output; returns it with its temperature.
    public static func load(arrays: [NamedArray], meta: [String: String]) throws -> (network: EnsembleNetwork<T>, temperature: Double) {
        func need(_ k: String) throws -> String {
            guard let v = meta[k] else { throw SVEError.data("not an sve-train model: metadata '\(k)' is missing") }
            return v
        }
        guard let method = EnsembleMethod(rawValue: try need(ModelMeta.method)) else {
            throw SVEError.data("model: unknown method '\(meta[ModelMeta.method] ?? "")'")
        }
        let spec = try StackSpec(parsing: try need(ModelMeta.stack))
        guard let members = Int(try need(ModelMeta.members)), members >= 1,
              let classes = Int(try need(ModelMeta.classes)), classes >= 2,
              let inputDim = Int(try need(ModelMeta.inputDim)), inputDim >= 1 else {
            throw SVEError.data("model: malformed members, classes or input width in the metadata")
        }
        var byName: [String: NamedArray] = [:]
        for a in arrays { byName[a.name] = a }
        func array(_ n: String) throws -> NamedArray {
            guard let a = byName[n] else { throw SVEError.data("model has no tensor '\(n)'") }
            return a
        }
        var shapes: [String: (out: Int, in: Int, rank: Int)] = [:]
        for l in spec.linearNames {
            switch method {
            case .sve:
                let u = try array("\(l).U"), vt = try array("\(l).Vt")
                guard u.shape.count == 2, vt.shape.count == 2, u.shape[1] == vt.shape[0] else {
                    throw SVEError.shape("model: '\(l).U' \(u.shape) and '\(l).Vt' \(vt.shape) do not fit")
                }
                shapes[l] = (u.shape[0], vt.shape[1], u.shape[1])
            case .deepEnsemble:
                let w = try array("\(l).weight")
                guard w.shape.count == 3 else { throw SVEError.shape("model: '\(l).weight' has shape \(w.shape), expected M×out×in") }
                shapes[l] = (w.shape[1], w.shape[2], min(w.shape[1], w.shape[2]))
            }
        }
        var lnd: [String: Int] = [:]
        for n in spec.layerNormNames {
            let w = try array("\(n).weight")
            guard let d = w.shape.last else { throw SVEError.shape("model: '\(n).weight' is 0-d") }
            lnd[n] = d
        }
        let net = try EnsembleNetwork<T>(spec: spec, method: method, members: members, inputDim: inputDim,
                                         classes: classes, shapes: shapes, layerNormDims: lnd)
        for p in net.parameters {
            let a = try array(p.name)
            guard a.shape == p.shape, a.values.count == p.count else {
                throw SVEError.shape("model: '\(p.name)' has shape \(a.shape), expected \(p.shape)")
            }
            p.value = converted(a.values)
        }
        let t = try array(ModelMeta.temperature)
        guard let temp = t.values.first, temp.isFinite, temp > 0 else { throw SVEError.data("model: temperature must be a positive number") }
        return (net, Double(temp))
    }
}

/// Reads layer bases from arrays named `L.U`, `L.S`, `L.Vt`, `L.bias` (sve-decompose's output).
public func layerBases(from arrays: [NamedArray], names: [String]) throws -> [String: LayerBasis] {
    var byName: [String: NamedArray] = [:]
    for a in arrays { byName[a.name] = a }
    var out: [String: LayerBasis] = [:]
    for l in names {
        guard let u = byName["\(l).U"], let s = byName["\(l).S"], let vt = byName["\(l).Vt"] else {
            let have = Set(arrays.compactMap { a -> String? in
                for suf in [".U", ".S", ".Vt", ".bias"] where a.name.hasSuffix(suf) { return String(a.name.dropLast(suf.count)) }
                return nil
            }).sorted()
            throw SVEError.data("the basis has no layer '\(l)' (need \(l).U, \(l).S, \(l).Vt; it has: \(have.isEmpty ? "no layers" : have.joined(separator: ", ")))")
        }
        guard u.shape.count == 2, vt.shape.count == 2, s.shape.count == 1 else {
            throw SVEError.shape("basis '\(l)': U must be 2-d, S 1-d, Vt 2-d (got \(u.shape), \(s.shape), \(vt.shape))")
        }
        let bias = byName["\(l).bias"]?.values ?? [Float](repeating: 0, count: u.shape[0])
        out[l] = try LayerBasis(u: Matrix(rows: u.shape[0], cols: u.shape[1], data: u.values), s: s.values,
                                vt: Matrix(rows: vt.shape[0], cols: vt.shape[1], data: vt.values), bias: bias)
    }
    return out
}
