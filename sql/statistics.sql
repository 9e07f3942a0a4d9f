-- A transaction that fills gifq's tables far past what their statistics
-- say analyzes them as it goes (src/statistics.c): gifq_upsert_member
-- through the trigger on gifq.members, at one statement in 64 in a
-- session; gifq_record_events at every call.  A table analyzed while
-- (nearly) empty, then filled in one transaction, ends it with statistics
-- that count that transaction's rows; a small one is left alone.
-- (test/t/012_long_transaction.pl checks what this is for: that the
-- second half of such a load reads no table whole.)
SET client_min_messages = warning;
SELECT gifq_create_program('stats', 'USD', 'PTS', 100, 'UTC') IS NOT NULL AS program;
SELECT gifq_set_rule('stats', 'task.done', 10);
ANALYZE gifq.members, gifq.events;
CREATE TEMP TABLE before AS
SELECT relname, relpages, reltuples FROM pg_class
WHERE relnamespace = 'gifq'::regnamespace AND relname IN ('members', 'events');
-- 20 members: too few to look at
BEGIN;
SELECT count(gifq_upsert_member('stats', 's' || i, NULL, NULL)) AS members
FROM generate_series(1, 20) i;
SELECT c.relname, c.relpages = b.relpages AND c.reltuples = b.reltuples AS unchanged
FROM pg_class c JOIN before b USING (relname) ORDER BY 1;
-- 3,000 members and 3,000 events in calls of 500: the tables outgrow
-- their statistics, and are analyzed within the transaction
SELECT count(gifq_upsert_member('stats', 's' || i, NULL, NULL)) AS members
FROM generate_series(21, 3000) i;
SELECT count(*) AS events FROM generate_series(1, 3000, 500) b,
	LATERAL gifq_record_events('stats', (SELECT jsonb_agg(jsonb_build_object(
		'member', 's' || i, 'event_type', 'task.done', 'idempotency_key', 'e' || i))
		FROM generate_series(b, b + 499) i));
SELECT c.relname, c.reltuples > b.reltuples + 500 AS analyzed,
	c.relpages >= 8 AS at_least_8_pages
FROM pg_class c JOIN before b USING (relname) ORDER BY 1;
COMMIT;
SELECT count(*) AS problems FROM gifq_ledger_verify();
