#!/usr/bin/env python3
"""Compare Weft with its peers (pycrdt / Yrs and loro) on the same workloads, in one run.

Builds and runs the Swift benchmark runner

    swift run -c release --package-path Benchmarks weft-bench-json

and the peer benchmarks

    python3 Benchmarks/peers/peers.py

(installing Benchmarks/peers/requirements.txt with pip first if those modules are missing
or at other versions), then prints a side-by-side table with ratios and whether each
performance target is met.

Ratios: for times, peer time / Weft time ("× faster"; when Weft is slower, the inverse is
shown as "× slower");
for sizes, Weft size / peer size ("× the size"; below 1 means Weft is smaller).

Usage:
    python3 Benchmarks/compare.py [--repeats N] [--rounds N] [--quick] [--markdown] [--json FILE] [--check]

Standard library only.
"""

import argparse
import datetime
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join("Benchmarks", "peers", "peers.py")
REQUIREMENTS = os.path.join("Benchmarks", "peers", "requirements.txt")
PEER_NAMES = ("pycrdt", "loro")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, capture=False):
    """Runs cmd in the repository root; stderr passes through. Returns stdout if captured."""
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    result = subprocess.run(
        cmd, cwd=ROOT, stdout=subprocess.PIPE if capture else sys.stderr, text=True
    )
    if result.returncode != 0:
        sys.exit("compare.py: command failed with exit code %d: %s" % (result.returncode, " ".join(cmd)))
    return result.stdout


def parse_json(text, what):
    """Parses the JSON object a runner printed (ignoring anything before its first '{' line)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("{"):
            try:
                return json.loads("\n".join(lines[i:]))
            except json.JSONDecodeError:
                continue
    sys.exit("compare.py: %s printed no JSON object:\n%s" % (what, text[-2000:]))


# --------------------------------------------------------------------------
# Running both sides
# --------------------------------------------------------------------------

def ensure_peer_modules():
    wanted = {}
    with open(os.path.join(ROOT, REQUIREMENTS)) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, _, version = line.partition("==")
            wanted[name.strip()] = version.strip() or None
    missing = []
    for name, version in wanted.items():
        try:
            importlib.import_module(name)
            found = metadata.version(name)
        except (ImportError, metadata.PackageNotFoundError):
            missing.append(name)
            continue
        if version and found != version:
            missing.append("%s (have %s, want %s)" % (name, found, version))
    if missing:
        log("compare.py: installing peer modules: %s" % ", ".join(missing))
        run([sys.executable, "-m", "pip", "install", "--quiet", "-r", REQUIREMENTS])
        importlib.invalidate_caches()


def run_weft(args):
    run(["swift", "build", "-c", "release", "--package-path", "Benchmarks", "--product", "weft-bench-json"])
    cmd = ["swift", "run", "-c", "release", "--skip-build", "--package-path", "Benchmarks", "weft-bench-json",
           "--repeats", str(args.repeats)]
    if args.quick:
        cmd.append("--quick")
    return parse_json(run(cmd, capture=True), "weft-bench-json")


# Keys where a larger figure is better; every other number is a time or a size (smaller is better).
HIGHER_IS_BETTER = {"orset_elements_per_sec"}


def best_of(previous, current):
    """Merges two result objects, keeping each numeric figure's best value (recursively)."""
    if previous is None:
        return current
    if isinstance(current, dict) and isinstance(previous, dict):
        merged = dict(previous)
        for key, value in current.items():
            if key in ("counts", "versions", "extra") or key not in previous:
                merged[key] = value
            elif isinstance(value, dict):
                merged[key] = best_of(previous[key], value)
            elif isinstance(value, (int, float)) and isinstance(previous[key], (int, float)):
                pick = max if key in HIGHER_IS_BETTER else min
                merged[key] = pick(previous[key], value)
            else:
                merged[key] = value
        return merged
    return current


def run_peers(args):
    ensure_peer_modules()
    cmd = [sys.executable, PEERS, "--repeats", str(args.repeats)]
    if args.quick:
        cmd.append("--quick")
    return parse_json(run(cmd, capture=True), "peers.py")


# --------------------------------------------------------------------------
# Table and targets
# --------------------------------------------------------------------------

# (label, key, kind) with kind "time" (lower is better, ratio peer/Weft) or
# "size" (lower is better, ratio Weft/peer) or "rate" (Weft only).
ROWS = [
    ("B3 decode+merge all updates (ms)", "b3_merge_ms", "time"),
    ("B3 bytes per update", "b3_bytes_per_update", "size"),
    ("Map decode+merge (ms)", "map_merge_ms", "time"),
    ("Map encode full state (ms)", "map_encode_ms", "time"),
    ("Map full-state update (bytes)", "map_update_bytes", "size"),
    ("Document map decode+merge (ms)", "doc_map_merge_ms", "time", "map_merge_ms"),
    ("Document map encode (ms)", "doc_map_encode_ms", "time", "map_encode_ms"),
    ("Document map update (bytes)", "doc_map_update_bytes", "size", "map_update_bytes"),
    ("ORSet merge (ms)", "orset_merge_ms", "time"),
    ("ORSet merge (elements/s)", "orset_elements_per_sec", "rate"),
]


def fmt_value(value):
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return "%.3f" % value if value < 10 else "%.2f" % value if value < 1000 else "{:,.0f}".format(value)
    return "{:,}".format(int(value))


def ratio(kind, weft, peer):
    if weft is None or peer is None or kind == "rate":
        return None
    if kind == "time":
        return peer / weft if weft > 0 else None
    return weft / peer if peer > 0 else None


def fmt_ratio(kind, r):
    if r is None:
        return "—"
    if kind == "time":
        return "%.2f× faster" % r if r >= 1 else "%.2f× slower" % (1 / r)
    return "%.2f× the size" % r


def build_rows(weft, peers):
    rows = []
    # A fourth element names the peers' figure to compare with (the Document rows run the
    # peers' map workload: the peers have one map type).
    for label, key, kind, *peer_key in ROWS:
        w = weft.get(key)
        pk = peer_key[0] if peer_key else key
        cells = [label, fmt_value(w)]
        for name in PEER_NAMES:
            cells.append(fmt_value(peers.get(name, {}).get(pk)))
        for name in PEER_NAMES:
            cells.append(fmt_ratio(kind, ratio(kind, w, peers.get(name, {}).get(pk))))
        rows.append(cells)
    return ["Metric", "Weft", "pycrdt", "loro", "pycrdt vs Weft", "loro vs Weft"], rows


def evaluate_targets(weft, peers):
    """Returns [(target, measured, met)]."""
    py = peers.get("pycrdt", {})
    lo = peers.get("loro", {})
    out = []

    r = ratio("time", weft["b3_merge_ms"], py.get("b3_merge_ms"))
    out.append(("B3 merge ≥3× faster than pycrdt", fmt_ratio("time", r), r is not None and r >= 3))
    b = weft["b3_bytes_per_update"]
    out.append(("B3 ≤32 bytes per update", "%.2f B" % b, b <= 32))

    rp = ratio("time", weft["map_merge_ms"], py.get("map_merge_ms"))
    rl = ratio("time", weft["map_merge_ms"], lo.get("map_merge_ms"))
    measured = "pycrdt %s, loro %s" % (fmt_ratio("time", rp), fmt_ratio("time", rl))
    out.append(("Map merge ≥3× faster than pycrdt and loro", measured,
                rp is not None and rl is not None and rp >= 3 and rl >= 3))

    sizes = [p["map_update_bytes"] for p in (py, lo) if p.get("map_update_bytes")]
    smallest = min(sizes) if sizes else None
    size = weft["map_update_bytes"]
    out.append(("Map encoding ≤ smaller peer update (%s B)" % fmt_value(smallest),
                "{:,} B ({})".format(size, fmt_ratio("size", ratio("size", size, smallest))),
                smallest is not None and size <= smallest))

    # The Document path (issue #15): encoding within 2× of pycrdt's encode time.
    if weft.get("doc_map_encode_ms") is not None and py.get("map_encode_ms"):
        slower = weft["doc_map_encode_ms"] / py["map_encode_ms"]
        out.append(("Document map encode ≤2× pycrdt's encode time", "%.2f× pycrdt's" % slower, slower <= 2))

    eps = weft["orset_elements_per_sec"]
    out.append(("ORSet merge ≥1,000,000 elements/s", "{:,.0f} elements/s".format(eps), eps >= 1_000_000))
    return out


def render_text(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    def line(cells):
        return "  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                         for i, c in enumerate(cells))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def render_markdown(header, rows, right_from=1):
    def esc(c):
        return str(c).replace("|", "\\|")
    out = ["| " + " | ".join(esc(h) for h in header) + " |",
           "|" + "|".join(" --- " if i < right_from else " ---: " for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, %s %s" % (cpu, os.cpu_count() or 0, platform.system(), platform.release())


def swift_version():
    try:
        out = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0].strip() if out else None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs per measurement; best is reported (default 5)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternate Weft and the peers this many times and keep each side's best figures, "
                         "so a machine whose speed drifts during the run does not favour either side (default 3)")
    ap.add_argument("--quick", action="store_true", help="scale counts down 10x (smoke test)")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument("--json", metavar="FILE", help="also write both sides' raw JSON to FILE")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is not met")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    weft, peers = None, None
    for round_number in range(1, args.rounds + 1):
        log("compare.py: round %d of %d" % (round_number, args.rounds))
        weft = best_of(weft, run_weft(args))
        peers = best_of(peers, run_peers(args))

    wc, pc = weft.get("counts", {}), peers.get("counts", {})
    if wc.get("b3_replicas") != pc.get("b3_replicas") or wc.get("map_keys") != pc.get("map_keys"):
        sys.exit("compare.py: Weft and peers ran different counts: %r vs %r" % (wc, pc))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"weft": weft, "peers": peers}, f, indent=2)
            f.write("\n")

    header, rows = build_rows(weft, peers)
    targets = evaluate_targets(weft, peers)
    target_header = ["Target", "Measured", "Met"]
    target_rows = [[t, m, "yes" if ok else "NO"] for t, m, ok in targets]

    versions = peers.get("versions", {})
    context = [
        "Date: %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "Machine: %s" % machine_description(),
        "Toolchain: %s; Python %s; pycrdt %s; loro %s" % (
            swift_version(), versions.get("python"), versions.get("pycrdt"), versions.get("loro")),
        "Counts: %d B3 replicas, %d map keys, %d ORSet elements; best of %d repeats in each of %d alternating rounds%s" % (
            wc.get("b3_replicas"), wc.get("map_keys"), wc.get("orset_elements", 0), args.repeats,
            args.rounds, " (--quick)" if args.quick else ""),
        "Command: python3 Benchmarks/compare.py" + "".join(
            [" --repeats %d" % args.repeats if args.repeats != 5 else "",
             " --rounds %d" % args.rounds if args.rounds != 3 else "", " --quick" if args.quick else ""]),
    ]

    if args.markdown:
        print("\n".join("- " + c for c in context))
        print()
        print(render_markdown(header, rows))
        print()
        print(render_markdown(target_header, target_rows, right_from=99))
    else:
        print("\n".join(context))
        print()
        print(render_text(header, rows))
        print()
        print(render_text(target_header, target_rows))

    met = sum(1 for _, _, ok in targets if ok)
    log("compare.py: %d of %d targets met" % (met, len(targets)))
    if args.check and met < len(targets):
        sys.exit(1)


if __name__ == "__main__":
    main()
