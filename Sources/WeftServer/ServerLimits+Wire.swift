import Weft
import WeftWire

extension ServerLimits {
    /// The limits a frame is decoded under: `max_request_bytes`, `max_decompressed_bytes` and
    /// `max_changes_per_batch`.
    var wireLimits: WireLimits {
        WireLimits(
            maximumFrameBytes: maxRequestBytes, maximumDecompressedBytes: maxDecompressedBytes,
            maximumChanges: maxChangesPerBatch)
    }
}
