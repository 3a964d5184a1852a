// swift-tools-version: 6.0
import PackageDescription

// Module graph: each target lists exactly the modules it imports (Tests/QLoRACLITests/ArchitectureTests.swift
// checks it); docs/ARCHITECTURE.md describes what each owns.
//   qlora (CLI) ─► QLoRABench ─► QLoRAPipeline ─┬─► QLoRABackends ─┬─► QLoRACPU ─► COpenBLAS (system OpenBLAS), CQLoRAKernels
//                                               │                   └─► QLoRACUDA ─► CCUDA (driver, NVRTC, cuBLASLt: dlopen'ed)
//                                               ├─► QLoRATraining ─► QLoRAModel ─► QLoRATokenizer ─► QLoRAFormats ─► QLoRACore
//                                               ├─► QLoRADistributed ─► CMPI (Open MPI: dlopen'ed), QLoRACore
//                                               └─► QLoRAFormats ─► CArchive (system libarchive), CZlib, Crypto
// QLoRAModel and QLoRATraining compute only through the `Backend` protocol (QLoRACore); the factory in
// QLoRABackends is the one place that knows every backend.
let package = Package(
    name: "qlora",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "qlora", targets: ["qlora"]),
    ],
    // Exact versions: no Package.resolved is committed (the mirror this is developed against has its own commit ids),
    // so the manifest pins what every build resolves. swift-crypto's own dependency (swift-asn1) follows its range.
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CArchive", path: "Sources/CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        .target(name: "QLoRACore"),
        // OpenBLAS is dlopen'ed at first use (Sources/COpenBLAS/include/COpenBLAS.h says why), not linked.
        .target(name: "COpenBLAS", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        .target(name: "CQLoRAKernels"),
        .target(name: "QLoRACPU", dependencies: ["QLoRACore", "COpenBLAS", "CQLoRAKernels"]),
        // CUDA is dlopen'ed at run time (Sources/CCUDA/include/CCUDA.h): nothing CUDA is needed to build.
        .target(name: "CCUDA", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        // The kernels' per-element math (Sources/QLoRACUDA/Kernels/qlora_math.h) compiled for the host, for the tests.
        .target(name: "CQLoRAKernelMath"),
        .target(name: "QLoRACUDA", dependencies: [
            "CCUDA", "QLoRACore",
            .product(name: "Crypto", package: "swift-crypto"),
        ], resources: [
            .embedInCode("Kernels/qlora_math.h"), .embedInCode("Kernels/quant.cu"), .embedInCode("Kernels/elementwise.cu"),
            .embedInCode("Kernels/optimizer.cu"), .embedInCode("Kernels/loss.cu"), .embedInCode("Kernels/attention.cu"),
        ]),
        .target(name: "QLoRABackends", dependencies: ["QLoRACore", "QLoRACPU", "QLoRACUDA"]),
        .target(name: "QLoRAModel", dependencies: ["QLoRACore", "QLoRAFormats", "QLoRATokenizer"]),
        // Open MPI, dlopen'ed like CUDA: the binary runs where no MPI is installed.
        .target(name: "CMPI", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        .target(name: "QLoRADistributed", dependencies: ["QLoRACore", "CMPI"]),
        .target(name: "QLoRATraining", dependencies: ["QLoRAModel", "QLoRACore", "QLoRAFormats", "QLoRADistributed"]),
        .target(name: "QLoRAFormats", dependencies: [
            "QLoRACore", "CZlib", "CArchive",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "QLoRATokenizer", dependencies: ["QLoRACore", "QLoRAFormats"]),
        .target(name: "QLoRAPipeline", dependencies: [
            "QLoRACore", "QLoRAFormats", "QLoRATokenizer", "QLoRAModel", "QLoRATraining", "QLoRABackends", "QLoRADistributed",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "QLoRABench", dependencies: [
            "QLoRABackends", "QLoRACPU", "QLoRACore", "QLoRAFormats", "QLoRAModel", "QLoRAPipeline", "QLoRATokenizer", "QLoRATraining",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "qlora", dependencies: [
            "QLoRABench", "QLoRAPipeline", "QLoRADistributed", "QLoRAFormats", "QLoRACore", "QLoRATokenizer", "QLoRAModel", "QLoRACPU", "QLoRABackends",
            "QLoRACUDA",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The fuzzing harness (docs/FUZZING.md): a libFuzzer binary under `make fuzz`, a replay tool otherwise.
        .executableTarget(name: "qlora-fuzz", dependencies: ["QLoRAPipeline"]),
        .testTarget(name: "QLoRAFormatsTests", dependencies: ["QLoRAFormats", "CArchive"], exclude: ["Fixtures"]),
        .testTarget(name: "QLoRATokenizerTests", dependencies: ["QLoRATokenizer", "QLoRAFormats"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "QLoRAPipelineTests", dependencies: ["QLoRAPipeline", "QLoRAFormats", "QLoRATokenizer", "QLoRABackends", "QLoRADistributed", "CZlib",
                                                       .product(name: "Yams", package: "Yams")],
                    exclude: ["Fixtures"]),
        .testTarget(name: "QLoRACLITests", dependencies: ["QLoRAFormats"]),
        .testTarget(name: "QLoRACPUTests", dependencies: ["QLoRACPU", "QLoRACore", "QLoRABackends", "QLoRABench", "QLoRAModel", "QLoRAPipeline"]),
        .testTarget(name: "QLoRACoreTests", dependencies: ["QLoRACore", "QLoRACPU", "QLoRAFormats"], exclude: ["Fixtures"]),
        .testTarget(name: "QLoRATrainingTests", dependencies: ["QLoRATraining", "QLoRAFormats", "QLoRAModel", "QLoRACore"]),
        .testTarget(name: "QLoRAGradTests", dependencies: ["QLoRATraining", "QLoRADistributed", "QLoRAModel", "QLoRACore", "QLoRACPU", "QLoRAFormats"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "QLoRAExportTests", dependencies: [
            "QLoRAPipeline", "QLoRATraining", "QLoRAModel", "QLoRAFormats", "QLoRACPU", "QLoRACore",
        ]),
        .testTarget(name: "QLoRACUDATests", dependencies: ["QLoRACUDA", "CQLoRAKernelMath", "QLoRACPU", "QLoRACore", "QLoRAFormats",
                                                           "QLoRABackends"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "QLoRAModelTests", dependencies: ["QLoRAModel", "QLoRACPU", "QLoRACore", "QLoRAFormats"],
                    exclude: ["Fixtures"]),
    ]
)
