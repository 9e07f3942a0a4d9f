-- orders.sql: pgTAP suite for redemption orders (0.3.0): rates, limits and
-- blocked members; gifq_redeem (its holds, balances, order row, audit row
-- and event, idempotent replays, every refusal and the order of the
-- checks); points and cost conversions; a program serving two currencies;
-- the order state machine (claim, fail, cancel, retry), its audit trail
-- and its immutable columns; the daily limits and the yearly recipient
-- flag.  Every error path is checked by its SQLSTATE and, where useful,
-- its message and detail:
--   QG002 points out of range  QG201 unknown brand           QG209 funding short
--   QG004 bad currency         QG202 brand discontinued      QG210 member blocked
--   QG101 unknown program      QG203 brand out of stock      QG211 max_single_value
--   QG102 unknown member       QG204 not the brand currency  QG212 verification_above
--   QG104 amount not positive  QG205 not a face value sold   QG213 max_redemptions_per_day
--   QG109 idempotency conflict QG206 country not served      QG214 max_value_per_day
--   QG115 invalid parameter    QG207 no points rate          QG215 unknown order
--   QG120 immutable row        QG208 points short            QG216 transition refused
-- Everything runs in one transaction, rolled back at the end.  now() is
-- fixed in a transaction, so every order of the suite is created "now":
-- the rolling 24-hour window and the calendar year are tested by what
-- falls inside them (and by canceled and failed orders, which must not
-- count), not by time travel.  The 24-hour and New Year boundaries
-- themselves are not exercised: created_at cannot be backdated (the
-- order trigger refuses the change, QG120, as tested below), and orders
-- are not inserted behind gifq_redeem's back.  Order ids come from a
-- sequence that a rollback does not rewind, so ids are never hard-coded.
BEGIN;
SELECT plan(381);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';

------------------------------------------------------------------------
-- Helpers (pg_temp: gone with the session, and rolled back anyway)
------------------------------------------------------------------------

-- ids of what the suite creates, by name
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint NOT NULL);
CREATE TEMP TABLE snaps (name text PRIMARY KEY, state text NOT NULL);
-- the provider catalog the suite loads, one brand object a row
CREATE TEMP TABLE cat (id text PRIMARY KEY, j jsonb NOT NULL);

CREATE FUNCTION pg_temp.keep(n text, v bigint) RETURNS bigint
LANGUAGE sql AS $$
	INSERT INTO ids VALUES (n, v)
	ON CONFLICT (name) DO UPDATE SET id = EXCLUDED.id RETURNING id
$$;

-- the id kept under n; an unknown name is an error, never a NULL that
-- could make a test pass by accident
CREATE FUNCTION pg_temp.id(n text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE r bigint;
BEGIN
	SELECT id INTO STRICT r FROM ids WHERE name = n;
	RETURN r;
END $$;

-- load cat as the provider's catalog
CREATE FUNCTION pg_temp.load() RETURNS integer
LANGUAGE sql AS $$
	SELECT gifq_catalog_load(jsonb_build_object('brands',
		(SELECT jsonb_agg(j ORDER BY id) FROM cat)))
$$;

-- an account's four balances as one text, "posted|pending debits|pending
-- credits|available"
CREATE FUNCTION pg_temp.bal(account bigint) RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s|%s|%s|%s', posted, pending_debits, pending_credits, available)
	FROM gifq_balance(account)
$$;
CREATE FUNCTION pg_temp.mbal(program text, member text) RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s|%s|%s|%s', posted, pending_debits, pending_credits, available)
	FROM gifq_member_balance(program, member)
$$;
CREATE FUNCTION pg_temp.pbal(program text, currency text) RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s|%s|%s|%s', posted, pending_debits, pending_credits, available)
	FROM gifq_program_balance(program, currency)
$$;

-- redeem, keep the order id under n, return "status|points|created"
CREATE FUNCTION pg_temp.redeem(n text, p_program text, p_member text, p_brand text,
	p_amount gifq_money, p_key text, p_recipient text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
	SELECT * INTO STRICT r FROM gifq_redeem(p_program, p_member, p_brand, p_amount,
		p_key, p_recipient);
	PERFORM pg_temp.keep(n, r.order_id);
	RETURN format('%s|%s|%s', r.status, r.points_debited, r.created);
END $$;

-- what a redemption would cost, "points / cost", undone afterwards; or
-- the error it raises, "SQLSTATE: message"
CREATE FUNCTION pg_temp.quote(p_program text, p_member text, p_brand text,
	p_amount gifq_money) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	id bigint;
	res text;
	st text;
	msg text;
BEGIN
	BEGIN
		-- two statements: gifq_order, being STABLE, would not see an
		-- order inserted by the same statement
		SELECT order_id INTO STRICT id
		FROM gifq_redeem(p_program, p_member, p_brand, p_amount, 'tap-quote');
		SELECT format('%s / %s', o.points, o.cost) INTO STRICT res FROM gifq_order(id) o;
		RAISE EXCEPTION USING ERRCODE = 'ZZ998', MESSAGE = 'undo';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
		IF st = 'ZZ998' THEN
			RETURN res;
		END IF;
		RETURN st || ': ' || msg;
	END;
END $$;

\ir lib/errors.sql

-- everything a redemption can change, as one text: row counts of orders,
-- audit rows, transfers, pending holds, events, flags and accounts, the
-- members that have redeemed, and every account's balances
CREATE FUNCTION pg_temp.state() RETURNS text
LANGUAGE sql AS $$
	SELECT format('orders %s, transitions %s, transfers %s, pending holds %s, '
		'outbox %s, flags %s, accounts %s, redeemers %s, balances %s',
		(SELECT count(*) FROM gifq.orders),
		(SELECT count(*) FROM gifq.order_transitions),
		(SELECT count(*) FROM gifq.transfers),
		(SELECT count(*) FROM gifq.holds WHERE status = 'pending'),
		(SELECT count(*) FROM gifq.outbox),
		(SELECT count(*) FROM gifq.member_flags),
		(SELECT count(*) FROM gifq.accounts),
		(SELECT count(*) FROM gifq.orders WHERE created_by IS NOT NULL),
		(SELECT md5(string_agg(format('%s:%s:%s:%s:%s', account_id, dp, cp, dpend, cpend),
			',' ORDER BY account_id))
		FROM (SELECT account_id, sum(debits_posted) dp, sum(credits_posted) cp,
			sum(debits_pending) dpend, sum(credits_pending) cpend
			FROM gifq.account_slots GROUP BY account_id) s))
$$;
CREATE FUNCTION pg_temp.snap(n text) RETURNS text
LANGUAGE sql AS $$
	INSERT INTO snaps VALUES (n, pg_temp.state())
	ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state RETURNING state
$$;
CREATE FUNCTION pg_temp.snapped(n text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE r text;
BEGIN
	SELECT state INTO STRICT r FROM snaps WHERE name = n;
	RETURN r;
END $$;

-- an order's current two holds, as "status/status" (points/funding)
CREATE FUNCTION pg_temp.holds(o bigint) RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s/%s',
		(SELECT h.status FROM gifq.holds h WHERE h.transfer_id = x.points_hold),
		coalesce((SELECT h.status FROM gifq.holds h WHERE h.transfer_id = x.funding_hold), 'none'))
	FROM gifq.orders x WHERE x.id = o
$$;

-- the calling role as text (current_user is a name, collation "C")
CREATE FUNCTION pg_temp.me() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT current_user::text $$;

-- an order's reference, spelled independently of gifq.order_reference
-- (zero-padded to nine digits, never cut)
CREATE FUNCTION pg_temp.ref(o bigint) RETURNS text
LANGUAGE sql AS $$ SELECT 'gifq-ord-' || repeat('0', greatest(0, 9 - length(o::text))) || o::text $$;

-- an order's audit trail, "from>to:reason" in order (its creation first,
-- from the order row, then every status change)
CREATE FUNCTION pg_temp.trail(o bigint) RETURNS text
LANGUAGE sql AS $$
	SELECT string_agg(format('%s>%s:%s', coalesce(from_status, '-'), to_status, reason), ' ')
	FROM gifq_order_history(o)
$$;

------------------------------------------------------------------------
-- Catalog and the main program
------------------------------------------------------------------------

INSERT INTO cat VALUES
	('amazon-us', '{"id": "amazon-us", "name": "Amazon", "country": "US", "currency": "USD",
		"categories": ["retail"], "denominations": [10, 25, 50, 100], "discount_pct": 3.0, "in_stock": true}'),
	('visa-us', '{"id": "visa-us", "name": "Visa Prepaid", "country": "US", "currency": "USD",
		"categories": ["prepaid"], "min_value": 1, "max_value": 500, "discount_pct": 2.5, "in_stock": true}'),
	('tesco-gb', '{"id": "tesco-gb", "name": "Tesco", "country": "GB", "currency": "GBP",
		"categories": ["grocery"], "min_value": 5, "max_value": 200, "discount_pct": 4.25, "in_stock": true}'),
	('nostock-us', '{"id": "nostock-us", "name": "Nostock", "country": "US", "currency": "USD",
		"categories": ["retail"], "denominations": [10, 20], "discount_pct": 0, "in_stock": false}'),
	('old-us', '{"id": "old-us", "name": "Old Brand", "country": "US", "currency": "USD",
		"categories": ["retail"], "denominations": [15], "discount_pct": 10, "in_stock": true}'),
	('fnac-fr', '{"id": "fnac-fr", "name": "Fnac", "country": "FR", "currency": "EUR",
		"categories": ["retail"], "denominations": [20], "discount_pct": 0, "in_stock": true}'),
	('tims-ca', '{"id": "tims-ca", "name": "Tims", "country": "CA", "currency": "CAD",
		"categories": ["food"], "denominations": [10, 25], "discount_pct": 0, "in_stock": true}'),
	('sony-jp', '{"id": "sony-jp", "name": "Sony", "country": "JP", "currency": "JPY",
		"categories": ["games"], "denominations": [1000, 5000], "discount_pct": 5, "in_stock": true}'),
	('tiny-us', '{"id": "tiny-us", "name": "Tiny", "country": "US", "currency": "USD",
		"categories": ["test"], "min_value": 0.01, "max_value": 1, "discount_pct": 99.9, "in_stock": true}');
-- (the suite expects a database without brands or orders of its own:
-- gifq.claim_orders below claims every pending order there is)
SELECT is(pg_temp.load(), 9, 'setup: the catalog of nine brands is loaded');

SELECT pg_temp.keep('o', gifq_create_program('tap-o', 'USD'));
SELECT pg_temp.keep('m_ana', gifq_upsert_member('tap-o', 'ana', 'ana@example.com', 'US'));
SELECT pg_temp.keep('m_gus', gifq_upsert_member('tap-o', 'gus', 'gus@example.co.uk', 'GB'));
SELECT pg_temp.keep('m_bob', gifq_upsert_member('tap-o', 'bob'));
SELECT pg_temp.keep('m_eve', gifq_upsert_member('tap-o', 'eve', 'eve@example.com', 'US'));
SELECT pg_temp.keep('m_cal', gifq_upsert_member('tap-o', 'cal'));
SELECT pg_temp.keep('ana', gifq_account('tap-o', 'ana'));
SELECT pg_temp.keep('gus', gifq_account('tap-o', 'gus'));
SELECT pg_temp.keep('bob', gifq_account('tap-o', 'bob'));
SELECT pg_temp.keep('eve', gifq_account('tap-o', 'eve'));
SELECT pg_temp.keep('cal', gifq_account('tap-o', 'cal'));
SELECT pg_temp.keep('iss', gifq_account('tap-o', NULL, 'issuance'));
SELECT pg_temp.keep('pay_usd', gifq_account('tap-o', NULL, 'payable'));
-- points for the members: 20000 + 30000 + 3000 + 5000 + 100 = 58100
SELECT gifq_transfer(pg_temp.id('iss'), pg_temp.id('ana'), '20000 PTS');
SELECT gifq_transfer(pg_temp.id('iss'), pg_temp.id('gus'), '30000 PTS');
SELECT gifq_transfer(pg_temp.id('iss'), pg_temp.id('bob'), '3000 PTS');
SELECT gifq_transfer(pg_temp.id('iss'), pg_temp.id('eve'), '5000 PTS');
SELECT gifq_transfer(pg_temp.id('iss'), pg_temp.id('cal'), '100 PTS');
-- funded in USD and (after the members exist) in GBP; never in CAD or EUR
SELECT gifq_fund('tap-o', '1000.00 USD', 'tap-o-usd');
SELECT gifq_fund('tap-o', '150.00 GBP', 'tap-o-gbp');
SELECT pg_temp.keep('fund_usd', gifq_account('tap-o', NULL, 'funding'));
SELECT pg_temp.keep('fund_gbp', gifq_account('tap-o', NULL, 'funding', 'GBP'));

SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|0.00 USD|0.00 USD|1000.00 USD',
	'setup: 1000.00 USD of funding');
SELECT is(pg_temp.pbal('tap-o', 'GBP'), '150.00 GBP|0.00 GBP|0.00 GBP|150.00 GBP',
	'setup: 150.00 GBP of funding');
SELECT is(pg_temp.pbal('tap-o', 'CAD'), '0.00 CAD|0.00 CAD|0.00 CAD|0.00 CAD',
	'setup: no CAD funding');

------------------------------------------------------------------------
-- gifq_set_rate
------------------------------------------------------------------------

SELECT lives_ok($$SELECT gifq_set_rate('tap-o', 'GBP', 120)$$, 'set_rate: a rate for GBP');
SELECT lives_ok($$SELECT gifq_set_rate('tap-o', 'GBP', 125)$$, 'set_rate: a new rate for GBP replaces it');
SELECT lives_ok($$SELECT gifq_set_rate('tap-o', 'CAD', 75)$$, 'set_rate: a rate for CAD');
SELECT results_eq(
	$$SELECT currency, points_per_unit FROM gifq.rates WHERE program_id = pg_temp.id('o') ORDER BY currency$$,
	$$VALUES ('CAD', 75::numeric), ('GBP', 125::numeric)$$,
	'set_rate: one row per currency, the last rate kept');
SELECT lives_ok($$SELECT gifq_set_rate('tap-o', 'USD', 150)$$,
	'set_rate: the program''s own currency');
SELECT is((SELECT points_per_unit FROM gifq.programs WHERE id = pg_temp.id('o')), 150::numeric,
	'set_rate: the own currency''s rate is the program''s points_per_unit');
SELECT is((SELECT count(*) FROM gifq.rates WHERE program_id = pg_temp.id('o') AND currency = 'USD'),
	0::bigint, 'set_rate: the own currency gets no row in gifq.rates');
SELECT gifq_set_rate('tap-o', 'USD', 100);
SELECT is((SELECT points_per_unit FROM gifq.programs WHERE id = pg_temp.id('o')), 100::numeric,
	'set_rate: points_per_unit back to 100');

SELECT throws_ok($$SELECT gifq_set_rate('tap-o', 'PTS', 2)$$, 'QG115',
	'currency "PTS" is the points code of program "tap-o"',
	'set_rate: the points code is QG115');
SELECT throws_ok($$SELECT gifq_set_rate('tap-o', 'GBP', 0)$$, 'QG115',
	'invalid points_per_unit 0', 'set_rate: a zero rate is QG115');
SELECT throws_ok($$SELECT gifq_set_rate('tap-o', 'GBP', -1)$$, 'QG115',
	'invalid points_per_unit -1', 'set_rate: a negative rate is QG115');
SELECT throws_ok($$SELECT gifq_set_rate('tap-o', 'GBP', NULL)$$, 'QG115',
	'invalid points_per_unit NULL', 'set_rate: a NULL rate is QG115');
SELECT throws_ok($$SELECT gifq_set_rate('tap-o', 'GBP', 'NaN')$$, 'QG115', NULL,
	'set_rate: a NaN rate is QG115');
SELECT throws_ok($$SELECT gifq_set_rate('tap-o', 'GBP', 'Infinity')$$, 'QG115', NULL,
	'set_rate: an infinite rate is QG115');
SELECT throws_ok($$SELECT gifq_set_rate('tap-o', 'gbp', 125)$$, 'QG004', NULL,
	'set_rate: a lower-case currency is QG004');
SELECT throws_ok($$SELECT gifq_set_rate('tap-o', NULL, 125)$$, 'QG004', NULL,
	'set_rate: a NULL currency is QG004');
SELECT throws_ok($$SELECT gifq_set_rate('tap-none', 'GBP', 125)$$, 'QG101', NULL,
	'set_rate: an unknown program is QG101');
SELECT results_eq(
	$$SELECT currency, points_per_unit FROM gifq.rates WHERE program_id = pg_temp.id('o') ORDER BY currency$$,
	$$VALUES ('CAD', 75::numeric), ('GBP', 125::numeric)$$,
	'set_rate: refused calls changed no rate');

------------------------------------------------------------------------
-- gifq_block_member
------------------------------------------------------------------------

SELECT throws_ok($$SELECT gifq_block_member('tap-o', 'zed')$$, 'QG102',
	'unknown member "zed" in program "tap-o"', 'block_member: an unknown member is QG102');
SELECT throws_ok($$SELECT gifq_block_member('tap-none', 'ana')$$, 'QG101', NULL,
	'block_member: an unknown program is QG101');
SELECT lives_ok($$SELECT gifq_block_member('tap-o', 'cal')$$, 'block_member: block');
SELECT is((SELECT blocked FROM gifq.members WHERE id = pg_temp.id('m_cal')), true,
	'block_member: blocked is set');
SELECT lives_ok($$SELECT gifq_block_member('tap-o', 'cal', false)$$, 'block_member: unblock');
SELECT is((SELECT blocked FROM gifq.members WHERE id = pg_temp.id('m_cal')), false,
	'block_member: blocked is cleared');

------------------------------------------------------------------------
-- gifq_redeem: malformed arguments
------------------------------------------------------------------------

SELECT pg_temp.snap('args');
SELECT throws_ok($$SELECT gifq_redeem(NULL, 'ana', 'amazon-us', '25.00 USD', 'x1')$$, 'QG115',
	'program must not be NULL', 'redeem: a NULL program is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', NULL, 'amazon-us', '25.00 USD', 'x1')$$, 'QG115',
	'member must not be NULL', 'redeem: a NULL member is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', NULL, '25.00 USD', 'x1')$$, 'QG115',
	'brand_id must not be NULL', 'redeem: a NULL brand is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', NULL, 'x1')$$, 'QG115',
	'amount must not be NULL', 'redeem: a NULL amount is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', NULL)$$, 'QG115',
	'idempotency_key must not be NULL', 'redeem: a NULL key is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '0.00 USD', 'x1')$$, 'QG104',
	'card amount 0.00 USD is not positive', 'redeem: a zero amount is QG104');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '-25.00 USD', 'x1')$$, 'QG104',
	'card amount -25.00 USD is not positive', 'redeem: a negative amount is QG104');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', '')$$, 'QG115',
	'invalid idempotency key ""', 'redeem: an empty key is QG115');
SELECT throws_ok(format('SELECT gifq_redeem(%L, %L, %L, %L, %L)', 'tap-o', 'ana', 'amazon-us',
	'25.00 USD', repeat('k', 201)), 'QG115', NULL, 'redeem: a 201-character key is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'x1', 'nobody')$$,
	'QG115', 'invalid recipient email "nobody"', 'redeem: a recipient without @ is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'x1', 'a b@example.com')$$,
	'QG115', NULL, 'redeem: a recipient with a space is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'x1', E'a@example.com\n')$$,
	'QG115', NULL, 'redeem: a recipient with a newline is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'x1', '')$$,
	'QG115', NULL, 'redeem: an empty recipient is QG115');
SELECT throws_ok(format('SELECT gifq_redeem(%L, %L, %L, %L, %L, %L)', 'tap-o', 'ana', 'amazon-us',
	'25.00 USD', 'x1', repeat('a', 309) || '@example.com'), 'QG115', NULL,
	'redeem: a 321-character recipient is QG115');
SELECT throws_ok($$SELECT gifq_redeem('tap-none', 'ana', 'amazon-us', '25.00 USD', 'x1')$$, 'QG101',
	'unknown program "tap-none"', 'redeem: an unknown program is QG101');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'zed', 'amazon-us', '25.00 USD', 'x1')$$, 'QG102',
	'unknown member "zed" in program "tap-o"', 'redeem: an unknown member is QG102');
SELECT throws_ok($$SELECT gifq_redeem('tap-none', 'zed', 'no-such', '0.00 USD', '')$$, 'QG104', NULL,
	'redeem: arguments are checked before program, member and brand');
SELECT is(pg_temp.state(), pg_temp.snapped('args'),
	'redeem: refused arguments changed nothing');
SELECT is(pg_temp.err(format('SELECT gifq_redeem(%L, %L, %L, %L, %L, %L)', 'tap-o', 'ana',
	'amazon-us', '10.00 USD', repeat('k', 200), repeat('a', 308) || '@example.com')), 'no error',
	'redeem: a 200-character key and a 320-character recipient are accepted');
-- the key's limit is in characters, as the hint says ("Use 1 to 200
-- characters"), not in bytes
SELECT is(pg_temp.err(format('SELECT gifq_redeem(%L, %L, %L, %L, %L)', 'tap-o', 'ana',
	'amazon-us', '10.00 USD', repeat(U&'\00e9', 200))), 'no error',
	'redeem: a key of 200 two-byte characters is accepted');
-- a recipient is an address as gifq_upsert_member accepts one: something,
-- one @, something
-- (checked with err, which undoes the order should the address be taken)
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'x1', 'ana@')$$),
	'QG115: invalid recipient email "ana@" / ', 'redeem: a recipient without a domain is QG115');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'x1', '@example.com')$$),
	'QG115: invalid recipient email "@example.com" / ', 'redeem: a recipient without a local part is QG115');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'x1', 'a@b@example.com')$$),
	'QG115: invalid recipient email "a@b@example.com" / ', 'redeem: a recipient with two @ is QG115');

------------------------------------------------------------------------
-- gifq_redeem: the first order, its holds, row, audit row and event
------------------------------------------------------------------------

SELECT is(pg_temp.redeem('A', 'tap-o', 'ana', 'amazon-us', '25.00 USD', 'a1'), 'pending|2500 PTS|t',
	'redeem: 25.00 USD at 100 PTS a dollar is 2500 PTS, pending, created');
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|2500 PTS|0 PTS|17500 PTS',
	'redeem: the member''s 2500 PTS are held');
SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|24.25 USD|0.00 USD|975.75 USD',
	'redeem: the funding is held at cost, 25.00 less 3%');
SELECT is(pg_temp.bal(pg_temp.id('pay_usd')), '0.00 USD|0.00 USD|24.25 USD|0.00 USD',
	'redeem: payable expects the cost');
SELECT is(pg_temp.bal(pg_temp.id('iss')), '-58100 PTS|0 PTS|2500 PTS|-58100 PTS',
	'redeem: issuance expects the points');
SELECT is(pg_temp.pbal('tap-o', 'GBP'), '150.00 GBP|0.00 GBP|0.00 GBP|150.00 GBP',
	'redeem: the GBP funding is untouched by a USD card');
SELECT results_eq(
	$$SELECT program_id, member_id, brand_id, amount, currency, cost, margin, points, points_code,
		recipient_email, recipient_given, idempotency_key, status, flags, attempts
	FROM gifq.orders WHERE id = pg_temp.id('A')$$,
	$$VALUES (pg_temp.id('o'), pg_temp.id('m_ana'), 'amazon-us', 2500::bigint, 'USD', 2425::bigint,
		75::bigint, 2500::bigint, 'PTS', 'ana@example.com', false, 'a1', 'pending', '{}'::text[], 0)$$,
	'redeem: the order row, in minor units, with the member''s email and margin = amount - cost');
SELECT results_eq(
	$$SELECT order_id, status, brand_id, amount::text, attempts, last_error, redemption_url,
		code_last4, delivered_at, program, member, points::text, cost::text, reference, flags
	FROM gifq_order(pg_temp.id('A'))$$,
	$$VALUES (pg_temp.id('A'), 'pending', 'amazon-us', '25.00 USD', 0, NULL::text, NULL::text,
		NULL::text, NULL::timestamptz, 'tap-o', 'ana', '2500 PTS', '24.25 USD',
		pg_temp.ref(pg_temp.id('A')), '{}'::text[])$$,
	'gifq_order: the order as the API shows it');
SELECT results_eq(
	$$SELECT t.kind, t.debit_account_id, t.credit_account_id, t.amount, t.currency, t.metadata, h.status
	FROM gifq.orders o JOIN gifq.transfers t ON t.id IN (o.points_hold, o.funding_hold)
		JOIN gifq.holds h ON h.transfer_id = t.id
	WHERE o.id = pg_temp.id('A') ORDER BY t.currency$$,
	$$VALUES ('pending', pg_temp.id('ana'), pg_temp.id('iss'), 2500::bigint, 'PTS',
			jsonb_build_object('order_id', pg_temp.id('A')), 'pending'),
		('pending', pg_temp.id('fund_usd'), pg_temp.id('pay_usd'), 2425::bigint, 'USD',
			jsonb_build_object('order_id', pg_temp.id('A')), 'pending')$$,
	'redeem: two pending holds, points -> issuance and funding -> payable, naming the order');
-- the reference is the provider's idempotency key: nine digits at least,
-- never cut, so two orders never share one
SELECT is(gifq.order_reference(42), 'gifq-ord-000000042', 'reference: zero-padded to nine digits');
SELECT is(gifq.order_reference(1234567890), 'gifq-ord-1234567890',
	'reference: an id of ten digits is not cut to nine');
SELECT isnt(gifq.order_reference(1234567890), gifq.order_reference(123456789),
	'reference: orders 1234567890 and 123456789 have different references');
SELECT results_eq(
	$$SELECT actor, from_status, to_status, reason FROM gifq_order_history(pg_temp.id('A'))$$,
	$$VALUES (pg_temp.me(), NULL::text, 'pending', 'redeemed')$$,
	'redeem: one audit row, from nothing to pending, by the caller');
SELECT results_eq(
	$$SELECT program_id, payload FROM gifq.outbox
	WHERE event_type = 'order.created' AND (payload->>'order_id')::bigint = pg_temp.id('A')$$,
	$$VALUES (pg_temp.id('o'), jsonb_build_object('order_id', pg_temp.id('A'),
		'reference', pg_temp.ref(pg_temp.id('A')), 'member', 'ana', 'brand_id', 'amazon-us',
		'amount', '25.00 USD', 'points', '2500 PTS'))$$,
	'redeem: one order.created event with the order''s reference, member, brand, amount and points');
SELECT is((SELECT created_by FROM gifq.orders WHERE id = pg_temp.id('A')), current_user::text,
	'redeem: the order records who created it');

------------------------------------------------------------------------
-- Idempotent replays and key conflicts
------------------------------------------------------------------------

SELECT pg_temp.snap('replay');
SELECT results_eq(
	$$SELECT order_id, status, points_debited::text, created
	FROM gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'a1')$$,
	$$VALUES (pg_temp.id('A'), 'pending', '2500 PTS', false)$$,
	'replay: the same key and arguments return the first order, created = false');
SELECT results_eq(
	$$SELECT order_id, created FROM gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'a1', NULL)$$,
	$$VALUES (pg_temp.id('A'), false)$$,
	'replay: an explicit NULL recipient is the same call');
SELECT results_eq(
	$$SELECT order_id, created FROM gifq_redeem('tap-o', 'ana', 'amazon-us', '25 USD', 'a1')$$,
	$$VALUES (pg_temp.id('A'), false)$$,
	'replay: the same amount written without decimals is the same call');
SELECT is(pg_temp.state(), pg_temp.snapped('replay'),
	'replay: nothing more held, no order, audit row or event');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'bob', 'amazon-us', '25.00 USD', 'a1')$$),
	'QG109: idempotency key "a1" was used for a different redemption / Field "member" differs: another member the first time, "bob" now.',
	'replay: another member with the key is QG109 naming member');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'ana', 'visa-us', '25.00 USD', 'a1')$$),
	'QG109: idempotency key "a1" was used for a different redemption / Field "brand_id" differs: "amazon-us" the first time, "visa-us" now.',
	'replay: another brand with the key is QG109 naming brand_id');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '50.00 USD', 'a1')$$),
	'QG109: idempotency key "a1" was used for a different redemption / Field "amount" differs: 25.00 USD the first time, 50.00 USD now.',
	'replay: another amount with the key is QG109 naming amount');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 GBP', 'a1')$$),
	'QG109: idempotency key "a1" was used for a different redemption / Field "amount" differs: 25.00 USD the first time, 25.00 GBP now.',
	'replay: the amount in another currency is QG109 naming amount');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'a1', 'ana@example.com')$$),
	'QG109: idempotency key "a1" was used for a different redemption / Field "recipient_email" differs: NULL the first time, "ana@example.com" now.',
	'replay: a recipient given now but not the first time is QG109 naming recipient_email');
SELECT matches(pg_temp.err($$SELECT gifq_redeem('tap-o', 'bob', 'visa-us', '99.00 USD', 'a1')$$),
	'^QG109: .* / Field "member" differs',
	'replay: with several fields different, the member is named first');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-o', 'ana', 'no-such', '25.00 USD', 'a1')$$), 'QG109',
	'replay: the key is checked before the brand');
SELECT is(pg_temp.state(), pg_temp.snapped('replay'), 'replay: conflicts changed nothing');

-- a replay is answered even when the member has since been blocked, and
-- even when the brand has since been discontinued
SELECT is(pg_temp.redeem('E', 'tap-o', 'eve', 'amazon-us', '10.00 USD', 'e1'), 'pending|1000 PTS|t',
	'redeem: eve redeems 10.00 USD');
SELECT is(pg_temp.redeem('O', 'tap-o', 'ana', 'old-us', '15.00 USD', 'o1'), 'pending|1500 PTS|t',
	'redeem: ana redeems old-us 15.00 USD');
SELECT gifq_block_member('tap-o', 'eve');
DELETE FROM cat WHERE id = 'old-us';
SELECT is(pg_temp.load(), 1, 'setup: a catalog without old-us discontinues it');
SELECT pg_temp.snap('replay2');
SELECT results_eq(
	$$SELECT order_id, status, points_debited::text, created
	FROM gifq_redeem('tap-o', 'eve', 'amazon-us', '10.00 USD', 'e1')$$,
	$$VALUES (pg_temp.id('E'), 'pending', '1000 PTS', false)$$,
	'replay: a blocked member''s earlier order is returned');
SELECT results_eq(
	$$SELECT order_id, status, points_debited::text, created
	FROM gifq_redeem('tap-o', 'ana', 'old-us', '15.00 USD', 'o1')$$,
	$$VALUES (pg_temp.id('O'), 'pending', '1500 PTS', false)$$,
	'replay: an order of a since discontinued brand is returned');
SELECT is(pg_temp.state(), pg_temp.snapped('replay2'), 'replay: these replays changed nothing either');
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|4000 PTS|0 PTS|16000 PTS',
	'balances: ana holds 2500 + 1500 PTS');
SELECT is(pg_temp.mbal('tap-o', 'eve'), '5000 PTS|1000 PTS|0 PTS|4000 PTS',
	'balances: eve holds 1000 PTS');
SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|47.45 USD|0.00 USD|952.55 USD',
	'balances: USD funding holds 24.25 + 9.70 + 13.50');

------------------------------------------------------------------------
-- Refusals, one check at a time: SQLSTATE, message, nothing changed
------------------------------------------------------------------------

SELECT pg_temp.snap('refusals');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'eve', 'amazon-us', '10.00 USD', 'r1')$$, 'QG210',
	'member "eve" is blocked', 'refuse: a blocked member is QG210');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'no-such', '10.00 USD', 'r1')$$, 'QG201',
	'unknown brand "no-such"', 'refuse: an unknown brand is QG201');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'old-us', '15.00 USD', 'r1')$$, 'QG202',
	'brand "old-us" is discontinued', 'refuse: a discontinued brand is QG202');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 EUR', 'r1')$$, 'QG204',
	'brand "amazon-us" sells cards in USD, not EUR', 'refuse: an amount in another currency is QG204');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '30.00 USD', 'r1')$$, 'QG205',
	'brand "amazon-us" does not sell a 30.00 USD card', 'refuse: not one of the denominations is QG205');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '25.01 USD', 'r1')$$, 'QG205',
	NULL, 'refuse: a cent off a denomination is QG205');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'visa-us', '0.99 USD', 'r1')$$, 'QG205',
	'brand "visa-us" does not sell a 0.99 USD card', 'refuse: below the range is QG205');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'visa-us', '500.01 USD', 'r1')$$, 'QG205',
	'brand "visa-us" does not sell a 500.01 USD card', 'refuse: above the range is QG205');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'nostock-us', '10.00 USD', 'r1')$$, 'QG203',
	'brand "nostock-us" is out of stock', 'refuse: an out-of-stock brand is QG203');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'ana', 'tesco-gb', '10.00 GBP', 'r1')$$, 'QG206',
	'brand "tesco-gb" is sold in GB, member "ana" is in US', 'refuse: a US member and a GB brand is QG206');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'gus', 'amazon-us', '10.00 USD', 'r1')$$, 'QG206',
	'brand "amazon-us" is sold in US, member "gus" is in GB', 'refuse: a GB member and a US brand is QG206');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'bob', 'fnac-fr', '20.00 EUR', 'r1')$$, 'QG207',
	'program "tap-o" has no points rate for EUR', 'refuse: a currency without a rate is QG207');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'bob', 'amazon-us', '50.00 USD', 'r1')$$, 'QG208',
	'member "bob" has 3000 PTS available, the card needs 5000 PTS', 'refuse: too few points is QG208');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'bob', 'tims-ca', '10.00 CAD', 'r1')$$, 'QG209',
	'program "tap-o" has 0.00 CAD of funding available, the card costs 10.00 CAD',
	'refuse: a currency the program was never funded in is QG209');
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'gus', 'tesco-gb', '200.00 GBP', 'r1')$$, 'QG209',
	'program "tap-o" has 150.00 GBP of funding available, the card costs 191.50 GBP',
	'refuse: too little funding in the card''s currency is QG209');
SELECT is(pg_temp.state(), pg_temp.snapped('refusals'),
	'refuse: no order, transfer, hold, audit row, event or account, balances unchanged');
SELECT is((SELECT count(*) FROM gifq.orders WHERE program_id = pg_temp.id('o') AND idempotency_key = 'r1'),
	0::bigint, 'refuse: no order holds the refused key');
SELECT is((SELECT count(*) FROM gifq.accounts WHERE program_id = pg_temp.id('o') AND currency = 'CAD'),
	0::bigint, 'refuse: the CAD refusal left no CAD account behind');
SELECT is(pg_temp.redeem('V1', 'tap-o', 'ana', 'visa-us', '10.20 USD', 'r1'), 'pending|1020 PTS|t',
	'refuse: a refused key is still free for the next redemption');

-- held points are not available
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'eve', 'amazon-us', '10.00 USD', 'r2')$$, 'QG210', NULL,
	'refuse: eve is still blocked');
SELECT gifq_block_member('tap-o', 'eve', false);
SELECT throws_ok($$SELECT gifq_redeem('tap-o', 'eve', 'amazon-us', '50.00 USD', 'r2')$$, 'QG208',
	'member "eve" has 4000 PTS available, the card needs 5000 PTS',
	'refuse: points held by an earlier order are not available');
SELECT gifq_block_member('tap-o', 'eve');

------------------------------------------------------------------------
-- The order of the checks: with two reasons to refuse, the earlier wins
------------------------------------------------------------------------

SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-o', 'eve', 'no-such', '10.00 USD', 'p1')$$), 'QG210',
	'order: blocked before unknown brand');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-o', 'ana', 'old-us', '15.00 EUR', 'p1')$$), 'QG202',
	'order: discontinued before currency');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-o', 'ana', 'amazon-us', '30.00 EUR', 'p1')$$), 'QG204',
	'order: currency before denomination');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-o', 'ana', 'nostock-us', '15.00 USD', 'p1')$$), 'QG205',
	'order: denomination before stock');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-o', 'gus', 'nostock-us', '10.00 USD', 'p1')$$), 'QG203',
	'order: stock before country');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-o', 'ana', 'fnac-fr', '20.00 EUR', 'p1')$$), 'QG206',
	'order: country before rate');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-o', 'cal', 'fnac-fr', '20.00 EUR', 'p1')$$), 'QG207',
	'order: rate before points');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-o', 'bob', 'tesco-gb', '200.00 GBP', 'p1')$$), 'QG208',
	'order: points before funding (GBP: 25000 PTS needed, 3000 available; 191.50 GBP needed, 150.00 funded)');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'cal', 'tims-ca', '10.00 CAD', 'p1')$$),
	'QG208: member "cal" has 100 PTS available, the card needs 750 PTS / ',
	'order: points before funding, also in a currency never funded');

------------------------------------------------------------------------
-- Conversions: points rounded up, cost rounded half to even
------------------------------------------------------------------------

SELECT gifq_fund('tap-o', '100000 JPY', 'tap-o-jpy');
SELECT gifq_set_rate('tap-o', 'JPY', 0.87);
SELECT is(pg_temp.quote('tap-o', 'ana', 'visa-us', '13.37 USD'), '1337 PTS / 13.04 USD',
	'convert: 13.37 USD is 1337 PTS and costs 13.04 USD (13.03575 rounded)');
SELECT is(pg_temp.quote('tap-o', 'ana', 'visa-us', '10.20 USD'), '1020 PTS / 9.94 USD',
	'convert: a cost of 9.945 rounds half to even, down to 9.94');
SELECT is(pg_temp.quote('tap-o', 'ana', 'visa-us', '10.60 USD'), '1060 PTS / 10.34 USD',
	'convert: a cost of 10.335 rounds half to even, up to 10.34');
SELECT is(pg_temp.quote('tap-o', 'ana', 'visa-us', '500.00 USD'), 'QG208: member "ana" has 14980 PTS available, the card needs 50000 PTS',
	'convert: the top of the range is sold (refused only for points)');
SELECT is(pg_temp.quote('tap-o', 'ana', 'visa-us', '1.00 USD'), '100 PTS / 0.98 USD',
	'convert: the bottom of the range is sold; 0.975 rounds half to even to 0.98');
SELECT is(pg_temp.quote('tap-o', 'gus', 'tesco-gb', '13.37 GBP'), '1672 PTS / 12.80 GBP',
	'convert: 13.37 GBP at 125 is 1671.25, rounded up to 1672 PTS; cost 12.801775 -> 12.80 GBP');
SELECT is(pg_temp.quote('tap-o', 'gus', 'tesco-gb', '8.00 GBP'), '1000 PTS / 7.66 GBP',
	'convert: 8.00 GBP at 125 is exactly 1000 PTS, not rounded up');
SELECT is(pg_temp.quote('tap-o', 'gus', 'tesco-gb', '6.00 GBP'), '750 PTS / 5.74 GBP',
	'convert: a GBP cost of 5.745 rounds half to even to 5.74');
SELECT is(pg_temp.quote('tap-o', 'gus', 'tesco-gb', '10.00 GBP'), '1250 PTS / 9.58 GBP',
	'convert: a GBP cost of 9.575 rounds half to even to 9.58');
SELECT is(pg_temp.quote('tap-o', 'bob', 'sony-jp', '1000 JPY'), '870 PTS / 950 JPY',
	'convert: a currency without minor units, 1000 JPY at 0.87 is 870 PTS');
SELECT is(pg_temp.quote('tap-o', 'bob', 'tims-ca', '25.00 CAD'), 'QG209: program "tap-o" has 0.00 CAD of funding available, the card costs 25.00 CAD',
	'convert: 25.00 CAD at 75 would be 1875 PTS, refused for funding');
SELECT gifq_set_rate('tap-o', 'JPY', 0.8701);
SELECT is(pg_temp.quote('tap-o', 'bob', 'sony-jp', '1000 JPY'), '871 PTS / 950 JPY',
	'convert: 870.1 PTS is rounded up to 871');
SELECT is(pg_temp.quote('tap-o', 'bob', 'tiny-us', '0.01 USD'), '1 PTS / 0.00 USD',
	'convert: a 0.01 USD card at 99.9% off costs nothing');

------------------------------------------------------------------------
-- Two currencies, one points scale: a GB member, GBP funding
------------------------------------------------------------------------

SELECT is((SELECT count(*) FROM gifq.accounts WHERE program_id = pg_temp.id('o') AND code = 'payable'
	AND currency = 'GBP'), 0::bigint, 'gbp: no GBP payable account yet');
SELECT is(pg_temp.redeem('G', 'tap-o', 'gus', 'tesco-gb', '13.37 GBP', 'g1', 'gift@example.co.uk'),
	'pending|1672 PTS|t', 'gbp: gus redeems 13.37 GBP for 1672 PTS');
SELECT pg_temp.keep('pay_gbp', gifq_account('tap-o', NULL, 'payable', 'GBP'));
SELECT is((SELECT count(*) FROM gifq.accounts WHERE program_id = pg_temp.id('o') AND code = 'payable'
	AND currency = 'GBP'), 1::bigint, 'gbp: the GBP payable account was created on first use');
SELECT is(pg_temp.mbal('tap-o', 'gus'), '30000 PTS|1672 PTS|0 PTS|28328 PTS',
	'gbp: gus''s points are held');
SELECT is(pg_temp.pbal('tap-o', 'GBP'), '150.00 GBP|12.80 GBP|0.00 GBP|137.20 GBP',
	'gbp: the GBP funding is held at cost');
SELECT is(pg_temp.bal(pg_temp.id('pay_gbp')), '0.00 GBP|0.00 GBP|12.80 GBP|0.00 GBP',
	'gbp: GBP payable expects the cost');
SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|57.39 USD|0.00 USD|942.61 USD',
	'gbp: the USD funding holds only the USD cards (24.25 + 9.70 + 13.50 + 9.94)');
SELECT results_eq(
	$$SELECT currency, amount, cost, margin, points, recipient_email, recipient_given
	FROM gifq.orders WHERE id = pg_temp.id('G')$$,
	$$VALUES ('GBP', 1337::bigint, 1280::bigint, 57::bigint, 1672::bigint, 'gift@example.co.uk', true)$$,
	'gbp: the order row in GBP minor units, to the given recipient');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'gus', 'tesco-gb', '13.37 GBP', 'g1', 'other@example.com')$$),
	'QG109: idempotency key "g1" was used for a different redemption / Field "recipient_email" differs: "gift@example.co.uk" the first time, "other@example.com" now.',
	'gbp: another recipient with the key is QG109');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-o', 'gus', 'tesco-gb', '13.37 GBP', 'g1')$$),
	'QG109: idempotency key "g1" was used for a different redemption / Field "recipient_email" differs: "gift@example.co.uk" the first time, NULL now.',
	'gbp: no recipient where the first call gave one is QG109');
SELECT is(pg_temp.redeem('B', 'tap-o', 'bob', 'visa-us', '5.00 USD', 'b1'), 'pending|500 PTS|t',
	'gbp: bob, without a country, redeems a US card');
SELECT is(pg_temp.redeem('B2', 'tap-o', 'bob', 'tesco-gb', '5.00 GBP', 'b2'), 'pending|625 PTS|t',
	'gbp: and a GB card, from the same points');
SELECT is((SELECT recipient_email FROM gifq.orders WHERE id = pg_temp.id('B')), NULL::text,
	'gbp: bob has no email and gave no recipient: the order has none');
SELECT is(pg_temp.mbal('tap-o', 'bob'), '3000 PTS|1125 PTS|0 PTS|1875 PTS',
	'gbp: bob''s points held for both cards');
SELECT is(pg_temp.pbal('tap-o', 'GBP'), '150.00 GBP|17.59 GBP|0.00 GBP|132.41 GBP',
	'gbp: GBP funding holds 12.80 + 4.79');
SELECT gifq_cancel_order(pg_temp.id('B'));
SELECT gifq_cancel_order(pg_temp.id('B2'));
SELECT is(pg_temp.mbal('tap-o', 'bob'), '3000 PTS|0 PTS|0 PTS|3000 PTS',
	'gbp: canceling both gives bob his points back');

------------------------------------------------------------------------
-- Cancel
------------------------------------------------------------------------

SELECT is(pg_temp.redeem('V2', 'tap-o', 'ana', 'visa-us', '10.60 USD', 'v2'), 'pending|1060 PTS|t',
	'cancel: ana redeems 10.60 USD');
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|6080 PTS|0 PTS|13920 PTS',
	'cancel: ana holds 2500 + 1500 + 1020 + 1060 PTS');
SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|67.73 USD|0.00 USD|932.27 USD',
	'cancel: USD funding holds 24.25 + 9.70 + 13.50 + 9.94 + 10.34');
SELECT pg_temp.keep('V2_ph', (SELECT points_hold FROM gifq.orders WHERE id = pg_temp.id('V2')));
SELECT pg_temp.keep('V2_fh', (SELECT funding_hold FROM gifq.orders WHERE id = pg_temp.id('V2')));
SELECT lives_ok(format('SELECT gifq_cancel_order(%s)', pg_temp.id('V2')), 'cancel: a pending order');
SELECT is((SELECT status FROM gifq_order(pg_temp.id('V2'))), 'canceled', 'cancel: the order is canceled');
SELECT is(pg_temp.holds(pg_temp.id('V2')), 'voided/voided', 'cancel: both holds are voided');
SELECT is((SELECT count(*) FROM gifq.transfers WHERE kind = 'void'
	AND pending_id IN (pg_temp.id('V2_ph'), pg_temp.id('V2_fh'))), 2::bigint,
	'cancel: by one void transfer each');
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|5020 PTS|0 PTS|14980 PTS',
	'cancel: the points are available again');
SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|57.39 USD|0.00 USD|942.61 USD',
	'cancel: the funding is available again');
SELECT is(pg_temp.bal(pg_temp.id('pay_usd')), '0.00 USD|0.00 USD|57.39 USD|0.00 USD',
	'cancel: payable no longer expects the cost');
SELECT results_eq(
	$$SELECT actor, from_status, to_status, reason FROM gifq_order_history(pg_temp.id('V2'))$$,
	$$VALUES (pg_temp.me(), NULL::text, 'pending', 'redeemed'),
		(pg_temp.me(), 'pending', 'canceled', 'canceled by request')$$,
	'cancel: audited, by the caller');
SELECT pg_temp.snap('cancel');
SELECT lives_ok(format('SELECT gifq_cancel_order(%s)', pg_temp.id('V2')),
	'cancel: canceling a canceled order is accepted');
SELECT is(pg_temp.state(), pg_temp.snapped('cancel'),
	'cancel: and changes nothing (no audit row, no transfer)');
SELECT results_eq(
	$$SELECT order_id, status, points_debited::text, created
	FROM gifq_redeem('tap-o', 'ana', 'visa-us', '10.60 USD', 'v2')$$,
	$$VALUES (pg_temp.id('V2'), 'canceled', '1060 PTS', false)$$,
	'cancel: a replay of a canceled order returns it, canceled');
SELECT is(pg_temp.state(), pg_temp.snapped('cancel'), 'cancel: the replay holds nothing again');
SELECT throws_ok($$SELECT gifq_cancel_order(-1)$$, 'QG215', 'unknown order -1',
	'cancel: an unknown order is QG215');
SELECT throws_ok($$SELECT gifq_cancel_order(NULL)$$, 'QG215', 'unknown order NULL',
	'cancel: a NULL order is QG215');
SELECT throws_ok(format('SELECT gifq.fail_order(%s, %L)', pg_temp.id('V2'), 'late'), 'QG216',
	format('order %s cannot go from canceled to failed', pg_temp.id('V2')),
	'cancel: a canceled order cannot fail');
SELECT throws_ok($$SELECT * FROM gifq_order(-1)$$, 'QG215', 'unknown order -1',
	'gifq_order: an unknown order is QG215');
SELECT throws_ok($$SELECT * FROM gifq_order_history(-1)$$, 'QG215', 'unknown order -1',
	'gifq_order_history: an unknown order is QG215');

-- a card that costs nothing holds no funding, and cancels cleanly
SELECT is(pg_temp.redeem('T', 'tap-o', 'bob', 'tiny-us', '0.01 USD', 't1'), 'pending|1 PTS|t',
	'cancel: bob redeems a 0.01 USD card that costs nothing');
SELECT results_eq(
	$$SELECT cost, margin, funding_hold FROM gifq.orders WHERE id = pg_temp.id('T')$$,
	$$VALUES (0::bigint, 1::bigint, NULL::bigint)$$,
	'cancel: no funding hold for a zero cost');
SELECT lives_ok(format('SELECT gifq_cancel_order(%s)', pg_temp.id('T')),
	'cancel: an order without a funding hold');
SELECT is(pg_temp.holds(pg_temp.id('T')), 'voided/none', 'cancel: its points hold is voided');

------------------------------------------------------------------------
-- The state machine: claim, deliver, fail, retry
------------------------------------------------------------------------

SELECT is((SELECT array_agg(id ORDER BY id) FROM gifq.claim_orders(10, '5 minutes')),
	ARRAY[pg_temp.id('A'), pg_temp.id('E'), pg_temp.id('O'), pg_temp.id('V1'), pg_temp.id('G')],
	'claim: every pending order is claimed; canceled ones are not');
SELECT results_eq(
	$$SELECT status, attempts, lease_until, status_reason FROM gifq.orders
	WHERE id = pg_temp.id('A')$$,
	$$VALUES ('submitted', 1, now() + interval '5 minutes', 'claimed for sending')$$,
	'claim: submitted, one attempt, leased for 5 minutes');
SELECT is(pg_temp.trail(pg_temp.id('A')), '->pending:redeemed pending>submitted:claimed for sending',
	'claim: audited');
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|5020 PTS|0 PTS|14980 PTS',
	'claim: holds stay while the order is sent');

-- submitted: neither canceled nor retried, and not back to pending
SELECT throws_ok(format('SELECT gifq_cancel_order(%s)', pg_temp.id('A')), 'QG216',
	format('order %s is submitted and can no longer be canceled', pg_temp.id('A')),
	'transition: a submitted order cannot be canceled (QG216)');
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('A')), 'QG216',
	format('order %s is submitted, not failed', pg_temp.id('A')),
	'transition: a submitted order cannot be retried (QG216)');
SELECT throws_ok(format('UPDATE gifq.orders SET status = %L WHERE id = %s', 'canceled', pg_temp.id('A')),
	'QG216', format('order %s cannot go from submitted to canceled', pg_temp.id('A')),
	'transition: submitted -> canceled is QG216');

-- submitted -> processing -> delivered
SELECT lives_ok(format('UPDATE gifq.orders SET status = %L, status_reason = %L WHERE id = %s',
	'processing', 'accepted by provider', pg_temp.id('A')), 'transition: submitted -> processing');
SELECT lives_ok(format('UPDATE gifq.orders SET status = %L, status_reason = %L, delivered_at = now() WHERE id = %s',
	'delivered', 'delivered by provider', pg_temp.id('A')), 'transition: processing -> delivered');
SELECT results_eq(
	$$SELECT actor, from_status, to_status, reason FROM gifq_order_history(pg_temp.id('A'))$$,
	$$VALUES (pg_temp.me(), NULL::text, 'pending', 'redeemed'),
		(pg_temp.me(), 'pending', 'submitted', 'claimed for sending'),
		(pg_temp.me(), 'submitted', 'processing', 'accepted by provider'),
		(pg_temp.me(), 'processing', 'delivered', 'delivered by provider')$$,
	'transition: every status change audited with actor and reason');
SELECT throws_ok(format('SELECT gifq_cancel_order(%s)', pg_temp.id('A')), 'QG216',
	format('order %s is delivered and can no longer be canceled', pg_temp.id('A')),
	'transition: a delivered order cannot be canceled');
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('A')), 'QG216',
	format('order %s is delivered, not failed', pg_temp.id('A')),
	'transition: a delivered order cannot be retried');
SELECT throws_ok(format('SELECT gifq.fail_order(%s, %L)', pg_temp.id('A'), 'late'), 'QG216',
	format('order %s cannot go from delivered to failed', pg_temp.id('A')),
	'transition: a delivered order cannot fail');
SELECT is(pg_temp.holds(pg_temp.id('A')), 'pending/pending',
	'transition: the refused failure voided none of its holds');
SELECT throws_ok(format('UPDATE gifq.orders SET status = %L WHERE id = %s', 'processing', pg_temp.id('A')),
	'QG216', NULL, 'transition: delivered -> processing is QG216');
SELECT results_eq(
	$$SELECT order_id, status, created FROM gifq_redeem('tap-o', 'ana', 'amazon-us', '25.00 USD', 'a1')$$,
	$$VALUES (pg_temp.id('A'), 'delivered', false)$$,
	'replay: a replay reports the order''s current status');
SELECT pg_temp.snap('fulfilment');
SELECT lives_ok(format('UPDATE gifq.orders SET code_last4 = %L, redemption_url = %L WHERE id = %s',
	'1234', 'https://cards.example/x', pg_temp.id('A')), 'transition: fulfilment columns may change');
SELECT is(pg_temp.state(), pg_temp.snapped('fulfilment'),
	'transition: a change without a new status has no audit row');

-- submitted -> failed: holds voided, order.failed
SELECT pg_temp.keep('V1_ph', (SELECT points_hold FROM gifq.orders WHERE id = pg_temp.id('V1')));
SELECT pg_temp.keep('V1_fh', (SELECT funding_hold FROM gifq.orders WHERE id = pg_temp.id('V1')));
SELECT lives_ok(format('SELECT gifq.fail_order(%s, %L)', pg_temp.id('V1'), 'out_of_stock'),
	'fail: a submitted order fails');
SELECT results_eq(
	$$SELECT status, last_error, lease_until FROM gifq.orders WHERE id = pg_temp.id('V1')$$,
	$$VALUES ('failed', 'out_of_stock', NULL::timestamptz)$$,
	'fail: failed, with the error, lease released');
SELECT is(pg_temp.holds(pg_temp.id('V1')), 'voided/voided', 'fail: both holds voided');
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|4000 PTS|0 PTS|16000 PTS',
	'fail: ana''s 1020 PTS are available again');
SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|47.45 USD|0.00 USD|952.55 USD',
	'fail: the 9.94 USD of funding are available again');
SELECT results_eq(
	$$SELECT program_id, payload FROM gifq.outbox WHERE event_type = 'order.failed'
	AND (payload->>'order_id')::bigint = pg_temp.id('V1')$$,
	$$VALUES (pg_temp.id('o'), jsonb_build_object('order_id', pg_temp.id('V1'),
		'reference', pg_temp.ref(pg_temp.id('V1')), 'error', 'out_of_stock'))$$,
	'fail: one order.failed event');
SELECT is(pg_temp.trail(pg_temp.id('V1')),
	'->pending:redeemed pending>submitted:claimed for sending submitted>failed:out_of_stock',
	'fail: audited with the error as the reason');
SELECT pg_temp.snap('failed');
SELECT lives_ok(format('SELECT gifq.fail_order(%s, %L)', pg_temp.id('V1'), 'again'),
	'fail: failing a failed order is accepted');
SELECT is(pg_temp.state(), pg_temp.snapped('failed'), 'fail: and changes nothing, no second event');
SELECT throws_ok(format('UPDATE gifq.orders SET status = %L WHERE id = %s', 'delivered', pg_temp.id('V1')),
	'QG216', format('order %s cannot go from failed to delivered', pg_temp.id('V1')),
	'transition: failed -> delivered is QG216');
SELECT throws_ok(format('SELECT gifq_cancel_order(%s)', pg_temp.id('V1')), 'QG216',
	format('order %s is failed and can no longer be canceled', pg_temp.id('V1')),
	'transition: a failed order cannot be canceled');

-- failed -> pending by retry: new holds
SELECT lives_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('V1')), 'retry: a failed order');
SELECT results_eq(
	$$SELECT status, status_reason, attempts, next_attempt_at, lease_until FROM gifq.orders
	WHERE id = pg_temp.id('V1')$$,
	$$VALUES ('pending', 'retried', 0, now(), NULL::timestamptz)$$,
	'retry: pending again, due now');
SELECT ok((SELECT points_hold NOT IN (pg_temp.id('V1_ph'), pg_temp.id('V1_fh'))
	AND funding_hold NOT IN (pg_temp.id('V1_ph'), pg_temp.id('V1_fh'))
	FROM gifq.orders WHERE id = pg_temp.id('V1')), 'retry: new hold ids');
SELECT is(pg_temp.holds(pg_temp.id('V1')), 'pending/pending', 'retry: the new holds are pending');
SELECT results_eq(
	$$SELECT t.debit_account_id, t.credit_account_id, t.amount, t.currency
	FROM gifq.orders o JOIN gifq.transfers t ON t.id IN (o.points_hold, o.funding_hold)
	WHERE o.id = pg_temp.id('V1') ORDER BY t.currency$$,
	$$VALUES (pg_temp.id('ana'), pg_temp.id('iss'), 1020::bigint, 'PTS'),
		(pg_temp.id('fund_usd'), pg_temp.id('pay_usd'), 994::bigint, 'USD')$$,
	'retry: for the same points and cost');
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|5020 PTS|0 PTS|14980 PTS',
	'retry: ana''s points held again');
SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|57.39 USD|0.00 USD|942.61 USD',
	'retry: the funding held again');
SELECT is(pg_temp.trail(pg_temp.id('V1')),
	'->pending:redeemed pending>submitted:claimed for sending submitted>failed:out_of_stock failed>pending:retried',
	'retry: audited');
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('V1')), 'QG216',
	format('order %s is pending, not failed', pg_temp.id('V1')),
	'retry: a pending order cannot be retried');
SELECT throws_ok(format('UPDATE gifq.orders SET status = %L WHERE id = %s', 'delivered', pg_temp.id('V1')),
	'QG216', format('order %s cannot go from pending to delivered', pg_temp.id('V1')),
	'transition: pending -> delivered is QG216');
SELECT throws_ok(format('UPDATE gifq.orders SET status = %L WHERE id = %s', 'processing', pg_temp.id('V1')),
	'QG216', format('order %s cannot go from pending to processing', pg_temp.id('V1')),
	'transition: pending -> processing is QG216');
SELECT throws_ok(format('UPDATE gifq.orders SET status = %L WHERE id = %s', 'pending', pg_temp.id('V2')),
	'QG216', format('order %s cannot go from canceled to pending', pg_temp.id('V2')),
	'transition: canceled -> pending is QG216');
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('V2')), 'QG216',
	format('order %s is canceled, not failed', pg_temp.id('V2')),
	'retry: a canceled order cannot be retried');
SELECT throws_ok($$SELECT gifq_retry_order(-1)$$, 'QG215', 'unknown order -1',
	'retry: an unknown order is QG215');
SELECT throws_ok($$SELECT gifq_retry_order(NULL)$$, 'QG215', 'unknown order NULL',
	'retry: a NULL order is QG215');

-- retry refusals: blocked member, brand gone or out of stock, points or
-- funding short; a refused retry leaves the order failed and holds nothing
SELECT gifq.fail_order(pg_temp.id('G'), 'provider_error');
SELECT pg_temp.keep('G_ph', (SELECT points_hold FROM gifq.orders WHERE id = pg_temp.id('G')));
SELECT is(pg_temp.mbal('tap-o', 'gus'), '30000 PTS|0 PTS|0 PTS|30000 PTS', 'retry: gus''s order failed');
SELECT is(pg_temp.pbal('tap-o', 'GBP'), '150.00 GBP|0.00 GBP|0.00 GBP|150.00 GBP',
	'retry: the GBP funding released');
SELECT pg_temp.snap('retry');
SELECT gifq_block_member('tap-o', 'gus');
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('G')), 'QG210',
	'member "gus" is blocked', 'retry: a blocked member is QG210');
SELECT gifq_block_member('tap-o', 'gus', false);
UPDATE cat SET j = jsonb_set(j, '{in_stock}', 'false') WHERE id = 'tesco-gb';
SELECT pg_temp.load();
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('G')), 'QG203',
	'brand "tesco-gb" is out of stock', 'retry: a brand out of stock is QG203');
DELETE FROM cat WHERE id = 'tesco-gb';
SELECT pg_temp.load();
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('G')), 'QG202',
	'brand "tesco-gb" is discontinued', 'retry: a discontinued brand (also out of stock) is QG202');
INSERT INTO cat VALUES ('tesco-gb', '{"id": "tesco-gb", "name": "Tesco", "country": "GB", "currency": "GBP",
	"categories": ["grocery"], "min_value": 5, "max_value": 200, "discount_pct": 4.25, "in_stock": true}');
SELECT pg_temp.load();
SELECT gifq_transfer(pg_temp.id('gus'), pg_temp.id('iss'), '28500 PTS');
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('G')), 'QG208',
	'member "gus" has 1500 PTS available, the card needs 1672 PTS', 'retry: too few points is QG208');
SELECT gifq_transfer(pg_temp.id('iss'), pg_temp.id('gus'), '28500 PTS');
SELECT pg_temp.keep('gbp_block', gifq_transfer(pg_temp.id('fund_gbp'), pg_temp.id('pay_gbp'),
	'140.00 GBP', NULL, true));
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('G')), 'QG209',
	'program "tap-o" has 10.00 GBP of funding available, the card costs 12.80 GBP',
	'retry: too little funding is QG209');
SELECT gifq_void(pg_temp.id('gbp_block'));
SELECT results_eq(
	$$SELECT status, points_hold FROM gifq.orders WHERE id = pg_temp.id('G')$$,
	$$VALUES ('failed', pg_temp.id('G_ph'))$$,
	'retry: refused retries left the order failed with its old holds');
SELECT is(pg_temp.trail(pg_temp.id('G')),
	'->pending:redeemed pending>submitted:claimed for sending submitted>failed:provider_error',
	'retry: refused retries left no audit row');
SELECT lives_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('G')), 'retry: once all is well again');
SELECT is(pg_temp.mbal('tap-o', 'gus'), '30000 PTS|1672 PTS|0 PTS|28328 PTS', 'retry: gus''s points held');
SELECT is(pg_temp.pbal('tap-o', 'GBP'), '150.00 GBP|12.80 GBP|0.00 GBP|137.20 GBP',
	'retry: GBP funding held at cost');

SELECT gifq.fail_order(pg_temp.id('E'), 'provider_error');
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('E')), 'QG210',
	'member "eve" is blocked', 'retry: eve is blocked, QG210');
SELECT gifq.fail_order(pg_temp.id('O'), 'provider_error');
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('O')), 'QG202',
	'brand "old-us" is discontinued', 'retry: old-us is discontinued, QG202');

-- a pending order can fail directly
SELECT is(pg_temp.redeem('P', 'tap-o', 'ana', 'amazon-us', '10.00 USD', 'pf'), 'pending|1000 PTS|t',
	'fail: ana redeems 10.00 USD');
SELECT lives_ok(format('SELECT gifq.fail_order(%s, %L)', pg_temp.id('P'), 'unfulfillable'),
	'fail: a pending order fails');
SELECT is(pg_temp.trail(pg_temp.id('P')), '->pending:redeemed pending>failed:unfulfillable',
	'fail: pending -> failed audited');
SELECT is(pg_temp.holds(pg_temp.id('P')), 'voided/voided', 'fail: its holds voided');

-- where the suite stands
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|3520 PTS|0 PTS|16480 PTS',
	'balances: ana holds A (delivered, 2500) and V1 (1020)');
SELECT is(pg_temp.mbal('tap-o', 'eve'), '5000 PTS|0 PTS|0 PTS|5000 PTS', 'balances: eve holds nothing');
SELECT is(pg_temp.mbal('tap-o', 'gus'), '30000 PTS|1672 PTS|0 PTS|28328 PTS', 'balances: gus holds G');
SELECT is(pg_temp.mbal('tap-o', 'bob'), '3000 PTS|0 PTS|0 PTS|3000 PTS', 'balances: bob holds nothing');
SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|34.19 USD|0.00 USD|965.81 USD',
	'balances: USD funding holds 24.25 + 9.94');
SELECT is(pg_temp.bal(pg_temp.id('pay_usd')), '0.00 USD|0.00 USD|34.19 USD|0.00 USD',
	'balances: USD payable expects 34.19');
SELECT is(pg_temp.pbal('tap-o', 'GBP'), '150.00 GBP|12.80 GBP|0.00 GBP|137.20 GBP',
	'balances: GBP funding holds 12.80');
SELECT is(pg_temp.bal(pg_temp.id('pay_gbp')), '0.00 GBP|0.00 GBP|12.80 GBP|0.00 GBP',
	'balances: GBP payable expects 12.80');
SELECT is(pg_temp.bal(pg_temp.id('iss')), '-58100 PTS|0 PTS|5192 PTS|-58100 PTS',
	'balances: issuance expects 2500 + 1020 + 1672 PTS');

------------------------------------------------------------------------
-- Immutable order columns; audit rows are append-only
------------------------------------------------------------------------

SELECT throws_ok(format('UPDATE gifq.orders SET amount = 1 WHERE id = %s', pg_temp.id('V1')), 'QG120',
	format('order %s: only its status and fulfilment columns may change', pg_temp.id('V1')),
	'immutable: amount is QG120');
SELECT throws_ok(format('UPDATE gifq.orders SET brand_id = %L WHERE id = %s', 'visa-us', pg_temp.id('A')),
	'QG120', NULL, 'immutable: brand_id is QG120');
SELECT throws_ok(format('UPDATE gifq.orders SET points = 1 WHERE id = %s', pg_temp.id('V1')), 'QG120',
	NULL, 'immutable: points is QG120');
SELECT throws_ok(format('UPDATE gifq.orders SET cost = 0 WHERE id = %s', pg_temp.id('V1')), 'QG120',
	NULL, 'immutable: cost is QG120');
SELECT throws_ok(format('UPDATE gifq.orders SET member_id = %s WHERE id = %s', pg_temp.id('m_bob'),
	pg_temp.id('V1')), 'QG120', NULL, 'immutable: member_id is QG120');
SELECT throws_ok(format('UPDATE gifq.orders SET currency = %L WHERE id = %s', 'GBP', pg_temp.id('V1')),
	'QG120', NULL, 'immutable: currency is QG120');
SELECT throws_ok(format('UPDATE gifq.orders SET idempotency_key = %L WHERE id = %s', 'zz', pg_temp.id('V1')),
	'QG120', NULL, 'immutable: idempotency_key is QG120');
SELECT throws_ok(format('UPDATE gifq.orders SET created_at = now() - interval %L WHERE id = %s', '1 day',
	pg_temp.id('V1')), 'QG120', NULL, 'immutable: created_at cannot be backdated');
SELECT throws_ok(format('UPDATE gifq.orders SET status = %L, amount = 1 WHERE id = %s', 'canceled',
	pg_temp.id('V1')), 'QG120', NULL, 'immutable: a status change with an amount change is QG120');
SELECT throws_ok(format('DELETE FROM gifq.orders WHERE id = %s', pg_temp.id('V2')), 'QG120',
	'rows of gifq.orders are immutable: DELETE refused', 'immutable: DELETE of an order is QG120');
SELECT throws_ok('TRUNCATE gifq.orders', 'QG120', NULL, 'immutable: TRUNCATE of gifq.orders is QG120');
SELECT throws_ok(format('UPDATE gifq.order_transitions SET reason = %L WHERE order_id = %s', 'x',
	pg_temp.id('A')), 'QG120', NULL, 'immutable: UPDATE of an audit row is QG120');
SELECT throws_ok(format('DELETE FROM gifq.order_transitions WHERE order_id = %s', pg_temp.id('A')),
	'QG120', NULL, 'immutable: DELETE of an audit row is QG120');
SELECT throws_ok('TRUNCATE gifq.order_transitions', 'QG120', NULL,
	'immutable: TRUNCATE of gifq.order_transitions is QG120');
SELECT results_eq(
	$$SELECT amount, points, cost, status FROM gifq.orders WHERE id = pg_temp.id('V1')$$,
	$$VALUES (1020::bigint, 1020::bigint, 994::bigint, 'pending')$$,
	'immutable: the order is as it was');

------------------------------------------------------------------------
-- The audit actor is the calling role, through SECURITY DEFINER
------------------------------------------------------------------------

CREATE ROLE tap_orders_app;
GRANT EXECUTE ON FUNCTION gifq_redeem(text, text, text, gifq_money, text, text),
	gifq_cancel_order(bigint) TO tap_orders_app;
SET ROLE tap_orders_app;
SELECT status FROM gifq_redeem('tap-o', 'ana', 'amazon-us', '10.00 USD', 'role1');
SELECT gifq_cancel_order(order_id) FROM gifq_redeem('tap-o', 'ana', 'amazon-us', '10.00 USD', 'role1');
RESET ROLE;
SELECT pg_temp.keep('R', (SELECT id FROM gifq.orders WHERE program_id = pg_temp.id('o')
	AND idempotency_key = 'role1'));
SELECT results_eq(
	$$SELECT actor, from_status, to_status, reason FROM gifq_order_history(pg_temp.id('R'))$$,
	$$VALUES ('tap_orders_app', NULL::text, 'pending', 'redeemed'),
		('tap_orders_app', 'pending', 'canceled', 'canceled by request')$$,
	'actor: the role that called, not the functions'' owner');
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|3520 PTS|0 PTS|16480 PTS',
	'actor: the canceled order holds nothing');

------------------------------------------------------------------------
-- The remaining transitions: submitted -> delivered, processing -> failed,
-- and a retry of an order without a funding hold
------------------------------------------------------------------------

SELECT is(pg_temp.redeem('S1', 'tap-o', 'ana', 'amazon-us', '10.00 USD', 's1'), 'pending|1000 PTS|t',
	'transition: ana redeems 10.00 USD (S1)');
SELECT is(pg_temp.redeem('S2', 'tap-o', 'ana', 'amazon-us', '10.00 USD', 's2'), 'pending|1000 PTS|t',
	'transition: and 10.00 USD again (S2)');
SELECT is(pg_temp.redeem('T2', 'tap-o', 'bob', 'tiny-us', '0.01 USD', 't2'), 'pending|1 PTS|t',
	'transition: bob redeems a 0.01 USD card that costs nothing (T2)');
SELECT is((SELECT array_agg(id ORDER BY id) FROM gifq.claim_orders(10, '5 minutes')),
	ARRAY[pg_temp.id('V1'), pg_temp.id('G'), pg_temp.id('S1'), pg_temp.id('S2'), pg_temp.id('T2')],
	'claim: the retried orders and the new ones');
SELECT lives_ok(format('UPDATE gifq.orders SET status = %L, status_reason = %L WHERE id = %s',
	'delivered', 'delivered at once', pg_temp.id('S1')), 'transition: submitted -> delivered');
SELECT lives_ok(format('UPDATE gifq.orders SET status = %L, status_reason = %L WHERE id = %s',
	'processing', 'queued by provider', pg_temp.id('S2')), 'transition: submitted -> processing');
SELECT lives_ok(format('SELECT gifq.fail_order(%s, %L)', pg_temp.id('S2'), 'rejected'),
	'transition: processing -> failed');
SELECT is(pg_temp.trail(pg_temp.id('S1')),
	'->pending:redeemed pending>submitted:claimed for sending submitted>delivered:delivered at once',
	'transition: S1 audited');
SELECT is(pg_temp.trail(pg_temp.id('S2')),
	'->pending:redeemed pending>submitted:claimed for sending submitted>processing:queued by provider processing>failed:rejected',
	'transition: S2 audited');
SELECT is(pg_temp.holds(pg_temp.id('S2')), 'voided/voided', 'transition: S2''s holds voided');
SELECT lives_ok(format('SELECT gifq.fail_order(%s, %L)', pg_temp.id('T2'), 'rejected'),
	'transition: T2 fails');
SELECT is(pg_temp.mbal('tap-o', 'bob'), '3000 PTS|0 PTS|0 PTS|3000 PTS', 'transition: bob''s point released');
SELECT lives_ok(format('SELECT gifq_retry_order(%s)', pg_temp.id('T2')),
	'retry: an order that holds no funding');
SELECT results_eq(
	$$SELECT status, funding_hold FROM gifq.orders WHERE id = pg_temp.id('T2')$$,
	$$VALUES ('pending', NULL::bigint)$$, 'retry: still no funding hold');
SELECT is(pg_temp.holds(pg_temp.id('T2')), 'pending/none', 'retry: a new points hold');
SELECT is(pg_temp.mbal('tap-o', 'bob'), '3000 PTS|1 PTS|0 PTS|2999 PTS', 'retry: bob''s point held again');
SELECT is(pg_temp.mbal('tap-o', 'ana'), '20000 PTS|4520 PTS|0 PTS|15480 PTS',
	'balances: ana holds A (2500), V1 (1020) and S1 (1000)');
SELECT is(pg_temp.pbal('tap-o', 'USD'), '1000.00 USD|43.89 USD|0.00 USD|956.11 USD',
	'balances: USD funding holds 24.25 + 9.94 + 9.70');
SELECT is(pg_temp.bal(pg_temp.id('pay_usd')), '0.00 USD|0.00 USD|43.89 USD|0.00 USD',
	'balances: USD payable expects 43.89');
SELECT is(pg_temp.bal(pg_temp.id('iss')), '-58100 PTS|0 PTS|6193 PTS|-58100 PTS',
	'balances: issuance expects 2500 + 1020 + 1672 + 1000 + 1 PTS');

------------------------------------------------------------------------
-- Events: one order.created per order
------------------------------------------------------------------------

SELECT is((SELECT count(*) FROM gifq.outbox WHERE program_id = pg_temp.id('o') AND event_type = 'order.created'),
	(SELECT count(*) FROM gifq.orders WHERE program_id = pg_temp.id('o')),
	'events: one order.created per order');
SELECT is((SELECT count(*) FROM gifq.orders o WHERE o.program_id = pg_temp.id('o')
	AND (SELECT count(*) FROM gifq_order_history(o.id) h WHERE h.from_status IS NULL) <> 1),
	0::bigint, 'events: every order has exactly one creation record in its history');
SELECT is((SELECT count(*) FROM gifq.order_transitions t WHERE t.from_status IS NULL),
	0::bigint, 'events: creations are recorded on the order, not as transitions');
SELECT is((SELECT count(*) FROM gifq.outbox WHERE program_id = pg_temp.id('o') AND event_type = 'order.failed'),
	7::bigint, 'events: one order.failed per failure (V1, G, E, O, P, S2, T2)');

------------------------------------------------------------------------
-- gifq_set_limits (program tap-l)
------------------------------------------------------------------------

SELECT pg_temp.keep('l', gifq_create_program('tap-l', 'USD', 'PTS', 100, 'Pacific/Kiritimati'));
SELECT pg_temp.keep('m_lia', gifq_upsert_member('tap-l', 'lia', 'lia@example.com', 'US'));
SELECT pg_temp.keep('m_lev', gifq_upsert_member('tap-l', 'lev', 'lev@example.com', 'US', verified => true));
SELECT pg_temp.keep('m_lou', gifq_upsert_member('tap-l', 'lou'));
SELECT pg_temp.keep('m_lgb', gifq_upsert_member('tap-l', 'lgb', NULL, 'GB', verified => true));
SELECT pg_temp.keep('m_lyn', gifq_upsert_member('tap-l', 'lyn', NULL, 'US', verified => true));
SELECT pg_temp.keep('m_lee', gifq_upsert_member('tap-l', 'lee', NULL, 'US', verified => true));
SELECT gifq_transfer(gifq_account('tap-l', NULL, 'issuance'), gifq_account('tap-l', m), '100000 PTS')
FROM unnest(ARRAY['lia', 'lev', 'lgb', 'lyn', 'lee']) m;
SELECT gifq_transfer(gifq_account('tap-l', NULL, 'issuance'), gifq_account('tap-l', 'lou'), '100 PTS');
SELECT gifq_fund('tap-l', '5000.00 USD', 'tap-l-usd');
SELECT gifq_fund('tap-l', '100.00 GBP', 'tap-l-gbp');
SELECT gifq_set_rate('tap-l', 'GBP', 125);

SELECT throws_ok($$SELECT gifq_set_limits('tap-l', NULL)$$, 'QG115', 'invalid limits NULL',
	'limits: NULL is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '[]')$$, 'QG115', 'invalid limits []',
	'limits: an array is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_per_day": 3}')$$, 'QG115',
	'unknown limit "max_per_day"', 'limits: an unknown key is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_redemptions_per_day": -1}')$$, 'QG115',
	'invalid limit max_redemptions_per_day -1', 'limits: a negative count is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_redemptions_per_day": 1.5}')$$, 'QG115',
	'invalid limit max_redemptions_per_day 1.5', 'limits: a fractional count is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_redemptions_per_day": "3"}')$$, 'QG115',
	'invalid limit max_redemptions_per_day "3"', 'limits: a count as a string is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_single_value": 50}')$$, 'QG115',
	'invalid limit max_single_value 50', 'limits: a value as a number is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_single_value": "fifty"}')$$, 'QG115',
	'invalid limit max_single_value "fifty"', 'limits: a value that is not money is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_single_value": "50.001 USD"}')$$, 'QG115',
	NULL, 'limits: a value below the cent is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_value_per_day": "-1.00 USD"}')$$, 'QG115',
	'invalid limit max_value_per_day "-1.00 USD"', 'limits: a negative value is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"verification_above": "50.00 GBP"}')$$, 'QG115',
	'invalid limit verification_above "50.00 GBP"',
	'limits: a currency other than the program''s, even one with a rate, is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"recipient_yearly_flag": "500 MILES"}')$$, 'QG115',
	NULL, 'limits: a points code other than the program''s is QG115');
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_single_value": "50.00 USD", "bogus": 1}')$$,
	'QG115', 'unknown limit "bogus"', 'limits: one bad key refuses the whole call');
SELECT throws_ok($$SELECT gifq_set_limits('tap-none', '{}')$$, 'QG101', NULL,
	'limits: an unknown program is QG101');
SELECT is((SELECT count(*) FROM gifq.limits WHERE program_id = pg_temp.id('l')), 0::bigint,
	'limits: refused calls stored nothing');

SELECT lives_ok($$SELECT gifq_set_limits('tap-l', '{"max_single_value": "50.00 USD", "verification_above": "2000 PTS"}')$$,
	'limits: set two limits');
SELECT results_eq(
	$$SELECT max_redemptions_per_day, max_value_per_day::text, max_single_value::text,
		verification_above::text, recipient_yearly_flag::text
	FROM gifq.limits WHERE program_id = pg_temp.id('l')$$,
	$$VALUES (NULL::integer, NULL::text, '50.00 USD', '2000 PTS', NULL::text)$$,
	'limits: stored as given');
SELECT lives_ok($$SELECT gifq_set_limits('tap-l', '{"max_redemptions_per_day": 3}')$$,
	'limits: set another');
SELECT results_eq(
	$$SELECT max_redemptions_per_day, max_value_per_day::text, max_single_value::text,
		verification_above::text, recipient_yearly_flag::text
	FROM gifq.limits WHERE program_id = pg_temp.id('l')$$,
	$$VALUES (3, NULL::text, '50.00 USD', '2000 PTS', NULL::text)$$,
	'limits: keys left out keep their values');
SELECT lives_ok($$SELECT gifq_set_limits('tap-l', '{"max_redemptions_per_day": null}')$$,
	'limits: null removes a limit');
SELECT is((SELECT max_redemptions_per_day FROM gifq.limits WHERE program_id = pg_temp.id('l')), NULL::integer,
	'limits: removed');
-- jsonb keeps keys shortest first: max_single_value is read before the bad key
SELECT throws_ok($$SELECT gifq_set_limits('tap-l', '{"max_single_value": "1.00 USD", "max_single_value_per_week": 3}')$$,
	'QG115', 'unknown limit "max_single_value_per_week"', 'limits: a refused call ...');
SELECT is((SELECT max_single_value::text FROM gifq.limits WHERE program_id = pg_temp.id('l')), '50.00 USD',
	'limits: ... changes no limit, not even the valid keys before the bad one');

------------------------------------------------------------------------
-- max_single_value and verification_above
------------------------------------------------------------------------

SELECT pg_temp.snap('limits');
SELECT throws_ok($$SELECT gifq_redeem('tap-l', 'lev', 'visa-us', '50.01 USD', 's1')$$, 'QG211',
	'redemption refused by limit max_single_value 50.00 USD', 'single: over max_single_value is QG211');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lev', 'visa-us', '50.01 USD', 's1')$$),
	'QG211: redemption refused by limit max_single_value 50.00 USD / The card needs 5001 PTS.',
	'single: the detail gives the card''s points');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lev', 'amazon-us', '50.00 USD', 's1')$$), 'no error',
	'single: exactly the limit is allowed');
SELECT throws_ok($$SELECT gifq_redeem('tap-l', 'lia', 'visa-us', '20.01 USD', 's1')$$, 'QG212',
	'redemption refused by limit verification_above 2000 PTS',
	'verify: an unverified member above the level is QG212');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lia', 'visa-us', '20.01 USD', 's1')$$),
	'QG212: redemption refused by limit verification_above 2000 PTS / Member "lia" is not verified; the card needs 2001 PTS.',
	'verify: the detail names the member and the points');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lia', 'visa-us', '20.00 USD', 's1')$$), 'no error',
	'verify: exactly the level is allowed unverified');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lev', 'visa-us', '20.01 USD', 's1')$$), 'no error',
	'verify: a verified member may go above the level');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-l', 'lia', 'visa-us', '50.01 USD', 's1')$$), 'QG211',
	'order: max_single_value before verification_above');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-l', 'lou', 'visa-us', '20.01 USD', 's1')$$), 'QG212',
	'order: limits before points (lou has 100 PTS)');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-l', 'lou', 'fnac-fr', '20.00 EUR', 's1')$$), 'QG207',
	'order: rate before limits');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lgb', 'tesco-gb', '40.00 GBP', 's1')$$), 'no error',
	'single: a GBP card of 5000 PTS is within a limit of 50.00 USD (5000 PTS)');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lgb', 'tesco-gb', '40.01 GBP', 's1')$$),
	'QG211: redemption refused by limit max_single_value 50.00 USD / The card needs 5002 PTS.',
	'single: limits compare points: 40.01 GBP is 5002 PTS, over 50.00 USD');
SELECT gifq_set_rate('tap-l', 'USD', 200);
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lev', 'amazon-us', '50.00 USD', 's1')$$), 'no error',
	'single: at 200 PTS a dollar, 50.00 USD is 10000 PTS, still the limit');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lev', 'visa-us', '50.01 USD', 's1')$$),
	'QG211: redemption refused by limit max_single_value 50.00 USD / The card needs 10002 PTS.',
	'single: a USD limit is converted at the program''s current rate');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lgb', 'tesco-gb', '79.00 GBP', 's1')$$), 'no error',
	'single: and a GBP card of 9875 PTS is now within it');
SELECT gifq_set_rate('tap-l', 'USD', 100);
SELECT is(pg_temp.state(), pg_temp.snapped('limits'), 'single: refusals and undone probes changed nothing');

------------------------------------------------------------------------
-- max_redemptions_per_day: a rolling 24 hours, canceled and failed left out
------------------------------------------------------------------------

-- Every order of this suite is created at the transaction's now(), so all
-- of them fall inside the last 24 hours; what leaves the window here is
-- a canceled or failed order.  Orders aging out after 24 hours are not
-- time-travelled (created_at cannot be backdated, see "immutable").
SELECT gifq_set_limits('tap-l', '{"max_single_value": null, "verification_above": null, "max_redemptions_per_day": 3}');
SELECT is(pg_temp.redeem('C1', 'tap-l', 'lev', 'amazon-us', '10.00 USD', 'c1'), 'pending|1000 PTS|t', 'count: 1st');
SELECT is(pg_temp.redeem('C2', 'tap-l', 'lev', 'amazon-us', '10.00 USD', 'c2'), 'pending|1000 PTS|t', 'count: 2nd');
SELECT is(pg_temp.redeem('C3', 'tap-l', 'lev', 'amazon-us', '10.00 USD', 'c3'), 'pending|1000 PTS|t', 'count: 3rd');
SELECT throws_ok($$SELECT gifq_redeem('tap-l', 'lev', 'amazon-us', '10.00 USD', 'c4')$$, 'QG213',
	'redemption refused by limit max_redemptions_per_day 3', 'count: the 4th in 24 hours is QG213');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lev', 'amazon-us', '10.00 USD', 'c4')$$),
	'QG213: redemption refused by limit max_redemptions_per_day 3 / Member "lev" made 3 redemptions in the last 24 hours.',
	'count: the detail gives the count');
SELECT results_eq(
	$$SELECT order_id, created FROM gifq_redeem('tap-l', 'lev', 'amazon-us', '10.00 USD', 'c3')$$,
	$$VALUES (pg_temp.id('C3'), false)$$, 'count: a replay is answered at the limit');
SELECT is(pg_temp.redeem('L1', 'tap-l', 'lia', 'amazon-us', '10.00 USD', 'l1'), 'pending|1000 PTS|t',
	'count: the limit is per member');
SELECT gifq_cancel_order(pg_temp.id('C1'));
SELECT is(pg_temp.redeem('C4', 'tap-l', 'lev', 'amazon-us', '10.00 USD', 'c4'), 'pending|1000 PTS|t',
	'count: a canceled order does not count');
SELECT throws_ok($$SELECT gifq_redeem('tap-l', 'lev', 'amazon-us', '10.00 USD', 'c5')$$, 'QG213', NULL,
	'count: at the limit again');
SELECT gifq.fail_order(pg_temp.id('C2'), 'provider_error');
SELECT is(pg_temp.redeem('C5', 'tap-l', 'lev', 'amazon-us', '10.00 USD', 'c5'), 'pending|1000 PTS|t',
	'count: a failed order does not count');
SELECT throws_ok($$SELECT gifq_redeem('tap-l', 'lev', 'amazon-us', '10.00 USD', 'c6')$$, 'QG213', NULL,
	'count: at the limit again');
SELECT gifq_set_limits('tap-l', '{"max_redemptions_per_day": 0}');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lou', 'amazon-us', '10.00 USD', 'c6')$$),
	'QG213: redemption refused by limit max_redemptions_per_day 0 / Member "lou" made 0 redemptions in the last 24 hours.',
	'count: a limit of 0 refuses every redemption, before points (lou has 100 PTS)');
SELECT is(pg_temp.mbal('tap-l', 'lev'), '100000 PTS|3000 PTS|0 PTS|97000 PTS',
	'count: lev holds C3, C4 and C5');

------------------------------------------------------------------------
-- max_value_per_day: points in a rolling 24 hours
------------------------------------------------------------------------

SELECT gifq_set_limits('tap-l', '{"max_redemptions_per_day": null, "max_value_per_day": "100.00 USD"}');
SELECT throws_ok($$SELECT gifq_redeem('tap-l', 'lev', 'visa-us', '70.01 USD', 'd1')$$, 'QG214',
	'redemption refused by limit max_value_per_day 100.00 USD', 'value: over the daily value is QG214');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lev', 'visa-us', '70.01 USD', 'd1')$$),
	'QG214: redemption refused by limit max_value_per_day 100.00 USD / Member "lev" redeemed 3000 PTS in the last 24 hours; the card needs 7001 PTS more.',
	'value: the detail gives the day''s points, canceled and failed left out');
SELECT is(pg_temp.redeem('D1', 'tap-l', 'lev', 'visa-us', '70.00 USD', 'd1'), 'pending|7000 PTS|t',
	'value: exactly up to the limit is allowed');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lev', 'amazon-us', '10.00 USD', 'd2')$$),
	'QG214: redemption refused by limit max_value_per_day 100.00 USD / Member "lev" redeemed 10000 PTS in the last 24 hours; the card needs 1000 PTS more.',
	'value: at the limit, even a small card is refused');
SELECT gifq_cancel_order(pg_temp.id('D1'));
SELECT is(pg_temp.redeem('D2', 'tap-l', 'lev', 'amazon-us', '10.00 USD', 'd2'), 'pending|1000 PTS|t',
	'value: a canceled order''s points do not count');
SELECT gifq_set_limits('tap-l', '{"max_redemptions_per_day": 1}');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-l', 'lev', 'visa-us', '70.00 USD', 'd3')$$), 'QG213',
	'order: max_redemptions_per_day before max_value_per_day');
SELECT gifq_set_limits('tap-l', '{"max_redemptions_per_day": null}');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-l', 'lou', 'visa-us', '100.01 USD', 'd3')$$), 'QG214',
	'order: max_value_per_day before points');
SELECT gifq_set_limits('tap-l', '{"max_value_per_day": "5000 PTS"}');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-l', 'lev', 'amazon-us', '10.00 USD', 'd3')$$), 'no error',
	'value: a limit in points, 4000 + 1000 = 5000 allowed');
SELECT is(pg_temp.code($$SELECT gifq_redeem('tap-l', 'lev', 'visa-us', '10.01 USD', 'd3')$$), 'QG214',
	'value: 4000 + 1001 over 5000 PTS refused');
SELECT is(pg_temp.mbal('tap-l', 'lev'), '100000 PTS|4000 PTS|0 PTS|96000 PTS',
	'value: lev holds C3, C4, C5 and D2');

------------------------------------------------------------------------
-- recipient_yearly_flag: the year's points reach the level
------------------------------------------------------------------------

SELECT gifq_set_limits('tap-l', '{"max_value_per_day": null, "recipient_yearly_flag": "600.00 USD"}');
SELECT pg_temp.redeem('Y' || i, 'tap-l', 'lyn', 'amazon-us', '100.00 USD', 'y' || i)
FROM generate_series(1, 5) i;
SELECT is((SELECT count(*) FROM gifq.orders WHERE member_id = pg_temp.id('m_lyn') AND flags = '{}'),
	5::bigint, 'flag: 50000 PTS in the year, no order flagged');
SELECT is((SELECT count(*) FROM gifq.member_flags WHERE member_id = pg_temp.id('m_lyn')), 0::bigint,
	'flag: the member is not flagged yet');
SELECT is(pg_temp.redeem('Y6', 'tap-l', 'lyn', 'visa-us', '100.00 USD', 'y6'), 'pending|10000 PTS|t',
	'flag: lyn reaches 60000 PTS');
SELECT is((SELECT flags FROM gifq_order(pg_temp.id('Y6'))), '{recipient_yearly_flag}'::text[],
	'flag: the order reaching the level is flagged');
SELECT results_eq(
	$$SELECT program_id, flag, period, total, level, order_id FROM gifq.member_flags
	WHERE member_id = pg_temp.id('m_lyn')$$,
	$$VALUES (pg_temp.id('l'), 'recipient_yearly_flag', to_char(now() AT TIME ZONE 'Pacific/Kiritimati', 'YYYY'),
		60000::bigint, 60000::bigint, pg_temp.id('Y6'))$$,
	'flag: the member is flagged for the year, in the program''s time zone');
SELECT results_eq(
	$$SELECT program_id, payload FROM gifq.outbox WHERE event_type = 'member.flagged'
	AND payload->>'member' = 'lyn'$$,
	$$VALUES (pg_temp.id('l'), jsonb_build_object('member', 'lyn', 'flag', 'recipient_yearly_flag',
		'period', to_char(now() AT TIME ZONE 'Pacific/Kiritimati', 'YYYY'), 'points', 60000,
		'level_points', 60000, 'order_id', pg_temp.id('Y6')))$$,
	'flag: one member.flagged event');
SELECT is(pg_temp.redeem('Y7', 'tap-l', 'lyn', 'amazon-us', '10.00 USD', 'y7'), 'pending|1000 PTS|t',
	'flag: lyn redeems again');
SELECT is((SELECT flags FROM gifq.orders WHERE id = pg_temp.id('Y7')), '{recipient_yearly_flag}'::text[],
	'flag: orders above the level are flagged');
SELECT is((SELECT count(*) FROM gifq.member_flags WHERE member_id = pg_temp.id('m_lyn')), 1::bigint,
	'flag: the member is flagged once a year');
SELECT is((SELECT count(*) FROM gifq.outbox WHERE event_type = 'member.flagged' AND payload->>'member' = 'lyn'),
	1::bigint, 'flag: and the event is sent once');
SELECT results_eq(
	$$SELECT order_id, created FROM gifq_redeem('tap-l', 'lyn', 'visa-us', '100.00 USD', 'y6')$$,
	$$VALUES (pg_temp.id('Y6'), false)$$, 'flag: a replay of the flagged order');
SELECT is((SELECT count(*) FROM gifq.outbox WHERE event_type = 'member.flagged' AND payload->>'member' = 'lyn'),
	1::bigint, 'flag: sends no event');

-- canceled and failed orders do not count toward the year
SELECT pg_temp.redeem('Z' || i, 'tap-l', 'lee', 'amazon-us', '100.00 USD', 'z' || i)
FROM generate_series(1, 5) i;
SELECT gifq_cancel_order(pg_temp.id('Z1'));
SELECT is(pg_temp.redeem('Z6', 'tap-l', 'lee', 'visa-us', '150.00 USD', 'z6'), 'pending|15000 PTS|t',
	'flag: lee has 40000 + 15000 PTS (one order canceled)');
SELECT is((SELECT flags FROM gifq.orders WHERE id = pg_temp.id('Z6')), '{}'::text[],
	'flag: a canceled order does not count toward the year');
SELECT gifq.fail_order(pg_temp.id('Z2'), 'provider_error');
SELECT is(pg_temp.redeem('Z7', 'tap-l', 'lee', 'visa-us', '100.00 USD', 'z7'), 'pending|10000 PTS|t',
	'flag: lee has 45000 + 10000 PTS (one order failed)');
SELECT is((SELECT flags FROM gifq.orders WHERE id = pg_temp.id('Z7')), '{}'::text[],
	'flag: a failed order does not count toward the year');
SELECT is(pg_temp.redeem('Z8', 'tap-l', 'lee', 'visa-us', '50.00 USD', 'z8'), 'pending|5000 PTS|t',
	'flag: lee reaches 60000 PTS');
SELECT results_eq(
	$$SELECT o.flags, f.total, f.order_id FROM gifq.orders o
	JOIN gifq.member_flags f ON f.member_id = o.member_id WHERE o.id = pg_temp.id('Z8')$$,
	$$VALUES ('{recipient_yearly_flag}'::text[], 60000::bigint, pg_temp.id('Z8'))$$,
	'flag: flagged at exactly the level');
SELECT is(pg_temp.mbal('tap-l', 'lee'), '100000 PTS|60000 PTS|0 PTS|40000 PTS',
	'flag: lee holds 30000 + 15000 + 10000 + 5000 PTS');

-- keys are per program
SELECT is(pg_temp.redeem('K', 'tap-l', 'lev', 'amazon-us', '25.00 USD', 'a1'), 'pending|2500 PTS|t',
	'keys: a key used in another program is free in this one');

------------------------------------------------------------------------
-- A program's own rate, and points short together with funding short
------------------------------------------------------------------------

SELECT gifq_create_program('tap-r', 'USD', 'MILES', 2.5);
SELECT gifq_upsert_member('tap-r', 'rita');
SELECT gifq_transfer(gifq_account('tap-r', NULL, 'issuance'), gifq_account('tap-r', 'rita'), '1000 MILES');
SELECT gifq_fund('tap-r', '20.00 USD', 'tap-r-usd');
SELECT is(pg_temp.quote('tap-r', 'rita', 'visa-us', '13.37 USD'), '34 MILES / 13.04 USD',
	'rate: 13.37 USD at 2.5 MILES a dollar is 33.425, rounded up to 34 MILES');
SELECT gifq_set_rate('tap-r', 'USD', 3);
SELECT is(pg_temp.quote('tap-r', 'rita', 'visa-us', '13.37 USD'), '41 MILES / 13.04 USD',
	'rate: after gifq_set_rate(''USD'', 3) it is 40.11, rounded up to 41 MILES');
SELECT throws_ok($$SELECT gifq_redeem('tap-r', 'rita', 'visa-us', '30.00 USD', 'f1')$$, 'QG209',
	'program "tap-r" has 20.00 USD of funding available, the card costs 29.25 USD',
	'funding: too little USD funding is QG209');
SELECT is(pg_temp.err($$SELECT gifq_redeem('tap-r', 'rita', 'visa-us', '400.00 USD', 'f1')$$),
	'QG208: member "rita" has 1000 MILES available, the card needs 1200 MILES / ',
	'order: points before funding (USD: 1200 MILES needed, 1000 available; 390.00 USD needed, 20.00 funded)');
SELECT gifq_set_rate('tap-r', 'GBP', 1e18);
SELECT throws_ok($$SELECT gifq_redeem('tap-r', 'rita', 'tesco-gb', '200.00 GBP', 'f1')$$, 'QG002',
	'200.00 GBP in points is out of range', 'rate: points beyond bigint are QG002');

------------------------------------------------------------------------
-- Audit reasons belong to the change that sets them; holds end together
------------------------------------------------------------------------

SELECT is(pg_temp.redeem('Z', 'tap-o', 'ana', 'amazon-us', '10.00 USD', 'z1'), 'pending|1000 PTS|t',
	'reason: an order to move by hand');
SELECT is((SELECT count(*) FROM gifq.claim_orders(100, '5 minutes') c WHERE c.id = pg_temp.id('Z')),
	1::bigint, 'reason: claimed');
UPDATE gifq.orders SET status = 'processing' WHERE id = pg_temp.id('Z');
SELECT is((SELECT reason FROM gifq_order_history(pg_temp.id('Z')) h WHERE h.to_status = 'processing'),
	'no reason given',
	'reason: a change that sets no reason is not given the previous change''s reason');
SELECT is(gifq.end_holds(ARRAY[(SELECT points_hold FROM gifq.orders WHERE id = pg_temp.id('Z')),
	(SELECT funding_hold FROM gifq.orders WHERE id = pg_temp.id('Z'))], 'post'), 2,
	'end_holds: posts both holds of an order together');
SELECT is(pg_temp.holds(pg_temp.id('Z')), 'posted/posted', 'end_holds: both holds are posted');
SELECT is(gifq.end_holds(ARRAY[(SELECT points_hold FROM gifq.orders WHERE id = pg_temp.id('Z'))], 'void'), 0,
	'end_holds: a hold already ended is left alone');
SELECT throws_ok($$SELECT gifq.end_holds('{1}', 'cancel')$$, 'QG115',
	'invalid way to end holds "cancel"', 'end_holds: an unknown way is QG115');
SELECT throws_ok(format('DELETE FROM gifq.orders WHERE id = %s', pg_temp.id('Z')), 'QG120',
	'rows of gifq.orders are immutable: DELETE refused', 'immutable: DELETE of an order is QG120');
SELECT throws_ok(format('UPDATE gifq.orders SET recipient_email = %L WHERE id = %s',
	'x@example.com', pg_temp.id('Z')), 'QG120', NULL,
	'immutable: the recipient of an order cannot change');

------------------------------------------------------------------------
-- gifq_ledger_verify checks order rows (they have no CHECK constraint)
------------------------------------------------------------------------

-- change an order behind gifq's back (replica role skips its triggers)
SET LOCAL session_replication_role = replica;
UPDATE gifq.orders SET margin = margin + 1 WHERE id = pg_temp.id('Z');
SET LOCAL session_replication_role = origin;
SELECT is((SELECT count(*) FROM gifq_ledger_verify()
		WHERE problem LIKE format('order %s is malformed%%', pg_temp.id('Z'))
		AND account = (SELECT debit_account_id FROM gifq.transfers t JOIN gifq.orders o
			ON t.id = o.points_hold WHERE o.id = pg_temp.id('Z'))),
	1::bigint, 'verify: an order whose margin is not amount - cost is reported, for its member''s account');
SET LOCAL session_replication_role = replica;
UPDATE gifq.orders SET margin = margin - 1, status = 'lost' WHERE id = pg_temp.id('Z');
SET LOCAL session_replication_role = origin;
SELECT is((SELECT count(*) FROM gifq_ledger_verify() WHERE problem LIKE '%status lost)'),
	1::bigint, 'verify: an order with an unknown status is reported');
SET LOCAL session_replication_role = replica;
UPDATE gifq.orders SET status = 'delivered' WHERE id = pg_temp.id('Z');
SET LOCAL session_replication_role = origin;

------------------------------------------------------------------------
-- The ledger is consistent
------------------------------------------------------------------------

SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'verify: the ledger is consistent at the end');

SELECT * FROM finish();
ROLLBACK;
