-- gifq--0.6.0--0.7.0.sql: recipient-choice rewards (sent, claimed, expired),
-- bulk sends, maintenance jobs scheduled with pg_cron, reporting views,
-- and cheaper event recording.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.7.0'" to load this file. \quit

------------------------------------------------------------------------
-- leaderboards kept without the executor
------------------------------------------------------------------------

-- gifq.events_points is now C (src/board_points.c): it sums the
-- statement's points per member and board and adds them to
-- gifq.member_points through the primary key (src/counters.c), as the
-- commit-time writes of gifq.board_counts now do.  The PL/pgSQL version's
-- plan started and ended the executor for every event: with the counts'
-- upsert it was four tenths of an event's CPU.  The trigger itself is
-- unchanged.
CREATE OR REPLACE FUNCTION gifq.events_points() RETURNS trigger
	AS 'MODULE_PATHNAME', 'gifq_events_points' LANGUAGE C;

-- The boards' keys put the text column period last: index entries whose
-- leading columns are all fixed-width compare through cached offsets,
-- where a text column in the middle made every later column's comparison
-- find its offset again (nocache_index_getattr), the largest part of the
-- boards' index work.  The period is then checked after the others: the
-- same rows are found, in the same order within a board (boards of
-- different periods share a period number, all time's 0, only with
-- periods long past, which gifq.board_prune removes).  The indexes are
-- rebuilt once by this update.
ALTER TABLE gifq.member_points DROP CONSTRAINT member_points_pkey,
	ADD CONSTRAINT member_points_pkey PRIMARY KEY (program_id, period_no, member_id, period);
DROP INDEX gifq.member_points_board_order;
CREATE INDEX member_points_board_order
	ON gifq.member_points (program_id, period_no, points DESC, member_id, period);
ALTER TABLE gifq.board_counts DROP CONSTRAINT board_counts_pkey,
	ADD CONSTRAINT board_counts_pkey PRIMARY KEY (program_id, period_no, level, bucket, slot, period);

------------------------------------------------------------------------
-- maintenance jobs (pg_cron)
------------------------------------------------------------------------

-- gifq works without pg_cron: nothing here names the cron schema except
-- through dynamic SQL, and nothing is scheduled by this script.  The jobs
-- are data (gifq_maintenance_jobs); gifq_schedule_jobs makes pg_cron's
-- jobs agree with them, gifq_unschedule_jobs removes them.  See
-- docs/operations.md.

-- gifq.retention: a retention setting (GUC_UNIT_S) as an interval.  The
-- value reads the same whether gifq's library is loaded ('30d') or the
-- setting is still a placeholder from postgresql.conf ('30d', '2592000').
CREATE FUNCTION gifq.retention(setting text, fallback interval) RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(nullif(pg_catalog.current_setting(setting, true), '')::interval, fallback)
$$;

-- gifq_prune: delete what gifq keeps only for a while, each past its
-- retention setting.  Never anything money-relevant: transfers, entries,
-- holds, orders, their transitions, cards and reveals, events and the
-- ledger's idempotency keys are kept for good.
CREATE FUNCTION @extschema@.gifq_prune()
RETURNS TABLE(log text, retention interval, removed bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	-- the provider-call log (the worker prunes it hourly as well)
	log := 'provider_calls';
	retention := gifq.retention('gifq.call_log_retention', '7 days');
	removed := gifq.prune_provider_calls(retention);
	RETURN NEXT;
	-- events out that are not waiting to be POSTed: sent, failed, or never
	-- meant for an endpoint
	log := 'outbox';
	retention := gifq.retention('gifq.outbox_retention', '30 days');
	WITH d AS (DELETE FROM gifq.outbox x
		WHERE x.created_at < now() - retention
			AND x.send_status IS DISTINCT FROM 'pending'
		RETURNING 1)
	SELECT count(*) INTO removed FROM d;
	RETURN NEXT;
	-- the ids of webhooks received (what makes a repeat a no-op), once
	-- their order has ended: a card.redeemed that came before its card is
	-- still read when the card is stored
	log := 'webhook_events';
	retention := gifq.retention('gifq.webhook_retention', '30 days');
	WITH d AS (DELETE FROM gifq.webhook_events w
		WHERE w.received_at < now() - retention
			AND (w.order_id IS NULL OR EXISTS (SELECT 1 FROM gifq.orders o
				WHERE o.id = w.order_id AND o.status IN ('delivered', 'failed', 'canceled')))
		RETURNING 1)
	SELECT count(*) INTO removed FROM d;
	RETURN NEXT;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_prune() IS 'delete provider calls, sent events and webhook ids past their retention settings; returns what each log lost';

-- gifq.worker_serves: is this database served by the preloaded worker
-- (gifq in shared_preload_libraries and this database named in
-- gifq.database)?  Then the worker sends orders and refreshes the
-- catalog, and pg_cron need not.  C (src/worker.c), to read gifq.database
-- exactly as the worker does.
CREATE FUNCTION gifq.worker_serves() RETURNS boolean
	AS 'MODULE_PATHNAME', 'gifq_worker_serves' LANGUAGE C STABLE;

-- gifq_maintenance_jobs: the jobs this database needs, as data.
-- skip_reason is NULL for a job to schedule.  The job names are gifq-<job>
-- in pg_cron's own database (cron.database_name), and
-- gifq-<database>-<job> for another database, whose jobs are scheduled
-- from pg_cron's database with the statements in cron_statement.
-- Reward expiry is a job as soon as gifq_expire_rewards() exists.
CREATE FUNCTION @extschema@.gifq_maintenance_jobs()
RETURNS TABLE(job_name text, schedule text, command text, database text,
	skip_reason text, cron_statement text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	served boolean := gifq.worker_serves();
	url text := coalesce(pg_catalog.current_setting('gifq.provider_url', true), '');
	card_key text := coalesce(pg_catalog.current_setting('gifq.card_key', true), '');
	refresh text := coalesce(pg_catalog.current_setting('gifq.catalog_refresh_interval', true), '300');
	prefix text := 'gifq-';
BEGIN
	IF pg_catalog.current_setting('cron.database_name', true) IS DISTINCT FROM pg_catalog.current_database() THEN
		prefix := 'gifq-' || pg_catalog.current_database() || '-';
	END IF;
	RETURN QUERY
	SELECT prefix || j.job, j.schedule, j.command, pg_catalog.current_database()::text, j.skip,
		CASE WHEN j.skip IS NULL THEN pg_catalog.format(
			'SELECT cron.schedule_in_database(%L, %L, %L, %L);',
			prefix || j.job, j.schedule, j.command, pg_catalog.current_database()) END
	FROM (VALUES
		(1, 'holds', '* * * * *', 'SELECT @extschema@.gifq_expire_holds()', NULL::text),
		(2, 'points', '*/10 * * * *', 'SELECT @extschema@.gifq_expire_points()', NULL),
		(3, 'rewards', '*/5 * * * *', 'SELECT @extschema@.gifq_expire_rewards()',
			CASE WHEN pg_catalog.to_regprocedure('@extschema@.gifq_expire_rewards()') IS NULL
				THEN 'gifq_expire_rewards() does not exist in this version of gifq' END),
		(4, 'prune', '23 * * * *', 'SELECT * FROM @extschema@.gifq_prune()', NULL),
		(5, 'boards', '41 3 * * *', 'SELECT gifq.board_prune()', NULL),
		(6, 'orders', '* * * * *', 'SELECT @extschema@.gifq_process_orders(100)',
			CASE WHEN served THEN 'the gifq worker serves this database'
				WHEN url = '' THEN 'gifq.provider_url is not set'
				WHEN card_key = '' THEN 'gifq.card_key is not set' END),
		(7, 'catalog', '*/5 * * * *', 'SELECT @extschema@.gifq_refresh_catalog()',
			CASE WHEN served THEN 'the gifq worker serves this database'
				WHEN url = '' THEN 'gifq.provider_url is not set'
				WHEN refresh IN ('0', '0s') THEN 'gifq.catalog_refresh_interval is 0' END)
	) AS j(n, job, schedule, command, skip)
	ORDER BY j.n;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_maintenance_jobs() IS 'the maintenance jobs this database needs: name, schedule, command, why one is skipped, and the pg_cron statement that schedules it';

-- gifq.cron_check: pg_cron (1.4 or later, for cron.schedule_in_database
-- and cron.alter_job) is installed and this is its database, or QG601 /
-- QG602 say what is wrong.
CREATE FUNCTION gifq.cron_check() RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cron_db text := pg_catalog.current_setting('cron.database_name', true);
BEGIN
	IF cron_db IS NULL OR (cron_db = pg_catalog.current_database()
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron'))
	THEN
		RAISE EXCEPTION USING ERRCODE = 'QG601',
			MESSAGE = 'pg_cron is not installed',
			DETAIL = CASE WHEN cron_db IS NULL THEN 'pg_cron is not in shared_preload_libraries.'
				ELSE pg_catalog.format('Database "%s" has no extension pg_cron.', cron_db) END,
			HINT = 'Install pg_cron (shared_preload_libraries, then CREATE EXTENSION pg_cron in cron.database_name), or run the commands of gifq_maintenance_jobs() on a schedule of your own.';
	END IF;
	IF cron_db <> pg_catalog.current_database() THEN
		RAISE EXCEPTION USING ERRCODE = 'QG602',
			MESSAGE = pg_catalog.format('pg_cron runs in database "%s", not in "%s"',
				cron_db, pg_catalog.current_database()),
			HINT = pg_catalog.format('Run the cron_statement of each row of gifq_maintenance_jobs() in database "%s", e.g. psql -d %s -Atc "SELECT cron_statement FROM gifq_maintenance_jobs() WHERE cron_statement IS NOT NULL" | psql -d %s.',
				cron_db, pg_catalog.quote_ident(pg_catalog.current_database()), pg_catalog.quote_ident(cron_db));
	END IF;
	IF pg_catalog.to_regprocedure('cron.schedule_in_database(text,text,text,text,text,boolean)') IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG601',
			MESSAGE = pg_catalog.format('pg_cron %s is too old',
				(SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')),
			DETAIL = 'gifq schedules its jobs with cron.schedule_in_database, from pg_cron 1.4.',
			HINT = 'Install pg_cron 1.4 or later and run ALTER EXTENSION pg_cron UPDATE.';
	END IF;
END $$;

-- gifq_schedule_jobs: make pg_cron's jobs of this database agree with
-- gifq_maintenance_jobs(), and say what was done to each: scheduled,
-- updated, unchanged, skipped (with the reason), or unscheduled (a gifq
-- job that is no longer wanted, e.g. gifq-orders once the worker serves
-- the database).  Idempotent.  The jobs run as the extension's owner.
CREATE FUNCTION @extschema@.gifq_schedule_jobs()
RETURNS TABLE(job_name text, schedule text, command text, action text, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	j record;
	id bigint;
	old_schedule text;
	old_command text;
	old_database text;
	old_active boolean;
BEGIN
	PERFORM gifq.cron_check();
	FOR j IN SELECT * FROM @extschema@.gifq_maintenance_jobs() LOOP
		EXECUTE 'SELECT jobid, schedule, command, database, active FROM cron.job'
			' WHERE jobname = $1 AND username = current_user'
		INTO id, old_schedule, old_command, old_database, old_active
		USING j.job_name;
		job_name := j.job_name;
		schedule := j.schedule;
		command := j.command;
		reason := j.skip_reason;
		IF j.skip_reason IS NOT NULL THEN
			IF id IS NULL THEN
				action := 'skipped';
			ELSE
				EXECUTE 'SELECT cron.unschedule($1)' USING id;
				action := 'unscheduled';
			END IF;
		ELSIF id IS NULL THEN
			EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4)'
				USING j.job_name, j.schedule, j.command, j.database;
			action := 'scheduled';
		ELSIF old_schedule = j.schedule AND old_command = j.command
			AND old_database = j.database AND old_active THEN
			action := 'unchanged';
		ELSE
			EXECUTE 'SELECT cron.alter_job($1, $2, $3, $4, NULL, true)'
				USING id, j.schedule, j.command, j.database;
			action := 'updated';
		END IF;
		RETURN NEXT;
	END LOOP;
	-- gifq's jobs of this database that the list no longer has
	FOR j IN EXECUTE 'SELECT jobid, jobname, schedule, command FROM cron.job'
		' WHERE jobname LIKE ''gifq-%'' AND username = current_user AND database = current_database()'
		' AND jobname <> ALL ($1) ORDER BY jobname'
		USING ARRAY(SELECT m.job_name FROM @extschema@.gifq_maintenance_jobs() m)
	LOOP
		EXECUTE 'SELECT cron.unschedule($1)' USING j.jobid;
		job_name := j.jobname;
		schedule := j.schedule;
		command := j.command;
		action := 'unscheduled';
		reason := 'no longer a gifq job';
		RETURN NEXT;
	END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_schedule_jobs() IS 'schedule gifq''s maintenance jobs with pg_cron (idempotent); returns what was done to each';

-- gifq_unschedule_jobs: remove gifq's jobs of this database (named gifq-*,
-- scheduled by the extension's owner) and return them.
CREATE FUNCTION @extschema@.gifq_unschedule_jobs()
RETURNS TABLE(job_name text, schedule text, command text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	j record;
BEGIN
	PERFORM gifq.cron_check();
	FOR j IN EXECUTE 'SELECT jobid, jobname, schedule, command FROM cron.job'
		' WHERE jobname LIKE ''gifq-%'' AND username = current_user AND database = current_database()'
		' ORDER BY jobname'
	LOOP
		EXECUTE 'SELECT cron.unschedule($1)' USING j.jobid;
		job_name := j.jobname;
		schedule := j.schedule;
		command := j.command;
		RETURN NEXT;
	END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_unschedule_jobs() IS 'remove gifq''s pg_cron jobs of this database; returns the jobs removed';

CREATE FUNCTION @extschema@.gifq_refresh_catalog() RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.gifq_refresh_catalog() IS 'load the provider''s catalog from this session, when the worker does not serve the database; returns loaded or unchanged';

REVOKE ALL ON FUNCTION
	@extschema@.gifq_prune(),
	@extschema@.gifq_maintenance_jobs(),
	@extschema@.gifq_schedule_jobs(),
	@extschema@.gifq_unschedule_jobs(),
	@extschema@.gifq_refresh_catalog()
FROM PUBLIC;
REVOKE ALL ON FUNCTION gifq.retention(text, interval), gifq.worker_serves(),
	gifq.cron_check()
FROM PUBLIC;

------------------------------------------------------------------------
-- reporting views
------------------------------------------------------------------------

-- Reporting views, in schema gifq, for the role gifq_reader (see
-- docs/reporting.md).  Months and years are the program's, in its time
-- zone; money columns are gifq_money, one row per currency.  The views
-- call only public functions, so SELECT on them is all a reader needs.

-- Orders by program and month of creation: how they ended.
CREATE VIEW gifq.order_outcomes AS
SELECT p.code AS program,
	date_trunc('month', o.created_at AT TIME ZONE p.timezone)::date AS month,
	count(*) AS orders,
	count(*) FILTER (WHERE o.status = 'delivered') AS delivered,
	count(*) FILTER (WHERE o.status = 'failed') AS failed,
	count(*) FILTER (WHERE o.status = 'canceled') AS canceled,
	count(*) FILTER (WHERE o.status IN ('pending', 'submitted', 'processing')) AS open,
	round(count(*) FILTER (WHERE o.status = 'delivered')::numeric
		/ nullif(count(*) FILTER (WHERE o.status IN ('delivered', 'failed')), 0), 4)
		AS success_rate
FROM gifq.orders o
JOIN gifq.programs p ON p.id = o.program_id
GROUP BY p.code, 2;

-- Failed orders by program, month of creation and reason: the provider's
-- status and error code ('provider 400: brand_unavailable'), or gifq's
-- own error text.
CREATE VIEW gifq.order_failures AS
SELECT p.code AS program,
	date_trunc('month', o.created_at AT TIME ZONE p.timezone)::date AS month,
	coalesce(substring(coalesce(o.last_error, o.status_reason) FROM '^provider [0-9]+: [^:]+'),
		coalesce(o.last_error, o.status_reason, 'no reason given')) AS reason,
	count(*) AS orders
FROM gifq.orders o
JOIN gifq.programs p ON p.id = o.program_id
WHERE o.status = 'failed'
GROUP BY p.code, 2, 3;

-- Provider calls by UTC day and kind, over the call log's retention.
CREATE VIEW gifq.provider_latency_daily AS
SELECT (c.at AT TIME ZONE 'UTC')::date AS day, c.call, count(*) AS calls,
	count(*) FILTER (WHERE c.http_status IS NULL OR c.http_status >= 500
		OR c.http_status = 429) AS transient_errors,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY c.latency_ms) AS p50_ms,
	percentile_cont(0.95) WITHIN GROUP (ORDER BY c.latency_ms) AS p95_ms,
	percentile_cont(0.99) WITHIN GROUP (ORDER BY c.latency_ms) AS p99_ms,
	max(c.latency_ms) AS max_ms
FROM gifq.provider_calls c
GROUP BY 1, 2;

-- Time to reward: from redemption (created_at) to delivery, of the
-- orders delivered in each month.
CREATE VIEW gifq.time_to_reward AS
SELECT p.code AS program,
	date_trunc('month', o.delivered_at AT TIME ZONE p.timezone)::date AS month,
	count(*) AS delivered,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY o.delivered_at - o.created_at) AS p50,
	percentile_cont(0.95) WITHIN GROUP (ORDER BY o.delivered_at - o.created_at) AS p95,
	percentile_cont(0.99) WITHIN GROUP (ORDER BY o.delivered_at - o.created_at) AS p99,
	max(o.delivered_at - o.created_at) AS max
FROM gifq.orders o
JOIN gifq.programs p ON p.id = o.program_id
WHERE o.status = 'delivered'
GROUP BY p.code, 2;

-- Spend: delivered orders by month of delivery, at face value (what the
-- recipients got) and at cost (what the provider charged), with the
-- margin between them and the points they took.
CREATE VIEW gifq.spend_by_program AS
SELECT p.code AS program,
	date_trunc('month', o.delivered_at AT TIME ZONE p.timezone)::date AS month,
	o.currency, count(*) AS orders,
	@extschema@.gifq_from_minor_units(sum(o.amount)::bigint, o.currency) AS face_value,
	@extschema@.gifq_from_minor_units(sum(o.cost)::bigint, o.currency) AS cost,
	@extschema@.gifq_from_minor_units(sum(o.margin)::bigint, o.currency) AS margin,
	round(100 * sum(o.margin) / nullif(sum(o.amount), 0), 2) AS margin_pct,
	@extschema@.gifq_from_minor_units(sum(o.points)::bigint, o.points_code) AS points
FROM gifq.orders o
JOIN gifq.programs p ON p.id = o.program_id
WHERE o.status = 'delivered'
GROUP BY p.code, 2, o.currency, o.points_code;

CREATE VIEW gifq.spend_by_brand AS
SELECT p.code AS program,
	date_trunc('month', o.delivered_at AT TIME ZONE p.timezone)::date AS month,
	o.brand_id, b.name AS brand, o.currency, count(*) AS orders,
	@extschema@.gifq_from_minor_units(sum(o.amount)::bigint, o.currency) AS face_value,
	@extschema@.gifq_from_minor_units(sum(o.cost)::bigint, o.currency) AS cost,
	@extschema@.gifq_from_minor_units(sum(o.margin)::bigint, o.currency) AS margin,
	round(100 * sum(o.margin) / nullif(sum(o.amount), 0), 2) AS margin_pct
FROM gifq.orders o
JOIN gifq.programs p ON p.id = o.program_id
LEFT JOIN gifq.brands b ON b.id = o.brand_id
WHERE o.status = 'delivered'
GROUP BY p.code, 2, o.brand_id, b.name, o.currency;

-- An order counts in each category of its brand (so categories can add
-- up to more than the program's spend); a brand without one, under NULL.
CREATE VIEW gifq.spend_by_category AS
SELECT p.code AS program,
	date_trunc('month', o.delivered_at AT TIME ZONE p.timezone)::date AS month,
	c.category, o.currency, count(*) AS orders,
	@extschema@.gifq_from_minor_units(sum(o.amount)::bigint, o.currency) AS face_value,
	@extschema@.gifq_from_minor_units(sum(o.cost)::bigint, o.currency) AS cost,
	@extschema@.gifq_from_minor_units(sum(o.margin)::bigint, o.currency) AS margin,
	round(100 * sum(o.margin) / nullif(sum(o.amount), 0), 2) AS margin_pct
FROM gifq.orders o
JOIN gifq.programs p ON p.id = o.program_id
LEFT JOIN gifq.brands b ON b.id = o.brand_id
LEFT JOIN LATERAL unnest(b.categories) AS c(category) ON true
WHERE o.status = 'delivered'
GROUP BY p.code, 2, c.category, o.currency;

-- Average order value: delivered orders by month of delivery, the mean
-- face value and points (the gifq_money division: half to even, to the
-- minor unit).
CREATE VIEW gifq.average_order_value AS
SELECT p.code AS program,
	date_trunc('month', o.delivered_at AT TIME ZONE p.timezone)::date AS month,
	o.currency, count(*) AS orders,
	@extschema@.gifq_from_minor_units(sum(o.amount)::bigint, o.currency)
		OPERATOR(@extschema@./) count(*)::numeric AS average_value,
	@extschema@.gifq_from_minor_units(sum(o.points)::bigint, o.points_code)
		OPERATOR(@extschema@./) count(*)::numeric AS average_points
FROM gifq.orders o
JOIN gifq.programs p ON p.id = o.program_id
WHERE o.status = 'delivered'
GROUP BY p.code, 2, o.currency, o.points_code;

-- Redemption conversion, per program, now: of the members with enough
-- points for a card (their available points reach the program's cheapest
-- card, or they have redeemed: they had enough then), the share who have
-- redeemed (an order that was not canceled and did not fail).  The
-- cheapest card: the smallest face value of any brand in stock and not
-- discontinued, in a currency the program has a rate for, in points
-- (rounded up, as gifq_redeem converts), whatever the brand's country.
CREATE VIEW gifq.redemption_conversion AS
WITH cheapest AS (
	SELECT p.id AS program_id,
		min(ceil(@extschema@.gifq_amount(@extschema@.gifq_from_minor_units(
			least((SELECT min(d) FROM unnest(b.denominations) d), b.min_value), b.currency))
			* CASE WHEN b.currency = p.currency THEN p.points_per_unit
				ELSE r.points_per_unit END))::bigint AS points
	FROM gifq.programs p
	JOIN gifq.brands b ON b.in_stock AND b.discontinued_at IS NULL
	LEFT JOIN gifq.rates r ON r.program_id = p.id AND r.currency = b.currency
	WHERE b.currency = p.currency OR r.points_per_unit IS NOT NULL
	GROUP BY p.id
), available AS (
	SELECT a.member_id, sum(s.credits_posted - s.debits_posted - s.debits_pending) AS points
	FROM gifq.accounts a
	JOIN gifq.programs p ON p.id = a.program_id AND a.currency = p.points_code
	JOIN gifq.account_slots s ON s.account_id = a.id
	WHERE a.kind = 'points'
	GROUP BY a.member_id
), redeemers AS (
	SELECT DISTINCT o.member_id FROM gifq.orders o
	WHERE o.status NOT IN ('canceled', 'failed')
), m AS (
	SELECT m.program_id, r.member_id IS NOT NULL AS redeemed,
		r.member_id IS NOT NULL OR coalesce(a.points, 0) >= c.points AS eligible
	FROM gifq.members m
	LEFT JOIN available a ON a.member_id = m.id
	LEFT JOIN redeemers r ON r.member_id = m.id
	LEFT JOIN cheapest c ON c.program_id = m.program_id
)
SELECT p.code AS program,
	count(m.program_id) AS members,
	count(*) FILTER (WHERE m.eligible) AS eligible,
	count(*) FILTER (WHERE m.redeemed) AS redeemed,
	round(count(*) FILTER (WHERE m.redeemed)::numeric
		/ nullif(count(*) FILTER (WHERE m.eligible), 0), 4) AS conversion_rate,
	@extschema@.gifq_from_minor_units(c.points, p.points_code) AS cheapest_card_points
FROM gifq.programs p
LEFT JOIN m ON m.program_id = p.id
LEFT JOIN cheapest c ON c.program_id = p.id
GROUP BY p.code, p.points_code, c.points;

-- Per recipient (the member who redeemed) and calendar year in the
-- program's time zone: the orders that count toward the yearly flag
-- (canceled and failed left out) and their points; flagged: the order
-- that reached the program's recipient_yearly_flag level raised the flag
-- (gifq.member_flags), flag_level the level it was raised at, or, before
-- that, the program's current level in points.
CREATE VIEW gifq.recipient_yearly_totals AS
SELECT p.code AS program, m.external_id AS member, t.year, t.orders,
	@extschema@.gifq_from_minor_units(t.points, p.points_code) AS points,
	@extschema@.gifq_from_minor_units(coalesce(f.level,
		CASE WHEN @extschema@.gifq_currency(l.recipient_yearly_flag) = p.points_code
			THEN @extschema@.gifq_minor_units(l.recipient_yearly_flag)
			ELSE ceil(@extschema@.gifq_amount(l.recipient_yearly_flag) * p.points_per_unit)::bigint
		END), p.points_code) AS flag_level,
	f.member_id IS NOT NULL AS flagged,
	f.flagged_at
FROM (SELECT o.program_id, o.member_id,
		extract(year FROM o.created_at AT TIME ZONE p.timezone)::integer AS year,
		count(*) AS orders, sum(o.points)::bigint AS points
	FROM gifq.orders o
	JOIN gifq.programs p ON p.id = o.program_id
	WHERE o.status NOT IN ('canceled', 'failed')
	GROUP BY 1, 2, 3) t
JOIN gifq.programs p ON p.id = t.program_id
JOIN gifq.members m ON m.id = t.member_id
LEFT JOIN gifq.limits l ON l.program_id = t.program_id
LEFT JOIN gifq.member_flags f ON f.member_id = t.member_id
	AND f.flag = 'recipient_yearly_flag' AND f.period = t.year::text;

-- Outbound webhooks (events POSTed to gifq.events_url) by UTC day of the
-- event and type: how many were sent, failed for good, or wait; the
-- success rate of those that ended; attempts and delay of the sent ones.
CREATE VIEW gifq.webhook_delivery AS
SELECT (x.created_at AT TIME ZONE 'UTC')::date AS day, x.event_type,
	count(*) AS events,
	count(*) FILTER (WHERE x.send_status = 'sent') AS sent,
	count(*) FILTER (WHERE x.send_status = 'failed') AS failed,
	count(*) FILTER (WHERE x.send_status = 'pending') AS pending,
	round(count(*) FILTER (WHERE x.send_status = 'sent')::numeric
		/ nullif(count(*) FILTER (WHERE x.send_status IN ('sent', 'failed')), 0), 4)
		AS success_rate,
	round(avg(x.send_attempts) FILTER (WHERE x.send_status = 'sent'), 2) AS attempts_per_sent,
	percentile_cont(0.95) WITHIN GROUP (ORDER BY x.sent_at - x.created_at)
		FILTER (WHERE x.send_status = 'sent') AS p95_delay
FROM gifq.outbox x
WHERE x.send_status IS NOT NULL
GROUP BY 1, 2;

COMMENT ON VIEW gifq.order_outcomes IS 'orders by program and month of creation: delivered, failed, canceled, open, success rate';
COMMENT ON VIEW gifq.order_failures IS 'failed orders by program, month of creation and reason';
COMMENT ON VIEW gifq.provider_latency_daily IS 'provider calls by UTC day and kind: transient errors and latency percentiles';
COMMENT ON VIEW gifq.time_to_reward IS 'percentiles of redemption-to-delivery time, by program and month of delivery';
COMMENT ON VIEW gifq.spend_by_program IS 'delivered orders by program, month and currency: face value, cost, margin, points';
COMMENT ON VIEW gifq.spend_by_brand IS 'delivered orders by program, month, brand and currency: face value, cost, margin';
COMMENT ON VIEW gifq.spend_by_category IS 'delivered orders by program, month, brand category and currency: face value, cost, margin';
COMMENT ON VIEW gifq.average_order_value IS 'mean face value and points of delivered orders, by program, month and currency';
COMMENT ON VIEW gifq.redemption_conversion IS 'members who redeemed over members with enough points for the cheapest card, per program';
COMMENT ON VIEW gifq.recipient_yearly_totals IS 'each member''s orders and points per year, with the recipient_yearly_flag level and whether it was reached';
COMMENT ON VIEW gifq.webhook_delivery IS 'events for gifq.events_url by UTC day and type: sent, failed, pending, success rate, delay';

-- gifq_reader: reads the reports.  Roles are cluster-wide: one made here
-- stays after DROP EXTENSION gifq and serves every database's gifq.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'gifq_reader') THEN
		CREATE ROLE gifq_reader NOLOGIN;
	END IF;
END $$;
GRANT USAGE ON SCHEMA gifq TO gifq_reader;
GRANT SELECT ON gifq.order_success, gifq.provider_latency, gifq.worker,
	gifq.order_outcomes, gifq.order_failures, gifq.provider_latency_daily,
	gifq.time_to_reward, gifq.spend_by_program, gifq.spend_by_brand,
	gifq.spend_by_category, gifq.average_order_value, gifq.redemption_conversion,
	gifq.recipient_yearly_totals, gifq.webhook_delivery
TO gifq_reader;
GRANT EXECUTE ON FUNCTION gifq.worker_status() TO gifq_reader;

------------------------------------------------------------------------
-- recipient-choice rewards
------------------------------------------------------------------------

-- A reward: value held for a recipient (an email address), who claims it
-- with a secret token and picks a brand from the reward's menu; the claim
-- becomes an order.  value is in minor units of currency.  brands,
-- categories and countries restrict the menu (NULL: no restriction).
-- token_hash is the SHA-256 of the claim token; the token itself is not
-- kept here (only a threshold reward's travels, in its reward.issued
-- outbox event, to reach the platform).  hold_id is the funding -> liability hold of the face value
-- (NULL only inside the transaction that sends the reward); order_id the
-- order a claim made; member_id and threshold_id name the member and
-- threshold of a reward a threshold issued.
-- Statuses: pending -> claimed | expired.  No CHECK or foreign keys, as
-- for orders: only gifq's functions write this table, and
-- gifq_ledger_verify() checks its rows.
CREATE TABLE gifq.rewards (
	id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	program_id bigint NOT NULL,
	recipient_email text NOT NULL,
	value bigint NOT NULL,
	currency text NOT NULL,
	brands text[],
	categories text[],
	countries text[],
	expires_at timestamptz NOT NULL,
	idempotency_key text NOT NULL,
	token_hash bytea NOT NULL,
	status text NOT NULL DEFAULT 'pending',
	hold_id bigint,
	order_id bigint,
	member_id bigint,
	threshold_id bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	created_by text NOT NULL,
	claimed_at timestamptz,
	expired_at timestamptz,
	UNIQUE (program_id, idempotency_key)
);
CREATE UNIQUE INDEX rewards_token ON gifq.rewards (token_hash);
CREATE INDEX rewards_due ON gifq.rewards (expires_at) WHERE status = 'pending';
SELECT pg_catalog.pg_extension_config_dump('gifq.rewards', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.rewards_id_seq', '');

-- A claimed reward's order has no member and no points hold: its only
-- hold is the funding at cost, placed when the reward's hold is voided.
ALTER TABLE gifq.orders ALTER COLUMN member_id DROP NOT NULL,
	ADD COLUMN reward_id bigint;
CREATE UNIQUE INDEX orders_reward ON gifq.orders (reward_id) WHERE reward_id IS NOT NULL;

-- A reward threshold's hit names the reward it issued.
ALTER TABLE gifq.threshold_hits ADD COLUMN reward_id bigint;

-- Claim tokens and the batch's holds (src/rewards.c).
CREATE FUNCTION gifq.reward_token() RETURNS text
	AS 'MODULE_PATHNAME', 'gifq_reward_token' LANGUAGE C VOLATILE;
CREATE FUNCTION gifq.reward_token_hash(token text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'gifq_reward_token_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION gifq.reward_token_matches(token text, stored bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'gifq_reward_token_matches' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION gifq.card_cost(units bigint, discount_pct numeric) RETURNS bigint
	AS 'MODULE_PATHNAME', 'gifq_card_cost' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION gifq.reward_holds(debit bigint, credit bigint, currency text,
	amounts bigint[], reward_ids bigint[]) RETURNS bigint[]
	AS 'MODULE_PATHNAME', 'gifq_reward_holds' LANGUAGE C VOLATILE STRICT
	SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION gifq.void_holds(holds bigint[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'gifq_void_holds' LANGUAGE C VOLATILE STRICT
	SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION gifq.wake_worker() RETURNS void
	AS 'MODULE_PATHNAME', 'gifq_wake_worker' LANGUAGE C VOLATILE;

-- gifq.reward_problem: what is wrong with one reward to send, or NULL.
-- e is the element of a batch (or the single call as one); checks every
-- field but the value, which the caller parses.
CREATE FUNCTION gifq.reward_problem(e jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	k text;
	f text;
BEGIN
	IF jsonb_typeof(e) IS DISTINCT FROM 'object' THEN
		RETURN 'not an object';
	END IF;
	FOR k IN SELECT jsonb_object_keys(e) LOOP
		IF k NOT IN ('recipient_email', 'value', 'idempotency_key', 'brands',
			'categories', 'countries', 'expires_at') THEN
			RETURN format('unknown field "%s"', k);
		END IF;
	END LOOP;
	IF jsonb_typeof(e -> 'recipient_email') IS DISTINCT FROM 'string'
		OR length(e ->> 'recipient_email') > 320
		OR (e ->> 'recipient_email') !~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$' THEN
		RETURN format('invalid recipient_email %s', coalesce((e -> 'recipient_email')::text, 'NULL'));
	END IF;
	IF jsonb_typeof(e -> 'idempotency_key') IS DISTINCT FROM 'string'
		OR length(e ->> 'idempotency_key') NOT BETWEEN 1 AND 200 THEN
		RETURN format('invalid idempotency_key %s', coalesce((e -> 'idempotency_key')::text, 'NULL'));
	END IF;
	IF jsonb_typeof(e -> 'value') IS DISTINCT FROM 'string' THEN
		RETURN format('invalid value %s', coalesce((e -> 'value')::text, 'NULL'));
	END IF;
	FOREACH f IN ARRAY ARRAY['brands', 'categories', 'countries'] LOOP
		IF coalesce(jsonb_typeof(e -> f), 'null') <> 'null' AND (jsonb_typeof(e -> f) <> 'array'
			OR jsonb_array_length(e -> f) = 0
			OR EXISTS (SELECT 1 FROM jsonb_array_elements(e -> f) x
				WHERE jsonb_typeof(x) <> 'string' OR x #>> '{}' = ''
					OR (f = 'countries' AND x #>> '{}' !~ '^[A-Z]{2}$'))) THEN
			RETURN format('invalid %s %s (a non-empty array of %s, or null for no restriction)',
				f, e -> f, CASE WHEN f = 'countries' THEN 'ISO 3166-1 alpha-2 codes' ELSE 'strings' END);
		END IF;
	END LOOP;
	IF coalesce(jsonb_typeof(e -> 'expires_at'), 'null') NOT IN ('null', 'string') THEN
		RETURN format('invalid expires_at %s', e -> 'expires_at');
	END IF;
	RETURN NULL;
END $$;

-- gifq.reward_array: a menu field of a batch element as text[] (NULL:
-- absent or null).
CREATE FUNCTION gifq.reward_array(e jsonb, f text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN jsonb_typeof(e -> f) = 'array'
		THEN ARRAY(SELECT jsonb_array_elements_text(e -> f)) END
$$;

-- gifq.send_rewards: send the rewards of a checked batch in program _pid,
-- all or none.  Each element of _rewards has recipient_email, value
-- (gifq_money text), idempotency_key, brands, categories, countries
-- (arrays or null) and expires_at (a time, or null for _default_expiry).
-- _single: the call came from gifq_send_reward (errors then name no
-- element).  Returns one row per element in order: the reward, its claim
-- token (NULL for a replay of an earlier send), status and whether it is
-- new.
--
-- Order: parse and check every element; refuse a key used twice in the
-- batch; compare the elements whose key was used before with the
-- reward it made (a replay, or QG109); refuse up front, with the
-- shortfall, a currency whose funding cannot cover the new rewards'
-- total; insert the rewards (one statement; a key a concurrent call
-- took meanwhile is then compared like a replay); hold each currency's
-- rewards with one gifq.reward_holds call.
CREATE FUNCTION gifq.send_rewards(_pid bigint, _program text, _rewards jsonb,
	_default_expiry timestamptz, _single boolean, _member bigint DEFAULT NULL,
	_threshold bigint DEFAULT NULL)
RETURNS TABLE(n integer, reward_id bigint, recipient_email text, claim_token text,
	status text, created boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	e jsonb;
	i integer := 0;
	problem text;
	v @extschema@.gifq_money;
	units bigint[] := '{}';
	curs text[] := '{}';
	expiry timestamptz[] := '{}';
	x record;
	what text;
	funding bigint;
	avail bigint;
	holds bigint[];
BEGIN
	IF jsonb_typeof(_rewards) IS DISTINCT FROM 'array' OR jsonb_array_length(_rewards) = 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG118',
			MESSAGE = format('invalid reward batch %s', left(coalesce(_rewards::text, 'NULL'), 200)),
			HINT = 'Give a non-empty JSON array of objects with recipient_email, value and idempotency_key.';
	END IF;
	FOR e IN SELECT a.e FROM jsonb_array_elements(_rewards) a(e) LOOP
		i := i + 1;
		what := CASE WHEN _single THEN '' ELSE format(' in reward %s of batch', i) END;
		problem := gifq.reward_problem(e);
		IF problem IS NULL THEN
			BEGIN
				v := (e ->> 'value')::@extschema@.gifq_money;
			EXCEPTION WHEN OTHERS THEN
				problem := format('invalid value %s', e -> 'value');
			END;
		END IF;
		IF problem IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = CASE WHEN _single THEN 'QG115' ELSE 'QG118' END,
				MESSAGE = problem || what,
				HINT = 'A reward needs recipient_email (an address), value (such as ''25.00 USD'') and idempotency_key (1 to 200 characters); brands, categories and countries are null or non-empty arrays; expires_at is a future time.';
		END IF;
		IF @extschema@.gifq_minor_units(v) <= 0 THEN
			RAISE EXCEPTION USING ERRCODE = 'QG104',
				MESSAGE = format('reward value %s is not positive%s', v, what),
				HINT = 'Give the reward''s face value, such as ''25.00 USD''.';
		END IF;
		units := units || @extschema@.gifq_minor_units(v);
		curs := curs || @extschema@.gifq_currency(v);
		BEGIN
			expiry := expiry || coalesce((e ->> 'expires_at')::timestamptz, _default_expiry);
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_parameter_value THEN
			RAISE EXCEPTION USING ERRCODE = CASE WHEN _single THEN 'QG115' ELSE 'QG118' END,
				MESSAGE = format('invalid expires_at %s%s', e -> 'expires_at', what),
				HINT = 'Give a time such as ''2026-12-31T23:59:59Z'', or null for 30 days from now.';
		END;
		IF expiry[i] IS NULL OR expiry[i] <= now() THEN
			RAISE EXCEPTION USING ERRCODE = 'QG115',
				MESSAGE = format('reward expiry %s is not in the future%s', coalesce(expiry[i]::text, 'NULL'), what),
				HINT = 'Give an expires_at after now.';
		END IF;
	END LOOP;

	-- the batch, in a table of this function's owner: one the caller made
	-- under that name (which could carry triggers) is dropped first
	IF to_regclass('pg_temp.gifq_rewards_in') IS NOT NULL THEN
		DROP TABLE pg_temp.gifq_rewards_in;
	END IF;
	CREATE TEMP TABLE gifq_rewards_in (n integer PRIMARY KEY, e jsonb, units bigint,
		currency text, expires_at timestamptz, reward_id bigint, token text)
		ON COMMIT DROP;
	INSERT INTO gifq_rewards_in (n, e, units, currency, expires_at)
	SELECT a.n, a.e, units[a.n], curs[a.n], expiry[a.n]
	FROM jsonb_array_elements(_rewards) WITH ORDINALITY a(e, n);

	-- one key, one reward
	SELECT min(b.n) AS n, b.e ->> 'idempotency_key' AS k INTO x
	FROM gifq_rewards_in b GROUP BY 2 HAVING count(*) > 1 ORDER BY 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG118',
			MESSAGE = format('idempotency key "%s" of reward %s is used again later in the batch', x.k, x.n),
			HINT = 'Give each reward of a batch its own idempotency key.';
	END IF;

	-- replays: the same key with the same fields returns the first reward
	-- (expires_at is not compared: its default moves with the clock)
	PERFORM gifq.reward_replays(_pid, _single);

	-- the funding of each currency covers the new rewards
	FOR x IN SELECT b.currency, sum(b.units)::bigint AS total FROM gifq_rewards_in b
		WHERE b.reward_id IS NULL GROUP BY b.currency ORDER BY b.currency
	LOOP
		SELECT a.id INTO funding FROM gifq.accounts a
		WHERE a.program_id = _pid AND a.member_id IS NULL AND a.code = 'funding'
			AND a.currency = x.currency;
		avail := coalesce((SELECT sum(s.credits_posted - s.debits_posted - s.debits_pending)::bigint
			FROM gifq.account_slots s WHERE s.account_id = funding), 0);
		IF avail < x.total THEN
			RAISE EXCEPTION USING ERRCODE = 'QG209',
				MESSAGE = format('program "%s" has %s of funding available, the rewards need %s',
					_program, @extschema@.gifq_from_minor_units(avail, x.currency),
					@extschema@.gifq_from_minor_units(x.total, x.currency)),
				DETAIL = format('The funding is short by %s.',
					@extschema@.gifq_from_minor_units(x.total - avail, x.currency)),
				HINT = format('Add funding in %s with gifq_fund(), or send fewer or smaller rewards.', x.currency);
		END IF;
	END LOOP;

	-- the new rewards, their tokens returned and only their hashes kept
	WITH src AS MATERIALIZED (
		SELECT b.n, b.e, b.units, b.currency, b.expires_at, gifq.reward_token() AS token
		FROM gifq_rewards_in b WHERE b.reward_id IS NULL
	), ins AS (
		INSERT INTO gifq.rewards AS r (program_id, recipient_email, value, currency, brands,
			categories, countries, expires_at, idempotency_key, token_hash, member_id,
			threshold_id, created_by)
		SELECT _pid, s.e ->> 'recipient_email', s.units, s.currency,
			gifq.reward_array(s.e, 'brands'), gifq.reward_array(s.e, 'categories'),
			gifq.reward_array(s.e, 'countries'), s.expires_at, s.e ->> 'idempotency_key',
			gifq.reward_token_hash(s.token), _member, _threshold, gifq.actor()
		FROM src s ORDER BY s.n
		ON CONFLICT (program_id, idempotency_key) DO NOTHING
		RETURNING r.id, r.idempotency_key
	)
	UPDATE gifq_rewards_in b SET reward_id = ins.id, token = s.token
	FROM src s JOIN ins ON ins.idempotency_key = s.e ->> 'idempotency_key'
	WHERE b.n = s.n;

	-- a key taken by a concurrent call since the check above: a replay too
	IF EXISTS (SELECT 1 FROM gifq_rewards_in b WHERE b.reward_id IS NULL) THEN
		PERFORM gifq.reward_replays(_pid, _single);
	END IF;

	-- hold each currency's new rewards
	FOR x IN SELECT b.currency, array_agg(b.units ORDER BY b.n) AS amounts,
			array_agg(b.reward_id ORDER BY b.n) AS ids
		FROM gifq_rewards_in b WHERE b.token IS NOT NULL
		GROUP BY b.currency ORDER BY b.currency
	LOOP
		SELECT a.id INTO funding FROM gifq.accounts a
		WHERE a.program_id = _pid AND a.member_id IS NULL AND a.code = 'funding'
			AND a.currency = x.currency;
		holds := gifq.reward_holds(funding, gifq.system_account(_pid, 'liability', x.currency),
			x.currency, x.amounts, x.ids);
		UPDATE gifq.rewards r SET hold_id = u.h
		FROM unnest(x.ids, holds) u(id, h) WHERE r.id = u.id;
	END LOOP;

	RETURN QUERY
	SELECT b.n, b.reward_id, r.recipient_email, b.token, r.status, b.token IS NOT NULL
	FROM pg_temp.gifq_rewards_in b JOIN gifq.rewards r ON r.id = b.reward_id
	ORDER BY b.n;
	DROP TABLE pg_temp.gifq_rewards_in;
END $$;

-- gifq.reward_replays: match the batch's elements without a reward yet
-- (gifq_rewards_in) to the rewards their keys made before: the same
-- fields make a replay (the element takes that reward, without a token);
-- any field different is QG109, naming it.
CREATE FUNCTION gifq.reward_replays(_pid bigint, _single boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	x record;
BEGIN
	SELECT b.n, b.e ->> 'idempotency_key' AS k,
		CASE WHEN r.recipient_email <> b.e ->> 'recipient_email' THEN 'recipient_email'
			WHEN r.value <> b.units OR r.currency <> b.currency THEN 'value'
			WHEN r.brands IS DISTINCT FROM gifq.reward_array(b.e, 'brands') THEN 'brands'
			WHEN r.categories IS DISTINCT FROM gifq.reward_array(b.e, 'categories') THEN 'categories'
			WHEN r.countries IS DISTINCT FROM gifq.reward_array(b.e, 'countries') THEN 'countries'
		END AS field
	INTO x
	FROM gifq_rewards_in b JOIN gifq.rewards r
		ON r.program_id = _pid AND r.idempotency_key = b.e ->> 'idempotency_key'
	WHERE b.reward_id IS NULL
		AND (r.recipient_email <> b.e ->> 'recipient_email' OR r.value <> b.units
			OR r.currency <> b.currency
			OR r.brands IS DISTINCT FROM gifq.reward_array(b.e, 'brands')
			OR r.categories IS DISTINCT FROM gifq.reward_array(b.e, 'categories')
			OR r.countries IS DISTINCT FROM gifq.reward_array(b.e, 'countries'))
	ORDER BY b.n LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG109',
			MESSAGE = format('idempotency key "%s" was used for a reward with a different %s%s',
				x.k, x.field, CASE WHEN _single THEN '' ELSE format(' (reward %s of batch)', x.n) END),
			HINT = 'A replay must repeat the first call''s recipient_email, value, brands, categories and countries; use a new key for a new reward.';
	END IF;
	UPDATE gifq_rewards_in b SET reward_id = r.id
	FROM gifq.rewards r
	WHERE b.reward_id IS NULL AND r.program_id = _pid
		AND r.idempotency_key = b.e ->> 'idempotency_key';
END $$;

CREATE FUNCTION @extschema@.gifq_send_reward(program text, recipient_email text,
	value @extschema@.gifq_money, idempotency_key text, brands text[] DEFAULT NULL,
	categories text[] DEFAULT NULL, countries text[] DEFAULT NULL,
	expires_at timestamptz DEFAULT now() + interval '30 days')
RETURNS TABLE(reward_id bigint, claim_token text, status text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	pid bigint;
BEGIN
	IF program IS NULL OR recipient_email IS NULL OR value IS NULL OR idempotency_key IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = 'program, recipient_email, value and idempotency_key must not be NULL',
			HINT = 'gifq_send_reward needs program, recipient_email, value and idempotency_key.';
	END IF;
	pid := gifq.program_id(program);
	RETURN QUERY
	SELECT s.reward_id, s.claim_token, s.status
	FROM gifq.send_rewards(pid, program, jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
		'recipient_email', recipient_email, 'value', value::text,
		'idempotency_key', idempotency_key, 'brands', to_jsonb(brands),
		'categories', to_jsonb(categories), 'countries', to_jsonb(countries),
		'expires_at', expires_at))), now() + interval '30 days', true) s;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_send_reward(text, text, @extschema@.gifq_money, text, text[], text[], text[], timestamptz) IS 'hold value from the program''s funding for a recipient and return a claim token; a replay of the key returns the reward without its token';

CREATE FUNCTION @extschema@.gifq_send_rewards(program text, rewards jsonb)
RETURNS TABLE(reward_id bigint, recipient_email text, claim_token text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	IF program IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115', MESSAGE = 'program must not be NULL',
			HINT = 'gifq_send_rewards needs a program and a JSON array of rewards.';
	END IF;
	RETURN QUERY
	SELECT s.reward_id, s.recipient_email, s.claim_token
	FROM gifq.send_rewards(gifq.program_id(program), program, rewards,
		now() + interval '30 days', false) s;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_send_rewards(text, jsonb) IS 'send many rewards in one call, all or none, refused up front when the funding does not cover them; rows in the batch''s order';

-- gifq.reward_by_token: the reward a claim token names, its row locked
-- (FOR UPDATE: a claim and gifq_expire_rewards take the reward row before
-- any balance slot).  Found by the token's hash, then the stored hash is
-- compared again in constant time.  QG501 otherwise; the message never
-- repeats the token.
CREATE FUNCTION gifq.reward_by_token(_token text, _lock boolean) RETURNS gifq.rewards
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r gifq.rewards;
BEGIN
	IF _lock THEN
		SELECT * INTO r FROM gifq.rewards x
		WHERE x.token_hash = gifq.reward_token_hash(coalesce(_token, '')) FOR UPDATE;
	ELSE
		SELECT * INTO r FROM gifq.rewards x
		WHERE x.token_hash = gifq.reward_token_hash(coalesce(_token, ''));
	END IF;
	IF r.id IS NULL OR NOT gifq.reward_token_matches(coalesce(_token, ''), r.token_hash) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG501',
			MESSAGE = 'claim token not recognised',
			HINT = 'Use the claim token exactly as gifq_send_reward returned it.';
	END IF;
	RETURN r;
END $$;

-- gifq.reward_claimable: refuse a claimed reward (QG502) or one past its
-- expiry (QG503), whether or not gifq_expire_rewards has run.
CREATE FUNCTION gifq.reward_claimable(r gifq.rewards) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF r.status = 'claimed' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG502',
			MESSAGE = format('reward %s is already claimed', r.id),
			DETAIL = format('It was claimed at %s as order %s.', r.claimed_at, r.order_id),
			HINT = 'A reward is claimed once; see the order with gifq_order().';
	END IF;
	IF r.status = 'expired' OR r.expires_at <= now() THEN
		RAISE EXCEPTION USING ERRCODE = 'QG503',
			MESSAGE = format('reward %s expired at %s', r.id, r.expires_at),
			HINT = 'An expired reward can no longer be claimed; its value went back to the sender''s funding.';
	END IF;
END $$;

-- gifq.reward_menu: the brands a reward may become: its brands,
-- categories and countries (NULL: any), live in the catalog (not
-- discontinued, in stock), in the reward's currency, and selling a card of
-- exactly the reward's value (a denomination, or within the range).
CREATE FUNCTION gifq.reward_menu(r gifq.rewards) RETURNS SETOF gifq.brands
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT b.* FROM gifq.brands b
	WHERE b.discontinued_at IS NULL AND b.in_stock AND b.currency = r.currency
		AND (r.brands IS NULL OR b.id = ANY (r.brands))
		AND (r.categories IS NULL OR b.categories && r.categories)
		AND (r.countries IS NULL OR b.country = ANY (r.countries))
		AND CASE WHEN b.denominations IS NOT NULL THEN r.value = ANY (b.denominations)
			ELSE r.value BETWEEN b.min_value AND b.max_value END
$$;

CREATE FUNCTION @extschema@.gifq_reward_options(claim_token text)
RETURNS TABLE(brand_id text, name text, country text, currency text,
	categories text[], denominations @extschema@.gifq_money[],
	min_value @extschema@.gifq_money, max_value @extschema@.gifq_money,
	in_stock boolean, image_url text, redemption_instructions text,
	featured_rank integer, sponsored boolean, popularity bigint,
	discount_pct numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	r gifq.rewards := gifq.reward_by_token(claim_token, false);
BEGIN
	PERFORM gifq.reward_claimable(r);
	RETURN QUERY
	SELECT c.* FROM gifq.catalog(NULL, NULL, r.currency, NULL) c
	WHERE c.brand_id IN (SELECT m.id FROM gifq.reward_menu(r) m);
END $$;
COMMENT ON FUNCTION @extschema@.gifq_reward_options(text) IS 'the brands a reward can be claimed as (its menu within the live catalog, at its value), in gifq_catalog''s order and columns';

CREATE FUNCTION @extschema@.gifq_claim_reward(claim_token text, brand_id text)
RETURNS TABLE(order_id bigint, status text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	r gifq.rewards := gifq.reward_by_token(claim_token, true);
	b gifq.brands;
	p gifq.programs;
	cost bigint;
	oid bigint;
	fh bigint;
	funding bigint;
	payable bigint;
BEGIN
	PERFORM gifq.reward_claimable(r);
	SELECT * INTO b FROM gifq.reward_menu(r) m WHERE m.id = brand_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG504',
			MESSAGE = format('brand "%s" is not among the choices of reward %s', brand_id, r.id),
			HINT = 'Pick a brand from gifq_reward_options(claim_token).';
	END IF;
	SELECT * INTO p FROM gifq.programs x WHERE x.id = r.program_id;
	cost := gifq.card_cost(r.value, b.discount_pct);
	oid := nextval('gifq.orders_id_seq');
	funding := (SELECT a.id FROM gifq.accounts a WHERE a.program_id = r.program_id
		AND a.member_id IS NULL AND a.code = 'funding' AND a.currency = r.currency);
	payable := gifq.system_account(r.program_id, 'payable', r.currency);
	-- every balance slot the claim changes, locked up front in the ledger's
	-- global order (the reward hold's two, and this session's slots of
	-- funding and payable for the cost hold): ending one hold and placing
	-- another one after the other could lock two funding slots out of
	-- order against a concurrent claim
	PERFORM 1 FROM gifq.account_slots s JOIN gifq.accounts a ON a.id = s.account_id,
		gifq.holds h JOIN gifq.transfers t ON t.id = h.transfer_id
	WHERE h.transfer_id = r.hold_id
		AND ((s.account_id = t.debit_account_id AND s.slot = h.debit_slot)
			OR (s.account_id = t.credit_account_id AND s.slot = h.credit_slot)
			OR (cost > 0 AND s.account_id IN (funding, payable)
				AND s.slot = pg_backend_pid() % a.slots))
	ORDER BY s.account_id, s.slot
	FOR UPDATE OF s;
	-- face value back to funding, cost held for the order: the two in one
	-- transaction, so the funding never counts the reward twice
	PERFORM gifq.end_holds(ARRAY[r.hold_id], 'void');
	IF cost > 0 THEN
		fh := @extschema@.gifq_transfer(funding, payable,
			@extschema@.gifq_from_minor_units(cost, r.currency), NULL, true, NULL,
			jsonb_build_object('order_id', oid, 'reward_id', r.id));
	END IF;
	INSERT INTO gifq.orders (id, program_id, member_id, brand_id, amount, currency, cost,
		margin, points, points_code, recipient_email, recipient_given, idempotency_key,
		points_hold, funding_hold, created_by, reward_id)
	VALUES (oid, r.program_id, NULL, b.id, r.value, r.currency, cost, r.value - cost, 0,
		p.points_code, r.recipient_email, true, 'gifq-reward-' || r.id, NULL, fh,
		gifq.actor(), r.id);
	INSERT INTO gifq.outbox (program_id, event_type, payload)
	VALUES (r.program_id, 'order.created', jsonb_build_object('order_id', oid,
		'reference', gifq.order_reference(oid), 'reward_id', r.id, 'brand_id', b.id,
		'amount', @extschema@.gifq_from_minor_units(r.value, r.currency)::text));
	UPDATE gifq.rewards x SET status = 'claimed', order_id = oid, claimed_at = now()
	WHERE x.id = r.id;
	PERFORM gifq.emit(r.program_id, 'reward.claimed', jsonb_build_object(
		'reward_id', r.id, 'order_id', oid, 'brand_id', b.id,
		'value', @extschema@.gifq_from_minor_units(r.value, r.currency)::text));
	PERFORM gifq.wake_worker();
	RETURN QUERY SELECT oid, 'pending'::text;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_claim_reward(text, text) IS 'turn a pending reward into an order of one brand from its menu, funded by the reward''s value';

-- gifq_expire_rewards: void the holds of pending rewards past their
-- expiry, in batches of up to 1,000 (rewards a claim has locked are
-- skipped: that claim is refused once it sees the expiry), each batch's
-- holds together (gifq.void_holds: one statement for the voids,
-- each balance slot changed once).  Each expired
-- reward raises reward.expired.
CREATE FUNCTION @extschema@.gifq_expire_rewards() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ids bigint[];
	done integer := 0;
BEGIN
	LOOP
		WITH due AS (
			SELECT r.id, r.hold_id FROM gifq.rewards r
			WHERE r.status = 'pending' AND r.expires_at <= now()
			ORDER BY r.id LIMIT 1000 FOR UPDATE SKIP LOCKED
		), voided AS (
			SELECT gifq.void_holds(array_agg(d.hold_id)) AS n FROM due d
		)
		SELECT array_agg(d.id) INTO ids FROM due d, voided v;
		EXIT WHEN ids IS NULL;
		UPDATE gifq.rewards r SET status = 'expired', expired_at = now()
		WHERE r.id = ANY (ids);
		PERFORM gifq.emit(r.program_id, 'reward.expired', jsonb_build_object(
			'reward_id', r.id,
			'value', @extschema@.gifq_from_minor_units(r.value, r.currency)::text,
			'expires_at', r.expires_at))
		FROM gifq.rewards r WHERE r.id = ANY (ids) ORDER BY r.id;
		done := done + cardinality(ids);
	END LOOP;
	RETURN done;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_expire_rewards() IS 'return the value of pending rewards past their expiry to the funding; returns how many expired';

-- A claimed reward's order has no member: gifq_order shows it with member
-- NULL.
CREATE OR REPLACE FUNCTION gifq.order_view(_id bigint)
RETURNS TABLE(order_id bigint, status text, brand_id text, amount @extschema@.gifq_money,
	attempts integer, last_error text, redemption_url text, expiry_date date,
	code_last4 text, delivered_at timestamptz, program text, member text,
	points @extschema@.gifq_money, cost @extschema@.gifq_money,
	reference text, flags text[], created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT o.id, o.status, o.brand_id, @extschema@.gifq_from_minor_units(o.amount, o.currency),
		o.attempts, o.last_error, o.redemption_url, o.expiry_date, o.code_last4,
		o.delivered_at, p.code, m.external_id,
		@extschema@.gifq_from_minor_units(o.points, o.points_code),
		@extschema@.gifq_from_minor_units(o.cost, o.currency),
		gifq.provider_reference(o.id, o.retries), o.flags, o.created_at, o.updated_at
	FROM gifq.orders o JOIN gifq.programs p ON p.id = o.program_id
		LEFT JOIN gifq.members m ON m.id = o.member_id
	WHERE o.id = _id;
	IF NOT FOUND THEN
		PERFORM gifq.unknown_order(_id);
	END IF;
END $$;

-- gifq_ledger_verify, as in 0.6.0, knows rewards: a claimed reward's
-- order has no points and no member (ledger_problems' order rule asks for
-- points, so its row for such an order is replaced by the reward order's
-- rule), and each reward's hold agrees with its status: pending holds its
-- value, funding -> liability; claimed has voided it and names its
-- order; expired has voided it.
CREATE OR REPLACE FUNCTION @extschema@.gifq_ledger_verify()
RETURNS TABLE(account bigint, problem text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT x.account, x.problem FROM (
		SELECT l.account, l.problem FROM gifq.ledger_problems() l
		WHERE NOT EXISTS (SELECT 1 FROM gifq.orders o
			WHERE o.reward_id IS NOT NULL
				AND o.id = (regexp_match(l.problem, '^order (\d+) is malformed'))[1]::bigint)
		UNION ALL
		SELECT t.debit_account_id, format('order %s of reward %s is malformed (amount %s, cost %s, margin %s, points %s, status %s)',
			o.id, o.reward_id, o.amount, o.cost, o.margin, o.points, o.status)
		FROM gifq.orders o LEFT JOIN gifq.transfers t ON t.id = o.funding_hold
		WHERE o.reward_id IS NOT NULL
			AND NOT (o.amount > 0 AND o.cost >= 0 AND o.cost <= o.amount
				AND o.margin = o.amount - o.cost AND o.points = 0
				AND o.member_id IS NULL AND o.points_hold IS NULL
				AND (o.funding_hold IS NOT NULL) = (o.cost > 0)
				AND o.status IN ('pending', 'submitted', 'processing', 'delivered',
					'failed', 'canceled')
				AND EXISTS (SELECT 1 FROM gifq.rewards r WHERE r.id = o.reward_id
					AND r.order_id = o.id AND r.status = 'claimed'
					AND r.value = o.amount AND r.currency = o.currency))
		UNION ALL
		SELECT t.debit_account_id, format('reward %s is %s but its hold %s is %s (amount %s %s, reward %s %s)',
			r.id, r.status, r.hold_id, coalesce(h.status, 'missing'), t.amount, t.currency,
			r.value, r.currency)
		FROM gifq.rewards r LEFT JOIN gifq.holds h ON h.transfer_id = r.hold_id
			LEFT JOIN gifq.transfers t ON t.id = r.hold_id
			LEFT JOIN gifq.accounts d ON d.id = t.debit_account_id
			LEFT JOIN gifq.accounts c ON c.id = t.credit_account_id
		WHERE NOT (h.status IS NOT NULL AND t.amount = r.value AND t.currency = r.currency
			AND d.code = 'funding' AND c.code = 'liability' AND d.program_id = r.program_id
			AND (r.status, h.status) IN (('pending', 'pending'), ('claimed', 'voided'),
				('expired', 'voided'))
			AND (r.order_id IS NOT NULL) = (r.status = 'claimed'))
		UNION ALL
		SELECT l.account_id, format('points lot %s: earned %s, remaining %s, but its uses took %s',
			l.id, l.earned, l.remaining, coalesce(u.took, 0))
		FROM gifq.point_lots l
		LEFT JOIN (SELECT lot_id, sum(points) AS took FROM gifq.point_lot_uses GROUP BY lot_id) u
			ON u.lot_id = l.id
		WHERE l.earned - l.remaining <> coalesce(u.took, 0)
		UNION ALL
		SELECT l.account_id, format('expiring points (%s) exceed the available points (%s)',
			l.remaining, s.available)
		FROM (SELECT account_id, sum(remaining) AS remaining FROM gifq.point_lots
			GROUP BY account_id) l
		JOIN (SELECT account_id, sum(credits_posted - debits_posted - debits_pending) AS available
			FROM gifq.account_slots GROUP BY account_id) s ON s.account_id = l.account_id
		WHERE l.remaining > s.available
	) x
	ORDER BY x.account NULLS LAST, x.problem
$$;

-- Rewards per program and currency: how many were sent, claimed, expired
-- and are pending, their values, and the claim and expiry rates of those
-- that ended.  (Granted to gifq_reader once the roles exist.)
CREATE VIEW gifq.reward_rates AS
SELECT p.code AS program, r.currency,
	count(*) AS sent,
	count(*) FILTER (WHERE r.status = 'claimed') AS claimed,
	count(*) FILTER (WHERE r.status = 'expired') AS expired,
	count(*) FILTER (WHERE r.status = 'pending') AS pending,
	@extschema@.gifq_from_minor_units(sum(r.value)::bigint, r.currency) AS sent_value,
	@extschema@.gifq_from_minor_units(coalesce(sum(r.value) FILTER (WHERE r.status = 'claimed'), 0)::bigint, r.currency) AS claimed_value,
	@extschema@.gifq_from_minor_units(coalesce(sum(r.value) FILTER (WHERE r.status = 'expired'), 0)::bigint, r.currency) AS expired_value,
	@extschema@.gifq_from_minor_units(coalesce(sum(r.value) FILTER (WHERE r.status = 'pending'), 0)::bigint, r.currency) AS pending_value,
	round(count(*) FILTER (WHERE r.status = 'claimed')::numeric
		/ nullif(count(*) FILTER (WHERE r.status IN ('claimed', 'expired')), 0), 4) AS claim_rate,
	round(count(*) FILTER (WHERE r.status = 'expired')::numeric
		/ nullif(count(*) FILTER (WHERE r.status IN ('claimed', 'expired')), 0), 4) AS expiry_rate
FROM gifq.rewards r JOIN gifq.programs p ON p.id = r.program_id
GROUP BY p.code, r.currency;

-- A reward threshold now issues its reward: a recipient-choice reward of
-- the threshold's value to the member's email, idempotent by threshold
-- and member, in the transaction that crossed it.  The claim token goes
-- to the platform in a reward.issued event (outbox only, not NOTIFY: the
-- channel is open to every LISTENer).  A member without an email, or a
-- program whose funding cannot cover the reward, leaves the hit pending
-- and raises reward.unissued with the reason; the member's event is not
-- refused.
CREATE FUNCTION gifq.issue_threshold_reward(h gifq.threshold_hits) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m gifq.members;
	code text;
	s record;
	why text;
BEGIN
	SELECT * INTO m FROM gifq.members x WHERE x.id = h.member_id;
	SELECT p.code INTO code FROM gifq.programs p WHERE p.id = h.program_id;
	IF m.email IS NULL THEN
		why := 'member has no email';
	ELSE
		BEGIN
			SELECT * INTO s FROM gifq.send_rewards(h.program_id, code,
				jsonb_build_array(jsonb_build_object('recipient_email', m.email,
					'value', h.reward_value::text,
					'idempotency_key', format('threshold:%s:member:%s', h.threshold_id, h.member_id))),
				now() + interval '30 days', true, h.member_id, h.threshold_id) x;
		EXCEPTION WHEN OTHERS THEN
			IF SQLSTATE NOT LIKE 'QG%' THEN
				RAISE;
			END IF;
			why := SQLERRM;
		END;
	END IF;
	IF why IS NOT NULL THEN
		PERFORM gifq.emit(h.program_id, 'reward.unissued', jsonb_build_object(
			'member', m.external_id, 'threshold_id', h.threshold_id,
			'value', h.reward_value::text, 'reason', why));
		RETURN;
	END IF;
	UPDATE gifq.threshold_hits x SET reward_status = 'issued', reward_id = s.reward_id
	WHERE x.threshold_id = h.threshold_id AND x.member_id = h.member_id;
	INSERT INTO gifq.outbox (program_id, event_type, payload)
	VALUES (h.program_id, 'reward.issued', jsonb_build_object('reward_id', s.reward_id,
		'member', m.external_id, 'recipient_email', m.email, 'threshold_id', h.threshold_id,
		'value', h.reward_value::text, 'claim_token', s.claim_token));
END $$;

-- gifq.thresholds_crossed, as in 0.4.0, and a reward threshold issues its
-- reward.
CREATE OR REPLACE FUNCTION gifq.thresholds_crossed(_account bigint, _old bigint, _new bigint)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	h gifq.threshold_hits;
	n integer := 0;
BEGIN
	FOR h IN
		INSERT INTO gifq.threshold_hits (threshold_id, member_id, program_id, balance,
			reward_value, reward_status)
		SELECT t.id, a.member_id, t.program_id, _new, t.reward_value,
			CASE WHEN t.action = 'reward' THEN 'pending' END
		FROM gifq.accounts a JOIN gifq.thresholds t ON t.program_id = a.program_id
		WHERE a.id = _account AND a.member_id IS NOT NULL
			AND t.points > _old AND t.points <= _new
		ORDER BY t.points, t.id
		ON CONFLICT DO NOTHING
		RETURNING *
	LOOP
		PERFORM gifq.emit(h.program_id, 'threshold.reached', jsonb_build_object(
			'member', (SELECT m.external_id FROM gifq.members m WHERE m.id = h.member_id),
			'threshold_id', h.threshold_id,
			'points', (SELECT t.points FROM gifq.thresholds t WHERE t.id = h.threshold_id),
			'action', CASE WHEN h.reward_value IS NULL THEN 'unlock' ELSE 'reward' END,
			'reward_value', h.reward_value::text,
			'balance', (SELECT @extschema@.gifq_from_minor_units(h.balance, a.currency)::text
				FROM gifq.accounts a WHERE a.id = _account)));
		IF h.reward_value IS NOT NULL THEN
			PERFORM gifq.issue_threshold_reward(h);
		END IF;
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;

REVOKE ALL ON FUNCTION
	@extschema@.gifq_send_reward(text, text, @extschema@.gifq_money, text, text[], text[], text[], timestamptz),
	@extschema@.gifq_send_rewards(text, jsonb),
	@extschema@.gifq_reward_options(text),
	@extschema@.gifq_claim_reward(text, text),
	@extschema@.gifq_expire_rewards()
FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gifq FROM PUBLIC;

-- the rewards' report, for the reporting role of the section above
GRANT SELECT ON gifq.reward_rates TO gifq_reader;
