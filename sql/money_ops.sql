-- gifq_money operators, ordering, aggregates and allocation
SET client_min_messages = warning;

-- arithmetic within one currency
SELECT '12.50 USD'::gifq_money + '0.75 USD' AS add,
	'12.50 USD'::gifq_money - '20 USD' AS sub,
	-'12.50 USD'::gifq_money AS neg,
	-'-3 PTS'::gifq_money AS neg_neg;

-- multiplication and division round half to even, to the minor unit
SELECT m, f, m * f AS product, f * m AS commuted
FROM (VALUES ('0.05 USD'::gifq_money, 0.5), ('0.15 USD', 0.5), ('0.25 USD', 0.5),
	('-0.05 USD', 0.5), ('-0.15 USD', 0.5), ('10.00 USD', 1.5), ('3 PTS', 0.5),
	('5 PTS', 0.5), ('-5 PTS', 0.5), ('1.00 USD', 0.125), ('1.00 USD', 0.135),
	('1.00 USD', 3), ('1.000 BHD', 0.0005), ('1.001 BHD', 0.5), ('7 JPY', -0.5)) AS t(m, f)
ORDER BY m, f;
SELECT m, d, m / d AS quotient
FROM (VALUES ('10.00 USD'::gifq_money, 3), ('10.00 USD', -3), ('20.00 USD', 3),
	('0.01 USD', 2), ('0.03 USD', 2), ('-0.01 USD', 2), ('-0.03 USD', 2),
	('1 PTS', 3), ('2 PTS', 3), ('100 PTS', 0.3), ('1.00 EUR', 7)) AS t(m, d)
ORDER BY m, d;
-- a half decided exactly, far below numeric division's default scale
SELECT '1 PTS'::gifq_money * (0.5 + 1e-40) AS just_above_half,
	'1 PTS'::gifq_money * (0.5 - 1e-40) AS just_below_half,
	'1 PTS'::gifq_money / 3 * 3 AS not_exact;

-- comparisons: currency code first, then amount
SELECT a, b, a = b AS eq, a <> b AS ne, a < b AS lt, a <= b AS le, a > b AS gt,
	a >= b AS ge, gifq_money_cmp(a, b) AS cmp
FROM (VALUES ('1.00 USD'::gifq_money, '1.00 USD'::gifq_money),
	('1.00 USD', '2.00 USD'), ('2.00 USD', '1.00 USD'), ('1.00 EUR', '1.00 USD'),
	('100 PTS', '1.00 USD'), ('1 PTS', '1 PTSX'), ('-1 USD', '1 USD')) AS t(a, b)
ORDER BY 1, 2;

-- a total order: one column, many currencies
CREATE TABLE wallet (id int PRIMARY KEY, m gifq_money);
INSERT INTO wallet VALUES (1, '5.00 USD'), (2, '-1.00 USD'), (3, '100 PTS'),
	(4, '3.00 EUR'), (5, '5.00 USD'), (6, '0 JPY'), (7, '1 PTS'), (8, '3.00 EUR');
SELECT id, m FROM wallet ORDER BY m, id;
SELECT m FROM wallet ORDER BY m DESC, id;
SELECT DISTINCT m FROM wallet ORDER BY m;
SELECT gifq_currency(m) AS currency, sum(m), min(m), max(m), count(*)
FROM wallet GROUP BY 1 ORDER BY 1;
SELECT m, count(*) FROM wallet GROUP BY m ORDER BY m;
SELECT min(m), max(m) FROM wallet;

-- sorting (with abbreviated keys) agrees with currency code, then amount,
-- across codes sharing a prefix and amounts beyond the keys' 47 bits
CREATE TABLE sorted AS
SELECT gifq_money(u::numeric / 10::numeric ^ (CASE c WHEN 'USD' THEN 2 ELSE 0 END), c) AS m
FROM unnest(ARRAY['PTS', 'PTSX', 'PTSXY', 'PTR', 'PTT', 'USD', 'U1X', 'AAA',
	'ZZZZZZZZ', 'A0A', 'PTS0']) AS c,
	unnest(ARRAY[0, 1, -1, 70368744177663, 70368744177664, 70368744177665,
	-70368744177663, -70368744177664, -70368744177665, 140737488355327,
	9223372036854775807, -9223372036854775808, 42, -42]::bigint[]) AS u;
SELECT count(*) AS rows, count(*) FILTER (WHERE a.m <> b.m) AS misordered
FROM (SELECT m, row_number() OVER (ORDER BY m) AS n FROM sorted) a
JOIN (SELECT m, row_number() OVER (ORDER BY gifq_currency(m) COLLATE "C",
	gifq_minor_units(m)) AS n FROM sorted) b USING (n);
SELECT count(*) FILTER (WHERE prev >= m) AS out_of_order
FROM (SELECT m, lag(m) OVER (ORDER BY m) AS prev
	FROM (SELECT m FROM sorted ORDER BY m DESC) d) s;
SELECT (array_agg(m ORDER BY m))[1:6] AS first_six FROM sorted;

-- btree and hash indexes, merge and hash joins
CREATE INDEX wallet_m_btree ON wallet (m);
CREATE INDEX wallet_m_hash ON wallet USING hash (m);
SET enable_seqscan = off;
SELECT id FROM wallet WHERE m = '5.00 USD' ORDER BY id;
SELECT id FROM wallet WHERE m > '0 PTS' AND m < '1.00 USD' ORDER BY id;
SELECT min(m), max(m) FROM wallet;
RESET enable_seqscan;
SET enable_mergejoin = off; SET enable_nestloop = off;
SELECT a.id, b.id FROM wallet a JOIN wallet b ON a.m = b.m AND a.id < b.id ORDER BY 1, 2;
RESET enable_mergejoin; SET enable_hashjoin = off;
SELECT a.id, b.id FROM wallet a JOIN wallet b ON a.m = b.m AND a.id < b.id ORDER BY 1, 2;
RESET enable_hashjoin; RESET enable_nestloop;
SELECT count(*) FROM wallet a, wallet b WHERE a.m = b.m AND gifq_money_hash(a.m) <> gifq_money_hash(b.m);
-- aggregates: NULLs ignored, empty input gives NULL
SELECT sum(m) IS NULL AS empty_sum, min(m) IS NULL AS empty_min FROM wallet WHERE false;
SELECT sum(m) FROM (VALUES ('1.00 USD'::gifq_money), (NULL), ('2.50 USD')) t(m);
-- only the final sum must fit: the order of the rows never matters
SELECT sum(m ORDER BY n) AS up_first, sum(m ORDER BY n DESC) AS down_first
FROM (VALUES (1, '9223372036854775807 PTS'::gifq_money), (2, '1 PTS'), (3, '-1 PTS')) t(n, m);
-- a sliding window adds and removes rows, and restarts across currencies
SELECT n, m, sum(m) OVER (ORDER BY n ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS pair
FROM (VALUES (1, '1.00 USD'::gifq_money), (2, '2.50 USD'), (3, NULL), (4, NULL),
	(5, '-7 PTS'), (6, '9223372036854775807 PTS'), (7, '-9223372036854775807 PTS')) t(n, m)
ORDER BY n;

-- allocation always sums exactly to the total
SELECT gifq_allocate('100.00 USD', '{1,1,1}');
SELECT gifq_allocate('-100.00 USD', '{1,1,1}');
SELECT gifq_allocate('0.05 USD', '{3,7}');
SELECT gifq_allocate('10 PTS', '{0,1,0,1}');
SELECT gifq_allocate('1 PTS', '{1,1,1}');
SELECT gifq_allocate('9223372036854775807 PTS', '{1,1}');
SELECT gifq_allocate('-9223372036854775808 PTS', '{2147483647,2147483647,1}');
SELECT gifq_allocate('0 USD', '{5}');

-- errors: mixed currencies (QG001)
\set VERBOSITY default
SELECT '1.00 USD'::gifq_money + '1.00 EUR';
SELECT '1.00 USD'::gifq_money - '1 PTS';
SELECT sum(m) FROM wallet;
-- errors: overflow in every operator and in sum (QG002)
SELECT '92233720368547758.07 USD'::gifq_money + '0.01 USD';
SELECT '-92233720368547758.08 USD'::gifq_money - '0.01 USD';
SELECT -'-9223372036854775808 PTS'::gifq_money;
SELECT '92233720368547758.07 USD'::gifq_money * 2;
SELECT 2 * '92233720368547758.07 USD'::gifq_money;
SELECT '1 PTS'::gifq_money / 0.0000000000000000000001;
SELECT sum(m) FROM (VALUES ('9223372036854775807 PTS'::gifq_money), ('1 PTS')) t(m);
SELECT sum(m) FROM (VALUES ('-9223372036854775808 PTS'::gifq_money), ('-1 PTS'), ('0 PTS')) t(m);
-- errors: non-finite factors (QG006) and division by zero (22012)
SELECT '1.00 USD'::gifq_money * 'NaN'::numeric;
SELECT 'Infinity'::numeric * '1.00 USD'::gifq_money;
SELECT '1.00 USD'::gifq_money / '-Infinity'::numeric;
SELECT '1.00 USD'::gifq_money / 0;
-- errors: allocation ratios (QG007)
SELECT gifq_allocate('1.00 USD', '{}');
SELECT gifq_allocate('1.00 USD', '{0,0}');
SELECT gifq_allocate('1.00 USD', '{1,-1}');
SELECT gifq_allocate('1.00 USD', '{1,NULL}');
SELECT gifq_allocate('1.00 USD', '{{1,2},{3,4}}');
