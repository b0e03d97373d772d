import VDPARPC
import VDPASystem

/// Who is calling: the peer credentials of the connection (SO_PEERCRED, recorded by the kernel
/// when the client connected) and what they may do.
public struct RPCCaller: Sendable, Hashable {
    public var credentials: PeerCredentials?
    public var access: RPCAccess

    public init(credentials: PeerCredentials?, access: RPCAccess) {
        self.credentials = credentials
        self.access = access
    }

    /// A caller inside the daemon's own process (tests, benchmarks, the fuzzer): every method.
    public static let inProcess = RPCCaller(credentials: nil, access: .admin)
}

/// Who may call what (`admin_group`, `read_group`): root and the daemon's own user may call
/// every method, members of the admin group too, members of the read group the methods that
/// change nothing; anyone else who reaches the socket gets `permission_denied` for every call.
/// Membership is the connecting process's primary group and every group the group database
/// lists its user in (getgrouplist(3)).
public struct RPCAuthorization: Sendable, Hashable {
    public struct Group: Sendable, Hashable {
        public var name: String
        public var id: UInt32
        public init(name: String, id: UInt32) {
            self.name = name
            self.id = id
        }
    }

    public var adminGroup: Group?
    public var readGroup: Group?
    public var daemonUID: UInt32

    public init(adminGroup: Group?, readGroup: Group?, daemonUID: UInt32) {
        self.adminGroup = adminGroup
        self.readGroup = readGroup
        self.daemonUID = daemonUID
    }

    /// What the peer may do.
    public func access(of credentials: PeerCredentials?, groups: Set<UInt32>) -> RPCAccess {
        guard let credentials else { return .none }
        if credentials.uid == 0 || credentials.uid == daemonUID { return .admin }
        if let adminGroup, groups.contains(adminGroup.id) { return .admin }
        if let readGroup, groups.contains(readGroup.id) { return .read }
        return .none
    }

    /// The caller of a new connection, its groups looked up.
    public func caller(_ credentials: PeerCredentials?) -> RPCCaller {
        // Root and the daemon's user need no group lookup (an NSS query per connection).
        if let credentials, credentials.uid == 0 || credentials.uid == daemonUID { return RPCCaller(credentials: credentials, access: .admin) }
        return RPCCaller(credentials: credentials, access: access(of: credentials, groups: credentials.map(PeerIdentity.groups(of:)) ?? []))
    }

    /// Why `caller` may not call `method`, for the error message.
    public func refusal(of method: VDPAMethod, for caller: RPCCaller) -> String {
        let who = caller.credentials.map { "uid \($0.uid) (pid \($0.pid))" } ?? "a caller without credentials"
        var admins = ["root"]
        if daemonUID != 0 { admins.append("uid \(daemonUID)") }
        if let adminGroup { admins.append("members of group \(adminGroup.name) (admin_group)") }
        let adminText = admins.joined(separator: ", ")
        switch caller.access {
        case .read:
            return "\(method.rawValue) needs admin access: \(who) may only read; admin access is for \(adminText)"
        default:
            let readers = readGroup.map { "; members of group \($0.name) (read_group) may read" } ?? ""
            return "\(who) may not call vdpad: \(method.rawValue) is for \(adminText)\(method.requiredAccess == .read ? readers : "")"
        }
    }
}
