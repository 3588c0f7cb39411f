import Foundation
import Weft

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Draws ``Weft/SyncProgress`` events as a text progress bar.
///
/// On a terminal the bar redraws in place; otherwise (a pipe, a log, a test) it prints a line at
/// the start, at every quarter and at the end.
struct ProgressBar {
    let width = 28
    let interactive = isatty(STDOUT_FILENO) != 0
    private var lastQuarter = -1

    /// One line for `progress`.
    func line(_ progress: SyncProgress) -> String {
        let filled = Int((progress.fractionDone * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let percent = Int((progress.fractionDone * 100).rounded(.down))
        var text = "[\(bar)] \(percent)% \(progress.entriesDone)/\(progress.entriesTotal) entries, "
        text += "\(Self.bytes(progress.bytesDone))/\(Self.bytes(progress.bytesTotal)), \(Self.bytes(Int(progress.bytesPerSecond)))/s"
        if progress.wireBytesSent > 0 {
            text += " (on the wire \(Self.bytes(progress.wireBytesSent)), \(Self.bytes(Int(progress.wireBytesPerSecond)))/s)"
        }
        if let eta = progress.estimatedRemaining, progress.entriesDone < progress.entriesTotal {
            text += ", ETA \(Self.seconds(eta))"
        }
        return text
    }

    /// Draws `progress`.
    mutating func draw(_ progress: SyncProgress) {
        if interactive {
            print("\r  " + line(progress), terminator: progress.entriesDone >= progress.entriesTotal ? "\n" : "")
            fflush(nil)  // every output stream, stdout among them
            return
        }
        let quarter = Int(progress.fractionDone * 4)
        guard quarter != lastQuarter else { return }
        lastQuarter = quarter
        print("  " + line(progress))
    }

    static func bytes(_ count: Int) -> String {
        if count >= 1 << 20 { return String(format: "%.1f MB", Double(count) / Double(1 << 20)) }
        if count >= 1 << 10 { return String(format: "%.1f KB", Double(count) / Double(1 << 10)) }
        return "\(count) B"
    }

    static func seconds(_ duration: Duration) -> String {
        let (whole, fraction) = duration.components
        return String(format: "%.1fs", Double(whole) + Double(fraction) / 1e18)
    }
}
