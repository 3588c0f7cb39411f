import WeftCRDT

// Declaring the configuration's indexes to a storage that keeps them.
extension Replica {
    /// The declarations of the configuration's indexes, each with the presentation in force
    /// (the collection's field rules, which decide what an indexed register shows).
    nonisolated func indexDeclarations() throws(WeftError) -> [CollectionName: IndexDeclaration] {
        var result = [CollectionName: IndexDeclaration]()
        for (name, fields) in configuration.collectionIndexes where !fields.isEmpty {
            let collection = try CollectionName(name)
            var presentation = ""
            if case .fields = policy(for: collection) { presentation = "\(policy(for: collection))" }
            result[collection] = IndexDeclaration(fields: Array(Set(fields)).sorted(), presentation: presentation)
        }
        return result
    }

    /// Declares the indexes to the storage, if it keeps indexes: a collection whose declaration
    /// changed is indexed again (``IndexedStorage``, point 1).
    func declareIndexes() async throws(WeftError) {
        guard configuration.declaresIndexes, let indexed = storage as? any IndexedStorage else { return }
        let declarations = try indexDeclarations()
        try await indexed.declareIndexes(declarations) { [weak self] collection, stored in
            guard let self else { return stored.body }
            let record = (try? self.readable(stored, in: collection)) ?? stored
            return self.presenting(record.body, in: collection)
        }
    }
}
