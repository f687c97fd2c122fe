import ArgumentParser
import ToolKit

@main
struct TensorCommand: Tool {
    static let configuration = CommandConfiguration(
        commandName: "tensor",
        abstract: "Inspect, convert, slice and join tensor streams.",
        discussion: """
            A tensor stream is a zstd-compressed sequence of named tensors (see tensor-stream(5)). \
            Every toolbox program reads one on standard input and writes one on standard output.

            The commands that copy rows (cat, head, slice, select, drop, rename, split, paste) decode and \
            check every record, and write a record they copy whole as it came, still compressed; \
            --level or --no-shuffle asks for every record to be compressed anew.

            Examples:
              tensor from npy emb.npy --name embedding > emb.tsr
              tensor info emb.tsr
              tensor head -n 5 < emb.tsr | tensor to csv
              tensor paste mean.tsr labels.tsr > both.tsr
              tensor split --shards 4 --prefix part- big.tsr
            """,
        version: toolboxVersion,
        subcommands: [Info.self, From.self, To.self, Cat.self, Head.self, Slice.self,
                      Select.self, Drop.self, Rename.self, Paste.self, Split.self, Take.self, Where.self])
}
