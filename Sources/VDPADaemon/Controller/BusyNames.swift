import VDPARPC

/// The names (of devices, or of ports) with a change under way: one change of a name at a
/// time, so two concurrent changes of one name cannot both win; another is `try_again`.
struct BusyNames {
    /// What the names name, for the refusal ("device", "port").
    let kind: String
    private var names: Set<String> = []

    init(kind: String) { self.kind = kind }

    var isEmpty: Bool { names.isEmpty }

    /// Marks `name` busy (the caller calls ``release(_:)`` when its change ends), or
    /// `try_again` naming `operation` when another change of it is under way.
    mutating func claim(_ name: String, operation: String) throws(RPCErrorObject) {
        guard names.insert(name).inserted else {
            throw RPCErrorObject(code: .tryAgain, message: "\(kind) \(name) is busy with another change; try again when it ends",
                                 data: RPCErrorData(operation: operation))
        }
    }

    mutating func release(_ name: String) { names.remove(name) }
}
