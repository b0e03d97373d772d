import Foundation
import Testing
import VDPADaemon

/// A systemd unit file: sections of `Key=Value` lines; a key may repeat (DeviceAllow=).
struct UnitFile {
    private(set) var sections: [String: [(key: String, value: String)]] = [:]

    init(text: String) {
        var section = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[section, default: []].append((key, value))
        }
    }

    /// Every value of `key` in `section`, in file order.
    func values(_ section: String, _ key: String) -> [String] {
        (sections[section] ?? []).filter { $0.key == key }.map(\.value)
    }

    /// The value of a key that must appear once.
    func value(_ section: String, _ key: String) -> String? {
        let all = values(section, key)
        return all.count == 1 ? all[0] : nil
    }
}

/// The long options `vdpad` declares, read from its command's source (the executable
/// target cannot be imported by a test target): `.customLong("x")`, or `.long` with the
/// property name in kebab case, as swift-argument-parser derives it.
func vdpadCommandOptions() throws -> Set<String> {
    let source = try RepositoryFiles.text("Sources/vdpad/VDPADCommand.swift")
    let lines = source.split(separator: "\n").map(String.init)
    var options: Set<String> = []
    for (index, line) in lines.enumerated() where line.contains("@Option(") || line.contains("@Flag(") {
        if let match = line.firstMatch(of: /\.customLong\("([a-z0-9-]+)"\)/) {
            options.insert(String(match.1))
        } else if line.contains("name: .long") {
            // The property follows on this line or the next ones.
            let rest = lines[index...].joined(separator: "\n")
            guard let property = rest.firstMatch(of: /var\s+([A-Za-z0-9]+)/) else { continue }
            options.insert(String(property.1).replacing(/[A-Z]/) { "-" + $0.output.lowercased() })
        }
    }
    return options
}

@Suite struct SystemdUnitTests {
    let unit: UnitFile

    init() throws {
        unit = UnitFile(text: try RepositoryFiles.text("systemd/vdpad.service"))
    }

    @Test func isANotifyServiceWithAWatchdogThatRestartsOnFailure() throws {
        #expect(unit.value("Service", "Type") == "notify")
        #expect(unit.value("Service", "NotifyAccess") == "main")
        let watchdog = try #require(unit.value("Service", "WatchdogSec"))
        let seconds = try #require(Int(watchdog), "WatchdogSec=\(watchdog) should be whole seconds")
        #expect(seconds >= 10, "the daemon pings at half the interval; leave it room")
        let stopTimeout = try #require(unit.value("Service", "TimeoutStopSec").flatMap { Int($0) })
        #expect(stopTimeout > seconds / 2, "a stop can wait for one watchdog ping interval")
        #expect(unit.value("Service", "Restart") == "on-failure")
        // ArgumentParser's exit status for a bad option or configuration file.
        #expect(unit.value("Service", "RestartPreventExitStatus") == "64")
        #expect(unit.value("Install", "WantedBy") == "multi-user.target")
    }

    @Test func execStartUsesOnlyOptionsVdpadHas() throws {
        let execStart = try #require(unit.value("Service", "ExecStart"))
        let words = execStart.split(separator: " ").map(String.init)
        #expect(words.first == "/usr/local/bin/vdpad")
        let known = try vdpadCommandOptions()
        #expect(known.isSuperset(of: ["config", "socket", "state-dir", "log-level"]), "options read from the source: \(known)")
        let used = words.filter { $0.hasPrefix("--") }.map { String($0.dropFirst(2)) }
        #expect(!used.isEmpty)
        for option in used {
            #expect(known.contains(option), "ExecStart uses --\(option), which vdpad does not have (it has \(known.sorted()))")
        }
        // The configuration file it names is the one the repository ships.
        let configIndex = try #require(words.firstIndex(of: "--config"))
        let configPath = try #require(words.indices.contains(configIndex + 1) ? words[configIndex + 1] : nil)
        #expect(configPath == "/etc/vdpad/vdpad.conf")
        #expect(FileManager.default.fileExists(atPath: RepositoryFiles.root.appendingPathComponent("etc/vdpad/vdpad.conf").path))
    }

    @Test func directoriesMatchTheDaemonsDefaults() throws {
        let defaults = DaemonConfiguration()
        let state = try #require(unit.value("Service", "StateDirectory"))
        #expect("/var/lib/" + state == defaults.stateDirectory)
        #expect(unit.value("Service", "StateDirectoryMode") == "0700")
        let runtime = try #require(unit.value("Service", "RuntimeDirectory"))
        let socketDirectory = URL(fileURLWithPath: defaults.socketPath).deletingLastPathComponent().path
        #expect("/run/" + runtime == socketDirectory)
        // Clients outside the daemon's user must be able to reach the socket in it.
        let runtimeMode = try #require(unit.value("Service", "RuntimeDirectoryMode").flatMap { UInt32($0, radix: 8) })
        #expect(runtimeMode & 0o011 == 0o011)
        #expect(defaults.socketMode == 0o660)
    }

    @Test func hardeningKeepsWhatVdpadNeedsAndNothingMore() throws {
        #expect(unit.value("Service", "CapabilityBoundingSet") == "CAP_NET_ADMIN")
        let families = Set((unit.value("Service", "RestrictAddressFamilies") ?? "").split(separator: " ").map(String.init))
        #expect(families == ["AF_UNIX", "AF_NETLINK"])
        for (key, value) in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                             ("PrivateTmp", "yes"), ("ProtectKernelModules", "yes"), ("ProtectControlGroups", "yes"),
                             ("RestrictNamespaces", "yes"), ("LockPersonality", "yes"), ("MemoryDenyWriteExecute", "yes"),
                             ("RestrictRealtime", "yes"), ("SystemCallArchitectures", "native"),
                             ("SystemCallFilter", "@system-service"), ("DevicePolicy", "closed")] {
            #expect(unit.value("Service", key) == value, "\(key)")
        }
        // sysfs must stay writable (bind/unbind), the vdpa family lives in the initial
        // network namespace only, and /dev/vhost-vdpa-* must stay visible.
        #expect(unit.values("Service", "ProtectKernelTunables").allSatisfy { $0 == "no" })
        #expect(unit.values("Service", "PrivateNetwork").allSatisfy { $0 == "no" })
        #expect(unit.values("Service", "PrivateDevices").allSatisfy { $0 == "no" })
        #expect(Set(unit.values("Service", "DeviceAllow")) == ["char-vhost-vdpa rw", "char-vduse rw", "/dev/net/tun rw"])
        let umask = try #require(unit.value("Service", "UMask").flatMap { UInt32($0, radix: 8) })
        #expect(umask & 0o077 == 0o077, "the state database must not be readable by others")
    }
}
