-- gamification.sql: pgTAP suite for what a program defines for its
-- engagement rules: gifq_set_rule, gifq_create_challenge,
-- gifq_define_streak and gifq_define_threshold, and for recording events
-- by them (gifq_record_event).  Every refusal is checked with its SQLSTATE
-- and message, and refused calls change nothing.
BEGIN;
SELECT plan(297);

SELECT gifq_create_program('tap-g', 'USD', 'PTS', 100, 'Europe/Paris');

-- the definitions as one text, to show a refused call changed nothing
CREATE FUNCTION pg_temp.defs() RETURNS text LANGUAGE sql AS $$
	SELECT concat_ws(' | ',
		(SELECT string_agg(format('%s:%s:%s', event_type, points, daily_cap), ',' ORDER BY event_type)
			FROM gifq.rules),
		(SELECT string_agg(format('%s:%s:%s:%s:%s:%s', name, event_type, multiplier,
			max_completions, per_member_limit, ends_at - starts_at), ',' ORDER BY name)
			FROM gifq.challenges),
		(SELECT string_agg(format('%s:%s:%s:%s', streak_type, event_type, period, grace_periods),
			',' ORDER BY streak_type) FROM gifq.streak_types),
		(SELECT string_agg(format('%s:%s:%s', points, action, reward_value), ','
			ORDER BY points, action) FROM gifq.thresholds))
$$;

------------------------------------------------------------------------
-- gifq_set_rule
------------------------------------------------------------------------

SELECT lives_ok($$SELECT gifq_set_rule('tap-g', 'deal.closed', 50)$$, 'rule: set');
SELECT is((SELECT format('%s/%s', points, daily_cap) FROM gifq.rules WHERE event_type = 'deal.closed'),
	'50/', 'rule: 50 points, no daily cap');
SELECT lives_ok($$SELECT gifq_set_rule('tap-g', 'deal.closed', 80, 3)$$, 'rule: set again');
SELECT is((SELECT format('%s/%s', points, daily_cap) FROM gifq.rules WHERE event_type = 'deal.closed'),
	'80/3', 'rule: a second call replaces points and cap');
SELECT is((SELECT count(*) FROM gifq.rules), 1::bigint, 'rule: one row per event type');
SELECT lives_ok($$SELECT gifq_set_rule('tap-g', 'training_completed', 0)$$,
	'rule: zero points is allowed (an event that only counts toward streaks)');
UPDATE gifq.rules SET updated_at = '2000-01-01' WHERE event_type = 'deal.closed';
SELECT gifq_set_rule('tap-g', 'deal.closed', 80, 3);
SELECT is((SELECT updated_at FROM gifq.rules WHERE event_type = 'deal.closed'),
	'2000-01-01'::timestamptz, 'rule: setting the same values again writes nothing');

SELECT pg_temp.defs() AS before \gset
SELECT throws_ok($$SELECT gifq_set_rule('nope', 'deal.closed', 5)$$, 'QG101',
	'unknown program "nope"', 'rule: unknown program is QG101');
SELECT throws_ok($$SELECT gifq_set_rule('tap-g', 'deal closed', 5)$$, 'QG115',
	'invalid event_type ''deal closed''', 'rule: an event type with a space is QG115');
SELECT throws_ok($$SELECT gifq_set_rule('tap-g', '', 5)$$, 'QG115',
	'invalid event_type ''''', 'rule: an empty event type is QG115');
SELECT throws_ok($$SELECT gifq_set_rule('tap-g', repeat('e', 101), 5)$$, 'QG115', NULL,
	'rule: an event type over 100 characters is QG115');
SELECT throws_ok($$SELECT gifq_set_rule('tap-g', NULL, 5)$$, 'QG115',
	'invalid event_type NULL', 'rule: a NULL event type is QG115');
SELECT throws_ok($$SELECT gifq_set_rule('tap-g', 'deal.closed', -1)$$, 'QG115',
	'invalid points -1', 'rule: negative points are QG115');
SELECT throws_ok($$SELECT gifq_set_rule('tap-g', 'deal.closed', NULL)$$, 'QG115',
	'invalid points NULL', 'rule: NULL points are QG115');
SELECT throws_ok($$SELECT gifq_set_rule('tap-g', 'deal.closed', 5, 0)$$, 'QG115',
	'invalid daily_cap 0', 'rule: a daily cap of 0 is QG115');
SELECT is(pg_temp.defs(), :'before', 'rule: refused calls changed nothing');

------------------------------------------------------------------------
-- gifq_create_challenge
------------------------------------------------------------------------

SELECT gifq_create_challenge('tap-g', 'double-deals', 'deal.closed',
	'2026-12-01 00:00+01', '2027-01-01 00:00+01', 2, 100, 3) AS c1 \gset
SELECT ok(:c1 > 0, 'challenge: created');
SELECT is(gifq_create_challenge('tap-g', 'double-deals', 'deal.closed',
	'2026-12-01 00:00+01', '2027-01-01 00:00+01', 2, 100, 3), :c1::bigint,
	'challenge: the same call returns the same id');
SELECT is(gifq_create_challenge('tap-g', 'double-deals', 'deal.closed',
	'2026-11-30 23:00+00', '2026-12-31 23:00+00', 2.0, 100, 3), :c1::bigint,
	'challenge: equal times and multipliers in other spellings are the same call');
SELECT is((SELECT format('%s/%s/%s/%s', event_type, multiplier, max_completions, per_member_limit)
	FROM gifq.challenges WHERE id = :c1), 'deal.closed/2/100/3', 'challenge: stored as given');
SELECT isnt(gifq_create_challenge('tap-g', 'triple-deals', 'deal.closed',
	'2026-12-01 00:00+01', '2026-12-08 00:00+01', 3), :c1::bigint,
	'challenge: another name is another challenge');
SELECT is((SELECT format('%s/%s/%s', multiplier, max_completions, per_member_limit)
	FROM gifq.challenges WHERE name = 'triple-deals'), '3//', 'challenge: limits default to none');
SELECT gifq_create_challenge('tap-g', 'default-mult', 'deal.closed', '2026-12-01', '2026-12-02') AS c3 \gset
SELECT is((SELECT multiplier FROM gifq.challenges WHERE id = :c3), 2::numeric,
	'challenge: the multiplier defaults to 2');

SELECT pg_temp.defs() AS before \gset
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'double-deals', 'training_completed',
	'2026-12-01 00:00+01', '2027-01-01 00:00+01', 2, 100, 3)$$, 'QG109',
	'challenge "double-deals" exists with a different event_type',
	'challenge: same name, other event type is QG109');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'double-deals', 'deal.closed',
	'2026-12-02 00:00+01', '2027-01-01 00:00+01', 2, 100, 3)$$, 'QG109',
	'challenge "double-deals" exists with a different starts_at', 'challenge: other start is QG109');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'double-deals', 'deal.closed',
	'2026-12-01 00:00+01', '2027-01-02 00:00+01', 2, 100, 3)$$, 'QG109',
	'challenge "double-deals" exists with a different ends_at', 'challenge: other end is QG109');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'double-deals', 'deal.closed',
	'2026-12-01 00:00+01', '2027-01-01 00:00+01', 3, 100, 3)$$, 'QG109',
	'challenge "double-deals" exists with a different multiplier', 'challenge: other multiplier is QG109');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'double-deals', 'deal.closed',
	'2026-12-01 00:00+01', '2027-01-01 00:00+01', 2, NULL, 3)$$, 'QG109',
	'challenge "double-deals" exists with a different max_completions',
	'challenge: other max_completions is QG109');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'double-deals', 'deal.closed',
	'2026-12-01 00:00+01', '2027-01-01 00:00+01', 2, 100, 4)$$, 'QG109',
	'challenge "double-deals" exists with a different per_member_limit',
	'challenge: other per_member_limit is QG109');
SELECT throws_ok($$SELECT gifq_create_challenge('nope', 'x', 'deal.closed', '2026-12-01', '2026-12-02')$$,
	'QG101', 'unknown program "nope"', 'challenge: unknown program is QG101');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', ' x', 'deal.closed', '2026-12-01', '2026-12-02')$$,
	'QG115', 'invalid challenge name " x"', 'challenge: a name with a leading space is QG115');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'x', 'deal closed', '2026-12-01', '2026-12-02')$$,
	'QG115', 'invalid event_type ''deal closed''', 'challenge: a bad event type is QG115');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'x', 'deal.closed', '2026-12-02', '2026-12-02')$$,
	'QG115', NULL, 'challenge: an empty period is QG115');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'x', 'deal.closed', '2026-12-01', 'infinity')$$,
	'QG115', NULL, 'challenge: an infinite end is QG115');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'x', 'deal.closed', NULL, '2026-12-02')$$,
	'QG115', NULL, 'challenge: a NULL start is QG115');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'x', 'deal.closed', '2026-12-01', '2026-12-02', 0.5)$$,
	'QG115', 'invalid multiplier 0.5', 'challenge: a multiplier below 1 is QG115');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'x', 'deal.closed', '2026-12-01', '2026-12-02', 'NaN')$$,
	'QG115', 'invalid multiplier NaN', 'challenge: a NaN multiplier is QG115');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'x', 'deal.closed', '2026-12-01', '2026-12-02', 1001)$$,
	'QG115', 'invalid multiplier 1001', 'challenge: a multiplier over 1000 is QG115');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'x', 'deal.closed', '2026-12-01', '2026-12-02', 2, 0)$$,
	'QG115', 'invalid max_completions 0', 'challenge: max_completions 0 is QG115');
SELECT throws_ok($$SELECT gifq_create_challenge('tap-g', 'x', 'deal.closed', '2026-12-01', '2026-12-02', 2, NULL, -2)$$,
	'QG115', 'invalid per_member_limit -2', 'challenge: a negative per_member_limit is QG115');
SELECT is(pg_temp.defs(), :'before', 'challenge: refused calls changed nothing');

------------------------------------------------------------------------
-- gifq_define_streak
------------------------------------------------------------------------

SELECT lives_ok($$SELECT gifq_define_streak('tap-g', 'weekly-deals', 'deal.closed', 'week')$$,
	'streak: defined');
SELECT is((SELECT format('%s/%s/%s', event_type, period, grace_periods) FROM gifq.streak_types
	WHERE streak_type = 'weekly-deals'), 'deal.closed/week/1', 'streak: one grace period by default');
SELECT lives_ok($$SELECT gifq_define_streak('tap-g', 'weekly-deals', 'deal.closed', 'week', 1)$$,
	'streak: the same definition again is accepted');
SELECT gifq_define_streak('tap-g', 'weekly-deals', 'deal.closed', 'week', 2);
SELECT is((SELECT grace_periods FROM gifq.streak_types WHERE streak_type = 'weekly-deals'), 2,
	'streak: the grace can change');
SELECT pg_temp.defs() AS before \gset
SELECT throws_ok($$SELECT gifq_define_streak('tap-g', 'weekly-deals', 'deal.closed', 'day')$$,
	'QG109', 'streak type "weekly-deals" exists with a different period',
	'streak: another period for the same type is QG109');
SELECT throws_ok($$SELECT gifq_define_streak('tap-g', 'weekly-deals', 'training_completed', 'week')$$,
	'QG109', 'streak type "weekly-deals" exists with a different event_type',
	'streak: another event type for the same type is QG109');
SELECT throws_ok($$SELECT gifq_define_streak('tap-g', 'daily', 'deal.closed', 'year')$$,
	'QG115', 'invalid period ''year''', 'streak: an unknown period is QG115');
SELECT throws_ok($$SELECT gifq_define_streak('tap-g', 'daily', 'deal.closed', 'day', -1)$$,
	'QG115', 'invalid grace_periods -1', 'streak: negative grace is QG115');
SELECT throws_ok($$SELECT gifq_define_streak('tap-g', 'daily', 'deal.closed', 'day', NULL)$$,
	'QG115', 'invalid grace_periods NULL', 'streak: NULL grace is QG115');
SELECT throws_ok($$SELECT gifq_define_streak('tap-g', 'daily streak', 'deal.closed', 'day')$$,
	'QG115', 'invalid streak_type ''daily streak''', 'streak: a bad streak type is QG115');
SELECT throws_ok($$SELECT gifq_define_streak('nope', 'daily', 'deal.closed', 'day')$$,
	'QG101', 'unknown program "nope"', 'streak: unknown program is QG101');
SELECT is(pg_temp.defs(), :'before', 'streak: refused calls changed nothing');

------------------------------------------------------------------------
-- gifq_define_threshold
------------------------------------------------------------------------

SELECT gifq_define_threshold('tap-g', 1000, 'unlock') AS t1 \gset
SELECT ok(:t1 > 0, 'threshold: unlock defined');
SELECT is(gifq_define_threshold('tap-g', 1000, 'unlock'), :t1::bigint,
	'threshold: the same call returns the same id');
SELECT gifq_define_threshold('tap-g', 1000, 'reward', '10.00 USD') AS t2 \gset
SELECT isnt(:t2::bigint, :t1::bigint, 'threshold: a reward at the same points is another threshold');
SELECT is(gifq_define_threshold('tap-g', 1000, 'reward', '10 USD'), :t2::bigint,
	'threshold: an equal reward in another spelling is the same call');
SELECT pg_temp.defs() AS before \gset
SELECT throws_ok($$SELECT gifq_define_threshold('tap-g', 1000, 'reward', '20.00 USD')$$, 'QG109',
	'threshold reward 1000 exists with a different reward_value (10.00 USD)',
	'threshold: another reward value is QG109');
SELECT throws_ok($$SELECT gifq_define_threshold('tap-g', 2000, 'reward')$$, 'QG115',
	'invalid reward_value NULL', 'threshold: a reward without a value is QG115');
SELECT throws_ok($$SELECT gifq_define_threshold('tap-g', 2000, 'reward', '100 PTS')$$, 'QG115',
	'invalid reward_value 100 PTS', 'threshold: a reward in the program''s points is QG115');
SELECT throws_ok($$SELECT gifq_define_threshold('tap-g', 2000, 'reward', '0.00 USD')$$, 'QG115',
	'invalid reward_value 0.00 USD', 'threshold: a zero reward is QG115');
SELECT throws_ok($$SELECT gifq_define_threshold('tap-g', 2000, 'unlock', '5.00 USD')$$, 'QG115',
	'invalid reward_value 5.00 USD for action unlock', 'threshold: an unlock with a value is QG115');
SELECT throws_ok($$SELECT gifq_define_threshold('tap-g', 0, 'unlock')$$, 'QG115',
	'invalid points 0', 'threshold: zero points is QG115');
SELECT throws_ok($$SELECT gifq_define_threshold('tap-g', 2000, 'badge')$$, 'QG115',
	'invalid action ''badge''', 'threshold: an unknown action is QG115');
SELECT throws_ok($$SELECT gifq_define_threshold('nope', 2000, 'unlock')$$, 'QG101',
	'unknown program "nope"', 'threshold: unknown program is QG101');
SELECT is(pg_temp.defs(), :'before', 'threshold: refused calls changed nothing');

------------------------------------------------------------------------
-- gifq_record_event
------------------------------------------------------------------------

-- a program of its own, in a time zone with DST; times are given
-- explicitly (challenge windows in the past) except where now() is tested
DO $$ BEGIN
	PERFORM gifq_create_program('tap-ev', 'USD', 'PTS', 100, 'Europe/Paris');
	PERFORM gifq_upsert_member('tap-ev', m) FROM unnest(ARRAY['ana', 'bob', 'cy']) m;
	PERFORM gifq_upsert_member('tap-g', 'gina');
	PERFORM gifq_set_rule('tap-ev', 'lesson', 5);
	PERFORM gifq_set_rule('tap-ev', 'deal.closed', 10, 2);
	PERFORM gifq_set_rule('tap-ev', 'visit', 0);
	PERFORM gifq_set_rule('tap-ev', 'checkin', 7);
END $$;
-- three challenges on lessons in January (Paris), in id order
SELECT gifq_create_challenge('tap-ev', 'jan-double', 'lesson',
	'2026-01-01 00:00+01', '2026-02-01 00:00+01', 2) AS jd \gset
SELECT gifq_create_challenge('tap-ev', 'jan-half', 'lesson',
	'2026-01-01 00:00+01', '2026-02-01 00:00+01', 1.5, 2) AS jh \gset
SELECT gifq_create_challenge('tap-ev', 'jan-once', 'lesson',
	'2026-01-01 00:00+01', '2026-02-01 00:00+01', 1.3, NULL, 1) AS jo \gset
SELECT gifq_create_challenge('tap-ev', 'login-bonus', 'login',
	'2026-01-01 00:00+01', '2026-02-01 00:00+01', 5) AS lb \gset
-- the DST day of 2026 in Paris (29 March: 23 hours)
SELECT gifq_create_challenge('tap-ev', 'dst-triple', 'deal.closed',
	'2026-03-29 00:00+01', '2026-03-30 00:00+02', 3) AS dt \gset

-- an event recorded, summed up in one line
CREATE FUNCTION pg_temp.rec(member text, event_type text, key text, at timestamptz,
	attrs jsonb DEFAULT '{}') RETURNS text LANGUAGE sql AS $$
	SELECT format('%s pts, balance %s; rule %s; applied %s; skipped %s',
		r.points_awarded, r.balance,
		coalesce(r.details->'rule'->>'points'
			|| CASE WHEN (r.details->'rule'->>'capped')::boolean THEN ' capped' ELSE '' END, 'none'),
		(SELECT coalesce(string_agg(format('%s+%s', c->>'name', c->>'bonus'), ',' ORDER BY i), '-')
			FROM jsonb_array_elements(r.details->'challenges') WITH ORDINALITY x(c, i)),
		(SELECT coalesce(string_agg(format('%s:%s', c->>'name', c->>'reason'), ',' ORDER BY i), '-')
			FROM jsonb_array_elements(r.details->'skipped_challenges') WITH ORDINALITY x(c, i)))
	FROM gifq_record_event('tap-ev', member, event_type, key, at, attrs) r
$$;
-- SQLSTATE, message and detail of a refused statement
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN format('%s %s (%s)', st, msg, det);
END $$;
-- what events change, as one text, to show a refused call changed nothing
CREATE FUNCTION pg_temp.ev_state() RETURNS text LANGUAGE sql AS $$
	SELECT format('events %s, completions %s, counters %s, transfers %s, balances %s',
		(SELECT count(*) FROM gifq.events),
		(SELECT count(*) FROM gifq.challenge_completions),
		(SELECT sum(completions) FROM gifq.challenges),
		(SELECT count(*) FROM gifq.transfers),
		(SELECT string_agg(format('%s=%s', m.external_id,
			(gifq_member_balance(p.code, m.external_id)).available), ',' ORDER BY p.code, m.external_id)
			FROM gifq.members m JOIN gifq.programs p ON p.id = m.program_id))
$$;
-- a transfer: kind, amount, and its accounts by member or kind
CREATE FUNCTION pg_temp.xfer(id bigint) RETURNS text LANGUAGE sql AS $$
	SELECT format('%s %s: %s -> %s', t.kind, gifq_from_minor_units(t.amount, t.currency),
		coalesce(dm.external_id, d.kind), coalesce(cm.external_id, c.kind))
	FROM gifq.transfers t
	JOIN gifq.accounts d ON d.id = t.debit_account_id LEFT JOIN gifq.members dm ON dm.id = d.member_id
	JOIN gifq.accounts c ON c.id = t.credit_account_id LEFT JOIN gifq.members cm ON cm.id = c.member_id
	WHERE t.id = xfer.id
$$;

-- base and challenges: 5 + round(5 x 1) + round(5 x 0.5 = 2.5 -> 3) + round(5 x 0.3 = 1.5 -> 2)
CREATE TEMP TABLE l1 AS SELECT * FROM gifq_record_event('tap-ev', 'ana', 'lesson', 'ana-l1',
	'2026-01-10 12:00+01', '{"lesson": "L1"}');
SELECT is((SELECT points_awarded FROM l1), 15::bigint,
	'event: base plus every running challenge''s bonus, each on the base (no compounding)');
SELECT is((SELECT balance::text FROM l1), '15 PTS', 'event: balance is the member''s points after it');
SELECT is((SELECT details - 'transfer_id' FROM l1), jsonb_build_object(
	'rule', '{"points": 5, "rule_points": 5, "daily_cap": null, "capped": false}'::jsonb,
	'challenges', jsonb_build_array(
		jsonb_build_object('challenge_id', :jd, 'name', 'jan-double', 'multiplier', 2, 'bonus', 5),
		jsonb_build_object('challenge_id', :jh, 'name', 'jan-half', 'multiplier', 1.5, 'bonus', 3),
		jsonb_build_object('challenge_id', :jo, 'name', 'jan-once', 'multiplier', 1.3, 'bonus', 2)),
	'skipped_challenges', '[]'::jsonb),
	'event: details list the rule and the applied challenges in id order, halves rounded up');
SELECT is(pg_temp.xfer((SELECT (details->>'transfer_id')::bigint FROM l1)),
	'posted 15 PTS: issuance -> ana', 'event: one posted transfer from issuance to the member');
SELECT is((SELECT format('%s/%s/%s/%s/%s', e.member_id = m.id, e.base_points, e.points,
	e.transfer_id = (l.details->>'transfer_id')::bigint, e.attributes)
	FROM gifq.events e JOIN l1 l ON l.event_id = e.id JOIN gifq.members m ON m.external_id = 'ana'
		AND m.program_id = e.program_id), 't/5/15/t/{"lesson": "L1"}',
	'event: stored with its member, base, points, transfer and attributes');
SELECT is((gifq_member_balance('tap-ev', 'ana')).available::text, '15 PTS',
	'event: the points are available to the member');

-- per_member_limit and max_completions
SELECT is(pg_temp.rec('ana', 'lesson', 'ana-l2', '2026-01-11 12:00+01'),
	'13 pts, balance 28 PTS; rule 5; applied jan-double+5,jan-half+3; skipped jan-once:per_member_limit',
	'event: a challenge the member completed per_member_limit times is skipped');
SELECT is(pg_temp.rec('bob', 'lesson', 'bob-l1', '2026-01-12 12:00+01'),
	'12 pts, balance 12 PTS; rule 5; applied jan-double+5,jan-once+2; skipped jan-half:max_completions',
	'event: a challenge completed max_completions times in the program is skipped');
SELECT is(pg_temp.rec('cy', 'lesson', 'cy-l1', '2026-01-01 00:00+01'),
	'12 pts, balance 12 PTS; rule 5; applied jan-double+5,jan-once+2; skipped jan-half:max_completions',
	'event: at a challenge''s starts_at it runs');
-- challenges not running at occurred_at are in neither list
SELECT is(pg_temp.rec('ana', 'lesson', 'ana-l0', '2025-12-31 23:59:59+01'),
	'5 pts, balance 33 PTS; rule 5; applied -; skipped -',
	'event: a late event before the challenges started gets none of them');
SELECT is(pg_temp.rec('ana', 'lesson', 'ana-l3', '2026-02-01 00:00+01'),
	'5 pts, balance 38 PTS; rule 5; applied -; skipped -', 'event: at a challenge''s ends_at it has ended');
SELECT is((SELECT string_agg(format('%s:%s/%s', name, completions,
		(SELECT count(*) FROM gifq.challenge_completions cc WHERE cc.challenge_id = c.id)), ',' ORDER BY id)
	FROM gifq.challenges c WHERE program_id = (SELECT id FROM gifq.programs WHERE code = 'tap-ev')),
	'jan-double:0/4,jan-half:2/2,jan-once:0/3,login-bonus:0/0,dst-triple:0/0',
	'event: the completions counter moves only for a challenge with max_completions');
SELECT is((SELECT sum(bonus) FROM gifq.challenge_completions WHERE challenge_id = :jh), 6::numeric,
	'event: each completion keeps its bonus');

-- no rule, or a rule of 0 points: no base points, no challenge, no transfer
SELECT is(pg_temp.rec('ana', 'login', 'ana-login', '2026-01-15 09:00+01'),
	'0 pts, balance 38 PTS; rule none; applied -; skipped login-bonus:no_base_points',
	'event: without a rule there are no points, and challenges are skipped');
SELECT is((SELECT details FROM gifq.events WHERE idempotency_key = 'ana-login'),
	jsonb_build_object('rule', NULL, 'challenges', '[]'::jsonb, 'skipped_challenges',
		jsonb_build_array(jsonb_build_object('challenge_id', :lb, 'name', 'login-bonus',
			'reason', 'no_base_points')), 'transfer_id', NULL),
	'event: without a rule, details show rule null, the skipped challenge and no transfer');
SELECT is((SELECT format('%s/%s/%s/%s', base_points, points, transfer_id, balance_after)
	FROM gifq.events WHERE idempotency_key = 'ana-login'), '0/0//38',
	'event: an event with no points is recorded without a transfer, with the balance unchanged');
SELECT is(pg_temp.rec('ana', 'visit', 'ana-visit', '2026-01-15 09:00+01'),
	'0 pts, balance 38 PTS; rule 0; applied -; skipped -', 'event: a rule of 0 points gives 0');
SELECT is((SELECT details->'rule' FROM gifq.events WHERE idempotency_key = 'ana-visit'),
	'{"points": 0, "rule_points": 0, "daily_cap": null, "capped": false}'::jsonb,
	'event: a rule of 0 points is not "capped"');

-- the daily cap counts rewarded events of the program's day: in Paris, 29
-- March 2026 runs from 00:00+01 to 24:00+02 (23 hours)
SELECT is(pg_temp.rec('ana', 'deal.closed', 'ana-d1', '2026-03-29 00:30+01'),
	'30 pts, balance 68 PTS; rule 10; applied dst-triple+20; skipped -', 'cap: first event of the day');
SELECT is(pg_temp.rec('ana', 'deal.closed', 'ana-d2', '2026-03-29 23:30+02'),
	'30 pts, balance 98 PTS; rule 10; applied dst-triple+20; skipped -',
	'cap: second event of the day (UTC: another day)');
SELECT is(pg_temp.rec('ana', 'deal.closed', 'ana-d3', '2026-03-29 12:00+02'),
	'0 pts, balance 98 PTS; rule 0 capped; applied -; skipped dst-triple:no_base_points',
	'cap: a late third event of the same local day is capped, and its challenge skipped');
SELECT is((SELECT jsonb_build_object('base', base_points, 'points', points,
		'rule', details->'rule', 'transfer_id', details->'transfer_id')
	FROM gifq.events WHERE idempotency_key = 'ana-d3'),
	'{"base": 0, "points": 0, "rule": {"points": 0, "rule_points": 10, "daily_cap": 2, "capped": true},
		"transfer_id": null}'::jsonb,
	'cap: the capped event has base 0, capped true and no transfer');
SELECT is(pg_temp.rec('ana', 'deal.closed', 'ana-d4', '2026-03-30 00:10+02'),
	'10 pts, balance 108 PTS; rule 10; applied -; skipped -',
	'cap: ten minutes after local midnight is a new day (23 hours after the first)');
SELECT is(pg_temp.rec('ana', 'deal.closed', 'ana-d5', '2026-03-28 23:50+01'),
	'10 pts, balance 118 PTS; rule 10; applied -; skipped -',
	'cap: a late event counts toward its own day, before the challenge ran');
SELECT is(pg_temp.rec('ana', 'deal.closed', 'ana-d6', '2026-03-28 08:00+01'),
	'10 pts, balance 128 PTS; rule 10; applied -; skipped -', 'cap: its day has room for two');
SELECT is(pg_temp.rec('ana', 'deal.closed', 'ana-d7', '2026-03-28 00:00+01'),
	'0 pts, balance 128 PTS; rule 0 capped; applied -; skipped -', 'cap: then that day is capped too');
SELECT is(pg_temp.rec('bob', 'deal.closed', 'bob-d1', '2026-03-29 00:00+01'),
	'30 pts, balance 42 PTS; rule 10; applied dst-triple+20; skipped -',
	'cap: another member''s events do not count; at the challenge''s start it runs');
SELECT is(pg_temp.rec('bob', 'deal.closed', 'bob-d2', '2026-03-30 00:00+02'),
	'10 pts, balance 52 PTS; rule 10; applied -; skipped -',
	'cap: local midnight starts a new day and ends the challenge');
SELECT is(pg_temp.rec('bob', 'deal.closed', 'bob-d3', '2026-03-29 20:00+02'),
	'30 pts, balance 82 PTS; rule 10; applied dst-triple+20; skipped -',
	'cap: the 23-hour day ends at local midnight (the event just after does not count in it)');
DO $$ BEGIN
	PERFORM gifq_record_event('tap-ev', 'cy', 'checkin', k, '2026-03-29 09:00+02')
	FROM unnest(ARRAY['cy-c1', 'cy-c2']) k;
END $$;
SELECT is(pg_temp.rec('cy', 'deal.closed', 'cy-d1', '2026-03-29 11:00+02'),
	'30 pts, balance 56 PTS; rule 10; applied dst-triple+20; skipped -',
	'cap: only events of the rule''s type count (two check-ins that day)');
DO $$ BEGIN PERFORM gifq_set_rule('tap-ev', 'deal.closed', 10, 3); END $$;
SELECT is(pg_temp.rec('ana', 'deal.closed', 'ana-d8', '2026-03-29 18:00+02'),
	'30 pts, balance 158 PTS; rule 10; applied dst-triple+20; skipped -',
	'cap: capped events do not count (cap raised to 3: the day has 2 rewarded, 1 capped)');

-- occurred_at defaults to now(); up to 5 minutes ahead is accepted; the
-- balance is what is available (cy spent 2 points and has 3 on hold)
DO $$ BEGIN
	PERFORM gifq_transfer(gifq_account('tap-ev', 'cy'), gifq_account('tap-ev', NULL, 'issuance'), '2 PTS');
	PERFORM gifq_transfer(gifq_account('tap-ev', 'cy'), gifq_account('tap-ev', NULL, 'issuance'), '3 PTS',
		NULL, true);
END $$;
SELECT is(pg_temp.rec('cy', 'checkin', 'cy-now', NULL),
	'7 pts, balance 58 PTS; rule 7; applied -; skipped -',
	'now: an event without occurred_at; balance net of debits and holds');
SELECT is((SELECT format('%s/%s', occurred_at = now(), occurred_given) FROM gifq.events
	WHERE idempotency_key = 'cy-now'), 't/f', 'now: it happened at now(), not given');
SELECT lives_ok($$SELECT gifq_record_event('tap-ev', 'cy', 'checkin', 'cy-soon',
	clock_timestamp() + interval '4 minutes')$$, 'now: 4 minutes ahead is accepted');
SELECT lives_ok(format('SELECT gifq_record_event(%L, %L, %L, %L, %L)', 'tap-ev', 'cy', 'checkin',
	repeat('k', 200), '2026-01-20 10:00+01'), 'key: 200 characters are accepted');

-- idempotency: the same call again returns the first result, awards nothing
SELECT pg_temp.ev_state() AS before \gset
SELECT is((SELECT r::text FROM gifq_record_event('tap-ev', 'ana', 'lesson', 'ana-l1',
	'2026-01-10 12:00+01', '{"lesson": "L1"}') r), (SELECT l::text FROM l1 l),
	'replay: the same call returns the first result (its balance as it was then)');
SELECT is((SELECT r::text FROM gifq_record_event('tap-ev', 'ana', 'lesson', 'ana-l1',
	'2026-01-10 11:00+00', '{"lesson": "L1"}') r), (SELECT l::text FROM l1 l),
	'replay: the same time in another offset is the same call');
SELECT is((SELECT r::text FROM gifq_record_event('tap-ev', 'ana', 'lesson', 'ana-l1',
	attributes => '{"lesson": "L1"}') r), (SELECT l::text FROM l1 l),
	'replay: a repeat without occurred_at does not compare it');
SELECT is((SELECT event_id FROM gifq_record_event('tap-ev', 'cy', 'checkin', 'cy-now',
	'2026-01-01 00:00+01')), (SELECT id FROM gifq.events WHERE idempotency_key = 'cy-now'),
	'replay: a repeat with occurred_at of an event given without it does not compare it');
SELECT is((SELECT event_id FROM gifq_record_event('tap-ev', 'ana', 'deal.closed', 'ana-d3',
	'2026-03-29 12:00+02')), (SELECT id FROM gifq.events WHERE idempotency_key = 'ana-d3'),
	'replay: a capped event replays as it was');
SELECT is(pg_temp.ev_state(), :'before', 'replay: repeats changed nothing');
SELECT is(pg_temp.err($$SELECT gifq_record_event('tap-ev', 'bob', 'lesson', 'ana-l1',
	'2026-01-10 12:00+01', '{"lesson": "L1"}')$$),
	'QG109 idempotency key "ana-l1" was used for another event (Field "member" differs: another member the first time, "bob" now.)',
	'replay: the key with another member is QG109');
SELECT is(pg_temp.err($$SELECT gifq_record_event('tap-ev', 'ana', 'deal.closed', 'ana-l1',
	'2026-01-10 12:00+01', '{"lesson": "L1"}')$$),
	'QG109 idempotency key "ana-l1" was used for another event (Field "event_type" differs: lesson the first time, deal.closed now.)',
	'replay: the key with another event type is QG109');
SELECT is(pg_temp.err($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', 'ana-l1',
	'2026-01-10 12:01+01', '{"lesson": "L1"}')$$),
	format('QG109 idempotency key "ana-l1" was used for another event (Field "occurred_at" differs: %s the first time, %s now.)',
		'2026-01-10 12:00+01'::timestamptz, '2026-01-10 12:01+01'::timestamptz),
	'replay: the key with another occurred_at is QG109');
SELECT is(pg_temp.err($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', 'ana-l1',
	'2026-01-10 12:00+01', '{"lesson": "L2"}')$$),
	'QG109 idempotency key "ana-l1" was used for another event (Field "attributes" differs.)',
	'replay: the key with other attributes is QG109');
SELECT is(pg_temp.err($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', 'ana-l1', NULL)$$),
	'QG109 idempotency key "ana-l1" was used for another event (Field "attributes" differs.)',
	'replay: the key with the default attributes after others is QG109');

-- refusals
SELECT throws_ok($$SELECT gifq_record_event('nope', 'ana', 'lesson', 'k1')$$, 'QG101',
	'unknown program "nope"', 'refused: unknown program is QG101');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'zed', 'lesson', 'k1')$$, 'QG102',
	'unknown member "zed" in program "tap-ev"', 'refused: unknown member is QG102');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'gina', 'lesson', 'k1')$$, 'QG102',
	'unknown member "gina" in program "tap-ev"', 'refused: a member of another program is QG102');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'ana', 'a b', 'k1')$$, 'QG115',
	'invalid event_type ''a b''', 'refused: an event type with a space is QG115');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'ana', NULL, 'k1')$$, 'QG115',
	'invalid event_type NULL', 'refused: a NULL event type is QG115');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', NULL)$$, 'QG115',
	'invalid idempotency key NULL', 'refused: a NULL key is QG115');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', '')$$, 'QG115',
	'invalid idempotency key ''''', 'refused: an empty key is QG115');
SELECT throws_ok(format('SELECT gifq_record_event(%L, %L, %L, %L)', 'tap-ev', 'ana', 'lesson',
	repeat('k', 201)), 'QG115', format('invalid idempotency key %L', repeat('k', 201)),
	'refused: a key of 201 characters is QG115');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', 'k1', 'infinity')$$, 'QG115',
	'invalid occurred_at infinity', 'refused: an infinite occurred_at is QG115');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', 'k1', '-infinity')$$, 'QG115',
	'invalid occurred_at -infinity', 'refused: occurred_at -infinity is QG115');
SELECT matches(pg_temp.err($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', 'k1',
	clock_timestamp() + interval '6 minutes')$$), '^QG115 invalid occurred_at \d{4}-',
	'refused: occurred_at more than 5 minutes ahead is QG115');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', 'k1', NULL, '[1]')$$, 'QG115',
	'invalid attributes [1]', 'refused: attributes not an object are QG115');
SELECT throws_ok($$SELECT gifq_record_event('tap-ev', 'ana', 'lesson', 'k1', NULL, NULL)$$, 'QG115',
	'invalid attributes NULL', 'refused: NULL attributes are QG115');
SELECT is(pg_temp.ev_state(), :'before', 'refused: refused calls changed nothing');

-- keys are per program
SELECT isnt((SELECT event_id FROM gifq_record_event('tap-g', 'gina', 'login', 'ana-l1',
	'2026-01-10 12:00+01', '{"lesson": "L1"}')), (SELECT event_id FROM l1),
	'replay: the same key in another program is another event');

-- events and completions are kept for good
SELECT throws_ok($$UPDATE gifq.events SET points = 0$$, 'QG120',
	'rows of gifq.events are immutable: UPDATE refused', 'immutable: events refuse UPDATE');
SELECT throws_ok($$DELETE FROM gifq.events$$, 'QG120',
	'rows of gifq.events are immutable: DELETE refused', 'immutable: events refuse DELETE');
SELECT throws_ok($$TRUNCATE gifq.events$$, 'QG120',
	'rows of gifq.events are immutable: TRUNCATE refused', 'immutable: events refuse TRUNCATE');
SELECT throws_ok($$UPDATE gifq.challenge_completions SET bonus = 0$$, 'QG120',
	'rows of gifq.challenge_completions are immutable: UPDATE refused',
	'immutable: completions refuse UPDATE');
SELECT throws_ok($$DELETE FROM gifq.challenge_completions$$, 'QG120',
	'rows of gifq.challenge_completions are immutable: DELETE refused',
	'immutable: completions refuse DELETE');
SELECT throws_ok($$TRUNCATE gifq.challenge_completions$$, 'QG120',
	'rows of gifq.challenge_completions are immutable: TRUNCATE refused',
	'immutable: completions refuse TRUNCATE');

------------------------------------------------------------------------
-- gifq_record_events: the bulk form
------------------------------------------------------------------------

SELECT gifq_create_program('tap-bulk', 'USD', 'PTS', 100, 'Europe/Paris');
SELECT gifq_upsert_member('tap-bulk', 'ann'), gifq_upsert_member('tap-bulk', 'bea');
SELECT gifq_set_rule('tap-bulk', 'deal.closed', 10, 2);
SELECT gifq_create_challenge('tap-bulk', 'first-two', 'deal.closed',
	'2026-01-01 00:00+01', '2026-02-01 00:00+01', 2, 2);
SELECT pg_temp.ev_state() AS before \gset
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-bulk', '[
	{"member": "ann", "event_type": "deal.closed", "idempotency_key": "k1"},
	{"member": "ann", "event_type": "deal.closed"}]')$$),
	'QG118 invalid event 2 in batch: {"member": "ann", "event_type": "deal.closed"} ()',
	'bulk: an event without a key is QG118 naming it');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-bulk', '[
	{"member": "ann", "event_type": "deal.closed", "idempotency_key": "k1", "points": 5}]')$$),
	'QG118 unknown field "points" in event 1 of batch ()', 'bulk: an unknown field is QG118');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-bulk', '[
	{"member": "ann", "event_type": "deal.closed", "idempotency_key": "k1", "occurred_at": "yesterday-ish"}]')$$),
	'QG118 invalid occurred_at "yesterday-ish" in event 1 of batch ()', 'bulk: an unreadable time is QG118');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-bulk', '[]')$$),
	'QG118 invalid event batch [] ()', 'bulk: an empty batch is QG118');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-bulk', '{"member": "ann"}')$$),
	'QG118 invalid event batch {"member": "ann"} ()', 'bulk: an object instead of an array is QG118');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-bulk', '[
	{"member": "ann", "event_type": "deal.closed", "idempotency_key": "k1", "occurred_at": "2026-01-05T10:00:00Z"},
	{"member": "zed", "event_type": "deal.closed", "idempotency_key": "k2", "occurred_at": "2026-01-05T10:00:00Z"}]')$$),
	'QG102 unknown member "zed" in program "tap-bulk" ()', 'bulk: an unknown member is QG102');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('nope', '[]')$$),
	'QG101 unknown program "nope" ()', 'bulk: an unknown program is QG101');
SELECT is(pg_temp.ev_state(), :'before', 'bulk: refused batches record nothing, not even their good events');

SELECT results_eq($$SELECT idempotency_key, points_awarded, balance::text,
		details->'rule'->>'capped', jsonb_array_length(details->'challenges')
	FROM gifq_record_events('tap-bulk', '[
	{"member": "ann", "event_type": "deal.closed", "idempotency_key": "b1", "occurred_at": "2026-01-05T10:00:00Z"},
	{"member": "bea", "event_type": "deal.closed", "idempotency_key": "b2", "occurred_at": "2026-01-05T10:00:00Z", "attributes": {"deal": "D-2"}},
	{"member": "ann", "event_type": "deal.closed", "idempotency_key": "b3", "occurred_at": "2026-01-05T11:00:00Z"},
	{"member": "ann", "event_type": "deal.closed", "idempotency_key": "b4", "occurred_at": "2026-01-05T12:00:00Z"},
	{"member": "ann", "event_type": "deal.closed", "idempotency_key": "b1", "occurred_at": "2026-01-05T10:00:00Z"}]')$$,
	$$VALUES ('b1', 20::bigint, '20 PTS', 'false', 1), ('b2', 20::bigint, '20 PTS', 'false', 1),
		('b3', 10::bigint, '30 PTS', 'false', 0), ('b4', 0::bigint, '30 PTS', 'true', 0),
		('b1', 20::bigint, '20 PTS', 'false', 1)$$,
	'bulk: events in the batch''s order, as single calls would go: first two completions, the cap, a replay');
SELECT is((SELECT attributes FROM gifq.events WHERE idempotency_key = 'b2'), '{"deal": "D-2"}'::jsonb,
	'bulk: attributes are stored');
SELECT is((SELECT occurred_given FROM gifq.events WHERE idempotency_key = 'b1'), true,
	'bulk: a given time is marked as given');
SELECT is((SELECT count(*) FROM gifq.events e JOIN gifq.programs p ON p.id = e.program_id
	WHERE p.code = 'tap-bulk'), 4::bigint, 'bulk: four events stored (the repeat replayed)');

-- a batch gives, element by element, what the same calls one by one give:
-- caps in the program's day, per-member and program limits on challenges,
-- zero-point and unknown types, replays; and leaves the same completions,
-- counters, streaks, threshold hits and balances
DO $$
DECLARE
	p text;
BEGIN
	FOREACH p IN ARRAY ARRAY['tap-one', 'tap-set'] LOOP
		PERFORM gifq_create_program(p, 'USD', 'PTS', 100, 'Europe/Paris');
		PERFORM gifq_upsert_member(p, m) FROM unnest(ARRAY['ann', 'bea', 'cid']) m;
		PERFORM gifq_set_rule(p, 'deal', 10, 2);
		PERFORM gifq_set_rule(p, 'visit', 0);
		PERFORM gifq_set_rule(p, 'lesson', 5);
		PERFORM gifq_create_challenge(p, 'first-three', 'deal',
			'2026-01-01 00:00+01', '2026-02-01 00:00+01', 2, 3);
		PERFORM gifq_create_challenge(p, 'once-each', 'deal',
			'2026-01-01 00:00+01', '2026-02-01 00:00+01', 1.5, NULL, 1);
		PERFORM gifq_create_challenge(p, 'lessons', 'lesson',
			'2026-01-01 00:00+01', '2026-01-08 00:00+01', 3);
		PERFORM gifq_define_threshold(p, 40, 'unlock');
		PERFORM gifq_define_streak(p, 'daily-deals', 'deal', 'day', 0);
		PERFORM gifq_define_streak(p, 'deals-grace', 'deal', 'day', 1);
	END LOOP;
	-- cid is blocked (still earns) and starts with 30 points
	PERFORM gifq_block_member(q, 'cid') FROM unnest(ARRAY['tap-one', 'tap-set']) q;
	PERFORM gifq_transfer(gifq_account(q, NULL, 'issuance'), gifq_account(q, 'cid'), '30 PTS')
	FROM unnest(ARRAY['tap-one', 'tap-set']) q;
END $$;
CREATE TEMP TABLE batch (events jsonb);
-- times in UTC; Paris is UTC+1 in January
INSERT INTO batch VALUES ('[
	{"member": "ann", "event_type": "deal", "idempotency_key": "k1", "occurred_at": "2026-01-05T10:00:00Z"},
	{"member": "bea", "event_type": "deal", "idempotency_key": "k2", "occurred_at": "2026-01-05T10:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "k3", "occurred_at": "2026-01-05T11:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "k4", "occurred_at": "2026-01-05T12:00:00Z"},
	{"member": "cid", "event_type": "deal", "idempotency_key": "k5", "occurred_at": "2026-01-06T09:00:00Z"},
	{"member": "ann", "event_type": "visit", "idempotency_key": "k6", "occurred_at": "2026-01-06T09:00:00Z"},
	{"member": "ann", "event_type": "other.type", "idempotency_key": "k7", "occurred_at": "2026-01-06T09:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "k1", "occurred_at": "2026-01-05T10:00:00Z"},
	{"member": "bea", "event_type": "lesson", "idempotency_key": "k8", "occurred_at": "2026-01-07T22:59:00Z", "attributes": {"x": 1}},
	{"member": "bea", "event_type": "lesson", "idempotency_key": "k9", "occurred_at": "2026-01-07T23:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "k10", "occurred_at": "2026-01-04T23:30:00Z"},
	{"member": "cid", "event_type": "deal", "idempotency_key": "k11", "occurred_at": "2026-01-06T22:59:00Z"},
	{"member": "cid", "event_type": "deal", "idempotency_key": "k12", "occurred_at": "2026-01-06T23:01:00Z"},
	{"member": "bea", "event_type": "deal", "idempotency_key": "k13", "occurred_at": "2026-01-03T10:00:00Z"},
	{"member": "bea", "event_type": "lesson", "idempotency_key": "k8", "attributes": {"x": 1}},
	{"member": "cid", "event_type": "deal", "idempotency_key": "k14", "occurred_at": "2026-01-08T10:00:00Z"}]');
-- details without the ids that differ between the two programs
CREATE FUNCTION pg_temp.norm(d jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('rule', d->'rule', 'has_transfer', d->'transfer_id' <> 'null',
		'challenges', (SELECT coalesce(jsonb_agg(c - 'challenge_id' ORDER BY i), '[]')
			FROM jsonb_array_elements(d->'challenges') WITH ORDINALITY x(c, i)),
		'skipped', (SELECT coalesce(jsonb_agg(c - 'challenge_id' ORDER BY i), '[]')
			FROM jsonb_array_elements(d->'skipped_challenges') WITH ORDINALITY x(c, i)))
$$;
CREATE TEMP TABLE one_by_one (i bigint, key text, points bigint, balance text, details jsonb);
DO $$
DECLARE
	e record;
BEGIN
	FOR e IN SELECT x.ev, x.i FROM batch, jsonb_array_elements(events) WITH ORDINALITY x(ev, i)
		ORDER BY x.i LOOP
		INSERT INTO one_by_one SELECT e.i, e.ev->>'idempotency_key', r.points_awarded,
			r.balance::text, pg_temp.norm(r.details)
		FROM gifq_record_event('tap-one', e.ev->>'member', e.ev->>'event_type',
			e.ev->>'idempotency_key', (e.ev->>'occurred_at')::timestamptz,
			coalesce(e.ev->'attributes', '{}')) r;
	END LOOP;
END $$;
CREATE TEMP TABLE set_wise AS
	SELECT row_number() OVER () AS i, r.idempotency_key AS key, r.points_awarded AS points,
		r.balance::text AS balance, pg_temp.norm(r.details) AS details
	FROM gifq_record_events('tap-set', (SELECT events FROM batch)) r;
SELECT results_eq($$SELECT * FROM set_wise ORDER BY i$$, $$SELECT * FROM one_by_one ORDER BY i$$,
	'batch: every element as the same calls one by one (caps, limits, completions, replays)');
SELECT is((SELECT string_agg(format('%s:%s', key, points), ' ' ORDER BY i) FROM set_wise),
	'k1:25 k2:25 k3:20 k4:0 k5:15 k6:0 k7:0 k1:25 k8:15 k9:5 k10:0 k11:10 k12:10 k13:10 k8:15 k14:10',
	'batch: the expected points (first three completions, once each, the Paris day''s cap, the lessons challenge''s end)');
-- what each program keeps, without ids
CREATE FUNCTION pg_temp.kept(p text) RETURNS text LANGUAGE sql AS $$
	SELECT format('events %s; completions %s; counters %s; streaks %s; hits %s; balances %s; transfers %s',
		(SELECT string_agg(format('%s/%s/%s/%s/%s/%s', e.idempotency_key, m.external_id, e.base_points,
			e.points, e.balance_after, e.occurred_given), ' ' ORDER BY e.id)
			FROM gifq.events e JOIN gifq.members m ON m.id = e.member_id WHERE e.program_id = x.id),
		(SELECT string_agg(format('%s/%s/%s', c.name, m.external_id, cc.bonus), ' '
			ORDER BY cc.event_id, c.id)
			FROM gifq.challenge_completions cc JOIN gifq.challenges c ON c.id = cc.challenge_id
			JOIN gifq.members m ON m.id = cc.member_id WHERE c.program_id = x.id),
		(SELECT string_agg(format('%s=%s', c.name, c.completions), ' ' ORDER BY c.id)
			FROM gifq.challenges c WHERE c.program_id = x.id),
		(SELECT string_agg(format('%s:%s:%s/%s/%s/%s', m.external_id, s.streak_type, s.current_streak,
			s.longest_streak, s.last_period_no, s.last_qualifying_event), ' '
			ORDER BY m.external_id, s.streak_type)
			FROM gifq.streaks s JOIN gifq.members m ON m.id = s.member_id WHERE s.program_id = x.id)
		|| '; periods ' || (SELECT string_agg(format('%s:%s:%s/%s', m.external_id, sp.streak_type,
			sp.period_no, sp.first_at), ' ' ORDER BY m.external_id, sp.streak_type, sp.period_no)
			FROM gifq.streak_periods sp JOIN gifq.members m ON m.id = sp.member_id
			WHERE m.program_id = x.id),
		(SELECT string_agg(format('%s=%s', m.external_id, h.balance), ' ' ORDER BY m.external_id)
			FROM gifq.threshold_hits h JOIN gifq.members m ON m.id = h.member_id
			WHERE h.program_id = x.id),
		(SELECT string_agg(format('%s=%s', m, (gifq_member_balance(p, m)).available), ' ' ORDER BY m)
			FROM unnest(ARRAY['ann', 'bea', 'cid']) m),
		(SELECT string_agg(format('%s/%s', t.amount, t.metadata->>'event_type'), ' ' ORDER BY t.id)
			FROM gifq.transfers t WHERE t.program_id = x.id AND t.metadata ? 'event_id'))
	FROM gifq.programs x WHERE x.code = p
$$;
-- the same events one by one in tap-one and as a batch in tap-set
CREATE FUNCTION pg_temp.record_both(events jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	e record;
BEGIN
	FOR e IN SELECT x.ev FROM jsonb_array_elements(events) WITH ORDINALITY x(ev, i) ORDER BY x.i LOOP
		PERFORM gifq_record_event('tap-one', e.ev->>'member', e.ev->>'event_type',
			e.ev->>'idempotency_key', (e.ev->>'occurred_at')::timestamptz);
	END LOOP;
	PERFORM gifq_record_events('tap-set', events);
END $$;
-- a second batch extends, restarts and fills the gaps of those streaks
SELECT pg_temp.record_both('[
	{"member": "cid", "event_type": "deal", "idempotency_key": "s1", "occurred_at": "2026-01-09T10:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "s2", "occurred_at": "2026-01-07T10:00:00Z"},
	{"member": "bea", "event_type": "deal", "idempotency_key": "s3", "occurred_at": "2026-01-04T10:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "s4", "occurred_at": "2026-01-07T12:00:00Z"},
	{"member": "cid", "event_type": "deal", "idempotency_key": "s5", "occurred_at": "2026-01-12T10:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "s6", "occurred_at": "2026-01-06T10:00:00Z"},
	{"member": "bea", "event_type": "deal", "idempotency_key": "s7", "occurred_at": "2026-01-05T09:00:00Z"}]');
SELECT is(pg_temp.kept('tap-set'), pg_temp.kept('tap-one'),
	'batch: the same events, completions, counters, streaks and periods, threshold hits, balances and transfers');
SELECT is((SELECT count(*) FROM gifq.transfers t JOIN gifq.events e ON e.transfer_id = t.id
	WHERE e.program_id = (SELECT id FROM gifq.programs WHERE code = 'tap-set')
		AND t.metadata = jsonb_build_object('event_id', e.id, 'event_type', e.event_type)
		AND t.amount = e.points), 17::bigint,
	'batch: one transfer per event with points, with the event''s metadata');
SELECT is((SELECT count(*) FROM gifq.events e
	WHERE e.program_id = (SELECT id FROM gifq.programs WHERE code = 'tap-set')
		AND e.details->'transfer_id' IS DISTINCT FROM to_jsonb(e.transfer_id)
		AND NOT (e.transfer_id IS NULL AND e.details->'transfer_id' = 'null')), 0::bigint,
	'batch: details name each event''s own transfer');
SELECT is((SELECT format('%s/%s/%s/%s', r.event_id, r.points_awarded, r.balance, r.details)
	FROM gifq_record_events('tap-set', '[
	{"member": "ann", "event_type": "deal", "idempotency_key": "k3", "occurred_at": "2026-01-05T11:00:00Z"}]') r),
	(SELECT format('%s/%s/%s/%s', e.id, e.points, '45 PTS', e.details)
		FROM gifq.events e JOIN gifq.programs p ON p.id = e.program_id
		WHERE p.code = 'tap-set' AND e.idempotency_key = 'k3'),
	'batch: a later batch replays an event of an earlier one as it was');

-- refusals come in the batch's order, and refuse it whole
SELECT pg_temp.ev_state() AS before \gset
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-set', '[
	{"member": "ann", "event_type": "deal", "idempotency_key": "n1", "occurred_at": "2026-01-20T10:00:00Z"},
	{"member": "bea", "event_type": "deal", "idempotency_key": "n1", "occurred_at": "2026-01-20T10:00:00Z"},
	{"member": "zed", "event_type": "deal", "idempotency_key": "n2"}]')$$),
	'QG109 idempotency key "n1" was used for another event (Field "member" differs: another member the first time, "bea" now.)',
	'batch: a key repeated in the batch for another member is QG109, before a later unknown member');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-set', '[
	{"member": "ann", "event_type": "deal", "idempotency_key": "n1", "occurred_at": "2026-01-20T10:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "n1", "occurred_at": "2026-01-20T11:00:00Z"}]')$$),
	format('QG109 idempotency key "n1" was used for another event (Field "occurred_at" differs: %s the first time, %s now.)',
		'2026-01-20 10:00+00'::timestamptz, '2026-01-20 11:00+00'::timestamptz),
	'batch: a key repeated in the batch with another time is QG109');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-set', '[
	{"member": "ann", "event_type": "deal", "idempotency_key": "n1", "occurred_at": "2026-01-20T10:00:00Z"},
	{"member": "ann", "event_type": "a b", "idempotency_key": "n2"},
	{"member": "zed", "event_type": "deal", "idempotency_key": "n3"}]')$$),
	'QG115 invalid event_type ''a b'' ()', 'batch: a malformed event type is QG115, before a later unknown member');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-set', '[
	{"member": "ann", "event_type": "deal", "idempotency_key": "n1", "occurred_at": "2026-01-20T10:00:00Z"},
	{"member": "bea", "event_type": "deal", "idempotency_key": "k1"}]')$$),
	'QG109 idempotency key "k1" was used for another event (Field "member" differs: another member the first time, "bea" now.)',
	'batch: a key of an earlier event for another member is QG109');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-set', '[
	{"member": "ann", "event_type": "deal", "idempotency_key": "n1", "occurred_at": "2026-01-20T10:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "n2", "occurred_at": "2099-01-01T00:00:00Z"}]')$$),
	format('QG115 invalid occurred_at %s ()', '2099-01-01 00:00+00'::timestamptz),
	'batch: a time in the future is QG115');
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-one', '[
	{"member": "ann", "event_type": "deal", "idempotency_key": "n4", "occurred_at": "2026-01-20T10:00:00Z"},
	{"member": "gina", "event_type": "deal", "idempotency_key": "n5", "occurred_at": "2026-01-20T10:00:00Z"}]')$$),
	'QG102 unknown member "gina" in program "tap-one" ()',
	'batch: a member of another program is QG102, and the batch is refused');
SELECT is(pg_temp.ev_state(), :'before', 'batch: refused batches changed nothing');

-- a third batch falls in periods the streaks already count: cid's last
-- (a later time, then an earlier one) and one of ann's before her last
SELECT pg_temp.record_both('[
	{"member": "cid", "event_type": "deal", "idempotency_key": "t1", "occurred_at": "2026-01-12T15:00:00Z"},
	{"member": "cid", "event_type": "deal", "idempotency_key": "t2", "occurred_at": "2026-01-12T11:00:00Z"},
	{"member": "ann", "event_type": "deal", "idempotency_key": "t3", "occurred_at": "2026-01-06T12:00:00Z"}]');
SELECT is(pg_temp.kept('tap-set'), pg_temp.kept('tap-one'),
	'batch: events in periods already counted leave what single calls leave');
SELECT is((SELECT array_agg(s.last_qualifying_event ORDER BY s.streak_type)
	FROM gifq.streaks s JOIN gifq.members m ON m.id = s.member_id
	JOIN gifq.programs p ON p.id = m.program_id
	WHERE p.code = 'tap-set' AND m.external_id = 'cid'),
	ARRAY['2026-01-12 15:00+00', '2026-01-12 15:00+00']::timestamptz[],
	'batch: an event in the streak''s last period moves only its last qualifying event');

-- a batch whose issuance account may not be overdrawn goes event by event
-- (the ledger then tops a slot up from its siblings), with the results
-- and refusals of single calls
SELECT gifq_create_program('tap-lim', 'USD', 'PTS', 100, 'UTC');
SELECT gifq_upsert_member('tap-lim', 'lou');
SELECT gifq_set_rule('tap-lim', 'deal', 10);
SELECT gifq_set_rule('tap-lim', 'visit', 0);
UPDATE gifq.accounts SET debits_must_not_exceed_credits = true
WHERE program_id = (SELECT id FROM gifq.programs WHERE code = 'tap-lim') AND code = 'issuance';
SELECT is(pg_temp.err($$SELECT * FROM gifq_record_events('tap-lim',
	'[{"member": "lou", "event_type": "deal", "idempotency_key": "d1"}]')$$),
	pg_temp.err($$SELECT * FROM gifq_record_event('tap-lim', 'lou', 'deal', 'd1')$$),
	'batch: a limited issuance account refuses a batch as it refuses a single call');
SELECT results_eq($$SELECT idempotency_key, points_awarded, balance::text
	FROM gifq_record_events('tap-lim', '[{"member": "lou", "event_type": "visit", "idempotency_key": "v1"},
		{"member": "lou", "event_type": "visit", "idempotency_key": "v1"}]')$$,
	$$VALUES ('v1', 0::bigint, '0 PTS'), ('v1', 0::bigint, '0 PTS')$$,
	'batch: event by event, a batch still records and replays');

------------------------------------------------------------------------
-- streaks (the trigger gifq.streak_event and gifq_streak)
------------------------------------------------------------------------

SELECT gifq_create_program('tap-st', 'USD', 'PTS', 100, 'Europe/Paris');
SELECT gifq_upsert_member('tap-st', m) FROM unnest(ARRAY['in', 'late', 'wk', 'mo', 'gr', 'gr2', 'now', 'none']) m;
SELECT gifq_define_streak('tap-st', 'daily', 'login', 'day', 1);
SELECT gifq_define_streak('tap-st', 'weekly', 'login', 'week', 0);
SELECT gifq_define_streak('tap-st', 'monthly', 'login', 'month', 0);
SELECT gifq_define_streak('tap-st', 'strict', 'visit', 'day', 0);
-- events of a member at local times in Paris (no rule: they earn nothing,
-- and still count)
CREATE FUNCTION pg_temp.logins(member text, event_type text, times text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY times LOOP
		PERFORM gifq_record_event('tap-st', member, event_type, member || '-' || event_type || '-' || t,
			(t || ' Europe/Paris')::timestamptz);
	END LOOP;
END $$;
-- the stored streak: current/longest/last period's local day
CREATE FUNCTION pg_temp.stored(member text, streak_type text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce((SELECT format('%s/%s', s.current_streak, s.longest_streak)
		FROM gifq.streaks s JOIN gifq.members m ON m.id = s.member_id
		WHERE m.external_id = member AND s.streak_type = stored.streak_type), 'none')
$$;

SELECT pg_temp.logins('in', 'login', ARRAY['2026-03-02 09:00', '2026-03-02 18:00']);
SELECT is(pg_temp.stored('in', 'daily'), '1/1', 'streak: two events on one day count once');
SELECT pg_temp.logins('in', 'login', ARRAY['2026-03-03 09:00', '2026-03-05 09:00']);
SELECT is(pg_temp.stored('in', 'daily'), '3/3',
	'streak: the next day extends; a one-day gap within a grace of 1 keeps it, the missed day not counted');
SELECT pg_temp.logins('in', 'login', ARRAY['2026-03-08 09:00']);
SELECT is(pg_temp.stored('in', 'daily'), '1/3', 'streak: a gap of two missed days restarts at 1; longest kept');
SELECT is((SELECT last_qualifying_event FROM gifq.streaks s JOIN gifq.members m ON m.id = s.member_id
	WHERE m.external_id = 'in' AND streak_type = 'daily'), '2026-03-08 09:00 Europe/Paris'::timestamptz,
	'streak: the last qualifying event is stored');
SELECT is(pg_temp.stored('in', 'strict'), 'none', 'streak: events of another type do not count');

-- the same events in another order give the same streak
SELECT pg_temp.logins('late', 'login', ARRAY['2026-03-08 09:00', '2026-03-03 09:00', '2026-03-02 18:00',
	'2026-03-05 09:00', '2026-03-02 09:00']);
SELECT is(pg_temp.stored('late', 'daily'), '1/3', 'streak: late events give the in-order result');
SELECT pg_temp.logins('late', 'login', ARRAY['2026-03-06 09:00']);
SELECT is(pg_temp.stored('late', 'daily'), '5/5', 'streak: a late event that fills a gap joins two runs');
SELECT is((SELECT last_qualifying_event FROM gifq.streaks s JOIN gifq.members m ON m.id = s.member_id
	WHERE m.external_id = 'late' AND streak_type = 'daily'), '2026-03-08 09:00 Europe/Paris'::timestamptz,
	'streak: a late event leaves the last qualifying event alone');

-- weeks run Monday to Sunday in local time, across the spring change
-- (Sunday 29 March 2026 has 23 hours in Paris)
SELECT pg_temp.logins('wk', 'login', ARRAY['2026-03-23 00:30', '2026-03-29 23:30']);
SELECT is(pg_temp.stored('wk', 'weekly'), '1/1', 'week: Monday 00:30 and Sunday 23:30 are one week');
SELECT pg_temp.logins('wk', 'login', ARRAY['2026-03-30 00:30']);
SELECT is(pg_temp.stored('wk', 'weekly'), '2/2', 'week: Monday 00:30 after it is the next week');
SELECT pg_temp.logins('wk', 'login', ARRAY['2026-04-13 12:00']);
SELECT is(pg_temp.stored('wk', 'weekly'), '1/2', 'week: a missed week with no grace restarts');
SELECT is(pg_temp.stored('wk', 'daily'), '1/2', 'week: the same events drive the daily streak too');

-- months
SELECT pg_temp.logins('mo', 'login', ARRAY['2026-01-31 23:30', '2026-02-01 00:30']);
SELECT is(pg_temp.stored('mo', 'monthly'), '2/2', 'month: 31 January 23:30 and 1 February 00:30 are consecutive months');
SELECT pg_temp.logins('mo', 'login', ARRAY['2026-04-01 00:30']);
SELECT is(pg_temp.stored('mo', 'monthly'), '1/2', 'month: a missed month with no grace restarts');

-- gifq_streak: broken streaks read 0; grace_period_until
SELECT is((SELECT format('%s/%s/%s/%s', current_streak, longest_streak, last_qualifying_event,
		grace_period_until) FROM gifq_streak('tap-st', 'in', 'daily')),
	format('0/3/%s/%s', '2026-03-08 09:00 Europe/Paris'::timestamptz, '2026-03-11 00:00 Europe/Paris'::timestamptz),
	'gifq_streak: long broken, current is 0; the grace ended at the start of the third day after the last');
SELECT is((SELECT grace_period_until FROM gifq_streak('tap-st', 'late', 'daily')),
	'2026-03-11 00:00 Europe/Paris'::timestamptz, 'gifq_streak: grace until, whatever the order of arrival');
SELECT is((SELECT grace_period_until FROM gifq_streak('tap-st', 'wk', 'weekly')),
	'2026-04-27 00:00 Europe/Paris'::timestamptz,
	'gifq_streak: a weekly streak without grace must go on by the end of the next week');
SELECT is((SELECT grace_period_until FROM gifq_streak('tap-st', 'mo', 'monthly')),
	'2026-06-01 00:00 Europe/Paris'::timestamptz, 'gifq_streak: and a monthly one by the end of next month');
SELECT gifq_record_event('tap-st', 'now', 'login', 'now-1', now() - interval '1 day');
SELECT gifq_record_event('tap-st', 'now', 'login', 'now-2', now());
SELECT is((SELECT format('%s/%s', current_streak, longest_streak) FROM gifq_streak('tap-st', 'now', 'daily')),
	'2/2', 'gifq_streak: a streak still in its grace reads its length');
SELECT is((SELECT format('%s/%s/%s/%s', current_streak, longest_streak, last_qualifying_event,
	grace_period_until) FROM gifq_streak('tap-st', 'none', 'daily')), '0/0//',
	'gifq_streak: a member without qualifying events has none');
SELECT throws_ok($$SELECT * FROM gifq_streak('tap-st', 'in', 'yearly')$$, 'QG301',
	'unknown streak type ''yearly'' in program "tap-st"', 'gifq_streak: an unknown streak type is QG301');
SELECT throws_ok($$SELECT * FROM gifq_streak('tap-st', 'zed', 'daily')$$, 'QG102',
	'unknown member "zed" in program "tap-st"', 'gifq_streak: an unknown member is QG102');
SELECT throws_ok($$SELECT * FROM gifq_streak('nope', 'in', 'daily')$$, 'QG101',
	'unknown program "nope"', 'gifq_streak: an unknown program is QG101');

-- a new grace judges every gap again
SELECT pg_temp.logins('gr', 'visit', ARRAY['2026-03-02 09:00', '2026-03-03 09:00', '2026-03-05 09:00',
	'2026-03-06 09:00', '2026-03-07 09:00']);
SELECT is(pg_temp.stored('gr', 'strict'), '3/3', 'grace: without grace a missed day splits 2 + 3');
SELECT gifq_define_streak('tap-st', 'strict', 'visit', 'day', 1);
SELECT is(pg_temp.stored('gr', 'strict'), '5/5', 'grace: raised to 1, the streak is recounted as one run of 5');
-- runs of 3 and then 2 without grace: the current streak is the last run
SELECT pg_temp.logins('gr2', 'visit', ARRAY['2026-03-02 09:00', '2026-03-03 09:00', '2026-03-04 09:00',
	'2026-03-06 09:00', '2026-03-07 09:00']);
SELECT is(pg_temp.stored('gr2', 'strict'), '5/5', 'grace: under a grace of 1 the gap is bridged');
SELECT gifq_define_streak('tap-st', 'strict', 'visit', 'day', 0);
SELECT is(pg_temp.stored('gr', 'strict'), '3/3', 'grace: lowered to 0, the streak splits again into 2 + 3');
SELECT is(pg_temp.stored('gr2', 'strict'), '2/3', 'grace: lowered to 0, current is the last run (2), longest the first (3)');
SELECT is((SELECT format('%s/%s', r.current_streak, r.longest_streak)
	FROM gifq.members m, gifq.streak_runs(m.id, 'strict', 2) r WHERE m.external_id = 'gr2'),
	'5/5', 'gifq.streak_runs: counts the stored periods under any grace, and changes nothing');
SELECT is(pg_temp.stored('gr2', 'strict'), '2/3', 'gifq.streak_runs: the stored streak is unchanged');

------------------------------------------------------------------------
-- thresholds firing
------------------------------------------------------------------------

SELECT gifq_create_program('tap-th', 'USD', 'PTS', 100, 'UTC');
SELECT gifq_upsert_member('tap-th', m) FROM unnest(ARRAY['tia', 'tom', 'ted']) m;
SELECT gifq_set_rule('tap-th', 'deal', 40);
SELECT gifq_define_threshold('tap-th', 100, 'unlock') AS th100 \gset
SELECT gifq_define_threshold('tap-th', 100, 'reward', '5.00 USD') AS th100r \gset
SELECT gifq_define_threshold('tap-th', 150, 'unlock') AS th150 \gset
CREATE FUNCTION pg_temp.hits(member text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(format('%s@%s%s', t.points, h.balance,
		coalesce(' ' || h.reward_value::text || ' ' || h.reward_status, '')), ', '
		ORDER BY t.points, t.id), 'none')
	FROM gifq.threshold_hits h JOIN gifq.thresholds t ON t.id = h.threshold_id
	JOIN gifq.members m ON m.id = h.member_id WHERE m.external_id = member
$$;
SELECT gifq_record_event('tap-th', 'tia', 'deal', 'tia-1', '2026-02-01 10:00+00');
SELECT gifq_record_event('tap-th', 'tia', 'deal', 'tia-2', '2026-02-01 11:00+00');
SELECT is(pg_temp.hits('tia'), 'none', 'threshold: 80 points reach none');
SELECT gifq_record_event('tap-th', 'tia', 'deal', 'tia-3', '2026-02-01 12:00+00');
SELECT is(pg_temp.hits('tia'), '100@120, 100@120 5.00 USD pending',
	'threshold: crossing 100 fires the unlock and the reward there, the reward pending');
SELECT is((SELECT string_agg(format('%s/%s/%s', payload->>'action', payload->>'points', payload->>'balance'), ', '
		ORDER BY id) FROM gifq.outbox WHERE event_type = 'threshold.reached' AND payload->>'member' = 'tia'),
	'unlock/100/120 PTS, reward/100/120 PTS', 'threshold: a threshold.reached event for each');
-- spend below and earn again: 100 does not fire twice
SELECT gifq_transfer(gifq_account('tap-th', 'tia'), gifq_account('tap-th', NULL, 'issuance'), '100 PTS');
SELECT gifq_record_event('tap-th', 'tia', 'deal', 'tia-4', '2026-02-01 13:00+00');
SELECT gifq_record_event('tap-th', 'tia', 'deal', 'tia-5', '2026-02-01 14:00+00');
SELECT is(pg_temp.hits('tia'), '100@120, 100@120 5.00 USD pending',
	'threshold: falling below and rising again fires nothing twice');
-- any way points arrive: a plain transfer crossing two thresholds at once
SELECT gifq_transfer(gifq_account('tap-th', NULL, 'issuance'), gifq_account('tap-th', 'tom'), '200 PTS');
SELECT is(pg_temp.hits('tom'), '100@200, 100@200 5.00 USD pending, 150@200',
	'threshold: a transfer that crosses several fires them all, in order of points');
-- a hold's credit counts once posted
SELECT gifq_transfer(gifq_account('tap-th', NULL, 'issuance'), gifq_account('tap-th', 'ted'), '120 PTS',
	pending => true) AS hold \gset
SELECT is(pg_temp.hits('ted'), 'none', 'threshold: points on hold toward the member are not available yet');
SELECT gifq_post(:hold);
SELECT is(pg_temp.hits('ted'), '100@120, 100@120 5.00 USD pending', 'threshold: posting them fires');
-- a threshold defined below a balance fires only when a later change crosses it
SELECT gifq_define_threshold('tap-th', 110, 'unlock');
SELECT gifq_record_event('tap-th', 'ted', 'deal', 'ted-1', '2026-02-01 10:00+00');
SELECT is(pg_temp.hits('ted'), '100@120, 100@120 5.00 USD pending, 150@160',
	'threshold: one defined below the balance is not reached by rising further');
SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'threshold: the ledger is consistent');

------------------------------------------------------------------------
-- peer gifts
------------------------------------------------------------------------

SELECT gifq_create_program('tap-pg', 'USD', 'PTS', 100, 'UTC');
SELECT gifq_upsert_member('tap-pg', m) FROM unnest(ARRAY['pia', 'pol', 'pam']) m;
SELECT gifq_transfer(gifq_account('tap-pg', NULL, 'issuance'), gifq_account('tap-pg', 'pia'), '500 PTS');
SELECT gifq_define_threshold('tap-pg', 100, 'unlock');
CREATE FUNCTION pg_temp.pg_bal() RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(format('%s=%s', m, (gifq_member_balance('tap-pg', m)).available), ',' ORDER BY m)
	FROM unnest(ARRAY['pam', 'pia', 'pol']) m
$$;
SELECT gifq_give_points('tap-pg', 'pia', 'pol', '150 PTS', 'gift-1', 'thanks for the demo') AS gift1 \gset
SELECT is(pg_temp.pg_bal(), 'pam=0 PTS,pia=350 PTS,pol=150 PTS', 'gift: the points move from giver to receiver');
SELECT is((SELECT format('%s/%s/%s', points, note, t.metadata->>'peer_gift') FROM gifq.peer_gifts g
	JOIN gifq.transfers t ON t.id = g.transfer_id WHERE g.transfer_id = :gift1),
	'150/thanks for the demo/true', 'gift: recorded with its note, as a ledger transfer');
SELECT is(gifq_give_points('tap-pg', 'pia', 'pol', '150 PTS', 'gift-1', 'thanks for the demo'), :gift1::bigint,
	'gift: the same call replays the first gift');
SELECT is(pg_temp.pg_bal(), 'pam=0 PTS,pia=350 PTS,pol=150 PTS', 'gift: a replay moves nothing');
SELECT is(pg_temp.hits('pol'), '100@150', 'gift: a gift can cross the receiver''s threshold');
SELECT gifq_set_peer_limits('tap-pg', '200 PTS', '300 PTS');
SELECT pg_temp.ev_state() AS before \gset
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pia', 'pol', '250 PTS', 'gift-2')$$, 'QG302',
	'gift refused by limit max_single 200 PTS', 'gift: over max_single is QG302');
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pia', 'pam', '200 PTS', 'gift-3')$$, 'QG302',
	'gift refused by limit max_per_day 300 PTS', 'gift: over max_per_day in 24 hours is QG302');
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pol', 'pam', '160 PTS', 'gift-4')$$, 'QG208',
	'member "pol" has 150 PTS available, the gift needs 160 PTS', 'gift: more than the giver has is QG208');
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pia', 'pol', '150 PTS', 'gift-1', 'another note')$$,
	'QG109', 'idempotency key "gift-1" was used for another gift', 'gift: a key reused with another note is QG109');
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pia', 'pia', '10 PTS', 'gift-5')$$, 'QG115',
	'member "pia" cannot give points to themselves', 'gift: to oneself is QG115');
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pia', 'pol', '10.00 USD', 'gift-6')$$, 'QG115',
	'invalid points 10.00 USD', 'gift: money that is not the program''s points is QG115');
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pia', 'pol', '0 PTS', 'gift-7')$$, 'QG115',
	'invalid points 0 PTS', 'gift: zero points is QG115');
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pia', 'zed', '10 PTS', 'gift-8')$$, 'QG102',
	'unknown member "zed" in program "tap-pg"', 'gift: an unknown receiver is QG102');
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pia', 'pol', '10 PTS', '')$$, 'QG115',
	'invalid idempotency key ''''', 'gift: an empty key is QG115');
SELECT gifq_block_member('tap-pg', 'pol');
SELECT throws_ok($$SELECT gifq_give_points('tap-pg', 'pol', 'pam', '10 PTS', 'gift-9')$$, 'QG210',
	'member "pol" is blocked', 'gift: a blocked member cannot give');
SELECT is(pg_temp.ev_state(), :'before', 'gift: refused gifts change nothing');
SELECT throws_ok($$SELECT gifq_set_peer_limits('tap-pg', '10.00 USD')$$, 'QG115',
	'invalid max_single 10.00 USD', 'peer limits: a limit not in points is QG115');
SELECT lives_ok($$SELECT gifq_set_peer_limits('tap-pg')$$, 'peer limits: NULLs lift the limits');
SELECT lives_ok($$SELECT gifq_give_points('tap-pg', 'pia', 'pam', '250 PTS', 'gift-10')$$,
	'peer limits: then a large gift goes through');
SELECT throws_ok($$UPDATE gifq.peer_gifts SET points = 1$$, 'QG120', NULL, 'gift: gifts are immutable');

------------------------------------------------------------------------
-- leaderboards
------------------------------------------------------------------------

SELECT gifq_create_program('tap-lb', 'USD', 'PTS', 100, 'Europe/Paris');
SELECT count(gifq_upsert_member('tap-lb', m, NULL, NULL, jsonb_build_object('dept', d, 'site', 'paris')))
FROM (VALUES ('ava', 'sales'), ('ben', 'sales'), ('cal', 'ops'), ('dan', 'sales'), ('eve', 'ops')) x(m, d);
SELECT gifq_set_rule('tap-lb', 'deal', 10);
-- this day: ava 30, ben 30, cal 10, dan 0, eve 0; forty days ago: dan 50
SELECT count(*) FROM (VALUES ('ava', 1), ('ava', 2), ('ava', 3), ('ben', 1), ('ben', 2), ('ben', 3),
	('cal', 1)) x(m, n), LATERAL gifq_record_event('tap-lb', m, 'deal', m || n, now()) e;
SELECT count(*) FROM generate_series(1, 5) n,
	LATERAL gifq_record_event('tap-lb', 'dan', 'deal', 'dan' || n, now() - interval '40 days') e;
CREATE FUNCTION pg_temp.board(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE format('SELECT string_agg(format(''%%s %%s %%s'', rank, member, points), '', '') FROM (%s) b', q)
		INTO r;
	RETURN r;
END $$;
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard('tap-lb')$$),
	'1 dan 50, 2 ava 30, 2 ben 30, 4 cal 10, 5 eve 0',
	'leaderboard: all time, ties share a rank and the next rank skips, members without points last');
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard('tap-lb', 'day')$$),
	'1 ava 30, 1 ben 30, 3 cal 10, 4 dan 0, 4 eve 0', 'leaderboard: this day only');
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard('tap-lb', 'month', top => 2)$$),
	'1 ava 30, 1 ben 30', 'leaderboard: top 2 of this month');
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard('tap-lb', 'all', '{"dept": "sales"}')$$),
	'1 dan 50, 2 ava 30, 2 ben 30', 'leaderboard: a cohort compares its members only');
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard('tap-lb', 'all', '{"dept": "ops", "site": "paris"}')$$),
	'1 cal 10, 2 eve 0', 'leaderboard: a cohort of two attributes needs both');
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard('tap-lb', 'all', '{"dept": "hr"}')$$), NULL,
	'leaderboard: an empty cohort has no rows');
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard_around('tap-lb', 'cal', 'all', '{}', 1)$$),
	'2 ben 30, 4 cal 10, 5 eve 0', 'around: the member with one place above and below, exact ranks');
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard_around('tap-lb', 'dan', 'day', radius => 0)$$),
	'4 dan 0', 'around: radius 0 is the member alone');
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard_around('tap-lb', 'ava', 'week', '{"dept": "sales"}', 5)$$),
	'1 ava 30, 1 ben 30, 3 dan 0', 'around: near the top, the rows there are');
SELECT is(pg_temp.board($$SELECT * FROM gifq_leaderboard_around('tap-lb', 'cal', 'all', '{"dept": "sales"}')$$),
	NULL, 'around: a member outside the cohort has no rows');
SELECT throws_ok($$SELECT * FROM gifq_leaderboard('tap-lb', 'year')$$, 'QG115',
	'invalid period ''year''', 'leaderboard: an unknown period is QG115');
SELECT throws_ok($$SELECT * FROM gifq_leaderboard('tap-lb', 'all', '["sales"]')$$, 'QG115',
	'invalid cohort ["sales"]', 'leaderboard: a cohort that is not an object is QG115');
SELECT throws_ok($$SELECT * FROM gifq_leaderboard('tap-lb', 'all', '{"dept": ["sales"]}')$$, 'QG115',
	'invalid cohort attribute "dept": ["sales"]', 'leaderboard: a cohort attribute with a list is QG115');
SELECT throws_ok($$SELECT * FROM gifq_leaderboard('tap-lb', 'all', '{}', 0)$$, 'QG115',
	'invalid top 0', 'leaderboard: top 0 is QG115');
SELECT throws_ok($$SELECT * FROM gifq_leaderboard('nope')$$, 'QG101',
	'unknown program "nope"', 'leaderboard: an unknown program is QG101');
SELECT throws_ok($$SELECT * FROM gifq_leaderboard_around('tap-lb', 'zed')$$, 'QG102',
	'unknown member "zed" in program "tap-lb"', 'around: an unknown member is QG102');
SELECT throws_ok($$SELECT * FROM gifq_leaderboard_around('tap-lb', 'ava', radius => -1)$$, 'QG115',
	'invalid radius -1', 'around: a negative radius is QG115');

-- the counts the boards are read from agree with the events
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$,
	'board counts: member_points and board_counts agree with the events');

-- Random boards: the fast path (everyone) and the cohort path against a
-- plain rank() over gifq.events.  Rules of 0 to 50 points (ties), members
-- without events (r36 .. r40, zero points), events recorded in random
-- order over 80 days (most of them late: an earlier period than events
-- recorded before them), and more in the current week and day.
CREATE FUNCTION pg_temp.ref_board(_program text, _period text, _cohort jsonb)
RETURNS TABLE(pos bigint, rnk bigint, member text, points bigint) LANGUAGE sql AS $$
	WITH w AS (
		SELECT p.id, CASE WHEN _period = 'all' THEN '-infinity'::timestamptz
				ELSE date_trunc(_period, now() AT TIME ZONE p.timezone) AT TIME ZONE p.timezone END AS since,
			CASE WHEN _period = 'all' THEN 'infinity'::timestamptz
				ELSE (date_trunc(_period, now() AT TIME ZONE p.timezone) + ('1 ' || _period)::interval)
					AT TIME ZONE p.timezone END AS until
		FROM gifq.programs p WHERE p.code = _program
	), pts AS (
		SELECT m.id, m.external_id, coalesce((SELECT sum(e.points) FROM gifq.events e
			WHERE e.member_id = m.id AND e.occurred_at >= w.since AND e.occurred_at < w.until), 0)::bigint AS points
		FROM gifq.members m JOIN w ON m.program_id = w.id
		WHERE m.attributes @> _cohort
	)
	SELECT row_number() OVER (ORDER BY points DESC, id), rank() OVER (ORDER BY points DESC),
		external_id, points
	FROM pts
$$;
-- every member's rows around them, from the reference and from the API
CREATE FUNCTION pg_temp.ref_around(_program text, _period text, _cohort jsonb, _radius integer)
RETURNS text LANGUAGE sql AS $$
	WITH b AS MATERIALIZED (SELECT * FROM pg_temp.ref_board(_program, _period, _cohort))
	SELECT string_agg(x.member || ': ' || (SELECT string_agg(format('%s %s %s', y.rnk, y.member, y.points),
			', ' ORDER BY y.pos) FROM b y WHERE y.pos BETWEEN x.pos - _radius AND x.pos + _radius),
		' | ' ORDER BY x.member)
	FROM b x
$$;
CREATE FUNCTION pg_temp.around(_program text, _period text, _cohort jsonb, _radius integer)
RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(m.external_id || ': ' || (SELECT string_agg(format('%s %s %s', a.rank, a.member, a.points), ', ')
			FROM gifq_leaderboard_around(_program, m.external_id, _period, _cohort, _radius) a),
		' | ' ORDER BY m.external_id)
	FROM gifq.members m JOIN gifq.programs p ON p.id = m.program_id
	WHERE p.code = _program AND m.attributes @> _cohort
$$;
CREATE FUNCTION pg_temp.ref_top(_program text, _period text, _cohort jsonb, _top integer)
RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(format('%s %s %s', rnk, member, points), ', ' ORDER BY pos)
	FROM pg_temp.ref_board(_program, _period, _cohort) WHERE pos <= _top
$$;
CREATE FUNCTION pg_temp.top(_program text, _period text, _cohort jsonb, _top integer)
RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(format('%s %s %s', rank, member, points), ', ')
	FROM gifq_leaderboard(_program, _period, _cohort, _top)
$$;
-- every board of the program, for before-and-after comparisons
CREATE FUNCTION pg_temp.all_boards(_program text) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(pg_temp.around(_program, k, c, 3) || ' || ' || pg_temp.top(_program, k, c, 10000),
		' ### ' ORDER BY k, c)
	FROM unnest(ARRAY['day', 'week', 'month', 'all']) k, unnest(ARRAY['{}', '{"team": "a"}']::jsonb[]) c
$$;

SELECT setseed(0.4242);
SELECT gifq_create_program('tap-lbr', 'USD', 'PTS', 100, 'America/New_York');
SELECT count(gifq_upsert_member('tap-lbr', 'r' || i, NULL, NULL,
	jsonb_build_object('team', (ARRAY['a', 'b', 'c'])[1 + i % 3]))) FROM generate_series(1, 40) i;
SELECT count(gifq_set_rule('tap-lbr', 'e' || k, (ARRAY[0, 5, 10, 10, 25, 50])[k]))
FROM generate_series(1, 6) k;
SELECT count(*) FROM (
	SELECT i, 1 + floor(random() * 35)::integer AS m, 1 + floor(random() * 6)::integer AS k,
		now() - random() * CASE WHEN i <= 150 THEN interval '80 days'
			WHEN i <= 230 THEN now() - date_trunc('week', now() AT TIME ZONE 'America/New_York')
				AT TIME ZONE 'America/New_York'
			ELSE now() - date_trunc('day', now() AT TIME ZONE 'America/New_York')
				AT TIME ZONE 'America/New_York' END AS at
	FROM generate_series(1, 300) i ORDER BY random()) x,
	LATERAL gifq_record_event('tap-lbr', 'r' || m, 'e' || k, 'lbr-' || i, at) e;
SELECT ok((SELECT count(*) FROM gifq_leaderboard('tap-lbr', 'day', top => 10000) WHERE points > 0) >= 5
	AND (SELECT count(*) FROM gifq_leaderboard('tap-lbr', 'all', top => 10000) WHERE points = 0) >= 5
	AND (SELECT count(*) > count(DISTINCT rank) FROM gifq_leaderboard('tap-lbr', 'all', top => 10000)),
	'random boards: members with points today, without points, and ties');

-- a late event counts in all time, not in the current day or month
SELECT points AS day_before FROM gifq_leaderboard_around('tap-lbr', 'r1', 'day', radius => 0) \gset
SELECT points AS month_before FROM gifq_leaderboard_around('tap-lbr', 'r1', 'month', radius => 0) \gset
SELECT points AS all_before FROM gifq_leaderboard_around('tap-lbr', 'r1', 'all', radius => 0) \gset
SELECT count(*) FROM gifq_record_event('tap-lbr', 'r1', 'e6', 'lbr-late', now() - interval '45 days');
SELECT is((SELECT points FROM gifq_leaderboard_around('tap-lbr', 'r1', 'day', radius => 0)),
	:day_before::bigint, 'late event: not in the current day');
SELECT is((SELECT points FROM gifq_leaderboard_around('tap-lbr', 'r1', 'month', radius => 0)),
	:month_before::bigint, 'late event: not in the current month');
SELECT is((SELECT points FROM gifq_leaderboard_around('tap-lbr', 'r1', 'all', radius => 0)),
	:all_before + 50::bigint, 'late event: in all time');

-- attributes that change move a member between cohorts' boards
SELECT gifq_upsert_member('tap-lbr', 'r2', attributes => '{"team": "a"}') > 0 AS moved;
SELECT ok(EXISTS (SELECT 1 FROM gifq_leaderboard('tap-lbr', 'all', '{"team": "a"}', 10000) WHERE member = 'r2')
	AND NOT EXISTS (SELECT 1 FROM gifq_leaderboard('tap-lbr', 'all', '{"team": "c"}', 10000) WHERE member = 'r2'),
	'cohort: a member whose attributes change moves to the other cohort''s board');

SELECT is(pg_temp.top('tap-lbr', k, c, 10000), pg_temp.ref_top('tap-lbr', k, c, 10000),
	format('random board: gifq_leaderboard %s %s is rank() over the events', k, c))
FROM unnest(ARRAY['day', 'week', 'month', 'all']) k, unnest(ARRAY['{}', '{"team": "a"}']::jsonb[]) c;
SELECT is(pg_temp.around('tap-lbr', k, c, 2), pg_temp.ref_around('tap-lbr', k, c, 2),
	format('random board: gifq_leaderboard_around %s %s, every member, is rank() over the events', k, c))
FROM unnest(ARRAY['day', 'week', 'month', 'all']) k, unnest(ARRAY['{}', '{"team": "a"}']::jsonb[]) c;
SELECT is(pg_temp.top('tap-lbr', 'all', '{}', 7), pg_temp.ref_top('tap-lbr', 'all', '{}', 7),
	'random board: the top 7 (a tie across the cut) are the reference''s');
SELECT is(pg_temp.around('tap-lbr', 'week', '{}', 1000), pg_temp.ref_around('tap-lbr', 'week', '{}', 1000),
	'random board: a radius wider than the board gives the whole board to everyone');
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$, 'random board: the counts agree with the events');

-- pruning: old periods go, slots fold into one row per value, and the
-- boards do not change
SELECT pg_temp.all_boards('tap-lbr') AS boards_before \gset
-- (as if another session had counted some members: each value of all
-- time split over two slots, one of them negative, and a count of 0)
WITH s AS (
	UPDATE gifq.board_counts SET members = members - 2
	WHERE program_id = (SELECT id FROM gifq.programs WHERE code = 'tap-lbr') AND period = 'all'
	RETURNING program_id, period, period_no, level, bucket, slot)
INSERT INTO gifq.board_counts (program_id, period, period_no, level, bucket, slot, members)
SELECT program_id, period, period_no, level, bucket, (slot + 1) % 16, 2 FROM s
UNION ALL
(SELECT program_id, period, period_no, 0, 7777, 3, 0 FROM s LIMIT 1);
SELECT lives_ok($$SELECT gifq.board_prune()$$, 'prune: runs');
SELECT is(pg_temp.all_boards('tap-lbr'), :'boards_before', 'prune: the boards are the same');
SELECT is_empty($$SELECT program_id, period, period_no, level, bucket FROM gifq.board_counts
	GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1 OR sum(members) = 0$$,
	'prune: one count per bucket, none of 0');
SELECT is_empty($$SELECT 1 FROM gifq.board_counts c JOIN gifq.programs p ON p.id = c.program_id
	WHERE c.period <> 'all' AND c.period_no < gifq.period_no(c.period, now() AT TIME ZONE p.timezone) - 1$$,
	'prune: no counts of periods before the previous one');
SELECT is((SELECT count(*) FROM gifq.board_points b JOIN gifq.programs p ON p.id = b.program_id
		WHERE p.code = 'tap-lbr'),
	(SELECT count(DISTINCT e.member_id) FROM gifq.events e JOIN gifq.programs p ON p.id = e.program_id
		WHERE p.code = 'tap-lbr' AND e.points > 0),
	'prune: every member with points keeps their one row');
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$, 'prune: the counts agree with the events');
-- rebuilding from the events gives the same boards
SELECT ok(gifq.board_rebuild() > 0, 'rebuild: runs');
SELECT is(pg_temp.all_boards('tap-lbr'), :'boards_before', 'rebuild: the boards are the same');
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$, 'rebuild: the counts agree with the events');

-- a transaction's count changes wait in memory for its commit: a
-- subtransaction that rolls back takes its own with it, and a long list
-- is compacted
DO $$
BEGIN
	PERFORM gifq_record_event('tap-lbr', 'r3', 'e6', 'lbr-undone', now());
	RAISE EXCEPTION 'undo';
EXCEPTION WHEN raise_exception THEN
	NULL;
END $$;
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$,
	'subtransaction: an event rolled back leaves the counts as they were');
DO $$
BEGIN
	BEGIN
		PERFORM gifq_record_event('tap-lbr', 'r3', 'e6', 'lbr-kept', now());
		BEGIN
			PERFORM gifq_record_event('tap-lbr', 'r4', 'e5', 'lbr-undone-2', now());
			RAISE EXCEPTION 'undo';
		EXCEPTION WHEN raise_exception THEN
			NULL;
		END;
		PERFORM gifq_record_event('tap-lbr', 'r4', 'e4', 'lbr-kept-2', now());
	EXCEPTION WHEN raise_exception THEN
		NULL;
	END;
END $$;
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$,
	'nested subtransactions: the events of those that commit count, of those rolled back not');
SELECT count(*) FROM gifq_record_events('tap-lbr', (SELECT jsonb_agg(jsonb_build_object(
	'member', 'r' || (1 + i % 35), 'event_type', 'e' || (2 + i % 5), 'idempotency_key', 'lbr-many-' || i,
	'occurred_at', now() - (i % 50) * interval '1 day')) FROM generate_series(1, 700) i));
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$,
	'many events in one transaction: the counts agree with the events');
SELECT is(pg_temp.around('tap-lbr', 'all', '{}', 2), pg_temp.ref_around('tap-lbr', 'all', '{}', 2),
	'many events in one transaction: gifq_leaderboard_around all is rank() over the events');

-- the ledger agrees with the events
SELECT is_empty($$SELECT e.id FROM gifq.events e LEFT JOIN gifq.transfers t ON t.id = e.transfer_id
	WHERE (e.points > 0) <> (t.id IS NOT NULL) OR t.amount <> e.points
		OR t.metadata->>'event_id' <> e.id::text$$,
	'ledger: every event with points has one transfer of its points, the others none');
SELECT is((SELECT string_agg(format('%s=%s', m, (gifq_member_balance('tap-ev', m)).available), ','
		ORDER BY m) FROM unnest(ARRAY['ana', 'bob', 'cy']) m),
	'ana=158 PTS,bob=82 PTS,cy=72 PTS', 'ledger: the members'' balances are the sum of their events (cy: less 5)');
SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'ledger: verify finds nothing wrong');

-- events inserted straight into gifq.events, as a restore's COPY does
-- (so after the ledger's checks above): the boards' trigger fires only
-- while gifq records events (gifq.recording()), so they change nothing;
-- gifq.board_rebuild() then counts them, one statement of many events
-- (the batch above is one INSERT through the trigger)
INSERT INTO gifq.events (program_id, member_id, event_type, idempotency_key, occurred_at,
	occurred_given, attributes, base_points, points, balance_after, details)
SELECT p.id, m.id, 'e3', 'lbr-multi-' || i,
	now() - (i % 4) * interval '9 days' - (i % 7) * interval '1 hour', true, '{}',
	10, 10 * (i % 3), 0, '{}'
FROM generate_series(1, 90) i
JOIN gifq.programs p ON p.code = 'tap-lbr'
JOIN gifq.members m ON m.program_id = p.id AND m.external_id = 'r' || (1 + i % 38);
SELECT isnt_empty($$SELECT * FROM gifq.board_verify()$$,
	'multi-row insert outside gifq: the boards do not count the events');
SELECT ok(gifq.board_rebuild() > 0, 'gifq.board_rebuild counts them');
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$, 'multi-row insert: the counts agree with the events');
SELECT is(pg_temp.around('tap-lbr', k, '{}', 2), pg_temp.ref_around('tap-lbr', k, '{}', 2),
	format('multi-row insert: gifq_leaderboard_around %s is rank() over the events', k))
FROM unnest(ARRAY['day', 'month', 'all']) k;

-- the trigger numbers days, weeks and months in C: the same numbers as
-- gifq.period_no, across daylight-saving changes (New York), before 2000
-- (negative numbers) and around the Monday periods count from
SELECT gifq_create_program('tap-tz', 'USD', 'PTS', 100, 'America/New_York') IS NOT NULL AS tz_program;
-- (one event a member: a member's row keeps only their latest periods)
SELECT gifq_upsert_member('tap-tz', 'z' || i, NULL, NULL) IS NOT NULL FROM generate_series(1, 11) i;
SELECT gifq_set_rule('tap-tz', 'tz', 3);
SELECT count(*) FROM unnest(ARRAY[
		'1996-02-29 23:59:59.999999-05', '1999-12-31 23:59:59-05', '2000-01-02 23:59:59-05',
		'2000-01-03 00:00:00-05', '2026-03-08 01:59:59-05', '2026-03-08 03:00:00-04',
		'2026-11-01 01:30:00-04', '2026-11-01 01:30:00-05', '2026-11-01 23:59:59-05',
		'2026-02-28 23:59:59-05', '2026-03-01 00:00:00-05']::timestamptz[]) WITH ORDINALITY t(at, k),
	LATERAL gifq_record_event('tap-tz', 'z' || k, 'tz', 'tz-' || k, at);
SELECT is_empty($$
	WITH p AS (SELECT id, timezone FROM gifq.programs WHERE code = 'tap-tz'),
	expected AS (
		SELECT e.member_id, k.period,
			CASE k.period WHEN 'all' THEN 0
				ELSE gifq.period_no(k.period, e.occurred_at AT TIME ZONE p.timezone) END AS period_no,
			sum(e.points) AS points
		FROM gifq.events e JOIN p ON p.id = e.program_id
		CROSS JOIN (VALUES ('all'), ('day'), ('week'), ('month')) k(period)
		GROUP BY 1, 2, 3),
	kept AS (SELECT mp.member_id, mp.period, mp.period_no, mp.points
		FROM gifq.member_points mp JOIN p ON p.id = mp.program_id)
	SELECT * FROM expected e FULL JOIN kept k USING (member_id, period, period_no)
	WHERE e.points IS DISTINCT FROM k.points$$,
	'boards: the trigger''s days, weeks and months are gifq.period_no''s (DST, before 2000, Mondays)');

-- a member's row keeps their latest day, week and month: a late event
-- (of an earlier period) adds to all time and to the boards whose period
-- it shares, and the row is the same whatever order the events came in
SELECT gifq_create_program('tap-late', 'USD', 'PTS', 100, 'UTC') IS NOT NULL AS late_program;
SELECT gifq_upsert_member('tap-late', m, NULL, NULL) IS NOT NULL
FROM unnest(ARRAY['in-order', 'late']) m;
SELECT gifq_set_rule('tap-late', 'x', 5);
SELECT count(*) FROM (VALUES
		('in-order', 1, now() - interval '40 days'), ('in-order', 2, now() - interval '1 day'),
		('in-order', 3, now()), ('in-order', 4, now()),
		('late', 1, now()), ('late', 2, now()),
		('late', 3, now() - interval '1 day'), ('late', 4, now() - interval '40 days')) v(m, i, at),
	LATERAL gifq_record_event('tap-late', v.m, 'x', v.m || '-' || v.i, v.at);
SELECT results_eq($$SELECT m.external_id, b.all_points, b.day_points, b.month_points,
		b.day_no = gifq.period_no('day', now() AT TIME ZONE 'UTC')
	FROM gifq.board_points b JOIN gifq.members m ON m.id = b.member_id
	JOIN gifq.programs p ON p.id = b.program_id WHERE p.code = 'tap-late'
	ORDER BY 1$$,
	$$VALUES ('in-order', 20::bigint, 10::bigint,
		CASE WHEN date_trunc('month', now() AT TIME ZONE 'UTC')
			= date_trunc('month', (now() - interval '1 day') AT TIME ZONE 'UTC')
			THEN 15 ELSE 10 END::bigint, true),
		('late', 20, 10, CASE WHEN date_trunc('month', now() AT TIME ZONE 'UTC')
			= date_trunc('month', (now() - interval '1 day') AT TIME ZONE 'UTC')
			THEN 15 ELSE 10 END, true)$$,
	'late events: all time counts them, the day and month boards only their latest period''s, in any order');
SELECT results_eq($$SELECT rank, member, points FROM gifq_leaderboard('tap-late', 'day')$$,
	$$VALUES (1::bigint, 'in-order', 10::bigint), (1, 'late', 10)$$,
	'late events: today''s board shows today''s points');
SELECT results_eq($$SELECT rank, member, points FROM gifq_leaderboard('tap-late', 'all')$$,
	$$VALUES (1::bigint, 'in-order', 20::bigint), (1, 'late', 20)$$,
	'late events: all time shows every event''s');
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$, 'late events: the counts agree with the events');
-- a member's first event of a new day moves their row to it: they leave
-- the count of the day before, which the boards keep
SELECT gifq_upsert_member('tap-late', 'mover', NULL, NULL) IS NOT NULL AS mover;
CREATE FUNCTION pg_temp.yesterday_counted() RETURNS numeric LANGUAGE sql AS $$
	SELECT coalesce(sum(c.members), 0) FROM (
		SELECT c.program_id, c.period, c.period_no, c.level, c.members FROM gifq.board_counts c
		UNION ALL
		SELECT p.program_id, p.period, p.period_no, p.level, p.members FROM gifq.board_pending() p) c
	JOIN gifq.programs p ON p.id = c.program_id
	WHERE p.code = 'tap-late' AND c.period = 'day' AND c.level = 0
		AND c.period_no = gifq.period_no('day', now() AT TIME ZONE 'UTC') - 1 $$;
SELECT count(*) FROM gifq_record_event('tap-late', 'mover', 'x', 'mover-1', now() - interval '1 day');
SELECT is(pg_temp.yesterday_counted(), 1::numeric, 'late events: the day before counts its member');
SELECT count(*) FROM gifq_record_event('tap-late', 'mover', 'x', 'mover-2', now());
SELECT is(pg_temp.yesterday_counted(), 0::numeric,
	'late events: the day before counts nobody once its member moved on');
SELECT is_empty($$SELECT * FROM gifq.board_verify()$$,
	'late events: after the move the counts agree with the events');

-- challenges come from the backend's settings cache, which keeps those
-- ending after 31 days before it was filled: an event that occurred
-- earlier reads its challenges anew, and gets the bonus of one that ran
-- then as a current event gets a running one's
SELECT gifq_create_program('tap-old', 'USD', 'PTS', 100, 'UTC') IS NOT NULL AS old_program;
SELECT gifq_upsert_member('tap-old', 'o1', NULL, NULL) IS NOT NULL AS o1;
SELECT gifq_set_rule('tap-old', 'x', 10);
SELECT gifq_create_challenge('tap-old', 'long-ago', 'x', now() - interval '60 days',
	now() - interval '35 days', 3) IS NOT NULL AS long_ago;
SELECT gifq_create_challenge('tap-old', 'last-week', 'x', now() - interval '14 days',
	now() - interval '7 days', 2) IS NOT NULL AS last_week;
SELECT gifq_create_challenge('tap-old', 'running', 'x', now() - interval '1 day',
	now() + interval '1 day', 4) IS NOT NULL AS running;
SELECT results_eq($$SELECT v.k, e.points_awarded FROM (VALUES
		('now', now()), ('40 days ago', now() - interval '40 days'),
		('10 days ago', now() - interval '10 days'), ('now again', now()),
		('90 days ago', now() - interval '90 days')) v(k, at),
	LATERAL gifq_record_event('tap-old', 'o1', 'x', 'old-' || v.k, v.at) e$$,
	$$VALUES ('now', 40::bigint), ('40 days ago', 30), ('10 days ago', 20), ('now again', 40),
		('90 days ago', 10)$$,
	'challenges: a current event gets the running challenge, late ones those that ran when they occurred, cached or not');

-- a batch parses its events' details once per text (event_details.c) and
-- sets the transfer in the kept tree: each event's details, single or in
-- a batch, are the jsonb their text gives, name their own transfer, and
-- follow the rule and the event type
SELECT gifq_create_program('tap-det', 'USD', 'PTS', 100, 'UTC') IS NOT NULL AS det_program;
SELECT gifq_upsert_member('tap-det', 'd1', NULL, NULL) IS NOT NULL AS d1;
SELECT gifq_set_rule('tap-det', 'x', 10);
SELECT gifq_set_rule('tap-det', 'y', 0);
CREATE TEMP TABLE det AS
	SELECT 1 AS n, d.* FROM gifq_record_event('tap-det', 'd1', 'x', 'det-1') d;
INSERT INTO det SELECT 2, d.* FROM gifq_record_event('tap-det', 'd1', 'x', 'det-2') d;
INSERT INTO det SELECT 3, d.* FROM gifq_record_event('tap-det', 'd1', 'y', 'det-3') d;
SELECT gifq_set_rule('tap-det', 'x', 15);
INSERT INTO det SELECT 4, d.* FROM gifq_record_event('tap-det', 'd1', 'x', 'det-4') d;
INSERT INTO det SELECT 5 + row_number() OVER (), d.event_id, d.points_awarded, d.balance, d.details
	FROM gifq_record_events('tap-det', '[
		{"member": "d1", "event_type": "x", "idempotency_key": "det-5"},
		{"member": "d1", "event_type": "y", "idempotency_key": "det-6"},
		{"member": "d1", "event_type": "x", "idempotency_key": "det-7"}]') d;
SELECT results_eq($$SELECT d.n, d.details->'rule'->>'points', d.details->>'transfer_id' IS NULL,
		d.details->'transfer_id' = to_jsonb(e.transfer_id) OR e.transfer_id IS NULL
	FROM det d JOIN gifq.events e ON e.id = d.event_id ORDER BY d.n$$,
	$$VALUES (1, '10', false, true), (2, '10', false, true), (3, '0', true, true),
		(4, '15', false, true), (6, '15', false, true), (7, '0', true, true), (8, '15', false, true)$$,
	'details: each event''s rule as it was, its own transfer, none without points');
SELECT is((SELECT count(*) FROM gifq.events e
	WHERE e.program_id = (SELECT id FROM gifq.programs WHERE code = 'tap-det')
		AND (e.details::text <> e.details::text::jsonb::text
			OR pg_column_size(e.details) <> pg_column_size(e.details::text::jsonb))), 0::bigint,
	'details: stored as the jsonb their text gives');
SELECT is((SELECT count(*) FROM det d JOIN gifq.events e ON e.id = d.event_id
	WHERE d.details IS DISTINCT FROM e.details), 0::bigint,
	'details: returned as stored');

SELECT * FROM finish();
ROLLBACK;
