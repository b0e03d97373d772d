import Foundation
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPASystem
import VirtioModel

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
        let queueSizes = inventory.entries.values.filter { $0.info.managementDevice == device.handle }.map { Int($0.info.maxVirtqueueSize) }
        return MgmtdevCapabilities.make(
            identity: identity, classes: device.supportedClasses, supportedFeatures: device.supportedFeatures,
            maxSupportedVqs: device.maxSupportedVirtqueues.map(Int.init), maxQueueSize: queueSizes.max(), quirks: policy.quirks)
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
        guard let handle = ManagementDeviceHandle(parsing: text) else {
            throw APIError.invalidParams("invalid management device handle '\(text)': expected [BUS/]NAME", parameter: parameter)
        }
        try await ensureKernel()
        let device = try await kernel.managementDevice(handle)
        return Self.compare(requirement, host: hostName, mgmtdev: await capabilities(of: device))
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
