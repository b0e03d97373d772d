import VDPAClient
import VDPARPC

/// Runs one parsed ``Command`` against vdpad and prints its result.
struct CommandRunner {
    let client: VDPAClient
    let options: GlobalOptions
    let output: OutputSink
    /// Asked after each `monitor` event whether to go on.
    let keepFollowing: @Sendable () -> Bool

    func run(_ command: Command) throws {
        switch command {
        case .mgmtdevShow(let handle):
            let result = try client.call(.mgmtdevList, MgmtdevListParams(mgmtdev: handle), as: MgmtdevListResult.self)
            emit(JSONRenderer.mgmtdevs(result.mgmtdevs), TextRenderer.mgmtdevs(result.mgmtdevs))
        case .devShow(let name):
            let devices: [DeviceInfo] = if let name {
                [try client.call(.devGet, DeviceNameParams(name: name), as: DeviceInfo.self)]
            } else {
                try client.call(.devList, DevListParams(), as: DevListResult.self).devices
            }
            emit(JSONRenderer.devices(devices), TextRenderer.devices(devices))
        case .devAdd(let parameters):
            _ = try client.call(.devAdd, parameters, as: DeviceInfo.self)
        case .devDel(let name, let force):
            _ = try client.call(.devDel, DevDelParams(name: name, force: force ? true : nil), as: DevDelResult.self)
        case .devSet(let name, let mac):
            _ = try client.call(.devSet, DevSetParams(name: name, mac: mac), as: DeviceConfigInfo.self)
        case .devBind(let name, let driver):
            _ = try client.call(.devBind, DevBindParams(name: name, driver: driver), as: DeviceInfo.self)
        case .devConfigShow(let name):
            let configs = try client.call(.devConfigGet, DevConfigGetParams(name: name), as: DevConfigGetResult.self).configs
            emit(JSONRenderer.configs(configs), TextRenderer.configs(configs))
        case .devVstatsShow(let name, let queueIndex):
            let stats = try client.call(.devVstatsGet, DevVstatsGetParams(name: name, qidx: queueIndex), as: DevVstatsGetResult.self)
            emit(JSONRenderer.vstats(stats), TextRenderer.vstats(stats))
        case .daemonStatus:
            let status = try client.call(.daemonStatus, as: DaemonStatusResult.self)
            emit(JSONRenderer.daemonStatus(status), TextRenderer.daemonStatus(status))
        case .monitor:
            try client.followEvents { event in
                // One line per event even with -p: a stream of objects, one per line.
                output.write(options.json ? JSONWriter.write(JSONRenderer.event(event), pretty: false) + "\n" : TextRenderer.event(event))
                return keepFollowing()
            }
        case .help(let topic):
            output.write(Usage.text(topic))
        }
    }

    private func emit(_ json: JSONValue, _ text: String) {
        output.write(options.json ? JSONWriter.write(json, pretty: options.pretty) + "\n" : text)
    }
}
