/// The vhost "vring base" (`VHOST_GET_VRING_BASE` / `VHOST_SET_VRING_BASE`
/// `num` field) encodings, as Linux vhost-vdpa uses them.
///
/// - Split: the device's next avail index (the used index is read from the
///   ring itself by the next backend).
/// - Packed: low 16 bits = next avail ring position (bits 0–14) | avail wrap
///   counter (bit 15); high 16 bits = next used position | used wrap counter.
public struct VringBase: Hashable, Sendable, Codable {
    public var nextAvailIndex: UInt16
    public var availWrapCounter: Bool
    public var nextUsedIndex: UInt16
    public var usedWrapCounter: Bool

    public init(nextAvailIndex: UInt16, availWrapCounter: Bool = true, nextUsedIndex: UInt16 = 0, usedWrapCounter: Bool = true) {
        self.nextAvailIndex = nextAvailIndex
        self.availWrapCounter = availWrapCounter
        self.nextUsedIndex = nextUsedIndex
        self.usedWrapCounter = usedWrapCounter
    }

    /// The base of a queue state.
    public init(_ state: QueueState) {
        self.init(
            nextAvailIndex: state.nextAvailIndex, availWrapCounter: state.availWrapCounter,
            nextUsedIndex: state.nextUsedIndex, usedWrapCounter: state.usedWrapCounter)
    }

    /// Encodes for the given layout.
    public func encoded(for layout: QueueLayout) -> UInt32 {
        switch layout {
        case .split:
            return UInt32(nextAvailIndex)
        case .packed:
            let low = UInt32(nextAvailIndex & 0x7fff) | (availWrapCounter ? 0x8000 : 0)
            let high = UInt32(nextUsedIndex & 0x7fff) | (usedWrapCounter ? 0x8000 : 0)
            return low | high << 16
        }
    }

    /// Decodes `value` for `layout`. Split: only the low 16 bits are used and
    /// `nextUsedIndex` is set to the same value (callers that know `used->idx`
    /// should override it). Never fails: range checks happen when a queue is
    /// built from the resulting state.
    public static func decode(_ value: UInt32, layout: QueueLayout) -> VringBase {
        switch layout {
        case .split:
            let index = UInt16(truncatingIfNeeded: value)
            return VringBase(nextAvailIndex: index, availWrapCounter: true, nextUsedIndex: index, usedWrapCounter: true)
        case .packed:
            let low = UInt16(truncatingIfNeeded: value)
            let high = UInt16(truncatingIfNeeded: value >> 16)
            return VringBase(
                nextAvailIndex: low & 0x7fff, availWrapCounter: low & 0x8000 != 0,
                nextUsedIndex: high & 0x7fff, usedWrapCounter: high & 0x8000 != 0)
        }
    }

    /// Applies this base to `state` (indices and wrap counters only).
    public func applied(to state: QueueState) -> QueueState {
        var result = state
        result.nextAvailIndex = nextAvailIndex
        result.nextUsedIndex = nextUsedIndex
        result.availWrapCounter = availWrapCounter
        result.usedWrapCounter = usedWrapCounter
        return result
    }
}
