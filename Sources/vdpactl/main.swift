import Foundation
import VDPACtl

// vdpactl: the operator's command line for vdpad. All logic is in VDPACtl.
let standardOutput = OutputSink { FileHandle.standardOutput.write(Data($0.utf8)) }
let standardError = OutputSink { FileHandle.standardError.write(Data($0.utf8)) }
let status = VDPACtl.run(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment,
                         output: standardOutput, errors: standardError)
exit(status.rawValue)
