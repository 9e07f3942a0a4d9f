/*-------------------------------------------------------------------------
 * periods.c
 *	  Days, weeks and months numbered as gifq.period_no numbers them, for
 *	  the boards' trigger and the streak trigger.
 *
 * gifq.period_no (SQL) numbers the day, the week (Monday to Sunday) and
 * the month of a local time from Monday 3 January 2000, so that
 * consecutive periods have consecutive numbers; all time is period 0.
 * The triggers number every event's periods, so they do it here in C, on
 * the event's time in its program's time zone (timestamptz AT TIME ZONE).
 * test/gamification.sql checks both give the same numbers across
 * daylight-saving changes, before 2000 and around Mondays.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/periods.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "periods.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"

/* the day gifq.period_no counts from: Monday 3 January 2000 */
#define PERIOD_EPOCH_DAY 2

/*
 * period_number
 *		gifq.period_no(period, local) in C: the day, the week (Monday to
 *		Sunday) or the month of a local time, counted from the epoch day.
 */
int32
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
		case PERIOD_ALL:
			return 0;
		case PERIOD_DAY:
			return (int32) day;
		case PERIOD_WEEK:
			return (int32) (day >= 0 ? day / 7 : -((-day + 6) / 7));
		default:
			if (timestamp2tm(local, NULL, &tm, &fsec, NULL, NULL) != 0)
				elog(ERROR, "timestamp out of range");
			return (tm.tm_year - 2000) * 12 + tm.tm_mon - 1;
	}
}

/*
 * period_local_time
 *		at in a time zone, as timestamptz AT TIME ZONE gives it.
 */
Timestamp
period_local_time(text *timezone, TimestampTz at)
{
	return DatumGetTimestamp(DirectFunctionCall2(timestamptz_zone,
												 PointerGetDatum(timezone),
												 TimestampTzGetDatum(at)));
}

/*
 * period_code
 *		The code of a period's name ('all', 'day', 'week', 'month'); throws
 *		on anything else (the tables' CHECKs allow no other).
 */
char
period_code(const char *name)
{
	if (strcmp(name, "all") == 0)
		return PERIOD_ALL;
	if (strcmp(name, "day") == 0)
		return PERIOD_DAY;
	if (strcmp(name, "week") == 0)
		return PERIOD_WEEK;
	if (strcmp(name, "month") == 0)
		return PERIOD_MONTH;
	elog(ERROR, "unknown period \"%s\"", name);
	return 0;					/* keep the compiler quiet */
}

/*
 * period_name
 *		The name of a period code.
 */
const char *
period_name(char code)
{
	switch (code)
	{
		case PERIOD_ALL:
			return "all";
		case PERIOD_DAY:
			return "day";
		case PERIOD_WEEK:
			return "week";
		default:
			return "month";
	}
}
