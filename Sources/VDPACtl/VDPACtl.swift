import VDPAClient
import VDPARPC

/// vdpactl's version (the vdpad release it belongs to).
public let vdpactlVersion = "0.1.0"

/// The vdpactl program as a function: arguments, environment and output sinks in, exit
/// status out. The executable only wires it to the process; tests call it directly.
public enum VDPACtl {
    /// The socket used when neither `--socket` nor `$VDPAD_SOCKET` names one.
    public static let defaultSocketPath = "/run/vdpad/vdpad.sock"

    /// Runs one vdpactl command line (without the program name).
    /// - Parameter keepFollowing: asked after each `monitor` event whether to go on.
    public static func run(arguments: [String], environment: [String: String], output: OutputSink, errors: OutputSink,
                           keepFollowing: @escaping @Sendable () -> Bool = { true }) -> ExitStatus {
        let options: GlobalOptions
        let command: Command
        var compatWords = false
        do {
            let (parsedOptions, objectWords) = try GlobalOptions.parse(arguments)
            options = parsedOptions
            compatWords = objectWords.first.map { matches($0, "compat") && $0.count >= 2 } ?? false
            if options.showVersion {
                output.write("vdpactl utility, vdpad-\(vdpactlVersion)\n")
                return .success
            }
            if options.showHelp {
                output.write(Usage.text(.main))
                return .success
            }
            command = try CommandParser.parse(objectWords)
        } catch {
            if !error.message.isEmpty { errors.write(error.message + "\n") }
            if let usage = error.usage { errors.write(Usage.text(usage)) }
            return compatWords ? .compatError : .usage
        }
        if case .help(let topic) = command {
            output.write(Usage.text(topic))
            return .success
        }

        let socketPath = options.socketPath ?? environment["VDPAD_SOCKET"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultSocketPath
        do {
            let client = try VDPAClient(socketPath: socketPath)
            defer { client.close() }
            return try CommandRunner(client: client, options: options, output: output, errors: errors, keepFollowing: keepFollowing).run(command)
        } catch let error as InputFileError {
            errors.report(error.lines)
            return command.isCompat ? .compatError : .usage
        } catch let error as RPCErrorObject {
            errors.report(ErrorReport.lines(for: error))
            return command.isCompat ? .compatError : .refused
        } catch let error as VDPAClientError {
            errors.report(ErrorReport.lines(for: error))
            return command.isCompat ? .compatError : .unreachable
        } catch {
            errors.report(["\(error)"])
            return command.isCompat ? .compatError : .unreachable
        }
    }
}
