import Foundation
import Testing
import VDPAPorts
import VDPASystem
import VDPAVhost
import VhostUser

/// What a port takes of a consumer's memory table: bounded before anything is mapped, and
/// sealed against shrinking where the memfd allows it.
@Suite struct PortMemoryTests {
    /// Ports without a device: these tests never open one.
    struct NoDevices: VhostVDPAOpening {
        func open(path: String) throws(VhostError) -> any VhostVDPAControl {
            throw VhostError(step: "open", device: path, errno: ENODEV, reason: "no device in this test")
        }
    }

    static func port(memoryLimit: UInt64 = 1 << 20) -> VhostUserPort {
        VhostUserPort(name: "p", socketPath: "/nonexistent/p.sock", memoryLimit: memoryLimit, opener: NoDevices())
    }

    /// `SET_MEM_TABLE` of `regions`, each handed the memfd of `memory` (a fresh descriptor each).
    static func setMemoryTable(_ port: VhostUserPort, _ regions: [VhostUserMemoryRegion], descriptors: Int? = nil, memory: SharedMemory) throws {
        let fds = (0..<(descriptors ?? regions.count)).map { _ in OwnedFileDescriptor(adopting: dup(memory.fileDescriptor)) }
        _ = try port.handle(.setMemoryTable(regions), fileDescriptors: fds)
    }

    @Test func rangesPastTheAddressSpaceAndOverTheLimitAreRefusedBeforeAnyMapping() throws {
        let memory = try SharedMemory(name: "port-memory-test", length: 1 << 16)
        let port = Self.port(memoryLimit: 1 << 16)
        let past = VhostUserMemoryRegion(guestPhysicalAddress: 0xFFFF_FFFF_FFFF_F000, size: 1 << 16, userAddress: 0x7000_0000, mmapOffset: 0)
        #expect(throws: PortError.self) { try Self.setMemoryTable(port, [past], memory: memory) }
        let userPast = VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 1 << 16, userAddress: UInt64.max - 100, mmapOffset: 0)
        #expect(throws: PortError.self) { try Self.setMemoryTable(port, [userPast], memory: memory) }
        // Two regions of 64 KiB: over a limit of 64 KiB together.
        let first = VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 1 << 16, userAddress: 0x7000_0000, mmapOffset: 0)
        let second = VhostUserMemoryRegion(guestPhysicalAddress: 1 << 20, size: 1 << 16, userAddress: 0x7100_0000, mmapOffset: 0)
        let over = #expect(throws: PortError.self) { try Self.setMemoryTable(port, [first, second], memory: memory) }
        #expect(over?.message.contains("over the port's limit of 65536 bytes") == true)
        // A region without its descriptor.
        #expect(throws: PortError.self) { try Self.setMemoryTable(port, [first, second], descriptors: 1, memory: memory) }
        #expect(port.status.memoryRegions == 0)
        // Within every bound: taken.
        try Self.setMemoryTable(port, [first], memory: memory)
        #expect(port.status.memoryRegions == 1)
    }

    @Test func aMemfdTakenIsSealedAgainstShrinking() throws {
        let memory = try SharedMemory(name: "port-memory-seal", length: 1 << 16)
        #expect(ftruncate(memory.fileDescriptor, 1 << 15) == 0, "unsealed, the VMM could shrink it")
        #expect(ftruncate(memory.fileDescriptor, 1 << 16) == 0)
        let port = Self.port()
        try Self.setMemoryTable(port, [VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 1 << 16, userAddress: 0x7000_0000, mmapOffset: 0)], memory: memory)
        #expect(ftruncate(memory.fileDescriptor, 1 << 15) == -1 && errno == EPERM, "the port's memory could shrink under it")
        // Growing is still the VMM's business.
        #expect(ftruncate(memory.fileDescriptor, 1 << 17) == 0)
    }
}
