import ArgumentParser
import CRingCeiling
import Dispatch
import Foundation
import Synchronization
import Virtqueue
import VirtqueueTestSupport

/// `vdpa-bench datapath`: packets per second through the Swift virtqueue engine, its device
/// role against its driver role over shared guest memory, as a software datapath runs it:
/// the device pops a burst, copies each frame (virtio-net header included) out of the driver's
/// buffer (TX) or into it (RX), and publishes the burst as used with one release store and one
/// EVENT_IDX notification decision. One thread (driver and device steps alternate) and two
/// threads (a driver thread and a device thread spinning on the shared rings, pinned to cpu 0
/// and cpu 1). Reference, same run: the C ring ceiling (Sources/CRingCeiling), the least work
/// the same hand-off can do, with the same copy, burst and threads.
struct DatapathBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datapath",
        abstract: "Virtqueue datapath: Swift device role against its driver role, and the C ring ceiling.")

    @Option(help: "Seconds per measurement.") var seconds = 2.0
    @Option(help: "Frame sizes in bytes, comma-separated (the 12-byte virtio-net header comes on top).")
    var sizes = "64,1500"
    @Option(help: "Ring layouts, comma-separated (split, packed).") var layouts = "split,packed"
    @Option(help: "Thread counts, comma-separated (1: alternate on one thread; 2: driver and device threads).")
    var threads = "1,2"
    @Option(help: "Directions, comma-separated (tx: device reads driver buffers; rx: device writes them).")
    var directions = "tx,rx"
    @Option(help: "Packets per burst: the device pops this many, then publishes once; the driver posts as many per publish.")
    var burst = 32
    @Option(name: .customLong("queue-size"), help: "Descriptors per queue.") var queueSize = 256
    @Option(help: "Measurements per row (Swift and C alternate); the median is shown, with the spread.")
    var repeats = 3
    @Flag(help: "Skip the C reference.") var noReference = false
    @Flag(help: "Do not pin threads to cpu 0 and cpu 1.") var noPin = false
    @Flag(help: "Only run the cross-core probe (to bracket another benchmark, such as Tests/bench-dpdk.sh).")
    var probeOnly = false

    func run() throws {
        let frameSizes = sizes.split(separator: ",").compactMap { Int($0) }
        let layoutList = try layouts.split(separator: ",").map { name -> QueueLayout in
            guard let layout = QueueLayout(rawValue: String(name)) else { throw ValidationError("unknown layout \(name)") }
            return layout
        }
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let directionList = try directions.split(separator: ",").map { name -> DatapathDirection in
            guard let direction = DatapathDirection(rawValue: String(name)) else { throw ValidationError("unknown direction \(name)") }
            return direction
        }
        guard (1...32).contains(burst) else { throw ValidationError("--burst must be 1...32 (the C reference's limit)") }
        guard threadCounts.allSatisfy({ $0 == 1 || $0 == 2 }) else { throw ValidationError("--threads takes 1 and 2") }
        guard frameSizes.allSatisfy({ (1...2036).contains($0) }) else { throw ValidationError("--sizes must be 1...2036") }
        guard queueSize >= burst, queueSize <= 32768, queueSize & (queueSize - 1) == 0 else {
            throw ValidationError("--queue-size must be a power of two, at least --burst")
        }

        if probeOnly {
            let probe = Self.probe()
            print(String(format: "cross-core probe (C, 2 threads, 1 packet per publish, 64 B): %.1f M/s (%@)",
                         probe, Self.mode(probe) as NSString))
            return
        }
        print("vdpa-bench datapath: \(seconds) s per point, \(repeats) repeats, burst \(burst), queue size \(queueSize), EVENT_IDX on, \(ProcessInfo.processInfo.activeProcessorCount) CPUs, threads \(noPin ? "not pinned" : "pinned to cpu 0 (driver) and cpu 1 (device)")")
        let probeBefore = Self.probe()
        print(String(format: "cross-core probe (C, 2 threads, 1 packet per publish, 64 B): %.1f M/s (%@)",
                     probeBefore, Self.mode(probeBefore) as NSString))

        var rows: [DatapathRow] = []
        for layout in layoutList {
            for direction in directionList {
                for frame in frameSizes {
                    for threadCount in threadCounts {
                        let setup = DatapathSetup(
                            layout: layout, direction: direction, frameBytes: frame, threads: threadCount,
                            burst: burst, queueSize: UInt16(queueSize), pin: !noPin)
                        var row = DatapathRow(setup: setup)
                        for _ in 0..<repeats {
                            var result = try DatapathRunner.run(setup, seconds: seconds)
                            if threadCount == 2 { result.probe = ring_ceiling_run(2, 1, 64, 0.3) }
                            row.swift.append(result)
                            if !noReference {
                                let mpps = ring_ceiling_run_direction(
                                    Int32(threadCount), Int32(burst), Int32(setup.packetBytes), seconds,
                                    Int32(direction == .tx ? CRingCeiling_copyFromDriver : CRingCeiling_copyToDriver))
                                guard mpps >= 0 else { throw ValidationError("the C reference refused \(setup)") }
                                row.ceiling.append(DatapathResult(mpps: mpps, cpuShare: nil))
                            }
                        }
                        print(row.line)
                        fflush(nil)
                        rows.append(row)
                    }
                }
            }
        }
        let probeAfter = Self.probe()
        print(String(format: "cross-core probe after: %.1f M/s (%@)", probeAfter, Self.mode(probeAfter) as NSString))

        print("")
        print("Mpps: median of \(repeats) (min–max); ns/pkt = 1000 / median; cpu: CPU time the Swift run got, per thread;")
        print("dev ns (one thread): time in the device role's steps per packet; probe (two threads): the cross-core probe")
        print("after each Swift run, M/s (fast mode ≥ 35, slow mode ≤ 25)")
        print(DatapathRow.header)
        for row in rows { print(row.line) }
    }

    /// The fast/slow-mode probe of Documentation/performance.md: the C hand-off on two
    /// cores, one packet per publication, 64-byte copy.
    static func probe() -> Double {
        ring_ceiling_run(2, 1, 64, 0.5)
    }

    static func mode(_ probe: Double) -> String {
        probe >= 35 ? "fast mode" : probe <= 25 ? "slow mode" : "between modes"
    }
}

enum DatapathDirection: String, Sendable {
    /// The driver posts readable buffers holding a frame; the device copies it out.
    case tx
    /// The driver posts writable buffers; the device copies a frame into each.
    case rx
}

struct DatapathSetup: Sendable, CustomStringConvertible {
    var layout: QueueLayout
    var direction: DatapathDirection
    /// Frame bytes without the virtio-net header.
    var frameBytes: Int
    var threads: Int
    var burst: Int
    var queueSize: UInt16
    var pin: Bool

    /// struct virtio_net_hdr_v1 with VIRTIO_NET_F_MRG_RXBUF or VERSION_1 (virtio 1.x §5.1.6).
    static let headerBytes = 12
    var packetBytes: Int { frameBytes + Self.headerBytes }
    /// Every buffer gets a slot this large; RX buffers offer all of it.
    static let slotBytes = 2048

    var description: String { "\(layout) \(direction) \(frameBytes) B, \(threads) thread\(threads == 1 ? "" : "s")" }
}

struct DatapathResult: Sendable {
    var mpps: Double
    /// CPU time the process got over the measured window, per thread (1.0: each thread had a core).
    var cpuShare: Double?
    /// One thread only: time spent in the device role's steps, per packet.
    var deviceNanoseconds: Double? = nil
    /// Two threads only: the cross-core probe taken right after the run.
    var probe: Double? = nil
}

struct DatapathRow {
    var setup: DatapathSetup
    var swift: [DatapathResult] = []
    var ceiling: [DatapathResult] = []

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static let header =
        "layout  dir  frame  thr | Swift Mpps (min–max)       ns/pkt  cpu  dev ns | C ceiling Mpps (min–max)   ns/pkt | Swift/C | probe"

    var line: String {
        let swiftMpps = swift.map(\.mpps)
        let median = Self.median(swiftMpps)
        let cpu = Self.median(swift.compactMap(\.cpuShare))
        let device = swift.compactMap(\.deviceNanoseconds)
        var text = String(format: "%-7@ %-4@ %5d  %3d | %6.2f (%6.2f–%6.2f)   %7.1f  %4.2f  %@ ",
                          setup.layout.rawValue as NSString, setup.direction.rawValue as NSString, setup.frameBytes,
                          setup.threads, median, swiftMpps.min() ?? 0, swiftMpps.max() ?? 0, 1000 / median, cpu,
                          (device.isEmpty ? "     " : String(format: "%5.1f", Self.median(device))) as NSString)
        if !ceiling.isEmpty {
            let ceilingMpps = ceiling.map(\.mpps)
            let ceilingMedian = Self.median(ceilingMpps)
            text += String(format: "| %6.2f (%6.2f–%6.2f)   %6.1f | %5.2f×", ceilingMedian, ceilingMpps.min() ?? 0,
                           ceilingMpps.max() ?? 0, 1000 / ceilingMedian, median / ceilingMedian)
        }
        let probes = swift.compactMap(\.probe)
        if !probes.isEmpty {
            text += " | " + probes.map { String(format: "%.0f", $0) }.joined(separator: ",")
        }
        return text
    }
}

/// The guest memory map of one run: the rings at 0x1000, then one 2 KiB buffer slot per descriptor.
struct DatapathMemoryMap {
    let memory: MappedGuestMemory
    let state: QueueState
    let dataBase: GuestAddress

    init(layout: QueueLayout, size: UInt16) throws {
        let placed = RingLayoutBuilder.makeState(
            layout: layout, size: size, base: GuestAddress(0x1000), eventIndex: true)
        dataBase = GuestAddress((placed.end.rawValue + 0xfff) & ~0xfff)
        memory = try MappedGuestMemory(size: Int(dataBase.rawValue) + Int(size) * DatapathSetup.slotBytes)
        state = placed.state
    }

    func slotAddress(_ slot: Int) -> GuestAddress {
        dataBase.wrappingAdding(UInt64(slot * DatapathSetup.slotBytes))
    }
}

/// The guest: the engine's driver role keeping the queue full. Each step returns the buffers
/// the device has used, then posts up to one burst and publishes it with one release store.
struct DriverSide<Driver: VirtqueueDriver> {
    var driver: Driver
    let map: DatapathMemoryMap
    let burst: Int
    let direction: DatapathDirection
    let packetBytes: UInt32
    var freeSlots: [Int]
    var slotById: [Int]
    var segment: [BufferSegment] = [BufferSegment(address: GuestAddress(0), length: 0)]
    let none: [BufferSegment] = []

    init(driver: Driver, map: DatapathMemoryMap, setup: DatapathSetup) {
        self.driver = driver
        self.map = map
        burst = setup.burst
        direction = setup.direction
        packetBytes = UInt32(setup.packetBytes)
        freeSlots = Array((0..<Int(setup.queueSize)).reversed())
        slotById = [Int](repeating: 0, count: Int(setup.queueSize))
    }

    @inline(__always)
    mutating func step() throws(VirtqueueError) {
        while let used = try driver.popUsed() {
            freeSlots.append(slotById[Int(used.id)])
        }
        var posted = 0
        while posted < burst, let slot = freeSlots.popLast() {
            let id: UInt16
            switch direction {
            case .tx:
                segment[0] = BufferSegment(address: map.slotAddress(slot), length: packetBytes)
                id = try driver.addBuffer(readable: segment, writable: none, indirect: false)
            case .rx:
                segment[0] = BufferSegment(address: map.slotAddress(slot), length: UInt32(DatapathSetup.slotBytes))
                id = try driver.addBuffer(readable: none, writable: segment, indirect: false)
            }
            slotById[Int(id)] = slot
            posted &+= 1
        }
        if posted > 0 { _ = try driver.publishAvailable() }
    }
}

/// The device: pops a burst of chains, copies each packet between the chain's guest buffers
/// and a backend buffer, pushes them as used and publishes once. Returns the packets handled.
struct DeviceSide<Device: VirtqueueDevice> {
    var queue: Device
    let memory: Device.Memory
    let burst: Int
    let direction: DatapathDirection
    let packetBytes: Int
    var chains: [DescriptorChain]
    /// One backend buffer (an mbuf, a TAP write buffer) per burst position.
    let backend: UnsafeMutableRawBufferPointer

    init(queue: Device, memory: Device.Memory, setup: DatapathSetup) {
        self.queue = queue
        self.memory = memory
        burst = setup.burst
        direction = setup.direction
        packetBytes = setup.packetBytes
        chains = (0..<setup.burst).map { _ in DescriptorChain(capacity: 4) }
        backend = UnsafeMutableRawBufferPointer.allocate(byteCount: setup.burst * DatapathSetup.slotBytes, alignment: 64)
        backend.initializeMemory(as: UInt8.self, repeating: 0x5a)
    }

    func deallocate() { backend.deallocate() }

    @inline(__always)
    mutating func step() throws -> Int {
        let count = try queue.popAvailable(into: &chains, maximum: burst)
        if count == 0 { return 0 }
        for index in 0..<count {
            // SAFETY: index < burst, so the slice lies inside `backend`.
            let buffer = UnsafeMutableRawBufferPointer(
                rebasing: backend[(index &* DatapathSetup.slotBytes)..<(index &* DatapathSetup.slotBytes &+ DatapathSetup.slotBytes)])
            switch direction {
            case .tx:
                _ = try chains[index].gatherReadable(from: memory, into: buffer)
                try queue.pushUsed(chains[index].usedElement(writtenLength: 0))
            case .rx:
                let frame = UnsafeRawBufferPointer(rebasing: buffer[0..<packetBytes])
                let written = try chains[index].scatterWritable(frame, to: memory)
                try queue.pushUsed(chains[index].usedElement(writtenLength: written))
            }
        }
        _ = try queue.publishUsed()
        return count
    }
}

/// A value handed to exactly one thread.
final class ThreadBox<Value>: @unchecked Sendable {
    // SAFETY (@unchecked): the creating thread stops touching `value` before it starts the
    // thread that uses it, and reads it again only after that thread has finished
    // (DispatchGroup wait orders the accesses).
    var value: Value
    var failure: (any Error)?
    init(_ value: Value) { self.value = value }
}

/// Flags and counters shared by the threads of one run, each on a cache line of its own.
final class RunControl: @unchecked Sendable {
    // SAFETY (@unchecked): only atomics are shared.
    private let padding0: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    let stop = Atomic<Bool>(false)
    private let padding1: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    let packets = Atomic<Int>(0)
    private let padding2: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
}

enum DatapathRunner {
    static func run(_ setup: DatapathSetup, seconds: Double) throws -> DatapathResult {
        let map = try DatapathMemoryMap(layout: setup.layout, size: setup.queueSize)
        // Frames in the driver's buffers (TX) are there from the start, as a guest's are
        // before it posts them; the driver does not touch payloads.
        for slot in 0..<Int(setup.queueSize) {
            try map.memory.writeBytes(repeatElement(0xa5, count: DatapathSetup.slotBytes), at: map.slotAddress(slot))
        }
        switch setup.layout {
        case .split:
            return try run(
                driver: SplitDriverQueue(state: map.state, memory: map.memory),
                device: SplitDeviceQueue(state: map.state, memory: map.memory), map: map, setup: setup, seconds: seconds)
        case .packed:
            return try run(
                driver: PackedDriverQueue(state: map.state, memory: map.memory),
                device: PackedDeviceQueue(state: map.state, memory: map.memory), map: map, setup: setup, seconds: seconds)
        }
    }

    static func run<Driver: VirtqueueDriver, Device: VirtqueueDevice>(
        driver: Driver, device: Device, map: DatapathMemoryMap, setup: DatapathSetup, seconds: Double
    ) throws -> DatapathResult where Device.Memory == MappedGuestMemory {
        var driverSide = DriverSide(driver: driver, map: map, setup: setup)
        var deviceSide = DeviceSide(queue: device, memory: map.memory, setup: setup)
        defer { deviceSide.deallocate() }
        if setup.threads == 1 {
            return try runOneThread(driver: &driverSide, device: &deviceSide, setup: setup, seconds: seconds)
        }
        return try runTwoThreads(driver: driverSide, device: deviceSide, setup: setup, seconds: seconds)
    }

    static func runOneThread<Driver: VirtqueueDriver, Device: VirtqueueDevice>(
        driver: inout DriverSide<Driver>, device: inout DeviceSide<Device>, setup: DatapathSetup, seconds: Double
    ) throws -> DatapathResult {
        if setup.pin { _ = ring_ceiling_pin_current_thread(0) }
        var packets = 0
        let start = now()
        var measuredStart = start
        var measuredPackets = 0
        var cpuStart = processCPUSeconds()
        var warm = true
        var end = start + 0.1
        var deviceTicks: UInt64 = 0
        var measuredDeviceTicks: UInt64 = 0
        while true {
            for _ in 0..<256 {
                try driver.step()
                let before = DispatchTime.now().uptimeNanoseconds
                packets &+= try device.step()
                deviceTicks &+= DispatchTime.now().uptimeNanoseconds &- before
            }
            let time = now()
            if time < end { continue }
            if warm {
                warm = false
                measuredStart = time
                measuredPackets = packets
                measuredDeviceTicks = deviceTicks
                cpuStart = processCPUSeconds()
                end = time + seconds
                continue
            }
            let elapsed = time - measuredStart
            return DatapathResult(
                mpps: Double(packets - measuredPackets) / elapsed / 1e6,
                cpuShare: (processCPUSeconds() - cpuStart) / elapsed,
                deviceNanoseconds: Double(deviceTicks - measuredDeviceTicks) / Double(packets - measuredPackets))
        }
    }

    static func runTwoThreads<Driver: VirtqueueDriver, Device: VirtqueueDevice>(
        driver: DriverSide<Driver>, device: DeviceSide<Device>, setup: DatapathSetup, seconds: Double
    ) throws -> DatapathResult {
        let control = RunControl()
        let driverBox = ThreadBox(driver)
        let deviceBox = ThreadBox(device)
        let finished = DispatchGroup()
        let pin = setup.pin
        finished.enter()
        let deviceThread = Thread {
            defer { finished.leave() }
            if pin { _ = ring_ceiling_pin_current_thread(1) }
            var packets = 0
            do {
                while !control.stop.load(ordering: .relaxed) {
                    let count = try deviceBox.value.step()
                    if count > 0 {
                        packets &+= count
                        control.packets.store(packets, ordering: .relaxed)
                    }
                }
            } catch {
                deviceBox.failure = error
                control.stop.store(true, ordering: .relaxed)
            }
        }
        finished.enter()
        let driverThread = Thread {
            defer { finished.leave() }
            if pin { _ = ring_ceiling_pin_current_thread(0) }
            do {
                while !control.stop.load(ordering: .relaxed) {
                    try driverBox.value.step()
                }
            } catch {
                driverBox.failure = error
                control.stop.store(true, ordering: .relaxed)
            }
        }
        for thread in [deviceThread, driverThread] {
            thread.stackSize = 1 << 20
            thread.start()
        }
        Thread.sleep(forTimeInterval: 0.1)
        let firstPackets = control.packets.load(ordering: .relaxed)
        let start = now()
        let cpuStart = processCPUSeconds()
        Thread.sleep(forTimeInterval: seconds)
        let lastPackets = control.packets.load(ordering: .relaxed)
        let elapsed = now() - start
        let cpu = processCPUSeconds() - cpuStart
        control.stop.store(true, ordering: .relaxed)
        finished.wait()
        if let failure = deviceBox.failure ?? driverBox.failure { throw failure }
        return DatapathResult(mpps: Double(lastPackets - firstPackets) / elapsed / 1e6, cpuShare: cpu / elapsed / 2)
    }

    static func now() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    /// User plus system CPU time of the whole process, in seconds.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
