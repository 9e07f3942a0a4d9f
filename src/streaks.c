/*-------------------------------------------------------------------------
 * streaks.c
 *	  gifq.streak_event: keep members' streaks as events are recorded.
 *
 * An AFTER INSERT trigger on gifq.events.  For every streak type of the
 * program that counts the event's type, the event's period (day, week or
 * month of occurred_at in the program's time zone, numbered so that
 * consecutive periods have consecutive numbers) is added to the member's
 * qualifying periods, once.  An event in the member's last period (most
 * of them) changes only when the streak last qualified, in place, without
 * a statement.  A period after the last one extends the
 * streak when the gap (the missed periods between them) is at most the
 * type's grace, and restarts it at 1 otherwise; that is one row update.
 * A period before the last one (an event that arrived late) can join two
 * runs or lengthen an earlier one, so the streak is recounted from all
 * the member's periods (recount): the result is the one the events
 * would have given in order.
 *
 * The member's row is locked by gifq_record_event, so one member's
 * streak changes one event at a time.
 *
 * A batch (gifq_record_events) turns the trigger off for its insert and
 * calls streaks_record_batch, which gives the same results for all its
 * events in a few statements: the trigger's three statements per event
 * were a third of a batch's time.  As with the trigger, an event in its
 * streak's last counted period offers no period and changes the streak
 * in place.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/streaks.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "arrays.h"
#include "counters.h"
#include "gifq.h"
#include "ledger.h"
#include "periods.h"
#include "recording.h"
#include "streaks.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

static SPIPlanPtr plan_types;
static SPIPlanPtr plan_period;
static SPIPlanPtr plan_same_period;
static SPIPlanPtr plan_extend;
static SPIPlanPtr plan_recount_read;
static SPIPlanPtr plan_recount;
static SPIPlanPtr plan_batch_types;
static SPIPlanPtr plan_batch_periods;
static SPIPlanPtr plan_batch_streaks;
static SPIPlanPtr plan_batch_write;

/* set by streaks_defer(): the trigger leaves the rows to the batch */
static bool deferred = false;

/* A streak type that counts the event, with the event's period in it. */
typedef struct StreakHit
{
	char	   *streak_type;
	int32		grace;
	int32		period_no;
} StreakHit;

/* The recorded event, as the trigger sees it. */
typedef struct StreakEvent
{
	int64		program_id;
	int64		member_id;
	Datum		event_type;
	TimestampTz occurred_at;
} StreakEvent;

/*
 * streak_hits
 *		The streak types of the program that count events of this type, and
 *		the number of the event's period in each, in name order: from what
 *		the caller knows of the event when it is the one it records, read
 *		otherwise.  Copied out of SPI's result, which the next statement
 *		replaces, and out of the caller's, which a milestone's own event
 *		may replace.
 */
static int
streak_hits(const StreakEvent *ev, StreakHit **hits)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	int			n;
	const RecordingEvent *known = recording_event(ev->program_id);

	if (known != NULL &&
		strcmp(known->event_type, TextDatumGetCString(ev->event_type)) == 0)
	{
		Timestamp	local = known->nstreaks > 0 ?
			period_local_time(known->timezone, ev->occurred_at) : 0;

		*hits = palloc(Max(known->nstreaks, 1) * sizeof(StreakHit));
		for (int i = 0; i < known->nstreaks; i++)
		{
			(*hits)[i].streak_type = pstrdup(known->streaks[i].streak_type);
			(*hits)[i].grace = known->streaks[i].grace;
			(*hits)[i].period_no = period_number(known->streaks[i].period, local);
		}
		return known->nstreaks;
	}

	values[0] = Int64GetDatum(ev->program_id);
	values[1] = ev->event_type;
	values[2] = TimestampTzGetDatum(ev->occurred_at);
	ledger_run(ledger_plan(&plan_types,
						   "SELECT s.streak_type, s.grace_periods,"
						   " gifq.period_no(s.period, $3 AT TIME ZONE p.timezone)"
						   " FROM gifq.streak_types s JOIN gifq.programs p ON p.id = s.program_id"
						   " WHERE s.program_id = $1 AND s.event_type = $2"
						   " ORDER BY s.streak_type",
						   3, argtypes),
			   values, NULL, SPI_OK_SELECT);
	n = (int) SPI_processed;
	*hits = palloc(Max(n, 1) * sizeof(StreakHit));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		(*hits)[i].streak_type = TextDatumGetCString(SPI_getbinval(row, desc, 1, &isnull));
		(*hits)[i].grace = DatumGetInt32(SPI_getbinval(row, desc, 2, &isnull));
		(*hits)[i].period_no = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
	}
	return n;
}

/*
 * run_streak
 *		Run one of the statements below for an event and a streak type.
 *		They all take the same parameters, each using those it needs:
 *		$1 member, $2 streak type, $3 program, $4 the event's period,
 *		$5 occurred_at, $6 the grace.  Returns the rows processed.
 */
static uint64
run_streak(SPIPlanPtr *plan, const char *sql, const StreakEvent *ev,
		   const StreakHit *hit, int expected)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, INT8OID, INT4OID,
	TIMESTAMPTZOID, INT4OID};
	Datum		values[6];

	values[0] = Int64GetDatum(ev->member_id);
	values[1] = CStringGetTextDatum(hit->streak_type);
	values[2] = Int64GetDatum(ev->program_id);
	values[3] = Int32GetDatum(hit->period_no);
	values[4] = TimestampTzGetDatum(ev->occurred_at);
	values[5] = Int32GetDatum(hit->grace);
	ledger_run(ledger_plan(plan, sql, 6, argtypes), values, NULL, expected);
	return SPI_processed;
}

/*
 * add_period
 *		Add the period to the member's qualifying periods; false when it is
 *		there already (the same period counts once).
 */
static bool
add_period(const StreakEvent *ev, const StreakHit *hit)
{
	return run_streak(&plan_period,
					  "INSERT INTO gifq.streak_periods (member_id, streak_type, period_no, first_at)"
					  " VALUES ($1, $2, $4, $5) ON CONFLICT DO NOTHING",
					  ev, hit, SPI_OK_INSERT) == 1;
}

/*
 * note_same_period
 *		A second event in a counted period changes only the time of the
 *		last qualifying event, if it is the latest.
 */
static void
note_same_period(const StreakEvent *ev, const StreakHit *hit)
{
	run_streak(&plan_same_period,
			   "UPDATE gifq.streaks SET last_qualifying_event = $5, updated_at = now()"
			   " WHERE member_id = $1 AND streak_type = $2 AND last_qualifying_event < $5",
			   ev, hit, SPI_OK_UPDATE);
}

/*
 * extend
 *		A new period after the member's last one (or their first ever):
 *		extend or restart the streak in one statement.  False when the
 *		period comes before the last one, which needs a recount.
 */
static bool
extend(const StreakEvent *ev, const StreakHit *hit)
{
	return run_streak(&plan_extend,
					  "INSERT INTO gifq.streaks AS s (member_id, streak_type, program_id,"
					  "  current_streak, longest_streak, last_period_no, last_qualifying_event)"
					  " VALUES ($1, $2, $3, 1, 1, $4, $5)"
					  " ON CONFLICT ON CONSTRAINT streaks_pkey DO UPDATE SET"
					  "  current_streak = CASE WHEN $4 - s.last_period_no - 1 <= $6"
					  "   THEN s.current_streak + 1 ELSE 1 END,"
					  "  longest_streak = GREATEST(s.longest_streak, CASE WHEN"
					  "   $4 - s.last_period_no - 1 <= $6 THEN s.current_streak + 1 ELSE 1 END),"
					  "  last_period_no = $4,"
					  "  last_qualifying_event = GREATEST(s.last_qualifying_event, $5),"
					  "  updated_at = now()"
					  " WHERE s.last_period_no < $4",
					  ev, hit, SPI_OK_INSERT) == 1;
}

/*
 * count_runs
 *		A streak from its qualifying periods, ascending: a run goes on over
 *		gaps of at most grace missed periods, the current streak is the
 *		last run's length (whether or not it has been broken since: that is
 *		grace_period_until's to say) and the longest the longest run's.
 */
static void
count_runs(const int32 *periods, int n, int32 grace, int32 *current, int32 *longest)
{
	int32		run = 0;

	*longest = 0;
	for (int i = 0; i < n; i++)
	{
		if (i == 0 || (int64) periods[i] - periods[i - 1] - 1 > grace)
			run = 1;
		else
			run++;
		*longest = Max(*longest, run);
	}
	*current = run;
}

/*
 * read_runs
 *		A member's streak of a type recounted from all their stored
 *		periods, read by a kept plan and counted by count_runs.
 */
static void
read_runs(int64 member_id, Datum streak_type, int32 grace,
		  int32 *current, int32 *longest)
{
	static const Oid read_args[] = {INT8OID, TEXTOID};
	Datum		values[2];
	int32	   *periods;
	int			n;

	values[0] = Int64GetDatum(member_id);
	values[1] = streak_type;
	ledger_run(ledger_plan(&plan_recount_read,
						   "SELECT p.period_no FROM gifq.streak_periods p"
						   " WHERE p.member_id = $1 AND p.streak_type = $2"
						   " ORDER BY p.period_no",
						   2, read_args),
			   values, NULL, SPI_OK_SELECT);
	n = (int) SPI_processed;
	if (n == 0)
		elog(ERROR, "streak \"%s\" of member %lld has no periods to recount",
			 TextDatumGetCString(streak_type), (long long) member_id);
	periods = palloc(n * sizeof(int32));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		periods[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	count_runs(periods, n, grace, current, longest);
	pfree(periods);
}

/*
 * recount
 *		An event that arrived late: recount the streak from all the
 *		member's periods, in C: the SQL coding of gifq.streak_runs, which
 *		did this before 0.10.0, was parsed and planned anew on every call,
 *		most of a late event's cost.
 */
static void
recount(int64 member_id, const char *streak_type, int32 grace, TimestampTz occurred_at)
{
	static const Oid write_args[] = {INT8OID, TEXTOID, INT4OID, INT4OID, TIMESTAMPTZOID};
	Datum		values[5];
	int32		current;
	int32		longest;

	values[0] = Int64GetDatum(member_id);
	values[1] = CStringGetTextDatum(streak_type);
	read_runs(member_id, values[1], grace, &current, &longest);
	values[2] = Int32GetDatum(current);
	values[3] = Int32GetDatum(longest);
	values[4] = TimestampTzGetDatum(occurred_at);
	ledger_run(ledger_plan(&plan_recount,
						   "UPDATE gifq.streaks s SET current_streak = $3, longest_streak = $4,"
						   " last_qualifying_event = GREATEST(s.last_qualifying_event, $5),"
						   " updated_at = now()"
						   " WHERE s.member_id = $1 AND s.streak_type = $2",
						   5, write_args),
			   values, NULL, SPI_OK_UPDATE);
}

PG_FUNCTION_INFO_V1(gifq_streak_runs);

/*
 * gifq_streak_runs
 *		gifq.streak_runs(member_id, streak_type, grace) returns
 *		(current_streak, longest_streak): the streak recounted from all its
 *		periods under a grace, as a late event recounts it.
 *		gifq_define_streak recounts a type's streaks with it when their
 *		grace changes, so both count runs with the same code.  STRICT.
 */
Datum
gifq_streak_runs(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	int32		current;
	int32		longest;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "gifq.streak_runs must return a row");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	read_runs(PG_GETARG_INT64(0), PG_GETARG_DATUM(1), PG_GETARG_INT32(2),
			  &current, &longest);
	SPI_finish();
	values[0] = Int32GetDatum(current);
	values[1] = Int32GetDatum(longest);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * The common case, in place: an event in the member's last qualifying
 * period of a streak type, which that period already holds.  The streak
 * stays as it is; only last_qualifying_event (when the event is later) and
 * updated_at change, as note_same_period would change them, but through
 * counters.c, without a statement: this was a third of the trigger's time
 * (no trigger watches those columns, and no constraint checks them).
 */
typedef struct LastPeriod
{
	CounterTable t;
	bool		open;
	int			period_col;		/* last_period_no */
	int			event_col;		/* last_qualifying_event */
	int			updated_col;	/* updated_at */
	int32		period_no;		/* the event's */
	TimestampTz occurred_at;
	bool		in_last;		/* out: the row's last period is period_no */
} LastPeriod;

static void
last_period_open(LastPeriod *lp)
{
	Relation	rel;

	counters_open(&lp->t, "streaks", false);
	rel = lp->t.rel;
	lp->period_col = table_column(rel, "last_period_no", INT4OID) - 1;
	lp->event_col = table_column(rel, "last_qualifying_event", TIMESTAMPTZOID) - 1;
	lp->updated_col = table_column(rel, "updated_at", TIMESTAMPTZOID) - 1;
	lp->open = true;
}

/*
 * note_last_period
 *		counters_merge's merge for the streak row: declines a missing row
 *		and one whose last period is another (the statements keep those).
 */
static bool
note_last_period(const Datum *old, Datum *next, void *arg)
{
	LastPeriod *lp = (LastPeriod *) arg;
	int			natts = RelationGetDescr(lp->t.rel)->natts;

	lp->in_last = old != NULL &&
		DatumGetInt32(old[lp->period_col]) == lp->period_no;
	if (!lp->in_last ||
		DatumGetTimestampTz(old[lp->event_col]) >= lp->occurred_at)
		return false;
	for (int i = lp->t.nkeys; i < natts; i++)
		next[i] = old[i];
	next[lp->event_col] = TimestampTzGetDatum(lp->occurred_at);
	next[lp->updated_col] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	return true;
}

/*
 * in_last_period
 *		True when the event is in the member's last period of the streak,
 *		noted in place; false when the member has no streak of the type yet
 *		or the event is in another period, for the statements to keep.
 */
static bool
in_last_period(LastPeriod *lp, const StreakEvent *ev, const StreakHit *hit)
{
	Datum		key[2];

	if (!lp->open)
		last_period_open(lp);
	key[0] = Int64GetDatum(ev->member_id);
	key[1] = CStringGetTextDatum(hit->streak_type);
	lp->period_no = hit->period_no;
	lp->occurred_at = ev->occurred_at;
	lp->in_last = false;
	(void) counters_merge(&lp->t, key, note_last_period, lp);
	return lp->in_last;
}

static Datum
column(TriggerData *trigdata, const char *name, bool *isnull)
{
	Relation	rel = trigdata->tg_relation;

	return SPI_getbinval(trigdata->tg_trigtuple, RelationGetDescr(rel),
						 table_column(rel, name, InvalidOid), isnull);
}

PG_FUNCTION_INFO_V1(gifq_streak_event);

/*
 * gifq_streak_event
 *		AFTER INSERT FOR EACH ROW on gifq.events.
 */
Datum
gifq_streak_event(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	StreakEvent ev;
	StreakHit  *hits;
	LastPeriod	last;
	int			n;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "gifq.streak_event must run AFTER INSERT FOR EACH ROW");
	if (deferred)
		return PointerGetDatum(NULL);

	ev.program_id = DatumGetInt64(column(trigdata, "program_id", &isnull));
	ev.member_id = DatumGetInt64(column(trigdata, "member_id", &isnull));
	ev.event_type = column(trigdata, "event_type", &isnull);
	ev.occurred_at = DatumGetTimestampTz(column(trigdata, "occurred_at", &isnull));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = streak_hits(&ev, &hits);
	last.open = false;
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (in_last_period(&last, &ev, &hits[i]))
			continue;
		if (!add_period(&ev, &hits[i]))
			note_same_period(&ev, &hits[i]);
		else if (!extend(&ev, &hits[i]))
			recount(ev.member_id, hits[i].streak_type, hits[i].grace, ev.occurred_at);
	}
	if (last.open)
		counters_close(&last.t);
	SPI_finish();
	return PointerGetDatum(NULL);
}


/* ----------------------------------------------------------------------
 * A batch of events (gifq_record_events)
 * ----------------------------------------------------------------------
 */

/*
 * streaks_defer
 *		While on, the trigger does nothing: gifq_record_events inserts a
 *		batch's events in one statement and then keeps their streaks with
 *		streaks_record_batch, in a few statements instead of the trigger's
 *		three per event.  The caller turns it off (also on error).
 */
void
streaks_defer(bool on)
{
	deferred = on;
}

/* The program's streak types that count a batch's event types. */
typedef struct BatchTypes
{
	int			n;
	char	  **name;
	char	  **event_type;
	int32	   *grace;
	char	   *period;
	text	   *timezone;		/* the program's */
} BatchTypes;

/* A member's streak of one type, as the batch changes it. */
typedef struct BatchStreak
{
	int64		member_id;
	char	   *streak_type;
	int32		grace;
	bool		exists;
	bool		changed;
	bool		moved;			/* its periods changed, not only last_event */
	bool		late;			/* a period before the last one: recount */
	int32		current;
	int32		longest;
	int32		last_period_no;
	TimestampTz last_event;
} BatchStreak;

/* One (event, streak type) pair, in the batch's order. */
typedef struct BatchHit
{
	int			event;
	int			type;			/* index into the batch's streak types */
	int32		period_no;
	bool		new_period;
} BatchHit;

/* A qualifying period the batch added: whether an event has claimed it. */
typedef struct AddedPeriod
{
	int64		member_id;		/* hash key: member, type, period */
	int32		type;
	int32		period_no;
	bool		claimed;
} AddedPeriod;

static int
streak_cmp(const void *a, const void *b)
{
	const BatchStreak *x = a;
	const BatchStreak *y = b;

	if (x->member_id != y->member_id)
		return x->member_id < y->member_id ? -1 : 1;
	return strcmp(x->streak_type, y->streak_type);
}

/*
 * batch_types
 *		The program's streak types that count any of the batch's event
 *		types, with their periods and the program's time zone; false when
 *		there are none.
 */
static bool
batch_types(int64 program_id, int n, char *const *event_types, BatchTypes *types)
{
	static const Oid argtypes[] = {INT8OID, TEXTARRAYOID};
	Datum		values[2];

	values[0] = Int64GetDatum(program_id);
	values[1] = text_array((const char *const *) event_types, n);
	ledger_run(ledger_plan_generic(&plan_batch_types,
								   "SELECT s.streak_type, s.event_type, s.grace_periods, s.period,"
								   " p.timezone"
								   " FROM gifq.streak_types s JOIN gifq.programs p ON p.id = s.program_id"
								   " WHERE s.program_id = $1 AND s.event_type = ANY ($2)",
								   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	types->n = (int) SPI_processed;
	types->name = palloc(Max(types->n, 1) * sizeof(char *));
	types->event_type = palloc(Max(types->n, 1) * sizeof(char *));
	types->grace = palloc(Max(types->n, 1) * sizeof(int32));
	types->period = palloc(Max(types->n, 1) * sizeof(char));
	types->timezone = NULL;
	for (int t = 0; t < types->n; t++)
	{
		HeapTuple	row = SPI_tuptable->vals[t];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		types->name[t] = TextDatumGetCString(SPI_getbinval(row, desc, 1, &isnull));
		types->event_type[t] = TextDatumGetCString(SPI_getbinval(row, desc, 2, &isnull));
		types->grace[t] = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
		types->period[t] = period_code(TextDatumGetCString(SPI_getbinval(row, desc, 4, &isnull)));
		if (t == 0)				/* the program's, on every row */
			types->timezone = DatumGetTextPCopy(SPI_getbinval(row, desc, 5, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return types->n > 0;
}

/*
 * batch_hits
 *		The (event, streak type) pairs, in the batch's order, each with the
 *		number of the event's period, as gifq.period_no numbers it.
 */
static int
batch_hits(const BatchTypes *types, int n, char *const *event_types,
		   const TimestampTz *occurred_at, BatchHit **hits)
{
	int			nhits = 0;

	*hits = palloc(Max(n * types->n, 1) * sizeof(BatchHit));
	for (int i = 0; i < n; i++)
	{
		Timestamp	local = 0;
		bool		local_known = false;

		for (int t = 0; t < types->n; t++)
		{
			BatchHit   *h = &(*hits)[nhits];

			if (strcmp(event_types[i], types->event_type[t]) != 0)
				continue;
			if (!local_known)
			{
				local = period_local_time(types->timezone, occurred_at[i]);
				local_known = true;
			}
			h->event = i;
			h->type = t;
			h->period_no = period_number(types->period[t], local);
			h->new_period = false;
			nhits++;
		}
	}
	return nhits;
}

/* the pair's streak among streaks (sorted by batch_read_streaks), or NULL */
static BatchStreak *
hit_streak(const BatchTypes *types, const BatchHit *hit, const int64 *member_ids,
		   BatchStreak *streaks, int nstreaks)
{
	BatchStreak key;

	key.member_id = member_ids[hit->event];
	key.streak_type = types->name[hit->type];
	return bsearch(&key, streaks, nstreaks, sizeof(BatchStreak), streak_cmp);
}

/*
 * in_last_counted
 *		Whether the pair's period is the last one its streak counted before
 *		the batch (streaks as batch_read_streaks read them): a streak's last
 *		period is always one of its qualifying periods, so the pair adds
 *		none.  Most events of a live program are such pairs, and offering
 *		each to the insert cost a probe of the periods' key.
 */
static bool
in_last_counted(const BatchTypes *types, const BatchHit *hit,
				const int64 *member_ids, BatchStreak *streaks, int nstreaks)
{
	const BatchStreak *st = hit_streak(types, hit, member_ids, streaks, nstreaks);

	return st != NULL && st->exists && st->last_period_no == hit->period_no;
}

/*
 * batch_add_periods
 *		Add each pair's period to the member's qualifying periods, and mark
 *		the pairs that added one.  The insert goes in the batch's order, so
 *		the first event of a period gives its first_at, and is the one that
 *		adds it, as with the trigger; a later event of the batch in the same
 *		period finds it claimed (unclaimed, it would be taken for a late
 *		event: the same streak, recounted at two statements' cost).  The
 *		added rows are matched to the pairs here, through a hash table:
 *		matching them in the statement was a join the planner could only
 *		guess the size of, and a nested loop over a batch of late events,
 *		each adding a period, took the square of the batch's size.  A pair
 *		in the last period its streak counted before the batch adds
 *		nothing, and is not offered: the period is already there.
 */
static void
batch_add_periods(const BatchTypes *types, BatchHit *hits, int nhits,
				  const int64 *member_ids, const TimestampTz *occurred_at,
				  BatchStreak *streaks, int nstreaks)
{
	static const Oid argtypes[] = {INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
	TIMESTAMPTZARRAYOID};
	int64	   *members = palloc(nhits * sizeof(int64));
	char	  **names = palloc(nhits * sizeof(char *));
	int32	   *periods = palloc(nhits * sizeof(int32));
	TimestampTz *ats = palloc(nhits * sizeof(TimestampTz));
	Datum		values[4];
	HASHCTL		ctl;
	HTAB	   *added;
	int			m = 0;

	for (int h = 0; h < nhits; h++)
	{
		if (in_last_counted(types, &hits[h], member_ids, streaks, nstreaks))
			continue;
		members[m] = member_ids[hits[h].event];
		names[m] = types->name[hits[h].type];
		periods[m] = hits[h].period_no;
		ats[m] = occurred_at[hits[h].event];
		m++;
	}
	if (m == 0)
		return;
	values[0] = int8_array(members, m);
	values[1] = text_array((const char *const *) names, m);
	values[2] = int4_array(periods, m);
	values[3] = timestamptz_array(ats, m);
	ledger_run(ledger_plan_generic(&plan_batch_periods,
								   "INSERT INTO gifq.streak_periods AS p"
								   " (member_id, streak_type, period_no, first_at)"
								   " SELECT * FROM unnest($1, $2, $3, $4)"
								   " ON CONFLICT DO NOTHING"
								   " RETURNING p.member_id, p.streak_type, p.period_no",
								   4, argtypes),
			   values, NULL, SPI_OK_INSERT_RETURNING);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = offsetof(AddedPeriod, claimed);
	ctl.entrysize = sizeof(AddedPeriod);
	ctl.hcxt = CurrentMemoryContext;
	added = hash_create("gifq added periods", Max(SPI_processed, 16), &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	row = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name = TextDatumGetCString(SPI_getbinval(row, desc, 2, &isnull));
		AddedPeriod key;

		memset(&key, 0, sizeof(key));
		key.member_id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		key.period_no = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
		key.type = -1;
		for (int t = 0; t < types->n && key.type < 0; t++)
			if (strcmp(types->name[t], name) == 0)
				key.type = t;
		if (key.type < 0)
			elog(ERROR, "streak period of type \"%s\" not asked for", name);
		((AddedPeriod *) hash_search(added, &key, HASH_ENTER, NULL))->claimed = false;
	}
	SPI_freetuptable(SPI_tuptable);

	for (int h = 0; h < nhits; h++)
	{
		AddedPeriod key;
		AddedPeriod *a;

		memset(&key, 0, sizeof(key));
		key.member_id = member_ids[hits[h].event];
		key.type = hits[h].type;
		key.period_no = hits[h].period_no;
		a = hash_search(added, &key, HASH_FIND, NULL);
		hits[h].new_period = a != NULL && !a->claimed;
		if (a != NULL)
			a->claimed = true;
	}
	hash_destroy(added);
}

/*
 * batch_read_streaks
 *		The members' streaks of the pairs' types, one each, sorted by
 *		(member, type), as they are before the batch.
 */
static int
batch_read_streaks(const BatchTypes *types, const BatchHit *hits, int nhits,
				   const int64 *member_ids, BatchStreak **out)
{
	static const Oid argtypes[] = {INT8ARRAYOID, TEXTARRAYOID};
	BatchStreak *streaks = palloc0(Max(nhits, 1) * sizeof(BatchStreak));
	int			nstreaks = 0;
	int64	   *members;
	char	  **names;
	Datum		values[2];

	for (int h = 0; h < nhits; h++)
	{
		streaks[h].member_id = member_ids[hits[h].event];
		streaks[h].streak_type = types->name[hits[h].type];
		streaks[h].grace = types->grace[hits[h].type];
	}
	qsort(streaks, nhits, sizeof(BatchStreak), streak_cmp);
	for (int h = 0; h < nhits; h++)
		if (nstreaks == 0 || streak_cmp(&streaks[nstreaks - 1], &streaks[h]) != 0)
			streaks[nstreaks++] = streaks[h];

	members = palloc(nstreaks * sizeof(int64));
	names = palloc(nstreaks * sizeof(char *));
	for (int s = 0; s < nstreaks; s++)
	{
		members[s] = streaks[s].member_id;
		names[s] = streaks[s].streak_type;
	}
	values[0] = int8_array(members, nstreaks);
	values[1] = text_array((const char *const *) names, nstreaks);
	ledger_run(ledger_plan_generic(&plan_batch_streaks,
								   "SELECT s.member_id, s.streak_type, s.current_streak,"
								   " s.longest_streak, s.last_period_no, s.last_qualifying_event"
								   " FROM gifq.streaks s"
								   " JOIN unnest($1, $2) u(member_id, streak_type)"
								   "  ON s.member_id = u.member_id AND s.streak_type = u.streak_type",
								   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	row = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		BatchStreak key;
		BatchStreak *st;

		key.member_id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		key.streak_type = TextDatumGetCString(SPI_getbinval(row, desc, 2, &isnull));
		st = bsearch(&key, streaks, nstreaks, sizeof(BatchStreak), streak_cmp);
		if (st == NULL)
			elog(ERROR, "streak of member %lld not asked for", (long long) key.member_id);
		st->exists = true;
		st->current = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
		st->longest = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
		st->last_period_no = DatumGetInt32(SPI_getbinval(row, desc, 5, &isnull));
		st->last_event = DatumGetTimestampTz(SPI_getbinval(row, desc, 6, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	*out = streaks;
	return nstreaks;
}

/*
 * batch_apply
 *		Each pair in the batch's order, as the trigger would take it.
 */
static void
batch_apply(const BatchTypes *types, const BatchHit *hits, int nhits,
			const int64 *member_ids, const TimestampTz *occurred_at,
			BatchStreak *streaks, int nstreaks)
{
	for (int h = 0; h < nhits; h++)
	{
		BatchStreak *st = hit_streak(types, &hits[h], member_ids, streaks, nstreaks);
		TimestampTz at = occurred_at[hits[h].event];
		int32		p = hits[h].period_no;

		CHECK_FOR_INTERRUPTS();
		if (!hits[h].new_period)
		{
			if (st->exists && st->last_event < at)
			{
				st->last_event = at;
				st->changed = true;
			}
			continue;
		}
		st->changed = true;
		st->moved = true;
		if (!st->exists)
		{
			st->exists = true;
			st->current = 1;
			st->longest = 1;
			st->last_period_no = p;
			st->last_event = at;
		}
		else if (p > st->last_period_no)
		{
			st->current = p - st->last_period_no - 1 <= st->grace ? st->current + 1 : 1;
			st->longest = Max(st->longest, st->current);
			st->last_period_no = p;
			st->last_event = Max(st->last_event, at);
		}
		else
		{
			st->late = true;
			st->last_event = Max(st->last_event, at);
		}
	}
}

/*
 * batch_note_in_place
 *		The streaks the batch changed only the last qualifying event of
 *		(its events all fell in periods already counted), changed in place
 *		as the trigger changes them; any found otherwise than read (none,
 *		with the members locked) is left to batch_write's statement.
 */
static void
batch_note_in_place(BatchStreak *streaks, int nstreaks)
{
	LastPeriod	last;

	last.open = false;
	for (int i = 0; i < nstreaks; i++)
	{
		StreakEvent ev;
		StreakHit	hit;

		if (!streaks[i].changed || streaks[i].moved)
			continue;
		CHECK_FOR_INTERRUPTS();
		ev.member_id = streaks[i].member_id;
		ev.occurred_at = streaks[i].last_event;
		hit.streak_type = streaks[i].streak_type;
		hit.period_no = streaks[i].last_period_no;
		if (!in_last_period(&last, &ev, &hit))
			streaks[i].moved = true;
	}
	if (last.open)
		counters_close(&last.t);
}

/*
 * batch_write
 *		Write the streaks whose periods the batch changed in one statement,
 *		then recount the late ones, in (member, type) order.
 */
static void
batch_write(int64 program_id, const BatchStreak *streaks, int nstreaks)
{
	static const Oid argtypes[] = {INT8OID, INT8ARRAYOID, TEXTARRAYOID,
	INT4ARRAYOID, INT4ARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID};
	int64	   *members = palloc(Max(nstreaks, 1) * sizeof(int64));
	char	  **names = palloc(Max(nstreaks, 1) * sizeof(char *));
	int32	   *current = palloc(Max(nstreaks, 1) * sizeof(int32));
	int32	   *longest = palloc(Max(nstreaks, 1) * sizeof(int32));
	int32	   *last = palloc(Max(nstreaks, 1) * sizeof(int32));
	TimestampTz *last_event = palloc(Max(nstreaks, 1) * sizeof(TimestampTz));
	Datum		values[7];
	int			m = 0;

	for (int i = 0; i < nstreaks; i++)
	{
		if (!streaks[i].moved)
			continue;
		members[m] = streaks[i].member_id;
		names[m] = streaks[i].streak_type;
		current[m] = streaks[i].current;
		longest[m] = streaks[i].longest;
		last[m] = streaks[i].last_period_no;
		last_event[m] = streaks[i].last_event;
		m++;
	}
	if (m == 0)
		return;
	values[0] = Int64GetDatum(program_id);
	values[1] = int8_array(members, m);
	values[2] = text_array((const char *const *) names, m);
	values[3] = int4_array(current, m);
	values[4] = int4_array(longest, m);
	values[5] = int4_array(last, m);
	values[6] = timestamptz_array(last_event, m);
	ledger_run(ledger_plan_generic(&plan_batch_write,
								   "INSERT INTO gifq.streaks AS s (member_id, streak_type, program_id,"
								   "  current_streak, longest_streak, last_period_no, last_qualifying_event)"
								   " SELECT u.member_id, u.streak_type, $1, u.current_streak,"
								   "  u.longest_streak, u.last_period_no, u.last_qualifying_event"
								   " FROM unnest($2, $3, $4, $5, $6, $7) u(member_id, streak_type,"
								   "  current_streak, longest_streak, last_period_no, last_qualifying_event)"
								   " ON CONFLICT ON CONSTRAINT streaks_pkey DO UPDATE SET"
								   "  current_streak = EXCLUDED.current_streak,"
								   "  longest_streak = EXCLUDED.longest_streak,"
								   "  last_period_no = EXCLUDED.last_period_no,"
								   "  last_qualifying_event = EXCLUDED.last_qualifying_event,"
								   "  updated_at = now()",
								   7, argtypes),
			   values, NULL, SPI_OK_INSERT);
	for (int i = 0; i < nstreaks; i++)
	{
		if (!streaks[i].late)
			continue;
		CHECK_FOR_INTERRUPTS();
		recount(streaks[i].member_id, streaks[i].streak_type, streaks[i].grace,
				streaks[i].last_event);
	}
}

/*
 * streaks_record_batch
 *		Keep the streaks of n events of one program just inserted (in this
 *		order) with the trigger deferred, giving what the trigger would
 *		have given event by event: each event's period is added to the
 *		member's qualifying periods once (the first event of a period gives
 *		its first_at); a new period after the member's last extends or
 *		restarts their streak; a later event in a counted period moves only
 *		the last qualifying event; a new period before the last (a late
 *		event) has the streak recounted from all its periods, which is what
 *		the events would have given in order.  The batch's members are
 *		locked by the caller.  Inside SPI.
 */
void
streaks_record_batch(int64 program_id, int n, const int64 *member_ids,
					 char *const *event_types, const TimestampTz *occurred_at)
{
	BatchTypes	types;
	BatchHit   *hits;
	int			nhits;
	BatchStreak *streaks;
	int			nstreaks;

	if (n == 0 || !batch_types(program_id, n, event_types, &types))
		return;
	nhits = batch_hits(&types, n, event_types, occurred_at, &hits);
	if (nhits == 0)
		return;
	nstreaks = batch_read_streaks(&types, hits, nhits, member_ids, &streaks);
	batch_add_periods(&types, hits, nhits, member_ids, occurred_at,
					  streaks, nstreaks);
	batch_apply(&types, hits, nhits, member_ids, occurred_at, streaks, nstreaks);
	batch_note_in_place(streaks, nstreaks);
	batch_write(program_id, streaks, nstreaks);
}
