import Synchronization
import VDPARPC

/// Encodes `dev_list` answers, reusing each device's JSON from the last answer while that
/// device is unchanged: with thousands of devices, one `dev_set` re-encodes one device, not
/// all of them. Its work runs on the caller's task, outside the controller actor, so a large
/// answer never holds up other calls.
///
/// The bytes are those `RPCJSON.encode` gives the whole `DevListResult` (keys sorted:
/// `devices`, then `vanished`), device by device.
final class DeviceListEncoder: Sendable {
    private let fragments = Mutex<[String: (device: DeviceInfo, json: [UInt8])]>([:])

    /// Builds the answer with `list` and encodes it, on the caller's task.
    func encode(_ list: @Sendable () -> DevListResult) async throws -> [UInt8] {
        try encode(list())
    }

    func encode(_ list: DevListResult) throws -> [UInt8] {
        let previous = fragments.withLock { $0 }
        var next: [String: (device: DeviceInfo, json: [UInt8])] = [:]
        next.reserveCapacity(list.devices.count)
        var bytes = Array(#"{"devices":["#.utf8)
        bytes.reserveCapacity(previous.values.reduce(64) { $0 + $1.json.count + 1 })
        for (position, device) in list.devices.enumerated() {
            if position > 0 { bytes.append(UInt8(ascii: ",")) }
            let json: [UInt8]
            if let kept = previous[device.name], kept.device == device {
                json = kept.json
            } else {
                json = try RPCJSON.encode(device)
            }
            bytes += json
            next[device.name] = (device, json)
        }
        bytes += Array(#"],"vanished":"#.utf8)
        bytes += try RPCJSON.encode(list.vanished)
        bytes.append(UInt8(ascii: "}"))
        fragments.withLock { $0 = next }
        return bytes
    }
}
