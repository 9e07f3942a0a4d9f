-- gamification.sql: pgTAP suite for what a program defines for its
-- engagement rules: gifq_set_rule, gifq_create_challenge,
-- gifq_define_streak and gifq_define_threshold.  Every refusal is checked
-- with its SQLSTATE and message, and refused calls change nothing.
BEGIN;
SELECT plan(66);

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

SELECT * FROM finish();
ROLLBACK;
