-- gifq--0.5.0--0.6.0.sql: the rest of gamification: events recorded in C
-- (one at a time and set-wise in batches), streak milestones paid through
-- rules, points expiry (lots of expiring points kept by the ledger, spent
-- soonest-expiring first, expired to breakage), and leaderboards read from
-- points and counts kept as events are recorded.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.6.0'" to load this file. \quit

------------------------------------------------------------------------
-- recording events in C
------------------------------------------------------------------------

-- gifq_record_event and gifq_record_events are C (src/events.c,
-- src/events_batch.c): each statement is a plan prepared once per backend.
-- The member is locked before the key is looked up, so a same-member twin
-- waits and replays; another member's twin meets the key's unique index,
-- whose violation is reported as QG109 (40001 under repeatable read)
-- without the exception block that cost a subtransaction per event (and
-- overflowed the PGPROC cache in a batch).  Rules and challenges are read
-- by every call, so a change committed by another session applies to the
-- next event.
CREATE OR REPLACE FUNCTION @extschema@.gifq_record_event(program text, member text,
	event_type text, idempotency_key text, occurred_at timestamptz DEFAULT NULL,
	attributes jsonb DEFAULT '{}')
RETURNS TABLE(event_id bigint, points_awarded bigint, balance @extschema@.gifq_money,
	details jsonb)
AS 'MODULE_PATHNAME', 'gifq_record_event'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The batch is checked whole first (QG118 names the element); then its
-- members in id order and the limited challenges of its event types in id
-- order are locked (the order a single event takes them in: member,
-- challenges, then the ledger), so concurrent batches and single calls
-- never wait on each other in a cycle; then every element is worked out
-- in the batch's order exactly as gifq_record_event would take it, and
-- written set-wise (docs/gamification.md, "Many events at once").
CREATE OR REPLACE FUNCTION @extschema@.gifq_record_events(program text, events jsonb)
RETURNS TABLE(idempotency_key text, event_id bigint, points_awarded bigint,
	balance @extschema@.gifq_money, details jsonb)
AS 'MODULE_PATHNAME', 'gifq_record_events'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- the PL/pgSQL recording of 0.4.0
DROP FUNCTION gifq.record_events(text, jsonb);
DROP FUNCTION gifq.record_event(text, text, text, text, timestamptz, jsonb);
DROP FUNCTION gifq.challenge_bonuses(bigint, bigint, bigint, text, timestamptz, bigint);
DROP FUNCTION gifq.rule_points(gifq.programs, bigint, text, timestamptz);
DROP FUNCTION gifq.replay_event(gifq.events, bigint, text, text, timestamptz, jsonb);

------------------------------------------------------------------------
-- streak milestones
------------------------------------------------------------------------
-- Streak milestones: a rule for the event type 'streak:<streak type>:<n>'
-- awards its points (and any challenge on that type) when a member's
-- current streak of that type reaches n periods, once per run.  The
-- award is an event recorded by gifq_record_event, keyed by the member,
-- the milestone and the run's first period, so that a run reaching n
-- again (a late event joining two runs) replays instead of paying twice,
-- while a new run after a break earns it anew.
CREATE FUNCTION gifq.streak_milestones() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	lo integer := 1;
	r record;
	grace integer;
	run_start integer;
	award record;
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.current_streak > OLD.current_streak THEN
		lo := OLD.current_streak + 1;
	END IF;
	FOR r IN SELECT x.event_type, k AS n
		FROM generate_series(lo, NEW.current_streak) k
		JOIN gifq.rules x ON x.program_id = NEW.program_id
			AND x.event_type = 'streak:' || NEW.streak_type || ':' || k
		ORDER BY k
	LOOP
		IF run_start IS NULL THEN
			SELECT g.code AS program, m.external_id AS member INTO award
			FROM gifq.members m JOIN gifq.programs g ON g.id = m.program_id
			WHERE m.id = NEW.member_id;
			SELECT t.grace_periods INTO grace FROM gifq.streak_types t
			WHERE t.program_id = NEW.program_id AND t.streak_type = NEW.streak_type;
			-- the latest period that starts a run: the first, or one after
			-- a gap longer than the grace
			SELECT max(p.period_no) INTO run_start FROM (
				SELECT period_no, period_no - lag(period_no) OVER (ORDER BY period_no) - 1 AS gap
				FROM gifq.streak_periods
				WHERE member_id = NEW.member_id AND streak_type = NEW.streak_type) p
			WHERE p.gap IS NULL OR p.gap > grace;
		END IF;
		PERFORM @extschema@.gifq_record_event(award.program, award.member, r.event_type,
			format('%s:%s:%s', r.event_type, NEW.member_id, run_start), NULL,
			jsonb_build_object('streak_type', NEW.streak_type, 'streak', r.n));
	END LOOP;
	RETURN NULL;
END $$;
CREATE TRIGGER streaks_milestones_new AFTER INSERT ON gifq.streaks
	FOR EACH ROW EXECUTE FUNCTION gifq.streak_milestones();
CREATE TRIGGER streaks_milestones AFTER UPDATE OF current_streak ON gifq.streaks
	FOR EACH ROW WHEN (NEW.current_streak <> OLD.current_streak)
	EXECUTE FUNCTION gifq.streak_milestones();

------------------------------------------------------------------------
-- points expiry
------------------------------------------------------------------------

-- A program's points expiry.  Points a member earns expire at the end of
-- the day (the program's day) on which expire_after has passed since they
-- were earned.  Points members held before expiry was first set never
-- expire; expire_after NULL stops newly earned points from expiring (what
-- was earned before keeps its date).  A program with a row here keeps lots.
CREATE TABLE gifq.points_expiry (
	program_id bigint PRIMARY KEY REFERENCES gifq.programs,
	expire_after interval CHECK (expire_after > interval '0'),
	updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('gifq.points_expiry', '');

-- Lots: the expiring points of a member's account, one row per account and
-- day of expiry.  earned is what came in, remaining what is left of it
-- (spent soonest-expiring first); earned - remaining is the sum of the
-- lot's uses.  Points of the account beyond the sum of remaining never
-- expire.
CREATE TABLE gifq.point_lots (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES gifq.accounts,
	program_id bigint NOT NULL,
	expires_at timestamptz NOT NULL,
	earned bigint NOT NULL CHECK (earned > 0),
	remaining bigint NOT NULL CHECK (remaining >= 0 AND remaining <= earned),
	UNIQUE (account_id, expires_at)
);
CREATE INDEX point_lots_due ON gifq.point_lots (expires_at) WHERE remaining > 0;
SELECT pg_catalog.pg_extension_config_dump('gifq.point_lots', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.point_lots_id_seq', '');

-- What each transfer took from lots (points > 0), or gave back to them
-- when a hold on the points ended without being spent (points < 0).
CREATE TABLE gifq.point_lot_uses (
	transfer_id bigint NOT NULL,
	lot_id bigint NOT NULL REFERENCES gifq.point_lots,
	points bigint NOT NULL CHECK (points <> 0),
	PRIMARY KEY (transfer_id, lot_id)
);
CREATE INDEX point_lot_uses_lot ON gifq.point_lot_uses (lot_id);
SELECT pg_catalog.pg_extension_config_dump('gifq.point_lot_uses', '');

-- gifq.spend_lots: _points left the account (a posted or held debit):
-- take them from its lots, soonest-expiring first; what the lots do not
-- cover was points that never expire.
CREATE FUNCTION gifq.spend_lots(_account bigint, _transfer bigint, _points bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	l record;
	take bigint;
BEGIN
	FOR l IN SELECT x.id, x.remaining FROM gifq.point_lots x
		WHERE x.account_id = _account AND x.remaining > 0
		ORDER BY x.expires_at FOR UPDATE
	LOOP
		take := least(l.remaining, _points);
		UPDATE gifq.point_lots SET remaining = remaining - take WHERE id = l.id;
		INSERT INTO gifq.point_lot_uses (transfer_id, lot_id, points)
		VALUES (_transfer, l.id, take);
		_points := _points - take;
		EXIT WHEN _points = 0;
	END LOOP;
END $$;

-- gifq.return_to_lots: a hold on the account's points (pending transfer
-- _hold) ended by _transfer, giving back _points of it (all of it for a
-- void or an expiry, what was not posted for a partial post).  What is
-- spent is the soonest-expiring part, so what comes back is the rest: the
-- points that never expire first, then the lots the hold took from,
-- latest-expiring first, each to its own lot with its own date.
CREATE FUNCTION gifq.return_to_lots(_hold gifq.transfers, _transfer bigint, _points bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	u record;
	back bigint;
BEGIN
	_points := _points - (_hold.amount - coalesce((SELECT sum(x.points)
		FROM gifq.point_lot_uses x WHERE x.transfer_id = _hold.id), 0));
	FOR u IN SELECT x.lot_id, x.points FROM gifq.point_lot_uses x
		JOIN gifq.point_lots l ON l.id = x.lot_id
		WHERE x.transfer_id = _hold.id
		ORDER BY l.expires_at DESC
	LOOP
		EXIT WHEN _points <= 0;
		back := least(u.points, _points);
		UPDATE gifq.point_lots SET remaining = remaining + back WHERE id = u.lot_id;
		INSERT INTO gifq.point_lot_uses (transfer_id, lot_id, points)
		VALUES (_transfer, u.lot_id, -back);
		_points := _points - back;
	END LOOP;
END $$;

-- gifq.earn_lot: _points arrived in the account (a posted credit, or a
-- held credit posted): they expire at the end of the program's day on
-- which _after has passed, in the lot of that day.
CREATE FUNCTION gifq.earn_lot(_account bigint, _program bigint, _points bigint,
	_after interval, _tz text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	INSERT INTO gifq.point_lots AS l (account_id, program_id, expires_at, earned, remaining)
	VALUES (_account, _program,
		(date_trunc('day', (now() AT TIME ZONE _tz) + _after) + interval '1 day') AT TIME ZONE _tz,
		_points, _points)
	ON CONFLICT (account_id, expires_at) DO UPDATE
		SET earned = l.earned + excluded.earned, remaining = l.remaining + excluded.remaining;
END $$;

-- gifq.points_changed: called by the ledger (src/slots.c) in the
-- transaction of any change to a member's account that moves its
-- available points (posted credits less posted and pending debits) from
-- _old to _new (minor units), by _transfer.  Keeps the account's lots when
-- the program has points expiry, then records the thresholds a rise
-- crosses.  The ledger has locked the account's balance row, so one
-- account's lots change one transfer at a time.
CREATE FUNCTION gifq.points_changed(_account bigint, _transfer bigint, _old bigint, _new bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a record;
	hold gifq.transfers;
BEGIN
	SELECT acc.program_id, x.program_id IS NOT NULL AS lots, x.expire_after, p.timezone
	INTO a
	FROM gifq.accounts acc JOIN gifq.programs p ON p.id = acc.program_id
		LEFT JOIN gifq.points_expiry x ON x.program_id = acc.program_id
	WHERE acc.id = _account AND acc.currency = p.points_code;
	IF FOUND AND a.lots THEN
		IF _new < _old THEN
			PERFORM gifq.spend_lots(_account, _transfer, _old - _new);
		ELSE
			-- a hold on these points that ended gives back; anything else earns
			SELECT h.* INTO hold FROM gifq.transfers t
			JOIN gifq.transfers h ON h.id = t.pending_id
			WHERE t.id = _transfer;
			IF hold.debit_account_id = _account THEN
				PERFORM gifq.return_to_lots(hold, _transfer, _new - _old);
			ELSIF a.expire_after IS NOT NULL THEN
				PERFORM gifq.earn_lot(_account, a.program_id, _new - _old,
					a.expire_after, a.timezone);
			END IF;
		END IF;
	END IF;
	IF _new > _old THEN
		PERFORM gifq.thresholds_crossed(_account, _old, _new);
	END IF;
END $$;

CREATE FUNCTION @extschema@.gifq_set_points_expiry(program text, expire_after interval)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
BEGIN
	IF expire_after <= interval '0' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid expire_after %s', expire_after),
			HINT = 'Give a positive interval such as ''12 months'', or NULL so that points earned from now on do not expire.';
	END IF;
	INSERT INTO gifq.points_expiry AS x (program_id, expire_after)
	VALUES (pid, expire_after)
	ON CONFLICT (program_id) DO UPDATE SET expire_after = excluded.expire_after,
		updated_at = now()
	WHERE x.expire_after IS DISTINCT FROM excluded.expire_after;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_set_points_expiry(text, interval) IS 'make points earned from now on expire after an interval (NULL: they do not)';

CREATE FUNCTION @extschema@.gifq_expiring_points(program text, member text,
	within interval DEFAULT '30 days')
RETURNS TABLE(expires_at timestamptz, points @extschema@.gifq_money)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p gifq.programs;
	account bigint;
BEGIN
	SELECT * INTO p FROM gifq.programs x WHERE x.id = gifq.program_id(program);
	SELECT a.id INTO account FROM gifq.members m JOIN gifq.accounts a ON a.member_id = m.id
	WHERE m.program_id = p.id AND m.external_id = member AND a.code = 'points';
	IF account IS NULL THEN
		PERFORM gifq.unknown_member(program, member);
	END IF;
	IF within IS NULL OR within < interval '0' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid within %s', coalesce(within::text, 'NULL')),
			HINT = 'Give how far ahead to look, such as ''30 days''.';
	END IF;
	RETURN QUERY
	SELECT l.expires_at, @extschema@.gifq_from_minor_units(l.remaining, p.points_code)
	FROM gifq.point_lots l
	WHERE l.account_id = account AND l.remaining > 0 AND l.expires_at <= now() + within
	ORDER BY l.expires_at;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_expiring_points(text, text, interval) IS 'a member''s points that expire within an interval, by day of expiry';

-- gifq_expire_points: one transfer per account with expired points, to
-- its program's breakage account in the points code.  The account's
-- balance row is locked first, as a spend locks it before its lots, so the
-- lots read next are final and the transfer (whose debit takes the
-- soonest-expiring lots: these) moves exactly what expired.
CREATE FUNCTION @extschema@.gifq_expire_points() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	due bigint;
	n integer := 0;
BEGIN
	FOR r IN SELECT DISTINCT l.account_id, l.program_id, a.currency
		FROM gifq.point_lots l JOIN gifq.accounts a ON a.id = l.account_id
		WHERE l.remaining > 0 AND l.expires_at <= now()
		ORDER BY l.account_id
	LOOP
		PERFORM 1 FROM gifq.account_slots s WHERE s.account_id = r.account_id FOR NO KEY UPDATE;
		SELECT sum(l.remaining) INTO due FROM gifq.point_lots l
		WHERE l.account_id = r.account_id AND l.remaining > 0 AND l.expires_at <= now();
		CONTINUE WHEN coalesce(due, 0) = 0;
		PERFORM @extschema@.gifq_transfer(r.account_id,
			gifq.system_account(r.program_id, 'breakage', r.currency),
			@extschema@.gifq_from_minor_units(due, r.currency),
			NULL, false, NULL, jsonb_build_object('points_expired', true));
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_expire_points() IS 'move members'' expired points to their program''s breakage account; returns how many accounts lost points';

-- gifq_ledger_verify also checks the lots: each lot's uses account for
-- what it lost, and no account has more expiring points than available
-- ones.  The checks of 0.3.0 stay as they were, as gifq.ledger_problems.
ALTER FUNCTION @extschema@.gifq_ledger_verify() RENAME TO gifq_ledger_problems;
ALTER FUNCTION @extschema@.gifq_ledger_problems() SET SCHEMA gifq;
ALTER FUNCTION gifq.gifq_ledger_problems() RENAME TO ledger_problems;

CREATE FUNCTION @extschema@.gifq_ledger_verify()
RETURNS TABLE(account bigint, problem text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT x.account, x.problem FROM (
		SELECT l.account, l.problem FROM gifq.ledger_problems() l
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
COMMENT ON FUNCTION @extschema@.gifq_ledger_verify() IS 'recompute every balance from the transfers; no rows: the ledger is consistent';

-- whoever was granted EXECUTE on the old function keeps it on the new one
DO $$
DECLARE
	g record;
BEGIN
	FOR g IN SELECT a.grantee::regrole AS grantee, a.is_grantable
		FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
		WHERE p.oid = 'gifq.ledger_problems()'::regprocedure
			AND a.privilege_type = 'EXECUTE' AND a.grantee NOT IN (0, p.proowner)
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION @extschema@.gifq_ledger_verify() TO %s%s',
			g.grantee, CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
		EXECUTE format('REVOKE EXECUTE ON FUNCTION gifq.ledger_problems() FROM %s', g.grantee);
	END LOOP;
END $$;

------------------------------------------------------------------------
-- leaderboards
------------------------------------------------------------------------

-- A board is a program's members ranked by the points their events earned
-- in one period: 'all' time (period_no 0), or one day, week or month
-- numbered by gifq.period_no in the program's time zone.  Reading it from
-- gifq.events costs a scan of the period's events and a sort of the
-- members (seconds among a million), so the trigger gifq.events_points
-- keeps, as events are recorded:
--
-- gifq.member_points: each member's points on each board of the periods
-- their events fell in, and only members with points (> 0: events never
-- earn less than 0).  Its index ..._board_order is the board in order: a
-- member's neighbours are index range scans either side of their entry.
CREATE TABLE gifq.member_points (
	program_id bigint NOT NULL,
	period text NOT NULL CHECK (period IN ('all', 'day', 'week', 'month')),
	period_no integer NOT NULL,
	member_id bigint NOT NULL,
	points bigint NOT NULL CHECK (points > 0),
	PRIMARY KEY (program_id, period, period_no, member_id)
);
CREATE INDEX member_points_board_order
	ON gifq.member_points (program_id, period, period_no, points DESC, member_id);

-- gifq.board_counts: how many members hold each points value on each
-- board, so that an exact rank (1 + the members with more points) is a
-- sum of counts, not a count of members.  The counts are kept at levels:
-- level k counts members by bucket = points >> (5 * k) (level 0: the
-- points themselves; buckets of 0 above it are not kept), so that the
-- members above a value are at most 31 buckets a level (the buckets after
-- its own up to the end of its parent's), some 60 rows for values under
-- 32,768, whatever the number of distinct values.  Every event that
-- moves a member from one value to another would otherwise update the
-- same few rows (every first event of a day moves a member from 0 to the
-- rule's points), so the counts are split in 16 slots, pg_backend_pid()
-- % 16, and summed when read: a slot's count alone can be negative (a
-- member counted in one slot can leave its value in another).  It is the
-- slot the ledger's hot accounts use (src/ledger.c), so two sessions that
-- share a slot here already queue on the program's issuance account.  A
-- transaction's changes to the counts are written at its commit, once
-- per count (gifq.board_note below).
CREATE TABLE gifq.board_counts (
	program_id bigint NOT NULL,
	period text NOT NULL,
	period_no integer NOT NULL,
	level smallint NOT NULL CHECK (level BETWEEN 0 AND 12),
	bucket bigint NOT NULL,
	slot integer NOT NULL,
	members bigint NOT NULL,
	PRIMARY KEY (program_id, period, period_no, level, bucket, slot)
);

-- Members with no points on a board are in neither table; they are
-- ranked last, in id order, read from gifq.members by this index.
CREATE INDEX members_program_order ON gifq.members (program_id, id);

-- Both tables follow from gifq.events, and restoring a dump's events
-- fires gifq.events_points, which fills them again: so pg_dump leaves them
-- out (with their rows too the restore would count every event twice).
-- gifq.board_rebuild fills them after a restore that disabled triggers.

-- gifq.board_note and gifq.board_pending (src/leaderboard.c): the moves
-- of members between points values that a transaction's events make are
-- kept in its backend's memory and written to gifq.board_counts in one
-- upsert just before it commits (a batch of events would otherwise update
-- the same count rows once per event, which costs the square of its
-- size); until then its reads add its pending moves to the counts.
CREATE FUNCTION gifq.board_note(program_id bigint, period text, period_no integer,
	points bigint, members bigint) RETURNS void
	AS 'MODULE_PATHNAME', 'gifq_board_note' LANGUAGE C STRICT;
CREATE FUNCTION gifq.board_pending()
RETURNS TABLE(program_id bigint, period text, period_no integer, level smallint,
	bucket bigint, members bigint)
	AS 'MODULE_PATHNAME', 'gifq_board_pending' LANGUAGE C;

-- gifq.events_points: AFTER INSERT FOR EACH STATEMENT on gifq.events,
-- with the statement's events as new_events.  One statement for all of
-- them: each member's points are summed per board first, so a statement
-- of many events upserts each member's row of each board once, in key
-- order (concurrent statements lock them in one order); then each member's
-- move from its old value to its new one is noted for the counts.
-- (Statement-level rather than per row: a single event costs the same one
-- statement, and a statement of many events costs one, not one each.)
CREATE FUNCTION gifq.events_points() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n_moves bigint;
BEGIN
	WITH earned AS (
		SELECT n.program_id, k.period,
			CASE k.period WHEN 'all' THEN 0
				ELSE gifq.period_no(k.period, n.occurred_at AT TIME ZONE p.timezone) END AS period_no,
			n.member_id, sum(n.points)::bigint AS points
		FROM new_events n
		JOIN gifq.programs p ON p.id = n.program_id
		CROSS JOIN (VALUES ('all'), ('day'), ('week'), ('month')) k(period)
		WHERE n.points > 0
		GROUP BY 1, 2, 3, 4
	), kept AS (
		INSERT INTO gifq.member_points AS mp (program_id, period, period_no, member_id, points)
		SELECT * FROM earned ORDER BY program_id, period, period_no, member_id
		ON CONFLICT ON CONSTRAINT member_points_pkey
			DO UPDATE SET points = mp.points OPERATOR(pg_catalog.+) EXCLUDED.points
		RETURNING mp.program_id, mp.period, mp.period_no, mp.member_id, mp.points
	), moves AS (
		-- each member joins the count of their new points and leaves the
		-- count of their old ones (none from 0)
		SELECT k.program_id, k.period, k.period_no, k.points, 1 AS delta FROM kept k
		UNION ALL
		SELECT k.program_id, k.period, k.period_no, k.points - e.points, -1
		FROM kept k JOIN earned e USING (program_id, period, period_no, member_id)
		WHERE k.points > e.points
	)
	SELECT count(gifq.board_note(m.program_id, m.period, m.period_no, m.points, m.delta))
	INTO STRICT n_moves FROM moves m;
	RETURN NULL;
END $$;
CREATE TRIGGER events_points AFTER INSERT ON gifq.events
	REFERENCING NEW TABLE AS new_events
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.events_points();

-- gifq.board_period: checks a board's period and cohort (QG115) and
-- returns the number of the current period: gifq.period_no of now() in
-- the program's time zone, 0 for 'all'.
CREATE FUNCTION gifq.board_period(_program_id bigint, _period text, _cohort jsonb)
RETURNS integer
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	k text;
	v jsonb;
BEGIN
	IF _period IS NULL OR _period NOT IN ('day', 'week', 'month', 'all') THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid period %s', coalesce(quote_literal(_period), 'NULL')),
			HINT = 'Give ''day'', ''week'', ''month'' or ''all''.';
	END IF;
	IF jsonb_typeof(_cohort) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid cohort %s', coalesce(_cohort::text, 'NULL')),
			HINT = 'Give a JSON object of member attributes, such as ''{"department": "sales"}'', or ''{}'' for everyone.';
	END IF;
	IF _cohort <> '{}' THEN
		FOR k, v IN SELECT key, value FROM jsonb_each(_cohort) LOOP
			IF jsonb_typeof(v) IN ('object', 'array') THEN
				RAISE EXCEPTION USING ERRCODE = 'QG115',
					MESSAGE = format('invalid cohort attribute "%s": %s', k, v),
					HINT = 'A cohort compares attributes with single values: strings, numbers, booleans or null.';
			END IF;
		END LOOP;
	END IF;
	IF _period = 'all' THEN
		RETURN 0;
	END IF;
	RETURN gifq.period_no(_period,
		now() AT TIME ZONE (SELECT p.timezone FROM gifq.programs p WHERE p.id = _program_id));
END $$;

-- gifq.cohort_board: every member of the program in the cohort, with
-- their points on the board (program, period, period_no) and their rank
-- (ties share one, as rank() does), in board order (rank, then member
-- id).  It reads every member of the cohort: O(cohort members), the path
-- of cohorts other than '{}', whose ranks the counts cannot give.
CREATE FUNCTION gifq.cohort_board(_program_id bigint, _period text, _period_no integer,
	_cohort jsonb)
RETURNS TABLE(pos bigint, rnk bigint, member_id bigint, external_id text, points bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT row_number() OVER (ORDER BY coalesce(mp.points, 0) DESC, m.id),
		rank() OVER (ORDER BY coalesce(mp.points, 0) DESC),
		m.id, m.external_id, coalesce(mp.points, 0)
	FROM gifq.members m
	LEFT JOIN gifq.member_points mp ON mp.program_id = _program_id AND mp.period = _period
		AND mp.period_no = _period_no AND mp.member_id = m.id
	WHERE m.program_id = _program_id AND m.attributes @> _cohort
$$;

-- gifq.zero_members: up to _limit members of the program with no points
-- on the board, after (or, _before, before) member _from in id order,
-- nearest first.  It skips the members with points one by one, so it is
-- quick while members without points are common, and reads up to every
-- member of the program when almost none are left (only a board's last
-- members, and members without points on it, ask).
CREATE FUNCTION gifq.zero_members(_program_id bigint, _period text, _period_no integer,
	_from bigint, _before boolean, _limit integer)
RETURNS TABLE(member_id bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF _limit <= 0 THEN
		RETURN;
	END IF;
	IF _before THEN
		RETURN QUERY SELECT m.id FROM gifq.members m
		WHERE m.program_id = _program_id AND m.id < _from
			AND NOT EXISTS (SELECT 1 FROM gifq.member_points mp
				WHERE mp.program_id = _program_id AND mp.period = _period
					AND mp.period_no = _period_no AND mp.member_id = m.id)
		ORDER BY m.id DESC LIMIT _limit;
	ELSE
		RETURN QUERY SELECT m.id FROM gifq.members m
		WHERE m.program_id = _program_id AND m.id > _from
			AND NOT EXISTS (SELECT 1 FROM gifq.member_points mp
				WHERE mp.program_id = _program_id AND mp.period = _period
					AND mp.period_no = _period_no AND mp.member_id = m.id)
		ORDER BY m.id LIMIT _limit;
	END IF;
END $$;

-- gifq.board_rows: rows of a board (member ids and points, in board
-- order) as the API returns them: with their exact ranks from the counts,
-- the transaction's pending moves added (gifq.board_pending), and their
-- external ids.  A row's rank is 1 + the members with more points: those
-- above the highest row (at each level, the buckets after the highest
-- value's up to the end of its parent bucket: at most 31 a level), plus
-- those of each value between it and the highest row (level 0; only the
-- rows' own values have members there, the rows being consecutive).
-- Members without points rank after every member with points.
CREATE FUNCTION gifq.board_rows(_program_id bigint, _period text, _period_no integer,
	_ids bigint[], _points bigint[])
RETURNS TABLE(rnk bigint, external_id text, points bigint)
-- (PL/pgSQL keeps the query's plan; a SQL function's would be made anew at
-- every call.)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	lo bigint := (SELECT min(x) FROM unnest(_points) x);
	hi bigint := (SELECT max(x) FROM unnest(_points) x);
BEGIN
	RETURN QUERY
	WITH r AS (
		SELECT u.member_id, u.points, u.ord
		FROM unnest(_ids, _points) WITH ORDINALITY AS u(member_id, points, ord)
	), pending AS MATERIALIZED (
		SELECT p.level, p.bucket, p.members FROM gifq.board_pending() p
		WHERE p.program_id = _program_id AND p.period = _period
			AND p.period_no = _period_no
	), top AS (
		-- the members with more points than hi
		SELECT coalesce(sum(c.members), 0) AS more
		FROM generate_series(0, 12) k,
		LATERAL (SELECT c.members FROM gifq.board_counts c
			WHERE c.program_id = _program_id AND c.period = _period
				AND c.period_no = _period_no AND c.level = k
				AND c.bucket > hi >> (5 * k) AND c.bucket <= (hi >> (5 * k)) | 31
			UNION ALL
			SELECT p.members FROM pending p
			WHERE p.level = k AND p.bucket > hi >> (5 * k)
				AND p.bucket <= (hi >> (5 * k)) | 31) c
	), v AS (
		-- the members of each value above lo, up to hi
		SELECT c.bucket AS points, sum(c.members) AS members
		FROM (SELECT c.bucket, c.members FROM gifq.board_counts c
			WHERE c.program_id = _program_id AND c.period = _period
				AND c.period_no = _period_no AND c.level = 0
				AND c.bucket > lo AND c.bucket <= hi
			UNION ALL
			SELECT p.bucket, p.members FROM pending p
			WHERE p.level = 0 AND p.bucket > lo AND p.bucket <= hi) c
		GROUP BY c.bucket
	), above AS (
		SELECT v.points, sum(v.members) OVER (ORDER BY v.points DESC) - v.members AS more
		FROM v
	)
	SELECT (1 + (SELECT t.more FROM top t) + CASE WHEN r.points = lo
			THEN (SELECT coalesce(sum(v.members), 0) FROM v) ELSE a.more END)::bigint,
		m.external_id, r.points
	FROM r JOIN gifq.members m ON m.id = r.member_id
	LEFT JOIN above a ON a.points = r.points
	ORDER BY r.ord;
END $$;

-- gifq.leaderboard_top: gifq_leaderboard's work.  For everyone ('{}'),
-- the first _top entries of the board's index, ranked among themselves
-- (a board's first rows hold every member with more points than any of
-- them, so rank() over them is exact), then members without points in id
-- order if the board has fewer: O(top).  A cohort reads gifq.cohort_board.
CREATE FUNCTION gifq.leaderboard_top(_program text, _period text, _cohort jsonb,
	_top integer)
RETURNS TABLE(rnk bigint, external_id text, points bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint;
	n integer;
	ids bigint[];
	pts bigint[];
BEGIN
	IF _top IS NULL OR _top NOT BETWEEN 1 AND 10000 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid top %s', coalesce(_top::text, 'NULL')),
			HINT = 'Give the number of rows to show: 1 to 10000.';
	END IF;
	pid := gifq.program_id(_program);
	n := gifq.board_period(pid, _period, _cohort);
	IF _cohort <> '{}' THEN
		RETURN QUERY SELECT b.rnk, b.external_id, b.points
		FROM gifq.cohort_board(pid, _period, n, _cohort) b
		WHERE b.pos <= _top ORDER BY b.pos;
		RETURN;
	END IF;
	SELECT coalesce(array_agg(t.member_id ORDER BY t.points DESC, t.member_id), '{}'),
		coalesce(array_agg(t.points ORDER BY t.points DESC, t.member_id), '{}')
	INTO ids, pts
	FROM (SELECT mp.member_id, mp.points FROM gifq.member_points mp
		WHERE mp.program_id = pid AND mp.period = _period AND mp.period_no = n
		ORDER BY mp.points DESC, mp.member_id LIMIT _top) t;
	RETURN QUERY
	SELECT (rank() OVER (ORDER BY u.points DESC))::bigint, m.external_id, u.points
	FROM unnest(ids, pts) WITH ORDINALITY AS u(member_id, points, ord)
	JOIN gifq.members m ON m.id = u.member_id
	ORDER BY u.ord;
	IF cardinality(ids) < _top THEN
		-- the board ends: every member with points is above
		RETURN QUERY
		SELECT cardinality(ids) + 1::bigint, m.external_id, 0::bigint
		FROM gifq.zero_members(pid, _period, n, 0, false, _top - cardinality(ids)) z
		JOIN gifq.members m ON m.id = z.member_id
		ORDER BY m.id;
	END IF;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.gifq_leaderboard(program text, period text DEFAULT 'all',
	cohort jsonb DEFAULT '{}', top integer DEFAULT 10)
RETURNS TABLE(rank bigint, member text, points bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN QUERY SELECT * FROM gifq.leaderboard_top(gifq_leaderboard.program,
		gifq_leaderboard.period, gifq_leaderboard.cohort, gifq_leaderboard.top);
END $$;
COMMENT ON FUNCTION @extschema@.gifq_leaderboard(text, text, jsonb, integer) IS 'the top members of a cohort by the points their events earned in the current day, week, month or all time, with exact shared ranks';

-- gifq.leaderboard_around: gifq_leaderboard_around's work (a separate
-- function: plpgsql cannot take a parameter and a result column both
-- named member).  For everyone ('{}'): the member's points on the board,
-- the _radius entries either side of theirs in the board's index (two
-- range scans a side: their own value, then the values beyond), members
-- without points (gifq.zero_members) where the index ends, and the ranks
-- from the counts (gifq.board_rows): O(radius + 31 buckets a level).  A
-- cohort reads its whole board (gifq.cohort_board).
CREATE OR REPLACE FUNCTION gifq.leaderboard_around(_program text, _member text, _period text,
	_cohort jsonb, _radius integer)
RETURNS TABLE(rnk bigint, external_id text, points bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint;
	mid bigint;
	n integer;
	mine bigint;
	up_ids bigint[];
	up_pts bigint[];
	down_ids bigint[];
	down_pts bigint[];
	more bigint[];
BEGIN
	IF _radius IS NULL OR _radius NOT BETWEEN 0 AND 1000 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid radius %s', coalesce(_radius::text, 'NULL')),
			HINT = 'Give how many rows to show above and below the member: 0 to 1000.';
	END IF;
	pid := gifq.program_id(_program);
	SELECT m.id INTO mid FROM gifq.members m
	WHERE m.program_id = pid AND m.external_id = _member;
	IF mid IS NULL THEN
		PERFORM gifq.unknown_member(_program, _member);
	END IF;
	n := gifq.board_period(pid, _period, _cohort);
	IF _cohort <> '{}' THEN
		RETURN QUERY
		WITH b AS MATERIALIZED (SELECT * FROM gifq.cohort_board(pid, _period, n, _cohort)),
		me AS (SELECT b.pos FROM b WHERE b.member_id = mid)
		SELECT b.rnk, b.external_id, b.points FROM b, me
		WHERE b.pos BETWEEN me.pos - _radius AND me.pos + _radius
		ORDER BY b.pos;
		RETURN;
	END IF;

	SELECT mp.points INTO mine FROM gifq.member_points mp
	WHERE mp.program_id = pid AND mp.period = _period AND mp.period_no = n
		AND mp.member_id = mid;
	IF mine IS NOT NULL THEN
		-- above: their value's members with lower ids, then higher values
		SELECT coalesce(array_agg(x.member_id ORDER BY x.points DESC, x.member_id), '{}'),
			coalesce(array_agg(x.points ORDER BY x.points DESC, x.member_id), '{}')
		INTO up_ids, up_pts
		FROM (SELECT y.* FROM (
			(SELECT mp.member_id, mp.points FROM gifq.member_points mp
			WHERE mp.program_id = pid AND mp.period = _period AND mp.period_no = n
				AND mp.points = mine AND mp.member_id < mid
			ORDER BY mp.member_id DESC LIMIT _radius)
			UNION ALL
			(SELECT mp.member_id, mp.points FROM gifq.member_points mp
			WHERE mp.program_id = pid AND mp.period = _period AND mp.period_no = n
				AND mp.points > mine
			ORDER BY mp.points, mp.member_id DESC LIMIT _radius)) y
			ORDER BY y.points, y.member_id DESC LIMIT _radius) x;
		-- below: their value's members with higher ids, then lower values
		SELECT coalesce(array_agg(x.member_id ORDER BY x.points DESC, x.member_id), '{}'),
			coalesce(array_agg(x.points ORDER BY x.points DESC, x.member_id), '{}')
		INTO down_ids, down_pts
		FROM (SELECT y.* FROM (
			(SELECT mp.member_id, mp.points FROM gifq.member_points mp
			WHERE mp.program_id = pid AND mp.period = _period AND mp.period_no = n
				AND mp.points = mine AND mp.member_id > mid
			ORDER BY mp.member_id LIMIT _radius)
			UNION ALL
			(SELECT mp.member_id, mp.points FROM gifq.member_points mp
			WHERE mp.program_id = pid AND mp.period = _period AND mp.period_no = n
				AND mp.points < mine
			ORDER BY mp.points DESC, mp.member_id LIMIT _radius)) y
			ORDER BY y.points DESC, y.member_id LIMIT _radius) x;
		-- past the board's last entry: members without points
		more := ARRAY(SELECT z.member_id FROM gifq.zero_members(pid, _period, n, 0, false,
			_radius - cardinality(down_ids)) z);
		down_ids := down_ids || more;
		down_pts := down_pts || array_fill(0::bigint, ARRAY[cardinality(more)]);
	ELSE
		mine := 0;
		-- above: members without points with lower ids, then the board's
		-- last entries
		up_ids := ARRAY(SELECT z.member_id FROM gifq.zero_members(pid, _period, n, mid, true,
			_radius) z ORDER BY z.member_id);
		up_pts := array_fill(0::bigint, ARRAY[cardinality(up_ids)]);
		IF cardinality(up_ids) < _radius THEN
			SELECT coalesce(array_agg(x.member_id ORDER BY x.points DESC, x.member_id), '{}')
					|| up_ids,
				coalesce(array_agg(x.points ORDER BY x.points DESC, x.member_id), '{}')
					|| up_pts
			INTO up_ids, up_pts
			FROM (SELECT mp.member_id, mp.points FROM gifq.member_points mp
				WHERE mp.program_id = pid AND mp.period = _period AND mp.period_no = n
				ORDER BY mp.points, mp.member_id DESC
				LIMIT _radius - cardinality(up_ids)) x;
		END IF;
		down_ids := ARRAY(SELECT z.member_id FROM gifq.zero_members(pid, _period, n, mid, false,
			_radius) z);
		down_pts := array_fill(0::bigint, ARRAY[cardinality(down_ids)]);
	END IF;
	RETURN QUERY SELECT * FROM gifq.board_rows(pid, _period, n,
		up_ids || mid || down_ids, up_pts || mine || down_pts);
END $$;

CREATE OR REPLACE FUNCTION @extschema@.gifq_leaderboard_around(program text, member text,
	period text DEFAULT 'all', cohort jsonb DEFAULT '{}', radius integer DEFAULT 5)
RETURNS TABLE(rank bigint, member text, points bigint)
-- (SQL, not PL/pgSQL, which cannot take a parameter and a result column
-- both named member: planning this one call costs little.)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT * FROM gifq.leaderboard_around(program, member, period, cohort, radius)
$$;
COMMENT ON FUNCTION @extschema@.gifq_leaderboard_around(text, text, text, jsonb, integer) IS 'a member''s exact rank in a cohort''s leaderboard, with the members radius places above and below';

-- gifq.board_verify: where gifq.member_points and gifq.board_counts
-- disagree with gifq.events, on every board gifq.board_prune keeps (all
-- time, and the current and previous day, week and month); no rows when
-- they agree.  Reads every event: for tests and checks.
CREATE FUNCTION gifq.board_verify()
RETURNS TABLE(program_id bigint, period text, period_no integer, member_id bigint,
	points bigint, problem text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	WITH every AS (
		SELECT e.program_id, k.period,
			CASE k.period WHEN 'all' THEN 0
				ELSE gifq.period_no(k.period, e.occurred_at AT TIME ZONE p.timezone) END AS period_no,
			e.member_id, sum(e.points)::bigint AS points
		FROM gifq.events e
		JOIN gifq.programs p ON p.id = e.program_id
		CROSS JOIN (VALUES ('all'), ('day'), ('week'), ('month')) k(period)
		WHERE e.points > 0
		GROUP BY 1, 2, 3, 4
	), truth AS (
		SELECT t.* FROM every t JOIN gifq.programs p ON p.id = t.program_id
		WHERE t.period = 'all'
			OR t.period_no >= gifq.period_no(t.period, now() AT TIME ZONE p.timezone) - 1
	), kept_points AS (
		SELECT mp.* FROM gifq.member_points mp JOIN gifq.programs p ON p.id = mp.program_id
		WHERE mp.period = 'all'
			OR mp.period_no >= gifq.period_no(mp.period, now() AT TIME ZONE p.timezone) - 1
	), counts AS (
		SELECT t.program_id, t.period, t.period_no, k::smallint AS level,
			t.points >> (5 * k) AS bucket, count(*) AS members
		FROM truth t, generate_series(0, 12) k
		WHERE k = 0 OR t.points >> (5 * k) > 0
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
	SELECT t.program_id, t.period, t.period_no, t.member_id, t.points,
		format('member_points has %s, events give %s',
			coalesce(mp.points::text, 'no row'), coalesce(t.points::text, 'none'))
	FROM truth t
	FULL JOIN kept_points mp USING (program_id, period, period_no, member_id)
	WHERE t.points IS DISTINCT FROM mp.points
	UNION ALL
	SELECT c.program_id, c.period, c.period_no, NULL, c.bucket,
		format('board_counts has %s members at level %s, events give %s',
			coalesce(k.members, 0), c.level, coalesce(c.members, 0))
	FROM counts c
	FULL JOIN kept k USING (program_id, period, period_no, level, bucket)
	WHERE c.members IS DISTINCT FROM k.members
$$;

-- gifq.board_rebuild: recount gifq.member_points and gifq.board_counts
-- from gifq.events (after a restore that disabled triggers, or to repair
-- what gifq.board_verify finds); the counts leave out the transaction's
-- own pending moves, which its commit adds.  Locks both tables against concurrent
-- events for the transaction.  Returns the member_points rows.
CREATE FUNCTION gifq.board_rebuild() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	LOCK TABLE gifq.events IN SHARE MODE;
	LOCK TABLE gifq.member_points, gifq.board_counts IN EXCLUSIVE MODE;
	DELETE FROM gifq.member_points;
	DELETE FROM gifq.board_counts;
	INSERT INTO gifq.member_points (program_id, period, period_no, member_id, points)
	SELECT e.program_id, k.period,
		CASE k.period WHEN 'all' THEN 0
			ELSE gifq.period_no(k.period, e.occurred_at AT TIME ZONE p.timezone) END,
		e.member_id, sum(e.points)
	FROM gifq.events e
	JOIN gifq.programs p ON p.id = e.program_id
	CROSS JOIN (VALUES ('all'), ('day'), ('week'), ('month')) k(period)
	WHERE e.points > 0
	GROUP BY 1, 2, 3, 4;
	GET DIAGNOSTICS n = ROW_COUNT;
	-- less the transaction's pending moves, which its commit will add
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

-- gifq.board_prune: what boards no longer need.  Deletes the rows of
-- days, weeks and months that ended before the previous one (no board
-- shows them: only the current period is read; the previous one is kept
-- for a clock or time zone at its edge); then folds the slots of each
-- remaining count into slot 0 and drops counts of 0, so ranks sum fewer
-- rows.  Locks each board's counts in key order, as events do; safe
-- while events are recorded (an event that comes for a deleted period
-- starts its rows again, and no board reads them).  Meant for a nightly
-- job (pg_cron); returns the rows deleted.
CREATE FUNCTION gifq.board_prune() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
	total bigint := 0;
BEGIN
	WITH cur AS (
		SELECT p.id, k.period, gifq.period_no(k.period, now() AT TIME ZONE p.timezone) AS no
		FROM gifq.programs p CROSS JOIN (VALUES ('day'), ('week'), ('month')) k(period)
	)
	DELETE FROM gifq.member_points mp USING cur
	WHERE mp.program_id = cur.id AND mp.period = cur.period AND mp.period_no < cur.no - 1;
	GET DIAGNOSTICS n = ROW_COUNT;
	total := total + n;
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

-- 0.4.0 read boards from the events (by program and time, an index every
-- event paid for and nothing reads now); what it recorded is counted now
DROP FUNCTION gifq.leaderboard(text, text, jsonb);
DROP INDEX gifq.events_program_time;
SELECT gifq.board_rebuild() IS NOT NULL AS boards_counted;

------------------------------------------------------------------------
-- privileges (see the note in gifq--0.1.0--0.2.0.sql)
------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
	@extschema@.gifq_set_points_expiry(text, interval),
	@extschema@.gifq_expiring_points(text, text, interval),
	@extschema@.gifq_expire_points(),
	@extschema@.gifq_ledger_verify()
FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gifq FROM PUBLIC;
