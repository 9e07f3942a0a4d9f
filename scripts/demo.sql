-- ======================================================================
--  gifq demo: the balance type every amount in gifq is held in
-- ======================================================================
CREATE EXTENSION gifq;

-- An amount carries its currency.  ISO 4217 currencies use their own
-- decimal places; a program's points code (here PTS) counts whole points.
SELECT '12.5 USD'::gifq_money AS usd, '1000 JPY'::gifq_money AS jpy,
       '1.250 BHD'::gifq_money AS bhd, '1500 PTS'::gifq_money AS points;

-- A member's points and the card values of a small catalog, in one column.
CREATE TABLE demo_wallet (owner text, amount gifq_money);
INSERT INTO demo_wallet VALUES
  ('ana', '1500 PTS'), ('ana', '25.00 USD'), ('ben', '320 PTS'),
  ('ben', '10.00 GBP'), ('cho', '4200 PTS'), ('cho', '50.00 USD');

-- Totals are exact, per currency; one column orders by currency, then amount.
SELECT gifq_currency(amount) AS currency, sum(amount) AS total, count(*)
FROM demo_wallet GROUP BY 1 ORDER BY 1;

-- A $100.00 team bonus split 1:1:1 loses no cent: the shares sum to the total.
SELECT gifq_allocate('100.00 USD', '{1,1,1}') AS shares;

-- A 15% discount on a $12.50 card rounds half to even, to the cent.
SELECT '12.50 USD'::gifq_money * 0.85 AS discounted;

-- What gifq refuses rather than guess (each with its own SQLSTATE):
\set ON_ERROR_STOP 0
SELECT '10.00 USD'::gifq_money + '10.00 EUR';   -- QG001 mixed currencies
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT '1.005 USD'::gifq_money;                 -- QG003 more decimals than USD has
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT '12.50 usd'::gifq_money;                 -- QG004 malformed currency code
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT '92233720368547758.07 USD'::gifq_money + '0.01 USD';  -- QG002 overflow
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
