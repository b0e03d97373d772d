import VDPANetlink

/// libFuzzer entry point for everything vdpad parses from the kernel's netlink and
/// uevent sockets: attribute streams, the vdpa reply decoders, NLMSG_ERROR extacks
/// and uevent datagrams. The first byte picks the parser; errors are fine, crashes
/// and hangs are not. Build and run: Tests/Fuzz/run-fuzzers.sh.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNetlink(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let selector = data[0]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch selector % 4 {
    case 0:
        // A VDPA_CMD_* reply payload (after the genlmsghdr), through every decoder.
        guard let attributes = try? NetlinkAttributeSet(parsing: bytes) else { return 0 }
        _ = try? VDPAReplyDecoder.managementDevice(attributes)
        _ = try? VDPAReplyDecoder.device(attributes)
        _ = try? VDPAReplyDecoder.config(attributes)
        _ = try? VDPAReplyDecoder.vendorStatistics(attributes)
    case 1:
        // Typed getters on whatever attribute types appear.
        guard let attributes = try? NetlinkAttributeSet(parsing: bytes) else { return 0 }
        for attribute in attributes.attributes.prefix(64) {
            _ = try? attributes.u8(attribute.type, "fuzz")
            _ = try? attributes.u16(attribute.type, "fuzz")
            _ = try? attributes.u8OrU16(attribute.type, "fuzz")
            _ = try? attributes.u32(attribute.type, "fuzz")
            _ = try? attributes.u64(attribute.type, "fuzz")
            _ = try? attributes.string(attribute.type, "fuzz")
            _ = try? NetlinkAttributeSet(parsing: attribute.payload)  // nested
        }
    case 2:
        _ = ExtendedAck(errorMessage: bytes)
    default:
        if let event = Uevent(datagram: bytes) {
            _ = event.vdpaDeviceName
            _ = event.subsystem
        }
    }
    return 0
}
