import Foundation
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPASystem
import VirtioModel

/// What `dev_add` with a profile provisions, and what it records.
struct ProfileProvisioning: Sendable {
    var profile: Profile
    var request: DeviceCreateRequest
    /// The quirks in force on the management device for the profile's device type.
    var quirks: [String]
}

extension VDPAController {
    /// This host's name in capabilities documents.
    nonisolated var hostName: String { ProcessInfo.processInfo.hostName }

    /// What one management device can present, per device type, after the quirks in force.
    /// Its identity (driver, PCI IDs) comes from sysfs; the largest queue size from its
    /// existing devices, when it has some.
    func capabilities(of device: ManagementDevice) async -> MgmtdevCapabilities {
        let parent = await kernel.parentDevice(of: device.handle)
        let identity = DeviceIdentity(
            bus: device.handle.bus, name: device.handle.name, driver: parent.driver, pciVendor: parent.pciVendor,
            pciDevice: parent.pciDevice, pciSubsystemVendor: parent.pciSubsystemVendor, pciSubsystemDevice: parent.pciSubsystemDevice)
        // 0: the kernel did not report the device's max_vq_size.
        let queueSizes = inventory.entries.values.filter { $0.info.managementDevice == device.handle }.map { Int($0.info.maxVirtqueueSize) }.filter { $0 > 0 }
        var capabilities = MgmtdevCapabilities.make(
            identity: identity, classes: device.supportedClasses, supportedFeatures: device.supportedFeatures,
            maxSupportedVqs: device.maxSupportedVirtqueues.map(Int.init), maxQueueSize: queueSizes.max(), quirks: policy.quirks)
        // What vdpad saw on the devices it held for ports (VHOST_GET_BACKEND_FEATURES).
        if let observed = observedBackendAbilities[device.handle.description] { capabilities.backend = observed }
        return capabilities
    }

    // MARK: API: capabilities and compatibility

    /// This host's capabilities document (`vdpad.caps/v1`).
    public func exportCapabilities() async throws -> CapabilitiesDocument {
        try await ensureKernel()
        var mgmtdevs: [MgmtdevCapabilities] = []
        for device in try await kernel.managementDevices() {
            mgmtdevs.append(await capabilities(of: device))
        }
        return CapabilitiesDocument(host: hostName, kernelRelease: SystemInfo.kernelRelease, vdpadVersion: settings.version,
                                    generatedAt: Timestamp.string(Date()), mgmtdevs: mgmtdevs)
    }

    /// The migration pre-check: can the destination present exactly what the source presents?
    public func checkCompatibility(_ params: CompatCheckParams) async throws -> CompatCheckResult {
        let requirement = try await requirement(for: params.source)
        switch (params.destination.mgmtdev, params.destination.caps) {
        case (let text?, nil):
            return CompatCheckResult(try await compareLocally(requirement, mgmtdev: text, parameter: "destination.mgmtdev"))
        case (let handle, let document?):
            if let handle {
                guard let mgmtdev = document.mgmtdev(handle) else {
                    throw RPCErrorObject(code: .notFound, message: "the capabilities document of \(document.host) has no management device \(handle)",
                                         data: RPCErrorData(parameter: "destination.mgmtdev"))
                }
                return CompatCheckResult(Self.compare(requirement, host: document.host, mgmtdev: mgmtdev))
            }
            guard let best = CompatibilityCheck.compare(source: requirement, document: document).first else {
                throw APIError.invalidParams("the capabilities document of \(document.host) has no management devices", parameter: "destination.caps")
            }
            return CompatCheckResult(best)
        case (nil, nil):
            throw APIError.invalidParams("destination needs mgmtdev (a management device of this host) or caps (a capabilities document)", parameter: "destination")
        }
    }

    /// Compares with a management device of this host, quirks applied.
    func compareLocally(_ requirement: DeviceRequirement, mgmtdev text: String, parameter: String) async throws -> CompatibilityResult {
        try await compareLocallyWithCapabilities(requirement, mgmtdev: text, parameter: parameter).result
    }

    func compareLocallyWithCapabilities(_ requirement: DeviceRequirement, mgmtdev text: String, parameter: String) async throws
        -> (result: CompatibilityResult, capabilities: MgmtdevCapabilities) {
        guard let handle = ManagementDeviceHandle(parsing: text) else {
            throw APIError.invalidParams("invalid management device handle '\(text)': expected [BUS/]NAME", parameter: parameter)
        }
        try await ensureKernel()
        let device = try await kernel.managementDevice(handle)
        let capabilities = await capabilities(of: device)
        return (Self.compare(requirement, host: hostName, mgmtdev: capabilities), capabilities)
    }

    /// How `dev_add` with a profile provisions the device: the attributes of the check's plan
    /// (the MAC from the request or, for the `pool` policy, a new locally administered one),
    /// or `profile_incompatible` with every reason.
    // MARK: API: quirks

    /// The quirks in force (from `quirks_dir` at start) and where they apply on this host.
    public func listQuirks() async throws -> QuirkListResult {
        QuirkListResult(quirks: try await describe(policy.quirks.quirks), errors: policy.quirkErrors)
    }

    /// A quirk file checked without installing it.
    public func testQuirks(_ params: QuirkTestParams) async throws -> QuirkListResult {
        let (database, errors) = QuirkDatabase.load([(params.fileName ?? "quirk-test.conf", params.text)])
        return QuirkListResult(quirks: try await describe(database.quirks), errors: errors)
    }

    private func describe(_ quirks: [Quirk]) async throws -> [QuirkInfo] {
        var identities: [(DeviceIdentity, [VirtioDeviceType])] = []
        if family.isAvailable {
            for device in try await kernel.managementDevices() {
                identities.append(((await capabilities(of: device)).identity, device.supportedClasses))
            }
        }
        return quirks.map { quirk in
            QuirkInfo(quirk, appliesTo: identities.filter { identity, classes in
                classes.contains { quirk.match.matches(identity, deviceType: $0) }
            }.map { $0.0.handle })
        }
    }

    /// Without a profile, the quirks in force on the management device still shape every new
    /// device: bits they clear are masked through `device_features` (or refused when the caller
    /// asked for them), their caps on MTU and queue pairs hold, and the device records their
    /// names. Bits a quirk sets change what vdpad promises (capabilities, compatibility), not what
    /// the kernel is asked for: it would refuse bits the parent does not offer.
    func applyQuirks(to request: DeviceCreateRequest) async throws -> (request: DeviceCreateRequest, quirks: [String]) {
        guard !policy.quirks.quirks.isEmpty else { return (request, []) }
        let device = try await kernel.managementDevice(request.managementDevice)
        let capabilities = await capabilities(of: device)
        let type: VirtioDeviceType = device.supportedClasses.count == 1 ? device.supportedClasses[0] : .network
        guard let entry = capabilities.capabilities(for: type), !entry.quirks.isEmpty else { return (request, []) }
        let names = entry.quirks.map(\.name)
        let quirkList = names.joined(separator: ", ")
        var request = request
        let offered = entry.supportedFeatures ?? entry.features
        let cleared = offered.subtracting(entry.features)
        if !cleared.isEmpty {
            if let asked = request.deviceFeatures {
                let conflict = asked.intersection(cleared)
                guard conflict.isEmpty else {
                    throw APIError.invalidParams("device_features asks for \(conflict.names(for: type).joined(separator: ", ")), which quirk(s) \(quirkList) remove on \(request.managementDevice)", parameter: "device_features")
                }
            } else {
                request.deviceFeatures = FeatureRules.repaired(offered.intersection(entry.features), deviceType: type).features
            }
        }
        if let cap = entry.limits.maxMTU, let mtu = request.mtu, Int(mtu) > cap {
            throw APIError.invalidParams("mtu \(mtu) is over \(cap), the cap of quirk(s) \(quirkList) on \(request.managementDevice)", parameter: "mtu")
        }
        if let cap = entry.limits.maxQueuePairs, let pairs = request.maxVirtqueuePairs, Int(pairs) > cap {
            throw APIError.invalidParams("max_vqp \(pairs) is over \(cap), the cap of quirk(s) \(quirkList) on \(request.managementDevice)", parameter: "max_vqp")
        }
        return (request, names)
    }

    func planProvisioning(profile name: String, params: DevAddParams, request: DeviceCreateRequest) async throws -> ProfileProvisioning {
        for (given, parameter) in [(params.mtu != nil, "mtu"), (params.maxVqp != nil, "max_vqp"), (params.deviceFeatures != nil, "device_features")] where given {
            throw APIError.invalidParams("\(parameter) comes from the profile; leave it out with profile", parameter: parameter)
        }
        let profile = try requireProfile(name, parameter: "profile")
        let (result, capabilities) = try await compareLocallyWithCapabilities(DeviceRequirement(profile: profile), mgmtdev: params.mgmtdev, parameter: "mgmtdev")
        guard result.answer != .incompatible, let plan = result.plan else {
            throw RPCErrorObject(code: .profileIncompatible,
                                 message: "\(result.mgmtdev) cannot present profile \(profile.name): " + result.reasons.map(\.message).joined(separator: "; "),
                                 data: RPCErrorData(reasons: result.reasons.map(RPCErrorReason.init)))
        }
        var request = request
        request.mtu = plan.mtu.map(UInt16.init)
        request.maxVirtqueuePairs = plan.maxVQP.map(UInt16.init)
        request.deviceFeatures = plan.deviceFeatures?.hex.flatMap(VirtioFeatures.init(hex:))
        let entry = capabilities.capabilities(for: profile.deviceType)
        if request.deviceFeatures == nil, let supported = entry?.supportedFeatures, supported != profile.features {
            // Identical after quirks, but the kernel offers more (bits a quirk cleared): mask them.
            request.deviceFeatures = profile.features.intersection(supported)
        }
        switch plan.mac {
        case .none:
            if params.mac != nil { throw APIError.invalidParams("profile \(profile.name) sets no MAC (policy none)", parameter: "mac") }
        case .fixed(let address):
            if let given = request.macAddress, given != address {
                throw APIError.invalidParams("profile \(profile.name) fixes the MAC to \(address)", parameter: "mac")
            }
            request.macAddress = address
        case .pool:
            if request.macAddress == nil { request.macAddress = Self.newLocalMAC() }
        }
        return ProfileProvisioning(profile: profile, request: request, quirks: entry?.quirks.map(\.name) ?? [])
    }

    /// A random locally administered unicast address (IEEE 802: bit 1 of the first octet set,
    /// bit 0 clear), for profiles with the `pool` MAC policy.
    static func newLocalMAC() -> MACAddress {
        var bytes = (0..<6).map { _ in UInt8.random(in: 0...255) }
        bytes[0] = (bytes[0] & 0xfc) | 0x02
        guard let address = MACAddress(bytes: bytes) else { preconditionFailure("a MAC address from six bytes") }
        return address
    }

    static func compare(_ requirement: DeviceRequirement, host: String, mgmtdev: MgmtdevCapabilities) -> CompatibilityResult {
        guard let destination = DestinationCapability(host: host, mgmtdev: mgmtdev, deviceType: requirement.deviceType) else {
            let handle = mgmtdev.identity.handle
            return CompatibilityResult(answer: .incompatible, host: host, mgmtdev: handle, reasons: [
                CompatibilityReason(code: .deviceTypeUnsupported, message: "\(handle) does not create \(requirement.deviceType.typeName) devices"),
            ], notes: [], plan: nil)
        }
        return CompatibilityCheck.compare(source: requirement, destination: destination)
    }

    /// What the source of a check presents.
    func requirement(for source: CompatCheckParams.Source) async throws -> DeviceRequirement {
        let given = [source.profile != nil, source.device != nil, source.requirement != nil].filter { $0 }.count
        guard given == 1 else {
            throw APIError.invalidParams("source needs exactly one of profile, device or requirement", parameter: "source")
        }
        if let name = source.profile { return DeviceRequirement(profile: try requireProfile(name, parameter: "source.profile")) }
        if let requirement = source.requirement { return requirement }
        return try await requirement(ofDevice: source.device ?? "")
    }

    /// What a device of this host presents: the device features the kernel reports, and the
    /// configuration it was created with (vdpad's record) or, for other devices, reports.
    func requirement(ofDevice name: String) async throws -> DeviceRequirement {
        try await ensureKernel()
        let config = try await kernel.deviceConfig(named: name)
        guard let features = config.deviceFeatures else {
            throw RPCErrorObject(code: .notSupported, message: "the kernel does not report the device features of \(name)")
        }
        let record = records[name]
        var mtu = record?.mtu, pairs = record?.maxVirtqueuePairs
        var mac = MACPolicy.none
        if config.deviceType == .network {
            if mtu == nil, features.contains(.Net.mtu), let value = config.net?.mtu { mtu = Int(value) }
            if pairs == nil, features.contains(.Net.multiqueue), let value = config.net?.maxVirtqueuePairs { pairs = Int(value) }
            if features.contains(.Net.mac), let address = record?.macAddress.flatMap(MACAddress.init) ?? config.net?.macAddress, address.isValidUnicast {
                mac = .fixed(address)
            }
        }
        return DeviceRequirement(deviceType: config.deviceType, features: features, mtu: mtu, queuePairs: pairs, mac: mac)
    }

    /// The largest profile every host can present (`Baseline.compute`).
    public func computeBaseline(_ params: CompatBaselineParams) async throws -> Baseline.Result {
        var documents = params.documents ?? []
        if params.includeLocal == true { documents.insert(try await exportCapabilities(), at: 0) }
        guard !documents.isEmpty else {
            throw APIError.invalidParams("no capabilities documents: give documents, include_local or both", parameter: "documents")
        }
        var type = VirtioDeviceType.network
        if let text = params.deviceType {
            guard let parsed = VirtioDeviceType(name: text), parsed == .network || parsed == .block else {
                throw APIError.invalidParams("unknown device type '\(text)' (network, block)", parameter: "device_type")
            }
            type = parsed
        }
        let name = params.name ?? "baseline"
        if Profile(name: name, deviceType: type, features: .version1).validate().contains(where: { $0.code == .name }) {
            throw APIError.invalidParams("profile name '\(name)' must be 1–64 letters, digits, '-', '_' or '.'", parameter: "name")
        }
        return Baseline.compute(over: documents, deviceType: type, choices: params.choices ?? [:], name: name)
    }
}
