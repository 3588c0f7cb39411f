// Writing JSON into a document: what the server's document API does with a request body. The
// value's shape decides what each field becomes, together with what the field holds already, so
// a JSON write edits a document the way the Codable bridge would (see `Docs/Encoding.md`, "The
// JSON projection", for the rules).

extension Document {
    /// How ``write(json:at:mode:)`` treats what the JSON does not mention.
    package enum JSONWriteMode: Sendable {
        /// The object is the whole document: fields it lacks are removed (`PUT`).
        case replace
        /// A JSON merge patch (RFC 7396): fields it lacks are kept, a `null` member removes its
        /// field, and an object member patches a nested document field by field (`PATCH`).
        case mergePatch
    }

    /// Makes the document show `object` (``JSONWriteMode/replace``) or applies it as a merge
    /// patch, every change stamped `stamp`; fields whose value is already shown are not written
    /// again (top-level registers compared with `view`, the document as readers see it under
    /// field rules, when given). Each member becomes:
    ///
    /// - a string, Boolean or `null` (outside a patch): a register;
    /// - a number: the counter's new value (written as the difference, so concurrent increments
    ///   add up) if the field is a counter, otherwise a register;
    /// - an array: the set's elements if the field is a set (they must be scalars), otherwise a
    ///   list (`Docs/Encoding.md` 5.8), diffed against the list the field holds;
    /// - an object: a nested document, edited field by field (a dictionary's removed keys are
    ///   recorded if the field is one, in a patch too).
    ///
    /// - Throws: ``DocumentCodingError`` for a `null` list element, a set element that is not a
    ///   scalar, or a key the encoding reserves; the document is then unchanged.
    package mutating func write(
        json object: [String: JSONValue], at stamp: HLCTimestamp, mode: JSONWriteMode, view: Document? = nil
    ) throws(DocumentCodingError) {
        var copy = self
        do {
            switch mode {
            case .replace:
                var nodes = [String: FieldNode]()
                for (key, value) in object { nodes[key] = try copy.node(for: value, existing: copy[key], path: [key]) }
                _ = try copy.applyObject(nodes, at: stamp, view: view)
            case .mergePatch:
                try copy.patch(object, at: stamp, path: [], view: view)
            }
        } catch let error as DocumentCodingError {
            throw error
        } catch {
            throw .unsupportedType(path: "", "\(error)")
        }
        self = copy
    }

    /// Applies `nodes` as the whole of this document's fields.
    private mutating func applyObject(_ nodes: [String: FieldNode], at stamp: HLCTimestamp, view: Document?) throws -> Bool {
        var changed = false
        for key in nodes.keys.sorted() {
            guard let node = nodes[key] else { continue }
            if try applyField(key, node, at: stamp, path: [key], removal: .all, view: view) { changed = true }
        }
        for key in keys where nodes[key] == nil {
            _ = removeField(key)
            changed = true
        }
        return changed
    }

    /// Applies a merge patch to this document; `dictionary`: it is a dictionary's nested
    /// document, whose removed keys are recorded in its `~removed` set.
    private mutating func patch(_ object: [String: JSONValue], at stamp: HLCTimestamp, path: [String], view: Document? = nil) throws {
        let dictionary = !path.isEmpty && !RemovedKeys.hidden(in: self).isEmpty
        var removed = dictionary ? ListPosition.removed(self) : []
        let removedBefore = removed
        for key in object.keys.sorted() {
            guard let value = object[key] else { continue }
            let fieldPath = path + [key]
            if !path.isEmpty && key == ListPosition.removedKey {
                throw DocumentCodingError.unsupportedType(path: fieldPath.joined(separator: "."), "the key \(key) is reserved")
            }
            if dictionary, removed.contains(.string(key)) {
                // A removed key written again starts afresh: what a concurrent edit left of it goes.
                if case .null = value { continue }
                removed.remove(.string(key))
                if fields[key] != nil { _ = removeField(key) }
            }
            switch value {
            case .null:
                guard fields[key] != nil else { continue }
                _ = removeField(key)
                if dictionary { removed.insert(.string(key)) }
            case .object(let members):
                if case .map(let nested)? = self[key], Self.json(nested, nested: true).isObject {
                    var failure: (any Error)?
                    editMap(key, stamp: stamp) { nested in
                        do { try nested.patch(members, at: stamp, path: fieldPath) } catch { failure = error }
                    }
                    if let failure { throw failure }
                } else {
                    _ = try applyField(key, try node(for: value, existing: self[key], path: fieldPath), at: stamp, path: fieldPath, removal: .all)
                }
            default:
                _ = try applyField(
                    key, try node(for: value, existing: self[key], path: fieldPath), at: stamp, path: fieldPath, removal: .all, view: view)
            }
        }
        if removed != removedBefore { _ = makeSet(ListPosition.removedKey, hold: removed, replica: stamp.replica) }
    }

    /// The node that writes `value` over `existing`.
    private func node(for value: JSONValue, existing: DocumentValue?, path: [String]) throws -> FieldNode {
        let dotted = { path.joined(separator: ".") }
        switch value {
        case .null: return .scalar(.null)
        case .bool(let flag): return .scalar(.bool(flag))
        case .string(let text): return .scalar(.string(text))
        case .double(let number): return .scalar(.double(number))
        case .int(let number):
            if case .counter? = existing { return .counter(number) }
            return .scalar(.int(number))
        case .array(let elements):
            if case .set? = existing {
                var scalars = Set<Scalar>()
                for element in elements {
                    guard let scalar = element.scalar else {
                        throw DocumentCodingError.unsupportedType(path: dotted(), "a set holds only strings, numbers, Booleans and null")
                    }
                    scalars.insert(scalar)
                }
                return .set(scalars)
            }
            var existingElements = [DocumentValue?]()
            if case .map(let list)? = existing { existingElements = ListPosition.orderedKeys(list).map { list[$0] } }
            return .list(
                try elements.enumerated().map { index, element in
                    if case .null = element {
                        throw DocumentCodingError.unsupportedType(path: dotted() + "[\(index)]", "an array element cannot be null")
                    }
                    return try node(for: element, existing: index < existingElements.count ? existingElements[index] : nil, path: path + ["[\(index)]"])
                })
        case .object(let members):
            var nested: Document?
            if case .map(let document)? = existing { nested = document }
            var nodes = [String: FieldNode]()
            for (key, member) in members {
                if key == ListPosition.removedKey {
                    throw DocumentCodingError.unsupportedType(path: (path + [key]).joined(separator: "."), "the key \(key) is reserved")
                }
                nodes[key] = try node(for: member, existing: nested?[key], path: path + [key])
            }
            // A dictionary (it records removed keys) stays one.
            if let nested, !RemovedKeys.hidden(in: nested).isEmpty { return .dictionary(nodes) }
            return .map(nodes)
        }
    }
}

extension JSONValue {
    /// The scalar this value is, if it is one.
    var scalar: Scalar? {
        switch self {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .int(let value): return .int(value)
        case .double(let value): return .double(value)
        case .string(let value): return .string(value)
        case .array, .object: return nil
        }
    }

    var isObject: Bool {
        if case .object = self { return true }
        return false
    }
}
