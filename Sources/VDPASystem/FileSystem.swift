#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Small, typed file operations for sysfs and the state directory.
///
/// sysfs attributes are short text files; reads return their content without the
/// trailing newline, writes are one `write()` (the kernel acts on that call, so a
/// failure carries the kernel's errno, e.g. ENODEV from a driver `bind` file).
public enum FileSystem {
    /// Reads a whole (small) file as UTF-8 text, trailing newline removed.
    public static func readText(_ path: String) throws -> String {
        let fd = try system_open(path, O_RDONLY)
        defer { system_close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try chunk.withUnsafeMutableBytes { buffer throws in
                try system_read(fd, buffer)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > 1 << 20 { break }
        }
        var text = String(decoding: bytes, as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        return text
    }

    /// Writes `text` to `path` in a single write() call (sysfs semantics).
    public static func writeText(_ path: String, _ text: String) throws {
        let fd = try system_open(path, O_WRONLY)
        defer { system_close(fd) }
        let bytes = Array(text.utf8)
        let written = try bytes.withUnsafeBytes { buffer throws in
            try system_write(fd, buffer, path: path)
        }
        if written != bytes.count {
            throw SystemError(errno: EIO, operation: "write (short)", path: path)
        }
    }

    /// Creates or truncates a regular file with the given contents and mode.
    public static func createFile(_ path: String, contents: String, mode: UInt32 = 0o644) throws {
        let fd = try system_open(path, O_WRONLY | O_CREAT | O_TRUNC, mode_t(mode))
        defer { system_close(fd) }
        let bytes = Array(contents.utf8)
        _ = try bytes.withUnsafeBytes { buffer throws in try system_write(fd, buffer, path: path) }
    }

    /// The target of a symbolic link.
    public static func readLink(_ path: String) throws -> String {
        try system_readlink(path)
    }

    /// The names in a directory, sorted, without "." and "..".
    public static func listDirectory(_ path: String) throws -> [String] {
        try system_listDirectory(path)
    }

    /// Whether anything exists at `path` (following symlinks).
    public static func exists(_ path: String) -> Bool {
        system_access(path, F_OK)
    }

    /// Whether `path` is a directory (following symlinks).
    public static func isDirectory(_ path: String) -> Bool {
        system_stat_isDirectory(path) ?? false
    }

    /// Creates a directory and its missing parents.
    ///
    /// A directory it creates gets `mode` exactly, whatever the umask (vdpad's unit has
    /// `UMask=0077`, which would make a ports directory that the VMMs' group cannot reach);
    /// directories that exist are left as they are.
    public static func createDirectory(_ path: String, mode: UInt32 = 0o755) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if try system_mkdir(current, mode_t(mode)) { try system_chmod(current, mode_t(mode)) }
        }
    }

    /// Removes a file; a missing file is not an error.
    public static func removeFile(_ path: String) throws {
        try system_unlink(path)
    }

    /// Renames `from` to `to` atomically (rename(2)), replacing `to`.
    public static func rename(_ from: String, to: String) throws {
        try system_rename(from, to)
    }

}

/// Facts about the running system.
public enum SystemInfo {
    /// The kernel release, as `uname -r` prints it.
    public static var kernelRelease: String { system_kernelRelease() }
    /// This process's id.
    public static var processID: Int32 { system_processID() }
}

/// Socket options on descriptors owned elsewhere (e.g. libnl's netlink socket).
public enum SocketOptions {
    /// Sets an integer option to 1.
    public static func enable(fd: Int32, level: Int32, option: Int32) throws {
        try system_setsockopt(fd, level, option, 1)
    }
}

/// Who is at the other end of a Unix socket, and which groups count as theirs.
public enum PeerIdentity {
    /// The peer of a connected Unix socket (SO_PEERCRED: the process that connected).
    public static func credentials(ofSocket fd: Int32) throws -> PeerCredentials { try system_peerCredentials(fd) }

    /// The groups of `credentials`: the connecting process's primary group, and every group the
    /// group database lists its user in (getgrouplist(3)).
    public static func groups(of credentials: PeerCredentials) -> Set<UInt32> {
        Set(system_groups(ofUID: credentials.uid, primary: credentials.gid) ?? []).union([credentials.gid])
    }

    /// A group's ID, from its name or its number.
    public static func groupID(_ text: String) -> UInt32? {
        system_groupID(named: text) ?? UInt32(text)
    }

    /// A user's ID, from their name or their number.
    public static func userID(_ text: String) -> UInt32? {
        system_userID(named: text) ?? UInt32(text)
    }

    /// The effective uid of this process.
    public static var processUID: UInt32 { system_effectiveUID() }
}

/// Checks of the directories vdpad keeps its state and its sockets in.
public enum PrivateDirectory {
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Refuses `path` unless it is a directory itself (not a symlink), owned by `ownerUID` (or
    /// root), and not writable by group or others: nobody else may put, swap or remove what
    /// vdpad keeps there (its database, its lock, its sockets).
    public static func check(_ path: String, ownerUID: UInt32 = PeerIdentity.processUID, what: String) throws {
        guard let facts = try system_lstat(path) else { throw Refusal(description: "\(what) \(path) does not exist") }
        guard facts.kind == .directory else {
            throw Refusal(description: "\(what) \(path) is \(facts.kind == .symlink ? "a symbolic link" : "not a directory"); vdpad uses only a real directory there")
        }
        guard facts.ownerUID == ownerUID || facts.ownerUID == 0 else {
            throw Refusal(description: "\(what) \(path) belongs to uid \(facts.ownerUID), not to vdpad's uid \(ownerUID)")
        }
        guard facts.mode & 0o022 == 0 else {
            throw Refusal(description: "\(what) \(path) is writable by \(facts.mode & 0o002 != 0 ? "others" : "its group") (mode \(String(facts.mode, radix: 8))): chmod go-w it")
        }
    }

    /// What is at `path`, without following a symlink there.
    public static func facts(_ path: String) throws -> FileFacts? { try system_lstat(path) }

    /// Refuses a directory for sockets that someone else could put a file into and later
    /// swap (writable by group or others without the sticky bit, or owned by another user).
    public static func checkForSockets(_ path: String, ownerUID: UInt32 = PeerIdentity.processUID) throws {
        guard let facts = try system_lstat(path), facts.kind == .directory else {
            throw Refusal(description: "socket directory \(path) is not a directory")
        }
        guard facts.ownerUID == ownerUID || facts.ownerUID == 0 else {
            throw Refusal(description: "socket directory \(path) belongs to uid \(facts.ownerUID), not to vdpad's uid \(ownerUID)")
        }
        guard facts.mode & 0o022 == 0 || facts.mode & 0o1000 != 0 else {
            throw Refusal(description: "socket directory \(path) is writable by others without the sticky bit (mode \(String(facts.mode, radix: 8)))")
        }
    }

    /// Gives a socket file vdpad just bound its mode and group, after checking that the path
    /// is that socket (a socket owned by vdpad), not something swapped in for it: chmod and
    /// chown never reach another file through a symlink.
    public static func setSocketPermissions(_ path: String, mode: UInt32, group: String?) throws {
        guard let facts = try system_lstat(path), facts.kind == .socket, facts.ownerUID == PeerIdentity.processUID else {
            throw SystemError(errno: EPERM, operation: "socket file changed under vdpad", path: path)
        }
        try system_chmod(path, mode_t(mode))
        if let group, !group.isEmpty {
            guard let id = system_groupID(named: group) else { throw SystemError(errno: ENOENT, operation: "getgrnam \(group)", path: path) }
            try system_lchown(path, group: id)
        }
    }
}

/// One daemon per state directory: an exclusive flock(2) on `STATE_DIR/vdpad.lock`, held
/// while the daemon runs (the kernel drops it when the process dies, even by `kill -9`).
public final class StateDirectoryLock: Sendable {
    private let descriptor: OwnedFileDescriptor
    public let path: String

    public struct Held: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var holder: String?
        public var description: String { "another vdpad uses this state directory (\(path) is locked\(holder.map { " by pid \($0)" } ?? ""))" }
    }

    /// Takes the lock, or throws ``Held`` when another process holds it.
    public init(directory: String) throws {
        path = directory + "/vdpad.lock"
        let fd = try system_open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600)
        descriptor = OwnedFileDescriptor(adopting: fd)
        guard try system_tryLockExclusive(fd) else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = (try? buffer.withUnsafeMutableBytes { try system_read(fd, $0) }) ?? 0
            let holder = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self).split(whereSeparator: \.isWhitespace).first.map(String.init)
            throw Held(path: path, holder: holder)
        }
        try system_ftruncate(fd, 0)
        let pid = Array("\(system_processID())\n".utf8)
        _ = try pid.withUnsafeBytes { try system_write(fd, $0, path: path) }
    }

    /// Gives the lock up (closing its descriptor).
    public func release() { descriptor.close() }
}
