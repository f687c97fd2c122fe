// swift-tools-version:6.0
// The toolbox: a tensor-stream codec, numerical libraries that know nothing of the
// command line, and one small executable per job on top of them.
import PackageDescription

// The encoder's inner loops are generic and element-wise: unoptimised, the golden tests of a real
// model take minutes in a debug build. These two modules are optimised in every configuration.
let optimizedAlways: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "uncertainty-toolbox",
    products: [
        .library(name: "TensorStream", targets: ["TensorStream"]),
        .executable(name: "tensor", targets: ["TensorTool"]),
        .executable(name: "calib-metrics", targets: ["CalibMetrics"]),
        .library(name: "UEC", targets: ["UEC"]),
        .executable(name: "emb-laplace", targets: ["EmbLaplace"]),
        .executable(name: "emb-fuse", targets: ["EmbFuse"]),
        .executable(name: "emb-sim", targets: ["EmbSim"]),
        .executable(name: "emb-encode", targets: ["EmbEncode"]),
        .executable(name: "sve-decompose", targets: ["SveDecompose"]),
        .executable(name: "sve-train", targets: ["SveTrain"]),
        .executable(name: "sve-predict", targets: ["SvePredict"]),
    ],
    dependencies: [
        // Pinned: the version the toolbox is tested with (Package.resolved is not tracked).
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // System libraries from Debian's packages (libzstd-dev, zlib1g-dev).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // OpenBLAS and LAPACKE, opened with dlopen on first use (Sources/CBLAS/include/CBLAS.h).
        .target(name: "CBLAS", dependencies: ["CCleanup"], linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("pthread")]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // What kind of failure an error is (libraries say it; ToolKit maps it to an exit status).
        .target(name: "Failure"),
        // Files to remove on failure or signal, in storage a signal handler may read (C).
        .target(name: "CCleanup"),
        .target(name: "COptim", linkerSettings: [.linkedLibrary("m")]),
        // GELU, biases and scales of the networks and of emb-laplace apply at the CPU's vector width (AVX-512, AVX2 or
        // SSE, the same bits): optimised in every configuration, as Layers is.
        .target(name: "CElementwise", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("m")]),
        // Work on threads of the libraries' own (results in order, fixed chunks, two tasks): Dispatch only.
        .target(name: "Parallel"),
        .testTarget(name: "ParallelTests", dependencies: ["Parallel"]),
        // Softmax, entropy, mutual information, NLL: the one probability module.
        .target(name: "Probability"),
        .testTarget(name: "ProbabilityTests", dependencies: ["Probability"], exclude: ["Fixtures"]),
        // Transformer building blocks (Linear, LayerNorm, GELU, SelfAttention, TransformerLayer):
        // the one implementation the encoder and the SVE network compose.
        .target(name: "Layers", dependencies: ["CElementwise", "LinearAlgebra", "Probability"], swiftSettings: optimizedAlways),

        // The format: depends on zstd alone (and the error kinds, and the byte-shuffle filter's
        // own loops in C: SSE2's unpacks, 5–8× the compiler's loops).
        .target(name: "CShuffle", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "TensorStream", dependencies: ["CZstd", "CShuffle", "Failure"]),
        // Thin wrappers over cblas and LAPACKE shared by the method libraries.
        .target(name: "LinearAlgebra", dependencies: ["CBLAS", "Failure", "Parallel"]),
        .testTarget(name: "LinearAlgebraTests", dependencies: ["LinearAlgebra"]),

        // Conversions to and from other formats (npy, npz, safetensors, CSV).
        .target(name: "TensorFormats", dependencies: ["TensorStream", "CZlib"]),
        // What every executable shares: errors, exit codes, atomic output, progress, options (no BLAS).
        .target(name: "ToolKit", dependencies: [
            "TensorStream", "Failure", "CCleanup",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "TensorTool", dependencies: ["Failure", "TensorStream", "TensorFormats", "ToolKit"],
                          path: "Sources/tensor"),

        // Shared by the test targets: running the built tools, temporary directories.
        .target(name: "TestSupport", path: "Sources/TestSupport"),

        .testTarget(name: "TensorStreamTests", dependencies: ["TensorStream"]),
        .testTarget(name: "TensorFormatsTests", dependencies: ["TensorStream", "TensorFormats"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "ToolTests", dependencies: ["TensorStream", "TensorFormats", "TestSupport"],
                    exclude: ["Fixtures"]),
        // The error model (kinds → statuses), the checked allocator, overflow-checked sizes.
        .testTarget(name: "ToolKitTests", dependencies: ["ToolKit", "Failure", "CCleanup", "LinearAlgebra", "SVE", "Calibration", "UECStreams", "TensorStream",
                                                 .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Calibration and uncertainty metrics (methods.md section 3) and their command.
        .target(name: "Calibration", dependencies: ["Failure", "Parallel", "Probability"]),
        .executableTarget(name: "CalibMetrics", dependencies: ["Failure", "Calibration", "Parallel", "Probability", "TensorStream", "ToolKit"],
                          path: "Sources/calib-metrics"),
        .testTarget(name: "CalibrationTests", dependencies: ["Calibration", "Parallel", "Probability", "TensorStream", "TestSupport"],
                    exclude: ["Fixtures"]),

        // UEC (methods.md 1): Laplace last layer, uncertainty-driven fusion, uncertainty-aware similarity.
        .target(name: "UEC", dependencies: ["CElementwise", "LinearAlgebra", "Failure", "Parallel", "Probability", "CSearch"]),
        // C kernels of emb-sim's exact top-k search (vector threshold scan, int16 dot products).
        .target(name: "CSearch"),
        // UEC data on tensor streams (probabilistic-embedding reader, posterior I/O), shared by the three UEC executables.
        .target(name: "UECStreams", dependencies: ["UEC", "TensorStream", "ToolKit", "Failure"], path: "Sources/UECStreams"),
        .executableTarget(name: "EmbLaplace", dependencies: ["Failure", "Calibration", "LinearAlgebra", "Parallel", "UEC", "UECStreams", "TensorStream", "ToolKit"],
                          path: "Sources/emb-laplace"),
        .executableTarget(name: "EmbFuse", dependencies: ["Failure", "UEC", "UECStreams", "TensorStream", "ToolKit"],
                          path: "Sources/emb-fuse"),
        .executableTarget(name: "EmbSim", dependencies: ["Failure", "UEC", "UECStreams", "TensorStream", "ToolKit"],
                          path: "Sources/emb-sim"),
        .testTarget(name: "UECTests", dependencies: ["UEC", "LinearAlgebra", "Probability", "CSearch"], exclude: ["Fixtures"]),
        .testTarget(name: "UECToolTests", dependencies: ["TestSupport", "TensorStream"]),
        // SVE (methods.md 2): singular value ensembles over a pretrained stack.
        .target(name: "SVE", dependencies: ["CElementwise", "COptim", "Layers", "LinearAlgebra", "Failure", "Parallel", "Probability"]),
        .executableTarget(name: "SveDecompose", dependencies: ["Failure", "SVE", "LinearAlgebra", "TensorStream", "ToolKit"],
                          path: "Sources/sve-decompose"),
        .executableTarget(name: "SveTrain", dependencies: ["Failure", "SVE", "LinearAlgebra", "Probability", "TensorStream", "ToolKit"],
                          path: "Sources/sve-train"),
        .executableTarget(name: "SvePredict", dependencies: ["SVE", "LinearAlgebra", "TensorStream", "ToolKit", "Failure"],
                          path: "Sources/sve-predict"),
        // Text to embeddings: the WordPiece tokenizer, the model directory, the BERT encoder.
        .target(name: "TextEncoder", dependencies: ["Layers", "LinearAlgebra", "CBLAS", "Probability", "Failure", "TensorFormats", "TensorStream"],
                swiftSettings: optimizedAlways),
        .executableTarget(name: "EmbEncode", dependencies: ["TextEncoder", "Failure", "LinearAlgebra", "TensorStream", "ToolKit"],
                          path: "Sources/emb-encode"),
        .testTarget(name: "TextEncoderTests", dependencies: ["TextEncoder", "Layers", "LinearAlgebra", "TensorStream", "TensorFormats", "TestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "LayersTests", dependencies: ["CElementwise", "Layers", "LinearAlgebra"]),
        .testTarget(name: "SVETests", dependencies: ["SVE", "Calibration", "Probability", "LinearAlgebra", "TensorStream", "TensorFormats", "TestSupport"],
                    exclude: ["Fixtures"]),
    ]
)
