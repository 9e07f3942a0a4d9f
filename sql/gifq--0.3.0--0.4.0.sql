-- gifq--0.3.0--0.4.0.sql: gamification, part one: what a program defines
-- (rules, challenges, streak types, thresholds).  Recording events, and
-- the streaks, thresholds, expiry and leaderboards they drive, build on
-- these tables.

\echo Use "ALTER EXTENSION gifq UPDATE TO '0.4.0'" to load this file. \quit

------------------------------------------------------------------------
-- tables
------------------------------------------------------------------------

-- An event type's rule: the points each event of that type earns, and at
-- most daily_cap rewarded events per member per day (the program's day).
CREATE TABLE gifq.rules (
	program_id bigint NOT NULL REFERENCES gifq.programs,
	event_type text NOT NULL,
	points bigint NOT NULL CHECK (points >= 0),
	daily_cap integer CHECK (daily_cap > 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (program_id, event_type)
);

-- A challenge changes an event type's reward for a while: a multiplier on
-- the rule's points, for the first max_completions completions in the
-- program and at most per_member_limit per member (NULL: no limit).
CREATE TABLE gifq.challenges (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	program_id bigint NOT NULL REFERENCES gifq.programs,
	name text NOT NULL,
	event_type text NOT NULL,
	starts_at timestamptz NOT NULL,
	ends_at timestamptz NOT NULL,
	multiplier numeric NOT NULL CHECK (multiplier >= 1 AND multiplier <= 1000),
	max_completions integer CHECK (max_completions > 0),
	per_member_limit integer CHECK (per_member_limit > 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (program_id, name),
	CHECK (ends_at > starts_at)
);
CREATE INDEX challenges_active ON gifq.challenges (program_id, event_type, ends_at);

-- A streak type: consecutive periods (day, week from Monday, month, in
-- the program's time zone) with a qualifying event of event_type;
-- grace_periods missed periods in a row do not break it.
CREATE TABLE gifq.streak_types (
	program_id bigint NOT NULL REFERENCES gifq.programs,
	streak_type text NOT NULL,
	event_type text NOT NULL,
	period text NOT NULL CHECK (period IN ('day', 'week', 'month')),
	grace_periods integer NOT NULL CHECK (grace_periods BETWEEN 0 AND 1000),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (program_id, streak_type)
);

-- A threshold on a member's points balance: the first time the balance
-- reaches it, 'unlock' raises threshold.reached and 'reward' also issues
-- a reward of reward_value.
CREATE TABLE gifq.thresholds (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	program_id bigint NOT NULL REFERENCES gifq.programs,
	points bigint NOT NULL CHECK (points > 0),
	action text NOT NULL CHECK (action IN ('unlock', 'reward')),
	reward_value @extschema@.gifq_money,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (program_id, points, action),
	CHECK ((action = 'reward') = (reward_value IS NOT NULL))
);

SELECT pg_catalog.pg_extension_config_dump('gifq.rules', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.challenges', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.challenges_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.streak_types', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.thresholds', '');
SELECT pg_catalog.pg_extension_config_dump('gifq.thresholds_id_seq', '');

------------------------------------------------------------------------
-- internal helpers
------------------------------------------------------------------------

-- gifq.check_event_type: an event or streak type is a name an app sends
-- with every event: 1 to 100 letters, digits and _ . : / -, starting with
-- a letter or digit ('deal.closed', 'training_completed').
CREATE FUNCTION gifq.check_event_type(what text, value text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF value IS NULL OR value !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid %s %s', what, coalesce(quote_literal(value), 'NULL')),
			HINT = 'Use 1 to 100 letters, digits and _ . : / -, starting with a letter or digit, such as ''deal.closed''.';
	END IF;
END $$;

-- gifq.check_count: NULL (no limit) or a whole number from 1.
CREATE FUNCTION gifq.check_count(what text, value integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF value <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid %s %s', what, value),
			HINT = format('Give %s as a whole number from 1, or NULL for no limit.', what);
	END IF;
END $$;

------------------------------------------------------------------------
-- API
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_set_rule(program text, event_type text,
	points bigint, daily_cap integer DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
BEGIN
	PERFORM gifq.check_event_type('event_type', event_type);
	IF points IS NULL OR points < 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid points %s', coalesce(points::text, 'NULL')),
			HINT = 'Give the points each event earns: a whole number from 0.';
	END IF;
	PERFORM gifq.check_count('daily_cap', daily_cap);
	INSERT INTO gifq.rules AS r (program_id, event_type, points, daily_cap)
	VALUES (pid, gifq_set_rule.event_type, gifq_set_rule.points, gifq_set_rule.daily_cap)
	ON CONFLICT ON CONSTRAINT rules_pkey DO UPDATE
		SET points = EXCLUDED.points, daily_cap = EXCLUDED.daily_cap, updated_at = now()
		WHERE (r.points, r.daily_cap) IS DISTINCT FROM (EXCLUDED.points, EXCLUDED.daily_cap);
END $$;
COMMENT ON FUNCTION @extschema@.gifq_set_rule(text, text, bigint, integer) IS 'the points an event type earns, with an optional cap of rewarded events per member per day';

CREATE FUNCTION @extschema@.gifq_create_challenge(program text, name text,
	event_type text, starts_at timestamptz, ends_at timestamptz,
	multiplier numeric DEFAULT 2, max_completions integer DEFAULT NULL,
	per_member_limit integer DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
	c gifq.challenges;
	field text;
BEGIN
	PERFORM gifq.check_code('challenge name', name);
	PERFORM gifq.check_event_type('event_type', event_type);
	IF starts_at IS NULL OR ends_at IS NULL OR NOT isfinite(starts_at)
		OR NOT isfinite(ends_at) OR ends_at <= starts_at THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid challenge period %s to %s',
				coalesce(starts_at::text, 'NULL'), coalesce(ends_at::text, 'NULL')),
			HINT = 'Give finite times with ends_at after starts_at.';
	END IF;
	IF multiplier IS NULL OR multiplier IN ('NaN', 'Infinity') OR multiplier < 1
		OR multiplier > 1000 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid multiplier %s', coalesce(multiplier::text, 'NULL')),
			HINT = 'Give a multiplier from 1 to 1000, such as 2 for double points.';
	END IF;
	PERFORM gifq.check_count('max_completions', max_completions);
	PERFORM gifq.check_count('per_member_limit', per_member_limit);

	INSERT INTO gifq.challenges (program_id, name, event_type, starts_at, ends_at,
		multiplier, max_completions, per_member_limit)
	VALUES (pid, gifq_create_challenge.name, gifq_create_challenge.event_type,
		gifq_create_challenge.starts_at, gifq_create_challenge.ends_at,
		gifq_create_challenge.multiplier, gifq_create_challenge.max_completions,
		gifq_create_challenge.per_member_limit)
	ON CONFLICT ON CONSTRAINT challenges_program_id_name_key DO NOTHING
	RETURNING * INTO c;
	IF c.id IS NOT NULL THEN
		RETURN c.id;
	END IF;
	-- the name is taken: the same challenge again, or a conflict
	SELECT * INTO STRICT c FROM gifq.challenges x
	WHERE x.program_id = pid AND x.name = gifq_create_challenge.name;
	field := CASE
		WHEN c.event_type <> gifq_create_challenge.event_type THEN 'event_type'
		WHEN c.starts_at <> gifq_create_challenge.starts_at THEN 'starts_at'
		WHEN c.ends_at <> gifq_create_challenge.ends_at THEN 'ends_at'
		WHEN c.multiplier <> gifq_create_challenge.multiplier THEN 'multiplier'
		WHEN c.max_completions IS DISTINCT FROM gifq_create_challenge.max_completions THEN 'max_completions'
		WHEN c.per_member_limit IS DISTINCT FROM gifq_create_challenge.per_member_limit THEN 'per_member_limit'
		END;
	IF field IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG109',
			MESSAGE = format('challenge "%s" exists with a different %s', name, field),
			HINT = 'gifq_create_challenge is idempotent only with the same arguments; give a new challenge a new name.';
	END IF;
	RETURN c.id;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_create_challenge(text, text, text, timestamptz, timestamptz, numeric, integer, integer) IS 'a multiplier on an event type''s points for a while, optionally for the first N completions and N per member; idempotent by name';

CREATE FUNCTION @extschema@.gifq_define_streak(program text, streak_type text,
	event_type text, period text, grace_periods integer DEFAULT 1) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pid bigint := gifq.program_id(program);
	s gifq.streak_types;
BEGIN
	PERFORM gifq.check_event_type('streak_type', streak_type);
	PERFORM gifq.check_event_type('event_type', event_type);
	IF period IS NULL OR period NOT IN ('day', 'week', 'month') THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid period %s', coalesce(quote_literal(period), 'NULL')),
			HINT = 'Give ''day'', ''week'' or ''month''.';
	END IF;
	IF grace_periods IS NULL OR grace_periods NOT BETWEEN 0 AND 1000 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid grace_periods %s', coalesce(grace_periods::text, 'NULL')),
			HINT = 'Give the missed periods in a row a streak survives: 0 to 1000.';
	END IF;
	INSERT INTO gifq.streak_types (program_id, streak_type, event_type, period, grace_periods)
	VALUES (pid, gifq_define_streak.streak_type, gifq_define_streak.event_type,
		gifq_define_streak.period, gifq_define_streak.grace_periods)
	ON CONFLICT ON CONSTRAINT streak_types_pkey DO NOTHING
	RETURNING * INTO s;
	IF s.program_id IS NOT NULL THEN
		RETURN;
	END IF;
	-- defined before: what a streak counts cannot change under it; the
	-- grace may (it judges the gaps that come)
	SELECT * INTO STRICT s FROM gifq.streak_types x
	WHERE x.program_id = pid AND x.streak_type = gifq_define_streak.streak_type
	FOR UPDATE;
	IF s.event_type <> gifq_define_streak.event_type OR s.period <> gifq_define_streak.period THEN
		RAISE EXCEPTION USING ERRCODE = 'QG109',
			MESSAGE = format('streak type "%s" exists with a different %s', streak_type,
				CASE WHEN s.event_type <> gifq_define_streak.event_type THEN 'event_type'
				ELSE 'period' END),
			HINT = 'What a streak counts cannot change; define a streak type with a new name.';
	END IF;
	IF s.grace_periods <> gifq_define_streak.grace_periods THEN
		UPDATE gifq.streak_types x SET grace_periods = gifq_define_streak.grace_periods,
			updated_at = now()
		WHERE x.program_id = pid AND x.streak_type = gifq_define_streak.streak_type;
	END IF;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_define_streak(text, text, text, text, integer) IS 'a streak of consecutive days, weeks or months with an event of a type, with grace periods';

CREATE FUNCTION @extschema@.gifq_define_threshold(program text, points bigint,
	action text, reward_value @extschema@.gifq_money DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p gifq.programs;
	t gifq.thresholds;
BEGIN
	SELECT * INTO p FROM gifq.programs WHERE id = gifq.program_id(program);
	IF points IS NULL OR points <= 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid points %s', coalesce(points::text, 'NULL')),
			HINT = 'Give the points balance that reaches the threshold: a whole number from 1.';
	END IF;
	IF action IS NULL OR action NOT IN ('unlock', 'reward') THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid action %s', coalesce(quote_literal(action), 'NULL')),
			HINT = 'Give ''unlock'' (a threshold.reached event) or ''reward'' (also a reward of reward_value).';
	END IF;
	IF action = 'unlock' AND reward_value IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid reward_value %s for action unlock', reward_value),
			HINT = 'Only a ''reward'' threshold has a reward_value.';
	END IF;
	IF action = 'reward' AND (reward_value IS NULL
		OR @extschema@.gifq_minor_units(reward_value) <= 0
		OR @extschema@.gifq_currency(reward_value) = p.points_code) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG115',
			MESSAGE = format('invalid reward_value %s', coalesce(reward_value::text, 'NULL')),
			HINT = format('Give a positive amount in a currency the program funds, such as ''10.00 %s''.', p.currency);
	END IF;
	INSERT INTO gifq.thresholds (program_id, points, action, reward_value)
	VALUES (p.id, gifq_define_threshold.points, gifq_define_threshold.action,
		gifq_define_threshold.reward_value)
	ON CONFLICT ON CONSTRAINT thresholds_program_id_points_action_key DO NOTHING
	RETURNING * INTO t;
	IF t.id IS NOT NULL THEN
		RETURN t.id;
	END IF;
	SELECT * INTO STRICT t FROM gifq.thresholds x
	WHERE x.program_id = p.id AND x.points = gifq_define_threshold.points
		AND x.action = gifq_define_threshold.action;
	-- (gifq_money's = lives in the extension's schema, off the search_path)
	IF (t.reward_value IS NULL) <> (reward_value IS NULL) OR
		NOT coalesce(t.reward_value OPERATOR(@extschema@.=) reward_value, true) THEN
		RAISE EXCEPTION USING ERRCODE = 'QG109',
			MESSAGE = format('threshold %s %s exists with a different reward_value (%s)',
				action, points, t.reward_value),
			HINT = 'gifq_define_threshold is idempotent only with the same arguments.';
	END IF;
	RETURN t.id;
END $$;
COMMENT ON FUNCTION @extschema@.gifq_define_threshold(text, bigint, text, @extschema@.gifq_money) IS 'a points balance that, first reached, unlocks (threshold.reached) or also issues a reward; idempotent';

------------------------------------------------------------------------
-- privileges (see the note in gifq--0.1.0--0.2.0.sql)
------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
	@extschema@.gifq_set_rule(text, text, bigint, integer),
	@extschema@.gifq_create_challenge(text, text, text, timestamptz, timestamptz, numeric, integer, integer),
	@extschema@.gifq_define_streak(text, text, text, text, integer),
	@extschema@.gifq_define_threshold(text, bigint, text, @extschema@.gifq_money)
FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gifq FROM PUBLIC;
