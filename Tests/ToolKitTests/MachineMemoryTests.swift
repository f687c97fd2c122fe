import Foundation
import XCTest
import ToolKit

/// MachineMemory.cgroupLimit on fake /proc/self/cgroup and /sys/fs/cgroup contents.
final class MachineMemoryTests: XCTestCase {
    private func limit(_ cgroup: String, _ files: [String: String]) -> Int? {
        MachineMemory.cgroupLimit(procSelfCgroup: cgroup, read: { files[$0] })
    }

    func testCgroupV2TakesTheLowestLimitOnThePathToTheRoot() {
        let own = "0::/user.slice/job.scope\n"
        XCTAssertEqual(limit(own, ["/sys/fs/cgroup/user.slice/job.scope/memory.max": "max\n",
                                   "/sys/fs/cgroup/user.slice/memory.max": "2147483648\n",
                                   "/sys/fs/cgroup/memory.max": "max\n"]), 2 << 30)
        XCTAssertEqual(limit(own, ["/sys/fs/cgroup/user.slice/job.scope/memory.max": "1073741824\n",
                                   "/sys/fs/cgroup/user.slice/memory.max": "2147483648\n"]), 1 << 30)
        XCTAssertNil(limit(own, ["/sys/fs/cgroup/user.slice/job.scope/memory.max": "max\n"]))
        // Inside a cgroup namespace: the path is "/" and the mount's own file is the container's.
        XCTAssertEqual(limit("0::/\n", ["/sys/fs/cgroup/memory.max": "536870912\n"]), 512 << 20)
    }

    func testCgroupV1ReadsTheMemoryControllerOnly() {
        let own = "12:pids:/docker/abc\n4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n"
        XCTAssertEqual(limit(own, ["/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "3221225472\n",
                                   "/sys/fs/cgroup/pids/docker/abc/memory.limit_in_bytes": "1\n"]), 3 << 30)
        // 9223372036854771712 (PAGE_COUNTER_MAX in bytes) is v1's "no limit".
        XCTAssertNil(limit(own, ["/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "9223372036854771712\n",
                                 "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"]))
        XCTAssertNil(limit("garbage\n\n1:cpu\n", [:]))
    }

    func testAvailableIsPositiveAndAtMostPhysicalMemory() {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        XCTAssertGreaterThan(MachineMemory.available(), 0)
        XCTAssertLessThanOrEqual(MachineMemory.available(), physical)
    }
}
