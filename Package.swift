// swift-tools-version:6.0
//
// vdpad: the vDPA management daemon. Layers, lowest first (see Documentation/architecture.md):
//
//   C leaves        CLibNL (libnl-3/libnl-genl-3, system library), CVhostUAPI (ioctl numbers),
//                   CMemoryFaultGuard (SIGBUS on guest memory a VMM truncated),
//                   CRingCeiling (the C reference of vdpa-bench datapath)
//   pure Swift      VirtioModel, Virtqueue, VirtioNet, VhostUser, VDPARPC, VDPAPolicy (no syscalls, no C)
//   kernel edges    VDPASystem (the one syscall wrapper file), VDPANetlink (netlink, sysfs, uevents),
//                   VDPAVhost (/dev/vhost-vdpa-N ioctls, IOTLB), VDPADatapath (software virtio-net
//                   workers, TAP backend, eventfds)
//   ports           VDPAPorts (vhost-user sockets answered by vdpad; backends: a held vhost-vdpa device, or
//                   vdpad's software datapath on a TAP)
//   state           VDPAStore (SQLite through GRDB)
//   daemon          VDPADaemon (controller, JSON-RPC server, reconciler, services)
//   client          VDPAClient (JSON-RPC over the Unix socket), VDPACtl (vdpactl: links only these)
//   test support    VDPATestSupport (fake kernel, in-process daemon), VirtqueueTestSupport,
//                   VirtioNetTestSupport, VDPAVhostTestSupport (the lab's mini VMM)
//   executables     vdpad, vdpactl, vdpa-bench, fuzz-* (libFuzzer entry points)
import PackageDescription

let swiftSettings: [SwiftSetting] = []
// The software datapath's modules (not library products) also let their clients specialise
// their generic code on the concrete guest memory and backend types in release builds: the
// port's hot loop is then one specialised piece of code, not calls through witness tables.
let datapathSettings: [SwiftSetting] = swiftSettings + [
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

let package = Package(
    name: "vdpad",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vdpad", targets: ["vdpad"]),
        .executable(name: "vdpactl", targets: ["vdpactl"]),
        .library(name: "VDPAClient", targets: ["VDPAClient"]),
        .library(name: "VirtioModel", targets: ["VirtioModel"]),
        .library(name: "Virtqueue", targets: ["Virtqueue"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // MARK: C leaf targets
        .systemLibrary(
            name: "CLibNL",
            pkgConfig: "libnl-genl-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-genl-3-dev"])]
        ),
        .target(name: "CVhostUAPI", cSettings: [.define("_GNU_SOURCE")]),
        // The SIGBUS guard of guest memory vdpad's software datapath reads (a signal handler: C).
        .target(name: "CMemoryFaultGuard"),
        // The C ring ceiling vdpa-bench datapath measures the Swift engine against (bench only).
        .target(name: "CRingCeiling", cSettings: [.define("_GNU_SOURCE")]),

        // MARK: Pure Swift: model, rings, wire types
        .target(name: "VirtioModel", swiftSettings: swiftSettings),
        .target(name: "Virtqueue", swiftSettings: swiftSettings),
        .target(name: "VirtqueueTestSupport", dependencies: ["Virtqueue"], swiftSettings: swiftSettings),
        .target(name: "VDPARPC", dependencies: ["VirtioModel", "VDPAPolicy"], swiftSettings: swiftSettings),
        .target(name: "VirtioNet", dependencies: ["Virtqueue", "VirtioModel"], swiftSettings: datapathSettings),
        .target(
            name: "VirtioNetTestSupport",
            dependencies: ["VirtioNet", "Virtqueue", "VirtqueueTestSupport", "VirtioModel", "VDPASystem"],
            swiftSettings: swiftSettings
        ),
        // Feature rules, profiles, quirks, capabilities, compatibility check, baseline.
        .target(name: "VDPAPolicy", dependencies: ["VirtioModel", "Virtqueue"], swiftSettings: swiftSettings),

        // MARK: Kernel boundaries
        .target(name: "VDPASystem", dependencies: ["CVhostUAPI", "CMemoryFaultGuard"], swiftSettings: swiftSettings),
        .target(
            name: "VDPADatapath",
            dependencies: ["VDPASystem", "VirtioNet", "Virtqueue", "VirtioModel"],
            swiftSettings: datapathSettings
        ),
        .target(
            name: "VDPANetlink",
            dependencies: [
                "CLibNL", "VDPASystem", "VirtioModel",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(name: "VDPAVhost", dependencies: ["CVhostUAPI", "VDPASystem", "VirtioModel"], swiftSettings: swiftSettings),
        // vhost-user messages (pure Swift): what a VMM says to a port.
        .target(name: "VhostUser", swiftSettings: swiftSettings),
        // Ports: vhost-user sockets answered by vdpad, backed by a vhost-vdpa device it holds.
        .target(
            name: "VDPAPorts",
            dependencies: ["VhostUser", "VDPAVhost", "VDPASystem", "VirtioModel", "Virtqueue", "VirtioNet", "VDPADatapath"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VDPAVhostTestSupport",
            dependencies: ["VDPAVhost", "VhostUser", "VDPASystem", "VirtioModel", "VirtioNet", "VirtioNetTestSupport", "Virtqueue", "VirtqueueTestSupport"],
            swiftSettings: swiftSettings
        ),

        // MARK: State, daemon, client
        .target(
            name: "VDPAStore",
            dependencies: ["VirtioModel", "VDPASystem", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VDPADaemon",
            dependencies: [
                "VDPANetlink", "VDPAStore", "VDPARPC", "VDPAPolicy", "VDPASystem", "VDPAPorts", "VDPAVhost", "VirtioModel", "VirtioNet", "VDPADatapath",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "VDPAClient", dependencies: ["VDPARPC", "VDPASystem"], swiftSettings: swiftSettings),
        .target(
            name: "VDPATestSupport",
            dependencies: [
                "VDPANetlink", "VDPADaemon", "VDPAClient", "VDPAVhost", "VirtioModel", "VDPASystem",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Executables (thin)
        .executableTarget(
            name: "vdpad",
            dependencies: [
                "VDPADaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VDPACtl",
            dependencies: [
                "VDPAClient", "VDPARPC", "VDPAPolicy", "VirtioModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "vdpactl", dependencies: ["VDPACtl"], swiftSettings: swiftSettings),

        .executableTarget(
            name: "vdpa-bench",
            dependencies: [
                "VDPADaemon", "VDPATestSupport", "VDPAClient", "VDPARPC", "VDPASystem", "VDPAPolicy", "VirtioModel",
                "Virtqueue", "VirtqueueTestSupport", "CRingCeiling", "VDPAVhostTestSupport", "VDPAPorts", "VDPADatapath", "VirtioNet", "VDPAVhost",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Fuzz targets (libFuzzer entry points; Tests/Fuzz/run-fuzzers.sh builds them with -sanitize=fuzzer)
        .executableTarget(name: "fuzz-netlink", dependencies: ["VDPANetlink"], path: "Sources/Fuzz/Netlink", swiftSettings: swiftSettings),
        .executableTarget(
            name: "fuzz-jsonrpc",
            dependencies: ["VDPADaemon", "VDPARPC", "VDPAStore", "VDPATestSupport", .product(name: "Logging", package: "swift-log")],
            path: "Sources/Fuzz/JSONRPC",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fuzz-vhost-user",
            dependencies: ["VDPAPorts", "VDPASystem", "VDPATestSupport", "VhostUser"],
            path: "Sources/Fuzz/VhostUser",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fuzz-virtqueue",
            dependencies: ["Virtqueue", "VirtqueueTestSupport"],
            path: "Sources/Fuzz/Virtqueue",
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "fuzz-virtio-net",
            dependencies: ["VirtioNet", "VirtioNetTestSupport", "Virtqueue", "VirtqueueTestSupport", "VirtioModel"],
            path: "Sources/Fuzz/VirtioNet",
            swiftSettings: swiftSettings
        ),

        .executableTarget(name: "fuzz-quirks", dependencies: ["VDPAPolicy", "VirtioModel"], path: "Sources/Fuzz/Quirks", swiftSettings: swiftSettings),
        .executableTarget(name: "fuzz-profiles", dependencies: ["VDPAPolicy", "VirtioModel"], path: "Sources/Fuzz/Profiles", swiftSettings: swiftSettings),
        .executableTarget(
            name: "fuzz-vq-state",
            dependencies: ["VDPAPolicy", "VirtioModel", "Virtqueue"],
            path: "Sources/Fuzz/VirtqueueState",
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "fuzz-caps", dependencies: ["VDPAPolicy", "VirtioModel"], path: "Sources/Fuzz/Capabilities", swiftSettings: swiftSettings),
        .executableTarget(name: "fuzz-config", dependencies: ["VDPADaemon"], path: "Sources/Fuzz/Configuration", swiftSettings: swiftSettings),
        .executableTarget(
            name: "fuzz-line-framing",
            dependencies: ["VDPADaemon", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio")],
            path: "Sources/Fuzz/LineFraming",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .testTarget(name: "VirtioModelTests", dependencies: ["VirtioModel"], swiftSettings: swiftSettings),
        .testTarget(
            name: "VirtqueueTests",
            dependencies: ["Virtqueue", "VirtqueueTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VirtioNetTests",
            dependencies: ["VirtioNet", "VirtioNetTestSupport", "Virtqueue", "VirtqueueTestSupport", "VirtioModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VDPADatapathTests",
            dependencies: ["VDPADatapath", "VDPASystem", "VirtioNet", "VirtioNetTestSupport", "Virtqueue", "VirtqueueTestSupport", "VirtioModel", "CVhostUAPI"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VDPANetlinkTests",
            dependencies: ["VDPANetlink", "VDPATestSupport", "CVhostUAPI"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "VDPARPCTests", dependencies: ["VDPARPC", "VDPAPolicy"], swiftSettings: swiftSettings),
        .testTarget(name: "VDPAPolicyTests", dependencies: ["VDPAPolicy", "VirtioModel"], swiftSettings: swiftSettings),
        .testTarget(name: "VDPAStoreTests", dependencies: ["VDPAStore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "VDPADaemonTests",
            dependencies: ["VDPADaemon", "VDPATestSupport", "VDPAClient", "VDPAPolicy", "VDPAVhostTestSupport", "VDPAVhost", "VhostUser", "VirtioNetTestSupport", "VirtioNet", "VirtioModel",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                           // A second connection to the daemon's database, to make its writes fail.
                           .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "vdpactlTests",
            dependencies: ["VDPACtl", "VDPATestSupport", "VDPAClient", "VDPADaemon", "VDPARPC", "VirtioModel", "VDPANetlink"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "VhostUserTests", dependencies: ["VhostUser", "VDPAPorts", "VDPASystem", "VDPAVhost", "VDPAVhostTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "VDPAVhostTests", dependencies: ["VDPAVhost", "CVhostUAPI"], swiftSettings: swiftSettings),
        .testTarget(
            name: "LabTests",
            dependencies: ["VDPANetlink", "VDPAClient", "VDPAPolicy", "VDPARPC", "VDPASystem", "VDPATestSupport", "VDPAVhost", "VDPAVhostTestSupport", "VirtioModel"],
            swiftSettings: swiftSettings
        ),
    ]
)
