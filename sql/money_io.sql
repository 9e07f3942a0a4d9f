-- gifq_money text input and output
SET client_min_messages = warning;

-- canonical output always carries the currency's decimal places
SELECT v::gifq_money AS canonical FROM (VALUES
	('12.50 USD'), ('12.5 USD'), ('12 USD'), ('0.01 USD'), ('-3 PTS'),
	('+7 PTS'), ('0 USD'), ('-0 USD'), ('-0.05 EUR'), ('1500 PTS'),
	('1000 JPY'), ('1.234 BHD'), ('1.5 BHD'), ('0.0001 CLF'), ('2.5 UYW'),
	('12.500 USD'), ('100.00 JPY'), ('007.10 GBP'), ('  42.00 CHF  '),
	(E'\t5\tUSD\n'), ('5 ABCDEFGH'), ('5 A1B2'), ('99 XAU')
) AS t(v) ORDER BY 1;

-- the extremes of the range, per exponent
SELECT '92233720368547758.07 USD'::gifq_money, '-92233720368547758.08 USD'::gifq_money;
SELECT '9223372036854775807 PTS'::gifq_money, '-9223372036854775808 PTS'::gifq_money;
SELECT '922337203685477.5807 CLF'::gifq_money, '-922337203685477.5808 CLF'::gifq_money;

-- accessors
SELECT gifq_amount('12.50 USD'), gifq_currency('12.50 USD'), gifq_minor_units('12.50 USD');
SELECT gifq_amount('-1500 PTS'), gifq_currency('-1500 PTS'), gifq_minor_units('-1500 PTS');
SELECT gifq_amount('1.005 BHD'), gifq_amount('1 JPY'), gifq_amount('0.0001 CLF');
SELECT gifq_amount('-92233720368547758.08 USD'), gifq_currency('1 ABCDEFGH');

-- construction from numeric
SELECT gifq_money(12.5, 'USD'), gifq_money(-3, 'PTS'), gifq_money(1.500, 'USD'),
	gifq_money(0, 'JPY'), gifq_money(1.234, 'BHD'), gifq_money(92233720368547758.07, 'USD');
SELECT gifq_money(gifq_amount(m), gifq_currency(m)) = m AS round_trip
FROM (VALUES ('12.34 USD'::gifq_money), ('-1 PTS'), ('0.001 KWD')) AS t(m);

-- casts to text and back
SELECT '12.5 USD'::gifq_money::text, '12.50 USD'::text::gifq_money;

-- errors: malformed amounts (QG005)
\set VERBOSITY default
SELECT ''::gifq_money;
SELECT 'USD'::gifq_money;
SELECT '12.50'::gifq_money;
SELECT '12.50USD'::gifq_money;
SELECT '12. USD'::gifq_money;
SELECT '.5 USD'::gifq_money;
SELECT '1,000.00 USD'::gifq_money;
SELECT '12.50 USD extra'::gifq_money;
SELECT 'USD 12.50'::gifq_money;
SELECT '1e3 USD'::gifq_money;
-- errors: malformed currency codes (QG004)
SELECT '12.50 usd'::gifq_money;
SELECT '12.50 US'::gifq_money;
SELECT '12.50 ABCDEFGHI'::gifq_money;
SELECT '12.50 US$'::gifq_money;
SELECT '1 000'::gifq_money;
SELECT gifq_money(1, 'usd');
SELECT gifq_money(1, '');
-- errors: excess precision (QG003)
SELECT '1.005 USD'::gifq_money;
SELECT '1.5 PTS'::gifq_money;
SELECT '1 .5 JPY'::gifq_money;
SELECT '0.00001 CLF'::gifq_money;
SELECT gifq_money(1.005, 'USD');
SELECT gifq_money(0.5, 'PTS');
-- errors: out of range (QG002)
SELECT '92233720368547758.08 USD'::gifq_money;
SELECT '-92233720368547758.09 USD'::gifq_money;
SELECT '9223372036854775808 PTS'::gifq_money;
SELECT '100000000000000000000000 PTS'::gifq_money;
SELECT gifq_money(92233720368547758.08, 'USD');
SELECT gifq_money(1e30, 'PTS');
-- errors: not finite (QG006)
SELECT gifq_money('NaN'::numeric, 'USD');
SELECT gifq_money('Infinity'::numeric, 'USD');
SELECT gifq_money('-Infinity'::numeric, 'PTS');
-- NULLs pass through the strict functions
SELECT gifq_money(NULL, 'USD') IS NULL, gifq_amount(NULL) IS NULL;
