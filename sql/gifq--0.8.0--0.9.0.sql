-- gifq--0.8.0--0.9.0.sql: cheaper events.  The leaderboards keep one row
-- per member, not one per member and board; an event's settings come from
-- each backend's cache, which more tables now invalidate; a challenge's
-- completions need one index, not two.  (The rest is C: counter rows found
-- where they were last seen, the streak trigger told what it would read.)

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.9.0'" to load this file. \quit

------------------------------------------------------------------------
-- gifq.board_points: a member's points on their four boards in one row
-- (issue 6, item 8; docs/gamification.md "How boards are kept")
------------------------------------------------------------------------

-- Until 0.8.0 gifq.member_points held a row per member and board: all
-- time, and each day, week and month a member's events fell in.  An event
-- with points updated four of them, each with its own index entries: the
-- largest part of an event's CPU after the event itself, and of a batch's.
-- A board is only ever read for the current period (gifq_leaderboard and
-- gifq_leaderboard_around take a period, not a date), so a member needs
-- only their latest day, week and month: one row, updated once an event.
--
-- Each of the day, week and month columns holds the points of the
-- member's latest period of that kind (the highest period number among
-- their events, as gifq.period_no numbers them in the program's time
-- zone), all_points everything.  An event of an earlier period than the
-- row's (one that arrived late) adds to all time and to any board whose
-- period it shares, and to no other: that board is no longer shown.  The
-- row is therefore the same whatever order the events arrived in.  A
-- board of period n is the rows whose column for it says n; a member
-- whose latest day is yesterday has no points today.
--
-- Every board column is above 0: a row is made by a member's first event
-- with points (events never earn less than 0), and each column only ever
-- takes the points of at least one such event.
CREATE TABLE gifq.board_points (
	program_id bigint NOT NULL,
	member_id bigint NOT NULL,
	all_points bigint NOT NULL CHECK (all_points > 0),
	day_points bigint NOT NULL CHECK (day_points > 0),
	week_points bigint NOT NULL CHECK (week_points > 0),
	month_points bigint NOT NULL CHECK (month_points > 0),
	day_no integer NOT NULL,
	week_no integer NOT NULL,
	month_no integer NOT NULL,
	PRIMARY KEY (program_id, member_id)
);
-- each board in order: a member's neighbours are range scans either side
CREATE INDEX board_points_all ON gifq.board_points (program_id, all_points DESC, member_id);
CREATE INDEX board_points_day
	ON gifq.board_points (program_id, day_no, day_points DESC, member_id);
CREATE INDEX board_points_week
	ON gifq.board_points (program_id, week_no, week_points DESC, member_id);
CREATE INDEX board_points_month
	ON gifq.board_points (program_id, month_no, month_points DESC, member_id);
SELECT pg_catalog.pg_extension_config_dump('gifq.board_points', '');

-- gifq.member_points is now the boards' rows in the shape the board
-- functions read (program_id, period, period_no, member_id, points): one
-- branch a board, each on its own index.  A read names one period, and
-- the other branches' conditions ('day' = 'all') are false before they
-- run.  (The table leaves the extension first, which also takes it off
-- the tables pg_dump dumps; DROP TABLE alone would leave its oid there.)
ALTER EXTENSION gifq DROP TABLE gifq.member_points;
DROP TABLE gifq.member_points;
CREATE VIEW gifq.member_points AS
	SELECT b.program_id, 'all'::text AS period, 0 AS period_no, b.member_id,
		b.all_points AS points
	FROM gifq.board_points b
	UNION ALL
	SELECT b.program_id, 'day'::text, b.day_no, b.member_id, b.day_points
	FROM gifq.board_points b
	UNION ALL
	SELECT b.program_id, 'week'::text, b.week_no, b.member_id, b.week_points
	FROM gifq.board_points b
	UNION ALL
	SELECT b.program_id, 'month'::text, b.month_no, b.member_id, b.month_points
	FROM gifq.board_points b;

-- The trigger's new C function (src/board_points.c); the 0.8.0 one stays
-- in the library for databases not yet updated.
CREATE OR REPLACE FUNCTION gifq.events_points() RETURNS trigger
	AS 'MODULE_PATHNAME', 'gifq_events_board_points' LANGUAGE C;

-- gifq.board_truth: the boards' rows as gifq.events give them: per
-- member, all their points, and the points of their latest day, week and
-- month.  Reads every event.
CREATE FUNCTION gifq.board_truth()
RETURNS SETOF gifq.board_points
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	WITH e AS (
		SELECT e.program_id, e.member_id, e.points,
			gifq.period_no('day', e.occurred_at AT TIME ZONE p.timezone) AS d,
			gifq.period_no('week', e.occurred_at AT TIME ZONE p.timezone) AS w,
			gifq.period_no('month', e.occurred_at AT TIME ZONE p.timezone) AS m
		FROM gifq.events e JOIN gifq.programs p ON p.id = e.program_id
		WHERE e.points > 0
	), latest AS (
		SELECT e.program_id, e.member_id, max(e.d) AS d, max(e.w) AS w, max(e.m) AS m
		FROM e GROUP BY 1, 2
	)
	SELECT e.program_id, e.member_id, sum(e.points)::bigint,
		sum(e.points) FILTER (WHERE e.d = l.d)::bigint,
		sum(e.points) FILTER (WHERE e.w = l.w)::bigint,
		sum(e.points) FILTER (WHERE e.m = l.m)::bigint,
		l.d, l.w, l.m
	FROM e JOIN latest l USING (program_id, member_id)
	GROUP BY e.program_id, e.member_id, l.d, l.w, l.m
$$;
REVOKE ALL ON FUNCTION gifq.board_truth() FROM PUBLIC;

-- gifq.board_verify: where the boards' rows and gifq.board_counts disagree
-- with gifq.events; no rows when they agree.  Rows are compared whole;
-- counts on every board gifq.board_prune keeps (all time, and the current
-- and previous day, week and month).  Reads every event: for tests and
-- checks.
CREATE OR REPLACE FUNCTION gifq.board_verify()
RETURNS TABLE(program_id bigint, period text, period_no integer, member_id bigint,
	points bigint, problem text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	WITH truth AS MATERIALIZED (
		SELECT * FROM gifq.board_truth()
	), boards AS (
		SELECT t.program_id, k.period,
			CASE k.period WHEN 'all' THEN 0 WHEN 'day' THEN t.day_no
				WHEN 'week' THEN t.week_no ELSE t.month_no END AS period_no,
			t.member_id,
			CASE k.period WHEN 'all' THEN t.all_points WHEN 'day' THEN t.day_points
				WHEN 'week' THEN t.week_points ELSE t.month_points END AS points
		FROM truth t CROSS JOIN (VALUES ('all'), ('day'), ('week'), ('month')) k(period)
	), kept_boards AS (
		SELECT b.* FROM boards b JOIN gifq.programs p ON p.id = b.program_id
		WHERE b.period = 'all'
			OR b.period_no >= gifq.period_no(b.period, now() AT TIME ZONE p.timezone) - 1
	), counts AS (
		SELECT b.program_id, b.period, b.period_no, k::smallint AS level,
			b.points >> (5 * k) AS bucket, count(*) AS members
		FROM kept_boards b, generate_series(0, 12) k
		WHERE k = 0 OR b.points >> (5 * k) > 0
		GROUP BY 1, 2, 3, 4, 5
	), kept AS (
		SELECT c.program_id, c.period, c.period_no, c.level, c.bucket,
			sum(c.members) AS members
		FROM (SELECT c.program_id, c.period, c.period_no, c.level, c.bucket, c.members
			FROM gifq.board_counts c
			UNION ALL
			SELECT * FROM gifq.board_pending()) c
		JOIN gifq.programs p ON p.id = c.program_id
		WHERE c.period = 'all'
			OR c.period_no >= gifq.period_no(c.period, now() AT TIME ZONE p.timezone) - 1
		GROUP BY 1, 2, 3, 4, 5
		HAVING sum(c.members) <> 0
	)
	SELECT t.program_id, NULL, NULL, t.member_id, t.all_points,
		format('board_points has %s, events give %s',
			coalesce(format('(%s, %s, %s, %s, %s, %s, %s)', b.all_points, b.day_no,
				b.day_points, b.week_no, b.week_points, b.month_no, b.month_points), 'no row'),
			coalesce(format('(%s, %s, %s, %s, %s, %s, %s)', t.all_points, t.day_no,
				t.day_points, t.week_no, t.week_points, t.month_no, t.month_points), 'none'))
	FROM truth t
	FULL JOIN gifq.board_points b USING (program_id, member_id)
	WHERE (t.all_points, t.day_no, t.day_points, t.week_no, t.week_points, t.month_no,
			t.month_points)
		IS DISTINCT FROM (b.all_points, b.day_no, b.day_points, b.week_no, b.week_points,
			b.month_no, b.month_points)
	UNION ALL
	SELECT c.program_id, c.period, c.period_no, NULL, c.bucket,
		format('board_counts has %s members at level %s, events give %s',
			coalesce(k.members, 0), c.level, coalesce(c.members, 0))
	FROM counts c
	FULL JOIN kept k USING (program_id, period, period_no, level, bucket)
	WHERE c.members IS DISTINCT FROM k.members
$$;

-- gifq.board_rebuild: recount the boards' rows and gifq.board_counts from
-- gifq.events (after a restore that disabled triggers, or to repair what
-- gifq.board_verify finds); the counts leave out the transaction's own
-- pending moves, which its commit adds.  Locks both tables against
-- concurrent events for the transaction.  Returns the members on boards.
CREATE OR REPLACE FUNCTION gifq.board_rebuild() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	LOCK TABLE gifq.events IN SHARE MODE;
	LOCK TABLE gifq.board_points, gifq.board_counts IN EXCLUSIVE MODE;
	DELETE FROM gifq.board_points;
	DELETE FROM gifq.board_counts;
	INSERT INTO gifq.board_points SELECT * FROM gifq.board_truth();
	GET DIAGNOSTICS n = ROW_COUNT;
	INSERT INTO gifq.board_counts (program_id, period, period_no, level, bucket, slot,
		members)
	SELECT c.program_id, c.period, c.period_no, c.level, c.bucket, 0, sum(c.members)
	FROM (SELECT mp.program_id, mp.period, mp.period_no, k::smallint AS level,
			mp.points >> (5 * k) AS bucket, 1 AS members
		FROM gifq.member_points mp, generate_series(0, 12) k
		WHERE k = 0 OR mp.points >> (5 * k) > 0
		UNION ALL
		SELECT p.program_id, p.period, p.period_no, p.level, p.bucket, -p.members
		FROM gifq.board_pending() p) c
	GROUP BY 1, 2, 3, 4, 5
	HAVING sum(c.members) <> 0;
	RETURN n;
END $$;

-- gifq.board_prune: what boards no longer need.  Deletes the counts of
-- days, weeks and months that ended before the previous one (no board
-- shows them: only the current period is read; the previous one is kept
-- for a clock or time zone at its edge); then folds the slots of each
-- remaining count into slot 0 and drops counts of 0, so ranks sum fewer
-- rows.  The members' rows stay: each is one row whatever its periods.
-- Locks each board's counts in key order, as events do; safe while events
-- are recorded (a member whose row is of a pruned period leaves its count
-- when their next event comes, which makes a count of -1 there that the
-- next prune deletes, and no board reads).  Meant for a nightly job
-- (pg_cron); returns the rows deleted.
CREATE OR REPLACE FUNCTION gifq.board_prune() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
	total bigint := 0;
BEGIN
	WITH cur AS (
		SELECT p.id, k.period, gifq.period_no(k.period, now() AT TIME ZONE p.timezone) AS no
		FROM gifq.programs p CROSS JOIN (VALUES ('day'), ('week'), ('month')) k(period)
	)
	DELETE FROM gifq.board_counts c USING cur
	WHERE c.program_id = cur.id AND c.period = cur.period AND c.period_no < cur.no - 1;
	GET DIAGNOSTICS n = ROW_COUNT;
	total := total + n;

	-- fold: lock every slot of each value that has more than one, or a
	-- count of 0, in key order; sum them into the lowest slot and delete
	-- the others (all of them for a sum of 0)
	WITH spread AS (
		SELECT c.program_id, c.period, c.period_no, c.level, c.bucket
		FROM gifq.board_counts c
		GROUP BY 1, 2, 3, 4, 5
		HAVING count(*) > 1 OR sum(c.members) = 0
	), locked AS (
		SELECT c.program_id, c.period, c.period_no, c.level, c.bucket, c.slot, c.members
		FROM gifq.board_counts c
		JOIN spread s USING (program_id, period, period_no, level, bucket)
		ORDER BY c.program_id, c.period, c.period_no, c.level, c.bucket, c.slot
		FOR UPDATE OF c
	), sums AS (
		SELECT l.program_id, l.period, l.period_no, l.level, l.bucket,
			min(l.slot) AS slot, sum(l.members) AS members
		FROM locked l GROUP BY 1, 2, 3, 4, 5
	), kept AS (
		UPDATE gifq.board_counts c SET members = s.members
		FROM sums s
		WHERE (c.program_id, c.period, c.period_no, c.level, c.bucket, c.slot)
			= (s.program_id, s.period, s.period_no, s.level, s.bucket, s.slot)
			AND s.members <> 0
		RETURNING 1
	), gone AS (
		DELETE FROM gifq.board_counts c
		USING locked l JOIN sums s USING (program_id, period, period_no, level, bucket)
		WHERE (c.program_id, c.period, c.period_no, c.level, c.bucket, c.slot)
			= (l.program_id, l.period, l.period_no, l.level, l.bucket, l.slot)
			AND (l.slot <> s.slot OR s.members = 0)
		RETURNING 1
	)
	SELECT count(*) INTO n FROM gone;
	total := total + n;
	RETURN total;
END $$;

------------------------------------------------------------------------
-- an event's settings are cached (issue 6, item 8; src/settings.c)
------------------------------------------------------------------------

-- Each backend caches what an event reads besides the member (the
-- program, its issuance account and thresholds, the type's rule,
-- challenges and streak types) as it caches a redemption's, and trusts its cache while the
-- statement that locks the member sees the same gifq.settings_version.  So
-- every change to those tables bumps the version too, in the changing
-- transaction.  A challenge's completions counter is not a setting: taking
-- a completion (an UPDATE of completions alone) must not bump the version,
-- or every limited challenge's event would empty every backend's cache and
-- queue on the version's row.
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['rules', 'thresholds', 'points_expiry', 'streak_types'] LOOP
		EXECUTE format('CREATE TRIGGER %I'
			' AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gifq.%I'
			' FOR EACH STATEMENT EXECUTE FUNCTION gifq.settings_changed()',
			t || '_settings_changed', t);
	END LOOP;
END $$;
CREATE TRIGGER challenges_settings_changed
	AFTER INSERT OR DELETE OR TRUNCATE ON gifq.challenges
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.settings_changed();
CREATE TRIGGER challenges_settings_changed_update
	AFTER UPDATE OF id, program_id, name, event_type, starts_at, ends_at, multiplier,
		max_completions, per_member_limit ON gifq.challenges
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.settings_changed();

------------------------------------------------------------------------
-- one index for a challenge's completions (issue 6, item 8)
------------------------------------------------------------------------

-- gifq.challenge_completions had two indexes: its primary key (challenge,
-- event) and (challenge, member) for a member's completions under a
-- per-member limit.  An event belongs to one member, so (challenge,
-- member, event) is unique exactly when (challenge, event) is, and its
-- prefix finds a member's completions: one index, one entry less to write
-- for every completion.  Rebuilt here, with the table locked meanwhile.
ALTER TABLE gifq.challenge_completions DROP CONSTRAINT challenge_completions_pkey,
	ADD CONSTRAINT challenge_completions_pkey PRIMARY KEY (challenge_id, member_id, event_id);
DROP INDEX gifq.challenge_completions_member;

-- The rows of a database updated from 0.8.0 come from its events, as
-- gifq.board_rebuild makes them (the old rows of past periods cannot say
-- which period is a member's latest once board_prune deleted some).
SELECT gifq.board_rebuild();
