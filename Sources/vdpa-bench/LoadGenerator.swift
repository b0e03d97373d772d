import Dispatch
import Foundation
import VDPASystem

/// One blocking JSON-RPC client that sends a fixed request line and reads the answer
/// line without decoding it: the load side costs as little as possible, so the
/// figures are the server's.
final class RawClient {
    private let connection: UnixStreamConnection
    private var buffer: [UInt8]

    init(socketPath: String, bufferBytes: Int = 1 << 20) throws {
        connection = try UnixStreamConnection(path: socketPath)
        buffer = [UInt8](repeating: 0, count: bufferBytes)
    }

    static func request(_ method: String, id: Int = 1) -> [UInt8] {
        Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)"}"#.utf8) + [UInt8(ascii: "\n")]
    }

    /// A reply line is a result when `"result"` appears before any `"error"` key near its
    /// start (the daemon writes jsonrpc, id, then result or error).
    static func isResult(_ reply: [UInt8]) -> Bool {
        let head = reply.prefix(64)
        return CannedReplies.range(of: Array(#""result""#.utf8), in: Array(head)) != nil
    }

    /// Sends `request` and returns the whole answer line (without the newline).
    func roundTrip(_ request: [UInt8]) throws -> [UInt8] {
        var reply: [UInt8] = []
        _ = try exchange(request) { reply.append(contentsOf: $0) }
        return reply
    }

    /// Sends `request`, reads to the end of the answer line, hands each chunk to `chunk`;
    /// returns the answer's length.
    @discardableResult
    func exchange(_ request: [UInt8], chunk: (UnsafeRawBufferPointer) -> Void = { _ in }) throws -> Int {
        try connection.writeAll(request)
        var total = 0
        while true {
            let count = try buffer.withUnsafeMutableBytes { raw in try connection.read(into: raw) }
            guard count > 0 else { throw SystemError(errno: ErrnoCode.connectionReset, operation: "recv") }
            let done = buffer[count - 1] == UInt8(ascii: "\n")
            buffer.withUnsafeBytes { raw in chunk(UnsafeRawBufferPointer(rebasing: raw[0..<(done ? count - 1 : count)])) }
            total += count
            if done { return total - 1 }
        }
    }

    func close() { connection.close() }
}

struct LoadResult: Sendable {
    var requests: Int
    var errors: Int
    var elapsedSeconds: Double
    /// Sorted round-trip times, µs.
    var latencies: [Double]

    var requestsPerSecond: Double { Double(requests) / elapsedSeconds }
    var maximum: Double { latencies.last ?? 0 }

    func percentile(_ p: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        return latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)]
    }
}

/// `clients` threads, each with its own connection, calling `method` back to back for
/// `seconds`; every round trip is timed.
enum LoadGenerator {
    private final class Slot: @unchecked Sendable {
        // SAFETY (@unchecked): each slot is written by exactly one thread, and read by the
        // coordinator only after that thread has signalled `finished`.
        var latencies: [Double] = []
        var errors = 0
        var failure: (any Error)?
    }

    static func run(socket: String, method: String, clients: Int, seconds: Double) throws -> LoadResult {
        let slots = (0..<clients).map { _ in Slot() }
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let finished = DispatchGroup()
        let request = RawClient.request(method)
        let deadline = DeadlineBox()
        for slot in slots {
            finished.enter()
            let thread = Thread {
                defer { finished.leave() }
                let client: RawClient
                do { client = try RawClient(socketPath: socket) } catch {
                    slot.failure = error
                    ready.signal()
                    return
                }
                defer { client.close() }
                // Warm-up: one call before the clock starts.
                _ = try? client.exchange(request)
                ready.signal()
                go.wait()
                slot.latencies.reserveCapacity(1 << 16)
                let end = deadline.value
                while true {
                    let start = DispatchTime.now().uptimeNanoseconds
                    if start >= end { break }
                    var head = [UInt8]()
                    do {
                        try client.exchange(request) { chunk in
                            if head.count < 64 { head.append(contentsOf: chunk.prefix(64 - head.count)) }
                        }
                    } catch {
                        slot.failure = error
                        return
                    }
                    slot.latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
                    if !RawClient.isResult(head) { slot.errors += 1 }
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        for _ in slots { ready.wait() }
        if let failure = slots.compactMap(\.failure).first { throw failure }
        let start = DispatchTime.now().uptimeNanoseconds
        deadline.value = start + UInt64(seconds * 1e9)
        for _ in slots { go.signal() }
        finished.wait()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if let failure = slots.compactMap(\.failure).first { throw failure }
        let latencies = slots.flatMap(\.latencies).sorted()
        return LoadResult(requests: latencies.count, errors: slots.reduce(0) { $0 + $1.errors },
                          elapsedSeconds: elapsed, latencies: latencies)
    }

    /// The end of the measurement, set once before the threads are released.
    private final class DeadlineBox: @unchecked Sendable {
        // SAFETY (@unchecked): written before `go` is signalled, read only after `go.wait()`;
        // the semaphore orders the write before the reads.
        var value: UInt64 = 0
    }
}
