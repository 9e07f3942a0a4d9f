-- streak_milestones.sql: pgTAP suite for streak milestones: a rule for
-- 'streak:<streak type>:<n>' pays when a member's current streak reaches
-- n periods, once per run, in order or through late events.
BEGIN;
SELECT plan(16);

SELECT gifq_create_program('tap-m', 'USD', 'PTS', 100, 'UTC');
SELECT gifq_upsert_member('tap-m', m) FROM unnest(ARRAY['ana', 'bob', 'cy']) m;
SELECT gifq_set_rule('tap-m', 'done', 10);
SELECT gifq_define_streak('tap-m', 'daily', 'done', 'day', 1);
SELECT gifq_set_rule('tap-m', 'streak:daily:3', 100);
SELECT gifq_set_rule('tap-m', 'streak:daily:5', 500);

-- member's events "days ago" (a list), each its own key
CREATE FUNCTION pg_temp.events(member text, days int[]) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM unnest(days) WITH ORDINALITY AS x(d, i),
		LATERAL gifq_record_event('tap-m', member, 'done', member || '-' || d || '-' || i,
			(date_trunc('day', now() AT TIME ZONE 'UTC') - d * interval '1 day') AT TIME ZONE 'UTC')
$$;
-- the member's milestone awards as "type=points", in order
CREATE FUNCTION pg_temp.awards(member text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(e.event_type || '=' || e.points, ' ' ORDER BY e.id), '')
	FROM gifq.events e JOIN gifq.members m ON m.id = e.member_id
	WHERE m.external_id = member AND e.event_type LIKE 'streak:%'
$$;

-- in order: days 10, 9, 8 (3), 6 (a missed day within grace), 5 (5)
SELECT pg_temp.events('ana', ARRAY[10, 9, 8]);
SELECT is(pg_temp.awards('ana'), 'streak:daily:3=100', 'in order: the third period pays the 3 milestone');
SELECT pg_temp.events('ana', ARRAY[8, 6]);
SELECT is(pg_temp.awards('ana'), 'streak:daily:3=100',
	'in order: a second event of a counted day and the 4th period pay nothing');
SELECT pg_temp.events('ana', ARRAY[5]);
SELECT is(pg_temp.awards('ana'), 'streak:daily:3=100 streak:daily:5=500', 'in order: the 5th period pays 5');
SELECT is((SELECT attributes FROM gifq.events WHERE event_type = 'streak:daily:5'),
	'{"streak": 5, "streak_type": "daily"}'::jsonb, 'award: the event says which streak and length');
SELECT matches((SELECT idempotency_key FROM gifq.events WHERE event_type = 'streak:daily:5'),
	'^streak:daily:5:\d+:\d+$', 'award: keyed by milestone, member and the run''s first period');
SELECT is((gifq_member_balance('tap-m', 'ana')).available::text, '660 PTS',
	'award: 6 events of 10 and the milestones'' 600 posted to the member');

-- a break (two missed days, grace 1) restarts the run: its milestones pay again
SELECT pg_temp.events('ana', ARRAY[2, 1, 0]);
SELECT is(pg_temp.awards('ana'), 'streak:daily:3=100 streak:daily:5=500 streak:daily:3=100',
	'restart: a new run earns the 3 milestone again');

-- late events: two runs of 2 (days 10, 9 and 5, 4) joined by days 7 and 6
SELECT pg_temp.events('bob', ARRAY[10, 9, 5, 4]);
SELECT is(pg_temp.awards('bob'), '', 'late: two runs of 2 earn nothing');
SELECT pg_temp.events('bob', ARRAY[7]);
SELECT is((SELECT longest_streak FROM gifq_streak('tap-m', 'bob', 'daily')), 5,
	'late: day 7 joins the runs (gaps of one day) into 5');
SELECT is(pg_temp.awards('bob'), 'streak:daily:3=100 streak:daily:5=500',
	'late: the joined run pays 3 and 5 at once');
SELECT pg_temp.events('bob', ARRAY[6, 3]);
SELECT is(pg_temp.awards('bob'), 'streak:daily:3=100 streak:daily:5=500',
	'late: lengthening the run further pays no milestone twice');

-- a run that already had a milestone, joined with a later one, replays it
SELECT pg_temp.events('cy', ARRAY[12, 11, 10, 6, 5, 4]);
SELECT is(pg_temp.awards('cy'), 'streak:daily:3=100 streak:daily:3=100',
	'join: two runs of 3 each earned the 3 milestone');
SELECT pg_temp.events('cy', ARRAY[8]);
SELECT is(pg_temp.awards('cy'), 'streak:daily:3=100 streak:daily:3=100 streak:daily:5=500',
	'join: joined into 7, only 5 is new (3 of the first run replays)');

-- a challenge on a milestone type multiplies it like any event
SELECT gifq_create_challenge('tap-m', 'double-milestones', 'streak:daily:3',
	now() - interval '1 day', now() + interval '1 day', 2);
SELECT pg_temp.events('cy', ARRAY[3]);
SELECT gifq_upsert_member('tap-m', 'dee');
SELECT pg_temp.events('dee', ARRAY[2, 1, 0]);
SELECT is(pg_temp.awards('dee'), 'streak:daily:3=200', 'challenge: a 2x challenge doubles the milestone');

-- without a milestone rule nothing is recorded
SELECT gifq_define_streak('tap-m', 'weekly', 'done', 'week', 0);
SELECT is((SELECT count(*) FROM gifq.events WHERE event_type LIKE 'streak:weekly:%'), 0::bigint,
	'no rule: a streak without milestone rules records nothing');

SELECT is((SELECT count(*) FROM gifq_ledger_verify()), 0::bigint, 'ledger consistent');

SELECT * FROM finish();
ROLLBACK;
