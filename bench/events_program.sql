-- events_program.sql: the program "bench" of bench/events and
-- bench/event_cpu (psql -v members=N): members m1 .. mN and what an
-- engagement program defines, one of each (a rule, a challenge running
-- through the run, a daily streak, an unlock threshold), with members'
-- points spread below the threshold.
CREATE EXTENSION gifq;
SELECT gifq_create_program('bench', 'USD', 'PTS', 100, 'UTC') AS program \gset
-- members m1 .. mN
SELECT count(gifq_upsert_member('bench', 'm' || i, 'm' || i || '@example.com', 'US')) AS n
	FROM generate_series(1, :members) i \gset
-- one rule, one challenge running through the run (no max_completions,
-- so events do not queue on its row), one daily streak, one threshold
SELECT gifq_set_rule('bench', 'task.done', 10) AS n \gset
SELECT gifq_create_challenge('bench', 'double-tasks', 'task.done',
	now() - interval '1 day', now() + interval '30 days', 2) AS challenge \gset
SELECT gifq_define_streak('bench', 'daily-tasks', 'task.done', 'day', 1) AS n \gset
SELECT gifq_define_threshold('bench', 5000, 'unlock') AS threshold \gset
-- member i starts with 20 * ((i * 7919) % 250) points: 0 to 4,980, below
-- the threshold, spread evenly in steps of one event's 20 points, so
-- about one event in 250 crosses it while few members have crossed
SELECT count(gifq_transfer(gifq_account('bench', NULL, 'issuance'), a.id,
		gifq_from_minor_units(20 * ((substr(m.external_id, 2)::bigint * 7919) % 250), 'PTS'),
		'seed:' || a.id)) AS n
	FROM gifq.members m JOIN gifq.accounts a ON a.member_id = m.id AND a.code = 'points'
	WHERE m.program_id = :program
		AND (substr(m.external_id, 2)::bigint * 7919) % 250 > 0 \gset

VACUUM ANALYZE;
CHECKPOINT;
