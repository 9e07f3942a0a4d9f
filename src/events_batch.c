/*-------------------------------------------------------------------------
 * events_batch.c
 *	  gifq_record_events' work: a batch of events recorded set-wise.
 *
 * A batch gives, element by element, what gifq_record_event would give
 * for each in the array's order, but reads and writes in a few statements
 * instead of about eight per event:
 *
 *	1. lock every member the batch names, in id order, reading their points
 *	   accounts; lock the limited challenges of its event types in id order
 *	   (the order a single event takes them in);
 *	2. read the events that hold its keys, the rules and challenges of its
 *	   event types, the members' completions of per-member-limited
 *	   challenges, and their rewarded events on each capped day;
 *	3. in memory, in the batch's order: check each call, replay a repeated
 *	   key (of an earlier element, or of an event before the batch), apply
 *	   the rule (counting the batch's own rewarded events toward caps) and
 *	   the challenges (counting the batch's completions toward limits);
 *	4. write: one multi-row insert of the transfers, the balance changes
 *	   (one per balance slot: the issuance slot is debited once for the
 *	   batch, each member credited once), the challenges' counters, one
 *	   insert of the completions and one of the events (statement
 *	   triggers fire as for any insert; the streak trigger leaves the rows
 *	   to streaks_record_batch, which keeps the streaks in a few
 *	   statements, with the trigger's results).
 *
 * Each event's balance is the member's available points after it: the
 * balance read after the batch's credits, less what their later events of
 * the batch earned.  A member with several events of the batch gets one
 * balance change for all of them, unless the program has thresholds: then
 * one per event, so that a threshold is recorded at the event that
 * crossed it.
 *
 * A batch whose accounts carry a limit that a posting could break (an
 * issuance account with debits_must_not_exceed_credits) is left to the
 * event-by-event path (events_record_one), which knows how to rebalance
 * slots; that is decided before anything is written.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/events_batch.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "arrays.h"
#include "events.h"
#include "gifq.h"
#include "ledger.h"
#include "money.h"
#include "streaks.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

static SPIPlanPtr plan_members;
static SPIPlanPtr plan_lock_challenges;
static SPIPlanPtr plan_program;
static SPIPlanPtr plan_firsts;
static SPIPlanPtr plan_rules;
static SPIPlanPtr plan_challenges;
static SPIPlanPtr plan_member_completions;
static SPIPlanPtr plan_caps;
static SPIPlanPtr plan_ids;
static SPIPlanPtr plan_transfers;
static SPIPlanPtr plan_balances;
static SPIPlanPtr plan_counters;
static SPIPlanPtr plan_completions;
static SPIPlanPtr plan_events;

/* A member the batch names, locked. */
typedef struct BatchMember
{
	char	   *external_id;
	int64		id;
	LedgerAccount account;
	int64		gained;			/* the batch's points for them */
	int			transfers;		/* how many of the batch's transfers */
	int64		transfer_id;	/* the last one */
	int64		balance;		/* available points, as events are returned */
} BatchMember;

/* An event that held a key before the batch. */
typedef struct FirstEvent
{
	char	   *key;
	int64		member_id;
	char	   *event_type;
	TimestampTz occurred_at;
	bool		occurred_given;
	Jsonb	   *attributes;
	EventResult result;
} FirstEvent;

/* A rule of one of the batch's event types. */
typedef struct BatchRule
{
	char	   *event_type;
	int64		points;
	bool		has_cap;
	int32		daily_cap;
} BatchRule;

/* Per element: what the batch works out for it. */
typedef struct BatchEvent
{
	int			first;			/* index of the element whose key it repeats; itself if new */
	BatchMember *member;
	const FirstEvent *before;	/* the event that held its key before the batch */
	const BatchRule *rule;
	TimestampTz at;
	int64		day_start;		/* capped rule: its day, and the member's */
	int64		day_rewarded;	/* rewarded events that day before the batch */
	int64		base;
	int64		points;
	int64		transfer_id;
	int64		balance;		/* the member's available points after it */
	char	   *rule_detail;
	char	   *applied;
	char	   *skipped;
} BatchEvent;

/* The batch's rewarded events per member, capped type and day. */
typedef struct DayKey
{
	int64		member_id;
	int64		day_start;
	const BatchRule *rule;
} DayKey;

typedef struct DayCount
{
	DayKey		key;
	int64		rewarded;
} DayCount;

/* A member's completions of a per-member-limited challenge. */
typedef struct CompletionKey
{
	int64		challenge_id;
	int64		member_id;
} CompletionKey;

typedef struct CompletionCount
{
	CompletionKey key;
	int64		count;
} CompletionCount;

/* The whole batch as it is worked out. */
typedef struct Batch
{
	const char *program;
	int64		program_id;
	char	   *timezone;
	char		points_code[GIFQ_CURRENCY_LEN];
	LedgerAccount issuance;
	EventThresholds thresholds;

	const EventCall *calls;
	int			n;
	BatchEvent *events;

	BatchMember *members;		/* sorted by external_id */
	int			nmembers;
	FirstEvent *firsts;			/* sorted by key */
	int			nfirsts;
	BatchRule  *rules;			/* sorted by event_type */
	int			nrules;
	Challenge  *challenges;		/* sorted by event_type, id */
	int			nchallenges;
	HTAB	   *days;
	HTAB	   *completions;

	/* completions to insert */
	int			ncompleted;
	Datum	   *cc_challenge;
	Datum	   *cc_member;
	Datum	   *cc_event;
	Datum	   *cc_bonus;
} Batch;


/* ----------------------------------------------------------------------
 * Small helpers
 * ----------------------------------------------------------------------
 */

static Datum
column(uint64 row, int n, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, n, isnull);
}

static int
member_cmp(const void *a, const void *b)
{
	return strcmp(((const BatchMember *) a)->external_id,
				  ((const BatchMember *) b)->external_id);
}

static int
first_cmp(const void *a, const void *b)
{
	return strcmp(((const FirstEvent *) a)->key, ((const FirstEvent *) b)->key);
}

static int
rule_cmp(const void *a, const void *b)
{
	return strcmp(((const BatchRule *) a)->event_type,
				  ((const BatchRule *) b)->event_type);
}

static BatchMember *
find_member(const Batch *b, const char *external_id)
{
	BatchMember key;

	key.external_id = (char *) external_id;
	return bsearch(&key, b->members, b->nmembers, sizeof(BatchMember), member_cmp);
}

static const FirstEvent *
find_first(const Batch *b, const char *k)
{
	FirstEvent	key;

	key.key = (char *) k;
	return bsearch(&key, b->firsts, b->nfirsts, sizeof(FirstEvent), first_cmp);
}

static const BatchRule *
find_rule(const Batch *b, const char *event_type)
{
	BatchRule	key;

	key.event_type = (char *) event_type;
	return bsearch(&key, b->rules, b->nrules, sizeof(BatchRule), rule_cmp);
}

/* index sort of the elements by key, then position */
static const EventCall *sort_calls;

static int
position_cmp(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;
	int			c = strcmp(sort_calls[x].key, sort_calls[y].key);

	if (c != 0)
		return c;
	return x - y;
}


/* ----------------------------------------------------------------------
 * 1 and 2: locks and reads
 * ----------------------------------------------------------------------
 */

/*
 * lock_members
 *		Lock the batch's members in id order and read their points
 *		accounts; then lock the limited challenges of its event types in id
 *		order.
 */
static void
lock_members(Batch *b)
{
	static const Oid argtypes[] = {INT8OID, TEXTARRAYOID};
	const char **members = palloc(b->n * sizeof(char *));
	const char **types = palloc(b->n * sizeof(char *));
	Datum		values[2];

	for (int i = 0; i < b->n; i++)
	{
		members[i] = b->calls[i].member;
		types[i] = b->calls[i].event_type;
	}
	values[0] = Int64GetDatum(b->program_id);
	values[1] = text_array(members, b->n);
	ledger_run(ledger_plan_generic(&plan_members,
								   "SELECT m.external_id, m.id, pa.*"
								   " FROM gifq.members m"
								   " LEFT JOIN LATERAL (SELECT " LEDGER_ACCOUNT_COLUMNS
								   "  FROM gifq.accounts a"
								   "  WHERE a.member_id = m.id AND a.code = 'points') pa ON true"
								   " WHERE m.program_id = $1 AND m.external_id = ANY ($2)"
								   " ORDER BY m.id FOR NO KEY UPDATE OF m",
								   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	b->nmembers = (int) SPI_processed;
	b->members = palloc0(Max(b->nmembers, 1) * sizeof(BatchMember));
	for (int i = 0; i < b->nmembers; i++)
	{
		BatchMember *m = &b->members[i];
		bool		isnull;
		Datum		id;

		m->external_id = TextDatumGetCString(column(i, 1, &isnull));
		m->id = DatumGetInt64(column(i, 2, &isnull));
		/* LEDGER_ACCOUNT_COLUMNS from column 3 */
		id = column(i, 3, &isnull);
		if (isnull)
			elog(ERROR, "member \"%s\" of program \"%s\" has no points account",
				 m->external_id, b->program);
		m->account.id = DatumGetInt64(id);
		m->account.program_id = b->program_id;
		memcpy(m->account.currency, b->points_code, GIFQ_CURRENCY_LEN);
		m->account.debits_must_not_exceed_credits = DatumGetBool(column(i, 4, &isnull));
		m->account.credits_must_not_exceed_debits = DatumGetBool(column(i, 5, &isnull));
		m->account.slots = DatumGetInt32(column(i, 6, &isnull));
		m->account.has_low_balance = DatumGetBool(column(i, 7, &isnull));
		m->account.watch_thresholds = DatumGetBool(column(i, 8, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	qsort(b->members, b->nmembers, sizeof(BatchMember), member_cmp);

	values[1] = text_array(types, b->n);
	ledger_run(ledger_plan_generic(&plan_lock_challenges,
								   "SELECT 1 FROM gifq.challenges c"
								   " WHERE c.program_id = $1 AND c.max_completions IS NOT NULL"
								   " AND c.event_type = ANY ($2)"
								   " ORDER BY c.id FOR NO KEY UPDATE",
								   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * read_program
 *		The program's time zone, points code and issuance account.
 */
static void
read_program(Batch *b)
{
	static const Oid argtypes[] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(b->program_id);
	ledger_run(ledger_plan(&plan_program,
						   "SELECT p.timezone, p.points_code,"
						   " " EVENT_THRESHOLD_COLUMNS ","
						   " ia.*"
						   " FROM gifq.programs p"
						   " LEFT JOIN LATERAL (SELECT " LEDGER_ACCOUNT_COLUMNS
						   "  FROM gifq.accounts a WHERE a.program_id = p.id"
						   "  AND a.member_id IS NULL AND a.code = 'issuance'"
						   "  AND a.currency = p.points_code) ia ON true"
						   " WHERE p.id = $1",
						   1, argtypes),
			   values, NULL, SPI_OK_SELECT);
	b->timezone = TextDatumGetCString(ledger_datum(1));
	currency_from_text(DatumGetTextPP(ledger_datum(2)), b->points_code);
	events_read_thresholds(ledger_datum(3), ledger_datum(4), &b->thresholds);
	ledger_read_account(5, b->program_id, b->points_code, &b->issuance);
	SPI_freetuptable(SPI_tuptable);
	if (b->issuance.id == 0)
		elog(ERROR, "program \"%s\" has no issuance account", b->program);
}

/*
 * read_firsts
 *		The events that hold the batch's keys, read after the members are
 *		locked (so a same-member twin that committed meanwhile is seen).
 */
static void
read_firsts(Batch *b)
{
	static const Oid argtypes[] = {INT8OID, TEXTARRAYOID};
	const char **keys = palloc(b->n * sizeof(char *));
	Datum		values[2];

	for (int i = 0; i < b->n; i++)
		keys[i] = b->calls[i].key;
	values[0] = Int64GetDatum(b->program_id);
	values[1] = text_array(keys, b->n);
	ledger_run(ledger_plan_generic(&plan_firsts,
								   "SELECT e.idempotency_key, e.id, e.member_id, e.event_type,"
								   " e.occurred_at, e.occurred_given, e.attributes, e.points,"
								   " e.balance_after, e.details"
								   " FROM gifq.events e"
								   " WHERE e.program_id = $1 AND e.idempotency_key = ANY ($2)",
								   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	b->nfirsts = (int) SPI_processed;
	b->firsts = palloc0(Max(b->nfirsts, 1) * sizeof(FirstEvent));
	for (int i = 0; i < b->nfirsts; i++)
	{
		FirstEvent *f = &b->firsts[i];
		bool		isnull;

		f->key = TextDatumGetCString(column(i, 1, &isnull));
		f->result.event_id = DatumGetInt64(column(i, 2, &isnull));
		f->member_id = DatumGetInt64(column(i, 3, &isnull));
		f->event_type = TextDatumGetCString(column(i, 4, &isnull));
		f->occurred_at = DatumGetTimestampTz(column(i, 5, &isnull));
		f->occurred_given = DatumGetBool(column(i, 6, &isnull));
		f->attributes = DatumGetJsonbPCopy(column(i, 7, &isnull));
		f->result.points = DatumGetInt64(column(i, 8, &isnull));
		f->result.balance = DatumGetInt64(column(i, 9, &isnull));
		f->result.details = DatumGetJsonbPCopy(column(i, 10, &isnull));
		memcpy(f->result.balance_code, b->points_code, GIFQ_CURRENCY_LEN);
	}
	SPI_freetuptable(SPI_tuptable);
	qsort(b->firsts, b->nfirsts, sizeof(FirstEvent), first_cmp);
}

/*
 * read_rules
 *		The rules of the batch's event types.
 */
static void
read_rules(Batch *b)
{
	static const Oid argtypes[] = {INT8OID, TEXTARRAYOID};
	const char **types = palloc(b->n * sizeof(char *));
	Datum		values[2];

	for (int i = 0; i < b->n; i++)
		types[i] = b->calls[i].event_type;
	values[0] = Int64GetDatum(b->program_id);
	values[1] = text_array(types, b->n);
	ledger_run(ledger_plan_generic(&plan_rules,
								   "SELECT r.event_type, r.points, r.daily_cap FROM gifq.rules r"
								   " WHERE r.program_id = $1 AND r.event_type = ANY ($2)",
								   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	b->nrules = (int) SPI_processed;
	b->rules = palloc0(Max(b->nrules, 1) * sizeof(BatchRule));
	for (int i = 0; i < b->nrules; i++)
	{
		bool		isnull;
		Datum		cap;

		b->rules[i].event_type = TextDatumGetCString(column(i, 1, &isnull));
		b->rules[i].points = DatumGetInt64(column(i, 2, &isnull));
		cap = column(i, 3, &isnull);
		b->rules[i].has_cap = !isnull;
		if (!isnull)
			b->rules[i].daily_cap = DatumGetInt32(cap);
	}
	SPI_freetuptable(SPI_tuptable);
	qsort(b->rules, b->nrules, sizeof(BatchRule), rule_cmp);
}

/*
 * read_challenges
 *		The challenges of the batch's event types, by type and id, with
 *		the room left under max_completions (their rows are locked); and
 *		the batch's members' completions of those with a per-member limit.
 */
static void
read_challenges(Batch *b)
{
	static const Oid argtypes[] = {INT8OID, TEXTARRAYOID};
	static const Oid cc_argtypes[] = {INT8ARRAYOID, INT8ARRAYOID};
	const char **types = palloc(b->n * sizeof(char *));
	Datum		values[2];
	int64	   *limited;
	int64	   *member_ids;
	int			nlimited = 0;
	HASHCTL		ctl;

	for (int i = 0; i < b->n; i++)
		types[i] = b->calls[i].event_type;
	values[0] = Int64GetDatum(b->program_id);
	values[1] = text_array(types, b->n);
	ledger_run(ledger_plan_generic(&plan_challenges,
								   "SELECT c.id, c.name, c.multiplier, c.max_completions IS NOT NULL,"
								   " c.per_member_limit, c.event_type, c.starts_at, c.ends_at,"
								   " c.max_completions - c.completions"
								   " FROM gifq.challenges c"
								   " WHERE c.program_id = $1 AND c.event_type = ANY ($2)"
								   " ORDER BY c.event_type COLLATE \"C\", c.id",
								   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	b->nchallenges = (int) SPI_processed;
	b->challenges = palloc0(Max(b->nchallenges, 1) * sizeof(Challenge));
	limited = palloc(Max(b->nchallenges, 1) * sizeof(int64));
	for (int i = 0; i < b->nchallenges; i++)
	{
		Challenge  *c = &b->challenges[i];
		bool		isnull;
		Datum		d;

		c->id = DatumGetInt64(column(i, 1, &isnull));
		c->name = TextDatumGetCString(column(i, 2, &isnull));
		c->multiplier = DatumGetNumericCopy(column(i, 3, &isnull));
		c->limited = DatumGetBool(column(i, 4, &isnull));
		d = column(i, 5, &isnull);
		c->per_member = !isnull;
		if (!isnull)
		{
			c->per_member_limit = DatumGetInt32(d);
			limited[nlimited++] = c->id;
		}
		c->event_type = TextDatumGetCString(column(i, 6, &isnull));
		c->starts_at = DatumGetTimestampTz(column(i, 7, &isnull));
		c->ends_at = DatumGetTimestampTz(column(i, 8, &isnull));
		d = column(i, 9, &isnull);
		c->room = isnull ? 0 : DatumGetInt32(d);
	}
	SPI_freetuptable(SPI_tuptable);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(CompletionKey);
	ctl.entrysize = sizeof(CompletionCount);
	ctl.hcxt = CurrentMemoryContext;
	b->completions = hash_create("gifq batch completions", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	if (nlimited == 0)
		return;

	member_ids = palloc(Max(b->nmembers, 1) * sizeof(int64));
	for (int i = 0; i < b->nmembers; i++)
		member_ids[i] = b->members[i].id;
	values[0] = int8_array(limited, nlimited);
	values[1] = int8_array(member_ids, b->nmembers);
	ledger_run(ledger_plan_generic(&plan_member_completions,
								   "SELECT cc.challenge_id, cc.member_id, pg_catalog.count(*)"
								   " FROM gifq.challenge_completions cc"
								   " WHERE cc.challenge_id = ANY ($1) AND cc.member_id = ANY ($2)"
								   " GROUP BY cc.challenge_id, cc.member_id",
								   2, cc_argtypes),
			   values, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		CompletionKey key;
		CompletionCount *entry;
		bool		isnull;
		bool		found;

		memset(&key, 0, sizeof(key));
		key.challenge_id = DatumGetInt64(column(i, 1, &isnull));
		key.member_id = DatumGetInt64(column(i, 2, &isnull));
		entry = hash_search(b->completions, &key, HASH_ENTER, &found);
		entry->count = DatumGetInt64(column(i, 3, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * read_days
 *		For the batch's new events of capped types: the start of their day
 *		in the program's time zone, and the member's rewarded events of the
 *		type that day before the batch.
 */
static void
read_days(Batch *b)
{
	static const Oid argtypes[] = {INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTOID};
	int		   *which = palloc(b->n * sizeof(int));
	int64	   *members = palloc(b->n * sizeof(int64));
	const char **types = palloc(b->n * sizeof(char *));
	Datum	   *ats = palloc(b->n * sizeof(Datum));
	int			m = 0;
	Datum		values[4];
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(DayKey);
	ctl.entrysize = sizeof(DayCount);
	ctl.hcxt = CurrentMemoryContext;
	b->days = hash_create("gifq batch days", 64, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	for (int i = 0; i < b->n; i++)
	{
		BatchEvent *e = &b->events[i];

		if (e->first != i || e->before != NULL || e->member == NULL ||
			e->rule == NULL || !e->rule->has_cap || TIMESTAMP_NOT_FINITE(e->at))
			continue;
		which[m] = i;
		members[m] = e->member->id;
		types[m] = b->calls[i].event_type;
		ats[m] = TimestampTzGetDatum(e->at);
		m++;
	}
	if (m == 0)
		return;
	values[0] = int8_array(members, m);
	values[1] = text_array(types, m);
	values[2] = datum_array(ats, m, TIMESTAMPTZOID);
	values[3] = CStringGetTextDatum(b->timezone);
	ledger_run(ledger_plan_generic(&plan_caps,
								   "SELECT d.day_start,"
								   " (SELECT pg_catalog.count(*) FROM gifq.events x"
								   "  WHERE x.member_id = u.member_id AND x.event_type = u.event_type"
								   "  AND x.occurred_at >= d.day_start AND x.occurred_at < d.day_end"
								   "  AND x.base_points > 0)"
								   " FROM unnest($1, $2, $3) WITH ORDINALITY u(member_id, event_type, at, n),"
								   " LATERAL (SELECT pg_catalog.timezone($4, pg_catalog.date_trunc('day',"
								   "   pg_catalog.timezone($4, u.at))) AS day_start,"
								   "  pg_catalog.timezone($4, pg_catalog.date_trunc('day', pg_catalog.timezone($4, u.at))"
								   "   OPERATOR(pg_catalog.+) interval '1 day') AS day_end) d"
								   " ORDER BY u.n",
								   4, argtypes),
			   values, NULL, SPI_OK_SELECT);
	if ((int) SPI_processed != m)
		elog(ERROR, "daily cap look-up returned " UINT64_FORMAT " rows for %d events",
			 SPI_processed, m);
	for (int j = 0; j < m; j++)
	{
		bool		isnull;

		b->events[which[j]].day_start = DatumGetTimestampTz(column(j, 1, &isnull));
		b->events[which[j]].day_rewarded = DatumGetInt64(column(j, 2, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
}


/* ----------------------------------------------------------------------
 * 3: the events, in the batch's order
 * ----------------------------------------------------------------------
 */

/*
 * prepare_events
 *		What can be known of each element before the reads that depend on
 *		it: which earlier element's key it repeats, its member, the event
 *		that held its key before, its rule and time.  Nothing is refused
 *		here: refusals come in the batch's order, from work_out.
 */
static void
prepare_events(Batch *b)
{
	int		   *order = palloc(b->n * sizeof(int));

	for (int i = 0; i < b->n; i++)
		order[i] = i;
	sort_calls = b->calls;
	qsort(order, b->n, sizeof(int), position_cmp);
	for (int j = 0; j < b->n; j++)
	{
		int			i = order[j];

		if (j > 0 && strcmp(b->calls[order[j - 1]].key, b->calls[i].key) == 0)
			b->events[i].first = b->events[order[j - 1]].first;
		else
			b->events[i].first = i;
	}
	for (int i = 0; i < b->n; i++)
	{
		BatchEvent *e = &b->events[i];
		const EventCall *call = &b->calls[i];

		e->member = find_member(b, call->member);
		e->before = find_first(b, call->key);
		e->rule = find_rule(b, call->event_type);
		e->at = call->occurred_given ? call->occurred_at :
			GetCurrentTransactionStartTimestamp();
	}
}

/*
 * apply_challenges
 *		The challenges of event i's type running at its time, in id order,
 *		as a single event applies them, counting the batch's completions.
 */
static int64
apply_challenges(Batch *b, int i, int64 event_id, StringInfo applied,
				 StringInfo skipped)
{
	BatchEvent *e = &b->events[i];
	const char *type = b->calls[i].event_type;
	int64		bonus = 0;
	int			lo = 0;
	int			hi = b->nchallenges;

	/* the first challenge of the type (they are sorted by type, then id) */
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (strcmp(b->challenges[mid].event_type, type) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	appendStringInfoChar(applied, '[');
	appendStringInfoChar(skipped, '[');
	for (int k = lo; k < b->nchallenges && strcmp(b->challenges[k].event_type, type) == 0; k++)
	{
		Challenge  *c = &b->challenges[k];
		CompletionCount *count = NULL;
		int64		bonus_k;

		if (!(c->starts_at <= e->at && c->ends_at > e->at))
			continue;
		if (e->base == 0)
		{
			events_append_challenge(skipped, c, "no_base_points", 0);
			continue;
		}
		if (c->per_member)
		{
			CompletionKey key;
			bool		found;

			memset(&key, 0, sizeof(key));
			key.challenge_id = c->id;
			key.member_id = e->member->id;
			count = hash_search(b->completions, &key, HASH_ENTER, &found);
			if (!found)
				count->count = 0;
			if (count->count >= c->per_member_limit)
			{
				events_append_challenge(skipped, c, "per_member_limit", 0);
				continue;
			}
		}
		if (c->limited)
		{
			if (c->taken >= c->room)
			{
				events_append_challenge(skipped, c, "max_completions", 0);
				continue;
			}
			c->taken++;
		}
		if (count != NULL)
			count->count++;
		bonus_k = events_challenge_bonus(e->base, c->multiplier);
		if (pg_add_s64_overflow(bonus, bonus_k, &bonus))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("event points out of range")));
		b->cc_challenge[b->ncompleted] = Int64GetDatum(c->id);
		b->cc_member[b->ncompleted] = Int64GetDatum(e->member->id);
		b->cc_event[b->ncompleted] = Int64GetDatum(event_id);
		b->cc_bonus[b->ncompleted] = Int64GetDatum(bonus_k);
		b->ncompleted++;
		events_append_challenge(applied, c, NULL, bonus_k);
	}
	appendStringInfoChar(applied, ']');
	appendStringInfoChar(skipped, ']');
	return bonus;
}

/*
 * rule_base
 *		What event i's rule gives, counting the batch's earlier rewarded
 *		events of the member, type and day toward its cap; and the rule's
 *		part of the details.
 */
static int64
rule_base(Batch *b, int i, StringInfo out)
{
	BatchEvent *e = &b->events[i];
	const BatchRule *r = e->rule;
	int64		points;
	DayCount   *day = NULL;

	if (r == NULL)
	{
		appendStringInfoString(out, "null");
		return 0;
	}
	points = r->points;
	if (r->has_cap)
	{
		DayKey		key;
		bool		found;

		memset(&key, 0, sizeof(key));
		key.member_id = e->member->id;
		key.day_start = e->day_start;
		key.rule = r;
		day = hash_search(b->days, &key, HASH_ENTER, &found);
		if (!found)
			day->rewarded = e->day_rewarded;
		if (day->rewarded >= r->daily_cap)
			points = 0;
		else if (points > 0)
			day->rewarded++;
	}
	appendStringInfo(out, "{\"points\": " INT64_FORMAT ", \"rule_points\": " INT64_FORMAT
					 ", \"daily_cap\": ", points, r->points);
	if (r->has_cap)
		appendStringInfo(out, "%d", r->daily_cap);
	else
		appendStringInfoString(out, "null");
	appendStringInfo(out, ", \"capped\": %s}",
					 points == 0 && r->points > 0 ? "true" : "false");
	return points;
}

/*
 * work_out
 *		Every element in the batch's order, as gifq_record_event would take
 *		it: refuse a malformed call, an unknown member or a key used for
 *		another event; replay a repeated key; work out a new event's points
 *		and completions.  ids are the new events' ids, one per element.
 */
static void
work_out(Batch *b, const int64 *ids)
{
	b->cc_challenge = palloc(Max(b->n * Max(b->nchallenges, 1), 1) * sizeof(Datum));
	b->cc_member = palloc(Max(b->n * Max(b->nchallenges, 1), 1) * sizeof(Datum));
	b->cc_event = palloc(Max(b->n * Max(b->nchallenges, 1), 1) * sizeof(Datum));
	b->cc_bonus = palloc(Max(b->n * Max(b->nchallenges, 1), 1) * sizeof(Datum));
	for (int i = 0; i < b->n; i++)
	{
		const EventCall *call = &b->calls[i];
		BatchEvent *e = &b->events[i];
		StringInfoData rule;
		StringInfoData applied;
		StringInfoData skipped;
		int64		bonus;

		CHECK_FOR_INTERRUPTS();
		events_check_call(b->program, call);
		if (e->member == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_GIFQ_UNKNOWN_MEMBER),
					 errmsg("unknown member \"%s\" in program \"%s\"", call->member,
							b->program),
					 errhint("Create the member first with gifq_upsert_member().")));
		if (e->before != NULL)
		{
			events_check_repeat(call, e->member->id, e->before->member_id,
								e->before->event_type, e->before->occurred_given,
								e->before->occurred_at, e->before->attributes);
			continue;
		}
		if (e->first != i)
		{
			const EventCall *first = &b->calls[e->first];

			events_check_repeat(call, e->member->id, b->events[e->first].member->id,
								first->event_type, first->occurred_given,
								first->occurred_at, first->attributes);
			continue;
		}

		initStringInfo(&rule);
		initStringInfo(&applied);
		initStringInfo(&skipped);
		e->base = rule_base(b, i, &rule);
		bonus = apply_challenges(b, i, ids[i], &applied, &skipped);
		if (pg_add_s64_overflow(e->base, bonus, &e->points) ||
			pg_add_s64_overflow(e->member->gained, e->points, &e->member->gained))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("event points out of range")));
		e->rule_detail = rule.data;
		e->applied = applied.data;
		e->skipped = skipped.data;
	}
}


/* ----------------------------------------------------------------------
 * 4: writing
 * ----------------------------------------------------------------------
 */

/*
 * draw_ids
 *		One new event id per element, in order (those of replays unused).
 */
static int64 *
draw_ids(int n)
{
	static const Oid argtypes[] = {INT4OID};
	Datum		values[1];
	int64	   *ids = palloc(n * sizeof(int64));

	values[0] = Int32GetDatum(n);
	ledger_run(ledger_plan(&plan_ids,
						   "SELECT pg_catalog.nextval('gifq.events_id_seq')"
						   " FROM pg_catalog.generate_series(1, $1)",
						   1, argtypes),
			   values, NULL, SPI_OK_SELECT);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(column(i, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return ids;
}

/*
 * insert_transfers
 *		One posted transfer per new event that earns points, from the
 *		issuance account to the member's points account, in one statement
 *		(metadata {"event_id", "event_type"}, as a single event's).
 */
static void
insert_transfers(Batch *b, const int64 *ids)
{
	static const Oid argtypes[] = {INT8OID, INT8OID, TEXTOID, INT8ARRAYOID,
	INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID};
	int64	   *credit = palloc(b->n * sizeof(int64));
	int64	   *amount = palloc(b->n * sizeof(int64));
	int64	   *event = palloc(b->n * sizeof(int64));
	const char **type = palloc(b->n * sizeof(char *));
	int		   *which = palloc(b->n * sizeof(int));
	int			m = 0;
	Datum		values[7];

	for (int i = 0; i < b->n; i++)
	{
		BatchEvent *e = &b->events[i];

		if (e->first != i || e->before != NULL || e->points <= 0)
			continue;
		which[m] = i;
		credit[m] = e->member->account.id;
		amount[m] = e->points;
		event[m] = ids[i];
		type[m] = b->calls[i].event_type;
		m++;
	}
	if (m == 0)
		return;
	values[0] = Int64GetDatum(b->program_id);
	values[1] = Int64GetDatum(b->issuance.id);
	values[2] = PointerGetDatum(cstring_to_text_with_len(b->points_code,
														 strnlen(b->points_code, GIFQ_CURRENCY_LEN)));
	values[3] = int8_array(credit, m);
	values[4] = int8_array(amount, m);
	values[5] = int8_array(event, m);
	values[6] = text_array(type, m);
	ledger_run(ledger_plan_generic(&plan_transfers,
								   "INSERT INTO gifq.transfers (program_id, kind, debit_account_id,"
								   " credit_account_id, amount, currency, metadata)"
								   " SELECT $1, 'posted', $2, u.credit, u.amount, $3,"
								   "  pg_catalog.jsonb_build_object('event_id', u.event_id,"
								   "   'event_type', u.event_type)"
								   " FROM unnest($4, $5, $6, $7) u(credit, amount, event_id, event_type)"
								   " RETURNING id, (metadata OPERATOR(pg_catalog.->>) 'event_id')::bigint",
								   7, argtypes),
			   values, NULL, SPI_OK_INSERT_RETURNING);
	if ((int) SPI_processed != m)
		elog(ERROR, "inserted " UINT64_FORMAT " transfers for %d events", SPI_processed, m);
	/* match them to their events by event id (ids ascend with the elements) */
	for (int j = 0; j < m; j++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(column(j, 1, &isnull));
		int64		event_id = DatumGetInt64(column(j, 2, &isnull));
		int			lo = 0;
		int			hi = m - 1;

		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;

			if (event[mid] < event_id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (event[lo] != event_id)
			elog(ERROR, "transfer %lld names no event of the batch", (long long) id);
		b->events[which[lo]].transfer_id = id;
	}
	SPI_freetuptable(SPI_tuptable);
	for (int j = 0; j < m; j++)
	{
		BatchMember *member = b->events[which[j]].member;

		member->transfers++;
		member->transfer_id = b->events[which[j]].transfer_id;
	}
}

/* One balance change of the batch. */
typedef struct BatchSide
{
	const LedgerAccount *account;
	int			slot;
	int			seq;			/* the batch's order, within one slot */
	SlotDelta	delta;
	int64		transfer_id;	/* 0 when it sums several transfers */
} BatchSide;

static int
side_cmp(const void *a, const void *b)
{
	const BatchSide *x = a;
	const BatchSide *y = b;

	if (x->account->id != y->account->id)
		return x->account->id < y->account->id ? -1 : 1;
	if (x->slot != y->slot)
		return x->slot - y->slot;
	return x->seq - y->seq;
}

/*
 * apply_balances
 *		The batch's balance changes, in the ledger's global (account, slot)
 *		order: the issuance account's slot of this backend debited once
 *		with the batch's points, and each member's slot credited once with
 *		theirs; an entry that sums several transfers names none.  A member
 *		with several transfers in a program with thresholds is credited
 *		transfer by transfer instead, in the batch's order, so that a
 *		threshold is recorded at the balance of the event that crossed it,
 *		as single calls would record it.
 */
static void
apply_balances(Batch *b)
{
	BatchSide  *sides = palloc0((b->n + 1) * sizeof(BatchSide));
	int			nsides = 0;
	int64		total = 0;
	int			transfers = 0;
	int64		last = 0;

	for (int i = 0; i < b->n; i++)
	{
		BatchEvent *e = &b->events[i];
		BatchMember *m = e->member;
		bool		split = b->thresholds.n > 0 && m != NULL && m->transfers > 1;

		if (e->first != i || e->before != NULL || e->transfer_id == 0)
			continue;
		if (pg_add_s64_overflow(total, e->points, &total))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("event points out of range")));
		transfers++;
		last = e->transfer_id;
		if (!split && m->transfer_id != e->transfer_id)
			continue;			/* the member's last transfer carries their sum */
		sides[nsides].account = &m->account;
		sides[nsides].slot = MyProcPid % m->account.slots;
		sides[nsides].seq = i;
		sides[nsides].delta.credits_posted = split ? e->points : m->gained;
		sides[nsides].transfer_id = split || m->transfers == 1 ? e->transfer_id : 0;
		nsides++;
	}
	if (nsides == 0)
		return;
	sides[nsides].account = &b->issuance;
	sides[nsides].slot = MyProcPid % b->issuance.slots;
	sides[nsides].delta.debits_posted = total;
	sides[nsides].transfer_id = transfers == 1 ? last : 0;
	nsides++;
	qsort(sides, nsides, sizeof(BatchSide), side_cmp);
	for (int i = 0; i < nsides; i++)
	{
		CHECK_FOR_INTERRUPTS();
		events_apply(sides[i].account, sides[i].slot, &sides[i].delta,
					 sides[i].transfer_id, &b->thresholds);
	}
	for (int i = 0; i < nsides; i++)
		if (i == 0 || sides[i].account != sides[i - 1].account)
			ledger_after_change(sides[i].account);
}

/*
 * read_balances
 *		Each member's available points now, after the batch's credits; then
 *		each event's balance, walking back through the batch.
 */
static void
read_balances(Batch *b)
{
	static const Oid argtypes[] = {INT8ARRAYOID};
	int64	   *accounts = palloc(Max(b->nmembers, 1) * sizeof(int64));
	Datum		values[1];

	for (int i = 0; i < b->nmembers; i++)
		accounts[i] = b->members[i].account.id;
	values[0] = int8_array(accounts, b->nmembers);
	ledger_run(ledger_plan_generic(&plan_balances,
								   "SELECT s.account_id, pg_catalog.sum(s.credits_posted"
								   " - s.debits_posted - s.debits_pending)::bigint"
								   " FROM gifq.account_slots s WHERE s.account_id = ANY ($1)"
								   " GROUP BY s.account_id",
								   1, argtypes),
			   values, NULL, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		account = DatumGetInt64(column(r, 1, &isnull));
		int64		balance = DatumGetInt64(column(r, 2, &isnull));

		for (int i = 0; i < b->nmembers; i++)
			if (b->members[i].account.id == account)
				b->members[i].balance = balance;
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * write_counters_and_completions
 *		Add the batch's completions to the limited challenges' counters,
 *		and insert every completion.
 */
static void
write_counters_and_completions(Batch *b)
{
	static const Oid counter_types[] = {INT8ARRAYOID, INT8ARRAYOID};
	static const Oid cc_types[] = {INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	int64	   *ids = palloc(Max(b->nchallenges, 1) * sizeof(int64));
	int64	   *taken = palloc(Max(b->nchallenges, 1) * sizeof(int64));
	int			m = 0;
	Datum		values[4];

	for (int k = 0; k < b->nchallenges; k++)
	{
		if (!b->challenges[k].limited || b->challenges[k].taken == 0)
			continue;
		ids[m] = b->challenges[k].id;
		taken[m] = b->challenges[k].taken;
		m++;
	}
	if (m > 0)
	{
		values[0] = int8_array(ids, m);
		values[1] = int8_array(taken, m);
		ledger_run(ledger_plan_generic(&plan_counters,
									   "UPDATE gifq.challenges c"
									   " SET completions = c.completions + u.taken::integer"
									   " FROM unnest($1, $2) u(id, taken) WHERE c.id = u.id",
									   2, counter_types),
				   values, NULL, SPI_OK_UPDATE);
	}
	if (b->ncompleted == 0)
		return;
	values[0] = datum_array(b->cc_challenge, b->ncompleted, INT8OID);
	values[1] = datum_array(b->cc_member, b->ncompleted, INT8OID);
	values[2] = datum_array(b->cc_event, b->ncompleted, INT8OID);
	values[3] = datum_array(b->cc_bonus, b->ncompleted, INT8OID);
	ledger_run(ledger_plan_generic(&plan_completions,
								   "INSERT INTO gifq.challenge_completions"
								   " (challenge_id, member_id, event_id, bonus)"
								   " SELECT * FROM unnest($1, $2, $3, $4)",
								   4, cc_types),
			   values, NULL, SPI_OK_INSERT);
}

/*
 * batch_key_conflict
 *		Called while an error is thrown out of the events' insert: a
 *		unique violation on (program, key) is reported for the element
 *		that holds the key, as events_report_key_conflict does for one
 *		event.  The key is read from the error's detail ("Key (program_id,
 *		idempotency_key)=(1, k) already exists.").
 */
static void
batch_key_conflict(const Batch *b, MemoryContext cxt)
{
	ErrorData  *edata;
	const char *start;
	const char *end;
	char	   *key;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION ||
		edata->constraint_name == NULL ||
		strcmp(edata->constraint_name, "events_program_id_idempotency_key_key") != 0 ||
		edata->detail == NULL ||
		(start = strstr(edata->detail, ")=(")) == NULL ||
		(start = strstr(start, ", ")) == NULL ||
		(end = strstr(start, ") already exists.")) == NULL)
		PG_RE_THROW();
	key = pnstrdup(start + 2, end - start - 2);
	for (int i = 0; i < b->n; i++)
		if (strcmp(b->calls[i].key, key) == 0)
			events_report_key_conflict(key, b->calls[i].member, cxt);
	PG_RE_THROW();
}

/*
 * insert_events
 *		Every new event in one statement, in the batch's order (the streak
 *		trigger fires per row, in that order; a statement trigger once).
 */
static void
insert_events(Batch *b, const int64 *ids, Jsonb **details)
{
	static const Oid argtypes[] = {INT8OID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, TIMESTAMPTZARRAYOID, BOOLARRAYOID, JSONBARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, JSONBARRAYOID};
	MemoryContext cxt = CurrentMemoryContext;
	Datum	   *cols[12];
	bool	   *transfer_null = palloc(b->n * sizeof(bool));
	int			m = 0;
	Datum		values[13];
	int			dims[1];
	int			lbs[1] = {1};
	static const Oid elemtypes[12] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
	BOOLOID, JSONBOID, INT8OID, INT8OID, INT8OID, INT8OID, JSONBOID};

	for (int c = 0; c < 12; c++)
		cols[c] = palloc(b->n * sizeof(Datum));
	for (int i = 0; i < b->n; i++)
	{
		BatchEvent *e = &b->events[i];

		if (e->first != i || e->before != NULL)
			continue;
		cols[0][m] = Int64GetDatum(ids[i]);
		cols[1][m] = Int64GetDatum(e->member->id);
		cols[2][m] = CStringGetTextDatum(b->calls[i].event_type);
		cols[3][m] = CStringGetTextDatum(b->calls[i].key);
		cols[4][m] = TimestampTzGetDatum(e->at);
		cols[5][m] = BoolGetDatum(b->calls[i].occurred_given);
		cols[6][m] = JsonbPGetDatum(b->calls[i].attributes);
		cols[7][m] = Int64GetDatum(e->base);
		cols[8][m] = Int64GetDatum(e->points);
		cols[9][m] = Int64GetDatum(e->transfer_id);
		transfer_null[m] = e->transfer_id == 0;
		cols[10][m] = Int64GetDatum(e->balance);
		cols[11][m] = JsonbPGetDatum(details[i]);
		m++;
	}
	if (m == 0)
		return;
	dims[0] = m;
	values[0] = Int64GetDatum(b->program_id);
	for (int c = 0; c < 12; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(elemtypes[c], &typlen, &typbyval, &typalign);
		values[c + 1] = PointerGetDatum(construct_md_array(cols[c], c == 9 ? transfer_null : NULL,
														   1, dims, lbs, elemtypes[c],
														   typlen, typbyval, typalign));
	}
	/* the batch keeps its streaks itself, below, rather than per row */
	streaks_defer(true);
	PG_TRY();
	{
		ledger_run(ledger_plan_generic(&plan_events,
									   "INSERT INTO gifq.events (id, program_id, member_id, event_type,"
									   " idempotency_key, occurred_at, occurred_given, attributes,"
									   " base_points, points, transfer_id, balance_after, details)"
									   " SELECT u.id, $1, u.member_id, u.event_type, u.key, u.at, u.given,"
									   "  u.attributes, u.base, u.points, u.transfer_id, u.balance, u.details"
									   " FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
									   "  u(id, member_id, event_type, key, at, given, attributes, base,"
									   "  points, transfer_id, balance, details)",
									   13, argtypes),
				   values, NULL, SPI_OK_INSERT);
	}
	PG_CATCH();
	{
		streaks_defer(false);
		batch_key_conflict(b, cxt);
	}
	PG_END_TRY();
	streaks_defer(false);

	{
		int64	   *members = palloc(m * sizeof(int64));
		char	  **types = palloc(m * sizeof(char *));
		TimestampTz *ats = palloc(m * sizeof(TimestampTz));

		m = 0;
		for (int i = 0; i < b->n; i++)
		{
			BatchEvent *e = &b->events[i];

			if (e->first != i || e->before != NULL)
				continue;
			members[m] = e->member->id;
			types[m] = (char *) b->calls[i].event_type;
			ats[m] = e->at;
			m++;
		}
		streaks_record_batch(b->program_id, m, members, types, ats);
	}
}

/*
 * write_out
 *		Write what work_out decided, and fill results.
 */
static void
write_out(Batch *b, const int64 *ids, EventResult *results)
{
	Jsonb	  **details = palloc0(b->n * sizeof(Jsonb *));
	EventDetailsCache cache;

	insert_transfers(b, ids);
	apply_balances(b);
	read_balances(b);
	write_counters_and_completions(b);

	/* each new event's balance: the member's now, less their later points */
	for (int i = b->n - 1; i >= 0; i--)
	{
		BatchEvent *e = &b->events[i];

		if (e->first != i || e->before != NULL)
			continue;
		e->balance = e->member->balance;
		e->member->balance -= e->points;
	}
	memset(&cache, 0, sizeof(cache));
	for (int i = 0; i < b->n; i++)
	{
		BatchEvent *e = &b->events[i];

		if (e->first != i || e->before != NULL)
			continue;
		details[i] = events_details_cached(&cache, e->rule_detail, e->applied,
										   e->skipped, e->transfer_id);
		results[i].event_id = ids[i];
		results[i].points = e->points;
		results[i].balance = e->balance;
		results[i].details = details[i];
		memcpy(results[i].balance_code, b->points_code, GIFQ_CURRENCY_LEN);
	}
	events_details_forget(&cache);
	insert_events(b, ids, details);
	for (int i = 0; i < b->n; i++)
	{
		BatchEvent *e = &b->events[i];

		if (e->before != NULL)
			results[i] = e->before->result;
		else if (e->first != i)
			results[i] = results[e->first];
	}
}


/* ----------------------------------------------------------------------
 * The entry point
 * ----------------------------------------------------------------------
 */

/*
 * events_record_batch
 *		Record the checked-for-shape batch calls[0..n-1] of the program,
 *		inside SPI, filling results[i] per element; throws on any refusal.
 *		Returns false, having written nothing, when the batch must go event
 *		by event (an account limit that a posting might break); its members
 *		and limited challenges are then already locked in the global order.
 */
bool
events_record_batch(const char *program, int64 program_id, const EventCall *calls,
					int n, EventResult *results)
{
	Batch		b;
	int64	   *ids;

	memset(&b, 0, sizeof(b));
	b.program = program;
	b.program_id = program_id;
	b.calls = calls;
	b.n = n;
	b.events = palloc0(n * sizeof(BatchEvent));

	read_program(&b);
	lock_members(&b);
	if (b.issuance.debits_must_not_exceed_credits ||
		b.issuance.credits_must_not_exceed_debits)
		return false;
	for (int i = 0; i < b.nmembers; i++)
		if (b.members[i].account.credits_must_not_exceed_debits)
			return false;

	read_firsts(&b);
	read_rules(&b);
	read_challenges(&b);
	prepare_events(&b);
	read_days(&b);
	ids = draw_ids(n);
	work_out(&b, ids);
	write_out(&b, ids, results);
	return true;
}
