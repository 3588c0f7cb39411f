import WeftCRDT

/// The channels a principal may read or write: every channel (`*`), or the listed ones.
///
/// A document is in the channels its collection's templates give it (``ServerChannels``); a
/// replica pulls the documents in channels it may read, and may write a document only where it
/// may write a channel of the document, before and after the change.
public enum ChannelGrant: Hashable, Sendable {
    /// Every document, whatever its channels (or if it has none): the wildcard `*`.
    case all
    /// The documents in at least one of these channels.
    case only(Set<String>)

    /// The name that stands for every channel.
    public static let wildcard = "*"

    /// The grant of `channels`: ``all`` if they hold the wildcard.
    public init(_ channels: some Sequence<String>) {
        let set = Set(channels)
        self = set.contains(Self.wildcard) ? .all : .only(set)
    }

    /// Whether a document in `channels` is covered: always for ``all``; otherwise if the
    /// document is in one of the granted channels.
    /// - Complexity: O(min(*m*, *n*)) set lookups.
    public func covers(_ channels: Set<String>) -> Bool {
        switch self {
        case .all: return true
        case .only(let granted):
            return granted.count < channels.count
                ? granted.contains(where: channels.contains) : channels.contains(where: granted.contains)
        }
    }

    /// The channels both grants cover.
    public func intersection(_ other: ChannelGrant) -> ChannelGrant {
        switch (self, other) {
        case (.all, _): return other
        case (_, .all): return self
        case (.only(let a), .only(let b)): return .only(a.intersection(b))
        }
    }

    /// The channels either grant covers.
    public func union(_ other: ChannelGrant) -> ChannelGrant {
        switch (self, other) {
        case (.all, _), (_, .all): return .all
        case (.only(let a), .only(let b)): return .only(a.union(b))
        }
    }

    /// The listed channels, or `nil` for ``all``.
    public var channels: Set<String>? {
        if case .only(let set) = self { set } else { nil }
    }
}

/// A channel name with at most one placeholder, `{path}`: `"user:{assignee}"`, `"site:{site}"`,
/// `"dispatch"`.
///
/// Applied to a JSON value (a document's projection, or a token's claims), the placeholder is
/// replaced by the value at the dotted `path`: a string as itself, an integer or boolean as its
/// JSON text, a double that is a whole number as an integer; an array gives one channel per
/// such element (a set field, a list of sites). Absent, null, objects and other doubles give
/// none. A template without a placeholder always gives itself.
public struct ChannelTemplate: Hashable, Sendable, CustomStringConvertible {
    /// The text before the placeholder (all of it, without one).
    public let prefix: String
    /// The placeholder's path components, or `nil` without a placeholder.
    public let path: [String]?
    /// The text after the placeholder.
    public let suffix: String

    /// The longest channel name, in UTF-8 bytes.
    public static let maximumNameBytes = 200

    /// The wildcard, `*`: every channel.
    public static let wildcard = ChannelTemplate(prefix: ChannelGrant.wildcard, path: nil, suffix: "")

    private init(prefix: String, path: [String]?, suffix: String) {
        self.prefix = prefix
        self.path = path
        self.suffix = suffix
    }

    /// Parses `text`; `nil` if it holds more than one placeholder, an unmatched brace, an empty
    /// path, or no character at all.
    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= Self.maximumNameBytes,
            !text.unicodeScalars.contains(where: { $0.value < 0x20 })
        else { return nil }
        guard let open = text.firstIndex(of: "{") else {
            guard !text.contains("}") else { return nil }
            prefix = text
            path = nil
            suffix = ""
            return
        }
        guard let close = text[open...].firstIndex(of: "}") else { return nil }
        let inner = text[text.index(after: open)..<close]
        let after = text[text.index(after: close)...]
        guard !text[..<open].contains("}"), !after.contains("{"), !after.contains("}") else { return nil }
        let components = inner.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !components.contains(where: \.isEmpty) else { return nil }
        prefix = String(text[..<open])
        path = components
        suffix = String(after)
    }

    public var description: String {
        guard let path else { return prefix }
        return prefix + "{" + path.joined(separator: ".") + "}" + suffix
    }

    /// The channels this template gives `value` (see the type's documentation), each at most
    /// ``maximumNameBytes`` long (longer ones are left out).
    /// - Complexity: O(*k* + *e*) for a path of *k* components reaching an array of *e* elements.
    public func channels(in value: JSONValue) -> [String] {
        guard let path else { return [prefix] }
        var current = value
        for component in path {
            guard case .object(let members) = current, let next = members[component] else { return [] }
            current = next
        }
        let names: [String]
        if case .array(let elements) = current {
            names = elements.compactMap(Self.text)
        } else {
            names = Self.text(of: current).map { [$0] } ?? []
        }
        return names.compactMap { name in
            let channel = prefix + name + suffix
            return channel.utf8.count <= Self.maximumNameBytes ? channel : nil
        }
    }

    /// A scalar's text in a channel name; `nil` for null, objects, arrays, empty strings and
    /// doubles that are not whole numbers.
    static func text(of value: JSONValue) -> String? {
        switch value {
        case .string(let string): string.isEmpty ? nil : string
        case .int(let integer): String(integer)
        case .bool(let flag): flag ? "true" : "false"
        case .double(let double):
            double.rounded() == double && abs(double) < 9.0e15 ? String(Int64(double)) : nil
        case .null, .array, .object: nil
        }
    }
}

/// `[server.channels]`: the channels each collection's documents are in, by templates over the
/// document's JSON projection. A collection the table does not name is in no channel: only
/// principals that may read every channel (`*`) see it.
public struct ServerChannels: Hashable, Sendable {
    /// The templates of each named collection.
    public var collections: [CollectionName: [ChannelTemplate]]

    /// The most channels one document is in; the rest of its templates' channels (in sorted
    /// order) are left out.
    public static let maximumPerDocument = 1_000

    /// Channels from `collections`.
    public init(_ collections: [CollectionName: [ChannelTemplate]] = [:]) {
        self.collections = collections
    }

    /// The channels of a live document of `collection` whose projection is `projection`.
    /// - Complexity: O(*t* + *c* log *c*) for *t* templates giving *c* channels.
    public func channels(of collection: CollectionName, projection: JSONValue) -> Set<String> {
        guard let templates = collections[collection] else { return [] }
        var result = Set<String>()
        for template in templates { result.formUnion(template.channels(in: projection)) }
        guard result.count > Self.maximumPerDocument else { return result }
        return Set(result.sorted().prefix(Self.maximumPerDocument))
    }
}

/// How a principal's claims become its channel grants: `read_channels` and `write_channels`,
/// templates over the claims (`"user:{sub}"`, `"site:{sites}"`, `"*"`). Static tokens list
/// channel names without placeholders.
public struct ChannelGrantTemplates: Hashable, Sendable {
    /// The channels a principal may read.
    public var read: [ChannelTemplate]
    /// The channels a principal may write.
    public var write: [ChannelTemplate]

    /// Every channel, for reading and writing: what a token without channel settings gets.
    public static let everything = ChannelGrantTemplates(read: [.wildcard], write: [.wildcard])

    /// Creates the templates.
    public init(read: [ChannelTemplate], write: [ChannelTemplate]) {
        self.read = read
        self.write = write
    }

    /// The grants for a principal with `claims`.
    public func grants(claims: [String: JSONValue]) -> (read: ChannelGrant, write: ChannelGrant) {
        let value = JSONValue.object(claims)
        return (
            ChannelGrant(read.flatMap { $0.channels(in: value) }),
            ChannelGrant(write.flatMap { $0.channels(in: value) })
        )
    }
}
