-- PostgreSQL moves to BOOLEAN and JSONB in this version. SQLite's own types are
-- already what its schema holds: a boolean is an INTEGER 0 or 1, which the native
-- driver reads as a boolean, and a list is JSON text. Nothing to change here; the
-- version exists so that both folders keep the same list.
-- Keep in lockstep with migrations/postgres/0005_native_types.sql.
SELECT 1;
