import Testing
import VirtioModel
import VirtioNet

@Suite("VirtioNetHeader")
struct HeaderTests {
    typealias Net = VirtioFeatures.Net
    let offloads: VirtioFeatures = [Net.checksum, Net.hostTSO4, Net.hostTSO6, Net.hostECN, Net.hostUFO]

    @Test func parsesLittleEndianLayout() throws {
        let bytes: [UInt8] = [0x01, 0x81, 0x36, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00, 0x03, 0x00]
        let header = try VirtioNetHeader(parsing: bytes)
        #expect(header.flags == .needsChecksum)
        #expect(header.gsoType.kind == .tcpv4)
        #expect(header.gsoType.hasECN)
        #expect(header.headerLength == 54)
        #expect(header.gsoSize == 1448)
        #expect(header.checksumStart == 34)
        #expect(header.checksumOffset == 16)
        #expect(header.bufferCount == 3)
        #expect(header.bytes == bytes)
    }

    @Test func roundTripsEveryByte() throws {
        for seed in 0..<200 {
            let bytes = (0..<12).map { UInt8(truncatingIfNeeded: seed &* 37 &+ $0 &* 101) }
            #expect(try VirtioNetHeader(parsing: bytes).bytes == bytes)
        }
    }

    @Test func refusesTruncatedHeader() {
        #expect(throws: VirtioNetHeaderError.truncated(length: 11)) { try VirtioNetHeader(parsing: [UInt8](repeating: 0, count: 11)) }
        #expect(throws: VirtioNetHeaderError.truncated(length: 0)) { try VirtioNetHeader(parsing: [UInt8]()) }
    }

    @Test func acceptsPlainAndOffloadedHeaders() throws {
        try VirtioNetHeader().validateTransmit(frameLength: 60, features: [])
        try VirtioNetHeader(flags: .needsChecksum, checksumStart: 34, checksumOffset: 16)
            .validateTransmit(frameLength: 60, features: offloads)
        try VirtioNetHeader(
            flags: .needsChecksum, gsoType: .tcpv4, headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16
        ).validateTransmit(frameLength: 9000, features: offloads)
    }

    static let malicious: [(String, VirtioNetHeader, Int, VirtioFeatures)] = {
        let all: VirtioFeatures = [Net.checksum, Net.hostTSO4, Net.hostTSO6, Net.hostECN, Net.hostUFO]
        return [
            ("frame shorter than Ethernet", VirtioNetHeader(), 13, all),
            ("frame above 64 KiB", VirtioNetHeader(), 70_000, all),
            ("DATA_VALID on transmit", VirtioNetHeader(flags: .dataValid), 60, all),
            ("RSC_INFO on transmit", VirtioNetHeader(flags: .rscInfo), 60, all),
            ("NEEDS_CSUM without CSUM", VirtioNetHeader(flags: .needsChecksum, checksumStart: 14), 60, []),
            ("checksum beyond frame", VirtioNetHeader(flags: .needsChecksum, checksumStart: 0xffff, checksumOffset: 0xffff), 60, all),
            ("checksum field straddles end", VirtioNetHeader(flags: .needsChecksum, checksumStart: 50, checksumOffset: 9), 60, all),
            ("unknown gso kind", VirtioNetHeader(gsoType: .init(rawValue: 2)), 60, all),
            ("gso 0x7f", VirtioNetHeader(gsoType: .init(rawValue: 0x7f)), 60, all),
            ("ECN without gso", VirtioNetHeader(gsoType: .init(rawValue: 0x80)), 60, all),
            ("ECN on UDP", VirtioNetHeader(flags: .needsChecksum, gsoType: .init(rawValue: 0x83), gsoSize: 100), 60, all),
            ("TSO4 not negotiated", VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv4, gsoSize: 1448), 3000, [Net.checksum]),
            ("USO not negotiated", VirtioNetHeader(flags: .needsChecksum, gsoType: .udpL4, gsoSize: 1448), 3000, all),
            ("gso without NEEDS_CSUM", VirtioNetHeader(gsoType: .tcpv6, gsoSize: 1448), 3000, all),
            ("gso size zero", VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv4, gsoSize: 0), 3000, all),
            ("hdr_len beyond frame", VirtioNetHeader(flags: .needsChecksum, gsoType: .tcpv4, headerLength: 0xffff, gsoSize: 1), 3000, all),
        ]
    }()

    @Test(arguments: 0..<HeaderTests.malicious.count)
    func refusesMaliciousHeader(_ index: Int) {
        let (name, header, length, features) = Self.malicious[index]
        #expect(throws: VirtioNetHeaderError.self, "\(name)") {
            try header.validateTransmit(frameLength: length, features: features)
        }
    }

    @Test func normalisationClearsUnknownFlagsAndBufferCount() {
        let header = VirtioNetHeader(flags: .init(rawValue: 0xf9), bufferCount: 7).normalizedForTransmit
        #expect(header.flags == .needsChecksum)
        #expect(header.bufferCount == 0)
    }

    @Test func everyRandomHeaderEitherValidatesOrThrows() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let bytes = (0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let header = try! VirtioNetHeader(parsing: bytes)
            let features = VirtioFeatures(rawValue: UInt64.random(in: 0...UInt64.max, using: &generator))
            _ = try? header.validateTransmit(frameLength: Int.random(in: -5...70_000, using: &generator), features: features)
        }
    }
}
