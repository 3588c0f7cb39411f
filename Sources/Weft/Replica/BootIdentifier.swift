import Foundation

#if canImport(Darwin)
import Darwin
#endif

/// Which boot of the machine this process runs in: a string that stays the same until the
/// operating system restarts, and differs after.
///
/// Under `durability = "normal"` a power cut or a kernel panic may take the replica file's last
/// commits with it, and only a restart of the machine can have lost them (a process that dies
/// leaves them in the operating system's cache). ``Replica`` records the boot it opened its file
/// under; opened under another boot, it takes a new identity before it writes, because its
/// identity's last writes may exist on other replicas while its file has forgotten them, and
/// reissuing their dots would lose one of each pair.
public enum BootIdentifier {
    /// The current boot: Linux's `/proc/sys/kernel/random/boot_id`, or the boot time
    /// (`kern.boottime`) on Apple platforms; `nil` where neither is available (then a replica
    /// cannot tell restarts apart, and keeps its identity).
    public static func current() -> String? {
        #if os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8) else { return nil }
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
        #elseif canImport(Darwin)
        var time = timeval()
        var size = MemoryLayout<timeval>.size
        guard sysctlbyname("kern.boottime", &time, &size, nil, 0) == 0 else { return nil }
        return "\(time.tv_sec).\(time.tv_usec)"
        #else
        return nil
        #endif
    }
}
