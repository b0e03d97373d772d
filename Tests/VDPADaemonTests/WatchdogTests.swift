import Foundation
import Logging
import Synchronization
import Testing
import VDPADaemon

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

        /// The messages received during `duration`.
        func messages(during duration: Duration) -> [String] {
            var messages: [String] = []
            let end = ContinuousClock.now + duration
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now < end {
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
        // WATCHDOG_USEC 400 ms: a ping every 200 ms, none after 200 ms without an answer.
        let service = SystemdNotifyService(environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "400000"], logger: logger,
                                           probe: { await controller.ping() })
        let running = Task { try await service.run() }
        service.markReady()
        let answering = socket.messages(during: .seconds(1))
        #expect(answering.contains { $0.contains("READY=1") })
        #expect(answering.filter { $0.contains("WATCHDOG=1") }.count >= 3, "\(answering)")

        controller.stuck.withLock { $0 = true }
        _ = socket.messages(during: .milliseconds(500))
        let stuck = socket.messages(during: .seconds(1))
        #expect(!stuck.contains { $0.contains("WATCHDOG=1") }, "pinged for a controller that does not answer: \(stuck)")

        controller.stuck.withLock { $0 = false }
        let again = socket.messages(during: .seconds(1))
        #expect(again.contains { $0.contains("WATCHDOG=1") }, "no ping once the controller answers again")

        running.cancel()
        _ = try? await running.value
        #expect(socket.messages(during: .milliseconds(200)).contains { $0.contains("STOPPING=1") })
    }
}
