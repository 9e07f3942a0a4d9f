-- upgrade path: install 0.1.0, keep data in gifq_money, update to the
-- default version, and use the new ledger with the old data.
SET client_min_messages = warning;
DROP EXTENSION gifq CASCADE;
CREATE EXTENSION gifq VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
CREATE TABLE kept (m gifq_money);
INSERT INTO kept VALUES ('12.50 USD'), ('3 PTS');
SELECT to_regprocedure('gifq_transfer(bigint,bigint,gifq_money,text,boolean,interval,jsonb)') IS NULL AS no_ledger_yet;
ALTER EXTENSION gifq UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'gifq';
SELECT m, gifq_minor_units(m), gifq_from_minor_units(gifq_minor_units(m), gifq_currency(m)) = m AS round_trip
FROM kept ORDER BY m;
SELECT gifq_create_program('upgraded', 'USD') > 0 AS program_created;
SELECT gifq_fund('upgraded', (SELECT m FROM kept WHERE gifq_currency(m) = 'USD'), 'k1') > 0 AS funded;
SELECT (gifq_program_balance('upgraded')).available;
SELECT count(*) AS problems FROM gifq_ledger_verify();
-- every object of a fresh install exists after the update, and no other
SELECT count(*) AS objects FROM pg_depend
WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'gifq') AND deptype = 'e';
DROP TABLE kept;
DROP EXTENSION gifq CASCADE;
CREATE EXTENSION gifq;
SELECT count(*) AS objects FROM pg_depend
WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'gifq') AND deptype = 'e';
