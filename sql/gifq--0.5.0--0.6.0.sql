-- gifq--0.5.0--0.6.0.sql: the rest of gamification: events recorded in C
-- (one at a time and set-wise in batches), streak milestones paid through
-- rules, and points expiry (lots of expiring points kept by the ledger,
-- spent soonest-expiring first, expired to breakage).

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
		SELECT g.code AS program, m.external_id AS member INTO award
		FROM gifq.members m JOIN gifq.programs g ON g.id = m.program_id
		WHERE m.id = NEW.member_id;
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
	t gifq.transfers;
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
			SELECT * INTO t FROM gifq.transfers WHERE id = _transfer;
			SELECT * INTO hold FROM gifq.transfers WHERE id = t.pending_id;
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
-- privileges (see the note in gifq--0.1.0--0.2.0.sql)
------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
	@extschema@.gifq_set_points_expiry(text, interval),
	@extschema@.gifq_expiring_points(text, text, interval),
	@extschema@.gifq_expire_points(),
	@extschema@.gifq_ledger_verify()
FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gifq FROM PUBLIC;
