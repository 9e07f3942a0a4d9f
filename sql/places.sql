-- The boards' rows are found at the place each backend last saw them
-- (src/places.c) before the primary key is searched.  A place proves
-- nothing: after the tables are rewritten, emptied and refilled, or
-- updated elsewhere than in place, what this session remembered points
-- at other rows, freed slots or past the table's end, and every event
-- must still land on its own row.
SET client_min_messages = warning;
SELECT gifq_create_program('places', 'USD') IS NOT NULL AS program;
SELECT count(gifq_upsert_member('places', 'p' || i, NULL, NULL)) AS members
FROM generate_series(1, 40) i;
SELECT gifq_set_rule('places', 'act', 7);
CREATE FUNCTION places_events(round int) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM generate_series(1, 40) i,
		LATERAL gifq_record_event('places', 'p' || (1 + (i * i + round) % 40), 'act',
			'r' || round || '-' || i)
$$;
-- this session remembers every row's place
SELECT places_events(1) AS events;
-- bloated, so that the rows' latest places are far into the tables
DO $$ BEGIN
	FOR i IN 1..30 LOOP
		UPDATE gifq.board_counts SET members = members;
		UPDATE gifq.board_points SET all_points = all_points;
	END LOOP;
END $$;
SELECT places_events(2) AS events;
SELECT count(*) AS problems FROM gifq.board_verify();
SELECT pg_relation_size('gifq.board_counts') > 8192 * 4 AS counts_bloated;
-- rewritten: the rows move, the tables shrink (places past their end)
VACUUM FULL gifq.board_counts;
VACUUM FULL gifq.board_points;
SELECT pg_relation_size('gifq.board_counts') <= 8192 * 2 AS counts_shrunk;
SELECT places_events(3) AS events;
SELECT count(*) AS problems FROM gifq.board_verify();
-- emptied and refilled in another order: every place holds another row
SELECT gifq.board_rebuild() AS rebuilt;
SELECT places_events(4) AS events;
SELECT count(*) AS problems FROM gifq.board_verify();
-- rows moved by updates that were not in place (a full page), then the
-- dead versions vacuumed away and their slots reused
UPDATE gifq.board_counts SET members = members;
UPDATE gifq.board_points SET all_points = all_points;
VACUUM gifq.board_counts;
VACUUM gifq.board_points;
SELECT places_events(5) AS events;
SELECT count(*) AS problems FROM gifq.board_verify();
SELECT rank, member, points FROM gifq_leaderboard('places', 'all', '{}', 5);
SELECT count(*) AS members_on_board, sum(all_points) AS points FROM gifq.board_points;
SELECT count(*) AS problems FROM gifq_ledger_verify();
DROP FUNCTION places_events(int);
-- leave a fresh extension to the tests after this one (ids start again)
DROP EXTENSION gifq CASCADE;
CREATE EXTENSION gifq;
