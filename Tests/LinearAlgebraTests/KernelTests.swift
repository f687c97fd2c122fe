import XCTest
@testable import LinearAlgebra

/// The choice of OpenBLAS kernel: upgrade a fallback core, never downgrade, leave unknown ones.
final class KernelTests: XCTestCase {
    let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]

    func testUpgradesFallbackOnAVX512Xeon() {
        // OpenBLAS 0.3.21 on a newer Xeon: Prescott, though the SkylakeX kernels are in the library.
        XCTAssertEqual(BLASKernel.upgrade(current: "Prescott", flags: avx512, vendor: "GenuineIntel"), "SkylakeX")
        XCTAssertEqual(BLASKernel.upgrade(current: "Prescott", flags: avx512.union(["avx512_bf16"]), vendor: "GenuineIntel"),
                       "Cooperlake")
        XCTAssertEqual(BLASKernel.upgrade(current: "Haswell", flags: avx512, vendor: "GenuineIntel"), "SkylakeX")
    }

    func testAVX2Machines() {
        let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]
        XCTAssertEqual(BLASKernel.upgrade(current: "Prescott", flags: avx2, vendor: "AuthenticAMD"), "Zen")
        XCTAssertEqual(BLASKernel.upgrade(current: "Nehalem", flags: avx2, vendor: "GenuineIntel"), "Haswell")
        XCTAssertNil(BLASKernel.upgrade(current: "Zen", flags: avx2, vendor: "AuthenticAMD"))
        XCTAssertNil(BLASKernel.upgrade(current: "Haswell", flags: avx2, vendor: "AuthenticAMD"))
        // avx2 without fma is not enough for the Haswell kernels.
        XCTAssertEqual(BLASKernel.upgrade(current: "Prescott", flags: ["avx", "avx2"], vendor: "GenuineIntel"), "Sandybridge")
    }

    func testNeverDowngradesOrTouchesUnknownCores() {
        XCTAssertNil(BLASKernel.upgrade(current: "SkylakeX", flags: ["avx2", "fma"], vendor: "GenuineIntel"))
        XCTAssertNil(BLASKernel.upgrade(current: "Prescott", flags: ["sse3"], vendor: "GenuineIntel"))
        XCTAssertNil(BLASKernel.upgrade(current: "NeoverseN1", flags: avx512, vendor: "GenuineIntel"))
    }

    func testCPUFlagsAreRead() {
        let cpu = BLASKernel.cpuFlags()
        #if arch(x86_64)
        XCTAssertTrue(cpu.flags.contains("sse2"), "\(cpu.flags.count) flags read")
        XCTAssertFalse(cpu.vendor.isEmpty)
        #endif
        XCTAssertFalse(BLASKernel.current.isEmpty)
    }
}
