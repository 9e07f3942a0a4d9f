-- gifq--0.1.0--0.2.0.sql: the ledger (programs, members, accounts,
-- transfers, holds, funding, history)

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------
-- state tables
------------------------------------------------------------------------

-- A program: one platform's rewards scheme, with its own currency, points
-- code and conversion rate.  "code" is the platform's own identifier.
CREATE TABLE gifq.programs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	code text NOT NULL UNIQUE,
	currency text NOT NULL,
	points_code text NOT NULL,
	points_per_unit numeric NOT NULL CHECK (points_per_unit > 0),
	timezone text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (length(code) BETWEEN 1 AND 200)
);

CREATE TABLE gifq.members (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	program_id bigint NOT NULL REFERENCES gifq.programs,
	external_id text NOT NULL,
	email text,
	country text,
	attributes jsonb NOT NULL DEFAULT '{}',
	verified boolean NOT NULL DEFAULT false,
	blocked boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (program_id, external_id),
	CHECK (length(external_id) BETWEEN 1 AND 200),
	CHECK (jsonb_typeof(attributes) = 'object')
);

-- An account.  Its balances live in gifq.account_slots: one row for an
-- ordinary account, several for a hot system account (see docs/ledger.md).
CREATE TABLE gifq.accounts (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	program_id bigint NOT NULL REFERENCES gifq.programs,
	member_id bigint REFERENCES gifq.members,
	kind text NOT NULL CHECK (kind IN ('points', 'funding', 'settlement',
		'issuance', 'liability', 'payable', 'revenue', 'breakage', 'custom')),
	code text NOT NULL,
	currency text NOT NULL,
	debits_must_not_exceed_credits boolean NOT NULL DEFAULT false,
	credits_must_not_exceed_debits boolean NOT NULL DEFAULT false,
	slots integer NOT NULL DEFAULT 1 CHECK (slots BETWEEN 1 AND 64),
	low_balance bigint CHECK (low_balance >= 0),
	low_balance_armed boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)),
	CHECK ((kind = 'points') = (member_id IS NOT NULL))
);
CREATE UNIQUE INDEX accounts_member_key ON gifq.accounts (member_id, code)
	WHERE member_id IS NOT NULL;
CREATE UNIQUE INDEX accounts_program_key ON gifq.accounts (program_id, code, currency)
	WHERE member_id IS NULL;

-- Balances in minor units.  Updated in place (HOT: no indexed column
-- changes, hence the fillfactor); every change also appends to
-- gifq.entries.
CREATE TABLE gifq.account_slots (
	account_id bigint NOT NULL REFERENCES gifq.accounts,
	slot integer NOT NULL,
	debits_posted bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
	credits_posted bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
	debits_pending bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
	credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
	version bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT '-infinity',
	PRIMARY KEY (account_id, slot)
) WITH (fillfactor = 50);

-- Transfers are immutable: a hold (pending) is resolved by a later
-- transfer that names it (post, void or expire), never by changing it.
-- amount: minor units moved; for a post the amount posted, for a void or
-- an expiry zero (the hold's own amount is released).
CREATE TABLE gifq.transfers (
	id bigint GENERATED ALWAYS AS IDENTITY (CACHE 32) PRIMARY KEY,
	program_id bigint NOT NULL,
	kind text NOT NULL CHECK (kind IN ('posted', 'pending', 'post', 'void', 'expire')),
	debit_account_id bigint NOT NULL,
	credit_account_id bigint NOT NULL,
	amount bigint NOT NULL CHECK (amount >= 0),
	currency text NOT NULL,
	pending_id bigint,
	timeout interval,
	idempotency_key text,
	metadata jsonb NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (debit_account_id <> credit_account_id),
	CHECK ((kind IN ('posted', 'pending')) = (pending_id IS NULL)),
	CHECK (kind IN ('posted', 'pending') OR idempotency_key IS NULL),
	CHECK (kind = 'pending' OR timeout IS NULL),
	CHECK (kind IN ('void', 'expire') OR amount > 0)
);
CREATE UNIQUE INDEX transfers_idempotency_key ON gifq.transfers (program_id, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX transfers_resolves ON gifq.transfers (pending_id)
	WHERE pending_id IS NOT NULL;

-- The state of each hold: which slots it reserved, and until when.
CREATE TABLE gifq.holds (
	transfer_id bigint PRIMARY KEY REFERENCES gifq.transfers,
	debit_slot integer NOT NULL,
	credit_slot integer NOT NULL,
	expires_at timestamptz,
	status text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'posted', 'voided', 'expired')),
	resolved_by bigint REFERENCES gifq.transfers
);
CREATE INDEX holds_expiry ON gifq.holds (expires_at) WHERE status = 'pending';

-- History: each slot's balances after every change, for balance-as-of
-- queries in one index look-up per slot.  Append-only.
CREATE TABLE gifq.entries (
	account_id bigint NOT NULL,
	slot integer NOT NULL,
	version bigint NOT NULL,
	at timestamptz NOT NULL,
	transfer_id bigint,
	debits_posted bigint NOT NULL,
	credits_posted bigint NOT NULL,
	debits_pending bigint NOT NULL,
	credits_pending bigint NOT NULL
);
CREATE INDEX entries_as_of ON gifq.entries (account_id, slot, at, version);

-- Events for the platform (see docs/ledger.md): also sent as NOTIFY on
-- channel gifq_events.
CREATE TABLE gifq.outbox (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	program_id bigint REFERENCES gifq.programs,
	event_type text NOT NULL,
	payload jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

SELECT pg_catalog.pg_extension_config_dump('gifq.programs', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.members', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.accounts', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.account_slots', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.transfers', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.holds', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.entries', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.programs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.members_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.accounts_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.transfers_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.outbox_id_seq', '');

------------------------------------------------------------------------
-- append-only tables refuse UPDATE, DELETE and TRUNCATE
------------------------------------------------------------------------

CREATE FUNCTION gifq.refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION USING
		ERRCODE = 'QG120',
		MESSAGE = format('rows of %I.%I are immutable: %s refused',
			TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP),
		HINT = 'Correct a transfer with a new transfer; resolve a hold with gifq_post or gifq_void.';
END $$;

CREATE TRIGGER transfers_immutable BEFORE UPDATE OR DELETE ON gifq.transfers
	FOR EACH ROW EXECUTE FUNCTION gifq.refuse_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON gifq.transfers
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.refuse_change();
CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON gifq.entries
	FOR EACH ROW EXECUTE FUNCTION gifq.refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON gifq.entries
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.refuse_change();

------------------------------------------------------------------------
-- internal helpers
------------------------------------------------------------------------

-- gifq.program_id: the program's id, or QG101.
CREATE FUNCTION gifq.program_id(program text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	result bigint;
BEGIN
	SELECT id INTO result FROM gifq.programs WHERE code = program;
	IF result IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG101',
			MESSAGE = format('unknown program "%s"', program),
			HINT = 'Create it first with gifq_create_program().';
	END IF;
	RETURN result;
END $$;

-- gifq.check_code: refuse an empty, overlong or control-character id.
CREATE FUNCTION gifq.check_code(what text, value text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF value IS NULL OR length(value) NOT BETWEEN 1 AND 200
		OR value ~ '[[:cntrl:]]' OR value <> btrim(value) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid %s "%s"', what, coalesce(value, 'NULL')),
			HINT = 'Use 1 to 200 printable characters without leading or trailing spaces.';
	END IF;
END $$;

-- gifq.new_account: an account with its balance slots, or the id of the
-- one that exists with the same owner, code and currency (so concurrent
-- first uses create one account).
CREATE FUNCTION gifq.new_account(_program bigint, _member bigint, _kind text,
	_code text, _currency text, _dmnec boolean, _cmned boolean, _slots integer)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	result bigint;
BEGIN
	IF _member IS NULL THEN
		INSERT INTO gifq.accounts AS a (program_id, member_id, kind, code, currency,
			debits_must_not_exceed_credits, credits_must_not_exceed_debits, slots)
		VALUES (_program, NULL, _kind, _code, _currency, _dmnec, _cmned, _slots)
		ON CONFLICT (program_id, code, currency) WHERE member_id IS NULL DO NOTHING
		RETURNING a.id INTO result;
	ELSE
		INSERT INTO gifq.accounts AS a (program_id, member_id, kind, code, currency,
			debits_must_not_exceed_credits, credits_must_not_exceed_debits, slots)
		VALUES (_program, _member, _kind, _code, _currency, _dmnec, _cmned, _slots)
		ON CONFLICT (member_id, code) WHERE member_id IS NOT NULL DO NOTHING
		RETURNING a.id INTO result;
	END IF;
	IF result IS NULL THEN
		SELECT a.id INTO STRICT result FROM gifq.accounts a
		WHERE a.program_id = _program AND a.member_id IS NOT DISTINCT FROM _member
			AND a.code = _code AND (_member IS NOT NULL OR a.currency = _currency);
		RETURN result;
	END IF;
	INSERT INTO gifq.account_slots (account_id, slot)
	SELECT result, s FROM generate_series(0, _slots - 1) s;
	RETURN result;
END $$;

-- gifq.system_account: a program's system account of a kind in a
-- currency, created on first use.  Hot kinds get 16 balance slots.
CREATE FUNCTION gifq.system_account(_program bigint, _kind text, _currency text)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	result bigint;
BEGIN
	SELECT id INTO result FROM gifq.accounts a
	WHERE a.program_id = _program AND a.member_id IS NULL
		AND a.code = _kind AND a.currency = _currency;
	IF result IS NULL THEN
		result := gifq.new_account(_program, NULL, _kind, _kind, _currency,
			_kind = 'funding', false, 16);
	END IF;
	RETURN result;
END $$;

-- gifq.row_is_mine: whether this transaction wrote or locked the row.
CREATE FUNCTION gifq.row_is_mine(xmin xid, xmax xid) RETURNS boolean
	AS 'MODULE_PATHNAME', 'gifq_row_is_mine' LANGUAGE C VOLATILE STRICT;

-- gifq.rebalance: give slot "target" of a multi-slot account room for
-- "need" more minor units of debits (dmnec) or credits (not dmnec), by
-- moving posted credits (or debits) to it from sibling slots.  The
-- account's totals do not change; each moved slot gets a history entry,
-- all stamped with one time.  False when the whole account has less room
-- than need.
--
-- Siblings are first taken only while free (SKIP LOCKED), one at a time,
-- until there is room enough, so a rebalance neither waits for nor blocks
-- more slots than it needs.  Only when the free slots lack the room does
-- it give back what it took (the inner block's rollback releases the
-- locks) and wait for more, as below.  A session that locked its target
-- earlier in its transaction (a batch, or several calls in one
-- transaction) leaves out the slots other sessions hold at that moment,
-- so near its limit the account can refuse such a debit (QG107) that
-- would fit once those sessions commit.
CREATE FUNCTION gifq.rebalance(account bigint, target integer, need bigint,
	dmnec boolean) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	free integer;
	taken integer[];
	mine boolean;
BEGIN
	BEGIN
		PERFORM 1 FROM gifq.account_slots
		WHERE account_id = account AND slot = target FOR UPDATE;
		taken := ARRAY[target];
		LOOP
			IF gifq.slot_room(account, taken, dmnec) >= need THEN
				PERFORM gifq.pool_room(account, target, need, dmnec, taken);
				RETURN true;
			END IF;
			SELECT slot INTO free FROM gifq.account_slots
			WHERE account_id = account AND slot <> ALL (taken)
			ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED;
			EXIT WHEN NOT FOUND;
			taken := taken || free;
		END LOOP;
		RAISE EXCEPTION USING ERRCODE = 'QG199';
	EXCEPTION WHEN SQLSTATE 'QG199' THEN
		NULL;
	END;
	-- A session that holds none of the account's slots waits for all of
	-- them in slot order: it holds only accounts with lower ids, so the
	-- wait goes up the (account, slot) order transfers lock in.  One that
	-- already holds its target (locked earlier in its transaction, as a
	-- batch locks all its slots up front) may hold accounts with higher ids
	-- too, so it must not wait at all: it takes the siblings that are free.
	SELECT gifq.row_is_mine(xmin, xmax) INTO mine FROM gifq.account_slots
	WHERE account_id = account AND slot = target;
	IF NOT mine THEN
		taken := ARRAY(SELECT slot FROM gifq.account_slots
			WHERE account_id = account ORDER BY slot FOR UPDATE);
	ELSE
		taken := ARRAY[target] || ARRAY(SELECT slot FROM gifq.account_slots
			WHERE account_id = account AND slot <> target ORDER BY slot
			FOR UPDATE SKIP LOCKED);
	END IF;
	IF gifq.slot_room(account, taken, dmnec) < need THEN
		RETURN false;
	END IF;
	PERFORM gifq.pool_room(account, target, need, dmnec, taken);
	RETURN true;
END $$;

-- gifq.spread_slots: even out the room of all slots of a multi-slot
-- account with a limit (after a large deposit lands on one slot, say), so
-- that the first debits of many sessions need no rebalance.  Locks every
-- slot in slot order.  Returns false for an account without a limit.
CREATE FUNCTION gifq.spread_slots(account bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a gifq.accounts;
	taken integer[];
BEGIN
	SELECT * INTO STRICT a FROM gifq.accounts WHERE id = account;
	IF NOT (a.debits_must_not_exceed_credits OR a.credits_must_not_exceed_debits) THEN
		RETURN false;
	END IF;
	taken := ARRAY(SELECT slot FROM gifq.account_slots
		WHERE account_id = account ORDER BY slot FOR UPDATE);
	PERFORM gifq.pool_room(account, 0, 0, a.debits_must_not_exceed_credits, taken);
	RETURN true;
END $$;

-- gifq.slot_room: the room of some slots (NULL: all of them): credits
-- beyond debits and pending debits (dmnec), or the mirror.  For an account
-- with debits_must_not_exceed_credits, over all slots, its available
-- balance.
CREATE FUNCTION gifq.slot_room(account bigint, slots integer[], dmnec boolean)
RETURNS bigint
LANGUAGE sql STABLE CALLED ON NULL INPUT SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(sum(CASE WHEN dmnec
		THEN credits_posted - debits_posted - debits_pending
		ELSE debits_posted - credits_posted - credits_pending END), 0)::bigint
	FROM gifq.account_slots
	WHERE account_id = account AND (slots IS NULL OR slot = ANY(slots))
$$;

-- gifq.pool_room: redistribute the room of some locked slots: the target
-- gets need plus an even share of the rest, the others an even share.
CREATE FUNCTION gifq.pool_room(account bigint, target integer, need bigint,
	dmnec boolean, slots integer[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	room bigint := gifq.slot_room(account, slots, dmnec);
	n integer := cardinality(slots);
	share bigint := (room - need) / n;
	stamp timestamptz;
BEGIN
	SELECT greatest(clock_timestamp(), max(updated_at)) INTO stamp
	FROM gifq.account_slots WHERE account_id = account AND slot = ANY(slots);
	WITH u AS (
		UPDATE gifq.account_slots a SET
			credits_posted = CASE WHEN dmnec
				THEN a.debits_posted + a.debits_pending + r.room ELSE a.credits_posted END,
			debits_posted = CASE WHEN dmnec THEN a.debits_posted
				ELSE a.credits_posted + a.credits_pending + r.room END,
			version = a.version + 1, updated_at = stamp
		FROM (SELECT x.slot, share + CASE WHEN x.slot = target
				THEN need + (room - need) - share * n ELSE 0 END AS room
			FROM unnest(slots) AS x(slot)) r
		WHERE a.account_id = account AND a.slot = r.slot
		RETURNING a.*)
	INSERT INTO gifq.entries (account_id, slot, version, at, transfer_id,
		debits_posted, credits_posted, debits_pending, credits_pending)
	SELECT account_id, slot, version, updated_at, NULL,
		debits_posted, credits_posted, debits_pending, credits_pending
	FROM u;
END $$;

-- gifq.emit: record an event in gifq.outbox and NOTIFY gifq_events.
CREATE FUNCTION gifq.emit(program bigint, event_type text, payload jsonb)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	result bigint;
BEGIN
	INSERT INTO gifq.outbox (program_id, event_type, payload)
	VALUES (program, event_type, payload) RETURNING id INTO result;
	PERFORM pg_notify('gifq_events', jsonb_build_object('id', result,
		'type', event_type, 'data', payload)::text);
	RETURN result;
END $$;

-- gifq.check_low_balance: after a change to an account with a low-balance
-- level, fire balance.low once when its available balance is below the
-- level, and re-arm when it is back at or above it.  The conditional
-- UPDATE lets exactly one of several concurrent sessions fire.
CREATE FUNCTION gifq.check_low_balance(account bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a gifq.accounts;
	available bigint;
BEGIN
	SELECT * INTO a FROM gifq.accounts WHERE id = account;
	IF a.low_balance IS NULL THEN
		RETURN;
	END IF;
	available := gifq.slot_room(account, NULL, true);
	IF available < a.low_balance AND a.low_balance_armed THEN
		UPDATE gifq.accounts SET low_balance_armed = false
		WHERE id = account AND low_balance_armed;
		IF FOUND THEN
			PERFORM gifq.emit(a.program_id, 'balance.low', jsonb_build_object(
				'program', (SELECT code FROM gifq.programs WHERE id = a.program_id),
				'account', account, 'currency', a.currency,
				'available', @extschema@.gifq_from_minor_units(available, a.currency)::text,
				'level', @extschema@.gifq_from_minor_units(a.low_balance, a.currency)::text));
		END IF;
	ELSIF available >= a.low_balance AND NOT a.low_balance_armed THEN
		UPDATE gifq.accounts SET low_balance_armed = true
		WHERE id = account AND NOT low_balance_armed;
	END IF;
END $$;

-- gifq.balance_of: four slot totals as a gifq_balance.
CREATE FUNCTION gifq.balance_of(currency text, debits_posted numeric,
	credits_posted numeric, debits_pending numeric, credits_pending numeric)
RETURNS @extschema@.gifq_balance
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT ROW(
		@extschema@.gifq_from_minor_units((credits_posted - debits_posted)::bigint, currency),
		@extschema@.gifq_from_minor_units(debits_pending::bigint, currency),
		@extschema@.gifq_from_minor_units(credits_pending::bigint, currency),
		@extschema@.gifq_from_minor_units((credits_posted - debits_posted - debits_pending)::bigint, currency)
	)::@extschema@.gifq_balance
$$;

------------------------------------------------------------------------
-- gifq_money from minor units
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_from_minor_units(units bigint, currency text)
RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gifq_from_minor_units(bigint, text) IS 'an amount from minor units: the inverse of gifq_minor_units';

------------------------------------------------------------------------
-- programs and members
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_create_program(program text, currency text,
	points_code text DEFAULT 'PTS', points_per_unit numeric DEFAULT 100,
	timezone text DEFAULT 'UTC') RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p gifq.programs;
	result bigint;
	k text;
BEGIN
	PERFORM gifq.check_code('program', program);
	PERFORM @extschema@.gifq_money(0, coalesce(currency, ''));
	PERFORM @extschema@.gifq_money(0, coalesce(points_code, ''));
	IF points_per_unit IS NULL OR points_per_unit <= 0
		OR points_per_unit IN ('Infinity', 'NaN') THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid points_per_unit %s', coalesce(points_per_unit::text, 'NULL')),
			HINT = 'Give the number of points one unit of the currency is worth, such as 100.';
	END IF;
	BEGIN
		PERFORM now() AT TIME ZONE coalesce(timezone, '');
	EXCEPTION WHEN invalid_parameter_value THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid time zone "%s"', timezone),
			HINT = 'Use a name from pg_timezone_names, such as ''Europe/Paris''.';
	END;

	INSERT INTO gifq.programs AS x (code, currency, points_code, points_per_unit, timezone)
	VALUES (program, currency, points_code, points_per_unit, timezone)
	ON CONFLICT (code) DO NOTHING RETURNING x.id INTO result;
	IF result IS NULL THEN
		SELECT * INTO STRICT p FROM gifq.programs x WHERE x.code = program;
		k := CASE
			WHEN p.currency <> currency THEN 'currency'
			WHEN p.points_code <> points_code THEN 'points_code'
			WHEN p.points_per_unit <> points_per_unit THEN 'points_per_unit'
			WHEN p.timezone <> timezone THEN 'timezone' END;
		IF k IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'QG109',
				MESSAGE = format('program "%s" exists with a different %s', program, k),
				HINT = 'gifq_create_program is idempotent only with the same arguments.';
		END IF;
		RETURN p.id;
	END IF;

	FOREACH k IN ARRAY ARRAY['funding', 'settlement', 'liability', 'payable',
		'revenue', 'breakage']
	LOOP
		PERFORM gifq.system_account(result, k, currency);
	END LOOP;
	PERFORM gifq.system_account(result, 'issuance', points_code);
	RETURN result;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_create_program(text, text, text, numeric, text) IS 'create a program and its system accounts; idempotent';

CREATE FUNCTION @extschema@.gifq_upsert_member(program text, member text,
	email text DEFAULT NULL, country text DEFAULT NULL,
	attributes jsonb DEFAULT '{}', verified boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
	result bigint;
BEGIN
	PERFORM gifq.check_code('member', member);
	IF email IS NOT NULL AND (length(email) > 320 OR email !~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$') THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid email "%s"', email),
			HINT = 'Give an address such as ''ana@example.com'', or NULL.';
	END IF;
	IF country IS NOT NULL AND country !~ '^[A-Z]{2}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid country "%s"', country),
			HINT = 'Give an ISO 3166-1 alpha-2 code such as ''US'', or NULL.';
	END IF;
	IF attributes IS NULL OR jsonb_typeof(attributes) <> 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid attributes %s', coalesce(attributes::text, 'NULL')),
			HINT = 'Give a JSON object such as ''{"department": "sales"}''.';
	END IF;

	INSERT INTO gifq.members AS m (program_id, external_id, email, country, attributes, verified)
	VALUES (pid, member, email, country, attributes, coalesce(verified, false))
	ON CONFLICT (program_id, external_id) DO UPDATE SET
		email = coalesce(EXCLUDED.email, m.email),
		country = coalesce(EXCLUDED.country, m.country),
		attributes = m.attributes || EXCLUDED.attributes,
		verified = m.verified OR EXCLUDED.verified,
		updated_at = now()
	RETURNING m.id INTO result;
	PERFORM gifq.new_account(pid, result, 'points', 'points',
		(SELECT points_code FROM gifq.programs WHERE id = pid), true, false, 1);
	RETURN result;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_upsert_member(text, text, text, text, jsonb, boolean) IS 'create or update a member; NULL email or country keep the stored value, attributes are merged';

------------------------------------------------------------------------
-- accounts
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_account(program text, member text DEFAULT NULL,
	kind text DEFAULT 'points', currency text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p gifq.programs;
	result bigint;
BEGIN
	SELECT * INTO p FROM gifq.programs WHERE id = gifq.program_id(program);
	IF member IS NOT NULL THEN
		IF kind IS DISTINCT FROM 'points' THEN
			RAISE EXCEPTION USING ERRCODE = 'QG115',
				MESSAGE = format('invalid member account kind "%s"', kind),
				HINT = 'A member has one account, of kind ''points''.';
		END IF;
		SELECT a.id INTO result FROM gifq.accounts a JOIN gifq.members m ON m.id = a.member_id
		WHERE m.program_id = p.id AND m.external_id = member AND a.code = 'points';
		IF result IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'QG102',
				MESSAGE = format('unknown member "%s" in program "%s"', member, program),
				HINT = 'Create the member first with gifq_upsert_member().';
		END IF;
		RETURN result;
	END IF;
	IF kind IN ('funding', 'settlement', 'liability', 'payable', 'revenue', 'breakage') THEN
		PERFORM @extschema@.gifq_money(0, coalesce(currency, p.currency));
		RETURN gifq.system_account(p.id, kind, coalesce(currency, p.currency));
	ELSIF kind = 'issuance' THEN
		PERFORM @extschema@.gifq_money(0, coalesce(currency, p.points_code));
		RETURN gifq.system_account(p.id, kind, coalesce(currency, p.points_code));
	END IF;
	SELECT a.id INTO result FROM gifq.accounts a
	WHERE a.program_id = p.id AND a.member_id IS NULL AND a.kind = 'custom'
		AND a.code = gifq_account.kind AND (gifq_account.currency IS NULL OR a.currency = gifq_account.currency)
	ORDER BY a.id LIMIT 1;
	IF result IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG103',
			MESSAGE = format('unknown account "%s" in program "%s"', kind, program),
			HINT = 'System kinds are funding, settlement, issuance, liability, payable, revenue and breakage; create others with gifq_create_account().';
	END IF;
	RETURN result;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_account(text, text, text, text) IS 'a member''s points account, or a program''s system or own account';

CREATE FUNCTION @extschema@.gifq_create_account(program text, code text,
	currency text, flags text[] DEFAULT '{}', slots integer DEFAULT 1) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
	a gifq.accounts;
	bad text;
	result bigint;
BEGIN
	PERFORM gifq.check_code('account code', code);
	IF code IN ('points', 'funding', 'settlement', 'issuance', 'liability',
		'payable', 'revenue', 'breakage') THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('account code "%s" is reserved', code),
			HINT = 'Use gifq_account() for system accounts; give your own accounts other codes.';
	END IF;
	PERFORM @extschema@.gifq_money(0, coalesce(currency, ''));
	flags := coalesce(flags, '{}');
	SELECT f INTO bad FROM unnest(flags) f
	WHERE f IS NULL OR f NOT IN ('debits_must_not_exceed_credits', 'credits_must_not_exceed_debits')
	LIMIT 1;
	IF FOUND OR ('debits_must_not_exceed_credits' = ANY(flags)
		AND 'credits_must_not_exceed_debits' = ANY(flags)) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid account flags %s', flags::text),
			HINT = 'Give at most one of debits_must_not_exceed_credits and credits_must_not_exceed_debits.';
	END IF;
	IF slots IS NULL OR slots NOT BETWEEN 1 AND 64 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid slot count %s', coalesce(slots::text, 'NULL')),
			HINT = 'Give 1 for an ordinary account, up to 64 for a hot one.';
	END IF;
	result := gifq.new_account(pid, NULL, 'custom', code, currency,
		'debits_must_not_exceed_credits' = ANY(flags),
		'credits_must_not_exceed_debits' = ANY(flags), slots);
	SELECT * INTO STRICT a FROM gifq.accounts WHERE id = result;
	IF a.debits_must_not_exceed_credits <> ('debits_must_not_exceed_credits' = ANY(flags))
		OR a.credits_must_not_exceed_debits <> ('credits_must_not_exceed_debits' = ANY(flags))
		OR a.slots <> slots THEN
		RAISE EXCEPTION USING ERRCODE = 'QG109',
			MESSAGE = format('account "%s" in %s exists with different flags or slots', code, currency),
			HINT = 'gifq_create_account is idempotent only with the same arguments.';
	END IF;
	RETURN result;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_create_account(text, text, text, text[], integer) IS 'create an account of the program''s own; idempotent';

------------------------------------------------------------------------
-- transfers and holds
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_transfer(debit_account bigint, credit_account bigint,
	amount @extschema@.gifq_money, idempotency_key text DEFAULT NULL,
	pending boolean DEFAULT false, timeout interval DEFAULT NULL,
	metadata jsonb DEFAULT '{}') RETURNS bigint
	AS 'MODULE_PATHNAME', 'gifq_transfer'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.gifq_transfer(bigint, bigint, @extschema@.gifq_money, text, boolean, interval, jsonb) IS 'move amount from debit_account to credit_account, or hold it (pending); idempotent by key';

CREATE FUNCTION @extschema@.gifq_post(pending_id bigint, amount @extschema@.gifq_money DEFAULT NULL)
RETURNS bigint
	AS 'MODULE_PATHNAME', 'gifq_post'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.gifq_post(bigint, @extschema@.gifq_money) IS 'post a hold in full or in part; the rest is released';

CREATE FUNCTION @extschema@.gifq_void(pending_id bigint) RETURNS bigint
	AS 'MODULE_PATHNAME', 'gifq_void'
	LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.gifq_void(bigint) IS 'release a hold';

CREATE FUNCTION @extschema@.gifq_expire_holds() RETURNS integer
	AS 'MODULE_PATHNAME', 'gifq_expire_holds'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.gifq_expire_holds() IS 'release every hold past its timeout; returns how many';

-- The batch form: all transfers or none.  Every element is checked and
-- converted before anything moves; then every balance slot the batch will
-- use is locked in account id order, the order single transfers and
-- gifq_expire_holds take them in, so a batch does not deadlock with them.
CREATE FUNCTION @extschema@.gifq_transfers(transfers jsonb) RETURNS bigint[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t jsonb;
	i integer := 0;
	bad text;
	debits bigint[] := '{}';
	credits bigint[] := '{}';
	amounts @extschema@.gifq_money[] := '{}';
	timeouts interval[] := '{}';
	ids bigint[] := '{}';
BEGIN
	IF transfers IS NULL OR jsonb_typeof(transfers) <> 'array'
		OR jsonb_array_length(transfers) = 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG118',
			MESSAGE = format('invalid transfer batch %s', left(coalesce(transfers::text, 'NULL'), 200)),
			HINT = 'Give a non-empty JSON array of objects with debit_account, credit_account and amount.';
	END IF;
	FOR t IN SELECT value FROM jsonb_array_elements(transfers) LOOP
		i := i + 1;
		IF jsonb_typeof(t) <> 'object' OR NOT t ?& ARRAY['debit_account', 'credit_account', 'amount']
			OR jsonb_typeof(t->'debit_account') <> 'number'
			OR jsonb_typeof(t->'credit_account') <> 'number'
			OR jsonb_typeof(t->'amount') <> 'string' THEN
			RAISE EXCEPTION USING ERRCODE = 'QG118',
				MESSAGE = format('invalid transfer %s in batch: %s', i, left(t::text, 200)),
				HINT = 'Each transfer needs debit_account and credit_account (numbers) and amount (a string such as "10.00 USD").';
		END IF;
		SELECT k INTO bad FROM jsonb_object_keys(t) k
		WHERE k NOT IN ('debit_account', 'credit_account', 'amount', 'idempotency_key',
			'pending', 'timeout', 'metadata') LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION USING ERRCODE = 'QG118',
				MESSAGE = format('unknown field "%s" in transfer %s of batch', bad, i),
				HINT = 'Fields are debit_account, credit_account, amount, idempotency_key, pending, timeout and metadata.';
		END IF;
		BEGIN
			debits := debits || (t->>'debit_account')::bigint;
			credits := credits || (t->>'credit_account')::bigint;
			amounts := amounts || (t->>'amount')::@extschema@.gifq_money;
			timeouts := timeouts || (t->>'timeout')::interval;
			PERFORM (t->>'pending')::boolean;
			IF t ? 'idempotency_key' AND jsonb_typeof(t->'idempotency_key') NOT IN ('string', 'null')
				OR t ? 'metadata' AND jsonb_typeof(t->'metadata') <> 'object' THEN
				RAISE EXCEPTION USING ERRCODE = 'QG118';
			END IF;
		EXCEPTION WHEN invalid_text_representation OR invalid_datetime_format
			OR datetime_field_overflow OR numeric_value_out_of_range
			OR SQLSTATE 'QG002' OR SQLSTATE 'QG003' OR SQLSTATE 'QG004'
			OR SQLSTATE 'QG005' OR SQLSTATE 'QG118' THEN
			RAISE EXCEPTION USING ERRCODE = 'QG118',
				MESSAGE = format('invalid transfer %s in batch: %s', i, left(t::text, 200)),
				DETAIL = CASE WHEN SQLSTATE = 'QG118' THEN NULL ELSE SQLERRM END,
				HINT = 'Accounts are integers, amount a gifq_money text such as "10.00 USD", pending a boolean, timeout an interval, idempotency_key a string, metadata an object.';
		END;
	END LOOP;

	-- the slot of each account that this session's transfers will use
	PERFORM 1 FROM gifq.account_slots s JOIN gifq.accounts a ON a.id = s.account_id
	WHERE s.account_id = ANY (debits || credits) AND s.slot = pg_backend_pid() % a.slots
	ORDER BY s.account_id FOR UPDATE OF s;

	i := 0;
	FOR t IN SELECT value FROM jsonb_array_elements(transfers) LOOP
		i := i + 1;
		ids := ids || @extschema@.gifq_transfer(debits[i], credits[i], amounts[i],
			t->>'idempotency_key', coalesce((t->>'pending')::boolean, false),
			timeouts[i], coalesce(t->'metadata', '{}'));
	END LOOP;
	RETURN ids;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_transfers(jsonb) IS 'make several transfers, all or none; returns their ids in order';

------------------------------------------------------------------------
-- balances
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_balance(account bigint) RETURNS @extschema@.gifq_balance
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	result @extschema@.gifq_balance;
BEGIN
	SELECT (gifq.balance_of(a.currency, sum(s.debits_posted), sum(s.credits_posted),
		sum(s.debits_pending), sum(s.credits_pending))).*
	INTO result
	FROM gifq.accounts a JOIN gifq.account_slots s ON s.account_id = a.id
	WHERE a.id = account GROUP BY a.currency;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG103',
			MESSAGE = format('unknown account %s', account),
			HINT = 'Find account ids with gifq_account().';
	END IF;
	RETURN result;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_balance(bigint) IS 'an account''s balances now';

CREATE FUNCTION @extschema@.gifq_balance_at(account bigint, at timestamptz)
RETURNS @extschema@.gifq_balance
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a gifq.accounts;
	result @extschema@.gifq_balance;
BEGIN
	SELECT * INTO a FROM gifq.accounts WHERE id = account;
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
COMMENT ON FUNCTION @extschema@.gifq_balance_at(bigint, timestamptz) IS 'an account''s balances as they were at a past time';

CREATE FUNCTION @extschema@.gifq_member_balance(program text, member text)
RETURNS @extschema@.gifq_balance
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.gifq_balance(@extschema@.gifq_account(program, member, 'points'))
$$;
COMMENT ON FUNCTION @extschema@.gifq_member_balance(text, text) IS 'a member''s points balance';

CREATE FUNCTION @extschema@.gifq_program_balance(program text, currency text DEFAULT NULL)
RETURNS @extschema@.gifq_balance
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
	cur text := coalesce(gifq_program_balance.currency,
		(SELECT p.currency FROM gifq.programs p WHERE p.id = pid));
	account bigint;
BEGIN
	PERFORM @extschema@.gifq_money(0, cur);
	SELECT a.id INTO account FROM gifq.accounts a
	WHERE a.program_id = pid AND a.member_id IS NULL AND a.code = 'funding'
		AND a.currency = cur;
	IF account IS NULL THEN
		RETURN gifq.balance_of(cur, 0, 0, 0, 0);
	END IF;
	RETURN @extschema@.gifq_balance(account);
END $$;
COMMENT ON FUNCTION @extschema@.gifq_program_balance(text, text) IS 'a program''s funding in a currency (default: its own); zero where never funded';

------------------------------------------------------------------------
-- funding
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_fund(program text, amount @extschema@.gifq_money,
	idempotency_key text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
	cur text := @extschema@.gifq_currency(amount);
BEGIN
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
COMMENT ON FUNCTION @extschema@.gifq_fund(text, @extschema@.gifq_money, text) IS 'add funding to a program in the amount''s currency; idempotent by key';

CREATE FUNCTION @extschema@.gifq_set_low_balance(program text, level @extschema@.gifq_money)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	account bigint := gifq.system_account(gifq.program_id(program), 'funding',
		@extschema@.gifq_currency(level));
BEGIN
	IF @extschema@.gifq_minor_units(level) < 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid low-balance level %s', level),
			HINT = 'Give a level of zero or more.';
	END IF;
	UPDATE gifq.accounts SET low_balance = @extschema@.gifq_minor_units(level),
		low_balance_armed = gifq.slot_room(account, NULL, true) >= @extschema@.gifq_minor_units(level)
	WHERE id = account;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_set_low_balance(text, @extschema@.gifq_money) IS 'fire balance.low when the program''s funding in that currency falls below level';

------------------------------------------------------------------------
-- verification
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_ledger_verify()
RETURNS TABLE(account bigint, problem text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	WITH moves AS (
		-- every transfer's effect on its two accounts, recomputed
		SELECT t.debit_account_id AS acct,
			CASE WHEN t.kind IN ('posted', 'post') THEN t.amount ELSE 0 END AS dp,
			0::bigint AS cp,
			CASE t.kind WHEN 'pending' THEN t.amount
				WHEN 'posted' THEN 0 ELSE -p.amount END AS dpend,
			0::bigint AS cpend
		FROM gifq.transfers t LEFT JOIN gifq.transfers p ON p.id = t.pending_id
		UNION ALL
		SELECT t.credit_account_id, 0,
			CASE WHEN t.kind IN ('posted', 'post') THEN t.amount ELSE 0 END,
			0,
			CASE t.kind WHEN 'pending' THEN t.amount
				WHEN 'posted' THEN 0 ELSE -p.amount END
		FROM gifq.transfers t LEFT JOIN gifq.transfers p ON p.id = t.pending_id
	),
	recomputed AS (
		SELECT acct, sum(dp) dp, sum(cp) cp, sum(dpend) dpend, sum(cpend) cpend
		FROM moves GROUP BY acct
	),
	stored AS (
		SELECT a.id, a.currency, a.debits_must_not_exceed_credits dmnec,
			a.credits_must_not_exceed_debits cmned,
			sum(s.debits_posted) dp, sum(s.credits_posted) cp,
			sum(s.debits_pending) dpend, sum(s.credits_pending) cpend
		FROM gifq.accounts a JOIN gifq.account_slots s ON s.account_id = a.id
		GROUP BY a.id
	),
	problems AS (
		SELECT s.id, format('stored balances (posted debits %s, posted credits %s, pending debits %s, pending credits %s) differ from its transfers (%s, %s, %s, %s)',
			s.dp, s.cp, s.dpend, s.cpend, coalesce(r.dp, 0), coalesce(r.cp, 0),
			coalesce(r.dpend, 0), coalesce(r.cpend, 0)) AS problem
		FROM stored s LEFT JOIN recomputed r ON r.acct = s.id
		WHERE (s.dp, s.cp, s.dpend, s.cpend) IS DISTINCT FROM
			(coalesce(r.dp, 0), coalesce(r.cp, 0), coalesce(r.dpend, 0), coalesce(r.cpend, 0))
		UNION ALL
		SELECT r.acct, 'transfers name an account that does not exist'
		FROM recomputed r WHERE NOT EXISTS (SELECT 1 FROM gifq.accounts a WHERE a.id = r.acct)
		UNION ALL
		SELECT s.id, format('debits (%s posted + %s pending) exceed credits (%s) despite debits_must_not_exceed_credits',
			s.dp, s.dpend, s.cp)
		FROM stored s WHERE s.dmnec AND s.dp + s.dpend > s.cp
		UNION ALL
		SELECT s.id, format('credits (%s posted + %s pending) exceed debits (%s) despite credits_must_not_exceed_debits',
			s.cp, s.cpend, s.dp)
		FROM stored s WHERE s.cmned AND s.cp + s.cpend > s.dp
		UNION ALL
		SELECT t.id, format('transfer %s in %s moves between accounts in %s and %s',
			t.id, t.currency, d.currency, c.currency)
		FROM gifq.transfers t JOIN gifq.accounts d ON d.id = t.debit_account_id
			JOIN gifq.accounts c ON c.id = t.credit_account_id
		WHERE d.currency <> t.currency OR c.currency <> t.currency
		UNION ALL
		SELECT t.id, format('pending transfer %s has hold status %s but %s resolving transfer',
			t.id, coalesce(h.status, 'none'),
			CASE WHEN r.id IS NULL THEN 'no' ELSE 'a ' || r.kind END)
		FROM gifq.transfers t LEFT JOIN gifq.holds h ON h.transfer_id = t.id
			LEFT JOIN gifq.transfers r ON r.pending_id = t.id
		WHERE t.kind = 'pending' AND (h.transfer_id IS NULL
			OR (h.status = 'pending') <> (r.id IS NULL)
			OR (r.id IS NOT NULL AND h.status <> CASE r.kind WHEN 'post' THEN 'posted'
				WHEN 'void' THEN 'voided' ELSE 'expired' END))
		UNION ALL
		SELECT sl.account_id, format('slot %s: balances differ from its last history entry', sl.slot)
		FROM gifq.account_slots sl
		LEFT JOIN LATERAL (SELECT * FROM gifq.entries e
			WHERE e.account_id = sl.account_id AND e.slot = sl.slot
			ORDER BY e.version DESC LIMIT 1) e ON true
		WHERE (sl.debits_posted, sl.credits_posted, sl.debits_pending, sl.credits_pending)
			IS DISTINCT FROM (coalesce(e.debits_posted, 0), coalesce(e.credits_posted, 0),
				coalesce(e.debits_pending, 0), coalesce(e.credits_pending, 0))
		UNION ALL
		SELECT NULL::bigint, format('currency %s: debits (%s posted, %s pending) and credits (%s posted, %s pending) do not balance',
			currency, sum(dp), sum(dpend), sum(cp), sum(cpend))
		FROM stored GROUP BY currency
		HAVING sum(dp) <> sum(cp) OR sum(dpend) <> sum(cpend)
	)
	SELECT id, problem FROM problems ORDER BY id NULLS LAST, problem
$$;
COMMENT ON FUNCTION @extschema@.gifq_ledger_verify() IS 'recompute every balance from the transfers; no rows: the ledger is consistent';

------------------------------------------------------------------------
-- privileges: the API functions run as the extension's owner (SECURITY
-- DEFINER), so nobody may call them until granted.  Grant EXECUTE to the
-- roles your application uses; gifq's own roles come in a later version.
------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
	@extschema@.gifq_create_program(text, text, text, numeric, text),
	@extschema@.gifq_upsert_member(text, text, text, text, jsonb, boolean),
	@extschema@.gifq_account(text, text, text, text),
	@extschema@.gifq_create_account(text, text, text, text[], integer),
	@extschema@.gifq_transfer(bigint, bigint, @extschema@.gifq_money, text, boolean, interval, jsonb),
	@extschema@.gifq_transfers(jsonb),
	@extschema@.gifq_post(bigint, @extschema@.gifq_money),
	@extschema@.gifq_void(bigint),
	@extschema@.gifq_expire_holds(),
	@extschema@.gifq_balance(bigint),
	@extschema@.gifq_balance_at(bigint, timestamptz),
	@extschema@.gifq_member_balance(text, text),
	@extschema@.gifq_program_balance(text, text),
	@extschema@.gifq_fund(text, @extschema@.gifq_money, text),
	@extschema@.gifq_set_low_balance(text, @extschema@.gifq_money),
	@extschema@.gifq_ledger_verify()
FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gifq FROM PUBLIC;
