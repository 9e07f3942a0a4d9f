-- gifq--0.10.0--0.11.0.sql: a transaction that fills gifq's tables far
-- past what their statistics say analyzes them as it goes, so that its
-- key lookups stay key lookups (src/statistics.c).  The calls written in C
-- (gifq_record_event, gifq_record_events, gifq_transfer) look for
-- themselves; gifq_upsert_member, written in PL/pgSQL, through a trigger
-- on the members it inserts.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.11.0'" to load this file. \quit

CREATE FUNCTION gifq.keep_statistics() RETURNS trigger
	AS 'MODULE_PATHNAME', 'gifq_keep_statistics'
	LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION gifq.keep_statistics() IS 'analyze gifq''s keyed tables that a transaction has grown past four times their statistics';
REVOKE ALL ON FUNCTION gifq.keep_statistics() FROM PUBLIC;

CREATE TRIGGER members_statistics AFTER INSERT ON gifq.members
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.keep_statistics();
