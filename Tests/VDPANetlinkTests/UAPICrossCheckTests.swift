import CVhostUAPI
import Foundation
import Testing
@testable import VDPANetlink

/// Where the Linux 6.12 uapi headers are: `$VDPAD_UAPI_DIR`, or the kernel lab's
/// cache (Tests/Lab/lab.sh kernel puts them there). Bookworm's /usr/include is 6.1.
enum UAPIHeaders {
    static var directory: String? {
        let candidates = [ProcessInfo.processInfo.environment["VDPAD_UAPI_DIR"], "/var/cache/vdpad-lab/uapi"].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/linux/vdpa.h") }
    }

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: try #require(directory) + "/linux/" + name, encoding: .utf8)
    }

    /// The members of `enum NAME { … }` with their values (sequential, `= OTHER` aliases skipped).
    static func enumMembers(_ name: String, in text: String) throws -> [(String, Int)] {
        let start = try #require(text.range(of: "enum \(name) {"))
        let end = try #require(text[start.upperBound...].range(of: "};"))
        var body = String(text[start.upperBound..<end.lowerBound])
        while let comment = body.range(of: "/*") {
            let close = body[comment.upperBound...].range(of: "*/")?.upperBound ?? body.endIndex
            body.removeSubrange(comment.lowerBound..<close)
        }
        var members: [(String, Int)] = []
        var next = 0
        for item in body.split(separator: ",") {
            let words = item.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            guard let first = words.first else { continue }
            if words.count >= 3, words[1] == "=" { continue }  // VDPA_ATTR_PAD = VDPA_ATTR_UNSPEC
            members.append((String(first), next))
            next += 1
        }
        return members
    }

    /// `_IO/_IOR/_IOW/_IOWR(VHOST_VIRTIO, nr, type)` of a `#define NAME …` line, evaluated.
    static func ioctl(_ name: String, in text: String) throws -> UInt {
        let logicalLines = text.replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n")
        let line = try #require(logicalLines.first { $0.hasPrefix("#define \(name) ") || $0.hasPrefix("#define \(name)\t") })
        let macro = try #require(line.firstRange(of: /[\s]_IO(W|R|WR)?\(/))
        let call = line[line.index(after: macro.lowerBound)...]
        let kind = call.prefix { $0 != "(" }
        let arguments = call.drop { $0 != "(" }.dropFirst().prefix { $0 != ")" }.split(separator: ",").map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let number = try #require(UInt(arguments[1].dropFirst(2), radix: 16))
        let sizes: [String: UInt] = [
            "__u64": 8, "__u32": 4, "__u16": 2, "__u8": 1, "int": 4, "unsigned int": 4,
            "struct vhost_vring_state": 8, "struct vhost_vring_addr": 40, "struct vhost_vring_file": 8,
            "struct vhost_vdpa_config": 8, "struct vhost_vdpa_iova_range": 16,
        ]
        let direction: UInt = switch kind { case "_IOW": 1; case "_IOR": 2; case "_IOWR": 3; default: 0 }
        let size = arguments.count > 2 ? try #require(sizes[arguments[2]], "unknown type \(arguments[2])") : 0
        return direction << 30 | size << 16 | 0xAF << 8 | number
    }
}

@Suite(.enabled(if: UAPIHeaders.directory != nil, "needs the Linux 6.12 uapi headers (Tests/Lab/lab.sh kernel)"))
struct UAPICrossCheckTests {
    @Test func vdpaCommandsMatchTheHeader() throws {
        let members = try UAPIHeaders.enumMembers("vdpa_command", in: UAPIHeaders.text("vdpa.h"))
        #expect(members.map(\.0) == VDPACommand.allCases.map(\.uapiName))
        #expect(members.map(\.1) == VDPACommand.allCases.map { Int($0.rawValue) })
    }

    @Test func vdpaAttributesMatchTheHeader() throws {
        let members = try UAPIHeaders.enumMembers("vdpa_attr", in: UAPIHeaders.text("vdpa.h")).filter { $0.0 != "VDPA_ATTR_MAX" }
        #expect(members.map(\.0) == VDPAAttribute.allCases.map(\.uapiName))
        #expect(members.map(\.1) == VDPAAttribute.allCases.map { Int($0.rawValue) })
    }

    @Test func vhostIoctlNumbersMatchTheHeader() throws {
        let text = try UAPIHeaders.text("vhost.h")
        let shim: [(String, UInt)] = [
            ("VHOST_GET_FEATURES", CVhost_GET_FEATURES), ("VHOST_SET_FEATURES", CVhost_SET_FEATURES),
            ("VHOST_SET_OWNER", CVhost_SET_OWNER), ("VHOST_RESET_OWNER", CVhost_RESET_OWNER),
            ("VHOST_SET_VRING_NUM", CVhost_SET_VRING_NUM), ("VHOST_SET_VRING_ADDR", CVhost_SET_VRING_ADDR),
            ("VHOST_SET_VRING_BASE", CVhost_SET_VRING_BASE), ("VHOST_GET_VRING_BASE", CVhost_GET_VRING_BASE),
            ("VHOST_SET_VRING_KICK", CVhost_SET_VRING_KICK), ("VHOST_SET_VRING_CALL", CVhost_SET_VRING_CALL),
            ("VHOST_SET_VRING_ERR", CVhost_SET_VRING_ERR), ("VHOST_SET_BACKEND_FEATURES", CVhost_SET_BACKEND_FEATURES),
            ("VHOST_GET_BACKEND_FEATURES", CVhost_GET_BACKEND_FEATURES), ("VHOST_VDPA_GET_DEVICE_ID", CVhost_VDPA_GET_DEVICE_ID),
            ("VHOST_VDPA_GET_STATUS", CVhost_VDPA_GET_STATUS), ("VHOST_VDPA_SET_STATUS", CVhost_VDPA_SET_STATUS),
            ("VHOST_VDPA_GET_CONFIG", CVhost_VDPA_GET_CONFIG), ("VHOST_VDPA_SET_CONFIG", CVhost_VDPA_SET_CONFIG),
            ("VHOST_VDPA_SET_VRING_ENABLE", CVhost_VDPA_SET_VRING_ENABLE), ("VHOST_VDPA_GET_VRING_NUM", CVhost_VDPA_GET_VRING_NUM),
            ("VHOST_VDPA_SET_CONFIG_CALL", CVhost_VDPA_SET_CONFIG_CALL), ("VHOST_VDPA_GET_IOVA_RANGE", CVhost_VDPA_GET_IOVA_RANGE),
            ("VHOST_VDPA_GET_CONFIG_SIZE", CVhost_VDPA_GET_CONFIG_SIZE), ("VHOST_VDPA_GET_AS_NUM", CVhost_VDPA_GET_AS_NUM),
            ("VHOST_VDPA_GET_VRING_GROUP", CVhost_VDPA_GET_VRING_GROUP), ("VHOST_VDPA_SET_GROUP_ASID", CVhost_VDPA_SET_GROUP_ASID),
            ("VHOST_VDPA_SUSPEND", CVhost_VDPA_SUSPEND), ("VHOST_VDPA_RESUME", CVhost_VDPA_RESUME),
            ("VHOST_VDPA_GET_VRING_DESC_GROUP", CVhost_VDPA_GET_VRING_DESC_GROUP), ("VHOST_VDPA_GET_VQS_COUNT", CVhost_VDPA_GET_VQS_COUNT),
            ("VHOST_VDPA_GET_GROUP_NUM", CVhost_VDPA_GET_GROUP_NUM), ("VHOST_VDPA_GET_VRING_SIZE", CVhost_VDPA_GET_VRING_SIZE),
        ]
        for (name, value) in shim {
            let parsed = try UAPIHeaders.ioctl(name, in: text)
            #expect(parsed == value, "\(name): header 0x\(String(parsed, radix: 16)), shim 0x\(String(value, radix: 16))")
        }
    }
}

/// Values that do not need the headers: the shim agrees with the kernel's documented numbers.
@Suite struct VhostShimTests {
    @Test func knownNumbers() {
        #expect(CVhost_VDPA_GET_DEVICE_ID == 0x8004_AF70)
        #expect(CVhost_GET_VRING_BASE == 0xC008_AF12)
        #expect(CVhost_VDPA_SUSPEND == 0xAF7D)
        #expect(CVhost_VDPA_RESUME == 0xAF7E)
        #expect(CVhost_VDPA_GET_VRING_SIZE == 0xC008_AF82)
        #expect(CVhost_sizeof_msg_v2 == 72)
        #expect(CVhost_sizeof_vring_addr == 40)
    }
}
