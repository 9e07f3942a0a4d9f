-- security_roles.sql: pgTAP suite for gifq's roles and program scoping
-- (0.8.0, docs/security.md): the catalog's privileges (every function of
-- the extension classified, nothing executable by PUBLIC but the money
-- type's, no writes to gifq.* tables but the owner's, a fixed search_path
-- on every SECURITY DEFINER function), then the attack suite as a gifq_app
-- role: reading codes behind gifq_reveal_code, writing every gifq table
-- and sequence, calling every admin and internal function, acting on an
-- ungranted program by code, order id, account id, pending transfer id
-- and claim token, escalating through a hostile search_path with
-- shadowing functions and operators, and SQL injection through every text
-- argument of every app function.  Each attempt is refused with its
-- SQLSTATE and changes nothing (a fingerprint of every gifq table is
-- compared before and after).  Then who is not scoped (admins, roles
-- outside gifq_app), a global function (the provider's webhook) called by
-- an app role without programs, gifq_grant_program and
-- gifq_revoke_program, grants through role membership, and the reporting
-- views as gifq_reader and as a scoped reader.
--   42501 insufficient privilege   QG701 program not granted
--   QG103 unknown account          QG702 unknown role
--   QG110 unknown pending transfer QG215 unknown order
--   QG501 claim token not recognised
-- Roles made here are made inside the suite's transaction and rolled back
-- with it.  Ids the suite needs as another role are kept in psql
-- variables (\gset), since the roles cannot read the suite's temp tables.
BEGIN;
SELECT plan(120);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';

\ir lib/errors.sql

-- a fingerprint of every gifq table: its row count and the md5 of its rows
CREATE FUNCTION pg_temp.fingerprint() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	r regclass;
	n bigint;
	h text;
	result text := '';
BEGIN
	FOR r IN SELECT c.oid::regclass FROM pg_class c
		WHERE c.relnamespace = 'gifq'::regnamespace AND c.relkind = 'r'
		ORDER BY c.relname LOOP
		EXECUTE format('SELECT count(*), md5(coalesce(string_agg(t::text, '','' ORDER BY t::text), '''')) FROM %s t', r)
			INTO n, h;
		result := result || format('%s:%s:%s;', r, n, h);
	END LOOP;
	RETURN md5(result);
END $$;

-- the SQLSTATE of each statement that a role's attempt did not get refused
-- with 42501; run as that role, so it sees nothing it may not see
CREATE FUNCTION pg_temp.not_refused(statements text[]) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	s text;
	st text;
	result text[] := '{}';
BEGIN
	FOREACH s IN ARRAY statements LOOP
		st := pg_temp.code(s);
		IF st <> '42501' THEN
			result := result || (st || ' ' || s);
		END IF;
	END LOOP;
	RETURN result;
END $$;

------------------------------------------------------------------------
-- Setup: two programs with a member each, funding, points, a delivered
-- order with a card, a reward and a pending transfer in each
------------------------------------------------------------------------

SELECT gifq_catalog_load('{"brands": [{"id": "sec-us", "name": "Sec Brand", "country": "US",
	"currency": "USD", "categories": ["retail"], "denominations": [10, 25],
	"discount_pct": 0, "in_stock": true}]}');
CREATE FUNCTION pg_temp.program(code text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM gifq_create_program(code, 'USD');
	PERFORM gifq_upsert_member(code, 'ana', 'ana@example.com', 'US');
	PERFORM gifq_transfer(gifq_account(code, NULL, 'issuance'), gifq_account(code, 'ana'),
		'50000 PTS');
	PERFORM gifq_fund(code, '500.00 USD', code || '-fund');
END $$;
SELECT pg_temp.program('sec-a'), pg_temp.program('sec-b');

-- a delivered order in each program, with a card
CREATE FUNCTION pg_temp.delivered(program text, code text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	oid bigint;
	o gifq.orders;
BEGIN
	SELECT r.order_id INTO oid FROM gifq_redeem(program, 'ana', 'sec-us', '10.00 USD', program || '-o1') r;
	UPDATE gifq.orders x SET status = 'submitted' WHERE x.id = oid;
	SELECT * INTO o FROM gifq.orders x WHERE x.id = oid;
	PERFORM gifq.deliver_order(o, jsonb_build_object('gift_card',
		jsonb_build_object('code', code, 'pin', '4321')), 'test');
	RETURN oid;
END $$;
SELECT pg_temp.delivered('sec-a', 'CODE-AAAA-1111') AS a_order,
	pg_temp.delivered('sec-b', 'CODE-BBBB-2222') AS b_order \gset
-- a pending order in B (cancelable), a reward and a pending transfer in each
SELECT order_id AS b_pending_order FROM gifq_redeem('sec-b', 'ana', 'sec-us', '10.00 USD', 'sec-b-o2') \gset
SELECT claim_token AS b_token FROM gifq_send_reward('sec-b', 'bo@example.com', '10.00 USD', 'sec-b-r1') \gset
SELECT claim_token AS a_token FROM gifq_send_reward('sec-a', 'al@example.com', '10.00 USD', 'sec-a-r1') \gset
SELECT gifq_account('sec-b', 'ana') AS b_ana, gifq_account('sec-b', NULL, 'issuance') AS b_iss,
	gifq_account('sec-a', 'ana') AS a_ana, gifq_account('sec-a', NULL, 'issuance') AS a_iss \gset
SELECT gifq_transfer(:b_iss, :b_ana, '10 PTS', 'sec-b-hold', true) AS b_hold,
	gifq_transfer(:a_iss, :a_ana, '10 PTS', 'sec-a-hold', true) AS a_hold \gset
SELECT is((SELECT status FROM gifq.orders WHERE id = :b_order), 'delivered',
	'setup: the order in sec-b is delivered');

-- the roles: sec_app, scoped to sec-a; sec_hand, an app role given the raw
-- ledger by hand (still scoped); sec_admin; sec_reader; sec_both (app and
-- reader, scoped to sec-a); sec_team and sec_member (granted sec-b through
-- membership in sec_team); sec_plain, EXECUTE by hand but not in gifq_app
CREATE ROLE sec_app NOLOGIN IN ROLE gifq_app;
CREATE ROLE sec_hand NOLOGIN IN ROLE gifq_app;
CREATE ROLE sec_admin NOLOGIN IN ROLE gifq_admin;
CREATE ROLE sec_reader NOLOGIN IN ROLE gifq_reader;
CREATE ROLE sec_both NOLOGIN IN ROLE gifq_app, gifq_reader;
CREATE ROLE sec_team NOLOGIN;
CREATE ROLE sec_member NOLOGIN IN ROLE gifq_app, sec_team;
CREATE ROLE sec_plain NOLOGIN;
GRANT EXECUTE ON FUNCTION gifq_order(bigint) TO sec_plain;
GRANT EXECUTE ON FUNCTION gifq_transfer(bigint, bigint, gifq_money, text, boolean, interval, jsonb),
	gifq_transfers(jsonb), gifq_post(bigint, gifq_money), gifq_void(bigint),
	gifq_balance(bigint), gifq_balance_at(bigint, timestamptz), gifq_retry_order(bigint)
TO sec_hand;
SELECT gifq_grant_program('sec_app', 'sec-a'), gifq_grant_program('sec_hand', 'sec-a'),
	gifq_grant_program('sec_both', 'sec-a'), gifq_grant_program('sec_team', 'sec-b');

-- the attack schema: a table the evil objects write to, and functions
-- and operators that shadow pg_catalog's when it is first in search_path
CREATE SCHEMA evil AUTHORIZATION sec_app;
SET ROLE sec_app;
CREATE TABLE evil.ran (what text);
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS
	$$ INSERT INTO evil.ran VALUES ('now') RETURNING '2000-01-01'::timestamptz $$;
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS
	$$ INSERT INTO evil.ran VALUES ('lower') RETURNING $1 $$;
CREATE FUNCTION evil.btrim(text) RETURNS text LANGUAGE sql AS
	$$ INSERT INTO evil.ran VALUES ('btrim') RETURNING $1 $$;
CREATE FUNCTION evil.length(text) RETURNS integer LANGUAGE sql AS
	$$ INSERT INTO evil.ran VALUES ('length') RETURNING 5 $$;
CREATE FUNCTION evil.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE sql AS
	$$ INSERT INTO evil.ran VALUES ('jsonb_build_object') RETURNING '{}'::jsonb $$;
CREATE FUNCTION evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql AS
	$$ INSERT INTO evil.ran VALUES ('jsonb_typeof') RETURNING 'object' $$;
CREATE FUNCTION evil.eq8(bigint, bigint) RETURNS boolean LANGUAGE sql AS
	$$ INSERT INTO evil.ran VALUES ('= bigint') RETURNING true $$;
CREATE FUNCTION evil.eqt(text, text) RETURNS boolean LANGUAGE sql AS
	$$ INSERT INTO evil.ran VALUES ('= text') RETURNING true $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq8);
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eqt);
RESET ROLE;

SELECT available::text AS b_balance FROM gifq_member_balance('sec-b', 'ana') \gset
SELECT pg_temp.fingerprint() AS before \gset

------------------------------------------------------------------------
-- The catalog: roles, grants, search_path
------------------------------------------------------------------------

SELECT is((SELECT string_agg(format('%s:%s', rolname, rolcanlogin), ',' ORDER BY rolname)
	FROM pg_roles WHERE rolname IN ('gifq_admin', 'gifq_app', 'gifq_reader')),
	'gifq_admin:f,gifq_app:f,gifq_reader:f',
	'roles: gifq_admin, gifq_app and gifq_reader exist and cannot log in');

-- every function of the extension and who may run it: "public" (the
-- money type: anyone), "admin", "app" (gifq_app and gifq_admin), "reader"
-- (gifq_reader), "owner" (internal, nobody else).  A function added
-- without a decision here fails the first test.
CREATE TEMP TABLE expected_grants (fn text PRIMARY KEY, class text NOT NULL);
INSERT INTO expected_grants
SELECT f, 'public' FROM unnest(ARRAY[
	'gifq_money_in(cstring)', 'gifq_money_out(gifq_money)', 'gifq_money_recv(internal)',
	'gifq_money_send(gifq_money)', 'gifq_money(numeric,text)', 'gifq_amount(gifq_money)',
	'gifq_currency(gifq_money)', 'gifq_minor_units(gifq_money)',
	'gifq_from_minor_units(bigint,text)', 'gifq_allocate(gifq_money,integer[])',
	'gifq_money_eq(gifq_money,gifq_money)', 'gifq_money_ne(gifq_money,gifq_money)',
	'gifq_money_lt(gifq_money,gifq_money)', 'gifq_money_le(gifq_money,gifq_money)',
	'gifq_money_gt(gifq_money,gifq_money)', 'gifq_money_ge(gifq_money,gifq_money)',
	'gifq_money_cmp(gifq_money,gifq_money)', 'gifq_money_sortsupport(internal)',
	'gifq_money_hash(gifq_money)', 'gifq_money_hash_extended(gifq_money,bigint)',
	'gifq_money_add(gifq_money,gifq_money)', 'gifq_money_sub(gifq_money,gifq_money)',
	'gifq_money_neg(gifq_money)', 'gifq_money_mul(gifq_money,numeric)',
	'gifq_numeric_mul_money(numeric,gifq_money)', 'gifq_money_div(gifq_money,numeric)',
	'gifq_money_sum_accum(internal,gifq_money)', 'gifq_money_sum_inv(internal,gifq_money)',
	'gifq_money_sum_combine(internal,internal)', 'gifq_money_sum_serialize(internal)',
	'gifq_money_sum_deserialize(bytea,internal)', 'gifq_money_sum_final(internal)',
	'gifq_money_larger(gifq_money,gifq_money)', 'gifq_money_smaller(gifq_money,gifq_money)',
	'sum(gifq_money)', 'min(gifq_money)', 'max(gifq_money)']) f;
INSERT INTO expected_grants
SELECT f, 'admin' FROM unnest(ARRAY[
	'gifq_create_program(text,text,text,numeric,text)', 'gifq_set_rule(text,text,bigint,integer)',
	'gifq_create_challenge(text,text,text,timestamp with time zone,timestamp with time zone,numeric,integer,integer)',
	'gifq_define_streak(text,text,text,text,integer)', 'gifq_define_threshold(text,bigint,text,gifq_money)',
	'gifq_feature_brand(text,integer,boolean)', 'gifq_catalog_load(jsonb)', 'gifq_refresh_catalog()',
	'gifq_set_limits(text,jsonb)', 'gifq_set_peer_limits(text,gifq_money,gifq_money)',
	'gifq_set_points_expiry(text,interval)', 'gifq_fund(text,gifq_money,text)',
	'gifq_set_low_balance(text,gifq_money)', 'gifq_set_rate(text,text,numeric)',
	'gifq_account(text,text,text,text)', 'gifq_create_account(text,text,text,text[],integer)',
	'gifq_transfer(bigint,bigint,gifq_money,text,boolean,interval,jsonb)', 'gifq_transfers(jsonb)',
	'gifq_post(bigint,gifq_money)', 'gifq_void(bigint)', 'gifq_balance(bigint)',
	'gifq_balance_at(bigint,timestamp with time zone)', 'gifq_ledger_verify()',
	'gifq_expire_holds()', 'gifq_expire_points()', 'gifq_expire_rewards()', 'gifq_prune()',
	'gifq_maintenance_jobs()', 'gifq_schedule_jobs()', 'gifq_unschedule_jobs()',
	'gifq_process_orders(integer)', 'gifq_retry_order(bigint)', 'gifq_block_member(text,text,boolean)',
	'gifq_grant_program(name,text)', 'gifq_revoke_program(name,text)',
	'gifq_forget_member(text,text)', 'gifq_audit(text,timestamp with time zone)']) f;
INSERT INTO expected_grants
SELECT f, 'app' FROM unnest(ARRAY[
	'gifq_upsert_member(text,text,text,text,jsonb,boolean)',
	'gifq_redeem(text,text,text,gifq_money,text,text)',
	'gifq_record_event(text,text,text,text,timestamp with time zone,jsonb)',
	'gifq_record_events(text,jsonb)',
	'gifq_send_reward(text,text,gifq_money,text,text[],text[],text[],timestamp with time zone)',
	'gifq_send_rewards(text,jsonb)', 'gifq_claim_reward(text,text)', 'gifq_reward_options(text)',
	'gifq_member_balance(text,text)', 'gifq_program_balance(text,text)', 'gifq_order(bigint)',
	'gifq_order_history(bigint)', 'gifq_cancel_order(bigint)', 'gifq_reveal_code(bigint)',
	'gifq_catalog(text,text,text,text)', 'gifq_alternatives(text,gifq_money)',
	'gifq_streak(text,text,text)', 'gifq_leaderboard(text,text,jsonb,integer)',
	'gifq_leaderboard_around(text,text,text,jsonb,integer)',
	'gifq_give_points(text,text,text,gifq_money,text,text)',
	'gifq_expiring_points(text,text,interval)', 'gifq_provider_webhook(text,text)']) f;
INSERT INTO expected_grants VALUES
	('gifq.worker_status()', 'reader'), ('gifq.program_visible(bigint)', 'reader'),
	('gifq.caller_scoped()', 'reader');

-- what the catalog says: each function's class from its ACL
CREATE TEMP VIEW actual_grants AS
SELECT p.oid::regprocedure::text AS fn,
	CASE
		WHEN p.proacl IS NULL OR has_function_privilege('public', p.oid, 'EXECUTE') THEN 'public'
		WHEN has_function_privilege('gifq_app', p.oid, 'EXECUTE')
			AND has_function_privilege('gifq_admin', p.oid, 'EXECUTE')
			AND NOT has_function_privilege('gifq_reader', p.oid, 'EXECUTE') THEN 'app'
		WHEN has_function_privilege('gifq_admin', p.oid, 'EXECUTE')
			AND NOT has_function_privilege('gifq_app', p.oid, 'EXECUTE')
			AND NOT has_function_privilege('gifq_reader', p.oid, 'EXECUTE') THEN 'admin'
		WHEN has_function_privilege('gifq_reader', p.oid, 'EXECUTE')
			AND NOT has_function_privilege('gifq_app', p.oid, 'EXECUTE')
			AND NOT has_function_privilege('gifq_admin', p.oid, 'EXECUTE') THEN 'reader'
		WHEN NOT has_function_privilege('gifq_reader', p.oid, 'EXECUTE')
			AND NOT has_function_privilege('gifq_app', p.oid, 'EXECUTE')
			AND NOT has_function_privilege('gifq_admin', p.oid, 'EXECUTE') THEN 'owner'
		ELSE 'mixed: ' || p.proacl::text
	END AS class,
	p.prosecdef, p.proconfig, p.pronamespace::regnamespace::text AS schema
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'gifq';

SELECT is_empty($$SELECT a.fn, a.class FROM actual_grants a
	LEFT JOIN expected_grants x ON x.fn = a.fn
	WHERE x.fn IS NULL AND a.schema <> 'gifq'$$,
	'grants: every API function of the extension is classified (listed in expected_grants)');
SELECT is_empty($$SELECT a.fn, a.class, coalesce(x.class, 'owner') FROM actual_grants a
	LEFT JOIN expected_grants x ON x.fn = a.fn
	WHERE a.class IS DISTINCT FROM coalesce(x.class, CASE WHEN a.schema = 'gifq' THEN 'owner' END)$$,
	'grants: every function of the extension has exactly the grants of its class (gifq.* ones: the owner''s only, unless listed)');
SELECT is_empty($$SELECT fn FROM actual_grants WHERE class = 'public'
	AND fn NOT LIKE 'gifq_money%' AND fn NOT IN ('gifq_numeric_mul_money(numeric,gifq_money)',
		'gifq_amount(gifq_money)', 'gifq_currency(gifq_money)', 'gifq_minor_units(gifq_money)',
		'gifq_from_minor_units(bigint,text)', 'gifq_allocate(gifq_money,integer[])',
		'sum(gifq_money)', 'min(gifq_money)', 'max(gifq_money)')$$,
	'grants: PUBLIC may execute only the gifq_money type''s functions');
SELECT is_empty($$SELECT fn FROM actual_grants WHERE class = 'public' AND prosecdef$$,
	'grants: no function PUBLIC may execute is SECURITY DEFINER');
SELECT is_empty($$SELECT fn FROM actual_grants WHERE prosecdef
	AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (proconfig), false)$$,
	'search_path: every SECURITY DEFINER function (C ones too) runs with search_path = pg_catalog, pg_temp');
SELECT is_empty($$SELECT fn FROM actual_grants WHERE schema = '@extschema@' AND NOT prosecdef
	AND class <> 'public'$$,
	'security definer: every API function other than the money type''s is SECURITY DEFINER');

-- tables and sequences: nobody but the owner writes or takes numbers
SELECT is_empty($$SELECT c.oid::regclass, a.privilege_type, a.grantee::regrole
	FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
	WHERE c.relnamespace = 'gifq'::regnamespace AND c.relkind IN ('r', 'p', 'S')
		AND a.grantee <> c.relowner$$,
	'tables: no role but the owner holds any privilege on a gifq table or sequence');
SELECT is_empty($$SELECT c.oid::regclass, a.privilege_type, a.grantee
	FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
	WHERE c.relnamespace = 'gifq'::regnamespace AND c.relkind = 'v'
		AND a.grantee <> c.relowner
		AND NOT (a.grantee = 'gifq_reader'::regrole AND a.privilege_type = 'SELECT')$$,
	'views: gifq_reader may only SELECT the views; nobody else holds anything');
SELECT results_eq($$SELECT has_schema_privilege('gifq_app', 'gifq', 'USAGE'),
	has_schema_privilege('gifq_admin', 'gifq', 'USAGE'),
	has_schema_privilege('gifq_reader', 'gifq', 'USAGE'),
	has_schema_privilege('gifq_app', 'gifq', 'CREATE')$$,
	$$VALUES (false, false, true, false)$$,
	'schema gifq: only gifq_reader may look inside; nobody but the owner creates in it');
SELECT is_empty($$SELECT r.rolname FROM pg_roles r
	WHERE r.rolname IN ('gifq_admin', 'gifq_app', 'gifq_reader')
		AND (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolinherit IS NULL)$$,
	'roles: none of the three has any attribute that grants more');

------------------------------------------------------------------------
-- As gifq_app: reading and writing gifq's tables
------------------------------------------------------------------------

SET ROLE sec_app;
SELECT throws_ok(format('SELECT * FROM gifq.cards WHERE order_id = %s', :b_order), '42501', NULL,
	'read: the app cannot read a sealed code from gifq.cards');
SELECT throws_ok('SELECT code_last4 FROM gifq.orders', '42501', NULL,
	'read: the app cannot read gifq.orders');
SELECT throws_ok('SELECT * FROM gifq.card_open(1, ''\x00''::bytea)', '42501', NULL,
	'read: the app cannot open a sealed code itself');
SELECT throws_ok('SELECT * FROM gifq.program_grants', '42501', NULL,
	'read: the app cannot read the program grants');
SELECT throws_ok('SELECT * FROM gifq.order_outcomes', '42501', NULL,
	'read: the app alone cannot read the reporting views');
RESET ROLE;

-- every gifq table: INSERT, UPDATE, DELETE, TRUNCATE; every sequence:
-- nextval, setval
CREATE TEMP TABLE attempts (s text);
INSERT INTO attempts
SELECT format(x, c.oid::regclass, (SELECT a.attname FROM pg_attribute a
	WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		AND a.attidentity = '' AND a.attgenerated = '' ORDER BY a.attnum LIMIT 1))
FROM pg_class c, unnest(ARRAY['INSERT INTO %s DEFAULT VALUES', 'UPDATE %s SET %I = %2$I',
	'DELETE FROM %s', 'TRUNCATE %s', 'SELECT * FROM %s LIMIT 1']) x
WHERE c.relnamespace = 'gifq'::regnamespace AND c.relkind = 'r';
INSERT INTO attempts
SELECT format(x, quote_literal(c.oid::regclass::text))
FROM pg_class c, unnest(ARRAY['SELECT nextval(%s)', 'SELECT setval(%s, 1)']) x
WHERE c.relnamespace = 'gifq'::regnamespace AND c.relkind = 'S';
GRANT SELECT ON attempts TO sec_app, sec_reader;
SELECT cmp_ok((SELECT count(*) FROM attempts), '>', 200::bigint,
	'write: every gifq table (5 statements each) and sequence (2) is attempted');
SET ROLE sec_app;
SELECT is(pg_temp.not_refused(array(SELECT s FROM attempts)), '{}',
	'write: the app is refused (42501) every INSERT, UPDATE, DELETE, TRUNCATE and SELECT of every gifq table, and nextval and setval of every sequence');
RESET ROLE;
SET ROLE sec_reader;
SELECT is(pg_temp.not_refused(array(SELECT s FROM attempts)), '{}',
	'write: gifq_reader is refused every one of them too');
RESET ROLE;

-- every function the app may not run, called with NULLs (in sub-selects:
-- the planner folds a STRICT function of NULL constants to NULL without
-- running it, or checking who may)
CREATE TEMP TABLE calls (s text, class text);
INSERT INTO calls
SELECT format('SELECT %s(%s)', p.oid::regproc,
	(SELECT string_agg(format('(SELECT NULL::%s)', t::regtype), ', ' ORDER BY o)
	 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, o))), a.class
FROM actual_grants a JOIN pg_proc p ON p.oid::regprocedure::text = a.fn
WHERE a.class IN ('admin', 'owner', 'reader') AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype
	AND NOT 'internal'::regtype = ANY (p.proargtypes::oid[]);
GRANT SELECT ON calls TO sec_app;
SELECT cmp_ok((SELECT count(*) FROM calls WHERE class = 'admin'), '>=', 35::bigint,
	'admin: every admin function is attempted');
SET ROLE sec_app;
SELECT is(pg_temp.not_refused(array(SELECT s FROM calls WHERE class = 'admin')), '{}',
	'admin: the app is refused (42501) every admin function');
SELECT is(pg_temp.not_refused(array(SELECT s FROM calls WHERE class IN ('owner', 'reader'))), '{}',
	'admin: the app is refused every internal function of schema gifq');
SELECT throws_ok($$SELECT gifq_grant_program('sec_app', 'sec-b')$$, '42501', NULL,
	'admin: the app cannot grant itself a program');
RESET ROLE;

------------------------------------------------------------------------
-- Program scoping: the app (granted sec-a) acts on sec-b
------------------------------------------------------------------------

SET ROLE sec_app;
SELECT lives_ok($$SELECT * FROM gifq_member_balance('sec-a', 'ana')$$, 'scope: the app acts on its program');
SELECT throws_ok($$SELECT gifq_upsert_member('sec-b', 'bea')$$, 'QG701',
	'program "sec-b" is not granted to role "sec_app"',
	'scope: upsert_member in an ungranted program: QG701, naming the program and the role');
SELECT throws_ok($$SELECT gifq_upsert_member('no-such-program', 'bea')$$, 'QG701',
	'program "no-such-program" is not granted to role "sec_app"',
	'scope: a program that does not exist gets the same answer (nothing leaks)');
SELECT throws_ok($$SELECT * FROM gifq_record_event('sec-b', 'ana', 'login', 'e1')$$, 'QG701', NULL,
	'scope: record_event (C) in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_record_events('sec-b', '[{"member": "ana", "event_type": "login", "idempotency_key": "e2"}]')$$,
	'QG701', NULL, 'scope: record_events (C) in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_redeem('sec-b', 'ana', 'sec-us', '10.00 USD', 'k1')$$, 'QG701', NULL,
	'scope: redeem (C) in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_send_reward('sec-b', 'x@example.com', '10.00 USD', 'k2')$$, 'QG701', NULL,
	'scope: send_reward in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_send_rewards('sec-b', '[{"email": "x@example.com", "value": "10.00 USD", "idempotency_key": "k3"}]')$$,
	'QG701', NULL, 'scope: send_rewards in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_member_balance('sec-b', 'ana')$$, 'QG701', NULL,
	'scope: member_balance in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_program_balance('sec-b')$$, 'QG701', NULL,
	'scope: program_balance in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_streak('sec-b', 'ana', 'daily')$$, 'QG701', NULL,
	'scope: streak in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_leaderboard('sec-b')$$, 'QG701', NULL,
	'scope: leaderboard in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_leaderboard_around('sec-b', 'ana')$$, 'QG701', NULL,
	'scope: leaderboard_around in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_give_points('sec-b', 'ana', 'bo', '1 PTS', 'k4')$$, 'QG701', NULL,
	'scope: give_points in an ungranted program');
SELECT throws_ok($$SELECT * FROM gifq_expiring_points('sec-b', 'ana')$$, 'QG701', NULL,
	'scope: expiring_points in an ungranted program');
-- by order id: the answer for an order of another program is the answer
-- for an order that does not exist
SELECT throws_ok(format('SELECT * FROM gifq_order(%s)', :b_order), 'QG215',
	format('unknown order %s', :b_order), 'scope: gifq_order of an order of sec-b: "unknown order"');
SELECT throws_ok('SELECT * FROM gifq_order(-1)', 'QG215', 'unknown order -1',
	'scope: ... the same as for an order that does not exist');
SELECT throws_ok(format('SELECT * FROM gifq_order_history(%s)', :b_order), 'QG215', NULL,
	'scope: order_history of an order of sec-b');
SELECT throws_ok(format('SELECT * FROM gifq_reveal_code(%s)', :b_order), 'QG215',
	format('unknown order %s', :b_order), 'scope: reveal_code of an order of sec-b: no code');
SELECT throws_ok(format('SELECT gifq_cancel_order(%s)', :b_pending_order), 'QG215', NULL,
	'scope: cancel_order of a pending order of sec-b');
-- by claim token
SELECT throws_ok(format('SELECT * FROM gifq_reward_options(%L)', :'b_token'), 'QG501',
	'claim token not recognised', 'scope: reward_options with a claim token of sec-b');
SELECT throws_ok(format('SELECT * FROM gifq_claim_reward(%L, %L)', :'b_token', 'sec-us'), 'QG501',
	'claim token not recognised', 'scope: claim_reward with a claim token of sec-b');
RESET ROLE;
SELECT is(pg_temp.fingerprint(), :'before',
	'unchanged: after every refused read, write, admin call and ungranted program, every gifq table is as it was');
SET ROLE sec_app;
-- its own program's objects, and the global functions
SELECT is((SELECT program FROM gifq_order(:a_order)), 'sec-a', 'scope: gifq_order of its own order');
SELECT is((SELECT code FROM gifq_reveal_code(:a_order)), 'CODE-AAAA-1111',
	'scope: reveal_code of its own order gives the code');
SELECT lives_ok(format('SELECT * FROM gifq_reward_options(%L)', :'a_token'),
	'scope: reward_options with its own claim token');
SELECT lives_ok($$SELECT * FROM gifq_catalog()$$, 'scope: the catalog is global');
SELECT lives_ok($$SELECT * FROM gifq_alternatives('sec-us', '10.00 USD')$$,
	'scope: alternatives are global');
RESET ROLE;
SELECT is((SELECT count(*) FROM gifq.card_reveals r JOIN gifq.orders o ON o.id = r.order_id
	WHERE o.program_id = (SELECT id FROM gifq.programs WHERE code = 'sec-b')), 0::bigint,
	'scope: no reveal of a sec-b code was recorded');
SELECT is((SELECT status FROM gifq.orders WHERE id = :b_pending_order), 'pending',
	'scope: the sec-b order was not canceled');

-- every function that names a program, the admin ones given by hand to an
-- app role (gifq_create_program aside: it names a new one), with an
-- ungranted program and plausible other arguments: all refuse with QG701
CREATE TEMP TABLE program_calls AS
SELECT p.oid::regprocedure::text AS fn, format('SELECT * FROM %s(%s)', p.oid::regproc,
	(SELECT string_agg(CASE
		WHEN o = 1 THEN '''sec-b''::text'
		WHEN t = 'text'::regtype AND n = 'member' THEN '''ana''::text'
		WHEN t = 'text'::regtype AND n LIKE '%key%' THEN '''k1''::text'
		WHEN t = 'text'::regtype AND n LIKE '%email' THEN '''x@example.com''::text'
		WHEN t = 'text'::regtype THEN '''x''::text'
		WHEN t = 'gifq_money'::regtype THEN '''10.00 USD''::gifq_money'
		WHEN t = 'jsonb'::regtype THEN '''{}''::jsonb'
		WHEN t = 'bigint'::regtype THEN '1::bigint'
		WHEN t = 'integer'::regtype THEN '1'
		WHEN t = 'numeric'::regtype THEN '1::numeric'
		WHEN t = 'boolean'::regtype THEN 'true'
		WHEN t = 'interval'::regtype THEN '''1 day''::interval'
		WHEN t = 'timestamptz'::regtype THEN 'now()'
		ELSE format('(SELECT NULL::%s)', t::regtype) END, ', ' ORDER BY o)
	 FROM unnest(p.proargtypes::oid[], p.proargnames[1:p.pronargs]) WITH ORDINALITY u(t, n, o))) AS s
FROM actual_grants a JOIN pg_proc p ON p.oid::regprocedure::text = a.fn
WHERE a.class IN ('app', 'admin') AND p.proargnames[1] = 'program'
	AND p.proname <> 'gifq_create_program';
DO $$
DECLARE f text;
BEGIN
	FOR f IN SELECT fn FROM program_calls LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO sec_hand', f);
	END LOOP;
END $$;
GRANT SELECT ON program_calls TO sec_hand;
SELECT cmp_ok((SELECT count(*) FROM program_calls), '>=', 26::bigint,
	'scope: every function that names a program is attempted');
SET ROLE sec_hand;
CREATE TEMP TABLE program_outcomes AS SELECT fn, pg_temp.code(s) AS code FROM program_calls;
RESET ROLE;
SELECT is_empty($$SELECT fn, code FROM program_outcomes WHERE code <> 'QG701'$$,
	'scope: every function that names a program (app ones, and admin ones given by hand) refuses an ungranted program with QG701');

-- the raw ledger, given by hand to an app role: still scoped, by account
-- id and pending transfer id
SELECT pg_temp.fingerprint() AS before_hand \gset
SET ROLE sec_hand;
SELECT throws_ok(format('SELECT * FROM gifq_balance(%s)', :b_ana), 'QG103',
	format('unknown account %s', :b_ana), 'scope: gifq_balance of an account of sec-b: "unknown account"');
SELECT throws_ok(format('SELECT * FROM gifq_balance_at(%s, now())', :b_ana), 'QG103', NULL,
	'scope: gifq_balance_at of an account of sec-b');
SELECT throws_ok(format('SELECT gifq_transfer(%s, %s, ''1 PTS'')', :b_iss, :b_ana), 'QG103',
	format('unknown account %s', :b_iss), 'scope: gifq_transfer (C) between accounts of sec-b');
SELECT throws_ok(format('SELECT gifq_transfers(''[{"debit_account": %s, "credit_account": %s, "amount": "1 PTS"}]'')',
	:b_iss, :b_ana), 'QG103', NULL, 'scope: gifq_transfers between accounts of sec-b');
SELECT throws_ok(format('SELECT gifq_post(%s)', :b_hold), 'QG110',
	format('transfer %s is not a pending transfer', :b_hold),
	'scope: gifq_post (C) of a hold of sec-b: "not a pending transfer"');
SELECT throws_ok(format('SELECT gifq_void(%s)', :b_hold), 'QG110', NULL,
	'scope: gifq_void (C) of a hold of sec-b');
SELECT throws_ok(format('SELECT gifq_retry_order(%s)', :b_order), 'QG215',
	format('unknown order %s', :b_order), 'scope: gifq_retry_order (C) of an order of sec-b');
RESET ROLE;
SELECT is(pg_temp.fingerprint(), :'before_hand', 'unchanged: the refused ledger calls changed nothing');
SELECT is((SELECT status FROM gifq.holds WHERE transfer_id = :b_hold), 'pending',
	'scope: the sec-b hold is still pending');
SET ROLE sec_hand;
SELECT lives_ok(format('SELECT gifq_void(%s)', :a_hold), 'scope: gifq_void of its own program''s hold');
SELECT lives_ok(format('SELECT * FROM gifq_balance(%s)', :a_ana), 'scope: gifq_balance of its own account');
RESET ROLE;

-- who is not scoped: admins, superusers, roles outside gifq_app
SET ROLE sec_admin;
SELECT is((SELECT program FROM gifq_order(:b_order)), 'sec-b', 'unscoped: gifq_admin acts on every program');
RESET ROLE;
SET ROLE sec_plain;
SELECT is((SELECT program FROM gifq_order(:b_order)), 'sec-b',
	'unscoped: a role outside gifq_app, given EXECUTE by hand, is not scoped');
RESET ROLE;
GRANT gifq_admin TO sec_app;
SET ROLE sec_app;
SELECT is((SELECT program FROM gifq_order(:b_order)), 'sec-b',
	'unscoped: an app role that is also in gifq_admin is not scoped (the cache follows membership)');
RESET ROLE;
REVOKE gifq_admin FROM sec_app;
SET ROLE sec_app;
SELECT throws_ok(format('SELECT * FROM gifq_order(%s)', :b_order), 'QG215', NULL,
	'scoped: ... and is scoped again once it leaves gifq_admin');
RESET ROLE;
SELECT is((SELECT gifq.caller_scoped()), false, 'unscoped: the superuser');

-- grants through membership: sec_member is in sec_team, which has sec-b
SET ROLE sec_member;
SELECT is((SELECT program FROM gifq_order(:b_order)), 'sec-b',
	'membership: a program granted to a role counts for its members');
SELECT throws_ok(format('SELECT * FROM gifq_order(%s)', :a_order), 'QG215', NULL,
	'membership: ... and only that program');
RESET ROLE;

-- global functions check no program: the provider's webhook, called by an
-- app role with no program at all, delivers an order of sec-b (and posts
-- its holds, which gifq_post would refuse that role)
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE ROLE sec_hook NOLOGIN IN ROLE gifq_app;
SELECT order_id AS hook_order FROM gifq_redeem('sec-b', 'ana', 'sec-us', '10.00 USD', 'sec-b-o3') \gset
UPDATE gifq.orders SET status = 'submitted' WHERE id = :hook_order;
SELECT jsonb_build_object('id', 'evt-sec-1', 'type', 'order.delivered', 'created_at', '2026-11-25T10:00:03Z',
	'data', jsonb_build_object('order_id', 'ord-sec-1', 'status', 'delivered',
		'reference_id', 'gifq-ord-' || lpad(:hook_order::text, 9, '0'),
		'gift_card', jsonb_build_object('code', 'HOOK-CODE-3333', 'pin', '1')))::text AS hook_body \gset
SELECT 't=' || t || ',v1=' || encode(hmac(t || '.' || :'hook_body', 'whsec-test', 'sha256'), 'hex') AS hook_sig
FROM (SELECT floor(extract(epoch FROM clock_timestamp()))::bigint AS t) x \gset
SET ROLE sec_hook;
SELECT is(gifq_provider_webhook(:'hook_body', :'hook_sig'), format('order %s delivered', :hook_order),
	'global: a scoped app role with no program receives the provider''s webhook for an order of sec-b');
RESET ROLE;
SELECT is((SELECT string_agg(h.status, '/' ORDER BY h.transfer_id) FROM gifq.holds h
	JOIN gifq.orders o ON h.transfer_id IN (o.points_hold, o.funding_hold) WHERE o.id = :hook_order),
	'posted/posted', 'global: ... and its holds are posted');
-- (sec-b's balance after this order, for the checks at the end)
SELECT available::text AS b_balance FROM gifq_member_balance('sec-b', 'ana') \gset

------------------------------------------------------------------------
-- gifq_grant_program, gifq_revoke_program
------------------------------------------------------------------------

SET ROLE sec_admin;
SELECT lives_ok($$SELECT gifq_grant_program('sec_app', 'sec-b')$$, 'grant: an admin grants sec-b to the app');
SELECT lives_ok($$SELECT gifq_grant_program('sec_app', 'sec-b')$$, 'grant: granting again is a no-op');
RESET ROLE;
SELECT is((SELECT count(*) FROM gifq.program_grants WHERE role = 'sec_app'::regrole), 2::bigint,
	'grant: one row per role and program');
SELECT is((SELECT granted_by FROM gifq.program_grants g JOIN gifq.programs p ON p.id = g.program_id
	WHERE g.role = 'sec_app'::regrole AND p.code = 'sec-b'), 'sec_admin', 'grant: the granting role is kept');
SET ROLE sec_app;
SELECT is((SELECT program FROM gifq_order(:b_order)), 'sec-b',
	'grant: the app acts on sec-b at once (same transaction: the cache was dropped)');
RESET ROLE;
SET ROLE sec_admin;
SELECT lives_ok($$SELECT gifq_revoke_program('sec_app', 'sec-b')$$, 'revoke: an admin takes sec-b back');
SELECT lives_ok($$SELECT gifq_revoke_program('sec_app', 'sec-b')$$, 'revoke: revoking again is a no-op');
SELECT throws_ok($$SELECT gifq_grant_program('no_such_role', 'sec-a')$$, 'QG702',
	'unknown role "no_such_role"', 'grant: an unknown role: QG702');
SELECT throws_ok($$SELECT gifq_revoke_program('no_such_role', 'sec-a')$$, 'QG702', NULL,
	'revoke: an unknown role: QG702');
SELECT throws_ok($$SELECT gifq_grant_program('sec_app', 'no-such-program')$$, 'QG101',
	'unknown program "no-such-program"', 'grant: an unknown program: QG101');
SELECT throws_ok($$SELECT gifq_grant_program(NULL, 'sec-a')$$, 'QG702', NULL,
	'grant: a NULL role: QG702');
RESET ROLE;
SET ROLE sec_app;
SELECT throws_ok(format('SELECT * FROM gifq_order(%s)', :b_order), 'QG215', NULL,
	'revoke: the app is refused sec-b again at once');
RESET ROLE;
-- a direct change of the table (as the owner) drops the caches too
DELETE FROM gifq.program_grants WHERE role = 'sec_app'::regrole;
SET ROLE sec_app;
SELECT throws_ok($$SELECT gifq_upsert_member('sec-a', 'bea')$$, 'QG701', NULL,
	'grants table: a row deleted by hand takes effect at once');
RESET ROLE;
SELECT gifq_grant_program('sec_app', 'sec-a');

------------------------------------------------------------------------
-- search_path: hostile shadowing objects never run
------------------------------------------------------------------------

-- The calls run as plain statements under the hostile path (pgTAP's own
-- functions have no fixed search_path and would run the evil objects);
-- the checks come after it is reset.
SET ROLE sec_app;
SET search_path = evil, pg_catalog, public;
SELECT 1::bigint = 2::bigint AS trap \gset
SELECT count(*) AS trap_rows FROM evil.ran \gset
TRUNCATE evil.ran;
SELECT gifq_upsert_member('sec-a', 'cid', 'cid@example.com', 'US', '{"a": "b"}') IS NOT NULL AS upserted;
SELECT event_id IS NOT NULL AS recorded FROM gifq_record_event('sec-a', 'cid', 'login', 'evil-1', NULL, '{"x": "y"}');
SELECT order_id IS NOT NULL AS redeemed FROM gifq_redeem('sec-a', 'ana', 'sec-us', '10.00 USD', 'evil-2');
SELECT program AS seen FROM gifq_order(:a_order);
SELECT code IS NOT NULL AS revealed FROM gifq_reveal_code(:a_order);
SELECT available IS NOT NULL AS balance FROM gifq_member_balance('sec-a', 'ana');
SELECT reward_id IS NOT NULL AS sent FROM gifq_send_reward('sec-a', 'dee@example.com', '10.00 USD', 'evil-3');
SELECT count(*) AS brands FROM gifq_catalog('US');
SELECT count(*) AS ranks FROM gifq_leaderboard('sec-a');
SELECT count(*) AS history FROM gifq_order_history(:a_order);
SELECT count(*) AS ran FROM evil.ran \gset
RESET search_path;
RESET ROLE;
SELECT is(:'trap'::text, 't'::text, 'search_path: the trap is live (evil = for bigint says 1 = 2 in the session)');
SELECT is(:trap_rows::bigint, 1::bigint, 'search_path: ... and records that it ran');
SELECT is(:ran::bigint, 0::bigint, 'search_path: no evil function or operator ran inside upsert_member, record_event (C), redeem (C), order, reveal_code, member_balance, send_reward, catalog, leaderboard, order_history');
SELECT is((SELECT count(*) FROM gifq.members WHERE external_id = 'cid'), 1::bigint,
	'search_path: upsert_member did its work under the hostile path');
SELECT is((SELECT count(*) FROM gifq.events WHERE idempotency_key = 'evil-1'), 1::bigint,
	'search_path: record_event did its work under the hostile path');
SELECT is((SELECT count(*) FROM gifq.orders WHERE idempotency_key = 'evil-2'), 1::bigint,
	'search_path: redeem did its work under the hostile path');
SELECT is((SELECT count(*) FROM gifq.rewards WHERE idempotency_key = 'evil-3'), 1::bigint,
	'search_path: send_reward did its work under the hostile path');
SELECT is((SELECT count(*) FROM gifq.card_reveals WHERE order_id = :a_order), 2::bigint,
	'search_path: reveal_code audited its reveal under the hostile path');

------------------------------------------------------------------------
-- SQL injection through every text argument of every app function
------------------------------------------------------------------------

-- each app function, each text argument set to each payload, the others
-- plausible (program sec-a, member ana, the brand, a fresh key); the
-- outcome is the call's SQLSTATE
CREATE TEMP TABLE payloads (p text);
INSERT INTO payloads VALUES ($$'); DROP TABLE gifq.orders; --$$), ($$x' OR '1'='1$$),
	('%s%s%s%n'), ('back\slash\\'), ($$"; DELETE FROM gifq.members; --$$),
	('ünïcödé ✓ 日本語 🎁'), ('$$; TRUNCATE gifq.transfers; $$'), ('%I %L');
CREATE TEMP TABLE injections (fn text, arg int, p text, s text);
INSERT INTO injections
SELECT a.fn, i, pl.p, format('SELECT * FROM %s(%s)', p.oid::regproc,
	(SELECT string_agg(CASE
		WHEN o = i THEN quote_literal(pl.p) || '::text'
		WHEN t = 'text'::regtype AND n = 'program' THEN '''sec-a''::text'
		WHEN t = 'text'::regtype AND n = 'member' THEN '''ana''::text'
		WHEN t = 'text'::regtype AND n = 'brand_id' THEN '''sec-us''::text'
		WHEN t = 'text'::regtype AND n LIKE '%email' THEN '''inj@example.com''::text'
		WHEN t = 'text'::regtype AND n LIKE '%key%' THEN quote_literal('inj-' || i || '-' || md5(pl.p)) || '::text'
		WHEN t = 'text'::regtype THEN '''x''::text'
		WHEN t = 'gifq_money'::regtype THEN '''10.00 USD''::gifq_money'
		WHEN t = 'jsonb'::regtype AND n = 'attributes' THEN '''{}''::jsonb'
		ELSE format('NULL::%s', t::regtype) END, ', ' ORDER BY o)
	 FROM unnest(p.proargtypes::oid[], p.proargnames[1:p.pronargs]) WITH ORDINALITY u(t, n, o)))
FROM actual_grants a JOIN pg_proc p ON p.oid::regprocedure::text = a.fn
CROSS JOIN generate_series(1, 8) i CROSS JOIN payloads pl
WHERE a.class = 'app' AND i <= p.pronargs AND p.proargtypes[i - 1] = 'text'::regtype;
GRANT SELECT ON injections TO sec_app;
SELECT cmp_ok((SELECT count(DISTINCT fn || arg) FROM injections), '>=', 35::bigint,
	'injection: every text argument of every app function is attempted');
SELECT pg_temp.fingerprint() AS before_injection \gset
SET ROLE sec_app;
CREATE TEMP TABLE outcomes AS
SELECT fn, arg, p, pg_temp.code(s) AS code FROM injections;
RESET ROLE;
SELECT is_empty($$SELECT fn, arg, p, code FROM outcomes
	WHERE code NOT LIKE 'QG%' AND code NOT LIKE '22%' AND code <> 'no error'$$,
	'injection: every call ends in a gifq error, a data error or success; never a syntax or privilege error from running the payload');
SELECT cmp_ok((SELECT count(*) FROM outcomes WHERE code = 'no error'), '>', 0::bigint,
	'injection: some calls accept the payload as data');
SELECT is(pg_temp.fingerprint(), :'before_injection',
	'injection: nothing changed (every call was undone; nothing was dropped, deleted or truncated)');
-- stored literally: a member id with quotes and a payload
SET ROLE sec_app;
SELECT gifq_upsert_member('sec-a', $$'); DROP TABLE gifq.orders; --$$, NULL, NULL,
	'{"note": "\"; DELETE FROM gifq.members; --"}');
RESET ROLE;
SELECT is((SELECT attributes ->> 'note' FROM gifq.members WHERE external_id = $$'); DROP TABLE gifq.orders; --$$),
	'"; DELETE FROM gifq.members; --', 'injection: the payloads are stored as the literal text they are');
SELECT has_table('gifq', 'orders', 'injection: gifq.orders is still there');

------------------------------------------------------------------------
-- Reporting views: gifq_reader sees every program, a scoped reader its own
------------------------------------------------------------------------

SET ROLE sec_reader;
SELECT results_eq($$SELECT program, orders FROM gifq.order_outcomes WHERE program LIKE 'sec-%' ORDER BY 1$$,
	$$VALUES ('sec-a', 2::bigint), ('sec-b', 3::bigint)$$,
	'reader: gifq_reader sees the orders of every program');
SELECT lives_ok($$SELECT * FROM gifq.order_success, gifq.provider_latency, gifq.worker,
	gifq.order_failures, gifq.provider_latency_daily, gifq.time_to_reward, gifq.spend_by_program,
	gifq.spend_by_brand, gifq.spend_by_category, gifq.average_order_value,
	gifq.redemption_conversion, gifq.recipient_yearly_totals, gifq.webhook_delivery,
	gifq.reward_rates LIMIT 1$$, 'reader: gifq_reader reads every view');
SELECT throws_ok(format('SELECT * FROM gifq_order(%s)', :a_order), '42501', NULL,
	'reader: gifq_reader calls no API function');
SELECT throws_ok('SELECT * FROM gifq.orders', '42501', NULL, 'reader: gifq_reader reads no table');
RESET ROLE;
SET ROLE sec_both;
SELECT results_eq($$SELECT program, orders FROM gifq.order_outcomes WHERE program LIKE 'sec-%' ORDER BY 1$$,
	$$VALUES ('sec-a', 2::bigint)$$, 'scoped reader: order_outcomes shows only its program');
SELECT results_eq($$SELECT program FROM gifq.spend_by_program WHERE program LIKE 'sec-%'
	UNION SELECT program FROM gifq.spend_by_brand WHERE program LIKE 'sec-%'
	UNION SELECT program FROM gifq.spend_by_category WHERE program LIKE 'sec-%'
	UNION SELECT program FROM gifq.average_order_value WHERE program LIKE 'sec-%'
	UNION SELECT program FROM gifq.time_to_reward WHERE program LIKE 'sec-%'$$,
	$$VALUES ('sec-a')$$, 'scoped reader: spend and delivery views show only its program');
SELECT results_eq($$SELECT program FROM gifq.redemption_conversion WHERE program LIKE 'sec-%'
	UNION SELECT program FROM gifq.recipient_yearly_totals WHERE program LIKE 'sec-%'
	UNION SELECT program FROM gifq.reward_rates WHERE program LIKE 'sec-%'$$,
	$$VALUES ('sec-a')$$, 'scoped reader: conversion, yearly totals and reward views show only its program');
SELECT is((SELECT sum(orders)::bigint FROM gifq.order_outcomes), (SELECT 2::bigint),
	'scoped reader: no other program''s orders are counted anywhere');
SELECT is((SELECT sum(delivered)::bigint FROM gifq.order_success), 1::bigint,
	'scoped reader: order_success counts only its program''s deliveries');
RESET ROLE;
SELECT cmp_ok((SELECT sum(orders)::bigint FROM gifq.order_outcomes), '>=', 5::bigint,
	'scoped reader: (the superuser sees all of them)');
SELECT cmp_ok((SELECT sum(delivered)::bigint FROM gifq.order_success), '>=', 3::bigint,
	'scoped reader: (and every delivery)');

------------------------------------------------------------------------
-- sec-b after all the attacks
------------------------------------------------------------------------

SELECT is((SELECT count(*) FROM gifq.orders o JOIN gifq.programs p ON p.id = o.program_id
	WHERE p.code = 'sec-b'), 3::bigint, 'unchanged: sec-b still has its three orders (two of the setup, one delivered by webhook)');
SELECT is((SELECT count(*) FROM gifq.rewards r JOIN gifq.programs p ON p.id = r.program_id
	WHERE p.code = 'sec-b' AND r.status = 'pending'), 1::bigint, 'unchanged: sec-b''s reward is still unclaimed');
SELECT is((SELECT count(*) FROM gifq.members m JOIN gifq.programs p ON p.id = m.program_id
	WHERE p.code = 'sec-b'), 1::bigint, 'unchanged: sec-b has no new member');
SELECT is((SELECT available::text FROM gifq_member_balance('sec-b', 'ana')), :'b_balance',
	'unchanged: sec-b''s member has the balance the setup left');
SELECT is((SELECT count(*) FROM gifq.program_grants g JOIN gifq.programs p ON p.id = g.program_id
	WHERE p.code = 'sec-b'), 1::bigint, 'unchanged: sec-b is granted only to sec_team');
SELECT is_empty($$SELECT * FROM gifq_ledger_verify()$$, 'unchanged: the ledger verifies');

SELECT * FROM finish();
ROLLBACK;
