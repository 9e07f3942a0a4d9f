-- gifq--0.9.0--0.10.0.sql: expiries keep the global lock order: each
-- locks every balance row it will change, in (account, slot) order, before
-- it changes any.  (The rest is C: gifq_expire_holds takes every due hold
-- at once.)

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.10.0'" to load this file. \quit

------------------------------------------------------------------------
-- gifq_expire_rewards: every due reward in one statement
------------------------------------------------------------------------

-- Until 0.9.0 it voided due rewards in batches of 1,000.  Each batch
-- locked its holds' balance slots in the global order, but a later batch
-- locked its own after the earlier batches' were held: out of that order.
-- A reward sent meanwhile (it locks a funding slot, then the reward
-- account) could then wait for a slot the expiry held while holding one
-- the next batch needed, and one of the two was aborted with a deadlock.
-- Now every due reward is taken in one statement (gifq.void_holds locks
-- all their slots in order before it changes any), as gifq_expire_holds
-- takes its holds.
CREATE OR REPLACE FUNCTION @extschema@.gifq_expire_rewards() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ids bigint[];
BEGIN
	WITH due AS (
		SELECT r.id, r.hold_id FROM gifq.rewards r
		WHERE r.status = 'pending' AND r.expires_at <= now()
		ORDER BY r.id FOR UPDATE SKIP LOCKED
	), voided AS (
		SELECT gifq.void_holds(array_agg(d.hold_id)) AS n FROM due d
	)
	SELECT array_agg(d.id) INTO ids FROM due d, voided v;
	IF ids IS NULL THEN
		RETURN 0;
	END IF;
	UPDATE gifq.rewards r SET status = 'expired', expired_at = now()
	WHERE r.id = ANY (ids);
	PERFORM gifq.emit(r.program_id, 'reward.expired', jsonb_build_object(
		'reward_id', r.id,
		'value', @extschema@.gifq_from_minor_units(r.value, r.currency)::text,
		'expires_at', r.expires_at))
	FROM gifq.rewards r WHERE r.id = ANY (ids) ORDER BY r.id;
	RETURN cardinality(ids);
END $$;

------------------------------------------------------------------------
-- gifq_expire_points: every balance row locked before the first transfer
------------------------------------------------------------------------

-- Until 0.9.0 it locked each account with points due just before moving
-- them, in account order: after the first, it held the breakage account
-- while it locked the next member, out of the global order.  A
-- transaction holding that member and waiting for the breakage account (a
-- transfer to it by hand) deadlocked with it.  Now the accounts, and the
-- breakage account each gives its points to (made if missing), are found
-- first and all their balance rows locked in the global order; the lots
-- are read after the lock, as before, so they are final.
CREATE OR REPLACE FUNCTION @extschema@.gifq_expire_points() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	accounts bigint[];
	breakage bigint[];
	currencies text[];
	due bigint;
	n integer := 0;
BEGIN
	SELECT array_agg(d.account_id ORDER BY d.account_id),
		array_agg(gifq.system_account(d.program_id, 'breakage', d.currency) ORDER BY d.account_id),
		array_agg(d.currency ORDER BY d.account_id)
	INTO accounts, breakage, currencies
	FROM (SELECT DISTINCT l.account_id, l.program_id, a.currency
		FROM gifq.point_lots l JOIN gifq.accounts a ON a.id = l.account_id
		WHERE l.remaining > 0 AND l.expires_at <= now()) d;
	IF accounts IS NULL THEN
		RETURN 0;
	END IF;
	PERFORM 1 FROM gifq.account_slots s
	WHERE s.account_id = ANY (accounts || breakage)
	ORDER BY s.account_id, s.slot FOR NO KEY UPDATE;
	FOR i IN 1 .. cardinality(accounts) LOOP
		SELECT sum(l.remaining) INTO due FROM gifq.point_lots l
		WHERE l.account_id = accounts[i] AND l.remaining > 0 AND l.expires_at <= now();
		CONTINUE WHEN coalesce(due, 0) = 0;
		PERFORM @extschema@.gifq_transfer(accounts[i], breakage[i],
			@extschema@.gifq_from_minor_units(due, currencies[i]),
			NULL, false, NULL, jsonb_build_object('points_expired', true));
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;

------------------------------------------------------------------------
-- gifq.streak_runs: counted in C, as late events count
------------------------------------------------------------------------

-- A late event's streak has been recounted in C since 0.9.0's library
-- (src/streaks.c), while gifq_define_streak, when a type's grace changes,
-- still recounted its streaks with this SQL function: two codings of one
-- rule.  Now the function is that C, with the same arguments and result.
CREATE OR REPLACE FUNCTION gifq.streak_runs(_member_id bigint, _streak_type text, _grace integer,
	OUT current_streak integer, OUT longest_streak integer)
	AS 'MODULE_PATHNAME', 'gifq_streak_runs' LANGUAGE C STABLE STRICT;
