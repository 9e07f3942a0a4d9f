-- attack_input.sql: pgTAP suite, the hostile-input half of the attack
-- suite (issue 8): forged, stale, replayed and malformed provider webhooks;
-- wrong claim tokens by the thousand; oversized and malformed JSON in
-- every jsonb argument of the API.  Every attempt is refused with its
-- SQLSTATE and changes nothing (a fingerprint of every gifq table is
-- compared before and after); a replayed webhook is applied once.
-- SQLSTATEs:
--   QG404 webhook body not an event     QG405 webhook signature refused
--   QG501 claim token not recognised    QG115 invalid parameter (limits,
--   QG118 invalid batch element               cohort, attributes, metadata)
--   QG217 invalid catalog               QG740 post or void of a hold that
--                                             belongs to an order or reward
-- The test cluster sets gifq.webhook_secret = 'whsec-test' and
-- gifq.webhook_secret_previous = 'whsec-old' (scripts/test.sh).
-- Everything runs in one transaction, rolled back at the end.
BEGIN;
SELECT plan(48);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
CREATE EXTENSION IF NOT EXISTS pgcrypto;

------------------------------------------------------------------------
-- Helpers and a program to attack
------------------------------------------------------------------------

-- X-Gifq-Signature for body: HMAC-SHA256 of "<t>.<body>" under secret,
-- with t the current second plus skew.  Away from the end of a second, so
-- the check sees the same second.
CREATE FUNCTION pg_temp.sig(body text, secret text DEFAULT 'whsec-test', skew integer DEFAULT 0)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE t bigint;
BEGIN
	IF extract(epoch FROM clock_timestamp()) % 1 > 0.8 THEN
		PERFORM pg_sleep(0.25);
	END IF;
	t := floor(extract(epoch FROM clock_timestamp()))::bigint + skew;
	RETURN 't=' || t || ',v1=' || encode(hmac(t || '.' || body, secret, 'sha256'), 'hex');
END $$;

-- the SQLSTATE a statement raises, or 'ok'
CREATE FUNCTION pg_temp.state_of(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE st text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
	RETURN st;
END $$;

-- a fingerprint of everything gifq stores: each table's rows, hashed
CREATE FUNCTION pg_temp.fingerprint() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	t regclass;
	h text;
	acc text := '';
BEGIN
	FOR t IN SELECT c.oid FROM pg_class c
		WHERE c.relnamespace = 'gifq'::regnamespace AND c.relkind IN ('r', 'p')
		ORDER BY c.relname
	LOOP
		EXECUTE format('SELECT md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %s x',
			E'\n', '', t) INTO h;
		acc := acc || t::text || ':' || h || ' ';
	END LOOP;
	RETURN md5(acc);
END $$;

\o /dev/null
SELECT gifq_create_program('atk', 'USD', 'PTS', 100, 'UTC');
SELECT gifq_upsert_member('atk', 'm1', 'm1@example.com', 'US', '{"team": "a"}');
SELECT gifq_fund('atk', '1000.00 USD', 'atk-fund');
SELECT gifq_set_rule('atk', 'done', 10);
SELECT gifq_catalog_load('{"brands": [
	{"id": "amazon-us", "name": "Amazon", "country": "US", "currency": "USD",
	 "categories": ["retail"], "denominations": [10, 25], "discount_pct": 3.0, "in_stock": true}]}');
\o
CREATE TEMP TABLE tok AS
	SELECT reward_id, claim_token AS token FROM gifq_send_reward('atk', 'r@example.com', '25.00 USD', 'atk-w1');

------------------------------------------------------------------------
-- Webhooks: forged, wrong body, stale, replayed, malformed
------------------------------------------------------------------------

SELECT pg_temp.fingerprint() AS before \gset

SELECT throws_ok(format('SELECT gifq_provider_webhook(%L, %L)', '{"id": "evt-a1", "type": "catalog.updated"}',
		't=' || floor(extract(epoch FROM now()))::bigint || ',v1=' || encode(gen_random_bytes(32), 'hex')),
	'QG405', NULL, 'webhook: a forged signature (random v1) is QG405');
SELECT throws_ok(format('SELECT gifq_provider_webhook(%L, %L)', '{"id": "evt-a1", "type": "catalog.updated"}',
		pg_temp.sig('{"id": "evt-a1", "type": "catalog.updated"}', 'whsec-guess')),
	'QG405', 'webhook refused: signature does not match the body',
	'webhook: a signature under a guessed secret is QG405');
SELECT throws_ok(format('SELECT gifq_provider_webhook(%L, %L)', '{"id": "evt-a1", "type": "order.failed"}',
		pg_temp.sig('{"id": "evt-a1", "type": "catalog.updated"}')),
	'QG405', 'webhook refused: signature does not match the body',
	'webhook: the right signature over a different body is QG405');
SELECT throws_ok(format('SELECT gifq_provider_webhook(%L, %L)', '{"id": "evt-a1", "type": "catalog.updated"}',
		pg_temp.sig('{"id": "evt-a1", "type": "catalog.updated"}', 'whsec-test', -301)),
	'QG405', NULL, 'webhook: a correct signature 301 s old (beyond the 300 s tolerance) is QG405');
SELECT throws_ok(format('SELECT gifq_provider_webhook(%L, %L)', '{"id": "evt-a1", "type": "catalog.updated"}',
		pg_temp.sig('{"id": "evt-a1", "type": "catalog.updated"}', 'whsec-test', 301)),
	'QG405', NULL, 'webhook: a correct signature 301 s in the future is QG405');
SELECT throws_ok($$SELECT gifq_provider_webhook('{"id": "evt-a1", "type": "catalog.updated"}', NULL)$$,
	'QG405', NULL, 'webhook: no signature is QG405');
SELECT throws_ok(format('SELECT gifq_provider_webhook(NULL, %L)', pg_temp.sig('')),
	'QG405', NULL, 'webhook: no body is QG405');
-- malformed headers, each with a valid HMAC somewhere in it where possible
SELECT is((SELECT string_agg(h || ' -> ' || s, '; ') FROM (
	SELECT h, pg_temp.state_of(format('SELECT gifq_provider_webhook(%L, %L)',
		'{"id": "evt-a1", "type": "catalog.updated"}', h)) AS s
	FROM unnest(ARRAY[
		'', ' ', 'garbage', 't=', 'v1=', 't=,v1=',
		't=abc,v1=' || repeat('a', 64),
		't=1e3,v1=' || repeat('a', 64),
		't=' || floor(extract(epoch FROM now()))::bigint || ',v1=' || repeat('a', 63),
		't=' || floor(extract(epoch FROM now()))::bigint || ',v1=' || repeat('g', 64),
		't=' || floor(extract(epoch FROM now()))::bigint || ',v1=' || repeat('a', 65),
		't=99999999999999999999999,v1=' || repeat('a', 64),
		't=-1,v1=' || repeat('a', 64),
		't=' || floor(extract(epoch FROM now()))::bigint || ',v0=' || repeat('a', 64),
		replace(pg_temp.sig('{"id": "evt-a1", "type": "catalog.updated"}'), 'v1=', 'v1= '),
		upper(pg_temp.sig('{"id": "evt-a1", "type": "catalog.updated"}')),
		repeat('t=1,', 20000) || 'v1=' || repeat('a', 64),
		'''; DROP TABLE gifq.orders; --'
	]) h) x WHERE s <> 'QG405'), NULL,
	'webhook: 18 malformed signature headers (empty, bad t, short, long or non-hex v1, 80 kB) are all QG405');
SELECT is(pg_temp.fingerprint(), :'before', 'webhook: the refusals changed nothing');

-- replay: the same signed event three times (the third under the
-- previous secret, still valid during a rotation) is applied once
SELECT is(gifq_provider_webhook('{"id": "evt-rp", "type": "order.failed", "data": {"reference_id": "gifq-ord-999999"}}',
		pg_temp.sig('{"id": "evt-rp", "type": "order.failed", "data": {"reference_id": "gifq-ord-999999"}}')),
	'unknown order gifq-ord-999999', 'webhook replay: the first delivery is applied');
SELECT pg_temp.fingerprint() AS applied \gset
SELECT is(gifq_provider_webhook('{"id": "evt-rp", "type": "order.failed", "data": {"reference_id": "gifq-ord-999999"}}',
		pg_temp.sig('{"id": "evt-rp", "type": "order.failed", "data": {"reference_id": "gifq-ord-999999"}}')),
	'duplicate event evt-rp: unknown order gifq-ord-999999', 'webhook replay: the second is a duplicate');
SELECT is(gifq_provider_webhook('{"id": "evt-rp", "type": "catalog.updated"}',
		pg_temp.sig('{"id": "evt-rp", "type": "catalog.updated"}', 'whsec-old')),
	'duplicate event evt-rp: unknown order gifq-ord-999999',
	'webhook replay: the same id with another type, signed with the previous secret, is a duplicate too');
SELECT is(pg_temp.fingerprint(), :'applied', 'webhook replay: the duplicates changed nothing');
SELECT is((SELECT count(*) FROM gifq.webhook_events WHERE event_id = 'evt-rp'), 1::bigint,
	'webhook replay: the event is recorded once');

-- malformed bodies, correctly signed
SELECT pg_temp.fingerprint() AS before \gset
SELECT is((SELECT string_agg(left(b, 40) || ' -> ' || s, '; ') FROM (
	SELECT b, pg_temp.state_of(format('SELECT gifq_provider_webhook(%L, %L)', b, pg_temp.sig(b))) AS s
	FROM unnest(ARRAY[
		'', 'not json', '{', '[]', '"evt"', '42', 'null', '{}',
		'{"type": "catalog.updated"}', '{"id": "evt-m1"}',
		'{"id": 7, "type": "catalog.updated"}', '{"id": "evt-m2", "type": ["x"]}',
		'{"id": null, "type": "catalog.updated"}',
		repeat('[', 10000) || repeat(']', 10000),
		'{"pad": "' || repeat('x', 1000000) || '"}',
		'{"id": "evt-m3", "type": "catalog.updated"} trailing'
	]) b) x WHERE s <> 'QG404'), NULL,
	'webhook: 16 malformed bodies (not JSON, not an object, no string id or type, 10,000 levels, 1 MB) are QG404');
SELECT is(pg_temp.fingerprint(), :'before', 'webhook: the malformed bodies changed nothing');

------------------------------------------------------------------------
-- Claim tokens: random, near-miss, truncated, extended
------------------------------------------------------------------------

CREATE TEMP TABLE wrong (kind text, token text);
-- 1,000 random tokens of the right shape (gqr_ and 32 base64url characters)
INSERT INTO wrong SELECT 'random', 'gqr_' || translate(encode(gen_random_bytes(24), 'base64'), '+/', '-_')
	FROM generate_series(1, 1000);
-- 200 random strings of other shapes
INSERT INTO wrong SELECT 'junk', encode(gen_random_bytes(1 + g % 64), 'hex') FROM generate_series(1, 200) g;
-- every single-character change of the real token, at every position
INSERT INTO wrong SELECT 'near-miss', overlay(t.token PLACING c FROM i FOR 1)
	FROM tok t, generate_series(1, length(t.token)) i,
		unnest(ARRAY['A', 'z', '0', '-', '_']) c
	WHERE substr(t.token, i, 1) <> c;
-- every proper prefix, and the token with something added
INSERT INTO wrong SELECT 'truncated', left(t.token, i) FROM tok t, generate_series(0, length(t.token) - 1) i;
INSERT INTO wrong SELECT 'extended', e FROM tok t, unnest(ARRAY[
	t.token || 'A', t.token || ' ', ' ' || t.token, t.token || E'\n', 'A' || t.token,
	t.token || t.token, upper(t.token), lower(t.token), t.token || '''; --',
	t.token || repeat('x', 100000)]) e;
SELECT ok((SELECT count(*) FROM wrong) >= 1300, 'tokens: more than 1,300 wrong tokens to try');

SELECT pg_temp.fingerprint() AS before \gset
SELECT is((SELECT string_agg(DISTINCT kind || ' ' || s, ', ') FROM (
	SELECT kind, pg_temp.state_of(format('SELECT * FROM gifq_reward_options(%L)', token)) AS s FROM wrong) x
	WHERE s <> 'QG501'), NULL, 'tokens: every wrong token is QG501 for gifq_reward_options');
SELECT is((SELECT string_agg(DISTINCT kind || ' ' || s, ', ') FROM (
	SELECT kind, pg_temp.state_of(format('SELECT * FROM gifq_claim_reward(%L, %L)', token, 'amazon-us')) AS s
	FROM wrong) x
	WHERE s <> 'QG501'), NULL, 'tokens: every wrong token is QG501 for gifq_claim_reward');
SELECT throws_ok($$SELECT * FROM gifq_claim_reward(NULL, 'amazon-us')$$, 'QG501', 'claim token not recognised',
	'tokens: a NULL token is QG501');
SELECT is(pg_temp.fingerprint(), :'before', 'tokens: the wrong tokens claimed nothing and changed nothing');
SELECT is((SELECT status FROM gifq.rewards WHERE id = (SELECT reward_id FROM tok)), 'pending',
	'tokens: the reward is still pending');
SELECT ok(EXISTS (SELECT * FROM gifq_reward_options((SELECT token FROM tok))),
	'tokens: the real token still opens the menu');
-- constant time by design: a token is found through the unique index on
-- its SHA-256, and the stored hash is compared again with CRYPTO_memcmp
-- (src/rewards.c); no column holds the token, so no comparison ever
-- touches secret material byte by byte
SELECT is((SELECT pg_get_indexdef('gifq.rewards_token'::regclass)),
	'CREATE UNIQUE INDEX rewards_token ON gifq.rewards USING btree (token_hash)',
	'tokens: rewards are looked up by the hash of the token');
SELECT is((SELECT count(*) FROM gifq.rewards r, tok
		WHERE position(convert_to(tok.token, 'UTF8') IN r.token_hash) > 0
			OR r::text LIKE '%' || tok.token || '%'), 0::bigint,
	'tokens: the token itself is stored nowhere in the reward');

------------------------------------------------------------------------
-- JSON: malformed and oversized values in every jsonb argument
------------------------------------------------------------------------

-- hostile values, built once
CREATE TEMP TABLE hostile (name text, v jsonb, for_objects boolean DEFAULT true,
	for_arrays boolean DEFAULT true);
INSERT INTO hostile (name, v) VALUES
	('string', '"s"'), ('number', '1'), ('null', 'null'), ('boolean', 'true'),
	('huge string', to_jsonb(repeat('x', 1000000))),
	('array of 1e6', (SELECT jsonb_agg(g) FROM generate_series(1, 1000000) g)),
	('10,000 nested arrays', (repeat('[', 10000) || repeat(']', 10000))::jsonb);
-- where an object is wanted
INSERT INTO hostile (name, v, for_arrays) VALUES
	('array', '[1]', false), ('array of objects', '[{}]', false);
-- where an array is wanted
INSERT INTO hostile (name, v, for_objects) VALUES
	('object', '{"x": 1}', false), ('unknown keys', '{"bogus": 1, "zzz": [1]}', false),
	('10,000 nested objects', (repeat('{"a":', 10000) || '1' || repeat('}', 10000))::jsonb, false),
	('array of numbers', '[1, 2]', false), ('array of strings', '["a"]', false),
	('array of nulls', '[null]', false), ('array of arrays', '[[]]', false),
	('array of empty objects', '[{}]', false),
	('element of wrong types', '[{"member": 5, "event_type": [1], "idempotency_key": {}, "debit_account": "x", "credit_account": null, "amount": 12, "recipient_email": 1, "value": "lots"}]', false);

-- the API functions with a jsonb argument, each with the SQL that calls it
-- (%s: the hostile value), the shape it wants and the SQLSTATE that
-- refuses a bad one
CREATE TEMP TABLE targets (signature text, q text, wants text, code text);
INSERT INTO targets VALUES
	('gifq_record_events(text,jsonb)', $$SELECT * FROM gifq_record_events('atk', %s)$$, 'array', 'QG118'),
	('gifq_send_rewards(text,jsonb)', $$SELECT * FROM gifq_send_rewards('atk', %s)$$, 'array', 'QG118'),
	('gifq_transfers(jsonb)', $$SELECT gifq_transfers(%s)$$, 'array', 'QG118'),
	('gifq_set_limits(text,jsonb)', $$SELECT gifq_set_limits('atk', %s)$$, 'object', 'QG115'),
	('gifq_catalog_load(jsonb)', $$SELECT gifq_catalog_load(%s)$$, 'object', 'QG217'),
	('gifq_upsert_member(text,text,text,text,jsonb,boolean)',
		$$SELECT gifq_upsert_member('atk', 'm1', NULL, NULL, %s)$$, 'object', 'QG115'),
	('gifq_record_event(text,text,text,text,timestamp with time zone,jsonb)',
		$$SELECT * FROM gifq_record_event('atk', 'm1', 'done', 'atk-e', now(), %s)$$, 'object', 'QG115'),
	('gifq_transfer(bigint,bigint,gifq_money,text,boolean,interval,jsonb)',
		$$SELECT gifq_transfer(gifq_account('atk', NULL, 'funding', 'USD'), gifq_account('atk', NULL, 'liability', 'USD'), '1.00 USD', NULL, false, NULL, %s)$$,
		'object', 'QG115'),
	('gifq_leaderboard(text,text,jsonb,integer)', $$SELECT * FROM gifq_leaderboard('atk', 'all', %s)$$, 'object', 'QG115'),
	('gifq_leaderboard_around(text,text,text,jsonb,integer)',
		$$SELECT * FROM gifq_leaderboard_around('atk', 'm1', 'all', %s)$$, 'object', 'QG115');
-- the limits and catalog objects have a fixed set of keys
INSERT INTO hostile (name, v, for_arrays) VALUES ('unknown keys only', '{"bogus": 1}', false);

SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ')
		FROM pg_proc p
		JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
		JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'gifq'
		WHERE p.pronamespace = e.extnamespace AND 'jsonb'::regtype = ANY (p.proargtypes::oid[])
			AND p.oid::regprocedure::text NOT IN (SELECT signature FROM targets)), NULL,
	'json: every API function with a jsonb argument is attacked below');

SELECT pg_temp.fingerprint() AS before \gset
CREATE TEMP TABLE outcomes AS
	SELECT t.signature, t.code, h.name, pg_temp.state_of(format(t.q, quote_literal(h.v::text) || '::jsonb')) AS got
	FROM targets t JOIN hostile h ON CASE t.wants WHEN 'array' THEN h.for_arrays ELSE h.for_objects END
	-- attributes, metadata and cohorts name the caller's own keys
	WHERE NOT (h.name = 'unknown keys only'
		AND t.signature ~ '^gifq_(upsert_member|record_event|transfer|leaderboard|leaderboard_around)\(');

-- one assertion per function: every hostile value refused with its code
SELECT is((SELECT string_agg(format('%s: %s', name, got), '; ' ORDER BY name) FROM outcomes o
		WHERE o.signature = t.signature AND got <> code), NULL,
	format('json: %s refuses every malformed or oversized value with %s', t.signature, t.code))
	FROM targets t ORDER BY t.signature;
SELECT is(pg_temp.fingerprint(), :'before', 'json: the refusals changed nothing');

------------------------------------------------------------------------
-- Found by the random-argument run (test/fuzz_api.sql), now refused
------------------------------------------------------------------------

\o /dev/null
SELECT gifq_transfer(gifq_account('atk', NULL, 'issuance'), gifq_account('atk', 'm1'), '5000 PTS');
CREATE TEMP TABLE ord AS SELECT order_id FROM gifq_redeem('atk', 'm1', 'amazon-us', '10.00 USD', 'atk-o1');
\o
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok(format('SELECT gifq_void(%s)', (SELECT hold_id FROM gifq.rewards WHERE id = (SELECT reward_id FROM tok))),
	'QG740', format('pending transfer %s belongs to reward %s',
		(SELECT hold_id FROM gifq.rewards WHERE id = (SELECT reward_id FROM tok)), (SELECT reward_id FROM tok)),
	'holds: gifq_void of a reward''s hold is QG740');
SELECT throws_ok(format('SELECT gifq_post(%s)', (SELECT points_hold FROM gifq.orders WHERE id = (SELECT order_id FROM ord))),
	'QG740', NULL, 'holds: gifq_post of an order''s points hold is QG740');
SELECT throws_ok(format('SELECT gifq_void(%s)', (SELECT funding_hold FROM gifq.orders WHERE id = (SELECT order_id FROM ord))),
	'QG740', NULL, 'holds: gifq_void of an order''s funding hold is QG740');
SELECT is(pg_temp.fingerprint(), :'before', 'holds: the refusals changed nothing');
-- a caller's own hold that claims an owner in its metadata is still its own
SELECT lives_ok(format('SELECT gifq_void(%s)', gifq_transfer(gifq_account('atk', NULL, 'funding', 'USD'),
		gifq_account('atk', NULL, 'liability', 'USD'), '1.00 USD', NULL, true, NULL,
		jsonb_build_object('order_id', (SELECT order_id FROM ord), 'reward_id', (SELECT reward_id FROM tok)))),
	'holds: metadata naming an order or reward does not make a hold theirs');
SELECT throws_ok($$SELECT gifq_set_low_balance('atk', NULL)$$, 'QG115', 'low-balance level must not be NULL',
	'NULL: gifq_set_low_balance without a level is QG115 (was 23502)');
SELECT throws_ok($$SELECT gifq_fund('atk', NULL, 'atk-f2')$$, 'QG115', 'gifq_fund needs an amount',
	'NULL: gifq_fund without an amount is QG115 (was 23502)');
SELECT lives_ok($$SELECT * FROM gifq_alternatives('amazon-us', '-92233720368547758.08 USD')$$,
	'range: gifq_alternatives of the smallest amount no longer overflows (was 22003)');
-- amounts that fit gifq_money but not an account's running totals
\o /dev/null
SELECT gifq_fund('atk', '92233720368547758.07 EUR', 'atk-big-1');
\o
SELECT pg_temp.fingerprint() AS before \gset
SELECT throws_ok($$SELECT gifq_fund('atk', '0.01 EUR', 'atk-big-2')$$, 'QG002', NULL,
	'range: funding past an account''s 64-bit totals is QG002 (was 22003)');
SELECT is(pg_temp.fingerprint(), :'before', 'range: the refused funding changed nothing');
SELECT is_empty('SELECT * FROM gifq_ledger_verify()', 'the ledger verifies after the attacks');

SELECT * FROM finish();
ROLLBACK;
