import VDPAPolicy
import VirtioModel

/// libFuzzer entry point for quirk files and `quirk_test` text: the bytes are one file's text,
/// parsed as `quirks.d` is read, and every quirk that parses is matched and applied to the
/// management devices below, as capabilities, `dev_add` and `quirk_test` do. Properties checked
/// (a violation stops the run): a file parses the same way twice; a quirk only ever lowers a
/// limit; bits a quirk clears are gone from the outcome.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQuirks(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let (database, errors) = QuirkDatabase.load([("fuzz.conf", text)])
    let again = QuirkDatabase.load([("fuzz.conf", text)])
    precondition(again.database == database && again.errors == errors, "a quirk file parsed two ways")
    for error in errors { _ = error.description }
    let limits = DeviceLimits(maxQueuePairs: 8, maxQueueSize: 256, maxMTU: 9000)
    for identity in identities {
        for deviceType in [VirtioDeviceType.network, .block] {
            let outcome = database.apply(to: offered, limits: limits, attributes: AttributeAbilities(), identity: identity, deviceType: deviceType)
            for (limit, bound) in [(outcome.limits.maxQueuePairs, 8), (outcome.limits.maxMTU, 9000), (outcome.limits.maxQueueSize, 256)] {
                if let limit { precondition(limit <= bound, "a quirk raised a limit: \(limit) over \(bound)") }
            }
            // Without a quirk that sets bits, every bit a matching quirk clears is gone.
            let matching = database.matching(identity, deviceType: deviceType)
            let sets = matching.contains { $0.actions.contains { if case .set = $0 { true } else { false } } }
            if !sets {
                for quirk in matching {
                    for case .clear(let bits) in quirk.actions {
                        precondition(outcome.features.intersection(bits).isEmpty, "bits cleared by \(quirk.name) survived")
                    }
                }
            }
        }
    }
    return 0
}

/// Bits a management device offers before its quirks.
let offered = VirtioFeatures(rawValue: 0x1_3000_7fff)

/// Management devices of each kind a quirk may match: PCI with IDs, auxiliary, the simulator.
let identities = [
    DeviceIdentity(bus: "pci", name: "0000:65:00.2", driver: "mlx5_core", pciVendor: 0x15b3, pciDevice: 0x101e, pciSubsystemVendor: 0x15b3, pciSubsystemDevice: 0x0001),
    DeviceIdentity(bus: "auxiliary", name: "mlx5_core.sf.1", driver: "mlx5_core.sf"),
    DeviceIdentity(bus: nil, name: "vdpasim_net"),
    DeviceIdentity(bus: "pci", name: "0000:3b:00.1", driver: "ifcvf", pciVendor: 0x1af4, pciDevice: 0x1041),
]
