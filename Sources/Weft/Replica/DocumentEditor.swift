@_spi(Editing) import WeftCRDT

/// Edits one document inside ``ReplicaCollection/update(_:_:)``: every edit is stamped with
/// the replica's clock.
///
/// All edits of one closure share one stamp; a later edit of a field replaces an earlier one,
/// so the last write in program order wins, here and after every merge.
public struct DocumentEditor {
    /// The document as edited so far: the stored state, every concurrent write included.
    public private(set) var document: Document
    let stamp: HLCTimestamp
    /// The collection's field rules, if its policy has them: what readers see.
    let rules: [String: FieldRule]
    /// The document before the edit, as far as the edit touched it: what the write's delta is
    /// found from (`Document.delta(since:)` over an `EditBase`). `nil` when not wanted, or once an
    /// edit may have changed any field (a whole value written with
    /// ``replace(with:unknownFields:)``).
    private(set) var base: EditBase?

    init(document: Document, stamp: HLCTimestamp, rules: [String: FieldRule] = [:], trackingEdits: Bool = false) {
        self.base = trackingEdits ? EditBase(before: document) : nil
        self.document = document
        self.stamp = stamp
        self.rules = rules
    }

    /// Notes field `field` before an edit changes it.
    private mutating func touch(_ field: String) {
        base?.noteTouch(of: field, in: document)
    }

    /// The document as readers of the collection see it (``Replica/presenting(_:in:)``).
    public var presented: Document { rules.isEmpty ? document : FieldRulesResolver(rules: rules).presenting(document) }

    /// Sets register `field` to `value`.
    public mutating func set(_ field: String, to value: Scalar) {
        touch(field)
        document.assign(field, to: value, at: stamp)
    }
    /// Adds `amount` to counter `field`.
    public mutating func increment(_ field: String, by amount: Int64 = 1) {
        touch(field)
        document.add(amount, toCounter: field, at: stamp)
    }
    /// Adds `element` to set `field`.
    public mutating func insert(_ element: Scalar, intoSet field: String) {
        touch(field)
        _ = document.insert(element, intoSet: field, at: stamp)
    }
    /// Removes `element` from set `field`.
    public mutating func remove(_ element: Scalar, fromSet field: String) {
        touch(field)
        _ = document.remove(element, fromSet: field, at: stamp)
    }
    /// Edits nested document `field`.
    public mutating func updateMap(_ field: String, _ body: (inout Document, HLCTimestamp) throws -> Void) rethrows {
        let stamp = stamp
        touch(field)
        _ = try document.updateMap(field, at: stamp) { try body(&$0, stamp) }
    }
    /// Removes `field`.
    public mutating func removeField(_ field: String) {
        touch(field)
        _ = document.removeField(field)
    }
    /// Makes the document hold `value` (a `Codable` struct), writing only the fields that
    /// differ from what readers see. Fields the value does not encode are kept unless its type
    /// knows them (see `UnknownFieldPolicy` in WeftCRDT), or `unknownFields` is `.remove`.
    public mutating func replace(with value: some Encodable, unknownFields: UnknownFieldPolicy = .keep) throws(WeftError) {
        base = nil
        do {
            _ = try document.update(from: value, at: stamp, unknownFields: unknownFields, comparingWith: rules.isEmpty ? nil : presented)
        } catch let error as DocumentCodingError {
            throw .mapping(error.description)
        } catch {
            throw .mapping("\(error)")
        }
    }
}

extension DocumentEditor {
    /// Makes the document show the JSON object `object`, or applies it as a merge patch
    /// (`Document.write(json:at:mode:)` in WeftCRDT): the server's document API.
    package mutating func write(json object: [String: JSONValue], mode: Document.JSONWriteMode) throws(WeftError) {
        base = nil
        do {
            try document.write(json: object, at: stamp, mode: mode, view: rules.isEmpty ? nil : presented)
        } catch {
            throw .mapping(error.description)
        }
    }
}
