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

    init(document: Document, stamp: HLCTimestamp, rules: [String: FieldRule] = [:]) {
        self.document = document
        self.stamp = stamp
        self.rules = rules
    }

    /// The document as readers of the collection see it (``Replica/presenting(_:in:)``).
    public var presented: Document { rules.isEmpty ? document : FieldRulesResolver(rules: rules).presenting(document) }

    /// Sets register `field` to `value`.
    public mutating func set(_ field: String, to value: Scalar) { document.assign(field, to: value, at: stamp) }
    /// Adds `amount` to counter `field`.
    public mutating func increment(_ field: String, by amount: Int64 = 1) {
        document.add(amount, toCounter: field, at: stamp)
    }
    /// Adds `element` to set `field`.
    public mutating func insert(_ element: Scalar, intoSet field: String) {
        _ = document.insert(element, intoSet: field, at: stamp)
    }
    /// Removes `element` from set `field`.
    public mutating func remove(_ element: Scalar, fromSet field: String) {
        _ = document.remove(element, fromSet: field, at: stamp)
    }
    /// Edits nested document `field`.
    public mutating func updateMap(_ field: String, _ body: (inout Document, HLCTimestamp) throws -> Void) rethrows {
        let stamp = stamp
        _ = try document.updateMap(field, at: stamp) { try body(&$0, stamp) }
    }
    /// Removes `field`.
    public mutating func removeField(_ field: String) { _ = document.removeField(field) }
    /// Makes the document hold `value` (a `Codable` struct), writing only the fields that
    /// differ from what readers see. Fields the value does not encode are kept unless its type
    /// knows them (see ``WeftCRDT/UnknownFieldPolicy``), or `unknownFields` is `.remove`.
    public mutating func replace(with value: some Encodable, unknownFields: UnknownFieldPolicy = .keep) throws(WeftError) {
        do {
            _ = try document.update(from: value, at: stamp, unknownFields: unknownFields, comparingWith: rules.isEmpty ? nil : presented)
        } catch let error as DocumentCodingError {
            throw .mapping(error.description)
        } catch {
            throw .mapping("\(error)")
        }
    }
}
