import Foundation
import Weft
import WeftCRDT
import WeftSQLite

/// A temporary directory removed when the value is deinitialised.
final class TemporaryDirectory: @unchecked Sendable {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("weft-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Every storage implementation, for the contract suites.
enum StorageKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case memory, sqlite
    var description: String { rawValue }

    /// Fresh storage, and the directory that holds it (kept alive by the caller).
    func make(_ directory: TemporaryDirectory) throws -> any ReplicaStorage {
        switch self {
        case .memory: return MemoryReplicaStorage()
        case .sqlite: return try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
        }
    }
}

func key(_ collection: String, _ id: String) -> DocumentKey {
    // Test literals are valid by construction.
    DocumentKey(collection: try! CollectionName(collection), id: try! DocumentID(id))
}

/// A record written at `wall` by replica `r`, with field `field` = `value`.
func sampleRecord(_ field: String, _ value: Int64, wall: UInt64, replica: ReplicaID = ReplicaID(high: 0, low: 1))
    -> DocumentRecord
{
    let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
    var body = Document()
    body.set(field, to: .int(value), at: stamp)
    var version = VersionVector()
    version[replica] = wall
    return DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: version)
}

/// An executable product built next to the test bundle by `swift build --build-tests`.
func builtExecutable(_ name: String) throws -> URL {
    var directories = [URL]()
    if let first = CommandLine.arguments.first {
        directories.append(URL(fileURLWithPath: first).deletingLastPathComponent())
    }
    directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
    directories.append(Bundle.main.bundleURL)
    if let executable = Bundle.main.executableURL { directories.append(executable.deletingLastPathComponent()) }
    for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
        directories.append(bundle.bundleURL.deletingLastPathComponent())
    }
    for directory in directories {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw ExecutableNotFound(name: name, searched: directories.map(\.path))
}

struct ExecutableNotFound: Error, CustomStringConvertible {
    let name: String
    let searched: [String]
    var description: String {
        "the \(name) executable was not found next to the test bundle (searched: \(searched.joined(separator: ", "))); "
            + "build it with `swift build --build-tests` before `swift test --skip-build`"
    }
}

/// Runs an executable to completion and returns its status, standard output and standard error.
func runProcess(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
}
