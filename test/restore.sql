-- restore.sql: pgTAP suite for what a dump holds and what a restore
-- does (docs/operations.md, "Backup and restore"): every gifq table and
-- sequence is dumped but the call log and the cache version; the triggers
-- that derive state from inserted rows fire only while gifq records
-- events, so rows inserted as a restore inserts them (not through gifq's
-- functions) derive nothing; the event trigger that removes gifq's
-- pg_cron jobs at DROP EXTENSION is there.  test/t/009_dump_restore.pl
-- dumps and restores a whole database.
BEGIN;
SELECT plan(10);

-- what pg_dump writes: the tables and sequences registered with
-- pg_extension_config_dump
CREATE FUNCTION pg_temp.not_dumped() RETURNS SETOF text LANGUAGE sql AS $$
	SELECT c.relname::text FROM pg_class c
	WHERE c.relnamespace = 'gifq'::regnamespace AND c.relkind IN ('r', 'p', 'S')
		AND c.oid <> ALL ((SELECT e.extconfig FROM pg_extension e WHERE e.extname = 'gifq')::oid[])
	ORDER BY 1
$$;
SELECT results_eq('SELECT * FROM pg_temp.not_dumped()',
	ARRAY['provider_calls', 'provider_calls_id_seq', 'settings_version'],
	'every gifq table and sequence is dumped but the call log (and its sequence) and the cache version');
SELECT is_empty($$
	SELECT s.oid::regclass FROM pg_class s
	JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
		AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
	WHERE s.relkind = 'S' AND s.relnamespace = 'gifq'::regnamespace
		AND d.refobjid = ANY ((SELECT e.extconfig FROM pg_extension e WHERE e.extname = 'gifq')::oid[])
		AND s.oid <> ALL ((SELECT e.extconfig FROM pg_extension e WHERE e.extname = 'gifq')::oid[])$$,
	'the sequence of every dumped table is dumped too');

-- A restore inserts every dumped table's rows after CREATE EXTENSION made
-- the triggers.  On a dumped table, a trigger that fires on INSERT must
-- not write what the dump holds already: it is WHEN (gifq.recording()),
-- or its function writes nothing that is dumped: gifq.settings_changed
-- bumps gifq.settings_version (not dumped), gifq.program_grants_changed
-- drops caches, gifq.audit_row and gifq.card_reveal_audit (through
-- gifq.audit_note) skip the rows a COPY loads, gifq.keep_statistics
-- writes only statistics (ANALYZE).  A new
-- trigger that writes dumped state joins neither list: it must find out
-- that a restore is loading rows, or derive nothing then.
SELECT is_empty($$
	SELECT t.tgrelid::regclass || ' ' || t.tgname FROM pg_trigger t
	WHERE NOT t.tgisinternal AND t.tgtype & 4 <> 0
		AND t.tgrelid = ANY ((SELECT e.extconfig FROM pg_extension e WHERE e.extname = 'gifq')::oid[])
		AND t.tgfoid::regproc::text NOT IN ('gifq.settings_changed', 'gifq.program_grants_changed',
			'gifq.audit_row', 'gifq.card_reveal_audit', 'gifq.keep_statistics')
		AND pg_get_triggerdef(t.oid) !~ 'gifq\.recording\(\)'$$,
	'every trigger on INSERT into a dumped table is WHEN (gifq.recording()) or writes nothing dumped');
SELECT is(gifq.recording(), false, 'gifq.recording() is false outside gifq''s recording of events');

-- rows inserted straight into the tables, as a restore's COPY inserts them
SELECT gifq_create_program('tap-restore', 'USD', 'PTS', 100, 'UTC') IS NOT NULL AS program;
SELECT gifq_upsert_member('tap-restore', 'ana') IS NOT NULL AS member;
SELECT gifq_set_rule('tap-restore', 'done', 10);
SELECT gifq_define_streak('tap-restore', 'daily', 'done', 'day', 1);
SELECT gifq_set_rule('tap-restore', 'streak:daily:1', 100);
CREATE TEMP TABLE derived AS
SELECT (SELECT count(*) FROM gifq.streak_periods) AS periods,
	(SELECT count(*) FROM gifq.streaks) AS streaks,
	(SELECT count(*) FROM gifq.member_points) AS points,
	(SELECT count(*) FROM gifq.board_counts) AS counts,
	(SELECT count(*) FROM gifq.events) AS events;
INSERT INTO gifq.events (program_id, member_id, event_type, idempotency_key, occurred_at,
	occurred_given, attributes, base_points, points, balance_after, details)
SELECT p.id, m.id, 'done', 'restored-' || i, now() - i * interval '1 day', true, '{}', 10, 10, 0, '{}'
FROM generate_series(1, 3) i
JOIN gifq.programs p ON p.code = 'tap-restore'
JOIN gifq.members m ON m.program_id = p.id AND m.external_id = 'ana';
SELECT is((SELECT count(*) FROM gifq.streak_periods) - periods, 0::bigint,
	'events inserted outside gifq add no streak period') FROM derived;
SELECT is((SELECT count(*) FROM gifq.member_points) - points + (SELECT count(*) FROM gifq.board_counts) - counts,
	0::bigint, 'nor board rows') FROM derived;
INSERT INTO gifq.streaks (member_id, streak_type, program_id, current_streak, longest_streak,
	last_period_no, last_qualifying_event)
SELECT m.id, 'daily', m.program_id, 3, 3, gifq.period_no('day', now() AT TIME ZONE 'UTC'), now()
FROM gifq.members m JOIN gifq.programs p ON p.id = m.program_id
WHERE p.code = 'tap-restore' AND m.external_id = 'ana';
SELECT is((SELECT count(*) FROM gifq.events) - events, 3::bigint,
	'a streak inserted outside gifq records no milestone event') FROM derived;

-- the same through gifq: the streak, its milestone and the boards follow
SELECT gifq_upsert_member('tap-restore', 'bob') IS NOT NULL AS member;
SELECT is((SELECT count(*) FROM gifq_record_event('tap-restore', 'bob', 'done', 'through-gifq', NULL)),
	1::bigint, 'an event recorded through gifq');
SELECT is((SELECT string_agg(e.event_type || '=' || e.points, ' ' ORDER BY e.id) FROM gifq.events e
	JOIN gifq.members m ON m.id = e.member_id JOIN gifq.programs p ON p.id = m.program_id
	WHERE p.code = 'tap-restore' AND m.external_id = 'bob'),
	'done=10 streak:daily:1=100', 'its streak reaches the milestone, which pays');
SELECT is((SELECT count(*) FROM gifq.member_points mp JOIN gifq.members m ON m.id = mp.member_id
	JOIN gifq.programs p ON p.id = m.program_id WHERE p.code = 'tap-restore' AND m.external_id = 'bob'), 4::bigint, 'and it counts on the boards (all, day, week, month)');

SELECT * FROM finish();
ROLLBACK;
