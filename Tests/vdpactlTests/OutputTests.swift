import Foundation
import Testing
import VDPACtl
import VDPAPolicy
import VDPARPC
import VirtioModel

/// Golden text and JSON for fixed results (no daemon): iproute2's layout and shapes.
@Suite struct OutputTests {
    static let simulatorNet = ManagementDeviceInfo(
        handle: "vdpasim_net", bus: nil, name: "vdpasim_net", supportedClasses: ["net"], maxSupportedVqs: 3,
        supportedFeatures: FeatureSetInfo(VirtioFeatures(rawValue: 0x3_0883_0028), deviceType: .network))
    static let simulatorBlock = ManagementDeviceInfo(
        handle: "vdpasim_blk", bus: nil, name: "vdpasim_blk", supportedClasses: ["block"], maxSupportedVqs: 1,
        supportedFeatures: FeatureSetInfo(VirtioFeatures(rawValue: 0x3_0000_0646), deviceType: .block))
    static let pciParent = ManagementDeviceInfo(
        handle: "pci/0000:41:00.2", bus: "pci", name: "0000:41:00.2", supportedClasses: ["net"], maxSupportedVqs: 257,
        supportedFeatures: nil)

    static let device = DeviceInfo(
        name: "vdpa0", type: "network", deviceID: 1, mgmtdev: "vdpasim_net", vendorID: 0, maxVqs: 3, maxVqSize: 256,
        minVqSize: 64, driver: "vhost_vdpa", vhostDevice: "/dev/vhost-vdpa-0", virtioDevice: nil, netdevs: [], blockDevices: [],
        managed: true, record: nil)
    static let boundDevice = DeviceInfo(
        name: "vdpa1", type: "network", deviceID: 1, mgmtdev: "pci/0000:41:00.2", vendorID: 5555, maxVqs: 9, maxVqSize: 1024,
        minVqSize: nil, driver: "virtio_vdpa", vhostDevice: nil, virtioDevice: "virtio3", netdevs: ["eth3"], blockDevices: [],
        managed: false, record: nil)

    static let netConfig = DeviceConfigInfo(
        name: "vdpa0", type: "network", deviceID: 1,
        deviceFeatures: FeatureSetInfo(VirtioFeatures(rawValue: 0x3_0883_0028), deviceType: .network),
        negotiatedFeatures: FeatureSetInfo(VirtioFeatures(rawValue: 0x3_0083_0028 | 1 << 6), deviceType: .network),
        net: NetConfigInfo(mac: "52:54:00:00:00:10", status: 1, linkUp: true, linkAnnounce: false, maxVqPairs: 1, mtu: 1500),
        block: nil)
    static let unnegotiatedConfig = DeviceConfigInfo(
        name: "vdpa2", type: "network", deviceID: 1, deviceFeatures: nil, negotiatedFeatures: nil,
        net: NetConfigInfo(mac: "00:00:00:00:00:00", status: 3, linkUp: nil, linkAnnounce: nil, maxVqPairs: nil, mtu: 9000),
        block: nil)
    static var blockConfig: DeviceConfigInfo {
        var block = BlockConfigInfo()
        block.capacity = 262_144
        block.sizeMax = 4096
        block.segMax = 32
        block.blkSize = 512
        return DeviceConfigInfo(name: "blk0", type: "block", deviceID: 2, deviceFeatures: nil,
                                negotiatedFeatures: FeatureSetInfo(VirtioFeatures(rawValue: 0x1_0000_0006), deviceType: .block),
                                net: nil, block: block)
    }

    static let stats = DevVstatsGetResult(name: "vdpa0", qidx: 1, queueType: "tx", negotiatedFeatures: nil, maxVqPairs: 1,
                                          stats: [VendorStatInfo(name: "received_desc", value: 114_855), VendorStatInfo(name: "completed_desc", value: 114_617)])

    private func compact(_ value: JSONValue) -> String { JSONWriter.write(value, pretty: false) }

    // MARK: iproute2 feature names

    @Test func featureNamesAreIproute2s() {
        // The catalogue names bit 6 GSO and 41 ADMIN_VQ; iproute2 does not.
        let features = VirtioFeatures(bits: [0, 5, 6, 24, 27, 28, 32, 38, 39, 41, 42, 50, 57, 63])
        #expect(features.iproute2Names(for: .network) == [
            "CSUM", "MAC", "bit_6", "NOTIFY_ON_EMPTY", "ANY_LAYOUT", "RING_INDIRECT_DESC", "VERSION_1", "NOTIFICATION_DATA",
            "bit_39", "bit_41", "bit_42", "bit_50", "HASH_REPORT", "SPEED_DUPLEX",
        ])
        // Other classes: only the transport bits have names.
        #expect(VirtioFeatures(rawValue: 0x3_0000_0646).iproute2Names(for: .block) == [
            "bit_1", "bit_2", "bit_6", "bit_9", "bit_10", "VERSION_1", "ACCESS_PLATFORM",
        ])
        #expect(VirtioFeatures(bits: [24, 27]).iproute2Names(for: nil) == ["bit_24", "bit_27"])
    }

    // MARK: mgmtdev

    @Test func mgmtdevText() {
        #expect(TextRenderer.mgmtdevs([Self.simulatorNet, Self.simulatorBlock, Self.pciParent]) == """
            vdpasim_net: 
              supported_classes net
              max_supported_vqs 3
              dev_features MTU MAC STATUS CTRL_VQ CTRL_MAC_ADDR ANY_LAYOUT VERSION_1 ACCESS_PLATFORM
            vdpasim_blk: 
              supported_classes block
              max_supported_vqs 1
              dev_features bit_1 bit_2 bit_6 bit_9 bit_10 VERSION_1 ACCESS_PLATFORM
            pci/0000:41:00.2: 
              supported_classes net
              max_supported_vqs 257

            """)
    }

    @Test func mgmtdevJSON() {
        #expect(compact(JSONRenderer.mgmtdevs([Self.simulatorNet, Self.pciParent])) == """
            {"mgmtdev":{"vdpasim_net":{"supported_classes":["net"],"max_supported_vqs":3,"dev_features":\
            ["MTU","MAC","STATUS","CTRL_VQ","CTRL_MAC_ADDR","ANY_LAYOUT","VERSION_1","ACCESS_PLATFORM"]},\
            "pci/0000:41:00.2":{"supported_classes":["net"],"max_supported_vqs":257}}}
            """)
    }

    @Test func prettyJSONLooksLikeIproute2s() {
        #expect(JSONWriter.write(JSONRenderer.mgmtdevs([Self.simulatorBlock]), pretty: true) == """
            {
                "mgmtdev": {
                    "vdpasim_blk": {
                        "supported_classes": [ "block" ],
                        "max_supported_vqs": 1,
                        "dev_features": [ "bit_1","bit_2","bit_6","bit_9","bit_10","VERSION_1","ACCESS_PLATFORM" ]
                    }
                }
            }
            """)
        #expect(JSONWriter.write(JSONRenderer.devices([]), pretty: true) == "{\n    \"dev\": {}\n}")
    }

    // MARK: dev

    @Test func devText() {
        #expect(TextRenderer.devices([Self.device, Self.boundDevice]) == """
            vdpa0: type network mgmtdev vdpasim_net vendor_id 0 max_vqs 3 max_vq_size 256
              driver vhost_vdpa vhost_vdpa /dev/vhost-vdpa-0 managed true
            vdpa1: type network mgmtdev pci/0000:41:00.2 vendor_id 5555 max_vqs 9 max_vq_size 1024
              driver virtio_vdpa virtio_device virtio3 netdev eth3 managed false

            """)
        var held = Self.device
        held.held = HeldDeviceInfo(port: "vm1", backendFeatures: ["IOTLB_MSG_V2", "SUSPEND", "RESUME"], suspend: true, resume: true)
        #expect(TextRenderer.devices([held]).hasSuffix("managed true port vm1 backend_features IOTLB_MSG_V2 SUSPEND RESUME\n"))
    }

    @Test func devJSONHasIproute2sKeysOnly() {
        #expect(compact(JSONRenderer.devices([Self.device, Self.boundDevice])) == """
            {"dev":{"vdpa0":{"type":"network","mgmtdev":"vdpasim_net","vendor_id":0,"max_vqs":3,"max_vq_size":256},\
            "vdpa1":{"type":"network","mgmtdev":"pci/0000:41:00.2","vendor_id":5555,"max_vqs":9,"max_vq_size":1024}}}
            """)
    }

    // MARK: dev config

    @Test func configText() {
        #expect(TextRenderer.configs([Self.netConfig, Self.unnegotiatedConfig, Self.blockConfig]) == """
            vdpa0: mac 52:54:00:00:00:10 link up link_announce false max_vq_pairs 1 mtu 1500 
              negotiated_features MTU MAC bit_6 STATUS CTRL_VQ CTRL_MAC_ADDR VERSION_1 ACCESS_PLATFORM
            vdpa2: mac 00:00:00:00:00:00 link up link_announce true mtu 9000 
            blk0: capacity 262144 size_max 4096 seg_max 32 blk_size 512 
              negotiated_features bit_1 bit_2 VERSION_1

            """)
    }

    @Test func configJSONHasTheLinkKeysWithoutTheStraySpace() throws {
        let json = compact(JSONRenderer.configs([Self.netConfig, Self.unnegotiatedConfig]))
        #expect(json == """
            {"config":{"vdpa0":{"mac":"52:54:00:00:00:10","link":"up","link_announce":false,"max_vq_pairs":1,"mtu":1500,\
            "negotiated_features":["MTU","MAC","bit_6","STATUS","CTRL_VQ","CTRL_MAC_ADDR","VERSION_1","ACCESS_PLATFORM"]},\
            "vdpa2":{"mac":"00:00:00:00:00:00","link":"up","link_announce":true,"mtu":9000}}}
            """)
        #expect(!json.contains("link \""))
        // Valid JSON that Foundation reads back.
        _ = try JSONSerialization.jsonObject(with: Data(json.utf8))
    }

    @Test func blockConfigJSONCarriesVdpadsBlockFields() {
        #expect(compact(JSONRenderer.configs([Self.blockConfig])) == """
            {"config":{"blk0":{"capacity":262144,"size_max":4096,"seg_max":32,"blk_size":512,"negotiated_features":["bit_1","bit_2","VERSION_1"]}}}
            """)
    }

    // MARK: vstats, daemon status, events

    @Test func vstatsTextAndJSON() {
        #expect(TextRenderer.vstats(Self.stats) == "vdpa0: queue_type tx received_desc 114855 completed_desc 114617 \n")
        #expect(compact(JSONRenderer.vstats(Self.stats)) ==
                #"{"vstats":{"vdpa0":{"queue_type":"tx","received_desc":114855,"completed_desc":114617}}}"#)
    }

    @Test func daemonStatusTextAndJSON() throws {
        let status = DaemonStatusResult(
            version: "0.1.0", pid: 42, startedAt: "2025-01-01T00:00:00Z", uptimeSeconds: 61.5, kernelRelease: "6.12.0",
            vdpa: .init(available: false, reason: "no vdpa family"), socket: "/run/vdpad/vdpad.sock", stateDirectory: "/var/lib/vdpad",
            restoreOnStart: true, devices: .init(managed: 2, unmanaged: 1, vanished: 0), subscribers: 3, lastReconcile: nil)
        #expect(TextRenderer.daemonStatus(status) == """
            vdpad 0.1.0 pid 42 started_at 2025-01-01T00:00:00Z uptime 61s
              kernel 6.12.0 vdpa unavailable (no vdpa family)
              socket /run/vdpad/vdpad.sock state_dir /var/lib/vdpad restore_on_start true
              devices managed 2 unmanaged 1 vanished 0 subscribers 3 last_reconcile never

            """)
        // The JSON is the API's result object: it decodes back to the same value.
        let json = compact(JSONRenderer.daemonStatus(status))
        #expect(try JSONDecoder().decode(DaemonStatusResult.self, from: Data(json.utf8)) == status)
    }

    @Test func eventLines() throws {
        let bound = DeviceEvent(type: .driverBound, device: "vdpa0", origin: "vdpad", managed: true, time: "2025-01-01T00:00:00Z", driver: "virtio_vdpa")
        #expect(TextRenderer.event(bound) == "driver_bound dev vdpa0 origin vdpad managed true driver virtio_vdpa time 2025-01-01T00:00:00Z\n")
        let changed = DeviceEvent(type: .deviceChanged, device: "x", origin: "external", managed: false, time: "t", changes: ["mac", "mtu"])
        #expect(TextRenderer.event(changed) == "device_changed dev x origin external managed false changes mac,mtu time t\n")
        let json = compact(JSONRenderer.event(changed))
        #expect(json == #"{"type":"device_changed","device":"x","origin":"external","managed":false,"time":"t","changes":["mac","mtu"]}"#)
        #expect(try JSONDecoder().decode(DeviceEvent.self, from: Data(json.utf8)) == changed)
    }

    // MARK: port, vq

    static let runningPort = PortInfo(
        state: "running", name: "p0", socket: "/run/vdpad/ports/p0.sock", device: "vdpa0",
        consumer: .init(features: FeatureList(VirtioFeatures(rawValue: 0x1_0001_0020), deviceType: .network), memoryRegions: 1, queues: [0, 1], driverOK: true),
        backend: .init(device: "vdpa0", path: "/dev/vhost-vdpa-0", mgmtdev: "vdpasim_net",
                       deviceFeatures: FeatureList(VirtioFeatures(rawValue: 0x3_0001_0020), deviceType: .network),
                       backendFeatures: ["IOTLB_MSG_V2", "IOTLB_BATCH", "SUSPEND", "RESUME"], suspend: true, resume: true, queueCount: 3, maxQueueSize: 256))
    static let waitingPort = PortInfo(state: "waiting", name: "p1", socket: "/run/vdpad/ports/p1.sock", device: nil, consumer: nil, backend: nil)

    static let splitState = VirtqueueStateDocument(
        name: "s1", host: "hv1", takenAt: "2025-01-01T00:00:00Z", vdpadVersion: "0.1.0",
        source: .init(device: "vdpa0", mgmtdev: "vdpasim_net", port: "p0"), deviceType: .network,
        deviceFeatures: VirtioFeatures(rawValue: 0x3_0001_0020), negotiatedFeatures: VirtioFeatures(rawValue: 0x3_0001_0020),
        backendFeatures: ["SUSPEND", "RESUME"], status: ["ACKNOWLEDGE", "DRIVER", "FEATURES_OK", "DRIVER_OK"],
        config: [0x52, 0x54, 0, 0, 0, 0x10, 1, 0], queueCount: 3,
        queues: [.init(index: 0, size: 256, layout: .split, base: 17, enabled: true), .init(index: 1, size: 256, layout: .split, base: 5, enabled: false)],
        control: .init(mac: "52:54:00:00:00:10", linkUp: true))
    /// avail 17 with its wrap counter set, used 12 with it clear.
    static let packedState = VirtqueueStateDocument(
        name: "s2", host: "hv2", takenAt: "2025-01-02T00:00:00Z", vdpadVersion: nil,
        source: .init(device: "vdpa1", mgmtdev: nil, port: nil), deviceType: .network,
        deviceFeatures: VirtioFeatures(rawValue: 0x7_0001_0020), negotiatedFeatures: VirtioFeatures(rawValue: 0x7_0001_0020),
        backendFeatures: [], status: [], config: [], queueCount: 2,
        queues: [.init(index: 0, size: 1024, layout: .packed, base: 0x000C_8011, enabled: true)], control: nil)

    @Test func portText() {
        #expect(TextRenderer.ports([Self.runningPort, Self.waitingPort]) == """
            p0: state running socket /run/vdpad/ports/p0.sock dev vdpa0
              consumer memory_regions 1 queues 0 1 driver_ok true
              consumer_features MAC STATUS VERSION_1
              backend hardware vdpa0 path /dev/vhost-vdpa-0 mgmtdev vdpasim_net queue_count 3 max_queue_size 256 suspend true resume true
              backend_features IOTLB_MSG_V2 IOTLB_BATCH SUSPEND RESUME
              device_features MAC STATUS VERSION_1 ACCESS_PLATFORM
            p1: state waiting socket /run/vdpad/ports/p1.sock dev none

            """)
        #expect(TextRenderer.ports([]) == "")
    }

    @Test func portJSON() throws {
        let json = compact(JSONRenderer.ports([Self.runningPort, Self.waitingPort]))
        #expect(json == """
            {"port":{"p0":{"state":"running","socket":"/run/vdpad/ports/p0.sock","dev":"vdpa0",\
            "consumer":{"features":["MAC","STATUS","VERSION_1"],"memory_regions":1,"queues":[0,1],"driver_ok":true},\
            "backend":{"type":"hardware","dev":"vdpa0","path":"/dev/vhost-vdpa-0","mgmtdev":"vdpasim_net","queue_count":3,"max_queue_size":256,\
            "suspend":true,"resume":true,"backend_features":["IOTLB_MSG_V2","IOTLB_BATCH","SUSPEND","RESUME"],\
            "device_features":["MAC","STATUS","VERSION_1","ACCESS_PLATFORM"]}},\
            "p1":{"state":"waiting","socket":"/run/vdpad/ports/p1.sock"}}}
            """)
        _ = try JSONSerialization.jsonObject(with: Data(json.utf8))
        #expect(compact(JSONRenderer.ports([])) == #"{"port":{}}"#)
    }

    @Test func vqListTextAndJSON() {
        let states = [
            VqStateSummary(name: "s1", device: "vdpa0", port: "p0", origin: "saved", host: "hv1", takenAt: "2025-01-01T00:00:00Z", queues: 2),
            VqStateSummary(name: "s2", device: "vdpa1", port: nil, origin: "imported", host: "hv2", takenAt: "2025-01-02T00:00:00Z", queues: 1),
        ]
        #expect(TextRenderer.vqStates(states) == """
            s1: dev vdpa0 port p0 origin saved host hv1 taken_at 2025-01-01T00:00:00Z queues 2
            s2: dev vdpa1 port none origin imported host hv2 taken_at 2025-01-02T00:00:00Z queues 1

            """)
        #expect(compact(JSONRenderer.vqStates(states)) == """
            {"vq":{"s1":{"dev":"vdpa0","port":"p0","origin":"saved","host":"hv1","taken_at":"2025-01-01T00:00:00Z","queues":2},\
            "s2":{"dev":"vdpa1","origin":"imported","host":"hv2","taken_at":"2025-01-02T00:00:00Z","queues":1}}}
            """)
    }

    @Test func vqStateTextShowsEveryQueue() {
        #expect(TextRenderer.vqState(VqStateInfo(origin: "saved", state: Self.splitState)) == """
            s1: dev vdpa0 port p0 origin saved host hv1 taken_at 2025-01-01T00:00:00Z
              type network mgmtdev vdpasim_net queue_count 3 mac 52:54:00:00:00:10 link up
              negotiated_features MAC STATUS VERSION_1 ACCESS_PLATFORM
              vq 0: size 256 base 17 avail 17 used 17 enabled
              vq 1: size 256 base 5 avail 5 used 5 disabled

            """)
        // Packed rings: the wrap counters beside each index; a save adds its timings, in step order.
        let saved = VqStateInfo(origin: "imported", state: Self.packedState, timingsUs: ["store", "suspend", "read_base", "status_config"].enumerated()
            .reduce(into: [:]) { $0[$1.element] = 10 * ($1.offset + 1) })
        #expect(TextRenderer.vqState(saved) == """
            s2: dev vdpa1 port none origin imported host hv2 taken_at 2025-01-02T00:00:00Z
              type network queue_count 2
              negotiated_features MAC STATUS VERSION_1 ACCESS_PLATFORM RING_PACKED
              vq 0: size 1024 base 819217 avail 17 avail_wrap 1 used 12 used_wrap 0 enabled
              timings_us suspend 20 read_base 30 status_config 40 store 10 total 100

            """)
    }

    @Test func vqStateJSON() throws {
        let json = compact(JSONRenderer.vqState(VqStateInfo(origin: "saved", state: Self.splitState)))
        #expect(json == """
            {"vq":{"s1":{"dev":"vdpa0","port":"p0","origin":"saved","host":"hv1","taken_at":"2025-01-01T00:00:00Z","queues":2,\
            "type":"network","mgmtdev":"vdpasim_net","queue_count":3,"mac":"52:54:00:00:00:10","link":"up",\
            "negotiated_features":["MAC","STATUS","VERSION_1","ACCESS_PLATFORM"],\
            "vqs":[{"index":0,"size":256,"layout":"split","base":17,"avail":17,"used":17,"enabled":true},\
            {"index":1,"size":256,"layout":"split","base":5,"avail":5,"used":5,"enabled":false}]}}}
            """)
        _ = try JSONSerialization.jsonObject(with: Data(json.utf8))
        let packed = compact(JSONRenderer.vqState(VqStateInfo(origin: "imported", state: Self.packedState, timingsUs: ["suspend": 5, "zz_extra": 1, "store": 7])))
        #expect(packed.contains(#""vqs":[{"index":0,"size":1024,"layout":"packed","base":819217,"avail":17,"used":12,"avail_wrap_counter":true,"used_wrap_counter":false,"enabled":true}]"#))
        #expect(packed.hasSuffix(#""timings_us":{"suspend":5,"store":7,"zz_extra":1}}}}"#))
    }

    @Test func aPortMoveSaysHowLongTheRingsStopped() {
        var port = PortInfo(state: "running", name: "vm1", socket: "/run/vdpad/ports/vm1.sock", device: "vdpa1", consumer: nil, backend: nil)
        #expect(TextRenderer.portMove(port) == "")
        port.timingsUs = ["open": 300, "suspend": 7, "read_base": 24, "vring_base": 27, "driver_ok": 6, "pause": 70, "release": 100]
        #expect(TextRenderer.portMove(port) == """
            vm1: moved to vdpa1 pause 70
              timings_us open 300 suspend 7 read_base 24 release 100 vring_base 27 driver_ok 6 pause 70 total 464

            """)
        #expect(compact(JSONRenderer.portMove(port)) == """
            {"port":{"vm1":{"dev":"vdpa1","timings_us":{"open":300,"suspend":7,"read_base":24,"release":100,"vring_base":27,"driver_ok":6,"pause":70}}}}
            """)
    }

    @Test func vqRestoreTextAndJSON() {
        let result = VqStateRestoreResult(name: "s1", device: "vdpa1", port: "p0", replayed: ["mac"],
                                          timingsUs: ["driver_ok": 50, "release": 10, "open": 30, "mac": 20, "vrings": 40, "pause": 900])
        #expect(TextRenderer.vqRestore(result) == """
            s1: dev vdpa1 port p0 replayed mac
              timings_us mac 20 open 30 vrings 40 release 10 driver_ok 50 pause 900 total 150

            """)
        #expect(compact(JSONRenderer.vqRestore(result)) == """
            {"vq":{"s1":{"dev":"vdpa1","port":"p0","replayed":["mac"],\
            "timings_us":{"mac":20,"open":30,"vrings":40,"release":10,"driver_ok":50,"pause":900}}}}
            """)
        let nothingReplayed = VqStateRestoreResult(name: "s1", device: "vdpa0", port: "p0", replayed: [], timingsUs: [:])
        #expect(TextRenderer.vqRestore(nothingReplayed) == "s1: dev vdpa0 port p0 replayed none\n  timings_us total 0\n")
    }

    @Test func stringsAreEscaped() throws {
        let value = JSONValue.object([("a\"b", .string("line\nbreak\u{1}\\"))])
        let text = compact(value)
        #expect(text == #"{"a\"b":"line\nbreak\u0001\\"}"#)
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(decoded["a\"b"] == "line\nbreak\u{1}\\")
    }
}

/// How API errors are reported: the daemon's message, and the kernel's reason from `data`.
@Suite struct ErrorReportTests {
    @Test func kernelRefusalIsSaidOnceWithErrnoAndExtack() {
        let error = RPCErrorObject(code: .notSupported, message: "vdpa: Some provided attributes are not supported: 0x1000 (kernel answers: Operation not supported)",
                                   data: RPCErrorData(errno: 95, errnoName: "EOPNOTSUPP", extack: "vdpa: Some provided attributes are not supported: 0x1000",
                                                      operation: "VDPA_CMD_DEV_NEW d1"))
        #expect(ErrorReport.lines(for: error) == ["kernel answered: Operation not supported (EOPNOTSUPP): vdpa: Some provided attributes are not supported: 0x1000"])
    }

    @Test func otherFailuresWithAnErrnoKeepTheDaemonsMessage() {
        let error = RPCErrorObject(code: .sysfsFailure, message: "write /sys/bus/vdpa/drivers/virtio_vdpa/bind: Device or resource busy",
                                   data: RPCErrorData(errno: 16, errnoName: "EBUSY", operation: "write /sys/bus/vdpa/drivers/virtio_vdpa/bind"))
        #expect(ErrorReport.lines(for: error) == [
            "write /sys/bus/vdpa/drivers/virtio_vdpa/bind: Device or resource busy",
            "kernel answered: Device or resource busy (EBUSY)",
        ])
    }

    @Test func errorsWithoutKernelDataAreTheMessage() {
        let error = RPCErrorObject(code: .invalidParams, message: "mtu must be at least 68", data: RPCErrorData(parameter: "mtu"))
        #expect(ErrorReport.lines(for: error) == ["mtu must be at least 68 (parameter mtu)"])
        #expect(ErrorReport.lines(for: RPCErrorObject(code: .unmanagedDevice, message: "not created by vdpad")) == ["not created by vdpad"])
    }
}
