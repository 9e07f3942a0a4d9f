-- fuzz_api.sql: pgTAP suite, a seeded random-argument run over every API
-- function of the extension (issue 8, fuzzing).
--
-- The functions are found in the catalog, not listed here: every function
-- or aggregate the extension owns in its API schema (pg_depend), except
-- those taking "internal" or "cstring" (the type's own support functions,
-- reached only through the type).  New functions are covered as they are
-- added.  Each is called the same number of times, at least 100,000 calls
-- in all, with arguments drawn per type from pools of good and hostile
-- values (empty, huge, quoted, unicode and binary-junk text, SQL
-- injection, the ids of a real program; zero, negative and extreme
-- numbers, NULL; good and bad gifq_money text; malformed, deeply nested,
-- huge and wrongly typed jsonb; infinite and far-off timestamps; extreme
-- intervals; odd arrays).  Each call runs in its own subtransaction (a
-- PL/pgSQL exception block): a call that succeeds stays, so later calls
-- meet the state earlier ones built, and the ledger must still verify at
-- the end.
--
-- Asserted: no backend crash; every error's SQLSTATE is gifq's own (QGxxx)
-- or a standard code that fits bad input (classes 22 data exception, 23
-- integrity, 42 syntax or access, 54 program limit: input too large or
-- too deep); never XX000 (internal error), 58xxx, P0001 (a bare RAISE
-- without a code) or anything else; and gifq_ledger_verify() is empty.
--
-- Replay: the seed is printed as a TAP comment ("# fuzz_api seed N");
-- run the file again with GIFQ_FUZZ_SEED=N in the environment (pg_prove
-- passes it to psql, which reads it with \getenv) to make the same calls.
-- GIFQ_FUZZ_CALLS overrides the number of calls (default 100000).
\getenv fuzz_seed GIFQ_FUZZ_SEED
\getenv fuzz_calls GIFQ_FUZZ_CALLS
BEGIN;
SELECT plan(7);

SET client_min_messages = warning;
SET LOCAL TimeZone = 'UTC';
-- a guard against a hang: the whole run must finish well within this
SET LOCAL statement_timeout = '600s';

\if :{?fuzz_seed}
SELECT set_config('gifq_fuzz.seed', :'fuzz_seed', true) AS fuzz_seed_set \gset
\else
SELECT set_config('gifq_fuzz.seed', floor(random() * 2147483647)::bigint::text, true)
	AS fuzz_seed_set \gset
\endif
\if :{?fuzz_calls}
SELECT set_config('gifq_fuzz.calls', :'fuzz_calls', true) AS fuzz_calls_set \gset
\else
SELECT set_config('gifq_fuzz.calls', '100000', true) AS fuzz_calls_set \gset
\endif
SELECT diag(format('fuzz_api seed %s (replay: GIFQ_FUZZ_SEED=%s)',
	current_setting('gifq_fuzz.seed'), current_setting('gifq_fuzz.seed')));

------------------------------------------------------------------------
-- A program the calls can hit: members, funding, a catalog, rules, a
-- reward, a hold, an order.  Its names are in the text pool below.
------------------------------------------------------------------------

\o /dev/null
SELECT gifq_create_program('fz', 'USD', 'PTS', 100, 'UTC');
SELECT gifq_create_program('fz2', 'EUR', 'PTS', 100, 'Europe/Paris');
SELECT gifq_upsert_member('fz', m, m || '@example.com', 'US', '{"team": "a"}', true)
	FROM unnest(ARRAY['m1', 'm2', 'm3']) m;
SELECT gifq_upsert_member('fz2', 'm1', NULL, 'FR');
SELECT gifq_fund('fz', '1000.00 USD', 'fz-fund');
SELECT gifq_catalog_load('{"brands": [
	{"id": "amazon-us", "name": "Amazon", "country": "US", "currency": "USD",
	 "categories": ["retail"], "denominations": [10, 25], "discount_pct": 3.0, "in_stock": true},
	{"id": "visa-us", "name": "Visa", "country": "US", "currency": "USD",
	 "categories": ["prepaid"], "min_value": 1, "max_value": 500, "discount_pct": 2.5, "in_stock": true}
]}');
SELECT gifq_set_rule('fz', 'done', 5000);
SELECT gifq_define_streak('fz', 'daily', 'done', 'day');
SELECT gifq_define_threshold('fz', 100, 'unlock');
SELECT gifq_record_event('fz', 'm1', 'done', 'fz-e1');
SELECT gifq_record_event('fz', 'm2', 'done', 'fz-e2');
SELECT gifq_redeem('fz', 'm1', 'amazon-us', '10.00 USD', 'fz-r1');
SELECT gifq_transfer(gifq_account('fz', NULL, 'funding', 'USD'),
	gifq_account('fz', NULL, 'liability', 'USD'), '1.00 USD', 'fz-h1', true);
CREATE TEMP TABLE fz_tokens AS
	SELECT claim_token AS token FROM gifq_send_reward('fz', 'r@example.com', '5.00 USD', 'fz-w1');
\o

------------------------------------------------------------------------
-- Argument pools: SQL expressions per type, with weights.  Expressions
-- are evaluated at each call, so ids follow the state.
------------------------------------------------------------------------

CREATE TEMP TABLE fz_pool (typ regtype, expr text, w integer DEFAULT 3);

INSERT INTO fz_pool (typ, expr, w) VALUES
	-- text: the program's own names, then hostile strings
	('text', 'NULL', 4), ('text', $$''$$, 3), ('text', $$' '$$, 1),
	('text', $$'fz'$$, 12), ('text', $$'fz2'$$, 3), ('text', $$'m1'$$, 8),
	('text', $$'m2'$$, 4), ('text', $$'m3'$$, 3), ('text', $$'nobody'$$, 2),
	('text', $$'USD'$$, 4), ('text', $$'EUR'$$, 2), ('text', $$'PTS'$$, 2),
	('text', $$'usd'$$, 1), ('text', $$'amazon-us'$$, 6), ('text', $$'visa-us'$$, 3),
	('text', $$'done'$$, 5), ('text', $$'daily'$$, 2), ('text', $$'day'$$, 2),
	('text', $$'all'$$, 2), ('text', $$'week'$$, 1), ('text', $$'funding'$$, 2),
	('text', $$'liability'$$, 1), ('text', $$'points'$$, 2), ('text', $$'unlock'$$, 1),
	('text', $$'reward'$$, 1), ('text', $$'UTC'$$, 1), ('text', $$'Mars/Olympus'$$, 1),
	('text', $$'US'$$, 2), ('text', $$'ZZ'$$, 1), ('text', $$'retail'$$, 1),
	('text', $$'a@example.com'$$, 3), ('text', $$'not an email'$$, 1),
	('text', $$'debits_must_not_exceed_credits'$$, 1),
	('text', '(SELECT token FROM fz_tokens LIMIT 1)', 3),
	('text', $$'gqr_' || repeat('A', 32)$$, 1),
	('text', $$'k-' || floor(random() * 1000)::text$$, 8),
	('text', $$'''; DROP TABLE gifq.transfers; --'$$, 2),
	('text', $$''' OR ''1''=''1'$$, 2),
	('text', $$'fz''); DELETE FROM gifq.entries; --'$$, 1),
	('text', $q$'$1 $$ \'$q$, 1),
	('text', $$'%s%s%n%x%d'$$, 1),
	('text', $$'Ωmega 🎁 ﷽ 𝕏 ñ'$$, 2),
	('text', $$E'\u200b\u202e\ufeff'$$, 1),
	('text', $$E'tab\there\nnew line\r'$$, 1),
	('text', $$(SELECT string_agg(chr(1 + floor(random() * 254)::int), '') FROM generate_series(1, 40))$$, 3),
	('text', $$(SELECT string_agg(chr(1 + floor(random() * 55000)::int), '') FROM generate_series(1, 20))$$, 2),
	('text', $$repeat('x', 300)$$, 1), ('text', $$repeat('y', 10000)$$, 1),
	('text', $$repeat('z', 1000000)$$, 1),
	('text', $$'NaN'$$, 1), ('text', $$'null'$$, 1), ('text', $$'{}'$$, 1),
	('text', $$'12.50 USD'$$, 1), ('text', $$'%'$$, 1), ('text', $$'_'$$, 1),
	('text', $$'\\'$$, 1), ('text', $$repeat('9', 400)$$, 1),
	-- text[]
	('text[]', 'NULL', 3), ('text[]', $$'{}'$$, 3), ('text[]', $$'{amazon-us}'$$, 3),
	('text[]', $$'{visa-us,amazon-us}'$$, 2), ('text[]', $$'{""}'$$, 1), ('text[]', $$'{NULL}'$$, 1),
	('text[]', $$'{US,ZZ}'$$, 1), ('text[]', $$'{retail}'$$, 1),
	('text[]', $$'{debits_must_not_exceed_credits}'$$, 1), ('text[]', $$'{bogus_flag}'$$, 1),
	('text[]', $$'{{a,b},{c,d}}'$$, 1), ('text[]', $$ARRAY[repeat('x', 10000)]$$, 1),
	('text[]', $$(SELECT array_agg(g::text) FROM generate_series(1, 10000) g)$$, 1),
	-- integers
	('integer', 'NULL', 3), ('integer', '0', 3), ('integer', '1', 3), ('integer', '-1', 2),
	('integer', '2', 2), ('integer', '5', 2), ('integer', '10', 2), ('integer', '100', 1),
	('integer', '2147483647', 1), ('integer', '-2147483648', 1), ('integer', '1000000', 1),
	('bigint', 'NULL', 3), ('bigint', '0', 3), ('bigint', '1', 3), ('bigint', '-1', 2),
	('bigint', '100', 2), ('bigint', '5000', 1), ('bigint', '9223372036854775807', 1),
	('bigint', '-9223372036854775808', 1), ('bigint', '4611686018427387904', 1),
	('bigint', '(SELECT max(id) FROM gifq.transfers)', 3),
	('bigint', '(SELECT max(transfer_id) FROM gifq.holds)', 2),
	('bigint', '(SELECT max(id) FROM gifq.orders)', 3),
	('bigint', '(SELECT min(id) FROM gifq.accounts)', 2),
	('bigint', '(SELECT max(id) FROM gifq.accounts)', 2),
	('bigint', '(SELECT max(id) FROM gifq.rewards)', 1),
	('numeric', 'NULL', 3), ('numeric', '0', 2), ('numeric', '1', 2), ('numeric', '-1', 2),
	('numeric', '0.5', 2), ('numeric', '1.005', 1), ('numeric', '100', 2),
	('numeric', '1e-20', 1), ('numeric', '1e20', 1), ('numeric', '1e131071', 1),
	('numeric', $$'NaN'$$, 1), ('numeric', $$'Infinity'$$, 1), ('numeric', $$'-Infinity'$$, 1),
	('numeric', '99999999999999999999.99', 1),
	('double precision', 'NULL', 1), ('double precision', '0', 1), ('double precision', $$'NaN'$$, 1),
	('double precision', $$'Infinity'$$, 1), ('double precision', '1e308', 1),
	('boolean', 'NULL', 1), ('boolean', 'true', 2), ('boolean', 'false', 2),
	-- gifq_money: good and bad text
	('gifq_money', 'NULL', 3), ('gifq_money', $$'12.50 USD'$$, 4), ('gifq_money', $$'10.00 USD'$$, 4),
	('gifq_money', $$'0.00 USD'$$, 2), ('gifq_money', $$'-5.00 USD'$$, 2), ('gifq_money', $$'0.01 USD'$$, 2),
	('gifq_money', $$'100 PTS'$$, 3), ('gifq_money', $$'1 PTS'$$, 2), ('gifq_money', $$'-1 PTS'$$, 1),
	('gifq_money', $$'1.00 EUR'$$, 2), ('gifq_money', $$'5 JPY'$$, 1),
	('gifq_money', $$'92233720368547758.07 USD'$$, 1), ('gifq_money', $$'-92233720368547758.08 USD'$$, 1),
	('gifq_money', $$'9223372036854775807 PTS'$$, 1),
	('gifq_money', $$'garbage'$$, 1), ('gifq_money', $$'1.005 USD'$$, 1),
	('gifq_money', $$'12.50 usd'$$, 1), ('gifq_money', $$'92233720368547758.08 USD'$$, 1),
	('gifq_money', $$'USD 1'$$, 1), ('gifq_money', $$''$$, 1),
	-- jsonb: good shapes for the API's jsonb arguments, then hostile ones
	('jsonb', 'NULL', 3), ('jsonb', $$'{}'$$, 4), ('jsonb', $$'[]'$$, 3), ('jsonb', $$'null'$$, 2),
	('jsonb', $$'1'$$, 1), ('jsonb', $$'"s"'$$, 1), ('jsonb', $$'true'$$, 1),
	('jsonb', $$'[1, 2, 3]'$$, 1), ('jsonb', $$'[null]'$$, 1), ('jsonb', $$'[[]]'$$, 1), ('jsonb', $$'[{}]'$$, 2),
	('jsonb', $$'{"team": "a"}'$$, 2), ('jsonb', $$'{"team": 5}'$$, 1), ('jsonb', $$'{"team": {"x": [1]}}'$$, 1),
	('jsonb', $$'[{"member": "m1", "event_type": "done", "idempotency_key": "fz-be"}]'$$, 2),
	('jsonb', $$'[{"member": 5, "event_type": ["done"], "idempotency_key": {}}]'$$, 1),
	('jsonb', $$'[{"debit_account": 1, "credit_account": 2, "amount": "1.00 USD"}]'$$, 2),
	('jsonb', $$'[{"debit_account": "x", "credit_account": null, "amount": 12}]'$$, 1),
	('jsonb', $$'[{"recipient_email": "b@example.com", "value": "1.00 USD", "idempotency_key": "fz-bw"}]'$$, 2),
	('jsonb', $$'[{"recipient_email": 1, "value": "lots", "idempotency_key": [], "expires_at": "soon"}]'$$, 1),
	('jsonb', $$'{"max_single_value": "50.00 USD", "max_redemptions_per_day": 3}'$$, 2),
	('jsonb', $$'{"max_single_value": "lots", "max_redemptions_per_day": -3, "bogus": 1}'$$, 1),
	('jsonb', $$'{"max_redemptions_per_day": 1e400}'$$, 1),
	('jsonb', $$'{"brands": []}'$$, 2), ('jsonb', $$'{"brands": "x"}'$$, 1),
	('jsonb', $$'{"brands": [{"id": "fz-b", "name": "B", "country": "US", "currency": "USD", "categories": ["x"], "min_value": 1, "max_value": 9, "discount_pct": 1, "in_stock": true}]}'$$, 1),
	('jsonb', $$'{"brands": [{"id": 1, "name": null, "currency": "usd", "denominations": ["a"]}]}'$$, 1),
	('jsonb', $$'{"brands": [{"id": "fz-c", "name": "C", "country": "US", "currency": "USD", "min_value": 1e300, "max_value": -1, "discount_pct": 1e10, "in_stock": "yes"}]}'$$, 1),
	('jsonb', $$(repeat('[', 1000) || repeat(']', 1000))::jsonb$$, 1),
	('jsonb', $$(repeat('{"a":', 2000) || '1' || repeat('}', 2000))::jsonb$$, 1),
	('jsonb', $$(repeat('[', 10000) || repeat(']', 10000))::jsonb$$, 1),
	('jsonb', $$(SELECT jsonb_agg(g) FROM generate_series(1, 100000) g)$$, 1),
	('jsonb', $$(SELECT jsonb_agg(jsonb_build_object('member', 'm1', 'event_type', 'done', 'idempotency_key', 'fz-bb' || g)) FROM generate_series(1, 2000) g)$$, 1),
	('jsonb', $$(SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 10000) g)$$, 1),
	('jsonb', $$to_jsonb(repeat('x', 1000000))$$, 1),
	('jsonb', $$jsonb_build_object('team', repeat('x', 100000))$$, 1),
	-- times
	('timestamp with time zone', 'NULL', 3), ('timestamp with time zone', 'now()', 4),
	('timestamp with time zone', $$now() + interval '1 day'$$, 2),
	('timestamp with time zone', $$now() - interval '1 year'$$, 2),
	('timestamp with time zone', $$'infinity'$$, 1), ('timestamp with time zone', $$'-infinity'$$, 1),
	('timestamp with time zone', $$'4713-01-01 00:00 BC'$$, 1),
	('timestamp with time zone', $$'294276-12-31 23:59:59'$$, 1),
	('timestamp with time zone', $$'1970-01-01'$$, 1),
	('interval', 'NULL', 3), ('interval', $$'0'$$, 2), ('interval', $$'1 day'$$, 3),
	('interval', $$'-1 day'$$, 2), ('interval', $$'1 microsecond'$$, 1), ('interval', $$'1 month'$$, 1),
	('interval', $$'178000000 years'$$, 1), ('interval', $$'-178000000 years'$$, 1),
	('interval', $$'2147483647 days 2147483647 months'$$, 1),
	('integer[]', 'NULL', 2), ('integer[]', $$'{}'$$, 2), ('integer[]', $$'{1,2,3}'$$, 3),
	('integer[]', $$'{0,0}'$$, 1), ('integer[]', $$'{-1,2}'$$, 1), ('integer[]', $$'{{1,2},{3,4}}'$$, 1),
	('integer[]', $$'{NULL,1}'$$, 1), ('integer[]', $$'{2147483647,2147483647,2147483647}'$$, 1),
	('integer[]', $$(SELECT array_agg(1) FROM generate_series(1, 100000))$$, 1),
	('bigint[]', 'NULL', 1), ('bigint[]', $$'{}'$$, 1), ('bigint[]', $$'{1,-1,NULL}'$$, 1);

-- all pools in one array, each expression repeated by its weight; each
-- type's pool is the slice [off, off + len)
CREATE TEMP TABLE fz_arr AS
	SELECT typ, exprs, cardinality(exprs) AS len,
		1 + coalesce(sum(cardinality(exprs)) OVER (ORDER BY typ ROWS BETWEEN UNBOUNDED PRECEDING
			AND 1 PRECEDING), 0)::integer AS off
	FROM (SELECT typ::oid AS typ, array_agg(expr ORDER BY expr, i) AS exprs
		FROM fz_pool, generate_series(1, w) i GROUP BY typ) x;

------------------------------------------------------------------------
-- The functions: the extension's, in its API schema
------------------------------------------------------------------------

CREATE TEMP TABLE fz_funcs AS
	SELECT p.oid AS fn, format('%I.%I', n.nspname, p.proname) AS name,
		p.oid::regprocedure::text AS signature, p.prokind = 'a' AS is_agg,
		-- (an oidvector cast to oid[] keeps its zero lower bound)
		ARRAY(SELECT unnest(p.proargtypes::oid[])) AS argtypes
	FROM pg_proc p
	JOIN pg_namespace n ON n.oid = p.pronamespace
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
		AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'gifq'
	WHERE p.pronamespace = e.extnamespace
		AND p.prokind IN ('f', 'a')
		AND p.prorettype <> 'trigger'::regtype
		AND NOT p.proargtypes::oid[] && ARRAY['internal'::regtype, 'cstring'::regtype]::oid[];

-- each argument's pool slice and type name, worked out once
ALTER TABLE fz_funcs ADD offs integer[], ADD lens integer[], ADD casts text[];
UPDATE fz_funcs SET
	offs = ARRAY(SELECT coalesce(a.off, 0) FROM unnest(argtypes) WITH ORDINALITY u(t, n)
		LEFT JOIN fz_arr a ON a.typ = u.t ORDER BY u.n),
	lens = ARRAY(SELECT coalesce(a.len, 0) FROM unnest(argtypes) WITH ORDINALITY u(t, n)
		LEFT JOIN fz_arr a ON a.typ = u.t ORDER BY u.n),
	casts = ARRAY(SELECT format_type(u.t, NULL) FROM unnest(argtypes) WITH ORDINALITY u(t, n)
		ORDER BY u.n);

CREATE TEMP TABLE fz_errlog (i integer, sqlstate text, example text, message text);
CREATE TEMP TABLE fz_errors (
	signature text, sqlstate text, n bigint, example text, message text,
	PRIMARY KEY (signature, sqlstate));
CREATE TEMP TABLE fz_calls (signature text PRIMARY KEY, calls bigint, ok bigint,
	ms double precision);

-- the SQLSTATEs a hostile argument may fairly get
CREATE FUNCTION pg_temp.allowed(st text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT st LIKE 'QG%' OR left(st, 2) IN ('22', '23', '42', '54')
$$;

------------------------------------------------------------------------
-- The run
------------------------------------------------------------------------

CREATE FUNCTION pg_temp.fuzz_run(total integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	f fz_funcs;
	funcs fz_funcs[];
	nfuncs integer;
	rounds integer;
	allx text[];
	args text[];
	q text;
	st text;
	msg text;
	succeeded boolean;
	t0 timestamptz;
	ncalls bigint[];
	nok bigint[];
	ms double precision[];
BEGIN
	PERFORM setseed(current_setting('gifq_fuzz.seed')::bigint / 2147483648.0);
	SELECT array_agg(x ORDER BY x.signature) INTO funcs FROM fz_funcs x;
	SELECT array_agg(e ORDER BY typ, n) INTO allx
		FROM fz_arr, unnest(exprs) WITH ORDINALITY u(e, n);
	nfuncs := cardinality(funcs);
	ncalls := array_fill(0::bigint, ARRAY[nfuncs]);
	nok := ncalls;
	ms := array_fill(0::double precision, ARRAY[nfuncs]);
	-- the calls are shared among the functions that take arguments; one
	-- with none has nothing to vary and is called every 50th round
	rounds := ceil(total::numeric / (SELECT count(*) FROM fz_funcs WHERE cardinality(argtypes) > 0));
	FOR r IN 1 .. rounds LOOP
		-- the calls that succeed grow gifq's tables inside this one
		-- transaction, where autovacuum cannot see them: keep the
		-- planner's statistics current
		IF r % 100 = 0 THEN
			ANALYZE gifq.transfers, gifq.holds, gifq.accounts, gifq.account_slots,
				gifq.members, gifq.orders, gifq.rewards, gifq.outbox, gifq.events;
		END IF;
		FOR i IN 1 .. nfuncs LOOP
			f := funcs[i];
			IF cardinality(f.argtypes) = 0 AND r % 50 <> 1 THEN
				CONTINUE;
			END IF;
			args := '{}';
			FOR j IN 1 .. coalesce(cardinality(f.argtypes), 0) LOOP
				args := args || ('(' || CASE WHEN f.lens[j] = 0 THEN 'NULL'
					ELSE allx[f.offs[j] + floor(random() * f.lens[j])::integer] END
					|| ')::' || f.casts[j]);
			END LOOP;
			IF f.is_agg THEN
				q := format('SELECT length(%s(a)::text) FROM (VALUES (%s)) v(a)', f.name,
					array_to_string(args, ', '));
			ELSE
				q := format('SELECT sum(length(s::text)) FROM %s(%s) s', f.name,
					array_to_string(args, ', '));
			END IF;
			succeeded := true;
			t0 := clock_timestamp();
			BEGIN
				EXECUTE q;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
				succeeded := false;
				-- the call itself is kept only where it may be a finding
				IF st LIKE 'QG%' THEN
					INSERT INTO fz_errlog VALUES (i, st);
				ELSE
					INSERT INTO fz_errlog VALUES (i, st, left(q, 400), left(msg, 300));
				END IF;
			END;
			ms[i] := ms[i] + extract(epoch FROM clock_timestamp() - t0) * 1000;
			ncalls[i] := ncalls[i] + 1;
			nok[i] := nok[i] + succeeded::integer;
		END LOOP;
	END LOOP;
	INSERT INTO fz_calls
		SELECT (funcs[n]).signature, c, o, m
		FROM unnest(ncalls, nok, ms) WITH ORDINALITY u(c, o, m, n) WHERE c > 0;
	INSERT INTO fz_errors
		SELECT (funcs[e.i]).signature, e.sqlstate, count(*), min(e.example), min(e.message)
		FROM fz_errlog e GROUP BY e.i, e.sqlstate;
END $$;

SELECT clock_timestamp() AS fuzz_started \gset
SELECT pg_temp.fuzz_run(current_setting('gifq_fuzz.calls')::integer) AS fuzz_done \gset
SELECT diag(format('fuzz_api: %s calls over %s functions in %s s (%s s in the calls); %s succeeded',
	(SELECT sum(calls) FROM fz_calls), (SELECT count(*) FROM fz_calls),
	round(extract(epoch FROM clock_timestamp() - :'fuzz_started'::timestamptz), 1),
	(SELECT round(sum(ms)::numeric / 1000, 1) FROM fz_calls), (SELECT sum(ok) FROM fz_calls)));
SELECT diag(format('fuzz_api: slowest: %s',
	(SELECT string_agg(format('%s %s ms', signature, round(ms::numeric)), ', ' ORDER BY ms DESC)
	 FROM (SELECT * FROM fz_calls ORDER BY ms DESC LIMIT 5) s)));
SELECT diag(format('fuzz_api: standard SQLSTATEs: %s',
	(SELECT string_agg(format('%s %s x%s (%s)', sqlstate, signature, n, message), '; '
		ORDER BY sqlstate, signature)
	 FROM fz_errors WHERE sqlstate NOT LIKE 'QG%')));
SELECT diag(format('fuzz_api: errors by SQLSTATE: %s',
	(SELECT string_agg(format('%s %s', sqlstate, n), ', ' ORDER BY sqlstate)
	 FROM (SELECT sqlstate, sum(n) AS n FROM fz_errors GROUP BY 1) s)));

------------------------------------------------------------------------
-- The assertions
------------------------------------------------------------------------

SELECT ok((SELECT count(*) FROM fz_funcs) >= 60,
	'fuzz: the API functions are found in the catalog');
SELECT ok((SELECT sum(calls) FROM fz_calls JOIN fz_funcs USING (signature)
		WHERE cardinality(argtypes) > 0) >= current_setting('gifq_fuzz.calls')::bigint,
	'fuzz: at least the requested number of calls were made');
SELECT is((SELECT string_agg(x.signature, ', ') FROM fz_funcs x LEFT JOIN fz_calls c USING (signature)
		WHERE coalesce(c.calls, 0) < CASE WHEN cardinality(x.argtypes) = 0 THEN 1
			ELSE current_setting('gifq_fuzz.calls')::bigint
				/ (SELECT count(*) FROM fz_funcs WHERE cardinality(argtypes) > 0) END), NULL,
	'fuzz: every API function got its share of the calls');
SELECT is((SELECT string_agg(format('%s: %s x%s (%s) e.g. %s', signature, sqlstate, n, message,
			example), E'\n' ORDER BY signature, sqlstate)
		FROM fz_errors WHERE NOT pg_temp.allowed(sqlstate)), NULL,
	'fuzz: every error is a gifq (QG) or a fitting standard SQLSTATE: never XX000, 58xxx or P0001');
SELECT ok((SELECT count(*) FROM fz_calls WHERE ok > 0) >= 20,
	'fuzz: the program''s ids let many functions get past argument checks');
SELECT is(pg_backend_pid() > 0, true, 'fuzz: the backend is alive');
SELECT is_empty('SELECT * FROM gifq_ledger_verify()', 'fuzz: the ledger still verifies');

SELECT * FROM finish();
ROLLBACK;
