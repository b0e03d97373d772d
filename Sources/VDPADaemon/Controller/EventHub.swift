import Foundation
import Synchronization
import VDPARPC

/// Fans device events out to subscribed connections.
///
/// Each subscriber has a bounded buffer; one that falls `capacity` events behind
/// is dropped (its stream finishes and its connection is closed), so a stalled
/// client never holds memory or slows the others.
public final class EventHub: Sendable {
    private struct State {
        var subscribers: [UInt64: AsyncStream<DeviceEvent>.Continuation] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    private let capacity: Int

    public init(capacity: Int = 4096) { self.capacity = capacity }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// A stream of every event published from now on.
    public func subscribe() -> AsyncStream<DeviceEvent> {
        let (stream, continuation) = AsyncStream<DeviceEvent>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        let id = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = continuation
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    public func publish(_ event: DeviceEvent) {
        let subscribers = state.withLock { $0.subscribers }
        for (id, continuation) in subscribers {
            if case .dropped = continuation.yield(event) {
                continuation.finish()
                _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
            }
        }
    }

    public func finishAll() {
        let subscribers = state.withLock { state in
            defer { state.subscribers.removeAll() }
            return state.subscribers
        }
        for continuation in subscribers.values { continuation.finish() }
    }
}

/// ISO 8601 timestamps for the API ("2026-11-22T15:17:49Z").
enum Timestamp {
    static func string(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
