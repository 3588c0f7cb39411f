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
