/*-------------------------------------------------------------------------
 * board_points.c
 *	  Each member's points on each board, kept as events are recorded.
 *
 * gifq.events_points runs AFTER INSERT FOR EACH STATEMENT on gifq.events,
 * with the statement's events as its transition table.  Each event with
 * points counts on four boards: all time (period number 0) and the day,
 * week and month it occurred in, in its program's time zone, numbered as
 * gifq.period_no numbers them.  The statement's points are summed per
 * member and board first, so a batch of events changes each member's row
 * of each board once, in key order (concurrent statements lock them in
 * one order), through counters.c; then each member's move from its old
 * points to its new ones is noted for the counts (leaderboard.c).
 *
 * Every way an event is recorded locks its member first, so two sessions
 * never add to one member's rows at once; counters.c would queue them if
 * they did.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/board_points.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "counters.h"
#include "gifq.h"
#include "leaderboard.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* what one event adds to one board */
typedef struct Earned
{
	int64		program_id;
	int64		member_id;
	int64		points;
	int32		period_no;
	char		period;
} Earned;

static const char periods[] = {BOARD_ALL, BOARD_DAY, BOARD_MONTH, BOARD_WEEK};
#define NPERIODS ((int) lengthof(periods))

/* the day gifq.period_no counts from: Monday 3 January 2000 */
#define PERIOD_EPOCH_DAY 2

/*
 * period_number
 *		gifq.period_no(period, local) in C: the day, the week (Monday to
 *		Sunday) or the month of a local time, counted from the epoch day.
 */
static int32
period_number(char period, Timestamp local)
{
	int64		day;
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(local))
		elog(ERROR, "an event's time must be finite");
	day = local / USECS_PER_DAY;
	if (local % USECS_PER_DAY < 0)
		day--;
	day -= PERIOD_EPOCH_DAY;
	switch (period)
	{
		case BOARD_ALL:
			return 0;
		case BOARD_DAY:
			return (int32) day;
		case BOARD_WEEK:
			return (int32) (day >= 0 ? day / 7 : -((-day + 6) / 7));
		default:
			if (timestamp2tm(local, NULL, &tm, &fsec, NULL, NULL) != 0)
				elog(ERROR, "timestamp out of range");
			return (tm.tm_year - 2000) * 12 + tm.tm_mon - 1;
	}
}

/*
 * program_timezone
 *		The time zone of a program, read through gifq.programs' primary key.
 */
static text *
program_timezone(int64 program_id)
{
	Oid			relid = get_relname_relid("programs",
										  get_namespace_oid("gifq", false));
	Relation	rel = table_open(relid, AccessShareLock);
	Relation	pkey = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	int			att = SPI_fnumber(RelationGetDescr(rel), "timezone");
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ScanKeyData key;
	IndexScanDesc scan;
	text	   *tz = NULL;
	bool		isnull;

	if (att <= 0)
		elog(ERROR, "gifq.programs has no column \"timezone\"");
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(program_id));
	scan = index_beginscan(rel, pkey, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		Datum		d = slot_getattr(slot, att, &isnull);

		if (!isnull)
			tz = DatumGetTextPCopy(d);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(pkey, AccessShareLock);
	table_close(rel, AccessShareLock);
	if (tz == NULL)
		elog(ERROR, "program %lld has no time zone", (long long) program_id);
	return tz;
}

static int
earned_cmp(const void *a, const void *b)
{
	const Earned *x = (const Earned *) a;
	const Earned *y = (const Earned *) b;

	if (x->program_id != y->program_id)
		return x->program_id < y->program_id ? -1 : 1;
	if (x->period != y->period)
		return x->period < y->period ? -1 : 1;
	if (x->period_no != y->period_no)
		return x->period_no < y->period_no ? -1 : 1;
	if (x->member_id != y->member_id)
		return x->member_id < y->member_id ? -1 : 1;
	return 0;
}

static int
column_number(TupleDesc desc, const char *name)
{
	int			att = SPI_fnumber(desc, name);

	if (att <= 0)
		elog(ERROR, "gifq.events has no column \"%s\"", name);
	return att;
}

/*
 * read_earned
 *		What the statement's events add to each board, one entry per event
 *		with points and board (four per event), in the transition table's
 *		order.  Returns the number of entries.
 */
static int
read_earned(TriggerData *trigdata, Earned **out)
{
	Tuplestorestate *events = trigdata->tg_newtable;
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	int			att_program = column_number(desc, "program_id");
	int			att_member = column_number(desc, "member_id");
	int			att_at = column_number(desc, "occurred_at");
	int			att_points = column_number(desc, "points");
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			n = 0;
	int			max = 64;
	Earned	   *earned = palloc(max * sizeof(Earned));
	int64		tz_program = 0;
	text	   *tz = NULL;

	tuplestore_select_read_pointer(events,
								   tuplestore_alloc_read_pointer(events, EXEC_FLAG_REWIND));
	tuplestore_rescan(events);
	while (tuplestore_gettupleslot(events, true, false, slot))
	{
		bool		isnull;
		int64		program_id = DatumGetInt64(slot_getattr(slot, att_program, &isnull));
		int64		member_id = DatumGetInt64(slot_getattr(slot, att_member, &isnull));
		Datum		at = slot_getattr(slot, att_at, &isnull);
		int64		points = DatumGetInt64(slot_getattr(slot, att_points, &isnull));
		Timestamp	local;

		CHECK_FOR_INTERRUPTS();
		if (points <= 0)
			continue;
		if (tz == NULL || program_id != tz_program)
		{
			tz = program_timezone(program_id);
			tz_program = program_id;
		}
		local = DatumGetTimestamp(DirectFunctionCall2(timestamptz_zone,
													  PointerGetDatum(tz), at));
		if (n + NPERIODS > max)
		{
			max *= 2;
			earned = repalloc_huge(earned, (Size) max * sizeof(Earned));
		}
		for (int k = 0; k < NPERIODS; k++)
		{
			earned[n].program_id = program_id;
			earned[n].member_id = member_id;
			earned[n].points = points;
			earned[n].period = periods[k];
			earned[n].period_no = period_number(periods[k], local);
			n++;
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	*out = earned;
	return n;
}

/*
 * sum_earned
 *		Sort the entries in key order and sum each member's on each board.
 *		Returns the number left.
 */
static int
sum_earned(Earned *earned, int n)
{
	int			m = 0;

	qsort(earned, n, sizeof(Earned), earned_cmp);
	for (int i = 0; i < n; i++)
	{
		if (m > 0 && earned_cmp(&earned[m - 1], &earned[i]) == 0)
		{
			if (pg_add_s64_overflow(earned[m - 1].points, earned[i].points,
									&earned[m - 1].points))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("bigint out of range")));
		}
		else
			earned[m++] = earned[i];
	}
	return m;
}

PG_FUNCTION_INFO_V1(gifq_events_points);

/*
 * gifq_events_points
 *		AFTER INSERT FOR EACH STATEMENT on gifq.events, REFERENCING NEW TABLE.
 */
Datum
gifq_events_points(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Earned	   *earned;
	int			n;
	CounterTable t;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		trigdata->tg_newtable == NULL)
		elog(ERROR, "gifq.events_points must run AFTER INSERT FOR EACH STATEMENT with a NEW TABLE");

	n = read_earned(trigdata, &earned);
	n = sum_earned(earned, n);
	if (n == 0)
		return PointerGetDatum(NULL);
	counters_open(&t, "member_points", false);
	for (int i = 0; i < n; i++)
	{
		Datum		key[4];
		int64		points;

		CHECK_FOR_INTERRUPTS();
		key[0] = Int64GetDatum(earned[i].program_id);
		key[1] = CStringGetTextDatum(board_period_name(earned[i].period));
		key[2] = Int32GetDatum(earned[i].period_no);
		key[3] = Int64GetDatum(earned[i].member_id);
		points = counters_add(&t, key, earned[i].points);
		/* the member joins the count of their new points, leaves the old */
		board_note_move(earned[i].program_id, earned[i].period,
						earned[i].period_no, points, 1);
		if (points > earned[i].points)
			board_note_move(earned[i].program_id, earned[i].period,
							earned[i].period_no, points - earned[i].points, -1);
	}
	counters_close(&t);
	return PointerGetDatum(NULL);
}
