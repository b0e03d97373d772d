import Foundation
import GRDB
import VDPASystem

/// A failure of the durable state store, with SQLite's reason.
public struct StateStoreError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var reason: String
    public var description: String { "state store: \(operation): \(reason)" }
}

/// vdpad's durable state: one SQLite database under the state directory.
///
/// Every change is one transaction, committed with `synchronous=FULL` in WAL mode
/// before the caller acknowledges anything, so a `kill -9` (or power loss) at any
/// point loses no acknowledged change. Schema changes go through numbered migrations.
public final class StateStore: Sendable {
    private let database: DatabaseQueue
    public let path: String

    /// Opens (creating if needed) `vdpad.sqlite` in `directory`.
    public init(directory: String) throws {
        do {
            try FileSystem.createDirectory(directory, mode: 0o700)
        } catch let error as SystemError {
            throw StateStoreError(operation: "create the state directory \(directory)", reason: error.reason)
        }
        path = directory + "/vdpad.sqlite"
        var configuration = Configuration()
        configuration.label = "vdpad.state"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
            try database.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            }
            try Self.migrator.migrate(database)
        } catch {
            throw StateStoreError(operation: "open \(path)", reason: "\(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1-devices") { db in
            try db.create(table: "device") { table in
                table.column("name", .text).primaryKey()
                table.column("managementBus", .text)
                table.column("managementName", .text).notNull()
                table.column("macAddress", .text)
                table.column("mtu", .integer)
                table.column("maxVirtqueuePairs", .integer)
                table.column("requestedFeatures", .text)
                table.column("provisionedFeatures", .text)
                table.column("deviceType", .integer)
                table.column("driver", .text)
                table.column("state", .text).notNull()
                table.column("createdAt", .datetime).notNull()
                table.column("updatedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("2-profiles") { db in
            try db.create(table: "profile") { table in
                table.column("name", .text).primaryKey()
                table.column("version", .integer).notNull()
                table.column("json", .text).notNull()
                table.column("createdAt", .datetime).notNull()
                table.column("updatedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("3-device-profile") { db in
            try db.alter(table: "device") { table in
                table.add(column: "profile", .text)
                table.add(column: "profileVersion", .integer)
                table.add(column: "quirks", .text)  // JSON array of names
            }
        }
        migrator.registerMigration("4-ports-snapshots") { db in
            try db.create(table: "port") { table in
                table.column("name", .text).primaryKey()
                table.column("device", .text)
                table.column("socketPath", .text).notNull()
                table.column("backendFeatures", .integer)
                table.column("managementDevice", .text)
                table.column("createdAt", .datetime).notNull()
                table.column("updatedAt", .datetime).notNull()
            }
            try db.create(table: "snapshot") { table in
                table.column("name", .text).primaryKey()
                table.column("device", .text).notNull()
                table.column("port", .text)
                table.column("origin", .text).notNull()
                table.column("json", .text).notNull()
                table.column("createdAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("5-port-consumer") { db in
            try db.alter(table: "port") { table in
                table.add(column: "consumerUID", .integer)
                table.add(column: "consumerGID", .integer)
            }
        }
        migrator.registerMigration("6-port-tap") { db in
            try db.alter(table: "port") { table in
                table.add(column: "tap", .text)
            }
        }
        migrator.registerMigration("7-port-profile") { db in
            try db.alter(table: "port") { table in
                table.add(column: "profile", .text)
            }
        }
        migrator.registerMigration("8-port-queues") { db in
            try db.alter(table: "port") { table in
                table.add(column: "queues", .integer)
            }
        }
        return migrator
    }

    fileprivate func write<T>(_ operation: String, _ body: (Database) throws -> T) throws -> T {
        do { return try database.write(body) } catch {
            throw StateStoreError(operation: operation, reason: "\(error)")
        }
    }

    fileprivate func read<T>(_ operation: String, _ body: (Database) throws -> T) throws -> T {
        do { return try database.read(body) } catch {
            throw StateStoreError(operation: operation, reason: "\(error)")
        }
    }

    /// Every device record, by name.
    public func devices() throws -> [DeviceRecord] {
        try read("read devices") { try DeviceRecord.order(Column("name")).fetchAll($0) }
    }

    public func device(named name: String) throws -> DeviceRecord? {
        try read("read device \(name)") { try DeviceRecord.fetchOne($0, key: name) }
    }

    /// Inserts or replaces a record (one transaction).
    public func save(_ record: DeviceRecord) throws {
        var record = record
        record.updatedAt = Date()
        try write("save device \(record.name)") { try record.save($0) }
    }

    /// Changes a record's state (one transaction); false when there is no such record.
    @discardableResult
    public func setState(_ state: DeviceRecord.State, forDevice name: String) throws -> Bool {
        try write("set state of \(name)") { db in
            guard var record = try DeviceRecord.fetchOne(db, key: name) else { return false }
            record.state = state
            record.updatedAt = Date()
            try record.update(db)
            return true
        }
    }

    /// Removes a record (one transaction).
    public func delete(deviceNamed name: String) throws {
        _ = try write("delete device \(name)") { try DeviceRecord.deleteOne($0, key: name) }
    }
}

extension StateStore {
    /// Every profile record, by name.
    public func profiles() throws -> [ProfileRecord] {
        try read("read profiles") { try ProfileRecord.order(Column("name")).fetchAll($0) }
    }

    public func profile(named name: String) throws -> ProfileRecord? {
        try read("read profile \(name)") { try ProfileRecord.fetchOne($0, key: name) }
    }

    /// Inserts or replaces a profile record (one transaction).
    public func save(_ record: ProfileRecord) throws {
        var record = record
        record.updatedAt = Date()
        try write("save profile \(record.name)") { try record.save($0) }
    }

    /// Removes a profile record (one transaction); false when there is none.
    @discardableResult
    public func delete(profileNamed name: String) throws -> Bool {
        try write("delete profile \(name)") { try ProfileRecord.deleteOne($0, key: name) }
    }
}

extension StateStore {
    /// Every port record, by name.
    public func ports() throws -> [PortRecord] {
        try read("read ports") { try PortRecord.order(Column("name")).fetchAll($0) }
    }

    /// Inserts or replaces a port record (one transaction).
    public func save(_ record: PortRecord) throws {
        var record = record
        record.updatedAt = Date()
        try write("save port \(record.name)") { try record.save($0) }
    }

    /// Removes a port record (one transaction); false when there is none.
    @discardableResult
    public func delete(portNamed name: String) throws -> Bool {
        try write("delete port \(name)") { try PortRecord.deleteOne($0, key: name) }
    }

    /// Every saved virtqueue state, by name.
    public func snapshots() throws -> [SnapshotRecord] {
        try read("read snapshots") { try SnapshotRecord.order(Column("name")).fetchAll($0) }
    }

    public func snapshot(named name: String) throws -> SnapshotRecord? {
        try read("read snapshot \(name)") { try SnapshotRecord.fetchOne($0, key: name) }
    }

    /// Inserts or replaces a saved state (one transaction, synchronous: on disk before it returns).
    public func save(_ record: SnapshotRecord) throws {
        try write("save snapshot \(record.name)") { try record.save($0) }
    }

    /// Removes a saved state (one transaction); false when there is none.
    @discardableResult
    public func delete(snapshotNamed name: String) throws -> Bool {
        try write("delete snapshot \(name)") { try SnapshotRecord.deleteOne($0, key: name) }
    }
}

extension PortRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "port"
}

extension SnapshotRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "snapshot"
}

extension ProfileRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "profile"
}

extension DeviceRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "device"
}
