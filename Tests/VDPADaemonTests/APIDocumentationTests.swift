import Foundation
import Testing
import VDPANetlink
import VDPAPolicy
import VDPARPC
import VDPATestSupport
import VDPAVhostTestSupport

/// Documentation/api.md, read into its method sections.
struct APIDocument {
    struct Section {
        var name: String
        var jsonBlocks: [String] = []
        /// The backticked names in the section's **Errors** paragraph.
        var errorNames: [String] = []
        /// The rows of the **Params** table: name and whether it is required.
        var params: [(name: String, required: Bool)] = []
        /// "**Params** (required)": true, "(optional)": false, none: nil.
        var paramsRequired: Bool?
    }

    /// The `## ` sections whose heading is a method-like name (lower_snake_case), in order.
    var sections: [Section] = []
    /// Every `## ` heading, in order.
    var headings: [String] = []
    /// The rows of the error code table: code and name.
    var errorTable: [(code: Int, name: String)] = []

    init(text: String) {
        var current: Section?
        var inBlock: [String]?
        var paragraph: String?  // "params" or "errors" while reading one
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if var block = inBlock {
                if line.hasPrefix("```") {
                    current?.jsonBlocks.append(block.joined(separator: "\n"))
                    inBlock = nil
                } else {
                    block.append(line)
                    inBlock = block
                }
                continue
            }
            if line == "```json" { inBlock = []; continue }
            if line.hasPrefix("## ") {
                if let current { sections.append(current) }
                let heading = String(line.dropFirst(3))
                headings.append(heading)
                current = heading.wholeMatch(of: /[a-z][a-z0-9_]*/) != nil ? Section(name: heading) : nil
                paragraph = nil
                continue
            }
            if line.hasPrefix("**Params**") {
                paragraph = "params"
                current?.paramsRequired = line.contains("(required)") ? true : line.contains("(optional)") ? false : nil
                continue
            }
            if line.hasPrefix("**Errors**") { paragraph = "errors" }
            if line.isEmpty, paragraph == "errors" { paragraph = nil }
            if paragraph == "errors" {
                current?.errorNames += line.matches(of: /`([a-z_]+)`/).map { String($0.1) }
            }
            if line.hasPrefix("**"), !line.hasPrefix("**Params**"), !line.hasPrefix("**Errors**") { paragraph = nil }
            if paragraph == "params", let row = line.wholeMatch(of: /\| `([a-z_]+)` \|[^|]*\| (yes|no) \|.*/) {
                current?.params.append((String(row.1), row.2 == "yes"))
            }
            if let row = line.wholeMatch(of: /\| (-?[0-9]+) \| `([a-z_]+)` \|.*/), let code = Int(row.1) {
                errorTable.append((code, String(row.2)))
            }
        }
        if let current { sections.append(current) }
    }
}

/// What the test knows of each method's types.
struct MethodContract {
    var decodeParams: (Data) throws -> Void
    var decodeResult: (Data) throws -> Void
    /// The keys of fully populated params; nil for a method without params.
    var paramKeys: Set<String>?

    static func make<P: Codable & Sendable, R: Codable & Sendable>(_ params: P.Type, _ result: R.Type, full: P?) -> MethodContract {
        MethodContract(
            decodeParams: { data in _ = try JSONDecoder().decode(RPCRequest<P>.self, from: data) },
            decodeResult: { data in
                let response = try JSONDecoder().decode(RPCResponse<R>.self, from: data)
                _ = try #require(response.result)
            },
            paramKeys: full.flatMap { value in
                (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any]).map { Set($0.keys) }
            })
    }

    static func of(_ method: VDPAMethod) -> MethodContract {
        switch method {
        case .rpcMethods: make(RPCEmpty.self, RPCMethodsResult.self, full: nil)
        case .daemonStatus: make(RPCEmpty.self, DaemonStatusResult.self, full: nil)
        case .mgmtdevList: make(MgmtdevListParams.self, MgmtdevListResult.self, full: MgmtdevListParams(mgmtdev: "m"))
        case .devAdd:
            make(DevAddParams.self, DeviceInfo.self, full: DevAddParams(name: "d", mgmtdev: "m", mac: "52:54:00:00:00:01", mtu: 1500, maxVqp: 1, deviceFeatures: "0x1", driver: "vhost_vdpa", profile: "p"))
        case .devDel: make(DevDelParams.self, DevDelResult.self, full: DevDelParams(name: "d", force: true))
        case .devList: make(DevListParams.self, DevListResult.self, full: DevListParams(refresh: true))
        case .devGet: make(DeviceNameParams.self, DeviceInfo.self, full: DeviceNameParams(name: "d"))
        case .devConfigGet: make(DevConfigGetParams.self, DevConfigGetResult.self, full: DevConfigGetParams(name: "d"))
        case .devVstatsGet: make(DevVstatsGetParams.self, DevVstatsGetResult.self, full: DevVstatsGetParams(name: "d", qidx: 0))
        case .devSet: make(DevSetParams.self, DeviceConfigInfo.self, full: DevSetParams(name: "d", mac: "52:54:00:00:00:01"))
        case .devBind: make(DevBindParams.self, DeviceInfo.self, full: DevBindParams(name: "d", driver: "vhost_vdpa"))
        case .profileAdd:
            make(Profile.self, ProfileInfo.self, full: Profile(name: "p", version: 1, deviceType: .network, features: [.version1, .Net.mac, .Net.multiqueue, .Net.controlVirtqueue, .Net.mtu, .accessPlatform],
                                                               mac: .pool, mtu: 1500, queuePairs: 2, queueSize: 256, summary: "s"))
        case .profileDel: make(ProfileNameParams.self, ProfileDelResult.self, full: ProfileNameParams(name: "p"))
        case .profileList: make(RPCEmpty.self, ProfileListResult.self, full: nil)
        case .profileGet: make(ProfileNameParams.self, ProfileInfo.self, full: ProfileNameParams(name: "p"))
        case .capsExport: make(RPCEmpty.self, CapabilitiesDocument.self, full: nil)
        case .compatCheck:
            make(CompatCheckParams.self, CompatCheckResult.self, full: CompatCheckParams(source: .init(profile: "p"), destination: .init(mgmtdev: "m")))
        case .compatBaseline:
            make(CompatBaselineParams.self, Baseline.Result.self, full: CompatBaselineParams(
                documents: [CapabilitiesDocument(host: "h", mgmtdevs: [])], includeLocal: true, deviceType: "network", name: "b", choices: ["h": "m"]))
        case .quirkList: make(RPCEmpty.self, QuirkListResult.self, full: nil)
        case .quirkTest: make(QuirkTestParams.self, QuirkListResult.self, full: QuirkTestParams(text: "", fileName: "f.conf"))
        case .portAdd: make(PortAddParams.self, PortInfo.self, full: PortAddParams(name: "p", device: "d", consumerUser: "u", consumerGroup: "g", tap: "t", profile: "q", queues: 2))
        case .portDel: make(PortNameParams.self, PortDelResult.self, full: PortNameParams(name: "p"))
        case .portList: make(RPCEmpty.self, PortListResult.self, full: nil)
        case .portGet: make(PortNameParams.self, PortInfo.self, full: PortNameParams(name: "p"))
        case .portSet: make(PortSetParams.self, PortInfo.self, full: PortSetParams(name: "p", device: "d", detach: true, tap: "t", queues: 2))
        case .vqStateSave: make(VqStateSaveParams.self, VqStateInfo.self, full: VqStateSaveParams(device: "d", name: "s", resume: true, replace: true))
        case .vqStateList: make(RPCEmpty.self, VqStateListResult.self, full: nil)
        case .vqStateGet: make(VqStateNameParams.self, VqStateInfo.self, full: VqStateNameParams(name: "s"))
        case .vqStateExport: make(VqStateNameParams.self, VirtqueueStateDocument.self, full: VqStateNameParams(name: "s"))
        case .vqStateImport:
            make(VqStateImportParams.self, VqStateInfo.self, full: VqStateImportParams(state: VirtqueueStateDocument(
                name: "s", host: "h", takenAt: "t", vdpadVersion: nil, source: .init(device: "d", mgmtdev: nil, port: nil), deviceType: .network,
                deviceFeatures: [], negotiatedFeatures: [], backendFeatures: [], status: [], config: [], queueCount: 1, queues: [], control: nil),
                name: "s", replace: true))
        case .vqStateRestore: make(VqStateRestoreParams.self, VqStateRestoreResult.self, full: VqStateRestoreParams(name: "s", device: "d", port: "p"))
        case .vqStateDel: make(VqStateNameParams.self, VqStateDelResult.self, full: VqStateNameParams(name: "s"))
        case .eventsSubscribe: make(RPCEmpty.self, EventsSubscribeResult.self, full: nil)
        }
    }
}

/// One JSON block of the document, classified.
enum Example {
    case request(id: RPCRequestID?, method: String, text: String)
    case result(id: RPCRequestID?, text: String)
    case error(id: RPCRequestID?, text: String)
    case notification(text: String)

    init(_ text: String) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
        let id = try object["id"].map { try JSONDecoder().decode(RPCRequestID.self, from: JSONSerialization.data(withJSONObject: $0, options: .fragmentsAllowed)) }
        if let method = object["method"] as? String {
            self = object["id"] == nil ? .notification(text: text) : .request(id: id, method: method, text: text)
        } else if object["error"] != nil {
            self = .error(id: id, text: text)
        } else {
            #expect(object["result"] != nil, "neither request, response nor notification: \(text)")
            self = .result(id: id, text: text)
        }
    }
}

/// The structure of a JSON value: objects by keys, arrays element by element, scalars by kind.
func jsonShapeDifferences(_ documented: Any, _ live: Any, path: String = "") -> [String] {
    switch (documented, live) {
    case let (documented as [String: Any], live as [String: Any]):
        var differences: [String] = []
        let documentedKeys = Set(documented.keys), liveKeys = Set(live.keys)
        if documentedKeys != liveKeys {
            differences.append("\(path): documented keys \(documentedKeys.sorted()), the daemon sends \(liveKeys.sorted())")
        }
        for key in documentedKeys.intersection(liveKeys).sorted() {
            differences += jsonShapeDifferences(documented[key] as Any, live[key] as Any, path: path + "." + key)
        }
        return differences
    case let (documented as [Any], live as [Any]):
        guard let first = documented.first, !live.isEmpty else { return [] }
        if documented.count == live.count {
            return zip(documented, live).enumerated().flatMap { jsonShapeDifferences($0.element.0, $0.element.1, path: path + "[\($0.offset)]") }
        }
        return jsonShapeDifferences(first, live[0], path: path + "[0]")
    case (is [String: Any], _), (_, is [String: Any]), (is [Any], _), (_, is [Any]):
        return ["\(path): documented \(type(of: documented)), the daemon sends \(type(of: live))"]
    case (is String, is String), (is NSNull, is NSNull):
        return []
    case (is String, _), (_, is String), (is NSNull, _), (_, is NSNull):
        return ["\(path): documented \(documented), the daemon sends \(live)"]
    default:
        return []  // numbers and booleans
    }
}

func jsonObject(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)
}

@Suite struct APIDocumentationTests {
    let document: APIDocument

    init() throws {
        document = APIDocument(text: try RepositoryFiles.text("Documentation/api.md"))
    }

    @Test func methodSectionsAreExactlyTheMethodList() {
        #expect(document.sections.map(\.name) == VDPAMethod.allCases.map(\.rawValue))
        // Every other heading is prose (capitalised), so no method hides behind it.
        for heading in document.headings where document.sections.contains(where: { $0.name == heading }) == false {
            #expect(heading.first?.isUppercase == true, "## \(heading)")
        }
    }

    /// The JSON-RPC fuzz target starts from every example request of the reference, and its
    /// dictionary holds every method and every documented parameter name.
    @Test func theFuzzSeedsHoldEveryExampleRequestAndTheDictionaryEveryName() throws {
        let corpus = RepositoryFiles.root.appendingPathComponent("Tests/Fuzz/corpus/jsonrpc").path
        let seeds = Set(try FileManager.default.contentsOfDirectory(atPath: corpus).map {
            try String(contentsOfFile: corpus + "/" + $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        })
        let dictionary = Set(try RepositoryFiles.text("Tests/Fuzz/jsonrpc.dict").split(separator: "\n").map(String.init))
        for section in document.sections {
            #expect(dictionary.contains("\"\(section.name)\""), "\(section.name) is not in Tests/Fuzz/jsonrpc.dict")
            for parameter in section.params {
                for key in parameter.name.split(separator: ".") where !dictionary.contains("\"\(key)\"") {
                    Issue.record("parameter \(key) of \(section.name) is not in Tests/Fuzz/jsonrpc.dict")
                }
            }
            for case .request(_, _, let text) in try section.jsonBlocks.map(Example.init) {
                #expect(seeds.contains(text), "no seed in Tests/Fuzz/corpus/jsonrpc holds \(text)")
            }
        }
    }

    @Test func errorTableIsExactlyRPCErrorCode() {
        let documented = document.errorTable.map { "\($0.code) \($0.name)" }
        let code = RPCErrorCode.allCases.map { "\($0.rawValue) \($0.name)" }
        #expect(documented == code)
    }

    @Test(arguments: VDPAMethod.allCases)
    func examplesDecodeWithTheMethodsTypes(_ method: VDPAMethod) throws {
        let section = try #require(document.sections.first { $0.name == method.rawValue })
        let contract = MethodContract.of(method)
        let examples = try section.jsonBlocks.map(Example.init)
        var requests = 0, results = 0
        var requestIDs: Set<RPCRequestID> = []
        for example in examples {
            switch example {
            case .request(let id, let name, let text):
                requests += 1
                #expect(name == method.rawValue, "a request in ## \(method.rawValue) calls \(name)")
                let header = try JSONDecoder().decode(RPCRequestHeader.self, from: Data(text.utf8))
                #expect(header.jsonrpc == "2.0")
                #expect(text.contains("\n") == false, "requests are one line: \(text)")
                try contract.decodeParams(Data(text.utf8))
                if section.paramsRequired == true {
                    #expect((try jsonObject(text) as? [String: Any])?["params"] is [String: Any], "params are required: \(text)")
                }
                if let id { #expect(requestIDs.insert(id).inserted, "request id \(id) used twice") }
                // Params in the example are documented params.
                let params = (try jsonObject(text) as? [String: Any])?["params"] as? [String: Any] ?? [:]
                #expect(Set(params.keys).isSubset(of: Set(section.params.map(\.name))), "undocumented params in \(text)")
            case .result(let id, let text):
                results += 1
                #expect(id.map { requestIDs.contains($0) } == true, "a response without its request: \(text)")
                try contract.decodeResult(Data(text.utf8))
            case .error(let id, let text):
                #expect(id.map { requestIDs.contains($0) } == true, "a response without its request: \(text)")
                let response = try JSONDecoder().decode(RPCResponse<RPCEmpty>.self, from: Data(text.utf8))
                let error = try #require(response.error)
                let code = try #require(error.errorCode, "unknown error code \(error.code)")
                #expect(section.errorNames.contains(code.name), "\(code.name) is shown but not listed under **Errors**")
            case .notification(let text):
                let notification = try JSONDecoder().decode(RPCNotification<DeviceEvent>.self, from: Data(text.utf8))
                #expect(notification.method == vdpadEventNotificationMethod)
            }
        }
        #expect(requests >= 1 && results >= 1, "every method has an example request and response")
        for name in section.errorNames {
            #expect(RPCErrorCode.allCases.contains { $0.name == name }, "unknown error name \(name)")
        }
    }

    @Test(arguments: VDPAMethod.allCases)
    func paramsTablesListExactlyTheParamsAndWhichAreRequired(_ method: VDPAMethod) throws {
        let section = try #require(document.sections.first { $0.name == method.rawValue })
        let contract = MethodContract.of(method)
        guard let keys = contract.paramKeys else {
            #expect(section.params.isEmpty)
            #expect(section.paramsRequired == nil, "**Params**: none.")
            return
        }
        #expect(section.paramsRequired != nil, "**Params** (required) or (optional)")
        #expect(Set(section.params.map(\.name)) == keys)
        // Required: the example without it does not decode; optional: the required ones alone do.
        let request = try #require(section.jsonBlocks.compactMap { block -> [String: Any]? in
            guard case .request = try? Example(block) else { return nil }
            return try? jsonObject(block) as? [String: Any]
        }.first)
        let params = request["params"] as? [String: Any] ?? [:]
        func decodes(_ params: [String: Any]) -> Bool {
            var object = request
            object["params"] = params
            guard let data = try? JSONSerialization.data(withJSONObject: object) else { return false }
            return (try? contract.decodeParams(data)) != nil
        }
        for row in section.params where row.required {
            #expect(params[row.name] != nil, "the example omits required \(row.name)")
            #expect(!decodes(params.filter { $0.key != row.name }), "\(row.name) is documented as required but is optional")
        }
        #expect(decodes(params.filter { key, _ in section.params.contains { $0.name == key && $0.required } }),
                "a param documented as optional is required")
    }

    /// Replays the examples against a daemon over the fake kernel.
    @Test func examplesMatchWhatTheDaemonAnswers() async throws {
        var successes: [String: (request: String, response: String)] = [:]
        var failures: [(request: String, response: String)] = []
        for section in document.sections {
            var pending: [RPCRequestID: String] = [:]
            for block in section.jsonBlocks {
                switch try Example(block) {
                case .request(let id?, _, let text): pending[id] = text
                case .result(let id?, let text):
                    if successes[section.name] == nil, let request = pending[id] { successes[section.name] = (request, text) }
                case .error(let id?, let text):
                    if let request = pending[id] { failures.append((request, text)) }
                default: break
                }
            }
        }
        // Successes, in an order where each finds the state it needs.
        // The ports and saved states need a consumer on the port's socket (a mini VMM connects
        // after port_add) and a second device to restore onto (vdpa1, added before port_add).
        let order = ["rpc_methods", "daemon_status", "mgmtdev_list", "dev_add", "dev_get", "dev_list", "dev_config_get",
                     "dev_set", "port_add", "port_list", "port_get", "vq_state_save", "vq_state_list", "vq_state_get",
                     "vq_state_export", "vq_state_import", "vq_state_restore", "port_set", "vq_state_del", "port_del",
                     "dev_bind", "dev_vstats_get", "caps_export", "dev_del",
                     "profile_add", "profile_get", "profile_list", "compat_check", "compat_baseline", "profile_del",
                     "quirk_list", "quirk_test",
                     "events_subscribe"]
        #expect(Set(order) == Set(VDPAMethod.allCases.map(\.rawValue)))
        let kernel = FakeVDPAKernel()
        try kernel.createExternally(DeviceCreateRequest(name: "theirs", managementDevice: .init(bus: nil, name: "vdpasim_blk")))
        let daemon = try await InProcessDaemon(kernel: kernel)
        let pairs = try order.map { try #require(successes[$0], "no example request and result for \($0)") }
        let split = try #require(order.firstIndex(of: "port_add")) + 1
        var replies = try await Self.send(pairs[..<(split - 1)].map(\.request)
            + [#"{"jsonrpc":"2.0","id":"setup","method":"dev_add","params":{"name":"vdpa1","mgmtdev":"vdpasim_net","driver":"vhost_vdpa"}}"#]
            + [pairs[split - 1].request], to: daemon)
        replies.remove(at: split - 1)
        let portReply = try #require(try jsonObject(replies[split - 1]) as? [String: Any])
        let socket = try #require((portReply["result"] as? [String: Any])?["socket"] as? String, "port_add: \(portReply)")
        final class Consumer: @unchecked Sendable { var vmm: MiniVMM? }
        let consumer = Consumer()
        try await runOffThePool { consumer.vmm = try MiniVMM(vhostUserSocket: socket) }
        defer { consumer.vmm?.close() }
        replies += try await Self.send(pairs[split...].map(\.request), to: daemon)
        for ((request, documented), reply) in zip(pairs, replies) {
            let differences = jsonShapeDifferences(try jsonObject(documented), try jsonObject(reply))
            #expect(differences.isEmpty, "\(request)\n\(differences.joined(separator: "\n"))")
        }
        try await daemon.stop()

        // Errors, on a daemon with vdpa0 (bound to vhost_vdpa, so not negotiated), a device made by
        // iproute2, and a profile file the simulator cannot meet (it needs MQ).
        let errorKernel = FakeVDPAKernel()
        try errorKernel.createExternally(DeviceCreateRequest(name: "theirs", managementDevice: .init(bus: nil, name: "vdpasim_blk")))
        let profiles = InProcessDaemon.temporaryDirectory("vdpad-profiles")
        let mqProfile = Profile(name: "mq-net", deviceType: .network, features: [.version1, .accessPlatform, .Net.mac, .Net.status, .Net.controlVirtqueue, .Net.multiqueue],
                                mac: .pool, queuePairs: 4)
        try ProfileFile.encode(mqProfile).write(toFile: profiles + "/mq-net.json", atomically: true, encoding: .utf8)
        let errorDaemon = try await InProcessDaemon(kernel: errorKernel, profilesDirectory: profiles)
        let setup = try #require(successes["dev_add"]?.request)
        #expect(!failures.isEmpty)
        // Params documented as required are refused when absent; optional ones are not.
        let withParams = document.sections.compactMap { section in section.paramsRequired.map { (section.name, $0) } }
        let bare = withParams.enumerated().map { #"{"jsonrpc":"2.0","id":\#($0.offset),"method":"\#($0.element.0)"}"# }
        for ((name, required), reply) in zip(withParams, try await Self.send(bare, to: errorDaemon)) {
            let code = ((try jsonObject(reply) as? [String: Any])?["error"] as? [String: Any])?["code"] as? Int
            if required {
                #expect(code == RPCErrorCode.invalidParams.rawValue, "\(name) without params: \(reply)")
            } else {
                #expect(code != RPCErrorCode.invalidParams.rawValue, "\(name) without params: \(reply)")
            }
        }
        let errorReplies = try await Self.send([setup] + failures.map(\.request), to: errorDaemon)
        for ((request, documented), reply) in zip(failures, errorReplies.dropFirst()) {
            let documentedError = (try jsonObject(documented) as? [String: Any])?["error"] as? NSDictionary
            let liveError = (try jsonObject(reply) as? [String: Any])?["error"] as? NSDictionary
            #expect(documentedError != nil && documentedError == liveError, "\(request)\ndocumented: \(documented)\nthe daemon: \(reply)")
        }
        try await errorDaemon.stop()
    }

    static func send(_ lines: [String], to daemon: InProcessDaemon) async throws -> [String] {
        try await daemon.withClient { client in
            try lines.map { line in
                let reply = try #require(try client.sendRaw(Array((line + "\n").utf8)), "no answer to \(line)")
                return String(decoding: reply, as: UTF8.self)
            }
        }
    }
}
