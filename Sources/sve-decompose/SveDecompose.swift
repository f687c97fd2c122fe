import Failure
import ArgumentParser
import LinearAlgebra
import SVE
import TensorStream
import ToolKit

@main
struct SveDecompose: Tool, ThreadedTool {
    static let configuration = CommandConfiguration(
        commandName: "sve-decompose",
        abstract: "Thin SVD of pretrained weight matrices: the shared basis of a singular value ensemble.",
        discussion: """
            Each selected layer's weight W (out×in, as '<layer>.weight') becomes W = U diag(S) Vᵀ with \
            k = min(out, in) (LAPACK gesdd in float64, stored as float32); the output holds '<layer>.U' (out×k), \
            '<layer>.S' (k), '<layer>.Vt' (k×in) and '<layer>.bias' (the pretrained bias, or zeros). \
            The relative reconstruction error ‖W − U diag(S) Vᵀ‖/‖W‖ of each layer is reported on standard \
            error. LayerNorms named with --layer (1-d '<name>.weight' and '<name>.bias') are copied unchanged, \
            so that one file holds everything sve-train needs. --rank keeps the r largest singular values \
            (an extension; the paper uses full rank). --layers A-B takes whole transformer layers of a \
            BERT-family checkpoint (every weight under encoder.layer.A. … encoder.layer.B., LayerNorms \
            copied): the basis of a token-level stack (sve-train --layers). When the input holds the \
            position table (embeddings.position_embeddings.weight), its length is kept in the metadata \
            ('sve.max_positions') so that sve-train refuses longer texts.

            Examples:
              tensor from safetensors model.safetensors \\
                | sve-decompose --prefix encoder.layer.5. > basis.tsr
              tensor from safetensors model.safetensors | sve-decompose \\
                  --layer encoder.layer.5.intermediate.dense \\
                  --layer encoder.layer.5.output.dense \\
                  --layer encoder.layer.5.output.LayerNorm -o basis.tsr
              tensor from safetensors model.safetensors \\
                | sve-decompose --layers 4-5 -o basis.tsr
            """,
        version: toolboxVersion)

    @Argument(help: ArgumentHelp("Input stream of weights ('-': standard input).", valueName: "FILE"))
    var input: String = "-"

    @Option(name: .long, help: ArgumentHelp("A layer to decompose (or LayerNorm to copy), without '.weight' (repeatable; default: every 2-d '*.weight').", valueName: "NAME"))
    var layer: [String] = []

    @Option(name: .long, help: ArgumentHelp("Only layers whose name starts with PREFIX (LayerNorms under it are copied).", valueName: "PREFIX"))
    var prefix: String?

    @Option(name: .long, help: ArgumentHelp("Whole transformer layers A to B (or one, A): every weight under encoder.layer.N.", valueName: "A-B"))
    var layers: LayerRange?

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Keep the r largest singular values.", valueName: "r"))
    var rank: Int?

    @Flag(name: .shortAndLong, help: "Do not report the reconstruction errors.")
    var quiet = false

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let r = rank, r < 1 || r > 1 << 30 { throw ValidationError("--rank must be between 1 and 1073741824") }
        if layers != nil && (!layer.isEmpty || prefix != nil) { throw ValidationError("--layers cannot be combined with --layer or --prefix") }
    }

    func run() throws {
        try prepareBLAS(threads: common.threadCount)
        let tensors = try openStream(input).readAll()
        var byName: [String: Tensor] = [:]
        for t in tensors { byName[t.name] = t }
        let weights = tensors.filter { $0.name.hasSuffix(".weight") }
        var selected: [String]
        if !layer.isEmpty {
            selected = layer
            for l in layer where byName["\(l).weight"] == nil {
                let have = weights.map { String($0.name.dropLast(7)) }
                throw ToolError.data("input has no tensor '\(l).weight' (layers in it: \(have.prefix(12).joined(separator: ", "))\(have.count > 12 ? ", ..." : ""))")
            }
        } else {
            selected = weights.map { String($0.name.dropLast(7)) }
        }
        if let prefix { selected = selected.filter { $0.hasPrefix(prefix) } }
        if let layers {
            let have = Set(weights.compactMap { LayerRange.layerIndex(of: $0.name) }).sorted()
            for i in layers.range where !have.contains(i) {
                throw ToolError.data("input has no layer encoder.layer.\(i) (\(have.isEmpty ? "no encoder.layer.N weights at all" : "it has layers \(have.map(String.init).joined(separator: ", "))"); check --layers)")
            }
            selected = selected.filter { LayerRange.layerIndex(of: $0).map(layers.range.contains) ?? false }
        }
        let positions = tensors.first { $0.name.hasSuffix("embeddings.position_embeddings.weight") }?.shape.first
        if layer.isEmpty { selected = selected.filter { byName["\($0).weight"]!.shape.count == 2 || byName["\($0).bias"] != nil } }
        if selected.isEmpty { throw ToolError.data("no layer to decompose (input has \(weights.count) '*.weight' tensors\(prefix.map { ", none under '\($0)'" } ?? ""))") }

        let out = try output.open()
        for name in selected {
            let w = byName["\(name).weight"]!
            guard w.dtype.isFloat else { throw ToolError.data("'\(name).weight' is \(w.dtype.name), not floating point") }
            let bias = byName["\(name).bias"]
            if w.shape.count == 1 {
                // A LayerNorm (or any 1-d scale): copied as is, with its bias.
                guard let b = bias, b.shape == w.shape else {
                    throw ToolError.data("'\(name).weight' is 1-d (a LayerNorm?) but '\(name).bias' is missing or of another shape")
                }
                try out.writer.write(Tensor(name: "\(name).weight", shape: w.shape, floats: w.floats(), meta: w.meta))
                try out.writer.write(Tensor(name: "\(name).bias", shape: b.shape, floats: b.floats(), meta: b.meta))
                continue
            }
            guard w.shape.count == 2 else {
                throw ToolError.data("'\(name).weight' has shape \(w.shape): expected a matrix out×in")
            }
            let rows = w.shape[0], cols = w.shape[1]
            if let b = bias, b.shape != [rows] {
                throw ToolError.data("'\(name).bias' has shape \(b.shape) but '\(name).weight' is \(rows)×\(cols) (expected \(rows))")
            }
            let result = try inContext(name) {
                try decompose(weight: Matrix(rows: rows, cols: cols, data: w.floats()), bias: bias?.floats(), rank: rank)
            }
            let b = result.basis
            var meta = ["sve.layer": name, "sve.rank": "\(b.rank)", "sve.relative_error": "\(result.relativeError)"]
            if let positions { meta[LayerRange.maxPositionsKey] = "\(positions)" }
            try out.writer.write(Tensor(name: "\(name).U", shape: [b.u.rows, b.u.cols], floats: b.u.data, meta: meta))
            try out.writer.write(Tensor(name: "\(name).S", shape: [b.rank], floats: b.s, meta: meta))
            try out.writer.write(Tensor(name: "\(name).Vt", shape: [b.vt.rows, b.vt.cols], floats: b.vt.data, meta: meta))
            try out.writer.write(Tensor(name: "\(name).bias", shape: [rows], floats: b.bias, meta: meta))
            if !quiet {
                writeStderr("\(name): \(rows)×\(cols), rank \(b.rank)\(b.rank < min(rows, cols) ? " of \(min(rows, cols))" : ""), relative reconstruction error \(formatSci(result.relativeError))\n")
            }
        }
        try out.finish()
    }
}

extension LayerRange: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

func formatSci(_ v: Double) -> String { cFormat("%.2e", v) }
