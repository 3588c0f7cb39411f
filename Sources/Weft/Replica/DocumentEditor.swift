@_spi(Editing) import WeftCRDT

/// Edits one document inside ``ReplicaCollection/update(_:_:)``: every edit is stamped with
/// the replica's clock.
public struct DocumentEditor {
    /// The document as edited so far.
    public private(set) var document: Document
    let stamp: HLCTimestamp

    init(document: Document, stamp: HLCTimestamp) {
        self.document = document
        self.stamp = stamp
    }

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
    /// Makes the document hold `value` (a `Codable` struct), writing only the fields that differ.
    public mutating func replace(with value: some Encodable) throws(WeftError) {
        do {
            _ = try document.update(from: value, at: stamp)
        } catch let error as DocumentCodingError {
            throw .mapping(error.description)
        } catch {
            throw .mapping("\(error)")
        }
    }
}
