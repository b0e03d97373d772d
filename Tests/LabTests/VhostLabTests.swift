import Foundation
import Testing
import VDPANetlink
import VDPASystem
import VDPAVhost
import VDPAVhostTestSupport
import VirtioModel

extension LabTests {
    /// The vhost-vdpa character device of a vdpasim_net device, ioctl by ioctl.
    @Suite(.serialized) struct VhostVDPA {
        let kernel = Lab.kernel()

        init() async throws { try await Lab.removeAllDevices() }

        /// Creates a vdpasim_net device on vhost_vdpa and opens its /dev/vhost-vdpa-N.
        func openSimulatorDevice(_ name: String, mac: MACAddress? = nil) async throws -> VhostVDPADevice {
            try await kernel.createDevice(DeviceCreateRequest(name: name, managementDevice: .init(bus: nil, name: "vdpasim_net"), macAddress: mac))
            let bound = try await Lab.eventually {
                let binding = try await kernel.binding(ofDevice: name)
                return binding.vhostDevicePath.map(FileSystem.exists) ?? false
            }
            #expect(bound)
            let path = try #require(try await kernel.binding(ofDevice: name).vhostDevicePath)
            return try VhostVDPADevice(path: path)
        }

        @Test func identityFeaturesQueuesAndConfig() async throws {
            let mac = try #require(MACAddress("02:00:00:00:5a:01"))
            let device = try await openSimulatorDevice("vh0", mac: mac)
            try device.setOwner()
            #expect(try device.deviceID() == 1)
            #expect(try device.features() == KernelInterface.simulatorNetFeatures)
            let backend = try device.backendFeatures()
            #expect(backend.contains(.iotlbMessageV2))
            // vdpa_sim implements suspend and resume (and the kernel offers them only then).
            #expect(backend.isSuperset(of: [.suspend, .resume]), "backend features: \(backend.names)")
            #expect(try device.queueCount() == 3)
            #expect(try device.maximumQueueSize() == 256)
            let range = try device.iovaRange()
            #expect(range.first < range.last)
            // virtio-net config: the MAC first (§5.1.4), as provisioned through netlink.
            #expect(try device.configSize() >= 6)
            #expect(try device.config(offset: 0, length: 6) == mac.bytes)
            #expect(try device.status() == [])
            device.close()  // the kernel waits for every opener to close before it removes a device
            try await kernel.deleteDevice(named: "vh0")
        }

        @Test func vringBaseSetBeforeDriverOKReadsBack() async throws {
            let device = try await openSimulatorDevice("vh1")
            try device.setOwner()
            try device.setFeatures(try device.features())
            for (queue, base) in [(QueueIndex(0), UInt32(17)), (QueueIndex(1), 65535), (QueueIndex(2), 0)] {
                try device.setQueueSize(queue, 256)
                try device.setQueueBase(queue, base)
                #expect(try device.queueBase(queue) == base, "\(queue)")
            }
            device.close()  // the kernel waits for every opener to close before it removes a device
            try await kernel.deleteDevice(named: "vh1")
        }

        @Test func errorsNameTheIoctlAndKeepErrno() async throws {
            let device = try await openSimulatorDevice("vh2")
            try device.setOwner()
            let error = try #require(throws: VhostError.self) { try device.queueBase(QueueIndex(99)) }
            #expect(error.step == "VHOST_GET_VRING_BASE")
            #expect(error.errno == ENOBUFS)
            #expect(error.description.contains(device.path))
            device.close()  // the kernel waits for every opener to close before it removes a device
            try await kernel.deleteDevice(named: "vh2")
        }

        @Test func iotlbUpdateOverlapAndInvalidate() async throws {
            let device = try await openSimulatorDevice("vh3")
            try device.setOwner()
            try device.setBackendFeatures(try device.backendFeatures().intersection([.iotlbMessageV2, .iotlbBatch]))
            let memory = try SharedMemory(name: "vdpad-lab-iotlb", length: 1 << 20)
            try device.send([.batchBegin(), .update(iova: IOVA(0x10_0000), size: 1 << 20, userAddress: memory.userAddress, permission: .readWrite), .batchEnd()])
            // The same range again overlaps: refused. (vhost_vdpa_process_iotlb_update says
            // EEXIST, but vhost_chr_write_iter turns every refused message into EFAULT.)
            let overlap = try #require(throws: VhostError.self) {
                try device.send([.update(iova: IOVA(0x10_0000), size: 4096, userAddress: memory.userAddress, permission: .readOnly)])
            }
            #expect(overlap.errno == EFAULT, "\(overlap)")
            #expect(overlap.step == "IOTLB update")
            try device.send([.invalidate(iova: IOVA(0x10_0000), size: 1 << 20)])
            // Free again: mapping it succeeds.
            try device.send([.update(iova: IOVA(0x10_0000), size: 4096, userAddress: memory.userAddress, permission: .readOnly)])
            device.close()  // the kernel waits for every opener to close before it removes a device
            try await kernel.deleteDevice(named: "vh3")
        }

        @Test func suspendAndResumeAfterDriverOK() async throws {
            let device = try await openSimulatorDevice("vh4")
            try device.setOwner()
            try device.setFeatures(try device.features())
            try device.setStatus([.acknowledge, .driver, .featuresOK])
            #expect(try device.status().contains(.featuresOK))
            try device.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
            try device.suspend()
            // Suspended: the vring base may be read (and set) again.
            _ = try device.queueBase(QueueIndex(0))
            try device.setQueueBase(QueueIndex(0), 5)
            #expect(try device.queueBase(QueueIndex(0)) == 5)
            try device.resume()
            try device.setStatus([])
            device.close()  // the kernel waits for every opener to close before it removes a device
            try await kernel.deleteDevice(named: "vh4")
        }
    }
}

extension LabTests.VhostVDPA {
    /// The mini VMM drives vdpasim_net, which loops every transmitted frame back to
    /// receiveq: numbered frames must come back intact, in order, each once.
    @Test func miniVMMFramesLoopThroughTheSimulator() async throws {
        let mac = try #require(MACAddress("02:00:00:00:5a:09"))
        let device = try await openSimulatorDevice("vh9", mac: mac)
        let path = device.path
        device.close()
        let vmm = try MiniVMM(path: path)
        #expect(vmm.features.contains(.version1))
        try vmm.postReceiveBuffers(count: 32)
        // Broadcast destination: vdpasim_net's receive filter passes it.
        let frames = (0..<16).map { number -> [UInt8] in
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + mac.bytes + [0x88, 0xb5] + [UInt8(number)] + [UInt8](repeating: UInt8(number), count: 59)
        }
        try vmm.transmit(frames)
        let received = try vmm.receive(count: frames.count)
        #expect(received.map(\.frame) == frames)
        #expect(try vmm.completedTransmissions() == frames.count)
        vmm.close()
        try await kernel.deleteDevice(named: "vh9")
    }
}

extension LabTests.VhostVDPA {
    /// The kernel would block DEV_DEL (and unbind) until /dev/vhost-vdpa-N is closed:
    /// while a process holds it, the delete is refused at once with EBUSY.
    @Test func aHeldDeviceIsRefusedNotWaitedFor() async throws {
        let device = try await openSimulatorDevice("vh8")
        try device.setOwner()
        let started = Date()
        await #expect(throws: VDPAError.deviceInUse(device: "vh8", path: device.path, operation: "delete")) {
            try await kernel.deleteDevice(named: "vh8")
        }
        await #expect(throws: VDPAError.deviceInUse(device: "vh8", path: device.path, operation: "unbind")) {
            try await kernel.bind(device: "vh8", to: .virtioVDPA)
        }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(try await kernel.binding(ofDevice: "vh8").driver == .vhostVDPA)
        device.close()
        try await kernel.deleteDevice(named: "vh8")
    }
}
