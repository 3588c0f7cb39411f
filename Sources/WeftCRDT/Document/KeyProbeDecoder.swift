// MARK: - Probing a type for its fields

/// A decoder that answers every question with a default and records the keys it is asked
/// for: the fields a `Decodable` type knows, found without a document that decodes as it.
/// A type whose `init(from:)` rejects the defaults stops the probe early; the keys asked for
/// until then are recorded.
struct KeyProbeDecoder: Decoder {
    var codingPath: [any CodingKey]
    let recorder: KeyRecorder
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// Recursive types would be probed for ever: stop at this depth.
    static let maximumDepth = 16

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard codingPath.count < Self.maximumDepth else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "probe depth"))
        }
        return KeyedDecodingContainer(Keyed<Key>(codingPath: codingPath, recorder: recorder))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(codingPath: codingPath) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(codingPath: codingPath, recorder: recorder) }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        var codingPath: [any CodingKey]
        let recorder: KeyRecorder
        var allKeys: [Key] { [] }
        private func note(_ key: Key) -> [any CodingKey] {
            recorder.record(codingPath + [key])
            return codingPath + [key]
        }
        func contains(_ key: Key) -> Bool {
            _ = note(key)
            return true
        }
        func decodeNil(forKey key: Key) throws -> Bool {
            _ = note(key)
            return false
        }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try T(from: KeyProbeDecoder(codingPath: note(key), recorder: recorder))
        }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try KeyProbeDecoder(codingPath: note(key), recorder: recorder).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { Unkeyed(codingPath: note(key)) }
        func superDecoder() throws -> any Decoder { KeyProbeDecoder(codingPath: codingPath, recorder: recorder) }
        func superDecoder(forKey key: Key) throws -> any Decoder { KeyProbeDecoder(codingPath: note(key), recorder: recorder) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        var codingPath: [any CodingKey]
        var count: Int? { 0 }
        var isAtEnd: Bool { true }
        var currentIndex: Int { 0 }
        private func end() -> DecodingError { .valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "probe")) }
        mutating func decodeNil() throws -> Bool { throw end() }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { throw end() }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            throw end()
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { throw end() }
        mutating func superDecoder() throws -> any Decoder { throw end() }
    }

    struct Single: SingleValueDecodingContainer {
        var codingPath: [any CodingKey]
        let recorder: KeyRecorder
        func decodeNil() -> Bool { false }
        func decode(_ type: Bool.Type) throws -> Bool { false }
        func decode(_ type: String.Type) throws -> String { "" }
        func decode(_ type: Double.Type) throws -> Double { 0 }
        func decode(_ type: Float.Type) throws -> Float { 0 }
        func decode(_ type: Int.Type) throws -> Int { 0 }
        func decode(_ type: Int8.Type) throws -> Int8 { 0 }
        func decode(_ type: Int16.Type) throws -> Int16 { 0 }
        func decode(_ type: Int32.Type) throws -> Int32 { 0 }
        func decode(_ type: Int64.Type) throws -> Int64 { 0 }
        func decode(_ type: UInt.Type) throws -> UInt { 0 }
        func decode(_ type: UInt8.Type) throws -> UInt8 { 0 }
        func decode(_ type: UInt16.Type) throws -> UInt16 { 0 }
        func decode(_ type: UInt32.Type) throws -> UInt32 { 0 }
        func decode(_ type: UInt64.Type) throws -> UInt64 { 0 }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: KeyProbeDecoder(codingPath: codingPath, recorder: recorder)) }
    }
}
