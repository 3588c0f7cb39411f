-- A PostgreSQL database as the first Weft schema (version 1) left it, for the upgrade test
-- (Tests/WeftTests/PostgresSchemaTests.swift). The test adds its rows.
CREATE TABLE weft_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE weft_documents (
    tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, record BYTEA NOT NULL,
    PRIMARY KEY (tenant, collection, id));
CREATE TABLE weft_tenants (tenant TEXT PRIMARY KEY, next_sequence BIGINT NOT NULL);
CREATE TABLE weft_change_log (
    id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, sequence BIGINT,
    collection TEXT NOT NULL, doc_id TEXT NOT NULL, record BYTEA NOT NULL, bytes INTEGER NOT NULL);
CREATE UNIQUE INDEX weft_change_log_by_sequence ON weft_change_log (tenant, sequence) WHERE sequence IS NOT NULL;
CREATE INDEX weft_change_log_unnumbered ON weft_change_log (tenant, id) WHERE sequence IS NULL;
CREATE TABLE weft_high_water (
    tenant TEXT NOT NULL, replica BYTEA NOT NULL, applied_through BIGINT NOT NULL,
    PRIMARY KEY (tenant, replica));
CREATE TABLE weft_conflicts (
    number BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, collection TEXT NOT NULL, doc_id TEXT NOT NULL,
    policy TEXT NOT NULL, resolver TEXT, local BYTEA NOT NULL, remote BYTEA NOT NULL, winner BYTEA NOT NULL);
INSERT INTO weft_migrations (version, name) VALUES (1, 'v1: documents, change log, tenant counters, high-water marks, conflicts');
