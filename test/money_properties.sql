-- money_properties.sql: pgTAP suite for the properties of gifq_money that
-- users rely on, checked over generated data.  The data come from random()
-- after setseed(), so every run sees the same values; references are
-- computed independently from the minor units, the currency code and
-- numeric arithmetic, never with the operator under test.
BEGIN;
SELECT plan(76);

SET client_min_messages = warning;
DO $$ BEGIN PERFORM setseed(0.2718281828); END $$;

------------------------------------------------------------------------
-- Helpers (pg_temp: gone with the session, and rolled back anyway)
------------------------------------------------------------------------

-- a uniform integer in [lo, hi], from two random() draws of 32 bits each,
-- so that the whole int64 range is reachable
CREATE FUNCTION pg_temp.rnd(lo numeric, hi numeric) RETURNS numeric
LANGUAGE sql VOLATILE AS $$
	SELECT lo + mod(floor(random() * 4294967296)::numeric * 4294967296
					+ floor(random() * 4294967296)::numeric, hi - lo + 1)
$$;

-- random minor units of one of four magnitude classes: 0 small (many
-- duplicates), 1 medium, 2 large but three of them add without overflow,
-- 3 the whole int64 range
CREATE FUNCTION pg_temp.runits(class int) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
	SELECT (CASE class
		WHEN 0 THEN pg_temp.rnd(-1000, 1000)
		WHEN 1 THEN pg_temp.rnd(-1000000000, 1000000000)
		WHEN 2 THEN pg_temp.rnd(-2305843009213693952, 2305843009213693952)
		ELSE pg_temp.rnd(-9223372036854775808, 9223372036854775807)
	END)::bigint
$$;

-- 10^-e as an exact numeric of scale e
CREATE FUNCTION pg_temp.tenth(e int) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE e WHEN 0 THEN 1 WHEN 1 THEN 0.1 WHEN 2 THEN 0.01
		WHEN 3 THEN 0.001 WHEN 4 THEN 0.0001 END
$$;

-- 10^-s as an exact numeric of scale s, for any s >= 0
CREATE FUNCTION pg_temp.tenpow(s int) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
	SELECT ('1e-' || s)::numeric
$$;

-- the canonical text of "units" minor units of a currency of exponent e,
-- formatted by numeric, not by gifq
CREATE FUNCTION pg_temp.fmt(units numeric, e int, code text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT (units * pg_temp.tenth(e))::text || ' ' || code
$$;

-- x rounded half to even to an integer, exactly
CREATE FUNCTION pg_temp.rhe(x numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE
		WHEN x - floor(x) > 0.5 THEN floor(x) + 1
		WHEN x - floor(x) < 0.5 THEN floor(x)
		WHEN mod(floor(x), 2) = 0 THEN floor(x)
		ELSE floor(x) + 1
	END
$$;

-- m * f, m / f and f * m as "units code", or "ERROR sqlstate"
CREATE FUNCTION pg_temp.try_mul(m gifq_money, f numeric) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r gifq_money;
BEGIN
	r := m * f;
	RETURN gifq_minor_units(r)::text || ' ' || gifq_currency(r);
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END $$;
CREATE FUNCTION pg_temp.try_mul_commuted(f numeric, m gifq_money) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r gifq_money;
BEGIN
	r := f * m;
	RETURN gifq_minor_units(r)::text || ' ' || gifq_currency(r);
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END $$;
CREATE FUNCTION pg_temp.try_div(m gifq_money, d numeric) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r gifq_money;
BEGIN
	r := m / d;
	RETURN gifq_minor_units(r)::text || ' ' || gifq_currency(r);
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END $$;

-- the plan of a query, as one text
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	line text;
	plan text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		plan := plan || line || E'\n';
	END LOOP;
	RETURN plan;
END $$;

-- run a one-value query through SPI, where (unlike pgTAP's cursors) the
-- planner may use a parallel plan
CREATE FUNCTION pg_temp.run(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
	EXECUTE q INTO r;
	RETURN r;
END $$;

------------------------------------------------------------------------
-- Data
------------------------------------------------------------------------

-- currencies of every exponent; PTS/PTSX and A1B2C3/ABCDEFGH test the
-- ordering of codes that share a prefix or mix digits and letters
CREATE TEMP TABLE cur (k int PRIMARY KEY, code text NOT NULL, e int NOT NULL);
INSERT INTO cur VALUES (0, 'USD', 2), (1, 'EUR', 2), (2, 'JPY', 0),
	(3, 'BHD', 3), (4, 'KWD', 3), (5, 'CLF', 4), (6, 'PTS', 0),
	(7, 'PTSX', 0), (8, 'ABCDEFGH', 0), (9, 'A1B2C3', 0);

-- 20,000 random values plus every currency's extremes
CREATE TEMP TABLE vals AS
WITH g AS MATERIALIZED (
	SELECT i AS id, floor(random() * 10)::int AS k, i % 4 AS class
	FROM generate_series(1, 20000) i
), r AS MATERIALIZED (
	SELECT id, k, class, pg_temp.runits(class) AS u FROM g ORDER BY id
)
SELECT r.id, cur.code, cur.e, r.class, r.u,
	pg_temp.fmt(r.u, cur.e, cur.code)::gifq_money AS m
FROM r JOIN cur USING (k);
INSERT INTO vals
SELECT 20000 + row_number() OVER (ORDER BY cur.k, x.u), cur.code, cur.e, 3, x.u,
	pg_temp.fmt(x.u, cur.e, cur.code)::gifq_money
FROM cur, (VALUES (-9223372036854775808), (-9223372036854775807), (-1::bigint),
	(0::bigint), (1::bigint), (9223372036854775806), (9223372036854775807)) AS x(u);

-- 5,000 triples in one currency whose sums cannot overflow
CREATE TEMP TABLE triples AS
WITH g AS MATERIALIZED (
	SELECT i AS id, floor(random() * 10)::int AS k, i % 3 AS class
	FROM generate_series(1, 5000) i
), r AS MATERIALIZED (
	SELECT id, k, pg_temp.runits(class) AS ua, pg_temp.runits(class) AS ub,
		pg_temp.runits(class) AS uc
	FROM g ORDER BY id
)
SELECT r.id, cur.code, r.ua, r.ub, r.uc,
	pg_temp.fmt(r.ua, cur.e, cur.code)::gifq_money AS a,
	pg_temp.fmt(r.ub, cur.e, cur.code)::gifq_money AS b,
	pg_temp.fmt(r.uc, cur.e, cur.code)::gifq_money AS c
FROM r JOIN cur USING (k);

-- 20,000 pairs for comparisons: mostly one currency, often equal or
-- adjacent amounts, any magnitude
CREATE TEMP TABLE pairs AS
WITH g AS MATERIALIZED (
	SELECT i AS id, floor(random() * 10)::int AS ka, random() AS pick_k,
		floor(random() * 10)::int AS kb, random() AS pick_u, i % 4 AS class
	FROM generate_series(1, 20000) i
), r AS MATERIALIZED (
	SELECT id, ka, CASE WHEN pick_k < 0.7 THEN ka ELSE kb END AS kb,
		pick_u, class, pg_temp.runits(class) AS ua, pg_temp.runits(class) AS uo
	FROM g ORDER BY id
), u AS (
	SELECT id, ka, kb, ua,
		CASE WHEN pick_u < 0.3 THEN ua
			WHEN pick_u < 0.45 AND ua < 9223372036854775807 THEN ua + 1
			WHEN pick_u < 0.6 AND ua > -9223372036854775808 THEN ua - 1
			ELSE uo END AS ub
	FROM r
)
SELECT u.id, ca.code AS code_a, u.ua, cb.code AS code_b, u.ub,
	pg_temp.fmt(u.ua, ca.e, ca.code)::gifq_money AS a,
	pg_temp.fmt(u.ub, cb.e, cb.code)::gifq_money AS b
FROM u JOIN cur ca ON ca.k = u.ka JOIN cur cb ON cb.k = u.kb;

------------------------------------------------------------------------
-- Input sanity: the generated values are what they were built from
------------------------------------------------------------------------

SELECT is((SELECT count(*) FROM vals
	WHERE gifq_minor_units(m) <> u OR gifq_currency(m) <> code), 0::bigint,
	'generated values carry the minor units and currency they were built from');

------------------------------------------------------------------------
-- Addition and subtraction within a currency
------------------------------------------------------------------------

SELECT is((SELECT count(*) FROM triples WHERE NOT (a + b = b + a)), 0::bigint,
	'+ is commutative (5000 random pairs)');
SELECT is((SELECT count(*) FROM triples WHERE NOT ((a + b) + c = a + (b + c))),
	0::bigint, '+ is associative (5000 random triples)');
SELECT is((SELECT count(*) FROM triples WHERE NOT ((a + b) - b = a)), 0::bigint,
	'(a + b) - b = a');
SELECT is((SELECT count(*) FROM triples
	WHERE gifq_minor_units(a + b) <> ua + ub OR gifq_currency(a + b) <> code
		OR gifq_minor_units(a - b) <> ua - ub OR gifq_currency(a - b) <> code),
	0::bigint, 'a + b and a - b are the exact sum and difference in the same currency');
SELECT is((SELECT count(*) FROM vals
	WHERE u > -9223372036854775808 AND NOT (-(-m) = m)), 0::bigint,
	'-(-a) = a (every value but the most negative)');
SELECT is((SELECT count(*) FROM vals
	WHERE u > -9223372036854775808
		AND (gifq_minor_units(-m) <> -u OR gifq_currency(-m) <> code)),
	0::bigint, '-a negates the minor units and keeps the currency');
SELECT is((SELECT count(*) FROM vals
	WHERE NOT (m - m = gifq_money(0, code)) OR gifq_minor_units(m - m) <> 0),
	0::bigint, 'a - a is zero in a''s currency (extremes included)');

------------------------------------------------------------------------
-- Comparison: a total order, the same through every operator
------------------------------------------------------------------------

SELECT is((SELECT count(*) FROM pairs
	WHERE (a < b)::int + (a = b)::int + (a > b)::int <> 1), 0::bigint,
	'exactly one of <, =, > holds for every pair');
SELECT is((SELECT count(*) FROM pairs
	WHERE (a <= b) <> (NOT (a > b)) OR (a >= b) <> (NOT (a < b))
		OR (a <> b) <> (NOT (a = b))), 0::bigint,
	'<= iff not >, >= iff not <, <> iff not =');
SELECT is((SELECT count(*) FROM pairs
	WHERE (a < b) <> (b > a) OR (a <= b) <> (b >= a) OR (a = b) <> (b = a)),
	0::bigint, 'each operator agrees with its commutator');
SELECT is((SELECT count(*) FROM pairs
	WHERE sign(gifq_money_cmp(a, b)) <> CASE WHEN a < b THEN -1 WHEN a = b THEN 0 ELSE 1 END
		OR gifq_money_cmp(a, b) <> -gifq_money_cmp(b, a)
		OR gifq_money_cmp(a, a) <> 0), 0::bigint,
	'gifq_money_cmp''s sign agrees with the operators and is antisymmetric');
SELECT is((SELECT count(*) FROM pairs
	WHERE (a < b) <> ((code_a COLLATE "C", ua) < (code_b COLLATE "C", ub))
		OR (a = b) <> (code_a = code_b AND ua = ub)), 0::bigint,
	'< and = order by currency code (bytewise), then by minor units');
SELECT cmp_ok((SELECT count(*) FROM pairs WHERE a = b), '>', 1000::bigint,
	'the pairs include many equal values (the tests above are not vacuous)');

------------------------------------------------------------------------
-- Hashing: equal values hash equal, whatever built them
------------------------------------------------------------------------

-- each value rebuilt by other routes: non-canonical text, numeric
-- construction, arithmetic, an aggregate
CREATE TEMP TABLE rebuilt AS
SELECT id, m, pg_temp.rnd(-9223372036854775808, 9223372036854775807)::bigint AS seed,
	unnest(ARRAY[
		(E' \t' || CASE WHEN u >= 0 THEN '+' ELSE '-' END || '00'
			|| (abs(u) * pg_temp.tenth(e))::text
			|| CASE WHEN e = 0 THEN '.000' ELSE '000' END || E'\n ' || code || ' ')::gifq_money,
		gifq_money(gifq_amount(m), gifq_currency(m)),
		gifq_money(round(gifq_amount(m), e + 5), code),
		m + gifq_money(0, code),
		m * 1,
		m / -1 * -1,
		(SELECT sum(x) FROM (VALUES (m), (NULL::gifq_money)) AS s(x)),
		(SELECT max(x) FROM (VALUES (m), (m)) AS s(x))
	]) AS other
FROM vals
WHERE u > -9223372036854775808 ORDER BY id;

SELECT is((SELECT count(*) FROM rebuilt WHERE NOT (other = m)), 0::bigint,
	'values rebuilt by text, numeric, arithmetic and aggregates are equal');
SELECT is((SELECT count(*) FROM rebuilt
	WHERE gifq_money_hash(other) <> gifq_money_hash(m)), 0::bigint,
	'equal values have equal gifq_money_hash');
SELECT is((SELECT count(*) FROM rebuilt
	WHERE gifq_money_hash_extended(other, seed) <> gifq_money_hash_extended(m, seed)
		OR gifq_money_hash_extended(other, 0) <> gifq_money_hash_extended(m, 0)),
	0::bigint, 'equal values have equal gifq_money_hash_extended for any seed');
SELECT is((SELECT count(*) FROM pairs WHERE a = b
	AND (gifq_money_hash(a) <> gifq_money_hash(b)
		OR gifq_money_hash_extended(a, 42) <> gifq_money_hash_extended(b, 42))),
	0::bigint, 'equal pairs hash equal');
SELECT is((SELECT count(*) FROM vals
	WHERE (gifq_money_hash_extended(m, 0) & 4294967295)
		<> (gifq_money_hash(m)::bigint & 4294967295)), 0::bigint,
	'hash_extended with seed 0 has the 32-bit hash in its low 32 bits');
SELECT cmp_ok((SELECT count(DISTINCT gifq_money_hash(m))::numeric / count(DISTINCT m) FROM vals),
	'>=', 0.999, 'distinct values have (nearly always) distinct hashes');

------------------------------------------------------------------------
-- Sorting and min/max
------------------------------------------------------------------------

SELECT results_eq(
	'SELECT m::text AS t FROM vals ORDER BY vals.m',
	'SELECT m::text AS t FROM vals ORDER BY gifq_currency(vals.m) COLLATE "C", gifq_minor_units(vals.m)',
	'ORDER BY sorts by currency code, then amount');
SELECT results_eq(
	'SELECT m::text AS t FROM vals ORDER BY vals.m DESC',
	'SELECT m::text AS t FROM vals ORDER BY gifq_currency(vals.m) COLLATE "C" DESC, gifq_minor_units(vals.m) DESC',
	'ORDER BY ... DESC is the exact reverse');
SET work_mem = '64kB';
SELECT results_eq(
	'SELECT m::text AS t FROM vals ORDER BY vals.m',
	'SELECT m::text AS t FROM vals ORDER BY gifq_currency(vals.m) COLLATE "C", gifq_minor_units(vals.m)',
	'an external sort (work_mem = 64kB) sorts the same way');
RESET work_mem;
SELECT is((SELECT min(m)::text FROM vals), (SELECT m::text AS t FROM vals ORDER BY vals.m LIMIT 1),
	'min() over many currencies is the first value by ORDER BY');
SELECT is((SELECT max(m)::text FROM vals), (SELECT m::text AS t FROM vals ORDER BY vals.m DESC LIMIT 1),
	'max() over many currencies is the last value by ORDER BY');
SELECT results_eq(
	'SELECT gifq_currency(m), min(m)::text, max(m)::text FROM vals GROUP BY 1 ORDER BY 1',
	'SELECT code, (array_agg(m::text ORDER BY m))[1], (array_agg(m::text ORDER BY m DESC))[1]
	 FROM vals GROUP BY code ORDER BY code',
	'per-currency min() and max() agree with ORDER BY');

------------------------------------------------------------------------
-- sum(), min(), max(): serial and parallel plans
------------------------------------------------------------------------

-- a regular table (parallel workers cannot read temporary ones); created
-- in this transaction and rolled back with it
CREATE TABLE gifq_tap_par AS
WITH g AS MATERIALIZED (
	SELECT i AS id, floor(random() * 10)::int AS k FROM generate_series(1, 100000) i
), r AS MATERIALIZED (
	SELECT id, k, pg_temp.rnd(-1099511627776, 1099511627776)::bigint AS u
	FROM g ORDER BY id
)
SELECT r.id, cur.code, cur.e, r.u, pg_temp.fmt(r.u, cur.e, cur.code)::gifq_money AS m
FROM r JOIN cur USING (k);
ANALYZE gifq_tap_par;

\set q_one 'SELECT sum(m)::text || \' / \' || min(m)::text || \' / \' || max(m)::text FROM gifq_tap_par WHERE code = \'USD\''
\set q_grp 'SELECT string_agg(c || \' = \' || s::text || \' / \' || mn::text || \' / \' || mx::text || \' / \' || n, \', \' ORDER BY c COLLATE "C") FROM (SELECT code AS c, sum(m) AS s, min(m) AS mn, max(m) AS mx, count(*) AS n FROM gifq_tap_par GROUP BY code) AS q'

-- the same answers from the minor units
CREATE TEMP TABLE par_ref AS
SELECT
	(SELECT pg_temp.fmt(sum(u), 2, 'USD') || ' / ' || pg_temp.fmt(min(u), 2, 'USD')
		|| ' / ' || pg_temp.fmt(max(u), 2, 'USD') FROM gifq_tap_par WHERE code = 'USD') AS one,
	(SELECT string_agg(code || ' = ' || s || ' / ' || mn || ' / ' || mx || ' / ' || n,
		', ' ORDER BY code COLLATE "C")
	 FROM (SELECT code, pg_temp.fmt(sum(u), e, code) AS s, pg_temp.fmt(min(u), e, code) AS mn,
		pg_temp.fmt(max(u), e, code) AS mx, count(*) AS n
		FROM gifq_tap_par GROUP BY code, e) AS q) AS grp;

SET max_parallel_workers_per_gather = 0;
SELECT unalike(pg_temp.plan_of(:'q_grp'), '%Gather%', 'serial plan: no Gather');
SELECT is(pg_temp.run(:'q_one'), (SELECT one FROM par_ref),
	'serial sum/min/max in one currency equal the minor-unit sum/min/max');
SELECT is(pg_temp.run(:'q_grp'), (SELECT grp FROM par_ref),
	'serial sum/min/max per currency equal the minor-unit sum/min/max');

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT matches(pg_temp.plan_of(:'q_one'), 'Partial Aggregate',
	'parallel plan for one currency has a Partial Aggregate');
SELECT is(pg_temp.run(:'q_one'), (SELECT one FROM par_ref),
	'parallel sum/min/max in one currency equal the minor-unit sum/min/max');
SELECT matches(pg_temp.plan_of(:'q_grp'), 'Partial (Hash|Group)?Aggregate',
	'parallel plan per currency has a partial aggregate');
SELECT is(pg_temp.run(:'q_grp'), (SELECT grp FROM par_ref),
	'parallel sum/min/max per currency equal the minor-unit sum/min/max');
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

-- sum() as a window aggregate, over a growing and over a sliding frame
SELECT is((SELECT count(*) FROM (
	SELECT gifq_minor_units(sum(m) OVER w) AS s, sum(u) OVER w AS r
	FROM gifq_tap_par WHERE code = 'EUR' WINDOW w AS (ORDER BY id)) AS q
	WHERE s <> r), 0::bigint, 'running sum() OVER (ORDER BY ...) is exact');
SELECT is((SELECT count(*) FROM (
	SELECT gifq_minor_units(sum(m) OVER w) AS s, sum(u) OVER w AS r
	FROM gifq_tap_par WHERE code = 'BHD'
	WINDOW w AS (ORDER BY id ROWS BETWEEN 5 PRECEDING AND 2 FOLLOWING)) AS q
	WHERE s <> r), 0::bigint, 'sliding-frame sum() OVER (...) is exact');

------------------------------------------------------------------------
-- gifq_allocate
------------------------------------------------------------------------

-- random ratio arrays of 1 to 12 elements: small, huge or mixed, with
-- zeros; arrays that sum to zero are dropped
CREATE FUNCTION pg_temp.rratios(n int, mode int) RETURNS int[]
LANGUAGE sql VOLATILE AS $$
	SELECT array_agg(CASE
		WHEN random() < 0.25 THEN 0
		WHEN mode = 0 THEN pg_temp.rnd(1, 10)
		WHEN mode = 1 THEN pg_temp.rnd(1, 2147483647)
		ELSE pg_temp.rnd(1, 1000)
	END::int ORDER BY i)
	FROM generate_series(1, n) AS i
$$;

CREATE TEMP TABLE alloc_cases AS
WITH g AS MATERIALIZED (
	SELECT i AS id, floor(random() * 10)::int AS k, i % 6 AS kind,
		1 + floor(random() * 12)::int AS n, floor(random() * 3)::int AS mode
	FROM generate_series(1, 4000) i
), r AS MATERIALIZED (
	SELECT id, k, (CASE kind
			WHEN 0 THEN pg_temp.rnd(-1000, 1000)
			WHEN 1 THEN pg_temp.rnd(-9223372036854775808, 9223372036854775807)
			WHEN 2 THEN pg_temp.rnd(-9223372036854775808, -9223372036854775708)
			WHEN 3 THEN pg_temp.rnd(9223372036854775707, 9223372036854775807)
			WHEN 4 THEN pg_temp.rnd(-1000000000000, 1000000000000)
			ELSE pg_temp.rnd(-100, 100)
		END)::bigint AS u,
		pg_temp.rratios(n, mode) AS ratios
	FROM g ORDER BY id
)
SELECT r.id, cur.code, r.u, r.ratios, pg_temp.fmt(r.u, cur.e, cur.code)::gifq_money AS total
FROM r JOIN cur USING (k)
UNION ALL
SELECT 100000 + row_number() OVER (ORDER BY x.u, x.ratios::text), 'PTS', x.u, x.ratios,
	pg_temp.fmt(x.u, 0, 'PTS')::gifq_money
FROM (VALUES (-9223372036854775808, '{1}'::int[]), (-9223372036854775808, '{1,1}'),
	(-9223372036854775808, '{2147483647,2147483647,1}'), (9223372036854775807, '{1,1}'),
	(9223372036854775807, '{0,2147483647,0,3}'), (-9223372036854775807, '{1,2,3,4,5,6,7}'),
	(0, '{5,0,7}'), (1, '{1,1,1}'), (-1, '{1,1,1}'), (2, '{1,1,1}'), (-2, '{1,1,1}')) AS x(u, ratios);
DELETE FROM alloc_cases WHERE (SELECT sum(x) FROM unnest(ratios) AS x) = 0;

CREATE TEMP TABLE alloc AS
SELECT c.*, gifq_allocate(c.total, c.ratios) AS shares,
	(SELECT sum(x) FROM unnest(c.ratios) AS x) AS rsum
FROM alloc_cases c;
CREATE TEMP TABLE alloc_shares AS
SELECT a.id, a.code, a.u, a.rsum, x.i, x.share, x.ratio
FROM alloc a, unnest(a.shares, a.ratios) WITH ORDINALITY AS x(share, ratio, i);

SELECT is((SELECT count(*) FROM alloc
	WHERE cardinality(shares) IS DISTINCT FROM cardinality(ratios)), 0::bigint,
	'gifq_allocate returns one share per ratio');
SELECT is((SELECT count(*) FROM (
	SELECT a.u, sum(gifq_minor_units(s.share)::numeric) AS total
	FROM alloc a JOIN alloc_shares s USING (id) GROUP BY a.id, a.u) AS q
	WHERE total IS DISTINCT FROM u), 0::bigint,
	'the shares always sum exactly to the total (near the int64 bounds too)');
SELECT is((SELECT count(*) FROM alloc_shares WHERE gifq_currency(share) IS DISTINCT FROM code),
	0::bigint, 'every share is in the total''s currency');
SELECT is((SELECT count(*) FROM alloc_shares WHERE ratio = 0 AND gifq_minor_units(share) <> 0),
	0::bigint, 'a zero ratio gets a zero share');
SELECT is((SELECT count(*) FROM alloc_shares
	WHERE abs(gifq_minor_units(share)::numeric * rsum - u::numeric * ratio) >= rsum),
	0::bigint, 'every share lies within one minor unit of its exact proportional value');
SELECT is((SELECT count(*) FROM alloc_shares a JOIN alloc_shares b
	ON a.id = b.id AND a.i < b.i AND a.ratio = b.ratio
	WHERE abs(gifq_minor_units(a.share)) < abs(gifq_minor_units(b.share))
		OR abs(gifq_minor_units(a.share)) > abs(gifq_minor_units(b.share)) + 1),
	0::bigint, 'equal ratios get shares within one unit, the earlier the larger');
SELECT is((SELECT count(*) FROM alloc
	WHERE u > -9223372036854775808
		AND gifq_allocate(-total, ratios)::text
			<> (SELECT array_agg(-x ORDER BY i)::text FROM unnest(shares) WITH ORDINALITY AS s(x, i))),
	0::bigint, 'a negated total splits as the mirror image');

------------------------------------------------------------------------
-- Multiplication and division by numeric: round half to even, exactly
------------------------------------------------------------------------

CREATE TEMP TABLE factors AS
WITH g AS MATERIALIZED (
	SELECT i AS id, i % 5 AS kind, floor(random() * 20000)::int + 1 AS vid,
		floor(random() * 9)::int AS s, floor(random() * 7)::int AS j
	FROM generate_series(1, 8000) i
), r AS MATERIALIZED (
	SELECT id, vid, CASE kind
		-- random decimals of 0 to 8 places
		WHEN 0 THEN pg_temp.rnd(-1000000, 1000000) * pg_temp.tenpow(s)
		-- odd multiples of 1/2^j: many exact halves
		WHEN 1 THEN (2 * pg_temp.rnd(-200, 200) + 1) * 5::numeric ^ j * pg_temp.tenpow(j)
		-- 30 places, so the product lies arbitrarily close to a half
		WHEN 2 THEN pg_temp.rnd(-1000000000000000000000000000000, 1000000000000000000000000000000) * pg_temp.tenpow(30)
		-- small integers, including 0, 1 and -1
		WHEN 3 THEN pg_temp.rnd(-3, 3)
		-- large factors, to reach overflow
		ELSE pg_temp.rnd(-100000000000, 100000000000) * 0.001
	END AS f
	FROM g ORDER BY id
)
SELECT r.id, v.code, v.u, v.m, r.f, pg_temp.rhe(v.u * r.f) AS ref
FROM r JOIN vals v ON v.id = r.vid;

SELECT is((SELECT count(*) FROM factors
	WHERE pg_temp.try_mul(m, f) IS DISTINCT FROM
		CASE WHEN ref BETWEEN -9223372036854775808 AND 9223372036854775807
			THEN ref::text || ' ' || code ELSE 'ERROR QG002' END), 0::bigint,
	'm * f is the exact product rounded half to even, or QG002 out of range');
SELECT is((SELECT count(*) FROM factors
	WHERE pg_temp.try_mul_commuted(f, m) IS DISTINCT FROM pg_temp.try_mul(m, f)), 0::bigint,
	'f * m = m * f');
SELECT cmp_ok((SELECT count(*) FROM factors
	WHERE u * f - floor(u * f) = 0.5 AND ref BETWEEN -9223372036854775808 AND 9223372036854775807),
	'>', 100::bigint, 'the products include over a hundred exact halves (the test above is not vacuous)');

CREATE TEMP TABLE divisors AS
WITH g AS MATERIALIZED (
	SELECT i AS id, i % 4 AS kind, floor(random() * 20000)::int + 1 AS vid,
		floor(random() * 9)::int AS s
	FROM generate_series(1, 8000) i
), r AS MATERIALIZED (
	SELECT id, vid, CASE kind
		WHEN 0 THEN pg_temp.rnd(1, 1000) * (2 * pg_temp.rnd(0, 1) - 1)
		WHEN 1 THEN pg_temp.rnd(1, 1000000) * pg_temp.tenpow(s) * (2 * pg_temp.rnd(0, 1) - 1)
		WHEN 2 THEN pg_temp.rnd(1, 1000000000000000000000) * pg_temp.tenpow(25)
		ELSE pg_temp.rnd(-7, 7) + 0.5
	END AS d
	FROM g ORDER BY id
)
SELECT r.id, v.code, v.u, v.m, r.d, pg_temp.try_div(v.m, r.d) AS got
FROM r JOIN vals v ON v.id = r.vid;

-- q = u / d rounded half to even iff |u - q d| < |d| / 2, or = |d| / 2
-- with q even; an exact test with no division
SELECT is((SELECT count(*) FROM (
	SELECT *, split_part(got, ' ', 1)::numeric AS q FROM divisors
	WHERE abs(u) < abs(d) * 9223372036854775806) AS t
	WHERE got IS DISTINCT FROM q::text || ' ' || code
		OR NOT (2 * abs(u - q * d) < abs(d)
			OR (2 * abs(u - q * d) = abs(d) AND mod(q, 2) = 0))), 0::bigint,
	'm / d is the exact quotient rounded half to even');
SELECT is((SELECT count(*) FROM divisors
	WHERE abs(u) > abs(d) * 9223372036854775809 AND got IS DISTINCT FROM 'ERROR QG002'),
	0::bigint, 'm / d out of range is QG002');
SELECT cmp_ok((SELECT count(*) FROM divisors WHERE abs(u) > abs(d) * 9223372036854775809),
	'>', 100::bigint, 'the divisions include overflows');

-- divisors with exact decimal reciprocals: the reference is computed
SELECT is((SELECT count(*) FROM vals v
	CROSS JOIN (VALUES (2, 0.5), (-2, -0.5), (4, 0.25), (8, 0.125), (-8, -0.125),
		(0.5, 2), (0.25, 4), (0.125, 8), (5, 0.2), (0.2, 5), (1.6, 0.625), (40, 0.025),
		(0.04, 25), (3.2, 0.3125), (64, 0.015625), (-0.0625, -16)) AS x(d, recip)
	CROSS JOIN LATERAL (SELECT pg_temp.rhe(v.u * x.recip) AS ref) AS r
	WHERE pg_temp.try_div(v.m, x.d) IS DISTINCT FROM
		CASE WHEN r.ref BETWEEN -9223372036854775808 AND 9223372036854775807
			THEN r.ref::text || ' ' || v.code ELSE 'ERROR QG002' END), 0::bigint,
	'm / d = round_half_even(units * (1/d)), or QG002, for divisors with exact reciprocals');

------------------------------------------------------------------------
-- gifq_money(numeric, code) and gifq_amount() are inverse
------------------------------------------------------------------------

-- amounts with 0 to e decimal places (x), and the same with trailing zeros
CREATE TEMP TABLE amounts AS
WITH g AS MATERIALIZED (
	SELECT i AS id, floor(random() * 10)::int AS k, i % 4 AS class, random() AS r
	FROM generate_series(1, 10000) i
), r AS MATERIALIZED (
	SELECT id, k, class, r, pg_temp.runits(class) AS u0 FROM g ORDER BY id
)
SELECT r.id, cur.code, cur.e, q.s, q.u, round(q.u * pg_temp.tenth(cur.e), q.s) AS x
FROM r JOIN cur USING (k),
	LATERAL (SELECT floor(r.r * (cur.e + 1))::int AS s) AS s0,
	LATERAL (SELECT s0.s, (div(r.u0, 10::numeric ^ (cur.e - s0.s)) * 10::numeric ^ (cur.e - s0.s))::bigint AS u) AS q;
INSERT INTO amounts
SELECT 100000 + row_number() OVER (ORDER BY v.id), v.code, v.e, v.e, v.u, v.u * pg_temp.tenth(v.e)
FROM vals v WHERE v.id > 20000;

SELECT is((SELECT count(*) FROM amounts
	WHERE gifq_amount(gifq_money(x, code)) <> x), 0::bigint,
	'gifq_amount(gifq_money(x, c)) = x when x has at most c''s decimal places');
SELECT is((SELECT count(*) FROM amounts
	WHERE gifq_minor_units(gifq_money(x, code)) <> u
		OR scale(gifq_amount(gifq_money(x, code))) <> e
		OR NOT (gifq_money(round(x, e + 3), code) = gifq_money(x, code))), 0::bigint,
	'gifq_money(x, c) has x''s minor units, gifq_amount has c''s scale, trailing zeros are ignored');
SELECT is((SELECT count(*) FROM vals
	WHERE NOT (gifq_money(gifq_amount(m), gifq_currency(m)) = m)), 0::bigint,
	'gifq_money(gifq_amount(m), gifq_currency(m)) = m');

------------------------------------------------------------------------
-- btree and hash indexes return what a sequential scan returns
------------------------------------------------------------------------

CREATE TEMP TABLE idx_t AS SELECT id, m FROM vals;
CREATE TEMP TABLE probe_eq AS
WITH g AS MATERIALIZED (
	SELECT i AS pid, floor(random() * 20070)::int + 1 AS vid,
		floor(random() * 10)::int AS k, pg_temp.rnd(-1000, 1000) AS u
	FROM generate_series(1, 400) i
)
SELECT g.pid, CASE WHEN g.pid % 4 = 0 THEN pg_temp.fmt(g.u, cur.e, cur.code)::gifq_money
	ELSE v.m END AS v
FROM g JOIN vals v ON v.id = g.vid JOIN cur USING (k);
CREATE TEMP TABLE probe_rng AS
WITH g AS MATERIALIZED (
	SELECT i AS pid, floor(random() * 10)::int AS k, floor(random() * 10)::int AS k2,
		pg_temp.rnd(-1000, 1000) AS lo, pg_temp.rnd(0, 200) AS width
	FROM generate_series(1, 200) i
)
SELECT g.pid, pg_temp.fmt(g.lo, c.e, c.code)::gifq_money AS lo,
	CASE WHEN g.pid % 10 = 0
		THEN pg_temp.fmt(-g.lo, c2.e, c2.code)::gifq_money
		ELSE pg_temp.fmt(g.lo + g.width, c.e, c.code)::gifq_money END AS hi
FROM g JOIN cur c ON c.k = g.k JOIN cur c2 ON c2.k = g.k2;
ANALYZE idx_t;
ANALYZE probe_eq;
ANALYZE probe_rng;

\set q_eq 'SELECT p.pid, t.id FROM probe_eq p JOIN idx_t t ON t.m = p.v'
\set q_rng 'SELECT p.pid, t.id FROM probe_rng p JOIN idx_t t ON t.m >= p.lo AND t.m < p.hi'
\set q_rng2 'SELECT p.pid, t.id FROM probe_rng p JOIN idx_t t ON t.m > p.lo AND t.m <= p.hi'

-- sequential scans, checked against the minor units and codes
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SET enable_indexonlyscan = off;
CREATE TEMP TABLE r_seq_eq AS :q_eq;
CREATE TEMP TABLE r_seq_rng AS :q_rng;
CREATE TEMP TABLE r_seq_rng2 AS :q_rng2;
RESET enable_indexscan;
RESET enable_bitmapscan;
RESET enable_indexonlyscan;

SELECT bag_eq('TABLE r_seq_eq',
	'SELECT p.pid, t.id FROM probe_eq p JOIN vals t
	 ON gifq_currency(t.m) = gifq_currency(p.v) AND gifq_minor_units(t.m) = gifq_minor_units(p.v)',
	'a sequential scan for m = v finds the rows with the same code and minor units');
SELECT bag_eq('TABLE r_seq_rng',
	'SELECT p.pid, t.id FROM probe_rng p JOIN vals t
	 ON (t.code COLLATE "C", t.u) >= (gifq_currency(p.lo) COLLATE "C", gifq_minor_units(p.lo))
	 AND (t.code COLLATE "C", t.u) < (gifq_currency(p.hi) COLLATE "C", gifq_minor_units(p.hi))',
	'a sequential scan for lo <= m < hi finds the rows in that range of (code, units)');
SELECT cmp_ok((SELECT count(*) FROM r_seq_rng), '>', 1000::bigint,
	'the range probes match many rows (the index tests are not vacuous)');

CREATE INDEX idx_t_btree ON idx_t (m);
SET enable_seqscan = off;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_bitmapscan = off;
SELECT matches(pg_temp.plan_of(:'q_eq'), 'Index Scan using idx_t_btree',
	'equality probe plan uses the btree index');
CREATE TEMP TABLE r_bt_eq AS :q_eq;
SELECT matches(pg_temp.plan_of(:'q_rng'), 'Index Scan using idx_t_btree',
	'range probe plan uses the btree index');
CREATE TEMP TABLE r_bt_rng AS :q_rng;
CREATE TEMP TABLE r_bt_rng2 AS :q_rng2;
SET enable_indexscan = off;
SET enable_bitmapscan = on;
SELECT matches(pg_temp.plan_of(:'q_rng2'), 'Bitmap Index Scan on idx_t_btree',
	'range probe plan uses a bitmap scan of the btree index');
CREATE TEMP TABLE r_bm_rng2 AS :q_rng2;
RESET enable_indexscan;
RESET enable_bitmapscan;

SELECT bag_eq('TABLE r_bt_eq', 'TABLE r_seq_eq', 'btree index scan: m = v gives the seq scan''s rows');
SELECT bag_eq('TABLE r_bt_rng', 'TABLE r_seq_rng', 'btree index scan: lo <= m < hi gives the seq scan''s rows');
SELECT bag_eq('TABLE r_bt_rng2', 'TABLE r_seq_rng2', 'btree index scan: lo < m <= hi gives the seq scan''s rows');
SELECT bag_eq('TABLE r_bm_rng2', 'TABLE r_seq_rng2', 'btree bitmap scan: lo < m <= hi gives the seq scan''s rows');
SELECT matches(pg_temp.plan_of('SELECT min(m), max(m) FROM idx_t'), 'Index Only Scan',
	'min()/max() plan reads the btree index');
SELECT is((SELECT min(m)::text || ' ' || max(m)::text FROM idx_t),
	(SELECT min(m)::text || ' ' || max(m)::text FROM vals),
	'min() and max() through the btree index equal the seq-scan values');

DROP INDEX idx_t_btree;
SET enable_bitmapscan = off;
CREATE INDEX idx_t_hash ON idx_t USING hash (m);
SELECT matches(pg_temp.plan_of(:'q_eq'), 'Index Scan using idx_t_hash',
	'equality probe plan uses the hash index');
CREATE TEMP TABLE r_hash_eq AS :q_eq;
SELECT bag_eq('TABLE r_hash_eq', 'TABLE r_seq_eq', 'hash index scan: m = v gives the seq scan''s rows');
RESET enable_seqscan;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_bitmapscan;

------------------------------------------------------------------------
-- A unique index: one currency refuses equal values, two accept them
------------------------------------------------------------------------

CREATE TEMP TABLE uq (m gifq_money);
CREATE UNIQUE INDEX uq_m ON uq (m);
INSERT INTO uq VALUES ('1.00 USD');
SELECT throws_ok($$INSERT INTO uq VALUES ('+1.000 USD')$$, '23505', NULL,
	'the unique index refuses an equal value in the same currency');
SELECT lives_ok($$INSERT INTO uq VALUES ('1.00 EUR'), ('100 JPY'), ('100 PTS'), ('100 PTSX')$$,
	'the unique index accepts equal amounts (and equal minor units) in other currencies');
SELECT throws_ok($$INSERT INTO uq VALUES ('100 PTSX')$$, '23505', NULL,
	'the unique index refuses a repeat in a 4-letter code');
SELECT lives_ok('INSERT INTO uq SELECT DISTINCT m FROM vals WHERE u <> 100',
	'DISTINCT values of every currency fit in the unique index');
SELECT is((SELECT count(*) FROM uq),
	(SELECT count(*) FROM (SELECT DISTINCT code, u FROM vals WHERE u <> 100) AS d) + 5,
	'the unique index holds one row per distinct (code, units)');

------------------------------------------------------------------------
-- GROUP BY a gifq_money: HashAggregate and GroupAggregate agree
------------------------------------------------------------------------

\set q_group 'SELECT m, count(*) AS n, sum(id) AS ids FROM vals GROUP BY m'
SET enable_sort = off;
SELECT matches(pg_temp.plan_of(:'q_group'), 'HashAggregate', 'GROUP BY m can hash');
CREATE TEMP TABLE g_hash AS :q_group;
SET work_mem = '64kB';
CREATE TEMP TABLE g_hash_spill AS :q_group;
RESET work_mem;
RESET enable_sort;
SET enable_hashagg = off;
SELECT matches(pg_temp.plan_of(:'q_group'), 'GroupAggregate', 'GROUP BY m can sort');
CREATE TEMP TABLE g_sort AS :q_group;
RESET enable_hashagg;

SELECT results_eq('SELECT m::text AS t, n, ids FROM g_hash ORDER BY g_hash.m',
	'SELECT m::text AS t, n, ids FROM g_sort ORDER BY g_sort.m',
	'HashAggregate and GroupAggregate give identical groups');
SELECT results_eq('SELECT m::text AS t, n, ids FROM g_hash_spill ORDER BY g_hash_spill.m',
	'SELECT m::text AS t, n, ids FROM g_sort ORDER BY g_sort.m',
	'a HashAggregate short of memory gives identical groups');
SELECT results_eq('SELECT m::text AS t, n, ids FROM g_sort ORDER BY g_sort.m',
	'SELECT pg_temp.fmt(u, e, code), count(*), sum(id) FROM vals
	 GROUP BY code, e, u ORDER BY code COLLATE "C", u',
	'the groups are the distinct (code, units) with their rows');

SELECT * FROM finish();
ROLLBACK;
