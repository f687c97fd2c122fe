// libFuzzer entry point for the readers of untrusted input. Built once per target by
// scripts/fuzz.sh with -D FUZZ_stream, FUZZ_npy, FUZZ_npz or FUZZ_safetensors. A reader may
// refuse its input (throw); it must never crash, trap, hang or allocate without bound.
import TensorFormats
import TensorStream

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    #if FUZZ_stream
    if let reader = try? TensorStreamReader(ArraySource(bytes, step: 7)) {
        _ = try? reader.readAll()
    }
    if let reader = try? TensorStreamReader(ArraySource(bytes)) {
        let blocks = RowBlockReader(reader, names: ["mean", "var"], blockRows: 3, maxBufferedBytes: 1 << 20)
        while let b = try? blocks.next() { _ = b }
    }
    #elseif FUZZ_npy
    if let t = try? Npy.read(bytes, name: "x") { _ = t.doubles() }
    #elseif FUZZ_npz
    _ = try? Npz.read(bytes)
    #elseif FUZZ_safetensors
    _ = try? Safetensors.read(bytes)
    #endif
    return 0
}
