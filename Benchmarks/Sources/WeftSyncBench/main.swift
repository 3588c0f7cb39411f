// weft-sync-bench: the sync figures of issue #4, measured in one run against a Standalone server
// (Hummingbird + SQLite central store) on loopback in this process. Prints one JSON object on
// stdout; progress goes to stderr.
//
// Usage: swift run -c release --package-path Benchmarks weft-sync-bench [options]
//
//   --changes N            queued changes replayed per pass (default 100000)
//   --batch-sizes A,B,..   push batch sizes (maximumBatchEntries) to try (default 100,500,2000,10000)
//   --repeats N            replay passes per batch size, each on fresh databases (default 3)
//   --memory-changes N     a larger queue replayed once for the memory figure (default 300000; 0 skips)
//   --write-chunk N        documents per replica.batch transaction when filling the queue (default 5000)
//   --replicas N           concurrent replicas in the load test (default 50)
//   --rounds N             rounds per replica in the load test (default 10)
//   --round-changes N      changes each replica writes per round (default 20); the load test runs
//                          twice: push and pull (syncOnce), then push only (pushAll)
//   --load-repeats N       passes of each load test, fresh databases each (default 3)
//   --skip PHASES          comma-separated phases to skip: postgres, scaleout, throttle, replay,
//                          wire, memory, load, bootstrap, large, tombstones, live, projection,
//                          channels
//   --bootstrap-documents N documents on the server in the bootstrap phase (default 10000)
//   --only PHASES          run only these phases
//   --channel-documents N  documents of the large database in the channels phase (default 1000000;
//                          1% of them the measured user's)
//   --pg-replicas N        replicas pushing at once in the PostgreSQL phases (default 20)
//   --pg-changes N         changes each of them pushes in the in-process phase (default 1000)
//   --pg-repeats N         passes of the PostgreSQL phases (default 3)
//   --scale-changes N      changes each replica pushes in the scale-out phase (default 2000)
//   --server-cpus LIST     scale-out: the CPU quota of each `weft serve` process, one run per
//                          entry; 0 is none (default 0,0.25,0.4; a quota needs Linux, root and
//                          the cgroup v1 cpu controller, and is skipped with a message without)
//   --weft PATH            the `weft` executable for the scale-out phase (default: beside this one)
//   --quick                a smoke run: 5000 changes, 2 batch sizes, 1 repeat, no memory pass,
//                          5 replicas x 3 rounds, 1 load pass

import Foundation
import Weft
import WeftPostgres
import WeftServer
import WeftSQLite

// MARK: - Arguments

var changes = 100_000
var batchSizes = [100, 500, 2_000, 10_000]
var repeats = 3
var memoryChanges = 300_000
var writeChunk = 5_000
var replicas = 50
var rounds = 10
var roundChanges = 20
var loadRepeats = 3
var skipped = Set<String>()
var throttleChanges = 60_000
var pgReplicas = 20
var pgChanges = 1_000
var pgRepeats = 3
var throttleRate = 150_000
var scaleChanges = 2_000
var bootstrapDocuments = 10_000
var serverCPUs: [Double] = [0, 0.25, 0.4]
var weftPath: String?
var only: Set<String>?
var channelDocuments = 1_000_000
let defaultBatchEntries = 500

func number(_ arguments: inout ArraySlice<String>, _ flag: String, minimum: Int) -> Int {
    guard let text = arguments.popFirst(), let value = Int(text.replacingOccurrences(of: "_", with: "")), value >= minimum
    else { fail("\(flag) needs a whole number >= \(minimum)") }
    return value
}

var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--changes": changes = number(&arguments, argument, minimum: 2)
    case "--repeats": repeats = number(&arguments, argument, minimum: 1)
    case "--memory-changes": memoryChanges = number(&arguments, argument, minimum: 0)
    case "--write-chunk": writeChunk = number(&arguments, argument, minimum: 1)
    case "--replicas": replicas = number(&arguments, argument, minimum: 1)
    case "--rounds": rounds = number(&arguments, argument, minimum: 1)
    case "--round-changes": roundChanges = number(&arguments, argument, minimum: 1)
    case "--load-repeats": loadRepeats = number(&arguments, argument, minimum: 1)
    case "--throttle-changes": throttleChanges = number(&arguments, argument, minimum: 1)
    case "--throttle-rate": throttleRate = number(&arguments, argument, minimum: 1)
    case "--pg-replicas": pgReplicas = number(&arguments, argument, minimum: 1)
    case "--pg-changes": pgChanges = number(&arguments, argument, minimum: 1)
    case "--pg-repeats": pgRepeats = number(&arguments, argument, minimum: 1)
    case "--batch-sizes":
        guard let text = arguments.popFirst() else { fail("--batch-sizes needs a list") }
        let sizes = text.split(separator: ",").compactMap { Int($0.replacingOccurrences(of: "_", with: "")) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 1 && $0 <= 10_000 }) else {
            fail("--batch-sizes needs numbers from 1 to 10000 (the server's max_changes_per_batch)")
        }
        batchSizes = sizes
    case "--scale-changes": scaleChanges = number(&arguments, argument, minimum: 1)
    case "--bootstrap-documents": bootstrapDocuments = number(&arguments, argument, minimum: 1)
    case "--server-cpus":
        guard let text = arguments.popFirst() else { fail("--server-cpus needs a list") }
        let values = text.split(separator: ",").compactMap { Double($0) }
        guard !values.isEmpty, values.count == text.split(separator: ",").count, values.allSatisfy({ $0 >= 0 && $0 <= 64 }) else {
            fail("--server-cpus needs numbers of cores from 0 (no quota) to 64, such as 0,0.5")
        }
        serverCPUs = values
    case "--weft":
        guard let text = arguments.popFirst() else { fail("--weft needs a path") }
        weftPath = text
    case "--channel-documents":
        guard let text = arguments.popFirst(), let value = Int(text), value >= 100 else { fail("--channel-documents needs a number of at least 100") }
        channelDocuments = value
    case "--only":
        guard let text = arguments.popFirst() else { fail("--only needs a list") }
        only = Set(text.split(separator: ",").map(String.init))
    case "--skip":
        guard let text = arguments.popFirst() else { fail("--skip needs a list") }
        skipped.formUnion(text.split(separator: ",").map(String.init))
    case "--quick":
        changes = 5_000
        batchSizes = [100, 500]
        repeats = 1
        memoryChanges = 0
        replicas = 5
        rounds = 3
        roundChanges = 10
        loadRepeats = 1
        throttleChanges = 5_000
    case "-h", "--help":
        print(
            "usage: weft-sync-bench [--changes N] [--batch-sizes A,B,..] [--repeats N] [--memory-changes N] "
                + "[--write-chunk N] [--replicas N] [--rounds N] [--round-changes N] [--load-repeats N] "
                + "[--skip|--only postgres,scaleout,throttle,replay,wire,memory,load,bootstrap,large,tombstones,live,projection,channels] [--channel-documents N] [--bootstrap-documents N] [--throttle-changes N] [--throttle-rate BYTES] "
                + "[--pg-replicas N] [--pg-changes N] [--pg-repeats N] [--scale-changes N] [--server-cpus 0,0.5] [--weft PATH] [--quick]")
        exit(0)
    default: fail("unknown argument \(argument)")
    }
}

if let only {
    skipped.formUnion(
        Set([
            "postgres", "scaleout", "throttle", "replay", "wire", "memory", "load", "bootstrap", "large", "tombstones", "live", "projection",
            "channels",
        ])
            .subtracting(only))
}

// MARK: - Run

var output: [String: Any] = [
    "command": (["weft-sync-bench"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
    "environment": [
        "processors": ProcessInfo.processInfo.activeProcessorCount,
        "os": ProcessInfo.processInfo.operatingSystemVersionString,
        "transport": "HTTP/1.1 on loopback (AsyncHTTPClient -> Hummingbird), central store SQLite (WAL, synchronous=FULL)",
        "replica": "SQLite (WAL, synchronous=NORMAL)",
        "document": "5 registers: title (string), status (string), priority (int), hours (double), billable (bool)",
    ] as [String: Any],
]
var targets: [String: Any] = [:]

do {
    // B. Bootstrap and storage against history: documents with 1, 10 and 100 versions each,
    // each beside the same final documents written once (no history); a new replica's first
    // sync from each, and the central stores' sizes.
    if !skipped.contains("bootstrap") {
        var passes = [[String: Any]]()
        for versions in [1, 10, 100] {
            log("bootstrap: \(bootstrapDocuments) documents x \(versions) versions, and the same documents without history")
            let (history, plain) = try await runBootstrap(documents: bootstrapDocuments, versions: versions, repeats: 5)
            for pass in [history, plain] {
                log(
                    "  \(pass.versions) version(s): \(rounded(pass.seconds, 3)) s, \(pass.pulledBytes) bytes pulled; store \(pass.storeBytesInUse) "
                        + "bytes in use for \(pass.liveRecordBytes) bytes of live records, \(pass.logEntries) log entries")
            }
            let time = history.seconds / plain.seconds
            let bytes = Double(history.pulledBytes) / Double(plain.pulledBytes)
            passes.append(["history": history.json, "no_history": plain.json, "time_ratio": rounded(time, 3), "bytes_ratio": rounded(bytes, 3)])
            if versions == 10 {
                targets["bootstrap_time_10_versions_over_no_history"] = target(time, "<=", 1.3, "(ratio)")
                targets["bootstrap_bytes_10_versions_over_no_history"] = target(bytes, "<=", 1.3, "(ratio)")
            }
            targets["store_bytes_over_live_records_\(versions)_versions"] = target(
                Double(history.storeBytesInUse) / Double(max(1, history.liveRecordBytes)), "<=", 2, "(ratio)")
        }
        output["bootstrap"] = [
            "passes": passes,
            "note": "SQLite central stores; bytes in use = (page_count - freelist_count) x page_size after a checkpoint; bootstrap = a new "
                + "SQLite replica's first pullAll over HTTP on loopback, median of 5 alternating runs per store, then one more counting framed page bytes",
        ] as [String: Any]
    }

    // T. Forgotten tombstones: a new replica's first sync from a server holding half its
    // documents as tombstones, before and after it forgets them, and from one holding only the
    // live half.
    if !skipped.contains("tombstones") {
        log("tombstones: \(bootstrapDocuments) documents, every other one deleted")
        let passes = try await runTombstones(documents: bootstrapDocuments, repeats: 5)
        for pass in passes {
            log(
                "  \(pass.label): \(pass.documents) stored, bootstrap \(rounded(pass.seconds, 3)) s, \(pass.pulledChanges) changes, "
                    + "\(pass.pulledBytes) bytes; store \(pass.storeBytesInUse) bytes in use")
        }
        output["tombstones"] = [
            "passes": passes.map(\.json),
            "forgotten_over_live_only_time": rounded(passes[1].seconds / passes[2].seconds, 3),
            "forgotten_over_live_only_bytes": rounded(Double(passes[1].pulledBytes) / Double(max(1, passes[2].pulledBytes)), 3),
            "kept_over_live_only_bytes": rounded(Double(passes[0].pulledBytes) / Double(max(1, passes[2].pulledBytes)), 3),
            "note": "SQLite central stores over HTTP on loopback; bootstrap = a new SQLite replica's first pullAll, median of 5 alternating runs, "
                + "then one more counting framed page bytes",
        ] as [String: Any]
    }

    // L. Live sync: a pushed change on another replica, with live pulls and with the interval alone.
    if !skipped.contains("live") {
        log("live sync: 30 changes to a reader on write-behind every 5 s with live pulls (AsyncHTTPClient, then URLSession), 10 to one every 1 s without")
        let live = try await runLiveSync(samples: 30, intervalMilliseconds: 5_000, live: true)
        let liveURLSession = try await runLiveSync(samples: 30, intervalMilliseconds: 5_000, live: true, urlSession: true)
        let intervalOnly = try await runLiveSync(samples: 10, intervalMilliseconds: 1_000, live: false)
        output["live_sync"] = [
            "live": live.json, "live_urlsession": liveURLSession.json, "interval_only": intervalOnly.json,
            "note": "from just before the writer's syncOnce to the reader's publication of the pulled change; HTTP on loopback, SQLite central store",
        ] as [String: Any]
        if let p50 = live.json["p50_ms"] as? Double {
            targets["live_sync_p50_ms"] = target(p50, "<=", 100, "ms")
        }
        if let p50 = liveURLSession.json["p50_ms"] as? Double {
            targets["live_sync_urlsession_p50_ms"] = target(p50, "<=", 100, "ms")
        }
    }

    // D. One field of a large document: wire bytes of the push and the pull, and the local edit.
    if !skipped.contains("large") {
        var passes = [Int: LargeDocumentPass]()
        for fields in [1_000, 100_000] {
            log("large document: \(fields) fields, one field edited")
            let pass = try await runLargeDocument(fields: fields, repeats: 5)
            log("  edit \(rounded(pass.editMilliseconds, 3)) ms (first \(rounded(pass.firstEditMilliseconds, 3)), mean \(rounded(pass.meanEditMilliseconds, 3))), pushed \(pass.pushedBytes) bytes, pulled \(pass.pulledBytes) bytes")
            passes[fields] = pass
        }
        output["large_document"] = [
            "passes": [1_000, 100_000].compactMap { passes[$0]?.json },
            "note": "SQLite replicas and store over HTTP on loopback; bytes are framed (zstd when smaller); edit = best of 5 local updates of one field (first and mean beside it)",
        ] as [String: Any]
        if let small = passes[1_000], let large = passes[100_000] {
            targets["large_document_pulled_bytes_one_field"] = target(Double(large.pulledBytes), "<=", 2_048, "bytes")
            targets["large_document_pushed_bytes_one_field"] = target(Double(large.pushedBytes), "<=", 2_048, "bytes")
            targets["large_document_edit_100k_over_1k"] = target(large.editMilliseconds / small.editMilliseconds, "<=", 5, "(ratio)")
        }
    }

    // P. PostgreSQL: push throughput against the SQLite store, and from one server to two.
    if !skipped.contains("postgres") {
        if let text = ProcessInfo.processInfo.environment["WEFT_POSTGRES_URL"], let base = URL(string: text) {
            var runs = [[String: Any]]()
            var ratios = (vsSQLite: [Double](), scaling: [Double]())
            for pass in 1...pgRepeats {
                log("postgres: pass \(pass)/\(pgRepeats): \(pgReplicas) replicas x \(pgChanges) changes")
                let scratch = try Scratch()
                let sqlite = try await runStorePush(
                    stores: [try SQLiteCentralStore(path: scratch.file("central.sqlite"))], tenant: "sqlite\(pass)", replicas: pgReplicas,
                    changes: pgChanges)
                scratch.remove()
                let run = "\(UInt32.random(in: 0...UInt32.max))"
                let one = try await PostgresCentralStore(url: base)
                let single = try await runStorePush(stores: [one], tenant: "one\(run)", replicas: pgReplicas, changes: pgChanges)
                let twoA = try await PostgresCentralStore(url: base)
                let twoB = try await PostgresCentralStore(url: base)
                let double = try await runStorePush(stores: [twoA, twoB], tenant: "two\(run)", replicas: pgReplicas, changes: pgChanges)
                for store in [one, twoA, twoB] { await store.shutdown() }
                log("  sqlite \(sqlite.changesPerSecond)/s, postgres x1 \(single.changesPerSecond)/s, x2 \(double.changesPerSecond)/s")
                let busy = [sqlite.cpuBusy, single.cpuBusy, double.cpuBusy].map { $0.map { "\(Int(($0 * 100).rounded()))%" } ?? "?" }
                log("  machine CPU busy: sqlite \(busy[0]), postgres x1 \(busy[1]), x2 \(busy[2])")
                ratios.vsSQLite.append(Double(single.changesPerSecond) / Double(sqlite.changesPerSecond))
                ratios.scaling.append(Double(double.changesPerSecond) / Double(single.changesPerSecond))
                runs.append([
                    "sqlite_changes_per_second": sqlite.changesPerSecond, "postgres_one_instance_changes_per_second": single.changesPerSecond,
                    "postgres_two_instances_changes_per_second": double.changesPerSecond,
                    "machine_cpu_busy": [
                        "sqlite": sqlite.cpuBusy.map { rounded($0, 3) as Any } ?? NSNull(),
                        "postgres_one_instance": single.cpuBusy.map { rounded($0, 3) as Any } ?? NSNull(),
                        "postgres_two_instances": double.cpuBusy.map { rounded($0, 3) as Any } ?? NSNull(),
                    ] as [String: Any],
                ])
            }
            let scaling = median(ratios.scaling)
            output["postgres"] = [
                "replicas": pgReplicas, "changes_per_replica": pgChanges, "passes": runs,
                "postgres_over_sqlite_median": rounded(median(ratios.vsSQLite), 3), "two_over_one_instance_median": rounded(scaling, 3),
                "note": "all servers, replicas and PostgreSQL share this machine's cores",
            ] as [String: Any]
            targets["postgres_two_in_process_servers_over_one"] = [
                "value": rounded(scaling, 3), "target": ">= 1.6", "met": scaling >= 1.6,
                "measures": "push throughput with two servers inside this process (sharing its threads with the replicas) "
                    + "on one PostgreSQL over one; the scale-out phase runs them as `weft serve` processes",
            ] as [String: Any]
        } else {
            log("postgres: skipped, WEFT_POSTGRES_URL is not set (run under scripts/with-postgres.sh)")
        }
    }

    // J. The JSON projection's cost: push throughput of each store with the projection kept and
    // without it (the store then writes rows as an older build did), in alternating order.
    if !skipped.contains("projection") {
        let postgresURL = ProcessInfo.processInfo.environment["WEFT_POSTGRES_URL"].flatMap(URL.init(string:))
        if postgresURL == nil { log("projection: PostgreSQL left out, WEFT_POSTGRES_URL is not set (run under scripts/with-postgres.sh)") }
        var figures = [String: Any]()
        for kind in ["sqlite", "postgres"] where kind == "sqlite" || postgresURL != nil {
            var ratios = [Double]()
            var runs = [[String: Any]]()
            for pass in 1...pgRepeats {
                var rates = [Bool: Int]()
                for keeps in pass % 2 == 1 ? [true, false] : [false, true] {
                    let scratch = try Scratch()
                    let store: any CentralStore
                    if kind == "sqlite" {
                        store = try SQLiteCentralStore(path: scratch.file("central.sqlite"))
                    } else {
                        store = try await PostgresCentralStore(url: postgresURL!)
                    }
                    let tenant = "projection\(UInt32.random(in: 0...UInt32.max))"
                    let result = try await runStorePush(
                        stores: [store], tenant: tenant, replicas: pgReplicas, changes: pgChanges, keepsProjection: keeps)
                    if let postgres = store as? PostgresCentralStore { await postgres.shutdown() }
                    scratch.remove()
                    rates[keeps] = result.changesPerSecond
                }
                let with = rates[true] ?? 0
                let without = rates[false] ?? 1
                log("projection: \(kind) pass \(pass)/\(pgRepeats): \(with)/s with the projection, \(without)/s without")
                ratios.append(Double(with) / Double(max(1, without)))
                runs.append(["with_projection_changes_per_second": with, "without_projection_changes_per_second": without])
            }
            let ratio = median(ratios)
            figures[kind] = ["passes": runs, "with_over_without_median": rounded(ratio, 3)] as [String: Any]
            targets["projection_push_throughput_\(kind)"] = target(ratio, ">=", 0.8, "(ratio)")
        }
        output["projection"] = figures.merging([
            "replicas": pgReplicas, "changes_per_replica": pgChanges,
            "note": "push throughput of work orders (5 scalar fields) over HTTP on loopback, LWW, one server; with the doc/deleted columns written in the push's transaction vs without",
        ]) { a, _ in a }
    }

    // K. Channels: a user with access to 1% of a large database pulls what it may see, beside a
    // database holding only its documents; SQLite, and PostgreSQL with the pulls through a
    // second server (store object) over the one that loaded.
    if !skipped.contains("channels") {
        let postgresURL = ProcessInfo.processInfo.environment["WEFT_POSTGRES_URL"].flatMap(URL.init(string:))
        if postgresURL == nil { log("channels: PostgreSQL left out, WEFT_POSTGRES_URL is not set (run under scripts/with-postgres.sh)") }
        var figures = [String: Any]()
        for kind in ["sqlite", "postgres"] where kind == "sqlite" || postgresURL != nil {
            let scratch = try Scratch()
            let loader: any CentralStore
            let reader: any CentralStore
            if kind == "sqlite" {
                let store = try SQLiteCentralStore(path: scratch.file("central.sqlite"))
                (loader, reader) = (store, store)
            } else if let postgresURL {
                (loader, reader) = (try await PostgresCentralStore(url: postgresURL), try await PostgresCentralStore(url: postgresURL))
            } else {
                continue
            }
            let result = try await runChannelPulls(
                label: kind, loader: loader, reader: reader, documents: channelDocuments, share: 100, repeats: max(3, pgRepeats))
            for store in [loader, reader] { if let postgres = store as? PostgresCentralStore { await postgres.shutdown() } }
            scratch.remove()
            figures[kind] = result.json
            targets["channels_one_percent_pull_\(kind)"] = target(result.ratio, "<=", 2, "(ratio)")
        }
        output["channels"] = figures.merging([
            "note": "a first pull (from 0, in-process SyncService pages of 1,000) of everything a user reading only its own channel may see: 1% of the large database's work orders, vs a database holding only those; PostgreSQL loads through one store object and pulls through another",
        ]) { a, _ in a }
    }

    // S. Scale-out: 1 and 2 `weft serve` processes on one PostgreSQL, each optionally held to a
    // CPU quota, in alternating order pass by pass.
    if !skipped.contains("scaleout") {
        if let text = ProcessInfo.processInfo.environment["WEFT_POSTGRES_URL"], let base = URL(string: text) {
            let executable = try weftExecutable(weftPath)
            var settings = [[String: Any]]()
            for cores in serverCPUs {
                let quota = cores > 0 ? cores : nil
                if quota != nil, let reason = CPUQuotaGroup.unavailable {
                    log("scale-out: skipping the \(cores)-core quota: \(reason)")
                    continue
                }
                let label = quota.map { "each server held to \($0) cores" } ?? "no CPU quota"
                var passes = [[String: Any]]()
                var ratios = [Double]()
                for pass in 1...pgRepeats {
                    log("scale-out (\(label)): pass \(pass)/\(pgRepeats): \(pgReplicas) replicas x \(scaleChanges) changes")
                    var results = [Int: ScaleOutPass]()
                    for count in pass % 2 == 1 ? [1, 2] : [2, 1] {
                        let result = try await runScaleOutPush(
                            executable: executable, postgres: base, servers: count, cores: quota, replicas: pgReplicas, changes: scaleChanges)
                        results[count] = result
                        log(
                            "  \(count) server(s): \(result.changesPerSecond)/s; cores used: servers \(rounded(result.serverCPU / result.seconds)), "
                                + "postgres \(rounded(result.postgresCPU / result.seconds)), replicas \(rounded(result.replicasCPU / result.seconds)); "
                                + "throttled \(rounded(result.throttledSeconds)) s")
                    }
                    guard let one = results[1], let two = results[2] else { continue }
                    ratios.append(Double(two.changesPerSecond) / Double(one.changesPerSecond))
                    passes.append(["one_server": one.json, "two_servers": two.json, "two_over_one": rounded(ratios.last ?? 0, 3)])
                }
                settings.append([
                    "server_cpu_quota_cores": quota.map { $0 as Any } ?? NSNull(), "passes": passes,
                    "two_over_one_median": rounded(median(ratios), 3),
                ])
                let key = quota.map { "scale_out_two_servers_over_one_quota_\($0)_cores" } ?? "scale_out_two_servers_over_one_no_quota"
                targets[key] = [
                    "value": rounded(median(ratios), 3), "target": ">= 1.6", "met": median(ratios) >= 1.6,
                    "measures": "push throughput through two `weft serve` processes on one PostgreSQL over one (\(label))",
                ] as [String: Any]
            }
            output["scale_out"] = [
                "replicas": pgReplicas, "changes_per_replica": scaleChanges, "batch_entries": 100, "settings": settings,
                "note": "servers are `weft serve` child processes; PostgreSQL, the servers and the replicas share this machine's cores",
            ] as [String: Any]
        } else {
            log("scale-out: skipped, WEFT_POSTGRES_URL is not set (run under scripts/with-postgres.sh)")
        }
    }

    // 0. Throttle: a replay of about 10 seconds under a bandwidth limit, with the real clock.
    if !skipped.contains("throttle") {
        log("throttle: \(throttleChanges) changes at \(throttleRate) bytes/s")
        let result = try await runThrottledReplay(changes: throttleChanges, bytesPerSecond: throttleRate, burstBytes: 16_384)
        output["throttle"] = result
        let ratio = result["measured_over_limit"] as? Double ?? 0
        targets["throttle_rate_within_10_percent"] = [
            "value": ratio, "target": "0.9 ... 1.1 of the limit", "met": ratio >= 0.9 && ratio <= 1.1,
            "measures": "framed bytes sent over the replay's wall time, divided by bandwidth_bytes_per_second",
        ] as [String: Any]
        log("  \(result["measured_bytes_per_second"] ?? "?") bytes/s over \(result["seconds"] ?? "?") s (ratio \(ratio))")
    }

    // 1. Replay: the same queue at several batch sizes, fresh databases each pass. The first pass
    // (the default batch size) also gives the memory figure for --changes.
    if !skipped.contains("replay") {
        var sizes = batchSizes
        if let index = sizes.firstIndex(of: defaultBatchEntries) { sizes.swapAt(0, index) }
        var perSize = [[String: Any]]()
        var firstPass: [String: Any]?
        var best = 0
        for size in sizes {
            var passes = [[String: Any]]()
            for pass in 1...repeats {
                log("replay: \(changes) changes, batch \(size), pass \(pass)/\(repeats)")
                let result = try await runReplay(
                    ReplayOptions(changes: changes, batchEntries: size, writeChunk: writeChunk, countWire: false))
                log("  \(result["changes_per_second"] ?? "?") changes/s, peak \((result["memory"] as? [String: Any])?["peak_mb"] ?? "?") MB")
                if firstPass == nil { firstPass = result }
                passes.append(result)
            }
            let rates = passes.compactMap { $0["changes_per_second"] as? Int }
            let rate = Int(median(rates.map(Double.init)))
            best = max(best, rate)
            let medianPass = passes.min { abs(($0["changes_per_second"] as? Int ?? 0) - rate) < abs(($1["changes_per_second"] as? Int ?? 0) - rate) }!
            perSize.append([
                "batch_max_entries": size,
                "median_changes_per_second": rate,
                "rates": rates,
                "median_pass": medianPass,
            ])
        }
        perSize.sort { ($0["batch_max_entries"] as! Int) < ($1["batch_max_entries"] as! Int) }
        let defaultRate = perSize.first { $0["batch_max_entries"] as? Int == defaultBatchEntries }?["median_changes_per_second"] as? Int
        output["replay"] = [
            "changes": changes,
            "repeats": repeats,
            "batch_sizes": perSize,
            "engine_default_batch_entries": defaultBatchEntries,
            "batch_limits_settable": "yes: SyncEngine.setBatchLimits(entries:bytes:)",
        ] as [String: Any]
        targets["replay_changes_per_second_default_batch"] = target(Double(defaultRate ?? 0), ">=", 50_000, "changes/s")
        targets["replay_changes_per_second_best_batch"] = target(Double(best), ">=", 50_000, "changes/s")
        if let firstPass, let memory = firstPass["memory"] as? [String: Any], let peak = memory["peak_mb"] as? Double {
            output["memory_\(changes)"] = ["changes": changes, "batch_max_entries": firstPass["batch_max_entries"] ?? 0]
                .merging(memory) { a, _ in a }
            targets["replay_peak_memory_mb_\(changes)"] = target(peak, "<", 100, "MB")
        }
    }

    // 2. Wire size: one more pass at the default batch size, tallying every push request.
    if !skipped.contains("wire") {
        log("wire: \(changes) changes, default batch, counting bytes")
        let result = try await runReplay(ReplayOptions(changes: changes, batchEntries: nil, writeChunk: writeChunk, countWire: true))
        if let wire = result["wire"] as? [String: Any] {
            output["wire"] = wire
            if let ratio = wire["framed_over_json_per_change"] as? Double {
                targets["wire_framed_over_json_per_change"] = target(ratio, "<=", 0.25, "(ratio)")
            }
            if let ratio = wire["framed_over_json_batched"] as? Double {
                targets["wire_framed_over_json_batched"] = target(ratio, "<=", 0.25, "(ratio)")
            }
        }
    }

    // 3. Memory with a larger queue.
    if !skipped.contains("memory") && memoryChanges > 0 {
        log("memory: \(memoryChanges) changes, default batch")
        let result = try await runReplay(
            ReplayOptions(changes: memoryChanges, batchEntries: nil, writeChunk: writeChunk, countWire: false))
        if let memory = result["memory"] as? [String: Any], let peak = memory["peak_mb"] as? Double {
            var entry = memory
            entry["changes"] = memoryChanges
            entry["changes_per_second"] = result["changes_per_second"]
            entry["replay_seconds"] = result["replay_seconds"]
            output["memory_\(memoryChanges)"] = entry
            targets["replay_peak_memory_mb_\(memoryChanges)"] = target(peak, "<", 100, "MB")
        }
    }

    // 4. Server under load: push and pull, then push only; each `loadRepeats` times on fresh
    // databases, reporting the pass with the median total throughput and every pass's figures.
    if !skipped.contains("load") {
        for pull in [true, false] {
            var passes = [[String: Any]]()
            for pass in 1...loadRepeats {
                log("load (\(pull ? "push and pull" : "push only")): \(replicas) replicas x \(rounds) rounds x \(roundChanges) changes, pass \(pass)/\(loadRepeats)")
                let result = try await runLoad(
                    LoadOptions(replicas: replicas, rounds: rounds, changesPerRound: roundChanges, sharedDocuments: 5, pull: pull))
                log("  \(result["total_changes_per_second"] ?? "?") changes/s, push p99 \((result["push_latency"] as? [String: Any])?["p99_ms"] ?? "?") ms")
                passes.append(result)
            }
            func total(_ pass: [String: Any]) -> Int { pass["total_changes_per_second"] as? Int ?? 0 }
            func p99(_ pass: [String: Any]) -> Double { (pass["push_latency"] as? [String: Any])?["p99_ms"] as? Double ?? .nan }
            let ordered = passes.sorted { total($0) < total($1) }
            var entry = ordered[ordered.count / 2]
            entry["all_passes"] = passes.map { ["total_changes_per_second": total($0), "push_p99_ms": p99($0)] as [String: Any] }
            entry["median_push_p99_ms"] = rounded(median(passes.map(p99)), 3)
            output[pull ? "load" : "load_push_only"] = entry
        }
    }
} catch {
    fail("failed: \(error)")
}

output["targets"] = targets
let data = try JSONSerialization.data(withJSONObject: output, options: [.prettyPrinted, .sortedKeys])
print(String(decoding: data, as: UTF8.self))
