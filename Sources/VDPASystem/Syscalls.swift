// The one file in vdpad that calls the C library's system calls directly.
//
// Every wrapper retries EINTR and reports failure as `SystemError` carrying errno.
// Everything else in the project calls the typed helpers built on these
// (FileSystem.swift, UnixSocket.swift, UeventSocket.swift, ServiceNotify.swift).
import CVhostUAPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs `body` until it does not fail with EINTR; returns its result or throws errno.
@inline(__always)
func retryingOnInterrupt<T: FixedWidthInteger>(
    _ operation: StaticString,
    path: String? = nil,
    _ body: () -> T
) throws(SystemError) -> T {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = errno
        if code == EINTR { continue }
        throw SystemError(errno: code, operation: "\(operation)", path: path)
    }
}

func system_open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) throws -> Int32 {
    try retryingOnInterrupt("open", path: path) { open(path, flags | O_CLOEXEC, mode) }
}

func system_close(_ fd: Int32) {
    // close() must not be retried on EINTR on Linux: the descriptor is gone either way.
    _ = close(fd)
}

func system_read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    try retryingOnInterrupt("read") { read(fd, buffer.baseAddress, buffer.count) }
}

func system_write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String? = nil) throws -> Int {
    try retryingOnInterrupt("write", path: path) { write(fd, buffer.baseAddress, buffer.count) }
}

func system_readlink(_ path: String) throws -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = try retryingOnInterrupt("readlink", path: path) {
        buffer.withUnsafeMutableBufferPointer { readlink(path, $0.baseAddress!, $0.count - 1) }
    }
    return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func system_access(_ path: String, _ mode: Int32) -> Bool {
    access(path, mode) == 0
}

func system_stat_isDirectory(_ path: String) -> Bool? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return (info.st_mode & S_IFMT) == S_IFDIR
}

func system_listDirectory(_ path: String) throws -> [String] {
    guard let directory = opendir(path) else {
        throw SystemError(errno: errno, operation: "opendir", path: path)
    }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        // SAFETY: d_name is a NUL-terminated char array inside the dirent that readdir
        // returned; it stays valid until the next readdir/closedir on this stream.
        let name = withUnsafePointer(to: &entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// Creates a directory; returns false when it existed.
@discardableResult
func system_mkdir(_ path: String, _ mode: mode_t) throws -> Bool {
    if mkdir(path, mode) == 0 { return true }
    if errno == EEXIST { return false }
    throw SystemError(errno: errno, operation: "mkdir", path: path)
}

func system_unlink(_ path: String) throws {
    if unlink(path) != 0 && errno != ENOENT {
        throw SystemError(errno: errno, operation: "unlink", path: path)
    }
}

func system_rename(_ from: String, _ to: String) throws {
    _ = try retryingOnInterrupt("rename", path: to) { rename(from, to) }
}

func system_chmod(_ path: String, _ mode: mode_t) throws {
    _ = try retryingOnInterrupt("chmod", path: path) { chmod(path, mode) }
}

func system_groupID(named name: String) -> gid_t? {
    guard let entry = getgrnam(name) else { return nil }
    return entry.pointee.gr_gid
}

func system_userID(named name: String) -> uid_t? {
    guard let entry = getpwnam(name) else { return nil }
    return entry.pointee.pw_uid
}

func system_effectiveUID() -> uid_t { geteuid() }

func system_socket(_ domain: Int32, _ type: Int32, _ proto: Int32) throws -> Int32 {
    try retryingOnInterrupt("socket") { socket(domain, type | Int32(SOCK_CLOEXEC.rawValue), proto) }
}

func system_connectUnix(_ fd: Int32, path: String) throws {
    var address = try UnixAddress(path: path)
    _ = try retryingOnInterrupt("connect", path: path) {
        address.withSockaddr { connect(fd, $0, $1) }
    }
}

func system_bindNetlink(_ fd: Int32, groups: UInt32) throws {
    var address = NetlinkSocketAddress(family: sa_family_t(AF_NETLINK), pad: 0, portID: 0, groups: groups)
    _ = try retryingOnInterrupt("bind") {
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<NetlinkSocketAddress>.size))
            }
        }
    }
}

func system_setsockopt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws {
    var value = value
    _ = try retryingOnInterrupt("setsockopt") {
        setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }
}

func system_recv(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, flags: Int32 = 0) throws -> Int {
    try retryingOnInterrupt("recv") { recv(fd, buffer.baseAddress, buffer.count, flags) }
}

func system_send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws -> Int {
    try retryingOnInterrupt("send") { send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
}

func system_sendtoUnix(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
    var address = try UnixAddress(path: path)
    _ = try retryingOnInterrupt("sendto", path: path) {
        address.withSockaddr { sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, $1) }
    }
}

func system_bindUnix(_ fd: Int32, path: String) throws {
    var address = try UnixAddress(path: path)
    _ = try retryingOnInterrupt("bind", path: path) {
        address.withSockaddr { bind(fd, $0, $1) }
    }
}

func system_listen(_ fd: Int32, backlog: Int32) throws {
    _ = try retryingOnInterrupt("listen") { listen(fd, backlog) }
}

/// `accept(fd, NULL, NULL)`, then close-on-exec (Glibc's module does not export accept4).
func system_accept(_ fd: Int32) throws -> Int32 {
    let accepted = try retryingOnInterrupt("accept") { accept(fd, nil, nil) }
    _ = fcntl(accepted, F_SETFD, FD_CLOEXEC)
    return accepted
}

/// `shutdown(fd, SHUT_RDWR)`: wakes a thread blocked in accept() or recvmsg() on it.
func system_shutdown(_ fd: Int32) {
    _ = shutdown(fd, Int32(SHUT_RDWR))
}

/// `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`.
func system_socketpairUnix() throws -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    _ = try retryingOnInterrupt("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
    return (fds[0], fds[1])
}

// Control messages (cmsg(3)) by hand: the CMSG_* macros do not reach Swift. On Linux
// `struct cmsghdr` is { size_t cmsg_len; int cmsg_level; int cmsg_type; } and the data
// starts at the header size rounded up to size_t alignment.
private let controlHeaderSize = MemoryLayout<Int>.size + 2 * MemoryLayout<Int32>.size
private func controlAligned(_ length: Int) -> Int { (length + MemoryLayout<Int>.size - 1) & ~(MemoryLayout<Int>.size - 1) }
/// MSG_CMSG_CLOEXEC: received descriptors are close-on-exec.
private let messageControlCloseOnExec: Int32 = 0x4000_0000

/// `sendmsg` of `bytes` with `fds` as one SCM_RIGHTS control message; returns bytes sent.
func system_sendWithFileDescriptors(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, fileDescriptors: [Int32]) throws -> Int {
    let dataLength = fileDescriptors.count * MemoryLayout<Int32>.size
    var control = [UInt8](repeating: 0, count: fileDescriptors.isEmpty ? 0 : controlHeaderSize + controlAligned(dataLength))
    if !fileDescriptors.isEmpty {
        control.withUnsafeMutableBytes { raw in
            // SAFETY: `raw` holds a header and the descriptors; unaligned stores are used.
            raw.storeBytes(of: controlHeaderSize + dataLength, toByteOffset: 0, as: Int.self)
            raw.storeBytes(of: SOL_SOCKET, toByteOffset: MemoryLayout<Int>.size, as: Int32.self)
            raw.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: MemoryLayout<Int>.size + 4, as: Int32.self)
            for (index, descriptor) in fileDescriptors.enumerated() {
                raw.storeBytes(of: descriptor, toByteOffset: controlHeaderSize + index * 4, as: Int32.self)
            }
        }
    }
    var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
    return try control.withUnsafeMutableBytes { controlBuffer throws in
        try withUnsafeMutablePointer(to: &vector) { vectorPointer throws in
            var header = msghdr()
            header.msg_iov = vectorPointer
            header.msg_iovlen = 1
            header.msg_control = controlBuffer.isEmpty ? nil : controlBuffer.baseAddress
            header.msg_controllen = controlBuffer.count
            return try retryingOnInterrupt("sendmsg") { sendmsg(fd, &header, Int32(MSG_NOSIGNAL)) }
        }
    }
}

/// `recvmsg` into `buffer`, taking up to `maximumDescriptors` SCM_RIGHTS descriptors (owned
/// by the caller; any beyond are closed). Returns the byte count (0 at end of stream).
func system_receiveWithFileDescriptors(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, maximumDescriptors: Int) throws -> (count: Int, fileDescriptors: [Int32]) {
    var control = [UInt8](repeating: 0, count: controlHeaderSize + controlAligned(maximumDescriptors * 4) + 64)
    var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
    let (count, controlLength, truncated): (Int, Int, Bool) = try control.withUnsafeMutableBytes { controlBuffer throws in
        try withUnsafeMutablePointer(to: &vector) { vectorPointer throws in
            var header = msghdr()
            header.msg_iov = vectorPointer
            header.msg_iovlen = 1
            header.msg_control = controlBuffer.baseAddress
            header.msg_controllen = controlBuffer.count
            let count = try retryingOnInterrupt("recvmsg") { recvmsg(fd, &header, messageControlCloseOnExec) }
            return (count, Int(header.msg_controllen), header.msg_flags & Int32(MSG_CTRUNC) != 0)
        }
    }
    var descriptors: [Int32] = []
    control.withUnsafeBytes { raw in
        // SAFETY: walks the control messages the kernel wrote, each length checked against
        // what was received before its data is read.
        var offset = 0
        while offset + controlHeaderSize <= controlLength {
            let length = raw.loadUnaligned(fromByteOffset: offset, as: Int.self)
            let level = raw.loadUnaligned(fromByteOffset: offset + MemoryLayout<Int>.size, as: Int32.self)
            let type = raw.loadUnaligned(fromByteOffset: offset + MemoryLayout<Int>.size + 4, as: Int32.self)
            guard length >= controlHeaderSize, offset + length <= controlLength else { break }
            if level == SOL_SOCKET, type == Int32(SCM_RIGHTS) {
                for index in 0..<((length - controlHeaderSize) / 4) {
                    descriptors.append(raw.loadUnaligned(fromByteOffset: offset + controlHeaderSize + index * 4, as: Int32.self))
                }
            }
            offset += controlAligned(length)
        }
    }
    if descriptors.count > maximumDescriptors || truncated {
        for descriptor in descriptors.dropFirst(maximumDescriptors) { system_close(descriptor) }
        descriptors = Array(descriptors.prefix(maximumDescriptors))
    }
    return (count, descriptors)
}

/// Waits until `fd` is readable or `timeoutMilliseconds` pass; returns whether it is readable.
func system_pollReadable(_ fd: Int32, timeoutMilliseconds: Int32) throws -> Bool {
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let ready = try retryingOnInterrupt("poll") { poll(&descriptor, 1, timeoutMilliseconds) }
    return ready > 0
}

func system_kernelRelease() -> String {
    var names = utsname()
    guard uname(&names) == 0 else { return "unknown" }
    // SAFETY: utsname.release is a NUL-terminated char array filled by uname().
    return withUnsafePointer(to: &names.release) {
        $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) }
    }
}

func system_processID() -> Int32 { getpid() }

func system_errnoDescription(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

// MARK: Software datapath: eventfd, poll, TUN/TAP, vectored I/O

/// `eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK)`: a kick or call notifier.
func system_eventfd(initial: UInt32) throws -> Int32 {
    try retryingOnInterrupt("eventfd") { CVhost_eventfd(initial, CVhost_EFD_CLOEXEC | CVhost_EFD_NONBLOCK) }
}

/// Waits on `descriptors` (`poll(2)`); returns how many have events.
/// `timeoutMilliseconds` -1 waits forever.
func system_poll(_ descriptors: inout [pollfd], timeoutMilliseconds: Int32) throws -> Int {
    let count = nfds_t(descriptors.count)
    while true {
        let result = descriptors.withUnsafeMutableBufferPointer { poll($0.baseAddress, count, timeoutMilliseconds) }
        if result >= 0 { return Int(result) }
        let code = errno
        if code == EINTR { continue }
        throw SystemError(errno: code, operation: "poll")
    }
}

/// Runs `body` until it does not fail with EINTR; EAGAIN gives nil.
@inline(__always)
func retryingOnInterruptAllowingWouldBlock(_ operation: StaticString, _ body: () -> Int) throws -> Int? {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = errno
        if code == EINTR { continue }
        if code == EAGAIN { return nil }
        throw SystemError(errno: code, operation: "\(operation)")
    }
}

/// `ioctl(fd, request, argument)` with a pointer argument (or NULL): the struct or int the
/// ioctl reads and may write back (TUNSETIFF's ifreq, TUNSETVNETHDRSZ's int, the vhost
/// structs). `operation` names it in errors.
func system_ioctlPointer(_ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawPointer?, operation: StaticString, path: String) throws {
    _ = try retryingOnInterrupt(operation, path: path) { CVhost_ioctl_pointer(fd, request, argument) }
}

/// `ioctl(fd, request, value)` for ioctls taking an unsigned long by value (TUNSETOFFLOAD).
func system_ioctlValue(_ fd: Int32, _ request: UInt, _ value: UInt, path: String) throws {
    _ = try retryingOnInterrupt("ioctl", path: path) { CVhost_ioctl_value(fd, request, value) }
}

/// `readv(fd, [first, second])`: one packet read into two buffers (vnet header + frame).
/// Returns nil when the call would block (EAGAIN).
func system_readv2(_ fd: Int32, _ first: UnsafeMutableRawBufferPointer, _ second: UnsafeMutableRawBufferPointer) throws -> Int? {
    // Two iovecs on the stack: this runs once per packet, so no array is allocated.
    try withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2) { vectors in
        vectors[0] = iovec(iov_base: first.baseAddress, iov_len: first.count)
        vectors[1] = iovec(iov_base: second.baseAddress, iov_len: second.count)
        return try retryingOnInterruptAllowingWouldBlock("readv") { readv(fd, vectors.baseAddress, 2) }
    }
}

/// `writev(fd, [first, second])`: one packet written from two buffers. Returns
/// nil when the call would block (EAGAIN).
func system_writev2(_ fd: Int32, _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) throws -> Int? {
    // SAFETY: writev only reads through iov_base; the mutable casts satisfy the C prototype.
    try withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2) { vectors in
        vectors[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress), iov_len: first.count)
        vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress), iov_len: second.count)
        return try retryingOnInterruptAllowingWouldBlock("writev") { writev(fd, vectors.baseAddress, 2) }
    }
}

/// `read(2)` that reports EAGAIN as nil (non-blocking descriptors).
func system_readNonBlocking(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
    try retryingOnInterruptAllowingWouldBlock("read") { read(fd, buffer.baseAddress, buffer.count) }
}

/// `write(2)` that reports EAGAIN as nil (non-blocking descriptors).
func system_writeNonBlocking(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws -> Int? {
    try retryingOnInterruptAllowingWouldBlock("write") { write(fd, buffer.baseAddress, buffer.count) }
}

/// A `sockaddr_un` for a filesystem path or, with a leading "@", an abstract name.
struct UnixAddress {
    private var storage = sockaddr_un()
    private var length: socklen_t

    init(path: String) throws {
        storage.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        guard bytes.count < capacity else {
            throw SystemError(errno: ENAMETOOLONG, operation: "sockaddr_un", path: path)
        }
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        // Abstract names are not NUL-terminated: the length says where they end.
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2
        length = socklen_t(pathOffset + bytes.count + (abstract ? 0 : 1))
    }

    mutating func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        let length = self.length
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}

/// `struct sockaddr_nl` from <linux/netlink.h>, which Glibc's module does not export.
struct NetlinkSocketAddress {
    var family: sa_family_t
    var pad: UInt16
    var portID: UInt32
    var groups: UInt32
}

// MARK: vhost-vdpa character devices, shared memory

/// `memfd_create(name, MFD_CLOEXEC)`.
func system_memfdCreate(_ name: String) throws -> Int32 {
    try retryingOnInterrupt("memfd_create") { CVhost_memfd_create(name) }
}

func system_ftruncate(_ fd: Int32, _ length: Int) throws {
    _ = try retryingOnInterrupt("ftruncate") { ftruncate(fd, off_t(length)) }
}

/// `mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED, fd, offset)`.
func system_mmapShared(_ fd: Int32, length: Int, offset: UInt64 = 0) throws -> UnsafeMutableRawPointer {
    guard offset <= UInt64(Int64.max) else { throw SystemError(errno: EINVAL, operation: "mmap") }
    guard let address = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(offset)), address != MAP_FAILED else {
        throw SystemError(errno: errno, operation: "mmap")
    }
    return address
}

/// The size of the file behind `fd` (`fstat`).
func system_fileSize(_ fd: Int32) throws -> UInt64 {
    var status = stat()
    _ = try retryingOnInterrupt("fstat") { fstat(fd, &status) }
    return UInt64(max(0, status.st_size))
}

func system_munmap(_ address: UnsafeMutableRawPointer, length: Int) {
    _ = munmap(address, length)
}

// MARK: Memory allocator (glibc)
//
// <malloc.h> is not part of the Glibc module: the two functions are declared here by
// their C names. Signatures: int mallopt(int param, int value); int malloc_trim(size_t pad).

@_silgen_name("mallopt") private func glibc_mallopt(_ parameter: Int32, _ value: Int32) -> Int32
@_silgen_name("malloc_trim") private func glibc_malloc_trim(_ pad: Int) -> Int32
/// M_ARENA_MAX from <malloc.h>.
private let glibcArenaMaxParameter: Int32 = -8

/// mallopt(M_ARENA_MAX): caps glibc's per-thread heaps; each retains freed memory of its own.
func system_limitAllocatorArenas(_ count: Int32) {
    _ = glibc_mallopt(glibcArenaMaxParameter, count)
}

/// malloc_trim(0): gives free heap pages of every arena back to the kernel.
func system_trimAllocator() {
    _ = glibc_malloc_trim(0)
}

/// `struct ucred` (Glibc hides it behind _GNU_SOURCE): what SO_PEERCRED reports.
public struct PeerCredentials: Sendable, Hashable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }
}

/// The peer of a connected Unix socket, as the kernel recorded it at `connect(2)`
/// (`getsockopt(SO_PEERCRED)`, unix(7)).
func system_peerCredentials(_ fd: Int32) throws -> PeerCredentials {
    var credentials = PeerCredentials(pid: 0, uid: UInt32.max, gid: UInt32.max)
    var length = socklen_t(MemoryLayout<PeerCredentials>.size)
    // SAFETY: PeerCredentials has the layout of struct ucred (three 32-bit fields); the kernel
    // writes at most `length` bytes into it.
    _ = try retryingOnInterrupt("getsockopt SO_PEERCRED") { getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) }
    return credentials
}

/// The groups the group database gives `uid` (getgrouplist(3)), with `primary`: nil when
/// the uid has no passwd entry.
func system_groups(ofUID uid: UInt32, primary: UInt32) -> [UInt32]? {
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
    var count: Int32 = 64
    while true {
        var groups = [gid_t](repeating: 0, count: Int(count))
        let wanted = count
        if getgrouplist(name, primary, &groups, &count) >= 0 { return Array(groups.prefix(Int(count))) }
        // Too small: `count` now holds the size needed.
        guard count > wanted, count <= 65536 else { return [primary] }
    }
}

// fcntl(2) file seals (linux/fcntl.h; Glibc exports them only under _GNU_SOURCE).
private let fcntlAddSeals: Int32 = 1024 + 9      // F_ADD_SEALS
private let fcntlGetSeals: Int32 = 1024 + 10     // F_GET_SEALS
private let sealShrink: Int32 = 0x0002           // F_SEAL_SHRINK
private let sealSeal: Int32 = 0x0001             // F_SEAL_SEAL

/// `F_ADD_SEALS F_SEAL_SEAL`: no seal can be added to `fd` any more (a file like a VMM's that
/// cannot be sealed against shrinking).
func system_forbidSeals(_ fd: Int32) throws {
    _ = try retryingOnInterrupt("fcntl F_ADD_SEALS") { fcntl(fd, fcntlAddSeals, sealSeal) }
}

/// Seals `fd` against shrinking (`F_ADD_SEALS F_SEAL_SHRINK`, memfd_create(2)); true when it
/// is sealed so afterwards, because the seal was added or was there already.
func system_sealAgainstShrinking(_ fd: Int32) -> Bool {
    if fcntl(fd, fcntlAddSeals, sealShrink) == 0 { return true }
    let seals = fcntl(fd, fcntlGetSeals)
    return seals >= 0 && seals & sealShrink != 0
}

/// What lstat(2) says of a path (the path itself, never a symlink's target).
public struct FileFacts: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case directory, socket, symlink, regular, other }
    public var kind: Kind
    public var ownerUID: UInt32
    public var mode: UInt32
}

/// lstat(2); nil when there is nothing at `path`.
func system_lstat(_ path: String) throws -> FileFacts? {
    var facts = stat()
    if lstat(path, &facts) != 0 {
        if errno == ENOENT { return nil }
        throw SystemError(errno: errno, operation: "lstat", path: path)
    }
    let kind: FileFacts.Kind = switch facts.st_mode & S_IFMT {
    case S_IFDIR: .directory
    case S_IFSOCK: .socket
    case S_IFLNK: .symlink
    case S_IFREG: .regular
    default: .other
    }
    return FileFacts(kind: kind, ownerUID: facts.st_uid, mode: facts.st_mode & 0o7777)
}

/// chown(2) of the path itself, never a symlink's target (lchown).
func system_lchown(_ path: String, group: gid_t) throws {
    _ = try retryingOnInterrupt("lchown", path: path) { lchown(path, UInt32.max, group) }
}

/// flock(LOCK_EX | LOCK_NB) on `fd`; false when another open file holds it.
func system_tryLockExclusive(_ fd: Int32) throws -> Bool {
    if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
    if errno == EWOULDBLOCK { return false }
    throw SystemError(errno: errno, operation: "flock")
}

// MARK: child processes

/// posix_spawn(3) of `path` with `arguments` (argv[0] included), its stdout and stderr on
/// `outputFD`, stdin on /dev/null, every signal unblocked and at its default action (threads
/// of a Swift process block most signals; a child inheriting that mask misses its timers).
/// Returns the child's pid.
func system_spawn(_ path: String, _ arguments: [String], outputFD: Int32) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, outputFD, 1)
    posix_spawn_file_actions_adddup2(&actions, outputFD, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    // SAFETY: argv and envp are NUL-terminated arrays of C strings that live across the call.
    let argv = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    let status = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
    guard status == 0 else { throw SystemError(errno: status, operation: "posix_spawn \(path)") }
    return pid
}

/// waitpid(2) for `pid`: its exit status (128 + the signal when a signal ended it).
func system_waitExit(_ pid: pid_t) throws -> Int32 {
    var status: Int32 = 0
    _ = try retryingOnInterrupt("waitpid") { waitpid(pid, &status, 0) }
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

/// kill(2) with SIGINT.
func system_interrupt(_ pid: pid_t) { _ = kill(pid, SIGINT) }

/// pipe(2), both ends close-on-exec (the child gets the write end through dup2): (read end, write end).
func system_pipe() throws -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    _ = try retryingOnInterrupt("pipe") { pipe(&fds) }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return (fds[0], fds[1])
}
