/// Builds netlink attribute bytes by hand, as the kernel lays them out.
enum NetlinkBytes {
    static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        let length = UInt16(4 + payload.count)
        var bytes = le(length) + le(type) + payload
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }
    static func string(_ type: UInt16, _ text: String) -> [UInt8] { attribute(type, Array(text.utf8) + [0]) }
    static func u16(_ type: UInt16, _ value: UInt16) -> [UInt8] { attribute(type, le(value)) }
    static func u32(_ type: UInt16, _ value: UInt32) -> [UInt8] { attribute(type, le(value)) }
    static func u64(_ type: UInt16, _ value: UInt64) -> [UInt8] { attribute(type, le(value)) }
    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}
