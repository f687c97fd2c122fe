// Helpers for tests that run the built executables: where they are, and running one with
// given standard input, collecting its status, standard output and standard error.
import Foundation

/// The directory holding the built executables (.build/debug or .build/release).
public func productsDirectory() -> URL {
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        return bundle.bundleURL.deletingLastPathComponent()
    }
    return Bundle.main.bundleURL
}

public struct ToolRun {
    public var status: Int32
    public var stdout: Data
    public var stderr: String
    public var terminatedBySignal: Bool
}

/// Runs a built tool (or, given a path with a slash, any program) with arguments and standard input bytes.
@discardableResult
public func runTool(_ name: String, _ args: [String], stdin: Data = Data(),
                    environment: [String: String]? = nil, cwd: URL? = nil) throws -> ToolRun {
    let p = Process()
    p.executableURL = name.contains("/") ? URL(fileURLWithPath: name) : productsDirectory().appendingPathComponent(name)
    p.arguments = args
    if let environment { p.environment = environment }
    if let cwd { p.currentDirectoryURL = cwd }
    let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
    p.standardInput = inPipe
    p.standardOutput = outPipe
    p.standardError = errPipe
    try p.run()
    // Feed stdin and drain both outputs concurrently so that no pipe fills up.
    let writer = Thread {
        inPipe.fileHandleForWriting.write(stdin)
        try? inPipe.fileHandleForWriting.close()
    }
    writer.start()
    let err = DataBox()
    let errDone = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        err.data = errPipe.fileHandleForReading.readDataToEndOfFile()
        errDone.signal()
    }
    let out = outPipe.fileHandleForReading.readDataToEndOfFile()
    errDone.wait()
    let errData = err.data
    p.waitUntilExit()
    return ToolRun(status: p.terminationStatus, stdout: out,
                   stderr: String(decoding: errData, as: UTF8.self),
                   terminatedBySignal: p.terminationReason == .uncaughtSignal)
}

/// A fresh temporary directory, removed by the caller when done.
public func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tsr-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The repository's root, found from a test source file's path (#filePath).
public func repositoryRoot(_ filePath: String = #filePath) -> URL {
    var url = URL(fileURLWithPath: filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    fatalError("no Package.swift above \(filePath)")
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}
