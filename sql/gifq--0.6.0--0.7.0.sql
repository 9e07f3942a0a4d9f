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
-- catalog, and pg_cron need not.  Reads superuser-only settings: called
-- from SECURITY DEFINER functions.
CREATE FUNCTION gifq.worker_serves() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (SELECT 1
			FROM pg_catalog.regexp_split_to_table(
				pg_catalog.current_setting('shared_preload_libraries'), '\s*,\s*') l
			WHERE pg_catalog.btrim(l, ' "') ~ '(^|/)gifq(\.so)?$')
		AND EXISTS (SELECT 1
			FROM pg_catalog.regexp_matches(
				coalesce(pg_catalog.current_setting('gifq.database', true), ''),
				'\s*("(?:[^"]|"")*"|[^,\s]+)\s*(?:,|$)', 'g') m
			WHERE CASE WHEN m[1] LIKE '"%'
				THEN pg_catalog.replace(pg_catalog.substr(m[1], 2, pg_catalog.length(m[1]) - 2), '""', '"')
				ELSE pg_catalog.lower(m[1]) END = pg_catalog.current_database())
$$;

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
