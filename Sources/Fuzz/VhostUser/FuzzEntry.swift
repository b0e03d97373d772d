import VDPAPorts
import VDPASystem
import VDPATestSupport
import VhostUser

/// libFuzzer entry point: a hostile VMM on a port's vhost-user socket. The input is a
/// sequence of `[fd count (low 3 bits)] [12-byte header] [payload of header.size bytes]`;
/// each message is written to one end of a socketpair with that many file descriptors (a
/// small memfd) attached, exactly as a VMM would send it; the other end is served by the
/// real connection loop and a real port over a fake vhost-vdpa device. Nothing may crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 13, size <= 32768 else { return 0 }
    fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

let memory = try! SharedMemory(name: "fuzz-vhost-user", length: 1 << 16)

func fuzzOne(_ input: [UInt8]) {
    guard let (front, back) = try? UnixMessageSocket.pair() else { return }
    var offset = 0
    while offset + 13 <= input.count {
        let count = Int(input[offset] & 0x7)
        let header = Array(input[(offset + 1)..<(offset + 13)])
        let declared = Int(header[8]) | Int(header[9]) << 8  // low 16 bits of the size: stay in the input
        let end = min(input.count, offset + 13 + declared)
        let message = header + input[(offset + 13)..<end]
        offset = end
        guard (try? front.send(message, fileDescriptors: [Int32](repeating: memory.fileDescriptor, count: count))) != nil else { break }
    }
    front.close()
    let opener = FakeVhostOpener()
    let port = VhostUserPort(name: "fuzz", socketPath: "/nonexistent/fuzz.sock", opener: opener)
    _ = try? port.attach(device: "fuzz0", path: "/dev/vhost-vdpa-fuzz")
    VhostUserBackendConnection(socket: back, handler: port).run()
    _ = try? port.capture(resume: true)
    port.stop()
}
