// The Codable bridge, reading: a document decoded as a value, recording the fields the value's
// type asks for.

// MARK: - Decoding

extension Document {
    /// Reads the document back as a `T`.
    ///
    /// - Throws: `DecodingError` when a field is missing or of another kind than `T` expects.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try T(from: DocumentDecoder(value: .map(self), codingPath: []))
    }
}

struct DocumentDecoder: Decoder {
    let value: DocumentValue?
    var codingPath: [any CodingKey]
    var recorder: KeyRecorder?
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: DocumentValue?, codingPath: [any CodingKey], recorder: KeyRecorder? = nil) {
        self.value = value
        self.codingPath = codingPath
        self.recorder = recorder
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .map(let document)? = value else {
            throw DecodingError.typeMismatch(
                Document.self, .init(codingPath: codingPath, debugDescription: "expected a nested document"))
        }
        return KeyedDecodingContainer(KeyedDocumentContainer<Key>(document: document, codingPath: codingPath, recorder: recorder))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .map(let document)? = value else {
            throw DecodingError.typeMismatch(
                [Any].self, .init(codingPath: codingPath, debugDescription: "expected a list (a nested document of positions)"))
        }
        return ListDocumentContainer(document: document, codingPath: codingPath, recorder: recorder)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleDocumentContainer(value: value, codingPath: codingPath, recorder: recorder)
    }

    static func decode<T: Decodable>(_ type: T.Type, from value: DocumentValue?, path: [any CodingKey], recorder: KeyRecorder?) throws -> T {
        if T.self == Counter.self {
            guard case .counter(let counter)? = value else { throw mismatch(T.self, path, "a counter") }
            return try cast(Counter(wrappedValue: counter), path)
        }
        if let setType = T.self as? any ScalarSetRepresentable.Type {
            guard case .set(let set)? = value else { throw mismatch(T.self, path, "a set") }
            guard let result = setType.init(scalarElements: set) else {
                throw mismatch(T.self, path, "set elements of the declared type")
            }
            return try cast(result, path)
        }
        if T.self == [UInt8].self {
            guard case .register(let register)? = value, case .bytes(let bytes) = register.value else {
                throw mismatch(T.self, path, "bytes")
            }
            return try cast(bytes, path)
        }
        return try T(from: DocumentDecoder(value: value, codingPath: path, recorder: recorder))
    }

    /// Casts a value built for `T.self`; the cast cannot fail, but a failure would throw, not trap.
    private static func cast<T>(_ value: Any, _ path: [any CodingKey]) throws -> T {
        guard let typed = value as? T else { throw mismatch(T.self, path, "\(T.self)") }
        return typed
    }

    static func mismatch(_ type: Any.Type, _ path: [any CodingKey], _ expected: String) -> DecodingError {
        .typeMismatch(type, .init(codingPath: path, debugDescription: "expected \(expected)"))
    }
}

struct KeyedDocumentContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let document: Document
    var codingPath: [any CodingKey]
    var recorder: KeyRecorder?
    /// The keys of a dictionary's removed entries, and its `~removed` set: not shown.
    let hidden: Set<String>
    var allKeys: [Key] { document.keys.filter { !hidden.contains($0) }.compactMap { Key(stringValue: $0) } }

    init(document: Document, codingPath: [any CodingKey], recorder: KeyRecorder?) {
        self.document = document
        self.codingPath = codingPath
        self.recorder = recorder
        self.hidden = RemovedKeys.hidden(in: document)
    }

    private func note(_ key: Key) { recorder?.record(codingPath + [key]) }

    /// The value of `key`, `nil` if absent or hidden.
    private func value(_ key: Key) -> DocumentValue? {
        hidden.contains(key.stringValue) ? nil : document[key.stringValue]
    }

    func contains(_ key: Key) -> Bool {
        note(key)
        return value(key) != nil
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        note(key)
        guard let value = value(key) else { return true }
        if case .register(let register) = value, register.value == .null { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        note(key)
        guard let value = value(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "field is absent"))
        }
        return try DocumentDecoder.decode(T.self, from: value, path: codingPath + [key], recorder: recorder)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        note(key)
        return try DocumentDecoder(value: value(key), codingPath: codingPath + [key], recorder: recorder)
            .container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        note(key)
        return try DocumentDecoder(value: value(key), codingPath: codingPath + [key], recorder: recorder).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { DocumentDecoder(value: .map(document), codingPath: codingPath, recorder: recorder) }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        note(key)
        return DocumentDecoder(value: value(key), codingPath: codingPath + [key], recorder: recorder)
    }
}

struct SingleDocumentContainer: SingleValueDecodingContainer {
    let value: DocumentValue?
    var codingPath: [any CodingKey]
    var recorder: KeyRecorder?

    private func scalar<T>(_ type: T.Type) throws -> Scalar {
        guard case .register(let register)? = value else {
            throw DocumentDecoder.mismatch(type, codingPath, "a scalar register")
        }
        return register.value
    }

    private func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        guard case .int(let raw) = try scalar(type) else { throw DocumentDecoder.mismatch(type, codingPath, "an integer") }
        guard let exact = T(exactly: raw) else {
            throw DecodingError.dataCorruptedError(in: self, debugDescription: "\(raw) does not fit \(T.self)")
        }
        return exact
    }

    func decodeNil() -> Bool {
        guard let value else { return true }
        if case .register(let register) = value, register.value == .null { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let value) = try scalar(type) else { throw DocumentDecoder.mismatch(type, codingPath, "a Bool") }
        return value
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let value) = try scalar(type) else { throw DocumentDecoder.mismatch(type, codingPath, "a String") }
        return value
    }

    func decode(_ type: Double.Type) throws -> Double {
        switch try scalar(type) {
        case .double(let value): return value
        case .int(let value): return Double(value)
        default: throw DocumentDecoder.mismatch(type, codingPath, "a number")
        }
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 {
        if case .counter(let counter)? = value { return counter }
        return try integer(type)
    }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try DocumentDecoder.decode(T.self, from: value, path: codingPath, recorder: recorder)
    }
}
