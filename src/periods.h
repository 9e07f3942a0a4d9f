/*-------------------------------------------------------------------------
 * periods.h
 *	  Days, weeks and months numbered as gifq.period_no numbers them.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/periods.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_PERIODS_H
#define GIFQ_PERIODS_H

#include "postgres.h"

#include "utils/timestamp.h"

/* a period as one character, in the order of their names */
#define PERIOD_ALL 'a'
#define PERIOD_DAY 'd'
#define PERIOD_MONTH 'm'
#define PERIOD_WEEK 'w'

extern int32 period_number(char period, Timestamp local);
extern Timestamp period_local_time(text *timezone, TimestampTz at);
extern char period_code(const char *name);
extern const char *period_name(char code);

#endif							/* GIFQ_PERIODS_H */
