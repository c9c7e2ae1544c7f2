// swift-tools-version:6.2
import PackageDescription

// Dependencies run one way: CorralProfile ← CorralPlan ← CorralSystem ← Corral ← corral.
// Unsafe code lives only in CorralSystem and the C launcher (CCorralLaunch).

// Concrete generic types' metadata through direct accessor calls, not demangled names: a
// demangled name's generic requirements (String: Hashable for a [String: X]) are looked up
// at run time by scanning every protocol conformance record in the binary (~0.1 ms each in
// `corral`), once per process, on every launch.
let launchPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]),
]
let package = Package(
    name: "Corral",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "corral", targets: ["corral"]),
        .executable(name: "corral-probe", targets: ["corral-probe"]),
        .executable(name: "corral-egress", targets: ["corral-egress"]),
        .library(name: "Corral", targets: ["Corral"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // MARK: Pure layers: no libc, no kernel.
        // YAML through libyaml's event parser (no Foundation: the CLI's start-up is on every
        // launch's path, and Foundation with ICU costs milliseconds there).
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .target(name: "CorralProfile", dependencies: ["CYAML"], swiftSettings: launchPathSettings),
        .target(name: "CorralPlan", dependencies: ["CorralProfile"], swiftSettings: launchPathSettings),

        // MARK: System layer and the C launcher.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp",
                       providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CCap", pkgConfig: "libcap", providers: [.apt(["libcap-dev"])]),
        .target(name: "CCorralLaunch", cSettings: [.define("_GNU_SOURCE")]),
        .target(
            name: "CorralSystem",
            dependencies: [
                "CorralPlan", "CCorralLaunch", "CSeccomp", "CCap",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: [.strictMemorySafety()] + launchPathSettings
        ),

        // MARK: Audit log: hash chain, Ed25519 signatures (swift-crypto), verification.
        // Safe Swift only: its file access goes through CorralSystem (LockedFile).
        .target(
            name: "CorralAudit",
            dependencies: ["CorralSystem", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: launchPathSettings
        ),

        // MARK: Supervisor library and the thin CLI.
        .target(
            name: "Corral",
            dependencies: [
                "CorralSystem", "CorralAudit",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: launchPathSettings
        ),
        .executableTarget(
            name: "corral",
            dependencies: ["Corral", "CorralAudit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: launchPathSettings,
            // Release: a static PIE. No ld.so run, no symbol lookups or relocations of
            // libstdc++ and friends on every launch (a hello world starts in 0.8 ms instead
            // of 1.9 ms here), while keeping ASLR (a plain static executable saves another
            // 0.6 ms for Corral but loads at a fixed address). DT_RELR packs the
            // self-relocations; -z now makes the GOT read-only after start (full RELRO).
            linkerSettings: [.unsafeFlags(["-static-executable", "-use-ld=lld", "-Xclang-linker", "-static-pie",
                                           "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                                           "-Xlinker", "-z", "-Xlinker", "now"],
                                          .when(configuration: .release))]
        ),
        // Test helper run inside sandboxes. C, because it must issue raw syscalls
        // (int 0x80, x32 numbers) that Swift cannot express.
        // Linked with the Swift runtime statically so it runs in sandboxes that do not show
        // the toolchain's folder.
        .executableTarget(name: "corral-probe", cSettings: [.define("_GNU_SOURCE")],
                          linkerSettings: [.unsafeFlags(["-static-stdlib"])]),

        // MARK: Egress proxy.
        // A process of its own, run by the supervisor outside the sandbox with the sandbox's
        // listening sockets inherited: NIO stays out of corral's launch path, and the parser
        // facing the sandbox is isolated from the supervisor.
        .target(
            name: "CorralNet",
            dependencies: [
                "CorralPlan", "CCorralLaunch",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The Swift runtime linked statically (runs without the toolchain's folder); glibc
        // stays dynamic so getaddrinfo reaches NSS. Release only: SwiftPM also applies an
        // executable target's linker flags to test bundles that depend on it, and the
        // Testing and XCTest libraries exist only as shared libraries.
        .executableTarget(name: "corral-egress", dependencies: ["CorralNet"],
                          linkerSettings: [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))]),

        // MARK: Tests, one layer each (see STYLE.md B8).
        .testTarget(name: "CorralProfileTests", dependencies: ["CorralProfile"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "CorralPlanTests", dependencies: ["CorralPlan"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "CorralSystemTests", dependencies: ["CorralSystem"]),
        // Depends on `corral` so the CLI test finds the binary next to the test bundle.
        .testTarget(name: "CorralAuditTests", dependencies: ["CorralAudit", "corral"]),
        // Scripts/: drives the real corral-egress from outside (many connections).
        .testTarget(name: "CorralNetTests", dependencies: ["CorralNet", "corral-egress"], exclude: ["Scripts"]),
        // Lab/: the network lab's server script, run by python3 from the source tree.
        .testTarget(name: "CorralIntegrationTests", dependencies: ["Corral", "corral", "corral-probe", "corral-egress"],
                    exclude: ["Lab"]),
    ]
)
