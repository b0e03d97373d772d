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

/// vdpactl's exit statuses. The `compat` commands answer with their own (as
/// `virsh hypervisor-cpu-compare --error` does): 0 identical, 1 superset, 2 incompatible,
/// 3 any error.
public struct ExitStatus: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The command did what was asked.
    public static let success = ExitStatus(rawValue: 0)
    /// The command line is wrong (grammar, options, values): nothing was sent.
    public static let usage = ExitStatus(rawValue: 1)
    /// vdpad (or the kernel through it) refused the request: an API error.
    public static let refused = ExitStatus(rawValue: 2)
    /// vdpad could not be reached or its answer was not understood.
    public static let unreachable = ExitStatus(rawValue: 3)

    /// `compat check`: the destination presents exactly the source.
    public static let identical = ExitStatus(rawValue: 0)
    /// `compat check`: it presents more, and masking gives exactly the source.
    public static let superset = ExitStatus(rawValue: 1)
    /// `compat check`: it cannot; `compat baseline`: there is no baseline.
    public static let incompatible = ExitStatus(rawValue: 2)
    /// `compat`: any error (command line, file, daemon).
    public static let compatError = ExitStatus(rawValue: 3)
}
