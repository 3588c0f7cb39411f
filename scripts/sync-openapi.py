#!/usr/bin/env python3
"""Writes Docs/openapi.json into the server's source (StandaloneServer+OpenAPI.swift), which serves
it at GET /openapi.json. Edit the document in Docs/, then run this; a test fails while they differ."""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
text = (root / "Docs/openapi.json").read_text()
json.loads(text)  # it must be JSON
if '"""#' in text:
    raise SystemExit("Docs/openapi.json holds the raw string's delimiter")
swift = f'''// The OpenAPI document of the document API, served at `GET /openapi.json`. `Docs/openapi.json`
// is its source: `python3 scripts/sync-openapi.py` writes it here, a test keeps the two equal, and
// CI checks the running server against it (`make api-check`).

extension StandaloneServer {{
    /// The OpenAPI 3.0 document describing the document API (`/v1/{{database}}/documents…` and
    /// `/v1/{{database}}/changes`), as served at `GET /openapi.json`.
    public static let openAPIDocument = #"""
{text}
"""#
}}
'''
(root / "Sources/WeftServer/StandaloneServer+OpenAPI.swift").write_text(swift)
