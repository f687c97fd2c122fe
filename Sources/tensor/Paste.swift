import ArgumentParser
import TensorStream
import ToolKit

struct Paste: Tool {
    static let configuration = CommandConfiguration(
        commandName: "paste",  // given, not derived from the type name: that costs start-up time
        abstract: "Join the tensors of several streams that have the same rows.",
        discussion: """
            Reads the inputs side by side and interleaves their chunks, so that row-aligned tensors \
            (mean and var, features and labels) can be read together in bounded memory. Names must \
            be distinct across inputs (use 'tensor rename'); every row tensor must end with the same \
            number of rows.

            Example:
              tensor paste features.tsr labels.tsr \\
                | sve-train --basis b.tsr --stack "linear:fc1 gelu linear:fc2" > m.tsr
            """)

    @Argument(help: ArgumentHelp("Streams to join ('-' for standard input, at most once).", valueName: "FILE"))
    var files: [String]

    @OptionGroup var output: OutputOptions

    func validate() throws { if files.count < 1 { throw ValidationError("name at least one stream") } }

    func run() throws {
        let readers = try openAll(files)
        let out = try output.open(compressors: ThreadBudget.compressors)
        var ids: [[Int]] = Array(repeating: [], count: readers.count)
        var names: [String: String] = [:]
        var live = Array(repeating: true, count: readers.count)
        // Round robin: one event of each input in turn keeps their rows close together.
        while live.contains(true) {
            for (k, reader) in readers.enumerated() where live[k] {
                guard let event = try reader.next() else { live[k] = false; continue }
                switch event {
                case .tensor(let i):
                    var info = reader.tensors[i]
                    if let other = names[info.name] {
                        throw ToolError.data("tensor '\(escaped(info.name))' is in both \(other) and \(reader.label) (rename one with 'tensor rename')")
                    }
                    names[info.name] = reader.label
                    info.rows = nil
                    ids[k].append(try out.writer.add(info))
                case .data(let i, let rows, let bytes):
                    // A record whose tensor keeps its id goes out as it came, still compressed.
                    try out.writer.write(ids[k][i], rows: rows, bytes: bytes,
                                         orCopying: output.leavesEncodingToTheProgram ? reader.lastCompressedData : nil)
                }
            }
        }
        var counts: [(String, Int)] = []
        for r in readers {
            for (i, t) in r.tensors.enumerated() where !t.isScalar { counts.append((t.name, r.rowsRead[i])) }
        }
        if let first = counts.first, let bad = counts.first(where: { $0.1 != first.1 }) {
            throw ToolError.data("row counts differ: '\(escaped(first.0))' has \(first.1) rows, '\(escaped(bad.0))' has \(bad.1)")
        }
        try out.finish()
    }
}
