#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The memory this process may use: the machine's physical memory, or the limit of the control
/// group it runs in (a container's, a systemd unit's), or its address-space limit (`ulimit -v`),
/// whichever is lowest. A budget given as a
/// percentage ("emb-sim --memory 25%") is a share of this, so that inside a container with a
/// 2 GiB limit on a 256 GiB host the default budget is 512 MiB, not 64 GiB.
public enum MachineMemory {
    /// min(physical memory, the cgroup's limit, the address-space limit of `ulimit -v`), in bytes.
    public static func available() -> Int {
        var bytes = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        let read = { (path: String) in try? String(contentsOfFile: path, encoding: .utf8) }
        if let own = read("/proc/self/cgroup"), let limit = cgroupLimit(procSelfCgroup: own, read: read) { bytes = min(bytes, limit) }
        var r = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &r) == 0, r.rlim_cur != rlim_t.max, r.rlim_cur < rlim_t(Int.max) {
            bytes = min(bytes, Int(r.rlim_cur))
        }
        return bytes
    }

    /// The lowest memory limit on the way from the process's cgroup up to the root, read through
    /// `read` (a path → the file's text, nil when absent): cgroup v2's memory.max ("max": none)
    /// under /sys/fs/cgroup, or v1's memory.limit_in_bytes under /sys/fs/cgroup/memory (values of
    /// 2^60 or more mean none). Inside a cgroup namespace the process's path is "/" and the mount
    /// is its own cgroup: the root files are read too. nil: no limit found.
    public static func cgroupLimit(procSelfCgroup: String, read: (String) -> String?) -> Int? {
        var limits: [Int] = []
        for line in procSelfCgroup.split(separator: "\n") {
            // "hierarchy-ID:controller-list:path"; the path may itself hold ':'.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let controllers = parts[1].split(separator: ",")
            let (root, file): (String, String)
            if parts[0] == "0" && parts[1].isEmpty {
                (root, file) = ("/sys/fs/cgroup", "memory.max")
            } else if controllers.contains("memory") {
                (root, file) = ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
            } else {
                continue
            }
            var components = parts[2].split(separator: "/").map(String.init)
            while true {
                let dir = components.isEmpty ? root : root + "/" + components.joined(separator: "/")
                if let text = read(dir + "/" + file), let v = Int(text.split(whereSeparator: { $0.isWhitespace }).first ?? ""),
                   v > 0, v < 1 << 60 {
                    limits.append(v)
                }
                if components.isEmpty { break }
                components.removeLast()
            }
        }
        return limits.min()
    }
}
