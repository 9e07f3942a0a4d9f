-- money_errors.sql: pgTAP suite for gifq_money's errors.  Every malformed
-- or out-of-range input must fail with its own SQLSTATE:
--   QG001 mixed currencies       QG005 malformed amount or syntax
--   QG002 out of range           QG006 NaN or infinity
--   QG003 excess precision       QG007 bad allocation ratios
--   QG004 bad currency code      22012 division by zero
-- and the session must survive them all.
BEGIN;
SELECT plan(175);

SET client_min_messages = warning;

CREATE TEMP TABLE cases (ord serial, sql text NOT NULL, code text NOT NULL,
	description text NOT NULL);

------------------------------------------------------------------------
-- Text input
------------------------------------------------------------------------

-- malformed amounts and syntax (QG005); each is cast from a literal
INSERT INTO cases (sql, code, description)
SELECT format('SELECT %L::gifq_money', v), 'QG005', 'text input: ' || d
FROM (VALUES
	('', 'empty string'),
	('   ', 'spaces only'),
	(E'\t\n\r\f\v ', 'white space of every kind only'),
	('-', 'a sign only'),
	('+', 'a plus sign only'),
	('- USD', 'a sign and a code, no digits'),
	('- 5 USD', 'a sign separated from its digits'),
	('+-5 USD', 'two signs'),
	('--5 USD', 'a doubled minus'),
	('12.50', 'no currency code'),
	('12.50   ', 'no currency code, trailing spaces'),
	('USD', 'a code and no amount'),
	('  USD  ', 'a code in spaces and no amount'),
	('USD 12.50', 'the code first'),
	('12.50USD', 'no space between amount and code'),
	('12.50-USD', 'a hyphen between amount and code'),
	('1e3 USD', 'exponent notation'),
	('1E3 USD', 'exponent notation, capital E'),
	('1.5e2 USD', 'exponent notation with a fraction'),
	('1,000.00 USD', 'a thousands separator'),
	('1,5 EUR', 'a decimal comma'),
	('1 000 USD', 'a space as thousands separator'),
	('1_000 PTS', 'an underscore separator'),
	('1.2.3 USD', 'two decimal points'),
	('1..5 USD', 'two adjacent decimal points'),
	('12.50 USD extra', 'trailing garbage after the code'),
	('12.50 USD 1', 'a second amount after the code'),
	('.5 USD', 'no integer digit (.5)'),
	('-.5 USD', 'no integer digit (-.5)'),
	('5. USD', 'no fraction digit (5.)'),
	('-5. PTS', 'no fraction digit (-5.)'),
	('$5 USD', 'a currency symbol before the amount'),
	('5$ USD', 'a currency symbol after the amount'),
	('(5) USD', 'accounting parentheses'),
	('0x10 PTS', 'hexadecimal'),
	('NaN USD', 'NaN as text'),
	('Infinity USD', 'Infinity as text'),
	('-inf PTS', '-inf as text'),
	('１２ USD', 'full-width Unicode digits'),
	('٣ USD', 'Arabic-Indic digit'),
	(E'5\u00a0USD', 'a no-break space between amount and code'),
	(E'5\u2009USD', 'a thin space between amount and code'),
	('½ PTS', 'a vulgar fraction')
) AS t(v, d);

-- bad currency codes (QG004), in text and in gifq_money(numeric, text)
INSERT INTO cases (sql, code, description)
SELECT format('SELECT %L::gifq_money', v), 'QG004', 'text input: ' || d
FROM (VALUES
	('5 usd', 'a lower-case code'),
	('5 Usd', 'a mixed-case code'),
	('5 US', 'a code of two letters'),
	('5 U', 'a code of one letter'),
	('5 ABCDEFGHI', 'a code of nine letters'),
	('1 000', 'a digits-first code (1 000)'),
	('5 1USD', 'a code starting with a digit'),
	('5 US$', 'punctuation in the code'),
	('5 U-S', 'a hyphen in the code'),
	('5 U_SD', 'an underscore in the code'),
	('12.50 USD;', 'a semicolon glued to the code'),
	('5 ÜSD', 'a non-ASCII letter in the code'),
	('5 ＵＳＤ', 'full-width letters in the code'),
	('5 USD١', 'a non-ASCII digit in the code')
) AS t(v, d);
INSERT INTO cases (sql, code, description)
SELECT format('SELECT gifq_money(1, %L)', v), 'QG004', 'gifq_money(numeric, text): ' || d
FROM (VALUES
	('usd', 'a lower-case code'),
	('', 'an empty code'),
	('US', 'a code of two letters'),
	('ABCDEFGHI', 'a code of nine letters'),
	(' USD', 'a code with a leading space'),
	('USD ', 'a code with a trailing space'),
	('1USD', 'a code starting with a digit'),
	('U$D', 'punctuation in the code'),
	('ÜSD', 'a non-ASCII letter in the code')
) AS t(v, d);

-- excess precision (QG003), per exponent
INSERT INTO cases (sql, code, description)
SELECT format('SELECT %L::gifq_money', v), 'QG003', 'text input: ' || d
FROM (VALUES
	('1.5 PTS', 'a fraction in PTS (exponent 0)'),
	('1.5 JPY', 'a fraction in JPY (exponent 0)'),
	('-0.1 ABCDEFGH', 'a fraction in an 8-letter code (exponent 0)'),
	('7.0000001 A1B2C3', 'a fraction after zeros, A1B2C3 (exponent 0)'),
	('1.005 USD', 'three places in USD (exponent 2)'),
	('-0.001 EUR', 'three places in EUR (exponent 2)'),
	('0.0100000001 USD', 'a nonzero digit after zeros in USD'),
	('1.0005 BHD', 'four places in BHD (exponent 3)'),
	('1.00005 CLF', 'five places in CLF (exponent 4)'),
	('92233720368547758.071 USD', 'excess precision beyond the largest USD')
) AS t(v, d);
INSERT INTO cases (sql, code, description)
SELECT format('SELECT gifq_money(%s, %L)', a, c), 'QG003', 'gifq_money(numeric, text): ' || d
FROM (VALUES
	('0.5', 'PTS', 'a fraction in PTS (exponent 0)'),
	('1.5', 'JPY', 'a fraction in JPY (exponent 0)'),
	('1.005', 'USD', 'three places in USD (exponent 2)'),
	('0.0001', 'BHD', 'four places in BHD (exponent 3)'),
	('0.00001', 'CLF', 'five places in CLF (exponent 4)'),
	('1e-30', 'USD', 'a tiny amount')
) AS t(a, c, d);

-- out of range (QG002), per exponent
INSERT INTO cases (sql, code, description)
SELECT format('SELECT %L::gifq_money', v), 'QG002', 'text input: ' || d
FROM (VALUES
	('9223372036854775808 PTS', 'above the largest PTS (exponent 0)'),
	('-9223372036854775809 JPY', 'below the least JPY (exponent 0)'),
	('92233720368547758.08 USD', 'above the largest USD (exponent 2)'),
	('-92233720368547758.09 USD', 'below the least USD (exponent 2)'),
	('9223372036854775.808 BHD', 'above the largest BHD (exponent 3)'),
	('-9223372036854775.809 KWD', 'below the least KWD (exponent 3)'),
	('922337203685477.5808 CLF', 'above the largest CLF (exponent 4)'),
	('-922337203685477.5809 CLF', 'below the least CLF (exponent 4)'),
	('1000000000000000000 USD', 'a 19-digit dollar amount'),
	('99999999999999999999999999999999999999 PTS', 'a 38-digit amount')
) AS t(v, d);
INSERT INTO cases (sql, code, description)
SELECT format('SELECT gifq_money(%s, %L)', a, c), 'QG002', 'gifq_money(numeric, text): ' || d
FROM (VALUES
	('9223372036854775808', 'PTS', 'above the largest PTS'),
	('-9223372036854775809', 'A1B2C3', 'below the least A1B2C3'),
	('92233720368547758.08', 'USD', 'above the largest USD'),
	('-92233720368547758.09', 'USD', 'below the least USD'),
	('9223372036854775.808', 'BHD', 'above the largest BHD'),
	('922337203685477.5808', 'CLF', 'above the largest CLF'),
	('1e30', 'CLF', '1e30')
) AS t(a, c, d);

-- NaN and infinities (QG006)
INSERT INTO cases (sql, code, description)
SELECT format('SELECT gifq_money(%L::numeric, %L)', a, c), 'QG006',
	'gifq_money(numeric, text): ' || a
FROM (VALUES ('NaN', 'USD'), ('Infinity', 'USD'), ('-Infinity', 'PTS')) AS t(a, c);

------------------------------------------------------------------------
-- Operators
------------------------------------------------------------------------

INSERT INTO cases (sql, code, description) VALUES
	-- mixed currencies (QG001)
	($$SELECT '1.00 USD'::gifq_money + '1.00 EUR'$$, 'QG001', '+ across currencies'),
	($$SELECT '0.00 USD'::gifq_money + '0 JPY'$$, 'QG001', '+ of zeros across currencies'),
	($$SELECT '1 PTS'::gifq_money + '1 PTSX'$$, 'QG001', '+ across codes sharing a prefix'),
	($$SELECT '1.00 USD'::gifq_money - '1 PTS'$$, 'QG001', '- across currencies'),
	($$SELECT '5 ABCDEFGH'::gifq_money - '5 ABCDEFG'$$, 'QG001', '- across 8- and 7-letter codes'),
	-- overflow of every operator (QG002)
	($$SELECT '92233720368547758.07 USD'::gifq_money + '0.01 USD'$$, 'QG002', '+ above the largest value'),
	($$SELECT '-9223372036854775808 PTS'::gifq_money + '-1 PTS'$$, 'QG002', '+ below the least value'),
	($$SELECT '-92233720368547758.08 USD'::gifq_money - '0.01 USD'$$, 'QG002', '- below the least value'),
	($$SELECT '9223372036854775807 PTS'::gifq_money - '-1 PTS'$$, 'QG002', '- above the largest value'),
	($$SELECT '0 PTS'::gifq_money - '-9223372036854775808 PTS'$$, 'QG002', '0 - least value'),
	($$SELECT -'-9223372036854775808 PTS'::gifq_money$$, 'QG002', 'unary - of the least PTS'),
	($$SELECT -'-922337203685477.5808 CLF'::gifq_money$$, 'QG002', 'unary - of the least CLF'),
	($$SELECT '92233720368547758.07 USD'::gifq_money * 2$$, 'QG002', 'money * numeric above range'),
	($$SELECT '-9223372036854775808 PTS'::gifq_money * -1$$, 'QG002', 'least value * -1'),
	($$SELECT '9223372036854775807 PTS'::gifq_money * 1.0000000000000000001$$, 'QG002',
		'money * numeric pushed out of range by rounding'),
	($$SELECT 2 * '92233720368547758.07 USD'::gifq_money$$, 'QG002', 'numeric * money above range'),
	($$SELECT -1e30 * '1 PTS'::gifq_money$$, 'QG002', 'numeric * money below range'),
	($$SELECT '1 PTS'::gifq_money / 0.0000000000000000000001$$, 'QG002', 'money / tiny numeric'),
	($$SELECT '-9223372036854775808 PTS'::gifq_money / -1$$, 'QG002', 'least value / -1'),
	($$SELECT '9223372036854775807 PTS'::gifq_money / 0.5$$, 'QG002', 'largest value / 0.5'),
	-- NaN and infinite factors (QG006)
	($$SELECT '1.00 USD'::gifq_money * 'NaN'::numeric$$, 'QG006', 'money * NaN'),
	($$SELECT 'NaN'::numeric * '1.00 USD'::gifq_money$$, 'QG006', 'NaN * money'),
	($$SELECT '1.00 USD'::gifq_money * 'Infinity'::numeric$$, 'QG006', 'money * Infinity'),
	($$SELECT '-Infinity'::numeric * '0 PTS'::gifq_money$$, 'QG006', '-Infinity * zero money'),
	($$SELECT '1.00 USD'::gifq_money / 'NaN'::numeric$$, 'QG006', 'money / NaN'),
	($$SELECT '1.00 USD'::gifq_money / 'Infinity'::numeric$$, 'QG006', 'money / Infinity'),
	($$SELECT '1.00 USD'::gifq_money / '-Infinity'::numeric$$, 'QG006', 'money / -Infinity'),
	-- division by zero (22012)
	($$SELECT '1.00 USD'::gifq_money / 0$$, '22012', 'money / 0'),
	($$SELECT '0 PTS'::gifq_money / 0.000$$, '22012', 'zero money / 0.000'),
	($$SELECT '-5 JPY'::gifq_money / -0.0$$, '22012', 'money / -0.0');

------------------------------------------------------------------------
-- Aggregates
------------------------------------------------------------------------

INSERT INTO cases (sql, code, description) VALUES
	($$SELECT sum(m) FROM (VALUES ('1.00 USD'::gifq_money), ('1.00 EUR')) AS t(m)$$,
		'QG001', 'sum() across currencies'),
	($$SELECT sum(m) FROM (VALUES ('1 PTS'::gifq_money), (NULL), ('1 PTSX')) AS t(m)$$,
		'QG001', 'sum() across currencies with a NULL between'),
	($$SELECT sum(m) FROM (SELECT gifq_money(i, CASE WHEN i = 5000 THEN 'EUR' ELSE 'USD' END)
		FROM generate_series(1, 10000) AS i) AS t(m)$$,
		'QG001', 'sum() with one foreign value among many'),
	($$SELECT sum(m) FROM (VALUES ('9223372036854775807 PTS'::gifq_money), ('1 PTS')) AS t(m)$$,
		'QG002', 'sum() above the largest value'),
	($$SELECT sum(m) FROM (VALUES ('-92233720368547758.08 USD'::gifq_money), ('-0.01 USD')) AS t(m)$$,
		'QG002', 'sum() below the least value'),
	($$SELECT sum(m) FROM (SELECT '1000000000000000000 PTS'::gifq_money FROM generate_series(1, 10)) AS t(m)$$,
		'QG002', 'sum() of ten 10^18 PTS');

------------------------------------------------------------------------
-- gifq_allocate (QG007)
------------------------------------------------------------------------

INSERT INTO cases (sql, code, description)
SELECT format('SELECT gifq_allocate(%L::gifq_money, %L::int[])', t, r), 'QG007',
	'gifq_allocate: ' || d
FROM (VALUES
	('1.00 USD', '{}', 'an empty array'),
	('1.00 USD', '{0}', 'a single zero ratio'),
	('1.00 USD', '{0,0,0}', 'ratios summing to zero'),
	('0 PTS', '{0,0}', 'ratios summing to zero, zero total'),
	('1.00 USD', '{1,-1}', 'a negative ratio'),
	('1.00 USD', '{-5}', 'a single negative ratio'),
	('1.00 USD', '{-2147483648,2147483647}', 'the least int4 as a ratio'),
	('1.00 USD', '{1,NULL}', 'a NULL ratio'),
	('1.00 USD', '{NULL}', 'only a NULL ratio'),
	('1.00 USD', '{{1,2},{3,4}}', 'a two-dimensional array'),
	('1.00 USD', '{{1}}', 'a 1x1 two-dimensional array'),
	('-9223372036854775808 PTS', '{0}', 'a zero ratio with the least total')
) AS t(t, r, d);

------------------------------------------------------------------------
-- Every case, in order
------------------------------------------------------------------------

SELECT throws_ok(sql, code, NULL, description || ' -> ' || code)
FROM cases ORDER BY ord;

------------------------------------------------------------------------
-- Exact messages, for a few representative cases
------------------------------------------------------------------------

SELECT throws_ok($$SELECT ''::gifq_money$$, 'QG005',
	'invalid input syntax for type gifq_money: ""', 'message: empty input');
SELECT throws_ok($$SELECT '.5 USD'::gifq_money$$, 'QG005',
	'invalid input syntax for type gifq_money: ".5 USD"', 'message: malformed amount');
SELECT throws_ok($$SELECT '12.50 usd'::gifq_money$$, 'QG004',
	'invalid currency code "usd"', 'message: bad code in text');
SELECT throws_ok($$SELECT gifq_money(1, 'ABCDEFGHI')$$, 'QG004',
	'invalid currency code "ABCDEFGHI"', 'message: bad code in gifq_money()');
SELECT throws_ok($$SELECT '-1.005 USD'::gifq_money$$, 'QG003',
	'amount "-1.005" has more decimal places than currency "USD" allows',
	'message: excess precision in text');
SELECT throws_ok($$SELECT gifq_money(0.5, 'PTS')$$, 'QG003',
	'amount "0.5" has more decimal places than currency "PTS" allows',
	'message: excess precision in gifq_money()');
SELECT throws_ok($$SELECT '92233720368547758.08 USD'::gifq_money$$, 'QG002',
	'amount "92233720368547758.08" is out of range for type gifq_money',
	'message: out of range in text');
SELECT throws_ok($$SELECT gifq_money('-Infinity'::numeric, 'PTS')$$, 'QG006',
	'amount "-Infinity" is not finite', 'message: infinite amount');
SELECT throws_ok($$SELECT '1.00 USD'::gifq_money + '1.00 EUR'$$, 'QG001',
	'cannot add "1.00 USD" and "1.00 EUR"', 'message: + across currencies');
SELECT throws_ok($$SELECT '1.00 USD'::gifq_money - '1 PTS'$$, 'QG001',
	'cannot subtract "1 PTS" from "1.00 USD"', 'message: - across currencies');
SELECT throws_ok($$SELECT '92233720368547758.07 USD'::gifq_money + '0.01 USD'$$, 'QG002',
	'result of "92233720368547758.07 USD" + "0.01 USD" is out of range for type gifq_money',
	'message: + overflow');
SELECT throws_ok($$SELECT -'-9223372036854775808 PTS'::gifq_money$$, 'QG002',
	'result of -"-9223372036854775808 PTS" is out of range for type gifq_money',
	'message: unary - overflow');
SELECT throws_ok($$SELECT '92233720368547758.07 USD'::gifq_money * 2$$, 'QG002',
	'result of "92233720368547758.07 USD" * 2 is out of range for type gifq_money',
	'message: * overflow');
SELECT throws_ok($$SELECT '1.00 USD'::gifq_money * 'NaN'::numeric$$, 'QG006',
	'cannot apply factor "NaN" to "1.00 USD"', 'message: NaN factor');
SELECT throws_ok($$SELECT '1.00 USD'::gifq_money / 0$$, '22012',
	'cannot divide "1.00 USD" by zero', 'message: division by zero');
SELECT throws_ok($$SELECT gifq_allocate('1.00 USD', '{1,-1}')$$, 'QG007',
	'invalid allocation ratios "{1,-1}"', 'message: negative ratio');

------------------------------------------------------------------------
-- Boundaries that are not errors
------------------------------------------------------------------------

SELECT lives_ok($$SELECT '92233720368547758.07 USD'::gifq_money, '-92233720368547758.08 USD'::gifq_money,
	'-922337203685477.5808 CLF'::gifq_money, '9223372036854775.807 BHD'::gifq_money$$,
	'the extremes of each exponent are accepted');
SELECT is('0000000000000000000000000000001.5000000000000 USD'::gifq_money::text, '1.50 USD',
	'leading zeros and trailing zeros are no overflow and no excess precision');
SELECT is(('-9223372036854775807 PTS'::gifq_money + '-1 PTS')::text, '-9223372036854775808 PTS',
	'+ reaches the least value exactly');
SELECT is(('9223372036854775807 PTS'::gifq_money * 1.00000000000000000005)::text,
	'9223372036854775807 PTS', 'a product just under the half above the largest value rounds down');
SELECT is((SELECT sum(m) FROM (VALUES ('9223372036854775806 PTS'::gifq_money), ('1 PTS')) AS t(m))::text,
	'9223372036854775807 PTS', 'sum() reaches the largest value exactly');
SELECT is(array_length(gifq_allocate('1.00 USD', '{2147483647,2147483647,2147483647}'), 1), 3,
	'ratios whose sum exceeds int4 are accepted');

------------------------------------------------------------------------
-- The session survived all of the above
------------------------------------------------------------------------

SELECT lives_ok($$SELECT '1.00 USD'::gifq_money + '2.00 USD'$$,
	'the session still works after every error');
SELECT is(('1.00 USD'::gifq_money + '2.00 USD')::text, '3.00 USD',
	'and still computes correctly');
SELECT cmp_ok((SELECT count(*) FROM cases), '>=', 60::bigint,
	'at least 60 error cases were checked');

SELECT * FROM finish();
ROLLBACK;
