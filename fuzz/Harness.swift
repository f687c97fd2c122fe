// libFuzzer entry point for the readers of untrusted input. Built once per target by
// scripts/fuzz.sh with -D FUZZ_<target>. A reader may refuse its input (throw); it must never
// crash, trap, hang or allocate without bound.
//   stream       whole streams (zstd frames): the decoder, the record rules, RowBlockReader
//   records      the record rules alone, on records without zstd (fast: ~10^5 runs/s)
//   csv          the CSV/TSV reader
//   stack        sve-train's --stack parser
//   npy npz safetensors   the other formats' readers
#if FUZZ_stack
import SVEStack
#else
import TensorFormats
@testable import TensorStream
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    #if FUZZ_stream
    if let reader = try? TensorStreamReader(ArraySource(bytes, step: 7)) {
        _ = try? reader.readAll()
    }
    // Blocks copied out of the kept rows, and (fill 0) assembled where the rows are kept: the
    // same blocks either way.
    var seen: [[[UInt8]]] = []
    for fill in [nil, 0] as [Int?] {
        guard let reader = try? TensorStreamReader(ArraySource(bytes)) else { break }
        let blocks = RowBlockReader(reader, names: ["mean", "var"], blockRows: 3, maxBufferedBytes: 1 << 20)
        if let fill { blocks.fillBlocksFrom = fill }
        // Every block goes back to the reader (recycle), some while a reference to them is still
        // held: those must never be written over (a copy made at once is the oracle).
        var held: [(data: [UInt8], copy: [UInt8])] = [], got: [[UInt8]] = []
        while var b = try? blocks.next() {
            if held.count < 64 && b[0].rows % 2 == 1 { held.append((b[0].data, b[0].data.map { $0 })) }
            if got.count < 256 { got.append(b[0].data + b[1].data) }
            for k in b.indices { blocks.recycle(&b[k].data) }
        }
        for h in held { precondition(h.data == h.copy, "a block held by the caller was written over after recycle") }
        seen.append(got)
    }
    if seen.count == 2 { precondition(seen[0] == seen[1], "blocks assembled where their rows are kept differ from copied ones") }
    // Records copied still compressed where the reader offers them (as tensor cat does), the
    // others compressed again: the output must read as the input does.
    if let reader = try? TensorStreamReader(ArraySource(bytes, step: 5)), let whole = try? TensorStreamReader(ArraySource(bytes)).readAll() {
        let sink = ArraySink()
        let w = try! TensorStreamWriter(sink: sink)
        // (a writer may refuse what a reader takes: 0-d tensors in two segments)
        let complete = (try? w.copyAll(from: reader)) != nil
        if complete {
            let copied = try! TensorStreamReader(ArraySource(sink.bytes)).readAll()
            precondition(copied.map(\.name) == whole.map(\.name) && copied.map(\.data) == whole.map(\.data),
                         "a stream of copied records reads differently from its input")
        }
    }
    #elseif FUZZ_records
    if let reader = try? TensorStreamReader(uncompressedRecords: ArraySource(bytes)) {
        while let e = try? reader.next() {
            if case .data(_, _, let b) = e, b.count > 0 { _ = b[0] &+ b[b.count - 1] }  // touch the payload's ends
        }
    }
    #elseif FUZZ_csv
    for sep in [UInt8(ascii: ","), 9] {
        let reader = DelimitedReader(ArraySource(bytes), label: "fuzz", separator: sep)
        while let row = try? reader.next() { _ = row }
        _ = reader.columnNames
    }
    #elseif FUZZ_stack
    _ = try? StackSpec(parsing: String(decoding: bytes, as: UTF8.self))
    #elseif FUZZ_npy
    if let t = try? Npy.read(bytes, name: "x") { _ = t.doubles() }
    #elseif FUZZ_npz
    _ = try? Npz.read(bytes)
    #elseif FUZZ_safetensors
    _ = try? Safetensors.read(bytes)
    #endif
    return 0
}
