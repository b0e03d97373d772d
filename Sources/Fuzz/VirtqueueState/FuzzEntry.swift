import Foundation
import VDPAPolicy
import VirtioModel
import Virtqueue

/// libFuzzer entry point for saved virtqueue states (`vdpad.vqstate/v1`, as `vq_state_import`
/// receives them and the store gives them back): the bytes are one JSON document. It is decoded,
/// validated and checked for restore as the daemon does. Properties: a valid document survives
/// encoding unchanged; it restores onto the device it describes; every queue's base gives back
/// the entry it was decoded into.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVirtqueueState(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    guard let document = try? JSONDecoder().decode(VirtqueueStateDocument.self, from: bytes) else { return 0 }
    let problems = document.validate()
    _ = document.configBytes
    for target in targets { _ = document.restoreRefusals(onto: target).map(\.message) }
    guard problems.isEmpty else { return 0 }

    let encoded: Data
    do { encoded = try JSONEncoder().encode(document) } catch { preconditionFailure("a valid state does not encode: \(error)") }
    guard let reread = try? JSONDecoder().decode(VirtqueueStateDocument.self, from: encoded) else {
        preconditionFailure("a valid state does not decode as written: \(String(decoding: encoded, as: UTF8.self))")
    }
    precondition(reread == document, "a state changed through its encoding")

    // Valid means decodable features, config bytes and queues that fit.
    guard let negotiated = try? document.negotiated(), let config = document.configBytes else {
        preconditionFailure("validate() passed a state whose features or config do not decode")
    }
    let control = document.deviceType == .network ? VirtqueueStateDocument.ControlState(netConfig: config, features: negotiated) : nil
    let itself = RestoreTarget(device: document.source.device, deviceType: document.deviceType, offeredFeatures: negotiated,
                               backend: BackendAbilities(suspend: true, resume: true), queueCount: document.queueCount,
                               maximumQueueSize: document.queues.map(\.size).max() ?? 1, control: document.control)
    let refusals = document.restoreRefusals(onto: itself)
    precondition(refusals.isEmpty, "a state does not restore onto the device it describes: \(refusals.map(\.message))")
    _ = control.map { document.restoreRefusals(onto: RestoreTarget(device: "other", deviceType: .network, offeredFeatures: negotiated,
                                                                   backend: BackendAbilities(suspend: true), queueCount: document.queueCount,
                                                                   maximumQueueSize: 256, control: $0)) }
    for queue in document.queues {
        let decoded = VringBase.decode(queue.base, layout: queue.layout)
        precondition(decoded.encoded(for: queue.layout) == queue.base,
                     "queue \(queue.index): base \(queue.base) does not encode back")
    }
    return 0
}

/// Restore targets of both kinds: a simulator-like network device and a block device.
let targets = [
    RestoreTarget(device: "vdpa0", deviceType: .network, offeredFeatures: VirtioFeatures(rawValue: 0x1_3000_7fff),
                  backend: BackendAbilities(suspend: true, resume: true), queueCount: 3, maximumQueueSize: 256,
                  control: VirtqueueStateDocument.ControlState(mac: "02:00:00:00:00:01", mtu: 1500, maxVirtqueuePairs: 1, linkUp: true)),
    RestoreTarget(device: "blk0", deviceType: .block, offeredFeatures: VirtioFeatures(rawValue: 0x1_0000_0000),
                  backend: BackendAbilities(), queueCount: 1, maximumQueueSize: 128, control: nil),
]
