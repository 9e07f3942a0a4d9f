-- gifq--0.7.0--0.8.0.sql: security and operations: gifq's roles and least
-- privilege, program scoping, the audit trail, erasure of members' personal
-- data, outbound safety and restores that give back what was dumped.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.8.0'" to load this file. \quit

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
