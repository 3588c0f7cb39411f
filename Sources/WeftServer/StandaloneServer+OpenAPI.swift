// The OpenAPI document of the document API, served at `GET /openapi.json`. `Docs/openapi.json`
// is its source: `python3 scripts/sync-openapi.py` writes it here, a test keeps the two equal, and
// CI checks the running server against it (`make api-check`).

extension StandaloneServer {
    /// The OpenAPI 3.0 document describing the document API (`/v1/{database}/documents…` and
    /// `/v1/{database}/changes`), as served at `GET /openapi.json`.
    public static let openAPIDocument = #"""
{
  "openapi": "3.0.3",
  "info": {
    "title": "Weft Standalone document API",
    "version": "1",
    "description": "Backend services read and write Weft documents as JSON. A write goes through the same merge as a replica's push, under the collection's conflict policy, enters the change log and reaches every replica. Documents are shown as their JSON projection (Docs/Encoding.md, 'The JSON projection'). Tokens need the `documents` scope; reads need read access, writes write access. See Docs/DocumentAPI.md."
  },
  "servers": [
    {
      "url": "/"
    }
  ],
  "security": [
    {
      "bearer": []
    }
  ],
  "paths": {
    "/v1/{database}/documents/{collection}": {
      "get": {
        "operationId": "listDocuments",
        "summary": "The live documents of a collection, by id, filtered by their projection",
        "parameters": [
          {
            "$ref": "#/components/parameters/Database"
          },
          {
            "$ref": "#/components/parameters/Collection"
          },
          {
            "name": "after",
            "in": "query",
            "required": false,
            "description": "Continue after this id (a page's `next`).",
            "schema": {
              "$ref": "#/components/schemas/DocumentID"
            }
          },
          {
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "At most this many documents (default 100).",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 1000
            }
          },
          {
            "name": "where",
            "in": "query",
            "required": false,
            "style": "deepObject",
            "explode": true,
            "description": "Equality conditions on the projection: `where[status]=open`, `where[address.city]=Lyon` (a dotted path). A value that parses as a JSON scalar (`3`, `true`, `null`, `\"3\"`) is that value, any other text a string. At most 16.",
            "schema": {
              "type": "object",
              "additionalProperties": {
                "type": "string"
              }
            }
          }
        ],
        "responses": {
          "200": {
            "description": "A page",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/DocumentPage"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/{database}/documents/{collection}/{id}": {
      "get": {
        "operationId": "getDocument",
        "summary": "A live document",
        "parameters": [
          {
            "$ref": "#/components/parameters/Database"
          },
          {
            "$ref": "#/components/parameters/Collection"
          },
          {
            "$ref": "#/components/parameters/DocumentID"
          }
        ],
        "responses": {
          "200": {
            "$ref": "#/components/responses/Document"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "put": {
        "operationId": "putDocument",
        "summary": "Create or replace a document: fields the body lacks are removed",
        "parameters": [
          {
            "$ref": "#/components/parameters/Database"
          },
          {
            "$ref": "#/components/parameters/Collection"
          },
          {
            "$ref": "#/components/parameters/DocumentID"
          },
          {
            "name": "If-Match",
            "in": "header",
            "required": false,
            "description": "Write only if the document's version is this one (its ETag, in quotes), or, with `*`, only if it exists. A stale version is answered 412 and nothing is written.",
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "If-None-Match",
            "in": "header",
            "required": false,
            "description": "`*`: create only; a live document is answered 412.",
            "schema": {
              "type": "string",
              "enum": [
                "*"
              ]
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Fields"
              }
            }
          }
        },
        "responses": {
          "200": {
            "$ref": "#/components/responses/Document"
          },
          "201": {
            "$ref": "#/components/responses/Document"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          },
          "412": {
            "$ref": "#/components/responses/Error"
          },
          "413": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "patch": {
        "operationId": "patchDocument",
        "summary": "Apply a JSON merge patch (RFC 7396) to a live document",
        "parameters": [
          {
            "$ref": "#/components/parameters/Database"
          },
          {
            "$ref": "#/components/parameters/Collection"
          },
          {
            "$ref": "#/components/parameters/DocumentID"
          },
          {
            "name": "If-Match",
            "in": "header",
            "required": false,
            "description": "Write only if the document's version is this one (its ETag, in quotes), or, with `*`, only if it exists. A stale version is answered 412 and nothing is written.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/merge-patch+json": {
              "schema": {
                "$ref": "#/components/schemas/Fields"
              }
            },
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Fields"
              }
            }
          }
        },
        "responses": {
          "200": {
            "$ref": "#/components/responses/Document"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "412": {
            "$ref": "#/components/responses/Error"
          },
          "413": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      },
      "delete": {
        "operationId": "deleteDocument",
        "summary": "Delete a live document",
        "parameters": [
          {
            "$ref": "#/components/parameters/Database"
          },
          {
            "$ref": "#/components/parameters/Collection"
          },
          {
            "$ref": "#/components/parameters/DocumentID"
          },
          {
            "name": "If-Match",
            "in": "header",
            "required": false,
            "description": "Write only if the document's version is this one (its ETag, in quotes), or, with `*`, only if it exists. A stale version is answered 412 and nothing is written.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "responses": {
          "200": {
            "$ref": "#/components/responses/Document"
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          },
          "404": {
            "$ref": "#/components/responses/Error"
          },
          "412": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    },
    "/v1/{database}/changes": {
      "get": {
        "operationId": "listChanges",
        "summary": "The change feed: every document changed after a cursor, once, at its latest version",
        "parameters": [
          {
            "$ref": "#/components/parameters/Database"
          },
          {
            "name": "after",
            "in": "query",
            "required": false,
            "description": "The `cursor` of the previous page, or 0 (the default) for everything.",
            "schema": {
              "type": "string",
              "pattern": "^[0-9]{1,19}(\\.[0-9]{1,20})?$"
            }
          },
          {
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "At most this many changes (default 100).",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 1000
            }
          },
          {
            "name": "wait",
            "in": "query",
            "required": false,
            "description": "Milliseconds to wait for a change when there is none; the server cuts it to its `max_long_poll_ms`.",
            "schema": {
              "type": "integer",
              "minimum": 0,
              "maximum": 3600000
            }
          }
        ],
        "responses": {
          "200": {
            "description": "A page of changes",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ChangePage"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/Error"
          },
          "401": {
            "$ref": "#/components/responses/Error"
          },
          "403": {
            "$ref": "#/components/responses/Error"
          },
          "410": {
            "$ref": "#/components/responses/Error"
          },
          "503": {
            "$ref": "#/components/responses/Error"
          }
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A token of `[[server.tokens]]` whose `scopes` include `documents`."
      }
    },
    "parameters": {
      "Database": {
        "name": "database",
        "in": "path",
        "required": true,
        "schema": {
          "type": "string",
          "pattern": "^[A-Za-z0-9_-]{1,64}$"
        }
      },
      "Collection": {
        "name": "collection",
        "in": "path",
        "required": true,
        "schema": {
          "type": "string",
          "pattern": "^[A-Za-z0-9_.-]{1,128}$"
        }
      },
      "DocumentID": {
        "name": "id",
        "in": "path",
        "required": true,
        "description": "Percent-encoded.",
        "schema": {
          "$ref": "#/components/schemas/DocumentID"
        }
      }
    },
    "responses": {
      "Document": {
        "description": "The document, with its version as the ETag",
        "headers": {
          "ETag": {
            "description": "The version, in quotes",
            "schema": {
              "type": "string"
            }
          }
        },
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Document"
            }
          }
        }
      },
      "Error": {
        "description": "Refused, with a sentence saying why; nothing was written",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      }
    },
    "schemas": {
      "DocumentID": {
        "type": "string",
        "minLength": 1,
        "maxLength": 256,
        "description": "1 to 256 bytes of UTF-8 without control characters."
      },
      "Fields": {
        "type": "object",
        "description": "The document's fields as JSON: how each value is stored is in Docs/DocumentAPI.md.",
        "additionalProperties": true
      },
      "Projection": {
        "type": "object",
        "nullable": true,
        "additionalProperties": true,
        "description": "The document's JSON projection; null when deleted."
      },
      "Document": {
        "type": "object",
        "required": [
          "collection",
          "id",
          "version",
          "doc"
        ],
        "properties": {
          "collection": {
            "type": "string"
          },
          "id": {
            "type": "string"
          },
          "version": {
            "type": "string",
            "pattern": "^[0-9a-f]{16}$"
          },
          "doc": {
            "$ref": "#/components/schemas/Projection"
          },
          "deleted": {
            "type": "boolean",
            "description": "Present (true) when the answer is to a deletion."
          }
        }
      },
      "DocumentPage": {
        "type": "object",
        "required": [
          "documents",
          "next"
        ],
        "properties": {
          "documents": {
            "type": "array",
            "items": {
              "type": "object",
              "required": [
                "id",
                "version",
                "doc"
              ],
              "properties": {
                "id": {
                  "type": "string"
                },
                "version": {
                  "type": "string",
                  "pattern": "^[0-9a-f]{16}$"
                },
                "doc": {
                  "$ref": "#/components/schemas/Projection"
                }
              }
            }
          },
          "next": {
            "type": "string",
            "nullable": true,
            "description": "The id to continue after; null on the last page."
          }
        }
      },
      "ChangePage": {
        "type": "object",
        "required": [
          "changes",
          "cursor",
          "hasMore"
        ],
        "properties": {
          "changes": {
            "type": "array",
            "items": {
              "type": "object",
              "required": [
                "sequence",
                "collection",
                "id",
                "deleted",
                "version",
                "doc"
              ],
              "properties": {
                "sequence": {
                  "type": "integer",
                  "minimum": 1
                },
                "collection": {
                  "type": "string"
                },
                "id": {
                  "type": "string"
                },
                "deleted": {
                  "type": "boolean"
                },
                "version": {
                  "type": "string",
                  "pattern": "^[0-9a-f]{16}$"
                },
                "doc": {
                  "$ref": "#/components/schemas/Projection"
                }
              }
            }
          },
          "cursor": {
            "type": "string",
            "pattern": "^[0-9]+\\.[0-9]+$",
            "description": "Pass as `after` to read on."
          },
          "hasMore": {
            "type": "boolean"
          }
        }
      },
      "Error": {
        "type": "object",
        "required": [
          "error"
        ],
        "properties": {
          "error": {
            "type": "object",
            "required": [
              "message"
            ],
            "properties": {
              "message": {
                "type": "string"
              }
            }
          }
        }
      }
    }
  }
}

"""#
}
