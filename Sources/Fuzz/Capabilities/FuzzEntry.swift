import Foundation
import VDPAPolicy
import VirtioModel

/// libFuzzer entry point for capabilities documents (`vdpad.caps/v1`, as `compat_check` and
/// `compat_baseline` receive them from other hosts): the bytes are one JSON document. It is
/// decoded, compared against requirements of both device types, and baselined alone and with
/// this host's document. Properties: a document survives encoding unchanged; a baseline, when
/// there is one, is a valid profile that every chosen management device can present.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapabilities(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    guard let document = try? JSONDecoder().decode(CapabilitiesDocument.self, from: bytes) else { return 0 }
    let encoded: Data
    do { encoded = try JSONEncoder().encode(document) } catch { preconditionFailure("a capabilities document does not encode: \(error)") }
    guard let reread = try? JSONDecoder().decode(CapabilitiesDocument.self, from: encoded) else {
        preconditionFailure("a capabilities document does not decode as written: \(String(decoding: encoded, as: UTF8.self))")
    }
    precondition(reread == document, "a capabilities document changed through its encoding")

    for requirement in requirements {
        for result in CompatibilityCheck.compare(source: requirement, document: document) { _ = result.reasons.map(\.message) }
    }
    for deviceType in [VirtioDeviceType.network, .block] {
        for documents in [[document], [document, local], [local, document, document]] {
            let result = Baseline.compute(over: documents, deviceType: deviceType)
            guard let profile = result.profile else { continue }
            let errors = profile.validate().filter { $0.severity == .error }
            precondition(errors.isEmpty, "a baseline is not a valid profile: \(errors.map(\.message))")
            for source in result.sources {
                guard let host = documents.first(where: { $0.host == source.host }), let mgmtdev = host.mgmtdev(source.mgmtdev),
                      let destination = DestinationCapability(host: host.host, mgmtdev: mgmtdev, deviceType: deviceType) else { continue }
                let check = CompatibilityCheck.compare(source: DeviceRequirement(profile: profile), destination: destination)
                precondition(check.answer != .incompatible, "\(source.host)'s \(source.mgmtdev) cannot present its own baseline: \(check.reasons.map(\.message))")
            }
        }
    }
    return 0
}

/// What sources present: a multiqueue network device with an MTU and a fixed MAC, a plain one, a block device.
let requirements = [
    DeviceRequirement(deviceType: .network, features: VirtioFeatures(rawValue: 0x1_3040_0023), mtu: 9000, queuePairs: 4, queueSize: 256,
                      mac: .fixed(MACAddress(bytes: [0x02, 0, 0, 0, 0, 1])!), needsSuspend: true, needsResume: true),
    DeviceRequirement(deviceType: .network, features: VirtioFeatures(rawValue: 0x1_0000_0000)),
    DeviceRequirement(deviceType: .block, features: VirtioFeatures(rawValue: 0x1_0000_0044), queueSize: 128),
]

/// This host: the simulators of Linux 6.12.
let local = CapabilitiesDocument(host: "local", mgmtdevs: [
    MgmtdevCapabilities.make(identity: DeviceIdentity(bus: nil, name: "vdpasim_net"), classes: [.network],
                             supportedFeatures: VirtioFeatures(rawValue: 0x1_3000_7fff), maxSupportedVqs: 3, maxQueueSize: 256,
                             attributes: AttributeAbilities(mac: true, mtu: true, maxVQP: true, deviceFeatures: true),
                             backend: BackendAbilities(suspend: true, resume: true)),
    MgmtdevCapabilities.make(identity: DeviceIdentity(bus: nil, name: "vdpasim_blk"), classes: [.block],
                             supportedFeatures: VirtioFeatures(rawValue: 0x1_0000_0044), maxSupportedVqs: 1, maxQueueSize: 256),
])
