-- gifq--0.7.0--0.8.0.sql: security and operations: gifq's roles and least
-- privilege, program scoping, the audit trail, erasure of members' personal
-- data, outbound safety and restores that give back what was dumped.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.8.0'" to load this file. \quit

------------------------------------------------------------------------
-- restores give back what was dumped; DROP EXTENSION leaves nothing
-- behind (issue 8, item 6; docs/operations.md "Backup and restore")
------------------------------------------------------------------------

-- A dump of a database using gifq is CREATE EXTENSION gifq, then the rows
-- of every table registered with pg_extension_config_dump.  The extension
-- is created with its triggers, so every trigger fires on the restore's
-- rows as well.  Most only guard (refuse_change, order_transition: BEFORE
-- UPDATE or DELETE) or bump gifq.settings_version (not dumped: the
-- backends' caches of a new server start empty); those are harmless.  Four
-- derive state from gifq.events and gifq.streaks: the streaks
-- (events_streaks), the boards' rows (events_points) and streak
-- milestones (streaks_milestones_new, streaks_milestones, which record
-- events of their own, with points).  On a restore they counted the
-- dumped events a second time, and a restored streak recorded its
-- milestones' events anew.

-- gifq.recording: is gifq recording events in this backend right now
-- (gifq_record_event, gifq_record_events, src/recording.c)?  The WHEN of
-- the deriving triggers: a row copied in by a restore, or inserted by
-- hand, derives nothing.  So what those triggers derive is dumped too.
CREATE FUNCTION gifq.recording() RETURNS boolean
	AS 'MODULE_PATHNAME', 'gifq_recording' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION gifq.recording() FROM PUBLIC;

DROP TRIGGER events_streaks ON gifq.events;
CREATE TRIGGER events_streaks AFTER INSERT ON gifq.events
	FOR EACH ROW WHEN (gifq.recording())
	EXECUTE FUNCTION gifq.streak_event();
DROP TRIGGER events_points ON gifq.events;
CREATE TRIGGER events_points AFTER INSERT ON gifq.events
	REFERENCING NEW TABLE AS new_events
	FOR EACH STATEMENT WHEN (gifq.recording())
	EXECUTE FUNCTION gifq.events_points();
DROP TRIGGER streaks_milestones_new ON gifq.streaks;
CREATE TRIGGER streaks_milestones_new AFTER INSERT ON gifq.streaks
	FOR EACH ROW WHEN (gifq.recording())
	EXECUTE FUNCTION gifq.streak_milestones();
DROP TRIGGER streaks_milestones ON gifq.streaks;
CREATE TRIGGER streaks_milestones AFTER UPDATE OF current_streak ON gifq.streaks
	FOR EACH ROW WHEN (NEW.current_streak <> OLD.current_streak AND gifq.recording())
	EXECUTE FUNCTION gifq.streak_milestones();

-- The boards' rows were left out of dumps for the restore's events to
-- fill them again; now they are dumped, so a restore gives back the
-- boards exactly as they were (gifq.board_prune's deletions included).
-- Every other table is dumped too except the provider-call log
-- (gifq.provider_calls and its sequence: a log, pruned within days) and
-- gifq.settings_version (a cache version, started from the clock).
SELECT pg_catalog.pg_extension_config_dump('gifq.member_points', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.board_counts', '');

-- DROP EXTENSION gifq: gifq's pg_cron jobs are rows of cron.job that name
-- gifq's functions, tied to it by nothing; left behind they would fail
-- every minute.  The event trigger gifq_drop runs before a command that
-- drops gifq (DROP EXTENSION, DROP SCHEMA ... CASCADE of its schema, DROP
-- OWNED BY its owner; src/dropping.c reads which from the statement) and
-- calls gifq.drop_jobs.  ddl_command_start, because an extension's own
-- sql_drop trigger is dropped before sql_drop fires for the extension.

-- gifq.drop_jobs: in pg_cron's database, unschedule this database's jobs
-- named gifq-* (gifq_schedule_jobs' jobs) and name, in a NOTICE each, the
-- other jobs of this database whose command mentions gifq, which stay.  In
-- another database pg_cron's jobs cannot be read from here: a NOTICE says
-- where gifq's jobs for this database would be and how to remove them.
-- Without pg_cron, nothing.  A job pg_cron will not unschedule (another
-- role's, for a role that is not a superuser) is named as remaining
-- rather than stopping the drop.
CREATE FUNCTION gifq.drop_jobs() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cron_db text := pg_catalog.current_setting('cron.database_name', true);
	j record;
	removed boolean;
BEGIN
	IF cron_db IS NULL THEN
		RETURN;
	END IF;
	IF cron_db <> pg_catalog.current_database() THEN
		RAISE NOTICE USING
			MESSAGE = pg_catalog.format('pg_cron jobs for database "%s" are kept in database "%s" and are not removed',
				pg_catalog.current_database(), cron_db),
			DETAIL = pg_catalog.format('gifq''s jobs for this database, if they were scheduled, are named gifq-%s-*.',
				pg_catalog.current_database()),
			HINT = pg_catalog.format('In database "%s": SELECT cron.unschedule(jobid) FROM cron.job WHERE database = %L AND jobname LIKE ''gifq-%%'';',
				cron_db, pg_catalog.current_database());
		RETURN;
	END IF;
	IF pg_catalog.to_regclass('cron.job') IS NULL THEN
		RETURN;
	END IF;
	FOR j IN EXECUTE 'SELECT jobid, jobname, command FROM cron.job'
		' WHERE database = pg_catalog.current_database()'
		' AND (jobname LIKE ''gifq-%'' OR command ~* ''gifq'') ORDER BY jobid'
	LOOP
		removed := false;
		IF j.jobname LIKE 'gifq-%' THEN
			BEGIN
				EXECUTE 'SELECT cron.unschedule($1)' USING j.jobid;
				removed := true;
			EXCEPTION WHEN insufficient_privilege OR raise_exception THEN
				removed := false;
			END;
		END IF;
		IF removed THEN
			RAISE NOTICE 'pg_cron job % "%" unscheduled', j.jobid, j.jobname;
		ELSE
			RAISE NOTICE USING
				MESSAGE = pg_catalog.format('pg_cron job %s "%s" calls gifq and remains', j.jobid, j.jobname),
				DETAIL = pg_catalog.format('Its command is: %s', j.command),
				HINT = pg_catalog.format('Remove it with SELECT cron.unschedule(%s);', j.jobid);
		END IF;
	END LOOP;
END $$;
REVOKE ALL ON FUNCTION gifq.drop_jobs() FROM PUBLIC;

CREATE FUNCTION gifq.drop_started() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'gifq_drop_started' LANGUAGE C;
REVOKE ALL ON FUNCTION gifq.drop_started() FROM PUBLIC;
CREATE EVENT TRIGGER gifq_drop ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED')
	EXECUTE FUNCTION gifq.drop_started();

------------------------------------------------------------------------
-- security: roles, least privilege and program scoping (docs/security.md)
------------------------------------------------------------------------

-- The three roles.  Roles are cluster-wide: made here if missing, they stay
-- after DROP EXTENSION gifq and serve every database's gifq.  NOLOGIN:
-- logins are made IN ROLE one of them.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'gifq_admin') THEN
		CREATE ROLE gifq_admin NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'gifq_app') THEN
		CREATE ROLE gifq_app NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'gifq_reader') THEN
		CREATE ROLE gifq_reader NOLOGIN;
	END IF;
END $$;

-- Programs granted to app roles.  Keyed by regrole, so pg_dump writes the
-- role's name and a restore maps it to the role of that name.
CREATE TABLE gifq.program_grants (
	role regrole NOT NULL,
	program_id bigint NOT NULL REFERENCES gifq.programs ON DELETE CASCADE,
	granted_at timestamptz NOT NULL DEFAULT now(),
	granted_by text NOT NULL,
	PRIMARY KEY (role, program_id)
);
CREATE INDEX program_grants_program_id ON gifq.program_grants (program_id);
SELECT pg_catalog.pg_extension_config_dump('gifq.program_grants', '');
COMMENT ON TABLE gifq.program_grants IS 'programs an app role (or the roles that are members of it) may act on; see gifq_grant_program()';

-- Backends cache the grants (src/scope.c); any change drops the caches.
CREATE FUNCTION gifq.program_grants_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'gifq_program_grants_changed' LANGUAGE C;
CREATE TRIGGER program_grants_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gifq.program_grants
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.program_grants_changed();

-- Whether the caller (the session's role, not the SECURITY DEFINER owner)
-- may act on a program: always, unless it is a scoped gifq_app role.
-- STABLE: the answer is fixed within a statement.
CREATE FUNCTION gifq.program_visible(program_id bigint) RETURNS boolean
	AS 'MODULE_PATHNAME', 'gifq_program_visible'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gifq.program_visible(bigint) IS 'whether the calling role may act on (and see) the program; NULL (no program) only for unscoped callers';
CREATE FUNCTION gifq.caller_scoped() RETURNS boolean
	AS 'MODULE_PATHNAME', 'gifq_caller_scoped'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gifq.caller_scoped() IS 'whether the calling role is a gifq_app role limited to its granted programs';
CREATE FUNCTION gifq.require_program(program_id bigint, program text) RETURNS void
	AS 'MODULE_PATHNAME', 'gifq_require_program'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gifq.require_program(bigint, text) IS 'QG701 unless the calling role may act on the program';

-- Every API function that names a program resolves it here: a scoped
-- caller is refused with QG701, the same for a program that does not
-- exist (so it learns nothing of other programs); others get QG101 for an
-- unknown program, as before.
CREATE OR REPLACE FUNCTION gifq.program_id(program text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	result bigint;
BEGIN
	SELECT id INTO result FROM gifq.programs WHERE code = program;
	PERFORM gifq.require_program(result, program);
	IF result IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG101',
			MESSAGE = format('unknown program "%s"', program),
			HINT = 'Create it first with gifq_create_program().';
	END IF;
	RETURN result;
END $$;

-- Objects named by id or token (orders, accounts, claim tokens; holds and
-- orders in C): one of a program the caller may not act on is unknown to
-- it, with the same error as an id that does not exist.
CREATE OR REPLACE FUNCTION gifq.order_view(_id bigint)
RETURNS TABLE (order_id bigint, status text, brand_id text, amount public.gifq_money,
	attempts integer, last_error text, redemption_url text, expiry_date date,
	code_last4 text, delivered_at timestamptz, program text, member text,
	points public.gifq_money, cost public.gifq_money, reference text, flags text[],
	created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT o.id, o.status, o.brand_id, public.gifq_from_minor_units(o.amount, o.currency),
		o.attempts, o.last_error, o.redemption_url, o.expiry_date, o.code_last4,
		o.delivered_at, p.code, m.external_id,
		public.gifq_from_minor_units(o.points, o.points_code),
		public.gifq_from_minor_units(o.cost, o.currency),
		gifq.provider_reference(o.id, o.retries), o.flags, o.created_at, o.updated_at
	FROM gifq.orders o JOIN gifq.programs p ON p.id = o.program_id
		LEFT JOIN gifq.members m ON m.id = o.member_id
	WHERE o.id = _id AND gifq.program_visible(o.program_id);
	IF NOT FOUND THEN
		PERFORM gifq.unknown_order(_id);
	END IF;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.gifq_order_history(order_id bigint)
RETURNS TABLE (at timestamptz, actor text, from_status text, to_status text, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM 1 FROM gifq.orders o WHERE o.id = gifq_order_history.order_id
		AND gifq.program_visible(o.program_id);
	IF NOT FOUND THEN
		PERFORM gifq.unknown_order(gifq_order_history.order_id);
	END IF;
	RETURN QUERY
	SELECT x.at, x.actor, x.from_status, x.to_status, x.reason FROM (
		SELECT 0::bigint AS seq, o.created_at AS at, o.created_by AS actor,
			NULL::text AS from_status, 'pending'::text AS to_status,
			'redeemed'::text AS reason
		FROM gifq.orders o WHERE o.id = gifq_order_history.order_id
		UNION ALL
		SELECT t.id, t.at, t.actor, t.from_status, t.to_status, t.reason
		FROM gifq.order_transitions t WHERE t.order_id = gifq_order_history.order_id
	) x ORDER BY x.seq;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.gifq_reveal_code(order_id bigint)
RETURNS TABLE (code text, pin text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	o gifq.orders;
	c gifq.cards;
BEGIN
	SELECT * INTO o FROM gifq.orders x WHERE x.id = gifq_reveal_code.order_id
		AND gifq.program_visible(x.program_id);
	IF NOT FOUND THEN
		PERFORM gifq.unknown_order(gifq_reveal_code.order_id);
	END IF;
	SELECT * INTO c FROM gifq.cards x WHERE x.order_id = o.id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG401',
			MESSAGE = format('order %s has no card: it is %s', o.id, o.status),
			HINT = 'A card exists once the order is delivered; see gifq_order().';
	END IF;
	INSERT INTO gifq.card_reveals (order_id, actor) VALUES (o.id, gifq.actor());
	RETURN QUERY SELECT s.code, s.pin FROM gifq.card_open(o.id, c.sealed) s;
END $$;

-- (gifq.order_row is not checked: the worker and provider webhooks, which
-- are global, end orders through it.)
CREATE OR REPLACE FUNCTION @extschema@.gifq_cancel_order(order_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	o gifq.orders;
BEGIN
	-- before gifq.order_row locks the row; unscoped callers skip the look-up
	IF gifq.caller_scoped() AND NOT EXISTS (SELECT 1 FROM gifq.orders x
		WHERE x.id = gifq_cancel_order.order_id AND gifq.program_visible(x.program_id)) THEN
		PERFORM gifq.unknown_order(gifq_cancel_order.order_id);
	END IF;
	o := gifq.order_row(order_id);
	IF o.status = 'canceled' THEN
		RETURN;
	END IF;
	IF o.status <> 'pending' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG216',
			MESSAGE = format('order %s is %s and can no longer be canceled', o.id, o.status),
			HINT = 'Only a pending order, not yet sent to the provider, can be canceled.';
	END IF;
	PERFORM gifq.release_holds(o);
	UPDATE gifq.orders x SET status = 'canceled', status_reason = 'canceled by request'
	WHERE x.id = o.id;
END $$;

CREATE OR REPLACE FUNCTION gifq.reward_by_token(_token text, _lock boolean) RETURNS gifq.rewards
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
	IF r.id IS NULL OR NOT gifq.reward_token_matches(coalesce(_token, ''), r.token_hash)
		OR NOT gifq.program_visible(r.program_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG501',
			MESSAGE = 'claim token not recognised',
			HINT = 'Use the claim token exactly as gifq_send_reward returned it.';
	END IF;
	RETURN r;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.gifq_balance(account bigint) RETURNS @extschema@.gifq_balance
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	result @extschema@.gifq_balance;
BEGIN
	SELECT (gifq.balance_of(a.currency, sum(s.debits_posted), sum(s.credits_posted),
		sum(s.debits_pending), sum(s.credits_pending))).*
	INTO result
	FROM gifq.accounts a JOIN gifq.account_slots s ON s.account_id = a.id
	WHERE a.id = account AND gifq.program_visible(a.program_id) GROUP BY a.currency;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG103',
			MESSAGE = format('unknown account %s', account),
			HINT = 'Find account ids with gifq_account().';
	END IF;
	RETURN result;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.gifq_balance_at(account bigint, at timestamptz)
RETURNS @extschema@.gifq_balance
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a gifq.accounts;
	result @extschema@.gifq_balance;
BEGIN
	SELECT * INTO a FROM gifq.accounts x WHERE x.id = account
		AND gifq.program_visible(x.program_id);
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG103',
			MESSAGE = format('unknown account %s', account),
			HINT = 'Find account ids with gifq_account().';
	END IF;
	-- per slot, the last entry at or before "at": one index look-up each
	SELECT (gifq.balance_of(a.currency, coalesce(sum(e.debits_posted), 0),
		coalesce(sum(e.credits_posted), 0), coalesce(sum(e.debits_pending), 0),
		coalesce(sum(e.credits_pending), 0))).*
	INTO result
	FROM generate_series(0, a.slots - 1) s(slot)
	CROSS JOIN LATERAL (
		SELECT * FROM gifq.entries e
		WHERE e.account_id = account AND e.slot = s.slot AND e.at <= gifq_balance_at.at
		ORDER BY e.at DESC, e.version DESC LIMIT 1) e;
	RETURN result;
END $$;

-- gifq.role_id: the role named, or QG702.
CREATE FUNCTION gifq.role_id(_role name) RETURNS regrole
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	result oid;
BEGIN
	SELECT r.oid INTO result FROM pg_catalog.pg_roles r WHERE r.rolname = _role;
	IF result IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG702',
			MESSAGE = format('unknown role "%s"', coalesce(_role::text, 'NULL')),
			HINT = 'Create the login first, e.g. CREATE ROLE shop LOGIN IN ROLE gifq_app.';
	END IF;
	RETURN result::regrole;
END $$;

CREATE FUNCTION @extschema@.gifq_grant_program(role name, program text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r regrole := gifq.role_id(role);
	pid bigint := gifq.program_id(program);
BEGIN
	INSERT INTO gifq.program_grants (role, program_id, granted_by)
	VALUES (r, pid, gifq.actor())
	ON CONFLICT ON CONSTRAINT program_grants_pkey DO NOTHING;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_grant_program(name, text) IS 'let an app role (and the roles that are members of it) act on a program; idempotent';

CREATE FUNCTION @extschema@.gifq_revoke_program(role name, program text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r regrole := gifq.role_id(role);
	pid bigint := gifq.program_id(program);
BEGIN
	DELETE FROM gifq.program_grants g WHERE g.role = r AND g.program_id = pid;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_revoke_program(name, text) IS 'take a program back from an app role; idempotent';

-- The reporting views again, each row limited to the programs the caller
-- may act on: a scoped role (an app role that also reads) sees only its
-- programs' rows; gifq_reader and admins see every row.  Provider calls
-- and outbound events without a program (catalog syncs) are left out for
-- scoped roles.  Same columns, so the grants stay.
CREATE OR REPLACE VIEW gifq.order_outcomes AS
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
WHERE gifq.program_visible(o.program_id)
GROUP BY p.code, 2;

CREATE OR REPLACE VIEW gifq.order_failures AS
SELECT p.code AS program,
	date_trunc('month', o.created_at AT TIME ZONE p.timezone)::date AS month,
	coalesce(substring(coalesce(o.last_error, o.status_reason) FROM '^provider [0-9]+: [^:]+'),
		coalesce(o.last_error, o.status_reason, 'no reason given')) AS reason,
	count(*) AS orders
FROM gifq.orders o
JOIN gifq.programs p ON p.id = o.program_id
WHERE o.status = 'failed'
	AND gifq.program_visible(o.program_id)
GROUP BY p.code, 2, 3;

CREATE OR REPLACE VIEW gifq.time_to_reward AS
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
	AND gifq.program_visible(o.program_id)
GROUP BY p.code, 2;

CREATE OR REPLACE VIEW gifq.spend_by_program AS
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
	AND gifq.program_visible(o.program_id)
GROUP BY p.code, 2, o.currency, o.points_code;

CREATE OR REPLACE VIEW gifq.spend_by_brand AS
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
	AND gifq.program_visible(o.program_id)
GROUP BY p.code, 2, o.brand_id, b.name, o.currency;

CREATE OR REPLACE VIEW gifq.spend_by_category AS
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
	AND gifq.program_visible(o.program_id)
GROUP BY p.code, 2, c.category, o.currency;

CREATE OR REPLACE VIEW gifq.average_order_value AS
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
	AND gifq.program_visible(o.program_id)
GROUP BY p.code, 2, o.currency, o.points_code;

CREATE OR REPLACE VIEW gifq.order_success AS
SELECT date_trunc('hour', coalesce(o.delivered_at, o.updated_at)) AS hour,
	count(*) FILTER (WHERE o.status = 'delivered') AS delivered,
	count(*) FILTER (WHERE o.status = 'failed') AS failed,
	round(count(*) FILTER (WHERE o.status = 'delivered')::numeric
		/ nullif(count(*) FILTER (WHERE o.status IN ('delivered', 'failed')), 0), 4)
		AS success_rate
FROM gifq.orders o
WHERE o.status IN ('delivered', 'failed')
	AND coalesce(o.delivered_at, o.updated_at) > now() - interval '1 day'
	AND gifq.program_visible(o.program_id)
GROUP BY 1;

CREATE OR REPLACE VIEW gifq.reward_rates AS
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
WHERE gifq.program_visible(r.program_id)
GROUP BY p.code, r.currency;

CREATE OR REPLACE VIEW gifq.provider_latency AS
SELECT c.call, count(*) AS calls,
	count(*) FILTER (WHERE c.http_status IS NULL OR c.http_status >= 500
		OR c.http_status = 429) AS transient_errors,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY c.latency_ms) AS p50_ms,
	percentile_cont(0.95) WITHIN GROUP (ORDER BY c.latency_ms) AS p95_ms,
	percentile_cont(0.99) WITHIN GROUP (ORDER BY c.latency_ms) AS p99_ms
FROM gifq.provider_calls c
WHERE c.at > now() - interval '1 hour'
	AND (NOT gifq.caller_scoped() OR gifq.program_visible(
		(SELECT o.program_id FROM gifq.orders o WHERE o.id = c.order_id)))
GROUP BY c.call;

CREATE OR REPLACE VIEW gifq.provider_latency_daily AS
SELECT (c.at AT TIME ZONE 'UTC')::date AS day, c.call, count(*) AS calls,
	count(*) FILTER (WHERE c.http_status IS NULL OR c.http_status >= 500
		OR c.http_status = 429) AS transient_errors,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY c.latency_ms) AS p50_ms,
	percentile_cont(0.95) WITHIN GROUP (ORDER BY c.latency_ms) AS p95_ms,
	percentile_cont(0.99) WITHIN GROUP (ORDER BY c.latency_ms) AS p99_ms,
	max(c.latency_ms) AS max_ms
FROM gifq.provider_calls c
WHERE (NOT gifq.caller_scoped() OR gifq.program_visible(
		(SELECT o.program_id FROM gifq.orders o WHERE o.id = c.order_id)))
GROUP BY 1, 2;

CREATE OR REPLACE VIEW gifq.webhook_delivery AS
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
	AND gifq.program_visible(x.program_id)
GROUP BY 1, 2;

CREATE OR REPLACE VIEW gifq.redemption_conversion AS
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
WHERE gifq.program_visible(p.id)
GROUP BY p.code, p.points_code, c.points;

CREATE OR REPLACE VIEW gifq.recipient_yearly_totals AS
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
	WHERE o.status NOT IN ('canceled', 'failed') AND gifq.program_visible(o.program_id)
	GROUP BY 1, 2, 3) t
JOIN gifq.programs p ON p.id = t.program_id
JOIN gifq.members m ON m.id = t.member_id
LEFT JOIN gifq.limits l ON l.program_id = t.program_id
LEFT JOIN gifq.member_flags f ON f.member_id = t.member_id
	AND f.flag = 'recipient_yearly_flag' AND f.period = t.year::text;

CREATE OR REPLACE VIEW gifq.worker AS
SELECT w.*,
	CASE WHEN w.database = current_database() THEN
		(SELECT count(*) FROM gifq.orders o WHERE o.status = 'pending'
			AND o.next_attempt_at <= now() AND gifq.program_visible(o.program_id)) END AS queue_depth,
	CASE WHEN w.database = current_database() THEN
		(SELECT count(*) FROM gifq.orders o WHERE o.status IN ('submitted', 'processing')
			AND gifq.program_visible(o.program_id)) END
		AS orders_in_flight
FROM gifq.worker_status() w;

-- Grants.  Nothing is executable by PUBLIC but the gifq_money type's I/O,
-- operators, aggregates and helpers, which read no table.  Each role's
-- functions are listed here; gifq_admin gets the app's functions by its
-- own grants, not by membership in gifq_app (a member of gifq_app would be
-- scoped).  test/security_roles.sql fails for a function of the extension
-- that is in none of these lists.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gifq FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.gifq_grant_program(name, text),
	@extschema@.gifq_revoke_program(name, text)
FROM PUBLIC;

-- gifq_admin: programs, rules, challenges, streaks, thresholds, the
-- catalog, limits, funding, rates, accounts and the raw ledger, expiry and
-- maintenance, the order queue, members' blocks and program grants
GRANT EXECUTE ON FUNCTION
	@extschema@.gifq_create_program(text, text, text, numeric, text),
	@extschema@.gifq_set_rule(text, text, bigint, integer),
	@extschema@.gifq_create_challenge(text, text, text, timestamptz, timestamptz, numeric, integer, integer),
	@extschema@.gifq_define_streak(text, text, text, text, integer),
	@extschema@.gifq_define_threshold(text, bigint, text, @extschema@.gifq_money),
	@extschema@.gifq_feature_brand(text, integer, boolean),
	@extschema@.gifq_catalog_load(jsonb),
	@extschema@.gifq_refresh_catalog(),
	@extschema@.gifq_set_limits(text, jsonb),
	@extschema@.gifq_set_peer_limits(text, @extschema@.gifq_money, @extschema@.gifq_money),
	@extschema@.gifq_set_points_expiry(text, interval),
	@extschema@.gifq_fund(text, @extschema@.gifq_money, text),
	@extschema@.gifq_set_low_balance(text, @extschema@.gifq_money),
	@extschema@.gifq_set_rate(text, text, numeric),
	@extschema@.gifq_account(text, text, text, text),
	@extschema@.gifq_create_account(text, text, text, text[], integer),
	@extschema@.gifq_transfer(bigint, bigint, @extschema@.gifq_money, text, boolean, interval, jsonb),
	@extschema@.gifq_transfers(jsonb),
	@extschema@.gifq_post(bigint, @extschema@.gifq_money),
	@extschema@.gifq_void(bigint),
	@extschema@.gifq_balance(bigint),
	@extschema@.gifq_balance_at(bigint, timestamptz),
	@extschema@.gifq_ledger_verify(),
	@extschema@.gifq_expire_holds(),
	@extschema@.gifq_expire_points(),
	@extschema@.gifq_expire_rewards(),
	@extschema@.gifq_prune(),
	@extschema@.gifq_maintenance_jobs(),
	@extschema@.gifq_schedule_jobs(),
	@extschema@.gifq_unschedule_jobs(),
	@extschema@.gifq_process_orders(integer),
	@extschema@.gifq_retry_order(bigint),
	@extschema@.gifq_block_member(text, text, boolean),
	@extschema@.gifq_grant_program(name, text),
	@extschema@.gifq_revoke_program(name, text)
TO gifq_admin;

-- gifq_app (and gifq_admin): the member-facing API
GRANT EXECUTE ON FUNCTION
	@extschema@.gifq_upsert_member(text, text, text, text, jsonb, boolean),
	@extschema@.gifq_redeem(text, text, text, @extschema@.gifq_money, text, text),
	@extschema@.gifq_record_event(text, text, text, text, timestamptz, jsonb),
	@extschema@.gifq_record_events(text, jsonb),
	@extschema@.gifq_send_reward(text, text, @extschema@.gifq_money, text, text[], text[], text[], timestamptz),
	@extschema@.gifq_send_rewards(text, jsonb),
	@extschema@.gifq_claim_reward(text, text),
	@extschema@.gifq_reward_options(text),
	@extschema@.gifq_member_balance(text, text),
	@extschema@.gifq_program_balance(text, text),
	@extschema@.gifq_order(bigint),
	@extschema@.gifq_order_history(bigint),
	@extschema@.gifq_cancel_order(bigint),
	@extschema@.gifq_reveal_code(bigint),
	@extschema@.gifq_catalog(text, text, text, text),
	@extschema@.gifq_alternatives(text, @extschema@.gifq_money),
	@extschema@.gifq_streak(text, text, text),
	@extschema@.gifq_leaderboard(text, text, jsonb, integer),
	@extschema@.gifq_leaderboard_around(text, text, text, jsonb, integer),
	@extschema@.gifq_give_points(text, text, text, @extschema@.gifq_money, text, text),
	@extschema@.gifq_expiring_points(text, text, interval),
	@extschema@.gifq_provider_webhook(text, text)
TO gifq_app, gifq_admin;

-- gifq_reader: the reporting views (granted in 0.7.0) and the functions
-- they call, which are checked against the reader, not the views' owner
GRANT EXECUTE ON FUNCTION gifq.program_visible(bigint), gifq.caller_scoped()
TO gifq_reader;

------------------------------------------------------------------------
-- the audit trail (issue 8 item 5; see docs/audit.md)
------------------------------------------------------------------------

-- One row per change of an audited table (INSERT, UPDATE, DELETE,
-- TRUNCATE) and per traced call (REVEAL of a card's code, FORGET of a
-- member's personal data).  Who: the session user, the role acting
-- outside SECURITY DEFINER (SET ROLE counts) and application_name; when:
-- the clock and the top transaction's id; what: the table, the program
-- and the row's key; before and after: the row as jsonb (an UPDATE only
-- its changed columns).  Personal data (email, recipient_email, members'
-- attributes) is never copied here: such a column reads "redacted" (or
-- null), as does any word with an "@" in other text, so erasing a member
-- never touches this table.  Rows a COPY loads (a restore, which brings
-- the dumped audit) are not audited again.  Written by
-- src/audit.c, never by SQL; append-only like gifq.transfers.
CREATE TABLE gifq.audit (
	id bigint GENERATED ALWAYS AS IDENTITY (CACHE 32) PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	xid xid8,
	session_role text NOT NULL,
	acting_role text NOT NULL,
	application text NOT NULL DEFAULT '',
	table_name text NOT NULL,
	operation text NOT NULL,
	program_id bigint,
	object_id text,
	before jsonb,
	after jsonb
);
-- Read by time (and program): a BRIN index, nearly free to keep on a
-- table that only grows in time order, where a B-tree by program would
-- cost every audited change an index insertion.
CREATE INDEX audit_at ON gifq.audit USING brin (at);
SELECT pg_catalog.pg_extension_config_dump('gifq.audit', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.audit_id_seq', '');

CREATE TRIGGER audit_immutable BEFORE UPDATE OR DELETE ON gifq.audit
	FOR EACH ROW EXECUTE FUNCTION gifq.refuse_change('The audit trail is append-only.');
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON gifq.audit
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.refuse_change('The audit trail is append-only.');

-- gifq.audit_row([key column, program column, personal columns...]): the
-- AFTER trigger of every audited table (src/audit.c).
CREATE FUNCTION gifq.audit_row() RETURNS trigger
	AS 'MODULE_PATHNAME', 'gifq_audit_row' LANGUAGE C;
COMMENT ON FUNCTION gifq.audit_row() IS 'audit trigger: appends each change of the table to gifq.audit, personal columns (arguments 3 on) redacted';

-- gifq.audit_note: an audit row for a call that changes no audited row
-- (a card's code revealed, a member forgotten).  Callers pass no
-- personal data.
CREATE FUNCTION gifq.audit_note(table_name text, operation text, program_id bigint,
	object_id text, before jsonb, after jsonb) RETURNS void
	AS 'MODULE_PATHNAME', 'gifq_audit_note' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION gifq.audit_note(text, text, bigint, text, jsonb, jsonb) IS 'append an audit row for a traced call (REVEAL, FORGET)';

-- The audited tables, their key column, their program column and their
-- personal columns.  members: only the columns a platform or an admin
-- sets (not last_redeemed_at, which every redemption updates);
-- challenges: not the completion count that events keep.
DO $$
DECLARE
	t record;
BEGIN
	FOR t IN SELECT * FROM (VALUES
		('programs', NULL, 'id', 'id', '{}'::text[]),
		('members', 'email, country, attributes, verified, blocked', 'id', 'program_id',
			'{email,attributes}'),
		('member_flags', NULL, 'member_id', 'program_id', '{}'),
		('accounts', NULL, 'id', 'program_id', '{}'),
		('limits', NULL, 'program_id', 'program_id', '{}'),
		('rates', NULL, 'currency', 'program_id', '{}'),
		('rules', NULL, 'event_type', 'program_id', '{}'),
		('challenges', 'name, event_type, starts_at, ends_at, multiplier, max_completions, per_member_limit',
			'id', 'program_id', '{}'),
		('streak_types', NULL, 'streak_type', 'program_id', '{}'),
		('thresholds', NULL, 'id', 'program_id', '{}'),
		('peer_limits', NULL, 'program_id', 'program_id', '{}'),
		('points_expiry', NULL, 'program_id', 'program_id', '{}'),
		('orders', NULL, 'id', 'program_id', '{recipient_email}'),
		('rewards', NULL, 'id', 'program_id', '{recipient_email,token_hash}')
	) AS v(tab, update_of, key, program, personal) LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR DELETE OR UPDATE%s ON gifq.%I'
			' FOR EACH ROW EXECUTE FUNCTION gifq.audit_row(%s)',
			t.tab || '_audit', coalesce(' OF ' || t.update_of, ''), t.tab,
			(SELECT string_agg(quote_literal(a), ', ')
			 FROM unnest(ARRAY[t.key, t.program] || t.personal) a));
		EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON gifq.%I'
			' FOR EACH STATEMENT EXECUTE FUNCTION gifq.audit_row()',
			t.tab || '_audit_truncate', t.tab);
	END LOOP;
END $$;

-- Code reveals: gifq_reveal_code still appends to gifq.card_reveals (kept
-- as it was, for compatibility), and each reveal is copied into the audit
-- as operation REVEAL on table cards, object the order.
CREATE FUNCTION gifq.card_reveal_audit() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM gifq.audit_note('cards', 'REVEAL',
		(SELECT o.program_id FROM gifq.orders o WHERE o.id = NEW.order_id),
		NEW.order_id::text, NULL, NULL);
	RETURN NULL;
END $$;
CREATE TRIGGER card_reveals_audit AFTER INSERT ON gifq.card_reveals
	FOR EACH ROW EXECUTE FUNCTION gifq.card_reveal_audit();

-- The reveals made before 0.8.0, so the audit holds every reveal: their
-- actor was the acting role; the session and the transaction were not
-- recorded then (xid NULL).
INSERT INTO gifq.audit (at, xid, session_role, acting_role, application,
	table_name, operation, program_id, object_id)
SELECT r.at, NULL, r.actor, r.actor, 'gifq 0.8.0 update, from card_reveals',
	'cards', 'REVEAL', o.program_id, r.order_id::text
FROM gifq.card_reveals r LEFT JOIN gifq.orders o ON o.id = r.order_id
ORDER BY r.id;

-- gifq.audit_rows: the audit rows of a program (NULL: of every program,
-- and the rows of no program) since a time, oldest first, with the
-- program's code; QG101 for an unknown program.
CREATE FUNCTION gifq.audit_rows(_program text, _since timestamptz)
RETURNS TABLE(id bigint, at timestamptz, xid xid8, session_role text, acting_role text,
	application text, program_code text, table_name text, operation text, object_id text,
	before jsonb, after jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	pid bigint;
BEGIN
	IF _program IS NOT NULL THEN
		pid := gifq.program_id(_program);
	END IF;
	RETURN QUERY
	SELECT a.id, a.at, a.xid, a.session_role, a.acting_role, a.application, p.code,
		a.table_name, a.operation, a.object_id, a.before, a.after
	FROM gifq.audit a LEFT JOIN gifq.programs p ON p.id = a.program_id
	WHERE (pid IS NULL OR a.program_id = pid)
		AND a.at >= coalesce(_since, '-infinity')
	ORDER BY a.id;
END $$;

-- gifq_audit: gifq.audit_rows for admins (personal data is already
-- redacted in the table).  (SQL around PL/pgSQL: the result has a column
-- named like the first argument, which PL/pgSQL does not allow.)
CREATE FUNCTION @extschema@.gifq_audit(program text DEFAULT NULL,
	since timestamptz DEFAULT now() - interval '1 day')
RETURNS TABLE(id bigint, at timestamptz, xid xid8, session_role text, acting_role text,
	application text, program text, table_name text, operation text, object_id text,
	before jsonb, after jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT * FROM gifq.audit_rows($1, $2)
$$;
COMMENT ON FUNCTION @extschema@.gifq_audit(text, timestamptz) IS 'the audit trail of a program (NULL: all) since a time, oldest first; personal data redacted';

REVOKE ALL ON FUNCTION gifq.audit_row(), gifq.audit_note(text, text, bigint, text, jsonb, jsonb),
	gifq.card_reveal_audit(), gifq.audit_rows(text, timestamptz)
FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.gifq_audit(text, timestamptz) FROM PUBLIC;

------------------------------------------------------------------------
-- personal data: gifq_forget_member (issue 8 item 8; see docs/audit.md)
------------------------------------------------------------------------

-- When a member's personal data was erased (NULL: never).  A member keeps
-- its id, its external id (the platform's pseudonymous user id), its
-- country, its accounts and everything the ledger holds.
-- The audit of members covers it.
ALTER TABLE gifq.members ADD COLUMN forgotten_at timestamptz;
DROP TRIGGER members_audit ON gifq.members;
CREATE TRIGGER members_audit
	AFTER INSERT OR DELETE OR UPDATE OF email, country, attributes, verified, blocked,
		forgotten_at ON gifq.members
	FOR EACH ROW EXECUTE FUNCTION gifq.audit_row('id', 'program_id', 'email', 'attributes');

-- A reward whose recipient was forgotten keeps its value and its claim
-- token, but no address: NULL is an erased recipient.
ALTER TABLE gifq.rewards ALTER COLUMN recipient_email DROP NOT NULL;

-- An order's recipient may now be erased (set to NULL), never changed to
-- another address; everything else as before.
CREATE OR REPLACE FUNCTION gifq.order_transition() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF (NEW.id, NEW.program_id, NEW.member_id, NEW.brand_id, NEW.amount,
		NEW.currency, NEW.cost, NEW.margin, NEW.points, NEW.points_code,
		NEW.idempotency_key, NEW.created_at, NEW.created_by,
		coalesce(NEW.recipient_email, OLD.recipient_email), NEW.recipient_given)
		IS DISTINCT FROM (OLD.id, OLD.program_id, OLD.member_id, OLD.brand_id,
		OLD.amount, OLD.currency, OLD.cost, OLD.margin, OLD.points, OLD.points_code,
		OLD.idempotency_key, OLD.created_at, OLD.created_by,
		OLD.recipient_email, OLD.recipient_given) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG120',
			MESSAGE = format('order %s: only its status and fulfilment columns may change', OLD.id),
			HINT = 'Cancel the order and redeem again to change what was ordered.';
	END IF;
	-- a retry sends under a new reference, with a full set of attempts
	IF OLD.status = 'failed' AND NEW.status = 'pending' THEN
		NEW.retries := OLD.retries + 1;
		NEW.attempts := 0;
		NEW.lookups := 0;
		NEW.provider_order_id := NULL;
		NEW.last_error := NULL;
	END IF;
	IF NEW.status IS DISTINCT FROM OLD.status THEN
		IF NOT (OLD.status, NEW.status) IN (('pending', 'submitted'),
			('pending', 'canceled'), ('pending', 'failed'),
			('submitted', 'pending'), ('submitted', 'processing'),
			('submitted', 'delivered'), ('submitted', 'failed'),
			('processing', 'delivered'), ('processing', 'failed'),
			('failed', 'pending')) THEN
			RAISE EXCEPTION USING ERRCODE = 'QG216',
				MESSAGE = format('order %s cannot go from %s to %s', OLD.id, OLD.status, NEW.status),
				HINT = 'Orders go pending -> submitted -> (processing ->) delivered or failed; only pending orders can be canceled and only failed ones retried.';
		END IF;
		INSERT INTO gifq.order_transitions (order_id, actor, from_status, to_status, reason)
		VALUES (NEW.id, gifq.actor(), OLD.status, NEW.status,
			CASE WHEN NEW.status_reason IS DISTINCT FROM OLD.status_reason
				THEN coalesce(NEW.status_reason, 'no reason given')
				ELSE 'no reason given' END);
	END IF;
	NEW.updated_at := now();
	RETURN NEW;
END $$;

-- Events stay immutable, except that their attributes (the platform's
-- free-form data about the event, which may be personal) can be erased
-- to '{}'.
CREATE FUNCTION gifq.event_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.attributes = '{}'::jsonb
		AND (pg_catalog.to_jsonb(NEW) - 'attributes') = (pg_catalog.to_jsonb(OLD) - 'attributes') THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION USING
		ERRCODE = 'QG120',
		MESSAGE = format('rows of %I.%I are immutable: %s refused',
			TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP),
		HINT = 'Events are recorded once; only their attributes can be erased (gifq_forget_member).';
END $$;
DROP TRIGGER events_immutable ON gifq.events;
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON gifq.events
	FOR EACH ROW EXECUTE FUNCTION gifq.event_guard();

-- gifq.erase_text: s with every occurrence of each address (any case)
-- replaced by "redacted".
CREATE FUNCTION gifq.erase_text(s text, addresses text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a text;
BEGIN
	FOREACH a IN ARRAY coalesce(addresses, '{}') LOOP
		-- every character but letters and digits escaped: a literal match
		s := regexp_replace(s, regexp_replace(a, '([^[:alnum:]])', '\\\1', 'g'),
			'redacted', 'gi');
	END LOOP;
	RETURN s;
END $$;

-- gifq.erase_jsonb: j with every occurrence of each address in its
-- strings (keys and values, any case) replaced by "redacted".
CREATE FUNCTION gifq.erase_jsonb(j jsonb, addresses text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN gifq.erase_text(j::text, ARRAY(
	SELECT substr(to_jsonb(a)::text, 2, length(to_jsonb(a)::text) - 2)
	FROM unnest(addresses) a))::jsonb;

-- gifq.erase_logs: erase the addresses from every text and jsonb column of
-- the logs that may have copied them, columns added later included: the
-- program's events for the platform (gifq.outbox), and the calls to the
-- provider and webhooks received about the program's orders or about no
-- order.  Returns how many rows changed.  These tables have no index by
-- member or address, so each is read in full.
CREATE FUNCTION gifq.erase_logs(_program bigint, addresses text[]) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c record;
	a text;
	n bigint;
	total bigint := 0;
BEGIN
	IF coalesce(cardinality(addresses), 0) = 0 THEN
		RETURN 0;
	END IF;
	FOR c IN SELECT a.attrelid::regclass AS tab, a.attname AS col,
			a.atttypid = 'jsonb'::regtype AS is_json,
			CASE WHEN a.attrelid = 'gifq.outbox'::regclass
				THEN 'program_id OPERATOR(pg_catalog.=) $3'
				ELSE '(order_id IS NULL OR order_id IN (SELECT o.id FROM gifq.orders o'
					' WHERE o.program_id OPERATOR(pg_catalog.=) $3))' END AS scope
		FROM pg_catalog.pg_attribute a
		WHERE a.attrelid IN ('gifq.outbox'::regclass, 'gifq.provider_calls'::regclass,
			'gifq.webhook_events'::regclass)
			AND a.attnum > 0 AND NOT a.attisdropped
			AND a.atttypid IN ('text'::regtype, 'jsonb'::regtype)
		ORDER BY a.attrelid, a.attnum LOOP
		FOREACH a IN ARRAY addresses LOOP
			EXECUTE format('UPDATE %s SET %I = gifq.%s(%I, $1)'
				' WHERE pg_catalog.strpos(pg_catalog.lower(%I::text), $2) > 0 AND %s',
				c.tab, c.col, CASE WHEN c.is_json THEN 'erase_jsonb' ELSE 'erase_text' END,
				c.col, c.col, c.scope)
				USING addresses,
				CASE WHEN c.is_json THEN substr(to_jsonb(a)::text, 2, length(to_jsonb(a)::text) - 2)
					ELSE a END,
				_program;
			GET DIAGNOSTICS n = ROW_COUNT;
			total := total + n;
		END LOOP;
	END LOOP;
	RETURN total;
END $$;

-- gifq_forget_member: erase a member's personal data (a GDPR erasure)
-- and keep everything the ledger needs.  Erased: the member's email and
-- attributes, the recipient address of each of their orders, the address
-- of the rewards sent to their email in the program (and of the orders
-- those rewards' claims made), their events' attributes, and every copy
-- of those addresses in the outbox, the provider-call log and the
-- webhook log.  Kept: ids, external id, country, accounts, transfers,
-- orders, rewards and balances.  Idempotent; audited as FORGET (no
-- personal data).
CREATE FUNCTION @extschema@.gifq_forget_member(program text, member text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
	m gifq.members;
	own text[] := '{}';
	addresses text[];
	rewards bigint[];
	n_orders bigint;
	n_rewards bigint;
	n_events bigint;
	n_logs bigint;
BEGIN
	SELECT * INTO m FROM gifq.members x
	WHERE x.program_id = pid AND x.external_id = member FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG102',
			MESSAGE = format('unknown member "%s" in program "%s"', member, program),
			HINT = 'Create the member first with gifq_upsert_member().';
	END IF;
	IF m.email IS NOT NULL THEN
		own := ARRAY[lower(m.email)];
	END IF;
	-- rewards sent to the member's address in this program
	SELECT coalesce(array_agg(r.id ORDER BY r.id), '{}') INTO rewards
	FROM gifq.rewards r
	WHERE r.program_id = pid AND lower(r.recipient_email) = ANY (own);
	-- every address to erase: the member's and their orders' recipients
	SELECT coalesce(array_agg(DISTINCT x.a), '{}') INTO addresses
	FROM (SELECT unnest(own) AS a
		UNION SELECT lower(o.recipient_email) FROM gifq.orders o
		WHERE (o.member_id = m.id OR o.reward_id = ANY (rewards))
			AND o.program_id = pid AND o.recipient_email IS NOT NULL) x;

	UPDATE gifq.members x SET email = NULL, attributes = '{}',
		forgotten_at = coalesce(x.forgotten_at, now()), updated_at = now()
	WHERE x.id = m.id;
	UPDATE gifq.orders o SET recipient_email = NULL,
		last_error = gifq.erase_text(o.last_error, addresses),
		status_reason = gifq.erase_text(o.status_reason, addresses)
	WHERE (o.member_id = m.id OR o.reward_id = ANY (rewards)) AND o.program_id = pid
		AND (o.recipient_email IS NOT NULL
			OR o.last_error IS DISTINCT FROM gifq.erase_text(o.last_error, addresses)
			OR o.status_reason IS DISTINCT FROM gifq.erase_text(o.status_reason, addresses));
	GET DIAGNOSTICS n_orders = ROW_COUNT;
	UPDATE gifq.rewards r SET recipient_email = NULL WHERE r.id = ANY (rewards);
	GET DIAGNOSTICS n_rewards = ROW_COUNT;
	UPDATE gifq.events e SET attributes = '{}'
	WHERE e.member_id = m.id AND e.attributes <> '{}';
	GET DIAGNOSTICS n_events = ROW_COUNT;
	n_logs := gifq.erase_logs(pid, addresses);

	PERFORM gifq.audit_note('members', 'FORGET', pid, m.id::text, NULL,
		jsonb_build_object('orders', n_orders, 'rewards', n_rewards,
			'events', n_events, 'log_rows', n_logs,
			'addresses', cardinality(addresses)));
END $$;
COMMENT ON FUNCTION @extschema@.gifq_forget_member(text, text) IS 'erase a member''s personal data (email, attributes, recipient addresses and their copies); the ledger, orders, rewards and balances stay; idempotent and audited';

REVOKE ALL ON FUNCTION gifq.event_guard(), gifq.erase_text(text, text[]),
	gifq.erase_jsonb(jsonb, text[]), gifq.erase_logs(bigint, text[])
FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.gifq_forget_member(text, text) FROM PUBLIC;

------------------------------------------------------------------------
-- who may read the audit and erase a member (docs/security.md)
------------------------------------------------------------------------

-- Both are gifq_admin's: the audit spans every program (a NULL program
-- reads them all) and names the roles that acted, and an erasure cannot
-- be undone.  Neither is scoped to programs, as no gifq_admin member is.
GRANT EXECUTE ON FUNCTION @extschema@.gifq_audit(text, timestamptz),
	@extschema@.gifq_forget_member(text, text) TO gifq_admin;

------------------------------------------------------------------------
-- sec-fuzz: hostile input (issue 8, fuzzing and the attack suite).
-- Functions the random-argument run (test/fuzz_api.sql) broke:
------------------------------------------------------------------------

-- gifq_set_low_balance with a NULL level made a funding account with no
-- currency (23502, not null violation): refused with QG115 instead.
CREATE OR REPLACE FUNCTION @extschema@.gifq_set_low_balance(program text, level @extschema@.gifq_money)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	account bigint;
BEGIN
	IF level IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = 'low-balance level must not be NULL',
			HINT = 'Give a level of zero or more in the funding''s currency, such as ''100.00 USD''.';
	END IF;
	account := gifq.system_account(gifq.program_id(program), 'funding',
		@extschema@.gifq_currency(level));
	IF @extschema@.gifq_minor_units(level) < 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid low-balance level %s', level),
			HINT = 'Give a level of zero or more.';
	END IF;
	UPDATE gifq.accounts SET low_balance = @extschema@.gifq_minor_units(level),
		low_balance_armed = gifq.slot_room(account, NULL, true) >= @extschema@.gifq_minor_units(level)
	WHERE id = account;
END $$;

-- gifq_fund with a NULL amount made accounts with no currency (23502):
-- refused with QG115 instead.
CREATE OR REPLACE FUNCTION @extschema@.gifq_fund(program text, amount @extschema@.gifq_money,
	idempotency_key text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
	cur text := @extschema@.gifq_currency(amount);
BEGIN
	IF amount IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = 'gifq_fund needs an amount',
			HINT = 'Give the amount deposited, such as ''1000.00 USD''.';
	END IF;
	IF idempotency_key IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = 'gifq_fund needs an idempotency key',
			HINT = 'Pass a key unique to this deposit, such as the bank transfer''s reference.';
	END IF;
	RETURN @extschema@.gifq_transfer(
		gifq.system_account(pid, 'settlement', cur),
		gifq.system_account(pid, 'funding', cur),
		amount, 'fund:' || idempotency_key);
END $$;

-- gifq_alternatives with an amount near the bigint minimum overflowed
-- (22003) computing the distance to each denomination: the distance is
-- now taken in numeric, here and in gifq.nearest.
CREATE OR REPLACE FUNCTION gifq.nearest(b gifq.brands, amount bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN b.denominations IS NOT NULL
		THEN (SELECT d FROM unnest(b.denominations) d
			ORDER BY abs(d::numeric - amount), d LIMIT 1)
		ELSE least(greatest(amount, b.min_value), b.max_value) END
$$;

CREATE OR REPLACE FUNCTION gifq.alternatives(_brand text, _amount @extschema@.gifq_money)
RETURNS TABLE(brand_id text, amount @extschema@.gifq_money, reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	b gifq.brands := gifq.brand(_brand);
	units bigint := @extschema@.gifq_minor_units(_amount);
BEGIN
	IF _amount IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = 'amount must not be NULL',
			HINT = 'Give the face value wanted, such as ''30.00 USD''.';
	END IF;
	IF @extschema@.gifq_currency(_amount) <> b.currency THEN
		RAISE EXCEPTION USING ERRCODE = 'QG204',
			MESSAGE = format('brand "%s" sells cards in %s, not %s', b.id, b.currency,
				@extschema@.gifq_currency(_amount)),
			HINT = 'Give the amount in the brand''s currency.';
	END IF;
	RETURN QUERY
	(SELECT b.id, @extschema@.gifq_from_minor_units(d.v, b.currency),
		'nearest denomination'::text
	FROM (SELECT x AS v FROM unnest(b.denominations) x WHERE x <> units
		UNION SELECT gifq.nearest(b, units) WHERE b.denominations IS NULL
			AND NOT gifq.offers(b, units)) d
	WHERE b.in_stock AND b.discontinued_at IS NULL
	ORDER BY abs(d.v::numeric - units), d.v LIMIT 3)
	UNION ALL
	(SELECT o.id, @extschema@.gifq_from_minor_units(gifq.nearest(o, units), o.currency),
		CASE WHEN gifq.offers(o, units) THEN 'same category and country'
			ELSE 'same category and country, nearest denomination' END
	FROM gifq.brands o
	WHERE o.id <> b.id AND o.discontinued_at IS NULL AND o.in_stock
		AND o.country = b.country AND o.currency = b.currency
		AND o.categories && b.categories
	ORDER BY abs(gifq.nearest(o, units)::numeric - units), o.featured_rank NULLS LAST,
		gifq.popularity(o.id) DESC, o.name, o.id
	LIMIT 10);
END $$;
