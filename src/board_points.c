/*-------------------------------------------------------------------------
 * board_points.c
 *	  Each member's points on their boards, kept as events are recorded.
 *
 * gifq.events_points runs AFTER INSERT FOR EACH STATEMENT on gifq.events,
 * with the statement's events as its transition table.  Each event with
 * points counts on four boards: all time and the day, week and month it
 * occurred in, in its program's time zone, numbered as gifq.period_no
 * numbers them.  Since 0.9.0 a member has one row in gifq.board_points:
 * all their points, and the points of their latest day, week and month
 * (only the current period's board is ever read).  The statement's events
 * are summed per member first, so a batch changes each member's row once,
 * in key order (concurrent statements lock them in one order), through
 * counters.c; then each of the member's moves from their old points on a
 * board to their new ones is noted for the counts (leaderboard.c).  A
 * move to a later period leaves the old period's count.
 *
 * Every way an event is recorded locks its member first, so two sessions
 * never add to one member's row at once; counters.c would queue them if
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
#include "periods.h"
#include "recording.h"

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

static const char periods[] = {PERIOD_ALL, PERIOD_DAY, PERIOD_MONTH, PERIOD_WEEK};
#define NPERIODS ((int) lengthof(periods))

/*
 * program_timezone
 *		The time zone of a program, read through gifq.programs' primary key
 *		(when the recording call has not said it: recording.c).
 */
static text *
program_timezone(int64 program_id)
{
	Oid			relid = get_relname_relid("programs",
										  get_namespace_oid("gifq", false));
	Relation	rel = table_open(relid, AccessShareLock);
	Relation	pkey = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	int			att = table_column(rel, "timezone", InvalidOid);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ScanKeyData key;
	IndexScanDesc scan;
	text	   *tz = NULL;
	bool		isnull;

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

/* one event with points: its board keys */
typedef struct EventPoints
{
	int64		program_id;
	int64		member_id;
	int64		points;
	int32		period_no[NPERIODS];	/* on each board, in periods' order */
} EventPoints;

/*
 * read_events
 *		The statement's events with points, in the transition table's order.
 *		Returns how many.
 */
static int
read_events(TriggerData *trigdata, EventPoints **out)
{
	Tuplestorestate *events = trigdata->tg_newtable;
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	int			att_program = table_column(rel, "program_id", InvalidOid);
	int			att_member = table_column(rel, "member_id", InvalidOid);
	int			att_at = table_column(rel, "occurred_at", InvalidOid);
	int			att_points = table_column(rel, "points", InvalidOid);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			n = 0;
	int			max = 16;
	EventPoints *ev = palloc(max * sizeof(EventPoints));
	int64		tz_program = 0;
	text	   *tz = NULL;

	tuplestore_select_read_pointer(events,
								   tuplestore_alloc_read_pointer(events, EXEC_FLAG_REWIND));
	tuplestore_rescan(events);
	while (tuplestore_gettupleslot(events, true, false, slot))
	{
		bool		isnull;
		int64		program_id = DatumGetInt64(slot_getattr(slot, att_program, &isnull));
		Datum		at = slot_getattr(slot, att_at, &isnull);
		Timestamp	local;

		CHECK_FOR_INTERRUPTS();
		if (n == max)
		{
			max *= 2;
			ev = repalloc_huge(ev, (Size) max * sizeof(EventPoints));
		}
		ev[n].points = DatumGetInt64(slot_getattr(slot, att_points, &isnull));
		if (ev[n].points <= 0)
			continue;
		if (tz == NULL || program_id != tz_program)
		{
			const RecordingEvent *known = recording_event(program_id);

			tz = known ? known->timezone : program_timezone(program_id);
			tz_program = program_id;
		}
		local = period_local_time(tz, DatumGetTimestampTz(at));
		ev[n].program_id = program_id;
		ev[n].member_id = DatumGetInt64(slot_getattr(slot, att_member, &isnull));
		for (int k = 0; k < NPERIODS; k++)
			ev[n].period_no[k] = period_number(periods[k], local);
		n++;
	}
	ExecDropSingleTupleTableSlot(slot);
	*out = ev;
	return n;
}

static void
add_points(int64 *sum, int64 points)
{
	if (pg_add_s64_overflow(*sum, points, sum))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
}

static void
check_trigger(FunctionCallInfo fcinfo, const char *name)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		trigdata->tg_newtable == NULL)
		elog(ERROR, "%s must run AFTER INSERT FOR EACH STATEMENT with a NEW TABLE", name);
}

/* ----------------------------------------------------------------------
 * Since 0.9.0: one row a member (gifq.board_points)
 * ----------------------------------------------------------------------
 */

/* board_points' columns after its key, in table order */
enum
{
	COL_ALL = 2, COL_DAY, COL_WEEK, COL_MONTH, COL_DAY_NO, COL_WEEK_NO, COL_MONTH_NO,
	BOARD_POINTS_NATTS
};

/* the day, week and month boards: their index in periods and their columns */
static const struct
{
	int			k;
	int			points;
	int			no;
}			dated[] =
{
	{1, COL_DAY, COL_DAY_NO},
	{3, COL_WEEK, COL_WEEK_NO},
	{2, COL_MONTH, COL_MONTH_NO},
};

/*
 * What a statement's events give one member: all their points, and on the
 * day, week and month boards the latest period among the events and the
 * points of the events in it.
 */
typedef struct MemberEarned
{
	int64		program_id;
	int64		member_id;
	int64		all;
	int64		points[lengthof(dated)];
	int32		period_no[lengthof(dated)];
} MemberEarned;

static int
event_points_cmp(const void *a, const void *b)
{
	const EventPoints *x = (const EventPoints *) a;
	const EventPoints *y = (const EventPoints *) b;

	if (x->program_id != y->program_id)
		return x->program_id < y->program_id ? -1 : 1;
	if (x->member_id != y->member_id)
		return x->member_id < y->member_id ? -1 : 1;
	return 0;
}

/* add one event to what its member earned; the first sets the periods */
static void
member_add(MemberEarned *m, const EventPoints *ev, bool first)
{
	if (first)
	{
		m->program_id = ev->program_id;
		m->member_id = ev->member_id;
		m->all = 0;
	}
	add_points(&m->all, ev->points);
	for (int d = 0; d < (int) lengthof(dated); d++)
	{
		int32		no = ev->period_no[dated[d].k];

		if (first || no > m->period_no[d])
		{
			m->period_no[d] = no;
			m->points[d] = ev->points;
		}
		else if (no == m->period_no[d])
			add_points(&m->points[d], ev->points);
	}
}

/*
 * sum_members
 *		Sort the events in key order and sum them per member into *out.
 *		Returns the number of members.
 */
static int
sum_members(EventPoints *ev, int n, MemberEarned **out)
{
	MemberEarned *m = palloc(Max(n, 1) * sizeof(MemberEarned));
	int			nm = 0;

	qsort(ev, n, sizeof(EventPoints), event_points_cmp);
	for (int i = 0; i < n; i++)
	{
		bool		first = i == 0 || event_points_cmp(&ev[i - 1], &ev[i]) != 0;

		if (first)
			nm++;
		member_add(&m[nm - 1], &ev[i], first);
	}
	*out = m;
	return nm;
}

/*
 * merge_member
 *		counters_merge's merge for board_points: the member's row with the
 *		statement's points added.  A board whose period is later than the
 *		row's starts again at the statement's points; one whose period is
 *		earlier (late events) keeps the row's.
 */
static bool
merge_member(const Datum *old, Datum *next, void *arg)
{
	const MemberEarned *m = (const MemberEarned *) arg;
	int64		all = m->all;

	if (old != NULL)
		add_points(&all, DatumGetInt64(old[COL_ALL]));
	next[COL_ALL] = Int64GetDatum(all);
	for (int d = 0; d < (int) lengthof(dated); d++)
	{
		int32		no = m->period_no[d];
		int64		points = m->points[d];

		if (old != NULL)
		{
			int32		old_no = DatumGetInt32(old[dated[d].no]);
			int64		old_points = DatumGetInt64(old[dated[d].points]);

			if (no < old_no)
			{
				no = old_no;
				points = old_points;
			}
			else if (no == old_no)
				add_points(&points, old_points);
		}
		next[dated[d].points] = Int64GetDatum(points);
		next[dated[d].no] = Int32GetDatum(no);
	}
	return true;
}

/* the counts: the member leaves the old value of a board, joins the new */
static void
note_board(int64 program_id, char period, int32 old_no, int64 old_points,
		   int32 no, int64 points)
{
	if (old_no == no)
	{
		if (old_points != points)
			board_note_change(program_id, period, no, old_points, points);
		return;
	}
	if (old_points > 0)
		board_note_move(program_id, period, old_no, old_points, -1);
	board_note_move(program_id, period, no, points, 1);
}

static void
note_member(const MemberEarned *m, const Datum *old, const Datum *next)
{
	note_board(m->program_id, PERIOD_ALL, 0,
			   old ? DatumGetInt64(old[COL_ALL]) : 0,
			   0, DatumGetInt64(next[COL_ALL]));
	for (int d = 0; d < (int) lengthof(dated); d++)
		note_board(m->program_id, periods[dated[d].k],
				   old ? DatumGetInt32(old[dated[d].no]) : 0,
				   old ? DatumGetInt64(old[dated[d].points]) : 0,
				   DatumGetInt32(next[dated[d].no]),
				   DatumGetInt64(next[dated[d].points]));
}

PG_FUNCTION_INFO_V1(gifq_events_board_points);

/*
 * gifq_events_board_points
 *		gifq.events_points since 0.9.0: AFTER INSERT FOR EACH STATEMENT on
 *		gifq.events, REFERENCING NEW TABLE.  Each member's row once, in key
 *		order (concurrent statements lock them in one order).
 */
Datum
gifq_events_board_points(PG_FUNCTION_ARGS)
{
	EventPoints *ev;
	MemberEarned *members;
	int			n;
	CounterTable t;

	check_trigger(fcinfo, "gifq.events_points");
	n = read_events((TriggerData *) fcinfo->context, &ev);
	n = sum_members(ev, n, &members);
	if (n == 0)
		return PointerGetDatum(NULL);
	counters_open(&t, "board_points", false);
	if (RelationGetDescr(t.rel)->natts != BOARD_POINTS_NATTS || t.nkeys != 2)
		elog(ERROR, "gifq.board_points is not as src/board_points.c knows it");
	for (int i = 0; i < n; i++)
	{
		Datum		key[2];
		bool		existed;

		CHECK_FOR_INTERRUPTS();
		key[0] = Int64GetDatum(members[i].program_id);
		key[1] = Int64GetDatum(members[i].member_id);
		existed = counters_merge(&t, key, merge_member, &members[i]);
		note_member(&members[i], existed ? t.found->tts_values : NULL,
					t.next->tts_values);
	}
	counters_close(&t);
	return PointerGetDatum(NULL);
}

/* ----------------------------------------------------------------------
 * Until 0.8.0: a row a member and board (gifq.member_points), kept for
 * databases whose update to 0.9.0 is still to come
 * ----------------------------------------------------------------------
 */

/* what one event adds to one board */
typedef struct Earned
{
	int64		program_id;
	int64		member_id;
	int64		points;
	int32		period_no;
	char		period;
} Earned;

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

/*
 * sum_earned
 *		Each event's four boards, sorted in key order and summed per member
 *		and board.  Returns the number of entries.
 */
static int
sum_earned(const EventPoints *ev, int nev, Earned **out)
{
	Earned	   *earned = palloc_extended(Max(nev, 1) * NPERIODS * sizeof(Earned),
										 MCXT_ALLOC_HUGE);
	int			n = 0;
	int			m = 0;

	for (int i = 0; i < nev; i++)
	{
		for (int k = 0; k < NPERIODS; k++)
		{
			earned[n].program_id = ev[i].program_id;
			earned[n].member_id = ev[i].member_id;
			earned[n].points = ev[i].points;
			earned[n].period = periods[k];
			earned[n].period_no = ev[i].period_no[k];
			n++;
		}
	}
	qsort(earned, n, sizeof(Earned), earned_cmp);
	for (int i = 0; i < n; i++)
	{
		if (m > 0 && earned_cmp(&earned[m - 1], &earned[i]) == 0)
			add_points(&earned[m - 1].points, earned[i].points);
		else
			earned[m++] = earned[i];
	}
	*out = earned;
	return m;
}

PG_FUNCTION_INFO_V1(gifq_events_points);

/*
 * gifq_events_points
 *		gifq.events_points of 0.6.0 to 0.8.0.
 */
Datum
gifq_events_points(PG_FUNCTION_ARGS)
{
	EventPoints *ev;
	Earned	   *earned;
	int			n;
	CounterTable t;

	check_trigger(fcinfo, "gifq.events_points");
	n = read_events((TriggerData *) fcinfo->context, &ev);
	n = sum_earned(ev, n, &earned);
	if (n == 0)
		return PointerGetDatum(NULL);
	counters_open(&t, "member_points", false);
	for (int i = 0; i < n; i++)
	{
		Datum		key[4];
		int64		points;

		CHECK_FOR_INTERRUPTS();
		key[0] = Int64GetDatum(earned[i].program_id);
		key[1] = CStringGetTextDatum(period_name(earned[i].period));
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
