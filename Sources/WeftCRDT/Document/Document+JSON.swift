// A document as JSON: the one projection that the central store's `doc` column, the server's
// document API and the CLI show (see `Docs/Encoding.md`, "The JSON projection").

extension Document {
    /// The document as a JSON object, as a reader sees it:
    ///
    /// - a register as its value (of concurrent writes, the one with the greatest stamp; bytes
    ///   as base64 text);
    /// - a counter as its value;
    /// - a set as an array of its elements, in ``Scalar/ruleOrder(_:_:)``;
    /// - a nested document as an object, except that a list the Codable bridge wrote (every
    ///   field a position key) is an array of its elements in list order, and that a list's or
    ///   dictionary's `~removed` set and the entries it names are not shown;
    /// - a field written concurrently with different kinds as the highest kind
    ///   (``DocumentValue``).
    ///
    /// A nested document that shows nothing is `{}`, so an empty list is `{}` unless it holds
    /// removed elements, in which case it is `[]`.
    ///
    /// - Complexity: O(*n* log *n*) in the document's fields and elements.
    public var jsonValue: JSONValue { Self.json(self, nested: false) }

    static func json(_ document: Document, nested: Bool) -> JSONValue {
        let hidden = nested ? RemovedKeys.hidden(in: document) : []
        let keys = document.keys.filter { !hidden.contains($0) }
        if nested {
            let removedPositions = hidden.contains { $0 != ListPosition.removedKey && ListPosition.isPositionKey($0) }
            if keys.isEmpty ? removedPositions : keys.allSatisfy(ListPosition.isPositionKey) {
                let ordered = keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                return .array(ordered.compactMap { document[$0].map(json) })
            }
        }
        var members = [String: JSONValue](minimumCapacity: keys.count)
        for key in keys { if let value = document[key] { members[key] = json(value) } }
        return .object(members)
    }

    static func json(_ value: DocumentValue) -> JSONValue {
        switch value {
        case .register(let register): return JSONValue(register.value)
        case .counter(let count): return .int(count)
        case .set(let elements): return .array(elements.sorted(by: Scalar.ruleOrder).map(JSONValue.init))
        case .map(let nested): return json(nested, nested: true)
        }
    }
}

extension ListPosition {
    /// Whether `key` has the shape of a list element's key: digits not ending in digit 0, `-`,
    /// a tag of ``tagLength`` digits other than 0, and optionally `-` and a run's sequence
    /// number (digits other than 0).
    static func isPositionKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        let isTagDigit = { (byte: UInt8) in byte != separator && value(byte) != nil }
        guard bytes.allSatisfy({ value($0) != nil }) else { return false }
        // The tag follows a separator whose left neighbour is a digit other than 0.
        for index in bytes.indices where bytes[index] == separator && index > 0 && bytes[index - 1] != separator {
            let tagEnd = index + 1 + tagLength
            guard tagEnd <= bytes.count, bytes[(index + 1)..<tagEnd].allSatisfy(isTagDigit) else { continue }
            if tagEnd == bytes.count { return true }
            if bytes[tagEnd] == separator, tagEnd + 1 < bytes.count, bytes[(tagEnd + 1)...].allSatisfy(isTagDigit) { return true }
        }
        return false
    }
}
