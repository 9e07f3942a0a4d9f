-- gifq--0.2.0--0.3.0.sql: the catalog, rates and limits, and redemption
-- orders (gifq_redeem and the order state machine)

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.3.0'" to load this file. \quit

------------------------------------------------------------------------
-- the ledger's hot tables, lighter per statement
------------------------------------------------------------------------

-- A redemption writes two transfers, two holds and four balance slots.
-- PostgreSQL deserialises every CHECK constraint of a table for each
-- statement that writes it, and runs a trigger per row for a foreign key;
-- measured, that was a sixth of a redemption's time.  So the rule that
-- balances are never negative moves into the code that changes a slot
-- (slots.c), and the shape of transfer rows, hold
-- statuses and the links of holds to transfers, which only gifq's own
-- functions write, are checked by gifq_ledger_verify() (see
-- docs/ledger.md), which also reports a negative balance.
-- The outbox drops its foreign key to programs: each event would take a
-- KEY SHARE lock on its program's row, and every redemption writes one.
ALTER TABLE gifq.account_slots
	DROP CONSTRAINT account_slots_debits_posted_check,
	DROP CONSTRAINT account_slots_credits_posted_check,
	DROP CONSTRAINT account_slots_debits_pending_check,
	DROP CONSTRAINT account_slots_credits_pending_check;
ALTER TABLE gifq.transfers
	DROP CONSTRAINT transfers_amount_check,
	DROP CONSTRAINT transfers_kind_check,
	DROP CONSTRAINT transfers_check,
	DROP CONSTRAINT transfers_check1,
	DROP CONSTRAINT transfers_check2,
	DROP CONSTRAINT transfers_check3,
	DROP CONSTRAINT transfers_check4;
ALTER TABLE gifq.holds
	DROP CONSTRAINT holds_status_check,
	DROP CONSTRAINT holds_transfer_id_fkey,
	DROP CONSTRAINT holds_resolved_by_fkey;
ALTER TABLE gifq.outbox DROP CONSTRAINT outbox_program_id_fkey;
-- Holds without a timeout (an order's) need no place in the expiry index.
DROP INDEX gifq.holds_expiry;
CREATE INDEX holds_expiry ON gifq.holds (expires_at)
	WHERE status = 'pending' AND expires_at IS NOT NULL;

------------------------------------------------------------------------
-- state tables
------------------------------------------------------------------------

-- The gift-card catalog, one row per provider brand.  Money columns are
-- minor units of the brand's currency.  A brand has either a list of
-- denominations or a min/max range.  A brand missing from a later catalog
-- is discontinued (discontinued_at set), never deleted, so its orders
-- keep their brand.  featured_rank and sponsored are set by an admin and
-- survive reloads.
CREATE TABLE gifq.brands (
	id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 500),
	search_name text NOT NULL,
	country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
	currency text NOT NULL,
	categories text[] NOT NULL DEFAULT '{}',
	denominations bigint[],
	min_value bigint,
	max_value bigint,
	discount_pct numeric NOT NULL DEFAULT 0 CHECK (discount_pct >= 0 AND discount_pct < 100),
	in_stock boolean NOT NULL,
	image_url text,
	redemption_instructions text,
	provider_updated_at timestamptz,
	featured_rank integer,
	sponsored boolean NOT NULL DEFAULT false,
	discontinued_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (denominations IS NOT NULL AND cardinality(denominations) > 0
		OR min_value IS NOT NULL AND max_value IS NOT NULL),
	CHECK (min_value > 0 AND min_value <= max_value OR min_value IS NULL),
	CHECK (NOT sponsored OR featured_rank IS NOT NULL)
);
CREATE INDEX brands_country ON gifq.brands (country, currency) WHERE discontinued_at IS NULL;
CREATE INDEX brands_categories ON gifq.brands USING gin (categories);

-- The last catalog load: its etag (for If-None-Match) and when.  One row,
-- written by the first load (not by this script, so that a dump restores
-- it without a duplicate).
CREATE TABLE gifq.catalog_state (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	etag text,
	loaded_at timestamptz,
	brands integer NOT NULL DEFAULT 0
);

-- Points per unit of a currency other than the program's own (the
-- program's own rate is gifq.programs.points_per_unit).
CREATE TABLE gifq.rates (
	program_id bigint NOT NULL REFERENCES gifq.programs,
	currency text NOT NULL,
	points_per_unit numeric NOT NULL CHECK (points_per_unit > 0),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (program_id, currency)
);

-- Redemption limits of a program; NULL: no such limit.  Values are in
-- the program's currency or its points code and are compared in points.
CREATE TABLE gifq.limits (
	program_id bigint PRIMARY KEY REFERENCES gifq.programs,
	max_redemptions_per_day integer CHECK (max_redemptions_per_day >= 0),
	max_value_per_day @extschema@.gifq_money,
	max_single_value @extschema@.gifq_money,
	verification_above @extschema@.gifq_money,
	recipient_yearly_flag @extschema@.gifq_money,
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Redemption orders.  Money columns are minor units: amount (face value),
-- cost and margin (amount - cost) in the card's currency, points in the
-- program's points code.
-- No foreign keys on purpose: every order would take a KEY SHARE lock on
-- its program and brand rows, and concurrent redemptions of one brand
-- would then contend on multixacts.  gifq_redeem checks both.
-- No CHECK either, for the reason given at the top of this file: the
-- rules of an order row (amount > 0, 0 <= cost <= amount, margin =
-- amount - cost, points > 0, a known status), which only gifq's functions
-- write, are checked by gifq_ledger_verify(); the order_transition
-- trigger keeps the status machine.
-- points_hold and funding_hold are the order's current holds (a retry
-- places new ones).
CREATE TABLE gifq.orders (
	id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	program_id bigint NOT NULL,
	member_id bigint NOT NULL,
	brand_id text NOT NULL,
	amount bigint NOT NULL,
	currency text NOT NULL,
	cost bigint NOT NULL,
	margin bigint NOT NULL,
	points bigint NOT NULL,
	points_code text NOT NULL,
	recipient_email text,
	recipient_given boolean NOT NULL,
	idempotency_key text NOT NULL,
	status text NOT NULL DEFAULT 'pending',
	status_reason text,
	points_hold bigint,
	funding_hold bigint,
	flags text[] NOT NULL DEFAULT '{}',
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	lease_until timestamptz,
	last_error text,
	provider_order_id text,
	redemption_url text,
	expiry_date date,
	code_last4 text,
	delivered_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	created_by text NOT NULL,
	UNIQUE (program_id, idempotency_key)
);
CREATE INDEX orders_member_recent ON gifq.orders (member_id, created_at);
CREATE INDEX orders_brand_recent ON gifq.orders (brand_id, created_at);
CREATE INDEX orders_due ON gifq.orders (next_attempt_at) WHERE status = 'pending';

-- Every status change of an order: when, who, from, to and why.  (Its
-- creation is recorded on the order itself: created_at, created_by.)
CREATE TABLE gifq.order_transitions (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id bigint NOT NULL,
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	actor text NOT NULL,
	from_status text,
	to_status text NOT NULL,
	reason text NOT NULL
);
CREATE INDEX order_transitions_order ON gifq.order_transitions (order_id, id);

-- Flags raised on a member, once per flag and period: the yearly
-- recipient total (the US 1099 level) crossing the program's level.
CREATE TABLE gifq.member_flags (
	program_id bigint NOT NULL,
	member_id bigint NOT NULL,
	flag text NOT NULL,
	period text NOT NULL,
	total bigint NOT NULL,
	level bigint NOT NULL,
	order_id bigint NOT NULL,
	flagged_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (member_id, flag, period)
);

-- The serialisation point of a member's redemptions: gifq_redeem updates
-- it (an update, not only a lock, so a concurrent repeatable-read
-- redemption fails to serialise instead of missing the other's order).
ALTER TABLE gifq.members ADD COLUMN last_redeemed_at timestamptz;

SELECT pg_catalog.pg_extension_config_dump('gifq.brands', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.catalog_state', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.rates', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.limits', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.orders', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.order_transitions', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.member_flags', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.orders_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.order_transitions_id_seq', '');

CREATE TRIGGER order_transitions_immutable BEFORE UPDATE OR DELETE ON gifq.order_transitions
	FOR EACH ROW EXECUTE FUNCTION gifq.refuse_change();
CREATE TRIGGER order_transitions_no_truncate BEFORE TRUNCATE ON gifq.order_transitions
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.refuse_change();

-- The version of what a redemption reads besides the member (programs,
-- rates, limits, brands, the programs' own accounts).  Each backend caches
-- those per program, brand and currency (src/settings.c) and trusts its
-- cache while the statement that locks the member sees the same version:
-- every change to them bumps it, in the changing transaction, so a
-- snapshot that shows the version an entry was read at shows exactly that
-- entry.  It starts at the clock, so a version of a dropped and re-created
-- extension is not mistaken for an old one.  Not dumped: a restore starts
-- with empty caches.
CREATE TABLE gifq.settings_version (
	version bigint NOT NULL
);
INSERT INTO gifq.settings_version
	VALUES ((extract(epoch FROM clock_timestamp()) * 1000000)::bigint);

CREATE FUNCTION gifq.settings_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	UPDATE gifq.settings_version SET version = version + 1;
	RETURN NULL;
END $$;

-- programs_settings_changed, rates_settings_changed, ...
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['programs', 'rates', 'limits', 'brands'] LOOP
		EXECUTE format('CREATE TRIGGER %I'
			' AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gifq.%I'
			' FOR EACH STATEMENT EXECUTE FUNCTION gifq.settings_changed()',
			t || '_settings_changed', t);
	END LOOP;
END $$;
-- Members' accounts are not cached, and creating a member must not queue
-- on the version row: only the programs' own accounts bump it.
CREATE TRIGGER accounts_settings_changed_new
	AFTER INSERT OR UPDATE ON gifq.accounts
	FOR EACH ROW WHEN (NEW.member_id IS NULL)
	EXECUTE FUNCTION gifq.settings_changed();
CREATE TRIGGER accounts_settings_changed_old
	AFTER UPDATE OR DELETE ON gifq.accounts
	FOR EACH ROW WHEN (OLD.member_id IS NULL)
	EXECUTE FUNCTION gifq.settings_changed();
CREATE TRIGGER accounts_settings_changed_truncate
	AFTER TRUNCATE ON gifq.accounts
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.settings_changed();

------------------------------------------------------------------------
-- internal helpers
------------------------------------------------------------------------

-- gifq.refuse_change: QG120 for a change to rows gifq keeps for good, with
-- a hint that fits the table.
CREATE OR REPLACE FUNCTION gifq.refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION USING
		ERRCODE = 'QG120',
		MESSAGE = format('rows of %I.%I are immutable: %s refused',
			TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP),
		HINT = CASE TG_TABLE_NAME
			WHEN 'orders' THEN 'Orders are kept for good; cancel a pending order with gifq_cancel_order().'
			WHEN 'order_transitions' THEN 'The audit trail of orders is append-only.'
			ELSE 'Correct a transfer with a new transfer; resolve a hold with gifq_post or gifq_void.' END;
END $$;

-- gifq.actor: the role that called in, even from inside a SECURITY
-- DEFINER function (where current_user is the extension's owner).
CREATE FUNCTION gifq.actor() RETURNS text
	AS 'MODULE_PATHNAME', 'gifq_actor' LANGUAGE C STABLE;

-- gifq.fold: a name lower-cased and stripped of accents, for search.
-- Decomposes (NFKD) and drops the combining marks; letters that do not
-- decompose get their usual spelling.  Only lower() outside UTF-8.
CREATE FUNCTION gifq.fold(s text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF getdatabaseencoding() <> 'UTF8' THEN
		RETURN lower(s);
	END IF;
	RETURN replace(replace(replace(translate(
		lower(regexp_replace(normalize(s, NFKD), '[\u0300-\u036f]', '', 'g')),
		U&'\00f8\0142\0111\00f0\00fe\0131', 'olddti'),
		U&'\00df', 'ss'), U&'\00e6', 'ae'), U&'\0153', 'oe');
END $$;

-- gifq.order_reference: the reference (provider idempotency key) of an
-- order.  A standard SQL body, bound when created, so it needs no
-- search_path setting and is inlined into the queries that call it.
-- The planner inlines it only if the body is immutable and, the function
-- not being STRICT, needs no strictness proof: hence || rather than the
-- stable concat(), and no STRICT (NULL gives NULL all the same).
CREATE FUNCTION gifq.order_reference(id bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'gifq-ord-' OPERATOR(pg_catalog.||)
	pg_catalog.lpad(id::text, GREATEST(9, pg_catalog.length(id::text)), '0');

-- gifq.order_transition: enforce the order state machine and audit every
-- status change; the columns an order was created with never change.
--   pending    -> submitted | canceled | failed
--   submitted  -> processing | delivered | failed
--   processing -> delivered | failed
--   failed     -> pending (gifq_retry_order)
CREATE FUNCTION gifq.order_transition() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF (NEW.id, NEW.program_id, NEW.member_id, NEW.brand_id, NEW.amount,
		NEW.currency, NEW.cost, NEW.margin, NEW.points, NEW.points_code,
		NEW.idempotency_key, NEW.created_at, NEW.created_by,
		NEW.recipient_email, NEW.recipient_given)
		IS DISTINCT FROM (OLD.id, OLD.program_id, OLD.member_id, OLD.brand_id,
		OLD.amount, OLD.currency, OLD.cost, OLD.margin, OLD.points, OLD.points_code,
		OLD.idempotency_key, OLD.created_at, OLD.created_by,
		OLD.recipient_email, OLD.recipient_given) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG120',
			MESSAGE = format('order %s: only its status and fulfilment columns may change', OLD.id),
			HINT = 'Cancel the order and redeem again to change what was ordered.';
	END IF;
	IF NEW.status IS DISTINCT FROM OLD.status THEN
		IF NOT (OLD.status, NEW.status) IN (('pending', 'submitted'),
			('pending', 'canceled'), ('pending', 'failed'),
			('submitted', 'processing'), ('submitted', 'delivered'),
			('submitted', 'failed'), ('processing', 'delivered'),
			('processing', 'failed'), ('failed', 'pending')) THEN
			RAISE EXCEPTION USING ERRCODE = 'QG216',
				MESSAGE = format('order %s cannot go from %s to %s', OLD.id, OLD.status, NEW.status),
				HINT = 'Orders go pending -> submitted -> (processing ->) delivered or failed; only pending orders can be canceled and only failed ones retried.';
		END IF;
		-- the reason is the status_reason this update sets; one left over
		-- from an earlier change is not this change's reason
		INSERT INTO gifq.order_transitions (order_id, actor, from_status, to_status, reason)
		VALUES (NEW.id, gifq.actor(), OLD.status, NEW.status,
			CASE WHEN NEW.status_reason IS DISTINCT FROM OLD.status_reason
				THEN coalesce(NEW.status_reason, 'no reason given')
				ELSE 'no reason given' END);
	END IF;
	NEW.updated_at := now();
	RETURN NEW;
END $$;

CREATE TRIGGER orders_transition BEFORE UPDATE ON gifq.orders
	FOR EACH ROW EXECUTE FUNCTION gifq.order_transition();
CREATE TRIGGER orders_no_delete BEFORE DELETE ON gifq.orders
	FOR EACH ROW EXECUTE FUNCTION gifq.refuse_change();
CREATE TRIGGER orders_no_truncate BEFORE TRUNCATE ON gifq.orders
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.refuse_change();

-- gifq.brand: the brand's row, or QG201 (QG115 for NULL).
CREATE FUNCTION gifq.brand(_id text) RETURNS gifq.brands
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	b gifq.brands;
BEGIN
	IF _id IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = 'brand_id must not be NULL',
			HINT = 'List brands with gifq_catalog().';
	END IF;
	SELECT * INTO b FROM gifq.brands WHERE id = _id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG201',
			MESSAGE = format('unknown brand "%s"', _id),
			HINT = 'List brands with gifq_catalog(); load the catalog with gifq_catalog_load().';
	END IF;
	RETURN b;
END $$;

-- gifq.offers: whether the brand sells a card of this face value (minor units).
CREATE FUNCTION gifq.offers(b gifq.brands, amount bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN b.denominations IS NOT NULL
		THEN amount = ANY (b.denominations)
		ELSE amount BETWEEN b.min_value AND b.max_value END
$$;

-- gifq.nearest: the face value the brand sells nearest to amount (the
-- lower one on a tie).
CREATE FUNCTION gifq.nearest(b gifq.brands, amount bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN b.denominations IS NOT NULL
		THEN (SELECT d FROM unnest(b.denominations) d
			ORDER BY abs(d - amount), d LIMIT 1)
		ELSE least(greatest(amount, b.min_value), b.max_value) END
$$;

-- gifq.popularity: each brand's orders in the last 30 days, canceled
-- ones left out.
CREATE FUNCTION gifq.popularity(brand text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT count(*) FROM gifq.orders o
	WHERE o.brand_id = brand AND o.created_at > now() - interval '30 days'
		AND o.status <> 'canceled'
$$;

------------------------------------------------------------------------
-- catalog
------------------------------------------------------------------------

-- gifq.catalog_error: QG217 naming the brand and the field.
CREATE FUNCTION gifq.catalog_error(brand text, problem text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'QG217',
		MESSAGE = CASE WHEN brand IS NULL THEN format('invalid catalog: %s', problem)
			ELSE format('invalid catalog: brand "%s": %s', brand, problem) END,
		HINT = 'Pass the provider''s GET /api/v1/catalog response unchanged: {"brands": [...], "etag": "..."}; nothing was loaded.';
END $$;

-- gifq.catalog_brand: one brand of a provider catalog, checked field by
-- field, as a gifq.brands row (featured_rank and sponsored left NULL).
CREATE FUNCTION gifq.catalog_brand(j jsonb) RETURNS gifq.brands
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	b gifq.brands;
	bad text;
	v jsonb;
BEGIN
	IF jsonb_typeof(j) IS DISTINCT FROM 'object' THEN
		PERFORM gifq.catalog_error(NULL, format('brand %s is not an object', left(j::text, 100)));
	END IF;
	IF jsonb_typeof(j->'id') IS DISTINCT FROM 'string' OR length(j->>'id') NOT BETWEEN 1 AND 200 THEN
		PERFORM gifq.catalog_error(NULL, format('brand without a valid "id": %s', left(j::text, 100)));
	END IF;
	b.id := j->>'id';
	SELECT k INTO bad FROM jsonb_object_keys(j) k
	WHERE k NOT IN ('id', 'name', 'country', 'currency', 'categories', 'denominations',
		'min_value', 'max_value', 'discount_pct', 'in_stock', 'image_url',
		'redemption_instructions', 'updated_at') LIMIT 1;
	IF FOUND THEN
		PERFORM gifq.catalog_error(b.id, format('unknown field "%s"', bad));
	END IF;
	IF jsonb_typeof(j->'name') IS DISTINCT FROM 'string' OR length(btrim(j->>'name')) NOT BETWEEN 1 AND 500 THEN
		PERFORM gifq.catalog_error(b.id, format('"name" %s is not a name', coalesce(j->'name', 'null')));
	END IF;
	b.name := btrim(j->>'name');
	b.search_name := gifq.fold(b.name);
	IF jsonb_typeof(j->'country') IS DISTINCT FROM 'string' OR j->>'country' !~ '^[A-Z]{2}$' THEN
		PERFORM gifq.catalog_error(b.id, format('"country" %s is not an ISO 3166-1 alpha-2 code', coalesce(j->'country', 'null')));
	END IF;
	b.country := j->>'country';
	IF jsonb_typeof(j->'currency') IS DISTINCT FROM 'string' OR j->>'currency' !~ '^[A-Z]{3}$' THEN
		PERFORM gifq.catalog_error(b.id, format('"currency" %s is not an ISO 4217 code', coalesce(j->'currency', 'null')));
	END IF;
	b.currency := j->>'currency';
	IF jsonb_typeof(j->'categories') IS DISTINCT FROM 'array' OR EXISTS (
		SELECT 1 FROM jsonb_array_elements(j->'categories') c
		WHERE jsonb_typeof(c) <> 'string' OR length(c->>0) NOT BETWEEN 1 AND 100) THEN
		PERFORM gifq.catalog_error(b.id, format('"categories" %s is not an array of names', coalesce(j->'categories', 'null')));
	END IF;
	b.categories := ARRAY(SELECT DISTINCT lower(c) FROM jsonb_array_elements_text(j->'categories') c ORDER BY 1);
	BEGIN
		IF jsonb_typeof(j->'denominations') = 'array' THEN
			IF EXISTS (SELECT 1 FROM jsonb_array_elements(j->'denominations') d
				WHERE jsonb_typeof(d) <> 'number' OR d::text::numeric <= 0) THEN
				RAISE EXCEPTION USING ERRCODE = 'QG217';
			END IF;
			b.denominations := ARRAY(SELECT DISTINCT @extschema@.gifq_minor_units(
					@extschema@.gifq_money(d::numeric, b.currency))
				FROM jsonb_array_elements_text(j->'denominations') d ORDER BY 1);
			IF cardinality(b.denominations) = 0 THEN
				b.denominations := NULL;
			END IF;
		ELSIF coalesce(jsonb_typeof(j->'denominations'), 'null') <> 'null' THEN
			RAISE EXCEPTION USING ERRCODE = 'QG217';
		END IF;
	EXCEPTION WHEN SQLSTATE 'QG217' OR SQLSTATE 'QG002' OR SQLSTATE 'QG003' THEN
		PERFORM gifq.catalog_error(b.id, format('"denominations" %s is not a list of positive amounts in %s',
			j->'denominations', b.currency));
	END;
	FOREACH bad IN ARRAY ARRAY['min_value', 'max_value'] LOOP
		v := j->bad;
		IF coalesce(jsonb_typeof(v), 'null') = 'null' THEN
			CONTINUE;
		END IF;
		BEGIN
			IF jsonb_typeof(v) <> 'number' OR v::text::numeric <= 0 THEN
				RAISE EXCEPTION USING ERRCODE = 'QG217';
			END IF;
			IF bad = 'min_value' THEN
				b.min_value := @extschema@.gifq_minor_units(@extschema@.gifq_money(v::text::numeric, b.currency));
			ELSE
				b.max_value := @extschema@.gifq_minor_units(@extschema@.gifq_money(v::text::numeric, b.currency));
			END IF;
		EXCEPTION WHEN SQLSTATE 'QG217' OR SQLSTATE 'QG002' OR SQLSTATE 'QG003' THEN
			PERFORM gifq.catalog_error(b.id, format('"%s" %s is not a positive amount in %s', bad, v, b.currency));
		END;
	END LOOP;
	IF b.denominations IS NULL AND (b.min_value IS NULL OR b.max_value IS NULL) THEN
		PERFORM gifq.catalog_error(b.id, 'neither "denominations" nor both "min_value" and "max_value"');
	END IF;
	IF b.denominations IS NOT NULL AND (b.min_value IS NOT NULL OR b.max_value IS NOT NULL) THEN
		PERFORM gifq.catalog_error(b.id, 'both "denominations" and a "min_value"/"max_value" range');
	END IF;
	IF b.min_value > b.max_value THEN
		PERFORM gifq.catalog_error(b.id, format('"min_value" %s is above "max_value" %s', j->'min_value', j->'max_value'));
	END IF;
	v := coalesce(j->'discount_pct', '0');
	IF jsonb_typeof(v) <> 'number' OR v::text::numeric < 0 OR v::text::numeric >= 100 THEN
		PERFORM gifq.catalog_error(b.id, format('"discount_pct" %s is not a percentage from 0 to below 100', v));
	END IF;
	b.discount_pct := v::text::numeric;
	IF jsonb_typeof(j->'in_stock') IS DISTINCT FROM 'boolean' THEN
		PERFORM gifq.catalog_error(b.id, format('"in_stock" %s is not true or false', coalesce(j->'in_stock', 'null')));
	END IF;
	b.in_stock := (j->'in_stock')::boolean;
	FOREACH bad IN ARRAY ARRAY['image_url', 'redemption_instructions', 'updated_at'] LOOP
		IF coalesce(jsonb_typeof(j->bad), 'null') NOT IN ('string', 'null') THEN
			PERFORM gifq.catalog_error(b.id, format('"%s" %s is not a string', bad, j->bad));
		END IF;
	END LOOP;
	b.image_url := j->>'image_url';
	b.redemption_instructions := j->>'redemption_instructions';
	BEGIN
		-- a date and time, not one of PostgreSQL's special words ('now',
		-- 'infinity'), which would change on every load or never compare
		IF j->>'updated_at' !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_datetime_format';
		END IF;
		b.provider_updated_at := (j->>'updated_at')::timestamptz;
	EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow
		OR invalid_parameter_value THEN
		PERFORM gifq.catalog_error(b.id, format('"updated_at" %s is not a timestamp', j->'updated_at'));
	END;
	RETURN b;
END $$;

CREATE FUNCTION @extschema@.gifq_catalog_load(catalog jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	rows gifq.brands[];
	dup text;
	added text[];
	changed text[];
	gone text[];
BEGIN
	IF jsonb_typeof(catalog) IS DISTINCT FROM 'object'
		OR jsonb_typeof(catalog->'brands') IS DISTINCT FROM 'array' THEN
		PERFORM gifq.catalog_error(NULL, format('%s has no "brands" array', left(coalesce(catalog::text, 'NULL'), 100)));
	END IF;
	IF jsonb_array_length(catalog->'brands') = 0 THEN
		PERFORM gifq.catalog_error(NULL, 'the "brands" array is empty, which would discontinue every brand');
	END IF;
	IF coalesce(jsonb_typeof(catalog->'etag'), 'null') NOT IN ('string', 'null') THEN
		PERFORM gifq.catalog_error(NULL, format('"etag" %s is not a string', catalog->'etag'));
	END IF;
	rows := ARRAY(SELECT gifq.catalog_brand(j) FROM jsonb_array_elements(catalog->'brands') j);
	SELECT r.id INTO dup FROM unnest(rows) r GROUP BY r.id HAVING count(*) > 1 ORDER BY r.id LIMIT 1;
	IF FOUND THEN
		PERFORM gifq.catalog_error(dup, 'listed more than once');
	END IF;

	-- one load at a time: the state row is the lock
	INSERT INTO gifq.catalog_state DEFAULT VALUES ON CONFLICT DO NOTHING;
	PERFORM 1 FROM gifq.catalog_state FOR UPDATE;

	WITH upserted AS (
		INSERT INTO gifq.brands AS b (id, name, search_name, country, currency,
			categories, denominations, min_value, max_value, discount_pct, in_stock,
			image_url, redemption_instructions, provider_updated_at)
		SELECT r.id, r.name, r.search_name, r.country, r.currency, r.categories,
			r.denominations, r.min_value, r.max_value, r.discount_pct, r.in_stock,
			r.image_url, r.redemption_instructions, r.provider_updated_at
		FROM unnest(rows) r ORDER BY r.id
		ON CONFLICT (id) DO UPDATE SET
			name = EXCLUDED.name, search_name = EXCLUDED.search_name,
			country = EXCLUDED.country, currency = EXCLUDED.currency,
			categories = EXCLUDED.categories, denominations = EXCLUDED.denominations,
			min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value,
			discount_pct = EXCLUDED.discount_pct, in_stock = EXCLUDED.in_stock,
			image_url = EXCLUDED.image_url,
			redemption_instructions = EXCLUDED.redemption_instructions,
			provider_updated_at = EXCLUDED.provider_updated_at,
			discontinued_at = NULL, updated_at = now()
		WHERE (b.name, b.country, b.currency, b.categories, b.denominations,
			b.min_value, b.max_value, b.discount_pct, b.in_stock, b.image_url,
			b.redemption_instructions, b.provider_updated_at, b.discontinued_at)
			IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.country, EXCLUDED.currency,
			EXCLUDED.categories, EXCLUDED.denominations, EXCLUDED.min_value,
			EXCLUDED.max_value, EXCLUDED.discount_pct, EXCLUDED.in_stock,
			EXCLUDED.image_url, EXCLUDED.redemption_instructions,
			EXCLUDED.provider_updated_at, NULL::timestamptz)
		RETURNING b.id, b.xmax = 0 AS inserted
	)
	SELECT coalesce(array_agg(id ORDER BY id) FILTER (WHERE inserted), '{}'),
		coalesce(array_agg(id ORDER BY id) FILTER (WHERE NOT inserted), '{}')
	INTO added, changed FROM upserted;

	WITH d AS (
		UPDATE gifq.brands b SET discontinued_at = now(), updated_at = now()
		WHERE b.discontinued_at IS NULL AND b.id <> ALL (ARRAY(SELECT r.id FROM unnest(rows) r))
		RETURNING b.id)
	SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO gone FROM d;

	UPDATE gifq.catalog_state SET etag = catalog->>'etag', loaded_at = now(),
		brands = cardinality(rows);
	IF cardinality(added) + cardinality(changed) + cardinality(gone) > 0 THEN
		PERFORM gifq.emit(NULL, 'catalog.changed', jsonb_build_object(
			'added', to_jsonb(added), 'changed', to_jsonb(changed),
			'discontinued', to_jsonb(gone), 'etag', catalog->'etag'));
	END IF;
	RETURN cardinality(added) + cardinality(changed) + cardinality(gone);
END $$;
COMMENT ON FUNCTION @extschema@.gifq_catalog_load(jsonb) IS 'upsert a provider catalog response, discontinue brands missing from it; returns how many brands were added, changed or discontinued';

-- The API functions below that return a column named like one of their
-- arguments are SQL wrappers of a PL/pgSQL function (PL/pgSQL cannot have
-- an argument and a result column of one name).
CREATE FUNCTION gifq.catalog(_country text, _category text, _currency text, _search text)
RETURNS TABLE(brand_id text, name text, country text, currency text,
	categories text[], denominations @extschema@.gifq_money[],
	min_value @extschema@.gifq_money, max_value @extschema@.gifq_money,
	in_stock boolean, image_url text, redemption_instructions text,
	featured_rank integer, sponsored boolean, popularity bigint,
	discount_pct numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	IF _country IS NOT NULL AND _country !~ '^[A-Z]{2}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid country "%s"', _country),
			HINT = 'Give an ISO 3166-1 alpha-2 code such as ''US'', or NULL for every country.';
	END IF;
	IF _currency IS NOT NULL THEN
		PERFORM @extschema@.gifq_money(0, _currency);
	END IF;
	RETURN QUERY
	SELECT b.id, b.name, b.country, b.currency, b.categories,
		CASE WHEN b.denominations IS NOT NULL THEN
			ARRAY(SELECT @extschema@.gifq_from_minor_units(d, b.currency)
				FROM unnest(b.denominations) d ORDER BY d) END,
		@extschema@.gifq_from_minor_units(b.min_value, b.currency),
		@extschema@.gifq_from_minor_units(b.max_value, b.currency),
		b.in_stock, b.image_url, b.redemption_instructions,
		b.featured_rank, b.sponsored, p.n, b.discount_pct
	FROM gifq.brands b
	CROSS JOIN LATERAL (SELECT gifq.popularity(b.id) AS n) p
	WHERE b.discontinued_at IS NULL
		AND (_country IS NULL OR b.country = _country)
		AND (_currency IS NULL OR b.currency = _currency)
		AND (_category IS NULL OR lower(_category) = ANY (b.categories))
		AND (_search IS NULL OR strpos(b.search_name, gifq.fold(btrim(_search))) > 0)
	ORDER BY b.featured_rank NULLS LAST, p.n DESC, b.name, b.id;
END $$;

CREATE FUNCTION @extschema@.gifq_catalog(country text DEFAULT NULL,
	category text DEFAULT NULL, currency text DEFAULT NULL, search text DEFAULT NULL)
RETURNS TABLE(brand_id text, name text, country text, currency text,
	categories text[], denominations @extschema@.gifq_money[],
	min_value @extschema@.gifq_money, max_value @extschema@.gifq_money,
	in_stock boolean, image_url text, redemption_instructions text,
	featured_rank integer, sponsored boolean, popularity bigint,
	discount_pct numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT * FROM gifq.catalog(country, category, currency, search)
$$;
COMMENT ON FUNCTION @extschema@.gifq_catalog(text, text, text, text) IS 'the active brands, filtered, featured first, then by popularity and name';

CREATE FUNCTION @extschema@.gifq_feature_brand(brand_id text, rank integer,
	sponsored boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM gifq.brand(brand_id);
	IF rank < 1 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid rank %s for brand "%s"', rank, brand_id),
			HINT = 'Ranks start at 1, which comes first; a NULL rank removes the placement.';
	END IF;
	IF rank IS NULL AND coalesce(sponsored, false) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('sponsored placement of brand "%s" needs a rank', brand_id),
			HINT = 'Give a rank (1 comes first); a NULL rank removes the placement.';
	END IF;
	UPDATE gifq.brands b SET featured_rank = rank,
		sponsored = coalesce(gifq_feature_brand.sponsored, false), updated_at = now()
	WHERE b.id = brand_id;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_feature_brand(text, integer, boolean) IS 'place a brand at a rank in gifq_catalog (NULL: remove the placement); sponsored placements are flagged';

CREATE FUNCTION gifq.alternatives(_brand text, _amount @extschema@.gifq_money)
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
	ORDER BY abs(d.v - units), d.v LIMIT 3)
	UNION ALL
	(SELECT o.id, @extschema@.gifq_from_minor_units(gifq.nearest(o, units), o.currency),
		CASE WHEN gifq.offers(o, units) THEN 'same category and country'
			ELSE 'same category and country, nearest denomination' END
	FROM gifq.brands o
	WHERE o.id <> b.id AND o.discontinued_at IS NULL AND o.in_stock
		AND o.country = b.country AND o.currency = b.currency
		AND o.categories && b.categories
	ORDER BY abs(gifq.nearest(o, units) - units), o.featured_rank NULLS LAST,
		gifq.popularity(o.id) DESC, o.name, o.id
	LIMIT 10);
END $$;

CREATE FUNCTION @extschema@.gifq_alternatives(brand_id text, amount @extschema@.gifq_money)
RETURNS TABLE(brand_id text, amount @extschema@.gifq_money, reason text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT * FROM gifq.alternatives(brand_id, amount)
$$;
COMMENT ON FUNCTION @extschema@.gifq_alternatives(text, @extschema@.gifq_money) IS 'in-stock choices near a brand and amount: the brand''s nearest denominations, then brands of the same category and country';

------------------------------------------------------------------------
-- program settings: rates, limits, blocked members
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_set_rate(program text, currency text,
	points_per_unit numeric) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p gifq.programs;
BEGIN
	SELECT * INTO p FROM gifq.programs WHERE id = gifq.program_id(program);
	PERFORM @extschema@.gifq_money(0, coalesce(gifq_set_rate.currency, ''));
	IF points_per_unit IS NULL OR points_per_unit <= 0
		OR points_per_unit IN ('Infinity', 'NaN') THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid points_per_unit %s', coalesce(points_per_unit::text, 'NULL')),
			HINT = 'Give the number of points one unit of the currency is worth, such as 100.';
	END IF;
	IF gifq_set_rate.currency = p.points_code THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('currency "%s" is the points code of program "%s"', gifq_set_rate.currency, program),
			HINT = 'Set rates for the currencies cards are sold in.';
	END IF;
	IF gifq_set_rate.currency = p.currency THEN
		UPDATE gifq.programs x SET points_per_unit = gifq_set_rate.points_per_unit WHERE x.id = p.id;
		RETURN;
	END IF;
	INSERT INTO gifq.rates AS r (program_id, currency, points_per_unit)
	VALUES (p.id, gifq_set_rate.currency, gifq_set_rate.points_per_unit)
	ON CONFLICT ON CONSTRAINT rates_pkey DO UPDATE
		SET points_per_unit = EXCLUDED.points_per_unit, updated_at = now();
END $$;
COMMENT ON FUNCTION @extschema@.gifq_set_rate(text, text, numeric) IS 'points per unit of a currency cards are redeemed in (the program''s own currency: its points_per_unit)';

CREATE FUNCTION @extschema@.gifq_set_limits(program text, limits jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p gifq.programs;
	l gifq.limits;
	k text;
	v jsonb;
	m @extschema@.gifq_money;
BEGIN
	SELECT * INTO p FROM gifq.programs WHERE id = gifq.program_id(program);
	IF jsonb_typeof(limits) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid limits %s', coalesce(limits::text, 'NULL')),
			HINT = 'Give a JSON object such as ''{"max_redemptions_per_day": 5, "max_single_value": "500.00 USD"}''.';
	END IF;
	INSERT INTO gifq.limits (program_id) VALUES (p.id) ON CONFLICT DO NOTHING;
	SELECT * INTO STRICT l FROM gifq.limits WHERE program_id = p.id FOR UPDATE;
	FOR k, v IN SELECT key, value FROM jsonb_each(limits) LOOP
		IF k = 'max_redemptions_per_day' THEN
			IF jsonb_typeof(v) = 'null' THEN
				l.max_redemptions_per_day := NULL;
			ELSIF jsonb_typeof(v) = 'number' AND v::text ~ '^[0-9]{1,9}$' THEN
				l.max_redemptions_per_day := v::text::integer;
			ELSE
				RAISE EXCEPTION USING ERRCODE = 'QG115',
					MESSAGE = format('invalid limit max_redemptions_per_day %s', v),
					HINT = 'Give a whole number of redemptions, or null for no limit.';
			END IF;
		ELSIF k IN ('max_value_per_day', 'max_single_value', 'verification_above',
			'recipient_yearly_flag') THEN
			m := NULL;
			IF jsonb_typeof(v) <> 'null' THEN
				BEGIN
					IF jsonb_typeof(v) <> 'string' THEN
						RAISE EXCEPTION USING ERRCODE = 'QG005';
					END IF;
					m := (v->>0)::@extschema@.gifq_money;
				EXCEPTION WHEN SQLSTATE 'QG002' OR SQLSTATE 'QG003' OR SQLSTATE 'QG004'
					OR SQLSTATE 'QG005' THEN
					RAISE EXCEPTION USING ERRCODE = 'QG115',
						MESSAGE = format('invalid limit %s %s', k, v),
						HINT = format('Give an amount such as "500.00 %s" or "50000 %s", or null for no limit.',
							p.currency, p.points_code);
				END;
				IF @extschema@.gifq_currency(m) NOT IN (p.currency, p.points_code)
					OR @extschema@.gifq_minor_units(m) < 0 THEN
					RAISE EXCEPTION USING ERRCODE = 'QG115',
						MESSAGE = format('invalid limit %s %s', k, v),
						HINT = format('Give a non-negative amount in %s or %s, the program''s currency or its points.',
							p.currency, p.points_code);
				END IF;
			END IF;
			CASE k
				WHEN 'max_value_per_day' THEN l.max_value_per_day := m;
				WHEN 'max_single_value' THEN l.max_single_value := m;
				WHEN 'verification_above' THEN l.verification_above := m;
				ELSE l.recipient_yearly_flag := m;
			END CASE;
		ELSE
			RAISE EXCEPTION USING ERRCODE = 'QG115',
				MESSAGE = format('unknown limit "%s"', k),
				HINT = 'Limits are max_redemptions_per_day, max_value_per_day, max_single_value, verification_above and recipient_yearly_flag.';
		END IF;
	END LOOP;
	UPDATE gifq.limits SET max_redemptions_per_day = l.max_redemptions_per_day,
		max_value_per_day = l.max_value_per_day, max_single_value = l.max_single_value,
		verification_above = l.verification_above,
		recipient_yearly_flag = l.recipient_yearly_flag, updated_at = now()
	WHERE program_id = p.id;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_set_limits(text, jsonb) IS 'set a program''s redemption limits; keys left out keep their value, null removes a limit';

CREATE FUNCTION @extschema@.gifq_block_member(program text, member text,
	blocked boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF gifq_block_member.blocked IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = 'blocked must not be NULL',
			HINT = 'Pass true to block the member, false to unblock.';
	END IF;
	UPDATE gifq.members m SET blocked = gifq_block_member.blocked,
		updated_at = now()
	WHERE m.program_id = gifq.program_id(program) AND m.external_id = member;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG102',
			MESSAGE = format('unknown member "%s" in program "%s"', member, program),
			HINT = 'Create the member first with gifq_upsert_member().';
	END IF;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_block_member(text, text, boolean) IS 'block (or unblock) a member''s redemptions';

------------------------------------------------------------------------
-- orders
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_redeem(program text, member text, brand_id text,
	amount @extschema@.gifq_money, idempotency_key text, recipient_email text DEFAULT NULL)
RETURNS TABLE(order_id bigint, status text, points_debited @extschema@.gifq_money,
	created boolean)
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.gifq_redeem(text, text, text, @extschema@.gifq_money, text, text) IS 'turn a member''s points into a gift card order: holds points and funding, queues the order; idempotent by key';

CREATE FUNCTION @extschema@.gifq_retry_order(order_id bigint) RETURNS void
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.gifq_retry_order(bigint) IS 'queue a failed order again with new holds';

-- gifq.unknown_order: QG215 for an order id that names no order.
CREATE FUNCTION gifq.unknown_order(_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'QG215',
		MESSAGE = format('unknown order %s', coalesce(_id::text, 'NULL')),
		HINT = 'Order ids are returned by gifq_redeem().';
END $$;

-- gifq.order_row: the order's row locked, or QG215.
CREATE FUNCTION gifq.order_row(_id bigint) RETURNS gifq.orders
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	o gifq.orders;
BEGIN
	SELECT * INTO o FROM gifq.orders WHERE id = _id FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM gifq.unknown_order(_id);
	END IF;
	RETURN o;
END $$;

-- gifq.end_holds: post (in full) or void several holds together, their
-- balance slots locked in the global order first (see holds.c).
CREATE FUNCTION gifq.end_holds(holds bigint[], how text) RETURNS integer
	AS 'MODULE_PATHNAME', 'gifq_end_holds' LANGUAGE C VOLATILE STRICT
	SET search_path = pg_catalog, pg_temp;

-- gifq.release_holds: void an order's current holds (on cancel or failure).
CREATE FUNCTION gifq.release_holds(o gifq.orders) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	SELECT gifq.end_holds(ARRAY[o.points_hold, o.funding_hold], 'void')
$$;

CREATE FUNCTION @extschema@.gifq_cancel_order(order_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	o gifq.orders := gifq.order_row(order_id);
BEGIN
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
COMMENT ON FUNCTION @extschema@.gifq_cancel_order(bigint) IS 'cancel a pending order and release its holds; a canceled order is left as it is';

-- gifq.fail_order: mark an order failed and release its holds (the worker's
-- permanent failures; also pending orders found unfulfillable).
CREATE FUNCTION gifq.fail_order(_id bigint, error text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	o gifq.orders := gifq.order_row(_id);
BEGIN
	IF o.status = 'failed' THEN
		RETURN;
	END IF;
	PERFORM gifq.release_holds(o);
	UPDATE gifq.orders x SET status = 'failed', status_reason = error, last_error = error,
		lease_until = NULL
	WHERE x.id = o.id;
	PERFORM gifq.emit(o.program_id, 'order.failed', jsonb_build_object(
		'order_id', o.id, 'reference', gifq.order_reference(o.id), 'error', error));
END $$;

-- gifq.claim_orders: the worker's claim: up to batch due pending orders,
-- marked submitted with a lease, skipping rows other sessions hold (a
-- cancel in progress, another worker).  The caller commits before it
-- calls the provider.
CREATE FUNCTION gifq.claim_orders(batch integer, lease interval)
RETURNS SETOF gifq.orders
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE gifq.orders o SET status = 'submitted', status_reason = 'claimed for sending',
		attempts = o.attempts + 1, lease_until = now() + lease
	WHERE o.id IN (SELECT id FROM gifq.orders
		WHERE status = 'pending' AND next_attempt_at <= now()
		ORDER BY next_attempt_at, id LIMIT batch FOR UPDATE SKIP LOCKED)
	RETURNING o.*
$$;

CREATE FUNCTION gifq.order_view(_id bigint)
RETURNS TABLE(order_id bigint, status text, brand_id text, amount @extschema@.gifq_money,
	attempts integer, last_error text, redemption_url text, expiry_date date,
	code_last4 text, delivered_at timestamptz, program text, member text,
	points @extschema@.gifq_money, cost @extschema@.gifq_money,
	reference text, flags text[], created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT o.id, o.status, o.brand_id, @extschema@.gifq_from_minor_units(o.amount, o.currency),
		o.attempts, o.last_error, o.redemption_url, o.expiry_date, o.code_last4,
		o.delivered_at, p.code, m.external_id,
		@extschema@.gifq_from_minor_units(o.points, o.points_code),
		@extschema@.gifq_from_minor_units(o.cost, o.currency),
		gifq.order_reference(o.id), o.flags, o.created_at, o.updated_at
	FROM gifq.orders o JOIN gifq.programs p ON p.id = o.program_id
		JOIN gifq.members m ON m.id = o.member_id
	WHERE o.id = _id;
	IF NOT FOUND THEN
		PERFORM gifq.unknown_order(_id);
	END IF;
END $$;

CREATE FUNCTION @extschema@.gifq_order(order_id bigint)
RETURNS TABLE(order_id bigint, status text, brand_id text, amount @extschema@.gifq_money,
	attempts integer, last_error text, redemption_url text, expiry_date date,
	code_last4 text, delivered_at timestamptz, program text, member text,
	points @extschema@.gifq_money, cost @extschema@.gifq_money,
	reference text, flags text[], created_at timestamptz, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT * FROM gifq.order_view(order_id)
$$;
COMMENT ON FUNCTION @extschema@.gifq_order(bigint) IS 'an order''s status and, once delivered, its card details (not the code)';

CREATE FUNCTION @extschema@.gifq_order_history(order_id bigint)
RETURNS TABLE(at timestamptz, actor text, from_status text, to_status text, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM 1 FROM gifq.orders o WHERE o.id = gifq_order_history.order_id;
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
COMMENT ON FUNCTION @extschema@.gifq_order_history(bigint) IS 'an order''s status changes: when, who, from, to and why';

------------------------------------------------------------------------
-- events: NOTIFY payloads within PostgreSQL's limit
------------------------------------------------------------------------

-- gifq.emit: record an event in gifq.outbox and NOTIFY gifq_events with
-- {"id", "type", "data"}.  NOTIFY payloads are limited to 8000 bytes; an
-- event whose data would not fit (a catalog load that changes hundreds of
-- brands) is announced as {"id", "type", "data_in_outbox": true}, and the
-- listener reads the row from gifq.outbox.
CREATE OR REPLACE FUNCTION gifq.emit(program bigint, event_type text, payload jsonb)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	result bigint;
	message text;
BEGIN
	INSERT INTO gifq.outbox (program_id, event_type, payload)
	VALUES (program, event_type, payload) RETURNING id INTO result;
	message := jsonb_build_object('id', result, 'type', event_type, 'data', payload)::text;
	IF octet_length(message) > 7900 THEN
		message := jsonb_build_object('id', result, 'type', event_type,
			'data_in_outbox', true)::text;
	END IF;
	PERFORM pg_notify('gifq_events', message);
	RETURN result;
END $$;

------------------------------------------------------------------------
-- rebalancing never waits unboundedly where it means not to wait
------------------------------------------------------------------------

-- gifq.rebalance, as in 0.2.0, but the steps that must not queue are
-- bounded by a short lock_timeout.  FOR UPDATE SKIP LOCKED can still wait:
-- a row whose updater committed while the statement ran is locked in its
-- newest version, and PostgreSQL waits for whoever holds that one,
-- whatever the wait policy.  Waiting there while holding the target slot
-- could close a cycle with a session that waits for the target (seen as a
-- deadlock under many concurrent redemptions).  Now such a wait ends after
-- 20 ms (or the caller's shorter lock_timeout) and counts as no room: the
-- first attempt gives everything back and waits in slot order; a session
-- that already held its target uses the siblings it got.
CREATE OR REPLACE FUNCTION gifq.rebalance(account bigint, target integer, need bigint,
	dmnec boolean) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	free integer;
	taken integer[];
	mine boolean;
	caller_timeout text := current_setting('lock_timeout');
	short_timeout text := CASE WHEN caller_timeout::interval > '0'
		AND caller_timeout::interval < '20ms' THEN caller_timeout ELSE '20ms' END;
BEGIN
	BEGIN
		-- set inside the block: rolling it back restores the caller's
		PERFORM set_config('lock_timeout', short_timeout, true);
		PERFORM 1 FROM gifq.account_slots
		WHERE account_id = account AND slot = target FOR UPDATE;
		taken := ARRAY[target];
		LOOP
			IF gifq.slot_room(account, taken, dmnec) >= need THEN
				PERFORM gifq.pool_room(account, target, need, dmnec, taken);
				PERFORM set_config('lock_timeout', caller_timeout, true);
				RETURN true;
			END IF;
			SELECT slot INTO free FROM gifq.account_slots
			WHERE account_id = account AND slot <> ALL (taken)
			ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED;
			EXIT WHEN NOT FOUND;
			taken := taken || free;
		END LOOP;
		RAISE EXCEPTION USING ERRCODE = 'QG199';
	EXCEPTION WHEN SQLSTATE 'QG199' OR lock_not_available THEN
		NULL;
	END;
	-- A session that holds none of the account's slots waits for all of
	-- them in slot order: it holds only accounts with lower ids, so the
	-- wait goes up the (account, slot) order transfers lock in.  One that
	-- already holds its target (locked earlier in its transaction, as a
	-- batch locks all its slots up front) may hold accounts with higher ids
	-- too, so it must not wait: it takes the siblings that are free.
	SELECT gifq.row_is_mine(xmin, xmax) INTO mine FROM gifq.account_slots
	WHERE account_id = account AND slot = target;
	IF NOT mine THEN
		taken := ARRAY(SELECT slot FROM gifq.account_slots
			WHERE account_id = account ORDER BY slot FOR UPDATE);
	ELSE
		taken := ARRAY[target];
		LOOP
			BEGIN
				PERFORM set_config('lock_timeout', short_timeout, true);
				SELECT slot INTO free FROM gifq.account_slots
				WHERE account_id = account AND slot <> ALL (taken)
				ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED;
				PERFORM set_config('lock_timeout', caller_timeout, true);
			EXCEPTION WHEN lock_not_available THEN
				free := NULL;
			END;
			EXIT WHEN free IS NULL;
			taken := taken || free;
		END LOOP;
	END IF;
	IF gifq.slot_room(account, taken, dmnec) < need THEN
		RETURN false;
	END IF;
	PERFORM gifq.pool_room(account, target, need, dmnec, taken);
	RETURN true;
END $$;

------------------------------------------------------------------------
-- verification: also the rules the hot tables no longer check per row.
-- Each problem row names the account it concerns: for a transfer or a
-- hold, its debit account (the message names the transfer or hold).
------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@.gifq_ledger_verify()
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
		-- the rules of a transfer row (no CHECK constraint since 0.3.0)
		SELECT t.debit_account_id, format('transfer %s is malformed (kind %s, amount %s, accounts %s and %s, pending_id %s, key %s, timeout %s)',
			t.id, t.kind, t.amount, t.debit_account_id, t.credit_account_id,
			coalesce(t.pending_id::text, 'none'), coalesce(t.idempotency_key, 'none'),
			coalesce(t.timeout::text, 'none'))
		FROM gifq.transfers t
		WHERE NOT (t.kind IN ('posted', 'pending', 'post', 'void', 'expire')
			AND t.amount >= 0
			AND t.debit_account_id <> t.credit_account_id
			AND (t.kind IN ('posted', 'pending')) = (t.pending_id IS NULL)
			AND (t.kind IN ('posted', 'pending') OR t.idempotency_key IS NULL)
			AND (t.kind = 'pending' OR t.timeout IS NULL)
			AND (t.kind IN ('void', 'expire') OR t.amount > 0))
		UNION ALL
		SELECT sl.account_id, format('slot %s has a negative balance (%s, %s, %s, %s)',
			sl.slot, sl.debits_posted, sl.credits_posted, sl.debits_pending, sl.credits_pending)
		FROM gifq.account_slots sl
		WHERE least(sl.debits_posted, sl.credits_posted, sl.debits_pending, sl.credits_pending) < 0
		UNION ALL
		-- holds name their pending transfer and the transfer that ended them
		SELECT t.debit_account_id, format('hold %s has no pending transfer', h.transfer_id)
		FROM gifq.holds h LEFT JOIN gifq.transfers t ON t.id = h.transfer_id
		WHERE t.id IS NULL OR t.kind <> 'pending'
		UNION ALL
		SELECT t.debit_account_id, format('hold %s names resolving transfer %s, which does not resolve it',
			h.transfer_id, h.resolved_by)
		FROM gifq.holds h JOIN gifq.transfers t ON t.id = h.transfer_id
		WHERE h.resolved_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM gifq.transfers r
			WHERE r.id = h.resolved_by AND r.pending_id = h.transfer_id)
		UNION ALL
		-- the rules of an order row (no CHECK constraint either)
		SELECT t.debit_account_id, format('order %s is malformed (amount %s, cost %s, margin %s, points %s, status %s)',
			o.id, o.amount, o.cost, o.margin, o.points, o.status)
		FROM gifq.orders o LEFT JOIN gifq.transfers t ON t.id = o.points_hold
		WHERE NOT (o.amount > 0 AND o.cost >= 0 AND o.cost <= o.amount
			AND o.margin = o.amount - o.cost AND o.points > 0
			AND o.status IN ('pending', 'submitted', 'processing', 'delivered',
				'failed', 'canceled'))
		UNION ALL
		SELECT NULL::bigint, format('currency %s: debits (%s posted, %s pending) and credits (%s posted, %s pending) do not balance',
			currency, sum(dp), sum(dpend), sum(cp), sum(cpend))
		FROM stored GROUP BY currency
		HAVING sum(dp) <> sum(cp) OR sum(dpend) <> sum(cpend)
	)
	SELECT id, problem FROM problems ORDER BY id NULLS LAST, problem
$$;

------------------------------------------------------------------------
-- privileges (see the note in gifq--0.1.0--0.2.0.sql)
------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
	@extschema@.gifq_catalog_load(jsonb),
	@extschema@.gifq_catalog(text, text, text, text),
	@extschema@.gifq_feature_brand(text, integer, boolean),
	@extschema@.gifq_alternatives(text, @extschema@.gifq_money),
	@extschema@.gifq_set_rate(text, text, numeric),
	@extschema@.gifq_set_limits(text, jsonb),
	@extschema@.gifq_block_member(text, text, boolean),
	@extschema@.gifq_redeem(text, text, text, @extschema@.gifq_money, text, text),
	@extschema@.gifq_retry_order(bigint),
	@extschema@.gifq_cancel_order(bigint),
	@extschema@.gifq_order(bigint),
	@extschema@.gifq_order_history(bigint)
FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gifq FROM PUBLIC;
