/// Where vdpactl writes text: standard output or error in the executable, a buffer in tests.
public struct OutputSink: Sendable {
    private let writeText: @Sendable (String) -> Void

    public init(_ write: @escaping @Sendable (String) -> Void) { writeText = write }

    public func write(_ text: String) { writeText(text) }

    /// Writes `lines`, each prefixed with "vdpactl: " (error reports).
    func report(_ lines: [String]) {
        for line in lines { write("vdpactl: \(line)\n") }
    }
}

/// vdpactl's exit statuses.
public enum ExitStatus: Int32, Sendable {
    /// The command did what was asked.
    case success = 0
    /// The command line is wrong (grammar, options, values): nothing was sent.
    case usage = 1
    /// vdpad (or the kernel through it) refused the request: an API error.
    case refused = 2
    /// vdpad could not be reached or its answer was not understood.
    case unreachable = 3
}
