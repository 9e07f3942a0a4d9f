/*-------------------------------------------------------------------------
 * streaks.c
 *	  gifq.streak_event: keep members' streaks as events are recorded.
 *
 * An AFTER INSERT trigger on gifq.events.  For every streak type of the
 * program that counts the event's type, the event's period (day, week or
 * month of occurred_at in the program's time zone, numbered so that
 * consecutive periods have consecutive numbers) is added to the member's
 * qualifying periods, once.  A period after the last one extends the
 * streak when the gap (the missed periods between them) is at most the
 * type's grace, and restarts it at 1 otherwise; that is one row update.
 * A period before the last one (an event that arrived late) can join two
 * runs or lengthen an earlier one, so the streak is recounted from all
 * the member's periods (gifq.streak_runs): the result is the one the
 * events would have given in order.
 *
 * The member's row is locked by gifq_record_event, so one member's
 * streak changes one event at a time.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/streaks.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "ledger.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rel.h"

static SPIPlanPtr plan_types;
static SPIPlanPtr plan_period;
static SPIPlanPtr plan_same_period;
static SPIPlanPtr plan_extend;
static SPIPlanPtr plan_recount;

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
 *		the number of the event's period in each.  Copied out of SPI's
 *		result, which the next statement replaces.
 */
static int
streak_hits(const StreakEvent *ev, StreakHit **hits)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	int			n;

	values[0] = Int64GetDatum(ev->program_id);
	values[1] = ev->event_type;
	values[2] = TimestampTzGetDatum(ev->occurred_at);
	ledger_run(ledger_plan(&plan_types,
						   "SELECT s.streak_type, s.grace_periods,"
						   " gifq.period_no(s.period, $3 AT TIME ZONE p.timezone)"
						   " FROM gifq.streak_types s JOIN gifq.programs p ON p.id = s.program_id"
						   " WHERE s.program_id = $1 AND s.event_type = $2",
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
 * recount
 *		An event that arrived late: recount the streak from all the
 *		member's periods.
 */
static void
recount(const StreakEvent *ev, const StreakHit *hit)
{
	run_streak(&plan_recount,
			   "UPDATE gifq.streaks s SET current_streak = r.current_streak,"
			   " longest_streak = r.longest_streak,"
			   " last_qualifying_event = GREATEST(s.last_qualifying_event, $5),"
			   " updated_at = now()"
			   " FROM gifq.streak_runs($1, $2, $6) r"
			   " WHERE s.member_id = $1 AND s.streak_type = $2",
			   ev, hit, SPI_OK_UPDATE);
}

static Datum
column(TriggerData *trigdata, const char *name, bool *isnull)
{
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "gifq.events has no column \"%s\"", name);
	return SPI_getbinval(trigdata->tg_trigtuple, desc, attnum, isnull);
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
	int			n;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "gifq.streak_event must run AFTER INSERT FOR EACH ROW");

	ev.program_id = DatumGetInt64(column(trigdata, "program_id", &isnull));
	ev.member_id = DatumGetInt64(column(trigdata, "member_id", &isnull));
	ev.event_type = column(trigdata, "event_type", &isnull);
	ev.occurred_at = DatumGetTimestampTz(column(trigdata, "occurred_at", &isnull));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = streak_hits(&ev, &hits);
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!add_period(&ev, &hits[i]))
			note_same_period(&ev, &hits[i]);
		else if (!extend(&ev, &hits[i]))
			recount(&ev, &hits[i]);
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
