import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// The OpenBLAS kernel ("core") in use, and the best one this CPU supports.
///
/// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels once, when the library loads, from
/// the CPU model it recognises. On a CPU newer than the library (an AVX-512 Xeon under OpenBLAS
/// 0.3.21, say) it falls back to Prescott, SSE3 kernels 2–3× slower than the ones it ships for that
/// CPU. `ensureBest()` detects this from the CPU's feature flags and, when OPENBLAS_CORETYPE is not
/// set, starts the program again with it set to the best core, before any work is done. A user's own
/// OPENBLAS_CORETYPE always wins.
public enum BLASKernel {
    /// The core OpenBLAS chose, e.g. "Haswell", "SkylakeX", "Zen", "Prescott".
    public static var current: String { String(cString: blas_get_corename()) }

    /// One line for `-v`: the library, the core in use, how it was chosen and the threads.
    public static func summary(threads: Int) -> String {
        let how: String
        if getenv(restartedMark) != nil { how = "chosen from the CPU's flags" }
        else if getenv("OPENBLAS_CORETYPE") != nil { how = "set by OPENBLAS_CORETYPE" }
        else { how = "OpenBLAS's own choice" }
        return "BLAS: OpenBLAS core \(current) (\(how)), \(threads) thread\(threads == 1 ? "" : "s")"
    }

    /// The environment variable that marks a process as already restarted (never restart twice).
    static let restartedMark = "UNCERTAINTY_TOOLBOX_BLAS_RESTARTED"

    /// How capable a core's kernels are: 1 SSE, 2 AVX, 3 AVX2+FMA, 4 AVX-512, 5 AVX-512 with BF16.
    /// nil for a core this table does not know (it is then left alone).
    public static func rank(ofCore name: String) -> Int? {
        switch name.lowercased() {
        case "katmai", "coppermine", "northwood", "prescott", "banias", "core2", "penryn", "dunnington",
             "nehalem", "atom", "nano", "opteron", "opteron(sse3)", "barcelona", "bobcat":
            return 1
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator":
            return 2
        case "haswell", "zen":
            return 3
        case "skylakex":
            return 4
        case "cooperlake", "sapphirerapids":
            return 5
        default:
            return nil
        }
    }

    /// The best core for a CPU with these /proc/cpuinfo flags and vendor, or nil when no kernel
    /// beyond SSE fits.
    public static func best(flags: Set<String>, vendor: String) -> String? {
        let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains)
        if avx512 { return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return vendor == "AuthenticAMD" ? "Zen" : "Haswell" }
        if flags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// The core to switch to, or nil to keep the current one: only when the current core is known
    /// and weaker than the best the CPU supports.
    public static func upgrade(current: String, flags: Set<String>, vendor: String) -> String? {
        guard let target = best(flags: flags, vendor: vendor),
              let have = rank(ofCore: current), let want = rank(ofCore: target), want > have else { return nil }
        return target
    }

    /// This CPU's flags and vendor, from /proc/cpuinfo (empty off Linux or when unreadable).
    public static func cpuFlags() -> (flags: Set<String>, vendor: String) {
        guard let f = fopen("/proc/cpuinfo", "r") else { return ([], "") }
        defer { fclose(f) }
        var flags = Set<String>(), vendor = ""
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            let s = String(cString: line!)
            if vendor.isEmpty && s.hasPrefix("vendor_id") {
                vendor = s.split(separator: ":").last.map { $0.trimmingCharacters() } ?? ""
            } else if s.hasPrefix("flags") {
                flags = Set(s.split(separator: ":").last.map { $0.split(separator: " ").map { $0.trimmingCharacters() } } ?? [])
                break
            }
        }
        return (flags, vendor)
    }

    /// Restarts the program with OPENBLAS_CORETYPE set to the best core, when OpenBLAS chose a
    /// weaker one and the user set none. Returns (doing nothing) otherwise, or if the restart fails.
    /// Call first thing in main(), before any thread exists.
    public static func ensureBest() {
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv(restartedMark) == nil else { return }
        let cpu = cpuFlags()
        guard let target = upgrade(current: current, flags: cpu.flags, vendor: cpu.vendor) else { return }
        setenv("OPENBLAS_CORETYPE", target, 1)
        setenv(restartedMark, "1", 1)
        let args = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", args)
        // The restart failed: go on with the kernel we have.
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(restartedMark)
    }
}

private extension Substring {
    func trimmingCharacters() -> String {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" || c == "\n" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s = s.dropLast() }
        return String(s)
    }
}
