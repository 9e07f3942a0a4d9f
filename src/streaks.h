/*-------------------------------------------------------------------------
 * streaks.h
 *	  Keeping streaks: what a caller tells the trigger (events.c), and a
 *	  batch's streaks at once (events_batch.c).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/streaks.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_STREAKS_H
#define GIFQ_STREAKS_H

#include "postgres.h"

#include "events.h"
#include "utils/timestamp.h"

/*
 * What the caller recording an event knows that the streak trigger would
 * otherwise read: the event's program and type, the program's time zone
 * and the streak types counting the type (from settings.c's cache).
 */
typedef struct StreakKnown
{
	int64		program_id;
	const char *event_type;
	text	   *timezone;
	int			n;
	const StreakRule *rules;
} StreakKnown;

extern const StreakKnown *streaks_set_known(const StreakKnown *known);
extern void streaks_defer(bool on);
extern void streaks_record_batch(int64 program_id, int n, const int64 *member_ids,
								 char *const *event_types,
								 const TimestampTz *occurred_at);

#endif							/* GIFQ_STREAKS_H */
