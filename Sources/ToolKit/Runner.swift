import ArgumentParser
import CCleanup
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
        // Before anything is written: the handlers only read a table in static storage.
        cleanup_install_signal_handlers()
        oneMallocArenaUnderAnAddressSpaceLimit()
        if let asked = plainHelpRequest(C.self, Array(CommandLine.arguments.dropFirst())) {
            printHelp(C.helpMessage(for: asked), name: name)
        }
        var command: ParsableCommand
        do {
            command = try C.parseAsRoot()
        } catch {
            if isHelpRequest(error) { printHelp(C.fullMessage(for: error), name: name) }
            let code = C.exitCode(for: error)
            if code == .success {
                printHelp(C.fullMessage(for: error), name: name)
            }
            let message = C.message(for: error).split(separator: "\n").first.map(String.init) ?? "bad usage"
            let clean = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
            fail(name, ToolError(.usage, "\(clean) (see '\(name) --help')"))
        }
        ThreadBudget.set(from: command)
        do {
            try command.run()
            exit(0)
        } catch is BrokenPipe {
            cleanup_remove_all()
            signal(SIGPIPE, SIG_DFL)
            raise(SIGPIPE)
            exit(141)
        } catch let e as ExitCode {
            cleanup_remove_all()
            exit(e.rawValue)
        } catch is CleanExit {
            // A command with subcommands run without one: ArgumentParser's default run() asks
            // for help. Nothing was done, so it is a usage error.
            let subcommands = Swift.type(of: command).configuration.subcommands.map { $0._commandName }
            fail(name, ToolError(.usage, "missing subcommand: \(subcommands.joined(separator: ", ")) (usage: \(name) <subcommand>; see '\(name) --help')"))
        } catch {
            // `--help` and `help` reach here: ArgumentParser's help command throws from run().
            if isHelpRequest(error) { printHelp(C.fullMessage(for: error), name: name) }
            if C.exitCode(for: error) == .success {
                printHelp(C.fullMessage(for: error), name: name)
            }
            fail(name, ToolError.from(error))
        }
    }

    /// Under `ulimit -v`, glibc's malloc would give every thread that allocates its own arena, each
    /// a 64 MiB reservation of address space: with the reading thread and the workers, more than
    /// the buffers themselves, and a small allocation then fails where Swift cannot report it (a
    /// trap instead of exit 71). One arena for all threads when the address space is limited; no
    /// change otherwise.
    static func oneMallocArenaUnderAnAddressSpaceLimit() {
        #if canImport(Glibc)
        var r = rlimit()
        // mallopt and M_ARENA_MAX (-8) are glibc's, in <malloc.h>, which the Glibc module does
        // not import; absent (another libc): nothing to do.
        if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &r) == 0, r.rlim_cur != rlim_t.max,
           let f = dlsym(nil, "mallopt") {
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            _ = unsafeBitCast(f, to: Mallopt.self)(-8, 1)
        }
        #endif
    }

    /// The command whose help `arguments` ask for when they are only that: `--help`, `-h` or
    /// `-help` after nothing but subcommand names (`tensor --help`, `tensor info -h`). Its help
    /// is then rendered straight from the types, as ArgumentParser renders it for the parse error
    /// that `--help` is, without parsing: the parse builds every argument set of the command
    /// stack, tries the arguments against two completion-script commands, and renders the help
    /// twice to find it is one (half of the 12 ms `emb-encode --help` took on a Zen 1). nil for
    /// anything else (`--help` among options, a command with its own help names): the parse
    /// decides, as before.
    static func plainHelpRequest(_ root: ParsableCommand.Type, _ arguments: [String]) -> ParsableCommand.Type? {
        guard let flag = arguments.last, ["--help", "-h", "-help"].contains(flag) else { return nil }
        var command = root
        for name in arguments.dropLast() {
            guard let sub = command.configuration.subcommands.first(where: { $0._commandName == name })
            else { return nil }
            command = sub
        }
        // A help name of the user's choosing anywhere in the stack: leave it to the parse.
        guard root.configuration.helpNames == nil, command.configuration.helpNames == nil else { return nil }
        return command
    }

    /// Whether `error` is ArgumentParser's answer to `--help` or `-h` (a CommandError holding
    /// `.helpRequested`), read by reflection: `exitCode(for:)` renders the whole help only to find
    /// its status, and `fullMessage(for:)` renders it again, 2 of the 11 ms that `sve-train --help`
    /// took on a Zen 1. false when unsure (another error, or another ArgumentParser whose types
    /// differ): the caller then asks ArgumentParser as before.
    static func isHelpRequest(_ error: Error) -> Bool {
        guard String(describing: type(of: error)) == "CommandError",
              let parserError = Mirror(reflecting: error).children.first(where: { $0.label == "parserError" })?.value
        else { return false }
        return String(describing: parserError).hasPrefix("helpRequested(")
    }

    /// Help and --version on standard output, checked like every other text output.
    static func printHelp(_ text: String, name: String) -> Never {
        do {
            try OutputFile.write(text + "\n", to: nil)
        } catch is BrokenPipe {
            exit(0)
        } catch {
            fail(name, ToolError.from(error))
        }
        exit(0)
    }

    static func fail(_ name: String, _ e: ToolError) -> Never {
        cleanup_remove_all()
        writeStderr("\(name): \(e.message)\n")
        // _exit, not exit: exit's handlers would wait for OpenBLAS's threads, which under a
        // memory limit may be retrying a buffer allocation forever. Text still buffered by
        // print() (none of ToolKit's outputs buffer) is flushed first.
        fflush(nil)
        _exit(e.status.rawValue)
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

