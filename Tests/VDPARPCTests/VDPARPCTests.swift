import Foundation
import Testing
import VDPARPC

@Suite struct VDPARPCTests {
    @Test func errorCodesAreStable() {
        // Published codes never change meaning: this list only grows.
        let expected: [RPCErrorCode: Int] = [
            .parseError: -32700, .invalidRequest: -32600, .methodNotFound: -32601, .invalidParams: -32602, .internalError: -32603,
            .vdpaUnavailable: 1001, .notFound: 1002, .alreadyExists: 1003, .notSupported: 1004, .kernelRejected: 1005,
            .permissionDenied: 1006, .tryAgain: 1007, .unmanagedDevice: 1008, .driverUnavailable: 1009, .stateStoreFailure: 1010,
            .sysfsFailure: 1011, .requestTooLarge: 1012, .shuttingDown: 1013, .verificationFailed: 1014, .deviceInUse: 1015,
            .profileIncompatible: 1016, .stateIncompatible: 1017, .notAttached: 1018,
        ]
        for code in RPCErrorCode.allCases { #expect(expected[code] == code.rawValue, "\(code.name)") }
    }

    @Test func responseCarriesNullIdWhenUnknown() throws {
        let bytes = try RPCJSON.encode(RPCResponse<RPCEmpty>(id: nil, error: RPCErrorObject(code: .parseError, message: "x")))
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"error":{"code":-32700,"message":"x"},"id":null,"jsonrpc":"2.0"}"#)
    }

    @Test func errorDataUsesSnakeCase() throws {
        let data = RPCErrorData(errno: 19, errnoName: "ENODEV", extack: "vdpa: device not found", operation: "VDPA_CMD_DEV_GET x")
        let text = String(decoding: try RPCJSON.encode(data), as: UTF8.self)
        #expect(text == #"{"errno":19,"errno_name":"ENODEV","extack":"vdpa: device not found","operation":"VDPA_CMD_DEV_GET x"}"#)
    }

    @Test func requestIDsAreStringsOrNumbers() throws {
        let header = try JSONDecoder().decode(RPCRequestHeader.self, from: Data(#"{"jsonrpc":"2.0","id":"x","method":"m"}"#.utf8))
        #expect(header.id == .string("x"))
        let numeric = try JSONDecoder().decode(RPCRequestHeader.self, from: Data(#"{"jsonrpc":"2.0","id":3,"method":"m"}"#.utf8))
        #expect(numeric.id == .number(3))
    }

    @Test func queueTypes() {
        #expect(virtioNetQueueType(index: 0, maxVirtqueuePairs: nil, negotiated: nil) == "rx")
        #expect(virtioNetQueueType(index: 1, maxVirtqueuePairs: nil, negotiated: nil) == "tx")
        #expect(virtioNetQueueType(index: 2, maxVirtqueuePairs: nil, negotiated: .init(rawValue: 1 << 17)) == "control_vq")
        #expect(virtioNetQueueType(index: 8, maxVirtqueuePairs: 4, negotiated: .init(rawValue: 1 << 17)) == "control_vq")
    }
}
