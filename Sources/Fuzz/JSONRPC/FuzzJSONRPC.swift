import Dispatch
import Foundation
import Logging
import VDPADaemon
import VDPARPC
import VDPAStore
import VDPATestSupport

/// libFuzzer entry point for the JSON-RPC surface: each input is one request line,
/// handed to the daemon's real dispatcher and controller (over the fake kernel and
/// a real state store). Any answer is fine; a crash, a hang or a reply that is not
/// one JSON object is not. Build and run: Tests/Fuzz/run-fuzzers.sh.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONRPC(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let line = Array(UnsafeBufferPointer(start: data, count: size))
    let outcome = Harness.shared.handle(line)
    if let bytes = outcome.responseLine {
        guard (try? JSONSerialization.jsonObject(with: Data(bytes))) is [String: Any] else {
            fatalError("reply is not a JSON object: \(String(decoding: bytes, as: UTF8.self))")
        }
    }
    return 0
}

/// One daemon for the whole run (as in production: state accumulates across requests).
final class Harness: Sendable {
    static let shared = Harness()
    let dispatcher: RPCDispatcher

    init() {
        let directory = "/dev/shm/vdpad-fuzz-\(getpid())"
        dispatcher = Self.wait {
            let store = try! StateStore(directory: directory)
            var logger = Logger(label: "fuzz")
            logger.logLevel = .critical
            let controller = VDPAController(kernel: FakeVDPAKernel(), store: store, settings: .init(
                restoreOnStart: true, socketPath: "/dev/null", stateDirectory: directory, version: vdpadVersion), logger: logger)
            _ = try? await controller.reconcile()
            return RPCDispatcher(controller: controller)
        }
    }

    func handle(_ line: [UInt8]) -> RPCDispatchOutcome {
        let dispatcher = self.dispatcher
        return Self.wait { await dispatcher.handle(line: line) }
    }

    /// Runs async work to completion from libFuzzer's (non-pool) thread.
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.value = await body()
            done.signal()
        }
        done.wait()
        return box.value!
    }
}

/// Hands one value from the task to the waiting thread.
// SAFETY: written once by the task before `signal()`, read by the waiter after `wait()`;
// the semaphore orders the two accesses, so they never overlap.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
