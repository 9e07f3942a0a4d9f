-- worker.sql: pgTAP suite for the fulfilment SQL of 0.5.0, without a
-- network: every decision about an order is made in SQL, so the suite
-- claims orders itself (gifq.claim_work) and feeds gifq.record_outcome the
-- answers a provider would give.  Covered: claims, leases, batches,
-- claims given back and taken over; every kind of answer to a send and to
-- a look-up, and stale answers; the audit trail of every status change;
-- gifq_process_orders against the closed port of the test cluster
-- (gifq.provider_url = 'http://127.0.0.1:9'); sealed cards and
-- gifq_reveal_code; signed webhooks (gifq_provider_webhook); outbound
-- events; the backoff, the call log, the views and the privileges.
--   QG118 batch out of range     QG403 card does not open     QG215 unknown order
--   QG401 order has no card      QG404 webhook not an event   QG216 transition refused
--   QG405 webhook signature      QG120 immutable row
-- QG402 and QG406 (card key or provider URL unset) are not reachable here:
-- both settings are superuser-only reload settings of the cluster.
-- Everything runs in one transaction, rolled back at the end.  now() is
-- fixed in a transaction, so waits are checked as next_attempt_at - now(),
-- and an order is made due by moving its next_attempt_at; webhook
-- signatures are made with the wall clock, as the server checks them.
-- Order ids come from a sequence a rollback does not rewind: never
-- hard-coded.
BEGIN;
SELECT plan(210);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
CREATE EXTENSION IF NOT EXISTS pgcrypto;

------------------------------------------------------------------------
-- Helpers (pg_temp: gone with the session, and rolled back anyway)
------------------------------------------------------------------------

-- the suite's orders, by name; what the last claim returned
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint NOT NULL);
CREATE TEMP TABLE claimed (order_id bigint, call text, reference text,
	provider_order_id text, body text, attempt integer);

-- the id kept under n; an unknown name is an error, never a NULL
CREATE FUNCTION pg_temp.id(n text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE r bigint;
BEGIN
	SELECT id INTO STRICT r FROM ids WHERE name = n;
	RETURN r;
END $$;

-- an order's reference, spelled independently of gifq.order_reference
CREATE FUNCTION pg_temp.ref(o bigint) RETURNS text
LANGUAGE sql AS $$ SELECT 'gifq-ord-' || repeat('0', greatest(0, 9 - length(o::text))) || o::text $$;

-- a new order of ana's (amazon-us), its key and its name n
CREATE FUNCTION pg_temp.redeem(n text, amount text DEFAULT '10.00 USD') RETURNS bigint
LANGUAGE sql AS $$
	INSERT INTO ids SELECT n, order_id FROM gifq_redeem('tap-w', 'ana', 'amazon-us', amount::gifq_money, n)
	RETURNING id
$$;

-- push every order waiting or in flight a day ahead, so that a claim sees
-- only what a test makes due
CREATE FUNCTION pg_temp.park() RETURNS void
LANGUAGE sql AS $$
	UPDATE gifq.orders SET next_attempt_at = now() + interval '1 day'
	WHERE status IN ('pending', 'submitted', 'processing')
		AND next_attempt_at < now() + interval '1 day'
$$;

-- claim_work, its rows kept in claimed; "name:call:attempt", by order id
CREATE FUNCTION pg_temp.claim(batch integer DEFAULT 100, caller text DEFAULT 'tap',
	lease interval DEFAULT '1 minute') RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM claimed;
	INSERT INTO claimed SELECT * FROM gifq.claim_work(batch, lease, caller);
	RETURN coalesce((SELECT string_agg(format('%s:%s:%s', coalesce(i.name, c.order_id::text),
		c.call, c.attempt), ',' ORDER BY c.order_id)
		FROM claimed c LEFT JOIN ids i ON i.id = c.order_id), 'nothing');
END $$;

-- make n the only due order and claim it; returns the call, and fails
-- loudly if anything else was claimed
CREATE FUNCTION pg_temp.take(n text, caller text DEFAULT 'tap') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE got text;
BEGIN
	PERFORM pg_temp.park();
	UPDATE gifq.orders SET next_attempt_at = now() - interval '1 second' WHERE id = pg_temp.id(n);
	got := pg_temp.claim(100, caller);
	IF got NOT IN (n || ':order:' || (SELECT attempt FROM claimed LIMIT 1),
		n || ':lookup:' || (SELECT attempt FROM claimed LIMIT 1)) THEN
		RAISE EXCEPTION 'claiming % claimed %', n, got;
	END IF;
	RETURN split_part(got, ':', 2);
END $$;

-- a new order n, claimed for its send
CREATE FUNCTION pg_temp.send(n text, amount text DEFAULT '10.00 USD') RETURNS text
LANGUAGE sql AS $$ SELECT pg_temp.redeem(n, amount); SELECT pg_temp.take(n) $$;

-- record one provider answer about n, as the worker would (12.5 ms,
-- retry_base_ms 1000, retry_max_ms 300000)
CREATE FUNCTION pg_temp.out(n text, _call text, _http integer, _body text,
	_error text DEFAULT NULL, _retry_after integer DEFAULT NULL,
	_max_attempts integer DEFAULT 5, _caller text DEFAULT 'tap') RETURNS text
LANGUAGE sql AS $$
	SELECT gifq.record_outcome(pg_temp.id(n), _call, _caller, _http, _body, _error, 12.5,
		_retry_after, _max_attempts, 1000, 300000)
$$;

-- the provider's order object for n, and its parts
CREATE FUNCTION pg_temp.answer(n text, status text, extra jsonb DEFAULT '{}') RETURNS text
LANGUAGE sql AS $$
	SELECT (jsonb_build_object('order_id', 'ord-' || lower(n),
		'reference_id', pg_temp.ref(pg_temp.id(n)), 'status', status) || extra)::text
$$;
CREATE FUNCTION pg_temp.card(code text, pin text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jsonb_build_object('gift_card', jsonb_build_object('code', code, 'pin', pin,
		'redemption_url', 'https://example.com/redeem', 'expiry_date', '2029-03-30',
		'wallet_links', jsonb_build_object('apple_wallet', 'https://wallet.example.com/a')))
$$;
CREATE FUNCTION pg_temp.perr(code text, message text) RETURNS text
LANGUAGE sql AS $$
	SELECT jsonb_build_object('error', jsonb_build_object('code', code, 'message', message))::text
$$;

-- the calling role as text (current_user is a name, collation "C")
CREATE FUNCTION pg_temp.me() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT current_user::text $$;

-- an order as "status|reason|attempts n|lookups n|lease owner"
CREATE FUNCTION pg_temp.o(n text) RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s|%s|attempts %s|lookups %s|lease %s', status, coalesce(status_reason, '-'),
		attempts, lookups, coalesce(lease_owner, '-'))
	FROM gifq.orders WHERE id = pg_temp.id(n)
$$;
CREATE FUNCTION pg_temp.wait(n text) RETURNS interval
LANGUAGE sql AS $$ SELECT next_attempt_at - now() FROM gifq.orders WHERE id = pg_temp.id(n) $$;
-- gifq.retry_base_ms in ms, whatever unit it was set in
CREATE FUNCTION pg_temp.base_ms() RETURNS integer
LANGUAGE sql AS $$ SELECT setting::integer FROM pg_settings WHERE name = 'gifq.retry_base_ms' $$;
CREATE FUNCTION pg_temp.err_of(n text) RETURNS text
LANGUAGE sql AS $$ SELECT last_error FROM gifq.orders WHERE id = pg_temp.id(n) $$;

-- an order's two holds, "points/funding"
CREATE FUNCTION pg_temp.holds(n text) RETURNS text
LANGUAGE sql AS $$
	SELECT format('%s/%s',
		(SELECT h.status FROM gifq.holds h WHERE h.transfer_id = x.points_hold),
		(SELECT h.status FROM gifq.holds h WHERE h.transfer_id = x.funding_hold))
	FROM gifq.orders x WHERE x.id = pg_temp.id(n)
$$;

-- an order's audit trail, "from>to:reason" in order
CREATE FUNCTION pg_temp.trail(n text) RETURNS text
LANGUAGE sql AS $$
	SELECT string_agg(format('%s>%s:%s', coalesce(from_status, '-'), to_status, reason), ' ')
	FROM gifq_order_history(pg_temp.id(n))
$$;

-- everything an outcome or a webhook can change, as one text
CREATE FUNCTION pg_temp.state() RETURNS text
LANGUAGE sql AS $$
	SELECT format('orders %s, transitions %s, cards %s, outbox %s, webhooks %s, pending holds %s',
		(SELECT md5(string_agg(o::text, ',' ORDER BY o.id)) FROM gifq.orders o),
		(SELECT count(*) FROM gifq.order_transitions),
		(SELECT md5(string_agg(c::text, ',' ORDER BY c.order_id)) FROM gifq.cards c),
		(SELECT count(*) FROM gifq.outbox),
		(SELECT count(*) FROM gifq.webhook_events),
		(SELECT count(*) FROM gifq.holds WHERE status = 'pending'))
$$;

\ir lib/errors.sql

-- run sql (one value) and keep its effects; its value, or "SQLSTATE: message"
-- (so that a call which should not fail, but does, fails one test only)
CREATE FUNCTION pg_temp.try(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
	EXECUTE sql INTO r;
	RETURN r;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- X-Gifq-Signature of body under secret, skew seconds off.  Made with the
-- wall clock (the server compares t with time(NULL), not with now()),
-- truncated as time() is, and never in the last 200 ms of a second, so
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
CREATE FUNCTION pg_temp.hook(body text, secret text DEFAULT 'whsec-test', skew integer DEFAULT 0)
RETURNS text
LANGUAGE sql AS $$ SELECT gifq_provider_webhook(body, pg_temp.sig(body, secret, skew)) $$;

-- a provider event about order n
CREATE FUNCTION pg_temp.event(id text, type text, n text, extra jsonb DEFAULT '{}') RETURNS text
LANGUAGE sql AS $$
	SELECT jsonb_build_object('id', id, 'type', type, 'created_at', '2026-11-25T10:00:03Z',
		'data', jsonb_build_object('order_id', 'ord-' || lower(n),
			'reference_id', pg_temp.ref(pg_temp.id(n))) || extra)::text
$$;

------------------------------------------------------------------------
-- A program, a member, funding and a brand
------------------------------------------------------------------------

SELECT gifq_catalog_load('{"brands": [{"id": "amazon-us", "name": "Amazon", "country": "US",
	"currency": "USD", "categories": ["retail"], "denominations": [10, 25, 50, 100],
	"discount_pct": 3.0, "in_stock": true}]}');
SELECT gifq_create_program('tap-w', 'USD');
SELECT gifq_upsert_member('tap-w', 'ana', 'ana@example.com', 'US');
SELECT gifq_transfer(gifq_account('tap-w', NULL, 'issuance'), gifq_account('tap-w', 'ana'), '1000000 PTS');
SELECT gifq_fund('tap-w', '5000.00 USD', 'tap-w-usd');
-- (claim_work and gifq_process_orders claim every due order of the
-- database: the suite expects none of its own)
SELECT is((SELECT count(*) FROM gifq.orders WHERE status IN ('pending', 'submitted', 'processing')),
	0::bigint, 'setup: the database has no order waiting or in flight');

------------------------------------------------------------------------
-- gifq.claim_work, release_claims, take_over, next_due
------------------------------------------------------------------------

SELECT pg_temp.redeem('A', '25.00 USD');
SELECT is(pg_temp.claim(), 'A:order:1', 'claim: a due pending order is claimed for a send, attempt 1');
SELECT results_eq($$SELECT order_id, call, reference, provider_order_id FROM claimed$$,
	$$VALUES (pg_temp.id('A'), 'order', pg_temp.ref(pg_temp.id('A')), NULL::text)$$,
	'claim: the row gives the order, the call and the order''s reference');
SELECT is((SELECT body::jsonb FROM claimed), jsonb_build_object('brand_id', 'amazon-us',
	'amount', 25.00, 'currency', 'USD', 'recipient_email', 'ana@example.com',
	'reference_id', pg_temp.ref(pg_temp.id('A'))),
	'claim: the body has brand_id, amount, currency, recipient_email and reference_id');
SELECT is((SELECT (body::jsonb -> 'amount')::text FROM claimed), '25.00',
	'claim: the amount is a number in major units');
SELECT is(pg_temp.o('A'), 'submitted|sent to the provider|attempts 1|lookups 0|lease tap',
	'claim: the order is submitted, leased to the caller, its attempts + 1');
SELECT is((SELECT format('%s / %s', lease_until - now(), next_attempt_at - now())
	FROM gifq.orders WHERE id = pg_temp.id('A')), '00:01:00 / 00:01:00',
	'claim: lease_until and next_attempt_at are the end of the lease');
SELECT is(pg_temp.claim(), 'nothing', 'claim: a leased order is not claimed again during its lease');

SELECT pg_temp.redeem('B');
UPDATE gifq.orders SET next_attempt_at = now() + interval '1 hour' WHERE id = pg_temp.id('B');
SELECT is(pg_temp.claim(), 'nothing', 'claim: a pending order not yet due is not claimed');

UPDATE gifq.orders SET next_attempt_at = now() - interval '1 second' WHERE id = pg_temp.id('A');
SELECT is(pg_temp.claim(100, 'tap2'), 'A:lookup:1',
	'claim: a submitted order whose lease ended is claimed for a look-up');
SELECT results_eq($$SELECT reference, body FROM claimed$$,
	$$VALUES (pg_temp.ref(pg_temp.id('A')), NULL::text)$$, 'claim: a look-up has the reference, no body');
SELECT is(pg_temp.o('A'), 'submitted|sent to the provider|attempts 1|lookups 0|lease tap2',
	'claim: a look-up keeps the status and the attempts; the new caller holds the lease');

SELECT pg_temp.redeem('C');
SELECT pg_temp.redeem('D');
SELECT pg_temp.redeem('E');
UPDATE gifq.orders SET next_attempt_at = now() - interval '1 second' WHERE id = pg_temp.id('A');
SELECT is(pg_temp.claim(2), 'A:lookup:1,C:order:1', 'batch: look-ups first, then the earliest sends, up to batch');
SELECT is(pg_temp.claim(1), 'D:order:1', 'batch: a batch of 1 claims one order');
SELECT is(pg_temp.claim(10), 'E:order:1', 'batch: a larger batch takes what is left');

-- release_claims: what the worker's clean stop and pause, and
-- gifq_process_orders after a 401/402, give back
SELECT is(pg_temp.try(format('SELECT gifq.release_claims(%L, %L, %L)', ARRAY[pg_temp.id('C')],
	ARRAY[pg_temp.id('A')], 'someone else')), '0', 'release: claims held by another caller are not given back');
SELECT is(pg_temp.try(format('SELECT gifq.release_claims(%L, %L, %L)', ARRAY[pg_temp.id('C'), pg_temp.id('D')],
	ARRAY[pg_temp.id('A')], 'tap')), '3', 'release: two sends and a look-up given back');
SELECT is(pg_temp.o('C') || ' ' || pg_temp.wait('C'),
	'pending|not sent: sending paused or stopped|attempts 0|lookups 0|lease - 00:00:00',
	'release: a send goes back to pending, due now, its attempt not counted');
SELECT is(pg_temp.o('A') || ' ' || pg_temp.wait('A'),
	'submitted|sent to the provider|attempts 1|lookups 0|lease - 00:00:00',
	'release: a look-up keeps its status and attempts, lease let go, due now');

SELECT pg_temp.park();
SELECT pg_temp.redeem('T');
SELECT is(pg_temp.claim(100, 'worker'), 'T:order:1', 'take_over: T is claimed by worker');
SELECT is(gifq.take_over('worker'), 1, 'take_over: T, leased to worker, is taken over');
SELECT is((SELECT format('%s|%s|%s|%s', status, lease_owner, next_attempt_at - now(), coalesce(lease_until::text, '-'))
	FROM gifq.orders WHERE id = pg_temp.id('T')), 'submitted|worker|00:00:00|-',
	'take_over: the order is due for a look-up now, its lease ended');
SELECT is(pg_temp.claim(), 'T:lookup:1', 'take_over: the order is looked up at the next claim');

SELECT pg_temp.park();
UPDATE gifq.orders SET next_attempt_at = now() + interval '1 hour' WHERE id = pg_temp.id('B');
SELECT is(gifq.next_due(), now() + interval '1 hour', 'next_due: the earliest pending order');
UPDATE gifq.orders SET next_attempt_at = now() + interval '10 minutes' WHERE id = pg_temp.id('E');
SELECT is(gifq.next_due(), now() + interval '10 minutes', 'next_due: or the earliest order in flight');

------------------------------------------------------------------------
-- gifq.record_outcome: a delivered card
------------------------------------------------------------------------

SELECT pg_temp.send('D1', '50.00 USD');
SELECT is(pg_temp.out('D1', 'order', 201,
	pg_temp.answer('D1', 'delivered', pg_temp.card('AMZN-1234-5678-9012', '3456'))), 'delivered',
	'201 delivered: the outcome is delivered');
SELECT is(pg_temp.o('D1'), 'delivered|delivered (answer)|attempts 1|lookups 0|lease -',
	'201 delivered: the order is delivered, the lease let go');
SELECT results_eq($$SELECT provider_order_id, code_last4, redemption_url, expiry_date,
		delivered_at = now(), last_error FROM gifq.orders WHERE id = pg_temp.id('D1')$$,
	$$VALUES ('ord-d1', '9012', 'https://example.com/redeem', '2029-03-30'::date, true, NULL::text)$$,
	'201 delivered: provider_order_id, code_last4, redemption_url, expiry_date, delivered_at');
SELECT is(pg_temp.holds('D1'), 'posted/posted', '201 delivered: both holds are posted');
SELECT results_eq($$SELECT key_id, wallet_links, redeemed_at FROM gifq.cards WHERE order_id = pg_temp.id('D1')$$,
	$$VALUES (gifq.card_key_id(), '{"apple_wallet": "https://wallet.example.com/a"}'::jsonb, NULL::timestamptz)$$,
	'201 delivered: one card row, sealed under the current key, with the wallet links');
SELECT is((SELECT position(convert_to('AMZN-1234-5678-9012', 'UTF8') IN sealed)
	+ position(convert_to('5678', 'UTF8') IN sealed) + position(convert_to('3456', 'UTF8') IN sealed)
	FROM gifq.cards WHERE order_id = pg_temp.id('D1')), 0,
	'201 delivered: the sealed card contains neither the code nor the PIN');
SELECT results_eq($$SELECT program_id, payload FROM gifq.outbox WHERE event_type = 'order.delivered'
		AND payload ->> 'order_id' = pg_temp.id('D1')::text$$,
	$$VALUES ((SELECT id FROM gifq.programs WHERE code = 'tap-w'), jsonb_build_object('order_id', pg_temp.id('D1'),
		'reference', pg_temp.ref(pg_temp.id('D1')), 'brand_id', 'amazon-us', 'code_last4', '9012'))$$,
	'201 delivered: one order.delivered event, without the code');
SELECT results_eq($$SELECT * FROM gifq_reveal_code(pg_temp.id('D1'))$$,
	$$VALUES ('AMZN-1234-5678-9012', '3456')$$, 'reveal: gifq_reveal_code gives the code and the PIN');
SELECT results_eq($$SELECT order_id, actor FROM gifq.card_reveals$$,
	$$VALUES (pg_temp.id('D1'), pg_temp.me())$$, 'reveal: the reveal is audited in gifq.card_reveals');
SELECT results_eq($$SELECT call, order_id, attempt, http_status, error, latency_ms, caller
		FROM gifq.provider_calls WHERE order_id = pg_temp.id('D1')$$,
	$$VALUES ('order', pg_temp.id('D1'), 1, 201, NULL::text, 12.5::float8, 'tap')$$,
	'201 delivered: the call is logged in gifq.provider_calls');

-- stale answers
SELECT pg_temp.state() AS before \gset
SELECT is(pg_temp.out('D1', 'order', 201,
	pg_temp.answer('D1', 'delivered', pg_temp.card('AMZN-1234-5678-9012', '3456'))), 'stale',
	'stale: an answer about an order already delivered is stale');
SELECT is(pg_temp.state(), :'before', 'stale: and changes nothing');
SELECT is((SELECT count(*) FROM gifq.provider_calls WHERE order_id = pg_temp.id('D1')), 2::bigint,
	'stale: but the call is logged');
SELECT pg_temp.send('S1');
SELECT pg_temp.state() AS before \gset
SELECT is(pg_temp.out('S1', 'order', 201, pg_temp.answer('S1', 'delivered', pg_temp.card('S1-CODE')),
	_caller => 'intruder'), 'stale', 'stale: an answer from a caller without the lease is stale');
SELECT is(pg_temp.state(), :'before', 'stale: and changes nothing either');
SELECT throws_ok($$SELECT gifq.record_outcome(-1, 'order', 'tap', 201, NULL, NULL, 1, NULL, 5, 1000, 300000)$$,
	'QG215', 'unknown order -1', 'record_outcome: an unknown order is QG215');
-- an expiry_date shaped YYYY-MM-DD but not a date is dropped, not a
-- reason to refuse a card that exists
SELECT pg_temp.send('BADDATE');
SELECT is(pg_temp.try(format($$SELECT pg_temp.out('BADDATE', 'order', 201, %L)$$,
	pg_temp.answer('BADDATE', 'delivered', jsonb_set(pg_temp.card('BAD-DATE-0001'),
		'{gift_card,expiry_date}', '"2029-02-30"')))), 'delivered',
	'201 delivered: a card with an impossible expiry date is still delivered');

------------------------------------------------------------------------
-- record_outcome: processing, failed, and answers that settle nothing
------------------------------------------------------------------------

SELECT pg_temp.send('P1');
SELECT is(pg_temp.out('P1', 'order', 201, pg_temp.answer('P1', 'processing')), 'processing',
	'201 processing: the outcome is processing');
SELECT is(pg_temp.o('P1'), 'processing|processing at the provider|attempts 1|lookups 1|lease -',
	'201 processing: the order is processing at the provider');
SELECT is((SELECT provider_order_id FROM gifq.orders WHERE id = pg_temp.id('P1')), 'ord-p1',
	'201 processing: provider_order_id is kept');
SELECT is(pg_temp.wait('P1'), '1 second'::interval, '201 processing: polled after max(retry_base_ms, 1 s)');
SELECT is(pg_temp.take('P1'), 'lookup', 'poll: a processing order is polled by a look-up');
SELECT is((SELECT provider_order_id FROM claimed), 'ord-p1', 'poll: the claim gives provider_order_id');
SELECT is(pg_temp.out('P1', 'lookup', 200, pg_temp.answer('P1', 'processing')), 'processing',
	'poll: still processing');
SELECT is(pg_temp.wait('P1'), '2 seconds'::interval, 'poll: the next poll is twice as far');
SELECT pg_temp.take('P1');
SELECT is(pg_temp.out('P1', 'lookup', 200, pg_temp.answer('P1', 'delivered', pg_temp.card('PROC-0000-1111'))),
	'delivered', 'look-up 200 delivered: the order is delivered');
SELECT is(pg_temp.o('P1'), 'delivered|delivered (look-up)|attempts 1|lookups 0|lease -',
	'look-up 200 delivered: reason delivered (look-up), lookups reset');

SELECT pg_temp.send('F1');
SELECT is(pg_temp.out('F1', 'order', 201, pg_temp.answer('F1', 'failed',
	'{"error": {"code": "out_of_stock", "message": "gone"}}')), 'failed', '201 failed: the outcome is failed');
SELECT is(pg_temp.o('F1'), 'failed|provider: out_of_stock: gone|attempts 1|lookups 0|lease -',
	'201 failed: the order is failed with the provider''s error');
SELECT is(pg_temp.err_of('F1'), 'provider: out_of_stock: gone', '201 failed: last_error is the provider''s error');
SELECT is(pg_temp.holds('F1'), 'voided/voided', '201 failed: both holds are voided');
SELECT results_eq($$SELECT payload FROM gifq.outbox WHERE event_type = 'order.failed'
		AND payload ->> 'order_id' = pg_temp.id('F1')::text$$,
	$$VALUES (jsonb_build_object('order_id', pg_temp.id('F1'), 'reference', pg_temp.ref(pg_temp.id('F1')),
		'error', 'provider: out_of_stock: gone'))$$, '201 failed: one order.failed event with the error');

SELECT pg_temp.send('U1');
SELECT is(pg_temp.out('U1', 'order', 201, pg_temp.answer('U1', 'delivered')), 'lookup',
	'2xx without a card: the outcome is unknown, to be looked up');
SELECT is(pg_temp.o('U1'), 'submitted|sent to the provider|attempts 1|lookups 1|lease -',
	'2xx without a card: the order stays submitted, lookups + 1');
SELECT is(pg_temp.err_of('U1'), 'the provider''s answer settles nothing: delivered',
	'2xx without a card: last_error says why');
SELECT ok(pg_temp.wait('U1') BETWEEN '0.5 s' AND '1 s', '2xx without a card: looked up after 0.5 to 1 s');
SELECT results_eq($$SELECT pg_temp.holds('U1'), (SELECT count(*) FROM gifq.cards WHERE order_id = pg_temp.id('U1'))$$,
	$$VALUES ('pending/pending', 0::bigint)$$, '2xx without a card: holds kept, no card stored');
SELECT pg_temp.send('U2');
SELECT is(pg_temp.out('U2', 'order', 200, pg_temp.answer('U2', 'on_hold')) || ' ' || pg_temp.err_of('U2'),
	'lookup the provider''s answer settles nothing: on_hold', '2xx with an unknown status: unknown');
SELECT pg_temp.send('U3');
SELECT is(pg_temp.out('U3', 'order', 201, pg_temp.answer('U3', 'delivered', pg_temp.card(''))), 'lookup',
	'2xx delivered with an empty code: unknown');
SELECT pg_temp.send('U4');
SELECT is(pg_temp.out('U4', 'order', 201, (pg_temp.answer('U4', 'delivered', pg_temp.card('OTHER-0001'))::jsonb
	|| jsonb_build_object('reference_id', pg_temp.ref(pg_temp.id('D1'))))::text), 'lookup',
	'2xx about another reference: unknown');
SELECT is(pg_temp.o('U4') || ' ' || (SELECT count(*) FROM gifq.cards WHERE order_id = pg_temp.id('U4')),
	'submitted|sent to the provider|attempts 1|lookups 1|lease - 0',
	'2xx about another reference: nothing delivered, no card stored');

-- U1 is looked up again and again
SELECT pg_temp.take('U1');
SELECT is(pg_temp.out('U1', 'lookup', 503, pg_temp.perr('provider_error', 'try later')), 'lookup',
	'5xx: unknown');
SELECT is(pg_temp.o('U1') || ' ' || pg_temp.err_of('U1'),
	'submitted|sent to the provider|attempts 1|lookups 2|lease - provider 503: provider_error: try later',
	'5xx: still submitted, lookups 2, last_error from the body');
SELECT ok(pg_temp.wait('U1') BETWEEN '1 s' AND '2 s', '5xx: the backoff doubles, 1 to 2 s');
SELECT pg_temp.take('U1');
SELECT is(pg_temp.out('U1', 'lookup', NULL, NULL, 'Operation timed out after 30000 milliseconds'), 'lookup',
	'no answer: unknown');
SELECT is(pg_temp.o('U1') || ' ' || pg_temp.err_of('U1'),
	'submitted|sent to the provider|attempts 1|lookups 3|lease - Operation timed out after 30000 milliseconds',
	'no answer: last_error is the error text');
SELECT pg_temp.take('U1');
SELECT pg_temp.out('U1', 'lookup', 503, NULL, _retry_after => 20);
SELECT is(pg_temp.wait('U1'), '20 seconds'::interval, '5xx with Retry-After 20: the longer wait counts');
SELECT is(pg_temp.err_of('U1'), 'provider 503: no error code', '5xx without a body: "no error code"');
SELECT pg_temp.take('U1');
SELECT is(pg_temp.out('U1', 'lookup', 200, pg_temp.answer('U1', 'delivered', pg_temp.card('LATE-0000-2222', '1'))),
	'delivered', 'look-up 200 delivered after unknowns: delivered');
SELECT is(pg_temp.o('U1') || ' ' || coalesce(pg_temp.err_of('U1'), 'no error'),
	'delivered|delivered (look-up)|attempts 1|lookups 0|lease - no error', 'look-up delivered: last_error cleared');

------------------------------------------------------------------------
-- record_outcome: 429, 401, 402 and other 4xx
------------------------------------------------------------------------

SELECT pg_temp.send('R1');
SELECT is(pg_temp.out('R1', 'order', 429, pg_temp.perr('rate_limited', 'slow down'), _retry_after => 30),
	'retry', '429: the outcome is retry');
SELECT is(pg_temp.o('R1'), 'pending|rate limited by the provider|attempts 1|lookups 0|lease -',
	'429: back to pending; the attempt counts');
SELECT is(pg_temp.err_of('R1'), 'provider 429: rate_limited: slow down', '429: last_error from the body');
SELECT is(pg_temp.wait('R1'), '30 seconds'::interval, '429 with Retry-After 30: due 30 s later');
SELECT pg_temp.send('R2');
SELECT pg_temp.out('R2', 'order', 429, NULL);
SELECT ok(pg_temp.wait('R2') BETWEEN '0.5 s' AND '1 s', '429 without Retry-After: the backoff, 0.5 to 1 s');

SELECT pg_temp.send('A1');
SELECT is(pg_temp.out('A1', 'order', 401, pg_temp.perr('unauthorized', 'bad key')), 'paused',
	'401: the outcome is paused');
SELECT is(pg_temp.o('A1'), 'pending|sending paused: provider 401: unauthorized: bad key|attempts 0|lookups 0|lease -',
	'401: back to pending, the attempt not counted');
SELECT is(pg_temp.wait('A1'), '1 second'::interval, '401: due after retry_base_ms');
SELECT pg_temp.send('A2');
SELECT is(pg_temp.out('A2', 'order', 402, pg_temp.perr('insufficient_funds', 'balance too low')), 'paused',
	'402: the outcome is paused');
SELECT is(pg_temp.o('A2'), 'pending|sending paused: provider 402: insufficient_funds: balance too low|attempts 0|lookups 0|lease -',
	'402: back to pending, the attempt not counted');

SELECT pg_temp.send('X400');
SELECT pg_temp.send('X404');
SELECT pg_temp.send('X409');
SELECT pg_temp.send('X422');
SELECT is((SELECT string_agg(pg_temp.out(n, 'order', c, pg_temp.perr(e, m)), ',' ORDER BY n)
	FROM (VALUES ('X400', 400, 'invalid_request', 'bad amount'), ('X404', 404, 'unknown_brand', 'no such brand'),
		('X409', 409, 'idempotency_conflict', 'reference reused'),
		('X422', 422, 'out_of_stock', 'brand out of stock')) v(n, c, e, m)),
	'failed,failed,failed,failed', '400, 404, 409 and 422 on a send: failed');
SELECT results_eq($$SELECT status, last_error, pg_temp.holds(n) FROM unnest('{X400,X404,X409,X422}'::text[]) n
		JOIN gifq.orders o ON o.id = pg_temp.id(n) ORDER BY n$$,
	$$VALUES ('failed', 'provider 400: invalid_request: bad amount', 'voided/voided'),
		('failed', 'provider 404: unknown_brand: no such brand', 'voided/voided'),
		('failed', 'provider 409: idempotency_conflict: reference reused', 'voided/voided'),
		('failed', 'provider 422: out_of_stock: brand out of stock', 'voided/voided')$$,
	'4xx on a send: failed, last_error names the provider''s code, holds voided');
SELECT pg_temp.send('X418');
SELECT pg_temp.out('X418', 'order', 418, NULL);
SELECT is(pg_temp.err_of('X418'), 'provider 418: no error code', '4xx without an error body: "no error code"');

-- look-ups answered 429, 401 and other 4xx keep the order submitted
SELECT pg_temp.send('L1');
SELECT pg_temp.out('L1', 'order', NULL, NULL, 'Connection reset by peer');
SELECT pg_temp.take('L1');
SELECT is(pg_temp.out('L1', 'lookup', 429, NULL, _retry_after => 5), 'retry', 'look-up 429: retry');
SELECT is(pg_temp.o('L1') || ' ' || pg_temp.wait('L1'),
	'submitted|sent to the provider|attempts 1|lookups 1|lease - 00:00:05', 'look-up 429: still submitted, due after Retry-After');
SELECT pg_temp.take('L1');
SELECT is(pg_temp.out('L1', 'lookup', 401, NULL), 'paused', 'look-up 401: paused');
SELECT is(pg_temp.o('L1'), 'submitted|sent to the provider|attempts 1|lookups 1|lease -',
	'look-up 401: still submitted, attempts kept');
SELECT pg_temp.take('L1');
SELECT is(pg_temp.out('L1', 'lookup', 400, pg_temp.perr('invalid_request', 'bad reference')), 'lookup',
	'look-up 400: unknown');
SELECT is(pg_temp.o('L1') || ' ' || pg_temp.err_of('L1'),
	'submitted|sent to the provider|attempts 1|lookups 2|lease - provider 400: invalid_request: bad reference',
	'look-up 400: still submitted, last_error from the body');

------------------------------------------------------------------------
-- record_outcome: a look-up that finds nothing
------------------------------------------------------------------------

SELECT pg_temp.send('N1');
SELECT pg_temp.out('N1', 'order', NULL, NULL, 'Operation timed out after 30000 milliseconds');
SELECT pg_temp.take('N1');
SELECT is(pg_temp.out('N1', 'lookup', 404, pg_temp.perr('not_found', 'no such order')), 'retry',
	'look-up 404, attempts left: retry');
SELECT is(pg_temp.o('N1') || ' ' || pg_temp.wait('N1'),
	'pending|not at the provider; sending again|attempts 1|lookups 0|lease - 00:00:00',
	'look-up 404: back to pending, due now, to be sent again');
SELECT is(pg_temp.take('N1'), 'order', 'look-up 404: the order is sent again');
SELECT is((SELECT format('%s|%s', body::jsonb ->> 'reference_id', attempt) FROM claimed),
	pg_temp.ref(pg_temp.id('N1')) || '|2', 'look-up 404: with the same reference, attempt 2');
SELECT pg_temp.out('N1', 'order', NULL, NULL, 'timeout 2');
SELECT pg_temp.take('N1');
SELECT is(pg_temp.out('N1', 'lookup', 404, NULL, _max_attempts => 2), 'failed',
	'look-up 404 at max_attempts: failed');
SELECT is(pg_temp.err_of('N1'), 'timeout 2 (gave up after 2 attempts)',
	'look-up 404 at max_attempts: the last error and the attempts made');
SELECT is(pg_temp.holds('N1'), 'voided/voided', 'look-up 404 at max_attempts: holds voided');
SELECT results_eq($$SELECT call, attempt, http_status, error, latency_ms, caller
		FROM gifq.provider_calls WHERE order_id = pg_temp.id('N1') ORDER BY id$$,
	$$VALUES ('order', 1, NULL::integer, 'Operation timed out after 30000 milliseconds', 12.5::float8, 'tap'),
		('lookup', 1, 404, NULL, 12.5, 'tap'), ('order', 2, NULL, 'timeout 2', 12.5, 'tap'),
		('lookup', 2, 404, NULL, 12.5, 'tap')$$,
	'provider_calls: every call about the order, in order');

SELECT pg_temp.send('P2');
SELECT pg_temp.out('P2', 'order', 201, pg_temp.answer('P2', 'processing'));
SELECT pg_temp.take('P2');
SELECT is(pg_temp.out('P2', 'lookup', 404, NULL), 'failed', 'look-up 404 of a processing order: failed');
SELECT is(pg_temp.err_of('P2'), 'not at the provider (gave up after 1 attempts)',
	'look-up 404 of a processing order: last_error');

------------------------------------------------------------------------
-- Every status change is audited
------------------------------------------------------------------------

SELECT is(pg_temp.trail('R1'), '->pending:redeemed pending>submitted:sent to the provider '
	'submitted>pending:rate limited by the provider', 'trail: a 429');
SELECT is(pg_temp.trail('A2'), '->pending:redeemed pending>submitted:sent to the provider '
	'submitted>pending:sending paused: provider 402: insufficient_funds: balance too low', 'trail: a 402');
SELECT is(pg_temp.trail('N1'), '->pending:redeemed pending>submitted:sent to the provider '
	'submitted>pending:not at the provider; sending again pending>submitted:sent to the provider '
	'submitted>failed:timeout 2 (gave up after 2 attempts)', 'trail: a look-up 404, a resend, a failure');
SELECT is(pg_temp.trail('P1'), '->pending:redeemed pending>submitted:sent to the provider '
	'submitted>processing:processing at the provider processing>delivered:delivered (look-up)',
	'trail: processing, then delivered');
SELECT is((SELECT count(*) FROM gifq.order_transitions WHERE actor <> pg_temp.me()), 0::bigint,
	'trail: the actor of every change is the calling role');
SELECT pg_temp.send('W1');
SELECT pg_temp.out('W1', 'order', 201, pg_temp.answer('W1', 'processing'));
SELECT throws_ok(format('UPDATE gifq.orders SET status = %L WHERE id = %s', 'pending', pg_temp.id('W1')),
	'QG216', format('order %s cannot go from processing to pending', pg_temp.id('W1')),
	'transition: a processing order cannot go back to pending');
SELECT throws_ok(format('UPDATE gifq.orders SET recipient_email = %L WHERE id = %s', 'x@example.com',
	pg_temp.id('W1')), 'QG120', format('order %s: only its status and fulfilment columns may change',
	pg_temp.id('W1')), 'transition: the recipient of an order cannot change');

------------------------------------------------------------------------
-- gifq_process_orders, against a closed port
------------------------------------------------------------------------

SELECT pg_temp.park();
SELECT pg_temp.redeem('X');
SELECT is(gifq_process_orders(10), 1, 'process_orders: one due order, one call');
SELECT is(pg_temp.o('X'), 'submitted|sent to the provider|attempts 1|lookups 1|lease -',
	'process_orders: no answer: the order stays submitted, to be looked up');
SELECT matches(pg_temp.err_of('X'), '^Failed to connect to 127\.0\.0\.1 port 9',
	'process_orders: last_error is the connection failure');
SELECT results_eq($$SELECT call, attempt, http_status, error, caller FROM gifq.provider_calls
		WHERE order_id = pg_temp.id('X')$$,
	$$VALUES ('order', 1, NULL::integer, pg_temp.err_of('X'), 'session ' || pg_backend_pid())$$,
	'process_orders: the call is logged with no HTTP status, under "session <pid>"');
SELECT ok(pg_temp.wait('X') BETWEEN make_interval(secs => pg_temp.base_ms() / 2000.0)
	AND make_interval(secs => pg_temp.base_ms() / 1000.0),
	'process_orders: looked up after the backoff (half to all of gifq.retry_base_ms)');
SELECT is(gifq_process_orders(), 0, 'process_orders: nothing due, no call');
SELECT throws_ok($$SELECT gifq_process_orders(0)$$, 'QG118', 'batch 0 is out of range',
	'process_orders: batch 0 is QG118');
SELECT throws_ok($$SELECT gifq_process_orders(NULL)$$, 'QG118', 'batch NULL is out of range',
	'process_orders: batch NULL is QG118');
SELECT throws_ok($$SELECT gifq_process_orders(10001)$$, 'QG118', 'batch 10001 is out of range',
	'process_orders: batch 10001 is QG118');

------------------------------------------------------------------------
-- Sealed cards
------------------------------------------------------------------------

SELECT matches(gifq.card_key_id(), '^[0-9a-f]{8}$', 'card_key_id: 8 hex digits');
SELECT is(gifq.card_key_id(), encode(substr(digest(digest('test-card-key', 'sha256'), 'sha256'), 1, 4), 'hex'),
	'card_key_id: the start of the SHA-256 of the key (the SHA-256 of gifq.card_key)');
SELECT is(gifq.card_key_id(), gifq.card_key_id(), 'card_key_id: stable');
SELECT results_eq($$SELECT get_byte(s, 0), encode(substr(s, 2, 4), 'hex'), length(s)
		FROM (SELECT gifq.card_seal(7, 'abc', 'pin') s) x$$,
	$$VALUES (1, gifq.card_key_id(), 1 + 4 + 12 + 3 + 1 + 4 + 16)$$,
	'card_seal: version 1, the key id, nonce, code, zero, P, PIN, tag');
SELECT isnt(gifq.card_seal(7, 'abc', 'pin'), gifq.card_seal(7, 'abc', 'pin'), 'card_seal: a fresh nonce each time');
SELECT results_eq($$SELECT * FROM gifq.card_open(7, gifq.card_seal(7, 'abc', NULL))$$,
	$$VALUES ('abc', NULL::text)$$, 'card_open: a card sealed without a PIN opens with a NULL PIN');
SELECT throws_ok(format('SELECT * FROM gifq.card_open(%s, %L::bytea)', pg_temp.id('P1'),
	(SELECT sealed FROM gifq.cards WHERE order_id = pg_temp.id('D1'))), 'QG403',
	format('the gift card of order %s cannot be opened: it does not authenticate (altered, or another order''s)',
		pg_temp.id('P1')), 'card_open: a card under another order''s id is QG403');
SELECT throws_ok($$SELECT * FROM gifq.card_open(7, substr(gifq.card_seal(7, 'abc', 'pin'), 1, 20))$$, 'QG403',
	'the gift card of order 7 cannot be opened: not a sealed card', 'card_open: a truncated card is QG403');
SELECT throws_ok($$SELECT c.* FROM (SELECT gifq.card_seal(7, 'abc', 'pin') s) x,
		gifq.card_open(7, set_byte(x.s, 18, get_byte(x.s, 18) # 1)) c$$, 'QG403',
	'the gift card of order 7 cannot be opened: it does not authenticate (altered, or another order''s)',
	'card_open: an altered card is QG403');
SELECT throws_ok($$SELECT * FROM gifq.card_open(7, overlay(gifq.card_seal(7, 'abc', 'pin')
		PLACING '\x00000000'::bytea FROM 2 FOR 4))$$, 'QG403',
	'the gift card of order 7 cannot be opened: it was sealed with key 00000000, which is neither gifq.card_key nor gifq.card_key_previous',
	'card_open: a card under an unknown key is QG403');
SELECT throws_ok(format('SELECT * FROM gifq_reveal_code(%s)', pg_temp.id('B')), 'QG401',
	format('order %s has no card: it is pending', pg_temp.id('B')), 'reveal: an order without a card is QG401');
SELECT throws_ok($$SELECT * FROM gifq_reveal_code(-1)$$, 'QG215', 'unknown order -1',
	'reveal: an unknown order is QG215');
-- a sealed card moved to another order's row (behind the trigger) does
-- not open, and its reveal is not recorded
SET LOCAL session_replication_role = replica;
UPDATE gifq.cards SET sealed = (SELECT sealed FROM gifq.cards WHERE order_id = pg_temp.id('D1'))
WHERE order_id = pg_temp.id('P1');
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.code(format('SELECT * FROM gifq_reveal_code(%s)', pg_temp.id('P1'))), 'QG403',
	'reveal: a card moved to another order is QG403');
SELECT is((SELECT count(*) FROM gifq.card_reveals WHERE order_id = pg_temp.id('P1')), 0::bigint,
	'reveal: a card that does not open records no reveal');
SELECT throws_ok(format('UPDATE gifq.cards SET key_id = %L WHERE order_id = %s', 'ffffffff', pg_temp.id('D1')),
	'QG120', format('the gift card of order %s cannot be changed', pg_temp.id('D1')),
	'cards: a card row cannot be rewritten');
SELECT throws_ok(format('DELETE FROM gifq.cards WHERE order_id = %s', pg_temp.id('D1')), 'QG120', NULL,
	'cards: a card row cannot be deleted');

------------------------------------------------------------------------
-- Webhooks: the signature and the body
------------------------------------------------------------------------

SELECT is(pg_temp.hook('{"id": "evt-s1", "type": "x.y"}'), 'ignored: unknown event type x.y',
	'signature: the current secret is accepted');
SELECT is(pg_temp.hook('{"id": "evt-s2", "type": "x.y"}', 'whsec-old'), 'ignored: unknown event type x.y',
	'signature: the previous secret is accepted');
SELECT is(gifq_provider_webhook('{"id": "evt-s3", "type": "x.y"}', (SELECT split_part(s, 'v1=', 1)
	|| 'v1=' || upper(split_part(s, 'v1=', 2)) FROM pg_temp.sig('{"id": "evt-s3", "type": "x.y"}') s)),
	'ignored: unknown event type x.y', 'signature: upper-case hex is accepted');
SELECT is(gifq_provider_webhook('{"id": "evt-s4", "type": "x.y"}', 'v2=zz, ' || replace(
	pg_temp.sig('{"id": "evt-s4", "type": "x.y"}'), ',', ', ')), 'ignored: unknown event type x.y',
	'signature: spaces after commas and unknown parts are accepted');
SELECT is(pg_temp.hook('{"id": "evt-s5", "type": "x.y"}', skew => -300), 'ignored: unknown event type x.y',
	'signature: 300 s old is accepted');
SELECT is(pg_temp.hook('{"id": "evt-s6", "type": "x.y"}', skew => 300), 'ignored: unknown event type x.y',
	'signature: 300 s ahead is accepted');
SELECT throws_ok($$SELECT pg_temp.hook('{"id": "evt-r1", "type": "x.y"}', 'whsec-wrong')$$, 'QG405',
	'webhook refused: signature does not match the body', 'signature: another secret is QG405');
SELECT throws_ok($$SELECT gifq_provider_webhook('{"id": "evt-r1", "type": "x.z"}',
	pg_temp.sig('{"id": "evt-r1", "type": "x.y"}'))$$, 'QG405',
	'webhook refused: signature does not match the body', 'signature: a body changed after signing is QG405');
SELECT throws_ok($$SELECT gifq_provider_webhook('{"id": "evt-r1", "type": "x.y"}', 'garbage')$$, 'QG405',
	'webhook refused: signature "garbage" is malformed', 'signature: garbage is QG405');
SELECT throws_ok($$SELECT gifq_provider_webhook('{"id": "evt-r1", "type": "x.y"}', 't=1')$$, 'QG405',
	'webhook refused: signature "t=1" is malformed', 'signature: t without v1 is QG405');
SELECT is(pg_temp.err($$SELECT gifq_provider_webhook('{}', 'v1=' || repeat('ab', 32))$$),
	'QG405: webhook refused: signature "v1=' || repeat('ab', 32) || '" is malformed / '
	'Expected t=<unix seconds>,v1=<64 hex digits>.', 'signature: v1 without t is QG405, with the detail');
SELECT matches(pg_temp.err($$SELECT pg_temp.hook('{"id": "evt-r1", "type": "x.y"}', skew => -301)$$),
	'^QG405: webhook refused: signature time \d+ is -301 s from now / At most 300 s either way are accepted\.$',
	'signature: 301 s old is QG405');
SELECT matches(pg_temp.err($$SELECT pg_temp.hook('{"id": "evt-r1", "type": "x.y"}', skew => 301)$$),
	'^QG405: webhook refused: signature time \d+ is 301 s from now / At most 300 s either way are accepted\.$',
	'signature: 301 s ahead is QG405');
SELECT throws_ok($$SELECT gifq_provider_webhook(NULL, 't=1,v1=' || repeat('ab', 32))$$, 'QG405',
	'webhook refused: no body', 'signature: a NULL body is QG405');
SELECT throws_ok($$SELECT gifq_provider_webhook('{"id": "evt-r1", "type": "x.y"}', NULL)$$, 'QG405',
	'webhook refused: no signature', 'signature: a NULL signature is QG405');
SELECT throws_ok($$SELECT pg_temp.hook('not json')$$, 'QG404', 'webhook body not json is not an event',
	'event: a body that is not JSON is QG404');
SELECT throws_ok($$SELECT pg_temp.hook('[1, 2]')$$, 'QG404', 'webhook body [1, 2] is not an event',
	'event: a JSON array is QG404');
SELECT throws_ok($$SELECT pg_temp.hook('{"id": 1, "type": "x.y"}')$$, 'QG404', NULL,
	'event: a numeric id is QG404');
-- an object without "type" (or "id") is not an event either
SELECT is(pg_temp.code($$SELECT pg_temp.hook('{"id": "evt-r2"}')$$), 'QG404',
	'event: an object without a type is QG404');
SELECT is(pg_temp.code($$SELECT pg_temp.hook('{"type": "catalog.updated"}')$$), 'QG404',
	'event: an object without an id is QG404');
SELECT is((SELECT count(*) FROM gifq.webhook_events WHERE event_id NOT LIKE 'evt-s_'), 0::bigint,
	'signature: refused webhooks record nothing');

------------------------------------------------------------------------
-- Webhooks: what events do
------------------------------------------------------------------------

SELECT is(pg_temp.hook(pg_temp.event('evt-w1', 'order.delivered', 'W1',
	'{"status": "delivered"}' || pg_temp.card('WHK-0000-1111', '77'))), format('order %s delivered', pg_temp.id('W1')),
	'order.delivered: a processing order is delivered');
SELECT is(pg_temp.o('W1'), 'delivered|delivered (webhook)|attempts 1|lookups 0|lease -',
	'order.delivered: reason delivered (webhook)');
SELECT results_eq($$SELECT * FROM gifq_reveal_code(pg_temp.id('W1'))$$, $$VALUES ('WHK-0000-1111', '77')$$,
	'order.delivered: the card is stored');
SELECT is(pg_temp.holds('W1'), 'posted/posted', 'order.delivered: both holds are posted');
SELECT pg_temp.state() AS before \gset
SELECT is(pg_temp.hook(pg_temp.event('evt-w1', 'order.delivered', 'W1',
	'{"status": "delivered"}' || pg_temp.card('WHK-0000-1111', '77'))),
	format('duplicate event evt-w1: order %s delivered', pg_temp.id('W1')),
	'order.delivered: the same event again is a duplicate');
SELECT is(pg_temp.state(), :'before', 'order.delivered: the duplicate changes nothing');
SELECT is(pg_temp.hook(pg_temp.event('evt-w1b', 'order.delivered', 'W1',
	'{"status": "delivered"}' || pg_temp.card('WHK-0000-1111', '77'))), 'already delivered',
	'order.delivered: another event for a delivered order says already delivered');

SELECT pg_temp.send('W2');
SELECT pg_temp.out('W2', 'order', 201, pg_temp.answer('W2', 'processing'));
SELECT is(pg_temp.hook(pg_temp.event('evt-w2', 'order.failed', 'W2',
	'{"status": "failed", "error": {"code": "out_of_stock", "message": "gone"}}'), 'whsec-old'),
	format('order %s failed', pg_temp.id('W2')), 'order.failed: a processing order fails (previous secret)');
SELECT is(pg_temp.o('W2') || ' ' || pg_temp.holds('W2'),
	'failed|provider: out_of_stock: gone|attempts 1|lookups 0|lease - voided/voided',
	'order.failed: last_error from the event, holds voided');

SELECT is(pg_temp.hook(pg_temp.event('evt-w3', 'order.delivered', 'X422',
	'{"status": "delivered"}' || pg_temp.card('NOPE-0000'))), format('ignored: order %s is failed', pg_temp.id('X422')),
	'order.delivered for a failed order is ignored');
SELECT is(pg_temp.o('X422') || ' ' || (SELECT count(*) FROM gifq.cards WHERE order_id = pg_temp.id('X422')),
	'failed|provider 422: out_of_stock: brand out of stock|attempts 1|lookups 0|lease - 0',
	'order.delivered for a failed order: still failed, no card');
SELECT results_eq($$SELECT program_id, payload FROM gifq.outbox WHERE event_type = 'provider.alert'$$,
	$$VALUES ((SELECT id FROM gifq.programs WHERE code = 'tap-w'), jsonb_build_object('order_id', pg_temp.id('X422'),
		'reason', 'webhook contradicts a settled order', 'order_status', 'failed', 'webhook', 'order.delivered'))$$,
	'order.delivered for a failed order raises one provider.alert');

SELECT is(pg_temp.hook(pg_temp.event('evt-r3', 'card.redeemed', 'D1')),
	format('card of order %s redeemed', pg_temp.id('D1')), 'card.redeemed: after delivery');
SELECT is((SELECT redeemed_at FROM gifq.cards WHERE order_id = pg_temp.id('D1')), now(),
	'card.redeemed: sets the card''s redeemed_at');

SELECT pg_temp.send('W5');
SELECT pg_temp.out('W5', 'order', 201, pg_temp.answer('W5', 'processing'));
SELECT is(pg_temp.hook(pg_temp.event('evt-r5', 'card.redeemed', 'W5')),
	format('card of order %s redeemed (before its delivery)', pg_temp.id('W5')),
	'card.redeemed before delivery is remembered');
SELECT pg_temp.hook(pg_temp.event('evt-w5', 'order.delivered', 'W5', '{"status": "delivered"}' || pg_temp.card('EARLY-0005')));
SELECT is((SELECT redeemed_at FROM gifq.cards WHERE order_id = pg_temp.id('W5')), now(),
	'card.redeemed before delivery: the delivered card is stored redeemed');

SELECT pg_temp.redeem('W6');
SELECT is(pg_temp.hook(pg_temp.event('evt-w6', 'order.delivered', 'W6', '{"status": "delivered"}'
	|| pg_temp.card('PEND-0006'))), format('order %s pending', pg_temp.id('W6')),
	'order.delivered for a pending order changes nothing');

SELECT pg_temp.send('W7');
SELECT pg_temp.out('W7', 'order', 201, pg_temp.answer('W7', 'processing'));
SELECT is(pg_temp.hook(pg_temp.event('evt-w7', 'order.delivered', 'W7', '{"status": "delivered"}')),
	'ignored: no card in the event', 'order.delivered without a card is ignored');

-- a webhook and the worker's answer race: the second is stale
SELECT is(pg_temp.hook(pg_temp.event('evt-race', 'order.delivered', 'S1', '{"status": "delivered"}'
	|| pg_temp.card('RACE-0001'))), format('order %s delivered', pg_temp.id('S1')),
	'race: the webhook delivers an order a claimer still holds');
SELECT is(pg_temp.out('S1', 'order', 201, pg_temp.answer('S1', 'delivered', pg_temp.card('RACE-0001'))), 'stale',
	'race: the claimer''s answer is then stale');

SELECT is(pg_temp.hook('{"id": "evt-u1", "type": "order.delivered", "data": {"reference_id": "gifq-ord-999999999999"}}'),
	'unknown order gifq-ord-999999999999', 'an event about an unknown reference');
SELECT is(pg_temp.hook('{"id": "evt-u2", "type": "card.redeemed", "data": {"reference_id": "nope"}}'),
	'unknown card nope', 'card.redeemed about an unknown reference');
SELECT is(pg_temp.hook('{"id": "evt-u3", "type": "refund.issued", "data": {}}'),
	'ignored: unknown event type refund.issued', 'an unknown event type is ignored');
SELECT is(pg_temp.hook('{"id": "evt-u4", "type": "catalog.updated", "data": {}}'),
	'catalog refresh requested', 'catalog.updated requests a refresh');
SELECT results_eq($$SELECT event_id, event_type, order_id, outcome FROM gifq.webhook_events
		WHERE event_id NOT LIKE 'evt-s_' ORDER BY event_id$$,
	$$VALUES ('evt-r3', 'card.redeemed', pg_temp.id('D1'), format('card of order %s redeemed', pg_temp.id('D1'))),
		('evt-r5', 'card.redeemed', pg_temp.id('W5'), format('card of order %s redeemed (before its delivery)', pg_temp.id('W5'))),
		('evt-race', 'order.delivered', pg_temp.id('S1'), format('order %s delivered', pg_temp.id('S1'))),
		('evt-u1', 'order.delivered', 999999999999, 'unknown order gifq-ord-999999999999'),
		('evt-u2', 'card.redeemed', NULL, 'unknown card nope'),
		('evt-u3', 'refund.issued', NULL, 'ignored: unknown event type refund.issued'),
		('evt-u4', 'catalog.updated', NULL, 'catalog refresh requested'),
		('evt-w1', 'order.delivered', pg_temp.id('W1'), format('order %s delivered', pg_temp.id('W1'))),
		('evt-w1b', 'order.delivered', pg_temp.id('W1'), 'already delivered'),
		('evt-w2', 'order.failed', pg_temp.id('W2'), format('order %s failed', pg_temp.id('W2'))),
		('evt-w3', 'order.delivered', pg_temp.id('X422'), format('ignored: order %s is failed', pg_temp.id('X422'))),
		('evt-w5', 'order.delivered', pg_temp.id('W5'), format('order %s delivered', pg_temp.id('W5'))),
		('evt-w6', 'order.delivered', pg_temp.id('W6'), format('order %s pending', pg_temp.id('W6'))),
		('evt-w7', 'order.delivered', pg_temp.id('W7'), 'ignored: no card in the event')$$,
	'webhook_events: one row per event applied, with its order and outcome');

------------------------------------------------------------------------
-- Events out
------------------------------------------------------------------------

SELECT is((SELECT count(*) FROM gifq.outbox WHERE send_status IS NOT NULL), 0::bigint,
	'events: events written while gifq.events_url is unset are not queued (send_status NULL)');
SELECT is(pg_temp.code($$SET gifq.events_url = 'http://127.0.0.1:9/hooks'$$), '55P02',
	'events: gifq.events_url cannot be set in a session');
SELECT min(id) AS ev1, max(id) AS ev2 FROM gifq.outbox
WHERE event_type = 'order.delivered' AND payload ->> 'order_id' IN (pg_temp.id('D1')::text, pg_temp.id('P1')::text) \gset
UPDATE gifq.outbox SET send_status = 'pending' WHERE id IN (:ev1, :ev2);
SELECT results_eq($$SELECT event_id FROM gifq.claim_events(1, '1 minute')$$, format('VALUES (%s::bigint)', :ev1),
	'claim_events: the oldest pending event first, up to batch');
SELECT is((SELECT format('%s|%s|%s', send_status, send_attempts, send_after - now()) FROM gifq.outbox WHERE id = :ev1),
	'pending|1|00:01:00', 'claim_events: leased, its attempts + 1');
SELECT results_eq($$SELECT event_id, body::jsonb FROM gifq.claim_events(10, '1 minute')$$,
	format($$SELECT id, jsonb_build_object('id', 'gifq_evt_' || id, 'type', 'order.delivered',
		'created_at', created_at, 'data', payload) FROM gifq.outbox WHERE id = %s$$, :ev2),
	'claim_events: the body is id gifq_evt_<n>, type, created_at and data; leased events are skipped');
SELECT is(gifq.record_event_sent(:ev1, 503, NULL, 8.0, 'tap', 20, 1000, 300000), 'retry',
	'record_event_sent: a 503 is retried');
SELECT is((SELECT format('%s|%s', send_status, send_error) FROM gifq.outbox WHERE id = :ev1), 'pending|HTTP 503',
	'record_event_sent: pending, the error recorded');
SELECT ok((SELECT send_after - now() BETWEEN '0.5 s' AND '1 s' FROM gifq.outbox WHERE id = :ev1),
	'record_event_sent: due again after the backoff');
SELECT is((SELECT count(*) FROM gifq.claim_events(10, '1 minute')), 0::bigint,
	'claim_events: nothing is due before send_after');
UPDATE gifq.outbox SET send_after = now() - interval '1 second' WHERE id = :ev1;
SELECT gifq.claim_events(10, '1 minute');
SELECT is(gifq.record_event_sent(:ev1, 204, NULL, 8.0, 'tap', 20, 1000, 300000), 'sent', 'record_event_sent: 2xx is sent');
SELECT is((SELECT format('%s|%s|%s|%s', send_status, send_attempts, sent_at = now(), coalesce(send_error, '-'))
	FROM gifq.outbox WHERE id = :ev1), 'sent|2|t|-', 'record_event_sent: sent, sent_at set, error cleared');
SELECT is(gifq.record_event_sent(:ev2, NULL, 'Connection refused', 8.0, 'tap', 1, 1000, 300000), 'failed',
	'record_event_sent: at max attempts the event fails');
SELECT is((SELECT format('%s|%s', send_status, send_error) FROM gifq.outbox WHERE id = :ev2),
	'failed|Connection refused', 'record_event_sent: failed, with the error');
SELECT results_eq($$SELECT call, order_id, attempt, http_status, error, caller FROM gifq.provider_calls
		WHERE call = 'event' ORDER BY id$$,
	$$VALUES ('event', NULL::bigint, 1, 503, NULL::text, 'tap'), ('event', NULL, 2, 204, NULL, 'tap'),
		('event', NULL, 1, NULL, 'Connection refused', 'tap')$$,
	'record_event_sent: every POST is logged as an event call');

------------------------------------------------------------------------
-- Backoff, the call log, the views
------------------------------------------------------------------------

-- 400 samples per n: every wait in [0.5, 1) x min(cap, base x 2^(n-1)),
-- and spread over the range (the interval is rounded to microseconds, so
-- a factor within 1e-6 of 1 may show as 1)
SELECT results_eq($$
	SELECT n, bool_and(s >= x / 2 AND s <= x), min(s) < 0.55 * x, max(s) > 0.95 * x
	FROM (SELECT n, extract(epoch FROM gifq.backoff(n, 1000, 300000)) s,
			least(300, power(2, greatest(n, 1) - 1))::numeric x
		FROM unnest('{-3,0,1,2,3,5,9,10,40}'::int[]) n, generate_series(1, 400)) q
	GROUP BY n, x ORDER BY n$$,
	$$VALUES (-3, true, true, true), (0, true, true, true), (1, true, true, true), (2, true, true, true),
		(3, true, true, true), (5, true, true, true), (9, true, true, true), (10, true, true, true),
		(40, true, true, true)$$,
	'backoff: 0.5 to 1 times min(cap, base x 2^(n-1)), n below 1 as 1, no overflow for large n');
SELECT ok((SELECT bool_and(gifq.backoff(3, 250, 600) BETWEEN '0.3 s' AND '0.6 s') FROM generate_series(1, 200)),
	'backoff: the cap bounds it (250 ms x 4 capped at 600 ms)');

INSERT INTO gifq.provider_calls (at, call, latency_ms, caller) VALUES
	(now() - interval '8 days', 'balance', 1, 'old'),
	(now() - interval '7 days 1 second', 'balance', 1, 'old'),
	(now() - interval '6 days', 'balance', 1, 'old'),
	(now() - interval '2 hours', 'balance', 1, 'old');
SELECT is(gifq.prune_provider_calls('7 days'), 2::bigint, 'prune_provider_calls: deletes the calls older than keep');
SELECT is((SELECT count(*) FROM gifq.provider_calls WHERE caller = 'old'), 2::bigint,
	'prune_provider_calls: and only those');

SELECT gifq.log_call('balance', NULL, NULL, s, NULL, l, 'tap')
FROM (VALUES (200, 10), (200, 20), (200, 30), (503, 40), (200, 50), (429, 60), (200, 70),
	(NULL, 80), (200, 90), (200, 100)) v(s, l);
SELECT results_eq($$SELECT calls, transient_errors, p50_ms, round(p95_ms::numeric, 6), round(p99_ms::numeric, 6)
		FROM gifq.provider_latency WHERE call = 'balance'$$,
	$$VALUES (10::bigint, 3::bigint, 55::float8, 95.5, 99.1)$$,
	'provider_latency: the last hour''s calls, transient errors (no answer, 5xx, 429) and percentiles');
SELECT results_eq($$SELECT calls, transient_errors FROM gifq.provider_latency WHERE call = 'event'$$,
	$$VALUES (3::bigint, 2::bigint)$$, 'provider_latency: the event POSTs');

-- two deliveries moved three hours back, one two days back
UPDATE gifq.orders SET delivered_at = now() - interval '3 hours' WHERE id IN (pg_temp.id('D1'), pg_temp.id('P1'));
UPDATE gifq.orders SET delivered_at = now() - interval '2 days'
WHERE id IN (pg_temp.id('U1'), pg_temp.id('BADDATE')) AND status = 'delivered';
-- delivered this hour: W1, W5, S1; failed: F1, X400, X404, X409, X422,
-- X418, N1, P2, W2
SELECT results_eq($$SELECT hour, delivered, failed, success_rate FROM gifq.order_success ORDER BY hour$$,
	$$VALUES (date_trunc('hour', now() - interval '3 hours'), 2::bigint, 0::bigint, 1.0000),
		(date_trunc('hour', now()), 3, 9, 0.2500)$$,
	'order_success: deliveries and failures of the last day by hour, and the success rate');

SELECT results_eq($$SELECT database, queue_depth, orders_in_flight FROM gifq.worker$$,
	$$SELECT d, NULL::bigint, NULL::bigint
	FROM unnest(string_to_array(replace(current_setting('gifq.database'), ' ', ''), ',')) d$$,
	'worker: the workers of gifq.database are listed, without this database''s queue');

------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------

SELECT ok(NOT has_function_privilege('public', 'gifq_process_orders(integer)', 'EXECUTE'), 'privileges: PUBLIC cannot run gifq_process_orders');
SELECT ok(NOT has_function_privilege('public', 'gifq_reveal_code(bigint)', 'EXECUTE'), 'privileges: PUBLIC cannot run gifq_reveal_code');
SELECT ok(NOT has_function_privilege('public', 'gifq_provider_webhook(text, text)', 'EXECUTE'), 'privileges: PUBLIC cannot run gifq_provider_webhook');
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = 'gifq'::regnamespace
	AND proname IN ('claim_work', 'record_outcome', 'card_open', 'card_seal', 'apply_webhook', 'claim_events')
	AND has_function_privilege('public', oid, 'EXECUTE')), 0::bigint,
	'privileges: PUBLIC cannot run the internal fulfilment functions');
SELECT is((SELECT string_agg(format('%s %s %s', proname, prosecdef, proconfig), ', ' ORDER BY proname)
	FROM pg_proc WHERE proname IN ('gifq_process_orders', 'gifq_reveal_code', 'gifq_provider_webhook')),
	'gifq_process_orders t {"search_path=pg_catalog, pg_temp"}, '
	'gifq_provider_webhook t {"search_path=pg_catalog, pg_temp"}, '
	'gifq_reveal_code t {"search_path=pg_catalog, pg_temp"}',
	'privileges: the three are SECURITY DEFINER with a fixed search_path');

------------------------------------------------------------------------
-- The ledger is consistent
------------------------------------------------------------------------

SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'verify: the ledger is consistent at the end');

SELECT * FROM finish();
ROLLBACK;
