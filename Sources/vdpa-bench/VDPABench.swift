import ArgumentParser

/// `vdpa-bench`: vdpad's benchmarks. Each prints its figures and, measured in the same
/// run, a reference to read them against. Build with `-c release`; see
/// Documentation/performance.md for the figures of this project's machines.
@main
struct VDPABench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vdpa-bench",
        abstract: "vdpad benchmarks: API throughput and latency, vdpactl against iproute2's vdpa, the virtqueue datapath, the compatibility check, virtqueue state moves, a soak of the API.",
        subcommands: [APIBenchmarkCommand.self, CLIBenchmarkCommand.self, DatapathBenchmarkCommand.self, CompatBenchmarkCommand.self,
                      VqStateBenchmarkCommand.self, SoakCommand.self, BenchServerCommand.self, PortServeCommand.self,
                      TapCeilingCommand.self])
}
