-- rewards.sql: pgTAP suite for recipient-choice rewards (0.7.0):
-- gifq_send_reward (its hold, token, replays and refusals), the menu
-- (gifq_reward_options), gifq_claim_reward (the order it makes and the
-- ledger: face value released, cost held), expiry (a claim after
-- expires_at is refused before gifq_expire_rewards runs; the value goes
-- back to the funding), bulk sends (all or nothing, the shortfall refused
-- up front, a bad element named by its index, replays), threshold
-- rewards, gifq.reward_rates and the ledger's consistency.  SQLSTATEs:
--   QG101 unknown program      QG118 invalid batch element  QG502 claimed twice
--   QG104 value not positive   QG209 funding short          QG503 expired
--   QG109 idempotency conflict QG501 token not recognised   QG504 brand not offered
--   QG115 invalid parameter
-- Everything runs in one transaction, rolled back at the end.  now() is
-- fixed in a transaction, so expiry is reached by moving a reward's
-- expires_at into the past (as the owner, the suite's only write behind
-- the API's back).
BEGIN;
SELECT plan(85);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';

------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint NOT NULL);
CREATE TEMP TABLE tokens (name text PRIMARY KEY, token text NOT NULL);

CREATE FUNCTION pg_temp.id(n text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE r bigint;
BEGIN
	SELECT id INTO STRICT r FROM ids WHERE name = n;
	RETURN r;
END $$;
CREATE FUNCTION pg_temp.tok(n text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE r text;
BEGIN
	SELECT token INTO STRICT r FROM tokens WHERE name = n;
	RETURN r;
END $$;

-- send a reward, keep its id and token under n; returns its status
CREATE FUNCTION pg_temp.send(n text, p_email text, p_value gifq_money, p_key text,
	p_brands text[] DEFAULT NULL, p_categories text[] DEFAULT NULL,
	p_countries text[] DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	s record;
BEGIN
	SELECT * INTO s FROM gifq_send_reward('tap-r', p_email, p_value, p_key, p_brands,
		p_categories, p_countries);
	INSERT INTO ids VALUES (n, s.reward_id);
	INSERT INTO tokens VALUES (n, s.claim_token);
	RETURN s.status;
END $$;

-- "posted|pending debits|pending credits|available" of a program's
-- funding, and of a system account
CREATE FUNCTION pg_temp.fund(currency text DEFAULT 'USD') RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s|%s|%s|%s', posted, pending_debits, pending_credits, available)
	FROM gifq_program_balance('tap-r', currency)
$$;
CREATE FUNCTION pg_temp.sys(kind text, currency text DEFAULT 'USD') RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s|%s|%s|%s', posted, pending_debits, pending_credits, available)
	FROM gifq_balance(gifq_account('tap-r', NULL, kind, currency))
$$;
-- the DETAIL of the error a statement raises
CREATE FUNCTION pg_temp.detail_of(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	d text;
BEGIN
	EXECUTE q;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
	RETURN d;
END $$;
-- a fingerprint of everything a reward call may write
CREATE FUNCTION pg_temp.state() RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s/%s/%s/%s/%s', (SELECT count(*) FROM gifq.rewards),
		(SELECT count(*) FROM gifq.transfers), (SELECT count(*) FROM gifq.orders),
		(SELECT count(*) FROM gifq.outbox), pg_temp.fund())
$$;

SELECT gifq_create_program('tap-r', 'USD', 'PTS', 100, 'UTC');
SELECT gifq_fund('tap-r', '100.00 USD', 'fund-1');
SELECT gifq_catalog_load('{"brands": [
	{"id": "amazon-us", "name": "Amazon", "country": "US", "currency": "USD",
	 "categories": ["retail"], "denominations": [10, 25, 50], "discount_pct": 3.0, "in_stock": true},
	{"id": "visa-us", "name": "Visa Prepaid", "country": "US", "currency": "USD",
	 "categories": ["prepaid"], "min_value": 1, "max_value": 500, "discount_pct": 2.5, "in_stock": true},
	{"id": "steam-ca", "name": "Steam", "country": "CA", "currency": "USD",
	 "categories": ["games"], "min_value": 5, "max_value": 100, "discount_pct": 0, "in_stock": true},
	{"id": "nostock-us", "name": "Nostock", "country": "US", "currency": "USD",
	 "categories": ["retail"], "denominations": [25], "discount_pct": 0, "in_stock": false},
	{"id": "tesco-gb", "name": "Tesco", "country": "GB", "currency": "GBP",
	 "categories": ["grocery"], "min_value": 5, "max_value": 200, "discount_pct": 4.25, "in_stock": true}
]}');

------------------------------------------------------------------------
-- gifq_send_reward
------------------------------------------------------------------------

SELECT is(pg_temp.send('a', 'ana@example.com', '25.00 USD', 'r-a'), 'pending', 'send: a new reward is pending');
SELECT ok(pg_temp.tok('a') ~ '^gqr_[A-Za-z0-9_-]{32}$', 'send: the token is gqr_ and 32 base64url characters (192 bits)');
SELECT is((SELECT token_hash FROM gifq.rewards WHERE id = pg_temp.id('a')),
	sha256(convert_to(pg_temp.tok('a'), 'UTF8')), 'send: only the token''s SHA-256 is stored');
SELECT is((SELECT count(*) FROM gifq.rewards r WHERE r.id = pg_temp.id('a')
		AND position(convert_to(pg_temp.tok('a'), 'UTF8') IN r.token_hash) > 0), 0::bigint,
	'send: the token itself is not in the row');
SELECT is(pg_temp.fund(), '100.00 USD|25.00 USD|0.00 USD|75.00 USD', 'send: the face value is held on the funding');
SELECT is(pg_temp.sys('liability'), '0.00 USD|0.00 USD|25.00 USD|0.00 USD', 'send: ... toward the liability account');
SELECT is((SELECT format('%s %s %s', h.status, t.amount, t.metadata ->> 'reward_id')
		FROM gifq.rewards r JOIN gifq.holds h ON h.transfer_id = r.hold_id
		JOIN gifq.transfers t ON t.id = r.hold_id WHERE r.id = pg_temp.id('a')),
	format('pending 2500 %s', pg_temp.id('a')), 'send: the reward names its hold, the hold its reward');
-- replays
SELECT results_eq(
	$$SELECT reward_id, claim_token, status FROM gifq_send_reward('tap-r', 'ana@example.com', '25.00 USD', 'r-a')$$,
	format('VALUES (%s::bigint, NULL::text, %L::text)', pg_temp.id('a'), 'pending'),
	'send: a replay returns the reward and status, without the token');
SELECT is(pg_temp.fund(), '100.00 USD|25.00 USD|0.00 USD|75.00 USD', 'send: a replay holds nothing more');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'ana@example.com', '10.00 USD', 'r-a')$$,
	'QG109', 'idempotency key "r-a" was used for a reward with a different value',
	'send: the key with another value is QG109 naming the field');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'bob@example.com', '25.00 USD', 'r-a')$$,
	'QG109', 'idempotency key "r-a" was used for a reward with a different recipient_email',
	'send: the key for another recipient is QG109');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'ana@example.com', '25.00 USD', 'r-a', ARRAY['visa-us'])$$,
	'QG109', 'idempotency key "r-a" was used for a reward with a different brands',
	'send: the key with another menu is QG109');
-- refusals change nothing
SELECT pg_temp.state() AS before \gset
SELECT throws_ok($$SELECT * FROM gifq_send_reward('nope', 'ana@example.com', '25.00 USD', 'r-x')$$,
	'QG101', NULL, 'send: unknown program is QG101');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'not-an-email', '25.00 USD', 'r-x')$$,
	'QG115', 'invalid recipient_email "not-an-email"', 'send: a bad email is QG115');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'ana@example.com', '0.00 USD', 'r-x')$$,
	'QG104', 'reward value 0.00 USD is not positive', 'send: a zero value is QG104');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'ana@example.com', '25.00 USD', '')$$,
	'QG115', 'invalid idempotency_key ""', 'send: an empty key is QG115');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'ana@example.com', '25.00 USD', 'r-x', '{}')$$,
	'QG115', NULL, 'send: an empty brands list is QG115 (NULL means any)');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'ana@example.com', '25.00 USD', 'r-x', NULL, NULL, ARRAY['usa'])$$,
	'QG115', NULL, 'send: a malformed country is QG115');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'ana@example.com', '25.00 USD', 'r-x',
		expires_at => now() - interval '1 minute')$$,
	'QG115', NULL, 'send: an expiry in the past is QG115');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'ana@example.com', '80.00 USD', 'r-x')$$,
	'QG209', 'program "tap-r" has 75.00 USD of funding available, the rewards need 80.00 USD',
	'send: beyond the available funding is QG209');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('tap-r', 'ana@example.com', '10.00 GBP', 'r-x')$$,
	'QG209', NULL, 'send: a currency never funded is QG209');
SELECT is(pg_temp.state(), :'before', 'send: the refusals changed nothing');

------------------------------------------------------------------------
-- gifq_reward_options
------------------------------------------------------------------------

SELECT results_eq($$SELECT brand_id FROM gifq_reward_options(pg_temp.tok('a')) ORDER BY 1$$,
	ARRAY['amazon-us', 'steam-ca', 'visa-us'],
	'options: no menu: every live brand selling the value in its currency (not out of stock, not GBP)');
SELECT pg_temp.send('m', 'mia@example.com', '10.00 USD', 'r-m', NULL, ARRAY['retail', 'games'], ARRAY['US']);
SELECT results_eq($$SELECT brand_id FROM gifq_reward_options(pg_temp.tok('m')) ORDER BY 1$$,
	ARRAY['amazon-us'], 'options: categories and countries intersect the catalog');
SELECT pg_temp.send('v', 'vic@example.com', '12.34 USD', 'r-v', ARRAY['amazon-us', 'visa-us', 'nostock-us']);
SELECT results_eq($$SELECT brand_id FROM gifq_reward_options(pg_temp.tok('v')) ORDER BY 1$$,
	ARRAY['visa-us'], 'options: a brand must sell the exact value (Amazon has no 12.34 card)');
SELECT is((SELECT format('%s %s %s', name, country, min_value) FROM gifq_reward_options(pg_temp.tok('v'))),
	'Visa Prepaid US 1.00 USD', 'options: rows carry the gifq_catalog columns');
SELECT throws_ok($$SELECT * FROM gifq_reward_options('gqr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')$$,
	'QG501', 'claim token not recognised', 'options: an unknown token is QG501');

------------------------------------------------------------------------
-- gifq_claim_reward
------------------------------------------------------------------------

SELECT pg_temp.state() AS before \gset
SELECT throws_ok(format('SELECT * FROM gifq_claim_reward(%L, %L)', pg_temp.tok('a') || 'x', 'amazon-us'),
	'QG501', 'claim token not recognised', 'claim: a wrong token is QG501, without repeating it');
SELECT throws_ok($$SELECT * FROM gifq_claim_reward(NULL, 'amazon-us')$$,
	'QG501', NULL, 'claim: a NULL token is QG501');
SELECT throws_ok(format('SELECT * FROM gifq_claim_reward(%L, %L)', pg_temp.tok('m'), 'visa-us'),
	'QG504', format('brand "visa-us" is not among the choices of reward %s', pg_temp.id('m')),
	'claim: a brand outside the menu is QG504');
SELECT throws_ok(format('SELECT * FROM gifq_claim_reward(%L, %L)', pg_temp.tok('v'), 'nostock-us'),
	'QG504', NULL, 'claim: an out-of-stock brand of the menu is QG504');
SELECT throws_ok(format('SELECT * FROM gifq_claim_reward(%L, %L)', pg_temp.tok('a'), 'tesco-gb'),
	'QG504', NULL, 'claim: a brand in another currency is QG504');
SELECT is(pg_temp.state(), :'before', 'claim: the refusals changed nothing');

SELECT pg_temp.fund() AS fund_before \gset
SELECT is(status, 'pending', 'claim: the order is pending')
FROM gifq_claim_reward(pg_temp.tok('a'), 'amazon-us');
INSERT INTO ids SELECT 'a_order', order_id FROM gifq.rewards WHERE id = pg_temp.id('a');
SELECT is((SELECT format('%s %s %s %s %s %s %s %s', o.status, o.brand_id, o.amount, o.cost, o.margin,
		o.points, o.member_id IS NULL, o.recipient_email)
		FROM gifq.orders o WHERE o.id = pg_temp.id('a_order')),
	'pending amazon-us 2500 2425 75 0 t ana@example.com',
	'claim: the order: face value, cost at the brand''s discount, no points, no member, the recipient');
SELECT is((SELECT format('%s %s', o.points_hold IS NULL, h.status)
		FROM gifq.orders o JOIN gifq.holds h ON h.transfer_id = o.funding_hold
		WHERE o.id = pg_temp.id('a_order')), 't pending', 'claim: the order holds the cost only, no points');
SELECT is((SELECT h.status FROM gifq.rewards r JOIN gifq.holds h ON h.transfer_id = r.hold_id
		WHERE r.id = pg_temp.id('a')), 'voided', 'claim: the reward''s own hold is voided');
SELECT is(pg_temp.fund(), '100.00 USD|46.59 USD|0.00 USD|53.41 USD',
	'claim: funding holds 24.25 (the cost) instead of 25.00: the discount is back in the available funding');
SELECT is(pg_temp.sys('payable'), '0.00 USD|0.00 USD|24.25 USD|0.00 USD', 'claim: payable awaits the cost');
SELECT is(pg_temp.sys('liability'), '0.00 USD|0.00 USD|22.34 USD|0.00 USD',
	'claim: the liability no longer holds the claimed reward');
SELECT is((SELECT format('%s %s', r.status, r.order_id = pg_temp.id('a_order')) FROM gifq.rewards r
		WHERE r.id = pg_temp.id('a')), 'claimed t', 'claim: the reward is claimed and names its order');
SELECT is((SELECT payload ->> 'order_id' FROM gifq.outbox WHERE event_type = 'reward.claimed'
		AND (payload ->> 'reward_id')::bigint = pg_temp.id('a')), pg_temp.id('a_order')::text,
	'claim: a reward.claimed event names the order');
SELECT is((SELECT member FROM gifq_order(pg_temp.id('a_order'))), NULL, 'claim: gifq_order shows the order, no member');
SELECT throws_ok(format('SELECT * FROM gifq_claim_reward(%L, %L)', pg_temp.tok('a'), 'amazon-us'),
	'QG502', format('reward %s is already claimed', pg_temp.id('a')), 'claim: a second claim is QG502');
SELECT throws_ok(format('SELECT * FROM gifq_reward_options(%L)', pg_temp.tok('a')),
	'QG502', NULL, 'options: a claimed reward offers nothing (QG502)');

-- the order fails: its cost goes back to the funding, the reward stays claimed
SELECT gifq.fail_order(pg_temp.id('a_order'), 'test: the provider refused');
SELECT is(pg_temp.fund(), '100.00 USD|22.34 USD|0.00 USD|77.66 USD', 'failure: the cost hold is voided, value back to funding');
SELECT is((SELECT status FROM gifq.rewards WHERE id = pg_temp.id('a')), 'claimed', 'failure: the reward stays claimed');
-- a retry holds the cost again, still without points
SELECT gifq_retry_order(pg_temp.id('a_order'));
SELECT is((SELECT format('%s %s %s', o.status, o.points_hold IS NULL, h.status)
		FROM gifq.orders o JOIN gifq.holds h ON h.transfer_id = o.funding_hold
		WHERE o.id = pg_temp.id('a_order')), 'pending t pending', 'retry: a reward order is held again at cost, no points');
SELECT is(pg_temp.fund(), '100.00 USD|46.59 USD|0.00 USD|53.41 USD', 'retry: the funding holds the cost again');
-- delivery posts the cost: funding -> payable
SELECT gifq.end_holds(ARRAY[points_hold, funding_hold], 'post') FROM gifq.orders WHERE id = pg_temp.id('a_order');
SELECT is(pg_temp.fund(), '75.75 USD|22.34 USD|0.00 USD|53.41 USD', 'delivery: the cost leaves the funding');
SELECT is(pg_temp.sys('payable'), '24.25 USD|0.00 USD|0.00 USD|24.25 USD', 'delivery: ... to payable');

------------------------------------------------------------------------
-- expiry
------------------------------------------------------------------------

UPDATE gifq.rewards SET expires_at = now() - interval '1 second' WHERE id = pg_temp.id('m');
SELECT pg_temp.state() AS before \gset
SELECT throws_ok(format('SELECT * FROM gifq_claim_reward(%L, %L)', pg_temp.tok('m'), 'amazon-us'),
	'QG503', NULL, 'expiry: a claim after expires_at is QG503 before gifq_expire_rewards runs');
SELECT throws_ok(format('SELECT * FROM gifq_reward_options(%L)', pg_temp.tok('m')),
	'QG503', NULL, 'expiry: and its options too');
SELECT is(pg_temp.state(), :'before', 'expiry: the refused claim changed nothing');
SELECT is(gifq_expire_rewards(), 1, 'expiry: gifq_expire_rewards expires the one due');
SELECT is(pg_temp.fund(), '75.75 USD|12.34 USD|0.00 USD|63.41 USD', 'expiry: its 10.00 USD is available again');
SELECT is((SELECT format('%s %s', r.status, h.status) FROM gifq.rewards r
		JOIN gifq.holds h ON h.transfer_id = r.hold_id WHERE r.id = pg_temp.id('m')),
	'expired voided', 'expiry: the reward is expired, its hold voided');
SELECT is((SELECT payload ->> 'value' FROM gifq.outbox WHERE event_type = 'reward.expired'
		AND (payload ->> 'reward_id')::bigint = pg_temp.id('m')), '10.00 USD', 'expiry: a reward.expired event');
SELECT is(gifq_expire_rewards(), 0, 'expiry: nothing more is due');
SELECT throws_ok(format('SELECT * FROM gifq_claim_reward(%L, %L)', pg_temp.tok('m'), 'amazon-us'),
	'QG503', NULL, 'expiry: an expired reward stays unclaimable');

------------------------------------------------------------------------
-- bulk: gifq_send_rewards
------------------------------------------------------------------------

SELECT pg_temp.state() AS before \gset
SELECT throws_ok($$SELECT * FROM gifq_send_rewards('tap-r', '[
	{"recipient_email": "b1@example.com", "value": "10.00 USD", "idempotency_key": "b-1"},
	{"recipient_email": "b2@example.com", "value": "ten", "idempotency_key": "b-2"}]')$$,
	'QG118', 'invalid value "ten" in reward 2 of batch', 'bulk: a bad element is QG118 naming its index');
SELECT throws_ok($$SELECT * FROM gifq_send_rewards('tap-r', '[
	{"recipient_email": "b1@example.com", "value": "10.00 USD", "idempotency_key": "b-1"},
	{"recipient_email": "b2@example.com", "value": "10.00 USD", "idempotency_key": "b-1"}]')$$,
	'QG118', NULL, 'bulk: one key twice in a batch is QG118');
SELECT throws_ok($$SELECT * FROM gifq_send_rewards('tap-r', '[
	{"recipient_email": "b1@example.com", "value": "10.00 USD", "idempotency_key": "b-1", "colour": "red"}]')$$,
	'QG118', 'unknown field "colour" in reward 1 of batch', 'bulk: an unknown field is QG118');
SELECT throws_ok($$SELECT * FROM gifq_send_rewards('tap-r', '[]')$$, 'QG118', NULL, 'bulk: an empty batch is QG118');
SELECT throws_ok($$SELECT * FROM gifq_send_rewards('tap-r', (SELECT jsonb_agg(jsonb_build_object(
		'recipient_email', 'b' || i || '@example.com', 'value', '10.00 USD', 'idempotency_key', 'b-' || i))
		FROM generate_series(1, 7) i))$$,
	'QG209', 'program "tap-r" has 63.41 USD of funding available, the rewards need 70.00 USD',
	'bulk: a batch beyond the funding is refused up front');
SELECT is(pg_temp.state(), :'before', 'bulk: the refused batches changed nothing');
SELECT is(pg_temp.detail_of($$SELECT * FROM gifq_send_rewards('tap-r',
		(SELECT jsonb_agg(jsonb_build_object('recipient_email', 'b' || i || '@example.com',
		'value', '10.00 USD', 'idempotency_key', 'b-' || i)) FROM generate_series(1, 7) i))$$),
	'The funding is short by 6.59 USD.', 'bulk: the refusal gives the shortfall');

CREATE TEMP TABLE sent AS
SELECT * FROM gifq_send_rewards('tap-r', (SELECT jsonb_agg(jsonb_build_object(
	'recipient_email', 'b' || i || '@example.com', 'value', '10.00 USD', 'idempotency_key', 'b-' || i,
	'brands', jsonb_build_array('visa-us'))) FROM generate_series(1, 5) i));
SELECT is((SELECT string_agg(recipient_email, ',' ORDER BY reward_id) FROM sent),
	'b1@example.com,b2@example.com,b3@example.com,b4@example.com,b5@example.com',
	'bulk: one row per reward, in the batch''s order');
SELECT is((SELECT count(DISTINCT claim_token) FROM sent WHERE claim_token ~ '^gqr_'), 5::bigint,
	'bulk: each reward has its own token');
SELECT is(pg_temp.fund(), '75.75 USD|62.34 USD|0.00 USD|13.41 USD', 'bulk: the five are held');
SELECT is((SELECT count(*) FROM gifq.rewards r JOIN gifq.holds h ON h.transfer_id = r.hold_id
		JOIN gifq.transfers t ON t.id = h.transfer_id
		WHERE r.idempotency_key LIKE 'b-%' AND h.status = 'pending' AND t.amount = 1000), 5::bigint,
	'bulk: one hold of its value per reward');
SELECT results_eq($$SELECT reward_id, claim_token IS NULL FROM gifq_send_rewards('tap-r', (SELECT jsonb_agg(jsonb_build_object(
	'recipient_email', 'b' || i || '@example.com', 'value', '10.00 USD', 'idempotency_key', 'b-' || i,
	'brands', jsonb_build_array('visa-us'))) FROM generate_series(1, 5) i))$$,
	$$SELECT reward_id, true FROM sent ORDER BY reward_id$$, 'bulk: a replayed batch returns the same rewards without tokens');
SELECT is(pg_temp.fund(), '75.75 USD|62.34 USD|0.00 USD|13.41 USD', 'bulk: the replay holds nothing more');
SELECT is(status, 'pending', 'bulk: a bulk reward is claimed like any other')
FROM gifq_claim_reward((SELECT claim_token FROM sent ORDER BY reward_id LIMIT 1), 'visa-us');

-- the other four expire together: one batch, each slot changed once
UPDATE gifq.rewards SET expires_at = now() - interval '1 second'
WHERE idempotency_key LIKE 'b-%' AND status = 'pending';
SELECT is(gifq_expire_rewards(), 4, 'bulk expiry: four rewards expire in one call');
SELECT is(pg_temp.fund(), '75.75 USD|22.09 USD|0.00 USD|53.66 USD', 'bulk expiry: their 40.00 USD is available again');
SELECT is((SELECT count(*) FROM gifq.rewards r JOIN gifq.holds h ON h.transfer_id = r.hold_id
		JOIN gifq.transfers v ON v.id = h.resolved_by
		WHERE r.idempotency_key LIKE 'b-%' AND r.status = 'expired' AND h.status = 'voided'
			AND v.kind = 'void' AND v.pending_id = r.hold_id), 4::bigint,
	'bulk expiry: each hold ended by its own void transfer');
SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'bulk expiry: the ledger is consistent');

------------------------------------------------------------------------
-- threshold rewards
------------------------------------------------------------------------

SELECT gifq_upsert_member('tap-r', 'tia', 'tia@example.com');
SELECT gifq_upsert_member('tap-r', 'nomail');
SELECT gifq_set_rule('tap-r', 'deal', 100);
SELECT gifq_define_threshold('tap-r', 100, 'reward', '5.00 USD') AS th \gset
SELECT gifq_record_event('tap-r', 'tia', 'deal', 'tia-1');
SELECT is((SELECT format('%s %s %s %s', h.reward_status, r.status, r.recipient_email, r.value)
		FROM gifq.threshold_hits h JOIN gifq.rewards r ON r.id = h.reward_id
		JOIN gifq.members m ON m.id = h.member_id WHERE m.external_id = 'tia'),
	'issued pending tia@example.com 500', 'threshold: crossing a reward threshold issues a reward to the member''s email');
SELECT is((SELECT gifq.reward_token_matches(payload ->> 'claim_token', r.token_hash)
		FROM gifq.outbox o JOIN gifq.rewards r ON r.id = (o.payload ->> 'reward_id')::bigint
		WHERE o.event_type = 'reward.issued'), true, 'threshold: the reward.issued event carries its claim token');
SELECT gifq_record_event('tap-r', 'nomail', 'deal', 'nomail-1');
SELECT is((SELECT format('%s %s', h.reward_status, h.reward_id IS NULL) FROM gifq.threshold_hits h
		JOIN gifq.members m ON m.id = h.member_id WHERE m.external_id = 'nomail'),
	'pending t', 'threshold: a member without email keeps the hit pending, the event is not refused');
SELECT is((SELECT payload ->> 'reason' FROM gifq.outbox WHERE event_type = 'reward.unissued'
		AND payload ->> 'member' = 'nomail'), 'member has no email', 'threshold: ... and a reward.unissued event says why');
-- funding short: the hit stays pending too
SELECT gifq_define_threshold('tap-r', 200, 'reward', '50.00 USD');
SELECT gifq_record_event('tap-r', 'tia', 'deal', 'tia-2');
SELECT is((SELECT h.reward_status FROM gifq.threshold_hits h JOIN gifq.thresholds t ON t.id = h.threshold_id
		JOIN gifq.members m ON m.id = h.member_id WHERE m.external_id = 'tia' AND t.points = 200),
	'pending', 'threshold: short funding keeps the hit pending and the event recorded');

------------------------------------------------------------------------
-- reporting and consistency
------------------------------------------------------------------------

SELECT is((SELECT format('%s %s %s %s %s %s', sent, claimed, expired, pending, expired_value, claim_rate)
		FROM gifq.reward_rates WHERE program = 'tap-r' AND currency = 'USD'),
	'9 2 5 2 50.00 USD 0.2857', 'reward_rates: counts, values and the claim rate of ended rewards');
SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'verify: the ledger is consistent at the end');

SELECT * FROM finish();
ROLLBACK;
