extension ORSet: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 7 }

    /// Layout: context; count; then for each element in the order of its first dot:
    /// element, dot count, dots (sorted).
    public func encode(to writer: inout BinaryWriter) {
        context.encode(to: &writer)
        let sorted = entries.sorted { lhs, rhs in
            // Dots are unique to one element, so first dots order the elements totally.
            lhs.value[0] < rhs.value[0]
        }
        writer.writeVarint(UInt64(sorted.count))
        for (element, dots) in sorted {
            element.encode(to: &writer)
            writer.writeVarint(UInt64(dots.count))
            for dot in dots { writer.writeDot(dot) }
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let context = try CausalContext(from: &reader)
        let count = try reader.readCount(minimumElementSize: 3)
        var entries = [Element: [Dot]](minimumCapacity: count)
        var seenDots = Set<Dot>()
        var previousFirst: Dot?
        for _ in 0..<count {
            let start = reader.offset
            let element = try Element(from: &reader)
            let dotCount = try reader.readCount(minimumElementSize: 2)
            guard dotCount > 0 else { throw .invariantViolation(at: start, "an element without dots") }
            var dots = [Dot]()
            dots.reserveCapacity(dotCount)
            for _ in 0..<dotCount {
                let dotStart = reader.offset
                let dot = try reader.readDot()
                if let last = dots.last, !(last < dot) { throw .nonCanonical(at: dotStart, "element dots out of order") }
                guard context.contains(dot) else { throw .invariantViolation(at: dotStart, "dot \(dot) missing from the context") }
                guard seenDots.insert(dot).inserted else { throw .invariantViolation(at: dotStart, "dot \(dot) on two elements") }
                dots.append(dot)
            }
            if let previousFirst, !(previousFirst < dots[0]) { throw .nonCanonical(at: start, "elements out of order") }
            previousFirst = dots[0]
            guard entries.updateValue(dots, forKey: element) == nil else {
                throw .invariantViolation(at: start, "element appears twice")
            }
        }
        self.init()
        self.entries = entries
        self.context = context
    }
}
