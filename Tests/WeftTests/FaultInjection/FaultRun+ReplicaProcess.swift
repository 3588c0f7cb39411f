import Foundation
import Testing
import Weft

#if canImport(Glibc)
    import Glibc
#endif

// A replica's process killed with SIGKILL: the replica's file is handed to a child process
// (`WeftCrashWriter fault`), which writes and syncs through the proxy until the suite kills it.
extension FaultRun {
    /// Closes replica `index`, runs its file in a child process that writes and syncs, kills the
    /// child with SIGKILL after a seeded delay (or after a seeded number of writes), accounts for
    /// what it printed, and opens the replica here again.
    ///
    /// By seed the kill is a plain SIGKILL or a power cut (the power-loss VFS,
    /// Tests/PowerLossVFS) under `durability = "full"` or `"normal"`, after which the replica
    /// opens under a new boot of its machine. Every write the child
    /// acknowledged counts, except that under a power cut with `normal` only those a completed
    /// sync round followed are sure (the server has them): the others may be gone with the
    /// cut, so they count as maybes. The write it had begun when it was killed is a maybe too.
    func killReplicaProcess(_ index: Int) async throws {
        weak let probe = slots[index]?.replica
        slots[index] = nil
        for _ in 0..<3_000 where probe != nil { try await Task.sleep(for: .milliseconds(20)) }
        if probe != nil {
            throw OfflineTests.TestFailure("replica \(index) is still held (replay: \(replay))")
        }

        let process = Process()
        process.executableURL = try builtExecutable("WeftCrashWriter")
        let prefix = "k\(replicaKills)_"
        process.arguments = [
            "fault", directory.path("replica\(index).sqlite"), proxy.baseURL, Self.token, Self.database,
            String(random.next()), prefix,
        ]
        let power: Durability? = [nil, .full, .normal][roll(3)]
        var environment = ProcessInfo.processInfo.environment
        environment["WEFT_BOOT_ID"] = boot(index)
        if let power {
            environment["WEFT_POWER_LOSS_VFS"] = "1"
            environment["WEFT_CRASH_DURABILITY"] = power.rawValue
            powerCuts += 1
        }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let lines = SyncCrashTests.lines(of: output.fileHandleForReading)
        try process.run()
        let killer = SyncCrashTests.Killer(pid: process.processIdentifier)
        let acksBeforeKill = 1 + roll(12)
        let delay = 50 + roll(400)
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(delay))
            if !Task.isCancelled { killer.fire() }
        }
        var begun: (key: String, amount: Int64, tag: String)?
        var acks = 0
        // Acknowledged writes no completed sync round has followed yet.
        var unsynced = [(key: String, amount: Int64, tag: String, sequence: UInt64)]()
        func count(_ write: (key: String, amount: Int64, tag: String, sequence: UInt64)) {
            counters[write.key, default: 0] += write.amount
            nested[write.key, default: 0] += write.amount
            elements[write.key, default: []].insert(write.tag)
            unconfirmed[index, default: []].append((write.key, write.amount, true, write.tag, write.sequence))
            history[write.key, default: []].append(
                "r\(index) (process \(prefix), \(power.map { "power cut, \($0)" } ?? "SIGKILL")) +\(write.amount) \(write.tag) seq \(write.sequence) queued"
            )
        }
        for await line in lines {
            let words = line.split(separator: " ").map(String.init)
            switch words.first {
            case "begin" where words.count == 4:
                guard let amount = Int64(words[2]) else { break }
                begun = ("sensors/\(words[1])", amount, words[3])
                // The register may hold it even if it was never acknowledged.
                registers["sensors/\(words[1])", default: []].insert(words[3])
            case "ack" where words.count == 5:
                guard let amount = Int64(words[2]), let sequence = UInt64(words[4]) else { break }
                let key = "sensors/\(words[1])"
                begun = nil
                if power == .normal {
                    unsynced.append((key, amount, words[3], sequence))
                } else {
                    count((key, amount, words[3], sequence))
                }
                writes += 1
                acks += 1
                if acks == acksBeforeKill { killer.fire() }
            case "synced":
                for write in unsynced {
                    count(write)
                    // The power cut to come may take it from the file: then only the server has it.
                    serverOnly.append((write.key, write.amount, write.tag, storeBackups))
                }
                unsynced = []
            case "start", "sync-failed": break
            default: Issue.record("the replica process printed \(line.debugDescription) (replay: \(replay))")
            }
        }
        timer.cancel()
        killer.fire()
        process.waitUntilExit()
        if !(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL) {
            Issue.record(
                "the replica process was not killed by SIGKILL: it ended with \(process.terminationStatus) (replay: \(replay))"
            )
        }
        if let begun {
            maybe[begun.key, default: 0] += begun.amount
            nestedMaybe[begun.key, default: 0] += begun.amount
            history[begun.key, default: []].append("r\(index) (process) +\(begun.amount) killed mid-write")
        }
        for write in unsynced {
            // Acknowledged locally, not known to the server: the power cut may have taken it.
            maybe[write.key, default: 0] += write.amount
            nestedMaybe[write.key, default: 0] += write.amount
            history[write.key, default: []].append(
                "r\(index) (process) +\(write.amount) returned, then a power cut under normal")
        }
        replicaKills += 1
        // A power cut restarts the machine: the replica opens its file under a new boot.
        if power != nil { boots[index, default: 0] += 1 }
        slots[index] = try await openNode(index)
    }
}
