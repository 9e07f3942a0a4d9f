-- forget_member.sql: pgTAP suite for gifq_forget_member (0.8.0), the GDPR
-- erasure of a member's personal data: the member's email and
-- attributes, the recipients of their orders, the address of the rewards
-- sent to their email in the program (and of the orders those made), their
-- events' attributes, and every copy in the outbox, the provider-call log
-- and the webhook log are erased; ids, country, accounts, transfers,
-- orders, rewards and balances stay identical and gifq_ledger_verify() is
-- empty; no copy of the address is left in any text or jsonb column of any
-- gifq table (the other program's reward to the same address aside); the
-- call is idempotent and audited (without personal data); the member can
-- still redeem, be given data again, and claim what was sent.
-- SQLSTATEs: QG101 unknown program, QG102 unknown member, QG120 immutable.
-- Everything runs in one transaction, rolled back at the end.
BEGIN;
SELECT plan(44);

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
CREATE FUNCTION pg_temp.pid(code text DEFAULT 'tap-f') RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT id FROM gifq.programs WHERE code = $1 $$;
CREATE FUNCTION pg_temp.mid(member text) RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT id FROM gifq.members WHERE program_id = pg_temp.pid() AND external_id = $1
$$;

-- every text and jsonb column of every gifq table (and view's base
-- table), "table.column", whose values contain needle, any case, with the
-- number of rows
CREATE FUNCTION pg_temp.copies(needle text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	c record;
	n bigint;
	found text[] := '{}';
BEGIN
	FOR c IN SELECT a.attrelid::regclass AS tab, a.attname AS col
		FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
		WHERE r.relnamespace = 'gifq'::regnamespace AND r.relkind IN ('r', 'p')
			AND a.attnum > 0 AND NOT a.attisdropped
			AND a.atttypid IN ('text'::regtype, 'jsonb'::regtype, 'json'::regtype,
				'varchar'::regtype, 'text[]'::regtype, 'name'::regtype, 'bytea'::regtype)
		ORDER BY a.attrelid::regclass::text, a.attname LOOP
		EXECUTE format('SELECT count(*) FROM %s WHERE strpos(lower(%I::text), lower($1)) > 0',
			c.tab, c.col) INTO n USING needle;
		IF n > 0 THEN
			found := found || format('%s.%s:%s', c.tab, c.col, n);
		END IF;
	END LOOP;
	RETURN coalesce(nullif(array_to_string(found, ' '), ''), 'none');
END $$;

-- what erasure must not change: the ledger, the orders and rewards but
-- their addresses and messages, the balances
CREATE FUNCTION pg_temp.ledger() RETURNS text
LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(t::text, ',' ORDER BY t.id) FROM gifq.transfers t),
		(SELECT string_agg(e::text, ',' ORDER BY e.account_id, e.slot, e.version) FROM gifq.entries e),
		(SELECT string_agg(s::text, ',' ORDER BY s.account_id, s.slot) FROM gifq.account_slots s),
		(SELECT string_agg(h::text, ',' ORDER BY h.transfer_id) FROM gifq.holds h),
		(SELECT string_agg(a::text, ',' ORDER BY a.id) FROM gifq.accounts a)))
$$;
CREATE FUNCTION pg_temp.orders() RETURNS text
LANGUAGE sql AS $$
	SELECT md5(string_agg(concat_ws('|', o.id, o.program_id, o.member_id, o.brand_id, o.amount,
		o.currency, o.cost, o.margin, o.points, o.status, o.points_hold, o.funding_hold,
		o.attempts, o.code_last4, o.reward_id, o.recipient_given), ',' ORDER BY o.id))
	FROM gifq.orders o
$$;
CREATE FUNCTION pg_temp.rewards() RETURNS text
LANGUAGE sql AS $$
	SELECT md5(string_agg(concat_ws('|', r.id, r.program_id, r.value, r.currency, r.status,
		r.hold_id, r.order_id, r.member_id, r.token_hash, r.expires_at), ',' ORDER BY r.id))
	FROM gifq.rewards r
$$;
CREATE FUNCTION pg_temp.balances() RETURNS text
LANGUAGE sql AS $$
	SELECT concat_ws('|', gifq_member_balance('tap-f', 'zoe'), gifq_member_balance('tap-f', 'kim'),
		gifq_program_balance('tap-f'), gifq_program_balance('tap-g'))
$$;
-- the member's personal state, "email|attributes|country|forgotten"
CREATE FUNCTION pg_temp.member(member text) RETURNS text
LANGUAGE sql AS $$
	SELECT concat_ws('|', coalesce(email, '-'), attributes, coalesce(country, '-'),
		forgotten_at IS NOT NULL)
	FROM gifq.members WHERE id = pg_temp.mid($1)
$$;

------------------------------------------------------------------------
-- A member with personal data everywhere gifq keeps it
------------------------------------------------------------------------

SELECT gifq_catalog_load('{"brands": [{"id": "forget-us", "name": "Forget Store", "country": "US",
	"currency": "USD", "categories": ["retail"], "denominations": [5, 10, 25],
	"discount_pct": 2.0, "in_stock": true}]}');
SELECT gifq_create_program('tap-f', 'USD');
SELECT gifq_create_program('tap-g', 'USD');
SELECT gifq_fund('tap-f', '1000.00 USD', 'f-fund');
SELECT gifq_fund('tap-g', '1000.00 USD', 'g-fund');
SELECT gifq_upsert_member('tap-f', 'zoe', 'Zoe.Forget@Example.com', 'US',
	'{"full_name": "Zoe Secretname", "address": "1 Hidden Lane"}');
SELECT gifq_upsert_member('tap-f', 'kim', 'kim@example.com', 'US', '{"team": "blue"}');
-- a reward threshold: crossing it sends a reward to the member's email,
-- whose reward.issued event carries the address
SELECT gifq_define_threshold('tap-f', 500, 'reward', '5.00 USD');
SELECT gifq_transfer(gifq_account('tap-f', NULL, 'issuance'), gifq_account('tap-f', 'zoe'), '100000 PTS');
SELECT gifq_transfer(gifq_account('tap-f', NULL, 'issuance'), gifq_account('tap-f', 'kim'), '100000 PTS');
-- orders: to herself (pending), and to a friend (delivered, with a
-- provider error that echoed the address on the way)
INSERT INTO ids SELECT 'own', order_id FROM gifq_redeem('tap-f', 'zoe', 'forget-us', '10.00 USD', 'f-1');
INSERT INTO ids SELECT 'gift', order_id
	FROM gifq_redeem('tap-f', 'zoe', 'forget-us', '10.00 USD', 'f-2', 'gift.friend@example.org');
INSERT INTO ids SELECT 'kim', order_id FROM gifq_redeem('tap-f', 'kim', 'forget-us', '10.00 USD', 'k-1');
SELECT count(*) FROM gifq.claim_work(100, '1 minute', 'tap') WHERE order_id = pg_temp.id('gift');
SELECT gifq.record_outcome(pg_temp.id('gift'), 'order', 'tap', 201,
	jsonb_build_object('order_id', 'ord-f2', 'reference_id', gifq.order_reference(pg_temp.id('gift')),
		'status', 'delivered', 'gift_card', jsonb_build_object('code', 'FGT-1', 'pin', '1'))::text,
	NULL, 5.0, NULL, 5, 1000, 300000);
UPDATE gifq.orders SET last_error = 'mailbox GIFT.FRIEND@example.org was full'
WHERE id = pg_temp.id('gift');
SELECT gifq.log_call('order', pg_temp.id('gift'), 1, 422, 'recipient gift.friend@example.org refused',
	3.0, 'tap');
INSERT INTO gifq.webhook_events (event_id, event_type, order_id, outcome)
VALUES ('evt-f1', 'order.failed', pg_temp.id('gift'), 'bounced: zoe.forget@example.com');
-- rewards sent to her address in this program (one claimed later) and in another
INSERT INTO tokens SELECT 'direct', claim_token
	FROM gifq_send_reward('tap-f', 'zoe.forget@example.com', '5.00 USD', 'rw-f1');
SELECT gifq_send_reward('tap-g', 'zoe.forget@example.com', '5.00 USD', 'rw-g1');
SELECT gifq_send_reward('tap-f', 'kim@example.com', '5.00 USD', 'rw-k1');
-- events with attributes, and an event of the platform's own naming her
SELECT gifq_set_rule('tap-f', 'visit', 1);
SELECT points_awarded FROM gifq_record_event('tap-f', 'zoe', 'visit', 'v-1', now(),
	'{"contact": "zoe.forget@example.com", "city": "Hiddenville"}');
SELECT points_awarded FROM gifq_record_event('tap-f', 'kim', 'visit', 'v-2', now(), '{"city": "Blue"}');
SELECT gifq.emit(pg_temp.pid(), 'custom.note', '{"to": "Zoe.Forget@example.com", "about": "welcome"}');
SELECT gifq.emit(pg_temp.pid(), 'custom.note', '{"to": "kim@example.com"}');

SELECT is(pg_temp.copies('zoe.forget@example.com'),
	'gifq.events.attributes:1 gifq.members.email:1 gifq.orders.recipient_email:1 gifq.outbox.payload:2 gifq.rewards.recipient_email:3 gifq.webhook_events.outcome:1',
	'before: her address is in members, orders, rewards (two programs), events, outbox and webhooks');
SELECT is(pg_temp.copies('gift.friend@example.org'),
	'gifq.orders.last_error:1 gifq.orders.recipient_email:1 gifq.provider_calls.error:1',
	'before: her friend''s address is on her order and in the call log');

CREATE TEMP TABLE before AS SELECT pg_temp.ledger() AS ledger, pg_temp.orders() AS orders,
	pg_temp.rewards() AS rewards, pg_temp.balances() AS balances,
	(SELECT count(*) FROM gifq.audit) AS audit_rows;

------------------------------------------------------------------------
-- Forgetting
------------------------------------------------------------------------

SELECT lives_ok($$SELECT gifq_forget_member('tap-f', 'zoe')$$, 'forget_member: zoe is forgotten');
SELECT is(pg_temp.member('zoe'), '-|{}|US|t',
	'the member: no email, no attributes, country kept, marked forgotten');
SELECT is((SELECT external_id FROM gifq.members WHERE id = pg_temp.mid('zoe')), 'zoe',
	'the member keeps its id and external id');
SELECT is(pg_temp.copies('zoe.forget@example.com'), 'gifq.rewards.recipient_email:1',
	'after: her address is nowhere in gifq but on the other program''s reward');
SELECT is((SELECT p.code FROM gifq.rewards r JOIN gifq.programs p ON p.id = r.program_id
		WHERE r.recipient_email = 'zoe.forget@example.com'), 'tap-g',
	'the reward left is the other program''s');
SELECT is(pg_temp.copies('gift.friend@example.org'), 'none', 'after: her friend''s address is nowhere');
SELECT is(pg_temp.copies('Secretname') || ' ' || pg_temp.copies('Hidden'), 'none none',
	'after: her attributes and her events'' attributes are nowhere');
SELECT results_eq($$SELECT recipient_email, last_error FROM gifq.orders
		WHERE id IN (pg_temp.id('own'), pg_temp.id('gift')) ORDER BY id$$,
	$$VALUES (NULL::text, NULL::text), (NULL, 'mailbox redacted was full')$$,
	'her orders: recipients erased, the error kept without the address');
SELECT is((SELECT error FROM gifq.provider_calls WHERE order_id = pg_temp.id('gift') AND http_status = 422),
	'recipient redacted refused', 'the call log keeps the error without the address');
SELECT is((SELECT outcome FROM gifq.webhook_events WHERE event_id = 'evt-f1'), 'bounced: redacted',
	'the webhook log keeps the outcome without the address');
SELECT is((SELECT count(*) FROM gifq.outbox WHERE program_id = pg_temp.pid()
		AND payload ->> 'to' = 'redacted' AND payload ->> 'about' = 'welcome'), 1::bigint,
	'the outbox keeps the event, the address redacted');
SELECT is((SELECT count(*) FROM gifq.outbox WHERE event_type = 'reward.issued'
		AND payload ->> 'recipient_email' = 'redacted' AND payload ->> 'member' = 'zoe'), 1::bigint,
	'reward.issued: redacted, the member''s external id kept');
SELECT is((SELECT attributes FROM gifq.events WHERE member_id = pg_temp.mid('zoe')), '{}'::jsonb,
	'her events: attributes erased');
SELECT is((SELECT count(*) FROM gifq.rewards WHERE program_id = pg_temp.pid() AND recipient_email IS NULL),
	2::bigint, 'her rewards in the program (the threshold''s, the direct one): recipient erased');

-- others are untouched
SELECT is(pg_temp.member('kim'), 'kim@example.com|{"team": "blue"}|US|f', 'kim is untouched');
SELECT is((SELECT recipient_email FROM gifq.orders WHERE id = pg_temp.id('kim')), 'kim@example.com',
	'kim''s order is untouched');
SELECT is((SELECT attributes FROM gifq.events WHERE member_id = pg_temp.mid('kim')), '{"city": "Blue"}'::jsonb,
	'kim''s event is untouched');
SELECT is((SELECT count(*) FROM gifq.outbox WHERE payload ->> 'to' = 'kim@example.com'), 1::bigint,
	'kim''s outbox event is untouched');

-- the money is untouched
SELECT is(pg_temp.ledger(), (SELECT ledger FROM before),
	'transfers, entries, balance slots, holds and accounts are identical');
SELECT is(pg_temp.orders(), (SELECT orders FROM before), 'orders are identical but for addresses');
SELECT is(pg_temp.rewards(), (SELECT rewards FROM before), 'rewards are identical but for addresses');
SELECT is(pg_temp.balances(), (SELECT balances FROM before), 'balances are identical');
SELECT is((SELECT count(*) FROM gifq_ledger_verify()), 0::bigint, 'gifq_ledger_verify() is empty');

-- audited, without personal data
SELECT results_eq($$SELECT table_name, object_id, program_id, acting_role = current_user::text,
		(after ->> 'orders')::int, (after ->> 'rewards')::int, (after ->> 'events')::int
		FROM gifq.audit WHERE operation = 'FORGET'$$,
	$$VALUES ('members', pg_temp.mid('zoe')::text, pg_temp.pid(), true, 2, 2, 1)$$,
	'audited: one FORGET row, who and how much');
SELECT results_eq($$SELECT before ->> 'email', after ->> 'email', after ? 'forgotten_at'
		FROM gifq.audit WHERE table_name = 'members' AND operation = 'UPDATE'
			AND object_id = pg_temp.mid('zoe')::text ORDER BY id DESC LIMIT 1$$,
	$$VALUES ('redacted', NULL::text, true)$$,
	'the member''s change: the email shown erased, never its value');

------------------------------------------------------------------------
-- Idempotent; errors
------------------------------------------------------------------------

CREATE TEMP TABLE once AS SELECT pg_temp.member('zoe') AS m, pg_temp.orders() AS o,
	(SELECT forgotten_at FROM gifq.members WHERE id = pg_temp.mid('zoe')) AS f;
SELECT lives_ok($$SELECT gifq_forget_member('tap-f', 'zoe')$$, 'forgetting again works');
SELECT is(pg_temp.member('zoe') || pg_temp.orders(), (SELECT m || o FROM once), 'and changes nothing');
SELECT is((SELECT forgotten_at FROM gifq.members WHERE id = pg_temp.mid('zoe')), (SELECT f FROM once),
	'forgotten_at keeps the first erasure');
SELECT is((SELECT count(*) FROM gifq.audit WHERE operation = 'FORGET'), 2::bigint,
	'each request is audited');
SELECT throws_ok($$SELECT gifq_forget_member('no-such', 'zoe')$$, 'QG101', NULL,
	'an unknown program is QG101');
SELECT throws_ok($$SELECT gifq_forget_member('tap-f', 'nobody')$$, 'QG102',
	'unknown member "nobody" in program "tap-f"', 'an unknown member is QG102');
SELECT throws_ok($$SELECT gifq_forget_member('tap-g', 'zoe')$$, 'QG102', NULL,
	'a member of another program is QG102');

------------------------------------------------------------------------
-- After forgetting
------------------------------------------------------------------------

-- she can still redeem: the card is kept for the platform to reveal, or
-- sent where the platform says
INSERT INTO ids SELECT 'after', order_id FROM gifq_redeem('tap-f', 'zoe', 'forget-us', '5.00 USD', 'f-3');
INSERT INTO ids SELECT 'after-to', order_id
	FROM gifq_redeem('tap-f', 'zoe', 'forget-us', '5.00 USD', 'f-4', 'new.place@example.com');
SELECT results_eq($$SELECT status, recipient_email FROM gifq.orders
		WHERE id IN (pg_temp.id('after'), pg_temp.id('after-to')) ORDER BY id$$,
	$$VALUES ('pending', NULL::text), ('pending', 'new.place@example.com')$$,
	'redeem after forgetting: without a recipient (the card kept for the platform), or to the one passed');
-- a reward sent to her erased address can still be claimed with its token
INSERT INTO ids SELECT 'claimed', order_id
	FROM gifq_claim_reward((SELECT token FROM tokens WHERE name = 'direct'), 'forget-us');
SELECT results_eq($$SELECT reward_id IS NOT NULL, recipient_email FROM gifq.orders WHERE id = pg_temp.id('claimed')$$,
	$$VALUES (true, NULL::text)$$, 'a reward whose address was erased is claimed into an order without one');
-- the platform may give her data again
SELECT lives_ok($$SELECT gifq_upsert_member('tap-f', 'zoe', 'zoe.back@example.com')$$,
	'upsert after forgetting: allowed (the platform''s choice)');
SELECT is(pg_temp.member('zoe'), 'zoe.back@example.com|{}|US|t',
	'the new email is kept, and forgotten_at still says she was forgotten');

-- orders and events stay immutable but for erasure
SELECT throws_ok(format($$UPDATE gifq.orders SET recipient_email = 'other@example.com' WHERE id = %s$$,
		pg_temp.id('kim')), 'QG120', NULL, 'an order''s recipient cannot be changed, only erased');
SELECT throws_ok($$UPDATE gifq.events SET points = points + 1 WHERE member_id = pg_temp.mid('kim')$$,
	'QG120', NULL, 'events stay immutable');
SELECT throws_ok($$UPDATE gifq.events SET attributes = '{"x": 1}' WHERE member_id = pg_temp.mid('kim')$$,
	'QG120', NULL, 'an event''s attributes can only be erased');
SELECT throws_ok($$DELETE FROM gifq.events WHERE member_id = pg_temp.mid('kim')$$,
	'QG120', NULL, 'events cannot be deleted');
SELECT ok(NOT has_function_privilege('public', 'gifq_forget_member(text, text)', 'EXECUTE'),
	'gifq_forget_member is not executable by PUBLIC');
SELECT is((SELECT count(*) FROM gifq_ledger_verify()), 0::bigint, 'the ledger is consistent at the end');

SELECT * FROM finish();
ROLLBACK;
