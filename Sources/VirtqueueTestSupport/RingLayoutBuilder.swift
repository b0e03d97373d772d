import Virtqueue

/// Places a queue's three areas in guest memory.
public enum RingLayoutBuilder {
    /// A `QueueState` with the areas laid out back to back from `base`
    /// (each aligned as the layout requires), plus the first free address after them.
    public static func makeState(
        layout: QueueLayout, size: UInt16, base: GuestAddress = GuestAddress(0),
        eventIndex: Bool = false, indirect: Bool = false, inOrder: Bool = false
    ) -> (state: QueueState, end: GuestAddress) {
        var state = QueueState(
            layout: layout, size: size, descriptorArea: base, driverArea: base, deviceArea: base,
            eventIndex: eventIndex, indirectDescriptors: indirect, inOrder: inOrder)
        var cursor = base.rawValue
        func align(_ value: UInt64, _ alignment: UInt64) -> UInt64 { (value + alignment - 1) & ~(alignment - 1) }
        state.descriptorArea = GuestAddress(align(cursor, 16))
        cursor = state.descriptorArea.rawValue + state.descriptorAreaLength
        state.driverArea = GuestAddress(align(cursor, 4))
        cursor = state.driverArea.rawValue + state.driverAreaLength
        state.deviceArea = GuestAddress(align(cursor, 4))
        cursor = state.deviceArea.rawValue + state.deviceAreaLength
        return (state, GuestAddress(align(cursor, 16)))
    }
}
