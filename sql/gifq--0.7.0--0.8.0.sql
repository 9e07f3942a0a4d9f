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
