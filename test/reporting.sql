-- reporting.sql: pgTAP suite for 0.7.0's reporting views and maintenance
-- functions, on hand-made rows: orders, calls and events are inserted
-- directly (as the extension's owner), with fixed times, so every figure
-- is exact.  Covered: each view's numbers, months and years in the
-- program's time zone, gifq_prune and what it keeps, the job list,
-- scheduling refused outside pg_cron's database (QG602: the test
-- cluster's pg_cron runs in "postgres"), gifq_refresh_catalog against a
-- closed port (QG603), and the privileges of gifq_reader.
--   QG602 pg_cron in another database    QG603 catalog not refreshed
-- QG601 (no pg_cron) needs a cluster without it: test/t/008_cron.pl.
BEGIN;
SELECT plan(43);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';

------------------------------------------------------------------------
-- data
------------------------------------------------------------------------

SELECT gifq_create_program('rep-a', 'USD') IS NOT NULL AS a;
SELECT gifq_create_program('rep-b', 'USD', timezone => 'America/New_York') IS NOT NULL AS b;
SELECT gifq_upsert_member('rep-a', m) IS NOT NULL
FROM unnest(ARRAY['ana', 'ben', 'cho', 'dan', 'eve', 'fay']) m;
SELECT gifq_upsert_member('rep-b', 'gus') IS NOT NULL;
SELECT gifq_catalog_load('{"brands": [
	{"id": "rep-amz", "name": "Amazon", "country": "US", "currency": "USD",
	 "categories": ["retail", "online"], "denominations": [10, 25, 50],
	 "discount_pct": 3.0, "in_stock": true},
	{"id": "rep-cafe", "name": "Cafe", "country": "US", "currency": "USD",
	 "categories": ["food"], "min_value": 5, "max_value": 100, "in_stock": true},
	{"id": "rep-gone", "name": "Gone", "country": "US", "currency": "USD",
	 "categories": [], "denominations": [1], "in_stock": false},
	{"id": "rep-eur", "name": "Euro", "country": "DE", "currency": "EUR",
	 "categories": ["retail"], "denominations": [2], "in_stock": true}]}');
-- points now: cho 600 (enough for the cheapest card, 500), eve 499
SELECT gifq_transfer(gifq_account('rep-a', NULL, 'issuance'), gifq_account('rep-a', m),
	gifq_money(p, 'PTS')) IS NOT NULL
FROM (VALUES ('cho', 600), ('eve', 499)) v(m, p);
SELECT gifq_set_limits('rep-a', '{"recipient_yearly_flag": "60.00 USD"}');

-- orders: program, member, brand, face and cost in cents, points, status,
-- created, seconds to delivery, error
CREATE TEMP TABLE o (n int, program text, member text, brand text, amount bigint,
	cost bigint, points bigint, status text, created timestamptz, secs int, error text);
INSERT INTO o VALUES
	(1, 'rep-a', 'ana', 'rep-amz', 1000, 970, 1000, 'delivered', '2026-03-02 10:00+00', 30, NULL),
	(2, 'rep-a', 'ana', 'rep-amz', 2500, 2425, 2500, 'delivered', '2026-03-05 12:00+00', 90, NULL),
	(3, 'rep-a', 'ben', 'rep-cafe', 2000, 2000, 2000, 'delivered', '2026-03-10 08:00+00', 60, NULL),
	(4, 'rep-a', 'ben', 'rep-amz', 5000, 4850, 5000, 'failed', '2026-03-11 08:00+00', NULL,
		'provider 400: brand_unavailable: Brand paused'),
	(5, 'rep-a', 'cho', 'rep-amz', 1000, 970, 1000, 'failed', '2026-03-12 08:00+00', NULL,
		'provider 400: brand_unavailable: another text'),
	(6, 'rep-a', 'cho', 'rep-cafe', 1500, 1500, 1500, 'failed', '2026-03-13 08:00+00', NULL,
		'not at the provider'),
	(7, 'rep-a', 'dan', 'rep-amz', 1000, 970, 1000, 'canceled', '2026-03-14 08:00+00', NULL, NULL),
	(8, 'rep-a', 'dan', 'rep-amz', 2500, 2425, 2500, 'pending', '2026-03-15 08:00+00', NULL, NULL),
	(9, 'rep-a', 'ana', 'rep-amz', 5000, 4850, 5000, 'delivered', '2026-04-02 09:00+00', 300, NULL),
	-- 22:00 on 31 December in New York
	(10, 'rep-b', 'gus', 'rep-amz', 1000, 970, 1000, 'delivered', '2027-01-01 03:00+00', 60, NULL);
INSERT INTO gifq.orders (program_id, member_id, brand_id, amount, currency, cost, margin,
	points, points_code, recipient_given, idempotency_key, status, status_reason, last_error,
	created_at, delivered_at, created_by)
SELECT p.id, m.id, o.brand, o.amount, 'USD', o.cost, o.amount - o.cost, o.points, 'PTS',
	false, 'rep-' || o.n, o.status, o.error, o.error, o.created,
	o.created + make_interval(secs => o.secs), 'tap'
FROM o JOIN gifq.programs p ON p.code = o.program
JOIN gifq.members m ON m.program_id = p.id AND m.external_id = o.member
ORDER BY o.n;
-- ana's 2026 total reached the level with order 9
INSERT INTO gifq.member_flags (program_id, member_id, flag, period, total, level, order_id,
	flagged_at)
SELECT m.program_id, m.id, 'recipient_yearly_flag', '2026', 8500, 6000, x.id,
	'2026-04-02 09:00+00'
FROM gifq.members m JOIN gifq.orders x ON x.idempotency_key = 'rep-9'
WHERE m.external_id = 'ana';

------------------------------------------------------------------------
-- orders
------------------------------------------------------------------------

SELECT results_eq(
	$$SELECT program, month, orders, delivered, failed, canceled, open, success_rate
	FROM gifq.order_outcomes WHERE program LIKE 'rep-%' ORDER BY 1, 2$$,
	$$VALUES ('rep-a', date '2026-03-01', 8::bigint, 3::bigint, 3::bigint, 1::bigint, 1::bigint, 0.5000),
		('rep-a', date '2026-04-01', 1, 1, 0, 0, 0, 1.0000),
		('rep-b', date '2026-12-01', 1, 1, 0, 0, 0, 1.0000)$$,
	'order_outcomes: counts and success rate by program and month (New York''s December for rep-b)');
SELECT results_eq(
	$$SELECT program, month, reason, orders FROM gifq.order_failures
	WHERE program LIKE 'rep-%' ORDER BY 1, 2, 3$$,
	$$VALUES ('rep-a', date '2026-03-01', 'not at the provider', 1::bigint),
		('rep-a', date '2026-03-01', 'provider 400: brand_unavailable', 2::bigint)$$,
	'order_failures: provider errors grouped by status and code');
SELECT results_eq(
	$$SELECT program, month, delivered, p50, p95, p99, max FROM gifq.time_to_reward
	WHERE program LIKE 'rep-%' ORDER BY 1, 2$$,
	$$VALUES ('rep-a', date '2026-03-01', 3::bigint, interval '60 s', interval '87 s',
			interval '89.4 s', interval '90 s'),
		('rep-a', date '2026-04-01', 1, interval '300 s', interval '300 s', interval '300 s',
			interval '300 s'),
		('rep-b', date '2026-12-01', 1, interval '60 s', interval '60 s', interval '60 s',
			interval '60 s')$$,
	'time_to_reward: percentiles of delivery time by month of delivery');

------------------------------------------------------------------------
-- spend
------------------------------------------------------------------------

SELECT results_eq(
	$$SELECT program, month, currency, orders, face_value, cost, margin, margin_pct, points
	FROM gifq.spend_by_program WHERE program LIKE 'rep-%' ORDER BY 1, 2$$,
	$$VALUES ('rep-a', date '2026-03-01', 'USD', 3::bigint, '55.00 USD'::gifq_money,
			'53.95 USD'::gifq_money, '1.05 USD'::gifq_money, 1.91, '5500 PTS'::gifq_money),
		('rep-a', date '2026-04-01', 'USD', 1, '50.00 USD', '48.50 USD', '1.50 USD', 3.00,
			'5000 PTS'),
		('rep-b', date '2026-12-01', 'USD', 1, '10.00 USD', '9.70 USD', '0.30 USD', 3.00,
			'1000 PTS')$$,
	'spend_by_program: delivered orders at face value and cost, margin, points');
SELECT results_eq(
	$$SELECT brand_id, brand, orders, face_value, cost, margin, margin_pct
	FROM gifq.spend_by_brand WHERE program = 'rep-a' AND month = '2026-03-01' ORDER BY 1$$,
	$$VALUES ('rep-amz', 'Amazon', 2::bigint, '35.00 USD'::gifq_money, '33.95 USD'::gifq_money,
			'1.05 USD'::gifq_money, 3.00),
		('rep-cafe', 'Cafe', 1, '20.00 USD', '20.00 USD', '0.00 USD', 0.00)$$,
	'spend_by_brand');
SELECT results_eq(
	$$SELECT category, orders, face_value, cost, margin
	FROM gifq.spend_by_category WHERE program = 'rep-a' AND month = '2026-03-01' ORDER BY 1$$,
	$$VALUES ('food', 1::bigint, '20.00 USD'::gifq_money, '20.00 USD'::gifq_money,
			'0.00 USD'::gifq_money),
		('online', 2, '35.00 USD', '33.95 USD', '1.05 USD'),
		('retail', 2, '35.00 USD', '33.95 USD', '1.05 USD')$$,
	'spend_by_category: an order counts in each category of its brand');
SELECT results_eq(
	$$SELECT program, month, orders, average_value, average_points
	FROM gifq.average_order_value WHERE program LIKE 'rep-%' ORDER BY 1, 2$$,
	$$VALUES ('rep-a', date '2026-03-01', 3::bigint, '18.33 USD'::gifq_money, '1833 PTS'::gifq_money),
		('rep-a', date '2026-04-01', 1, '50.00 USD', '5000 PTS'),
		('rep-b', date '2026-12-01', 1, '10.00 USD', '1000 PTS')$$,
	'average_order_value: mean face value and points, to the minor unit');

------------------------------------------------------------------------
-- members
------------------------------------------------------------------------

SELECT results_eq(
	$$SELECT program, members, eligible, redeemed, conversion_rate, cheapest_card_points
	FROM gifq.redemption_conversion WHERE program LIKE 'rep-%' ORDER BY 1$$,
	$$VALUES ('rep-a', 6::bigint, 4::bigint, 3::bigint, 0.7500, '500 PTS'::gifq_money),
		('rep-b', 1, 1, 1, 1.0000, '500 PTS')$$,
	'redemption_conversion: redeemers (ana, ben, dan) over members with enough points (and cho)');
SELECT results_eq(
	$$SELECT program, member, year, orders, points, flag_level, flagged, flagged_at
	FROM gifq.recipient_yearly_totals WHERE program LIKE 'rep-%' ORDER BY 1, 2, 3$$,
	$$VALUES ('rep-a', 'ana', 2026, 3::bigint, '8500 PTS'::gifq_money, '6000 PTS'::gifq_money,
			true, timestamptz '2026-04-02 09:00+00'),
		('rep-a', 'ben', 2026, 1, '2000 PTS', '6000 PTS', false, NULL),
		('rep-a', 'dan', 2026, 1, '2500 PTS', '6000 PTS', false, NULL),
		('rep-b', 'gus', 2026, 1, '1000 PTS', NULL, false, NULL)$$,
	'recipient_yearly_totals: canceled and failed left out; the flag and its level');
UPDATE gifq.programs SET points_per_unit = 200 WHERE code = 'rep-a';
SELECT is((SELECT flag_level FROM gifq.recipient_yearly_totals
	WHERE program = 'rep-a' AND member = 'ben'), '12000 PTS'::gifq_money,
	'an unflagged member''s level is the current limit at the current rate');
UPDATE gifq.programs SET points_per_unit = 100 WHERE code = 'rep-a';

------------------------------------------------------------------------
-- the provider and webhooks out
------------------------------------------------------------------------

INSERT INTO gifq.provider_calls (at, call, http_status, latency_ms, caller)
VALUES ('2026-03-02 10:00+00', 'order', 200, 100, 'worker'),
	('2026-03-02 11:00+00', 'order', 200, 200, 'worker'),
	('2026-03-02 12:00+00', 'order', 500, 300, 'worker'),
	('2026-03-02 13:00+00', 'order', NULL, 400, 'worker'),
	('2026-03-02 13:00+00', 'catalog', 304, 50, 'worker');
SELECT results_eq(
	$$SELECT call, calls, transient_errors, p50_ms, p95_ms, p99_ms, max_ms
	FROM gifq.provider_latency_daily WHERE day = '2026-03-02' ORDER BY 1$$,
	$$VALUES ('catalog', 1::bigint, 0::bigint, 50::float8, 50::float8, 50::float8, 50::float8),
		('order', 4, 2, 250, 385, 397, 400)$$,
	'provider_latency_daily: percentiles by day and call');

INSERT INTO gifq.outbox (event_type, payload, created_at, send_status, send_attempts, sent_at)
VALUES ('order.delivered', '{}', '2026-03-02 10:00+00', 'sent', 1, '2026-03-02 10:00:10+00'),
	('order.delivered', '{}', '2026-03-02 10:00+00', 'sent', 1, '2026-03-02 10:00:20+00'),
	('order.delivered', '{}', '2026-03-02 10:00+00', 'sent', 2, '2026-03-02 10:00:40+00'),
	('order.delivered', '{}', '2026-03-02 10:00+00', 'failed', 20, NULL),
	('order.delivered', '{}', '2026-03-02 10:00+00', 'pending', 3, NULL),
	('order.delivered', '{}', '2026-03-02 10:00+00', NULL, 0, NULL),
	('order.failed', '{}', '2026-03-02 23:59+00', 'sent', 1, '2026-03-03 00:00:01+00');
SELECT results_eq(
	$$SELECT event_type, events, sent, failed, pending, success_rate, attempts_per_sent, p95_delay
	FROM gifq.webhook_delivery WHERE day = '2026-03-02' ORDER BY 1$$,
	$$VALUES ('order.delivered', 5::bigint, 3::bigint, 1::bigint, 1::bigint, 0.7500, 1.33,
			interval '38 s'),
		('order.failed', 1, 1, 0, 0, 1.0000, 1.00, interval '61 s')$$,
	'webhook_delivery: sent, failed and waiting events; events not for the endpoint left out');

------------------------------------------------------------------------
-- gifq_prune
------------------------------------------------------------------------

DELETE FROM gifq.provider_calls;
DELETE FROM gifq.outbox;
INSERT INTO gifq.provider_calls (at, call, http_status, latency_ms, caller)
VALUES (now() - interval '8 days', 'order', 200, 1, 'worker'),
	(now() - interval '6 days', 'order', 200, 1, 'worker');
INSERT INTO gifq.outbox (event_type, payload, created_at, send_status)
VALUES ('old.sent', '{}', now() - interval '31 days', 'sent'),
	('old.failed', '{}', now() - interval '31 days', 'failed'),
	('old.unsent', '{}', now() - interval '31 days', NULL),
	('old.pending', '{}', now() - interval '31 days', 'pending'),
	('new.sent', '{}', now() - interval '29 days', 'sent');
INSERT INTO gifq.webhook_events (event_id, event_type, order_id, outcome, received_at)
SELECT 'rep-wh-' || v.n, 'card.redeemed',
	(SELECT x.id FROM gifq.orders x WHERE x.idempotency_key = v.k), 'applied',
	now() - v.age
FROM (VALUES (1, 'rep-1', interval '31 days'), (2, 'rep-8', interval '31 days'),
	(3, NULL, interval '31 days'), (4, 'rep-1', interval '29 days')) v(n, k, age);
SELECT results_eq(
	$$SELECT log, retention, removed FROM gifq_prune()$$,
	$$VALUES ('provider_calls', interval '7 days', 1::bigint),
		('outbox', interval '30 days', 3::bigint),
		('webhook_events', interval '30 days', 2::bigint)$$,
	'gifq_prune removes what is past each retention setting');
SELECT results_eq(
	$$SELECT event_type FROM gifq.outbox ORDER BY 1$$,
	$$VALUES ('new.sent'), ('old.pending')$$,
	'events waiting to be sent are kept whatever their age');
SELECT results_eq(
	$$SELECT event_id FROM gifq.webhook_events WHERE event_id LIKE 'rep-wh-%' ORDER BY 1$$,
	$$VALUES ('rep-wh-2'), ('rep-wh-4')$$,
	'webhook ids of orders still open are kept');
SELECT is((SELECT count(*) FROM gifq.orders WHERE idempotency_key LIKE 'rep-%'), 10::bigint,
	'orders are never pruned');
SELECT results_eq($$SELECT * FROM gifq_prune()$$,
	$$VALUES ('provider_calls', interval '7 days', 0::bigint), ('outbox', '30 days', 0),
		('webhook_events', '30 days', 0)$$,
	'a second prune finds nothing');

------------------------------------------------------------------------
-- maintenance jobs
------------------------------------------------------------------------

CREATE TEMP TABLE here AS SELECT current_database()::text COLLATE "default" AS db;
-- this cluster: the worker serves "postgres", pg_cron runs there, and the
-- provider URL and card key are set
SELECT is(gifq.worker_serves(), false, 'the worker does not serve this database');
SELECT results_eq(
	$$SELECT job_name, schedule, command, database, skip_reason IS NULL
	FROM gifq_maintenance_jobs() WHERE job_name NOT LIKE '%-rewards'$$,
	$$VALUES ('gifq-' || (SELECT db FROM here) || '-holds', '* * * * *', 'SELECT public.gifq_expire_holds()',
			(SELECT db FROM here), true),
		('gifq-' || (SELECT db FROM here) || '-points', '*/10 * * * *', 'SELECT public.gifq_expire_points()',
			(SELECT db FROM here), true),
		('gifq-' || (SELECT db FROM here) || '-prune', '23 * * * *', 'SELECT * FROM public.gifq_prune()',
			(SELECT db FROM here), true),
		('gifq-' || (SELECT db FROM here) || '-boards', '41 3 * * *', 'SELECT gifq.board_prune()',
			(SELECT db FROM here), true),
		('gifq-' || (SELECT db FROM here) || '-orders', '* * * * *',
			'SELECT public.gifq_process_orders(100)', (SELECT db FROM here), true),
		('gifq-' || (SELECT db FROM here) || '-catalog', '*/5 * * * *',
			'SELECT public.gifq_refresh_catalog()', (SELECT db FROM here), true)$$,
	'the job list: every job applies in a database the worker does not serve');
SELECT is((SELECT skip_reason IS NULL FROM gifq_maintenance_jobs() WHERE job_name LIKE '%-rewards'),
	to_regprocedure('public.gifq_expire_rewards()') IS NOT NULL,
	'reward expiry is a job exactly when gifq_expire_rewards() exists');
SELECT is((SELECT cron_statement FROM gifq_maintenance_jobs() WHERE job_name LIKE '%-holds'),
	format('SELECT cron.schedule_in_database(%L, ''* * * * *'', ''SELECT public.gifq_expire_holds()'', %L);',
		'gifq-' || (SELECT db FROM here) || '-holds', (SELECT db FROM here)),
	'cron_statement schedules the job in this database');
SELECT is((SELECT count(*) FROM gifq_maintenance_jobs()
		WHERE (skip_reason IS NULL) <> (cron_statement IS NOT NULL)), 0::bigint,
	'a statement for each job that applies, none for a skipped one');
SELECT throws_ok('SELECT * FROM gifq_schedule_jobs()', 'QG602',
	format('pg_cron runs in database "postgres", not in "%s"', current_database()),
	'scheduling outside pg_cron''s database is refused with QG602');
SELECT throws_ok('SELECT * FROM gifq_unschedule_jobs()', 'QG602', NULL,
	'and so is unscheduling');
SELECT throws_ok('SELECT gifq_refresh_catalog()', 'QG603', NULL,
	'a catalog refresh that gets no answer raises QG603');

------------------------------------------------------------------------
-- privileges
------------------------------------------------------------------------

CREATE ROLE tap_rep_reader IN ROLE gifq_reader;
SET ROLE tap_rep_reader;
SELECT lives_ok(format('SELECT count(*) FROM gifq.%I', v), 'gifq_reader reads gifq.' || v)
FROM unnest(ARRAY['order_outcomes', 'order_failures', 'provider_latency_daily',
	'time_to_reward', 'spend_by_program', 'spend_by_brand', 'spend_by_category',
	'average_order_value', 'redemption_conversion', 'recipient_yearly_totals',
	'webhook_delivery', 'order_success', 'provider_latency', 'worker', 'reward_rates']) v;
SELECT throws_ok('SELECT count(*) FROM gifq.orders', '42501', NULL,
	'gifq_reader cannot read the tables behind the views');
SELECT throws_ok('SELECT * FROM gifq_prune()', '42501', NULL,
	'gifq_reader cannot prune');
SELECT throws_ok('SELECT * FROM gifq_schedule_jobs()', '42501', NULL,
	'gifq_reader cannot schedule jobs');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
