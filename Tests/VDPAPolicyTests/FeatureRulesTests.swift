import Testing
@testable import VDPAPolicy
