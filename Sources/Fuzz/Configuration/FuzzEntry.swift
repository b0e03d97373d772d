import VDPADaemon

/// libFuzzer entry point for the configuration file (`/etc/vdpad/vdpad.conf`): the bytes are
/// the file's text, applied as the daemon does at start. Any error is fine (it stops the start
/// with the file and line); a crash is not. Property: applying a file twice is applying it once.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfiguration(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    var configuration = DaemonConfiguration()
    do {
        try configuration.apply(fileText: text, fileName: "vdpad.conf")
    } catch {
        precondition(error.line >= 1, "an error without its line: \(error)")
        return 0
    }
    var twice = configuration
    do { try twice.apply(fileText: text, fileName: "vdpad.conf") } catch { preconditionFailure("a file applied once fails the second time: \(error)") }
    precondition(twice == configuration, "applying a file twice differs from applying it once")
    return 0
}
