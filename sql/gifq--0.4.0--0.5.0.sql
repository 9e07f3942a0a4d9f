-- gifq--0.4.0--0.5.0.sql: fulfilment: what the background worker (and
-- gifq_process_orders) needs to send orders to the provider and record the
-- answers, sealed gift cards, the provider-call log, inbound webhooks and
-- outbound event delivery.  The transport (libcurl) is in src/provider.c,
-- the worker in src/worker.c; every decision about an order is made here,
-- in SQL, so it is the same whoever made the call and is testable without
-- a network.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.5.0'" to load this file. \quit

------------------------------------------------------------------------
-- orders in flight
------------------------------------------------------------------------

-- An order being sent is 'submitted' with a lease: lease_owner is who
-- claimed it ('worker', or 'session <pid>' for gifq_process_orders) and
-- next_attempt_at is when the lease ends.  An order whose outcome is not
-- known (a timeout, a 5xx, a crash) stays 'submitted' until next_attempt_at
-- and is then looked up by its reference, never sent again blindly;
-- 'processing' orders (asynchronous at the provider) are polled the same
-- way.  lookups counts the look-ups since the last answer, for backoff.
-- retries counts gifq_retry_order: a retried order is sent under a new
-- reference (see gifq.provider_reference), since the provider answers
-- the old one with its old outcome.
ALTER TABLE gifq.orders
	ADD COLUMN lease_owner text,
	ADD COLUMN lookups integer NOT NULL DEFAULT 0,
	ADD COLUMN retries integer NOT NULL DEFAULT 0;
CREATE INDEX orders_in_flight ON gifq.orders (next_attempt_at)
	WHERE status IN ('submitted', 'processing');

-- gifq.provider_reference: the reference an order is sent under, its
-- Idempotency-Key: gifq-ord-000000123, then gifq-ord-000000123-r1 after a
-- first gifq_retry_order, and so on.  Inlined like gifq.order_reference.
CREATE FUNCTION gifq.provider_reference(id bigint, retries integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN gifq.order_reference(id) OPERATOR(pg_catalog.||)
	CASE WHEN retries > 0 THEN '-r' OPERATOR(pg_catalog.||) retries::text ELSE '' END;

-- gifq.reference_order: the order id in a provider reference, or NULL.
CREATE FUNCTION gifq.reference_order(reference text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (pg_catalog.regexp_match(reference, '^gifq-ord-(\d{1,18})(?:-r\d{1,9})?$'))[1]::bigint;

-- An order found missing at the provider after an unknown outcome goes
-- back to pending to be sent again (same reference, so the provider's
-- idempotency protects even a wrong "missing").
CREATE OR REPLACE FUNCTION gifq.order_transition() RETURNS trigger
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

-- gifq_order shows the reference the order is sent under now.
CREATE OR REPLACE FUNCTION gifq.order_view(_id bigint)
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
		gifq.provider_reference(o.id, o.retries), o.flags, o.created_at, o.updated_at
	FROM gifq.orders o JOIN gifq.programs p ON p.id = o.program_id
		JOIN gifq.members m ON m.id = o.member_id
	WHERE o.id = _id;
	IF NOT FOUND THEN
		PERFORM gifq.unknown_order(_id);
	END IF;
END $$;

------------------------------------------------------------------------
-- sealed gift cards
------------------------------------------------------------------------

-- The code and PIN of a delivered card, sealed (AES-256-GCM, src/cards.c)
-- under the key in the superuser-only setting gifq.card_key; key_id names
-- that key (the first bytes of its SHA-256) so a rotation can tell which
-- cards still need the previous key.  Nobody but gifq's functions reads
-- this table; gifq_reveal_code opens a card and audits it.
CREATE TABLE gifq.cards (
	order_id bigint PRIMARY KEY,
	key_id text NOT NULL,
	sealed bytea NOT NULL,
	wallet_links jsonb,
	stored_at timestamptz NOT NULL DEFAULT now(),
	redeemed_at timestamptz
);

CREATE TABLE gifq.card_reveals (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id bigint NOT NULL,
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	actor text NOT NULL
);
CREATE INDEX card_reveals_order ON gifq.card_reveals (order_id, at);

SELECT pg_catalog.pg_extension_config_dump('gifq.cards', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.card_reveals', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.card_reveals_id_seq', '');

CREATE TRIGGER card_reveals_immutable BEFORE UPDATE OR DELETE ON gifq.card_reveals
	FOR EACH ROW EXECUTE FUNCTION gifq.refuse_change('The audit trail of card reveals is append-only.');
CREATE TRIGGER card_reveals_no_truncate BEFORE TRUNCATE ON gifq.card_reveals
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.refuse_change('The audit trail of card reveals is append-only.');

-- A card is written once; only its redemption (a provider webhook) is
-- recorded later.
CREATE FUNCTION gifq.card_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP = 'DELETE' OR (NEW.order_id, NEW.key_id, NEW.sealed, NEW.wallet_links, NEW.stored_at)
		IS DISTINCT FROM (OLD.order_id, OLD.key_id, OLD.sealed, OLD.wallet_links, OLD.stored_at) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG120',
			MESSAGE = format('the gift card of order %s cannot be changed', OLD.order_id),
			HINT = 'Cards are stored once, on delivery; only their redemption is recorded later.';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER cards_guard BEFORE UPDATE OR DELETE ON gifq.cards
	FOR EACH ROW EXECUTE FUNCTION gifq.card_guard();
CREATE TRIGGER cards_no_truncate BEFORE TRUNCATE ON gifq.cards
	FOR EACH STATEMENT EXECUTE FUNCTION gifq.refuse_change(
		'Cards are stored once, on delivery; only their redemption is recorded later.');

-- Every webhook event applied (or found to concern nothing), by the
-- provider's event id, so a repeat is ignored.
CREATE TABLE gifq.webhook_events (
	event_id text PRIMARY KEY,
	event_type text NOT NULL,
	order_id bigint,
	outcome text NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_order ON gifq.webhook_events (order_id) WHERE order_id IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('gifq.webhook_events', '');

CREATE FUNCTION gifq.card_seal(order_id bigint, code text, pin text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'gifq_card_seal' LANGUAGE C VOLATILE;
CREATE FUNCTION gifq.card_key_id() RETURNS text
	AS 'MODULE_PATHNAME', 'gifq_card_key_id' LANGUAGE C STABLE;
CREATE FUNCTION gifq.card_open(order_id bigint, sealed bytea, OUT code text, OUT pin text)
	AS 'MODULE_PATHNAME', 'gifq_card_open' LANGUAGE C STABLE STRICT;

CREATE FUNCTION @extschema@.gifq_reveal_code(order_id bigint)
RETURNS TABLE(code text, pin text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	o gifq.orders;
	c gifq.cards;
BEGIN
	SELECT * INTO o FROM gifq.orders x WHERE x.id = gifq_reveal_code.order_id;
	IF NOT FOUND THEN
		PERFORM gifq.unknown_order(gifq_reveal_code.order_id);
	END IF;
	SELECT * INTO c FROM gifq.cards x WHERE x.order_id = o.id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'QG401',
			MESSAGE = format('order %s has no card: it is %s', o.id, o.status),
			HINT = 'A card exists once the order is delivered; see gifq_order().';
	END IF;
	INSERT INTO gifq.card_reveals (order_id, actor) VALUES (o.id, gifq.actor());
	RETURN QUERY SELECT s.code, s.pin FROM gifq.card_open(o.id, c.sealed) s;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_reveal_code(bigint) IS 'a delivered card''s code and PIN; every call is audited in gifq.card_reveals';

------------------------------------------------------------------------
-- the provider-call log
------------------------------------------------------------------------

-- Every call to the provider (and every outbound event POST): what, for
-- which order, how long, and what came back.  A log, not state: not
-- dumped, and pruned after gifq.call_log_retention by the worker (or
-- gifq.prune_provider_calls() from pg_cron).
CREATE TABLE gifq.provider_calls (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	call text NOT NULL,
	order_id bigint,
	attempt integer,
	http_status integer,
	error text,
	latency_ms double precision NOT NULL,
	caller text NOT NULL
);
CREATE INDEX provider_calls_at ON gifq.provider_calls (at);
CREATE INDEX provider_calls_order ON gifq.provider_calls (order_id) WHERE order_id IS NOT NULL;

CREATE FUNCTION gifq.prune_provider_calls(keep interval) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	WITH d AS (DELETE FROM gifq.provider_calls WHERE at < now() - keep RETURNING 1)
	SELECT count(*) FROM d
$$;

-- (PL/pgSQL, not SQL: its plan is kept, where PostgreSQL plans a SQL
-- function's body at every call; the worker calls it for every answer.)
CREATE FUNCTION gifq.log_call(_call text, _order bigint, _attempt integer,
	_http integer, _error text, _latency double precision, _caller text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	INSERT INTO gifq.provider_calls (call, order_id, attempt, http_status, error,
		latency_ms, caller)
	VALUES (_call, _order, _attempt, _http, _error, _latency, _caller);
END $$;

-- Order outcomes over the last day, by hour, and the success rate of
-- those that ended.
CREATE VIEW gifq.order_success AS
SELECT date_trunc('hour', coalesce(o.delivered_at, o.updated_at)) AS hour,
	count(*) FILTER (WHERE o.status = 'delivered') AS delivered,
	count(*) FILTER (WHERE o.status = 'failed') AS failed,
	round(count(*) FILTER (WHERE o.status = 'delivered')::numeric
		/ nullif(count(*) FILTER (WHERE o.status IN ('delivered', 'failed')), 0), 4)
		AS success_rate
FROM gifq.orders o
WHERE o.status IN ('delivered', 'failed')
	AND coalesce(o.delivered_at, o.updated_at) > now() - interval '1 day'
GROUP BY 1;

-- Provider latency over the last hour, per kind of call.
CREATE VIEW gifq.provider_latency AS
SELECT c.call, count(*) AS calls,
	count(*) FILTER (WHERE c.http_status IS NULL OR c.http_status >= 500
		OR c.http_status = 429) AS transient_errors,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY c.latency_ms) AS p50_ms,
	percentile_cont(0.95) WITHIN GROUP (ORDER BY c.latency_ms) AS p95_ms,
	percentile_cont(0.99) WITHIN GROUP (ORDER BY c.latency_ms) AS p99_ms
FROM gifq.provider_calls c
WHERE c.at > now() - interval '1 hour'
GROUP BY c.call;

------------------------------------------------------------------------
-- claiming work
------------------------------------------------------------------------

-- gifq.backoff: the wait before the n-th retry: base doubled n-1 times,
-- at most cap, times a random factor in [0.5, 1) so that orders that
-- failed together do not come back together.
CREATE FUNCTION gifq.backoff(n integer, base_ms integer, cap_ms integer) RETURNS interval
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
	SELECT make_interval(secs => least(cap_ms::float8,
		base_ms * power(2::float8, least(greatest(n, 1) - 1, 30)))
		* (0.5 + random() / 2) / 1000)
$$;

-- gifq.claim_work: up to batch orders to call the provider for, leased to
-- caller: pending orders that are due ('order': send them) and orders in
-- flight whose lease or poll time has passed ('lookup': ask the provider
-- by reference what became of them).  The caller commits before it calls.
CREATE FUNCTION gifq.claim_work(batch integer, lease interval, caller text)
RETURNS TABLE(order_id bigint, call text, reference text, provider_order_id text,
	body text, attempt integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH in_flight AS (
		SELECT id, status FROM gifq.orders
		WHERE status IN ('submitted', 'processing') AND next_attempt_at <= now()
		ORDER BY next_attempt_at, id LIMIT batch FOR UPDATE SKIP LOCKED
	), to_send AS (
		SELECT id, status FROM gifq.orders
		WHERE status = 'pending' AND next_attempt_at <= now()
		ORDER BY next_attempt_at, id LIMIT batch FOR UPDATE SKIP LOCKED
	), due AS (
		SELECT * FROM in_flight UNION ALL SELECT * FROM to_send LIMIT batch
	), claimed AS (
		UPDATE gifq.orders o SET
			status = CASE WHEN due.status = 'pending' THEN 'submitted' ELSE o.status END,
			status_reason = CASE WHEN due.status = 'pending' THEN 'sent to the provider'
				ELSE o.status_reason END,
			attempts = o.attempts + (due.status = 'pending')::integer,
			lease_owner = caller, lease_until = now() + lease,
			next_attempt_at = now() + lease
		FROM due WHERE o.id = due.id
		RETURNING o.*, due.status AS was
	)
	SELECT c.id, CASE WHEN c.was = 'pending' THEN 'order' ELSE 'lookup' END,
		gifq.provider_reference(c.id, c.retries), c.provider_order_id,
		CASE WHEN c.was = 'pending' THEN jsonb_build_object(
			'brand_id', c.brand_id,
			'amount', @extschema@.gifq_amount(@extschema@.gifq_from_minor_units(c.amount, c.currency)),
			'currency', c.currency,
			'recipient_email', c.recipient_email,
			'reference_id', gifq.provider_reference(c.id, c.retries))::text END,
		c.attempts
	FROM claimed c;
END $$;

-- gifq.release_claims: claims the caller never acted on (sending paused,
-- or the worker stopping) are given back at once: an order not sent goes
-- back to pending with its attempt uncounted, a look-up not made is due
-- now.
CREATE FUNCTION gifq.release_claims(_sends bigint[], _lookups bigint[], _caller text)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	WITH s AS (
		UPDATE gifq.orders o SET status = 'pending',
			status_reason = 'not sent: sending paused or stopped',
			attempts = o.attempts - 1, lease_owner = NULL, lease_until = NULL,
			next_attempt_at = now()
		WHERE o.id = ANY (_sends) AND o.status = 'submitted' AND o.lease_owner = _caller
		RETURNING 1
	), l AS (
		UPDATE gifq.orders o SET lease_owner = NULL, lease_until = NULL,
			next_attempt_at = now()
		WHERE o.id = ANY (_lookups) AND o.status IN ('submitted', 'processing')
			AND o.lease_owner = _caller
		RETURNING 1
	)
	SELECT ((SELECT count(*) FROM s) + (SELECT count(*) FROM l))::integer
$$;

-- gifq.next_due: when the next order becomes due (sent, looked up or
-- polled), for the worker's sleep.
CREATE FUNCTION gifq.next_due() RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT least(
		(SELECT min(next_attempt_at) FROM gifq.orders WHERE status = 'pending'),
		(SELECT min(next_attempt_at) FROM gifq.orders
		 WHERE status IN ('submitted', 'processing')))
$$;

-- gifq.take_over: orders a previous run of the worker had in flight when
-- it stopped (a crash, a restart) are looked up now rather than at the end
-- of their lease.  Only one worker runs per database, so any lease of
-- 'worker' is a dead one when the worker starts.
CREATE FUNCTION gifq.take_over(caller text) RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	WITH t AS (
		UPDATE gifq.orders SET next_attempt_at = now(), lease_until = NULL
		WHERE status IN ('submitted', 'processing') AND lease_owner = caller
			AND lease_until IS NOT NULL
		RETURNING 1)
	SELECT count(*)::integer FROM t
$$;

------------------------------------------------------------------------
-- recording outcomes
------------------------------------------------------------------------

-- gifq.answer_date: a YYYY-MM-DD date from a provider's answer, or NULL
-- when it is anything else (even 2029-02-30): a card is not refused for
-- its expiry date.  Checked without an exception block, which would cost a
-- subtransaction per delivery.
CREATE FUNCTION gifq.answer_date(s text) RETURNS date
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d text[] := regexp_match(s, '^(\d{4})-(\d{2})-(\d{2})$');
	y integer := d[1];
	m integer := d[2];
	dd integer := d[3];
BEGIN
	IF d IS NULL OR y < 1 OR m NOT BETWEEN 1 AND 12 OR dd < 1 THEN
		RETURN NULL;
	END IF;
	IF dd > extract(day FROM make_date(y, m, 1) + interval '1 month - 1 day') THEN
		RETURN NULL;
	END IF;
	RETURN make_date(y, m, dd);
END $$;

-- gifq.deliver_order: the provider says the card exists: post the holds,
-- seal and store the card, and announce it.  answer is the provider's
-- order object; a delivered answer without a code is not believed.
CREATE FUNCTION gifq.deliver_order(o gifq.orders, answer jsonb, source text)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	card jsonb := answer -> 'gift_card';
	code text := card ->> 'code';
BEGIN
	IF code IS NULL OR code = '' THEN
		RETURN false;
	END IF;
	PERFORM gifq.end_holds(ARRAY[o.points_hold, o.funding_hold], 'post');
	-- a card.redeemed webhook may have come first
	INSERT INTO gifq.cards (order_id, key_id, sealed, wallet_links, redeemed_at)
	VALUES (o.id, gifq.card_key_id(), gifq.card_seal(o.id, code, card ->> 'pin'),
		card -> 'wallet_links', (SELECT min(w.received_at) FROM gifq.webhook_events w
			WHERE w.order_id = o.id AND w.event_type = 'card.redeemed'));
	UPDATE gifq.orders x SET status = 'delivered', status_reason = 'delivered (' || source || ')',
		provider_order_id = coalesce(answer ->> 'order_id', x.provider_order_id),
		redemption_url = card ->> 'redemption_url',
		expiry_date = gifq.answer_date(card ->> 'expiry_date'),
		code_last4 = right(code, 4), delivered_at = now(),
		lease_owner = NULL, lease_until = NULL, last_error = NULL, lookups = 0
	WHERE x.id = o.id;
	PERFORM gifq.emit(o.program_id, 'order.delivered', jsonb_build_object(
		'order_id', o.id, 'reference', gifq.provider_reference(o.id, o.retries),
		'brand_id', o.brand_id, 'code_last4', right(code, 4)));
	RETURN true;
END $$;

-- gifq.fail_order, as in 0.3.0, and the lease is let go.
CREATE OR REPLACE FUNCTION gifq.fail_order(_id bigint, error text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	o gifq.orders := gifq.order_row(_id);
BEGIN
	IF o.status = 'failed' THEN
		RETURN;
	END IF;
	PERFORM gifq.release_holds(o);
	UPDATE gifq.orders x SET status = 'failed', status_reason = error, last_error = error,
		lease_owner = NULL, lease_until = NULL, lookups = 0
	WHERE x.id = o.id;
	PERFORM gifq.emit(o.program_id, 'order.failed', jsonb_build_object(
		'order_id', o.id, 'reference', gifq.provider_reference(o.id, o.retries), 'error', error));
END $$;

-- gifq.provider_error: "code: message" of a provider error body.
CREATE FUNCTION gifq.provider_error(http integer, answer jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT 'provider ' || http || ': ' || coalesce(answer #>> '{error,code}', 'no error code')
		|| coalesce(': ' || (answer #>> '{error,message}'), '')
$$;

-- gifq.apply_answer: what the provider says of an order (answer: its
-- order object), from a send, a look-up or a webhook.  Returns what was
-- done: 'delivered', 'processing', 'failed', or 'unknown' when the answer
-- does not settle anything (the caller then looks the order up later).
CREATE FUNCTION gifq.apply_answer(o gifq.orders, answer jsonb, source text, poll_ms integer)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ref text := answer ->> 'reference_id';
BEGIN
	IF ref IS DISTINCT FROM gifq.provider_reference(o.id, o.retries) THEN
		RETURN 'unknown';
	END IF;
	IF o.status NOT IN ('submitted', 'processing') THEN
		RETURN o.status;
	END IF;
	CASE answer ->> 'status'
	WHEN 'delivered' THEN
		IF gifq.deliver_order(o, answer, source) THEN
			RETURN 'delivered';
		END IF;
	WHEN 'failed' THEN
		PERFORM gifq.fail_order(o.id, 'provider: ' || coalesce(answer #>> '{error,code}',
			answer ->> 'error', 'failed') || coalesce(': ' || (answer #>> '{error,message}'), ''));
		RETURN 'failed';
	WHEN 'processing' THEN
		-- polled at poll_ms, doubling up to an hour, while webhooks may
		-- settle it any time
		UPDATE gifq.orders x SET status = 'processing',
			status_reason = 'processing at the provider',
			provider_order_id = coalesce(answer ->> 'order_id', x.provider_order_id),
			lease_owner = NULL, lease_until = NULL, lookups = x.lookups + 1,
			next_attempt_at = now() + make_interval(secs =>
				least(poll_ms * power(2::float8, least(x.lookups, 12)), 3600000) / 1000.0)
		WHERE x.id = o.id;
		RETURN 'processing';
	ELSE
		NULL;
	END CASE;
	RETURN 'unknown';
END $$;

-- gifq.record_outcome: one call to the provider about order _id came back
-- (or did not: _http NULL with _error).  Logs the call and moves the
-- order on:
--   sent, 2xx           -> as the answer says (apply_answer)
--   sent, 429           -> pending again after Retry-After (or backoff)
--   sent, 401/402       -> pending again, the attempt not counted: the
--                          caller pauses sending ('paused')
--   sent, other 4xx     -> failed, holds voided
--   looked up, 404      -> not at the provider: pending again, or failed
--                          once max_attempts sends were made
--   anything else       -> outcome unknown: looked up after a backoff
-- A stale outcome (the order was settled meanwhile, by a webhook or
-- another claimer) changes nothing.
CREATE FUNCTION gifq.record_outcome(_id bigint, _call text, _caller text,
	_http integer, _body text, _error text, _latency double precision,
	_retry_after integer, _max_attempts integer, _base_ms integer, _cap_ms integer)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	o gifq.orders;
	answer jsonb := _body::jsonb;
	done text;
	why text;
BEGIN
	SELECT * INTO o FROM gifq.orders WHERE id = _id FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM gifq.unknown_order(_id);
	END IF;
	PERFORM gifq.log_call(_call, _id, o.attempts, _http, _error, _latency, _caller);
	IF o.status NOT IN ('submitted', 'processing') OR o.lease_owner IS DISTINCT FROM _caller THEN
		RETURN 'stale';
	END IF;
	why := coalesce(_error, CASE WHEN _http IS NOT NULL AND _http NOT BETWEEN 200 AND 299
		AND NOT (_call = 'lookup' AND _http = 404) THEN gifq.provider_error(_http, answer) END);

	IF _http BETWEEN 200 AND 299 AND answer IS NOT NULL THEN
		done := gifq.apply_answer(o, answer, CASE _call WHEN 'order' THEN 'answer' ELSE 'look-up' END,
			greatest(_base_ms, 1000));
		IF done <> 'unknown' THEN
			RETURN done;
		END IF;
		why := coalesce(why, 'the provider''s answer settles nothing: '
			|| left(coalesce(answer ->> 'status', 'no status'), 40));
	ELSIF _http IN (401, 402) THEN
		UPDATE gifq.orders x SET
			status = CASE WHEN _call = 'order' THEN 'pending' ELSE x.status END,
			status_reason = CASE WHEN _call = 'order' THEN 'sending paused: ' || why
				ELSE x.status_reason END,
			attempts = x.attempts - (_call = 'order')::integer,
			last_error = why, lease_owner = NULL, lease_until = NULL,
			next_attempt_at = now() + make_interval(secs => _base_ms / 1000.0)
		WHERE x.id = o.id;
		RETURN 'paused';
	ELSIF _http = 429 THEN
		UPDATE gifq.orders x SET
			status = CASE WHEN _call = 'order' THEN 'pending' ELSE x.status END,
			status_reason = CASE WHEN _call = 'order' THEN 'rate limited by the provider'
				ELSE x.status_reason END,
			last_error = why, lease_owner = NULL, lease_until = NULL,
			next_attempt_at = now() + greatest(make_interval(secs => coalesce(_retry_after, 0)),
				gifq.backoff(o.attempts, _base_ms, _cap_ms))
		WHERE x.id = o.id;
		RETURN 'retry';
	ELSIF _call = 'order' AND _http BETWEEN 400 AND 499 THEN
		PERFORM gifq.fail_order(o.id, why);
		RETURN 'failed';
	ELSIF _call = 'lookup' AND _http = 404 THEN
		IF o.status = 'submitted' AND o.attempts < _max_attempts THEN
			UPDATE gifq.orders x SET status = 'pending',
				status_reason = 'not at the provider; sending again',
				lease_owner = NULL, lease_until = NULL, lookups = 0, next_attempt_at = now()
			WHERE x.id = o.id;
			RETURN 'retry';
		END IF;
		PERFORM gifq.fail_order(o.id, coalesce(o.last_error, 'not at the provider')
			|| format(' (gave up after %s attempts)', o.attempts));
		RETURN 'failed';
	END IF;

	-- the outcome is unknown: look it up after a backoff
	UPDATE gifq.orders x SET last_error = coalesce(why, 'no answer'),
		lease_owner = NULL, lease_until = NULL, lookups = x.lookups + 1,
		next_attempt_at = now() + greatest(make_interval(secs => coalesce(_retry_after, 0)),
			gifq.backoff(greatest(o.attempts, x.lookups + 1), _base_ms, _cap_ms))
	WHERE x.id = o.id;
	RETURN 'lookup';
END $$;

------------------------------------------------------------------------
-- inbound webhooks
------------------------------------------------------------------------

CREATE FUNCTION gifq.request_catalog_refresh() RETURNS void
	AS 'MODULE_PATHNAME', 'gifq_request_catalog_refresh' LANGUAGE C VOLATILE;

CREATE FUNCTION gifq.webhook_verify(body text, signature text) RETURNS void
	AS 'MODULE_PATHNAME', 'gifq_webhook_verify' LANGUAGE C VOLATILE;

-- gifq.apply_webhook: one verified event.  Order events settle an order
-- that is submitted or processing; one about an order already settled
-- the same way is a repeat, and one that contradicts a settled order is
-- recorded as such (and announced) rather than applied.
CREATE FUNCTION gifq.apply_webhook(event jsonb) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	data jsonb := event -> 'data';
	ref text := data ->> 'reference_id';
	said text := CASE event ->> 'type' WHEN 'order.delivered' THEN 'delivered'
		WHEN 'order.failed' THEN 'failed' END;
	o gifq.orders;
	outcome text;
BEGIN
	SELECT * INTO o FROM gifq.orders WHERE id = gifq.reference_order(ref) FOR UPDATE;
	CASE event ->> 'type'
	WHEN 'order.delivered', 'order.failed' THEN
		IF o.id IS NULL THEN
			outcome := 'unknown order ' || coalesce(ref, 'without reference');
		ELSIF o.status IN ('delivered', 'failed') THEN
			outcome := CASE WHEN o.status = said THEN 'already ' || o.status
				ELSE format('ignored: order %s is %s', o.id, o.status) END;
			IF o.status <> said THEN
				PERFORM gifq.emit(o.program_id, 'provider.alert', jsonb_build_object(
					'order_id', o.id, 'reason', 'webhook contradicts a settled order',
					'order_status', o.status, 'webhook', event ->> 'type'));
			END IF;
		ELSE
			outcome := gifq.apply_answer(o, data || jsonb_build_object('status', said),
				'webhook', 5000);
			outcome := CASE outcome WHEN 'unknown' THEN 'ignored: no card in the event'
				ELSE 'order ' || o.id || ' ' || outcome END;
		END IF;
	WHEN 'card.redeemed' THEN
		-- before the delivery is recorded, the event row itself is kept
		-- and deliver_order takes the redemption time from it
		UPDATE gifq.cards c SET redeemed_at = coalesce(c.redeemed_at, now())
		WHERE c.order_id = o.id;
		outcome := CASE WHEN FOUND THEN 'card of order ' || o.id || ' redeemed'
			WHEN o.id IS NOT NULL THEN 'card of order ' || o.id || ' redeemed (before its delivery)'
			ELSE 'unknown card ' || coalesce(ref, 'without reference') END;
	WHEN 'catalog.updated' THEN
		PERFORM gifq.request_catalog_refresh();
		outcome := 'catalog refresh requested';
	ELSE
		outcome := 'ignored: unknown event type ' || coalesce(event ->> 'type', 'NULL');
	END CASE;
	RETURN outcome;
END $$;

-- gifq.webhook_event: the body as a JSON object with an id and a type,
-- or QG404.
CREATE FUNCTION gifq.webhook_event(body text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	event jsonb;
BEGIN
	BEGIN
		event := body::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		NULL;
	END;
	IF jsonb_typeof(event) IS DISTINCT FROM 'object'
		OR jsonb_typeof(event -> 'id') IS DISTINCT FROM 'string'
		OR jsonb_typeof(event -> 'type') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG404',
			MESSAGE = format('webhook body %s is not an event', left(body, 60)),
			HINT = 'A provider event is a JSON object with a string "id", a "type" and "data".';
	END IF;
	RETURN event;
END $$;

CREATE FUNCTION @extschema@.gifq_provider_webhook(body text, signature text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	event jsonb;
	outcome text;
	ref text;
BEGIN
	PERFORM gifq.webhook_verify(body, signature);
	event := gifq.webhook_event(body);
	-- one event id is applied once, even when two deliveries race
	PERFORM pg_advisory_xact_lock(hashtext('gifq.webhook:' || (event ->> 'id')));
	SELECT w.outcome INTO outcome FROM gifq.webhook_events w WHERE w.event_id = event ->> 'id';
	IF FOUND THEN
		RETURN 'duplicate event ' || (event ->> 'id') || ': ' || outcome;
	END IF;
	outcome := gifq.apply_webhook(event);
	ref := event #>> '{data,reference_id}';
	INSERT INTO gifq.webhook_events (event_id, event_type, order_id, outcome)
	VALUES (event ->> 'id', event ->> 'type',
		gifq.reference_order(ref), outcome);
	RETURN outcome;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_provider_webhook(text, text) IS 'apply a provider webhook after checking its X-Gifq-Signature; a repeated event id is ignored';

------------------------------------------------------------------------
-- outbound events
------------------------------------------------------------------------

-- Events are queued for the configured endpoint (gifq.events_url) when
-- they are written while it is set; the worker POSTs them, signed, and
-- records the outcome here.
-- (The default is set after the column is added, so that events written
-- before this update are not queued.)
ALTER TABLE gifq.outbox
	ADD COLUMN send_status text,
	ADD COLUMN send_attempts integer NOT NULL DEFAULT 0,
	ADD COLUMN send_after timestamptz,
	ADD COLUMN sent_at timestamptz,
	ADD COLUMN send_error text;
ALTER TABLE gifq.outbox ALTER COLUMN send_status
	SET DEFAULT (CASE WHEN pg_catalog.current_setting('gifq.events_url', true) <> ''
		THEN 'pending' END);
CREATE INDEX outbox_to_send ON gifq.outbox (id) WHERE send_status = 'pending';

-- gifq.claim_events: the next events to POST, oldest first, each leased
-- for lease.
CREATE FUNCTION gifq.claim_events(batch integer, lease interval)
RETURNS TABLE(event_id bigint, body text)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE gifq.outbox x SET send_after = now() + lease, send_attempts = x.send_attempts + 1
	WHERE x.id IN (SELECT id FROM gifq.outbox
		WHERE send_status = 'pending' AND coalesce(send_after, '-infinity') <= now()
		ORDER BY id LIMIT batch FOR UPDATE SKIP LOCKED)
	RETURNING x.id, jsonb_build_object('id', 'gifq_evt_' || x.id, 'type', x.event_type,
		'created_at', x.created_at, 'data', x.payload)::text
$$;

-- gifq.record_event_sent: the endpoint answered (or not).  2xx: sent;
-- otherwise retried after a backoff until max_attempts, then 'failed'.
CREATE FUNCTION gifq.record_event_sent(_id bigint, _http integer, _error text,
	_latency double precision, _caller text, _max_attempts integer,
	_base_ms integer, _cap_ms integer) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n integer;
BEGIN
	SELECT send_attempts INTO n FROM gifq.outbox WHERE id = _id FOR UPDATE;
	PERFORM gifq.log_call('event', NULL, n, _http, _error, _latency, _caller);
	IF _http BETWEEN 200 AND 299 THEN
		UPDATE gifq.outbox SET send_status = 'sent', sent_at = now(), send_error = NULL
		WHERE id = _id;
		RETURN 'sent';
	END IF;
	UPDATE gifq.outbox SET send_error = coalesce(_error, 'HTTP ' || _http),
		send_status = CASE WHEN n >= _max_attempts THEN 'failed' ELSE 'pending' END,
		send_after = now() + gifq.backoff(n, _base_ms, _cap_ms)
	WHERE id = _id;
	RETURN CASE WHEN n >= _max_attempts THEN 'failed' ELSE 'retry' END;
END $$;

-- gifq.load_catalog: the worker's catalog refresh, whatever schema the
-- extension's API lives in.
CREATE FUNCTION gifq.load_catalog(catalog jsonb) RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	SELECT @extschema@.gifq_catalog_load(catalog)
$$;

------------------------------------------------------------------------
-- processing orders, the worker's state
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_process_orders(batch integer DEFAULT 100) RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.gifq_process_orders(integer) IS 'send due orders to the provider (and look up those in doubt) from this session, recording the answers, when the worker is not running; returns how many calls it made';

CREATE FUNCTION gifq.worker_status(OUT database text, OUT pid integer,
	OUT started_at timestamptz, OUT last_wake timestamptz, OUT in_flight integer,
	OUT calls bigint, OUT delivered bigint, OUT failed bigint,
	OUT paused_reason text, OUT paused_since timestamptz,
	OUT last_error text, OUT last_error_at timestamptz,
	OUT catalog_synced_at timestamptz)
RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'gifq_worker_status' LANGUAGE C VOLATILE;

-- The worker of each database named in gifq.database, with this
-- database's queue.
CREATE VIEW gifq.worker AS
SELECT w.*,
	CASE WHEN w.database = current_database() THEN
		(SELECT count(*) FROM gifq.orders o WHERE o.status = 'pending'
			AND o.next_attempt_at <= now()) END AS queue_depth,
	CASE WHEN w.database = current_database() THEN
		(SELECT count(*) FROM gifq.orders o WHERE o.status IN ('submitted', 'processing')) END
		AS orders_in_flight
FROM gifq.worker_status() w;

REVOKE ALL ON FUNCTION @extschema@.gifq_process_orders(integer),
	@extschema@.gifq_reveal_code(bigint),
	@extschema@.gifq_provider_webhook(text, text)
FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gifq FROM PUBLIC;
