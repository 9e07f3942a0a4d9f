-- audit.sql: pgTAP suite for the audit trail (0.8.0): every audited
-- change writes one gifq.audit row with who (session role, acting role,
-- application), when (clock, transaction id), what (table, operation,
-- program, key) and before/after; personal columns are redacted; an
-- UPDATE records only what changed and nothing when nothing but
-- updated_at did; code reveals are audited (and still kept in
-- gifq.card_reveals); gifq_audit() reads it; the table refuses UPDATE,
-- DELETE and TRUNCATE (QG120).
-- Everything runs in one transaction, rolled back at the end.  Ids come
-- from sequences a rollback does not rewind: never hard-coded.
BEGIN;
SELECT plan(57);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
SET LOCAL application_name = 'tap-audit';

------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------

-- the audit rows written since mark (an id), as the suite reads them
CREATE TEMP TABLE mark (id bigint);
INSERT INTO mark SELECT coalesce(max(id), 0) FROM gifq.audit;
CREATE FUNCTION pg_temp.since() RETURNS SETOF gifq.audit
LANGUAGE sql STABLE AS $$ SELECT * FROM gifq.audit WHERE id > (SELECT id FROM mark) ORDER BY id $$;
CREATE FUNCTION pg_temp.remark() RETURNS void
LANGUAGE sql AS $$ UPDATE mark SET id = (SELECT coalesce(max(id), 0) FROM gifq.audit) $$;
-- "table:operation" of the rows since the mark, in order
CREATE FUNCTION pg_temp.ops() RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT coalesce(string_agg(table_name || ':' || operation, ' ' ORDER BY id), 'nothing')
	FROM pg_temp.since()
$$;
-- the session and acting roles as text (they are names, collation "C")
CREATE FUNCTION pg_temp.me() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT current_user::text COLLATE "default" $$;
CREATE FUNCTION pg_temp.sess() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT session_user::text COLLATE "default" $$;
-- the program's id
CREATE FUNCTION pg_temp.pid() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT id FROM gifq.programs WHERE code = 'tap-a' $$;

------------------------------------------------------------------------
-- programs, members, accounts
------------------------------------------------------------------------

SELECT gifq_catalog_load('{"brands": [{"id": "audit-us", "name": "Audit Store", "country": "US",
	"currency": "USD", "categories": ["retail"], "denominations": [10, 25],
	"discount_pct": 2.0, "in_stock": true}]}');
SELECT pg_temp.remark();
SELECT gifq_create_program('tap-a', 'USD');
SELECT ok(pg_temp.ops() ~ '^programs:INSERT( accounts:INSERT)+$',
	'create_program: the program''s row, then its system accounts');
SELECT results_eq($$SELECT program_id, object_id, after ->> 'code', after ->> 'currency', before IS NULL
		FROM pg_temp.since() WHERE table_name = 'programs'$$,
	$$VALUES (pg_temp.pid(), pg_temp.pid()::text, 'tap-a', 'USD', true)$$,
	'programs INSERT: program, key, the row as after, no before');
SELECT results_eq($$SELECT session_role, acting_role, application, xid = pg_current_xact_id(),
		at BETWEEN now() AND clock_timestamp()
		FROM pg_temp.since() WHERE table_name = 'programs'$$,
	$$VALUES (pg_temp.sess(), pg_temp.me(), 'tap-audit', true, true)$$,
	'who and when: session role, acting role, application_name, this transaction, the clock');
SELECT is((SELECT jsonb_typeof(after -> 'points_per_unit') FROM pg_temp.since()
		WHERE table_name = 'programs'), 'number', 'numbers are JSON numbers');

SELECT pg_temp.remark();
SELECT gifq_upsert_member('tap-a', 'ana', 'ana@example.com', 'US', '{"name": "Ana Lima", "team": "sales"}');
SELECT is(pg_temp.ops(), 'members:INSERT accounts:INSERT',
	'upsert_member: the member, then their points account');
SELECT results_eq($$SELECT program_id, after ->> 'external_id', after ->> 'email',
		after ->> 'attributes', after ->> 'country'
		FROM pg_temp.since() WHERE table_name = 'members'$$,
	$$VALUES (pg_temp.pid(), 'ana', 'redacted', 'redacted', 'US')$$,
	'members INSERT: email and attributes redacted, the rest as it is');
SELECT is((SELECT object_id FROM pg_temp.since() WHERE table_name = 'accounts'),
	gifq_account('tap-a', 'ana')::text, 'accounts INSERT: keyed by the account id');

SELECT pg_temp.remark();
SELECT gifq_upsert_member('tap-a', 'ana', 'ana@example.com', 'US');
SELECT is(pg_temp.ops(), 'nothing', 'an upsert that changes nothing but updated_at is not audited');
SELECT gifq_upsert_member('tap-a', 'ana', 'ana.lima@example.com');
SELECT results_eq($$SELECT operation, before ->> 'email', after ->> 'email',
		before ? 'country', after ? 'external_id'
		FROM pg_temp.since()$$,
	$$VALUES ('UPDATE', 'redacted', 'redacted', false, false)$$,
	'members UPDATE: only the changed columns; a new email shows as changed, redacted');

SELECT pg_temp.remark();
SELECT gifq_block_member('tap-a', 'ana');
SELECT results_eq($$SELECT table_name, operation, object_id, before ->> 'blocked', after ->> 'blocked'
		FROM pg_temp.since()$$,
	$$VALUES ('members', 'UPDATE', (SELECT id FROM gifq.members WHERE external_id = 'ana')::text,
		'false', 'true')$$,
	'block_member: before and after of blocked');
SELECT gifq_block_member('tap-a', 'ana', false);

-- the redemption path's own member update (last_redeemed_at) is not audited
SELECT gifq_transfer(gifq_account('tap-a', NULL, 'issuance'), gifq_account('tap-a', 'ana'), '100000 PTS');
SELECT gifq_fund('tap-a', '1000.00 USD', 'tap-a-fund');
SELECT pg_temp.remark();
UPDATE gifq.members SET last_redeemed_at = now() WHERE external_id = 'ana';
SELECT is(pg_temp.ops(), 'nothing', 'members: last_redeemed_at (every redemption) is not audited');

------------------------------------------------------------------------
-- settings and rules
------------------------------------------------------------------------

SELECT pg_temp.remark();
SELECT gifq_set_limits('tap-a', '{"max_single_value": "500.00 USD", "max_redemptions_per_day": 50}');
SELECT results_eq($$SELECT table_name, object_id, after ->> 'max_single_value',
		after ->> 'max_redemptions_per_day'
		FROM pg_temp.since() ORDER BY id DESC LIMIT 1$$,
	$$VALUES ('limits', pg_temp.pid()::text, '500.00 USD', '50')$$,
	'set_limits: the limits row (made blank, then set)');
SELECT pg_temp.remark();
SELECT gifq_set_limits('tap-a', '{"max_single_value": "400.00 USD"}');
SELECT results_eq($$SELECT operation, before ->> 'max_single_value', after ->> 'max_single_value',
		after ? 'max_redemptions_per_day'
		FROM pg_temp.since()$$,
	$$VALUES ('UPDATE', '500.00 USD', '400.00 USD', false)$$,
	'set_limits again: before and after of what changed');

SELECT pg_temp.remark();
SELECT gifq_set_rate('tap-a', 'EUR', 110);
SELECT results_eq($$SELECT table_name, operation, object_id, program_id, (after ->> 'points_per_unit')::numeric
		FROM pg_temp.since()$$,
	$$VALUES ('rates', 'INSERT', 'EUR', pg_temp.pid(), 110::numeric)$$,
	'set_rate: keyed by currency');

SELECT pg_temp.remark();
SELECT gifq_set_rule('tap-a', 'task.done', 10);
SELECT gifq_set_rule('tap-a', 'task.done', 20, 5);
SELECT results_eq($$SELECT table_name, operation, object_id, before ->> 'points', after ->> 'points',
		after ->> 'daily_cap'
		FROM pg_temp.since() ORDER BY id$$,
	$$VALUES ('rules', 'INSERT', 'task.done', NULL, '10', NULL),
		('rules', 'UPDATE', 'task.done', '10', '20', '5')$$,
	'set_rule: the rule made, then changed');

SELECT pg_temp.remark();
SELECT gifq_create_challenge('tap-a', 'double', 'task.done', now(), now() + interval '7 days');
SELECT results_eq($$SELECT table_name, operation, after ->> 'name', after ->> 'starts_at'
		FROM pg_temp.since()$$,
	$$VALUES ('challenges', 'INSERT', 'double', to_jsonb(now()) ->> 0)$$,
	'create_challenge: audited, times as to_jsonb writes them');
SELECT pg_temp.remark();
SELECT gifq_define_streak('tap-a', 'daily', 'task.done', 'day');
SELECT is(pg_temp.ops(), 'streak_types:INSERT', 'define_streak: audited');
SELECT pg_temp.remark();
SELECT gifq_define_threshold('tap-a', 1000, 'unlock');
SELECT is(pg_temp.ops(), 'thresholds:INSERT', 'define_threshold: audited');
SELECT pg_temp.remark();
SELECT gifq_set_peer_limits('tap-a', '500 PTS', '1000 PTS');
SELECT is(pg_temp.ops(), 'peer_limits:INSERT', 'set_peer_limits: audited');
SELECT pg_temp.remark();
SELECT gifq_set_points_expiry('tap-a', '365 days');
SELECT is(pg_temp.ops(), 'points_expiry:INSERT', 'set_points_expiry: audited');
SELECT gifq_set_points_expiry('tap-a', NULL);

-- events are not audited themselves (their points are in the ledger)
SELECT pg_temp.remark();
SELECT points_awarded FROM gifq_record_event('tap-a', 'ana', 'task.done', 'ev-1');
SELECT ok(pg_temp.ops() !~ 'events', 'record_event: the event itself is not audited');

------------------------------------------------------------------------
-- orders
------------------------------------------------------------------------

SELECT pg_temp.remark();
CREATE TEMP TABLE o AS
	SELECT order_id FROM gifq_redeem('tap-a', 'ana', 'audit-us', '10.00 USD', 'ord-1');
SELECT is(pg_temp.ops(), 'orders:INSERT', 'redeem: one audit row, the order');
SELECT results_eq($$SELECT object_id, program_id, after ->> 'status', after ->> 'recipient_email',
		(after -> 'amount')::bigint, after ->> 'brand_id'
		FROM pg_temp.since()$$,
	$$VALUES ((SELECT order_id FROM o)::text, pg_temp.pid(), 'pending', 'redacted', 1000::bigint, 'audit-us')$$,
	'orders INSERT: the order, its recipient redacted');
SELECT pg_temp.remark();
SELECT gifq_cancel_order((SELECT order_id FROM o));
SELECT results_eq($$SELECT operation, before ->> 'status', after ->> 'status', after ? 'recipient_email'
		FROM pg_temp.since()$$,
	$$VALUES ('UPDATE', 'pending', 'canceled', false)$$,
	'cancel_order: the status change, before and after');

-- free text with an address in it (a provider's error echoing the
-- recipient, say): the address is masked
SELECT pg_temp.remark();
UPDATE gifq.orders SET last_error = 'mailbox <Some.One@example.com> is full, retry'
WHERE id = (SELECT order_id FROM o);
SELECT is((SELECT after ->> 'last_error' FROM pg_temp.since()), 'mailbox <redacted> is full, retry',
	'an address in free text is masked');

-- a redemption to another recipient: their address is redacted too
SELECT pg_temp.remark();
CREATE TEMP TABLE o2 AS
	SELECT order_id FROM gifq_redeem('tap-a', 'ana', 'audit-us', '10.00 USD', 'ord-2', 'friend@example.org');
SELECT is((SELECT after ->> 'recipient_email' FROM pg_temp.since()), 'redacted',
	'redeem for a recipient: the recipient is redacted');

-- delivered by the provider (as the worker records it), then revealed
SELECT count(*) FROM gifq.claim_work(100, '1 minute', 'tap')
WHERE order_id = (SELECT order_id FROM o2);
SELECT gifq.record_outcome((SELECT order_id FROM o2), 'order', 'tap', 201,
	jsonb_build_object('order_id', 'ord-a2', 'reference_id', gifq.order_reference((SELECT order_id FROM o2)),
		'status', 'delivered', 'gift_card', jsonb_build_object('code', 'AUD-1111-2222', 'pin', '99'))::text,
	NULL, 5.0, NULL, 5, 1000, 300000);
SELECT is((SELECT status FROM gifq.orders WHERE id = (SELECT order_id FROM o2)), 'delivered',
	'the order is delivered');
SELECT ok((SELECT count(*) FROM gifq.audit WHERE table_name = 'orders'
		AND object_id = (SELECT order_id FROM o2)::text AND operation = 'UPDATE'
		AND after ->> 'status' = 'delivered') = 1,
	'delivery: the status change is audited');
SELECT pg_temp.remark();
SELECT code FROM gifq_reveal_code((SELECT order_id FROM o2));
SELECT results_eq($$SELECT table_name, operation, object_id, program_id, acting_role, before, after
		FROM pg_temp.since()$$,
	$$VALUES ('cards', 'REVEAL', (SELECT order_id FROM o2)::text, pg_temp.pid(), pg_temp.me(),
		NULL::jsonb, NULL::jsonb)$$,
	'reveal_code: a REVEAL row for the card''s order');
SELECT is((SELECT count(*) FROM gifq.card_reveals WHERE order_id = (SELECT order_id FROM o2)), 1::bigint,
	'reveal_code: still kept in gifq.card_reveals');
SELECT is((SELECT count(*) FROM gifq.audit WHERE (before::text || after::text) ~ 'AUD-1111'), 0::bigint,
	'no code in the audit');

------------------------------------------------------------------------
-- rewards
------------------------------------------------------------------------

SELECT pg_temp.remark();
CREATE TEMP TABLE r AS
	SELECT reward_id FROM gifq_send_reward('tap-a', 'bea@example.net', '10.00 USD', 'rw-1');
SELECT ok(pg_temp.ops() ~ 'rewards:INSERT', 'send_reward: the reward is audited');
SELECT results_eq($$SELECT object_id, after ->> 'recipient_email', after ->> 'token_hash', after ->> 'status'
		FROM pg_temp.since() WHERE table_name = 'rewards' ORDER BY id LIMIT 1$$,
	$$VALUES ((SELECT reward_id FROM r)::text, 'redacted', 'redacted', 'pending')$$,
	'rewards INSERT: recipient and token hash redacted');
SELECT pg_temp.remark();
SELECT gifq_send_rewards('tap-a', '[{"recipient_email": "c1@example.net", "value": "5.00 USD", "idempotency_key": "b-1"},
	{"recipient_email": "c2@example.net", "value": "5.00 USD", "idempotency_key": "b-2"}]');
SELECT is((SELECT count(*) FROM pg_temp.since() WHERE table_name = 'rewards' AND operation = 'INSERT'),
	2::bigint, 'send_rewards: one row per reward');

------------------------------------------------------------------------
-- acting roles, TRUNCATE, the reader, personal data
------------------------------------------------------------------------

CREATE ROLE tap_audit_admin SUPERUSER NOLOGIN;
SELECT pg_temp.remark();
SET LOCAL ROLE tap_audit_admin;
SELECT gifq_block_member('tap-a', 'ana');
RESET ROLE;
SELECT results_eq($$SELECT session_role, acting_role FROM pg_temp.since()$$,
	$$VALUES (pg_temp.sess(), 'tap_audit_admin')$$,
	'SET ROLE: the acting role, not the session''s or the function owner''s');

SELECT pg_temp.remark();
TRUNCATE gifq.streak_types CASCADE;
SELECT results_eq($$SELECT table_name, operation, program_id, object_id FROM pg_temp.since()
		WHERE table_name = 'streak_types'$$,
	$$VALUES ('streak_types', 'TRUNCATE', NULL::bigint, NULL::text)$$,
	'TRUNCATE of an audited table is audited');

-- rows a COPY loads (a restore of a dump, which brings its own audit
-- rows) are not audited again
COPY gifq.programs (code, currency, points_code, points_per_unit, timezone) FROM stdin;
tap-copied	USD	PTS	100	UTC
\.
SELECT is((SELECT count(*) FROM gifq.audit WHERE table_name = 'programs' AND after ->> 'code' = 'tap-copied'),
	0::bigint, 'COPY into an audited table (a restore) is not audited again');
COPY gifq.card_reveals (order_id, actor) FROM stdin;
-42	restored
\.
SELECT is((SELECT count(*) FROM gifq.audit WHERE object_id = '-42'), 0::bigint,
	'nor is a reveal a COPY restores');

SELECT ok((SELECT count(*) FROM gifq_audit('tap-a', now())) > 20, 'gifq_audit: the program''s rows');
SELECT is((SELECT count(*) FROM gifq_audit('tap-a', now()) WHERE program IS DISTINCT FROM 'tap-a'),
	0::bigint, 'gifq_audit: only that program''s, named by code');
SELECT is((SELECT count(*) FROM gifq_audit('tap-a', now() + interval '1 day')), 0::bigint,
	'gifq_audit: none before since');
SELECT ok((SELECT count(*) FROM gifq_audit(NULL, now())) > (SELECT count(*) FROM gifq_audit('tap-a', now())),
	'gifq_audit(NULL): every program''s rows and those of none');
SELECT results_eq($$SELECT id FROM gifq_audit('tap-a', now()) LIMIT 3$$,
	$$SELECT id FROM gifq.audit WHERE program_id = pg_temp.pid() ORDER BY id LIMIT 3$$,
	'gifq_audit: oldest first');
SELECT throws_ok($$SELECT * FROM gifq_audit('no-such-program')$$, 'QG101', NULL,
	'gifq_audit: an unknown program is QG101');
SELECT is((SELECT count(*) FROM gifq.audit
		WHERE (coalesce(before::text, '') || coalesce(after::text, '')) ~* 'example\.(com|org|net)|Ana Lima|sales'),
	0::bigint, 'no email, recipient or attribute anywhere in the audit');

------------------------------------------------------------------------
-- append-only
------------------------------------------------------------------------

SELECT throws_ok($$UPDATE gifq.audit SET operation = 'x' WHERE id = (SELECT max(id) FROM gifq.audit)$$,
	'QG120', NULL, 'UPDATE of an audit row is refused (QG120)');
SELECT throws_ok($$DELETE FROM gifq.audit WHERE id = (SELECT max(id) FROM gifq.audit)$$,
	'QG120', NULL, 'DELETE of an audit row is refused (QG120)');
SELECT throws_ok($$TRUNCATE gifq.audit$$, 'QG120', NULL, 'TRUNCATE of the audit is refused (QG120)');
SELECT throws_ok($$UPDATE gifq.audit SET operation = 'x' WHERE id = (SELECT max(id) FROM gifq.audit)$$,
	'QG120', 'rows of gifq.audit are immutable: UPDATE refused', 'the refusal names the table');
SELECT ok(EXISTS (SELECT FROM pg_extension e, unnest(e.extconfig) c
		WHERE e.extname = 'gifq' AND c = 'gifq.audit'::regclass),
	'gifq.audit is kept by pg_dump');
SELECT ok(EXISTS (SELECT FROM pg_extension e, unnest(e.extconfig) c
		WHERE e.extname = 'gifq' AND c = 'gifq.audit_id_seq'::regclass),
	'its sequence too');
SELECT ok(NOT has_function_privilege('public', 'gifq.audit_note(text, text, bigint, text, jsonb, jsonb)', 'EXECUTE'),
	'gifq.audit_note is not executable by PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'gifq_audit(text, timestamptz)', 'EXECUTE'),
	'gifq_audit is not executable by PUBLIC');
SELECT throws_ok($$SELECT gifq.audit_row()$$, 'XX000',
	'gifq.audit_row() must be called as an AFTER trigger', 'gifq.audit_row is only a trigger');

-- every audited table has its row and TRUNCATE triggers
SELECT is((SELECT count(DISTINCT tgrelid) FROM pg_trigger
		WHERE tgfoid = 'gifq.audit_row'::regproc AND tgtype & 1 = 1), 14::bigint,
	'14 tables audited row by row');
SELECT is((SELECT count(DISTINCT tgrelid) FROM pg_trigger
		WHERE tgfoid = 'gifq.audit_row'::regproc AND tgtype & 32 = 32), 14::bigint,
	'and their TRUNCATEs');
SELECT is((SELECT count(*) FROM gifq_ledger_verify()), 0::bigint, 'the ledger is consistent');

SELECT * FROM finish();
ROLLBACK;
