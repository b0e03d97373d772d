import Foundation
import Logging
import Synchronization
import Testing
import VDPADaemon
import VDPATestSupport

/// The systemd watchdog pings only while the controller answers (`SystemdNotifyService`'s
/// probe), over a real `$NOTIFY_SOCKET` datagram socket.
@Suite struct WatchdogTests {
    /// A datagram socket standing in for systemd's notify socket.
    final class NotifySocket: @unchecked Sendable {
        // SAFETY (@unchecked): the descriptor is only read by the test's one thread.
        let path = "/tmp/vdpad-notify-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd: Int32

        init() throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard fd >= 0, bound == 0 else { throw POSIXError(.EINVAL) }
            var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit {
            close(fd)
            unlink(path)
        }

        /// The messages received during `duration`, read on a thread of their own (never
        /// blocking the concurrency pool the service under test runs on).
        func messages(during duration: Duration) async throws -> [String] {
            try await runOffThePool { self.receive(during: duration) }
        }

        /// The messages received until `enough` holds of them, or `limit` passes.
        func messages(until enough: @escaping @Sendable ([String]) -> Bool, within limit: Duration) async throws -> [String] {
            try await runOffThePool { self.receive(during: limit, until: enough) }
        }

        private func receive(during duration: Duration, until enough: ([String]) -> Bool = { _ in false }) -> [String] {
            var messages: [String] = []
            let end = ContinuousClock.now + duration
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now < end && !enough(messages) {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 { messages.append(String(decoding: buffer[..<count], as: UTF8.self)) }
            }
            return messages
        }
    }

    final class Controller: Sendable {
        let stuck = Mutex(false)
        func ping() async {
            while stuck.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(10)) }
        }
    }

    @Test func pingsStopWhileTheControllerDoesNotAnswer() async throws {
        let socket = try NotifySocket()
        let controller = Controller()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        // WATCHDOG_USEC 1 s: a ping every 500 ms, none after 500 ms without an answer.
        let service = SystemdNotifyService(environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "1000000"], logger: logger,
                                           probe: { await controller.ping() })
        let running = Task { try await service.run() }
        service.markReady()
        // Generous limits: other tests may keep the concurrency pool busy for a while.
        let answering = try await socket.messages(until: { $0.filter { $0.contains("WATCHDOG=1") }.count >= 2 }, within: .seconds(20))
        #expect(answering.contains { $0.contains("READY=1") })
        #expect(answering.filter { $0.contains("WATCHDOG=1") }.count >= 2, "\(answering)")

        controller.stuck.withLock { $0 = true }
        _ = try await socket.messages(during: .milliseconds(1200))
        let stuck = try await socket.messages(during: .milliseconds(1500))
        #expect(!stuck.contains { $0.contains("WATCHDOG=1") }, "pinged for a controller that does not answer: \(stuck)")

        controller.stuck.withLock { $0 = false }
        let again = try await socket.messages(until: { $0.contains { $0.contains("WATCHDOG=1") } }, within: .seconds(20))
        #expect(again.contains { $0.contains("WATCHDOG=1") }, "no ping once the controller answers again")

        running.cancel()
        _ = try? await running.value
        #expect(try await socket.messages(until: { $0.contains { $0.contains("STOPPING=1") } }, within: .seconds(20)).contains { $0.contains("STOPPING=1") })
    }
}
