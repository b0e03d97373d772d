/// The largest values the virtio specification allows for the configuration numbers vdpad reads
/// from outside (API requests, documents, files, the store). Every such number is checked against
/// these where it is decoded, so arithmetic on it later cannot overflow.
public enum VirtioBounds {
    /// Largest virtqueue size (virtio 1.4 §2.7: "Queue Size ... maximum 32768").
    public static let queueSize = 1...32768
    /// virtio-net `max_virtqueue_pairs` (virtio 1.4 §5.1.4: 1 to 0x8000).
    public static let queuePairs = 1...0x8000
    /// virtio-net `mtu` is a le16 (virtio 1.4 §5.1.4); the driver needs at least 68.
    public static let mtu = 0...65535
    /// A count of virtqueues (`VDPA_ATTR_DEV_MGMTDEV_MAX_VQS`, `VHOST_VDPA_GET_VQS_COUNT` are u32;
    /// a virtio-net device has at most 0x8000 pairs and a control queue: 2 × 0x8000 + 1).
    public static let queueCount = 0...0x1_0001
    /// A ring position: split and packed rings count in 16 bits (virtio 1.4 §2.7.6, §2.8.1).
    public static let ringIndex = 0...0xFFFF
    /// A virtqueue index: below the largest ``queueCount``.
    public static let queueIndex = 0...(queueCount.upperBound - 1)
    /// Versions of documents vdpad keeps (profiles): positive, and room to add one.
    public static let version = 1...Int(Int32.max)
}

extension KeyedDecodingContainer {
    /// The integer at `key`, refused with a `dataCorrupted` error naming the key and the range
    /// when it lies outside `range` (or is not an integer that fits an `Int`).
    public func decode(_ type: Int.Type, forKey key: Key, within range: ClosedRange<Int>) throws -> Int {
        let value = try decode(Int.self, forKey: key)
        guard range.contains(value) else { throw outOfRange(key, value, range) }
        return value
    }

    /// ``decode(_:forKey:within:)`` for an optional key.
    public func decodeIfPresent(_ type: Int.Type, forKey key: Key, within range: ClosedRange<Int>) throws -> Int? {
        guard let value = try decodeIfPresent(Int.self, forKey: key) else { return nil }
        guard range.contains(value) else { throw outOfRange(key, value, range) }
        return value
    }

    private func outOfRange(_ key: Key, _ value: Int, _ range: ClosedRange<Int>) -> DecodingError {
        DecodingError.dataCorruptedError(forKey: key, in: self,
                                         debugDescription: "'\(key.stringValue)' \(value) is outside \(range.lowerBound)–\(range.upperBound)")
    }
}
