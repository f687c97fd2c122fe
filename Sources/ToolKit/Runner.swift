import ArgumentParser
import LinearAlgebra
import TensorStream
#if canImport(Glibc)
import Glibc
#endif

/// A command of the toolbox. Its `main()` prints errors as one line `tool: message`, exits
/// with a sysexits status, ends quietly when the reader of its output goes away, and removes
/// a half-written output file when anything fails.
public protocol Tool: ParsableCommand {}

extension Tool {
    public static func main() { ToolRunner.run(Self.self) }
}

public enum ToolRunner {
    public static func run<C: ParsableCommand>(_ type: C.Type) {
        let name = C.configuration.commandName ?? basename(CommandLine.arguments.first ?? "tool")
        installSignalHandlers()
        var command: ParsableCommand
        do {
            command = try C.parseAsRoot()
        } catch {
            let code = C.exitCode(for: error)
            if code == .success {
                print(C.fullMessage(for: error))
                exit(0)
            }
            let message = C.message(for: error).split(separator: "\n").first.map(String.init) ?? "bad usage"
            let clean = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
            fail(name, ToolError(.usage, "\(clean) (see '\(name) --help')"))
        }
        do {
            try command.run()
            exit(0)
        } catch is BrokenPipe {
            removePendingOutputs()
            signal(SIGPIPE, SIG_DFL)
            raise(SIGPIPE)
            exit(141)
        } catch let e as CleanExit {
            _ = e
            exit(0)
        } catch let e as ExitCode {
            removePendingOutputs()
            exit(e.rawValue)
        } catch {
            // `--help` and `help` reach here: ArgumentParser's help command throws from run().
            if C.exitCode(for: error) == .success {
                print(C.fullMessage(for: error))
                exit(0)
            }
            fail(name, ToolError.from(error))
        }
    }

    static func fail(_ name: String, _ e: ToolError) -> Never {
        removePendingOutputs()
        writeStderr("\(name): \(e.message)\n")
        exit(e.status.rawValue)
    }
}

func basename(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}

/// Writes text to standard error, unbuffered.
public func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { b in _ = Glibc.write(2, b.baseAddress, b.count) }
}

/// True when file descriptor `fd` is a terminal.
public func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

// MARK: - Output files to remove when a tool fails or is interrupted

nonisolated(unsafe) private var pendingPaths: [UnsafeMutablePointer<CChar>] = []

func registerPendingOutput(_ path: String) -> UnsafeMutablePointer<CChar> {
    let p = strdup(path)!
    pendingPaths.append(p)
    return p
}

func unregisterPendingOutput(_ p: UnsafeMutablePointer<CChar>) {
    pendingPaths.removeAll { $0 == p }
    free(p)
}

func removePendingOutputs() {
    for p in pendingPaths { unlink(p) }
}

private func installSignalHandlers() {
    signal(SIGPIPE, SIG_IGN)  // a closed pipe shows up as EPIPE, handled above
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal(sig) { s in
            for p in pendingPaths { unlink(p) }
            signal(s, SIG_DFL)
            raise(s)
        }
    }
}
