-- upgrade path: install 0.1.0, keep data in gifq_money, update step by
-- step to the default version, and use each version's features with the
-- data kept from before.
SET client_min_messages = warning;
DROP EXTENSION gifq CASCADE;
CREATE EXTENSION gifq VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
CREATE TABLE kept (m gifq_money);
INSERT INTO kept VALUES ('12.50 USD'), ('3 PTS');
SELECT to_regprocedure('gifq_transfer(bigint,bigint,gifq_money,text,boolean,interval,jsonb)') IS NULL AS no_ledger_yet;
ALTER EXTENSION gifq UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
SELECT m, gifq_minor_units(m), gifq_from_minor_units(gifq_minor_units(m), gifq_currency(m)) = m AS round_trip
FROM kept ORDER BY m;
SELECT gifq_create_program('upgraded', 'USD') > 0 AS program_created;
SELECT gifq_fund('upgraded', (SELECT m FROM kept WHERE gifq_currency(m) = 'USD'), 'k1') > 0 AS funded;
SELECT (gifq_program_balance('upgraded')).available;
SELECT gifq_upsert_member('upgraded', 'old-member', 'old@example.com', 'US') > 0 AS member_created;
SELECT gifq_transfer(gifq_account('upgraded', NULL, 'issuance'),
	gifq_account('upgraded', 'old-member'), '2000 PTS', 'earn-1') > 0 AS earned;
SELECT count(*) AS problems FROM gifq_ledger_verify();
SELECT to_regprocedure('gifq_redeem(text,text,text,gifq_money,text,text)') IS NULL AS no_orders_yet;
ALTER EXTENSION gifq UPDATE TO '0.3.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
-- a member and funding from 0.2.0 redeem under 0.3.0
SELECT gifq_catalog_load('{"brands": [{"id": "b-us", "name": "Brand", "country": "US",
	"currency": "USD", "categories": ["retail"], "denominations": [10], "in_stock": true}]}');
SELECT order_id > 0 AS ordered, status, points_debited, created
FROM gifq_redeem('upgraded', 'old-member', 'b-us', '10.00 USD', 'r-1');
SELECT (gifq_member_balance('upgraded', 'old-member')).available AS points_left,
	(gifq_program_balance('upgraded')).available AS funding_left;
SELECT count(*) AS problems FROM gifq_ledger_verify();
SELECT to_regprocedure('gifq_set_rule(text,text,bigint,integer)') IS NULL AS no_rules_yet;
ALTER EXTENSION gifq UPDATE TO '0.4.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
-- the program made under 0.2.0 gets rules, a challenge, a streak type and
-- a threshold under 0.4.0
SELECT gifq_set_rule('upgraded', 'deal.closed', 50, 3);
SELECT gifq_create_challenge('upgraded', 'double-deals', 'deal.closed',
	'2026-01-01 00:00+00', '2026-02-01 00:00+00', 2, 100) > 0 AS challenge_created;
SELECT gifq_define_streak('upgraded', 'weekly-deals', 'deal.closed', 'week', 1);
SELECT gifq_define_threshold('upgraded', 5000, 'reward', '10.00 USD') > 0 AS threshold_created;
SELECT event_type, points, daily_cap FROM gifq.rules;
-- and the member made under 0.2.0 earns by them: 50 by the rule, 50 more
-- by the double-points challenge
SELECT points_awarded, balance FROM gifq_record_event('upgraded', 'old-member',
	'deal.closed', 'ev-1', '2026-01-10 10:00+00');
SELECT count(*) AS problems FROM gifq_ledger_verify();
SELECT to_regprocedure('gifq_process_orders(integer)') IS NULL AS no_worker_yet;
ALTER EXTENSION gifq UPDATE TO '0.5.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
-- the order redeemed under 0.3.0 is sent by the 0.5.0 worker's claim
SELECT order_id, call, attempt FROM gifq.claim_work(10, '1 minute', 'upgrade-test');
SELECT status, lease_owner FROM gifq.orders;
SELECT count(*) AS problems FROM gifq_ledger_verify();
SELECT to_regprocedure('gifq_expire_points()') IS NULL AS no_expiry_yet;
ALTER EXTENSION gifq UPDATE TO '0.6.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
-- points earned under 0.4.0 never expire; points earned now do
SELECT gifq_set_points_expiry('upgraded', '90 days');
SELECT points_awarded FROM gifq_record_event('upgraded', 'old-member', 'deal.closed', 'ev-2',
	'2026-01-10 11:00+00');
SELECT count(*) AS lots, sum(remaining) AS expiring FROM gifq.point_lots;
-- the board counts the event recorded under 0.4.0 (counted by the update)
-- and the one recorded now
SELECT rank, member, points FROM gifq_leaderboard('upgraded');
SELECT count(*) AS board_problems FROM gifq.board_verify();
SELECT count(*) AS problems FROM gifq_ledger_verify();
ALTER EXTENSION gifq UPDATE TO '0.7.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
-- the order of 0.3.0 (submitted since 0.5.0) in the reports of 0.7.0; the
-- maintenance jobs as data; nothing old enough to prune
SELECT program, orders, open, success_rate FROM gifq.order_outcomes;
SELECT program, members, eligible, redeemed FROM gifq.redemption_conversion;
SELECT count(*) AS jobs FROM gifq_maintenance_jobs();
SELECT log, removed FROM gifq_prune();
SELECT count(*) AS problems FROM gifq_ledger_verify();
-- recipient-choice rewards: the program made under 0.2.0 sends one, the
-- recipient claims it as the brand loaded under 0.3.0
SELECT gifq_fund('upgraded', '20.00 USD', 'k2') > 0 AS funded;
SELECT claim_token AS reward_token, status AS reward_status
FROM gifq_send_reward('upgraded', 'friend@example.com', '10.00 USD', 'rw-1') \gset
SELECT :'reward_status' AS sent, :'reward_token' ~ '^gqr_[A-Za-z0-9_-]{32}$' AS token_shape;
SELECT brand_id FROM gifq_reward_options(:'reward_token');
SELECT status FROM gifq_claim_reward(:'reward_token', 'b-us');
SELECT status, value, currency FROM gifq.rewards;
SELECT (gifq_program_balance('upgraded')).available AS funding_left;
SELECT count(*) AS problems FROM gifq_ledger_verify();
-- a reveal recorded under 0.7.0 (as gifq_reveal_code writes it): the
-- update copies it into the audit trail
INSERT INTO gifq.card_reveals (order_id, actor)
SELECT min(id), 'reviewer' FROM gifq.orders;
ALTER EXTENSION gifq UPDATE TO '0.8.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
SELECT count(*) AS problems FROM gifq_ledger_verify();
SELECT table_name, operation, session_role, acting_role, xid IS NULL AS no_xid,
	object_id = (SELECT min(id) FROM gifq.orders)::text AS the_order,
	program_id = (SELECT id FROM gifq.programs WHERE code = 'upgraded') AS the_program
FROM gifq.audit ORDER BY id;
-- the trail goes on, and the member can be forgotten
SELECT gifq_block_member('upgraded', 'old-member');
SELECT gifq_forget_member('upgraded', 'old-member');
SELECT table_name, operation, before ->> 'blocked' AS was_blocked, after ->> 'blocked' AS blocked,
	before ->> 'email' AS email_was, after -> 'email' AS email
FROM gifq.audit WHERE operation <> 'REVEAL' AND table_name = 'members' ORDER BY id;
SELECT email IS NULL AS no_email, forgotten_at IS NOT NULL AS forgotten FROM gifq.members;
SELECT count(*) AS problems FROM gifq_ledger_verify();
-- an event recorded under 0.8.0 by this library (0.8.0's board rows, one
-- per member and board), then the update to one row per member: the rows
-- are made from the events, and pg_dump no longer lists the old table
SELECT gifq_upsert_member('upgraded', 'new-member', NULL, NULL) IS NOT NULL AS new_member;
SELECT points_awarded FROM gifq_record_event('upgraded', 'new-member', 'deal.closed', 'ev-3');
SELECT count(*) AS board_rows_080 FROM gifq.member_points;
SELECT count(*) AS board_problems FROM gifq.board_verify();
ALTER EXTENSION gifq UPDATE TO '0.9.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
SELECT m.external_id, b.all_points FROM gifq.board_points b
JOIN gifq.members m ON m.id = b.member_id ORDER BY 1;
SELECT rank, member, points FROM gifq_leaderboard('upgraded');
SELECT points_awarded FROM gifq_record_event('upgraded', 'new-member', 'deal.closed', 'ev-4');
SELECT rank, member, points FROM gifq_leaderboard('upgraded', 'day');
SELECT count(*) AS board_problems FROM gifq.board_verify();
SELECT count(*) AS dumped_tables, count(c.oid) AS existing
FROM pg_extension e, unnest(e.extconfig) x LEFT JOIN pg_class c ON c.oid = x
WHERE e.extname = 'gifq';
SELECT count(*) AS problems FROM gifq_ledger_verify();
-- rewards sent under 0.9.0 that are past their expiry: 0.10.0 voids them
-- all in one statement, each once, and their value is back in the funding;
SELECT gifq_fund('upgraded', '3.00 USD', 'k3') > 0 AS funded;
SELECT (gifq_program_balance('upgraded')).available AS funding_before;
SELECT count(*) AS sent FROM generate_series(1, 3) i,
	gifq_send_reward('upgraded', 'late' || i || '@example.com', '1.00 USD', 'rw-exp-' || i,
		expires_at => clock_timestamp() + interval '10 milliseconds');
-- and points earned under 0.9.0 that are due: 0.10.0 moves them to
-- breakage, having locked every balance row first
SELECT gifq_set_points_expiry('upgraded', '30 days');
SELECT gifq_transfer(gifq_account('upgraded', NULL, 'issuance'),
	gifq_account('upgraded', 'new-member'), '7 PTS') > 0 AS earned;
UPDATE gifq.point_lots SET expires_at = now() - interval '1 hour'
WHERE expires_at < now() + interval '31 days';
ALTER EXTENSION gifq UPDATE TO '0.10.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
SELECT pg_sleep(0.05);
SELECT gifq_expire_rewards() AS expired;
SELECT gifq_expire_rewards() AS expired_again;
SELECT status, count(*) FROM gifq.rewards GROUP BY 1 ORDER BY 1;
SELECT (gifq_program_balance('upgraded')).available AS funding_after;
SELECT gifq_expire_points() AS accounts_expired;
SELECT gifq_expire_points() AS accounts_expired_again;
SELECT amount, currency FROM gifq.transfers WHERE metadata ? 'points_expired';
SELECT count(*) AS problems FROM gifq_ledger_verify();
-- 0.11.0: inserting members fires the trigger that analyzes what a
-- transaction has outgrown (a table this small is left alone)
ALTER EXTENSION gifq UPDATE TO '0.11.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
SELECT tgname, tgtype FROM pg_trigger
WHERE tgrelid = 'gifq.members'::regclass AND tgname = 'members_statistics';
SELECT gifq_upsert_member('upgraded', 'after-0.11', NULL, NULL) IS NOT NULL AS member_added;
-- every object of a fresh install exists after the update, and no other
SELECT count(*) AS objects FROM pg_depend
WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'gifq') AND deptype = 'e';
DROP TABLE kept;
DROP EXTENSION gifq CASCADE;
CREATE EXTENSION gifq;
SELECT count(*) AS objects FROM pg_depend
WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'gifq') AND deptype = 'e';
