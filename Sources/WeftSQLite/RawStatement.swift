import GRDB
import GRDBSQLite
import Weft
import WeftCRDT

/// A GRDB-prepared statement driven through the SQLite C API, for the few statements every local
/// write, push and queue read runs.
///
/// GRDB's `execute(arguments:)` and `Row.fetchOne` box each argument and build a row object per
/// call; on a write of a few microseconds that was a third of the time. This wrapper binds the
/// arguments in place (the `borrowing` binds without a copy, valid only until the statement is
/// reset), steps, and reads columns by index, checking each column's storage class so a damaged
/// file gives ``Weft/WeftError/Kind/corrupt`` rather than a wrong value.
///
/// Use it only inside a GRDB write on the statement's database; ``run(_:)`` resets the statement
/// and clears its bindings afterwards, so no pointer outlives the call.
package struct RawStatement {
    /// Kept so the statement is not finalized while in use (an uncached one has no other owner).
    package let statement: Statement
    package let handle: OpaquePointer
    package let connection: OpaquePointer?

    package init(_ statement: Statement, in db: Database) {
        self.statement = statement
        handle = statement.sqliteStatement
        connection = db.sqliteConnection
    }

    /// Binds with `bind`, then runs `body` (which steps and reads), then resets the statement.
    package func run<T>(_ body: (inout Binder) throws -> T) throws -> T {
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        var binder = Binder(statement: self)
        return try body(&binder)
    }

    func error(_ code: Int32) -> DatabaseError {
        let message = connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
    }

    /// Binds arguments from index 1 on and steps; every pointer bound stays valid until the
    /// enclosing ``RawStatement/run(_:)`` returns because the binding closures nest around the
    /// step.
    package struct Binder {
        let statement: RawStatement
        var index: Int32 = 1

        package mutating func bind(_ value: Int64) throws {
            try check(sqlite3_bind_int64(statement.handle, index, value))
            index += 1
        }

        package mutating func bind(_ value: Bool) throws { try bind(Int64(value ? 1 : 0)) }

        /// Binds the UTF-8 of `text` (copied by SQLite, which is cheap for keys).
        package mutating func bind(_ text: String) throws {
            var text = text
            let code = text.withUTF8 { utf8 in
                sqlite3_bind_text(
                    statement.handle, index, utf8.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) },
                    Int32(utf8.count), Self.transient)
            }
            try check(code)
            index += 1
        }

        /// Binds UTF-8 `text` without a copy: it must stay alive and unchanged until the step
        /// (bind inside `String.withUTF8` around the step).
        package mutating func bind(borrowingText text: UnsafeBufferPointer<UInt8>) throws {
            // Zero-length text still needs a non-null pointer, or SQLite stores NULL.
            let base = UnsafeRawPointer(text.baseAddress) ?? UnsafeRawPointer(bitPattern: 1)
            try check(sqlite3_bind_text(statement.handle, index, base?.assumingMemoryBound(to: CChar.self), Int32(text.count), nil))
            index += 1
        }

        /// Binds `bytes` without a copy: `bytes` must stay alive and unchanged until the step.
        package mutating func bind(borrowing bytes: UnsafeRawBufferPointer) throws {
            // A zero-length blob still needs a non-null pointer, or SQLite stores NULL.
            let base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)
            try check(sqlite3_bind_blob(statement.handle, index, base, Int32(bytes.count), nil))
            index += 1
        }

        package mutating func bindNull() throws {
            try check(sqlite3_bind_null(statement.handle, index))
            index += 1
        }

        package mutating func bind(real value: Double) throws {
            try check(sqlite3_bind_double(statement.handle, index, value))
            index += 1
        }

        /// Binds a copy of `bytes` (SQLite copies them before this returns).
        package mutating func bind(copying bytes: UnsafeRawBufferPointer) throws {
            let base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)
            try check(sqlite3_bind_blob(statement.handle, index, base, Int32(bytes.count), Self.transient))
            index += 1
        }

        private func check(_ code: Int32) throws {
            guard code == SQLITE_OK else { throw statement.error(code) }
        }

        /// Steps once: `true` with a row to read, `false` when done.
        package func step() throws -> Bool {
            switch sqlite3_step(statement.handle) {
            case SQLITE_ROW: return true
            case SQLITE_DONE: return false
            case let code: throw statement.error(code)
            }
        }

        /// Steps a statement that returns no rows.
        package func execute() throws {
            while try step() {}
        }

        // MARK: Columns of the current row

        package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement.handle, column) == SQLITE_NULL }

        /// An integer column; any other storage class is corrupt.
        package func integer(_ column: Int32, _ what: @autoclosure () -> String) throws -> Int64 {
            guard sqlite3_column_type(statement.handle, column) == SQLITE_INTEGER else {
                throw WeftError.corrupt("\(what()) is not an integer")
            }
            return sqlite3_column_int64(statement.handle, column)
        }

        /// A text column, as UTF-8; any other storage class is corrupt.
        package func text(_ column: Int32, _ what: @autoclosure () -> String) throws -> String {
            guard sqlite3_column_type(statement.handle, column) == SQLITE_TEXT else {
                throw WeftError.corrupt("\(what()) is not text")
            }
            let count = Int(sqlite3_column_bytes(statement.handle, column))
            guard count > 0, let base = sqlite3_column_text(statement.handle, column) else { return "" }
            guard let text = String(validating: UnsafeBufferPointer(start: base, count: count), as: UTF8.self) else {
                throw WeftError.corrupt("\(what()) is not valid UTF-8")
            }
            return text
        }

        /// A blob column's bytes; any other storage class is corrupt.
        package func blob(_ column: Int32, _ what: @autoclosure () -> String) throws -> [UInt8] {
            guard sqlite3_column_type(statement.handle, column) == SQLITE_BLOB else {
                throw WeftError.corrupt("\(what()) is not a blob")
            }
            let count = Int(sqlite3_column_bytes(statement.handle, column))
            guard count > 0, let base = sqlite3_column_blob(statement.handle, column) else { return [] }
            return [UInt8](UnsafeRawBufferPointer(start: base, count: count))
        }

        /// SQLite's `SQLITE_TRANSIENT` (a macro Swift does not import): copy the bound value.
        static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    }
}
