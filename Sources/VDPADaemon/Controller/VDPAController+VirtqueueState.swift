import Foundation
import VDPAPolicy
import VDPAPorts
import VDPARPC
import VDPAStore
import VDPAVhost
import VirtioModel

extension VDPAController {
    static func validateStateName(_ name: String, parameter: String) throws {
        guard name.wholeMatch(of: /[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}/) != nil else {
            throw APIError.invalidParams("invalid state name '\(name)': letters, digits, '_', '.', ':', '-', at most 128", parameter: parameter)
        }
    }

    func requireState(_ name: String, parameter: String = "name") throws -> (record: SnapshotRecord, document: VirtqueueStateDocument) {
        guard let record = try store.snapshot(named: name) else {
            throw RPCErrorObject(code: .notFound, message: "no saved state \(name)", data: RPCErrorData(parameter: parameter))
        }
        let document: VirtqueueStateDocument
        do {
            document = try JSONDecoder().decode(VirtqueueStateDocument.self, from: Data(record.json.utf8))
        } catch {
            throw RPCErrorObject(code: .stateStoreFailure, message: "saved state \(name) does not decode: \(error)")
        }
        // What is restored from the store passes the checks an import passes.
        let problems = document.validate()
        guard problems.isEmpty else {
            throw RPCErrorObject(code: .stateStoreFailure, message: "saved state \(name) is invalid: " + problems.joined(separator: "; "))
        }
        return (record, document)
    }

    /// `already_exists` when a state of that name is stored.
    func refuseExistingState(_ name: String) throws {
        if try store.snapshot(named: name) != nil {
            throw RPCErrorObject(code: .alreadyExists, message: "a saved state named \(name) exists (replace it with replace true)",
                                 data: RPCErrorData(parameter: "name"))
        }
    }

    /// The check a device must pass to take rings described by `document` (a saved state, or
    /// the rings running now): every reason at once, as `state_incompatible` ("DEVICE cannot WHAT: …").
    static func requireRestorable(_ document: VirtqueueStateDocument, onto device: String, facts: PortBackendSnapshot, deviceType: VirtioDeviceType,
                                  control: VirtqueueStateDocument.ControlState?, what: String) throws {
        let refusals = document.restoreRefusals(onto: RestoreTarget(
            device: device, deviceType: deviceType, offeredFeatures: facts.offeredFeatures, backend: abilities(facts),
            queueCount: facts.queueCount, maximumQueueSize: facts.maximumQueueSize, control: control))
        guard refusals.isEmpty else {
            throw RPCErrorObject(code: .stateIncompatible, message: "\(device) cannot \(what): " + refusals.map(\.message).joined(separator: "; "),
                                 data: RPCErrorData(reasons: refusals.map(RPCErrorReason.init)))
        }
    }

    /// Stores a state (one synchronous transaction: on disk before the caller hears of it).
    func storeState(_ document: VirtqueueStateDocument, origin: String, replace: Bool) throws -> SnapshotRecord {
        if !replace { try refuseExistingState(document.name) }
        let json = String(decoding: try RPCJSON.encode(document), as: UTF8.self)
        let record = SnapshotRecord(name: document.name, device: document.source.device, port: document.source.port, origin: origin, json: json)
        try store.save(record)
        return record
    }

    // MARK: API

    /// Suspends the device (held for a port), reads every ring's position and the device
    /// state, and stores it before answering.
    public func saveVirtqueueState(_ params: VqStateSaveParams) async throws -> VqStateInfo {
        let name = params.name ?? "\(params.device)-\(Self.compactTimestamp(Date()))"
        try Self.validateStateName(name, parameter: params.name == nil ? "device" : "name")
        // Refused before the device is suspended, not after.
        if params.replace != true { try refuseExistingState(name) }
        guard let port = portHolding(params.device) else {
            throw RPCErrorObject(code: .notAttached, message: "\(params.device) backs no port: vdpad holds no state of it (add it to a port with port_add or port_set)",
                                 data: RPCErrorData(parameter: "device"))
        }
        let takenAt = Timestamp.string(Date())
        let resume = params.resume ?? false
        var capture = try await portWork(port, "save") { try port.capture(resume: resume) }
        let deviceType = VirtioDeviceType(rawValue: capture.deviceType)
        let document = VirtqueueStateDocument(
            name: name, host: hostName, takenAt: takenAt, vdpadVersion: settings.version,
            source: .init(device: capture.device, mgmtdev: portRecords[port.name]?.managementDevice, port: port.name),
            deviceType: deviceType, deviceFeatures: capture.offeredFeatures, negotiatedFeatures: capture.negotiatedFeatures,
            backendFeatures: capture.backendFeatures.names, status: capture.status.names, config: capture.config,
            queueCount: capture.queueCount,
            queues: capture.queues.map { .init(index: $0.index, size: $0.size, layout: capture.layout, base: $0.base, enabled: $0.enabled) },
            control: deviceType == .network ? .init(netConfig: capture.config, features: capture.negotiatedFeatures) : nil)
        let record: SnapshotRecord
        do {
            record = try capture.timings.measure("store") { try storeState(document, origin: "saved", replace: true) }
        } catch {
            // Not stored, so not saved: the device must not stay stopped for a state nobody has.
            if !resume {
                do {
                    try await portWork(port, "resume") { try port.resume() }
                } catch let resumeError {
                    logger.error("The state could not be stored and the device not resumed", metadata: [
                        "vdpa.dev": "\(params.device)", "port": "\(port.name)", "error": "\(APIError.from(resumeError).message)"])
                }
            }
            throw error
        }
        logger.info("Saved virtqueue state", metadata: ["state": "\(name)", "vdpa.dev": "\(params.device)", "port": "\(port.name)",
                                                        "timings_us": "\(capture.timings.dictionary)"])
        return VqStateInfo(origin: record.origin, state: document, timingsUs: capture.timings.dictionary)
    }

    public func listVirtqueueStates() throws -> VqStateListResult {
        VqStateListResult(states: try store.snapshots().compactMap { record in
            guard let document = try? JSONDecoder().decode(VirtqueueStateDocument.self, from: Data(record.json.utf8)) else { return nil }
            return VqStateSummary(name: record.name, device: record.device, port: record.port, origin: record.origin,
                                  host: document.host, takenAt: document.takenAt, queues: document.queues.count)
        })
    }

    public func virtqueueState(_ params: VqStateNameParams) throws -> VqStateInfo {
        let (record, document) = try requireState(params.name)
        return VqStateInfo(origin: record.origin, state: document)
    }

    public func exportVirtqueueState(_ params: VqStateNameParams) throws -> VirtqueueStateDocument {
        try requireState(params.name).document
    }

    /// Stores a document exported by a vdpad (this one or another host's), after checking it.
    public func importVirtqueueState(_ params: VqStateImportParams) throws -> VqStateInfo {
        var document = params.state
        if let name = params.name { document.name = name }
        try Self.validateStateName(document.name, parameter: params.name == nil ? "state" : "name")
        let problems = document.validate()
        guard problems.isEmpty else {
            throw RPCErrorObject(code: .invalidParams, message: "the state document is invalid: " + problems.joined(separator: "; "),
                                 data: RPCErrorData(parameter: "state", reasons: problems.map { RPCErrorReason(code: "invalid_state", message: $0) }))
        }
        let record = try storeState(document, origin: "imported", replace: params.replace ?? false)
        return VqStateInfo(origin: record.origin, state: document)
    }

    /// A state that no longer decodes or validates can still be deleted.
    public func deleteVirtqueueState(_ params: VqStateNameParams) throws -> VqStateDelResult {
        guard try store.delete(snapshotNamed: params.name) else {
            throw RPCErrorObject(code: .notFound, message: "no saved state \(params.name)", data: RPCErrorData(parameter: "name"))
        }
        return VqStateDelResult(name: params.name)
    }

    /// Starts `device` under the port's consumer with every ring where the saved state says,
    /// after checking the device can take it (every reason at once) and replaying the
    /// driver-set state (the MAC) onto it.
    public func restoreVirtqueueState(_ params: VqStateRestoreParams) async throws -> VqStateRestoreResult {
        let (_, document) = try requireState(params.name)
        guard let portName = params.port ?? document.source.port else {
            throw APIError.invalidParams("the state names no port: give port", parameter: "port")
        }
        let port = try requirePort(portName, parameter: "port")
        if let holder = self.portHolding(params.device), holder !== port { try refuseIfHeldByPort(params.device, operation: "restore onto") }
        guard port.consumerReady else {
            throw RPCErrorObject(code: .notAttached, message: "port \(portName) has no consumer with its rings set up: nothing to start \(params.device) under",
                                 data: RPCErrorData(parameter: "port"))
        }
        let path = try await vhostPath(ofDevice: params.device, parameter: "device")
        let config = try? await kernel.deviceConfig(named: params.device)
        let info = try? await kernel.device(named: params.device)
        let targetControl = config?.net.map {
            VirtqueueStateDocument.ControlState(mac: $0.macAddress?.description, mtu: $0.mtu.map(Int.init),
                                               maxVirtqueuePairs: $0.maxVirtqueuePairs.map(Int.init), linkUp: nil)
        }
        // The port is busy from staging to launch: no other change of its device in between.
        try claim(port, for: "restore")
        defer { busyPorts.release(portName) }
        // Open, check (every reason at once) and prepare the target; nothing runs on it yet.
        let device = params.device, stateName = params.name, deviceType = info?.deviceType ?? document.deviceType
        let staged = try await Self.offActor {
            try port.stage(device: device, path: path) { facts in
                try Self.requireRestorable(document, onto: device, facts: facts, deviceType: deviceType, control: targetControl, what: "take state \(stateName)")
            }
        }
        // Replay what the driver set before the device runs: the MAC it was given.
        var replayed: [String] = []
        var timings = StepTimings()
        if let saved = document.control?.mac, let mac = MACAddress(saved), targetControl?.mac != saved {
            let start = ContinuousClock.now
            try await kernel.setMACAddress(device: params.device, to: mac)
            timings.record("mac", since: start)
            replayed.append("mac")
        }
        let bases = Dictionary(document.queues.map { ($0.index, $0.base) }) { first, _ in first }
        timings.append(try await recordingBackend(of: port) { try await Self.offActor { try port.launch(staged, bases: bases) } })
        if var record = portRecords[portName] {
            record.device = params.device
            try noteBackend(of: port, record: record)
        }
        logger.info("Restored virtqueue state", metadata: ["state": "\(params.name)", "vdpa.dev": "\(params.device)", "port": "\(portName)",
                                                           "timings_us": "\(timings.dictionary)"])
        return VqStateRestoreResult(name: params.name, device: params.device, port: portName, replayed: replayed, timingsUs: timings.dictionary)
    }

    static func compactTimestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return "\(c.year ?? 0)\(two(c.month))\(two(c.day))T\(two(c.hour))\(two(c.minute))\(two(c.second))Z"
    }
}

