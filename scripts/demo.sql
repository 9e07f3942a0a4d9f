-- ======================================================================
--  gifq demo, part 1: the balance type every amount in gifq is held in
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

-- ======================================================================
--  part 2: the ledger.  A recognition platform runs a program in USD,
--  where 100 points are worth $1.
-- ======================================================================
SELECT gifq_create_program('acme-kudos', 'USD', 'PTS', 100, 'America/New_York') AS program_id;
SELECT gifq_upsert_member('acme-kudos', 'user_ana', 'ana@example.com', 'US',
                          '{"department": "sales"}') AS ana,
       gifq_upsert_member('acme-kudos', 'user_ben', 'ben@example.com', 'US',
                          '{"department": "support"}') AS ben;

-- The platform prepays $500.00; the same deposit sent twice counts once.
SELECT gifq_fund('acme-kudos', '500.00 USD', 'wire-2026-11-28') AS funding_transfer;
SELECT gifq_fund('acme-kudos', '500.00 USD', 'wire-2026-11-28') AS same_transfer_again;
SELECT (gifq_program_balance('acme-kudos')).available AS funding_available;

-- Alert the finance team when funding falls below $450.00.
SELECT gifq_set_low_balance('acme-kudos', '450.00 USD');
LISTEN gifq_events;

-- Ana earns 7500 points for closing a deal (points come from issuance).
SELECT gifq_transfer(gifq_account('acme-kudos', NULL, 'issuance'),
                     gifq_account('acme-kudos', 'user_ana'), '7500 PTS',
                     idempotency_key => 'deal-4411') AS earned;

-- She redeems a $60.00 card: her points and the program's money are
-- held (two-phase), then posted when the card is delivered.
SELECT gifq_transfer(gifq_account('acme-kudos', 'user_ana'),
                     gifq_account('acme-kudos', NULL, 'issuance'), '6000 PTS',
                     pending => true, timeout => '1 hour') AS points_hold \gset
SELECT gifq_transfer(gifq_account('acme-kudos', NULL, 'funding'),
                     gifq_account('acme-kudos', NULL, 'payable'), '60.00 USD',
                     pending => true, timeout => '1 hour') AS money_hold \gset
SELECT (gifq_member_balance('acme-kudos', 'user_ana')).* ;
SELECT gifq_post(:points_hold) AS posted_points, gifq_post(:money_hold) AS posted_money;

-- Funding fell below $450.00: one balance.low event (and a NOTIFY).
SELECT event_type, payload->>'available' AS available, payload->>'level' AS level
FROM gifq.outbox ORDER BY id;

-- Ben cannot spend points he does not have (QG107), and nothing changes.
\set ON_ERROR_STOP 0
SELECT gifq_transfer(gifq_account('acme-kudos', 'user_ben'),
                     gifq_account('acme-kudos', 'user_ana'), '10 PTS');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1

-- Balances now, and the ledger checked against every transfer.
SELECT m.external_id AS member, (gifq_member_balance('acme-kudos', m.external_id)).available
FROM gifq.members m ORDER BY 1;
SELECT (gifq_program_balance('acme-kudos')).* ;
SELECT count(*) AS ledger_problems FROM gifq_ledger_verify();

-- ======================================================================
--  part 3: the catalog and redemption.  The platform syncs the provider's
--  catalog, serves members in the US and the UK from one points scale,
--  and members turn points into gift cards with gifq_redeem().
-- ======================================================================
SELECT gifq_catalog_load($${"etag": "c-2026-11-28", "brands": [
  {"id": "amazon-us", "name": "Amazon", "country": "US", "currency": "USD",
   "categories": ["retail"], "denominations": [10, 25, 50, 100],
   "discount_pct": 3.0, "in_stock": true},
  {"id": "target-us", "name": "Target", "country": "US", "currency": "USD",
   "categories": ["retail"], "denominations": [25, 50], "in_stock": true},
  {"id": "cafe-us", "name": "Café Olé", "country": "US", "currency": "USD",
   "categories": ["food"], "min_value": 5, "max_value": 100,
   "discount_pct": 5, "in_stock": true},
  {"id": "tesco-gb", "name": "Tesco", "country": "GB", "currency": "GBP",
   "categories": ["grocery"], "min_value": 5, "max_value": 200,
   "discount_pct": 4.5, "in_stock": true}]}$$) AS brands_loaded;

-- What a US member sees: a sponsored placement first, then by popularity.
SELECT gifq_feature_brand('target-us', 1, sponsored => true);
SELECT brand_id, name, denominations, min_value, max_value, sponsored
FROM gifq_catalog(country => 'US');
-- Search ignores case and accents.
SELECT brand_id, name FROM gifq_catalog(search => 'cafe ole');

-- UK members redeem in pounds: fund in GBP, set the points rate for GBP.
SELECT gifq_fund('acme-kudos', '200.00 GBP', 'wire-gbp-1') AS gbp_funding;
SELECT gifq_set_rate('acme-kudos', 'GBP', 125);            -- 125 points per pound
SELECT gifq_upsert_member('acme-kudos', 'user_cleo', 'cleo@example.co.uk', 'GB') AS cleo;
SELECT gifq_transfer(gifq_account('acme-kudos', NULL, 'issuance'),
                     gifq_account('acme-kudos', 'user_cleo'), '5000 PTS',
                     idempotency_key => 'welcome-cleo') AS welcome_bonus;

-- Fraud limits: at most 3 cards a day, none above $100, and a flag when a
-- member's year reaches the US 1099 level of $600.
SELECT gifq_set_limits('acme-kudos', '{"max_redemptions_per_day": 3,
  "max_single_value": "100.00 USD", "recipient_yearly_flag": "600.00 USD"}');

-- Ana (1500 PTS left) redeems a $10 Amazon card: one call, one short
-- transaction; her points and $9.70 of funding (3% discount) are held.
SELECT * FROM gifq_redeem('acme-kudos', 'user_ana', 'amazon-us', '10.00 USD', 'req-ana-1');
-- The app retries after a timeout: same key, same order, created = false.
SELECT * FROM gifq_redeem('acme-kudos', 'user_ana', 'amazon-us', '10.00 USD', 'req-ana-1');
SELECT order_id, status, brand_id, amount, points, cost, reference
FROM gifq_order((SELECT id FROM gifq.orders WHERE idempotency_key = 'req-ana-1'));

-- Cleo redeems £13.37 of Tesco (a range brand): 1672 points (rounded up),
-- held against the program's GBP funding at cost.
SELECT * FROM gifq_redeem('acme-kudos', 'user_cleo', 'tesco-gb', '13.37 GBP', 'req-cleo-1');

-- Refusals, each with its own SQLSTATE, and nothing changes:
\set ON_ERROR_STOP 0
SELECT * FROM gifq_redeem('acme-kudos', 'user_ben', 'amazon-us', '25.00 USD', 'req-ben-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE   (QG208 insufficient points)
SELECT * FROM gifq_redeem('acme-kudos', 'user_ana', 'amazon-us', '30.00 USD', 'req-ana-2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE   (QG205 not a denomination)
SELECT * FROM gifq_redeem('acme-kudos', 'user_cleo', 'amazon-us', '10.00 USD', 'req-cleo-2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE   (QG206 a US card for a UK member)
SELECT * FROM gifq_redeem('acme-kudos', 'user_ana', 'amazon-us', '25.00 USD', 'req-ana-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE   (QG109 the key was used for another card)
\set ON_ERROR_STOP 1
-- Nearest choices when a card is not sold:
SELECT * FROM gifq_alternatives('amazon-us', '30.00 USD');

-- Cleo changes her mind before the card is sent: the holds are released.
SELECT gifq_cancel_order((SELECT id FROM gifq.orders WHERE idempotency_key = 'req-cleo-1'));
SELECT at::time(0) AS at, actor, from_status, to_status, reason
FROM gifq_order_history((SELECT id FROM gifq.orders WHERE idempotency_key = 'req-cleo-1'));

-- No provider is configured yet, so orders wait as pending; their value
-- stays held until delivery posts it or a failure releases it (part 5).
SELECT m.external_id AS member, (gifq_member_balance('acme-kudos', m.external_id)).*
FROM gifq.members m ORDER BY 1;
SELECT currency, (gifq_program_balance('acme-kudos', currency)).*
FROM (VALUES ('USD'), ('GBP')) c(currency);
SELECT count(*) AS ledger_problems FROM gifq_ledger_verify();

-- ======================================================================
--  part 4: events become points.  A rule gives each closed deal its
--  points; a challenge doubles them for a while; a streak rewards
--  consistency; a threshold tells the app when to offer a card.
-- ======================================================================

-- From now on, points earned expire after 12 months (what members hold
-- already never does).  A closed deal earns 50 points, at most 3 deals a
-- day; during the demo week a challenge doubles them for the first 2
-- completions, one per member.
SELECT gifq_set_points_expiry('acme-kudos', '12 months');
SELECT gifq_set_rule('acme-kudos', 'deal.closed', 50, daily_cap => 3);
SELECT gifq_create_challenge('acme-kudos', 'deal-week', 'deal.closed',
	now() - interval '1 day', now() + interval '6 days',
	multiplier => 2, max_completions => 2, per_member_limit => 1) AS challenge \gset

-- Ben closes two deals and Ana one: Ben's first and Ana's get the bonus,
-- Ben's second only the base (one completion per member).
SELECT 'ben' AS who, event_id, points_awarded, balance, details->'challenges' AS bonuses
FROM gifq_record_event('acme-kudos', 'user_ben', 'deal.closed', 'crm-deal-1001');
SELECT 'ben' AS who, event_id, points_awarded, balance, details->'skipped_challenges' AS skipped
FROM gifq_record_event('acme-kudos', 'user_ben', 'deal.closed', 'crm-deal-1002');
SELECT 'ana' AS who, event_id, points_awarded, balance
FROM gifq_record_event('acme-kudos', 'user_ana', 'deal.closed', 'crm-deal-1003');
-- The CRM's webhook fires twice: the same key replays, nothing is awarded.
SELECT 'ana' AS who, event_id, points_awarded, balance
FROM gifq_record_event('acme-kudos', 'user_ana', 'deal.closed', 'crm-deal-1003');

-- A daily learning streak that forgives one missed day, a milestone that
-- pays 30 points when it reaches 3 days (a rule for the event type
-- streak:<streak type>:<days>), and a threshold at 200 points that tells
-- the app to offer "redeem now".
SELECT gifq_define_streak('acme-kudos', 'daily-learning', 'lesson.completed', 'day', grace_periods => 1);
SELECT gifq_set_rule('acme-kudos', 'streak:daily-learning:3', 30);
SELECT gifq_define_threshold('acme-kudos', 200, 'unlock');
-- Ben learns three days ago, the day before yesterday, skips yesterday,
-- and learns today; the streak survives the missed day and reaches 3.
-- His closed deals and the milestone put him at 180 points: one more deal
-- crosses 200.
SELECT count(*) AS lessons FROM (VALUES (3), (2), (0)) d(ago),
	LATERAL gifq_record_event('acme-kudos', 'user_ben', 'lesson.completed', 'lms-ben-' || ago,
		now() - ago * interval '1 day') e;
SELECT * FROM gifq_streak('acme-kudos', 'user_ben', 'daily-learning');
SELECT event_type, points, attributes FROM gifq.events WHERE event_type LIKE 'streak:%';
SELECT points_awarded, balance
FROM gifq_record_event('acme-kudos', 'user_ben', 'deal.closed', 'crm-deal-1004');
SELECT payload FROM gifq.outbox WHERE event_type = 'threshold.reached';
-- What Ben earned this week expires in a year, at the end of that day in
-- the program's time zone; spending takes the soonest-expiring first.
SELECT * FROM gifq_expiring_points('acme-kudos', 'user_ben', '13 months');
SELECT rank, member, points FROM gifq_leaderboard('acme-kudos', 'week');
SELECT count(*) AS ledger_problems FROM gifq_ledger_verify();

-- ======================================================================
--  part 5: fulfilment.  The background worker sends orders to the
--  provider (here the sandbox provider on 127.0.0.1) with libcurl, many at
--  once, and records each answer.  Until now it had no provider to call.
-- ======================================================================

-- The worker runs inside PostgreSQL (preloaded); it is waiting for a URL.
SELECT database, pid IS NOT NULL AS running, last_error, queue_depth FROM gifq.worker;

-- A DBA points it at the provider; a reload is enough.
ALTER SYSTEM SET gifq.provider_url = :'provider_url';
SELECT pg_reload_conf();
-- (the demo waits, up to 10 s, until no order is on its way)
CREATE PROCEDURE pg_temp.wait_for_worker() LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..100 LOOP
		EXIT WHEN NOT EXISTS (SELECT 1 FROM gifq.orders
			WHERE status IN ('pending', 'submitted', 'processing'));
		PERFORM pg_sleep(0.1);
	END LOOP;
END $$;
CALL pg_temp.wait_for_worker();

-- Ana's $10 card is delivered: the holds are posted, the card is stored
-- sealed (AES-256-GCM), and the app sees only its last 4 characters.
SELECT order_id, status, attempts, code_last4, redemption_url, expiry_date
FROM gifq_order((SELECT id FROM gifq.orders WHERE idempotency_key = 'req-ana-1'));
SELECT at::time(0) AS at, from_status, to_status, reason
FROM gifq_order_history((SELECT id FROM gifq.orders WHERE idempotency_key = 'req-ana-1'));
-- Showing Ana her code is one audited call.
SELECT code, pin FROM gifq_reveal_code((SELECT id FROM gifq.orders WHERE idempotency_key = 'req-ana-1'));
SELECT order_id, actor FROM gifq.card_reveals;

-- Ben gets a 1000-point spot bonus and redeems it at once: the order is on
-- its way the moment it commits (the commit wakes the worker), and it
-- takes milliseconds end to end.
SELECT gifq_transfer(gifq_account('acme-kudos', NULL, 'issuance'),
                     gifq_account('acme-kudos', 'user_ben'), '1000 PTS',
                     idempotency_key => 'spot-bonus-ben') AS bonus;
SELECT order_id, status FROM gifq_redeem('acme-kudos', 'user_ben', 'amazon-us', '10.00 USD', 'req-ben-2');
SELECT pg_sleep(0.5);
SELECT status, delivered_at - created_at AS commit_to_delivered
FROM gifq.orders WHERE idempotency_key = 'req-ben-2';

-- Every provider call is logged, and the app is told through events.
SELECT call, order_id, http_status, error FROM gifq.provider_calls ORDER BY id;
SELECT event_type, payload->>'order_id' AS order_id FROM gifq.outbox
WHERE event_type LIKE 'order.%' ORDER BY id;
SELECT database, delivered, failed, in_flight, paused_reason FROM gifq.worker;
SELECT m.external_id AS member, (gifq_member_balance('acme-kudos', m.external_id)).available
FROM gifq.members m ORDER BY 1;
SELECT count(*) AS ledger_problems FROM gifq_ledger_verify();

-- ======================================================================
--  part 6: rewards the recipient chooses.  A threshold sends Ben a reward
--  from the program's funding; he picks a brand, the worker delivers the
--  card; a survey platform sends rewards in bulk; one expires unclaimed
--  and its value returns; the reports show what happened.
-- ======================================================================

-- Kudos from colleagues are worth 150 points, and reaching 600 points
-- earns a $5 reward of the member's choice.
SELECT gifq_set_rule('acme-kudos', 'kudos.received', 150);
SELECT gifq_define_threshold('acme-kudos', 600, 'reward', '5.00 USD') AS reward_threshold \gset
SELECT (gifq_program_balance('acme-kudos', 'USD')).available AS funding_before;
-- Ben receives kudos until he crosses 600: the event that crosses it
-- holds $5 of funding for him, in the same transaction.
SELECT e.event_id, e.points_awarded, e.balance
FROM generate_series(1, 3) k,
	LATERAL gifq_record_event('acme-kudos', 'user_ben', 'kudos.received', 'kudos-ben-' || k) e;
SELECT reward_status, reward_id IS NOT NULL AS issued FROM gifq.threshold_hits
WHERE threshold_id = :reward_threshold;
SELECT (gifq_program_balance('acme-kudos', 'USD')).available AS funding_after;
-- The claim token reaches the app in a reward.issued event (the app
-- emails Ben a link); it is stored only as a hash in gifq.rewards.
SELECT payload->>'claim_token' AS ben_token FROM gifq.outbox
WHERE event_type = 'reward.issued' ORDER BY id DESC LIMIT 1 \gset
-- The menu is the live catalog's brands that sell a $5 card in Ben's
-- country; he picks the café.
SELECT brand_id, name, currency FROM gifq_reward_options(:'ben_token');
SELECT * FROM gifq_claim_reward(:'ben_token', 'cafe-us') \gset ben_
-- A second claim of the same link, and a made-up token, are refused.
\set ON_ERROR_STOP 0
SELECT * FROM gifq_claim_reward(:'ben_token', 'cafe-us');
\echo SQLSTATE :LAST_ERROR_SQLSTATE   (QG502 already claimed)
SELECT * FROM gifq_claim_reward('gqr_not-a-real-token-at-all-000000', 'amazon-us');
\echo SQLSTATE :LAST_ERROR_SQLSTATE   (QG501 claim token not recognised)
\set ON_ERROR_STOP 1
CALL pg_temp.wait_for_worker();
SELECT order_id, status, brand_id, amount, code_last4 FROM gifq_order(:ben_order_id);

-- A survey platform thanks three respondents in one call, all or
-- nothing, each with a menu of one category; one reward lapses within a
-- second (its value goes back to the funding when it is expired).
SELECT reward_id, recipient_email, claim_token IS NOT NULL AS has_token
FROM gifq_send_rewards('acme-kudos', '[
	{"recipient_email": "r1@example.com", "value": "2.00 USD", "idempotency_key": "survey-7-r1", "categories": ["retail"]},
	{"recipient_email": "r2@example.com", "value": "2.00 USD", "idempotency_key": "survey-7-r2", "categories": ["retail"]},
	{"recipient_email": "r3@example.com", "value": "2.00 USD", "idempotency_key": "survey-7-r3", "categories": ["retail"]}
]');
SELECT reward_id, status FROM gifq_send_reward('acme-kudos', 'late@example.com', '3.00 USD',
	'survey-7-late', expires_at => now() + interval '1 second');
SELECT (gifq_program_balance('acme-kudos', 'USD')).available AS funding_before_expiry;
SELECT pg_sleep(1.2);
SELECT gifq_expire_rewards() AS expired;
SELECT (gifq_program_balance('acme-kudos', 'USD')).available AS funding_after_expiry;
SELECT recipient_email, status FROM gifq.rewards ORDER BY id;

-- What the reporting role sees: rewards claimed and expired, spend by
-- brand at face value and at cost, and how orders went.
SELECT program, currency, sent, claimed, expired, pending, claim_rate, expiry_rate
FROM gifq.reward_rates;
SELECT program, brand_id, orders, face_value, cost, margin FROM gifq.spend_by_brand;
SELECT program, orders, delivered, failed, success_rate FROM gifq.order_outcomes;
SELECT count(*) AS ledger_problems FROM gifq_ledger_verify();

-- ---------------------------------------------------------------------
--  part 7: least privilege, the audit trail and erasure.  The platform's
--  app connects as a role in gifq_app that may act only on its program;
--  it calls the API and can read nothing directly.
-- ---------------------------------------------------------------------
SELECT gifq_create_program('other-co', 'USD') AS other_program;
CREATE ROLE kudos_app NOLOGIN IN ROLE gifq_app;
SELECT gifq_grant_program('kudos_app', 'acme-kudos');
SET ROLE kudos_app;
-- its own program works as before
SELECT points_awarded FROM gifq_record_event('acme-kudos', 'user_ana', 'kudos.received',
	'kudos-9001', now());
\set ON_ERROR_STOP 0
-- another company's program, a table of gifq, an admin function: refused
SELECT gifq_member_balance('other-co', 'user_ana');
\echo SQLSTATE :LAST_ERROR_SQLSTATE   (QG701 program not granted to kudos_app)
SELECT code_last4 FROM gifq.orders LIMIT 1;
\echo SQLSTATE :LAST_ERROR_SQLSTATE   (42501 no direct reads: codes only through gifq_reveal_code)
SELECT gifq_fund('acme-kudos', '1000.00 USD', 'free-money');
\echo SQLSTATE :LAST_ERROR_SQLSTATE   (42501 funding is for gifq_admin only)
\set ON_ERROR_STOP 1
RESET ROLE;

-- Every change and every code reveal is in the audit trail, with who did
-- it and no personal data (addresses show as "redacted").
SELECT acting_role, table_name, operation, object_id
FROM gifq_audit('acme-kudos', now() - interval '1 hour')
WHERE operation IN ('REVEAL') OR table_name = 'orders' AND operation = 'INSERT'
ORDER BY id LIMIT 5;
SELECT after ->> 'email' AS email_in_audit FROM gifq.audit
WHERE table_name = 'members' AND operation = 'INSERT' ORDER BY id LIMIT 1;

-- Ana asks to be forgotten: her address and attributes go, her ledger,
-- orders and balance stay, and the ledger still verifies.
SELECT (gifq_member_balance('acme-kudos', 'user_ana')).posted AS ana_before;
SELECT gifq_forget_member('acme-kudos', 'user_ana');
SELECT external_id, email, attributes, forgotten_at IS NOT NULL AS forgotten
FROM gifq.members WHERE external_id = 'user_ana';
SELECT count(*) AS ana_orders, count(recipient_email) AS addresses_left
FROM gifq.orders o JOIN gifq.members m ON m.id = o.member_id WHERE m.external_id = 'user_ana';
SELECT (gifq_member_balance('acme-kudos', 'user_ana')).posted AS ana_after;
SELECT count(*) AS ledger_problems FROM gifq_ledger_verify();
