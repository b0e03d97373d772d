import Foundation
import VDPAClient
import VDPAPolicy
import VDPARPC
import VirtioModel

/// A file vdpactl was given that it cannot use (unreadable, not JSON, not the right document,
/// or for `vq export … file` not writable). Each line says where.
struct InputFileError: Error {
    var lines: [String]
}

/// Runs one parsed ``Command`` against vdpad and prints its result.
struct CommandRunner {
    let client: VDPAClient
    let options: GlobalOptions
    let output: OutputSink
    let errors: OutputSink
    /// Asked after each `monitor` event whether to go on.
    let keepFollowing: @Sendable () -> Bool

    /// Runs the command; the exit status it calls for (`compat` answers with its own).
    func run(_ command: Command) throws -> ExitStatus {
        switch command {
        case .profileShow(let name):
            let profiles: [ProfileInfo] = if let name {
                [try client.call(.profileGet, ProfileNameParams(name: name), as: ProfileInfo.self)]
            } else {
                try client.call(.profileList, as: ProfileListResult.self).profiles
            }
            emitDocument(profiles, text: profiles.map(Self.profileText).joined())
        case .profileAdd(let file):
            let profile: Profile
            switch ProfileFile.parse(text: try Self.read(file), fileName: file) {
            case .success(let parsed): profile = parsed
            case .failure(let failure): throw InputFileError(lines: failure.errors.map(\.description))
            }
            let info = try client.call(.profileAdd, profile, as: ProfileInfo.self)
            for warning in info.warnings { errors.report(["warning: \(warning.message)"]) }
        case .profileDel(let name):
            _ = try client.call(.profileDel, ProfileNameParams(name: name), as: ProfileDelResult.self)
        case .capsExport:
            let document = try client.call(.capsExport, as: CapabilitiesDocument.self)
            // A document to save and hand to other hosts: indented unless -j alone asks for one line.
            output.write(Self.encode(document, pretty: !options.json || options.pretty) + "\n")
        case .quirkShow:
            return report(try client.call(.quirkList, as: QuirkListResult.self))
        case .quirkTest(let file):
            let text = try Self.read(file)
            return report(try client.call(.quirkTest, QuirkTestParams(text: text, fileName: file), as: QuirkListResult.self))
        case .compatCheck(let spec):
            var destination = CompatCheckParams.Destination(mgmtdev: spec.mgmtdev)
            if let file = spec.capsFile { destination.caps = try Self.decodeFile(file, as: CapabilitiesDocument.self) }
            let params = CompatCheckParams(source: .init(profile: spec.profile, device: spec.device), destination: destination)
            let result = try client.call(.compatCheck, params, as: CompatCheckResult.self)
            emitDocument(result, text: Self.compatText(result.result))
            return ExitStatus(rawValue: result.exitCode)
        case .compatBaseline(let files, let includeLocal, let deviceType, let name):
            let documents = try files.map { try Self.decodeFile($0, as: CapabilitiesDocument.self) }
            let params = CompatBaselineParams(documents: documents.isEmpty ? nil : documents, includeLocal: includeLocal ? true : nil,
                                              deviceType: deviceType, name: name)
            let result = try client.call(.compatBaseline, params, as: Baseline.Result.self)
            if options.json {
                output.write(Self.encode(result, pretty: options.pretty) + "\n")
            } else {
                // The profile alone on standard output, ready for `profile add`; the rest on standard error.
                if let profile = result.profile { output.write(ProfileFile.encode(profile)) }
                errors.report(result.sources.map { "from \($0.host): \($0.mgmtdev) \($0.features.names?.joined(separator: ",") ?? $0.features.hex ?? "")" })
                errors.report(result.removed.map { "removed: \($0.description)" } + result.notes.map { "note: \($0)" }
                              + result.reasons.map { "no baseline: \($0)" })
            }
            return result.profile == nil ? .incompatible : .success
        case .mgmtdevShow(let handle):
            let result = try client.call(.mgmtdevList, MgmtdevListParams(mgmtdev: handle), as: MgmtdevListResult.self)
            emit(JSONRenderer.mgmtdevs(result.mgmtdevs), TextRenderer.mgmtdevs(result.mgmtdevs))
        case .devShow(let name):
            let devices: [DeviceInfo] = if let name {
                [try client.call(.devGet, DeviceNameParams(name: name), as: DeviceInfo.self)]
            } else {
                try client.call(.devList, DevListParams(), as: DevListResult.self).devices
            }
            emit(JSONRenderer.devices(devices), TextRenderer.devices(devices))
        case .devAdd(let parameters):
            _ = try client.call(.devAdd, parameters, as: DeviceInfo.self)
        case .devDel(let name, let force):
            _ = try client.call(.devDel, DevDelParams(name: name, force: force ? true : nil), as: DevDelResult.self)
        case .devSet(let name, let mac):
            _ = try client.call(.devSet, DevSetParams(name: name, mac: mac), as: DeviceConfigInfo.self)
        case .devBind(let name, let driver):
            _ = try client.call(.devBind, DevBindParams(name: name, driver: driver), as: DeviceInfo.self)
        case .devConfigShow(let name):
            let configs = try client.call(.devConfigGet, DevConfigGetParams(name: name), as: DevConfigGetResult.self).configs
            emit(JSONRenderer.configs(configs), TextRenderer.configs(configs))
        case .devVstatsShow(let name, let queueIndex):
            let stats = try client.call(.devVstatsGet, DevVstatsGetParams(name: name, qidx: queueIndex), as: DevVstatsGetResult.self)
            emit(JSONRenderer.vstats(stats), TextRenderer.vstats(stats))
        case .portShow(let name):
            let ports: [PortInfo] = if let name {
                [try client.call(.portGet, PortNameParams(name: name), as: PortInfo.self)]
            } else {
                try client.call(.portList, as: PortListResult.self).ports
            }
            emit(JSONRenderer.ports(ports), TextRenderer.ports(ports))
        case .portAdd(let name, let device, let user, let group, let tap, let profile, let queues):
            _ = try client.call(.portAdd, PortAddParams(name: name, device: device, consumerUser: user, consumerGroup: group, tap: tap, profile: profile,
                                                        queues: queues),
                                as: PortInfo.self)
        case .portDel(let name):
            _ = try client.call(.portDel, PortNameParams(name: name), as: PortDelResult.self)
        case .portSet(let name, let device, let tap, let queues):
            let port = try client.call(.portSet, PortSetParams(name: name, device: device, detach: device == nil && tap == nil ? true : nil, tap: tap,
                                                               queues: queues),
                                       as: PortInfo.self)
            // A move of running rings says how long they stopped; otherwise nothing is printed.
            if port.timingsUs?["pause"] != nil { emit(JSONRenderer.portMove(port), TextRenderer.portMove(port)) }
        case .vqSave(let parameters):
            // Printed: the state's name may be the daemon's choice, and the timings tell how long the device was stopped.
            let info = try client.call(.vqStateSave, parameters, as: VqStateInfo.self)
            emit(JSONRenderer.vqState(info), TextRenderer.vqState(info))
        case .vqShow(let name):
            if let name {
                let info = try client.call(.vqStateGet, VqStateNameParams(name: name), as: VqStateInfo.self)
                emit(JSONRenderer.vqState(info), TextRenderer.vqState(info))
            } else {
                let states = try client.call(.vqStateList, as: VqStateListResult.self).states
                emit(JSONRenderer.vqStates(states), TextRenderer.vqStates(states))
            }
        case .vqExport(let name, let file):
            let document = try client.call(.vqStateExport, VqStateNameParams(name: name), as: VirtqueueStateDocument.self)
            if let file {
                try Self.writeAtomically(Self.encode(document, pretty: true) + "\n", to: file)
            } else {
                // A document to hand to another host: indented unless -j alone asks for one line.
                output.write(Self.encode(document, pretty: !options.json || options.pretty) + "\n")
            }
        case .vqImport(let file, let name, let replace):
            let document = try Self.decodeFile(file, as: VirtqueueStateDocument.self)
            var checked = document
            if let name { checked.name = name }
            let problems = checked.validate()
            guard problems.isEmpty else { throw InputFileError(lines: problems.map { "\(file): \($0)" }) }
            _ = try client.call(.vqStateImport, VqStateImportParams(state: document, name: name, replace: replace ? true : nil), as: VqStateInfo.self)
        case .vqRestore(let parameters):
            let result = try client.call(.vqStateRestore, parameters, as: VqStateRestoreResult.self)
            emit(JSONRenderer.vqRestore(result), TextRenderer.vqRestore(result))
        case .vqDel(let name):
            _ = try client.call(.vqStateDel, VqStateNameParams(name: name), as: VqStateDelResult.self)
        case .daemonStatus:
            let status = try client.call(.daemonStatus, as: DaemonStatusResult.self)
            emit(JSONRenderer.daemonStatus(status), TextRenderer.daemonStatus(status))
        case .monitor:
            try client.followEvents { event in
                // One line per event even with -p: a stream of objects, one per line.
                output.write(options.json ? JSONWriter.write(JSONRenderer.event(event), pretty: false) + "\n" : TextRenderer.event(event))
                return keepFollowing()
            }
        case .help(let topic):
            output.write(Usage.text(topic))
        }
        return .success
    }

    private func emit(_ json: JSONValue, _ text: String) {
        output.write(options.json ? JSONWriter.write(json, pretty: options.pretty) + "\n" : text)
    }

    /// An API result as JSON with -j (the API's own shape), else as text.
    private func emitDocument<T: Encodable>(_ value: T, text: String) {
        output.write(options.json ? Self.encode(value, pretty: options.pretty) + "\n" : text)
    }

    /// Quirks as text (one paragraph each) or JSON; errors go to stderr, and make the exit
    /// status "refused".
    private func report(_ result: QuirkListResult) -> ExitStatus {
        if options.json {
            output.write(Self.encode(result, pretty: options.pretty) + "\n")
        } else {
            for quirk in result.quirks {
                var lines = ["\(quirk.name): \(quirk.file):\(quirk.line)"]
                if let summary = quirk.summary { lines.append("  summary \(summary)") }
                lines.append("  actions " + quirk.actions.joined(separator: "; "))
                lines.append("  applies_to " + (quirk.appliesTo.isEmpty ? "(no management device of this host)" : quirk.appliesTo.joined(separator: " ")))
                output.write(lines.joined(separator: "\n") + "\n")
            }
        }
        errors.report(result.errors.map(\.description))
        return result.errors.isEmpty ? .success : .refused
    }

    static func encode<T: Encodable>(_ value: T, pretty: Bool) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        // The API's value types encode without failing (no floats, no throwing encode).
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func read(_ file: String) throws -> String {
        do {
            return try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw InputFileError(lines: ["\(file): cannot read: \((error as NSError).localizedDescription)"])
        }
    }

    /// Writes `text` to `file` through a temporary file renamed over it: a reader sees the
    /// old file or the whole new one, never part of it.
    static func writeAtomically(_ text: String, to file: String) throws {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
        } catch {
            throw InputFileError(lines: ["\(file): cannot write: \((error as NSError).localizedDescription)"])
        }
    }

    static func decodeFile<T: Decodable>(_ file: String, as type: T.Type) throws -> T {
        let text = try read(file)
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw InputFileError(lines: ["\(file): not a valid document: \(error)"])
        }
    }

    static func profileText(_ info: ProfileInfo) -> String {
        let profile = info.profile
        var lines = ["\(profile.name): version \(profile.version) device_type \(profile.deviceType.typeName) source \(info.source.rawValue)"
            + (info.file.map { " file \($0)" } ?? "")]
        lines.append("  features \(profile.features.names(for: profile.deviceType).joined(separator: " "))")
        var config = "  mac \(profile.mac)"
        if let mtu = profile.mtu { config += " mtu \(mtu)" }
        if let pairs = profile.queuePairs { config += " queue_pairs \(pairs)" }
        if let size = profile.queueSize { config += " queue_size \(size)" }
        lines.append(config)
        if let summary = profile.summary { lines.append("  description \(summary)") }
        for warning in info.warnings { lines.append("  warning \(warning.message)") }
        return lines.map { $0 + "\n" }.joined()
    }

    static func compatText(_ result: CompatibilityResult) -> String {
        var lines = ["\(result.answer.rawValue): \(result.mgmtdev)" + (result.host.map { " on \($0)" } ?? "")]
        lines += result.reasons.map { "  reason: \($0.message)" }
        if let plan = result.plan {
            var text = "  plan: mgmtdev \(plan.mgmtdev)"
            if let features = plan.deviceFeatures {
                text += " device_features \(features.hex ?? "")" + (features.names.map { " (\($0.joined(separator: " ")))" } ?? "")
            }
            if let mtu = plan.mtu { text += " mtu \(mtu)" }
            if let pairs = plan.maxVQP { text += " max_vqp \(pairs)" }
            text += " mac \(plan.mac)"
            lines.append(text)
        }
        lines += result.notes.map { "  note: \($0.message)" }
        return lines.map { $0 + "\n" }.joined()
    }
}
