-- gifq--0.7.0--0.8.0.sql: security and operations: gifq's roles and least
-- privilege, program scoping, the audit trail, erasure of members' personal
-- data, outbound safety and restores that give back what was dumped.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.8.0'" to load this file. \quit


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
