-- expiry.sql: pgTAP suite for points expiry: gifq_set_points_expiry,
-- the lots every way points come and go keeps (soonest-expiring spent
-- first, holds giving back to the lots they took from),
-- gifq_expiring_points and gifq_expire_points.  The ledger is verified
-- after each part (gifq_ledger_verify also checks the lots).
BEGIN;
SELECT plan(56);
\ir lib/errors.sql

SELECT gifq_create_program('tap-x', 'USD', 'PTS', 100, 'Europe/Paris');
SELECT gifq_upsert_member('tap-x', m, m || '@example.com', 'US')
FROM unnest(ARRAY['ana', 'bob', 'cy']) m;
SELECT gifq_set_rule('tap-x', 'done', 50);

CREATE FUNCTION pg_temp.acct(member text) RETURNS bigint LANGUAGE sql AS $$
	SELECT gifq_account('tap-x', member, 'points')
$$;
-- the member's lots as "remaining/earned@days from today", soonest first
CREATE FUNCTION pg_temp.lots(member text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(format('%s/%s@%s', remaining, earned,
		(expires_at AT TIME ZONE 'Europe/Paris')::date - (now() AT TIME ZONE 'Europe/Paris')::date),
		' ' ORDER BY expires_at), '')
	FROM gifq.point_lots WHERE account_id = pg_temp.acct(member)
$$;
CREATE FUNCTION pg_temp.available(member text) RETURNS text LANGUAGE sql AS $$
	SELECT (gifq_member_balance('tap-x', member)).available::text
$$;
CREATE FUNCTION pg_temp.verify() RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(account || ': ' || problem, '; '), 'consistent')
	FROM gifq_ledger_verify()
$$;

------------------------------------------------------------------------
-- gifq_set_points_expiry
------------------------------------------------------------------------

-- points held before expiry is set never expire
SELECT gifq_record_event('tap-x', 'ana', 'done', 'before-1');
SELECT is(pg_temp.code($$SELECT gifq_set_points_expiry('nope', '90 days')$$), 'QG101',
	'set: an unknown program is QG101');
SELECT is(pg_temp.err($$SELECT gifq_set_points_expiry('tap-x', '0 days')$$),
	'QG115: invalid expire_after 00:00:00 / ', 'set: a zero interval is QG115 naming it');
SELECT is(pg_temp.code($$SELECT gifq_set_points_expiry('tap-x', '-1 month')$$), 'QG115',
	'set: a negative interval is QG115');
SELECT is((SELECT count(*) FROM gifq.points_expiry), 0::bigint, 'set: refused calls wrote nothing');
SELECT lives_ok($$SELECT gifq_set_points_expiry('tap-x', '90 days')$$, 'set: 90 days');
SELECT is((SELECT expire_after FROM gifq.points_expiry), '90 days'::interval, 'set: stored');
UPDATE gifq.points_expiry SET updated_at = '2000-01-01';
SELECT gifq_set_points_expiry('tap-x', '90 days');
SELECT is((SELECT updated_at FROM gifq.points_expiry), '2000-01-01'::timestamptz,
	'set: the same value again writes nothing');
SELECT is(pg_temp.lots('ana'), '', 'set: points held before expiry was set make no lot');

------------------------------------------------------------------------
-- earning: a lot per account and day of expiry
------------------------------------------------------------------------

SELECT gifq_record_event('tap-x', 'ana', 'done', 'e-1');
SELECT gifq_record_event('tap-x', 'ana', 'done', 'e-2');
SELECT is(pg_temp.lots('ana'), '100/100@91',
	'earn: two events of one day share a lot expiring at the end of the 90th day after today');
SELECT is((SELECT expires_at AT TIME ZONE 'Europe/Paris' FROM gifq.point_lots
		WHERE account_id = pg_temp.acct('ana')),
	date_trunc('day', now() AT TIME ZONE 'Europe/Paris') + interval '91 days',
	'earn: the lot expires at midnight of the program''s time zone');
SELECT gifq_set_points_expiry('tap-x', '30 days');
SELECT gifq_transfer(gifq_account('tap-x', NULL, 'issuance'), pg_temp.acct('ana'), '70 PTS', 'x-grant-1');
SELECT is(pg_temp.lots('ana'), '70/70@31 100/100@91',
	'earn: a plain transfer in makes a lot too, at the expiry set when it arrives');
SELECT is(pg_temp.available('ana'), '220 PTS', 'earn: 50 never expire, 170 do');
SELECT is(pg_temp.verify(), 'consistent', 'earn: ledger and lots consistent');

------------------------------------------------------------------------
-- spending: soonest-expiring first, then what never expires
------------------------------------------------------------------------

SELECT gifq_transfer(pg_temp.acct('ana'), gifq_account('tap-x', NULL, 'issuance'), '40 PTS', 'x-spend-1')
	AS spend1 \gset
SELECT is(pg_temp.lots('ana'), '30/70@31 100/100@91', 'spend: 40 taken from the lot expiring first');
SELECT is((SELECT string_agg(format('%s:%s', l.earned, u.points), ',') FROM gifq.point_lot_uses u
		JOIN gifq.point_lots l ON l.id = u.lot_id WHERE u.transfer_id = :spend1),
	'70:40', 'spend: the use names the lot and the points');
SELECT gifq_transfer(pg_temp.acct('ana'), gifq_account('tap-x', NULL, 'issuance'), '50 PTS', 'x-spend-2');
SELECT is(pg_temp.lots('ana'), '0/70@31 80/100@91', 'spend: a spend across two lots empties the first');
SELECT gifq_transfer(pg_temp.acct('ana'), gifq_account('tap-x', NULL, 'issuance'), '100 PTS', 'x-spend-3');
SELECT is(pg_temp.lots('ana'), '0/70@31 0/100@91', 'spend: the lots go before the points that never expire');
SELECT is(pg_temp.available('ana'), '30 PTS', 'spend: 30 of the 50 old points are left');
SELECT is(pg_temp.verify(), 'consistent', 'spend: consistent');

------------------------------------------------------------------------
-- holds: a released hold gives back to the lots it took from
------------------------------------------------------------------------

SELECT gifq_record_event('tap-x', 'bob', 'done', 'b-1');
SELECT gifq_set_points_expiry('tap-x', '10 days');
SELECT gifq_record_event('tap-x', 'bob', 'done', 'b-2');
SELECT is(pg_temp.lots('bob'), '50/50@11 50/50@31', 'hold: bob has lots of 10 and 30 days');
SELECT gifq_transfer(pg_temp.acct('bob'), gifq_account('tap-x', NULL, 'issuance'), '80 PTS',
	'x-hold-1', true) AS hold1 \gset
SELECT is(pg_temp.lots('bob'), '0/50@11 20/50@31', 'hold: a held debit takes from the lots at once');
SELECT gifq_void(:hold1);
SELECT is(pg_temp.lots('bob'), '50/50@11 50/50@31', 'hold: a void gives each lot back what it gave');
SELECT is((SELECT sum(points) FROM gifq.point_lot_uses u JOIN gifq.transfers t ON t.id = u.transfer_id
		WHERE t.pending_id = :hold1), -80::numeric, 'hold: the void''s uses are negative');
SELECT gifq_transfer(pg_temp.acct('bob'), gifq_account('tap-x', NULL, 'issuance'), '80 PTS',
	'x-hold-2', true) AS hold2 \gset
SELECT gifq_post(:hold2, '60 PTS');
SELECT is(pg_temp.lots('bob'), '0/50@11 40/50@31',
	'hold: a partial post spends the soonest-expiring 60 and gives the latest 20 back');
SELECT gifq_set_points_expiry('tap-x', '90 days');
SELECT gifq_transfer(gifq_account('tap-x', NULL, 'issuance'), pg_temp.acct('bob'), '30 PTS',
	'x-incoming', true) AS incoming \gset
SELECT is(pg_temp.lots('bob'), '0/50@11 40/50@31', 'hold: points held toward a member make no lot yet');
SELECT gifq_post(:incoming);
SELECT is(pg_temp.lots('bob'), '0/50@11 40/50@31 30/30@91', 'hold: posted, they do');
-- a hold bigger than the lots: the part that never expires comes back first
UPDATE gifq.points_expiry SET expire_after = NULL;
SELECT gifq_transfer(gifq_account('tap-x', NULL, 'issuance'), pg_temp.acct('cy'), '100 PTS', 'x-cy-old');
UPDATE gifq.points_expiry SET expire_after = '90 days';
SELECT gifq_record_event('tap-x', 'cy', 'done', 'c-1');
SELECT gifq_transfer(pg_temp.acct('cy'), gifq_account('tap-x', NULL, 'issuance'), '120 PTS',
	'x-hold-3', true) AS hold3 \gset
SELECT is(pg_temp.lots('cy'), '0/50@91', 'hold: cy''s hold of 120 took the 50 of the lot and 70 that never expire');
SELECT gifq_post(:hold3, '60 PTS');
SELECT is(pg_temp.lots('cy'), '0/50@91', 'hold: posting 60 of it gives back the 60 that never expire');
SELECT is(pg_temp.available('cy'), '90 PTS', 'hold: cy has 90');
SELECT is(pg_temp.verify(), 'consistent', 'hold: consistent');

------------------------------------------------------------------------
-- peer gifts and thresholds
------------------------------------------------------------------------

SELECT gifq_define_threshold('tap-x', 150, 'unlock');
SELECT gifq_give_points('tap-x', 'bob', 'cy', '45 PTS', 'gift-1');
SELECT is(pg_temp.lots('bob'), '0/50@11 0/50@31 25/30@91', 'gift: the giver''s soonest lots go');
SELECT is(pg_temp.lots('cy'), '45/95@91', 'gift: the receiver''s points expire from the gift''s day (in the lot of that day)');
SELECT gifq_record_event('tap-x', 'cy', 'done', 'c-2');
SELECT is((SELECT count(*) FROM gifq.threshold_hits h JOIN gifq.members m ON m.id = h.member_id
		WHERE m.external_id = 'cy'), 1::bigint, 'gift: thresholds still fire on a rise (90 + 45 + 50 >= 150)');
SELECT is(pg_temp.verify(), 'consistent', 'gift: consistent');

------------------------------------------------------------------------
-- gifq_expiring_points
------------------------------------------------------------------------

SELECT is((SELECT string_agg(format('%s@%s', points,
		(expires_at AT TIME ZONE 'Europe/Paris')::date - (now() AT TIME ZONE 'Europe/Paris')::date),
		' ' ORDER BY expires_at) FROM gifq_expiring_points('tap-x', 'cy', '100 days')),
	'95 PTS@91', 'expiring: cy''s 95 points expire in 91 days');
SELECT is((SELECT count(*) FROM gifq_expiring_points('tap-x', 'cy', '30 days')), 0::bigint,
	'expiring: none within 30 days');
SELECT is((SELECT count(*) FROM gifq_expiring_points('tap-x', 'cy')), 0::bigint,
	'expiring: within defaults to 30 days');
SELECT is((SELECT count(*) FROM gifq_expiring_points('tap-x', 'ana', '1000 days')), 0::bigint,
	'expiring: spent lots are not listed');
SELECT is(pg_temp.code($$SELECT * FROM gifq_expiring_points('nope', 'cy')$$), 'QG101',
	'expiring: unknown program is QG101');
SELECT is(pg_temp.err($$SELECT * FROM gifq_expiring_points('tap-x', 'zed')$$),
	'QG102: unknown member "zed" in program "tap-x" / ', 'expiring: unknown member is QG102');
SELECT is(pg_temp.err($$SELECT * FROM gifq_expiring_points('tap-x', 'cy', '-1 day')$$),
	'QG115: invalid within -1 days / ', 'expiring: a negative interval is QG115');
SELECT is(pg_temp.code($$SELECT * FROM gifq_expiring_points('tap-x', 'cy', NULL)$$), 'QG115',
	'expiring: NULL is QG115');

------------------------------------------------------------------------
-- gifq_expire_points
------------------------------------------------------------------------

SELECT is(gifq_expire_points(), 0, 'expire: nothing is due yet');
-- time passes: bob's and cy's lots of the 91st day are due
UPDATE gifq.point_lots SET expires_at = expires_at - interval '92 days'
WHERE expires_at > now() + interval '60 days' AND remaining > 0;
SELECT pg_temp.available('bob') AS bob_before \gset
SELECT is(gifq_expire_points(), 2, 'expire: two accounts lose points');
SELECT is(pg_temp.available('bob'), '0 PTS', 'expire: bob''s 25 due points are gone (he had no others)');
SELECT is(pg_temp.available('cy'), '90 PTS', 'expire: cy keeps the 90 that never expire');
SELECT is((SELECT (gifq_balance(gifq_account('tap-x', NULL, 'breakage', 'PTS'))).posted::text),
	'120 PTS', 'expire: 25 + 95 points moved to breakage in the points code');
SELECT is((SELECT count(*) FROM gifq.transfers WHERE metadata @> '{"points_expired": true}'),
	2::bigint, 'expire: one transfer per account, marked points_expired');
SELECT is((SELECT count(*) FROM gifq.point_lots WHERE remaining > 0 AND expires_at <= now()),
	0::bigint, 'expire: no due lot keeps points');
SELECT is(gifq_expire_points(), 0, 'expire: a second run finds nothing');
SELECT is(pg_temp.verify(), 'consistent', 'expire: consistent');

------------------------------------------------------------------------
-- turning expiry off, and the verification of lots
------------------------------------------------------------------------

SELECT gifq_set_points_expiry('tap-x', NULL);
SELECT gifq_record_event('tap-x', 'ana', 'done', 'off-1');
SELECT is(pg_temp.lots('ana'), '0/70@31 0/100@91', 'off: points earned without expiry make no lot');
SELECT gifq_set_points_expiry('tap-x', '90 days');
SELECT gifq_record_event('tap-x', 'ana', 'done', 'on-1');
SELECT gifq_set_points_expiry('tap-x', NULL);
SELECT gifq_transfer(pg_temp.acct('ana'), gifq_account('tap-x', NULL, 'issuance'), '10 PTS', 'x-spend-off');
SELECT is(pg_temp.lots('ana'), '0/70@31 40/150@91',
	'off: earlier lots are still spent first and still expire');
UPDATE gifq.point_lots SET remaining = remaining + 1000, earned = earned + 1000 WHERE earned = 150
	AND account_id = pg_temp.acct('ana');
SELECT matches(pg_temp.verify(), 'expiring points \(1040\) exceed the available points \(\d+\)',
	'verify: lots holding more than the account has are reported');
UPDATE gifq.point_lots SET remaining = 40 WHERE remaining = 1040;
SELECT matches(pg_temp.verify(), 'points lot \d+: earned 1150, remaining 40, but its uses took 110',
	'verify: a lot whose uses do not add up is reported');
UPDATE gifq.point_lots SET earned = 150 WHERE earned = 1150;
SELECT is(pg_temp.verify(), 'consistent', 'verify: consistent again');

SELECT * FROM finish();
ROLLBACK;
