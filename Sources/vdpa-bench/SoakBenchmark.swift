import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import VDPASystem

/// `vdpa-bench soak`: a bounded soak of the daemon's API. The daemon (its own process, the
/// fake kernel) holds thousands of devices; a thousand clients, each on its own connection,
/// call a mix of methods with pauses between calls for minutes: reads, `dev_set` changes
/// (each an event to every subscriber), malformed lines, unknown methods, out-of-range
/// numbers, oversized lines, reconnects. Beside them, event subscribers and connections that
/// never send. Printed: throughput and latency per method, the daemon's RSS, descriptors and
/// threads before, during and after. It fails (exit 1) when the daemon stops, a call gets an
/// answer other than the one it must get, a subscriber misses an event, or descriptors leak.
struct SoakCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak", abstract: "A bounded soak: many API clients for minutes; RSS, descriptors, latency.")

    @Option(help: "Devices the daemon knows (created with dev_add).") var devices = 4096
    @Option(help: "Concurrent API clients, each on its own connection.") var clients = 1000
    @Option(help: "Connections that subscribe to events and read them.") var subscribers = 32
    @Option(help: "Connections that never send anything.") var idle = 16
    @Option(help: "Seconds of load.") var seconds = 180.0
    @Option(name: .customLong("think-ms"), help: "Mean pause of a client between calls, ms (uniform in 0…2×).")
    var thinkMilliseconds = 500.0
    @Option(name: .customLong("sample-seconds"), help: "Seconds between samples of the daemon's RSS and descriptors.")
    var sampleSeconds = 10.0
    @Option(name: .customLong("resync-interval"), help: "The daemon's full re-read of the kernel, seconds.")
    var resyncInterval = 30
    @Option(name: .customLong("state-dir"), help: "Where the daemon keeps its state (default: a new temporary directory).")
    var stateDirectory: String?

    func run() async throws {
        let work = stateDirectory ?? (FileManager.default.temporaryDirectory.path + "/vdpa-soak-\(getpid())")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        print("vdpa-bench soak: \(devices) devices, \(clients) clients (mean pause \(thinkMilliseconds) ms), \(subscribers) subscribers, \(idle) idle connections, \(seconds) s, \(ProcessInfo.processInfo.activeProcessorCount) CPUs")

        let socket = "/tmp/vdpa-soak-\(getpid()).sock"
        let connections = clients + subscribers + idle + 64
        let daemon = try BenchServerProcess.start(
            ["serve", "--socket", socket, "--state-dir", work + "/state", "--resync-interval", "\(resyncInterval)",
             "--max-connections-per-user", "\(connections)", "--max-subscriptions-per-user", "\(subscribers + 8)"],
            socket: socket)
        defer { try? daemon.stop() }
        let populate = try APIBenchmarkCommand.populate(socket: socket, devices: devices)
        print(String(format: "dev_add: %d devices in %.2f s", devices, populate))
        try await Task.sleep(for: .seconds(3))
        let before = SoakSample(daemon, elapsed: 0, requests: 0)

        let run = SoakRun(socket: socket, devices: devices, thinkMicroseconds: thinkMilliseconds * 1000)
        let idleConnections = try (0..<idle).map { _ in try UnixStreamConnection(path: socket) }
        let subscriberThreads = try run.startSubscribers(subscribers)
        let clientThreads = run.startClients(clients)
        print("\nelapsed s   requests/s   daemon RSS MiB   descriptors   threads")
        print(before.line(interval: nil))
        var samples = [before]
        let start = ContinuousClock.now
        while true {
            let elapsed = (ContinuousClock.now - start).seconds
            if elapsed >= seconds { break }
            try await Task.sleep(for: .seconds(min(sampleSeconds, seconds - elapsed)))
            guard daemon.process.isRunning else { break }
            let sample = SoakSample(daemon, elapsed: (ContinuousClock.now - start).seconds, requests: run.requests.load(ordering: .relaxed))
            print(sample.line(interval: samples.last))
            samples.append(sample)
        }
        run.stopClients.store(true, ordering: .relaxed)
        clientThreads.wait()
        let loadSeconds = (ContinuousClock.now - start).seconds
        // Every acknowledged change's event has been sent; give the subscribers a moment to read.
        try await Task.sleep(for: .seconds(1))
        run.stopSubscribers.store(true, ordering: .relaxed)
        subscriberThreads.wait()
        for connection in idleConnections { connection.close() }
        let alive = daemon.process.isRunning
        // The daemon gives free heap back a second after its last client left.
        try await Task.sleep(for: .seconds(3))
        let after = SoakSample(daemon, elapsed: (ContinuousClock.now - start).seconds, requests: run.requests.load(ordering: .relaxed))
        let peak = daemon.peakResidentKiB()
        var failures: [String] = []
        if !alive || !daemon.process.isRunning { failures.append("the daemon stopped (status \(daemon.process.terminationStatus))") }

        // What the daemon holds afterwards: every device, answered as before.
        if daemon.process.isRunning {
            let reply = try RawClient(socketPath: socket).roundTrip(RawClient.request("daemon_status"))
            let text = String(decoding: reply, as: UTF8.self)
            if !text.contains(#""managed":\#(devices)"#) {
                failures.append("daemon_status after the soak: \(text.prefix(300))")
            }
        }

        let report = run.report(elapsed: loadSeconds)
        print("\nmethod            calls     errors as expected   p50 µs    p99 µs   p99.9 µs   max µs")
        for row in report.rows { print(row) }
        print(String(format: "\nall: %d calls in %.0f s (%.0f/s), p99 %.0f µs, p99.9 %.0f µs; %d answers other than the expected one",
                     report.total, report.elapsed, Double(report.total) / max(report.elapsed, 1e-9), report.p99, report.p999, report.unexpected.count))
        for example in report.unexpected.prefix(10) { print("  unexpected: \(example)") }
        failures += report.unexpected.prefix(3).map { "unexpected answer: \($0)" }
        let events = run.eventsSeen()
        let acknowledgedChanges = run.acknowledgedChanges.load(ordering: .relaxed)
        print("events: \(acknowledgedChanges) acknowledged dev_set changes; each subscriber received \(events.min() ?? 0)–\(events.max() ?? 0) device_changed events")
        if events.contains(where: { $0 != acknowledgedChanges }) {
            failures.append("subscribers received \(events) device_changed events for \(acknowledgedChanges) changes")
        }
        print(String(format: "daemon: RSS %.1f MiB before, %.1f MiB after (%+.1f MiB), peak %.1f MiB; anonymous %.1f → %.1f MiB; descriptors %d → %d; threads %d → %d",
                     Double(before.residentKiB) / 1024, Double(after.residentKiB) / 1024,
                     Double(after.residentKiB - before.residentKiB) / 1024, Double(peak) / 1024,
                     Double(before.anonymousKiB) / 1024, Double(after.anonymousKiB) / 1024,
                     before.descriptors, after.descriptors, before.threads, after.threads))
        // Growth under load shows as a rising RSS: compare the two halves of the samples taken during it.
        let during = samples.dropFirst()
        if during.count >= 2 {
            let half = during.count / 2
            let mean = { (part: ArraySlice<SoakSample>) in Double(part.reduce(0) { $0 + $1.residentKiB }) / Double(max(part.count, 1)) / 1024 }
            print(String(format: "daemon RSS under load: %.1f MiB mean over the first half of the samples, %.1f MiB over the second",
                         mean(during.prefix(half)), mean(during.suffix(during.count - half))))
        }
        if after.descriptors > before.descriptors {
            failures.append("descriptors: \(before.descriptors) before the soak, \(after.descriptors) after every client left")
        }
        if !failures.isEmpty {
            print("\nsoak FAILED:\n  " + failures.joined(separator: "\n  "))
            throw ExitCode(1)
        }
        print("\nsoak passed")
    }
}

/// The daemon's resources at one moment.
struct SoakSample {
    var elapsed: Double
    var requests: Int
    var residentKiB: Int
    var anonymousKiB: Int
    var descriptors: Int
    var threads: Int

    init(_ daemon: BenchServerProcess, elapsed: Double, requests: Int) {
        self.elapsed = elapsed
        self.requests = requests
        residentKiB = daemon.residentKiB()
        anonymousKiB = daemon.anonymousResidentKiB()
        descriptors = daemon.openDescriptors()
        threads = daemon.threads()
    }

    func line(interval previous: SoakSample?) -> String {
        let rate = previous.map { Double(requests - $0.requests) / max(elapsed - $0.elapsed, 1e-9) } ?? 0
        return String(format: "%9.0f   %10.0f   %14.1f   %11d   %7d", elapsed, rate, Double(residentKiB) / 1024, descriptors, threads)
    }
}

/// The calls of the soak, with how often each is made (per 10 000) and what it must get.
enum SoakOperation: UInt8, CaseIterable {
    case daemonStatus, devGet, devConfigGet, mgmtdevList, profileList, portList, vqStateList, devList, devSet
    case parseError, unknownMethod, invalidParams, outOfRange, reconnect, oversized

    var weight: Int {
        switch self {
        case .daemonStatus, .devGet: 2500
        case .devConfigGet: 1000
        case .mgmtdevList, .profileList, .portList, .vqStateList: 500
        case .devList: 30
        case .devSet: 100
        case .parseError, .unknownMethod, .invalidParams, .outOfRange: 300
        case .reconnect: 200
        case .oversized: 2
        }
    }

    var name: String {
        switch self {
        case .daemonStatus: "daemon_status"
        case .devGet: "dev_get"
        case .devConfigGet: "dev_config_get"
        case .mgmtdevList: "mgmtdev_list"
        case .profileList: "profile_list"
        case .portList: "port_list"
        case .vqStateList: "vq_state_list"
        case .devList: "dev_list"
        case .devSet: "dev_set"
        case .parseError: "(not JSON)"
        case .unknownMethod: "(no such method)"
        case .invalidParams: "(wrong params)"
        case .outOfRange: "(out of range)"
        case .reconnect: "(reconnect)"
        case .oversized: "(line > 1 MiB)"
        }
    }

    /// The error codes the call must get (empty: a result).
    var expectedErrors: Set<Int> {
        switch self {
        case .devSet: [1007]  // try_again: another client is changing that device
        case .parseError: [-32700]
        case .unknownMethod: [-32601]
        case .invalidParams, .outOfRange: [-32602]
        case .oversized: [1012]
        default: []
        }
    }

    static let totalWeight = allCases.reduce(0) { $0 + $1.weight }

    static func pick(_ roll: Int) -> SoakOperation {
        var left = roll % totalWeight
        for operation in allCases {
            if left < operation.weight { return operation }
            left -= operation.weight
        }
        return .daemonStatus
    }
}

/// The load of one soak: the client and subscriber threads and what they recorded.
final class SoakRun: @unchecked Sendable {
    // SAFETY (@unchecked): the counters are atomics; each slot is written by one thread and
    // read by `report()`/`eventsSeen()` only after every thread has left its group.
    let socket: String
    let devices: Int
    let thinkMicroseconds: Double
    let requests = Atomic<Int>(0)
    let acknowledgedChanges = Atomic<Int>(0)
    let stopClients = Atomic<Bool>(false)
    let stopSubscribers = Atomic<Bool>(false)
    private let macCounter = Atomic<Int>(0)
    private var clientSlots: [ClientSlot] = []
    private var subscriberSlots: [SubscriberSlot] = []

    init(socket: String, devices: Int, thinkMicroseconds: Double) {
        self.socket = socket
        self.devices = devices
        self.thinkMicroseconds = thinkMicroseconds
    }

    // SAFETY (@unchecked, both slots): written by the one thread that owns the slot, read
    // after that thread has left its group.
    final class ClientSlot: @unchecked Sendable {
        /// (operation, latency µs) of every call.
        var calls: [(operation: SoakOperation, microseconds: UInt32)] = []
        var errorsAsExpected: [Int] = Array(repeating: 0, count: SoakOperation.allCases.count)
        var unexpected: [String] = []
    }

    final class SubscriberSlot: @unchecked Sendable {
        var deviceChanged = 0
        var failure: String?
    }

    private static let oversizedLine = [UInt8](repeating: UInt8(ascii: " "), count: (1 << 20) + 64) + [UInt8(ascii: "\n")]

    private func line(_ operation: SoakOperation, random: inout SoakGenerator) -> [UInt8] {
        let device = "bench\(Int(random.next() % UInt64(devices)))"
        let text: String
        switch operation {
        case .daemonStatus, .reconnect: text = #"{"jsonrpc":"2.0","id":1,"method":"daemon_status"}"#
        case .devGet: text = #"{"jsonrpc":"2.0","id":2,"method":"dev_get","params":{"name":"\#(device)"}}"#
        case .devConfigGet: text = #"{"jsonrpc":"2.0","id":3,"method":"dev_config_get","params":{"name":"\#(device)"}}"#
        case .mgmtdevList: text = #"{"jsonrpc":"2.0","id":4,"method":"mgmtdev_list"}"#
        case .profileList: text = #"{"jsonrpc":"2.0","id":5,"method":"profile_list"}"#
        case .portList: text = #"{"jsonrpc":"2.0","id":6,"method":"port_list"}"#
        case .vqStateList: text = #"{"jsonrpc":"2.0","id":7,"method":"vq_state_list"}"#
        case .devList: text = #"{"jsonrpc":"2.0","id":8,"method":"dev_list"}"#
        case .devSet:
            // A MAC no device had before: every acknowledged change is a change.
            let serial = macCounter.wrappingAdd(1, ordering: .relaxed).newValue
            let mac = String(format: "06:%02x:%02x:%02x:%02x:%02x", (serial >> 32) & 0xff, (serial >> 24) & 0xff,
                             (serial >> 16) & 0xff, (serial >> 8) & 0xff, serial & 0xff)
            text = #"{"jsonrpc":"2.0","id":9,"method":"dev_set","params":{"name":"\#(device)","mac":"\#(mac)"}}"#
        case .parseError: text = #"{"jsonrpc":"2.0","id":10,"method":"dev_get","params":{"name":"#
        case .unknownMethod: text = #"{"jsonrpc":"2.0","id":11,"method":"dev_explode"}"#
        case .invalidParams: text = #"{"jsonrpc":"2.0","id":12,"method":"dev_get","params":{"name":5}}"#
        case .outOfRange:
            text = random.next() % 2 == 0
                ? #"{"jsonrpc":"2.0","id":13,"method":"dev_add","params":{"name":"soakx","mgmtdev":"vdpasim_net","mtu":9223372036854775807}}"#
                : #"{"jsonrpc":"2.0","id":13,"method":"profile_add","params":{"schema":"vdpad.profile/v1","name":"soakx","version":9223372036854775807,"device_type":"net","features":{"names":["VERSION_1"]}}}"#
        case .oversized: return Self.oversizedLine
        }
        return Array(text.utf8) + [UInt8(ascii: "\n")]
    }

    /// The error code of an answer line's head, or nil for a result (keys are sorted:
    /// `{"error":{"code":N,…` or `{"id":…,"jsonrpc":"2.0","result":…`).
    private static func errorCode(_ head: [UInt8]) -> Int? {
        let prefix = Array(#"{"error":{"code":"#.utf8)
        guard head.starts(with: prefix) else { return nil }
        let digits = head.dropFirst(prefix.count).prefix { $0 == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        return Int(String(decoding: digits, as: UTF8.self)) ?? Int.min
    }

    func startClients(_ count: Int) -> DispatchGroup {
        let group = DispatchGroup()
        clientSlots = (0..<count).map { _ in ClientSlot() }
        for (index, slot) in clientSlots.enumerated() {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                runClient(slot, seed: UInt64(index) &+ 0x50a4)
            }
            thread.stackSize = 256 << 10
            thread.start()
        }
        return group
    }

    private func runClient(_ slot: ClientSlot, seed: UInt64) {
        var random = SoakGenerator(state: seed)
        var client: RawClient?
        slot.calls.reserveCapacity(1 << 14)
        while !stopClients.load(ordering: .relaxed) {
            let pause = Double(random.next() % 1_000_000) / 1_000_000 * 2 * thinkMicroseconds
            usleep(UInt32(pause))
            let operation = SoakOperation.pick(Int(random.next() % UInt64(Int.max)))
            let request = line(operation, random: &random)
            let start = DispatchTime.now().uptimeNanoseconds
            var code: Int?
            do {
                if operation == .reconnect { client?.close(); client = nil }
                if client == nil { client = try RawClient(socketPath: socket, bufferBytes: 64 << 10) }
                var head: [UInt8] = []
                try client!.exchange(request) { chunk in
                    if head.count < 64 { head.append(contentsOf: chunk.prefix(64 - head.count)) }
                }
                code = Self.errorCode(head)
            } catch {
                // An oversized line may meet the closed connection before its answer is read.
                client?.close()
                client = nil
                if operation != .oversized { slot.unexpected.append("\(operation.name): \(error)") }
                code = 1012
            }
            if operation == .oversized { client?.close(); client = nil }
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            slot.calls.append((operation, UInt32(min(elapsed / 1000, UInt64(UInt32.max)))))
            requests.wrappingAdd(1, ordering: .relaxed)
            switch code {
            case nil where operation.expectedErrors.isEmpty || operation == .devSet:
                if operation == .devSet { acknowledgedChanges.wrappingAdd(1, ordering: .relaxed) }
            case let code? where operation.expectedErrors.contains(code):
                slot.errorsAsExpected[Int(operation.rawValue)] += 1
            default:
                if slot.unexpected.count < 20 { slot.unexpected.append("\(operation.name) got \(code.map { "error \($0)" } ?? "a result")") }
            }
        }
        client?.close()
    }

    func startSubscribers(_ count: Int) throws -> DispatchGroup {
        let group = DispatchGroup()
        subscriberSlots = (0..<count).map { _ in SubscriberSlot() }
        let subscribed = DispatchSemaphore(value: 0)
        for slot in subscriberSlots {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                runSubscriber(slot, subscribed: subscribed)
            }
            thread.stackSize = 256 << 10
            thread.start()
        }
        for _ in 0..<count { subscribed.wait() }
        if let failure = subscriberSlots.compactMap(\.failure).first { throw ValidationError("subscriber: \(failure)") }
        return group
    }

    private func runSubscriber(_ slot: SubscriberSlot, subscribed: DispatchSemaphore) {
        let connection: UnixStreamConnection
        var pending: [UInt8] = []
        do {
            connection = try UnixStreamConnection(path: socket)
            try connection.writeAll(Array(#"{"jsonrpc":"2.0","id":1,"method":"events_subscribe"}"#.utf8) + [UInt8(ascii: "\n")])
            while !pending.contains(UInt8(ascii: "\n")) {
                let bytes = try connection.read()
                guard !bytes.isEmpty else { throw SystemError(errno: ErrnoCode.connectionReset, operation: "recv") }
                pending += bytes
            }
            let answer = pending[..<pending.firstIndex(of: UInt8(ascii: "\n"))!]
            guard String(decoding: answer, as: UTF8.self).contains(#""subscribed":true"#) else {
                throw ValidationError("events_subscribe: \(String(decoding: answer, as: UTF8.self))")
            }
            pending.removeSubrange(...pending.firstIndex(of: UInt8(ascii: "\n"))!)
        } catch {
            slot.failure = "\(error)"
            subscribed.signal()
            return
        }
        subscribed.signal()
        defer { connection.close() }
        let marker = Array(#""type":"device_changed""#.utf8)
        while !stopSubscribers.load(ordering: .relaxed) {
            do {
                let bytes = try connection.read(timeoutMilliseconds: 200)
                if bytes.isEmpty { slot.failure = "the daemon closed a subscriber's connection"; return }
                pending += bytes
            } catch let error as SystemError where error.errno == ETIMEDOUT {
                continue
            } catch {
                slot.failure = "\(error)"
                return
            }
            var lineStart = 0
            while let newline = pending[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
                if CannedReplies.range(of: marker, in: Array(pending[lineStart..<newline])) != nil { slot.deviceChanged += 1 }
                lineStart = newline + 1
            }
            pending.removeSubrange(..<lineStart)
        }
    }

    /// device_changed events each subscriber read (-1 for a subscriber that failed).
    func eventsSeen() -> [Int] { subscriberSlots.map { $0.failure == nil ? $0.deviceChanged : -1 } }

    struct Report {
        var rows: [String]
        var total: Int
        var elapsed: Double
        var p99: Double
        var p999: Double
        var unexpected: [String]
    }

    /// The figures of the calls, made over `elapsed` seconds.
    func report(elapsed: Double) -> Report {
        var byOperation = Array(repeating: [UInt32](), count: SoakOperation.allCases.count)
        var expectedErrors = Array(repeating: 0, count: SoakOperation.allCases.count)
        for slot in clientSlots {
            for call in slot.calls { byOperation[Int(call.operation.rawValue)].append(call.microseconds) }
            for (index, count) in slot.errorsAsExpected.enumerated() { expectedErrors[index] += count }
        }
        func percentile(_ sorted: [UInt32], _ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return Double(sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))])
        }
        var rows: [String] = []
        for operation in SoakOperation.allCases {
            let latencies = byOperation[Int(operation.rawValue)].sorted()
            rows.append(operation.name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: " %8d   %8d           %8.0f  %8.0f  %9.0f  %8.0f", latencies.count,
                               expectedErrors[Int(operation.rawValue)], percentile(latencies, 0.5), percentile(latencies, 0.99),
                               percentile(latencies, 0.999), Double(latencies.last ?? 0)))
        }
        let all = byOperation.flatMap { $0 }.sorted()
        return Report(rows: rows, total: all.count, elapsed: elapsed,
                      p99: percentile(all, 0.99), p999: percentile(all, 0.999),
                      unexpected: clientSlots.flatMap(\.unexpected))
    }
}

/// The soak's generator (each client its own, seeded by its number: the same mix every run).
struct SoakGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 11
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
