import ArgumentParser
import Foundation
import Weft

@main
struct WeftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "Weft: local-first replicas of CRDT documents, synced with a central server.",
        subcommands: [Serve.self, Demo.self, SyncReplica.self, Status.self, Conflicts.self, Get.self, List.self, Query.self, Remote.self])
}

extension AsyncParsableCommand {
    /// The configuration of a command that looks into an app's file: it keeps the file's indexes.
    static var lookingIn: ReplicaConfiguration {
        var configuration = ReplicaConfiguration()
        configuration.declaresIndexes = false
        return configuration
    }
}

/// Prints to standard error and exits with a failure status.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("weft: \(message)\n".utf8))
    return ExitCode.failure
}
