#!/usr/bin/env python3
"""What an app that syncs with URLSession links: the modules and packages reachable from the
client products (Weft, WeftSQLite, WeftURLSession), read from the package manifests (`swift
package describe`), target by target. Fails if SwiftNIO, BoringSSL, Hummingbird, postgres-nio or
AsyncHTTPClient is among them. Run after `swift build` has resolved the packages.

    python3 scripts/client-dependencies.py [--markdown]
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT_PRODUCTS = ["Weft", "WeftSQLite", "WeftURLSession"]
# Packages a slim client must not pull in (the point of the URLSession transport).
FORBIDDEN = {
    "swift-nio", "swift-nio-ssl", "swift-nio-extras", "swift-nio-http2", "swift-nio-transport-services",
    "async-http-client", "hummingbird", "postgres-nio", "swift-crypto", "swift-certificates",
}


def describe(path):
    out = subprocess.run(["swift", "package", "describe", "--type", "json"], cwd=path, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def main():
    root = describe(ROOT)
    checkouts = os.path.join(ROOT, ".build", "checkouts")
    if not os.path.isdir(checkouts):
        sys.exit("no .build/checkouts: run `swift build` first")
    packages = {"weft": root}
    for name in sorted(os.listdir(checkouts)):
        packages[name.lower()] = None  # described when reached

    def package(identity):
        if packages.get(identity) is None:
            for name in os.listdir(checkouts):
                if name.lower() == identity:
                    packages[identity] = describe(os.path.join(checkouts, name))
        # None for a package not checked out (a dependency's own test or plugin dependency).
        return packages.get(identity)

    def dependencies_of(description):
        return [d["identity"].lower() for d in description.get("dependencies", [])]

    modules = set()       # (package, target)
    reached = set()       # packages
    pending = [("weft", target) for product in root["products"] if product["name"] in CLIENT_PRODUCTS
               for target in product["targets"]]
    while pending:
        identity, name = pending.pop()
        if (identity, name) in modules:
            continue
        modules.add((identity, name))
        reached.add(identity)
        description = package(identity)
        target = next(t for t in description["targets"] if t["name"] == name)
        for dependency in target.get("target_dependencies") or []:
            pending.append((identity, dependency))
        for product_name in target.get("product_dependencies") or []:
            # A product of one of this package's dependencies.
            for candidate in dependencies_of(description):
                other = package(candidate)
                if other is None:
                    continue
                product = next((p for p in other["products"] if p["name"] == product_name), None)
                if product is not None:
                    pending.extend((candidate, t) for t in product["targets"])
                    break
            else:
                sys.exit(f"{identity}/{name}: product {product_name} not found among the checked-out "
                         f"dependencies {dependencies_of(description)}: resolve the packages first (swift build)")

    external = sorted(reached - {"weft"})
    if "--markdown" in sys.argv:
        print(f"Packages: {', '.join(external)} ({len(external)})")
        for identity in ["weft"] + external:
            names = sorted(n for i, n in modules if i == identity)
            print(f"- {identity}: {', '.join(names)}")
    else:
        print(f"client products {', '.join(CLIENT_PRODUCTS)}: {len(modules)} modules from "
              f"{len(external)} packages besides Weft: {', '.join(external)}")
    bad = sorted(reached & FORBIDDEN)
    if bad:
        sys.exit(f"the client products reach {', '.join(bad)}: the URLSession client must not")


if __name__ == "__main__":
    main()
