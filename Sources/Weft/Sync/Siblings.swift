import WeftCRDT

/// Siblings: concurrent versions of a document that a server could not resolve.
///
/// A collection whose policy is `custom` needs its resolver, which is Swift code. A server that
/// does not have it (the Standalone serving apps whose resolvers it does not link) keeps the
/// concurrent versions side by side in one record that stands for them all, and sends that
/// record to replicas like any other. The first replica that has the resolver resolves the
/// siblings with its own version, stores the result and pushes it; the result's version covers
/// every sibling, so the server takes it as a fast-forward and drops the siblings.
///
/// The record holding siblings has one field, ``DocumentRecord/siblingsField``, a register of
/// the siblings encoded (`00`, the format version, the count, then each record's body); its version vector is the join of theirs and its deletion flag the
/// later of theirs. Field names starting with U+0000 are reserved for Weft.
extension DocumentRecord {
    /// The reserved field of a record that holds siblings.
    public static let siblingsField = "\u{0}weft.siblings"

    /// Whether this record holds siblings instead of one version.
    public var holdsSiblings: Bool { body[Self.siblingsField] != nil }

    /// The concurrent versions this record holds, or `nil` for an ordinary record.
    /// - Throws: ``WeftError/Kind/corrupt`` if the reserved field does not decode.
    public func siblingVersions() throws(WeftError) -> [DocumentRecord]? {
        guard let value = body[Self.siblingsField] else { return nil }
        guard case .register(let register) = value, case .bytes(let bytes) = register.value else {
            throw .corrupt("the siblings field of a record is not a byte register")
        }
        var reader = BinaryReader(bytes)
        do {
            // Since format version 2 the siblings start with 00 and the format version; before,
            // with their count (at least 2), in version 1.
            if bytes.first == 0 {
                _ = try reader.readByte()
                let version = try reader.readByte()
                guard BinaryFormat.supportedVersions.contains(version) else { throw CodecError.unsupportedVersion(version, at: 1) }
                reader.formatVersion = version
            } else {
                reader.formatVersion = 1
            }
            let count = try reader.readCount(minimumElementSize: 3)
            var versions = [DocumentRecord]()
            versions.reserveCapacity(count)
            for _ in 0..<count {
                let version = try DocumentRecord(from: &reader)
                guard !version.holdsSiblings else { throw CodecError.nonCanonical(at: reader.offset, "nested siblings") }
                versions.append(version)
            }
            guard reader.isAtEnd, count >= 2 else { throw CodecError.nonCanonical(at: reader.offset, "fewer than two siblings") }
            return versions
        } catch {
            throw .corrupt("the siblings of a record do not decode: \(error)")
        }
    }

    /// The record standing for `versions`: flattened (siblings of siblings are taken out),
    /// without duplicates or versions another one dominates, in a canonical order. A single
    /// survivor is returned as itself.
    public static func holding(siblings versions: [DocumentRecord]) throws(WeftError) -> DocumentRecord {
        var flat = [DocumentRecord]()
        for version in versions {
            if let inner = try version.siblingVersions() { flat.append(contentsOf: inner) } else { flat.append(version) }
        }
        var kept = [DocumentRecord]()
        for candidate in flat where !kept.contains(candidate) {
            let dominated = flat.contains { other in
                other != candidate && candidate.version.compare(to: other.version) == .before
            }
            if !dominated { kept.append(candidate) }
        }
        guard kept.count > 1, var first = kept.first else { return kept.first ?? versions[0] }
        let encoded = kept.map { $0.encoded() }
        let order = encoded.indices.sorted { encoded[$0].lexicographicallyPrecedes(encoded[$1]) }
        var writer = BinaryWriter()
        writer.writeByte(0)
        writer.writeByte(BinaryFormat.version)
        writer.writeVarint(UInt64(kept.count))
        for index in order { kept[index].encode(to: &writer) }
        var deletion = first.deletion
        var version = first.version
        for other in kept.dropFirst() {
            deletion.merge(other.deletion)
            version.merge(other.version)
        }
        var body = Document()
        body.set(Self.siblingsField, to: .bytes(writer.bytes), at: deletion.stamp)
        first = DocumentRecord(body: body, deletion: deletion, version: version)
        return first
    }
}

extension DocumentRecord {
    /// The siblings resolved together: by `resolver`, in a canonical order (the laws make any
    /// order give the same result), or, without a resolver, by the CRDT join of their bodies,
    /// which keeps every edit. The result's version vector covers every sibling; an ordinary
    /// record is returned as it is.
    /// - Throws: ``WeftError/Kind/corrupt`` if the siblings do not decode.
    public func resolvingSiblings(with resolver: (any ConflictResolver)?) throws(WeftError) -> DocumentRecord {
        guard let siblings = try siblingVersions() else { return self }
        let result = Self.resolving(siblings, with: resolver)
        return DocumentRecord(body: result.body, deletion: deletion.merged(with: result.deletion), version: version.merged(with: result.version))
    }

    /// Concurrent versions resolved together, in a canonical order (the bytes of their
    /// encodings; the laws make any order give the same result): by `resolver`, or by the CRDT
    /// join of the bodies without one.
    static func resolving(_ versions: [DocumentRecord], with resolver: (any ConflictResolver)?) -> DocumentRecord {
        let encoded = versions.map { $0.encoded() }
        let order = encoded.indices.sorted { encoded[$0].lexicographicallyPrecedes(encoded[$1]) }
        let resolver: any ConflictResolver = resolver ?? JoinResolver()
        var result = versions[order[0]]
        for index in order.dropFirst() { result = result.resolved(with: versions[index], by: resolver) }
        return result
    }
}
