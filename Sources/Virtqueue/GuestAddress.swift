/// A guest-physical address (GPA).
///
/// A distinct type so that guest addresses cannot be confused with host
/// pointers, ring indices or lengths. All arithmetic on guest-controlled
/// addresses goes through ``adding(_:)``, which reports overflow instead of
/// trapping (the bug class of CVE-2018-1059: `address + length` wrapping).
@frozen
public struct GuestAddress: RawRepresentable, Hashable, Comparable, Sendable, Codable,
    CustomStringConvertible
{
    public var rawValue: UInt64

    @inlinable
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    @inlinable
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// `self + offset`, or `nil` when the sum does not fit in 64 bits.
    @inlinable
    public func adding(_ offset: UInt64) -> GuestAddress? {
        let (sum, overflow) = rawValue.addingReportingOverflow(offset)
        return overflow ? nil : GuestAddress(rawValue: sum)
    }

    /// `self + offset` for offsets the caller has already proven to be in
    /// range (for example inside an area validated at queue creation).
    /// Wraps instead of trapping; a wrapped address is then rejected by the
    /// bounds check of the memory access that uses it.
    @inlinable
    public func wrappingAdding(_ offset: UInt64) -> GuestAddress {
        GuestAddress(rawValue: rawValue &+ offset)
    }

    /// Whether the address is a multiple of `alignment` (a power of two).
    @inlinable
    public func isAligned(to alignment: UInt64) -> Bool {
        rawValue & (alignment &- 1) == 0
    }

    @inlinable
    public static func < (lhs: GuestAddress, rhs: GuestAddress) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "0x" + String(rawValue, radix: 16) }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(UInt64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
