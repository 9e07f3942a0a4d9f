-- the ledger: a program's flows, and each refusal's message
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SELECT gifq_create_program('regress', 'USD') AS program \gset
SELECT gifq_upsert_member('regress', 'ana', 'ana@example.com', 'US') > 0 AS ana,
	gifq_upsert_member('regress', 'ben') > 0 AS ben;
SELECT code, kind, currency, slots, debits_must_not_exceed_credits AS dmnec
FROM gifq.accounts WHERE program_id = :program ORDER BY id;

-- funding and earning
SELECT gifq_fund('regress', '1000.00 USD', 'deposit-1') AS fund \gset
SELECT gifq_fund('regress', '1000.00 USD', 'deposit-1') = :fund AS replay_same_id;
SELECT gifq_program_balance('regress');
SELECT gifq_transfer(gifq_account('regress', NULL, 'issuance'), gifq_account('regress', 'ana'),
	'1500 PTS', 'earn-1') AS earn \gset
SELECT gifq_member_balance('regress', 'ana'), gifq_balance(gifq_account('regress', NULL, 'issuance'));

-- a hold, posted in part
SELECT gifq_transfer(gifq_account('regress', 'ana'), gifq_account('regress', 'ben'), '500 PTS',
	pending => true, timeout => '1 hour') AS hold \gset
SELECT gifq_member_balance('regress', 'ana') AS ana, gifq_member_balance('regress', 'ben') AS ben;
SELECT gifq_post(:hold, '300 PTS') > :hold AS posted;
SELECT gifq_member_balance('regress', 'ana') AS ana, gifq_member_balance('regress', 'ben') AS ben;

-- a batch, all or nothing
SELECT cardinality(gifq_transfers(jsonb_build_array(
	jsonb_build_object('debit_account', gifq_account('regress', 'ana'),
		'credit_account', gifq_account('regress', 'ben'), 'amount', '100 PTS'),
	jsonb_build_object('debit_account', gifq_account('regress', 'ben'),
		'credit_account', gifq_account('regress', 'ana'), 'amount', '50 PTS')))) AS made;
SELECT * FROM gifq_ledger_verify();

-- refusals
\set VERBOSITY default
SELECT gifq_create_program('regress', 'EUR');
SELECT gifq_create_program('bad', 'USD', timezone => 'Mars/Olympus');
SELECT gifq_upsert_member('nope', 'ana');
SELECT gifq_upsert_member('regress', 'cy', email => 'not an email');
SELECT gifq_account('regress', 'nobody');
SELECT gifq_account('regress', NULL, 'vault');
SELECT gifq_transfer(gifq_account('regress', 'ben'), gifq_account('regress', 'ana'), '5000 PTS');
SELECT gifq_transfer(gifq_account('regress', 'ana'), gifq_account('regress', 'ben'), '1 PTS', 'earn-1');
SELECT gifq_transfer(gifq_account('regress', 'ana'), gifq_account('regress', 'ben'), '0 PTS');
SELECT gifq_transfer(gifq_account('regress', 'ana'), gifq_account('regress', 'ana'), '1 PTS');
SELECT gifq_transfer(gifq_account('regress', 'ana'), gifq_account('regress', 'ben'), '1.00 USD');
SELECT gifq_transfer(gifq_account('regress', 'ana'), gifq_account('regress', 'ben'), '1 PTS', timeout => '1 minute');
SELECT gifq_transfer(gifq_account('regress', 'ana'), 999999, '1 PTS');
SELECT gifq_post(:hold);
SELECT gifq_post(:earn);
SELECT gifq_transfers('[]');
SELECT gifq_fund('regress', '1.00 USD', NULL);
UPDATE gifq.transfers SET amount = amount + 1;
DELETE FROM gifq.entries;
SELECT * FROM gifq_ledger_verify();

-- privileges: no one but the owner may call the ledger until granted
SET client_min_messages = warning;
CREATE ROLE regress_gifq_app;
SET ROLE regress_gifq_app;
SELECT gifq_member_balance('regress', 'ana');
SELECT gifq_transfer(8, 9, '1 PTS');
RESET ROLE;
GRANT EXECUTE ON FUNCTION gifq_member_balance(text, text), gifq_account(text, text, text, text)
	TO regress_gifq_app;
SET ROLE regress_gifq_app;
SELECT (gifq_member_balance('regress', 'ana')).available;
SELECT count(*) FROM gifq.transfers;
RESET ROLE;
REVOKE ALL ON FUNCTION gifq_member_balance(text, text), gifq_account(text, text, text, text)
	FROM regress_gifq_app;
DROP ROLE regress_gifq_app;
