/*-------------------------------------------------------------------------
 * events.c
 *	  gifq_record_event and gifq_record_events: a member's events become
 *	  points by the program's rules and running challenges.
 *
 * One event, in its caller's transaction: check the call; lock the member
 * and read their points account and gifq.settings_version in one
 * statement; take the program, its issuance account and thresholds and the
 * type's rule and challenges from settings.c's cache (read again only
 * after a change to them commits); look up the event holding the key; count
 * the member's rewarded events of the day, and their completions of
 * challenges, only when the rule has a daily cap or a running challenge a
 * per-member limit; post the points
 * with ledger_transfer_set and insert the event (its streak trigger and any
 * statement trigger fire as for any INSERT).  Every statement is a plan
 * prepared once per backend.  A batch (gifq_record_events) is parsed and
 * checked here and worked out set-wise in events_batch.c.
 *
 * Idempotency without a subtransaction.  The member's row is locked by
 * the first statement and the key looked up by the next, so under read
 * committed a concurrent call with the same key for the same member waits
 * on the member and then sees (and replays) the first event.  One for
 * another member inserts, waits on the key's unique index, and then either
 * records its event (the first rolled back) or meets the unique violation,
 * which is reported as the QG109 a replay would give.  The violation is
 * caught only to be replaced by another error, so no subtransaction is
 * needed (the SQL version had one per event: more than 64 in a batch
 * overflowed the PGPROC cache and slowed every backend).  Under repeatable
 * read or serializable the snapshot may predate the other event: 40001.
 *
 * Lock order: members in id order, then limited challenges in id order,
 * then the ledger's balance slots in (account, slot) order; a batch takes
 * all its members and challenges before any balance, so single calls and
 * batches never wait on each other in a cycle.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/events.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "arrays.h"
#include "gifq.h"
#include "events.h"
#include "ledger.h"
#include "scope.h"
#include "money.h"
#include "recording.h"
#include "statistics.h"

#include "access/xact.h"
#include "common/int.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

static SPIPlanPtr plan_program;
static SPIPlanPtr plan_read;
static SPIPlanPtr plan_key;
static SPIPlanPtr plan_counts;
static SPIPlanPtr plan_take;
static SPIPlanPtr plan_insert;

/* The member's row and what the first statement reads with it. */
typedef struct EventTarget
{
	int64		member_id;
	int64		program_id;
	const EventSettings *settings;
	char		points_code[GIFQ_CURRENCY_LEN];
	LedgerAccount points_account;
	LedgerAccount issuance_account;
	int64		new_id;			/* drawn for the event (unused by a replay) */
	EventThresholds thresholds;

	/* the challenges the event completes, inserted with it */
	int			ncompleted;
	Datum	   *completed;		/* challenge ids */
	Datum	   *bonuses;

	/* the event that holds the key, if any */
	bool		found;
	int64		first_member_id;
	char	   *first_event_type;
	TimestampTz first_occurred_at;
	bool		first_occurred_given;
	Jsonb	   *first_attributes;
	EventResult first;
} EventTarget;

/* ----------------------------------------------------------------------
 * Checking a call
 * ----------------------------------------------------------------------
 */

/*
 * events_program_id
 *		Throw QG101 if the program does not exist (gifq.program_id says
 *		so); return its id otherwise.
 */
int64
events_program_id(const char *program)
{
	static const Oid argtypes[] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {' '};

	values[0] = program ? CStringGetTextDatum(program) : (Datum) 0;
	if (program == NULL)
		nulls[0] = 'n';
	ledger_run(ledger_plan(&plan_program, "SELECT gifq.program_id($1)", 1, argtypes),
			   values, nulls, SPI_OK_SELECT);
	return DatumGetInt64(ledger_datum(1));
}

/*
 * event_type_is_valid
 *		1 to 100 letters, digits and _ . : / -, starting with a letter or
 *		digit (gifq.check_event_type's pattern).
 */
static bool
event_type_is_valid(const char *s)
{
	size_t		n = strlen(s);

	if (n < 1 || n > 100)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char		c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (i > 0 && (c == '_' || c == '.' || c == ':' || c == '/' || c == '-'))
			continue;
		return false;
	}
	return true;
}

/*
 * events_check_call
 *		Refuse a malformed call with QG115, as gifq_record_event documents.
 *		An unknown program is reported first (QG101), as the SQL version
 *		did, so the program is looked up before the refusal.
 */
void
events_check_call(const char *program, const EventCall *call)
{
	if (call->event_type == NULL || !event_type_is_valid(call->event_type))
	{
		events_program_id(program);
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("invalid event_type %s",
						call->event_type ? quote_literal_cstr(call->event_type) : "NULL"),
				 errhint("Use 1 to 100 letters, digits and _ . : / -, starting with a letter or digit, such as 'deal.closed'.")));
	}
	if (call->key == NULL || call->key[0] == '\0' || pg_mbstrlen(call->key) > 200)
	{
		events_program_id(program);
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("invalid idempotency key %s",
						call->key ? quote_literal_cstr(call->key) : "NULL"),
				 errhint("Give a key of 1 to 200 characters, such as the id of the action in your app.")));
	}
	if (call->occurred_given &&
		(TIMESTAMP_NOT_FINITE(call->occurred_at) ||
		 call->occurred_at > GetCurrentTimestamp() + 5 * USECS_PER_MINUTE))
	{
		events_program_id(program);
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("invalid occurred_at %s",
						DatumGetCString(DirectFunctionCall1(timestamptz_out,
															TimestampTzGetDatum(call->occurred_at)))),
				 errhint("Give when the event happened: a finite time no more than 5 minutes ahead of the database clock.")));
	}
	if (call->attributes == NULL || !JB_ROOT_IS_OBJECT(call->attributes) ||
		JB_ROOT_IS_SCALAR(call->attributes))
	{
		events_program_id(program);
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("invalid attributes %s",
						call->attributes ?
						JsonbToCString(NULL, &call->attributes->root,
									   VARSIZE(call->attributes)) : "NULL"),
				 errhint("Give a JSON object, such as '{\"deal_id\": \"D-42\"}', or leave it out.")));
	}
}


/* ----------------------------------------------------------------------
 * Locks and the first read
 * ----------------------------------------------------------------------
 */

/*
 * The first statement: lock the member (their events are counted one
 * after another), read their points account and the settings version
 * (settings.c caches the rest), and draw an id for the event (wasted by a
 * replay).
 */
#define EVENT_READ \
	"WITH m AS (" \
	" SELECT m.id, m.program_id FROM gifq.members m" \
	" JOIN gifq.programs p ON p.id = m.program_id" \
	" WHERE p.code = $1 AND m.external_id = $2 FOR NO KEY UPDATE OF m)" \
	" SELECT m.id, m.program_id, pg_catalog.nextval('gifq.events_id_seq')," \
	"  " SETTINGS_VERSION_COLUMNS ", pa.*" \
	" FROM m LEFT JOIN gifq.settings_version v ON true" \
	" LEFT JOIN LATERAL (SELECT " LEDGER_ACCOUNT_COLUMNS " FROM gifq.accounts a" \
	"  WHERE a.member_id = m.id AND a.code = 'points') pa ON true"
#define EVENT_READ_ACCOUNT 7

/*
 * read_target
 *		Run the first statement (QG101 or QG102 when it finds no member),
 *		then take the program's settings for the event's type.
 */
static void
read_target(const char *program, const EventCall *call, TimestampTz at,
			EventTarget *t)
{
	static const Oid argtypes[] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	SettingsVersion seen;
	const EventSettings *s;

	values[0] = CStringGetTextDatum(program);
	values[1] = call->member ? CStringGetTextDatum(call->member) : (Datum) 0;
	if (call->member == NULL)
		nulls[1] = 'n';
	ledger_run(ledger_plan(&plan_read, EVENT_READ, 2, argtypes),
			   values, nulls, SPI_OK_SELECT);
	if (SPI_processed != 1)
	{
		events_program_id(program);
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_UNKNOWN_MEMBER),
				 errmsg("unknown member \"%s\" in program \"%s\"",
						call->member ? call->member : "", program),
				 errhint("Create the member first with gifq_upsert_member().")));
	}
	t->member_id = DatumGetInt64(ledger_datum(1));
	t->program_id = DatumGetInt64(ledger_datum(2));
	t->new_id = DatumGetInt64(ledger_datum(3));
	settings_version_read(4, &seen);
	/* its currency is the program's points code, set below */
	ledger_read_account(EVENT_READ_ACCOUNT, t->program_id, "", &t->points_account);
	SPI_freetuptable(SPI_tuptable);
	/* after the look-up, so that an unscoped caller pays nothing more */
	scope_require_program(t->program_id, program);
	if (t->points_account.id == 0)
		elog(ERROR, "member \"%s\" of program \"%s\" has no points account",
			 call->member, program);

	s = event_settings(t->program_id, call->event_type, at, &seen);
	t->settings = s;
	memcpy(t->points_code, s->points_code, GIFQ_CURRENCY_LEN);
	memcpy(t->points_account.currency, s->points_code, GIFQ_CURRENCY_LEN);
	t->issuance_account = s->issuance_account;
	t->thresholds = s->thresholds;
	if (t->issuance_account.id == 0)
		elog(ERROR, "program \"%s\" has no issuance account", program);
}

/*
 * events_check_repeat
 *		A call meets the event that holds its key: throw QG109 naming the
 *		first field that differs (member, event_type, occurred_at when both
 *		gave one, attributes); return if the call repeats it.
 */
void
events_check_repeat(const EventCall *call, int64 member_id, int64 first_member_id,
					const char *first_event_type, bool first_occurred_given,
					TimestampTz first_occurred_at, Jsonb *first_attributes)
{
	const char *field = NULL;
	char	   *detail = "";

	if (first_member_id != member_id)
	{
		field = "member";
		detail = psprintf(": another member the first time, \"%s\" now", call->member);
	}
	else if (strcmp(first_event_type, call->event_type) != 0)
	{
		field = "event_type";
		detail = psprintf(": %s the first time, %s now", first_event_type,
						  call->event_type);
	}
	else if (first_occurred_given && call->occurred_given &&
			 first_occurred_at != call->occurred_at)
	{
		field = "occurred_at";
		detail = psprintf(": %s the first time, %s now",
						  DatumGetCString(DirectFunctionCall1(timestamptz_out,
															  TimestampTzGetDatum(first_occurred_at))),
						  DatumGetCString(DirectFunctionCall1(timestamptz_out,
															  TimestampTzGetDatum(call->occurred_at))));
	}
	else if (compareJsonbContainers(&first_attributes->root,
									&call->attributes->root) != 0)
		field = "attributes";
	if (field != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_IDEMPOTENCY_CONFLICT),
				 errmsg("idempotency key \"%s\" was used for another event", call->key),
				 errdetail("Field \"%s\" differs%s.", field, detail),
				 errhint("Repeat a request with exactly the same arguments, or use a new key for a new event.")));
}

/*
 * replay
 *		The call repeats the event that holds its key: return that event as
 *		it was, or throw QG109.
 */
static void
replay(const EventCall *call, const EventTarget *t, EventResult *result)
{
	events_check_repeat(call, t->member_id, t->first_member_id, t->first_event_type,
						t->first_occurred_given, t->first_occurred_at,
						t->first_attributes);
	*result = t->first;
	memcpy(result->balance_code, t->points_code, GIFQ_CURRENCY_LEN);
}

/* ----------------------------------------------------------------------
 * Points: the rule and the challenges
 * ----------------------------------------------------------------------
 */

/*
 * The second statement, once the member is locked (so that its snapshot
 * sees their events committed before): the event that holds the key.
 */
#define EVENT_KEY \
	"SELECT e.id, e.member_id, e.event_type, e.occurred_at, e.occurred_given," \
	" e.attributes, e.points, e.balance_after, e.details" \
	" FROM gifq.events e WHERE e.program_id = $1 AND e.idempotency_key = $2"

/*
 * Then, only when the rule has a daily cap or a running challenge a
 * per-member limit: the member's rewarded events of the type on the day of
 * occurred_at in the program's time zone (when $5), and their completions
 * of each challenge in $6, in its order.
 */
#define EVENT_COUNTS \
	"SELECT CASE WHEN $5 THEN" \
	"  (SELECT pg_catalog.count(*) FROM gifq.events x" \
	"   WHERE x.member_id = $1 AND x.event_type = $2" \
	"   AND x.occurred_at >= pg_catalog.timezone($4, pg_catalog.date_trunc('day', pg_catalog.timezone($4, $3)))" \
	"   AND x.occurred_at < pg_catalog.timezone($4, pg_catalog.date_trunc('day', pg_catalog.timezone($4, $3))" \
	"    OPERATOR(pg_catalog.+) interval '1 day')" \
	"   AND x.base_points > 0) END," \
	" ARRAY(SELECT (SELECT pg_catalog.count(*) FROM gifq.challenge_completions cc" \
	"   WHERE cc.challenge_id = u.id AND cc.member_id = $1)" \
	"  FROM pg_catalog.unnest($6::bigint[]) WITH ORDINALITY u(id, n) ORDER BY u.n)"

/* What the rule and the challenges give an event. */
typedef struct RuleResult
{
	bool		exists;
	int64		rule_points;
	bool		has_cap;
	int32		daily_cap;
	int64		rewarded;		/* the member's rewarded events that day */
	int			nrunning;
	Challenge  *running;		/* running at occurred_at, in id order */
} RuleResult;

/*
 * read_key
 *		Run the second statement: fill t's first event if the key is taken.
 */
static void
read_key(EventTarget *t, const EventCall *call)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID};
	Datum		values[2];

	values[0] = Int64GetDatum(t->program_id);
	values[1] = CStringGetTextDatum(call->key);
	ledger_run(ledger_plan(&plan_key, EVENT_KEY, 2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	t->found = SPI_processed == 1;
	if (t->found)
	{
		t->first.event_id = DatumGetInt64(ledger_datum(1));
		t->first_member_id = DatumGetInt64(ledger_datum(2));
		t->first_event_type = TextDatumGetCString(ledger_datum(3));
		t->first_occurred_at = DatumGetTimestampTz(ledger_datum(4));
		t->first_occurred_given = DatumGetBool(ledger_datum(5));
		t->first_attributes = DatumGetJsonbPCopy(ledger_datum(6));
		t->first.points = DatumGetInt64(ledger_datum(7));
		t->first.balance = DatumGetInt64(ledger_datum(8));
		t->first.details = DatumGetJsonbPCopy(ledger_datum(9));
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * read_counts
 *		Run the counts' statement: the member's rewarded events of the day
 *		and their completions of the running challenges with a per-member
 *		limit.
 */
static void
read_counts(const EventTarget *t, const EventCall *call, TimestampTz at,
			RuleResult *rule)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTOID,
	BOOLOID, INT8ARRAYOID};
	Datum		values[6];
	Datum	   *ids = palloc(Max(rule->nrunning, 1) * sizeof(Datum));
	int			nids = 0;
	Datum	   *counts;
	bool	   *nulls;
	int			ncounts;
	bool		isnull;
	Datum		d;

	for (int i = 0; i < rule->nrunning; i++)
		if (rule->running[i].per_member)
			ids[nids++] = Int64GetDatum(rule->running[i].id);
	if (!rule->has_cap && nids == 0)
		return;
	values[0] = Int64GetDatum(t->member_id);
	values[1] = CStringGetTextDatum(call->event_type);
	values[2] = TimestampTzGetDatum(at);
	values[3] = CStringGetTextDatum(t->settings->timezone);
	values[4] = BoolGetDatum(rule->has_cap);
	values[5] = datum_array(ids, nids, INT8OID);
	ledger_run(ledger_plan(&plan_counts, EVENT_COUNTS, 6, argtypes),
			   values, NULL, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		rule->rewarded = DatumGetInt64(d);
	deconstruct_array(DatumGetArrayTypeP(ledger_datum(2)), INT8OID, sizeof(int64),
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &counts, &nulls, &ncounts);
	if (ncounts != nids)
		elog(ERROR, "%d completion counts for %d challenges", ncounts, nids);
	for (int i = 0, k = 0; i < rule->nrunning; i++)
		if (rule->running[i].per_member)
			rule->running[i].member_completions = DatumGetInt64(counts[k++]);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * read_rule
 *		The rule and the challenges of the event's type running at
 *		occurred_at, from the settings, with the member's counts.
 */
static void
read_rule(const EventTarget *t, const EventCall *call, TimestampTz at,
		  RuleResult *rule)
{
	const EventSettings *s = t->settings;

	memset(rule, 0, sizeof(RuleResult));
	rule->exists = s->rule_exists;
	rule->rule_points = s->rule_points;
	rule->has_cap = s->has_cap;
	rule->daily_cap = s->daily_cap;
	rule->running = palloc(Max(s->nchallenges, 1) * sizeof(Challenge));
	for (int i = 0; i < s->nchallenges; i++)
		if (s->challenges[i].starts_at <= at && s->challenges[i].ends_at > at)
			rule->running[rule->nrunning++] = s->challenges[i];
	read_counts(t, call, at, rule);
}

/*
 * rule_points
 *		What the rule gives (0 without a rule, or once the member's daily
 *		cap of rewarded events of the type is reached), and its part of the
 *		details, appended to *out ("null" without a rule).
 */
static int64
rule_points(const RuleResult *rule, StringInfo out)
{
	int64		points = rule->rule_points;

	if (!rule->exists)
	{
		appendStringInfoString(out, "null");
		return 0;
	}
	if (rule->has_cap && rule->rewarded >= rule->daily_cap)
		points = 0;
	appendStringInfo(out, "{\"points\": " INT64_FORMAT ", \"rule_points\": " INT64_FORMAT
					 ", \"daily_cap\": ", points, rule->rule_points);
	if (rule->has_cap)
		appendStringInfo(out, "%d", rule->daily_cap);
	else
		appendStringInfoString(out, "null");
	appendStringInfo(out, ", \"capped\": %s}",
					 points == 0 && rule->rule_points > 0 ? "true" : "false");
	return points;
}

/*
 * take_completion
 *		Take one of a limited challenge's completions: the row's lock lets
 *		exactly the first max_completions through.  False when none is
 *		left.
 */
static bool
take_completion(int64 challenge_id)
{
	static const Oid argtypes[] = {INT8OID};
	Datum		values[1];
	bool		taken;

	values[0] = Int64GetDatum(challenge_id);
	ledger_run(ledger_plan(&plan_take,
						   "UPDATE gifq.challenges x SET completions = x.completions + 1"
						   " WHERE x.id = $1 AND x.completions < x.max_completions",
						   1, argtypes),
			   values, NULL, SPI_OK_UPDATE);
	taken = SPI_processed == 1;
	return taken;
}

/*
 * events_challenge_bonus
 *		round(base * (multiplier - 1)): halves away from zero, as numeric's
 *		round() does.
 */
int64
events_challenge_bonus(int64 base, Numeric multiplier)
{
	Datum		m = DirectFunctionCall2(numeric_sub, NumericGetDatum(multiplier),
										DirectFunctionCall1(int8_numeric, Int64GetDatum(1)));
	Datum		b = DirectFunctionCall2(numeric_mul,
										DirectFunctionCall1(int8_numeric, Int64GetDatum(base)), m);

	b = DirectFunctionCall2(numeric_round, b, Int32GetDatum(0));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, b));
}

/*
 * events_append_challenge
 *		One challenge's entry in "challenges" (reason NULL, with its
 *		multiplier and bonus) or in "skipped_challenges" (with the reason).
 */
void
events_append_challenge(StringInfo list, const Challenge *c, const char *reason, int64 bonus)
{
	if (list->len > 1)
		appendStringInfoString(list, ", ");
	appendStringInfo(list, "{\"challenge_id\": " INT64_FORMAT ", \"name\": ", c->id);
	escape_json(list, c->name);
	if (reason != NULL)
		appendStringInfo(list, ", \"reason\": \"%s\"}", reason);
	else
		appendStringInfo(list, ", \"multiplier\": %s, \"bonus\": " INT64_FORMAT "}",
						 DatumGetCString(DirectFunctionCall1(numeric_out,
															 NumericGetDatum(c->multiplier))),
						 bonus);
}

/*
 * apply_challenges
 *		Apply every running challenge, in id order, to base points: each
 *		completes when the rule gave points, the member is under its
 *		per_member_limit and the program under its max_completions, and
 *		adds its bonus on the base (bonuses do not compound).  Returns the
 *		bonus; fills the two lists of the details.
 */
static int64
apply_challenges(EventTarget *t, const RuleResult *rule, int64 base,
				 StringInfo applied, StringInfo skipped)
{
	Challenge  *c = rule->running;
	int			n = rule->nrunning;
	int64		bonus = 0;

	t->completed = palloc(Max(n, 1) * sizeof(Datum));
	t->bonuses = palloc(Max(n, 1) * sizeof(Datum));
	t->ncompleted = 0;

	appendStringInfoChar(applied, '[');
	appendStringInfoChar(skipped, '[');
	for (int i = 0; i < n; i++)
	{
		int64		b;

		CHECK_FOR_INTERRUPTS();
		if (base == 0)
		{
			events_append_challenge(skipped, &c[i], "no_base_points", 0);
			continue;
		}
		if (c[i].per_member && c[i].member_completions >= c[i].per_member_limit)
		{
			events_append_challenge(skipped, &c[i], "per_member_limit", 0);
			continue;
		}
		if (c[i].limited && !take_completion(c[i].id))
		{
			events_append_challenge(skipped, &c[i], "max_completions", 0);
			continue;
		}
		b = events_challenge_bonus(base, c[i].multiplier);
		t->completed[t->ncompleted] = Int64GetDatum(c[i].id);
		t->bonuses[t->ncompleted] = Int64GetDatum(b);
		t->ncompleted++;
		if (pg_add_s64_overflow(bonus, b, &bonus))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("event points out of range")));
		events_append_challenge(applied, &c[i], NULL, b);
	}
	appendStringInfoChar(applied, ']');
	appendStringInfoChar(skipped, ']');
	return bonus;
}


/* ----------------------------------------------------------------------
 * Posting and storing
 * ----------------------------------------------------------------------
 */

/*
 * events_read_thresholds
 *		A program's threshold points from an int8[] datum, and whether it
 *		keeps lots of expiring points from a boolean one
 *		(EVENT_THRESHOLD_COLUMNS).
 */
void
events_read_thresholds(Datum array, Datum expiring, EventThresholds *t)
{
	Datum	   *elems;
	bool	   *nulls;

	deconstruct_array(DatumGetArrayTypeP(array), INT8OID, sizeof(int64),
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &t->n);
	t->points = palloc(Max(t->n, 1) * sizeof(int64));
	for (int i = 0; i < t->n; i++)
		t->points[i] = DatumGetInt64(elems[i]);
	t->expiring = DatumGetBool(expiring);
}

/*
 * threshold_between
 *		The ledger's filter: whether the change needs gifq.points_changed,
 *		that is whether the program keeps lots of expiring points or one
 *		of its thresholds lies in (before, after].
 */
static bool
threshold_between(const LedgerAccount *account, int64 before, int64 after, void *arg)
{
	const EventThresholds *t = arg;

	if (t->expiring)
		return true;
	for (int i = 0; i < t->n; i++)
		if (before < t->points[i] && t->points[i] <= after)
			return true;
	return false;
}

/*
 * events_post
 *		ledger_transfer_set with the program's thresholds known (read in
 *		this transaction after the member's lock), so the ledger asks
 *		gifq.thresholds_crossed only when a gain crosses one.
 */
void
events_post(const TransferRequest *reqs, int n, const LedgerAccount *loaded,
			int64 *ids, EventThresholds *t)
{
	ledger_threshold_filter = threshold_between;
	ledger_threshold_filter_arg = t;
	PG_TRY();
	{
		ledger_transfer_set(reqs, n, loaded, ids);
	}
	PG_FINALLY();
	{
		ledger_threshold_filter = NULL;
		ledger_threshold_filter_arg = NULL;
	}
	PG_END_TRY();
}

/*
 * events_apply
 *		ledger_apply, with the same threshold filter as events_post; throws
 *		if the slot refuses the change.
 */
void
events_apply(const LedgerAccount *account, int slot, const SlotDelta *delta,
			 int64 transfer_id, EventThresholds *t)
{
	volatile int applied;

	ledger_threshold_filter = threshold_between;
	ledger_threshold_filter_arg = t;
	PG_TRY();
	{
		applied = ledger_apply(account, slot, delta, transfer_id);
	}
	PG_FINALLY();
	{
		ledger_threshold_filter = NULL;
		ledger_threshold_filter_arg = NULL;
	}
	PG_END_TRY();
	if (applied != 1)
		elog(ERROR, "balance slot %d of account %lld refused a change that takes no room",
			 slot, (long long) account->id);
}

/*
 * post_points
 *		One posted transfer of the event's points from the program's
 *		issuance account to the member's points account (metadata
 *		{"event_id": ..., "event_type": ...}).  Returns its id.
 */
static int64
post_points(const EventTarget *t, const char *event_type, int64 points)
{
	TransferRequest req;
	LedgerAccount loaded[2];
	StringInfoData meta;
	int64		id;

	initStringInfo(&meta);
	appendStringInfo(&meta, "{\"event_id\": " INT64_FORMAT ", \"event_type\": ", t->new_id);
	escape_json(&meta, event_type);
	appendStringInfoChar(&meta, '}');

	memset(&req, 0, sizeof(req));
	req.debit_account = t->issuance_account.id;
	req.credit_account = t->points_account.id;
	req.amount.units = points;
	memcpy(req.amount.currency, t->points_code, GIFQ_CURRENCY_LEN);
	req.metadata = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(meta.data)));
	loaded[0] = t->issuance_account;
	loaded[1] = t->points_account;
	events_post(&req, 1, loaded, &id, (EventThresholds *) &t->thresholds);
	return id;
}

/*
 * events_report_key_conflict
 *		Called while an error is thrown out of an event's insert: turn a
 *		violation of the events' unique (program, key) into what a call
 *		that had seen the other event would report, and let anything else
 *		through.  No subtransaction is needed: this error replaces the
 *		other, and the transaction is aborted either way.
 *
 * Under read committed, the member's lock was taken before the key was
 * looked up, so a twin for the same member committed before the look-up
 * (and was replayed); an event that took the key since is another
 * member's: QG109 naming the member, as a replay would.  Under repeatable
 * read or serializable the snapshot may predate any twin: 40001, and the
 * retry replays it or reports the conflict.
 */
void
events_report_key_conflict(const char *key, const char *member, MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION ||
		edata->constraint_name == NULL ||
		strcmp(edata->constraint_name, "events_program_id_idempotency_key_key") != 0)
		PG_RE_THROW();
	FlushErrorState();
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access: idempotency key \"%s\" was taken by a concurrent event",
						key),
				 errhint("Retry the transaction: the retry replays that event, or reports the conflict.")));
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_IDEMPOTENCY_CONFLICT),
			 errmsg("idempotency key \"%s\" was used for another event", key),
			 errdetail("Field \"member\" differs: another member the first time, \"%s\" now.",
					   member),
			 errhint("Repeat a request with exactly the same arguments, or use a new key for a new event.")));
}

/*
 * insert_event
 *		Store the event and its challenge completions in one statement;
 *		returns the member's available points after it (read in the same
 *		statement).
 */
static int64
insert_event(const EventTarget *t, const EventCall *call, TimestampTz at,
			 int64 base, int64 points, int64 transfer_id, Jsonb *details)
{
	static const Oid argtypes[] = {INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID,
		TIMESTAMPTZOID, BOOLOID, JSONBOID, INT8OID, INT8OID, INT8OID, INT8OID,
	JSONBOID, INT8ARRAYOID, INT8ARRAYOID};
	MemoryContext cxt = CurrentMemoryContext;
	Datum		values[15];
	char		nulls[15];
	int64		balance;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(t->new_id);
	values[1] = Int64GetDatum(t->program_id);
	values[2] = Int64GetDatum(t->member_id);
	values[3] = CStringGetTextDatum(call->event_type);
	values[4] = CStringGetTextDatum(call->key);
	values[5] = TimestampTzGetDatum(at);
	values[6] = BoolGetDatum(call->occurred_given);
	values[7] = JsonbPGetDatum(call->attributes);
	values[8] = Int64GetDatum(base);
	values[9] = Int64GetDatum(points);
	values[10] = Int64GetDatum(transfer_id);
	if (transfer_id == 0)
		nulls[10] = 'n';
	values[11] = Int64GetDatum(t->points_account.id);
	values[12] = JsonbPGetDatum(details);
	values[13] = datum_array(t->completed, t->ncompleted, INT8OID);
	values[14] = datum_array(t->bonuses, t->ncompleted, INT8OID);

	PG_TRY();
	{
		ledger_run(ledger_plan_generic(&plan_insert,
									   "WITH cc AS ("
									   " INSERT INTO gifq.challenge_completions"
									   "  (challenge_id, member_id, event_id, bonus)"
									   " SELECT u.challenge_id, $3, $1, u.bonus"
									   " FROM unnest($14, $15) u(challenge_id, bonus))"
									   " INSERT INTO gifq.events (id, program_id, member_id, event_type,"
									   " idempotency_key, occurred_at, occurred_given, attributes,"
									   " base_points, points, transfer_id, balance_after, details)"
									   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
									   "  (SELECT pg_catalog.sum(s.credits_posted - s.debits_posted - s.debits_pending)"
									   "   FROM gifq.account_slots s WHERE s.account_id = $12), $13)"
									   " RETURNING balance_after",
									   15, argtypes),
				   values, nulls, SPI_OK_INSERT_RETURNING);
	}
	PG_CATCH();
	{
		events_report_key_conflict(call->key, call->member, cxt);
	}
	PG_END_TRY();
	balance = DatumGetInt64(ledger_datum(1));
	SPI_freetuptable(SPI_tuptable);
	return balance;
}

/*
 * insert_telling_triggers
 *		insert_event, with the event's triggers told the program's time zone
 *		and the streak types they would otherwise read (recording.c; copied:
 *		a milestone's own event may empty the settings cache while the
 *		streak trigger runs).
 */
static int64
insert_telling_triggers(const EventTarget *t, const EventCall *call, TimestampTz at,
						int64 base, int64 points, int64 transfer_id, Jsonb *details)
{
	const EventSettings *s = t->settings;
	RecordingEvent known;
	StreakRule *streaks = palloc(Max(s->nstreaks, 1) * sizeof(StreakRule));
	const RecordingEvent *before;
	int64		balance;

	for (int i = 0; i < s->nstreaks; i++)
	{
		streaks[i] = s->streaks[i];
		streaks[i].streak_type = pstrdup(s->streaks[i].streak_type);
	}
	known.program_id = t->program_id;
	known.event_type = call->event_type;
	known.timezone = cstring_to_text(s->timezone);
	known.nstreaks = s->nstreaks;
	known.streaks = streaks;
	before = recording_event_set(&known);
	PG_TRY();
	{
		balance = insert_event(t, call, at, base, points, transfer_id, details);
	}
	PG_FINALLY();
	{
		recording_event_set(before);
	}
	PG_END_TRY();
	return balance;
}

/*
 * events_record_one
 *		Record one event (or replay the one holding its key), inside SPI.
 *		The call has been checked; *result is filled in the current memory
 *		context.
 */
void
events_record_one(const char *program, const EventCall *call, EventResult *result)
{
	EventTarget t;
	RuleResult	rule;
	TimestampTz at;
	int64		base;
	int64		bonus;
	int64		points;
	int64		transfer_id = 0;
	StringInfoData rule_detail;
	StringInfoData applied;
	StringInfoData skipped;

	memset(&t, 0, sizeof(t));
	at = call->occurred_given ? call->occurred_at : GetCurrentTransactionStartTimestamp();
	read_target(program, call, at, &t);
	read_key(&t, call);
	if (t.found)
	{
		replay(call, &t, result);
		return;
	}
	read_rule(&t, call, at, &rule);

	initStringInfo(&rule_detail);
	initStringInfo(&applied);
	initStringInfo(&skipped);
	base = rule_points(&rule, &rule_detail);
	bonus = apply_challenges(&t, &rule, base, &applied, &skipped);
	if (pg_add_s64_overflow(base, bonus, &points))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("event points out of range")));
	if (points > 0)
		transfer_id = post_points(&t, call->event_type, points);

	result->event_id = t.new_id;
	result->points = points;
	result->details = events_details(rule_detail.data, applied.data, skipped.data,
									 transfer_id);
	result->balance = insert_telling_triggers(&t, call, at, base, points, transfer_id,
											  result->details);
	memcpy(result->balance_code, t.points_code, GIFQ_CURRENCY_LEN);
}

/* ----------------------------------------------------------------------
 * A batch
 * ----------------------------------------------------------------------
 */

/*
 * jsonb_clip
 *		A JSON value as text, cut to 200 characters for a message.
 */
static char *
jsonb_clip(Jsonb *jb)
{
	char	   *s = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

	return pnstrdup(s, pg_mbcharcliplen(s, strlen(s), 200));
}

static char *
jsonb_value_clip(JsonbValue *v)
{
	return jsonb_clip(JsonbValueToJsonb(v));
}

static void
refuse_element(int i, JsonbValue *ev) pg_attribute_noreturn();

static void
refuse_element(int i, JsonbValue *ev)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_INVALID_BATCH),
			 errmsg("invalid event %d in batch: %s", i, jsonb_value_clip(ev)),
			 errhint("Each event needs member, event_type and idempotency_key (strings); occurred_at (a time as a string) and attributes (an object) are optional.")));
}

/*
 * field
 *		The value of key in a JSON object, or NULL.
 */
static JsonbValue *
field(JsonbContainer *object, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(object, JB_FOBJECT, &k);
}

static char *
string_field(JsonbContainer *object, const char *key, int i, JsonbValue *ev)
{
	JsonbValue *v = field(object, key);

	if (v == NULL || v->type != jbvString)
		refuse_element(i, ev);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * parse_time
 *		occurred_at as a time, read as a cast to timestamptz would; QG118
 *		naming the element if it is unreadable.  The cast's error is
 *		caught only to be replaced by this one, so no subtransaction is
 *		needed.
 */
static TimestampTz
parse_time(JsonbValue *v, int i)
{
	char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz result = 0;

	PG_TRY();
	{
		result = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(s),
														 ObjectIdGetDatum(InvalidOid),
														 Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		StringInfoData quoted;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_DATETIME_FIELD_OVERFLOW &&
			edata->sqlerrcode != ERRCODE_INVALID_DATETIME_FORMAT)
			PG_RE_THROW();
		FlushErrorState();
		initStringInfo(&quoted);
		escape_json(&quoted, s);
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_BATCH),
				 errmsg("invalid occurred_at %s in event %d of batch", quoted.data, i),
				 errhint("Give a time such as \"2026-11-28T09:30:00Z\".")));
	}
	PG_END_TRY();
	return result;
}

/*
 * parse_element
 *		Element i (from 1) of the batch as a call; QG118 naming it when it
 *		is malformed.
 */
static void
parse_element(JsonbValue *ev, int i, EventCall *call)
{
	JsonbContainer *obj;
	JsonbValue *v;
	JsonbIterator *it;
	JsonbValue	k;
	JsonbIteratorToken tok;

	if (ev->type != jbvBinary || !JsonContainerIsObject(ev->val.binary.data))
		refuse_element(i, ev);
	obj = ev->val.binary.data;
	call->member = string_field(obj, "member", i, ev);
	call->event_type = string_field(obj, "event_type", i, ev);
	call->key = string_field(obj, "idempotency_key", i, ev);
	v = field(obj, "occurred_at");
	if (v != NULL && v->type != jbvString && v->type != jbvNull)
		refuse_element(i, ev);
	call->occurred_given = v != NULL && v->type == jbvString;
	v = field(obj, "attributes");
	if (v != NULL && (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data)))
		refuse_element(i, ev);
	call->attributes = v ? JsonbValueToJsonb(v) :
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));

	/* the first unknown field, in the object's order */
	it = JsonbIteratorInit(obj);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *name;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(k.val.string.val, k.val.string.len);
		if (strcmp(name, "member") != 0 && strcmp(name, "event_type") != 0 &&
			strcmp(name, "idempotency_key") != 0 && strcmp(name, "occurred_at") != 0 &&
			strcmp(name, "attributes") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_GIFQ_INVALID_BATCH),
					 errmsg("unknown field \"%s\" in event %d of batch", name, i),
					 errhint("Fields are member, event_type, idempotency_key, occurred_at and attributes.")));
	}
	if (call->occurred_given)
		call->occurred_at = parse_time(field(obj, "occurred_at"), i);
}

/*
 * parse_batch
 *		Every element of the batch as a call, checked before anything is
 *		recorded.  Returns how many.
 */
static int
parse_batch(Jsonb *events, EventCall **calls)
{
	int			n;

	if (events == NULL || !JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events) ||
		JB_ROOT_COUNT(events) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_BATCH),
				 errmsg("invalid event batch %s", events ? jsonb_clip(events) : "NULL"),
				 errhint("Give a non-empty JSON array of objects with member, event_type and idempotency_key.")));
	n = JB_ROOT_COUNT(events);
	*calls = palloc0(n * sizeof(EventCall));
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		parse_element(getIthJsonbValueFromContainer(&events->root, i), i + 1,
					  &(*calls)[i]);
	}
	return n;
}

/* ----------------------------------------------------------------------
 * SQL-callable functions
 * ----------------------------------------------------------------------
 */

static char *
text_or_null(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

PG_FUNCTION_INFO_V1(gifq_record_event);

/*
 * gifq_record_event
 *		gifq_record_event(program, member, event_type, idempotency_key,
 *		occurred_at, attributes) returns (event_id, points_awarded,
 *		balance, details).  Not strict: NULL arguments are refused as
 *		docs/gamification.md says (occurred_at NULL is "now").
 */
Datum
gifq_record_event(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *program = text_or_null(fcinfo, 0);
	EventCall	call;
	EventResult r;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int			previous;

	InitMaterializedSRF(fcinfo, 0);
	memset(&call, 0, sizeof(call));
	call.member = text_or_null(fcinfo, 1);
	call.event_type = text_or_null(fcinfo, 2);
	call.key = text_or_null(fcinfo, 3);
	call.occurred_given = !PG_ARGISNULL(4);
	if (call.occurred_given)
		call.occurred_at = PG_GETARG_TIMESTAMPTZ(4);
	call.attributes = PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5);

	statistics_keep_current(false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (program == NULL)
		events_program_id(NULL);
	/* the event's streaks and boards follow (recording.c) */
	previous = recording_begin();
	PG_TRY();
	{
		events_check_call(program, &call);
		events_record_one(program, &call, &r);
	}
	PG_FINALLY();
	{
		recording_end(previous);
	}
	PG_END_TRY();

	values[0] = Int64GetDatum(r.event_id);
	values[1] = Int64GetDatum(r.points);
	values[2] = GifqMoneyPGetDatum(money_make(r.balance, r.balance_code));
	values[3] = JsonbPGetDatum(r.details);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	SPI_finish();
	return (Datum) 0;
}

/*
 * record_batch
 *		Record a checked batch: all at once (events_record_batch) or, when
 *		that declines, event by event, with the batch's locks already
 *		taken.  Results go to results[], in the caller's memory context.
 */
static void
record_batch(const char *program, int64 program_id, EventCall *calls, int n,
			 EventResult *results)
{
	MemoryContext outer = CurrentMemoryContext;

	if (events_record_batch(program, program_id, calls, n, results))
		return;

	/*
	 * Event by event (the batch has locked its members and challenges).
	 * Each event runs in an SPI level of its own: SPI keeps every result of
	 * a level until it ends.
	 */
	for (int i = 0; i < n; i++)
	{
		MemoryContext inner;

		CHECK_FOR_INTERRUPTS();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		events_check_call(program, &calls[i]);
		events_record_one(program, &calls[i], &results[i]);
		inner = MemoryContextSwitchTo(outer);
		results[i].details = DatumGetJsonbPCopy(JsonbPGetDatum(results[i].details));
		MemoryContextSwitchTo(inner);
		SPI_finish();
	}
}

PG_FUNCTION_INFO_V1(gifq_record_events);

/*
 * gifq_record_events
 *		gifq_record_events(program, events jsonb) returns one row
 *		(idempotency_key, event_id, points_awarded, balance, details) per
 *		element, in order: the whole batch is checked first (QG118), its
 *		locks taken, then each event recorded as gifq_record_event would.
 *		All or none: any refusal throws.
 */
Datum
gifq_record_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *program = text_or_null(fcinfo, 0);
	Jsonb	   *events = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	EventCall  *calls;
	int64		program_id;
	int			n;
	EventResult *results;
	int			previous;

	InitMaterializedSRF(fcinfo, 0);
	/* a batch adds many rows: look at every call */
	statistics_keep_current(true);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	program_id = events_program_id(program);
	n = parse_batch(events, &calls);
	results = palloc0(n * sizeof(EventResult));
	/* the events' streaks and boards follow (recording.c) */
	previous = recording_begin();
	PG_TRY();
	{
		record_batch(program, program_id, calls, n, results);
	}
	PG_FINALLY();
	{
		recording_end(previous);
	}
	PG_END_TRY();
	for (int i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = CStringGetTextDatum(calls[i].key);
		values[1] = Int64GetDatum(results[i].event_id);
		values[2] = Int64GetDatum(results[i].points);
		values[3] = GifqMoneyPGetDatum(money_make(results[i].balance, results[i].balance_code));
		values[4] = JsonbPGetDatum(results[i].details);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
