import Foundation
import Testing
import VDPARPC
@testable import VDPADaemon

/// `dev_list` is assembled from each device's JSON, kept while the device is unchanged: the
/// bytes must be those of encoding the whole answer, before and after a change.
@Suite struct DeviceListEncoderTests {
    static func device(_ name: String, driver: String? = "vhost_vdpa", managed: Bool = true) -> DeviceInfo {
        DeviceInfo(name: name, type: "network", deviceID: 1, mgmtdev: "vdpasim_net", vendorID: 0, maxVqs: 3, maxVqSize: 256, minVqSize: nil,
                   driver: driver, vhostDevice: driver == "vhost_vdpa" ? "/dev/vhost-vdpa-0" : nil, virtioDevice: nil, netdevs: [],
                   blockDevices: [], managed: managed, record: nil)
    }

    @Test func theAnswerIsTheWholeEncodingBeforeAndAfterAChange() throws {
        let encoder = DeviceListEncoder()
        var list = DevListResult(devices: (0..<5).map { Self.device("d\($0)") }, vanished: [])
        #expect(try encoder.encode(list) == RPCJSON.encode(list))
        // One device changes, one goes, one comes: only those are encoded anew.
        list.devices[2] = Self.device("d2", driver: "virtio_vdpa")
        list.devices.remove(at: 4)
        list.devices.append(Self.device("e0", managed: false))
        #expect(try encoder.encode(list) == RPCJSON.encode(list))
        let empty = DevListResult(devices: [], vanished: [])
        #expect(try encoder.encode(empty) == RPCJSON.encode(empty))
        let decoded = try JSONDecoder().decode(DevListResult.self, from: Data(try encoder.encode(list)))
        #expect(decoded == list)
    }
}
