-- gifq_money round trip: 100,000 random values, plus every currency's
-- extremes, through text and binary I/O.  The values come from random()
-- after setseed(), so they are the same on every run; only counts and
-- booleans are printed.
SET client_min_messages = warning;

-- currencies of every exponent, an 8-letter code and a code with digits;
-- pow10 = 10^exponent, written out rather than asked of gifq
CREATE TABLE rt_cur (k int PRIMARY KEY, code text NOT NULL, e int NOT NULL,
	pow10 bigint NOT NULL);
INSERT INTO rt_cur VALUES (0, 'USD', 2, 100), (1, 'EUR', 2, 100),
	(2, 'JPY', 0, 1), (3, 'BHD', 3, 1000), (4, 'KWD', 3, 1000),
	(5, 'CLF', 4, 10000), (6, 'UYW', 4, 10000), (7, 'PTS', 0, 1),
	(8, 'ABCDEFGH', 0, 1), (9, 'A1B2C3', 0, 1);

SELECT setseed(0.6180339887);

-- random int64 minor units: two 32-bit draws make the high and low halves,
-- which cover the whole range; three rows in ten are then divided by a
-- random power of ten, so every number of digits occurs
CREATE TABLE rt_units AS
WITH draws AS MATERIALIZED (
	SELECT i AS id,
		floor(random() * 10)::int AS k,
		floor(random() * 4294967296)::numeric AS hi,
		floor(random() * 4294967296)::numeric AS lo,
		floor(random() * 19)::int AS shift
	FROM generate_series(1, 100000) AS i
	ORDER BY i
)
SELECT id, k, (CASE WHEN id % 10 < 7 THEN full_range
	ELSE div(full_range, 10::numeric ^ shift) END)::bigint AS u
FROM (SELECT id, k, shift, (hi - 2147483648) * 4294967296 + lo AS full_range
	FROM draws) AS d;
-- and, in every currency, the extremes, zero and their neighbours
INSERT INTO rt_units
SELECT 100000 + row_number() OVER (ORDER BY c.k, x.u), c.k, x.u
FROM rt_cur c, (VALUES (-9223372036854775808), (-9223372036854775807),
	(-1::bigint), (0::bigint), (1::bigint), (9223372036854775806),
	(9223372036854775807)) AS x(u);

-- the canonical text, built from integer and fraction strings: sign, the
-- integer part, a point and exactly e fraction digits, a space, the code
CREATE TABLE rt_src AS
SELECT t.id, c.code, c.e, t.u, q.txt, q.txt::gifq_money AS m
FROM rt_units t JOIN rt_cur c USING (k),
	LATERAL (SELECT CASE WHEN t.u < 0 THEN '-' ELSE '' END
		|| div(abs(t.u::numeric), c.pow10)::text
		|| CASE WHEN c.e > 0
			THEN '.' || lpad(mod(abs(t.u::numeric), c.pow10)::text, c.e, '0')
			ELSE '' END
		|| ' ' || c.code AS txt) AS q;

-- the data cover what they should
SELECT count(*) AS n_values,
	count(DISTINCT code) AS n_currencies,
	count(DISTINCT e) AS n_exponents,
	min(u) = -9223372036854775808 AS has_least,
	max(u) = 9223372036854775807 AS has_largest,
	count(*) FILTER (WHERE u = 0) >= 10 AS has_zero,
	count(DISTINCT length(abs(u::numeric)::text)) AS n_digit_counts,
	(SELECT bool_and(n >= 9000) FROM (SELECT count(*) AS n FROM rt_src GROUP BY code) AS g)
		AS every_currency_has_many
FROM rt_src;

-- text -> gifq_money -> text gives the canonical text back
SELECT count(*) FILTER (WHERE m::text IS DISTINCT FROM txt) AS text_mismatches,
	count(*) FILTER (WHERE gifq_minor_units(m) IS DISTINCT FROM u) AS units_mismatches,
	count(*) FILTER (WHERE gifq_currency(m) IS DISTINCT FROM code) AS currency_mismatches,
	count(*) FILTER (WHERE gifq_amount(m) * 10::numeric ^ e IS DISTINCT FROM u
		OR scale(gifq_amount(m)) <> e) AS amount_mismatches
FROM rt_src;

-- other spellings of the same value read back equal: white space around,
-- an explicit '+', leading zeros, trailing zeros in the fraction
SELECT count(*) FILTER (WHERE NOT (v::gifq_money = m) OR v::gifq_money::text <> txt)
	AS variant_mismatches,
	count(*) AS n_variants
FROM rt_src, LATERAL (VALUES
	(E'\t ' || txt || E' \n'),
	(CASE WHEN u >= 0 THEN '+' || txt ELSE txt END),
	(regexp_replace(txt, '^(-?)', '\1000')),
	(regexp_replace(txt, ' ', CASE WHEN e = 0 THEN '.000 ' ELSE '00 ' END))
) AS x(v);

-- the binary form is the documented one: int64 units in network byte order,
-- then the code padded with NULs to 8 bytes
SELECT count(*) FILTER (WHERE gifq_money_send(m) IS DISTINCT FROM
	int8send(u) || decode(rpad(encode(convert_to(code, 'UTF8'), 'hex'), 16, '0'), 'hex'))
	AS send_mismatches
FROM rt_src;

-- binary round trip through COPY, client side
CREATE TABLE rt_bin (id int, m gifq_money);
\copy (SELECT id, m FROM rt_src ORDER BY id) TO 'money_roundtrip.bin' WITH (FORMAT binary)
\copy rt_bin FROM 'money_roundtrip.bin' WITH (FORMAT binary)
SELECT (SELECT count(*) FROM rt_bin) = (SELECT count(*) FROM rt_src) AS same_count,
	(SELECT count(*) FROM (SELECT id, m FROM rt_src EXCEPT SELECT id, m FROM rt_bin) AS q)
		AS missing_after_binary,
	(SELECT count(*) FROM (SELECT id, m FROM rt_bin EXCEPT SELECT id, m FROM rt_src) AS q)
		AS extra_after_binary;
-- byte for byte: same text, units, code and hash
SELECT count(*) FILTER (WHERE b.m::text <> s.txt OR gifq_minor_units(b.m) <> s.u
		OR gifq_currency(b.m) <> s.code
		OR gifq_money_hash(b.m) <> gifq_money_hash(s.m)
		OR gifq_money_hash_extended(b.m, 7) <> gifq_money_hash_extended(s.m, 7))
	AS binary_mismatches,
	count(*) AS n_joined
FROM rt_bin b JOIN rt_src s USING (id);

-- text round trip through COPY, client side
CREATE TABLE rt_text (id int, m gifq_money);
\copy (SELECT id, m FROM rt_src ORDER BY id) TO 'money_roundtrip.txt'
\copy rt_text FROM 'money_roundtrip.txt'
SELECT (SELECT count(*) FROM rt_text) = (SELECT count(*) FROM rt_src) AS same_count,
	(SELECT count(*) FROM (SELECT id, m FROM rt_src EXCEPT SELECT id, m FROM rt_text) AS q)
		AS missing_after_text,
	(SELECT count(*) FROM (SELECT id, m FROM rt_text EXCEPT SELECT id, m FROM rt_src) AS q)
		AS extra_after_text;
\! rm -f money_roundtrip.bin money_roundtrip.txt

DROP TABLE rt_text, rt_bin, rt_src, rt_units, rt_cur;
