import VDPAPolicy
import VirtioModel

/// libFuzzer entry point for profile files (`profiles.d/*.json`, and `profile_add`'s document):
/// the bytes are one file's text. A profile that parses is written back as its file holds it
/// and must parse to the same profile; it is then checked against the destinations below, as
/// `compat_check` and `dev_add … profile` do, and its provisioning plan must respect the
/// destination's limits.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProfiles(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    switch ProfileFile.parse(text: text, fileName: "fuzz.json") {
    case .failure(let errors):
        for error in errors.errors { _ = error.description }
    case .success(let profile):
        let written = ProfileFile.encode(profile)
        guard case .success(let reread) = ProfileFile.parse(text: written, fileName: "fuzz.json") else {
            preconditionFailure("a profile does not parse as written: \(written)")
        }
        precondition(reread == profile, "a profile changed through its file: \(written)")
        let requirement = DeviceRequirement(profile: profile, needsSuspend: true)
        for destination in destinations {
            let result = CompatibilityCheck.compare(source: requirement, destination: destination)
            if let plan = result.plan, result.answer != .incompatible {
                if let mtu = plan.mtu, let limit = destination.limits.maxMTU { precondition(mtu <= limit, "a plan over the MTU limit") }
                if let pairs = plan.maxVQP, let limit = destination.limits.maxQueuePairs { precondition(pairs <= limit, "a plan over the pairs limit") }
            }
        }
    }
    return 0
}

/// A simulator-like destination and a capped one, each for both device types.
let destinations: [DestinationCapability] = [VirtioDeviceType.network, .block].flatMap { type in [
    DestinationCapability(mgmtdev: "vdpasim_\(type)", deviceType: type, features: VirtioFeatures(rawValue: 0x1_3000_7fff),
                          limits: DeviceLimits(maxQueuePairs: 4, maxQueueSize: 256, maxMTU: 9000),
                          attributes: AttributeAbilities(mac: true, mtu: true, maxVQP: true, deviceFeatures: true),
                          backend: BackendAbilities(suspend: true, resume: true)),
    DestinationCapability(mgmtdev: "pci/0000:65:00.2", deviceType: type, features: VirtioFeatures(rawValue: 0x1_0000_0021),
                          limits: DeviceLimits(maxQueuePairs: 1, maxQueueSize: 64, maxMTU: 1500)),
] }
