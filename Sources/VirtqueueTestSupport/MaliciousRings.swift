import Virtqueue

/// A deliberately broken ring and the error the device role must report.
public struct MaliciousRing: Sendable, CustomStringConvertible {
    public let name: String
    public let layout: QueueLayout
    public let indirectNegotiated: Bool
    public let expected: VirtqueueError.Kind
    let build: @Sendable (RingForge) throws -> Void

    public var description: String { "\(layout).\(name)" }

    /// Queue size used by every case.
    public static let queueSize: UInt16 = 8
    /// Guest memory size (one region at GPA 0).
    public static let memorySize = 0x10000
    /// A valid data address inside memory.
    public static let data: UInt64 = 0x8000
    /// An indirect table location inside memory.
    public static let table = GuestAddress(0x9000)

    public init(
        _ name: String, _ layout: QueueLayout, indirect: Bool = true, expect: VirtqueueError.Kind,
        build: @escaping @Sendable (RingForge) throws -> Void
    ) {
        self.name = name
        self.layout = layout
        self.indirectNegotiated = indirect
        self.expected = expect
        self.build = build
    }

    /// Builds the ring in fresh memory and returns memory + device state.
    public func make() throws -> (memory: HeapGuestMemory, state: QueueState) {
        let memory = try HeapGuestMemory(size: Self.memorySize)
        let state = RingLayoutBuilder.makeState(
            layout: layout, size: Self.queueSize, base: GuestAddress(0x1000), indirect: indirectNegotiated
        ).state
        try build(RingForge(memory: memory, state: state))
        return (memory, state)
    }

    /// Pops until an error (or until nothing is available), returning the error.
    public func run() throws -> VirtqueueError? {
        let (memory, state) = try make()
        var queue = try DeviceQueue(state: state, memory: memory)
        var chain = DescriptorChain()
        for _ in 0..<Int(Self.queueSize) * 2 {
            do {
                guard try queue.popAvailable(into: &chain) else { return nil }
            } catch {
                return error
            }
        }
        return nil
    }

    static let next = DescriptorFlags.next
    static let write = DescriptorFlags.write
    static let indirect = DescriptorFlags.indirect
    static let avail = RingForge.packedAvailFlags()

    /// The corpus.
    public static let all: [MaliciousRing] = split + packed

    public static let split: [MaliciousRing] = [
        .init("two-descriptor loop", .split, expect: .descriptorLoop) { f in
            try f.setSplitDescriptor(0, address: data, length: 16, flags: next, next: 1)
            try f.setSplitDescriptor(1, address: data, length: 16, flags: next, next: 0)
            try f.makeSplitAvailable([0])
        },
        .init("self loop", .split, expect: .descriptorLoop) { f in
            try f.setSplitDescriptor(3, address: data, length: 16, flags: next, next: 3)
            try f.makeSplitAvailable([3])
        },
        .init("head out of range", .split, expect: .descriptorIndexOutOfRange) { f in
            try f.makeSplitAvailable([queueSize])
        },
        .init("next out of range", .split, expect: .descriptorIndexOutOfRange) { f in
            try f.setSplitDescriptor(0, address: data, length: 16, flags: next, next: 0xffff)
            try f.makeSplitAvailable([0])
        },
        .init("chain longer than queue via indirect", .split, expect: .chainTooLong) { f in
            try f.setSplitDescriptor(0, address: data, length: 16, flags: next, next: 1)
            try f.setSplitDescriptor(1, address: table.rawValue, length: 16 * UInt32(queueSize), flags: indirect)
            for i in 0..<queueSize {
                try f.setSplitIndirectEntry(table: table, i, address: data, length: 8, flags: i + 1 < queueSize ? next : 0, next: i + 1)
            }
            try f.makeSplitAvailable([0])
        },
        .init("nested indirect", .split, expect: .nestedIndirect) { f in
            try f.setSplitDescriptor(0, address: table.rawValue, length: 32, flags: indirect)
            try f.setSplitIndirectEntry(table: table, 0, address: data, length: 8, flags: next, next: 1)
            try f.setSplitIndirectEntry(table: table, 1, address: table.rawValue, length: 32, flags: indirect)
            try f.makeSplitAvailable([0])
        },
        .init("indirect with next", .split, expect: .indirectWithNext) { f in
            try f.setSplitDescriptor(0, address: table.rawValue, length: 16, flags: indirect | next, next: 1)
            try f.makeSplitAvailable([0])
        },
        .init("indirect not negotiated", .split, indirect: false, expect: .indirectNotNegotiated) { f in
            try f.setSplitDescriptor(0, address: table.rawValue, length: 16, flags: indirect)
            try f.makeSplitAvailable([0])
        },
        .init("indirect length not multiple of 16", .split, expect: .indirectTableLengthNotMultipleOf16) { f in
            try f.setSplitDescriptor(0, address: table.rawValue, length: 24, flags: indirect)
            try f.makeSplitAvailable([0])
        },
        .init("zero-length indirect table", .split, expect: .zeroLengthIndirectTable) { f in
            try f.setSplitDescriptor(0, address: table.rawValue, length: 0, flags: indirect)
            try f.makeSplitAvailable([0])
        },
        .init("readable after writable", .split, expect: .readableAfterWritable) { f in
            try f.setSplitDescriptor(0, address: data, length: 16, flags: write | next, next: 1)
            try f.setSplitDescriptor(1, address: data, length: 16, flags: 0)
            try f.makeSplitAvailable([0])
        },
        .init("readable after zero-length writable", .split, expect: .readableAfterWritable) { f in
            try f.setSplitDescriptor(0, address: data, length: 0, flags: write | next, next: 1)
            try f.setSplitDescriptor(1, address: data, length: 16, flags: 0)
            try f.makeSplitAvailable([0])
        },
        .init("buffer outside memory", .split, expect: .bufferOutOfMemory) { f in
            try f.setSplitDescriptor(0, address: 0x1_0000_0000, length: 16)
            try f.makeSplitAvailable([0])
        },
        .init("buffer straddling end of memory", .split, expect: .bufferOutOfMemory) { f in
            try f.setSplitDescriptor(0, address: UInt64(memorySize) - 8, length: 16, flags: write)
            try f.makeSplitAvailable([0])
        },
        .init("buffer address+length overflow", .split, expect: .bufferAddressOverflow) { f in
            try f.setSplitDescriptor(0, address: UInt64.max - 7, length: 16)
            try f.makeSplitAvailable([0])
        },
        .init("buffer address+length overflow from inside memory", .split, expect: .bufferOutOfMemory) { f in
            try f.setSplitDescriptor(0, address: data, length: UInt32.max)
            try f.makeSplitAvailable([0])
        },
        .init("avail index too far ahead", .split, expect: .availIndexTooFarAhead) { f in
            try f.setSplitDescriptor(0, address: data, length: 16)
            try f.setSplitAvailIndex(queueSize + 1)
        },
        .init("avail index far behind (negative)", .split, expect: .availIndexTooFarAhead) { f in
            try f.setSplitAvailIndex(0xffff)
        },
        .init("indirect table loop", .split, expect: .descriptorLoop) { f in
            try f.setSplitDescriptor(0, address: table.rawValue, length: 32, flags: indirect)
            try f.setSplitIndirectEntry(table: table, 0, address: data, length: 8, flags: next, next: 1)
            try f.setSplitIndirectEntry(table: table, 1, address: data, length: 8, flags: next, next: 0)
            try f.makeSplitAvailable([0])
        },
        .init("indirect next out of range", .split, expect: .descriptorIndexOutOfRange) { f in
            try f.setSplitDescriptor(0, address: table.rawValue, length: 32, flags: indirect)
            try f.setSplitIndirectEntry(table: table, 0, address: data, length: 8, flags: next, next: 2)
            try f.makeSplitAvailable([0])
        },
        .init("indirect table outside memory", .split, expect: .bufferOutOfMemory) { f in
            try f.setSplitDescriptor(0, address: UInt64(memorySize) - 16, length: 32, flags: indirect)
            try f.makeSplitAvailable([0])
        },
        .init("indirect table address overflow", .split, expect: .bufferAddressOverflow) { f in
            try f.setSplitDescriptor(0, address: UInt64.max - 15, length: 32, flags: indirect)
            try f.makeSplitAvailable([0])
        },
        .init("indirect entry buffer outside memory", .split, expect: .bufferOutOfMemory) { f in
            try f.setSplitDescriptor(0, address: table.rawValue, length: 16, flags: indirect)
            try f.setSplitIndirectEntry(table: table, 0, address: 0xdead_0000_0000, length: 8)
            try f.makeSplitAvailable([0])
        },
    ]

    public static let packed: [MaliciousRing] = [
        .init("chain longer than queue", .packed, expect: .chainTooLong) { f in
            for slot in 0..<queueSize {
                try f.setPackedDescriptor(slot, address: data, length: 8, id: 0, flags: avail | next)
            }
        },
        .init("indirect table larger than queue", .packed, expect: .chainTooLong) { f in
            try f.setPackedDescriptor(0, address: table.rawValue, length: 16 * UInt32(queueSize + 1), id: 0, flags: avail | indirect)
        },
        .init("buffer id out of range", .packed, expect: .bufferIdOutOfRange) { f in
            try f.setPackedDescriptor(0, address: data, length: 8, id: queueSize, flags: avail)
        },
        .init("buffer id 0xffff", .packed, expect: .bufferIdOutOfRange) { f in
            try f.setPackedDescriptor(0, address: data, length: 8, id: 0xffff, flags: avail)
        },
        .init("nested indirect", .packed, expect: .nestedIndirect) { f in
            try f.setPackedDescriptor(0, address: table.rawValue, length: 32, id: 0, flags: avail | indirect)
            try f.setPackedIndirectEntry(table: table, 0, address: data, length: 8)
            try f.setPackedIndirectEntry(table: table, 1, address: table.rawValue, length: 16, flags: indirect)
        },
        .init("indirect with next", .packed, expect: .indirectWithNext) { f in
            try f.setPackedDescriptor(0, address: table.rawValue, length: 16, id: 0, flags: avail | indirect | next)
        },
        .init("indirect not negotiated", .packed, indirect: false, expect: .indirectNotNegotiated) { f in
            try f.setPackedDescriptor(0, address: table.rawValue, length: 16, id: 0, flags: avail | indirect)
        },
        .init("indirect length not multiple of 16", .packed, expect: .indirectTableLengthNotMultipleOf16) { f in
            try f.setPackedDescriptor(0, address: table.rawValue, length: 17, id: 0, flags: avail | indirect)
        },
        .init("zero-length indirect table", .packed, expect: .zeroLengthIndirectTable) { f in
            try f.setPackedDescriptor(0, address: table.rawValue, length: 0, id: 0, flags: avail | indirect)
        },
        .init("readable after writable", .packed, expect: .readableAfterWritable) { f in
            try f.setPackedDescriptor(0, address: data, length: 8, id: 0, flags: avail | write | next)
            try f.setPackedDescriptor(1, address: data, length: 8, id: 0, flags: avail)
        },
        .init("readable after writable in indirect table", .packed, expect: .readableAfterWritable) { f in
            try f.setPackedDescriptor(0, address: table.rawValue, length: 32, id: 0, flags: avail | indirect)
            try f.setPackedIndirectEntry(table: table, 0, address: data, length: 8, flags: write)
            try f.setPackedIndirectEntry(table: table, 1, address: data, length: 8)
        },
        .init("buffer outside memory", .packed, expect: .bufferOutOfMemory) { f in
            try f.setPackedDescriptor(0, address: 0x7fff_0000_0000, length: 8, id: 0, flags: avail)
        },
        .init("buffer address+length overflow", .packed, expect: .bufferAddressOverflow) { f in
            try f.setPackedDescriptor(0, address: UInt64.max, length: 2, id: 0, flags: avail | write)
        },
        .init("indirect table outside memory", .packed, expect: .bufferOutOfMemory) { f in
            try f.setPackedDescriptor(0, address: 0x20_0000, length: 32, id: 0, flags: avail | indirect)
        },
    ]
}
