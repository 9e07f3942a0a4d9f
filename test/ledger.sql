-- ledger.sql: pgTAP suite for the ledger API (0.2.0): programs, members,
-- accounts, transfers, holds, batches, funding, low-balance events,
-- balances and their history, verification, immutability and the balance
-- slots of hot accounts.  Every error path is checked by its SQLSTATE:
--   QG101 unknown program      QG110 not a hold             QG004 bad currency
--   QG102 unknown member       QG111 hold already posted
--   QG103 unknown account      QG112 hold already voided
--   QG104 amount not positive  QG113 hold expired
--   QG105 same account         QG114 post exceeds the hold
--   QG106 currency mismatch    QG115 invalid parameter
--   QG107 exceeds credits      QG116 accounts of two programs
--   QG108 exceeds debits       QG117 invalid timeout
--   QG109 idempotency conflict QG118 invalid batch
--   QG120 immutable row
-- Everything runs in one transaction, rolled back at the end.  now() is
-- fixed in a transaction while history entries are stamped with
-- clock_timestamp(), so times are captured with clock_timestamp() between
-- statements.
BEGIN;
SELECT plan(301);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';

------------------------------------------------------------------------
-- Helpers (pg_temp: gone with the session, and rolled back anyway)
------------------------------------------------------------------------

-- ids of what the suite creates, by name
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint NOT NULL);
CREATE TEMP TABLE marks (name text PRIMARY KEY, at timestamptz NOT NULL);

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

CREATE FUNCTION pg_temp.mark(n text) RETURNS timestamptz
LANGUAGE sql AS $$
	INSERT INTO marks VALUES (n, clock_timestamp()) RETURNING at
$$;
CREATE FUNCTION pg_temp.at(n text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$ SELECT at FROM marks WHERE name = n $$;

-- an account's four balances as one text, "posted|pending debits|pending
-- credits|available"
CREATE FUNCTION pg_temp.bal(account bigint) RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s|%s|%s|%s', posted, pending_debits, pending_credits, available)
	FROM gifq_balance(account)
$$;
CREATE FUNCTION pg_temp.bal_at(account bigint, at timestamptz) RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s|%s|%s|%s', posted, pending_debits, pending_credits, available)
	FROM gifq_balance_at(account, at)
$$;

\ir lib/errors.sql

-- the room of each slot of an account, for debits_must_not_exceed_credits
CREATE FUNCTION pg_temp.rooms(account bigint) RETURNS SETOF bigint
LANGUAGE sql AS $$
	SELECT credits_posted - debits_posted - debits_pending
	FROM gifq.account_slots WHERE account_id = account ORDER BY slot
$$;

------------------------------------------------------------------------
-- gifq_create_program
------------------------------------------------------------------------

SELECT pg_temp.keep('p', gifq_create_program('tap-p', 'USD'));

SELECT is(gifq_create_program('tap-p', 'USD'), pg_temp.id('p'),
	'create_program: a replay returns the same id');
SELECT is(gifq_create_program('tap-p', 'USD', 'PTS', 100.00, 'UTC'), pg_temp.id('p'),
	'create_program: a replay with the defaults spelled out returns the same id');
SELECT is((SELECT count(*) FROM gifq.programs WHERE code = 'tap-p'), 1::bigint,
	'create_program: replays create no second program');
SELECT results_eq(
	$$SELECT kind, code, currency, debits_must_not_exceed_credits,
		credits_must_not_exceed_debits, slots
	FROM gifq.accounts WHERE program_id = pg_temp.id('p') ORDER BY kind$$,
	$$VALUES ('breakage', 'breakage', 'USD', false, false, 16),
		('funding', 'funding', 'USD', true, false, 16),
		('issuance', 'issuance', 'PTS', false, false, 16),
		('liability', 'liability', 'USD', false, false, 16),
		('payable', 'payable', 'USD', false, false, 16),
		('revenue', 'revenue', 'USD', false, false, 16),
		('settlement', 'settlement', 'USD', false, false, 16)$$,
	'create_program: the seven system accounts, their currencies, flags and slots');
SELECT is((SELECT count(*) FROM gifq.account_slots s JOIN gifq.accounts a ON a.id = s.account_id
	WHERE a.program_id = pg_temp.id('p')), 112::bigint,
	'create_program: 16 balance slots for each system account');
SELECT results_eq(
	$$SELECT currency, points_code, points_per_unit, timezone FROM gifq.programs
	WHERE id = pg_temp.id('p')$$,
	$$VALUES ('USD', 'PTS', 100::numeric, 'UTC')$$,
	'create_program: the defaults are stored');

-- a program with every argument given
SELECT pg_temp.keep('q', gifq_create_program('tap-q', 'EUR', 'MILES', 50, 'Europe/Paris'));
SELECT results_eq(
	$$SELECT currency, points_code, points_per_unit, timezone FROM gifq.programs
	WHERE id = pg_temp.id('q')$$,
	$$VALUES ('EUR', 'MILES', 50::numeric, 'Europe/Paris')$$,
	'create_program: every argument is stored');
SELECT is((SELECT currency FROM gifq.accounts WHERE program_id = pg_temp.id('q') AND code = 'issuance'),
	'MILES', 'create_program: issuance is in the points code');
SELECT is((SELECT currency FROM gifq.accounts WHERE program_id = pg_temp.id('q') AND code = 'funding'),
	'EUR', 'create_program: funding is in the program currency');

-- a replay with different arguments names the field
SELECT matches(pg_temp.err($$SELECT gifq_create_program('tap-p', 'EUR')$$),
	'^QG109: .*different currency', 'create_program: another currency is QG109 naming currency');
SELECT matches(pg_temp.err($$SELECT gifq_create_program('tap-p', 'USD', 'PTX')$$),
	'^QG109: .*different points_code', 'create_program: another points code is QG109 naming points_code');
SELECT matches(pg_temp.err($$SELECT gifq_create_program('tap-p', 'USD', 'PTS', 50)$$),
	'^QG109: .*different points_per_unit', 'create_program: another rate is QG109 naming points_per_unit');
SELECT matches(pg_temp.err($$SELECT gifq_create_program('tap-p', 'USD', 'PTS', 100, 'Europe/Paris')$$),
	'^QG109: .*different timezone', 'create_program: another time zone is QG109 naming timezone');

-- malformed arguments
SELECT throws_ok($$SELECT gifq_create_program('', 'USD')$$, 'QG115', NULL,
	'create_program: an empty code is QG115');
SELECT throws_ok($$SELECT gifq_create_program(' tap', 'USD')$$, 'QG115', NULL,
	'create_program: a code with a leading space is QG115');
SELECT throws_ok($$SELECT gifq_create_program(E'tap\tx', 'USD')$$, 'QG115', NULL,
	'create_program: a code with a control character is QG115');
SELECT throws_ok($$SELECT gifq_create_program(repeat('x', 201), 'USD')$$, 'QG115', NULL,
	'create_program: a 201-character code is QG115');
SELECT throws_ok($$SELECT gifq_create_program(NULL, 'USD')$$, 'QG115', NULL,
	'create_program: a NULL code is QG115');
SELECT throws_ok($$SELECT gifq_create_program('tap-x', 'usd')$$, 'QG004', NULL,
	'create_program: a lower-case currency is QG004');
SELECT throws_ok($$SELECT gifq_create_program('tap-x', 'US')$$, 'QG004', NULL,
	'create_program: a two-letter currency is QG004');
SELECT matches(pg_temp.err($$SELECT gifq_create_program('tap-x', NULL)$$), '^QG(004|115):',
	'create_program: a NULL currency is QG004 or QG115');
SELECT throws_ok($$SELECT gifq_create_program('tap-x', 'USD', 'pts')$$, 'QG004', NULL,
	'create_program: a lower-case points code is QG004');
SELECT throws_ok($$SELECT gifq_create_program('tap-x', 'USD', 'PTS', 0)$$, 'QG115', NULL,
	'create_program: points_per_unit 0 is QG115');
SELECT throws_ok($$SELECT gifq_create_program('tap-x', 'USD', 'PTS', -1)$$, 'QG115', NULL,
	'create_program: a negative points_per_unit is QG115');
SELECT throws_ok($$SELECT gifq_create_program('tap-x', 'USD', 'PTS', NULL)$$, 'QG115', NULL,
	'create_program: a NULL points_per_unit is QG115');
SELECT throws_ok($$SELECT gifq_create_program('tap-x', 'USD', 'PTS', 'Infinity')$$, 'QG115', NULL,
	'create_program: an infinite points_per_unit is QG115');
SELECT is(pg_temp.code($$SELECT gifq_create_program('tap-x', 'USD', 'PTS', 'NaN')$$), 'QG115',
	'create_program: a NaN points_per_unit is QG115');
SELECT throws_ok($$SELECT gifq_create_program('tap-x', 'USD', 'PTS', 100, 'Mars/Base')$$, 'QG115', NULL,
	'create_program: an unknown time zone is QG115');
SELECT is(pg_temp.code($$SELECT gifq_create_program('tap-x', 'USD', 'PTS', 100, NULL)$$), 'QG115',
	'create_program: a NULL time zone is QG115');
SELECT is((SELECT count(*) FROM gifq.programs WHERE code = 'tap-x'), 0::bigint,
	'create_program: no refused call left a program behind');

------------------------------------------------------------------------
-- gifq_upsert_member
------------------------------------------------------------------------

SELECT pg_temp.keep('ana_m', gifq_upsert_member('tap-p', 'ana', 'ana@example.com', 'US',
	'{"dept": "sales", "level": 1}'));
SELECT results_eq(
	$$SELECT external_id, email, country, attributes, verified, blocked
	FROM gifq.members WHERE id = pg_temp.id('ana_m')$$,
	$$VALUES ('ana', 'ana@example.com', 'US', '{"dept": "sales", "level": 1}'::jsonb, false, false)$$,
	'upsert_member: creates the member');
SELECT is(gifq_upsert_member('tap-p', 'ana', NULL, NULL, '{"level": 2, "team": "x"}'),
	pg_temp.id('ana_m'), 'upsert_member: a second call returns the same id');
SELECT results_eq(
	$$SELECT email, country, attributes FROM gifq.members WHERE id = pg_temp.id('ana_m')$$,
	$$VALUES ('ana@example.com', 'US', '{"dept": "sales", "level": 2, "team": "x"}'::jsonb)$$,
	'upsert_member: NULL email and country keep the stored values; attributes are merged');
SELECT lives_ok($$SELECT gifq_upsert_member('tap-p', 'ana', 'ana@new.example', 'FR', '{}', true)$$,
	'upsert_member: update email, country and verified');
SELECT results_eq(
	$$SELECT email, country, attributes, verified FROM gifq.members WHERE id = pg_temp.id('ana_m')$$,
	$$VALUES ('ana@new.example', 'FR', '{"dept": "sales", "level": 2, "team": "x"}'::jsonb, true)$$,
	'upsert_member: email and country replaced, empty attributes change nothing');
SELECT lives_ok($$SELECT gifq_upsert_member('tap-p', 'ana', verified => false)$$,
	'upsert_member: verified => false is accepted');
SELECT is((SELECT verified FROM gifq.members WHERE id = pg_temp.id('ana_m')), true,
	'upsert_member: once verified, stays verified');
SELECT is((SELECT count(*) FROM gifq.members WHERE program_id = pg_temp.id('p') AND external_id = 'ana'),
	1::bigint, 'upsert_member: one member row after four calls');
SELECT results_eq(
	$$SELECT kind, code, currency, debits_must_not_exceed_credits,
		credits_must_not_exceed_debits, slots
	FROM gifq.accounts WHERE member_id = pg_temp.id('ana_m')$$,
	$$VALUES ('points', 'points', 'PTS', true, false, 1)$$,
	'upsert_member: one points account, which cannot be overdrawn');

SELECT pg_temp.keep('bob_m', gifq_upsert_member('tap-p', 'bob'));
SELECT pg_temp.keep('mia_m', gifq_upsert_member('tap-q', 'mia'));
SELECT is((SELECT currency FROM gifq.accounts WHERE member_id = pg_temp.id('mia_m')), 'MILES',
	'upsert_member: the points account is in the program''s points code');

SELECT throws_ok($$SELECT gifq_upsert_member('tap-p', 'ana', 'no-at-sign')$$, 'QG115', NULL,
	'upsert_member: an email without @ is QG115');
SELECT throws_ok($$SELECT gifq_upsert_member('tap-p', 'ana', 'a b@example.com')$$, 'QG115', NULL,
	'upsert_member: an email with a space is QG115');
SELECT throws_ok($$SELECT gifq_upsert_member('tap-p', 'ana', NULL, 'us')$$, 'QG115', NULL,
	'upsert_member: a lower-case country is QG115');
SELECT throws_ok($$SELECT gifq_upsert_member('tap-p', 'ana', NULL, 'USA')$$, 'QG115', NULL,
	'upsert_member: a three-letter country is QG115');
SELECT throws_ok($$SELECT gifq_upsert_member('tap-p', 'ana', NULL, NULL, '[1]')$$, 'QG115', NULL,
	'upsert_member: array attributes are QG115');
SELECT throws_ok($$SELECT gifq_upsert_member('tap-p', 'ana', NULL, NULL, '"x"')$$, 'QG115', NULL,
	'upsert_member: scalar attributes are QG115');
SELECT throws_ok($$SELECT gifq_upsert_member('tap-p', 'ana', NULL, NULL, NULL)$$, 'QG115', NULL,
	'upsert_member: NULL attributes are QG115');
SELECT throws_ok($$SELECT gifq_upsert_member('tap-nope', 'ana')$$, 'QG101', NULL,
	'upsert_member: an unknown program is QG101');
SELECT throws_ok($$SELECT gifq_upsert_member('tap-p', '')$$, 'QG115', NULL,
	'upsert_member: an empty member id is QG115');
SELECT throws_ok($$SELECT gifq_upsert_member('tap-p', NULL)$$, 'QG115', NULL,
	'upsert_member: a NULL member id is QG115');
SELECT is((SELECT email FROM gifq.members WHERE id = pg_temp.id('ana_m')), 'ana@new.example',
	'upsert_member: refused calls changed nothing');

------------------------------------------------------------------------
-- gifq_create_account
------------------------------------------------------------------------

SELECT pg_temp.keep('escrow', gifq_create_account('tap-p', 'escrow', 'USD',
	'{credits_must_not_exceed_debits}'));
SELECT pg_temp.keep('wallet', gifq_create_account('tap-p', 'wallet', 'USD',
	'{debits_must_not_exceed_credits}'));
SELECT pg_temp.keep('plain', gifq_create_account('tap-p', 'plain', 'USD'));
SELECT pg_temp.keep('hot4', gifq_create_account('tap-p', 'hot4', 'USD',
	'{debits_must_not_exceed_credits}', 4));
SELECT results_eq(
	$$SELECT code, kind, currency, member_id IS NULL, debits_must_not_exceed_credits,
		credits_must_not_exceed_debits, slots
	FROM gifq.accounts WHERE id IN (pg_temp.id('escrow'), pg_temp.id('wallet'),
		pg_temp.id('plain'), pg_temp.id('hot4')) ORDER BY code$$,
	$$VALUES ('escrow', 'custom', 'USD', true, false, true, 1),
		('hot4', 'custom', 'USD', true, true, false, 4),
		('plain', 'custom', 'USD', true, false, false, 1),
		('wallet', 'custom', 'USD', true, true, false, 1)$$,
	'create_account: kind, currency, flags and slots as asked');
SELECT is((SELECT count(*) FROM gifq.account_slots WHERE account_id = pg_temp.id('hot4')), 4::bigint,
	'create_account: slots => 4 makes four balance slots');
SELECT is(gifq_create_account('tap-p', 'escrow', 'USD', '{credits_must_not_exceed_debits}'),
	pg_temp.id('escrow'), 'create_account: a replay returns the same id');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', 'escrow', 'USD')$$, 'QG109', NULL,
	'create_account: a replay with other flags is QG109');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', 'escrow', 'USD', '{credits_must_not_exceed_debits}', 2)$$,
	'QG109', NULL, 'create_account: a replay with other slots is QG109');
SELECT pg_temp.keep('escrow_eur', gifq_create_account('tap-p', 'escrow', 'EUR'));
SELECT isnt(pg_temp.id('escrow_eur'), pg_temp.id('escrow'),
	'create_account: the same code in another currency is another account');
SELECT is((SELECT count(*) FROM unnest(ARRAY['points', 'funding', 'settlement', 'issuance',
		'liability', 'payable', 'revenue', 'breakage']) c
	WHERE pg_temp.code(format('SELECT gifq_create_account(%L, %L, %L)', 'tap-p', c, 'USD')) = 'QG115'),
	8::bigint, 'create_account: each of the 8 reserved codes is QG115');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', 'x1', 'USD', '{bogus}')$$, 'QG115', NULL,
	'create_account: an unknown flag is QG115');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', 'x1', 'USD', ARRAY[NULL]::text[])$$, 'QG115', NULL,
	'create_account: a NULL flag is QG115');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', 'x1', 'USD',
	'{debits_must_not_exceed_credits,credits_must_not_exceed_debits}')$$, 'QG115', NULL,
	'create_account: both limit flags are QG115');
SELECT is(pg_temp.code($$SELECT gifq_create_account('tap-p', 'x1', 'USD',
	'{debits_must_not_exceed_credits,credits_must_not_exceed_debits,debits_must_not_exceed_credits}')$$),
	'QG115', 'create_account: both limit flags among three entries are QG115');
SELECT matches(pg_temp.err($$SELECT gifq_create_account('tap-p', 'x1', 'USD', NULL)$$),
	'^(no error|QG115:)', 'create_account: NULL flags mean no flags or QG115, not a constraint error');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', 'x1', 'USD', '{}', 0)$$, 'QG115', NULL,
	'create_account: 0 slots is QG115');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', 'x1', 'USD', '{}', 65)$$, 'QG115', NULL,
	'create_account: 65 slots is QG115');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', 'x1', 'USD', '{}', NULL)$$, 'QG115', NULL,
	'create_account: NULL slots is QG115');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', 'x1', 'usd')$$, 'QG004', NULL,
	'create_account: a bad currency is QG004');
SELECT throws_ok($$SELECT gifq_create_account('tap-p', '', 'USD')$$, 'QG115', NULL,
	'create_account: an empty code is QG115');
SELECT throws_ok($$SELECT gifq_create_account('tap-nope', 'x1', 'USD')$$, 'QG101', NULL,
	'create_account: an unknown program is QG101');

------------------------------------------------------------------------
-- gifq_account
------------------------------------------------------------------------

SELECT pg_temp.keep('ana', (SELECT id FROM gifq.accounts WHERE member_id = pg_temp.id('ana_m')));
SELECT pg_temp.keep('bob', (SELECT id FROM gifq.accounts WHERE member_id = pg_temp.id('bob_m')));
SELECT pg_temp.keep('mia', (SELECT id FROM gifq.accounts WHERE member_id = pg_temp.id('mia_m')));
SELECT is(gifq_account('tap-p', 'ana'), pg_temp.id('ana'), 'account: a member''s points account');
SELECT is(gifq_account('tap-p', 'ana', 'points'), pg_temp.id('ana'), 'account: kind points is the default');
SELECT is((SELECT count(*) FROM unnest(ARRAY['funding', 'settlement', 'liability', 'payable',
		'revenue', 'breakage', 'issuance']) k
	WHERE gifq_account('tap-p', NULL, k) = (SELECT id FROM gifq.accounts
		WHERE program_id = pg_temp.id('p') AND member_id IS NULL AND code = k)),
	7::bigint, 'account: each system kind finds its system account');
SELECT pg_temp.keep('f', gifq_account('tap-p', NULL, 'funding'));
SELECT pg_temp.keep('s', gifq_account('tap-p', NULL, 'settlement'));
SELECT pg_temp.keep('iss', gifq_account('tap-p', NULL, 'issuance'));
SELECT pg_temp.keep('pay', gifq_account('tap-p', NULL, 'payable'));
SELECT pg_temp.keep('liab', gifq_account('tap-p', NULL, 'liability'));
SELECT pg_temp.keep('f_eur', gifq_account('tap-p', NULL, 'funding', 'EUR'));
SELECT results_eq(
	$$SELECT kind, currency, debits_must_not_exceed_credits, slots FROM gifq.accounts
	WHERE id = pg_temp.id('f_eur')$$,
	$$VALUES ('funding', 'EUR', true, 16)$$,
	'account: a system account in another currency is created on first use');
SELECT is(gifq_account('tap-p', NULL, 'funding', 'EUR'), pg_temp.id('f_eur'),
	'account: and found again');
SELECT is(gifq_account('tap-p', NULL, 'escrow'), pg_temp.id('escrow'),
	'account: a custom account by code');
SELECT is(gifq_account('tap-p', NULL, 'escrow', 'EUR'), pg_temp.id('escrow_eur'),
	'account: a custom account by code and currency');
SELECT throws_ok($$SELECT gifq_account('tap-p', 'nobody')$$, 'QG102', NULL,
	'account: an unknown member is QG102');
SELECT throws_ok($$SELECT gifq_account('tap-p', 'mia')$$, 'QG102', NULL,
	'account: a member of another program is QG102');
SELECT throws_ok($$SELECT gifq_account('tap-p', NULL, 'nosuch')$$, 'QG103', NULL,
	'account: an unknown custom account is QG103');
SELECT throws_ok($$SELECT gifq_account('tap-p', NULL, 'escrow', 'JPY')$$, 'QG103', NULL,
	'account: a custom account in a currency it does not have is QG103');
SELECT throws_ok($$SELECT gifq_account('tap-nope')$$, 'QG101', NULL,
	'account: an unknown program is QG101');
SELECT throws_ok($$SELECT gifq_account('tap-p', 'ana', 'funding')$$, 'QG115', NULL,
	'account: a member account of another kind is QG115');
SELECT throws_ok($$SELECT gifq_account('tap-p', NULL, 'funding', 'eur')$$, 'QG004', NULL,
	'account: a system account in a bad currency is QG004');
SELECT is(pg_temp.code($$SELECT gifq_account('tap-p', NULL, 'issuance', 'zz')$$), 'QG004',
	'account: an issuance account in a bad currency is QG004');

------------------------------------------------------------------------
-- gifq_transfer
------------------------------------------------------------------------

SELECT pg_temp.keep('earn1', gifq_transfer(pg_temp.id('iss'), pg_temp.id('ana'), '1000 PTS', 'earn-1'));
SELECT is(pg_temp.bal(pg_temp.id('ana')), '1000 PTS|0 PTS|0 PTS|1000 PTS',
	'transfer: the credited member gains 1000 PTS');
SELECT is(pg_temp.bal(pg_temp.id('iss')), '-1000 PTS|0 PTS|0 PTS|-1000 PTS',
	'transfer: issuance goes negative by 1000 PTS');
SELECT results_eq(
	$$SELECT program_id, kind, debit_account_id, credit_account_id, amount, currency,
		pending_id IS NULL, timeout IS NULL, idempotency_key, metadata
	FROM gifq.transfers WHERE id = pg_temp.id('earn1')$$,
	$$VALUES (pg_temp.id('p'), 'posted', pg_temp.id('iss'), pg_temp.id('ana'), 1000::bigint,
		'PTS', true, true, 'earn-1', '{}'::jsonb)$$,
	'transfer: the transfer row');
SELECT is(gifq_transfer(pg_temp.id('iss'), pg_temp.id('ana'), '1000 PTS', 'earn-1'),
	pg_temp.id('earn1'), 'transfer: a replay returns the same id');
SELECT is(pg_temp.bal(pg_temp.id('ana')), '1000 PTS|0 PTS|0 PTS|1000 PTS',
	'transfer: a replay moves nothing');
SELECT is((SELECT count(*) FROM gifq.transfers WHERE idempotency_key = 'earn-1'), 1::bigint,
	'transfer: a replay writes no transfer');

-- a replay with another field names the first that differs
SELECT matches(pg_temp.err(format('SELECT gifq_transfer(%s, %s, %L, %L)',
		pg_temp.id('bob'), pg_temp.id('ana'), '1000 PTS', 'earn-1')),
	'^QG109: .* / Field "debit_account" differs', 'transfer: another debit account is QG109 naming debit_account');
SELECT matches(pg_temp.err(format('SELECT gifq_transfer(%s, %s, %L, %L)',
		pg_temp.id('iss'), pg_temp.id('bob'), '1000 PTS', 'earn-1')),
	'^QG109: .* / Field "credit_account" differs', 'transfer: another credit account is QG109 naming credit_account');
SELECT matches(pg_temp.err(format('SELECT gifq_transfer(%s, %s, %L, %L)',
		pg_temp.id('iss'), pg_temp.id('ana'), '999 PTS', 'earn-1')),
	'^QG109: .* / Field "amount" differs', 'transfer: another amount is QG109 naming amount');
SELECT matches(pg_temp.err(format('SELECT gifq_transfer(%s, %s, %L, %L, true)',
		pg_temp.id('iss'), pg_temp.id('ana'), '1000 PTS', 'earn-1')),
	'^QG109: .* / Field "pending" differs', 'transfer: pending instead of posted is QG109 naming pending');
SELECT matches(pg_temp.err(format('SELECT gifq_transfer(%s, %s, %L, %L, metadata => %L)',
		pg_temp.id('iss'), pg_temp.id('ana'), '1000 PTS', 'earn-1', '{"x": 1}')),
	'^QG109: .* / Field "metadata" differs', 'transfer: other metadata is QG109 naming metadata');

SELECT pg_temp.keep('hk', gifq_transfer(pg_temp.id('iss'), pg_temp.id('bob'), '50 PTS', 'hold-k',
	pending => true, timeout => '1 hour', metadata => '{"a": 2, "b": 1}'));
SELECT is(gifq_transfer(pg_temp.id('iss'), pg_temp.id('bob'), '50 PTS', 'hold-k',
	pending => true, timeout => '60 minutes', metadata => '{"b": 1, "a": 2}'), pg_temp.id('hk'),
	'transfer: a replay with equal timeout and metadata written otherwise returns the same id');
SELECT matches(pg_temp.err(format('SELECT gifq_transfer(%s, %s, %L, %L, true, %L, %L)',
		pg_temp.id('iss'), pg_temp.id('bob'), '50 PTS', 'hold-k', '2 hours', '{"a": 2, "b": 1}')),
	'^QG109: .* / Field "timeout" differs', 'transfer: another timeout is QG109 naming timeout');
SELECT matches(pg_temp.err(format('SELECT gifq_transfer(%s, %s, %L, %L, true, NULL, %L)',
		pg_temp.id('iss'), pg_temp.id('bob'), '50 PTS', 'hold-k', '{"a": 2, "b": 1}')),
	'^QG109: .* / Field "timeout" differs', 'transfer: no timeout instead of one is QG109 naming timeout');
SELECT matches(pg_temp.err(format('SELECT gifq_transfer(%s, %s, %L, %L, false)',
		pg_temp.id('iss'), pg_temp.id('bob'), '50 PTS', 'hold-k')),
	'^QG109: .* / Field "pending" differs', 'transfer: posted instead of pending is QG109 naming pending');
SELECT is(gifq_void(pg_temp.id('hk')) > pg_temp.id('hk'), true, 'transfer: the keyed hold is voided');

-- posted and pending transfers between members
SELECT pg_temp.keep('t_ab', gifq_transfer(pg_temp.id('ana'), pg_temp.id('bob'), '100 PTS',
	metadata => '{"order": 42}'));
SELECT is(pg_temp.bal(pg_temp.id('ana')), '900 PTS|0 PTS|0 PTS|900 PTS',
	'transfer: the debited member loses 100 PTS');
SELECT is(pg_temp.bal(pg_temp.id('bob')), '100 PTS|0 PTS|0 PTS|100 PTS',
	'transfer: the credited member gains 100 PTS');
SELECT is((SELECT metadata FROM gifq.transfers WHERE id = pg_temp.id('t_ab')), '{"order": 42}'::jsonb,
	'transfer: metadata is stored');
SELECT pg_temp.keep('h1', gifq_transfer(pg_temp.id('ana'), pg_temp.id('bob'), '200 PTS',
	pending => true, timeout => '1 hour'));
SELECT is(pg_temp.bal(pg_temp.id('ana')), '900 PTS|200 PTS|0 PTS|700 PTS',
	'transfer: a hold adds pending debits and lowers available');
SELECT is(pg_temp.bal(pg_temp.id('bob')), '100 PTS|0 PTS|200 PTS|100 PTS',
	'transfer: a hold adds pending credits to the other side');
SELECT results_eq(
	$$SELECT t.kind, t.amount, t.timeout, h.status, h.expires_at = now() + interval '1 hour', h.resolved_by IS NULL
	FROM gifq.transfers t JOIN gifq.holds h ON h.transfer_id = t.id WHERE t.id = pg_temp.id('h1')$$,
	$$VALUES ('pending', 200::bigint, interval '1 hour', 'pending', true, true)$$,
	'transfer: a hold''s transfer and hold rows');
SELECT is(pg_temp.code(format('SELECT gifq_transfer(%s, %s, %L, pending => true)',
		pg_temp.id('ana'), pg_temp.id('bob'), '700 PTS')), 'no error',
	'transfer: a hold of exactly the available balance is accepted');

SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('ana'), pg_temp.id('bob'), '0 PTS'),
	'QG104', NULL, 'transfer: a zero amount is QG104');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('ana'), pg_temp.id('bob'), '-5 PTS'),
	'QG104', NULL, 'transfer: a negative amount is QG104');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('ana'), pg_temp.id('ana'), '5 PTS'),
	'QG105', NULL, 'transfer: the same account on both sides is QG105');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('iss'), pg_temp.id('ana'), '1.00 USD'),
	'QG106', NULL, 'transfer: an amount in another currency than both accounts is QG106');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('ana'), pg_temp.id('pay'), '5 PTS'),
	'QG106', NULL, 'transfer: accounts in two currencies are QG106');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('ana'), pg_temp.id('bob'), '701 PTS'),
	'QG107', NULL, 'transfer: debiting a member beyond available is QG107');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L, pending => true)', pg_temp.id('ana'), pg_temp.id('bob'), '701 PTS'),
	'QG107', NULL, 'transfer: holding beyond available is QG107');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('f'), pg_temp.id('pay'), '0.01 USD'),
	'QG107', NULL, 'transfer: debiting unfunded program funding is QG107');
SELECT is(pg_temp.bal(pg_temp.id('ana')), '900 PTS|200 PTS|0 PTS|700 PTS',
	'transfer: refused debits changed nothing');

-- credits_must_not_exceed_debits
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('plain'), pg_temp.id('escrow'), '1.00 USD'),
	'QG108', NULL, 'transfer: crediting an account with credits_must_not_exceed_debits beyond its debits is QG108');
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('escrow'), pg_temp.id('plain'), '5.00 USD'),
	'transfer: that account may be debited');
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('plain'), pg_temp.id('escrow'), '5.00 USD'),
	'transfer: and credited back up to its debits');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('plain'), pg_temp.id('escrow'), '0.01 USD'),
	'QG108', NULL, 'transfer: but not one cent more');
SELECT is(pg_temp.bal(pg_temp.id('plain')), '0.00 USD|0.00 USD|0.00 USD|0.00 USD',
	'transfer: an account without flags went negative and back');
SELECT is(pg_temp.bal(pg_temp.id('wallet')), '0.00 USD|0.00 USD|0.00 USD|0.00 USD',
	'transfer: a new account has zero balances');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('wallet'), pg_temp.id('plain'), '0.01 USD'),
	'QG107', NULL, 'transfer: a custom account with debits_must_not_exceed_credits cannot be overdrawn');

SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('ana'),
		(SELECT id FROM gifq.accounts WHERE program_id = pg_temp.id('q') AND code = 'issuance'), '5 PTS'),
	'QG106', NULL, 'transfer: PTS to a MILES account of another program is QG106');
SELECT pg_temp.keep('r', gifq_create_program('tap-r', 'USD'));
SELECT pg_temp.keep('zed_m', gifq_upsert_member('tap-r', 'zed'));
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('ana'), gifq_account('tap-r', 'zed'), '5 PTS'),
	'QG116', NULL, 'transfer: accounts of two programs are QG116');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', gifq_account('tap-r', NULL, 'funding'),
		pg_temp.id('pay'), '1.00 USD'),
	'QG116', NULL, 'transfer: system accounts of two programs are QG116');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L, timeout => %L)', pg_temp.id('ana'), pg_temp.id('bob'), '5 PTS', '1 hour'),
	'QG117', NULL, 'transfer: a timeout without pending is QG117');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L, pending => true, timeout => %L)', pg_temp.id('ana'), pg_temp.id('bob'), '5 PTS', '0'),
	'QG117', NULL, 'transfer: a zero timeout is QG117');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L, pending => true, timeout => %L)', pg_temp.id('ana'), pg_temp.id('bob'), '5 PTS', '-1 minute'),
	'QG117', NULL, 'transfer: a negative timeout is QG117');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', (SELECT max(id) + 1000 FROM gifq.accounts), pg_temp.id('bob'), '5 PTS'),
	'QG103', NULL, 'transfer: an unknown debit account is QG103');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('ana'), (SELECT max(id) + 1000 FROM gifq.accounts), '5 PTS'),
	'QG103', NULL, 'transfer: an unknown credit account is QG103');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L, metadata => %L)', pg_temp.id('ana'), pg_temp.id('bob'), '5 PTS', '[1, 2]'),
	'QG115', NULL, 'transfer: array metadata is QG115');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L, metadata => %L)', pg_temp.id('ana'), pg_temp.id('bob'), '5 PTS', '"text"'),
	'QG115', NULL, 'transfer: scalar metadata is QG115');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L, metadata => %L)', pg_temp.id('ana'), pg_temp.id('bob'), '5 PTS', 'null'),
	'QG115', NULL, 'transfer: JSON null metadata is QG115');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L, %L)', pg_temp.id('ana'), pg_temp.id('bob'), '5 PTS', ''),
	'QG115', NULL, 'transfer: an empty idempotency key is QG115');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L, %L)', pg_temp.id('ana'), pg_temp.id('bob'), '5 PTS', repeat('k', 201)),
	'QG115', NULL, 'transfer: a 201-character idempotency key is QG115');
SELECT throws_ok(format('SELECT gifq_transfer(NULL, %s, %L)', pg_temp.id('bob'), '5 PTS'),
	'QG115', NULL, 'transfer: a NULL debit account is QG115');
SELECT throws_ok(format('SELECT gifq_transfer(%s, NULL, %L)', pg_temp.id('ana'), '5 PTS'),
	'QG115', NULL, 'transfer: a NULL credit account is QG115');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, NULL)', pg_temp.id('ana'), pg_temp.id('bob')),
	'QG115', NULL, 'transfer: a NULL amount is QG115');
SELECT is(pg_temp.bal(pg_temp.id('ana')) || ' ' || pg_temp.bal(pg_temp.id('bob')),
	'900 PTS|200 PTS|0 PTS|700 PTS 100 PTS|0 PTS|200 PTS|100 PTS',
	'transfer: refused transfers moved nothing');

------------------------------------------------------------------------
-- gifq_post and gifq_void
------------------------------------------------------------------------

SELECT pg_temp.keep('h1_post', gifq_post(pg_temp.id('h1')));
SELECT is(pg_temp.bal(pg_temp.id('ana')), '700 PTS|0 PTS|0 PTS|700 PTS',
	'post: in full, the hold becomes a posted debit');
SELECT is(pg_temp.bal(pg_temp.id('bob')), '300 PTS|0 PTS|0 PTS|300 PTS',
	'post: and a posted credit on the other side');
SELECT results_eq(
	$$SELECT t.kind, t.amount, t.pending_id, t.debit_account_id, t.credit_account_id, h.status, h.resolved_by
	FROM gifq.transfers t JOIN gifq.holds h ON h.transfer_id = t.pending_id
	WHERE t.id = pg_temp.id('h1_post')$$,
	$$VALUES ('post', 200::bigint, pg_temp.id('h1'), pg_temp.id('ana'), pg_temp.id('bob'), 'posted', pg_temp.id('h1_post'))$$,
	'post: the post transfer names the hold, which is posted');

SELECT pg_temp.keep('h2', gifq_transfer(pg_temp.id('ana'), pg_temp.id('bob'), '100 PTS', pending => true));
SELECT pg_temp.keep('h2_post', gifq_post(pg_temp.id('h2'), '40 PTS'));
SELECT is(pg_temp.bal(pg_temp.id('ana')), '660 PTS|0 PTS|0 PTS|660 PTS',
	'post: in part, 40 of 100 is debited and the rest released');
SELECT is(pg_temp.bal(pg_temp.id('bob')), '340 PTS|0 PTS|0 PTS|340 PTS',
	'post: in part, 40 is credited and the pending credit released');
SELECT is((SELECT amount FROM gifq.transfers WHERE id = pg_temp.id('h2_post')), 40::bigint,
	'post: the post transfer records the amount posted');

SELECT throws_ok(format('SELECT gifq_post(%s)', pg_temp.id('earn1')), 'QG110', NULL,
	'post: a posted transfer is not a hold, QG110');
SELECT throws_ok(format('SELECT gifq_post(%s)', pg_temp.id('h1_post')), 'QG110', NULL,
	'post: a post transfer is not a hold, QG110');
SELECT throws_ok('SELECT gifq_post(0)', 'QG110', NULL, 'post: an unknown id is QG110');
SELECT throws_ok('SELECT gifq_post(NULL)', 'QG115', NULL, 'post: a NULL id is QG115');
SELECT throws_ok(format('SELECT gifq_post(%s)', pg_temp.id('h1')), 'QG111', NULL,
	'post: a posted hold again is QG111');
SELECT throws_ok(format('SELECT gifq_post(%s, %L)', pg_temp.id('h2'), '10 PTS'), 'QG111', NULL,
	'post: a partly posted hold again is QG111');
SELECT throws_ok(format('SELECT gifq_void(%s)', pg_temp.id('h1')), 'QG111', NULL,
	'void: a posted hold is QG111');

SELECT pg_temp.keep('h3', gifq_transfer(pg_temp.id('ana'), pg_temp.id('bob'), '60 PTS', pending => true));
SELECT is(pg_temp.bal(pg_temp.id('ana')), '660 PTS|60 PTS|0 PTS|600 PTS', 'void: the hold reserves 60');
SELECT pg_temp.keep('h3_void', gifq_void(pg_temp.id('h3')));
SELECT is(pg_temp.bal(pg_temp.id('ana')), '660 PTS|0 PTS|0 PTS|660 PTS', 'void: releases the debit side');
SELECT is(pg_temp.bal(pg_temp.id('bob')), '340 PTS|0 PTS|0 PTS|340 PTS', 'void: releases the credit side');
SELECT results_eq(
	$$SELECT t.kind, t.amount, t.pending_id, h.status, h.resolved_by
	FROM gifq.transfers t JOIN gifq.holds h ON h.transfer_id = t.pending_id
	WHERE t.id = pg_temp.id('h3_void')$$,
	$$VALUES ('void', 0::bigint, pg_temp.id('h3'), 'voided', pg_temp.id('h3_void'))$$,
	'void: the void transfer names the hold, which is voided');
SELECT throws_ok(format('SELECT gifq_post(%s)', pg_temp.id('h3')), 'QG112', NULL,
	'post: a voided hold is QG112');
SELECT throws_ok(format('SELECT gifq_void(%s)', pg_temp.id('h3')), 'QG112', NULL,
	'void: a voided hold again is QG112');
SELECT throws_ok(format('SELECT gifq_void(%s)', pg_temp.id('earn1')), 'QG110', NULL,
	'void: a posted transfer is not a hold, QG110');
SELECT throws_ok('SELECT gifq_void(0)', 'QG110', NULL, 'void: an unknown id is QG110');
SELECT is(gifq_void(NULL), NULL, 'void: NULL gives NULL');

-- amounts refused by a post
SELECT pg_temp.keep('h6', gifq_transfer(pg_temp.id('ana'), pg_temp.id('bob'), '100 PTS', pending => true));
SELECT throws_ok(format('SELECT gifq_post(%s, %L)', pg_temp.id('h6'), '101 PTS'), 'QG114', NULL,
	'post: more than is held is QG114');
SELECT throws_ok(format('SELECT gifq_post(%s, %L)', pg_temp.id('h6'), '1.00 USD'), 'QG106', NULL,
	'post: an amount in another currency is QG106');
SELECT throws_ok(format('SELECT gifq_post(%s, %L)', pg_temp.id('h6'), '0 PTS'), 'QG104', NULL,
	'post: a zero amount is QG104');
SELECT throws_ok(format('SELECT gifq_post(%s, %L)', pg_temp.id('h6'), '-1 PTS'), 'QG104', NULL,
	'post: a negative amount is QG104');
SELECT is(pg_temp.code(format('SELECT gifq_post(%s, %L)', pg_temp.id('h6'), '100 PTS')), 'no error',
	'post: exactly the held amount is accepted');
SELECT is(pg_temp.bal(pg_temp.id('ana')), '660 PTS|100 PTS|0 PTS|560 PTS',
	'post: refused posts leave the hold as it was');
SELECT lives_ok(format('SELECT gifq_void(%s)', pg_temp.id('h6')), 'void: release it');

-- expiry: the hold's timeout has passed
SELECT pg_temp.keep('h4', gifq_transfer(pg_temp.id('ana'), pg_temp.id('bob'), '10 PTS',
	pending => true, timeout => '1 hour'));
UPDATE gifq.holds SET expires_at = now() - interval '1 second' WHERE transfer_id = pg_temp.id('h4');
SELECT throws_ok(format('SELECT gifq_post(%s)', pg_temp.id('h4')), 'QG113', NULL,
	'post: a hold past its timeout is QG113');
SELECT throws_ok(format('SELECT gifq_post(%s, %L)', pg_temp.id('h4'), '5 PTS'), 'QG113', NULL,
	'post: in part, a hold past its timeout is QG113');
SELECT throws_ok(format('SELECT gifq_void(%s)', pg_temp.id('h4')), 'QG113', NULL,
	'void: a hold past its timeout is QG113');
SELECT is(pg_temp.bal(pg_temp.id('ana')), '660 PTS|10 PTS|0 PTS|650 PTS',
	'expiry: a hold past its timeout keeps its reservation until expired');
-- the same, by the clock: a 20 ms hold, 100 ms later (in one statement,
-- undone whatever happens)
SELECT is(pg_temp.code(format($q$DO $d$ DECLARE h bigint; BEGIN
		h := gifq_transfer(%s, %s, '1 PTS', pending => true, timeout => '20 milliseconds');
		PERFORM pg_sleep(0.1);
		PERFORM gifq_post(h);
	END $d$$q$, pg_temp.id('ana'), pg_temp.id('bob'))), 'QG113',
	'post: a hold whose 20 ms timeout passed on the clock is QG113');

------------------------------------------------------------------------
-- gifq_expire_holds
------------------------------------------------------------------------

SELECT pg_temp.keep('e1', gifq_transfer(pg_temp.id('ana'), pg_temp.id('bob'), '20 PTS',
	pending => true, timeout => '1 hour'));
SELECT pg_temp.keep('e2', gifq_transfer(pg_temp.id('bob'), pg_temp.id('ana'), '30 PTS',
	pending => true, timeout => '1 hour'));
SELECT pg_temp.keep('e3', gifq_transfer(pg_temp.id('ana'), pg_temp.id('bob'), '40 PTS', pending => true));
SELECT pg_temp.keep('e4', gifq_transfer(pg_temp.id('ana'), pg_temp.id('bob'), '50 PTS',
	pending => true, timeout => '1 hour'));
UPDATE gifq.holds SET expires_at = now() - interval '1 minute'
WHERE transfer_id IN (pg_temp.id('e1'), pg_temp.id('e2'));
SELECT is(pg_temp.bal(pg_temp.id('ana')), '660 PTS|120 PTS|30 PTS|540 PTS',
	'expire_holds: before, four holds reserve value on ana');
SELECT is(gifq_expire_holds(), 3, 'expire_holds: returns the number of holds past their timeout');
SELECT is(pg_temp.bal(pg_temp.id('ana')), '660 PTS|90 PTS|0 PTS|570 PTS',
	'expire_holds: the expired holds'' debits and credits are released');
SELECT is(pg_temp.bal(pg_temp.id('bob')), '340 PTS|0 PTS|90 PTS|340 PTS',
	'expire_holds: on both sides');
SELECT results_eq(
	$$SELECT h.transfer_id, h.status, t.kind, t.amount FROM gifq.holds h
	LEFT JOIN gifq.transfers t ON t.id = h.resolved_by
	WHERE h.transfer_id IN (pg_temp.id('h4'), pg_temp.id('e1'), pg_temp.id('e2'),
		pg_temp.id('e3'), pg_temp.id('e4')) ORDER BY h.transfer_id$$,
	$$VALUES (pg_temp.id('h4'), 'expired', 'expire', 0::bigint),
		(pg_temp.id('e1'), 'expired', 'expire', 0::bigint),
		(pg_temp.id('e2'), 'expired', 'expire', 0::bigint),
		(pg_temp.id('e3'), 'pending', NULL, NULL),
		(pg_temp.id('e4'), 'pending', NULL, NULL)$$,
	'expire_holds: status expired and an expire transfer for each, others untouched');
SELECT is(gifq_expire_holds(), 0, 'expire_holds: a second run finds nothing');
SELECT throws_ok(format('SELECT gifq_post(%s)', pg_temp.id('e1')), 'QG113', NULL,
	'post: an expired hold is QG113');
SELECT throws_ok(format('SELECT gifq_void(%s)', pg_temp.id('e2')), 'QG113', NULL,
	'void: an expired hold is QG113');
SELECT lives_ok(format('SELECT gifq_void(%s), gifq_void(%s)', pg_temp.id('e3'), pg_temp.id('e4')),
	'expire_holds: release the others');

------------------------------------------------------------------------
-- gifq_transfers (batch)
------------------------------------------------------------------------

CREATE TEMP TABLE batch (ids bigint[]);
INSERT INTO batch SELECT gifq_transfers(jsonb_build_array(
	jsonb_build_object('debit_account', pg_temp.id('iss'), 'credit_account', pg_temp.id('ana'),
		'amount', '5 PTS', 'idempotency_key', 'b1', 'metadata', jsonb_build_object('n', 1)),
	jsonb_build_object('debit_account', pg_temp.id('ana'), 'credit_account', pg_temp.id('bob'),
		'amount', '3 PTS', 'pending', true, 'timeout', '10 minutes', 'idempotency_key', 'b2')));
SELECT is((SELECT cardinality(ids) FROM batch), 2, 'transfers: two ids for two transfers');
SELECT results_eq(
	$$SELECT t.idempotency_key, t.kind, t.amount, t.timeout, t.metadata
	FROM batch, unnest(ids) WITH ORDINALITY u(id, n) JOIN gifq.transfers t ON t.id = u.id ORDER BY n$$,
	$$VALUES ('b1', 'posted', 5::bigint, NULL::interval, '{"n": 1}'::jsonb),
		('b2', 'pending', 3::bigint, interval '10 minutes', '{}'::jsonb)$$,
	'transfers: ids in the order of the batch, each transfer as described');
SELECT is(pg_temp.bal(pg_temp.id('ana')), '665 PTS|3 PTS|0 PTS|662 PTS',
	'transfers: both transfers moved ana''s balances');
SELECT is(gifq_transfers(jsonb_build_array(
	jsonb_build_object('debit_account', pg_temp.id('iss'), 'credit_account', pg_temp.id('ana'),
		'amount', '5 PTS', 'idempotency_key', 'b1', 'metadata', jsonb_build_object('n', 1)),
	jsonb_build_object('debit_account', pg_temp.id('ana'), 'credit_account', pg_temp.id('bob'),
		'amount', '3 PTS', 'pending', true, 'timeout', '10 minutes', 'idempotency_key', 'b2'))),
	(SELECT ids FROM batch), 'transfers: a replayed batch returns the same ids');
SELECT is(pg_temp.bal(pg_temp.id('ana')), '665 PTS|3 PTS|0 PTS|662 PTS',
	'transfers: a replayed batch moves nothing');

-- all or nothing
SELECT throws_ok(format('SELECT gifq_transfers(%L)', jsonb_build_array(
	jsonb_build_object('debit_account', pg_temp.id('iss'), 'credit_account', pg_temp.id('ana'),
		'amount', '7 PTS', 'idempotency_key', 'b3'),
	jsonb_build_object('debit_account', pg_temp.id('bob'), 'credit_account', pg_temp.id('ana'),
		'amount', '100000 PTS'))), 'QG107', NULL,
	'transfers: a batch whose second transfer overdraws is QG107');
SELECT is(pg_temp.bal(pg_temp.id('ana')), '665 PTS|3 PTS|0 PTS|662 PTS',
	'transfers: the failed batch''s first transfer is undone');
SELECT is((SELECT count(*) FROM gifq.transfers WHERE idempotency_key = 'b3'), 0::bigint,
	'transfers: and left no transfer row');

SELECT throws_ok($$SELECT gifq_transfers('{"debit_account": 1}')$$, 'QG118', NULL,
	'transfers: an object instead of an array is QG118');
SELECT throws_ok($$SELECT gifq_transfers('"x"')$$, 'QG118', NULL, 'transfers: a string is QG118');
SELECT throws_ok($$SELECT gifq_transfers('[]')$$, 'QG118', NULL, 'transfers: an empty array is QG118');
SELECT throws_ok($$SELECT gifq_transfers(NULL)$$, 'QG118', NULL, 'transfers: NULL is QG118');
SELECT throws_ok($$SELECT gifq_transfers('[1]')$$, 'QG118', NULL, 'transfers: an element that is not an object is QG118');
SELECT throws_ok(format('SELECT gifq_transfers(%L)', jsonb_build_array(jsonb_build_object(
		'debit_account', pg_temp.id('ana'), 'credit_account', pg_temp.id('bob')))),
	'QG118', NULL, 'transfers: a missing amount is QG118');
SELECT throws_ok(format('SELECT gifq_transfers(%L)', jsonb_build_array(jsonb_build_object(
		'credit_account', pg_temp.id('bob'), 'amount', '1 PTS'))),
	'QG118', NULL, 'transfers: a missing debit account is QG118');
SELECT throws_ok(format('SELECT gifq_transfers(%L)', jsonb_build_array(jsonb_build_object(
		'debit_account', pg_temp.id('ana'), 'credit_account', pg_temp.id('bob'), 'amount', '1 PTS',
		'memo', 'x'))),
	'QG118', NULL, 'transfers: an unknown field is QG118');
SELECT throws_ok(format('SELECT gifq_transfers(%L)', jsonb_build_array(jsonb_build_object(
		'debit_account', pg_temp.id('ana')::text, 'credit_account', pg_temp.id('bob'), 'amount', '1 PTS'))),
	'QG118', NULL, 'transfers: an account as a string is QG118');
SELECT throws_ok(format('SELECT gifq_transfers(%L)', jsonb_build_array(jsonb_build_object(
		'debit_account', pg_temp.id('ana'), 'credit_account', pg_temp.id('bob'), 'amount', 1))),
	'QG118', NULL, 'transfers: an amount as a number is QG118');
SELECT throws_ok(format('SELECT gifq_transfers(%L)', jsonb_build_array(jsonb_build_object(
		'debit_account', pg_temp.id('ana'), 'credit_account', pg_temp.id('bob'), 'amount', '1 PTS',
		'pending', 'maybe'))),
	'QG118', NULL, 'transfers: pending that is not a boolean is QG118');
SELECT throws_ok(format('SELECT gifq_transfers(%L)', jsonb_build_array(jsonb_build_object(
		'debit_account', pg_temp.id('ana'), 'credit_account', pg_temp.id('bob'), 'amount', '1 PTS',
		'pending', true, 'timeout', 'soon'))),
	'QG118', NULL, 'transfers: a timeout that is not an interval is QG118');
SELECT is(pg_temp.code(format('SELECT gifq_transfers(%L)', jsonb_build_array(jsonb_build_object(
		'debit_account', pg_temp.id('ana') + 0.5, 'credit_account', pg_temp.id('bob'), 'amount', '1 PTS')))),
	'QG118', 'transfers: a fractional account id is QG118');
SELECT is(pg_temp.code(format('SELECT gifq_transfers(%L)', jsonb_build_array(jsonb_build_object(
		'debit_account', pg_temp.id('ana'), 'credit_account', pg_temp.id('bob'), 'amount', 'ten points')))),
	'QG118', 'transfers: an amount that is not a gifq_money is QG118');
SELECT is(pg_temp.bal(pg_temp.id('ana')), '665 PTS|3 PTS|0 PTS|662 PTS',
	'transfers: refused batches moved nothing');

------------------------------------------------------------------------
-- gifq_fund and gifq_program_balance
------------------------------------------------------------------------

SELECT pg_temp.keep('dep1', gifq_fund('tap-p', '500.00 USD', 'dep-1'));
SELECT is(pg_temp.bal(pg_temp.id('f')), '500.00 USD|0.00 USD|0.00 USD|500.00 USD',
	'fund: funding gains the amount');
SELECT is(pg_temp.bal(pg_temp.id('s')), '-500.00 USD|0.00 USD|0.00 USD|-500.00 USD',
	'fund: settlement goes negative by it');
SELECT results_eq(
	$$SELECT debit_account_id, credit_account_id, kind FROM gifq.transfers WHERE id = pg_temp.id('dep1')$$,
	$$VALUES (pg_temp.id('s'), pg_temp.id('f'), 'posted')$$,
	'fund: a posted transfer from settlement to funding');
SELECT is(gifq_fund('tap-p', '500.00 USD', 'dep-1'), pg_temp.id('dep1'), 'fund: a replay returns the same id');
SELECT is(pg_temp.bal(pg_temp.id('f')), '500.00 USD|0.00 USD|0.00 USD|500.00 USD',
	'fund: a replay adds nothing');
SELECT throws_ok($$SELECT gifq_fund('tap-p', '400.00 USD', 'dep-1')$$, 'QG109', NULL,
	'fund: the same key with another amount is QG109');
SELECT isnt(gifq_fund('tap-p', '500.00 USD', 'dep-2'), pg_temp.id('dep1'), 'fund: another key is another deposit');
SELECT is(pg_temp.bal(pg_temp.id('f')), '1000.00 USD|0.00 USD|0.00 USD|1000.00 USD',
	'fund: which adds up');
SELECT throws_ok($$SELECT gifq_fund('tap-p', '1.00 USD', NULL)$$, 'QG115', NULL,
	'fund: no key is QG115');
SELECT throws_ok($$SELECT gifq_fund('tap-nope', '1.00 USD', 'dep-x')$$, 'QG101', NULL,
	'fund: an unknown program is QG101');
SELECT throws_ok($$SELECT gifq_fund('tap-p', '0.00 USD', 'dep-x')$$, 'QG104', NULL,
	'fund: a zero amount is QG104');
SELECT lives_ok($$SELECT gifq_fund('tap-p', '50.00 EUR', 'dep-eur')$$, 'fund: in another currency');
SELECT is(pg_temp.bal(pg_temp.id('f_eur')), '50.00 EUR|0.00 EUR|0.00 EUR|50.00 EUR',
	'fund: credits the funding account in that currency');
SELECT is(pg_temp.bal(pg_temp.id('f')), '1000.00 USD|0.00 USD|0.00 USD|1000.00 USD',
	'fund: and leaves the other currency alone');

SELECT is((SELECT format('%s|%s', posted, available) FROM gifq_program_balance('tap-p')),
	'1000.00 USD|1000.00 USD', 'program_balance: defaults to the program currency');
SELECT is((SELECT format('%s|%s', posted, available) FROM gifq_program_balance('tap-p', 'EUR')),
	'50.00 EUR|50.00 EUR', 'program_balance: in another funded currency');
SELECT is((SELECT format('%s|%s|%s|%s', posted, pending_debits, pending_credits, available)
	FROM gifq_program_balance('tap-p', 'JPY')), '0 JPY|0 JPY|0 JPY|0 JPY',
	'program_balance: zero in a currency never funded');
SELECT is((SELECT count(*) FROM gifq.accounts WHERE program_id = pg_temp.id('p') AND currency = 'JPY'),
	0::bigint, 'program_balance: asking creates no account');
SELECT throws_ok($$SELECT gifq_program_balance('tap-p', 'yen')$$, 'QG004', NULL,
	'program_balance: a bad currency is QG004');
SELECT throws_ok($$SELECT gifq_program_balance('tap-nope')$$, 'QG101', NULL,
	'program_balance: an unknown program is QG101');

------------------------------------------------------------------------
-- gifq_set_low_balance and balance.low
------------------------------------------------------------------------

SELECT pg_temp.keep('lo', gifq_create_program('tap-low', 'USD'));
SELECT pg_temp.keep('lo_f', gifq_account('tap-low', NULL, 'funding'));
SELECT pg_temp.keep('lo_pay', gifq_account('tap-low', NULL, 'payable'));
CREATE FUNCTION pg_temp.lows() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM gifq.outbox WHERE program_id = pg_temp.id('lo') AND event_type = 'balance.low'
$$;
SELECT lives_ok($$SELECT gifq_fund('tap-low', '100.00 USD', 'lo-1')$$, 'low balance: fund 100.00');
SELECT lives_ok($$SELECT gifq_set_low_balance('tap-low', '50.00 USD')$$, 'low balance: level 50.00');
SELECT is((SELECT low_balance FROM gifq.accounts WHERE id = pg_temp.id('lo_f')), 5000::bigint,
	'low balance: the level is stored on the funding account');
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('lo_f'), pg_temp.id('lo_pay'), '50.00 USD'),
	'low balance: spend down to exactly the level');
SELECT is(pg_temp.lows(), 0::bigint, 'low balance: no event at the level');
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('lo_f'), pg_temp.id('lo_pay'), '10.00 USD'),
	'low balance: spend below the level');
SELECT is(pg_temp.lows(), 1::bigint, 'low balance: one balance.low event on crossing');
SELECT is((SELECT payload FROM gifq.outbox WHERE program_id = pg_temp.id('lo') AND event_type = 'balance.low'),
	jsonb_build_object('program', 'tap-low', 'account', pg_temp.id('lo_f'), 'currency', 'USD',
		'available', '40.00 USD', 'level', '50.00 USD'),
	'low balance: the payload');
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('lo_f'), pg_temp.id('lo_pay'), '5.00 USD'),
	'low balance: spend more while below');
SELECT lives_ok(format('SELECT gifq_void(gifq_transfer(%s, %s, %L, pending => true))', pg_temp.id('lo_f'), pg_temp.id('lo_pay'), '5.00 USD'),
	'low balance: hold and void while below');
SELECT is(pg_temp.lows(), 1::bigint, 'low balance: no second event while still below');
SELECT lives_ok($$SELECT gifq_fund('tap-low', '20.00 USD', 'lo-2')$$, 'low balance: fund back to the level (55.00)');
SELECT is(pg_temp.lows(), 1::bigint, 'low balance: rising fires nothing');
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L, pending => true)', pg_temp.id('lo_f'), pg_temp.id('lo_pay'), '10.00 USD'),
	'low balance: a hold takes available below the level again');
SELECT is(pg_temp.lows(), 2::bigint, 'low balance: fires again after rising and crossing again');
SELECT throws_ok($$SELECT gifq_set_low_balance('tap-low', '-1.00 USD')$$, 'QG115', NULL,
	'low balance: a negative level is QG115');
SELECT throws_ok($$SELECT gifq_set_low_balance('tap-nope', '1.00 USD')$$, 'QG101', NULL,
	'low balance: an unknown program is QG101');

------------------------------------------------------------------------
-- gifq_member_balance
------------------------------------------------------------------------

SELECT is((SELECT format('%s|%s|%s|%s', posted, pending_debits, pending_credits, available)
	FROM gifq_member_balance('tap-p', 'ana')), pg_temp.bal(pg_temp.id('ana')),
	'member_balance: the member''s points account');
SELECT is((SELECT format('%s|%s', posted, available) FROM gifq_member_balance('tap-p', 'ana')),
	'665 PTS|662 PTS', 'member_balance: its values');
SELECT is((SELECT format('%s|%s', posted, available) FROM gifq_member_balance('tap-q', 'mia')),
	'0 MILES|0 MILES', 'member_balance: in the program''s points code');
SELECT throws_ok($$SELECT gifq_member_balance('tap-p', 'nobody')$$, 'QG102', NULL,
	'member_balance: an unknown member is QG102');
SELECT throws_ok($$SELECT gifq_member_balance('tap-nope', 'ana')$$, 'QG101', NULL,
	'member_balance: an unknown program is QG101');
SELECT throws_ok($$SELECT gifq_balance(-1)$$, 'QG103', NULL, 'balance: an unknown account is QG103');

------------------------------------------------------------------------
-- gifq_balance_at
------------------------------------------------------------------------

SELECT pg_temp.keep('cleo_m', gifq_upsert_member('tap-p', 'cleo'));
SELECT pg_temp.keep('cleo', gifq_account('tap-p', 'cleo'));
SELECT pg_temp.mark('t0');
SELECT pg_temp.keep('c1', gifq_transfer(pg_temp.id('iss'), pg_temp.id('cleo'), '50 PTS'));
SELECT pg_temp.mark('t1');
SELECT pg_temp.keep('c2', gifq_transfer(pg_temp.id('cleo'), pg_temp.id('ana'), '20 PTS', pending => true));
SELECT pg_temp.mark('t2');
SELECT pg_temp.keep('c3', gifq_post(pg_temp.id('c2'), '15 PTS'));
SELECT pg_temp.mark('t3');
SELECT pg_temp.keep('c4', gifq_transfer(pg_temp.id('cleo'), pg_temp.id('bob'), '35 PTS'));
SELECT is(pg_temp.bal_at(pg_temp.id('cleo'), '-infinity'), '0 PTS|0 PTS|0 PTS|0 PTS',
	'balance_at: zero before the account existed');
SELECT is(pg_temp.bal_at(pg_temp.id('cleo'), pg_temp.at('t0')), '0 PTS|0 PTS|0 PTS|0 PTS',
	'balance_at: zero before the first transfer');
SELECT is(pg_temp.bal_at(pg_temp.id('cleo'), pg_temp.at('t1')), '50 PTS|0 PTS|0 PTS|50 PTS',
	'balance_at: after the first transfer');
SELECT is(pg_temp.bal_at(pg_temp.id('cleo'), pg_temp.at('t2')), '50 PTS|20 PTS|0 PTS|30 PTS',
	'balance_at: with a hold open');
SELECT is(pg_temp.bal_at(pg_temp.id('cleo'), pg_temp.at('t3')), '35 PTS|0 PTS|0 PTS|35 PTS',
	'balance_at: after the hold was posted in part');
SELECT is(pg_temp.bal_at(pg_temp.id('cleo'), clock_timestamp()), '0 PTS|0 PTS|0 PTS|0 PTS',
	'balance_at: now, after the last transfer');
SELECT is(pg_temp.bal_at(pg_temp.id('cleo'), 'infinity'), pg_temp.bal(pg_temp.id('cleo')),
	'balance_at: at infinity equals the balance now');
SELECT is(pg_temp.bal_at(pg_temp.id('iss'), pg_temp.at('t0')), '-1005 PTS|0 PTS|0 PTS|-1005 PTS',
	'balance_at: a multi-slot account, before');
SELECT is(pg_temp.bal_at(pg_temp.id('iss'), pg_temp.at('t1')), '-1055 PTS|0 PTS|0 PTS|-1055 PTS',
	'balance_at: a multi-slot account, after');
SELECT throws_ok($$SELECT gifq_balance_at(-1, now())$$, 'QG103', NULL,
	'balance_at: an unknown account is QG103');

------------------------------------------------------------------------
-- balance slots: a short slot is topped up by gifq.rebalance
------------------------------------------------------------------------

SELECT pg_temp.keep('hot', gifq_create_program('tap-hot', 'USD'));
SELECT pg_temp.keep('hot_f', gifq_account('tap-hot', NULL, 'funding'));
SELECT pg_temp.keep('hot_pay', gifq_account('tap-hot', NULL, 'payable'));
SELECT lives_ok($$SELECT gifq_fund('tap-hot', '100.00 USD', 'hot-1')$$, 'slots: fund 100.00');
SELECT is((SELECT count(*) FROM pg_temp.rooms(pg_temp.id('hot_f')) r WHERE r > 0), 1::bigint,
	'slots: the funding lands on one slot');
-- spread the funding over all 16 slots (what concurrent sessions' debits
-- and earlier rebalances leave behind): 6.25 each
SELECT is(gifq.spread_slots(pg_temp.id('hot_f')), true, 'slots: spread_slots spreads the room');
SELECT is(array_agg(r), array_fill(625::bigint, ARRAY[16]), 'slots: 6.25 in each of 16 slots')
FROM pg_temp.rooms(pg_temp.id('hot_f')) r;
SELECT is(pg_temp.bal(pg_temp.id('hot_f')), '100.00 USD|0.00 USD|0.00 USD|100.00 USD',
	'slots: a rebalance leaves the account''s balance as it was');
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('hot_f'), pg_temp.id('hot_pay'), '60.00 USD'),
	'slots: a debit of 60.00, far more than the session''s slot holds, succeeds');
SELECT is(pg_temp.bal(pg_temp.id('hot_f')), '40.00 USD|0.00 USD|0.00 USD|40.00 USD', 'slots: 40.00 left');
SELECT lives_ok(format('SELECT pg_temp.keep(%L, gifq_transfer(%s, %s, %L, pending => true))', 'hot_h',
		pg_temp.id('hot_f'), pg_temp.id('hot_pay'), '30.00 USD'),
	'slots: a hold of 30.00 needing another rebalance succeeds');
SELECT is(pg_temp.bal(pg_temp.id('hot_f')), '40.00 USD|30.00 USD|0.00 USD|10.00 USD', 'slots: 10.00 available');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('hot_f'), pg_temp.id('hot_pay'), '10.01 USD'),
	'QG107', NULL, 'slots: a debit of one cent more than the whole account holds is QG107');
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('hot_f'), pg_temp.id('hot_pay'), '10.00 USD'),
	'slots: a debit of exactly what is left succeeds');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('hot_f'), pg_temp.id('hot_pay'), '0.01 USD'),
	'QG107', NULL, 'slots: the account is empty: QG107');
SELECT is(pg_temp.bal(pg_temp.id('hot_f')), '30.00 USD|30.00 USD|0.00 USD|0.00 USD', 'slots: nothing available');
-- gifq.rebalance for more than the whole account: its first attempt ends
-- in QG199, raised and caught inside (test/specs/ledger_rebalance_wait.spec
-- shows the wait for busy slots that follows), and the call says no
-- without moving any room
SELECT is(gifq.rebalance(pg_temp.id('hot_f'), 0, 1, true), false,
	'slots: rebalance for a cent more than the account holds ends its first attempt in QG199 and says no');
SELECT is((SELECT sum(r) FROM pg_temp.rooms(pg_temp.id('hot_f')) r), 0::numeric,
	'slots: the refused rebalance moved no room');
SELECT lives_ok(format('SELECT gifq_post(%s, %L)', pg_temp.id('hot_h'), '12.00 USD'),
	'slots: the hold is posted in part on its own slot');
SELECT is(pg_temp.bal(pg_temp.id('hot_f')), '18.00 USD|0.00 USD|0.00 USD|18.00 USD', 'slots: 18.00 back');
SELECT is((SELECT count(*) FROM pg_temp.rooms(pg_temp.id('hot_f')) r WHERE r < 0), 0::bigint,
	'slots: no slot is overdrawn');
SELECT is((SELECT sum(r) FROM pg_temp.rooms(pg_temp.id('hot_f')) r), 1800::numeric,
	'slots: the slots'' room adds up to the available balance');
SELECT is(pg_temp.bal(pg_temp.id('hot_pay')), '82.00 USD|0.00 USD|0.00 USD|82.00 USD',
	'slots: payable received every debit');
SELECT cmp_ok((SELECT count(*) FROM gifq.entries WHERE account_id = pg_temp.id('hot_f') AND transfer_id IS NULL),
	'>', 16::bigint, 'slots: the rebalances wrote history entries for the moved slots, beyond the 16 of the spread');
SELECT is(pg_temp.bal_at(pg_temp.id('hot_f'), clock_timestamp()), pg_temp.bal(pg_temp.id('hot_f')),
	'slots: balance_at after the rebalances equals the balance');
-- within a transaction (this suite is one) a slot is looked for first
-- where the transaction last wrote it (src/slots.c); a version written by
-- a subtransaction that rolled back is not taken for it
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('hot_f'), pg_temp.id('hot_pay'), '1.00 USD'),
	'slots: a debit of 1.00');
SAVEPOINT own_version;
SELECT gifq_transfer(pg_temp.id('hot_f'), pg_temp.id('hot_pay'), '2.00 USD');
ROLLBACK TO SAVEPOINT own_version;
SELECT lives_ok(format('SELECT gifq_transfer(%s, %s, %L)', pg_temp.id('hot_f'), pg_temp.id('hot_pay'), '4.00 USD'),
	'slots: a debit of 4.00 after a debit of 2.00 rolled back');
SELECT is(pg_temp.bal(pg_temp.id('hot_f')), '13.00 USD|0.00 USD|0.00 USD|13.00 USD',
	'slots: the rolled-back debit left no trace in the balance');
SELECT is((SELECT sum(r) FROM pg_temp.rooms(pg_temp.id('hot_f')) r), 1300::numeric,
	'slots: nor in the slots'' room');
SELECT is(pg_temp.bal(pg_temp.id('hot_pay')), '87.00 USD|0.00 USD|0.00 USD|87.00 USD',
	'slots: payable received 1.00 and 4.00');

------------------------------------------------------------------------
-- gifq_ledger_verify
------------------------------------------------------------------------

SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'verify: no problem after everything above');

-- corrupt one slot of ana's account
UPDATE gifq.account_slots SET credits_posted = credits_posted + 7 WHERE account_id = pg_temp.id('ana');
SELECT cmp_ok((SELECT count(*) FROM gifq_ledger_verify() WHERE account = pg_temp.id('ana')), '>=', 1::bigint,
	'verify: a slot changed behind the ledger''s back is reported for its account');
SELECT is((SELECT count(*) FROM gifq_ledger_verify() WHERE account IS NULL AND problem LIKE 'currency PTS:%'),
	1::bigint, 'verify: and PTS no longer balances');
SELECT is((SELECT count(*) FROM gifq_ledger_verify() WHERE account IS DISTINCT FROM pg_temp.id('ana')
	AND account IS NOT NULL), 0::bigint, 'verify: no other account is blamed');
UPDATE gifq.account_slots SET credits_posted = credits_posted - 7 WHERE account_id = pg_temp.id('ana');
SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'verify: clean again once repaired');

-- a hold whose state disagrees with its transfers
UPDATE gifq.holds SET status = 'pending' WHERE transfer_id = pg_temp.id('h1');
SELECT is((SELECT count(*) FROM gifq_ledger_verify() WHERE account = pg_temp.id('h1')), 1::bigint,
	'verify: a posted hold marked pending is reported');
UPDATE gifq.holds SET status = 'posted' WHERE transfer_id = pg_temp.id('h1');

-- a limit broken in the balances themselves (both slot and history)
UPDATE gifq.account_slots SET debits_posted = debits_posted + 100000 WHERE account_id = pg_temp.id('bob');
SELECT cmp_ok((SELECT count(*) FROM gifq_ledger_verify() WHERE account = pg_temp.id('bob')
	AND problem LIKE '%debits_must_not_exceed_credits%'), '>=', 1::bigint,
	'verify: an overdrawn member account is reported');
UPDATE gifq.account_slots SET debits_posted = debits_posted - 100000 WHERE account_id = pg_temp.id('bob');
SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'verify: clean again');

------------------------------------------------------------------------
-- transfers and entries are immutable
------------------------------------------------------------------------

SELECT throws_ok(format('UPDATE gifq.transfers SET amount = amount + 1 WHERE id = %s', pg_temp.id('earn1')),
	'QG120', NULL, 'immutable: UPDATE of gifq.transfers is QG120');
SELECT throws_ok(format('DELETE FROM gifq.transfers WHERE id = %s', pg_temp.id('c4')),
	'QG120', NULL, 'immutable: DELETE of gifq.transfers is QG120');
SELECT throws_ok('TRUNCATE gifq.transfers CASCADE', 'QG120', NULL,
	'immutable: TRUNCATE of gifq.transfers is QG120');
SELECT throws_ok(format('UPDATE gifq.entries SET credits_posted = 0 WHERE account_id = %s', pg_temp.id('ana')),
	'QG120', NULL, 'immutable: UPDATE of gifq.entries is QG120');
SELECT throws_ok(format('DELETE FROM gifq.entries WHERE account_id = %s', pg_temp.id('ana')),
	'QG120', NULL, 'immutable: DELETE of gifq.entries is QG120');
SELECT throws_ok('TRUNCATE gifq.entries', 'QG120', NULL, 'immutable: TRUNCATE of gifq.entries is QG120');
SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'verify: still clean at the end');

SELECT * FROM finish();
ROLLBACK;
