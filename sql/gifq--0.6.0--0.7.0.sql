-- gifq--0.6.0--0.7.0.sql: recipient-choice rewards (sent, claimed, expired),
-- bulk sends, maintenance jobs scheduled with pg_cron, reporting views,
-- and cheaper event recording.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.7.0'" to load this file. \quit

------------------------------------------------------------------------
-- leaderboards kept without the executor
------------------------------------------------------------------------

-- gifq.events_points is now C (src/board_points.c): it sums the
-- statement's points per member and board and adds them to
-- gifq.member_points through the primary key (src/counters.c), as the
-- commit-time writes of gifq.board_counts now do.  The PL/pgSQL version's
-- plan started and ended the executor for every event: with the counts'
-- upsert it was four tenths of an event's CPU.  The trigger itself is
-- unchanged.
CREATE OR REPLACE FUNCTION gifq.events_points() RETURNS trigger
	AS 'MODULE_PATHNAME', 'gifq_events_points' LANGUAGE C;
