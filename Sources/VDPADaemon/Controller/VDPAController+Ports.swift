import Foundation
import VDPANetlink
import VDPAPolicy
import VDPAPorts
import VDPARPC
import VDPAStore
import VDPASystem
import VDPADatapath
import VDPAVhost
import VirtioModel
import VirtioNet

extension VDPAController {
    // MARK: life cycle

    /// Serves the ports kept in the store (once, at start) and attaches their devices.
    public func startPorts() async {
        guard !portsStarted else { return }
        portsStarted = true
        do {
            try FileSystem.createDirectory(settings.portsDirectory, mode: 0o755)
            try PrivateDirectory.checkForSockets(settings.portsDirectory)
            for var record in try store.ports() {
                // Paths come from validated names and the configured directory, never from the
                // database as they are: a damaged record must not make vdpad replace other files.
                guard Self.isValidPortName(record.name) else {
                    logger.error("Ignoring a port record with an invalid name", metadata: ["port": "\(record.name)"])
                    continue
                }
                let socketPath = Self.socketPath(ofPort: record.name, in: settings.portsDirectory)
                if record.socketPath != socketPath {
                    logger.notice("A port's socket moves to ports_dir", metadata: ["port": "\(record.name)", "from": "\(record.socketPath)", "to": "\(socketPath)"])
                    record.socketPath = socketPath
                }
                portRecords[record.name] = record
                let port: VhostUserPort
                do {
                    port = try makePort(record)
                    try port.start()
                    ports[record.name] = port
                } catch {
                    logger.error("Cannot serve a port", metadata: ["port": "\(record.name)", "error": "\(error)"])
                    continue
                }
                // makePort resolved the profile already: the check is there.
                let check = try presentationCheck(profile: record.profile)
                if let device = record.device {
                    do {
                        let path = try await vhostPath(ofDevice: device, parameter: "device")
                        _ = try await portWork(port, "attach") { try port.attach(device: device, path: path, check: check) }
                        try noteBackend(of: port, record: record)
                    } catch {
                        logger.warning("VhostUserPort serves without its device", metadata: ["port": "\(record.name)", "vdpa.dev": "\(device)", "error": "\(APIError.from(error).message)"])
                    }
                } else if let tap = record.tap {
                    do {
                        // A number from the database, bounded as the API bounds it.
                        let pairs = Int(record.queues ?? 1), options = softwareOptions
                        try Self.validateQueuePairs(pairs, tap: tap)
                        _ = try await portWork(port, "attach") { try port.attach(tap: tap, queuePairs: pairs, options: options, check: check) }
                        try noteBackend(of: port, record: record)
                    } catch {
                        logger.warning("A port serves without its software backend", metadata: ["port": "\(record.name)", "tap": "\(tap)", "error": "\(APIError.from(error).message)"])
                    }
                }
            }
        } catch {
            logger.error("Cannot start the ports", metadata: ["error": "\(error)"])
        }
    }

    /// Stops every port (at shutdown): consumers are disconnected, devices released.
    public func stopPorts() {
        for port in ports.values { port.stop() }
        ports = [:]
    }

    // MARK: helpers

    /// Port names: letters, digits, '_', '.', '-', at most 63, starting with a letter or digit
    /// (so never '.' or '..', never a '/').
    static func isValidPortName(_ name: String) -> Bool { name.wholeMatch(of: /[A-Za-z0-9][A-Za-z0-9_.-]{0,62}/) != nil }

    static func socketPath(ofPort name: String, in directory: String) -> String { directory + "/" + name + ".sock" }

    /// A TAP interface name the kernel takes (IFNAMSIZ: at most 15 bytes; no '/', ':' or
    /// space; not '.' or '..'): letters, digits, '_', '.', '-', starting with a letter or digit.
    static func isValidTapName(_ name: String) -> Bool { name.wholeMatch(of: /[A-Za-z0-9][A-Za-z0-9_.-]{0,14}/) != nil }

    /// How software ports' workers run (the configuration's `port_busy_poll`).
    var softwareOptions: NetWorkerOptions { NetWorkerOptions(busyPoll: settings.portBusyPoll) }

    /// Checks `queues` (queue pairs of a software backend): only with a TAP, in ``PortAddParams/queuesRange``.
    static func validateQueuePairs(_ queues: Int?, tap: String?) throws {
        guard let queues else { return }
        guard tap != nil else { throw APIError.invalidParams("queues is the queue pairs of a software backend: give it with tap", parameter: "queues") }
        let range = PortAddParams.queuesRange
        guard range.contains(queues) else {
            throw APIError.invalidParams("queues must be \(range.lowerBound) to \(range.upperBound) queue pairs, not \(queues)", parameter: "queues")
        }
    }

    static func validateTapName(_ name: String, parameter: String = "tap") throws {
        guard isValidTapName(name) else {
            throw APIError.invalidParams("invalid TAP name '\(name)': letters, digits, '_', '.', '-', at most 15, starting with a letter or digit", parameter: parameter)
        }
    }

    /// What a port with `profile` presents: the profile's features, and its MAC (a fixed one)
    /// and MTU in the configuration space. Ports serve one network queue pair, and give no
    /// addresses from the pool yet.
    func presentation(ofProfile name: String?, parameter: String = "profile") throws -> PortPresentation? {
        guard let name else { return nil }
        let profile = try requireProfile(name, parameter: parameter)
        guard profile.deviceType == .network else {
            throw APIError.invalidParams("profile \(name) is a \(profile.deviceType.typeName) profile; ports are network devices", parameter: parameter)
        }
        if let pairs = profile.queuePairs, pairs > 1 {
            throw APIError.invalidParams("profile \(name) has \(pairs) queue pairs; ports serve one in this version", parameter: parameter)
        }
        let mac: MACAddress?
        switch profile.mac {
        case .none: mac = nil
        case .fixed(let address): mac = address
        case .pool: throw APIError.invalidParams("profile \(name) takes its MAC from the pool, which ports do not do yet: give it a fixed MAC or none", parameter: parameter)
        }
        return PortPresentation(features: profile.features, mac: mac, mtu: profile.mtu.flatMap(UInt16.init(exactly:)))
    }

    /// The check a backend must pass to be attached to a port presenting `profile`: the
    /// compatibility check's rule (every profile feature among what the port can serve from the
    /// backend; one queue pair; the queue size within the backend's), with every reason.
    func presentationCheck(profile name: String?) throws -> @Sendable (PortBackendSnapshot) throws -> Void {
        guard let name else { return { _ in } }
        let requirement = DeviceRequirement(profile: try requireProfile(name, parameter: "profile"))
        return { backend in
            let served = backend.servedFeatures
            let destination = DestinationCapability(
                mgmtdev: "\(backend.kind.rawValue) backend \(backend.device)", deviceType: .network,
                // vdpad translates addresses itself: ACCESS_PLATFORM is the port's to give.
                features: served.union(.accessPlatform),
                limits: DeviceLimits(maxQueuePairs: 1, maxQueueSize: backend.maximumQueueSize, maxMTU: 65535),
                attributes: AttributeAbilities(mac: true, mtu: true, maxVQP: true, deviceFeatures: true),
                backend: Self.abilities(backend))
            let result = CompatibilityCheck.compare(source: requirement, destination: destination)
            guard result.answer != .incompatible else {
                throw RPCErrorObject(code: .profileIncompatible,
                                     message: "\(destination.mgmtdev) cannot present profile \(name): " + result.reasons.map(\.message).joined(separator: "; "),
                                     data: RPCErrorData(reasons: result.reasons.map(RPCErrorReason.init)))
            }
        }
    }

    /// A port as its record describes it (not yet serving).
    func makePort(_ record: PortRecord) throws -> VhostUserPort {
        let allowed = record.consumerUID != nil || record.consumerGID != nil
            ? AllowedConsumer(uid: record.consumerUID.flatMap(UInt32.init(exactly:)), gid: record.consumerGID.flatMap(UInt32.init(exactly:)))
            : nil
        let logger = self.logger, name = record.name
        let presentation = try self.presentation(ofProfile: record.profile)
        return VhostUserPort(name: record.name, socketPath: record.socketPath, socketGroup: settings.portsGroup, allowedConsumer: allowed,
                             presentation: presentation, memoryLimit: settings.portMemoryLimit,
                             onRefusal: { peer in
                                 logger.notice("Refused a VMM on a port: not its allowed consumer", metadata: [
                                     "port": "\(name)", "uid": "\(peer.map { "\($0.uid)" } ?? "unknown")", "pid": "\(peer.map { "\($0.pid)" } ?? "unknown")",
                                     "allowed_uid": "\(allowed?.uid.map { "\($0)" } ?? "none")", "allowed_gid": "\(allowed?.gid.map { "\($0)" } ?? "none")",
                                 ])
                             },
                             onConsumerError: { reason in
                                 logger.notice("Refused a VMM's request on a port", metadata: ["port": "\(name)", "error": "\(reason)"])
                             },
                             opener: vhostOpener)
    }

    /// Runs a port's device work (opening the device, mapping the consumer's memory, IOTLB
    /// updates that pin it, suspend, resume) on a thread of its own: the work waits for the
    /// port's lock, which a consumer can hold as long as its requests take, and the controller
    /// answers every other call meanwhile. One piece of work per port at a time: another
    /// change of a busy port is `try_again`.
    func portWork<T: Sendable>(_ port: VhostUserPort, _ operation: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try claim(port, for: operation)
        defer { busyPorts.release(port.name) }
        return try await Self.offActor(body)
    }

    /// Marks `port` busy (the caller releases it in `busyPorts` when done): `try_again` when
    /// it is busy already, `not_found` when it was deleted while the caller waited.
    func claim(_ port: VhostUserPort, for operation: String) throws {
        try claim(portName: port.name, for: operation)
        guard ports[port.name] === port else {
            busyPorts.release(port.name)
            throw RPCErrorObject(code: .notFound, message: "no port \(port.name) (it was deleted)", data: RPCErrorData(parameter: "name"))
        }
    }

    func claim(portName name: String, for operation: String) throws {
        try busyPorts.claim(name, operation: "\(operation) on port \(name)")
    }

    /// `body` on a thread outside the actor's executor; the caller waits without holding it.
    static func offActor<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// The `/dev/vhost-vdpa-N` of a device bound to vhost_vdpa.
    func vhostPath(ofDevice name: String, parameter: String) async throws -> String {
        try await ensureKernel()
        let binding = try await kernel.binding(ofDevice: name)
        guard let path = binding.vhostDevicePath else {
            throw RPCErrorObject(code: .notSupported, message: "\(name) is not bound to vhost_vdpa (driver: \(binding.driver?.rawValue ?? "none")); bind it with dev_bind driver vhost_vdpa",
                                 data: RPCErrorData(parameter: parameter))
        }
        return path
    }

    /// The port whose backend is `device`.
    func portHolding(_ device: String) -> VhostUserPort? {
        ports.values.first { $0.backendDevice.map { $0.kind == .hardware && $0.device == device } == true }
    }

    func refuseIfHeldByPort(_ device: String, operation: String) throws {
        guard let port = portHolding(device) else { return }
        throw RPCErrorObject(code: .deviceInUse, message: "\(device) backs port \(port.name): vdpad holds it open; detach it first (port_set name \(port.name) detach true)",
                             data: RPCErrorData(operation: "\(operation) \(device)"))
    }

    func requirePort(_ name: String, parameter: String = "name") throws -> VhostUserPort {
        guard let port = ports[name] else {
            throw RPCErrorObject(code: .notFound, message: "no port \(name)", data: RPCErrorData(parameter: parameter))
        }
        return port
    }

    /// Records what a port's device can do (its management device and backend features),
    /// for the capabilities document.
    func noteBackend(of port: VhostUserPort, record: PortRecord) throws {
        var record = record
        let backend = port.backendDevice
        let held = backend?.kind == .hardware ? backend : nil
        if let held {
            record.device = held.device
            record.tap = nil
            record.queues = nil
            record.backendFeatures = Int64(bitPattern: held.backendFeatures.rawValue)
            record.managementDevice = inventory[held.device]?.info.managementDevice.description ?? record.managementDevice
        } else if let backend, backend.kind == .software {
            record.tap = backend.device
            record.device = nil
        }
        try store.save(record)
        portRecords[record.name] = record
        heldDevices = heldDevices.filter { $0.value.port != record.name }
        if let held {
            let abilities = Self.abilities(held.backendFeatures)
            heldDevices[held.device] = HeldDeviceInfo(port: port.name, backendFeatures: held.backendFeatures.names,
                                                      suspend: abilities.suspend == true, resume: abilities.resume == true)
        }
        recordsVersion &+= 1  // dev_list shows what is held
    }

    /// Runs a change of a port's backend; when it fails part-way (the old device released,
    /// the new one not started), what the port holds now is recorded before the error goes out,
    /// so the store, `dev_list` and the capabilities never name a device the port let go.
    func recordingBackend<T>(of port: VhostUserPort, _ change: () async throws -> T) async throws -> T {
        do {
            return try await change()
        } catch {
            if let record = portRecords[port.name] { try? noteBackend(of: port, record: record) }
            throw error
        }
    }

    /// Backend abilities vdpad has seen on the devices of each management device.
    var observedBackendAbilities: [String: BackendAbilities] {
        var abilities: [String: BackendAbilities] = [:]
        for record in portRecords.values {
            guard let mgmtdev = record.managementDevice, let raw = record.backendFeatures else { continue }
            abilities[mgmtdev] = Self.abilities(BackendFeatures(rawValue: UInt64(bitPattern: raw)))
        }
        return abilities
    }

    /// What the capabilities document and the restore check call a backend's abilities.
    static func abilities(_ backend: PortBackendSnapshot) -> BackendAbilities {
        BackendAbilities(suspend: backend.canSuspend, resume: backend.canResume)
    }

    static func abilities(_ features: BackendFeatures) -> BackendAbilities {
        BackendAbilities(suspend: features.contains(.suspend), resume: features.contains(.resume))
    }

    static func portInfo(_ port: VhostUserPort, record: PortRecord?) -> PortInfo {
        let status = port.status
        let consumer = status.consumerConnected || status.driverOK
            ? PortInfo.ConsumerInfo(features: status.consumerFeatures.map { FeatureList($0.subtracting(VhostUserPort.protocolFeaturesBit), deviceType: .network) }, memoryRegions: status.memoryRegions,
                                    queues: status.queues, driverOK: status.driverOK, lastError: status.lastConsumerError)
            : nil
        let backend = status.backend.map { backend in
            let software = backend.kind == .software
            let abilities = Self.abilities(backend)
            // Per queue (receiveq 2N, transmitq 2N+1), as the software datapath counts them.
            let queues = status.softwareCounters.map { counters in
                counters.pairs.enumerated().flatMap { pair, counts in
                    [(2 * pair, counts.receive), (2 * pair + 1, counts.transmit)].map { index, count in
                        PortInfo.QueueCounters(index: index, packets: count.packets, bytes: count.bytes, drops: count.drops,
                                               errors: count.errors, filtered: count.filtered)
                    }
                }
            }
            return PortInfo.BackendInfo(type: backend.kind.rawValue, device: backend.device, path: backend.path, mgmtdev: software ? nil : record?.managementDevice,
                                        deviceFeatures: FeatureList(backend.offeredFeatures, deviceType: .network), backendFeatures: backend.backendFeatures.names,
                                        suspend: abilities.suspend == true, resume: abilities.resume == true,
                                        queueCount: backend.queueCount, maxQueueSize: backend.maximumQueueSize, queues: queues,
                                        memoryFaults: status.softwareCounters?.memoryFaults,
                                        control: status.softwareCounters?.controlState.map(Self.controlQueueInfo))
        }
        let allowed = port.allowedConsumer.map { PortInfo.AllowedConsumer(uid: $0.uid, gid: $0.gid, refused: status.refusedConsumers) }
        return PortInfo(state: status.state.rawValue, name: port.name, socket: port.socketPath, device: record?.device, tap: record?.tap,
                        queues: record?.tap == nil ? nil : Int(record?.queues ?? 1), profile: record?.profile, allowedConsumer: allowed, consumer: consumer, backend: backend)
    }

    /// The control queue's state as the API shows it.
    static func controlQueueInfo(_ state: VirtioNetControlState) -> PortInfo.ControlQueueInfo {
        let modes: [(String, Bool)] = [
            ("promisc", state.promiscuous), ("allmulti", state.allMulticast), ("alluni", state.allUnicast),
            ("nomulti", state.noMulticast), ("nouni", state.noUnicast), ("nobcast", state.noBroadcast),
        ]
        return PortInfo.ControlQueueInfo(
            rxModes: modes.filter(\.1).map(\.0), mac: state.macAddress?.description,
            unicastFilter: state.unicastFilter.map(\.description), multicastFilter: state.multicastFilter.map(\.description),
            vlans: state.vlans.ids.map(Int.init), queuePairs: Int(state.queuePairs))
    }

    // MARK: API: ports

    public func addPort(_ params: PortAddParams) async throws -> PortInfo {
        guard Self.isValidPortName(params.name) else {
            throw APIError.invalidParams("invalid port name '\(params.name)': letters, digits, '_', '.', '-', at most 63", parameter: "name")
        }
        guard ports[params.name] == nil else {
            throw RPCErrorObject(code: .alreadyExists, message: "port \(params.name) exists", data: RPCErrorData(parameter: "name"))
        }
        // The name is taken from here: a second port_add of it meanwhile is try_again.
        try claim(portName: params.name, for: "add")
        defer { busyPorts.release(params.name) }
        let socketPath = Self.socketPath(ofPort: params.name, in: settings.portsDirectory)
        guard socketPath.utf8.count < 108 else {
            throw APIError.invalidParams("the socket path \(socketPath) is longer than a Unix socket address allows", parameter: "name")
        }
        var path: String?
        if params.device != nil, params.tap != nil {
            throw APIError.invalidParams("give device or tap, not both: a port has one backend", parameter: "tap")
        }
        if let tap = params.tap { try Self.validateTapName(tap) }
        try Self.validateQueuePairs(params.queues, tap: params.tap)
        if let device = params.device {
            try refuseIfHeldByPort(device, operation: "attach")
            path = try await vhostPath(ofDevice: device, parameter: "device")
        }
        var uid: UInt32?, gid: UInt32?
        if let user = params.consumerUser {
            guard let id = PeerIdentity.userID(user) else { throw APIError.invalidParams("no user '\(user)'", parameter: "consumer_user") }
            uid = id
        }
        if let group = params.consumerGroup {
            guard let id = PeerIdentity.groupID(group) else { throw APIError.invalidParams("no group '\(group)'", parameter: "consumer_group") }
            gid = id
        }
        try FileSystem.createDirectory(settings.portsDirectory, mode: 0o755)
        try PrivateDirectory.checkForSockets(settings.portsDirectory)
        let record = PortRecord(name: params.name, device: params.device, socketPath: socketPath,
                                consumerUID: uid.map(Int64.init), consumerGID: gid.map(Int64.init), tap: params.tap, profile: params.profile,
                                queues: params.queues.map(Int64.init))
        let port = try makePort(record)
        let check = try presentationCheck(profile: params.profile)
        if let device = params.device, let path {
            try await Self.offActor { _ = try port.attach(device: device, path: path, check: check) }
        } else if let tap = params.tap {
            let pairs = params.queues ?? 1, options = softwareOptions
            try await Self.offActor { _ = try port.attach(tap: tap, queuePairs: pairs, options: options, check: check) }
        }
        do {
            try port.start()
            try noteBackend(of: port, record: record)
        } catch {
            try? await Self.offActor { port.stop() }
            throw error
        }
        ports[params.name] = port
        return Self.portInfo(port, record: portRecords[params.name])
    }

    public func deletePort(_ params: PortNameParams) async throws -> PortDelResult {
        let port = try requirePort(params.name)
        try await portWork(port, "delete") { port.stop() }
        heldDevices = heldDevices.filter { $0.value.port != params.name }
        recordsVersion &+= 1
        ports[params.name] = nil
        portRecords[params.name] = nil
        try store.delete(portNamed: params.name)
        return PortDelResult(name: params.name)
    }

    public func listPorts() -> PortListResult {
        PortListResult(ports: ports.keys.sorted().compactMap { name in ports[name].map { Self.portInfo($0, record: portRecords[name]) } })
    }

    public func port(_ params: PortNameParams) throws -> PortInfo {
        Self.portInfo(try requirePort(params.name), record: portRecords[params.name])
    }

    public func setPort(_ params: PortSetParams) async throws -> PortInfo {
        let port = try requirePort(params.name)
        guard var record = portRecords[params.name] else { throw RPCErrorObject(code: .internalError, message: "port \(params.name) has no record") }
        var timings: StepTimings?
        if params.tap != nil, params.device != nil || params.detach == true {
            throw APIError.invalidParams("give one of device, tap or detach true", parameter: "tap")
        }
        let presents = try presentationCheck(profile: record.profile)
        try Self.validateQueuePairs(params.queues, tap: params.tap)
        if let tap = params.tap {
            try Self.validateTapName(tap)
            let pairs = params.queues ?? 1, options = softwareOptions
            timings = try await recordingBackend(of: port) {
                try await portWork(port, "attach") { try port.attach(tap: tap, queuePairs: pairs, options: options, check: presents) }
            }
            record.tap = tap
            record.queues = params.queues.map(Int64.init)
            record.device = nil
            try noteBackend(of: port, record: record)
            return Self.portInfo(port, record: portRecords[params.name])
        }
        switch (params.device, params.detach ?? false) {
        case (let device?, false):
            if let holder = self.portHolding(device), holder !== port { try refuseIfHeldByPort(device, operation: "attach") }
            let path = try await vhostPath(ofDevice: device, parameter: "device")
            let status = port.status
            let refusalsOf = Self.moveRefusals(status, device: device, hostName: hostName)
            let check: @Sendable (PortBackendSnapshot) throws -> Void = { backend in
                try presents(backend)
                try refusalsOf(backend)
            }
            timings = try await recordingBackend(of: port) { try await portWork(port, "attach") { try port.attach(device: device, path: path, check: check) } }
            record.device = device
            record.tap = nil
            record.queues = nil
        case (nil, true):
            try await portWork(port, "detach") { port.detach() }
            record.device = nil
            record.tap = nil
            record.queues = nil
        default:
            throw APIError.invalidParams("give one of device, tap or detach true", parameter: "device")
        }
        try noteBackend(of: port, record: record)
        var info = Self.portInfo(port, record: portRecords[params.name])
        if let timings, timings.dictionary["pause"] != nil { info.timingsUs = timings.dictionary }
        return info
    }

    /// The check a device must pass to take over running rings: the same as for a saved
    /// state (features the driver negotiated, queue count, queue sizes, SUSPEND).
    static func moveRefusals(_ status: PortStatus, device: String, hostName: String) -> @Sendable (PortBackendSnapshot) throws -> Void {
        guard let features = status.runningFeatures, let current = status.backend else { return { _ in } }
        let type = VirtioDeviceType(rawValue: status.runningDeviceType ?? 1)
        let running = VirtqueueStateDocument(
            name: "running", host: hostName, takenAt: "", vdpadVersion: nil, source: .init(device: current.device, mgmtdev: nil, port: nil),
            deviceType: type, deviceFeatures: current.offeredFeatures, negotiatedFeatures: features, backendFeatures: [], status: [], config: [],
            queueCount: current.queueCount,
            queues: status.queueSizes.sorted { $0.key < $1.key }.map { .init(index: $0.key, size: $0.value, layout: .split, base: 0, enabled: true) },
            control: nil)
        return { facts in
            try requireRestorable(running, onto: device, facts: facts, deviceType: type, control: nil, what: "take over the rings of \(current.device)")
        }
    }
}
