-- gifq--0.9.0--0.10.0.sql: expiries keep the global lock order.  (The
-- rest is C: gifq_expire_holds takes every due hold at once.)

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
