import Weft
import WeftWire

extension ServerLimits {
    /// The limits a frame is decoded under: `max_request_bytes`, `max_decompressed_bytes` and
    /// `max_changes_per_batch`.
    var wireLimits: WireLimits {
        var limits = WireLimits(
            maximumFrameBytes: maxRequestBytes, maximumDecompressedBytes: maxDecompressedBytes,
            maximumChanges: maxChangesPerBatch)
        limits.decompresses = readsCompressedFrames
        return limits
    }
}
