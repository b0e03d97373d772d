import Foundation
import Logging
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPAPorts
import VDPAStore
import VDPASystem
import VDPAVhost
import VirtioModel

/// The one place vdpad's behaviour lives. The JSON-RPC server and the
/// reconciler are thin shells over it; every API method is one call here.
///
/// Mutations follow one rule for durability: the intent is written to the state
/// store (one transaction) before the kernel is asked, and the outcome is written
/// before the caller gets an answer. `reconcile()` at start resolves whatever a
/// crash left in between, so an acknowledged change is never lost.
public actor VDPAController {
    public struct Settings: Sendable {
        public var restoreOnStart: Bool
        public var socketPath: String
        public var stateDirectory: String
        public var version: String
        /// Where the ports' vhost-user sockets live, and their group.
        public var portsDirectory: String
        public var portsGroup: String?
        /// The most guest memory one port's consumer may map (what its device pins).
        public var portMemoryLimit: UInt64
        /// Whether software ports' workers poll their rings without sleeping (a core each).
        public var portBusyPoll: Bool

        public init(restoreOnStart: Bool, socketPath: String, stateDirectory: String, version: String, portsDirectory: String? = nil,
                    portsGroup: String? = nil, portMemoryLimit: UInt64 = VhostUserPort.defaultMemoryLimit, portBusyPoll: Bool = false) {
            self.portMemoryLimit = portMemoryLimit
            self.portBusyPoll = portBusyPoll
            self.portsDirectory = portsDirectory ?? stateDirectory + "/ports"
            self.portsGroup = portsGroup
            self.restoreOnStart = restoreOnStart
            self.socketPath = socketPath
            self.stateDirectory = stateDirectory
            self.version = version
        }
    }

    /// What the start-up reconcile found.
    public struct ReconcileReport: Sendable, Hashable {
        public var adopted: [String] = []
        public var restored: [String] = []
        public var vanished: [String] = []
        public var unmanaged: [String] = []
        public var discarded: [String] = []
        public var failed: [String: String] = [:]
    }

    let kernel: any VDPAManaging
    let store: StateStore
    public nonisolated let events: EventHub
    let settings: Settings
    let logger: Logger
    /// Profiles and quirks read from their directories at start.
    let policy: LoadedPolicy
    /// Profiles added through the API, by name.
    var storedProfiles: [String: StoredProfile] = [:]
    let startedAt = Date()
    private lazy var startedAtText = Timestamp.string(startedAt)

    /// Opens `/dev/vhost-vdpa-N` for the ports (a fake in unit tests).
    let vhostOpener: any VhostVDPAOpening
    /// The ports being served, by name.
    var ports: [String: VhostUserPort] = [:]
    var portRecords: [String: PortRecord] = [:]
    var portsStarted = false
    /// Ports whose device work (attach, move, save, restore) is under way off the actor.
    var busyPorts = BusyNames(kind: "port")
    /// The devices ports hold, by device name (kept by `noteBackend`).
    var heldDevices: [String: HeldDeviceInfo] = [:]

    /// Device names with a change under way (add, delete, set, bind): one change of a name
    /// at a time, so two concurrent `dev_add` of one name cannot both win.
    var busyDevices = BusyNames(kind: "device")
    /// Counts the device changes begun: a kernel reading taken while one ran may be stale.
    var deviceChanges: UInt64 = 0

    var inventory = DeviceInventory()
    var records: [String: DeviceRecord] = [:]
    private(set) var family: VDPAFamilyStatus = .unavailable(reason: "not probed yet")
    private var lastReconcile: Date?
    private var cachedDeviceList: (generation: UInt64, recordsVersion: UInt64, bytes: [UInt8])?
    private let deviceListEncoder = DeviceListEncoder()
    var recordsVersion: UInt64 = 0
    private var cachedDeviceCounts: (generation: UInt64, recordsVersion: UInt64, counts: DaemonStatusResult.DeviceCounts)?

    public init(kernel: any VDPAManaging, store: StateStore, events: EventHub = EventHub(), settings: Settings, policy: LoadedPolicy = LoadedPolicy(),
                vhostOpener: any VhostVDPAOpening = VhostVDPADeviceOpener(), logger: Logger) {
        self.kernel = kernel
        self.vhostOpener = vhostOpener
        self.policy = policy
        self.store = store
        self.events = events
        self.settings = settings
        self.logger = logger
    }

    // MARK: Reconcile

    /// A round trip through the controller, and nothing else: the watchdog's proof that it answers.
    public func ping() {}

    /// Brings the records and the kernel into agreement at start (see ``ReconcileReport``).
    @discardableResult
    public func reconcile() async throws -> ReconcileReport {
        var report = ReconcileReport()
        try loadStoredProfiles()
        let stored = try store.devices()
        // Names that are one Swift string (canonically equivalent Unicode) but two SQLite keys
        // must not stop the start: the first kept, the others logged.
        records = Dictionary(stored.map { ($0.name, $0) }) { [logger] first, other in
            logger.error("Ignoring a device record whose name duplicates another's", metadata: ["vdpa.dev": "\(other.name)"])
            return first
        }
        recordsVersion &+= 1
        family = await kernel.familyStatus()
        guard family.isAvailable else {
            if case .unavailable(let reason) = family {
                logger.warning("Kernel vDPA support unavailable; serving the API without it", metadata: ["reason": "\(reason)"])
            }
            return report
        }
        let present = Set(try await kernel.devices().map(\.name))
        for record in stored {
            let exists = present.contains(record.name)
            switch (record.state, exists) {
            case (.creating, true):
                // vdpad stopped inside dev_add after the kernel made the device: finish what
                // dev_add would have done (the feature check, the driver), or undo it.
                do {
                    try await finishCreation(of: record, profile: record.profile.flatMap { profileForAdoption($0, version: record.profileVersion) })
                    report.adopted.append(record.name)
                } catch {
                    logger.error("A device vdpad was creating failed its checks; deleted", metadata: ["vdpa.dev": "\(record.name)", "error": "\(APIError.from(error).message)"])
                    try? await kernel.deleteDevice(named: record.name)
                    try store.delete(deviceNamed: record.name)
                    records[record.name] = nil
                    report.discarded.append(record.name)
                }
            case (.changing, true):
                // vdpad stopped inside dev_set or dev_bind: the record holds what was asked.
                do {
                    try await applyRecordedSettings(record)
                } catch {
                    logger.error("Could not carry out a recorded change", metadata: ["vdpa.dev": "\(record.name)", "error": "\(APIError.from(error).message)"])
                    report.failed[record.name] = APIError.from(error).message
                }
                try store.setState(.active, forDevice: record.name)
                records[record.name]?.state = .active
            case (.creating, false), (.deleting, false):
                try store.delete(deviceNamed: record.name)
                records[record.name] = nil
                report.discarded.append(record.name)
            case (.deleting, true), (.active, true), (.vanished, true):
                if record.state != .active {
                    try store.setState(.active, forDevice: record.name)
                    records[record.name]?.state = .active
                }
            case (.active, false), (.vanished, false), (.changing, false):
                if settings.restoreOnStart {
                    do {
                        try await recreate(record)
                        report.restored.append(record.name)
                    } catch {
                        let apiError = APIError.from(error)
                        logger.error("Could not restore device", metadata: ["vdpa.dev": "\(record.name)", "error": "\(apiError.message)"])
                        report.failed[record.name] = apiError.message
                        try markVanished(record.name)
                        report.vanished.append(record.name)
                    }
                } else {
                    try markVanished(record.name)
                    report.vanished.append(record.name)
                }
            }
        }
        recordsVersion &+= 1
        let reading = try await readKernel()
        _ = inventory.replace(with: reading)
        report.unmanaged = inventory.names.filter { records[$0] == nil }
        lastReconcile = Date()
        logger.info("Reconciled with the kernel", metadata: [
            "adopted": "\(report.adopted)", "restored": "\(report.restored)", "vanished": "\(report.vanished)",
            "unmanaged": "\(report.unmanaged)", "discarded": "\(report.discarded)",
        ])
        return report
    }

    private func markVanished(_ name: String) throws {
        try store.setState(.vanished, forDevice: name)
        records[name]?.state = .vanished
        recordsVersion &+= 1
    }

    /// Re-creates a recorded device after the kernel lost it (host reboot).
    private func recreate(_ record: DeviceRecord) async throws {
        let request = try createRequest(from: record)
        try await kernel.createDevice(request)
        if let driver = Self.recordedDriver(record) { try await kernel.bind(device: record.name, to: driver) }
        try store.setState(.active, forDevice: record.name)
        records[record.name]?.state = .active
        recordsVersion &+= 1
    }

    /// The driver a record asks for: nil when it asks for none, .some(nil) for "none" (unbound).
    static func recordedDriver(_ record: DeviceRecord) -> BusDriver?? {
        guard let driver = record.driver else { return nil }
        return .some(driver == "none" ? nil : BusDriver(rawValue: driver))
    }

    /// A profile a record names, at the version it was made from (nil when gone or changed).
    func profileForAdoption(_ name: String, version: Int?) -> Profile? {
        guard let profile = try? requireProfile(name, parameter: "profile"), version == nil || profile.version == version else { return nil }
        return profile
    }

    /// What `dev_add` does once the kernel made the device: the check of its device features
    /// (the requested ones, a profile's), the driver, and the record made active. Also run at
    /// start for a device vdpad stopped creating half-way (`kill -9` inside `dev_add`).
    @discardableResult
    func finishCreation(of record: DeviceRecord, profile: Profile?) async throws -> DeviceRecord {
        var record = record
        let config = try await kernel.deviceConfig(named: record.name)
        if let requested = record.requestedFeatures.flatMap(VirtioFeatures.init(hex:)), let reported = config.deviceFeatures, reported != requested {
            throw RPCErrorObject(code: .verificationFailed, message:
                "the kernel created \(record.name) with device features \(reported.hexString), not the requested \(requested.hexString)")
        }
        if let profile, let reported = config.deviceFeatures, reported != profile.features {
            let type = profile.deviceType
            let missing = profile.features.subtracting(reported).names(for: type)
            let extra = reported.subtracting(profile.features).names(for: type)
            throw RPCErrorObject(code: .verificationFailed, message:
                "the kernel created \(record.name) with device features \(reported.hexString), not profile \(profile.name)'s "
                + "\(profile.features.hexString) (missing: \(missing.isEmpty ? "none" : missing.joined(separator: ", ")); "
                + "extra: \(extra.isEmpty ? "none" : extra.joined(separator: ", ")))")
        }
        if let driver = Self.recordedDriver(record) { try await kernel.bind(device: record.name, to: driver) }
        record.provisionedFeatures = config.deviceFeatures?.hexString
        record.deviceType = Int(config.deviceType.rawValue)
        record.state = .active
        try store.save(record)
        records[record.name] = record
        recordsVersion &+= 1
        return record
    }

    /// Carries out what a record asks of an existing device: its MAC and its driver (after a
    /// stop inside `dev_set` or `dev_bind`, whose intent was recorded first).
    func applyRecordedSettings(_ record: DeviceRecord) async throws {
        if let text = record.macAddress, let mac = MACAddress(text), (try? await kernel.deviceConfig(named: record.name))?.net?.macAddress != mac {
            try await kernel.setMACAddress(device: record.name, to: mac)
        }
        if let driver = Self.recordedDriver(record), (try? await kernel.binding(ofDevice: record.name))?.driver != driver {
            try await kernel.bind(device: record.name, to: driver)
        }
    }

    /// Marks `name` busy with a change (the caller calls ``endDeviceChange(_:)``), or
    /// `try_again` when another change of it is under way.
    func beginDeviceChange(_ name: String, _ operation: String) throws {
        try busyDevices.claim(name, operation: "\(operation) \(name)")
        deviceChanges &+= 1
    }

    func endDeviceChange(_ name: String) {
        busyDevices.release(name)
        deviceChanges &+= 1
    }

    private func createRequest(from record: DeviceRecord) throws -> DeviceCreateRequest {
        // The record is the daemon's own, but a damaged database must fail this device, not the start.
        func field(_ value: Int?, _ name: String, _ range: ClosedRange<Int>) throws -> UInt16? {
            guard let value else { return nil }
            guard range.contains(value), let narrow = UInt16(exactly: value) else {
                throw RPCErrorObject(code: .stateStoreFailure, message: "the record of device \(record.name) holds \(name) \(value), outside \(range.lowerBound)–\(range.upperBound)")
            }
            return narrow
        }
        return DeviceCreateRequest(
            name: record.name,
            managementDevice: ManagementDeviceHandle(bus: record.managementBus, name: record.managementName),
            macAddress: record.macAddress.flatMap(MACAddress.init),
            mtu: try field(record.mtu, "mtu", VirtioBounds.mtu),
            maxVirtqueuePairs: try field(record.maxVirtqueuePairs, "max_vqp", VirtioBounds.queuePairs),
            deviceFeatures: record.requestedFeatures.flatMap(VirtioFeatures.init(hex:))
        )
    }

    /// Re-reads the kernel and publishes what changed since the last reading
    /// (changes made by anyone: iproute2, another tool, a driver unbinding).
    public func resync() async {
        let status = await kernel.familyStatus()
        if status.isAvailable != family.isAvailable {
            logger.notice("Kernel vDPA support changed", metadata: ["available": "\(status.isAvailable)"])
        }
        family = status
        guard family.isAvailable else { return }
        do {
            // A change that ran while the kernel was read (its awaits let it in) makes the
            // reading stale: a device added meanwhile would read as removed. Read again.
            var reading: [InventoryEntry]
            var attempts = 0
            repeat {
                let before = deviceChanges
                reading = try await readKernel()
                attempts += 1
                if before == deviceChanges && busyDevices.isEmpty { break }
                guard attempts < 3 else {
                    logger.debug("Resync skipped: devices kept changing while the kernel was read")
                    return
                }
            } while true
            for (name, change) in inventory.replace(with: reading) {
                if change == .removed, records[name]?.state == .active {
                    try markVanished(name)
                    publish(.deviceVanished, name, origin: "external")
                }
                publishChange(change, name, origin: "external")
            }
            lastReconcile = Date()
        } catch {
            logger.warning("Resync with the kernel failed", metadata: ["error": "\(error)"])
        }
    }

    private func readKernel() async throws -> [InventoryEntry] {
        var entries: [InventoryEntry] = []
        for info in try await kernel.devices() {
            entries.append(try await readEntry(info))
        }
        return entries
    }

    private func readEntry(_ info: VDPADeviceInfo) async throws -> InventoryEntry {
        let binding = (try? await kernel.binding(ofDevice: info.name)) ?? DeviceBinding()
        let net = info.deviceType == .network ? (try? await kernel.deviceConfig(named: info.name))?.net : nil
        return InventoryEntry(info: info, binding: binding, net: net)
    }

    private func refreshEntry(_ name: String) async throws -> InventoryEntry {
        let entry = try await readEntry(try await kernel.device(named: name))
        _ = inventory.update(entry)
        return entry
    }

    // MARK: Events

    private func publish(_ kind: DeviceEvent.Kind, _ name: String, origin: String, driver: String? = nil, changes: [String]? = nil) {
        let event = DeviceEvent(type: kind, device: name, origin: origin, managed: records[name] != nil,
                                time: Timestamp.string(Date()), driver: driver, changes: changes)
        logger.info("Device event", metadata: ["event": "\(kind.rawValue)", "vdpa.dev": "\(name)", "origin": "\(origin)"])
        events.publish(event)
    }

    private func publishChange(_ change: DeviceEventChange, _ name: String, origin: String) {
        switch change {
        case .added: publish(.deviceAdded, name, origin: origin, driver: inventory[name]?.binding.driver?.rawValue)
        case .removed: publish(.deviceRemoved, name, origin: origin)
        case .driverBound(let driver): publish(.driverBound, name, origin: origin, driver: driver?.rawValue)
        case .changed(let fields): publish(.deviceChanged, name, origin: origin, changes: fields)
        }
    }

    // MARK: API: daemon

    public func daemonStatus() -> DaemonStatusResult {
        let support: DaemonStatusResult.KernelSupport = switch family {
        case .available: .init(available: true, reason: nil)
        case .unavailable(let reason): .init(available: false, reason: reason)
        }
        return DaemonStatusResult(
            version: settings.version, pid: SystemInfo.processID, startedAt: startedAtText,
            uptimeSeconds: (Date().timeIntervalSince(startedAt) * 1000).rounded() / 1000,
            kernelRelease: SystemInfo.kernelRelease, vdpa: support, socket: settings.socketPath,
            stateDirectory: settings.stateDirectory, restoreOnStart: settings.restoreOnStart,
            devices: deviceCounts(),
            subscribers: events.subscriberCount, lastReconcile: lastReconcile.map(Timestamp.string))
    }

    /// Managed, unmanaged and vanished counts, recounted only when the inventory or
    /// the records changed (status is polled; thousands of devices change rarely).
    private func deviceCounts() -> DaemonStatusResult.DeviceCounts {
        if let cached = cachedDeviceCounts, cached.generation == inventory.generation, cached.recordsVersion == recordsVersion {
            return cached.counts
        }
        // Index lookups and in-place reads: no record is copied.
        var managed = 0
        for name in inventory.entries.keys where records.index(forKey: name) != nil { managed += 1 }
        var vanished = 0
        for index in records.values.indices where records.values[index].state == .vanished { vanished += 1 }
        let counts = DaemonStatusResult.DeviceCounts(managed: managed, unmanaged: inventory.entries.count - managed, vanished: vanished)
        cachedDeviceCounts = (inventory.generation, recordsVersion, counts)
        return counts
    }

    private func requireKernel() throws {
        if case .unavailable(let reason) = family {
            throw RPCErrorObject(code: .vdpaUnavailable, message: "the kernel has no vdpa support: \(reason)")
        }
    }

    /// Re-probes the family when it was missing (modules may have been loaded since).
    func ensureKernel() async throws {
        if !family.isAvailable {
            family = await kernel.familyStatus()
            if family.isAvailable { await resync() }
        }
        try requireKernel()
    }

    // MARK: API: management devices

    public func managementDevices(_ params: MgmtdevListParams) async throws -> MgmtdevListResult {
        try await ensureKernel()
        let devices: [ManagementDevice]
        if let text = params.mgmtdev {
            guard let handle = ManagementDeviceHandle(parsing: text) else {
                throw APIError.invalidParams("invalid management device handle '\(text)': expected [BUS/]NAME", parameter: "mgmtdev")
            }
            devices = [try await kernel.managementDevice(handle)]
        } else {
            devices = try await kernel.managementDevices()
        }
        return MgmtdevListResult(mgmtdevs: devices.map(Self.managementDeviceInfo))
    }

    static func managementDeviceInfo(_ device: ManagementDevice) -> ManagementDeviceInfo {
        // Feature names follow the first class (iproute2 does the same for net-capable parents).
        let type = device.supportedClasses.first
        return ManagementDeviceInfo(
            handle: device.handle.description, bus: device.handle.bus, name: device.handle.name,
            supportedClasses: device.supportedClasses.map(\.className), maxSupportedVqs: device.maxSupportedVirtqueues,
            supportedFeatures: device.supportedFeatures.map { FeatureSetInfo($0, deviceType: type) })
    }

    // MARK: API: devices

    func deviceInfo(_ entry: InventoryEntry) -> DeviceInfo {
        Self.deviceInfo(entry, record: records[entry.info.name], held: heldDevices[entry.info.name])
    }

    static func deviceInfo(_ entry: InventoryEntry, record: DeviceRecord?, held: HeldDeviceInfo?) -> DeviceInfo {
        DeviceInfo(
            name: entry.info.name, type: entry.info.deviceType.typeName, deviceID: entry.info.deviceType.rawValue,
            mgmtdev: entry.info.managementDevice.description, vendorID: entry.info.vendorID,
            maxVqs: entry.info.maxVirtqueues, maxVqSize: entry.info.maxVirtqueueSize, minVqSize: entry.info.minVirtqueueSize,
            driver: entry.binding.driver?.rawValue, vhostDevice: entry.binding.vhostDevicePath,
            virtioDevice: entry.binding.virtioDevice, netdevs: entry.binding.netdevs, blockDevices: entry.binding.blockDevices,
            managed: record != nil, record: record.map { recordInfo($0, deviceType: entry.info.deviceType) },
            held: held)
    }

    static func recordInfo(_ record: DeviceRecord, deviceType: VirtioDeviceType?) -> DeviceRecordInfo {
        let type = deviceType ?? record.deviceType.flatMap { UInt32(exactly: $0) }.map { VirtioDeviceType(rawValue: $0) }
        return DeviceRecordInfo(
            state: record.state.rawValue, createdAt: Timestamp.string(record.createdAt), mac: record.macAddress,
            mtu: record.mtu, maxVqp: record.maxVirtqueuePairs,
            deviceFeatures: record.requestedFeatures.flatMap(VirtioFeatures.init(hex:)).map { FeatureSetInfo($0, deviceType: type) },
            provisionedFeatures: record.provisionedFeatures.flatMap(VirtioFeatures.init(hex:)).map { FeatureSetInfo($0, deviceType: type) },
            driver: record.driver, profile: record.profile, profileVersion: record.profileVersion, quirks: record.quirks)
    }

    public func listDevices(_ params: DevListParams) async throws -> DevListResult {
        if params.refresh == true, family.isAvailable { await resync() }
        return Self.deviceList(inventory: inventory, records: records, held: heldDevices)
    }

    /// The `dev_list` answer of an inventory, the records and the devices ports hold.
    static func deviceList(inventory: DeviceInventory, records: [String: DeviceRecord], held: [String: HeldDeviceInfo]) -> DevListResult {
        DevListResult(
            devices: inventory.names.compactMap { name in inventory[name].map { deviceInfo($0, record: records[name], held: held[name]) } },
            vanished: records.values.filter { $0.state == .vanished }.sorted { $0.name < $1.name }.map {
                VanishedDeviceInfo(name: $0.name, mgmtdev: ManagementDeviceHandle(bus: $0.managementBus, name: $0.managementName).description,
                                   record: recordInfo($0, deviceType: nil))
            })
    }

    /// `dev_list` encoded once per inventory change: with thousands of devices the
    /// encoding, not the lookup, is the cost of an answer.
    public func encodedDeviceList(_ params: DevListParams) async throws -> [UInt8] {
        if params.refresh == true, family.isAvailable { await resync() }
        let (generation, version) = (inventory.generation, recordsVersion)
        if let cached = cachedDeviceList, cached.generation == generation, cached.recordsVersion == version {
            return cached.bytes
        }
        // Built and encoded off the actor (the dictionaries are copied on write, so taking them
        // costs nothing): other calls go on meanwhile.
        let (inventory, records, held) = (inventory, records, heldDevices)
        let bytes = try await deviceListEncoder.encode { Self.deviceList(inventory: inventory, records: records, held: held) }
        if generation == inventory.generation, version == recordsVersion {
            cachedDeviceList = (generation, version, bytes)
        }
        return bytes
    }

    public func device(_ params: DeviceNameParams) async throws -> DeviceInfo {
        try await ensureKernel()
        do {
            return deviceInfo(try await refreshEntry(params.name))
        } catch let error as VDPAError where error.errno == ErrnoCode.noSuchDevice {
            if inventory.remove(params.name) != nil { publish(.deviceRemoved, params.name, origin: "external") }
            throw error
        }
    }

    public func addDevice(_ params: DevAddParams) async throws -> DeviceInfo {
        var request = try Self.validate(params)
        let driver = try Self.parseDriver(params.driver, parameter: "driver")
        try beginDeviceChange(params.name, "add")
        defer { endDeviceChange(params.name) }
        try await ensureKernel()
        if let existing = records[params.name], existing.state != .vanished {
            throw RPCErrorObject(code: .alreadyExists, message: "device \(params.name) already exists (created by vdpad)")
        }
        // With a profile: plan against the management device and its quirks, and refuse with
        // every reason before any device exists.
        var provisioning: ProfileProvisioning?
        var quirks: [String]?
        if let name = params.profile {
            let planned = try await planProvisioning(profile: name, params: params, request: request)
            request = planned.request
            provisioning = planned
            quirks = planned.quirks
        } else {
            let shaped = try await applyQuirks(to: request)
            request = shaped.request
            quirks = shaped.quirks.isEmpty ? nil : shaped.quirks
        }
        var record = DeviceRecord(
            name: request.name, managementBus: request.managementDevice.bus, managementName: request.managementDevice.name,
            macAddress: request.macAddress?.description, mtu: request.mtu.map(Int.init),
            maxVirtqueuePairs: request.maxVirtqueuePairs.map(Int.init), requestedFeatures: request.deviceFeatures?.hexString,
            driver: driver.map { $0?.rawValue ?? "none" }, profile: provisioning?.profile.name, profileVersion: provisioning?.profile.version,
            quirks: quirks, state: .creating)
        try store.save(record)
        do {
            try await kernel.createDevice(request)
        } catch {
            try? store.delete(deviceNamed: request.name)
            throw error
        }
        do {
            record = try await finishCreation(of: record, profile: provisioning?.profile)
        } catch {
            // The caller gets an error, so nothing may remain: undo the creation.
            try? await kernel.deleteDevice(named: request.name)
            try? store.delete(deviceNamed: request.name)
            throw error
        }
        let entry = try await refreshEntry(request.name)
        publish(.deviceAdded, request.name, origin: "vdpad", driver: entry.binding.driver?.rawValue)
        return deviceInfo(entry)
    }

    static func validate(_ params: DevAddParams) throws -> DeviceCreateRequest {
        // ASCII only: two spellings of one Unicode name would be one Swift string but two keys
        // of the store.
        guard params.name.wholeMatch(of: /[A-Za-z0-9][A-Za-z0-9_.:-]{0,30}/) != nil else {
            throw APIError.invalidParams("invalid device name '\(params.name)': 1 to 31 letters, digits, '_', '.', ':', '-', starting with a letter or digit", parameter: "name")
        }
        guard let handle = ManagementDeviceHandle(parsing: params.mgmtdev) else {
            throw APIError.invalidParams("invalid management device handle '\(params.mgmtdev)': expected [BUS/]NAME", parameter: "mgmtdev")
        }
        var request = DeviceCreateRequest(name: params.name, managementDevice: handle)
        if let text = params.mac {
            guard let mac = MACAddress(text) else { throw APIError.invalidParams("invalid MAC address '\(text)'", parameter: "mac") }
            guard mac.isValidUnicast else { throw APIError.invalidParams("MAC address \(mac) is multicast or zero", parameter: "mac") }
            request.macAddress = mac
        }
        if let mtu = params.mtu {
            guard (68...65535).contains(mtu) else { throw APIError.invalidParams("MTU \(mtu) outside 68..65535", parameter: "mtu") }
            request.mtu = UInt16(mtu)
        }
        if let pairs = params.maxVqp {
            guard VirtioBounds.queuePairs.contains(pairs) else {
                throw APIError.invalidParams("max_vqp \(pairs) outside 1..32768 (virtio-net VQ_PAIRS_MIN..MAX)", parameter: "max_vqp")
            }
            request.maxVirtqueuePairs = UInt16(pairs)
        }
        if let text = params.deviceFeatures {
            guard let features = VirtioFeatures(hex: text) else {
                throw APIError.invalidParams("device_features '\(text)' is not a 64-bit hex number", parameter: "device_features")
            }
            request.deviceFeatures = features
        }
        return request
    }

    /// nil: not given; .some(nil): "none" (unbind); .some(driver).
    static func parseDriver(_ text: String?, parameter: String) throws -> BusDriver?? {
        guard let text else { return nil }
        switch text {
        case "none", "": return .some(nil)
        case BusDriver.vhostVDPA.rawValue: return .some(.vhostVDPA)
        case BusDriver.virtioVDPA.rawValue: return .some(.virtioVDPA)
        default: throw APIError.invalidParams("unknown driver '\(text)': expected vhost_vdpa, virtio_vdpa or none", parameter: parameter)
        }
    }

    /// A change of a managed device, intent first: the record with `update` applied is stored as
    /// `changing` before the kernel is asked (`kernelChange`), then made `active`. When the
    /// kernel refuses, the record is put back as it was; after a crash in between, the start-up
    /// reconcile carries the recorded change out. An unmanaged device has no record to keep.
    private func changeRecorded(_ name: String, _ update: (inout DeviceRecord) -> Void, in kernelChange: () async throws -> Void) async throws {
        guard let previous = records[name] else {
            try await kernelChange()
            return
        }
        var record = previous
        update(&record)
        record.state = .changing
        try store.save(record)
        do {
            try await kernelChange()
        } catch {
            try? store.save(previous)
            throw error
        }
        record.state = .active
        try store.save(record)
        records[name] = record
        recordsVersion &+= 1
    }

    private func requireManaged(_ name: String, force: Bool = false) throws {
        guard records[name] == nil, !force else { return }
        throw RPCErrorObject(code: .unmanagedDevice, message: "device \(name) was not created by vdpad; vdpad does not change it")
    }

    public func deleteDevice(_ params: DevDelParams) async throws -> DevDelResult {
        try await ensureKernel()
        let name = params.name
        try beginDeviceChange(name, "delete")
        defer { endDeviceChange(name) }
        // A vanished record is dropped without the kernel, unless the device is back in it.
        if records[name]?.state == .vanished, (try? await kernel.device(named: name)) == nil {
            try store.delete(deviceNamed: name)
            records[name] = nil
            recordsVersion &+= 1
            return DevDelResult(name: name)
        }
        if inventory[name] == nil { _ = try await refreshEntry(name) }
        try requireManaged(name, force: params.force ?? false)
        try refuseIfHeldByPort(name, operation: "delete")
        if records[name] != nil { try store.setState(.deleting, forDevice: name) }
        do {
            try await kernel.deleteDevice(named: name)
        } catch {
            if records[name] != nil { _ = try? store.setState(.active, forDevice: name) }
            throw error
        }
        try store.delete(deviceNamed: name)
        _ = inventory.remove(name)
        publish(.deviceRemoved, name, origin: "vdpad")
        records[name] = nil
        recordsVersion &+= 1
        return DevDelResult(name: name)
    }

    public func deviceConfigs(_ params: DevConfigGetParams) async throws -> DevConfigGetResult {
        try await ensureKernel()
        let names: [String]
        if let name = params.name {
            names = [name]
        } else {
            names = try await kernel.devices().map(\.name).sorted()
        }
        var configs: [DeviceConfigInfo] = []
        for name in names {
            do {
                configs.append(Self.configInfo(try await kernel.deviceConfig(named: name)))
            } catch let error as VDPAError where params.name == nil && error.errno == ErrnoCode.notSupported {
                continue  // a class without config support, in a listing
            }
        }
        return DevConfigGetResult(configs: configs)
    }

    static func configInfo(_ config: DeviceConfig) -> DeviceConfigInfo {
        let type = config.deviceType
        let net = config.net.map { net in
            NetConfigInfo(
                mac: net.macAddress?.description, status: net.status,
                linkUp: net.status.map { NetLinkStatus(rawValue: $0).contains(.linkUp) },
                linkAnnounce: net.status.map { NetLinkStatus(rawValue: $0).contains(.announce) },
                maxVqPairs: net.maxVirtqueuePairs, mtu: net.mtu)
        }
        let block = config.block.map { block in
            var info = BlockConfigInfo()
            info.capacity = block.capacity
            info.sizeMax = block.sizeMax
            info.blkSize = block.blockSize
            info.segMax = block.segmentMax
            info.numQueues = block.numQueues
            info.physicalBlockExp = block.physicalBlockExponent
            info.alignmentOffset = block.alignmentOffset
            info.minIoSize = block.minIOSize
            info.optIoSize = block.optimalIOSize
            info.maxDiscardSec = block.maxDiscardSectors
            info.maxDiscardSeg = block.maxDiscardSegments
            info.discardSecAlignment = block.discardSectorAlignment
            info.maxWriteZeroesSec = block.maxWriteZeroesSectors
            info.maxWriteZeroesSeg = block.maxWriteZeroesSegments
            info.readOnly = block.readOnly
            info.flush = block.flush
            return info
        }
        return DeviceConfigInfo(
            name: config.name, type: type.typeName, deviceID: type.rawValue,
            deviceFeatures: config.deviceFeatures.map { FeatureSetInfo($0, deviceType: type) },
            negotiatedFeatures: config.negotiatedFeatures.map { FeatureSetInfo($0, deviceType: type) },
            net: net, block: block)
    }

    public func vendorStatistics(_ params: DevVstatsGetParams) async throws -> DevVstatsGetResult {
        try await ensureKernel()
        let stats = try await kernel.vendorStatistics(device: params.name, queueIndex: params.qidx)
        return DevVstatsGetResult(
            name: stats.name, qidx: stats.queueIndex,
            queueType: virtioNetQueueType(index: stats.queueIndex, maxVirtqueuePairs: stats.maxVirtqueuePairs, negotiated: stats.negotiatedFeatures),
            negotiatedFeatures: stats.negotiatedFeatures.map { FeatureSetInfo($0, deviceType: stats.deviceType) },
            maxVqPairs: stats.maxVirtqueuePairs,
            stats: stats.statistics.map { VendorStatInfo(name: $0.name, value: $0.value) })
    }

    public func setDevice(_ params: DevSetParams) async throws -> DeviceConfigInfo {
        guard let mac = MACAddress(params.mac), mac.isValidUnicast else {
            throw APIError.invalidParams("invalid MAC address '\(params.mac)'", parameter: "mac")
        }
        try await ensureKernel()
        try beginDeviceChange(params.name, "set")
        defer { endDeviceChange(params.name) }
        if inventory[params.name] == nil { _ = try await refreshEntry(params.name) }
        try requireManaged(params.name)
        try await changeRecorded(params.name) { $0.macAddress = mac.description } in: {
            try await self.kernel.setMACAddress(device: params.name, to: mac)
        }
        let before = inventory[params.name]
        let entry = try await refreshEntry(params.name)
        if let before, case let changes = DeviceInventory.changes(from: before, to: entry), !changes.isEmpty {
            for change in changes { publishChange(change, params.name, origin: "vdpad") }
        }
        return Self.configInfo(try await kernel.deviceConfig(named: params.name))
    }

    public func bindDevice(_ params: DevBindParams) async throws -> DeviceInfo {
        let driver = try Self.parseDriver(params.driver ?? "none", parameter: "driver") ?? nil
        try await ensureKernel()
        try beginDeviceChange(params.name, "bind")
        defer { endDeviceChange(params.name) }
        if inventory[params.name] == nil { _ = try await refreshEntry(params.name) }
        try requireManaged(params.name)
        try refuseIfHeldByPort(params.name, operation: "rebind")
        try await changeRecorded(params.name) { $0.driver = driver?.rawValue ?? "none" } in: {
            try await self.kernel.bind(device: params.name, to: driver)
        }
        let entry = try await refreshEntry(params.name)
        publish(.driverBound, params.name, origin: "vdpad", driver: entry.binding.driver?.rawValue)
        return deviceInfo(entry)
    }
}
