import Foundation
import XCTest
import TestSupport
import TensorStream

/// Every file a program writes goes through ToolKit's one output routine: devices and FIFOs are
/// written in place (never replaced), regular files appear whole or not at all and keep their
/// mode, text written to a full device is an I/O error (74), and a signal at any moment leaves
/// no temporary file behind. The device nodes are made here (never the machine's /dev).
final class OutputPathTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func save(_ tensors: [Tensor], _ name: String) throws -> String {
        try Data(try encodeStream(tensors)).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    /// A full device (like /dev/full: every write fails with ENOSPC) made in the scratch directory.
    func fullDevice() throws -> String {
        let p = path("full")
        // major 1, minor 7: what /dev/full is
        guard mknod(p, S_IFCHR | 0o666, dev_t((1 << 8) | 7)) == 0 else {
            throw XCTSkip("cannot make a device node here (mknod: \(String(cString: strerror(errno))))")
        }
        return p
    }

    func isCharDevice(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR
    }

    func mode(_ p: String) -> mode_t {
        var st = stat()
        XCTAssertEqual(stat(p, &st), 0)
        return st.st_mode & 0o7777
    }

    /// Runs a tool with standard output going to `stdoutPath` (a file or a device).
    func run(_ tool: String, _ args: [String], stdoutPath: String, stdin: Data = Data()) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = productsDirectory().appendingPathComponent(tool)
        p.arguments = args
        guard let out = FileHandle(forWritingAtPath: stdoutPath) else { throw XCTSkip("cannot open \(stdoutPath)") }
        let err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        input.fileHandleForWriting.write(stdin)
        try input.fileHandleForWriting.close()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try out.close()
        return (p.terminationStatus, String(decoding: e, as: UTF8.self))
    }

    /// Probabilities and labels calib-metrics can score.
    func predictions() throws -> String {
        try save([Tensor(name: "probs", shape: [4, 2], floats: [0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7]),
                  Tensor(name: "labels", shape: [4], int64s: [0, 1, 1, 1])], "pred.tsr")
    }

    func pairs() throws -> String {
        let wave = { (n: Int, d: Int, phase: Double) in (0..<n * d).map { Float(sin(Double($0) * 0.7 + phase)) } }
        return try save([Tensor(name: "query", shape: [8, 4], floats: wave(8, 4, 0)),
                         Tensor(name: "positive", shape: [8, 4], floats: wave(8, 4, 0.3))], "pairs.tsr")
    }

    func testTextReportToAFullDeviceIsAnIOError() throws {
        let full = try fullDevice()
        let pred = try predictions()
        for args in [[pred], ["--json", pred]] {
            let r = try run("calib-metrics", args, stdoutPath: full)
            XCTAssertEqual(r.status, 74, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("calib-metrics: cannot write standard output"), r.stderr)
            XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
        }
        XCTAssertTrue(isCharDevice(full), "the device was replaced")
    }

    func testEveryFileWritingOptionWritesDevicesInPlace() throws {
        let full = try fullDevice()
        let pred = try predictions(), pairs = try pairs()
        let cases: [(String, [String])] = [
            ("calib-metrics", ["--reliability-svg", full, pred]),
            ("emb-laplace", ["fit", "--batch-size", "4", pairs, "-o", full]),
        ]
        for (tool, args) in cases {
            let r = try runTool(tool, args)
            XCTAssertEqual(r.status, 74, "\(tool) \(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("\(tool): cannot write \(full)"), r.stderr)
            XCTAssertTrue(isCharDevice(full), "\(tool) \(args) replaced the device with a file")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["full", "pairs.tsr", "pred.tsr"])
    }

    /// Every program that writes a stream, with valid inputs: (tool, arguments, standard input).
    func streamWriters() throws -> [(String, [String], [UInt8])] {
        try makeSideInputs(dir)
        let wave = { (n: Int, d: Int, phase: Double) in (0..<n * d).map { Float(sin(Double($0) * 0.7 + phase)) } }
        let embeddings = try encodeStream([Tensor(name: "embedding", shape: [5, 4], floats: wave(5, 4, 1))])
        let pairs = try encodeStream([Tensor(name: "query", shape: [8, 4], floats: wave(8, 4, 0)),
                                      Tensor(name: "positive", shape: [8, 4], floats: wave(8, 4, 0.3))])
        let weights = try encodeStream([Tensor(name: "l.weight", shape: [3, 4], floats: wave(3, 4, 2)),
                                        Tensor(name: "l.bias", shape: [3], floats: [0.1, 0.2, 0.3])])
        let training = try encodeStream([Tensor(name: "features", shape: [12, 4], floats: wave(12, 4, 3)),
                                         Tensor(name: "labels", shape: [12], int64s: (0..<12).map { Int64($0 % 3) })])
        let features = try encodeStream([Tensor(name: "features", shape: [5, 4], floats: wave(5, 4, 3))])
        return [
            ("emb-laplace", ["fit", "--batch-size", "4"], pairs),
            ("emb-laplace", ["apply", "--posterior", path("post.tsr")], embeddings),
            ("emb-fuse", [path("corpus.tsr"), path("corpus.tsr")], []),
            ("emb-sim", ["--corpus", path("corpus.tsr"), "--top-k", "2"], embeddings),
            ("emb-sim", ["--matrix"], embeddings),
            ("sve-decompose", ["--quiet"], weights),
            ("sve-train", ["--basis", path("basis.tsr"), "--stack", "linear:l", "--epochs", "1"], training),
            ("sve-predict", ["--model", path("model.tsr")], features),
        ]
    }

    func testEveryStreamWriterWritesDevicesAndFIFOsInPlace() throws {
        let full = try fullDevice()
        for (tool, args, input) in try streamWriters() {
            let label = "\(tool) \(args.joined(separator: " "))"
            let r = try runTool(tool, args + ["-o", full], stdin: Data(input))
            XCTAssertEqual(r.status, 74, "\(label): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("\(tool): cannot write \(full)"), "\(label): \(r.stderr)")
            XCTAssertTrue(isCharDevice(full), "\(label) replaced the device with a file")

            let fifo = path("out.fifo")
            XCTAssertEqual(mkfifo(fifo, 0o600), 0)
            var ok: ToolRun!
            let data = try capturingFIFO(fifo) { ok = try runTool(tool, args + ["-o", fifo], stdin: Data(input)) }
            XCTAssertEqual(ok.status, 0, "\(label): \(ok.stderr)")
            var st = stat()
            XCTAssertEqual(stat(fifo, &st), 0)
            XCTAssertEqual(st.st_mode & S_IFMT, S_IFIFO, "\(label) replaced the FIFO")
            XCTAssertNoThrow(try TensorStreamReader(ArraySource(Array(data))).readAll(), "\(label): the FIFO did not carry a whole stream")
            unlink(fifo)
            XCTAssertEqual(try leftovers(), [], label)
        }
    }

    func testFIFOOutputIsWrittenInPlace() throws {
        let fifo = path("svg.fifo")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let pred = try predictions()
        var r: ToolRun!
        let data = try capturingFIFO(fifo) { r = try runTool("calib-metrics", ["--reliability-svg", fifo, pred]) }
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("<svg"), "the diagram did not go through the FIFO")
        var st = stat()
        XCTAssertEqual(stat(fifo, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFIFO, "the FIFO was replaced")
    }

    func testOutputOverAnExistingFileKeepsItsMode() throws {
        let pred = try predictions(), pairs = try pairs()
        let svg = path("rel.svg"), post = path("post.tsr")
        for p in [svg, post] {
            XCTAssertTrue(FileManager.default.createFile(atPath: p, contents: Data("old".utf8)))
            XCTAssertEqual(chmod(p, 0o600), 0)
        }
        var r = try runTool("calib-metrics", ["--reliability-svg", svg, pred])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try runTool("emb-laplace", ["fit", "--batch-size", "4", pairs, "-o", post])
        XCTAssertEqual(r.status, 0, r.stderr)
        for p in [svg, post] {
            XCTAssertEqual(mode(p), 0o600, p)
            XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: p)), Data("old".utf8))
        }
        // A symbolic link is replaced by the new file; the file it pointed to is left alone.
        let target = path("target.svg"), link = path("link.svg")
        XCTAssertTrue(FileManager.default.createFile(atPath: target, contents: Data("old".utf8)))
        XCTAssertEqual(symlink(target, link), 0)
        r = try runTool("calib-metrics", ["--reliability-svg", link, pred])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)), Data("old".utf8))
        var st = stat()
        XCTAssertEqual(lstat(link, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFREG)
    }

    func testCommandWithoutSubcommandIsAUsageError() throws {
        let r = try runTool("emb-laplace", [])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertEqual(r.stderr, "emb-laplace: missing subcommand: fit, apply (usage: emb-laplace <subcommand>; see 'emb-laplace --help')\n")
        XCTAssertTrue(r.stdout.isEmpty)
        let help = try runTool("emb-laplace", ["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(String(decoding: help.stdout, as: UTF8.self).contains("SUBCOMMANDS"))
    }

    // MARK: - Signals

    /// The names in the scratch directory that are temporary outputs.
    func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp.") }
    }

    /// A signal that ends the program (SIGTERM) or that a crash raises (a trap or a failed
    /// allocation aborts, a fault segfaults) removes the temporary output, and the program dies
    /// of that signal. Before, a crash left it: 6 MB of .out.tsr.tmp.* under `ulimit -v`.
    func testASignalAtTheStartRemovesTheTemporaryFile() throws {
        // The input comes through a FIFO: the program has opened its output (a temporary file)
        // and waits for more rows when the signal arrives.
        let post = path("post.tsr")
        let r = try runTool("emb-laplace", ["fit", "--batch-size", "4", try pairs(), "-o", post])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = 4000
        let stream = try encodeStream([Tensor(name: "embedding", shape: [rows, 4], floats: (0..<rows * 4).map { Float($0 % 7) })])
        // No core files from the crash signals (their default action), wherever cores go here.
        var core = rlimit(), noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &core)
        noCore.rlim_max = core.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
        defer { setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &core) }
        for signal in [SIGTERM, SIGABRT, SIGSEGV, SIGBUS, SIGILL] {
            let fifo = path("in-\(signal).fifo")
            XCTAssertEqual(mkfifo(fifo, 0o600), 0)
            let p = Process()
            p.executableURL = productsDirectory().appendingPathComponent("emb-laplace")
            p.arguments = ["apply", "--posterior", post, "--block-rows", "16", fifo, "-o", path("out.tsr")]
            p.standardError = Pipe()
            try p.run()
            let w = FileHandle(forWritingAtPath: fifo)!
            w.write(Data(stream.prefix(stream.count / 2)))
            var waited = 0
            while try leftovers().isEmpty && waited < 500 { usleep(10_000); waited += 1 }
            XCTAssertFalse(try leftovers().isEmpty, "signal \(signal): the temporary output never appeared")
            kill(p.processIdentifier, signal)
            // (A handler of the Swift runtime's, where ours is missing, keeps the program alive.)
            var alive = 0
            while p.isRunning && alive < 1000 { usleep(10_000); alive += 1 }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); XCTFail("signal \(signal): the program did not end") }
            p.waitUntilExit()
            try? w.close()
            XCTAssertEqual(p.terminationReason, .uncaughtSignal, "signal \(signal)")
            XCTAssertEqual(p.terminationStatus, signal)
            XCTAssertEqual(try leftovers(), [], "signal \(signal)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("out.tsr")))
            // (So that a file left by one signal does not hide the next one's.)
            for f in try leftovers() { try? FileManager.default.removeItem(atPath: path(f)) }
        }
    }

    func testSIGTERMAtAnyMomentLeavesAWholeFileOrNothing() throws {
        // A run is timed, then killed at moments spread from its start to past its end: each
        // time the output is either absent or whole, and no temporary file is left.
        let rows = 6_000
        let input = try save([Tensor(name: "embedding", shape: [rows, 16], floats: (0..<rows * 16).map { Float($0 % 13) })], "in.tsr")
        let post = path("post.tsr")
        let identity16 = try runTool("emb-laplace", ["fit", "--batch-size", "4", "--prior-precision", "1", "-o", post],
                                     stdin: Data(try encodeStream([
                                        Tensor(name: "query", shape: [8, 16], floats: (0..<128).map { Float(sin(Double($0))) }),
                                        Tensor(name: "positive", shape: [8, 16], floats: (0..<128).map { Float(cos(Double($0))) })])))
        XCTAssertEqual(identity16.status, 0, identity16.stderr)
        let out = path("out.tsr")
        func start() throws -> Process {
            let p = Process()
            p.executableURL = productsDirectory().appendingPathComponent("emb-laplace")
            p.arguments = ["apply", "--posterior", post, "--threads", "1", input, "-o", out]
            p.standardError = Pipe()
            p.standardOutput = Pipe()
            try p.run()
            return p
        }
        let t0 = Date()
        let timing = try start()
        timing.waitUntilExit()
        XCTAssertEqual(timing.terminationStatus, 0)
        let duration = Date().timeIntervalSince(t0)
        let whole = try Data(contentsOf: URL(fileURLWithPath: out))
        var killed = 0, finished = 0
        for step in 0..<16 {
            try? FileManager.default.removeItem(atPath: out)
            let p = try start()
            usleep(useconds_t(duration * 1e6 * Double(step) / 8))
            kill(p.processIdentifier, SIGTERM)
            p.waitUntilExit()
            XCTAssertEqual(try leftovers(), [], "step \(step)")
            if p.terminationReason == .uncaughtSignal {
                XCTAssertEqual(p.terminationStatus, SIGTERM)
                // Killed before the rename (nothing), or between the rename and the exit (whole).
                if FileManager.default.fileExists(atPath: out) {
                    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), whole, "step \(step)")
                }
                killed += 1
            } else {
                XCTAssertEqual(p.terminationStatus, 0)
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), whole, "step \(step)")
                finished += 1
            }
        }
        XCTAssertGreaterThan(killed, 0)
        XCTAssertGreaterThan(finished, 0)

        // Then many kills spread over the run, where the temporary file is created: a file that
        // exists before the handler knows its name would be left behind (mkstemp and then
        // registering the name left one in about 1 run in 200 killed at random moments).
        for step in 0..<64 {
            let p = try start()
            usleep(useconds_t(duration * 1e6 * Double(step) / 64))
            kill(p.processIdentifier, SIGTERM)
            p.waitUntilExit()
            XCTAssertEqual(try leftovers(), [], "kill \(step) of 64")
            for f in try leftovers() { try? FileManager.default.removeItem(atPath: path(f)) }
        }
    }
}

/// Reads what a program writes into a FIFO while `body` runs it. The FIFO is opened read-write
/// (which never blocks), so the test cannot hang when a program fails to open it or replaces it.
func capturingFIFO(_ fifo: String, _ body: () throws -> Void) rethrows -> Data {
    let fd = open(fifo, O_RDWR | O_NONBLOCK)
    precondition(fd >= 0, "cannot open \(fifo)")
    let box = FIFOBox()
    let drain = Thread {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n > 0 { box.append(buffer[0..<n]); continue }
            if box.stopping { break }
            usleep(2_000)
        }
        box.done.signal()
    }
    drain.start()
    defer {
        box.stop()
        box.done.wait()
        close(fd)
    }
    try body()
    usleep(20_000)
    return box.snapshot()
}

private final class FIFOBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var stopFlag = false
    let done = DispatchSemaphore(value: 0)
    func append(_ bytes: ArraySlice<UInt8>) { lock.lock(); data.append(contentsOf: bytes); lock.unlock() }
    func snapshot() -> Data { lock.lock(); defer { lock.unlock() }; return data }
    var stopping: Bool { lock.lock(); defer { lock.unlock() }; return stopFlag }
    func stop() { lock.lock(); stopFlag = true; lock.unlock() }
}
