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
    /// Every write the child acknowledged counts; the write it had begun when it was killed may
    /// or may not have committed, so it counts as a maybe.
    func killReplicaProcess(_ index: Int) async throws {
        weak var probe = slots[index]?.replica
        slots[index] = nil
        for _ in 0..<3_000 where probe != nil { try await Task.sleep(for: .milliseconds(20)) }
        if probe != nil { throw OfflineTests.TestFailure("replica \(index) is still held (replay: \(replay))") }

        let process = Process()
        process.executableURL = try builtExecutable("WeftCrashWriter")
        let prefix = "k\(replicaKills)_"
        process.arguments = [
            "fault", directory.path("replica\(index).sqlite"), proxy.baseURL, Self.token, Self.database, String(random.next()), prefix,
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let lines = SyncCrashTests.lines(of: output.fileHandleForReading)
        try process.run()
        let killer = SyncCrashTests.Killer(pid: process.processIdentifier)
        let acksBeforeKill = 1 + roll(12)
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(50 + Int(random.next() % 400)))
            if !Task.isCancelled { killer.fire() }
        }
        var begun: (key: String, amount: Int64, tag: String)?
        var acks = 0
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
                counters[key, default: 0] += amount
                nested[key, default: 0] += amount
                elements[key, default: []].insert(words[3])
                unconfirmed[index, default: []].append((key, amount, true, words[3], sequence))
                history[key, default: []].append("r\(index) (process) +\(amount) seq \(sequence) queued")
                writes += 1
                acks += 1
                if acks == acksBeforeKill { killer.fire() }
            case "start", "synced", "sync-failed": break
            default: Issue.record("the replica process printed \(line.debugDescription) (replay: \(replay))")
            }
        }
        timer.cancel()
        killer.fire()
        process.waitUntilExit()
        if !(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL) {
            Issue.record("the replica process was not killed by SIGKILL: it ended with \(process.terminationStatus) (replay: \(replay))")
        }
        if let begun {
            maybe[begun.key, default: 0] += begun.amount
            nestedMaybe[begun.key, default: 0] += begun.amount
            history[begun.key, default: []].append("r\(index) (process) +\(begun.amount) killed mid-write")
        }
        replicaKills += 1
        slots[index] = try await openNode(index)
    }
}
