# Weft: `make test` installs what it needs and runs the whole suite; `make demo` runs the main job.
SWIFT ?= swift

.PHONY: all deps build test docs api-check demo example bench format

all: build

deps:
	@bash scripts/ensure-system-packages.sh

build: deps
	$(SWIFT) build

test: deps
	@bash scripts/ensure-system-packages.sh --with-postgres
	$(SWIFT) build --build-tests
	python3 scripts/client-dependencies.py
	bash scripts/with-postgres.sh $(SWIFT) test --skip-build

# The document API against its OpenAPI document (Docs/openapi.json): `weft serve` on a
# throwaway store, fuzzed by schemathesis (from PyPI). CI runs it after `make test`.
api-check: deps
	SWIFT=$(SWIFT) bash scripts/check-openapi.sh

# The DocC documentation of every library target; fails on any DocC warning (a broken symbol
# link, say) but those listed in scripts/docs-known-warnings.txt. CI runs it after `make test`.
docs: deps
	SWIFT=$(SWIFT) bash scripts/build-docs.sh

demo: deps
	$(SWIFT) run weft demo

# The CRDT-only example: two replicas edit one document apart, then merge.
example: deps
	$(SWIFT) run weft-example-merge

# Side-by-side benchmarks against pycrdt and loro (release build; takes a few minutes).
bench: deps
	python3 Benchmarks/compare.py

format:
	$(SWIFT) format --in-place --recursive Sources Tests Examples
