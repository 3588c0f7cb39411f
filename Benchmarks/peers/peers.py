#!/usr/bin/env python3
"""Peer CRDT benchmarks (pycrdt / Yrs and loro) for side-by-side comparison with Weft.

Prints exactly one JSON object on stdout; progress goes to stderr.

Workloads
---------
b3       N independent replicas (distinct client/peer ids) each concurrently set
         root map "m", key "k" to their index i. Each replica's full update is
         encoded; one fresh receiving replica then decodes and applies all N
         updates. Only the decode+apply loop on the receiver is timed.
map100k  Replica A sets K keys "k0".."k{K-1}" = i in root map "m" (one
         transaction); replica B concurrently sets the same keys = i+1 (different
         peer id). Timed separately: A encoding its full update, and B decoding
         and merging A's update.

Each library's object also carries an "extra" dict with diagnostics that are
not comparison keys (update format used, winning value, and for loro the
LoroDoc.import_batch timing of the b3 updates).

Every reported time is the minimum wall time (time.perf_counter) over --repeats
runs, in milliseconds. The garbage collector is paused inside timed regions.

Usage:
    python3 Benchmarks/peers/peers.py [--repeats N] [--quick]
"""

import argparse
import gc
import json
import random
import sys
import time
from importlib import metadata

FULL_REPLICAS = 1540
FULL_KEYS = 100_000
MAP_NAME = "m"

# Client ids as real clients draw them: random (Yjs and Loro both pick a random id per
# client), not 1, 2, 3, which encode in one byte. Below 2^53 so every binding takes them;
# seeded, so every run uses the same ones.
_IDS = random.Random(0x3A9)


def random_ids(n):
    seen = set()
    out = []
    while len(out) < n:
        i = _IDS.randrange(1, 2 ** 53)
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


RECEIVER_ID, RECEIVER_ID_2, RECEIVER_ID_3, MAP_A_ID, MAP_B_ID = random_ids(5)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def timed(fn):
    """Run fn() once with the GC paused; return (elapsed_ms, result)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed * 1000.0, result


# --------------------------------------------------------------------------
# pycrdt (Yrs)
# --------------------------------------------------------------------------

class PycrdtAdapter:
    name = "pycrdt"
    update_format = "Doc.get_update() (Yjs update v1 from empty state)"

    def __init__(self):
        import pycrdt
        self.pc = pycrdt

    def new_doc(self, client_id):
        doc = self.pc.Doc(client_id=client_id)
        root = doc.get(MAP_NAME, type=self.pc.Map)
        return doc, root

    def single_key_update(self, client_id, value):
        doc, root = self.new_doc(client_id)
        root["k"] = value
        return doc.get_update()

    def build_map(self, client_id, n_keys, offset):
        doc, root = self.new_doc(client_id)
        with doc.transaction():
            for i in range(n_keys):
                root["k%d" % i] = i + offset
        return doc, root

    def encode_full(self, doc):
        return doc.get_update()

    def apply_all(self, doc, updates):
        for u in updates:
            doc.apply_update(u)

    def apply_one(self, doc, update):
        doc.apply_update(update)

    def map_keys(self, doc, root):
        return list(root.keys())

    def map_get(self, doc, root, key):
        return root[key]

    def map_len(self, doc, root):
        return len(root)


# --------------------------------------------------------------------------
# loro
# --------------------------------------------------------------------------

class LoroAdapter:
    name = "loro"
    update_format = "LoroDoc.export(ExportMode.Updates(from_=VersionVector()))"

    def __init__(self):
        import loro
        self.loro = loro

    def _updates_mode(self):
        return self.loro.ExportMode.Updates(from_=self.loro.VersionVector())

    def new_doc(self, client_id):
        doc = self.loro.LoroDoc()
        doc.peer_id = client_id  # the Python binding exposes peer_id as a settable attribute
        root = doc.get_map(MAP_NAME)
        return doc, root

    def single_key_update(self, client_id, value):
        doc, root = self.new_doc(client_id)
        root.insert("k", value)
        doc.commit()
        return doc.export(self._updates_mode())

    def build_map(self, client_id, n_keys, offset):
        doc, root = self.new_doc(client_id)
        for i in range(n_keys):
            root.insert("k%d" % i, i + offset)
        doc.commit()  # everything above lands in a single transaction/change
        return doc, root

    def encode_full(self, doc):
        return doc.export(self._updates_mode())

    def apply_all(self, doc, updates):
        for u in updates:
            doc.import_(u)

    def apply_one(self, doc, update):
        doc.import_(update)

    def apply_batch(self, doc, updates):
        doc.import_batch(updates)

    def map_keys(self, doc, root):
        return list(root.keys())

    def map_get(self, doc, root, key):
        v = root.get(key)
        if v is None:
            return None
        return v.value  # ValueOrContainer_Value wrapper

    def map_len(self, doc, root):
        return len(root)


# --------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------

def bench_b3(lib, n_replicas, repeats):
    log("[%s] b3: encoding %d replica updates" % (lib.name, n_replicas))
    # Random writer ids, distinct from the receivers'; each writes its own index.
    writers = [i for i in random_ids(n_replicas + 3) if i not in (RECEIVER_ID, RECEIVER_ID_2, RECEIVER_ID_3)][:n_replicas]
    updates = [lib.single_key_update(writers[i], i) for i in range(n_replicas)]
    total_bytes = sum(len(u) for u in updates)

    best = None
    final_value = None
    for r in range(repeats):
        doc, root = lib.new_doc(RECEIVER_ID)
        ms, _ = timed(lambda: lib.apply_all(doc, updates))
        keys = lib.map_keys(doc, root)
        assert keys == ["k"], "%s b3: receiver has keys %r, expected exactly ['k']" % (lib.name, keys[:5])
        value = lib.map_get(doc, root, "k")
        assert value is not None, "%s b3: no value for k" % lib.name
        assert int(value) == value and 0 <= value < n_replicas, \
            "%s b3: unexpected value %r for k" % (lib.name, value)
        if final_value is None:
            final_value = value
        assert value == final_value, "%s b3: value differs between repeats" % lib.name
        best = ms if best is None else min(best, ms)
        log("[%s] b3: run %d/%d merge %.2f ms (k=%r)" % (lib.name, r + 1, repeats, ms, value))
        del doc, root

    # Convergence check (untimed): a second receiver applying the updates in
    # reverse order must settle on the same single value.
    doc2, root2 = lib.new_doc(RECEIVER_ID_2)
    lib.apply_all(doc2, list(reversed(updates)))
    assert lib.map_keys(doc2, root2) == ["k"]
    other = lib.map_get(doc2, root2, "k")
    assert other == final_value, \
        "%s b3: replicas disagree on k (%r vs %r)" % (lib.name, final_value, other)

    extra = {
        "b3_total_update_bytes": total_bytes,
        "b3_winner_value": int(final_value),
    }

    # Informational only: a library-provided bulk import path, if any
    # (loro: LoroDoc.import_batch). Not part of b3_merge_ms.
    if hasattr(lib, "apply_batch"):
        batch_best = None
        for _ in range(repeats):
            doc3, root3 = lib.new_doc(RECEIVER_ID_3)
            ms, _ = timed(lambda: lib.apply_batch(doc3, updates))
            assert lib.map_keys(doc3, root3) == ["k"]
            assert lib.map_get(doc3, root3, "k") == final_value
            batch_best = ms if batch_best is None else min(batch_best, ms)
            del doc3, root3
        extra["b3_merge_import_batch_ms"] = round(batch_best, 3)
        log("[%s] b3: import_batch best %.2f ms" % (lib.name, batch_best))

    return {
        "b3_merge_ms": round(best, 3),
        "b3_bytes_per_update": round(total_bytes / n_replicas, 2),
    }, extra


def bench_map(lib, n_keys, repeats):
    log("[%s] map: building replica A with %d keys" % (lib.name, n_keys))
    doc_a, _root_a = lib.build_map(MAP_A_ID, n_keys, 0)

    encode_best = None
    update = None
    for r in range(repeats):
        ms, update = timed(lambda: lib.encode_full(doc_a))
        encode_best = ms if encode_best is None else min(encode_best, ms)
        log("[%s] map: encode run %d/%d %.2f ms (%d bytes)" % (lib.name, r + 1, repeats, ms, len(update)))

    merge_best = None
    for r in range(repeats):
        doc_b, root_b = lib.build_map(MAP_B_ID, n_keys, 1)  # untimed
        ms, _ = timed(lambda: lib.apply_one(doc_b, update))
        n = lib.map_len(doc_b, root_b)
        assert n == n_keys, "%s map: B has %d keys after merge, expected %d" % (lib.name, n, n_keys)
        # Both sides wrote every key; the merged value must be one of the two.
        for probe in (0, n_keys // 2, n_keys - 1):
            v = lib.map_get(doc_b, root_b, "k%d" % probe)
            assert v in (probe, probe + 1), "%s map: k%d=%r" % (lib.name, probe, v)
        merge_best = ms if merge_best is None else min(merge_best, ms)
        log("[%s] map: merge run %d/%d %.2f ms" % (lib.name, r + 1, repeats, ms))
        del doc_b, root_b

    return {
        "map_update_bytes": len(update),
        "map_encode_ms": round(encode_best, 3),
        "map_merge_ms": round(merge_best, 3),
    }


def run_lib(adapter_cls, n_replicas, n_keys, repeats):
    lib = adapter_cls()
    b3, extra = bench_b3(lib, n_replicas, repeats)
    result = {}
    result.update(b3)
    result.update(bench_map(lib, n_keys, repeats))
    # Diagnostics that are not part of the comparison keys above.
    extra["update_format"] = lib.update_format
    result["extra"] = extra
    return result


def pkg_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs per measurement; best is reported (default 5)")
    ap.add_argument("--quick", action="store_true", help="scale counts down 10x (smoke test)")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    scale = 10 if args.quick else 1
    n_replicas = FULL_REPLICAS // scale
    n_keys = FULL_KEYS // scale

    out = {}
    t0 = time.perf_counter()
    for cls in (PycrdtAdapter, LoroAdapter):
        out[cls.name] = run_lib(cls, n_replicas, n_keys, args.repeats)
    log("total wall time %.1f s" % (time.perf_counter() - t0))

    out["versions"] = {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "pycrdt": pkg_version("pycrdt"),
        "loro": pkg_version("loro"),
    }
    out["counts"] = {
        "b3_replicas": n_replicas,
        "map_keys": n_keys,
        "repeats": args.repeats,
        "quick": args.quick,
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
