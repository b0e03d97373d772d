import Testing
@testable import VDPANetlink

@Suite struct NetlinkAttributeTests {
    @Test func parsesAlignedAttributesInOrderAndKeepsRepeats() throws {
        let bytes = NetlinkBytes.string(18, "rx packets") + NetlinkBytes.u64(19, 8)
            + NetlinkBytes.string(18, "rx bytes") + NetlinkBytes.u64(19, 648)
        let set = try NetlinkAttributeSet(parsing: bytes)
        #expect(set.attributes.map(\.type) == [18, 19, 18, 19])
        #expect(try set.string(18, "name") == "rx packets")
    }

    @Test func stripsNestedAndByteOrderFlags() throws {
        let set = try NetlinkAttributeSet(parsing: NetlinkBytes.u32(0x8000 | 5, 1))
        #expect(set.first(5) != nil)
    }

    @Test(arguments: [
        [UInt8]([8, 0, 1]),                  // shorter than a header
        [UInt8]([3, 0, 1, 0]),               // length below the header size
        [UInt8]([12, 0, 1, 0, 1, 2, 3, 4]),  // claims more than is there
    ])
    func rejectsTruncatedInput(_ bytes: [UInt8]) {
        #expect(throws: NetlinkAttributeError.self) { try NetlinkAttributeSet(parsing: bytes) }
    }

    @Test func checksPayloadSizes() throws {
        let set = try NetlinkAttributeSet(parsing: NetlinkBytes.u16(13, 1400))
        #expect(try set.u16(13, "mtu") == 1400)
        #expect(throws: NetlinkAttributeError.wrongSize(attribute: "mtu", expected: "4", actual: 2)) { try set.u32(13, "mtu") }
    }

    @Test func netStatusAcceptsOneOrTwoBytes() throws {
        #expect(try NetlinkAttributeSet(parsing: NetlinkBytes.attribute(11, [1])).u8OrU16(11, "status") == 1)
        #expect(try NetlinkAttributeSet(parsing: NetlinkBytes.u16(11, 3)).u8OrU16(11, "status") == 3)
    }

    @Test func lastAttributeMayOmitPadding() throws {
        let bytes: [UInt8] = [5, 0, 35, 0, 1]
        #expect(try NetlinkAttributeSet(parsing: bytes).u8(35, "ro") == 1)
    }
}

@Suite struct ExtendedAckTests {
    /// An NLMSG_ERROR as Linux sends it with NETLINK_EXT_ACK and NETLINK_CAP_ACK.
    static func errorMessage(errno: Int32, text: String?, capped: Bool = true, originalPayload: Int = 0) -> [UInt8] {
        var tlvs: [UInt8] = []
        if let text { tlvs = NetlinkBytes.string(1, text) }
        let originalLength = 16 + (capped ? 0 : originalPayload)
        let original = NetlinkBytes.le(UInt32(originalLength)) + NetlinkBytes.le(UInt16(0x1b)) + NetlinkBytes.le(UInt16(5))
            + NetlinkBytes.le(UInt32(7)) + NetlinkBytes.le(UInt32(0)) + (capped ? [] : [UInt8](repeating: 0xAA, count: originalPayload))
        let flags: UInt16 = (capped ? 0x100 : 0) | (text == nil ? 0 : 0x200)
        let body = NetlinkBytes.le(UInt32(bitPattern: -errno)) + original + tlvs
        return NetlinkBytes.le(UInt32(16 + body.count)) + NetlinkBytes.le(UInt16(2)) + NetlinkBytes.le(flags)
            + NetlinkBytes.le(UInt32(7)) + NetlinkBytes.le(UInt32(0)) + body
    }

    @Test func readsErrnoAndMessageWhenCapped() throws {
        let ack = try #require(ExtendedAck(errorMessage: Self.errorMessage(errno: 19, text: "vdpa: Fail to find the specified management device")))
        #expect(ack.errno == 19)
        #expect(ack.message == "vdpa: Fail to find the specified management device")
    }

    @Test func skipsTheEchoedRequestWhenNotCapped() throws {
        let ack = try #require(ExtendedAck(errorMessage: Self.errorMessage(errno: 95, text: "vdpa: Some provided attributes are not supported: 0x1000", capped: false, originalPayload: 24)))
        #expect(ack.errno == 95)
        #expect(ack.message == "vdpa: Some provided attributes are not supported: 0x1000")
    }

    @Test func errnoWithoutExtack() throws {
        let ack = try #require(ExtendedAck(errorMessage: Self.errorMessage(errno: 17, text: nil)))
        #expect(ack.errno == 17)
        #expect(ack.message == nil)
    }

    @Test func rejectsShortMessages() {
        #expect(ExtendedAck(errorMessage: [1, 2, 3]) == nil)
    }
}
