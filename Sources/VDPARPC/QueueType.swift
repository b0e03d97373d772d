import VirtioModel

/// The role of a virtio-net queue index (virtio 1.x §5.1.2 "Virtqueues"):
/// receiveq1, transmitq1, …, receiveqN, transmitqN, controlq (index 2N).
/// Without VIRTIO_NET_F_MQ/RSS there is one pair, so N is 1.
public func virtioNetQueueType(index: UInt32, maxVirtqueuePairs: UInt16?, negotiated: VirtioFeatures?) -> String {
    let pairs = UInt32(maxVirtqueuePairs ?? 1)
    let hasControlQueue = negotiated?.contains(VirtioFeatures.Net.controlVirtqueue) ?? false
    if hasControlQueue && index == 2 * pairs { return "control_vq" }
    return index % 2 == 0 ? "rx" : "tx"
}
